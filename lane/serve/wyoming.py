"""Wyoming (Home Assistant's protocol for voice services) over the same voices: `lane serve --wyoming
tcp://127.0.0.1:10200 [--zeroconf]`, with the `wyoming` package's server and event classes.

    describe           -> info: one TTS program "voice-lane" (supports_synthesize_streaming) listing
                          every live voice: name = voice id, languages = its locale (en_US), the
                          description from its own manifest (its models, tokenizer and run)
    synthesize         -> audio-start, audio-chunk ... (16-bit mono PCM at the voice's rate, at most one
                          second a chunk, sentence by sentence), audio-stop
    synthesize-start   -> (nothing yet) a streamed request begins: its voice
    synthesize-chunk   -> text; every sentence it completes is synthesized at once: audio-start before
                          the first audio, then audio-chunk ...
    synthesize-stop    -> the rest of the text, audio-stop, synthesize-stopped
                          (a `synthesize` inside a stream is Home Assistant's copy for older servers:
                          ignored)
    ping               -> pong
    errors             -> error {"text": <detail>, "code": <reason code>}

Every malformed event (not JSON, no type, a field of the wrong type, a synthesize without text) is
answered with an `error` event (`request_invalid`) and the connection stays open; only a length field
over MAX_EVENT_BYTES (the stream cannot be followed past it) closes it after the error. Admission,
cost limits and the synthesis budget are the HTTP server's (one Synthesizer shared by both); a
streamed request takes a slot per sentence, never while it waits for text. With `zeroconf`, the
server is advertised as `_wyoming._tcp.local.` (the `zeroconf` package), which Home Assistant
discovers by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Attribution, Describe, Info, TtsProgram, TtsVoice
from wyoming.ping import Ping, Pong
from wyoming.server import AsyncEventHandler, AsyncServer
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeStopped

from ..core.reasons import LaneError
from ..core.version import VERSION
from .audio import PcmStream
from .metrics import WYOMING_EVENTS
from .speech import pick_voice, text_of
from .state import ServerState
from .synth import plan
from .voices import Voice

ATTRIBUTION = Attribution(name="voice-lane", url="https://voice-lane.invalid/")
WIDTH, CHANNELS = 2, 1
MAX_EVENT_BYTES = 1 << 20
SENTENCE_END = re.compile(r"(?:[.!?]+[\"')\]]*|\n)\s+")


class Malformed(Exception):
    def __init__(self, detail: str, fatal: bool = False) -> None:
        super().__init__(detail)
        self.fatal = fatal


def locale(language: str) -> str:
    """BCP 47 (en-US) as Wyoming's locale tag (en_US)."""
    return language.replace("-", "_")


def info(state: ServerState) -> Info:
    voices = [TtsVoice(name=v.id, attribution=ATTRIBUTION, installed=True, version=v.run_id,
                       description=v.description + (" (UNPROMOTED)" if v.unpromoted else ""),
                       languages=[locale(v.language)]) for v in state.registry.voices.values()]
    kinds = sorted({v.description.split(": ", 1)[1].split(",")[0] for v in state.registry.voices.values()})
    program = TtsProgram(name="voice-lane", attribution=ATTRIBUTION, installed=True, version=VERSION,
                         description=f"voice-lane: {len(voices)} voice(s) ({'; '.join(kinds) or 'none yet'}), "
                                     "onnxruntime", voices=voices, supports_synthesize_streaming=True)
    return Info(tts=[program])


def _length(header: dict[str, Any], key: str) -> int:
    n = header.get(key)
    if n is None:
        return 0
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise Malformed(f"{key} must be a non-negative integer, not {n!r}", fatal=True)
    if n > MAX_EVENT_BYTES:
        raise Malformed(f"{key} {n} is over {MAX_EVENT_BYTES} bytes", fatal=True)
    return n


