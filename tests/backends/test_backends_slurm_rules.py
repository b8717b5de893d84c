"""The Slurm backend's rules without a cluster: options from the config, the job script (rendered,
and its probe run by bash), what scontrol and sacct say, sbatch's complaints, terminal states to
reason codes, the requeue-once policy, and the stub and scheduler_unavailable through the real CLI."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from lane.backends import slurm
from lane.backends.slurm import (
    Container,
    JobInfo,
    JobSpec,
    SlurmOptions,
    classify_submit_error,
    directives,
    job_info,
    lane_command,
    map_outcome,
    next_action,
    parse_job_line,
    parse_sacct,
    render_script,
)
from lane.core.reasons import LaneError

MANAGED_LINE = "[tts-prod] status=blocked reason=managed_job_not_implemented"
SCONTROL = ("JobId=17 JobName=lane-R UserId=root(0) JobState=TIMEOUT Reason=TimeLimit Dependency=(null) Requeue=1 "
            "Restarts=1 BatchFlag=1 ExitCode=0:15 RunTime=00:01:13 TimeLimit=00:01:00 NodeList=vm BatchHost=vm "
            "Command=/w s/runs/R/slurm/attempt-1.sbatch WorkDir=/w s StdOut=/w s/runs/R/slurm/slurm-17.out")


def _spec(tmp_path: Path, **kw: Any) -> JobSpec:
    args = dict(run_id="R1", lane="tts_prod_train_nemo", root=tmp_path, slurm_dir=tmp_path / "runs" / "R1" / "slurm",
                args=("run", "--backend", "local", "--root", str(tmp_path), "--resume", "R1"),
                python="/venv/bin/python", token="tok123", env=(("LANE_RUN_ID", "R1"), ("PYTHONPATH", "/a b")))
    args.update(kw)
    return JobSpec(**args)


# ------------------------------------------------------------------------------------------ options
def test_options_from_the_config_section() -> None:
    opts = SlurmOptions.from_config({
        "engine": "slurm", "partition": "gpu", "gres": "gpu:a100:2", "cpus_per_task": 8, "mem": "64G", "time": 240,
        "account": "tts", "qos": "high", "extra_sbatch": ["#SBATCH --constraint=a100", "--exclusive"],
        "container": {"runtime": "pyxis", "image": "nvcr.io#nvidia/pytorch:24.01-py3", "mounts": ["/data:/data"]},
        "poll_s": 2, "requeue_on": ["node_fail"], "max_requeues": 2, "setup": ["module load cuda/12"]})
    assert (opts.partition, opts.gres, opts.cpus_per_task, opts.mem, opts.time) == ("gpu", "gpu:a100:2", 8, "64G", "240")
    assert opts.extra_sbatch == ("--constraint=a100", "--exclusive")
    assert opts.container == Container("pyxis", "nvcr.io#nvidia/pytorch:24.01-py3", ("/data:/data",), "lane")
    assert (opts.poll_s, opts.requeue_on, opts.max_requeues, opts.setup) == (2.0, ("NODE_FAIL",), 2, ("module load cuda/12",))
    assert SlurmOptions.from_config({"engine": "slurm"}) == SlurmOptions()


@pytest.mark.parametrize("cfg", [
    {"partition": "gpu debug"}, {"account": 'a"b'}, {"qos": "x\ny"}, {"partitions": "gpu"},
    {"extra_sbatch": ["constraint=a100"]}, {"extra_sbatch": "--exclusive"}, {"cpus_per_task": 0},
    {"poll_s": "soon"}, {"container": {"runtime": "docker", "image": "x"}}, {"container": {"runtime": "pyxis"}},
    {"setup": ["a\nb"]}, {"max_requeues": True},
])
def test_options_refuse_what_a_job_script_cannot_hold(cfg: dict[str, Any]) -> None:
    with pytest.raises(LaneError) as err:
        SlurmOptions.from_config(cfg)
    assert err.value.code == "config_invalid"


def test_the_schema_accepts_the_documented_example(tmp_path: Path, repo_root: Path) -> None:
    from lane.core.config import validate_config_file

    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "schemas").symlink_to(repo_root / "configs" / "schemas")
    cfg = tmp_path / "lane.yaml"
    cfg.write_text(yaml.safe_dump({"managed_job": {
        "engine": "slurm", "partition": "gpu", "gres": "gpu:1", "cpus_per_task": 8, "mem": "32G", "time": "04:00:00",
        "account": "tts", "qos": "normal", "extra_sbatch": ["--constraint=a100"],
        "container": {"runtime": "apptainer", "image": "/shared/images/voice-lane.sif"}, "poll_s": 5},
        "jobs": {"backend": "managed_job", "concurrency": 2, "data_root": "data"}}))
    validate_config_file(cfg, tmp_path)
    cfg.write_text(yaml.safe_dump({"managed_job": {"engine": "pbs"}}))
    with pytest.raises(LaneError, match="managed_job/engine"):
        validate_config_file(cfg, tmp_path)


# ------------------------------------------------------------------------------------------ the script
def test_script_lists_the_options_as_sbatch_lines(tmp_path: Path) -> None:
    opts = SlurmOptions(partition="gpu", gres="gpu:1", gpus="1", cpus_per_task=8, mem="32G", time="04:00:00",
                        account="tts", qos="high", extra_sbatch=("--constraint=a100",), setup=("module load cuda",))
    spec = _spec(tmp_path)
    text = render_script(opts, spec)
    sbatch = [line for line in text.splitlines() if line.startswith("#SBATCH")]
    out = spec.slurm_dir / "slurm-%j.out"
    assert sbatch == ["#SBATCH --job-name=lane-R1", f"#SBATCH --chdir={tmp_path}", f"#SBATCH --output={out}",
                      "#SBATCH --open-mode=append", "#SBATCH --requeue", "#SBATCH --export=ALL",
                      "#SBATCH --partition=gpu", "#SBATCH --gres=gpu:1", "#SBATCH --gpus=1", "#SBATCH --cpus-per-task=8",
                      "#SBATCH --mem=32G", "#SBATCH --time=04:00:00", "#SBATCH --account=tts", "#SBATCH --qos=high",
                      "#SBATCH --constraint=a100"]
    assert "export PYTHONPATH='/a b'" in text
    assert text.index("module load cuda") < text.index("exec /venv/bin/python -m lane run --backend local")
    assert text.rstrip().endswith("--resume R1")
    assert subprocess.run(["bash", "-n"], input=text, text=True).returncode == 0


def test_a_gpu_request_tells_the_runner_to_check_for_one() -> None:
    """gres/gpus reserve a GPU; the job exports LANE_REQUIRE_GPU so the runner on the node checks
    it really has one (lane.core.gpu) instead of training on the CPU."""
    from types import SimpleNamespace

    from lane.backends.slurm_job import job_env
    from lane.core.config import Settings

    ctx: Any = SimpleNamespace(settings=Settings(), run_id="RID", env={})
    assert "LANE_REQUIRE_GPU" not in dict(job_env(ctx, SlurmOptions()))
    assert dict(job_env(ctx, SlurmOptions(gres="gpu:1")))["LANE_REQUIRE_GPU"] == "slurm gres=gpu:1 gpus="
    assert "LANE_REQUIRE_GPU" in dict(job_env(ctx, SlurmOptions(gpus="2")))
    assert "LANE_REQUIRE_GPU" not in dict(job_env(ctx, SlurmOptions(gres="tmpdisk:10")))


def test_paths_with_spaces_are_quoted_in_sbatch_lines(tmp_path: Path) -> None:
    root = tmp_path / "my work"
    spec = _spec(tmp_path, root=root, slurm_dir=root / "runs" / "R1" / "slurm")
    lines = render_script(SlurmOptions(), spec).splitlines()
    assert f'#SBATCH --chdir="{root}"' in lines
    assert f'#SBATCH --output="{root}/runs/R1/slurm/slurm-%j.out"' in lines
    with pytest.raises(LaneError):
        render_script(SlurmOptions(), _spec(tmp_path, root=tmp_path / 'a"b'))


def test_container_commands(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    pyxis = lane_command(SlurmOptions(container=Container("pyxis", "nvcr.io#nvidia/pytorch:24.01", ("/d:/d",))), spec)
    assert pyxis[:5] == ["srun", "--ntasks=1", "--container-image=nvcr.io#nvidia/pytorch:24.01",
                         f"--container-mounts={tmp_path}:{tmp_path},/d:/d", f"--container-workdir={tmp_path}"]
    assert pyxis[5:8] == ["lane", "run", "--backend"]
    app = lane_command(SlurmOptions(container=Container("apptainer", "/img/lane.sif")), spec)
    assert app[:8] == ["apptainer", "exec", "--nv", "--bind", str(tmp_path), "--pwd", str(tmp_path), "/img/lane.sif"]
    assert app[8] == "lane"
    assert lane_command(SlurmOptions(), spec)[:3] == ["/venv/bin/python", "-m", "lane"]
    assert directives(SlurmOptions(job_name="tts"), spec)[0] == "--job-name=tts"


def test_the_script_reads_the_probe_back_before_it_runs_anything(tmp_path: Path) -> None:
    """The script run by bash (no Slurm): without the probe it stops with the shared-fs exit; with
    it, it acknowledges and execs the lane command (here /bin/echo stands in for Python)."""
    spec = _spec(tmp_path, python="/bin/echo")
    spec.slurm_dir.mkdir(parents=True)
    script = spec.slurm_dir / "attempt-1.sbatch"
    script.write_text(render_script(SlurmOptions(), spec))
    env = {**os.environ, "SLURM_JOB_ID": "42"}
    missing = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env)
    assert missing.returncode == slurm.SHARED_FS_EXIT
    assert "shared_fs_unavailable: cannot read" in missing.stderr and not (spec.slurm_dir / "ack-42").exists()
    (spec.slurm_dir / "probe").write_text("wrong\n")
    assert subprocess.run(["bash", str(script)], capture_output=True, env=env).returncode == slurm.SHARED_FS_EXIT
    (spec.slurm_dir / "probe").write_text("tok123\n")
    ok = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines()[0].startswith("slurm: job 42 on ")
    assert ok.stdout.splitlines()[-1] == f"-m lane run --backend local --root {tmp_path} --resume R1"
    assert (spec.slurm_dir / "ack-42").read_text().startswith("42 0 ")


# ------------------------------------------------------------------------------------------ job state
def test_scontrol_and_sacct_lines() -> None:
    fields = parse_job_line(SCONTROL)
    assert fields["WorkDir"] == "/w s" and fields["StdOut"] == "/w s/runs/R/slurm/slurm-17.out"
    info = job_info(fields, "17")
    assert info == JobInfo("17", "TIMEOUT", "TimeLimit", "0:15", 1, "vm", "00:01:13", "00:01:00", "scontrol")
    assert info.terminal
    assert job_info({"JobState": "COMPLETING"}, "3").terminal is False
    acct = parse_sacct("16|CANCELLED by 0|0:15|00:00:03|vm\n17|COMPLETED|0:0|00:00:09|vm\n", "16")
    assert acct is not None and (acct.state, acct.exit_code, acct.node, acct.source) == ("CANCELLED", "0:15", "vm", "sacct")
    assert parse_sacct("", "16") is None


@pytest.mark.parametrize(("said", "code"), [
    ("sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)", "scheduler_unavailable"),
    ("sbatch: error: Batch job submission failed: Socket timed out on send/recv operation", "scheduler_unavailable"),
    ('sbatch: error: Munge encode failed: Failed to access "/x/munge.socket"', "scheduler_unavailable"),
    ("sbatch: error: s_p_parse_file: cannot stat file /nonexistent/slurm.conf", "scheduler_unavailable"),
    ("sbatch: error: Batch job submission failed: Invalid partition name specified", "job_rejected"),
    ("sbatch: error: Batch job submission failed: Invalid account or account/partition combination specified", "job_rejected"),
    ("sbatch: error: Batch job submission failed: Invalid generic resource (gres) specification", "job_rejected"),
])
def test_sbatch_complaints(said: str, code: str) -> None:
    assert classify_submit_error(said) == code


RUNNER_FAILED = {"run_id": "R", "status": "failed", "reason": "stage_failed", "detail": "boom", "exit_code": 4}
RUNNER_OK = {"run_id": "R", "status": "completed", "reason": "ok", "detail": "", "exit_code": 0}
OOM_OUT = "slurmstepd-vm: error: StepId=17.batch exceeded memory limit (128327680 > 104857600), being killed\n"


@pytest.mark.parametrize(("state", "runner", "ack", "output", "exit_code", "reason", "from_runner"), [
    ("COMPLETED", RUNNER_OK, True, "", "0:0", "ok", True),
    ("FAILED", RUNNER_FAILED, True, "", "4:0", "stage_failed", True),
    ("FAILED", None, True, OOM_OUT, "0:9", "job_oom", False),
    ("FAILED", RUNNER_FAILED, True, OOM_OUT, "0:9", "job_oom", False),  # killed by slurmstepd: the runner's is older
    ("OUT_OF_MEMORY", None, True, "", "0:125", "job_oom", False),
    ("TIMEOUT", RUNNER_FAILED, True, "", "0:15", "job_timeout", False),  # the runner saw SIGTERM: interrupted
    ("DEADLINE", None, True, "", "0:15", "job_timeout", False),
    ("CANCELLED", None, False, "", "0:15", "job_cancelled", False),
    ("FAILED", None, False, "", "1:0", "shared_fs_unavailable", False),  # the output could not even be opened
    ("FAILED", None, True, "", "97:0", "shared_fs_unavailable", False),
    ("FAILED", None, True, "", "127:0", "job_failed", False),  # e.g. the python named in the script is missing
    ("NODE_FAIL", None, True, "", "0:0", "job_failed", False),
    ("BOOT_FAIL", None, False, "", "0:0", "job_failed", False),
])
def test_terminal_states_map_to_reasons(state: str, runner: dict[str, Any] | None, ack: bool, output: str,
                                        exit_code: str, reason: str, from_runner: bool) -> None:
    out = map_outcome(JobInfo("9", state, exit_code=exit_code, time_limit="00:01:00"), runner, ack_seen=ack, output=output)
    assert (out.reason, out.from_runner) == (reason, from_runner), out
    if not from_runner:
        assert out.detail.startswith(f"slurm job 9 ended {state}") and out.status == ("blocked" if reason == "shared_fs_unavailable" else "failed")
    assert slurm.STATE_REASONS[state] in (None, reason) or state in ("FAILED", "COMPLETED")


@pytest.mark.parametrize(("state", "restarts", "action"), [
    ("RUNNING", 0, "wait"), ("PENDING", 1, "wait"), ("COMPLETED", 1, "settle"), ("NODE_FAIL", 0, "requeue"),
    ("PREEMPTED", 0, "requeue"), ("NODE_FAIL", 1, "give_up"), ("RUNNING", 2, "give_up"), ("BOOT_FAIL", 0, "settle"),
    ("TIMEOUT", 0, "settle"),
])
def test_requeue_once(state: str, restarts: int, action: str) -> None:
    assert next_action(JobInfo("1", state, restarts=restarts), SlurmOptions()) == action


class FakeClient:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def requeue(self, job_id: str) -> str:
        self.calls.append(("requeue", job_id))
        return ""

    def cancel(self, job_id: str) -> str:
        self.calls.append(("cancel", job_id))
        return ""


def test_advance_requeues_a_node_failure_once_then_gives_up(tmp_path: Path) -> None:
    from lane.backends import slurm_job

    run_dir = tmp_path / "runs" / "R"
    (run_dir / "slurm").mkdir(parents=True)
    slurm_job.update_job(tmp_path, "R", engine="slurm", lane="tts_prod_train_nemo", job_id="5", settled=False)
    client: Any = FakeClient()
    said: list[str] = []
    assert slurm_job.advance(tmp_path, "R", JobInfo("5", "NODE_FAIL"), SlurmOptions(), client, said.append) is None
    assert client.calls == [("requeue", "5")] and "requeued" in said[0]
    assert (slurm_job.read_job(tmp_path, "R") or {})["requeued_by_lane"] == 1
    out = slurm_job.advance(tmp_path, "R", JobInfo("5", "NODE_FAIL", restarts=1), SlurmOptions(), client, said.append)
    assert out is not None and out.reason == "job_failed" and "not requeued again" in out.detail
    assert client.calls == [("requeue", "5")]
    st = (tmp_path / "runs" / "R" / "train_status.json").read_text()
    assert '"reason": "job_failed"' in st
    # settled once: asking again gives the same outcome and no second ledger entry
    again = slurm_job.settle(tmp_path, "R", JobInfo("5", "COMPLETED"))
    assert again == out
    assert (tmp_path / "reports" / "ledger.jsonl").read_text().count('"job_end"') == 1


# ------------------------------------------------------------------------------------------ through the CLI
def _config(ws: Path, **sections: Any) -> None:
    path = ws / "configs" / "lane.yaml"
    data = yaml.safe_load(path.read_text())
    data.update(sections)
    path.write_text(yaml.safe_dump(data))


def test_stub_without_an_engine_keeps_the_seed_line(ws: Path, lane_cli: Callable[..., Any]) -> None:
    for section in ({}, {"managed_job": {"partition": "gpu", "poll_s": 1}}):
        _config(ws, **section)
        done = lane_cli(ws, "run", "--backend", "managed_job", "--audio", "data/speech.wav")
        assert done.rc == 2, done.out + done.err
        assert done.out.strip().splitlines()[-1] == MANAGED_LINE
        assert done.train_status()["reason"] == "managed_job_not_implemented"
        assert not (ws / "runs").exists()


def test_detach_needs_the_managed_backend(ws: Path, lane_cli: Callable[..., Any]) -> None:
    done = lane_cli(ws, "run", "--detach", "--audio", "data/speech.wav")
    assert done.rc == 3 and "reason=config_invalid" in done.last_status
    assert "--detach" in done.train_status()["detail"]


def test_no_sbatch_is_scheduler_unavailable(ws: Path, lane_cli: Callable[..., Any], tmp_path: Path) -> None:
    _config(ws, managed_job={"engine": "slurm"})
    bare = tmp_path / "bin"
    bare.mkdir()
    done = lane_cli(ws, "run", "--backend", "managed_job", "--audio", "data/speech.wav", env={"PATH": str(bare)})
    assert done.rc == 2, done.out + done.err
    assert done.last_status == "[tts-prod] status=blocked reason=scheduler_unavailable lane=tts_prod_train_nemo"
    st = done.train_status()
    assert st["reason"] == "scheduler_unavailable" and "no `sbatch` on PATH" in st["detail"]


def test_missing_slurm_conf_is_scheduler_unavailable_at_once(ws: Path, lane_cli: Callable[..., Any],
                                                             tmp_path: Path) -> None:
    """sbatch itself would retry a missing SLURM_CONF for 60 s; the backend checks it first."""
    _config(ws, managed_job={"engine": "slurm"})
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "sbatch").write_text("#!/bin/sh\nsleep 60\n")
    (fake / "sbatch").chmod(0o755)
    done = lane_cli(ws, "run", "--backend", "managed_job", "--audio", "data/speech.wav",
                    env={"PATH": f"{fake}:{os.environ['PATH']}", "SLURM_CONF": str(tmp_path / "nope.conf")}, timeout=50)
    assert done.rc == 2 and "reason=scheduler_unavailable" in done.last_status
    assert "SLURM_CONF names a missing file" in done.train_status()["detail"]


# ------------------------------------------------------------------------------------------ following
def test_tail_returns_complete_new_lines(tmp_path: Path) -> None:
    from lane.backends.slurm_job import Tail

    out = tmp_path / "slurm-1.out"
    tail = Tail(out)
    assert tail.read() == []  # not there yet
    out.write_bytes(b"one\ntw")
    assert tail.read() == ["one"]
    with open(out, "ab") as f:
        f.write("o \u00e9\nthree\n".encode())
    assert tail.read() == ["two \u00e9", "three"]
    out.write_bytes(b"again\n")  # truncated (a requeue without --open-mode=append): from the start
    assert tail.read() == ["again"]


def test_echo_drives_the_bar_and_holds_back_the_final_line(monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from lane.backends.slurm_job import Echo
    from lane.runner import stream

    monkeypatch.setattr(stream, "want_bar", lambda _out: False)
    plain = Echo()
    for line in ("runner: stage train: start", "PROGRESS stage=train step=2 total=4 pct=50.0",
                 "[tts-prod] status=completed reason=ok run_id=R lane=L"):
        plain.line(line)
    plain.close()
    assert capsys.readouterr().out.splitlines() == ["runner: stage train: start", "PROGRESS stage=train step=2 total=4 pct=50.0"]
    assert plain.final == "[tts-prod] status=completed reason=ok run_id=R lane=L" and plain.counts["PROGRESS"] == 1
    monkeypatch.setattr(stream, "want_bar", lambda _out: True)  # a TTY: the same Rich bar a local run shows
    tty = Echo()
    assert tty.bar is not None
    tty.line("PROGRESS stage=train step=3 total=4 pct=75.0")
    task = tty.bar.progress.tasks[tty.bar.tasks["train"]]
    assert (task.completed, task.total) == (3, 4)
    tty.close()
