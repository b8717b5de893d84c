"""The connection layer of `lane serve`: uvicorn's HTTP/1.1 protocol (h11) with what it lacks against
clients that hold connections without using them (the way Go's http.Server, nginx and others guard):

- `idle_timeout_s`: a connection that sends nothing (a fresh one, or one kept alive between
  requests) is closed after it;
- `header_timeout_s`: once a request's first byte arrives, its line, headers and body must all have
  arrived within it (a client trickling bytes cannot hold the connection; answering a slow response
  is not limited by it);
- `send_timeout_s`: a client that takes nothing of its answer for that long (the socket's buffers
  full: the kernel's is set to SEND_BUFFER, so this is noticed after a few hundred KB, not 4 MB) is
  dropped; its synthesis stops and its slot is freed;
- `max_connections`, a limit on connections separate from the synthesis limit: a new connection past
  it closes the oldest connection that has no request being answered (idle, or still sending its
  request), as nginx reuses its idle connections; only when every connection is busy with a request
  is the newcomer answered `overloaded` (503, Retry-After) and closed, and past twice the limit it
  is closed at once. So idle sockets, however many, never shut anyone out.

A request the HTTP parser itself refuses (a negative or non-numeric Content-Length, a malformed
request line or header) never reaches the application: it is answered here in the JSON error shape.
Every refusal and every connection closed by the server is counted (lane_serve_rejected_total with
layer connection or http, lane_serve_closed_total by reason).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from ..core.reasons import LaneError
from .errors import Overloaded, error_body, error_headers, http_status
from .metrics import Metrics
from .settings import ServeSettings

SEND_BUFFER = 256 * 1024  # the kernel's send buffer per connection (Linux doubles it); no autotuning to 4 MB


class Gate:
    """The open connections (least recently active first) and the limits on them."""

    def __init__(self, settings: ServeSettings, metrics: Metrics, retry_after: Callable[[], float]) -> None:
        self.settings = settings
        self.metrics = metrics
        self.retry_after = retry_after
        self.open: OrderedDict[LaneProtocol, None] = OrderedDict()

    def opened(self, conn: LaneProtocol) -> str:
        """"ok", "refuse" (answer the request 503) or "close" (at once), for a new connection."""
        limit = max(1, self.settings.max_connections)
        if len(self.open) >= limit:
            victim = next((c for c in self.open if c.evictable()), None)
            if victim is not None:
                victim.close_for("evicted")
            elif len(self.open) >= 2 * limit:
                self.metrics.closed.labels("refused").inc()
                self.metrics.refused("connection", "overloaded")
                return "close"
            else:
                return "refuse"
        self.open[conn] = None
        self.metrics.connections.set(len(self.open))
        return "ok"

    def active(self, conn: LaneProtocol) -> None:
        if conn in self.open:
            self.open.move_to_end(conn)

    def closed(self, conn: LaneProtocol) -> None:
        self.open.pop(conn, None)
        self.metrics.connections.set(len(self.open))

    async def refuse(self, scope: Any, receive: Any, send: Any) -> None:
        """The answer on a connection over the limit while every other one is busy."""
        wait = self.retry_after()
        err = Overloaded(f"every one of the server's {self.settings.max_connections} connections is busy; "
                         f"retry after {int(wait + 0.999)} s", wait)
        self.metrics.refused("connection", err.code)
        self.metrics.answered(scope["path"], scope["method"], http_status(err.code), 0.0)
        body = error_body(err, scope["path"])
        await send({"type": "http.response.start", "status": http_status(err.code),
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close"), *error_headers(err)]})
        await send({"type": "http.response.body", "body": body})


class LaneProtocol(H11Protocol):
    gate: ClassVar[Gate]

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None:  # a bounded kernel buffer: a client that reads nothing is noticed (send_timeout_s)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        super().connection_made(transport)
        self.lane_timer: asyncio.TimerHandle | None = None
        self.request_deadline: asyncio.TimerHandle | None = None
        self.stall_timer: asyncio.TimerHandle | None = None
        verdict = self.gate.opened(self)
        if verdict == "close":
            transport.close()
            return
        if verdict == "refuse":
            self.app = self.gate.refuse
        self.lane_timer = self.loop.call_later(self.gate.settings.idle_timeout_s, self.close_for, "idle")

    def evictable(self) -> bool:
        """No request is being answered: idle, or its request is still arriving."""
        state = self.conn.their_state
        if state is h11.IDLE:
            return True
        return state is h11.SEND_BODY and (self.cycle is None or not self.cycle.response_started)

    def close_for(self, reason: str) -> None:
        self.gate.closed(self)  # at once: its connection_lost comes a loop iteration later
        if not self.transport.is_closing():
            self.gate.metrics.closed.labels(reason).inc()
            if reason == "stalled":
                self.transport.abort()  # its unsent answer would keep a graceful close waiting forever
            else:
                self.transport.close()

    def data_received(self, data: bytes) -> None:
        self.gate.active(self)
        if self.lane_timer is not None:
            self.lane_timer.cancel()
            self.lane_timer = None
        if self.request_deadline is None and self.conn.their_state is h11.IDLE:
            self.request_deadline = self.loop.call_later(self.gate.settings.header_timeout_s, self.close_for,
                                                         "header_timeout")
        super().data_received(data)
        if self.request_deadline is not None and self.conn.their_state not in (h11.IDLE, h11.SEND_BODY):
            self.request_deadline.cancel()
            self.request_deadline = None

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in (self.lane_timer, self.request_deadline, self.stall_timer):
            if timer is not None:
                timer.cancel()
        self.gate.closed(self)
        super().connection_lost(exc)

    def timeout_keep_alive_handler(self) -> None:
        if not self.transport.is_closing():
            self.gate.metrics.closed.labels("idle").inc()
        super().timeout_keep_alive_handler()

    def pause_writing(self) -> None:
        super().pause_writing()
        if self.stall_timer is None:
            self.stall_timer = self.loop.call_later(self.gate.settings.send_timeout_s, self.close_for, "stalled")

    def resume_writing(self) -> None:
        super().resume_writing()
        if self.stall_timer is not None:
            self.stall_timer.cancel()
            self.stall_timer = None

    def send_400_response(self, msg: str) -> None:
        exc = sys.exc_info()[1]  # called from uvicorn's `except h11.RemoteProtocolError` block
        err = LaneError("request_invalid", f"{msg} ({exc})" if isinstance(exc, h11.RemoteProtocolError) else msg)
        self.gate.metrics.refused("http", err.code)
        self.gate.metrics.answered("", "other", 400, 0.0)
        body = error_body(err)
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close")]
        event = h11.Response(status_code=400, headers=headers, reason=b"Bad Request")
        self.transport.write(self.conn.send(event) or b"")
        self.transport.write(self.conn.send(h11.Data(data=body)) or b"")
        self.transport.write(self.conn.send(h11.EndOfMessage()) or b"")
        self.transport.close()


def protocol_for(gate: Gate) -> type[LaneProtocol]:
    """LaneProtocol bound to one server's gate (uvicorn makes one protocol object per connection)."""
    return type("LaneProtocolBound", (LaneProtocol,), {"gate": gate})

