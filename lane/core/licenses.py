"""The licence policy (configs/licenses.yaml), applied to SPDX licence expressions parsed by
`license-expression` (the maintained parser of the ScanCode project), never by hand.

A licence expression passes when it evaluates to allowed:

- a licence id: not matching any `deny` pattern and listed on `allow` (both case-insensitive);
  `LicenseRef-*` ids are unknown unless listed on `allow` by name;
- `A WITH E`: the whole `A WITH E` listed on `allow`, or `A` allowed and `E` on `allow_exceptions`;
- `A AND B`: both allowed; `A OR B`: at least one (the licensee may choose).

Anything that does not parse ("Apache 2.0 license", a dangling operator, an empty value) is unclear,
and unclear means NO-GO: the policy fails closed.
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
        return any(fnmatch.fnmatchcase(low, pat.lower()) for pat in self.deny)

    def _listed(self, key: str, names: tuple[str, ...]) -> bool:
        return key.strip().lower() in {n.lower() for n in names}

    def _symbol(self, key: str) -> bool:
        return not self._denied(key) and self._listed(key, self.allow)

    def _node(self, node: Any) -> bool:
        from license_expression import LicenseSymbol, LicenseWithExceptionSymbol

        if isinstance(node, LicenseWithExceptionSymbol):
            lic, exc = node.license_symbol.key, node.exception_symbol.key
            whole = f"{lic} WITH {exc}"
            if self._denied(whole) or self._denied(lic):
                return False
            return self._listed(whole, self.allow) or (self._symbol(lic) and self._listed(exc, self.allow_exceptions))
        if isinstance(node, LicenseSymbol):
            return self._symbol(str(node.key))
        operator = type(node).__name__
        if operator == "AND":
            return all(self._node(a) for a in node.args)
        if operator == "OR":
            return any(self._node(a) for a in node.args)
        return False  # anything else the parser might return is not understood: fail closed

    def allows(self, expr: str | None) -> bool:
        """True when the SPDX expression is allowed by the policy; False for anything unclear."""
        if expr is None or not str(expr).strip():
            return False
        try:
            return self._node(parse(str(expr).strip()))
        except LaneError:
            return False

    def explain(self, expr: str | None) -> str:
        """One line on why an expression is allowed or not (for check details)."""
        if expr is None or not str(expr).strip():
            return "no licence given: unclear means NO-GO"
        try:
            parse(str(expr).strip())
        except LaneError as err:
            return f"{err.detail}: unclear means NO-GO"
        return f"{expr!r} is " + ("allowed" if self.allows(expr) else "not allowed by configs/licenses.yaml")
