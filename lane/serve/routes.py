"""The endpoints of `lane serve` (the table is in lane/serve/__init__.py)."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, StrictStr

from ..core.reasons import LaneError
from . import speech
from .audio import FORMATS
from .metrics import CONTENT_TYPE
from .security import require_token
from .state import ServerState, error_response, page
from .training import lane_status, run_id_of, submit_args

if TYPE_CHECKING:
    from ..core.status import RunStatus
    from ..jobs.store import JobSummary


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
    async def readyz(request: Request) -> Response:
        voices = state.registry.voices
        if voices:
            return JSONResponse({"status": "ready", "voices": sorted(voices)})
        code = "bundle_not_promoted" if state.registry.refused else "not_found"
        detail = "no live voice is being served" + "".join(f"; {k}: {v}" for k, v in state.registry.refused.items())
        answer = error_response(state, LaneError(code, detail), request.url.path)
        answer.status_code = 503
        return answer

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(state.metrics.render(), media_type=CONTENT_TYPE)


def _model(v: Any) -> dict[str, Any]:
    return {"id": v.id, "object": "model", "created": int(v.loaded_at), "owned_by": "voice-lane",
            "sample_rate": v.sample_rate, "run_id": v.run_id, "unpromoted": v.unpromoted, "language": v.language,
            "description": v.description}


def _models(state: ServerState) -> list[dict[str, Any]]:
    """The voices, then the aliases (each naming the voice it speaks with), in OpenAI's model shape."""
    out = [_model(v) for v in state.registry.voices.values()]
    for alias in state.settings.aliases:
        voice = state.registry.alias(alias)
        if voice is not None and alias not in state.registry.voices:
            out.append({"id": alias, "object": "model", "created": int(voice.loaded_at), "owned_by": "voice-lane",
                        "alias_of": voice.id})
    return out


async def _speech(request: Request, state: ServerState, endpoint: str) -> Response:
    body = speech.parse(speech.SpeechRequest, await request.body())
    fmt = speech.format_of(body)
    text = speech.text_of(body.input, "input", min(state.settings.max_text_chars, speech.OPENAI_MAX_INPUT))
    names = [speech.voice_name(body.voice, "voice"), speech.voice_name(body.model, "model")]
    synth, t0 = state.synth, time.perf_counter()
    if not fmt.streams and body.stream_format != "sse":  # flac: whole (with SSE: one event at the end)
        sp = await speech.unless_gone(request.receive, speech.prepare(synth, state.registry, text, names,
                                                                      body.speed, fmt))
        data = await speech.unless_gone(request.receive, speech.whole(synth, sp))
        speech.first_audio(synth, endpoint, t0)
        return Response(data, media_type=fmt.media_type, headers=speech.headers_for(sp))

    async def start() -> tuple[speech.Speech, Any]:
        sp = await speech.prepare(synth, state.registry, text, names, body.speed, fmt)
        return sp, await speech.opened(synth, sp)

    sp, (first, gen) = await speech.unless_gone(request.receive, start())
    speech.first_audio(synth, endpoint, t0)
    chunks = speech.body(first, gen, synth, sp, endpoint)
    if body.stream_format == "sse":
        return StreamingResponse(speech.sse(chunks, sp), media_type="text/event-stream",
                                 headers=speech.headers_for(sp))
    return StreamingResponse(chunks, media_type=fmt.media_type, headers=speech.headers_for(sp))


def _openai(app: FastAPI, state: ServerState) -> None:
    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": _models(state)}

    @app.get("/v1/models/{voice_id}")
    async def model(voice_id: str) -> dict[str, Any]:
        found = [m for m in _models(state) if m["id"] == voice_id]
        if found:
            return found[0]
        return _model(state.registry.get(speech.voice_name(voice_id, "model")))  # not_found, or why it is refused

    @app.post("/v1/audio/speech")
    async def audio_speech(request: Request) -> Response:
        return await _speech(request, state, "/v1/audio/speech")


def _seed(app: FastAPI, state: ServerState) -> None:
    @app.post("/api/voice/speak")
    async def speak(request: Request) -> Response:
        """The seed's contract: {"text": ...} -> audio/wav (whole, with Content-Length)."""
        body = speech.parse(speech.SpeakRequest, await request.body())
        text = speech.text_of(body.text, "text", state.settings.max_text_chars)
        names = [speech.voice_name(body.voice, "voice")]
        synth, t0 = state.synth, time.perf_counter()
        sp = await speech.unless_gone(request.receive, speech.prepare(synth, state.registry, text, names, body.speed,
                                                                      FORMATS["wav"], whole=True))
        data = await speech.unless_gone(request.receive, speech.whole(synth, sp))
        speech.first_audio(synth, "/api/voice/speak", t0)
        return Response(data, media_type="audio/wav", headers=speech.headers_for(sp))

    @app.get("/api/voice")
    async def voice(request: Request) -> dict[str, Any]:
        """The (default or ?voice=) voice's manifest summary, and every served voice's."""
        name = speech.voice_name(request.query_params.get("voice"), "voice")
        chosen = await speech.pick_voice(state.registry, [name])
        return {**chosen.summary(), "voices": [v.summary() for v in state.registry.voices.values()],
                "refused": state.registry.refused}


class StartRequest(BaseModel):
    """POST /api/train/start: the job type and audio, and any option the job API knows (it checks them)."""

    model_config = ConfigDict(extra="allow")
    job_type: StrictStr = "tts_prod_train"
    audio_path: StrictStr


class CancelRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    run_id: StrictStr


def _training(app: FastAPI, state: ServerState) -> None:
    def authorized(request: Request) -> None:
        require_token(state.settings, request.headers.get("authorization"))

    @app.post("/api/train/start")
    async def start(request: Request) -> Response:
        authorized(request)
        job_type, audio, options = submit_args(speech.parse(StartRequest, await request.body()).model_dump())
        job = await asyncio.to_thread(state.job_queue().submit, job_type, audio, **options)
        return JSONResponse({**job, "status_url": f"/api/train/status?run_id={job.get('run_id')}"}, status_code=202)

    @app.get("/api/train/status", response_model=None)
    async def status(request: Request) -> JobSummary | RunStatus:
        authorized(request)
        run_id, lane = request.query_params.get("run_id"), request.query_params.get("lane")
        if run_id:
            return await asyncio.to_thread(state.job_queue().status, run_id_of(run_id))
        return lane_status(state.settings, lane or "tts_prod_train")

    @app.post("/api/train/cancel", response_model=None)
    async def cancel(request: Request) -> JobSummary:
        authorized(request)
        run_id = run_id_of(speech.parse(CancelRequest, await request.body()).run_id)
        return await asyncio.to_thread(state.job_queue().cancel, run_id)

    @app.get("/api/train/jobs", response_model=None)
    async def jobs(request: Request) -> dict[str, list[JobSummary]]:
        authorized(request)
        return {"jobs": await asyncio.to_thread(state.job_queue().list)}


def add_routes(app: FastAPI, state: ServerState) -> None:
    _public(app, state)
    _openai(app, state)
    _seed(app, state)
    _training(app, state)
