"""Slurm for `managed_job`: the rules, as pure functions, and a thin client around the Slurm commands.

- `SlurmOptions.from_config`: the `managed_job` section of configs/lane.yaml (partition, gres/gpus,
  cpus_per_task, mem, time, account, qos, extra #SBATCH lines, container, polling);
- `render_script`: the job script (#SBATCH lines, the shared-filesystem probe, `exec` of the lane's
  own runner: `lane run --backend local --resume RUN_ID`), kept in runs/<run_id>/slurm/;
- `parse_job_line` / `JobInfo`: what `scontrol show job -o` (or `sacct`) says about a job;
- `map_outcome`: a terminal job state (plus the runner's own train_status, the probe acknowledgement
  and the job's output) -> the run's status, reason code and exit code; `next_action`: requeue once;
- `SlurmClient`: sbatch, scontrol, sacct, scancel as argument lists with a timeout on every call
  (a hung MUNGE blocks sbatch forever), each failure to reach the scheduler `scheduler_unavailable`.

The lifecycle of one run's job (submit, follow, settle, cancel) is lane/backends/slurm_job.py.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.reasons import LaneError, exit_code, fail_status
from ..core.status import RunState

TERMINAL_STATES = frozenset({"BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL",
                             "OUT_OF_MEMORY", "PREEMPTED", "REVOKED", "TIMEOUT"})
# terminal state -> reason code; None: the runner's own final status decides (see map_outcome)
STATE_REASONS: dict[str, str | None] = {
    "COMPLETED": None, "FAILED": None, "TIMEOUT": "job_timeout", "DEADLINE": "job_timeout",
    "OUT_OF_MEMORY": "job_oom", "CANCELLED": "job_cancelled", "NODE_FAIL": "job_failed",
    "PREEMPTED": "job_failed", "BOOT_FAIL": "job_failed", "REVOKED": "job_failed",
}
SHARED_FS_EXIT = 97  # the job script's exit status when it cannot read the probe back
OUTPUT_PATTERN = "slurm-%j.out"
PROBE_FILE = "probe"
_SAFE = re.compile(r"^[^\s\"'\\]+$")
_UNQUOTABLE = re.compile(r"[\"\n\r]")
_JOB_ID = re.compile(r"^[0-9]+(_[0-9]+)?$")
_FIELD = re.compile(r"(?:^|\s)([A-Za-z][\w:/]*)=")
_OOM = re.compile(r"slurmstepd.*(exceeded (job )?memory limit|oom[-_ ]kill)|exceeded job memory limit", re.I)
_UNREACHABLE = ("unable to contact slurm controller", "socket timed out", "munge", "authentication",
                "connection refused", "zero bytes were transmitted", "cannot stat file",
                "could not establish a configuration source", "slurm_load_jobs error: unable",
                "communication connection failure", "slurmctld is down")
_STR_OPTS = ("partition", "gres", "gpus", "mem", "time", "account", "qos", "job_name", "python")


# ------------------------------------------------------------------------------------------ options
@dataclass(frozen=True)
class Container:
    runtime: str  # pyxis | apptainer
    image: str
    mounts: tuple[str, ...] = ()
    command: str = "lane"  # the lane's command inside the image


@dataclass(frozen=True)
class SlurmOptions:
    partition: str | None = None
    gres: str | None = None
    gpus: str | None = None
    cpus_per_task: int | None = None
    mem: str | None = None
    time: str | None = None
    account: str | None = None
    qos: str | None = None
    job_name: str | None = None
    extra_sbatch: tuple[str, ...] = ()
    container: Container | None = None
    python: str | None = None
    setup: tuple[str, ...] = ()
    poll_s: float = 5.0
    submit_timeout_s: float = 60.0
    requeue_on: tuple[str, ...] = ("NODE_FAIL", "PREEMPTED")
    max_requeues: int = 1
    unreachable_s: float = 300.0

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> SlurmOptions:
        """The `managed_job` section (engine aside) as options; config_invalid for anything unusable
        (the schema says the same; this also guards configs that were never validated)."""
        known = {f for f in cls.__dataclass_fields__} | {"engine"}
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise LaneError("config_invalid", f"managed_job: unknown key(s) {unknown}")
        kw: dict[str, Any] = {}
        for key in _STR_OPTS:
            if cfg.get(key) is not None:
                kw[key] = _safe(key, str(cfg[key]), allow_space=key == "python")
        for key in ("cpus_per_task", "max_requeues"):
            if cfg.get(key) is not None:
                kw[key] = _number(key, cfg[key], int, 1 if key == "cpus_per_task" else 0)
        for key in ("poll_s", "submit_timeout_s", "unreachable_s"):
            if cfg.get(key) is not None:
                kw[key] = _number(key, cfg[key], float, 0.01)
        kw["extra_sbatch"] = tuple(_directive(x) for x in _strings("extra_sbatch", cfg.get("extra_sbatch")))
        kw["setup"] = tuple(_line("setup", x) for x in _strings("setup", cfg.get("setup")))
        if cfg.get("requeue_on") is not None:
            kw["requeue_on"] = tuple(s.upper() for s in _strings("requeue_on", cfg["requeue_on"]))
        kw["container"] = _container(cfg.get("container"))
        return cls(**kw)


def _safe(key: str, value: str, allow_space: bool = False) -> str:
    if not value or (_UNQUOTABLE.search(value) if allow_space else not _SAFE.match(value)):
        raise LaneError("config_invalid", f"managed_job.{key}: {value!r} is not usable in a job script")
    return value


def _number(key: str, value: Any, kind: type, low: float) -> Any:
    try:
        out = kind(value)
    except (TypeError, ValueError):
        raise LaneError("config_invalid", f"managed_job.{key}: expected a number, got {value!r}") from None
    if isinstance(value, bool) or out < low:
        raise LaneError("config_invalid", f"managed_job.{key}: {value!r} is out of range (at least {low})")
    return out


def _strings(key: str, value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise LaneError("config_invalid", f"managed_job.{key}: expected a list of strings")
    return list(value)


def _directive(text: str) -> str:
    text = text.strip()
    if text.startswith("#SBATCH"):
        text = text[len("#SBATCH"):].strip()
    if not text.startswith("-") or _UNQUOTABLE.search(text):
        raise LaneError("config_invalid", f"managed_job.extra_sbatch: {text!r} is not an sbatch option (--name=value)")
    return text


def _line(key: str, text: str) -> str:
    if "\n" in text or "\r" in text:
        raise LaneError("config_invalid", f"managed_job.{key}: one shell line per entry")
    return text


def _container(value: Any) -> Container | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or value.get("runtime") not in ("pyxis", "apptainer") or not value.get("image"):
        raise LaneError("config_invalid", "managed_job.container: needs runtime (pyxis | apptainer) and image")
    mounts = tuple(_safe("container.mounts", m) for m in _strings("container.mounts", value.get("mounts")))
    return Container(str(value["runtime"]), _safe("container.image", str(value["image"])), mounts,
                     _safe("container.command", str(value.get("command") or "lane")))


# ------------------------------------------------------------------------------------------ the job script
@dataclass(frozen=True)
class JobSpec:
    """What one submission runs: the workspace, where its files go, and the lane command."""

    run_id: str
    lane: str
    root: Path
    slurm_dir: Path  # runs/<run_id>/slurm: the script, the probe, the acknowledgements, the output
    args: tuple[str, ...]  # `lane` arguments: run --backend local ... --resume RUN_ID
    python: str  # the interpreter that runs `-m lane` outside a container
    token: str  # what the probe file holds
    env: tuple[tuple[str, str], ...] = field(default_factory=tuple)


def output_path(slurm_dir: Path, job_id: str) -> Path:
    return slurm_dir / OUTPUT_PATTERN.replace("%j", job_id)


def ack_path(slurm_dir: Path, job_id: str) -> Path:
    """Written by the job once it has read the probe back (one per job id)."""
    return slurm_dir / f"ack-{job_id}"


def _sbatch_line(option: str) -> str:
    name, eq, value = option.partition("=")
    if eq and not _SAFE.match(value):
        if _UNQUOTABLE.search(value):
            raise LaneError("config_invalid", f"{option!r} cannot be written as an #SBATCH line")
        return f'#SBATCH {name}="{value}"'
    return f"#SBATCH {option}"


def directives(opts: SlurmOptions, spec: JobSpec) -> list[str]:
    """The sbatch options, in the order the script lists them."""
    out = [f"--job-name={opts.job_name or 'lane-' + spec.run_id}", f"--chdir={spec.root}",
           f"--output={spec.slurm_dir / OUTPUT_PATTERN}", "--open-mode=append", "--requeue", "--export=ALL"]
    for flag, value in (("partition", opts.partition), ("gres", opts.gres), ("gpus", opts.gpus),
                        ("cpus-per-task", opts.cpus_per_task), ("mem", opts.mem), ("time", opts.time),
                        ("account", opts.account), ("qos", opts.qos)):
        if value is not None:
            out.append(f"--{flag}={value}")
    return out + list(opts.extra_sbatch)


def lane_command(opts: SlurmOptions, spec: JobSpec) -> list[str]:
    """The command the script execs: the lane in this Python, or inside the configured container."""
    c = opts.container
    if c is None:
        return [spec.python, "-m", "lane", *spec.args]
    root = str(spec.root)
    if c.runtime == "pyxis":
        mounts = ",".join([f"{root}:{root}", *c.mounts])
        return ["srun", "--ntasks=1", f"--container-image={c.image}", f"--container-mounts={mounts}",
                f"--container-workdir={root}", c.command, *spec.args]
    return ["apptainer", "exec", "--nv", "--bind", ",".join([root, *c.mounts]), "--pwd", root, c.image,
            c.command, *spec.args]


def render_script(opts: SlurmOptions, spec: JobSpec) -> str:
    """The job script: readable on its own (every option an #SBATCH line, every command spelled out)."""
    q = shlex.quote
    probe = spec.slurm_dir / PROBE_FILE
    lines = ["#!/bin/bash",
             f"# voice-lane managed job for run {spec.run_id} (lane {spec.lane}), written by lane/backends/slurm.py",
             "# and kept with the run. It reads back the probe file the submitter wrote (the workspace must be on a",
             "# filesystem this node sees at the same path), then runs the lane's own runner on this node; stages",
             "# that already passed are skipped (--resume), so a requeued job goes on from the last one that passed.",
             *(_sbatch_line(d) for d in directives(opts, spec)),
             "set -uo pipefail",
             *(f"export {k}={q(v)}" for k, v in spec.env),
             'echo "slurm: job ${SLURM_JOB_ID:-?} on $(hostname) (restart ${SLURM_RESTART_COUNT:-0}) at '
             '$(date -u +%Y-%m-%dT%H:%M:%SZ)"',
             f'if [ "$(cat {q(str(probe))} 2>/dev/null)" != {q(spec.token)} ]; then',
             f'    echo "slurm: shared_fs_unavailable: cannot read {probe} back on $(hostname)" >&2',
             f"    exit {SHARED_FS_EXIT}",
             "fi",
             f'echo "${{SLURM_JOB_ID:-0}} ${{SLURM_RESTART_COUNT:-0}} $(hostname)" > '
             f'{q(str(spec.slurm_dir))}/ack-"${{SLURM_JOB_ID:-0}}"',
             *opts.setup,
             "exec " + " ".join(q(a) for a in lane_command(opts, spec))]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------ job state
@dataclass(frozen=True)
class JobInfo:
    job_id: str
    state: str  # PENDING, RUNNING, COMPLETED, ... ; UNKNOWN when no source knows the job
    reason: str = ""
    exit_code: str = ""  # status:signal, as Slurm prints it
    restarts: int = 0
    node: str = ""
    run_time: str = ""
    time_limit: str = ""
    source: str = "scontrol"

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    def as_dict(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "state": self.state, "reason": self.reason, "exit_code": self.exit_code,
                "restarts": self.restarts, "node": self.node, "run_time": self.run_time,
                "time_limit": self.time_limit, "source": self.source}


def parse_job_line(line: str) -> dict[str, str]:
    """One `scontrol show job -o` line as a dict (values may contain spaces, e.g. paths)."""
    fields: dict[str, str] = {}
    matches = list(_FIELD.finditer(line))
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(line)
        fields[m.group(1)] = line[m.end():end].strip()
    return fields


def job_info(fields: Mapping[str, str], job_id: str, source: str = "scontrol") -> JobInfo:
    state = (fields.get("JobState") or "UNKNOWN").split()[0].rstrip("+").upper()
    node = fields.get("BatchHost") or fields.get("NodeList") or ""
    try:
        restarts = int(fields.get("Restarts") or 0)
    except ValueError:
        restarts = 0
    return JobInfo(job_id, state, fields.get("Reason", ""), fields.get("ExitCode", ""), restarts,
                   "" if node in ("(null)", "None") else node, fields.get("RunTime", ""),
                   fields.get("TimeLimit", ""), source)


def parse_sacct(text: str, job_id: str) -> JobInfo | None:
    """`sacct -X -n -P -o JobID,State,ExitCode,Elapsed,NodeList` output for one job; None when absent."""
    for row in text.splitlines():
        parts = row.split("|")
        if len(parts) >= 3 and parts[0] == job_id:
            return job_info({"JobState": parts[1], "ExitCode": parts[2], "RunTime": (parts[3:4] or [""])[0],
                             "NodeList": (parts[4:5] or [""])[0]}, job_id, "sacct")
    return None


def classify_submit_error(text: str) -> str:
    """sbatch's complaint -> scheduler_unavailable (cannot reach it) or job_rejected (it said no)."""
    low = text.lower()
    return "scheduler_unavailable" if any(p in low for p in _UNREACHABLE) else "job_rejected"


# ------------------------------------------------------------------------------------------ outcomes
@dataclass(frozen=True)
class Outcome:
    status: RunState  # completed | blocked | failed
    reason: str
    detail: str
    exit_code: int
    from_runner: bool = False  # the runner's own final status (and [tts-prod] line) stands

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "reason": self.reason, "detail": self.detail, "exit_code": self.exit_code,
                "from_runner": self.from_runner}


