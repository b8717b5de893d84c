"""Synthesis for the server: admission (a bounded number of requests in flight, the rest refused at
once with `overloaded`), a small pool of synthesis threads (onnxruntime releases the GIL, so the event
loop keeps answering while a sentence is synthesized), sentence splitting so long texts stream, and a
deadline per request (`request_timeout`).

Text normalisation is the bundle's (OnnxVoice applies lane.text.normalize); splitting only cuts
at sentence ends, so every piece is normalised exactly as a whole text would be.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import AsyncGenerator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.reasons import LaneError
from .metrics import Metrics
from .settings import ServeSettings
from .voices import Voice

SENTENCE = re.compile(r"[^.!?\n]*(?:[.!?]+[\"')\]]*|\n+|$)")
MIN_PIECE = 12  # a shorter piece ("Dr.", "Yes.") joins the next one
MAX_PIECE = 300
PAUSE_S = 0.12  # silence between streamed sentences


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
    return [c for p in pieces for c in _cut(p, max_chars)]


def _cut(piece: str, max_chars: int) -> list[str]:
    out = []
    while len(piece) > max_chars:
        head = piece[:max_chars]
        at = max(head.rfind(", "), head.rfind("; "), head.rfind(": "))
        at = at + 1 if at > max_chars // 3 else head.rfind(" ")
        at = at if at > 0 else max_chars
        out.append(piece[:at].strip())
        piece = piece[at:].strip()
    return [*out, piece] if piece else out


@dataclass
class Ticket:
    """One admitted request's slot; released once, by whoever finishes last (the request, or the
    synthesis thread a timed-out request left running)."""

    sem: threading.BoundedSemaphore
    metrics: Metrics
    released: bool = False
    handed_off: bool = False  # a synthesis thread still runs for it: that thread releases the slot

    def hand_off(self, fut: Future[Any]) -> None:
        self.handed_off = True
        fut.add_done_callback(lambda _f: self.release())

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.metrics.inflight.dec()
            self.sem.release()


class Synthesizer:
    def __init__(self, settings: ServeSettings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.pool = ThreadPoolExecutor(max(1, settings.workers), thread_name_prefix="lane-synth")
        self.slots = threading.BoundedSemaphore(max(1, settings.max_inflight))

    def admit(self) -> Ticket:
        """A slot, or `overloaded` at once (the caller answers 503 with Retry-After)."""
        if not self.slots.acquire(blocking=False):
            raise LaneError("overloaded", f"all {self.settings.max_inflight} synthesis slots are busy; retry after "
                            f"{self.settings.retry_after_s} s")
        self.metrics.inflight.inc()
        return Ticket(self.slots, self.metrics)

    def pieces(self, voice: Voice, text: str) -> list[str]:
        """The sentences of `text` the voice can speak (pieces with no speakable character are
        dropped); empty_text when none is left."""
        out = []
        for piece in sentences(text):
            try:
                voice.engine.tokens(piece)
            except LaneError:
                continue
            out.append(piece)
        if not out:
            raise LaneError("empty_text", "the text has no characters the voice can speak")
        return out

    def _run(self, voice: Voice, text: str, pace: float) -> tuple[np.ndarray, float]:
        t0 = time.perf_counter()
        audio = np.asarray(voice.engine.synthesize(text, pace), dtype=np.float32)
        wall = time.perf_counter() - t0
        self.metrics.synthesized(voice.id, audio.size / voice.sample_rate, wall)
        return audio, wall

    async def piece(self, voice: Voice, text: str, pace: float, deadline: float, ticket: Ticket) -> np.ndarray:
        """One piece synthesized in the pool, within the request's deadline (request_timeout past it;
        the slot then stays taken until the running synthesis ends)."""
        loop = asyncio.get_running_loop()
        fut: Future[tuple[np.ndarray, float]] = self.pool.submit(self._run, voice, text, pace)
        try:
            audio, _ = await asyncio.wait_for(asyncio.wrap_future(fut, loop=loop),
                                              timeout=max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            ticket.hand_off(fut)
            raise LaneError("request_timeout", f"synthesis ran past {self.settings.request_timeout_s} s") from None
        except asyncio.CancelledError:  # the client went away mid-sentence
            ticket.hand_off(fut)
            raise
        return audio

    async def stream(self, voice: Voice, pieces: list[str], pace: float, ticket: Ticket) -> AsyncGenerator[np.ndarray, None]:
        """Audio piece by piece, a short pause between pieces; the slot is released at the end."""
        deadline = time.monotonic() + self.settings.request_timeout_s
        pause = np.zeros(int(PAUSE_S * voice.sample_rate), dtype=np.float32)
        try:
            for i, text in enumerate(pieces):
                audio = await self.piece(voice, text, pace, deadline, ticket)
                yield audio if i == len(pieces) - 1 else np.concatenate([audio, pause])
        finally:
            if not ticket.handed_off:
                ticket.release()

    async def whole(self, voice: Voice, pieces: list[str], pace: float, ticket: Ticket) -> np.ndarray:
        parts = [a async for a in self.stream(voice, pieces, pace, ticket)]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def pace_of(speed: Any) -> float:
    """OpenAI's `speed` (0.25 to 4.0, default 1) as FastPitch's pace."""
    if speed is None:
        return 1.0
    if isinstance(speed, bool) or not isinstance(speed, int | float) or not 0.25 <= float(speed) <= 4.0:
        raise LaneError("request_invalid", f"speed must be a number from 0.25 to 4.0, not {speed!r}")
    return float(speed)