async def read_event(reader: asyncio.StreamReader) -> Event | None:
    """The next event (None at the end of the connection); Malformed for anything else."""
    try:
        line = await reader.readline()
    except ValueError:  # a line over the reader's limit: it was dropped
        raise Malformed("an event line over the reader's limit (64 KiB)") from None
    if not line:
        return None
    try:
        header = json.loads(line)
    except ValueError:
        raise Malformed("the event line is not JSON") from None
    if not isinstance(header, dict) or not isinstance(header.get("type"), str):
        raise Malformed("an event needs a string 'type'")
    data = header.get("data") or {}
    n_data, n_payload = _length(header, "data_length"), _length(header, "payload_length")
    try:
        extra = await reader.readexactly(n_data) if n_data else b""
        payload = await reader.readexactly(n_payload) if n_payload else None
    except asyncio.IncompleteReadError:
        return None
    try:
        if extra:
            data = {**(data if isinstance(data, dict) else {}), **json.loads(extra)}
    except (ValueError, TypeError):
        raise Malformed("the event's data is not a JSON object") from None
    if not isinstance(data, dict):
        raise Malformed("the event's data is not a JSON object")
    return Event(type=header["type"], data=data, payload=payload)


def _text(event: Event) -> str:
    text = event.data.get("text")
    if not isinstance(text, str):
        raise Malformed(f"{event.type} needs a string 'text'")
    return text


def _voice_name(event: Event) -> str | None:
    voice = event.data.get("voice")
    if voice is None:
        return None
    name = voice.get("name") if isinstance(voice, dict) else voice
    if name is not None and not isinstance(name, str):
        raise Malformed("'voice' must be {\"name\": <voice id>}")
    return name


@dataclass
class Stream:
    """A streamed request: its voice, the text not yet said, whether audio has started."""

    voice: str | None
    pending: str = ""
    said: bool = False
    failed: bool = False


class LaneWyomingHandler(AsyncEventHandler):
    def __init__(self, state: ServerState, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.state = state
        self.stream: Stream | None = None
        self.audio_open = False  # audio-start sent, audio-stop not yet

    async def run(self) -> None:
        """Events until the client goes: every malformed one answered with an error event."""
        try:
            while True:
                try:
                    event = await read_event(self.reader)
                    if event is None:
                        break
                    await self.handle_event(event)
                except Malformed as bad:
                    await self.refuse(LaneError("request_invalid", str(bad)))
                    if bad.fatal:
                        break
                except LaneError as err:
                    await self.refuse(err)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away
        finally:
            self.writer.close()

    async def refuse(self, err: LaneError, mode: str | None = None) -> None:
        self.state.metrics.refused("wyoming", err.code)
        if mode:
            self.state.metrics.wyoming_requests.labels(mode, err.code).inc()
        await self.write_event(Error(text=err.detail, code=err.code).event())

    async def handle_event(self, event: Event) -> bool:
        kind = event.type
        self.state.metrics.wyoming_events.labels(kind if kind in WYOMING_EVENTS else "other").inc()
        if Describe.is_type(kind):
            await self.write_event(info(self.state).event())
        elif Ping.is_type(kind):
            await self.write_event(Pong(text=str(event.data.get("text") or "")).event())
        elif Synthesize.is_type(kind):
            if self.stream is None:  # inside a stream: Home Assistant's copy for older servers
                await self.single(_text(event), _voice_name(event))
        elif SynthesizeStart.is_type(kind):
            self.stream = Stream(_voice_name(event))
        elif SynthesizeChunk.is_type(kind):
            await self.chunk(_text(event))
        elif SynthesizeStop.is_type(kind):
            await self.stop()
        return True  # anything else is not ours: ignored, the connection kept

    async def end_audio(self) -> None:
        if self.audio_open:
            self.audio_open = False
            await self.write_event(AudioStop().event())

    async def single(self, text: str, name: str | None) -> None:
        """A whole text: audio-start, chunks, audio-stop (or an error, after audio-stop if audio began)."""
        try:
            voice = await pick_voice(self.state.registry, [name])
            await self.say(voice, text_of(text, "text", self.state.settings.max_text_chars))
        except LaneError as err:
            await self.end_audio()
            await self.refuse(err, "single")
            return
        await self.end_audio()
        self.state.metrics.wyoming_requests.labels("single", "ok").inc()

    async def chunk(self, text: str) -> None:
        stream = self.stream
        if stream is None:
            raise Malformed("synthesize-chunk outside a stream (send synthesize-start first)")
        if stream.failed:
            return
        stream.pending += text
        ends = [m.end() for m in SENTENCE_END.finditer(stream.pending)]
        if ends:
            done, stream.pending = stream.pending[: ends[-1]], stream.pending[ends[-1]:]
            await self.say_streamed(stream, done)
        elif len(stream.pending) > self.state.settings.max_text_chars:
            await self.fail(stream, LaneError("request_too_large", "a sentence of over "
                                              f"{self.state.settings.max_text_chars} characters"))

    async def stop(self) -> None:
        stream = self.stream
        if stream is None:
            raise Malformed("synthesize-stop outside a stream")
        if not stream.failed and stream.pending.strip():
            await self.say_streamed(stream, stream.pending)
        if not stream.failed and not stream.said:
            await self.fail(stream, LaneError("empty_text", "the stream had nothing the voice can say"))
        if not stream.failed:
            await self.end_audio()
            self.state.metrics.wyoming_requests.labels("streaming", "ok").inc()
        self.stream = None
        await self.write_event(SynthesizeStopped().event())

    async def say_streamed(self, stream: Stream, text: str) -> None:
        try:
            voice = await pick_voice(self.state.registry, [stream.voice])
            await self.say(voice, text)
            stream.said = True
        except LaneError as err:
            if err.code != "empty_text" or not stream.said:  # a trailing ":)" after speech is no failure
                await self.fail(stream, err)

    async def fail(self, stream: Stream, err: LaneError) -> None:
        """A streamed request that cannot go on: its audio ends here, the error says why; the rest of
        its text is ignored until synthesize-stop."""
        await self.end_audio()
        stream.failed = True
        await self.refuse(err, "streaming")

    async def say(self, voice: Voice, text: str) -> None:
        """`text` in `voice`: admitted, planned, synthesized sentence by sentence into audio-chunk
        events (after audio-start, when audio is not open yet)."""
        synth, rate = self.state.synth, voice.sample_rate
        ticket = await synth.admission.admit()
        try:
            planned = await asyncio.to_thread(plan, voice, text, 1.0, synth.settings)
        except BaseException:
            ticket.release()
            raise
        job = synth.job(voice, planned, 1.0, ticket, PcmStream("raw", rate))
        t0 = time.perf_counter()
        async with contextlib.aclosing(synth.stream(job)) as chunks:
            async for data in chunks:
                if not self.audio_open:
                    await self.write_event(AudioStart(rate=rate, width=WIDTH, channels=CHANNELS).event())
                    self.audio_open = True
                if t0:
                    synth.metrics.first_audio.labels("wyoming").observe(time.perf_counter() - t0)
                    t0 = 0.0
                for i in range(0, len(data), rate * WIDTH):
                    await self.write_event(AudioChunk(rate=rate, width=WIDTH, channels=CHANNELS,
                                                      audio=data[i: i + rate * WIDTH]).event())


def advertise_address(host: str) -> str:
    """The address to advertise: the bound one, or (bound to every interface) the one this host
    reaches the mDNS group from."""
    if host not in ("", "0.0.0.0", "::"):
        return socket.gethostbyname(host)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("224.0.0.251", 5353))
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"