def failed(reason: str, detail: str) -> Outcome:
    return Outcome(fail_status(reason), reason, detail, exit_code(reason))


def oom_in(output: str) -> bool:
    """Whether slurmstepd says it killed the job for its memory (no cgroups: never OUT_OF_MEMORY)."""
    return any(_OOM.search(line) for line in output.splitlines())


def map_outcome(info: JobInfo, runner: Mapping[str, Any] | None, *, ack_seen: bool, output: str) -> Outcome:
    """A terminal job -> the run's outcome. The scheduler's verdict wins where it killed the job
    (time, memory, cancel); otherwise the runner's own status, which only a job that ran it has."""
    where = f"slurm job {info.job_id} ended {info.state}" + (f" ({info.reason})" if info.reason not in ("", "None") else "") \
        + (f", exit {info.exit_code}" if info.exit_code else "") + (f" on {info.node}" if info.node else "")
    if info.state in ("TIMEOUT", "DEADLINE"):
        return failed("job_timeout", f"{where}: time limit {info.time_limit or '?'} reached after {info.run_time or '?'}")
    if info.state == "OUT_OF_MEMORY" or (info.state == "FAILED" and oom_in(output)):
        return failed("job_oom", f"{where}: over its memory limit")
    if info.state == "CANCELLED":
        return failed("job_cancelled", where)
    if info.state in ("COMPLETED", "FAILED") and runner is not None:
        return Outcome(runner["status"], str(runner["reason"]), str(runner.get("detail") or ""),
                       int(runner["exit_code"]), from_runner=True)
    if info.state in ("COMPLETED", "FAILED") and (not ack_seen or info.exit_code.startswith(f"{SHARED_FS_EXIT}:")):
        return failed("shared_fs_unavailable", f"{where}: the job never read back the probe file in the run "
                      "directory, so the workspace is not on a filesystem the node sees")
    return failed("job_failed", f"{where} without the runner's final status")


