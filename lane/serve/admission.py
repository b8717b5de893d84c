"""Who may synthesize now: `max_inflight` slots, a short wait queue (`max_queue` places, at most
`queue_timeout_s` each), and, for the rest, `overloaded` with a Retry-After computed from the work
ahead and the measured service time.

Retry-After is the time until a slot is expected to be free for the client being refused: (requests
in slots + requests queued + clients already told to come back before then + this one) x the moving
average of the time a request holds its slot / the number of slots. Counting the promises already made
spreads the retries of a burst over successive slots instead of sending them all back at once, so a
client that honours it (OpenAI's retries it twice) finds room.

Everything here runs on the event loop's thread; a slot given back from a synthesis thread (a request
that left while its sentence was being synthesized) is handed to the loop with call_soon_threadsafe.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from .errors import Overloaded
from .metrics import Metrics
from .settings import ServeSettings

PRIOR_SERVICE_S = 1.0  # before anything was measured
SMOOTHING = 0.3
MAX_RETRY_AFTER_S = 60.0  # OpenAI's clients honour up to 120 s


@dataclass
class Ticket:
    """One admitted request's slot, given back once (by the request, or by the synthesis thread a
    request left running)."""

    admission: Admission
    started: float = field(default_factory=time.monotonic)
    released: bool = False
    handed_off: bool = False  # a synthesis thread still runs for it: that thread gives the slot back

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        self.admission.give_back(time.monotonic() - self.started)


class Admission:
    def __init__(self, settings: ServeSettings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.slots = max(1, settings.max_inflight)
        self.busy = 0
        self.waiters: deque[asyncio.Future[None]] = deque()
        self.service_s = PRIOR_SERVICE_S
        self.promised: list[float] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        self.loop_thread: int | None = None
        metrics.service.set(self.service_s)

    async def admit(self) -> Ticket:
        """A slot now, or after a wait in the queue; Overloaded when the queue is full or the wait
        runs past queue_timeout_s. Cancelled (the client left) while waiting: leaves the queue."""
        self.loop, self.loop_thread = asyncio.get_running_loop(), threading.get_ident()
        if self.busy < self.slots and not self.waiters:
            return self._grant()
        if len(self.waiters) >= self.settings.max_queue:
            raise self.overloaded(f"all {self.slots} synthesis slots are busy and {len(self.waiters)} requests wait")
        fut: asyncio.Future[None] = self.loop.create_future()
        self.waiters.append(fut)
        self._gauges()
        try:
            async with asyncio.timeout(self.settings.queue_timeout_s):
                await fut
        except BaseException as exc:
            if fut.done() and not fut.cancelled():  # the slot arrived as the wait ended: pass it on
                self.busy -= 1
                self._next()
            elif fut in self.waiters:
                self.waiters.remove(fut)
            self._gauges()
            if isinstance(exc, TimeoutError):
                raise self.overloaded(f"no synthesis slot came free within {self.settings.queue_timeout_s:g} s") \
                    from None
            raise
        return Ticket(self)  # the slot _next handed over (and counted)

    def _grant(self) -> Ticket:
        self.busy += 1
        self._gauges()
        return Ticket(self)

    def give_back(self, held_s: float) -> None:
        """A slot is free again (from any thread)."""
        if self.loop is not None and threading.get_ident() != self.loop_thread and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._freed, held_s)
        else:
            self._freed(held_s)

    def _freed(self, held_s: float) -> None:
        self.service_s += SMOOTHING * (held_s - self.service_s)
        self.metrics.service.set(self.service_s)
        self.busy -= 1
        self._next()
        self._gauges()

    def _next(self) -> None:
        """Hand the free slots to the first clients still waiting."""
        while self.waiters and self.busy < self.slots:
            fut = self.waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                self.busy += 1

    def _gauges(self) -> None:
        self.metrics.inflight.set(self.busy)
        self.metrics.queued.set(len(self.waiters))

    def retry_after(self) -> float:
        """Seconds until a slot is expected to be free for one more client; remembered as a promise."""
        now = time.monotonic()
        self.promised = [t for t in self.promised if t > now]
        ahead = self.busy + len(self.waiters) + len(self.promised) + 1
        wait = min(MAX_RETRY_AFTER_S, max(float(self.settings.retry_after_s), self.service_s * ahead / self.slots))
        self.promised.append(now + wait)
        self.metrics.retry_after.observe(wait)
        return wait

    def overloaded(self, why: str) -> Overloaded:
        wait = self.retry_after()
        return Overloaded(f"{why}; retry after {math.ceil(wait)} s", wait)
