"""Wyoming (Home Assistant's protocol for voice services) over the same voices: `lane serve --wyoming
tcp://127.0.0.1:10200`, with the `wyoming` package's own server classes.

    describe    -> info: one TTS program "voice-lane" listing every live voice (name = voice id)
    synthesize  -> audio-start, audio-chunk ... (16-bit mono PCM at the voice's rate, sentence by
                   sentence, at most one second a chunk), audio-stop
                   (the voice is `voice.name`, else the default voice)
    errors      -> error {"text": <detail>, "code": <reason code>}

Admission and the per-request deadline are the HTTP server's (one Synthesizer shared by both).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Attribution, Describe, Info, TtsProgram, TtsVoice
from wyoming.server import AsyncEventHandler, AsyncServer
from wyoming.tts import Synthesize

from ..core.reasons import LaneError
from ..core.version import VERSION
from .audio import pcm16
from .state import ServerState

ATTRIBUTION = Attribution(name="voice-lane", url="https://voice-lane.invalid/")
WIDTH, CHANNELS = 2, 1


def info(state: ServerState) -> Info:
    voices = [TtsVoice(name=v.id, attribution=ATTRIBUTION, installed=True, version=v.run_id,
                       description=f"voice-lane voice {v.id} (run {v.run_id})" + (" UNPROMOTED" if v.unpromoted else ""),
                       languages=["en"]) for v in state.registry.voices.values()]
    program = TtsProgram(name="voice-lane", attribution=ATTRIBUTION, installed=True, version=VERSION,
                         description="voice-lane voices (FastPitch + HiFi-GAN, onnxruntime)", voices=voices)
    return Info(tts=[program])


class LaneWyomingHandler(AsyncEventHandler):
    def __init__(self, state: ServerState, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.state = state

    async def handle_event(self, event: Event) -> bool:
        if Describe.is_type(event.type):
            await self.write_event(info(self.state).event())
            return True
        if Synthesize.is_type(event.type):
            try:
                await self.synthesize(Synthesize.from_event(event))
            except LaneError as err:
                self.state.metrics.errors.labels(err.code).inc()
                await self.write_event(Error(text=err.detail, code=err.code).event())
            return True
        return True  # other events are not ours: ignore, keep the connection

    async def synthesize(self, request: Synthesize) -> None:
        from .speech import text_of

        state = self.state
        text = text_of({"text": request.text}, "text", state.settings)
        name = request.voice.name if request.voice is not None else None
        if state.registry.should_look_again([name]):
            await asyncio.to_thread(state.registry.refresh)
        voice = state.registry.get(name)
        pieces = state.synth.pieces(voice, text)
        ticket = state.synth.admit()
        rate, t0 = voice.sample_rate, time.perf_counter()
        await self.write_event(AudioStart(rate=rate, width=WIDTH, channels=CHANNELS).event())
        try:
            async for audio in state.synth.stream(voice, pieces, 1.0, ticket):
                if t0:
                    state.metrics.first_audio.labels("wyoming").observe(time.perf_counter() - t0)
                    t0 = 0.0
                data = pcm16(audio)
                for i in range(0, len(data), rate * WIDTH):
                    await self.write_event(AudioChunk(rate=rate, width=WIDTH, channels=CHANNELS,
                                                      audio=data[i: i + rate * WIDTH]).event())
        except LaneError as err:  # past audio-start: end the audio where it is, then say why
            state.metrics.errors.labels(err.code).inc()
            await self.write_event(AudioStop().event())
            await self.write_event(Error(text=err.detail, code=err.code).event())
            return
        await self.write_event(AudioStop().event())


async def serve_wyoming(state: ServerState, uri: str, started: asyncio.Event | None = None) -> None:
    """Run the Wyoming server at `uri` (tcp://host:port, unix://path) until cancelled."""
    server = AsyncServer.from_uri(uri)
    factory = lambda reader, writer: LaneWyomingHandler(state, reader, writer)  # noqa: E731
    await server.start(factory)
    print(f"wyoming: serving {len(state.registry.voices)} voice(s) on {uri}", flush=True)
    if started is not None:
        started.set()
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()
