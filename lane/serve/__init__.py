"""`lane serve`: voices over HTTP (FastAPI + uvicorn) and Wyoming, with onnxruntime only (no torch, no NeMo).

    lane serve [BUNDLES_DIR]       every live voice under bundles/ (<id>/voice_bundle) that is promoted
                                   (signed GO provenance), validated and hash-verified; a voice
                                   promoted later is picked up without a restart
    lane serve --allow-unpromoted bundles/<id>/candidates/<run_id>    development: hashes only, labelled
    lane serve --wyoming tcp://127.0.0.1:10200                        Home Assistant as well

| Method | Path | In | Out |
|---|---|---|---|
| GET | `/` | | the try-a-voice page (pick a voice, type, play, download) |
| POST | `/v1/audio/speech` | OpenAI: `model`/`voice` (voice id), `input`, `response_format` (mp3, opus, flac, wav, pcm), `speed` | audio; wav and pcm stream sentence by sentence |
| GET | `/v1/models` | | the voices, OpenAI's list shape |
| POST | `/api/voice/speak` | `{"text": ..., "voice"?: id}` | `audio/wav` (the seed's contract) |
| GET | `/api/voice` | `?voice=` | the voice's manifest summary and every voice's |
| GET | `/healthz` | | `{"status": "ok", "voice": <default>, "voices": [...]}` |
| GET | `/readyz` | | 200 with a voice to serve, else 503 |
| GET | `/metrics` | | Prometheus text |
| POST | `/api/train/start` | bearer token; `{"job_type", "audio_path", ...}` | 202 + the job |
| GET | `/api/train/status` | bearer token; `?run_id=` or `?lane=` | the job / train_status |
| POST | `/api/train/cancel` | bearer token; `{"run_id"}` | the job |
| GET | `/api/train/jobs` | bearer token | every job |

Errors: {"error": <reason code from lane.core.reasons>, "detail": ...}. The modules: settings (flags >
env > config), voices (the registry of live voices), synth (admission, threads, sentences, deadline),
speech (the synthesis endpoints' logic), audio (encoders), security (Host/Origin/body guard, token),
metrics (Prometheus), training (the job API), routes, app (the factory), server (uvicorn, threads),
wyoming, page.html.
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
