"""Wyoming for Home Assistant: `lane serve --wyoming tcp://127.0.0.1:PORT` answered with the `wyoming`
package's own client over loopback: describe -> info listing the voices; synthesize -> audio-start,
audio-chunk ..., audio-stop; an unknown voice -> an error event with its reason code."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from net import free_port


async def _talk(uri: str) -> dict[str, Any]:
    from wyoming.audio import AudioChunk, AudioStart, AudioStop
    from wyoming.client import AsyncClient
    from wyoming.error import Error
    from wyoming.info import Describe, Info
    from wyoming.tts import Synthesize, SynthesizeVoice

    out: dict[str, Any] = {"chunks": []}
    async with AsyncClient.from_uri(uri) as client:
        await client.write_event(Describe().event())
        event = await asyncio.wait_for(client.read_event(), 60)
        assert event is not None and Info.is_type(event.type)
        out["info"] = Info.from_event(event)
        await client.write_event(Synthesize(text="Hello there. This is a second sentence.",
                                            voice=SynthesizeVoice(name="tiny")).event())
        while True:
            event = await asyncio.wait_for(client.read_event(), 120)
            assert event is not None
            if AudioStart.is_type(event.type):
                out["start"] = AudioStart.from_event(event)
            elif AudioChunk.is_type(event.type):
                out["chunks"].append(AudioChunk.from_event(event))
            elif AudioStop.is_type(event.type):
                break
        await client.write_event(Synthesize(text="Hello.", voice=SynthesizeVoice(name="nobody")).event())
        event = await asyncio.wait_for(client.read_event(), 60)
        assert event is not None and Error.is_type(event.type)
        out["error"] = Error.from_event(event)
    return out


def test_wyoming_round_trip(served_root: Path, serve_app: Any) -> None:
    uri = f"tcp://127.0.0.1:{free_port()}"
    serve_app(served_root, wyoming=uri)
    got = asyncio.run(_talk(uri))
    (program,) = got["info"].tts
    assert program.name == "voice-lane" and [v.name for v in program.voices] == ["tiny"]
    assert program.voices[0].languages == ["en"] and program.voices[0].installed
    start = got["start"]
    assert (start.rate, start.width, start.channels) == (22050, 2, 1)
    assert got["chunks"] and all(c.rate == 22050 for c in got["chunks"])
    assert sum(c.samples for c in got["chunks"]) / 22050 > 0.5
    assert got["error"].code == "not_found" and "nobody" in got["error"].text
