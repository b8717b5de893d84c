"""`lane serve`: a small HTTP API over a validated voice bundle (and the lane's training jobs).

Endpoints (JSON in, JSON or WAV out):

    GET  /healthz                  {"status": "ok", "voice": <id>}
    GET  /api/voice                the bundle's manifest summary (models, sample rate, validation)
    POST /api/voice/speak          {"text": "..."} -> audio/wav (16-bit PCM, the bundle's rate)
    POST /api/train/start          {"job_type": "tts_prod_train", "audio_path": "..."} -> 202 + run info
    GET  /api/train/status?lane=X  artifacts/train_status.<lane>.json

Synthesis uses onnxruntime through `lane.bundle.voice.OnnxVoice`: no torch or NeMo in the server. The bundle
is validated (`validate_voice_bundle`) before the server starts; a bundle that fails is refused with
`bundle_invalid`. Errors answer with {"error": <reason code>, "detail": ...} and a 4xx/5xx status.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import wave
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from .core.reasons import LaneError

MAX_TEXT_CHARS = 2000
MAX_BODY_BYTES = 64 * 1024
# The job types the seed's /api/train/start accepts; the lane registry resolves them to a lane.
TRAIN_JOB_TYPES = ("tts_prod_train", "tts_prod_train_nemo", "train", "tts_voice_train")


def wav_bytes(audio: Any, sample_rate: int) -> bytes:
    """float32 [-1, 1] samples -> a 16-bit PCM mono WAV file in memory."""
    import numpy as np

    pcm = (np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0) * 32767.0).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


class VoiceService:
    """The state behind the handler: one loaded voice, a lock (onnxruntime sessions are used one
    request at a time here), and the workspace root for training jobs."""

    def __init__(self, bundle_dir: str | os.PathLike[str], root: str | os.PathLike[str] = ".", *,
                 allow_unpromoted: bool = False) -> None:
        from .bundle.voice import OnnxVoice
        from .promotion import servable

        self.bundle_dir = Path(bundle_dir)
        self.root = Path(root).resolve()
        self.unpromoted = allow_unpromoted
        problems = servable(self.bundle_dir, self.root, allow_unpromoted=allow_unpromoted)
        if problems:
            code = "bundle_invalid" if problems[0].startswith("hashes:") else "bundle_not_promoted"
            raise LaneError(code, "; ".join(problems[:3]))
        if allow_unpromoted:
            print(f"WARNING: serving {self.bundle_dir} with --allow-unpromoted: not a live, GO voice "
                  "(development only; every response says so in X-Voice-Lane-Unpromoted)", flush=True)
        self.manifest: dict[str, Any] = json.loads((self.bundle_dir / "manifest.json").read_text("utf-8"))
        self.voice = OnnxVoice(self.bundle_dir)
        self.lock = threading.Lock()
        self.jobs: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def voice_id(self) -> str:
        return str(self.manifest.get("voice_profile_id") or self.bundle_dir.parent.name)

    def summary(self) -> dict[str, Any]:
        keys = ("bundle_version", "voice_profile_id", "sample_rate", "models", "tokenizer", "run_id", "validation")
        return {k: self.manifest.get(k) for k in keys}

    def speak(self, text: str) -> bytes:
        with self.lock:
            audio = self.voice.synthesize(text)
        return wav_bytes(audio, self.voice.sample_rate)

    def start_training(self, body: dict[str, Any]) -> dict[str, Any]:
        job_type = str(body.get("job_type") or "tts_prod_train")
        if job_type not in TRAIN_JOB_TYPES:
            raise LaneError("unknown_lane", f"job_type {job_type!r}; accepted: {', '.join(TRAIN_JOB_TYPES)}")
        cmd = [sys.executable, "-m", "lane", "run", "--lane", job_type, "--root", str(self.root)]
        for key, flag in (("audio_path", "--audio"), ("profile", "--profile"), ("voice_profile_id", "--voice-profile-id")):
            if body.get(key):
                cmd += [flag, str(body[key])]
        log = self.root / "artifacts" / f"api_train.{job_type}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as fh:
            proc = subprocess.Popen(cmd, cwd=self.root, stdout=fh, stderr=subprocess.STDOUT)
        self.jobs[job_type] = proc
        return {"job_type": job_type, "pid": proc.pid, "log": str(log),
                "status_url": f"/api/train/status?lane={job_type}"}


class Handler(BaseHTTPRequestHandler):
    service: VoiceService  # set on the class made by make_server
    server_version = "voice-lane"

    def log_message(self, format: str, *args: Any) -> None:  # quieter than the default: one line, stderr
        sys.stderr.write(f"[serve] {self.address_string()} {format % args}\n")

    def end_headers(self) -> None:
        if self.service.unpromoted:
            self.send_header("X-Voice-Lane-Unpromoted", "true")
        super().end_headers()

    def _json(self, status: int, obj: Any) -> None:
        data = json.dumps(obj, default=str).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, code: str, detail: str) -> None:
        self._json(status, {"error": code, "detail": detail})

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            raise LaneError("config_invalid", f"request body over {MAX_BODY_BYTES} bytes")
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            raise LaneError("config_invalid", "request body is not JSON") from None
        if not isinstance(body, dict):
            raise LaneError("config_invalid", "request body must be a JSON object")
        return body

    def do_GET(self) -> None:
        url = urlparse(self.path)
        if url.path == "/healthz":
            self._json(200, {"status": "ok", "voice": self.service.voice_id})
        elif url.path == "/api/voice":
            self._json(200, self.service.summary())
        elif url.path == "/api/train/status":
            from .core.status import read_train_status

            lane = (parse_qs(url.query).get("lane") or ["tts_prod_train"])[0]
            status = read_train_status(self.service.root, lane)
            if status is None:
                self._error(404, "run_not_found", f"no train_status for lane {lane!r}")
            else:
                self._json(200, status)
        else:
            self._error(404, "not_found", url.path)

    def do_POST(self) -> None:
        url = urlparse(self.path)
        try:
            body = self._body()
            if url.path == "/api/voice/speak":
                text = body.get("text")
                if not isinstance(text, str) or not text.strip():
                    raise LaneError("empty_text", "'text' must be a non-empty string")
                if len(text) > MAX_TEXT_CHARS:
                    raise LaneError("config_invalid", f"text longer than {MAX_TEXT_CHARS} characters")
                data = self.service.speak(text)
                self.send_response(200)
                self.send_header("Content-Type", "audio/wav")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            elif url.path == "/api/train/start":
                self._json(HTTPStatus.ACCEPTED, self.service.start_training(body))
            else:
                self._error(404, "not_found", url.path)
        except LaneError as err:
            self._error(400 if err.exit_code in (3, 2) else 500, err.code, err.detail)
        except Exception as exc:  # a synthesis crash must not kill the server
            self._error(500, "synthesis_failed", f"{type(exc).__name__}: {exc}")


def make_server(bundle_dir: str | os.PathLike[str], host: str = "127.0.0.1", port: int = 8080,
                root: str | os.PathLike[str] = ".", allow_unpromoted: bool = False) -> ThreadingHTTPServer:
    """A ready (not yet serving) server; port 0 picks a free port (see server.server_address)."""
    service = VoiceService(bundle_dir, root, allow_unpromoted=allow_unpromoted)
    handler = type("BoundHandler", (Handler,), {"service": service})
    return ThreadingHTTPServer((host, port), handler)


def serve(bundle_dir: str | os.PathLike[str], host: str = "127.0.0.1", port: int = 8080,
          root: str | os.PathLike[str] = ".", allow_unpromoted: bool = False) -> None:
    server = make_server(bundle_dir, host, port, root, allow_unpromoted)
    host_s, port_n = str(server.server_address[0]), int(server.server_address[1])
    voice_id = server.RequestHandlerClass.service.voice_id  # type: ignore[attr-defined]
    print(f"serving voice {voice_id} on http://{host_s}:{port_n}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
