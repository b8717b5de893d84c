"""Child process for the kill -9 / resume and missing-NeMo tests: trains the tiny FastPitch with
train_voice (argv: root, data_dir, steps, resume 0|1, block_nemo 0|1) and prints the outcome."""

from __future__ import annotations

import importlib.abc
import json
import sys
from pathlib import Path
from types import SimpleNamespace


class _BlockNemo(importlib.abc.MetaPathFinder):
    """Make `import nemo` fail as if NeMo were not installed."""

    def find_spec(self, name, path=None, target=None):
        if name == "nemo" or name.startswith("nemo."):
            raise ImportError(f"No module named {name!r} (blocked by the test)")
        return None


def main() -> int:
    root, data_dir, steps, resume, block = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1", \
        sys.argv[5] == "1"
    if block:
        sys.meta_path.insert(0, _BlockNemo())
    sys.path.insert(0, str(Path(__file__).parents[1]))
    from nemo_runs import tiny_profile

    from lane.core.reasons import LaneError
    from lane.core.stage import StageRun
    from lane.nemo.train import train_voice

    meta = json.loads((data_dir / "ds.json").read_text())
    ds = SimpleNamespace(**{k: (Path(v) if k.endswith(("manifest", "_dir")) else v) for k, v in meta.items()})
    st = StageRun.open("train", root=root, run_id="resume-run")
    try:
        with st.guard():
            r = train_voice(st, tiny_profile(steps), ds, out_dir=st.stage_dir / "model", weights_manifest=None,
                            allow_from_scratch=False, resume=resume)
    except LaneError as err:
        print(f"LANE_ERROR {err.code}", flush=True)
        return 3
    print(f"DONE steps={r.steps} start={st.stats_.get('fastpitch_start_step')}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
