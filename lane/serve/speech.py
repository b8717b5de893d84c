"""The synthesis endpoints' logic, apart from the routing: request bodies (pydantic models: any type or
shape error is `request_invalid`, 400, never a 500), a voice, a plan and a slot; audio as a streamed
or a whole answer, stopped when the client leaves.

POST /v1/audio/speech (OpenAI's shape)::

    {"model": "<voice id>" | "tts-1", "voice": "<voice id or alias>" | {"id": "<voice id>"}, "input": "...",
     "response_format": "mp3" | "opus" | "aac" | "flac" | "wav" | "pcm", "speed": 0.25..4.0,
     "stream_format": "audio" | "sse", "instructions": "..." (accepted, not used)}

`voice` names the voice (a served voice id, else an alias: OpenAI's voice names mean the default
voice unless serve.voice_aliases says otherwise); if it names none but `model` does, `model` does (so
clients that put the voice in `model` work too). Every format but flac streams sentence by sentence:
the first sentence is synthesized before the answer starts, so a failure there is still a clean JSON
error, and the first audio leaves while the later sentences are being synthesized. With
`stream_format: "sse"` the audio comes as OpenAI's server-sent events (`speech.audio.delta` with
base64 audio, then `speech.audio.done`).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError

from ..core.ids import PATTERN
from ..core.reasons import LaneError
from . import audio as audio_mod
from .errors import Invalid
from .synth import Job, Plan, Synthesizer, plan
from .voices import Registry, Voice

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
DEFAULT_FORMAT = "mp3"  # OpenAI's default
OPENAI_MAX_INPUT = 4096
Speed = Annotated[float, Field(strict=True, ge=0.25, le=4.0)]
Text = Annotated[StrictStr, Field(max_length=1_000_000)]
Name = Annotated[StrictStr, Field(max_length=200)]


class VoiceRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Name


class SpeechRequest(BaseModel):
    """OpenAI's audio.speech.create body (fields OpenAI may add later are ignored)."""

    model_config = ConfigDict(extra="ignore")
    model: Name | None = None
    input: Text | None = None
    voice: Name | VoiceRef | None = None
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] | None = None
    speed: Speed | None = None
    stream_format: Literal["audio", "sse"] | None = None
    instructions: Annotated[StrictStr, Field(max_length=4096)] | None = None


class SpeakRequest(BaseModel):
    """The seed's /api/voice/speak body."""

    model_config = ConfigDict(extra="ignore")
    text: Text | None = None
    voice: Name | VoiceRef | None = None
    speed: Speed | None = None


class ClientGone(Exception):
    """The client closed its connection before its answer was ready."""


def parse(model: type[M], raw: bytes) -> M:
    """`raw` (JSON) as `model`; request_invalid naming the first fields at fault."""
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        errors = exc.errors(include_input=False, include_url=False)
        where = [".".join(str(p) for p in e["loc"]) for e in errors]
        detail = "; ".join(f"{w or 'body'}: {e['msg']}" for w, e in zip(where, errors, strict=True))
        raise Invalid(detail[:500], str(errors[0]["loc"][0]) if errors and errors[0]["loc"] else None) from None


def text_of(text: str | None, key: str, limit: int) -> str:
    if not text or not text.strip():
        raise LaneError("empty_text", f"'{key}' must be a non-empty string")
    if len(text) > limit:
        raise LaneError("request_too_large", f"'{key}' is {len(text)} characters; the limit is {limit}")
    return text


def voice_name(value: str | VoiceRef | None, key: str) -> str | None:
    name = value.id if isinstance(value, VoiceRef) else value
    if name is not None and (not PATTERN.fullmatch(name) or ".." in name):
        raise Invalid(f"'{key}' must be a voice id (letters, digits, '_', '.', '-'), not {name!r}", key)
    return name


async def pick_voice(registry: Registry, names: list[str | None]) -> Voice:
    """The first of `names` that is a served voice, else an alias of one; else the error for the first
    name given (or the default voice when none is). An unknown name makes the registry look again
    first (off the event loop, at most once a second)."""
    if registry.should_look_again(names):
        await asyncio.to_thread(registry.refresh)
    for name in names:
        if name and name in registry.voices:
            return registry.voices[name]
    for name in names:
        voice = registry.alias(name)
        if voice is not None:
            return voice
    return registry.get(next((n for n in names if n), None))


