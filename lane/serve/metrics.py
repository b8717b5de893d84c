"""GET /metrics: Prometheus text format (prometheus-client), one registry per server.

    lane_serve_requests_total{endpoint,method,status}   answered requests
    lane_serve_errors_total{code}                        error answers by reason code
    lane_serve_request_seconds{endpoint}                 latency to the last byte (histogram)
    lane_serve_first_audio_seconds{endpoint}             time to the first audio byte (histogram)
    lane_serve_audio_seconds_total{voice}                seconds of audio synthesized
    lane_serve_synthesis_seconds_total{voice}            wall seconds spent synthesizing
    lane_serve_rtf{voice}                                real-time factor per synthesized piece (histogram)
    lane_serve_inflight                                  synthesis requests admitted now
    lane_serve_voices                                    live voices being served
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
RTF_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
ENDPOINTS = ("/", "/healthz", "/readyz", "/metrics", "/v1/models", "/v1/audio/speech", "/api/voice",
             "/api/voice/speak", "/api/train/start", "/api/train/status", "/api/train/cancel", "/api/train/jobs")
CONTENT_TYPE = CONTENT_TYPE_LATEST


def endpoint_label(path: str) -> str:
    """The path when it is one of the server's endpoints, else "other" (bounded label values)."""
    return path if path in ENDPOINTS else "other"


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter("lane_serve_requests", "HTTP requests answered", ["endpoint", "method", "status"],
                                registry=r)
        self.errors = Counter("lane_serve_errors", "Error answers by reason code", ["code"], registry=r)
        self.latency = Histogram("lane_serve_request_seconds", "Time to the last byte of the answer", ["endpoint"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.first_audio = Histogram("lane_serve_first_audio_seconds", "Time to the first audio byte", ["endpoint"],
                                     buckets=LATENCY_BUCKETS, registry=r)
        self.audio = Counter("lane_serve_audio_seconds", "Seconds of audio synthesized", ["voice"], registry=r)
        self.synthesis = Counter("lane_serve_synthesis_seconds", "Wall seconds spent synthesizing", ["voice"],
                                 registry=r)
        self.rtf = Histogram("lane_serve_rtf", "Real-time factor of each synthesized piece", ["voice"],
                             buckets=RTF_BUCKETS, registry=r)
        self.inflight = Gauge("lane_serve_inflight", "Synthesis requests admitted now", registry=r)
        self.voices = Gauge("lane_serve_voices", "Live voices being served", registry=r)

    def synthesized(self, voice: str, audio_s: float, wall_s: float) -> None:
        self.audio.labels(voice).inc(audio_s)
        self.synthesis.labels(voice).inc(wall_s)
        if audio_s > 0:
            self.rtf.labels(voice).observe(wall_s / audio_s)

    def answered(self, path: str, method: str, status: int, seconds: float) -> None:
        ep = endpoint_label(path)
        self.requests.labels(ep, method, str(status)).inc()
        self.latency.labels(ep).observe(seconds)

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))
