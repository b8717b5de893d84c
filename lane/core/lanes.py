"""The lane registry: configs/lanes/<id>.yaml, one file per lane.

Each file names a lane and says what it is::

    id: tts_prod_train           # must equal the file name
    status: alias                # primary | alias | fallback | experimental | legacy
    alias_of: tts_prod_train_nemo
    promotable: true
    runtime: nemo                # nemo | espnet | audiocraft
    stages: [verify, train, export, validate]
    description: ...

`load_lane(root, name)` resolves aliases (and the legacy job types `train` and `tts_voice_train`,
which map to the primary NeMo lane) to the lane that actually runs, but keeps the name the operator
gave in `LaneSpec.name`: status files are written under that name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import STAGES, load_yaml
from .ids import PATTERN
from .paths import config_file
from .reasons import LaneError

LANE_STATUSES = ("primary", "alias", "fallback", "experimental", "legacy")
RUNTIMES = ("nemo", "espnet", "audiocraft")
_REQUIRED = ("id", "status", "promotable", "runtime", "stages", "description")


@dataclass(frozen=True)
class LaneSpec:
    """A lane as the runner sees it. `name` is what the operator typed; `id` the lane that runs."""

    id: str
    status: str
    promotable: bool
    runtime: str
    stages: tuple[str, ...]
    description: str
    alias_of: str | None = None
    name: str = ""
    chain: tuple[str, ...] = field(default_factory=tuple)

    @property
    def not_promotable_reason(self) -> str:
        if self.status == "experimental":
            return "experimental_lane"
        return "" if self.promotable else "lane_not_promotable"


def lanes_dir(root: str | os.PathLike[str]) -> Path:
    """root/configs/lanes when it exists, else the installed repo's configs/lanes."""
    return config_file(root, "lanes")


def _parse(path: Path) -> dict[str, Any]:
    data = load_yaml(path)
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise LaneError("config_invalid", f"{path}: missing field(s) {missing}")
    if data["id"] != path.stem:
        raise LaneError("config_invalid", f"{path}: id {data['id']!r} differs from the file name")
    if data["status"] not in LANE_STATUSES:
        raise LaneError("config_invalid", f"{path}: status {data['status']!r} not in {list(LANE_STATUSES)}")
    if data["runtime"] not in RUNTIMES:
        raise LaneError("config_invalid", f"{path}: runtime {data['runtime']!r} not in {list(RUNTIMES)}")
    if not isinstance(data["promotable"], bool):
        raise LaneError("config_invalid", f"{path}: promotable must be true or false")
    stages = data["stages"]
    if not isinstance(stages, list) or not stages or any(s not in STAGES for s in stages):
        raise LaneError("config_invalid", f"{path}: stages must be a non-empty subset of {list(STAGES)}")
    if data["status"] in ("alias", "legacy") and not data.get("alias_of"):
        raise LaneError("config_invalid", f"{path}: a {data['status']} lane needs alias_of")
    return data


def known_lanes(root: str | os.PathLike[str]) -> list[str]:
    return sorted(p.stem for p in lanes_dir(root).glob("*.yaml"))


def load_lane(root: str | os.PathLike[str], name: str) -> LaneSpec:
    """The lane `name` with aliases resolved; unknown names raise LaneError(unknown_lane)."""
    ldir = lanes_dir(root)
    chain: list[str] = []
    current = name
    first: dict[str, Any] | None = None
    while True:
        if not PATTERN.fullmatch(current or "") or ".." in current:
            raise LaneError("unknown_lane", f"{current!r} is not a lane name; known: {known_lanes(root)}")
        path = ldir / f"{current}.yaml"
        if not path.exists():
            raise LaneError("unknown_lane", f"{current!r} is not in {ldir}; known: {known_lanes(root)}")
        if current in chain:
            raise LaneError("config_invalid", f"lane alias cycle: {' -> '.join([*chain, current])}")
        chain.append(current)
        data = _parse(path)
        first = first or data
        if data["status"] in ("alias", "legacy"):
            current = str(data["alias_of"])
            continue
        break
    return LaneSpec(
        id=data["id"], status=data["status"], promotable=bool(data["promotable"] and first["promotable"]),
        runtime=data["runtime"], stages=tuple(data["stages"]), description=str(data["description"]),
        alias_of=first.get("alias_of"), name=name, chain=tuple(chain),
    )


def all_lanes(root: str | os.PathLike[str]) -> list[tuple[dict[str, Any], LaneSpec]]:
    """Every lane file with its resolved spec (for `lane lanes`)."""
    out = []
    for lane_id in known_lanes(root):
        data = _parse(lanes_dir(root) / f"{lane_id}.yaml")
        out.append((data, load_lane(root, lane_id)))
    return out


def print_lanes(root: str | os.PathLike[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"voice-lane lanes ({lanes_dir(root)})")
    for col in ("lane", "status", "runs as", "runtime", "promotable", "stages"):
        table.add_column(col, no_wrap=True)
    table.add_column("description", overflow="fold", min_width=30)
    order = {s: i for i, s in enumerate(LANE_STATUSES)}
    for data, spec in sorted(all_lanes(root), key=lambda x: (order[x[0]["status"]], x[0]["id"])):
        table.add_row(data["id"], data["status"], spec.id if spec.id != data["id"] else "-", spec.runtime,
                      "yes" if spec.promotable else f"no ({spec.not_promotable_reason})",
                      ",".join(spec.stages), str(data["description"]))
    Console(width=max(200, Console().width)).print(table)