def format_of(body: SpeechRequest) -> audio_mod.Format:
    offered = audio_mod.available()
    name = body.response_format or (DEFAULT_FORMAT if DEFAULT_FORMAT in offered else "wav")
    if name not in offered:
        raise Invalid(f"response_format {name!r} is not offered here; use one of {', '.join(offered)}",
                      "response_format")
    return offered[name]


@dataclass
class Speech:
    """One admitted request, ready to answer."""

    voice: Voice
    fmt: audio_mod.Format
    job: Job


async def prepare(synth: Synthesizer, registry: Registry, text: str, names: list[str | None], speed: float | None,
                  fmt: audio_mod.Format, *, whole: bool = False) -> Speech:
    """Voice, a slot, then the plan (in the slot: an overloaded server refuses before it spends any
    work on the text; off the loop: normalising 4,096 characters takes a moment)."""
    voice = await pick_voice(registry, names)
    pace = 1.0 if speed is None else float(speed)
    ticket = await synth.admission.admit()
    try:
        planned: Plan = await asyncio.to_thread(plan, voice, text, pace, synth.settings)
        encoder = audio_mod.encoder(fmt, voice.sample_rate, whole=whole)
    except BaseException:
        ticket.release()
        raise
    return Speech(voice, fmt, synth.job(voice, planned, pace, ticket, encoder))


def headers_for(sp: Speech) -> dict[str, str]:
    rate = audio_mod.PCM_RATE if sp.fmt.name == "pcm" else audio_mod.OPUS_RATE if sp.fmt.name == "opus" \
        else sp.voice.sample_rate
    return {"X-Voice": sp.voice.id, "X-Sample-Rate": str(rate), "Cache-Control": "no-store"}


async def unless_gone(receive: Any, work: Awaitable[T]) -> T:
    """`work`, unless the client disconnects first (ClientGone; `work` is cancelled). Call once the
    body has been read: `receive` then only says whether the client is still there."""
    task = asyncio.ensure_future(work)

    async def gone() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    watch = asyncio.ensure_future(gone())
    try:
        await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    if task.cancelled():
        raise ClientGone()
    return task.result()


async def whole(synth: Synthesizer, sp: Speech) -> bytes:
    return b"".join([chunk async for chunk in synth.stream(sp.job)])


async def opened(synth: Synthesizer, sp: Speech) -> tuple[bytes, AsyncGenerator[bytes, None]]:
    """The stream with its first chunk already made (errors before it are answered as errors)."""
    gen = synth.stream(sp.job)
    try:
        first = await gen.__anext__()
    except BaseException:
        await gen.aclose()
        raise
    return first, gen


async def body(first: bytes, gen: AsyncGenerator[bytes, None], synth: Synthesizer, sp: Speech,
               endpoint: str) -> AsyncIterator[bytes]:
    """The rest of a streamed answer. An error past the first byte can only end it early (logged and
    counted); a client that leaves (the stream is cancelled) is counted as abandoned."""
    finished = False
    try:
        yield first
        async for chunk in gen:
            yield chunk
        finished = True
    except LaneError as err:
        print(f"[serve] stream for voice {sp.voice.id} ended early: {err}", flush=True)
        synth.metrics.errors.labels(err.code).inc()
        finished = True
    finally:
        await gen.aclose()
        if not finished:
            synth.metrics.abandoned.labels(endpoint).inc()


async def sse(chunks: AsyncIterator[bytes], sp: Speech) -> AsyncIterator[bytes]:
    """OpenAI's speech events around the audio chunks."""
    async for chunk in chunks:
        if chunk:
            event = {"type": "speech.audio.delta", "audio": base64.b64encode(chunk).decode("ascii")}
            yield f"data: {json.dumps(event)}\n\n".encode()
    usage = {"input_tokens": sp.job.plan.chars, "output_tokens": 0, "total_tokens": sp.job.plan.chars}
    yield f"data: {json.dumps({'type': 'speech.audio.done', 'usage': usage})}\n\n".encode()


def first_audio(synth: Synthesizer, endpoint: str, t0: float) -> None:
    synth.metrics.first_audio.labels(endpoint).observe(time.perf_counter() - t0)
