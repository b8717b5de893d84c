"""Synthesis for the server: a request's text planned into pieces, each piece synthesized in a small
pool of threads (onnxruntime releases the GIL, so the event loop keeps answering), under the
admission of lane/serve/admission.py and a synthesis-time budget per request (`request_timeout`).

Planning bounds a request's cost before anything is synthesized. The text is cut at sentence ends,
each sentence is normalised as the voice will read it (lane.text.normalize: numbers spelled out, so
"a 290-digit number" becomes over a thousand characters), and what normalisation made long is cut
again, at a comma or a space, into pieces of at most MAX_PIECE characters: no piece is longer than
that, however the text was written (FastPitch's attention grows with the square of a piece's length).
A piece the voice has no sound for (only punctuation, or letters of a script it has no symbols for)
is dropped; a text left with none is `empty_text`. More than `max_pieces` pieces, or an estimated
length over `max_audio_s` seconds at the requested speed, is `request_too_large`, before synthesis.
While synthesizing, a piece that comes out longer than MAX_PIECE_AUDIO_S, or a request past
`max_audio_s` after all, ends the request the same way.

A client that leaves stops its request: the piece being synthesized finishes (its slot is given back
then), a piece not started yet is taken out of the pool's queue, and nothing more is synthesized.
"""

from __future__ import annotations

import asyncio
import re
import time
import unicodedata
from collections.abc import AsyncGenerator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.reasons import LaneError
from ..text.normalize import normalize
from .admission import Admission, Ticket
from .audio import Encoder
from .metrics import Metrics
from .settings import ServeSettings
from .voices import Voice

SENTENCE = re.compile(r"[^.!?\n]*(?:[.!?]+[\"')\]]*|\n+|$)")
MIN_PIECE = 12  # a shorter piece ("Dr.", "Yes.") joins the next one
MAX_PIECE = 300  # normalised characters
MAX_PIECE_AUDIO_S = 60.0
SECONDS_PER_CHAR = 0.075  # speech at pace 1 is about 13 normalised characters a second
PAUSE_S = 0.12  # silence between sentences


def sentences(text: str, max_chars: int = MAX_PIECE) -> list[str]:
    """`text` cut at sentence ends (and blank lines); pieces over `max_chars` cut again at a comma,
    semicolon or colon, else at a space."""
    raw = [m.group(0).strip() for m in SENTENCE.finditer(text)]
    pieces: list[str] = []
    carry = ""
    for part in raw:
        if not part:
            continue
        joined = f"{carry} {part}".strip()
        if len(joined) < MIN_PIECE:
            carry = joined
            continue
        pieces.append(joined)
        carry = ""
    if carry:
        pieces.append(carry)
    return [c for p in pieces for c in cut(p, max_chars)]


def cut(piece: str, max_chars: int) -> list[str]:
    out = []
    while len(piece) > max_chars:
        head = piece[:max_chars]
        at = max(head.rfind(", "), head.rfind("; "), head.rfind(": "))
        at = at + 1 if at > max_chars // 3 else head.rfind(" ")
        at = at if at > 0 else max_chars
        out.append(piece[:at].strip())
        piece = piece[at:].strip()
    return [*out, piece] if piece else out


def sounds(engine: Any, text: str) -> bool:
    """Whether the voice says anything for `text`: at least one token that is a sound (a letter or a
    phoneme), not only spaces and punctuation."""
    try:
        ids = engine.tokens(text)
    except LaneError:
        return False
    tokens = engine.tokenizer.tokens
    return any(any(ch.isalnum() for ch in str(tokens[i])) for i in ids)


def unspoken_letters(text: str, limit: int = 8) -> list[str]:
    """Letters of `text` outside ASCII (after normalisation): what a voice of this lane may have no
    symbol for, named in the refusal."""
    seen: list[str] = []
    for ch in text:
        if ch.isalpha() and not ch.isascii() and ch not in seen:
            seen.append(ch)
    return seen[:limit]


@dataclass
class Plan:
    """A request's text as the pieces the voice will say, and their estimated length."""

    pieces: list[str]
    chars: int
    audio_s: float


