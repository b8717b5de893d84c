"""The thin CLI over the core (`lane status`, `lane report`, `lane ledger show|verify`, `lane reasons`),
the README reason table, the cheap `lane --help`, and Ctrl-C / SIGTERM handling of a real run."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from lane.core.reasons import table_markdown

REPO = Path(__file__).resolve().parents[2]


def lane_cli(python_exe: str, *args: str, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([python_exe, "-m", "lane", *args], capture_output=True, text=True, timeout=timeout,
                          check=False, env={**os.environ, "COLUMNS": "200"})


def test_help_imports_no_heavy_modules(python_exe: str) -> None:
    proc = subprocess.run([python_exe, "-X", "importtime", "-m", "lane", "--help"], capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "run" in proc.stdout and "ledger" in proc.stdout
    imported = {m.group(1).split(".")[0] for m in re.finditer(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)", proc.stderr, re.M)}
    assert "lane" in imported and "typer" in imported, "importtime output was not parsed"
    for heavy in ("torch", "nemo", "papermill", "nbclient", "nbconvert", "jsonschema"):
        assert heavy not in imported, f"`lane --help` imported {heavy}"


def test_readme_reason_table_is_generated(python_exe: str) -> None:
    proc = subprocess.run([python_exe, str(REPO / "scripts" / "sync_readme.py"), "--check"], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- reasons:start -->\n", 1)[1].split("<!-- reasons:end -->", 1)[0]
    assert block == table_markdown()
    cli = lane_cli(python_exe, "reasons", "--markdown")
    assert cli.returncode == 0 and cli.stdout == table_markdown()


def test_status_report_and_ledger_commands(completed_copy: tuple[Path, Any], python_exe: str) -> None:
    root, outcome = completed_copy
    js = lane_cli(python_exe, "status", "--json", "--root", str(root))
    assert js.returncode == 0, js.stderr
    data = json.loads(js.stdout)
    assert (data["run_id"], data["status"], data["reason"]) == (outcome.run_id, "completed", "ok")
    table = lane_cli(python_exe, "status", outcome.run_id, "--root", str(root))
    assert table.returncode == 0 and "validate" in table.stdout and "PASS" in table.stdout
    missing = lane_cli(python_exe, "status", "no-such-run", "--root", str(root))
    assert missing.returncode == 3 and "run_not_found" in missing.stderr

    md = root / "reports" / f"readiness-{outcome.run_id}.md"
    html = root / "reports" / f"readiness-{outcome.run_id}.html"
    md.unlink()
    html.unlink()
    rep = lane_cli(python_exe, "report", outcome.run_id, "--root", str(root))
    assert rep.returncode == 0, rep.stderr
    assert md.is_file() and html.is_file() and str(md) in rep.stdout
    assert "# Verdict: GO" in md.read_text(encoding="utf-8")
    bad = lane_cli(python_exe, "report", "no-such-run", "--root", str(root))
    assert bad.returncode == 3 and "run_not_found" in bad.stderr

    show = lane_cli(python_exe, "ledger", "show", "--root", str(root))
    assert show.returncode == 0 and show.stdout.count(outcome.run_id) == 4
    assert lane_cli(python_exe, "ledger", "verify", "--root", str(root)).returncode == 0


_INTERRUPT_SCRIPT = textwrap.dedent("""
    import sys
    from pathlib import Path
    from lane.core.config import Settings
    from lane.runner import execute_run
    root, nb = Path(sys.argv[1]), Path(sys.argv[2])
    out = execute_run(Settings(stages=["verify", "train"], cell_timeout_s=900), root,
                      notebooks={"verify": nb, "train": nb}, extra_params={"sleep_s": 600, "until": "never"})
    sys.exit(out.exit_code)
""")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_is_recorded(workspace: Path, python_exe: str, signum: int) -> None:
    script = workspace / "run_it.py"
    script.write_text(_INTERRUPT_SCRIPT)
    nb = REPO / "tests" / "fixtures" / "notebooks" / "sleeps.ipynb"
    proc = subprocess.Popen([python_exe, str(script), str(workspace), str(nb)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    lines: list[str] = []
    for line in proc.stdout:  # the readiness signal: the stage says it is inside its waiting cell
        lines.append(line.rstrip("\n"))
        if line.startswith("PROGRESS stage=verify step=1 total=2"):
            break
    assert lines and lines[-1].startswith("PROGRESS stage=verify"), lines[-10:]
    proc.send_signal(signum)
    rest, _ = proc.communicate(timeout=600)  # a hang guard only: the run ends as soon as it is interrupted
    lines += rest.splitlines()
    assert proc.returncode == 4, lines[-10:]
    run_id = next(m.group(1) for ln in lines if (m := re.match(r"runner: run (\S+) ", ln)))
    assert lines[-1] == f"[tts-prod] status=failed reason=interrupted run_id={run_id} lane=tts_prod_train_nemo"
    ts = json.loads((workspace / "artifacts" / "train_status.tts_prod_train_nemo.json").read_text())
    assert (ts["status"], ts["reason"], ts["exit_code"], ts["interrupted"]) == ("failed", "interrupted", 4, True)
    assert ts["stages"]["verify"]["reason"] == "interrupted" and "train" not in ts["stages"]
    md = (workspace / "reports" / f"readiness-{run_id}.md").read_text(encoding="utf-8")
    assert "# Verdict: NO-GO" in md and "`interrupted`" in md
    assert not (workspace / "bundles").exists(), "nothing is promoted"


if sys.platform == "win32":  # pragma: no cover
    pytestmark = pytest.mark.skip("POSIX signals")
