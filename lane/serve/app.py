"""The FastAPI application of `lane serve` (see lane/serve/__init__.py for the endpoint table).

`create_app(settings)` loads the live voices, then answers; a background task looks at the bundles
again every `rescan_s` seconds so a newly promoted voice is served without a restart. The middleware,
outermost first: security.Guard (Host, Origin, body limits, counting, 500s), then Starlette's
CORSMiddleware when serve.allowed_origins lists any origin.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware

from ..core.reasons import LaneError
from .metrics import Metrics
from .routes import add_routes
from .security import Guard
from .settings import ServeSettings
from .state import ServerState, error_response
from .synth import Synthesizer
from .training import JobQueue
from .voices import Loader, Registry, load_engine

EXPOSED = ["Retry-After", "retry-after-ms", "X-Voice", "X-Sample-Rate", "X-Voice-Lane-Unpromoted"]


def _handlers(app: FastAPI, state: ServerState) -> None:
    async def lane_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LaneError)
        return error_response(state, exc, request.url.path)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        path = request.url.path
        if exc.status_code == 404:
            return error_response(state, LaneError("not_found", f"no endpoint {path}"), path)
        if exc.status_code == 405:
            return error_response(state, LaneError("request_invalid", f"{request.method} is not allowed on {path}"), path)
        return error_response(state, LaneError("request_invalid", str(exc.detail)), path)

    async def validation_error(request: Request, exc: Exception) -> Response:
        return error_response(state, LaneError("request_invalid", str(exc)[:500]), request.url.path)

    app.add_exception_handler(LaneError, lane_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)


async def rescan_forever(state: ServerState) -> None:
    while True:
        await asyncio.sleep(state.settings.rescan_s)
        try:
            voices = await asyncio.to_thread(state.registry.refresh)
            state.metrics.voices.set(len(voices))
        except Exception as exc:  # keep serving what is loaded
            print(f"[serve] rescan failed: {type(exc).__name__}: {exc}", flush=True)


def _lifespan(state: ServerState) -> Any:
    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(rescan_forever(state))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            state.synth.close()
            if state.own_jobs and state.jobs is not None:
                state.jobs.close()

    return lifespan


def create_app(settings: ServeSettings, *, jobs: JobQueue | None = None, loader: Loader = load_engine,
               registry: Registry | None = None) -> FastAPI:
    """The application over `settings`, its voices loaded. A single bundle directory that may not be
    served is refused here (LaneError bundle_not_promoted / bundle_invalid), as before."""
    metrics = Metrics()
    registry = registry or Registry(settings, loader)
    voices = registry.refresh()
    metrics.voices.set(len(voices))
    if (settings.bundles / "manifest.json").is_file() and not voices:
        why = next(iter(registry.refused.values()), "bundle_not_promoted: not servable")
        code, _, detail = why.partition(": ")
        raise LaneError(code if code in ("bundle_invalid", "bundle_not_promoted") else "bundle_not_promoted",
                        f"{settings.bundles}: {detail}")
    state = ServerState(settings, registry, Synthesizer(settings, metrics), metrics, jobs)
    app = FastAPI(title="voice-lane", docs_url=None, redoc_url=None, openapi_url=None, lifespan=_lifespan(state))
    app.state.lane = state
    _handlers(app, state)
    add_routes(app, state)
    if settings.allowed_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.allowed_origins),
                           allow_methods=["GET", "POST"], allow_headers=["*"],
                           expose_headers=EXPOSED, max_age=600)
    app.add_middleware(Guard, settings=settings, metrics=metrics)
    return app
