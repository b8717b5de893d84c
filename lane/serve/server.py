"""Running the application: uvicorn (HTTP/1.1 through h11, with the connection layer of
lane/serve/protocol.py), optionally the Wyoming server in the same event loop, in the foreground
(`serve`, what `lane serve` calls) or in a background thread (`ServerThread`, for the tests and the
benchmarks).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
from typing import Any

import uvicorn

from ..core.reasons import LaneError
from .protocol import Gate, protocol_for
from .settings import ServeSettings


def uvicorn_server(app: Any, settings: ServeSettings, *, log_level: str = "info") -> uvicorn.Server:
    """uvicorn over `app` with the lane's connection layer (its limits replace uvicorn's
    limit_concurrency, which answers plain-text 503s to everyone once idle sockets fill it)."""
    state = app.state.lane
    gate = Gate(settings, state.metrics, state.synth.admission.retry_after)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, http=protocol_for(gate),
                            ws="none", lifespan="on", log_level=log_level, access_log=False, server_header=False,
                            proxy_headers=False, timeout_keep_alive=max(1, math.ceil(settings.idle_timeout_s)),
                            limit_concurrency=None)
    return uvicorn.Server(config)


def bound_port(server: uvicorn.Server) -> int:
    return int(server.servers[0].sockets[0].getsockname()[1])


async def run_all(server: uvicorn.Server, app: Any, settings: ServeSettings,
                  wyoming_started: asyncio.Event | None = None) -> None:
    """uvicorn until it exits, with the Wyoming server beside it when settings.wyoming is set."""
    task = None
    if settings.wyoming:
        from .wyoming import serve_wyoming

        task = asyncio.create_task(serve_wyoming(app.state.lane, settings.wyoming, wyoming_started))
    try:
        await server.serve()
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def banner(app: Any, settings: ServeSettings, port: int) -> str:
    state = app.state.lane
    voices = ", ".join(state.registry.voices) or "none yet"
    lines = [f"serving {len(state.registry.voices)} voice(s) ({voices}) on http://{settings.host}:{port}"]
    lines += [f"  not served: {vid}: {why}" for vid, why in state.registry.refused.items()]
    if settings.allow_unpromoted:
        lines.append("WARNING: --allow-unpromoted: these voices are NOT promoted GO voices (development only); "
                     "every response says so in X-Voice-Lane-Unpromoted")
    lines.append("training endpoints: " + ("token required" if settings.token else "disabled (no token configured)"))
    return "\n".join(lines)


def serve(settings: ServeSettings) -> None:
    """`lane serve`: build the app (refusing a single bundle that may not be served), then run."""
    from .app import create_app

    app = create_app(settings)
    server = uvicorn_server(app, settings)
    print(banner(app, settings, settings.port), flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_all(server, app, settings))


class ServerThread:
    """The server on a background thread (port 0 picks a free one): `with ServerThread(app, s) as url:`."""

    def __init__(self, app: Any, settings: ServeSettings, *, log_level: str = "warning") -> None:
        self.app = app
        self.settings = settings
        self.server = uvicorn_server(app, settings, log_level=log_level)
        self.thread: threading.Thread | None = None
        self.wyoming_started = threading.Event()
        self.error: BaseException | None = None
        self.loop: asyncio.AbstractEventLoop | None = None  # the server's event loop, once running

    def _run(self) -> None:
        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            started = asyncio.Event()
            waiter = asyncio.create_task(started.wait())
            waiter.add_done_callback(lambda _t: self.wyoming_started.set())
            await run_all(self.server, self.app, self.settings, started)
            waiter.cancel()

        try:
            asyncio.run(main())
        except BaseException as exc:  # surfaced by start()
            self.error = exc

    def start(self, timeout: float = 60.0) -> str:
        self.thread = threading.Thread(target=self._run, name="lane-serve", daemon=True)
        self.thread.start()
        for _ in range(int(timeout * 20)):
            if self.server.started or self.error is not None or not self.thread.is_alive():
                break
            threading.Event().wait(0.05)
        if not self.server.started:
            raise LaneError("internal_error", f"server did not start: {self.error!r}")
        if self.settings.wyoming and not self.wyoming_started.wait(timeout):
            raise LaneError("internal_error", "the Wyoming server did not start")
        return f"http://{self.settings.host}:{bound_port(self.server)}"

    @property
    def port(self) -> int:
        return bound_port(self.server)

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=30)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