@contextlib.asynccontextmanager
async def zeroconf_advertised(uri: str, port: int) -> Any:
    """`_wyoming._tcp.local.` for this server while the block runs (Home Assistant's discovery)."""
    from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

    address = advertise_address(urlsplit(uri).hostname or "")
    name = f"voice-lane-{socket.gethostname().split('.')[0]}"[:60]
    service = AsyncServiceInfo("_wyoming._tcp.local.", f"{name}._wyoming._tcp.local.",
                               addresses=[socket.inet_aton(address)], port=port,
                               properties={"program": "voice-lane", "version": VERSION})
    zc = AsyncZeroconf()
    await zc.async_register_service(service, allow_name_change=True)  # a second server on the network: name-2
    print(f"wyoming: advertised as {service.name} ({address}:{port})", flush=True)
    try:
        yield service
    finally:
        await zc.async_unregister_service(service)
        await zc.async_close()


async def serve_wyoming(state: ServerState, uri: str, started: asyncio.Event | None = None) -> None:
    """Run the Wyoming server at `uri` (tcp://host:port, unix://path) until cancelled."""
    server = AsyncServer.from_uri(uri)
    factory = lambda reader, writer: LaneWyomingHandler(state, reader, writer)  # noqa: E731
    await server.start(factory)
    print(f"wyoming: serving {len(state.registry.voices)} voice(s) on {uri}", flush=True)
    try:
        async with contextlib.AsyncExitStack() as stack:
            if state.settings.zeroconf and uri.startswith("tcp://"):
                await stack.enter_async_context(zeroconf_advertised(uri, int(urlsplit(uri).port or 10200)))
            if started is not None:
                started.set()
            await asyncio.Event().wait()
    finally:
        await server.stop()

