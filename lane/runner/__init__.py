"""The runner: execute the configured stage notebooks with papermill, gate each one, and leave the
status files, ledger entries and readiness report behind whatever happens.

For every stage in `settings.stages` (`loop`):

1. inject the parameters (root, run_id, run_dir, stage, resume, every setting, extra params) and
   execute `<notebook>` into `runs/<run_id>/<stage>.ipynb`, streaming the kernel's output live
   (`kernel`, `stream`);
2. render it to `runs/<run_id>/<stage>.html` (code cells hidden);
3. read and JSON-Schema-validate `runs/<run_id>/<stage>/result.json` (`results`);
4. decide the outcome (`outcome`, pure), gate it (lane.core.gates), append a ledger entry
   (lane.core.ledger), rewrite train_status;
5. stop at the first stage whose gate fails. On `--resume`, a stage whose inputs did not change since
   it passed is skipped (`resume`, pure planning).

Failures map to reason codes: PapermillExecutionError -> stage_failed (cell, ename, evalue), a
per-cell timeout -> stage_timeout, DeadKernelError -> kernel_died, a missing or invalid result ->
result_invalid, a LaneError raised in the notebook keeps its code (from result.json, or from the
error name and value), Ctrl-C / SIGTERM -> interrupted. The last line printed is always
`[tts-prod] status=... reason=... run_id=... lane=...`.

papermill, nbconvert and jsonschema are imported inside functions: the CLI imports this package.
"""

from __future__ import annotations

from .kernel import choose_kernel
from .loop import RunOutcome, execute_run
from .results import load_result

__all__ = ["RunOutcome", "choose_kernel", "execute_run", "load_result"]
