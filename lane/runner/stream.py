"""The stage's output, live: line splitting of the kernel's stream, the protocol state the runner
learns from it (line counts, last PROGRESS/STATS, bundle path), and the Rich bar on a TTY."""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

from ..core import protocol
from ..core.status import OrchestratorLog

BUNDLE_KIND = "voice_bundle_manifest"
# a kernel stderr line that reports an error (shown), unless it is a warning (log only)
_LOUD = re.compile(r"\b(error|exception|traceback|fatal)\b", re.I)
_WARNING = re.compile(r"\w*Warning\b|\[NeMo W |\bWARNING\b")


class LineSplitter:
    """A file-like object for papermill's stdout_file/stderr_file: splits the kernel's stream output
    into lines and hands each complete line to `on_line` as soon as it arrives."""

    def __init__(self, on_line: Callable[[str], None]) -> None:
        self._buf = ""
        self._on_line = on_line
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            self._buf += text
            *lines, self._buf = self._buf.split("\n")
        for line in lines:
            self._on_line(line.rstrip("\r"))
        return len(text)

    def flush(self) -> None:
        pass

    def drain(self) -> None:
        with self._lock:
            rest, self._buf = self._buf, ""
        if rest:
            self._on_line(rest)


class ProgressBar:
    """A Rich progress bar driven by PROGRESS lines; only on a TTY outside CI."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                                 TimeElapsedColumn(), TextColumn("{task.fields[msg]}"), transient=False)
        self.tasks: dict[str, Any] = {}
        self.progress.start()

    def update(self, line: protocol.Progress) -> None:
        if line.stage not in self.tasks:
            self.tasks[line.stage] = self.progress.add_task(line.stage, total=max(line.total, 1), msg="")
        self.progress.update(self.tasks[line.stage], completed=line.step, total=max(line.total, 1), msg=line.msg or "")

    def print(self, text: str) -> None:
        self.progress.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def stop(self) -> None:
        self.progress.stop()


def want_bar(stream: TextIO) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)()) and not os.environ.get("CI")


class Stream:
    """Everything the runner learns from the stage's stdout: it echoes every line live, sends it to the
    orchestrator log, and keeps the protocol state (counts, last PROGRESS/STATS, bundle path).

    `on_state` is called at most once a second while lines arrive, so train_status stays fresh
    without being rewritten per line."""

    def __init__(self, log: OrchestratorLog, on_state: Callable[[], None]) -> None:
        self.log = log
        self.counts = {"PROGRESS": 0, "STATS": 0, "ARTIFACT": 0}
        self.last_progress: dict[str, Any] | None = None
        self.last_stats: dict[str, Any] | None = None
        self.bundle_path: str | None = None
        self.artifacts: list[dict[str, str]] = []
        self._on_state = on_state
        self._last_flush = 0.0
        self.quiet_lines = 0  # third-party output kept in the run log only
        self.bar = ProgressBar() if want_bar(sys.stdout) else None

    def out(self, text: str) -> None:
        if self.bar:
            self.bar.print(text)
        else:
            print(text, flush=True)
        self.log.write(text)

    def on_stdout(self, text: str) -> None:
        self.out(text)
        parsed = protocol.parse_line(text)
        if parsed is None:
            return
        self.observe(parsed)
        now = time.monotonic()
        if now - self._last_flush >= 1.0:
            self._last_flush = now
            self._on_state()

    def observe(self, parsed: protocol.Line) -> None:
        """Update the protocol state from one parsed line."""
        if isinstance(parsed, protocol.Progress):
            self.counts["PROGRESS"] += 1
            self.last_progress = {"stage": parsed.stage, "step": parsed.step, "total": parsed.total,
                                  "pct": parsed.pct, "msg": parsed.msg}
            if self.bar:
                self.bar.update(parsed)
        elif isinstance(parsed, protocol.Stats):
            self.counts["STATS"] += 1
            self.last_stats = {"stage": parsed.stage, **parsed.values}
        elif isinstance(parsed, protocol.Artifact):
            self.counts["ARTIFACT"] += 1
            self.artifacts.append({"stage": parsed.stage, "kind": parsed.kind, "path": parsed.path,
                                   "sha256": parsed.sha256})
            if parsed.kind == BUNDLE_KIND:
                self.bundle_path = str(Path(parsed.path).parent.as_posix())

    def on_stderr(self, text: str) -> None:
        """The kernel's stderr is third-party output (the lane's own lines go to stdout): warnings,
        library logs, progress bars. It all goes to the run log; only a line that reports an error
        reaches the terminal too."""
        self.log.write(f"stderr: {text}")
        if not _LOUD.search(text) or _WARNING.search(text):
            self.quiet_lines += 1
            return
        if self.bar:
            self.bar.print(text)
        else:
            print(text, file=sys.stderr, flush=True)

    def warn(self, message: str) -> None:
        """A Python warning raised in the runner's own process: the run log only."""
        self.log.write(f"warning: {message.rstrip()}")
        self.quiet_lines += 1

    def restore(self, prev: Mapping[str, Any]) -> None:
        """On resume, keep what earlier attempts of the run saw: line counts, bundle path, last lines."""
        for key, value in (prev.get("line_counts") or {}).items():
            if key in self.counts and isinstance(value, int):
                self.counts[key] += value
        self.bundle_path = self.bundle_path or prev.get("bundle_path")
        self.last_progress = prev.get("last_progress")
        self.last_stats = prev.get("last_stats")

    def close(self) -> None:
        if self.bar:
            self.bar.stop()
            self.bar = None
