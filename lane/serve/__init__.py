"""`lane serve`: voices over HTTP (FastAPI + uvicorn) and Wyoming, with onnxruntime only (no torch, no NeMo).

    lane serve [BUNDLES_DIR]       every live voice under bundles/ (<id>/voice_bundle) that is promoted
                                   (signed GO provenance), validated and hash-verified; a voice
                                   promoted later is picked up without a restart
    lane serve --allow-unpromoted bundles/<id>/candidates/<run_id>    development: hashes only, labelled
    lane serve --wyoming tcp://127.0.0.1:10200 [--zeroconf]           Home Assistant as well (discovered)

| Method | Path | In | Out |
|---|---|---|---|
| GET | `/` | | the try-a-voice page (pick a voice, type, play, download) |
| POST | `/v1/audio/speech` | OpenAI: `model`/`voice` (voice id or alias), `input`, `response_format` (mp3, opus, aac, flac, wav, pcm), `speed`, `stream_format` (audio, sse) | audio, streamed sentence by sentence (flac whole) |
| GET | `/v1/models` | | the voices and aliases, OpenAI's list shape |
| POST | `/api/voice/speak` | `{"text": ..., "voice"?: id}` | `audio/wav` (the seed's contract) |
| GET | `/api/voice` | `?voice=` | the voice's manifest summary and every voice's |
| GET | `/healthz` | | `{"status": "ok", "voice": <default>, "voices": [...]}` |
| GET | `/readyz` | | 200 with a voice to serve, else 503 |
| GET | `/metrics` | | Prometheus text |
| POST | `/api/train/start` | bearer token; `{"job_type", "audio_path", ...}` | 202 + the job |
| GET | `/api/train/status` | bearer token; `?run_id=` or `?lane=` | the job / train_status |
| POST | `/api/train/cancel` | bearer token; `{"run_id"}` | the job |
| GET | `/api/train/jobs` | bearer token | every job |

Errors: {"error": <reason code from lane.core.reasons>, "detail": ...}; under /v1, OpenAI's
{"error": {"message", "type", "param", "code": <reason code>}}. The modules: settings (flags > env >
config), voices (the registry of live voices), protocol (the connection layer: idle, header and send
timeouts, the connection limit), admission (slots, queue, Retry-After), synth (planning a text into
bounded pieces, threads, the synthesis budget), speech (request models and the synthesis endpoints'
logic), audio (encoders), errors (shapes and statuses), security (Host/Origin/CORS/body guard, 500s,
token), metrics (Prometheus), training (the job API), routes, app (the factory), server (uvicorn,
threads), wyoming (with streaming and zeroconf), page.html.
"""

from __future__ import annotations

from typing import Any

from .settings import ServeSettings, load_settings

__all__ = ["ServeSettings", "ServerThread", "create_app", "load_settings", "serve"]


def __getattr__(name: str) -> Any:  # the FastAPI side loads only when used
    if name == "create_app":
        from .app import create_app

        return create_app
    if name in ("ServerThread", "serve"):
        from . import server

        return getattr(server, name)
    raise AttributeError(name)
