"""The licence policy (configs/licenses.yaml), applied to SPDX licence expressions parsed by
`license-expression` (the maintained parser of the ScanCode project), never by hand.

A licence expression passes when it evaluates to allowed:

- a licence id: not matching any `deny` pattern and listed on `allow` (both case-insensitive);
  `LicenseRef-*` ids are unknown unless listed on `allow` by name;
- `A WITH E`: the whole `A WITH E` listed on `allow`, or `A` allowed and `E` on `allow_exceptions`;
- `A AND B`: both allowed; `A OR B`: at least one (the licensee may choose): `choose` names the
  branch taken, which the report shows.

Anything unclear anywhere in an expression makes the whole expression NO-GO, whatever an `OR` offers
beside it: one that does not parse ("Apache 2.0 license", a dangling operator, an empty value), an id
that is not an SPDX licence (unless named in the policy: on `allow`, as a `LicenseRef-*` may be, or
matched by `deny`, as CPML is), and
`unknown`, `NOASSERTION` or `NONE` (never a licence, even if listed). The policy fails closed, and the
lane's own floor (`FLOOR_DENY`: non-commercial and unknown licences) holds whatever the file says.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .paths import config_file
from .reasons import LaneError

POLICY_FILE = "licenses.yaml"
# never a licence: anywhere in an expression, the expression is NO-GO
NEVER = ("unknown", "noassertion", "none")
# denied whatever configs/licenses.yaml says (a workspace file cannot allow them)
FLOOR_DENY = ("unknown", "unclear", "noassertion", "none", "proprietary", "other", "cc-by-nc*", "*-nc-*", "cpml")


@lru_cache(maxsize=1)
def _licensing() -> Any:
    from license_expression import get_spdx_licensing

    return get_spdx_licensing()


@lru_cache(maxsize=1024)
def parse(expr: str) -> Any:
    """The parsed expression (license_expression objects); LaneError(config_invalid) when it does not parse."""
    from license_expression import ExpressionError

    try:
        parsed = _licensing().parse(expr, validate=False, strict=True)
    except (ExpressionError, TypeError, ValueError) as exc:
        raise LaneError("config_invalid", f"licence expression {expr!r} does not parse: {exc}") from None
    if parsed is None:
        raise LaneError("config_invalid", "empty licence expression")
    return parsed


@dataclass(frozen=True)
class LicensePolicy:
    allow: tuple[str, ...]
    deny: tuple[str, ...]
    allow_exceptions: tuple[str, ...] = ()

    @classmethod
    def load(cls, root: str | os.PathLike[str] = ".") -> LicensePolicy:
        from .config import load_yaml

        data = load_yaml(config_file(root, POLICY_FILE))
        allow, deny = data.get("allow"), data.get("deny")
        exceptions = data.get("allow_exceptions") or []
        if not isinstance(allow, list) or not isinstance(deny, list) or not isinstance(exceptions, list):
            raise LaneError("config_invalid", f"{POLICY_FILE}: needs lists 'allow' and 'deny' (and 'allow_exceptions')")
        return cls(tuple(str(a) for a in allow), tuple("" if d is None else str(d) for d in deny),
                   tuple(str(e) for e in exceptions))

    def _denied(self, key: str) -> bool:
        low = key.strip().lower()
        return any(fnmatch.fnmatchcase(low, pat.lower()) for pat in (*self.deny, *FLOOR_DENY))

    def _listed(self, key: str, names: tuple[str, ...]) -> bool:
        return key.strip().lower() in {n.lower() for n in names}

    def _symbol(self, key: str) -> bool:
        return not self._denied(key) and self._listed(key, self.allow)

    def _node(self, node: Any) -> str | None:
        """The allowed expression `node` amounts to (for an OR: the first allowed branch), or None."""
        from license_expression import LicenseSymbol, LicenseWithExceptionSymbol

        if isinstance(node, LicenseWithExceptionSymbol):
            lic, exc = node.license_symbol.key, node.exception_symbol.key
            whole = f"{lic} WITH {exc}"
            if self._denied(whole) or self._denied(lic):
                return None
            ok = self._listed(whole, self.allow) or (self._symbol(lic) and self._listed(exc, self.allow_exceptions))
            return whole if ok else None
        if isinstance(node, LicenseSymbol):
            return str(node.key) if self._symbol(str(node.key)) else None
        operator = type(node).__name__
        parts = [self._node(a) for a in node.args] if operator in ("AND", "OR") else []
        if operator == "AND" and all(p is not None for p in parts):
            return " AND ".join(p if " OR " not in p else f"({p})" for p in parts if p is not None)
        if operator == "OR":
            return next((p for p in parts if p is not None), None)
        return None  # a failed AND, or anything else the parser might return: fail closed

    def unclear(self, expr: str | None) -> str:
        """'' when every part of the expression is a known licence, else what is unclear about it."""
        if expr is None or not str(expr).strip():
            return "no licence given"
        try:
            parsed = parse(str(expr).strip())
        except LaneError as err:
            return err.detail
        keys = _licensing().license_keys(parsed)
        never = [k for k in keys if k.lower() in NEVER]
        if never:
            return f"{never[0]!r} is not a licence"
        unknown = [k for k in _licensing().unknown_license_keys(parsed) if not self._listed(k, self.allow)
                   and not self._denied(k)]  # a licence named to deny it (CPML) is known, and refused
        return f"{unknown[0]!r} is not an SPDX licence id (nor named in configs/licenses.yaml)" if unknown else ""

    def choose(self, expr: str | None) -> str | None:
        """The allowed licence the expression amounts to (for `A OR B`, the branch taken), or None when
        it is not allowed or anything in it is unclear."""
        if self.unclear(expr):
            return None
        return self._node(parse(str(expr).strip()))

    def allows(self, expr: str | None) -> bool:
        """True when the SPDX expression is allowed by the policy; False for anything unclear."""
        return self.choose(expr) is not None

    def explain(self, expr: str | None) -> str:
        """One line on why an expression is allowed or not (for check details and the report)."""
        why = self.unclear(expr)
        if why:
            return f"{expr!r}: {why}: unclear means NO-GO"
        chosen = self.choose(expr)
        if chosen is None:
            return f"{expr!r} is not allowed by configs/licenses.yaml"
        return f"{expr!r} is allowed" + (f" (under {chosen}, the branch taken)" if chosen != parse(str(expr).strip()).render() else "")
