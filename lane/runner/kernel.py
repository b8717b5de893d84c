"""Running one notebook: the kernel to use, papermill with live output, the exception -> reason
mapping, and the HTML rendering of the executed notebook.

papermill, nbclient, nbconvert and jupyter_client are imported inside functions: the CLI imports
the runner package, and `lane --help` must stay fast.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..core.config import Settings
from ..core.fsutil import atomic_write_json, read_json
from ..core.reasons import REASONS
from .stream import LineSplitter

KERNEL_START_ATTEMPTS = 3
_LANE_ERROR_VALUE = re.compile(r"^\s*([a-z][a-z0-9_]*)(?::\s*(.*))?$", re.S)


# ------------------------------------------------------------------------------------ kernel choice
def _is_same_python(argv0: str) -> bool:
    if argv0 in ("python", "python3", f"python{sys.version_info[0]}.{sys.version_info[1]}"):
        return True  # jupyter_client substitutes sys.executable for these
    return os.path.dirname(os.path.abspath(argv0)) == os.path.dirname(os.path.abspath(sys.executable))


def choose_kernel(settings: Settings, root: Path) -> str:
    """The kernel to run stages with: the configured one, else a kernelspec that runs this
    interpreter (voice-lane, then python3), else a private spec for sys.executable."""
    if settings.kernel_name:
        return settings.kernel_name
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    ksm = KernelSpecManager()
    for name in ("voice-lane", "python3"):
        try:
            spec = ksm.get_kernel_spec(name)
        except NoSuchKernel:
            continue
        if spec.argv and _is_same_python(spec.argv[0]):
            return name
    data_dir = root / ".lane" / "jupyter"
    kdir = data_dir / "kernels" / "lane-python"
    kdir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(kdir / "kernel.json", {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "voice-lane runner python", "language": "python"})
    os.environ["JUPYTER_PATH"] = os.pathsep.join([str(data_dir), *filter(None, [os.environ.get("JUPYTER_PATH")])])
    return "lane-python"


# ------------------------------------------------------------------------------------ execution
@contextlib.contextmanager
def _env(**values: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def _quiet_papermill() -> Iterator[None]:
    """papermill warns for every injected parameter the notebook does not declare: noise here."""
    logger = logging.getLogger("papermill")
    old = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(old)


@contextlib.contextmanager
def _ipc_kernels() -> Iterator[type]:
    """A kernel manager whose kernels talk over unix sockets in a private directory, not TCP on
    loopback: nothing else on the machine can connect to them (ipykernel warns about unencrypted TCP),
    and kernels starting at the same moment cannot race for a port."""
    import shutil
    import tempfile

    from jupyter_client.manager import AsyncKernelManager

    sockets = Path(tempfile.mkdtemp(prefix="lane-kernel-"))  # short: a unix socket path has ~100 bytes

    class IpcKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs: Any) -> None:
            kwargs.setdefault("transport", "ipc")
            kwargs.setdefault("ip", str(sockets / "k"))
            super().__init__(**kwargs)

    try:
        yield IpcKernelManager
    finally:
        shutil.rmtree(sockets, ignore_errors=True)


def _died_at_start(exc: BaseException) -> bool:
    return "before replying to kernel_info" in str(exc)  # jupyter_client raises a RuntimeError with this text


def execute_notebook(nb_in: Path, nb_out: Path, params: Mapping[str, Any], *, kernel: str, cwd: Path,
                     timeout_s: int, out: LineSplitter, err: LineSplitter,
                     on_retry: Any = None) -> None:
    """Execute `nb_in` into `nb_out` with papermill, streaming the kernel's stdout/stderr into the
    splitters. Raises whatever papermill raises (see `classify_exception`).

    The kernel talks over unix sockets (`_ipc_kernels`). A kernel that dies before replying to its
    first request has executed nothing yet, so such a start is retried (`on_retry(attempt, exc)` is told)."""
    import papermill as pm

    for attempt in range(1, KERNEL_START_ATTEMPTS + 1):
        try:
            with _env(PYTHONUNBUFFERED="1"), _quiet_papermill(), _ipc_kernels() as manager:
                pm.execute_notebook(
                    str(nb_in), str(nb_out), parameters=dict(params), kernel_name=kernel,
                    progress_bar=False, log_output=False, stdout_file=out, stderr_file=err,
                    execution_timeout=int(timeout_s), start_timeout=180,
                    cwd=str(cwd), request_save_on_cell_execute=True, kernel_manager_class=manager)
            return
        except Exception as exc:
            if attempt == KERNEL_START_ATTEMPTS or not _died_at_start(exc):
                raise
            if on_retry is not None:
                on_retry(attempt + 1, exc)


# ------------------------------------------------------------------------------------ failures
def _cell_label(exc: Any) -> str:
    count = getattr(exc, "exec_count", None)
    index = getattr(exc, "cell_index", None)
    if count is not None:
        return f"cell {count} (index {index})"
    return f"cell index {index}"


def _running_cell(output_nb: Path) -> str:
    """The cell that was running when execution stopped: the last one papermill gave a start time."""
    try:
        nb = read_json(output_nb)
    except (OSError, ValueError):
        return "cell ?"
    label = "cell ?"
    for i, cell in enumerate(nb.get("cells", [])):
        meta = cell.get("metadata", {}).get("papermill", {})
        if cell.get("cell_type") == "code" and meta.get("start_time"):
            count = cell.get("execution_count")
            label = f"cell {count} (index {i})" if count is not None else f"cell index {i}"
    return label


def classify_exception(exc: BaseException, output_nb: Path, timeout_s: int) -> tuple[str, str]:
    """(reason, detail) for an exception out of papermill.execute_notebook."""
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        ename, evalue = str(exc.ename), str(exc.evalue)
        if ename == "LaneError":
            m = _LANE_ERROR_VALUE.match(evalue)
            if m and m.group(1) in REASONS:
                return m.group(1), (m.group(2) or "").strip()
        return "stage_failed", f"{_cell_label(exc)}: {ename}: {evalue}"
    if isinstance(exc, CellTimeoutError):
        return "stage_timeout", f"{_running_cell(output_nb)} ran past cell_timeout_s={timeout_s}"
    if isinstance(exc, DeadKernelError):
        return "kernel_died", f"{_running_cell(output_nb)}: kernel died ({exc})".rstrip()
    if type(exc).__name__ == "NoSuchKernel":
        return "config_invalid", f"no such kernel: {exc}"
    if isinstance(exc, TimeoutError | RuntimeError) and "kernel" in str(exc).lower() and "died" in str(exc).lower():
        return "kernel_died", str(exc)
    return "stage_failed", f"{type(exc).__name__}: {exc}"


def render_html(notebook: Path, out: Path) -> Path | None:
    """The executed notebook as HTML with code cells hidden (outputs only)."""
    try:
        import nbformat
        from nbconvert import HTMLExporter

        nb = nbformat.read(str(notebook), as_version=4)
        exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
        body, _ = exporter.from_notebook_node(nb)
        out.write_text(body, encoding="utf-8")
        return out
    except Exception as exc:  # the report links what exists; a render failure must not hide the outcome
        print(f"runner: could not render {notebook.name} to HTML: {type(exc).__name__}: {exc}", file=sys.stderr)
        return None
