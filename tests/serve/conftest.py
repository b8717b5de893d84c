"""Fixtures of the serve tests: a workspace whose bundles/ holds a real tiny voice (the session's tiny
FastPitch bundle from tests/nemo_runs.py, Griffin-Lim vocoder) made live the way a GO run is: a passed
validation record, a signed provenance statement saying GO, and the atomic live switch; plus a server
on loopback in a background thread."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from nemo_runs import make_root
from serve_helpers import make_live, settings_for


@pytest.fixture(scope="session")
def tiny_bundle(bundle: dict[str, Any]) -> Path:
    return Path(bundle["path"])


@pytest.fixture
def served_root(tmp_path: Path, tiny_bundle: Path) -> Path:
    """A workspace with one live GO voice `tiny`."""
    root = make_root(tmp_path / "ws")
    make_live(root, tiny_bundle, "tiny", "run-go-1")
    return root


@pytest.fixture
def serve_app() -> Iterator[Any]:
    """start(root, **settings) -> (base url, app): a server on loopback, stopped after the test."""
    from lane.serve import ServerThread, create_app

    running: list[Any] = []

    def start(root: Path, jobs: Any = None, loader: Any = None, **kw: Any) -> tuple[str, Any]:
        from lane.serve.voices import load_engine

        settings = settings_for(root, **kw)
        app = create_app(settings, jobs=jobs, loader=loader or load_engine)
        thread = ServerThread(app, settings)
        app.state.server_thread = thread  # for tests that act on the server's event loop (serve_helpers.hold_slot)
        running.append(thread)
        return thread.start(), app

    yield start
    for t in running:
        t.stop()
