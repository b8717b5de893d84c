"""Wyoming for Home Assistant: `lane serve --wyoming tcp://127.0.0.1:PORT` answered with the `wyoming`
package's own client over loopback: describe -> info listing the voices (locale, description from the
bundle's manifest, streaming supported); synthesize -> audio-start, audio-chunk ..., audio-stop; a
streamed request the way Home Assistant sends one (synthesize-start, synthesize-chunk ..., synthesize,
synthesize-stop) -> audio while the text is still coming, then audio-stop and synthesize-stopped;
an unknown voice and every malformed event -> an error event, the connection kept."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from net import free_port
from serve_helpers import metric


async def _next(client: Any, limit: float = 120) -> Any:
    event = await asyncio.wait_for(client.read_event(), limit)
    assert event is not None, "the server closed the connection"
    return event


async def _until(client: Any, kind: str) -> list[Any]:
    seen = []
    while True:
        event = await _next(client)
        seen.append(event)
        if event.type == kind:
            return seen


async def _single(uri: str) -> dict[str, Any]:
    from wyoming.audio import AudioChunk, AudioStart
    from wyoming.client import AsyncClient
    from wyoming.error import Error
    from wyoming.info import Describe, Info
    from wyoming.tts import Synthesize, SynthesizeVoice

    out: dict[str, Any] = {}
    async with AsyncClient.from_uri(uri) as client:
        await client.write_event(Describe().event())
        out["info"] = Info.from_event(await _next(client))
        await client.write_event(Synthesize(text="Hello there. This is a second sentence.",
                                            voice=SynthesizeVoice(name="tiny")).event())
        events = await _until(client, "audio-stop")
        out["start"] = AudioStart.from_event(events[0])
        out["chunks"] = [AudioChunk.from_event(e) for e in events if AudioChunk.is_type(e.type)]
        await client.write_event(Synthesize(text="Hello.", voice=SynthesizeVoice(name="nobody")).event())
        out["error"] = Error.from_event(await _next(client))
    return out


def test_wyoming_describe_and_synthesize(served_root: Path, serve_app: Any) -> None:
    uri = f"tcp://127.0.0.1:{free_port()}"
    serve_app(served_root, wyoming=uri)
    got = asyncio.run(_single(uri))
    (program,) = got["info"].tts
    assert program.name == "voice-lane" and [v.name for v in program.voices] == ["tiny"]
    assert program.supports_synthesize_streaming
    voice = program.voices[0]
    assert voice.languages == ["en_US"] and voice.installed
    # the description comes from the bundle's own manifest: the tiny voice is FastPitch + Griffin-Lim
    assert "Griffin-Lim" in voice.description and "HiFi-GAN" not in voice.description
    assert "HiFi-GAN" not in (program.description or "")
    start = got["start"]
    assert (start.rate, start.width, start.channels) == (22050, 2, 1)
    assert got["chunks"] and all(c.rate == 22050 and len(c.audio) <= 2 * 22050 for c in got["chunks"])
    assert sum(c.samples for c in got["chunks"]) / 22050 > 0.5
    assert got["error"].code == "not_found" and "nobody" in got["error"].text


async def _streamed(uri: str) -> dict[str, Any]:
    """Home Assistant's streaming order; the first sentence's audio is awaited before the rest of the
    text is sent, so audio that arrives proves it was synthesized while the text was still coming."""
    from wyoming.client import AsyncClient
    from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeVoice

    voice = SynthesizeVoice(name="tiny")
    async with AsyncClient.from_uri(uri) as client:
        await client.write_event(SynthesizeStart(voice=voice).event())
        for part in ("The bed light ", "is off. The kit"):
            await client.write_event(SynthesizeChunk(text=part).event())
        early = [await _next(client), await _next(client)]  # before any more text is sent
        for part in ("chen lights are on. Anything ", "else?"):
            await client.write_event(SynthesizeChunk(text=part).event())
        await client.write_event(Synthesize(text="The bed light is off. The kitchen lights are on. Anything else?",
                                            voice=voice).event())  # HA's copy for older servers: ignored
        await client.write_event(SynthesizeStop().event())
        rest = await _until(client, "synthesize-stopped")
    return {"early": early, "rest": rest}


def test_wyoming_streams_audio_while_the_text_is_still_coming(served_root: Path, serve_app: Any) -> None:
    from wyoming.audio import AudioChunk

    uri = f"tcp://127.0.0.1:{free_port()}"
    url, _ = serve_app(served_root, wyoming=uri)
    got = asyncio.run(_streamed(uri))
    assert [e.type for e in got["early"]] == ["audio-start", "audio-chunk"]
    kinds = [e.type for e in got["rest"]]
    assert kinds[-2:] == ["audio-stop", "synthesize-stopped"] and "audio-start" not in kinds
    assert "error" not in kinds
    chunks = [AudioChunk.from_event(e) for e in [*got["early"], *got["rest"]] if AudioChunk.is_type(e.type)]
    assert sum(c.samples for c in chunks) / 22050 > 1.0  # three sentences, not only the first
    import httpx

    text = httpx.get(f"{url}/metrics").text
    assert metric(text, "lane_serve_wyoming_requests_total", mode="streaming", outcome="ok") == 1
    assert metric(text, "lane_serve_wyoming_events_total", type="synthesize-chunk") == 4
    assert metric(text, "lane_serve_pieces_total", voice="tiny") >= 3


async def _malformed(host: str, port: int) -> list[dict[str, Any]]:
    """Raw lines a broken or hostile client might send; after each, the server must still answer."""
    reader, writer = await asyncio.open_connection(host, port)
    answers = []
    bad = [b"this is not json\n", b'{"no_type": 1}\n', b"[1, 2]\n", b'{"type": "synthesize", "data": {}}\n',
           b'{"type": "synthesize", "data": {"text": 42}}\n', b'{"type": "synthesize-chunk", "data": {"text": "x"}}\n',
           b'{"type": "synthesize-stop"}\n', b'{"type": "synthesize", "data": {"text": "Hi.", "voice": 7}}\n',
           b'{"type": "synthesize", "data_length": 5}\n[1,2]']
    for line in bad:
        writer.write(line)
        writer.write(b'{"type": "ping", "data": {"text": "still there?"}}\n')
        await writer.drain()
        error = json.loads(await asyncio.wait_for(reader.readline(), 60))
        data = json.loads(await reader.readexactly(error["data_length"])) if error.get("data_length") else {}
        pong = json.loads(await asyncio.wait_for(reader.readline(), 60))
        if pong.get("data_length"):
            await reader.readexactly(pong["data_length"])
        answers.append({"type": error["type"], "code": data.get("code"), "then": pong["type"]})
    writer.write(b'{"type": "synthesize", "payload_length": 99999999999}\n')  # cannot be followed past
    await writer.drain()
    error = json.loads(await asyncio.wait_for(reader.readline(), 60))
    await reader.readexactly(error["data_length"])
    answers.append({"type": error["type"], "closed": await asyncio.wait_for(reader.read(), 60) == b""})
    writer.close()
    return answers


def test_every_malformed_wyoming_event_gets_an_error_event(served_root: Path, serve_app: Any) -> None:
    port = free_port()
    url, _ = serve_app(served_root, wyoming=f"tcp://127.0.0.1:{port}")
    answers = asyncio.run(_malformed("127.0.0.1", port))
    assert all(a == {"type": "error", "code": "request_invalid", "then": "pong"} for a in answers[:-1]), answers
    assert answers[-1] == {"type": "error", "closed": True}
    import httpx

    assert metric(httpx.get(f"{url}/metrics").text, "lane_serve_rejected_total", layer="wyoming",
                  code="request_invalid") == len(answers)


def test_zeroconf_advertises_the_wyoming_server(served_root: Path, serve_app: Any) -> None:
    """With zeroconf on, the server is found the way Home Assistant finds Wyoming services (mDNS)."""
    import socket

    from zeroconf import Zeroconf

    port = free_port()
    serve_app(served_root, wyoming=f"tcp://127.0.0.1:{port}", zeroconf=True)
    zc = Zeroconf()
    try:
        name = f"voice-lane-{socket.gethostname().split('.')[0]}"[:60] + "._wyoming._tcp.local."
        found = zc.get_service_info("_wyoming._tcp.local.", name, timeout=30000)
    finally:
        zc.close()
    assert found is not None and found.port == port and found.parsed_addresses() == ["127.0.0.1"]
    assert found.properties[b"program"] == b"voice-lane"
