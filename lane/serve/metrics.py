"""GET /metrics: Prometheus text format (prometheus-client), one registry per server.

    process_cpu_seconds_total, process_resident_memory_bytes, ...   the server process (ProcessCollector)
    lane_serve_requests_total{endpoint,method,status}   answered requests (500s and 499s included)
    lane_serve_request_seconds{endpoint,status}         latency to the last byte (histogram)
    lane_serve_errors_total{code}                       error answers by reason code (HTTP and Wyoming)
    lane_serve_rejected_total{layer,code}               refusals, by the layer that refused: connection
                                                        (connection limit), http (the parser), guard
                                                        (Host, Origin, body size, CORS), app (the request
                                                        itself), admission (queue full or waited too long),
                                                        wyoming
    lane_serve_closed_total{reason}                     connections the server closed: idle, header_timeout,
                                                        evicted (the oldest idle one, for a newcomer),
                                                        stalled (read nothing for send_timeout_s), refused
    lane_serve_abandoned_total{endpoint}                clients that left before their answer ended
    lane_serve_connections                              open HTTP connections
    lane_serve_first_audio_seconds{endpoint}            time to the first audio byte (histogram)
    lane_serve_audio_seconds_total{voice}               seconds of audio synthesized
    lane_serve_synthesis_seconds_total{voice}           wall seconds spent synthesizing
    lane_serve_synthesis_cpu_seconds_total{voice}       process CPU seconds while synthesizing
    lane_serve_rtf{voice}                               wall seconds per audio second, per piece (histogram)
    lane_serve_cpu_per_audio_second{voice}              CPU seconds per audio second, per piece (histogram)
    lane_serve_pieces_total{voice}                      pieces (sentences) synthesized
    lane_serve_inflight                                 synthesis requests admitted now
    lane_serve_queued                                   requests waiting for a synthesis slot
    lane_serve_service_seconds                          the measured time a request holds its slot (moving average)
    lane_serve_retry_after_seconds                      Retry-After given to refused requests (histogram)
    lane_serve_wyoming_events_total{type}               Wyoming events received
    lane_serve_wyoming_requests_total{mode,outcome}     Wyoming syntheses (mode single/streaming; ok or a code)
    lane_serve_voices                                   live voices being served
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
RTF_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
ENDPOINTS = ("/", "/healthz", "/readyz", "/metrics", "/v1/models", "/v1/audio/speech", "/api/voice",
             "/api/voice/speak", "/api/train/start", "/api/train/status", "/api/train/cancel", "/api/train/jobs")
WYOMING_EVENTS = ("describe", "synthesize", "synthesize-start", "synthesize-chunk", "synthesize-stop")
CONTENT_TYPE = CONTENT_TYPE_LATEST


def endpoint_label(path: str) -> str:
    """The path when it is one of the server's endpoints, else "other" (bounded label values)."""
    return path if path in ENDPOINTS else "other"


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        ProcessCollector(registry=r)
        self.requests = Counter("lane_serve_requests", "HTTP requests answered", ["endpoint", "method", "status"],
                                registry=r)
        self.latency = Histogram("lane_serve_request_seconds", "Time to the last byte of the answer",
                                 ["endpoint", "status"], buckets=LATENCY_BUCKETS, registry=r)
        self.errors = Counter("lane_serve_errors", "Error answers by reason code", ["code"], registry=r)
        self.rejected = Counter("lane_serve_rejected", "Refusals by the layer that refused", ["layer", "code"],
                                registry=r)
        self.closed = Counter("lane_serve_closed", "Connections closed by the server", ["reason"], registry=r)
        self.abandoned = Counter("lane_serve_abandoned", "Clients that left before their answer ended", ["endpoint"],
                                 registry=r)
        self.connections = Gauge("lane_serve_connections", "Open HTTP connections", registry=r)
        self.first_audio = Histogram("lane_serve_first_audio_seconds", "Time to the first audio byte", ["endpoint"],
                                     buckets=LATENCY_BUCKETS, registry=r)
        self._synthesis(r)
        self._admission(r)
        self.wyoming_events = Counter("lane_serve_wyoming_events", "Wyoming events received", ["type"], registry=r)
        self.wyoming_requests = Counter("lane_serve_wyoming_requests", "Wyoming syntheses", ["mode", "outcome"],
                                        registry=r)
        self.voices = Gauge("lane_serve_voices", "Live voices being served", registry=r)

    def _synthesis(self, r: CollectorRegistry) -> None:
        self.audio = Counter("lane_serve_audio_seconds", "Seconds of audio synthesized", ["voice"], registry=r)
        self.synthesis = Counter("lane_serve_synthesis_seconds", "Wall seconds spent synthesizing", ["voice"],
                                 registry=r)
        self.synthesis_cpu = Counter("lane_serve_synthesis_cpu_seconds", "Process CPU seconds while synthesizing",
                                     ["voice"], registry=r)
        self.rtf = Histogram("lane_serve_rtf", "Wall seconds per audio second of each synthesized piece", ["voice"],
                             buckets=RTF_BUCKETS, registry=r)
        self.cpu_rtf = Histogram("lane_serve_cpu_per_audio_second", "CPU seconds per audio second of each piece",
                                 ["voice"], buckets=RTF_BUCKETS, registry=r)
        self.pieces = Counter("lane_serve_pieces", "Pieces (sentences) synthesized", ["voice"], registry=r)

    def _admission(self, r: CollectorRegistry) -> None:
        self.inflight = Gauge("lane_serve_inflight", "Synthesis requests admitted now", registry=r)
        self.queued = Gauge("lane_serve_queued", "Requests waiting for a synthesis slot", registry=r)
        self.service = Gauge("lane_serve_service_seconds", "Moving average of the time a request holds its slot",
                             registry=r)
        self.retry_after = Histogram("lane_serve_retry_after_seconds", "Retry-After given to refused requests",
                                     buckets=(1, 2, 5, 10, 20, 30, 60), registry=r)

    def synthesized(self, voice: str, audio_s: float, wall_s: float, cpu_s: float) -> None:
        self.audio.labels(voice).inc(audio_s)
        self.synthesis.labels(voice).inc(wall_s)
        self.synthesis_cpu.labels(voice).inc(cpu_s)
        self.pieces.labels(voice).inc()
        if audio_s > 0:
            self.rtf.labels(voice).observe(wall_s / audio_s)
            self.cpu_rtf.labels(voice).observe(cpu_s / audio_s)

    def answered(self, path: str, method: str, status: int, seconds: float) -> None:
        ep = endpoint_label(path)
        self.requests.labels(ep, method if method in ("GET", "POST", "OPTIONS", "HEAD") else "other",
                             str(status)).inc()
        self.latency.labels(ep, str(status)).observe(seconds)

    def refused(self, layer: str, code: str) -> None:
        """A refusal: counted by its reason code and by the layer that refused."""
        self.errors.labels(code).inc()
        self.rejected.labels(layer, code).inc()

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))