def plan(voice: Voice, text: str, pace: float, settings: ServeSettings) -> Plan:
    """The pieces of `text` (normalised, at most MAX_PIECE characters each, only those the voice can
    say), refused before synthesis when they are none (empty_text) or too many (request_too_large)."""
    pieces: list[str] = []
    dropped: list[str] = []
    for sentence in sentences(text):
        for piece in cut(normalize(sentence), MAX_PIECE):
            if sounds(voice.engine, piece):
                pieces.append(piece)
            else:
                dropped.append(piece)
            if len(pieces) > settings.max_pieces:
                raise LaneError("request_too_large", f"the text makes more than {settings.max_pieces} pieces "
                                "(sentences) once normalised (serve.max_pieces)")
    if not pieces:
        letters = unspoken_letters(" ".join(dropped) or text)
        why = f": it has no symbols for {', '.join(letters)} ({unicodedata.name(letters[0], '?')}, ...)" if letters \
            else ""
        raise LaneError("empty_text", f"the text has nothing voice {voice.id!r} can say{why}")
    chars = sum(len(p) for p in pieces)
    audio_s = chars * SECONDS_PER_CHAR / pace
    if audio_s > settings.max_audio_s:
        raise LaneError("request_too_large", f"the text would be about {audio_s:.0f} s of audio at speed {pace:g} "
                        f"({chars} characters once normalised); the limit is {settings.max_audio_s:g} s "
                        "(serve.max_audio_s)")
    return Plan(pieces, chars, audio_s)


@dataclass
class Job:
    """One request's synthesis: its voice, plan, speed, slot, encoder and budget."""

    voice: Voice
    plan: Plan
    pace: float
    ticket: Ticket
    encoder: Encoder
    budget_s: float
    audio_s: float = 0.0


class Synthesizer:
    def __init__(self, settings: ServeSettings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.pool = ThreadPoolExecutor(max(1, settings.workers), thread_name_prefix="lane-synth")
        self.admission = Admission(settings, metrics)

    def _run(self, job: Job, text: str, pause: bool) -> bytes:
        """One piece, in a pool thread: text -> mel (checked) -> audio -> encoded bytes."""
        voice, t0, c0 = job.voice, time.perf_counter(), time.process_time()
        mel = voice.engine.mel(text, job.pace)
        seconds = mel.shape[-1] * int(voice.engine.audio.get("hop_length", 256)) / voice.sample_rate
        if seconds > MAX_PIECE_AUDIO_S or job.audio_s + seconds > self.settings.max_audio_s:
            raise LaneError("request_too_large", f"the voice made {job.audio_s + seconds:.0f} s of audio (a piece of "
                            f"{seconds:.0f} s); the limits are {MAX_PIECE_AUDIO_S:g} s a piece and "
                            f"{self.settings.max_audio_s:g} s a request")
        audio = np.asarray(voice.engine.vocode(mel), dtype=np.float32)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        job.audio_s += audio.size / voice.sample_rate
        self.metrics.synthesized(voice.id, audio.size / voice.sample_rate, wall, cpu)
        if pause:
            audio = np.concatenate([audio, np.zeros(int(PAUSE_S * voice.sample_rate), dtype=np.float32)])
        return job.encoder.chunk(audio)

    async def in_pool(self, job: Job, fn: Callable[..., bytes], *args: Any) -> bytes:
        """`fn(*args)` in the pool within the job's synthesis budget (request_timeout past it). Left
        (the client went away or the budget ran out) while it runs: the slot stays taken until it ends;
        before it started: it never runs."""
        loop = asyncio.get_running_loop()
        fut: Future[bytes] = self.pool.submit(fn, *args)
        t0 = time.monotonic()
        try:
            async with asyncio.timeout(max(0.0, job.budget_s)):
                return await asyncio.wrap_future(fut, loop=loop)
        except BaseException as exc:
            if not fut.cancel():
                job.ticket.handed_off = True
                fut.add_done_callback(lambda _f: job.ticket.release())
            if isinstance(exc, TimeoutError):
                raise LaneError("request_timeout", f"synthesis ran past {self.settings.request_timeout_s:g} s") from None
            raise
        finally:
            job.budget_s -= time.monotonic() - t0

    async def stream(self, job: Job) -> AsyncGenerator[bytes, None]:
        """The encoded answer, piece by piece; the slot is given back at the end (or by the thread
        still synthesizing for a request that left)."""
        try:
            last = len(job.plan.pieces) - 1
            for i, text in enumerate(job.plan.pieces):
                yield await self.in_pool(job, self._run, job, text, i < last)
            yield await self.in_pool(job, job.encoder.finish)
        finally:
            if not job.ticket.handed_off:
                job.ticket.release()

    def job(self, voice: Voice, plan_: Plan, pace: float, ticket: Ticket, encoder: Encoder) -> Job:
        return Job(voice, plan_, pace, ticket, encoder, self.settings.request_timeout_s)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
