"""The endpoints of `lane serve` (the table is in lane/serve/__init__.py)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from ..core.reasons import LaneError
from . import speech
from .audio import FORMATS
from .metrics import CONTENT_TYPE
from .security import require_token
from .state import ServerState, error_response, page
from .training import lane_status, run_id_of, submit_args


def _public(app: FastAPI, state: ServerState) -> None:
    html, csp = page()

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        return Response(html, media_type="text/html; charset=utf-8",
                        headers={"Content-Security-Policy": csp, "X-Frame-Options": "DENY"})

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "voice": state.registry.default_id(), "voices": sorted(state.registry.voices)}

    @app.get("/readyz")
    async def readyz() -> Response:
        voices = state.registry.voices
        if voices:
            return JSONResponse({"status": "ready", "voices": sorted(voices)})
        code = "bundle_not_promoted" if state.registry.refused else "not_found"
        detail = "no live voice is being served" + "".join(f"; {k}: {v}" for k, v in state.registry.refused.items())
        answer = error_response(state, LaneError(code, detail))
        answer.status_code = 503
        return answer

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(state.metrics.render(), media_type=CONTENT_TYPE)


def _model(v: Any) -> dict[str, Any]:
    return {"id": v.id, "object": "model", "created": int(v.loaded_at), "owned_by": "voice-lane",
            "sample_rate": v.sample_rate, "run_id": v.run_id, "unpromoted": v.unpromoted}


def _openai(app: FastAPI, state: ServerState) -> None:
    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [_model(v) for v in state.registry.voices.values()]}

    @app.get("/v1/models/{voice_id}")
    async def model(voice_id: str) -> dict[str, Any]:
        return _model(await speech.pick_voice(state.registry, {"voice": voice_id}))

    @app.post("/v1/audio/speech")
    async def audio_speech(request: Request) -> Response:
        body = speech.parse_json(await request.body())
        fmt = speech.format_of(body)
        sp = await speech.prepare(state.synth, state.registry, body, "input", fmt)
        headers = speech.headers_for(sp)
        if fmt.streams:
            return StreamingResponse(await speech.streamed(state.synth, sp, "/v1/audio/speech"),
                                     media_type=fmt.media_type, headers=headers)
        t0 = time.perf_counter()
        data = await speech.whole(state.synth, sp)
        state.metrics.first_audio.labels("/v1/audio/speech").observe(time.perf_counter() - t0)
        return Response(data, media_type=fmt.media_type, headers=headers)


def _seed(app: FastAPI, state: ServerState) -> None:
    @app.post("/api/voice/speak")
    async def speak(request: Request) -> Response:
        """The seed's contract: {"text": ...} -> audio/wav (whole, with Content-Length)."""
        body = speech.parse_json(await request.body())
        sp = await speech.prepare(state.synth, state.registry, body, "text", FORMATS["wav"])
        t0 = time.perf_counter()
        data = await speech.whole(state.synth, sp)
        state.metrics.first_audio.labels("/api/voice/speak").observe(time.perf_counter() - t0)
        return Response(data, media_type="audio/wav", headers=speech.headers_for(sp))

    @app.get("/api/voice")
    async def voice(request: Request) -> dict[str, Any]:
        """The (default or ?voice=) voice's manifest summary, and every served voice's."""
        name = request.query_params.get("voice")
        chosen = await speech.pick_voice(state.registry, {"voice": name} if name else {})
        return {**chosen.summary(), "voices": [v.summary() for v in state.registry.voices.values()],
                "refused": state.registry.refused}


def _training(app: FastAPI, state: ServerState) -> None:
    def authorized(request: Request) -> None:
        require_token(state.settings, request.headers.get("authorization"))

    @app.post("/api/train/start")
    async def start(request: Request) -> Response:
        authorized(request)
        job_type, audio, options = submit_args(speech.parse_json(await request.body()))
        job = await asyncio.to_thread(state.job_queue().submit, job_type, audio, **options)
        return JSONResponse({**job, "status_url": f"/api/train/status?run_id={job.get('run_id')}"}, status_code=202)

    @app.get("/api/train/status")
    async def status(request: Request) -> dict[str, Any]:
        authorized(request)
        run_id, lane = request.query_params.get("run_id"), request.query_params.get("lane")
        if run_id:
            return await asyncio.to_thread(state.job_queue().status, run_id_of(run_id))
        return lane_status(state.settings, lane or "tts_prod_train")

    @app.post("/api/train/cancel")
    async def cancel(request: Request) -> dict[str, Any]:
        authorized(request)
        run_id = run_id_of(speech.parse_json(await request.body()).get("run_id"))
        return await asyncio.to_thread(state.job_queue().cancel, run_id)

    @app.get("/api/train/jobs")
    async def jobs(request: Request) -> dict[str, Any]:
        authorized(request)
        return {"jobs": await asyncio.to_thread(state.job_queue().list)}


def add_routes(app: FastAPI, state: ServerState) -> None:
    _public(app, state)
    _openai(app, state)
    _seed(app, state)
    _training(app, state)