def next_action(info: JobInfo, opts: SlurmOptions) -> str:
    """What the follower does about a job now: `requeue` (a node failure or preemption, once), `give_up`
    (it happened again, or Slurm itself requeued the job more often than allowed), `settle` (any other
    terminal state), `wait` (pending or running)."""
    if info.terminal and info.state not in opts.requeue_on:
        return "settle"
    if info.terminal:
        return "requeue" if info.restarts < opts.max_requeues else "give_up"
    return "give_up" if info.restarts > opts.max_requeues else "wait"


# ------------------------------------------------------------------------------------------ the client
class SlurmClient:
    """The Slurm commands as argument lists, each with a timeout. Whatever keeps us from the scheduler
    (no client, a SLURM_CONF that names a missing file, a controller or MUNGE that does not answer)
    is LaneError(scheduler_unavailable)."""

    def __init__(self, env: Mapping[str, str] | None = None, timeout_s: float = 60.0) -> None:
        self.env = dict(os.environ if env is None else env)
        self.timeout_s = timeout_s

    def which(self, program: str) -> str | None:
        return shutil.which(program, path=self.env.get("PATH", os.defpath))

    def check(self) -> str:
        """The sbatch path, once the client is usable at all (cheap: no scheduler round trip)."""
        sbatch = self.which("sbatch")
        if sbatch is None:
            raise LaneError("scheduler_unavailable", "no `sbatch` on PATH: the Slurm client is not installed here")
        conf = self.env.get("SLURM_CONF")
        if conf and not Path(conf).is_file():  # sbatch would retry for 60 s before saying so
            raise LaneError("scheduler_unavailable", f"SLURM_CONF names a missing file: {conf}")
        return sbatch

    def call(self, program: str, *args: str, timeout: float | None = None,
             cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        exe = self.which(program)
        if exe is None:
            raise LaneError("scheduler_unavailable", f"no `{program}` on PATH: the Slurm client is not installed here")
        limit = timeout or self.timeout_s
        try:
            return subprocess.run([exe, *args], capture_output=True, text=True, timeout=limit, check=False,
                                  cwd=cwd, env=self.env, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise LaneError("scheduler_unavailable", f"`{program} {' '.join(args)}` did not answer in {limit:.0f} s "
                            "(controller or MUNGE hung?)") from None
        except OSError as exc:
            raise LaneError("scheduler_unavailable", f"cannot run {program}: {exc}") from None

    def submit(self, script: Path, cwd: Path) -> str:
        """`sbatch --parsable SCRIPT`; the job id. scheduler_unavailable or job_rejected otherwise."""
        self.check()
        proc = self.call("sbatch", "--parsable", str(script), cwd=cwd)
        job_id = proc.stdout.strip().split(";")[0]
        if proc.returncode != 0 or not _JOB_ID.match(job_id):
            said = " ".join(x.strip() for x in (proc.stderr or proc.stdout).splitlines() if x.strip())[-400:]
            raise LaneError(classify_submit_error(said), f"sbatch exited {proc.returncode}: {said or 'no output'}")
        return job_id

    def query(self, job_id: str) -> JobInfo | None:
        """The job's state from `scontrol show job` (then sacct, for a job the controller forgot);
        None when the scheduler does not answer. UNKNOWN when nothing knows the job."""
        try:
            proc = self.call("scontrol", "show", "job", "-o", job_id)
        except LaneError:
            return None
        if proc.returncode == 0 and proc.stdout.strip():
            return job_info(parse_job_line(proc.stdout.strip().splitlines()[0]), job_id)
        if "invalid job id" not in (proc.stderr or "").lower():
            return None
        if self.which("sacct") is not None:
            try:
                acct = self.call("sacct", "-X", "-n", "-P", "-j", job_id, "-o", "JobID,State,ExitCode,Elapsed,NodeList")
            except LaneError:
                return None
            found = parse_sacct(acct.stdout, job_id) if acct.returncode == 0 else None
            if found is not None:
                return found
        return JobInfo(job_id, "UNKNOWN", source="none")

    def cancel(self, job_id: str) -> str:
        """`scancel JOB_ID`; '' when accepted, else what scancel said (a job that already ended, say)."""
        proc = self.call("scancel", job_id)
        said = (proc.stderr or proc.stdout).strip()
        if proc.returncode != 0 and classify_submit_error(said) == "scheduler_unavailable":
            raise LaneError("scheduler_unavailable", f"scancel {job_id}: {said}")
        return said if proc.returncode != 0 else ""

    def requeue(self, job_id: str) -> str:
        """`scontrol requeue`; '' when done, else what scontrol said."""
        proc = self.call("scontrol", "requeue", job_id)
        return "" if proc.returncode == 0 else (proc.stderr or proc.stdout).strip() or f"rc {proc.returncode}"
