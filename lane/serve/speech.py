"""The synthesis endpoints' logic, apart from the routing: request bodies to a voice, pieces of text and
a format; audio to a whole or a streamed answer.

POST /v1/audio/speech (OpenAI's shape)::

    {"model": "<voice id>" | "tts-1", "voice": "<voice id>" | {"id": "<voice id>"}, "input": "...",
     "response_format": "mp3" | "opus" | "flac" | "wav" | "pcm", "speed": 0.25..4.0,
     "stream_format": "audio"}

`voice` names the voice; if it is not a served voice but `model` is, `model` does (so clients that
put the voice in `model` work too). wav and pcm stream sentence by sentence (chunked): the first
sentence is synthesized before the answer starts, so a failure there is still a clean JSON error,
and the first audio leaves while the later sentences are being synthesized.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import Any

from ..core.ids import PATTERN
from ..core.reasons import LaneError
from . import audio as audio_mod
from .errors import invalid
from .settings import ServeSettings
from .synth import Synthesizer, Ticket, pace_of
from .voices import Registry, Voice

DEFAULT_FORMAT = "mp3"  # OpenAI's default; wav when the installed libsndfile has no MP3 encoder


def parse_json(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise invalid("the request body is not JSON") from None
    if not isinstance(body, dict):
        raise invalid("the request body must be a JSON object")
    return body


def text_of(body: Mapping[str, Any], key: str, settings: ServeSettings) -> str:
    text = body.get(key)
    if text is not None and not isinstance(text, str):
        raise invalid(f"'{key}' must be a string")
    if not text or not text.strip():
        raise LaneError("empty_text", f"'{key}' must be a non-empty string")
    if len(text) > settings.max_text_chars:
        raise LaneError("request_too_large", f"'{key}' is {len(text)} characters; the limit is {settings.max_text_chars}")
    return text


def _voice_name(value: Any, key: str) -> str | None:
    if isinstance(value, Mapping):
        value = value.get("id")
    if value is None:
        return None
    if not isinstance(value, str) or not PATTERN.fullmatch(value) or ".." in value:
        raise invalid(f"'{key}' must be a voice id (letters, digits, '_', '.', '-'), not {value!r}")
    return value


def voice_names(body: Mapping[str, Any]) -> list[str | None]:
    return [_voice_name(body.get("voice"), "voice"), _voice_name(body.get("model"), "model")]


async def pick_voice(registry: Registry, body: Mapping[str, Any]) -> Voice:
    """`voice`, else `model`, when it names a served voice; else the error for `voice` (or the default
    voice when neither is given). An unknown name makes the registry look again first (off the event
    loop, at most once a second)."""
    names = voice_names(body)
    if registry.should_look_again(names):
        await asyncio.to_thread(registry.refresh)
    for name in names:
        if name and name in registry.voices:
            return registry.voices[name]
    return registry.get(next((n for n in names if n), None))


def format_of(body: Mapping[str, Any]) -> audio_mod.Format:
    offered = audio_mod.available()
    name = body.get("response_format") or (DEFAULT_FORMAT if DEFAULT_FORMAT in offered else "wav")
    if name not in offered:
        raise invalid(f"response_format {name!r} is not offered; use one of {', '.join(offered)}")
    if body.get("stream_format") not in (None, "audio"):
        raise invalid("stream_format 'sse' is not supported; use 'audio'")
    return offered[name]


@dataclass
class Speech:
    """One admitted request, ready to answer."""

    voice: Voice
    pieces: list[str]
    pace: float
    fmt: audio_mod.Format
    ticket: Ticket


async def prepare(synth: Synthesizer, registry: Registry, body: Mapping[str, Any], text_key: str,
                  fmt: audio_mod.Format) -> Speech:
    text = text_of(body, text_key, synth.settings)
    voice = await pick_voice(registry, body)
    pace = pace_of(body.get("speed"))
    pieces = synth.pieces(voice, text)
    return Speech(voice, pieces, pace, fmt, synth.admit())


def headers_for(sp: Speech) -> dict[str, str]:
    rate = audio_mod.PCM_RATE if sp.fmt.name == "pcm" else sp.voice.sample_rate
    return {"X-Voice": sp.voice.id, "X-Sample-Rate": str(rate), "Cache-Control": "no-store"}


async def whole(synth: Synthesizer, sp: Speech) -> bytes:
    audio = await synth.whole(sp.voice, sp.pieces, sp.pace, sp.ticket)
    return await asyncio.to_thread(audio_mod.encode, audio, sp.voice.sample_rate, sp.fmt.name)


async def first_then_rest(synth: Synthesizer, sp: Speech, on_first: Any) -> AsyncGenerator[bytes, None]:
    """The streamed body, with its first piece already synthesized (so errors before the first byte
    are still answered as errors). Call as `await anext(...)` once, then stream the rest."""
    enc = audio_mod.PcmStream(sp.fmt.name, sp.voice.sample_rate)
    pieces = synth.stream(sp.voice, sp.pieces, sp.pace, sp.ticket)
    n = len(sp.pieces)
    i = 0
    try:
        async for audio in pieces:
            i += 1
            chunk = enc.chunk(audio, last=i == n)
            if i == 1:
                on_first()
            yield chunk
    except LaneError as err:
        if i == 0:
            raise  # before the first byte: answered as an error
        # past the first byte an error can only end the stream early
        print(f"[serve] stream for voice {sp.voice.id} ended early: {err}", flush=True)
        synth.metrics.errors.labels(err.code).inc()
    finally:
        await pieces.aclose()


async def streamed(synth: Synthesizer, sp: Speech, endpoint: str) -> AsyncGenerator[bytes, None]:
    """An iterator whose first chunk is ready (awaited here), for a StreamingResponse."""
    t0 = time.perf_counter()
    gen = first_then_rest(synth, sp, lambda: synth.metrics.first_audio.labels(endpoint).observe(time.perf_counter() - t0))
    try:
        first = await gen.__anext__()
    except BaseException:
        await gen.aclose()
        raise

    async def body() -> AsyncGenerator[bytes, None]:
        try:
            yield first
            async for chunk in gen:
                yield chunk
        finally:
            await gen.aclose()

    return body()
