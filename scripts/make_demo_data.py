#!/usr/bin/env python3
"""Make the embedded demo data, reproducibly, from espeak-ng and sox (Debian packages).

    python scripts/make_demo_data.py            # writes data/demo/ and data/eval/

- data/demo/longform.flac + longform.txt: one en-us voice reading 44 distinct sentences with natural
  pauses of 0.3-1.2 s (seeded), 16 kHz mono 16-bit FLAC, about three minutes;
- data/demo/ljspeech/: metadata.csv (id|text|normalized_text) + wavs/, six clips;
- data/eval/impostor.flac: about 20 s of a different espeak-ng voice (en-us+f3, a female variant), for the
  speaker-similarity baseline in validate;

Same espeak-ng/sox versions -> byte-identical files; the whole set stays under 5 MB.

    python scripts/make_demo_data.py consent    # the demo speaker's spoken consent, in this workspace

makes the demo speaker's spoken consent the way a person's is made (README: Speaker consent): `lane
consent challenge` issues a one-time statement into this workspace's ledger, the demo speaker's
espeak-ng voice reads it (the voice and processing of longform.flac), and `lane consent record`
checks it and signs it in. A fresh clone has an empty ledger, so this cannot be shipped ready-made;
it runs in a few seconds, and does nothing when the workspace already holds an accepted consent for
demo_voice that covers longform.flac. When the ASR does not hear the statement (it hears about 7 in
10 of the one-time words of this synthetic voice) it asks for a new statement, as an operator would
ask a person to read again, up to five times.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lane.data.espeak import concat, sox, speak  # noqa: E402

RATE = 16000
VOICE = "en-us"

SENTENCES = [
    "The morning train left the station a few minutes after seven.",
    "She planted tomatoes, beans and a row of tall sunflowers in the garden.",
    "Our neighbour repairs old radios in a small shed behind his house.",
    "The library closes early on Sundays during the summer months.",
    "He painted the wooden fence a bright shade of blue.",
    "A cold wind blew across the harbour as the boats came in.",
    "Please remember to water the plants before you leave for work.",
    "The children built a castle of sand near the edge of the water.",
    "My grandmother baked bread every Friday for the whole family.",
    "The museum opened a new room full of maps and old compasses.",
    "We walked along the river until the sun went down behind the hills.",
    "The baker sold out of apple pies before noon.",
    "A small brown dog followed us all the way home from the park.",
    "The teacher asked everyone to read the first chapter by Monday.",
    "Heavy rain made the mountain road slippery and dangerous.",
    "They found a quiet table in the corner of the crowded cafe.",
    "The old clock in the hall still keeps perfect time.",
    "Fresh snow covered the village during the night.",
    "He wrote a long letter to his brother who lives by the sea.",
    "The market is busiest on Saturday mornings.",
    "Bright lanterns floated slowly across the lake after dark.",
    "The pilot announced that we would land twenty minutes early.",
    "She keeps her notes in a green folder on the top shelf.",
    "The farmer counted his sheep twice before closing the gate.",
    "A gentle voice on the radio read the evening news.",
    "The bridge was closed for repairs for most of the spring.",
    "We shared a pot of tea and talked about the old days.",
    "The garden gate creaks whenever the wind picks up.",
    "Thousands of birds gather on the marsh every autumn.",
    "The workshop smells of sawdust, varnish and fresh coffee.",
    "Our team finished the puzzle just before the lights went out.",
    "He carried the heavy boxes up three flights of stairs.",
    "The orchestra tuned their instruments while the hall filled up.",
    "A letter arrived this morning with a stamp from a distant country.",
    "The cat slept all afternoon in a patch of warm sunlight.",
    "The path through the forest is marked with small white stones.",
    "She learned to play the piano when she was only six years old.",
    "The lighthouse keeper climbed the tower every evening at dusk.",
    "Warm soup and fresh bread made a perfect supper.",
    "The town hall clock struck twelve as we crossed the square.",
    "A fisherman mended his nets on the quiet pier.",
    "The kettle whistled loudly in the empty kitchen.",
    "They watched the stars from the roof until midnight.",
    "Every story in this book begins with a journey.",
]

LJSPEECH = [
    ("demo_0001", "The quick brown fox jumps over the lazy dog."),
    ("demo_0002", "Seven sailors sang songs on the deck of the ship."),
    ("demo_0003", "The garden was full of roses in the early summer."),
    ("demo_0004", "We met at the corner cafe at half past four."),
    ("demo_0005", "A soft rain fell on the roof all night long."),
    ("demo_0006", "The old man told stories about the village long ago."),
]

IMPOSTOR = [
    "The weather changed quickly as we reached the top of the hill.",
    "Nobody expected the little shop to stay open so late.",
    "A long queue formed outside the theatre before the show.",
    "The river was higher than anyone could remember.",
    "He left his umbrella on the bus again this morning.",
]


def make(out_root: Path) -> None:
    from lane.data.text import normalize_text

    rng = random.Random(20261122)
    demo = out_root / "data" / "demo"
    demo.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lane-demo-") as tmp:
        t = Path(tmp)
        parts = []
        for i, s in enumerate(SENTENCES):
            gap = int(rng.uniform(300, 1200))
            parts.append(speak(s, t / f"s{i:03d}.wav", voice=VOICE, rate_wpm=165, sample_rate=RATE, gap_ms=gap))
        lead = t / "lead.wav"
        sox(["-n", "-r", str(RATE), "-c", "1", "-b", "16", str(lead), "trim", "0", "0.5"])
        concat([lead, *parts], demo / "longform.flac")
        (demo / "longform.txt").write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")

        lj = demo / "ljspeech"
        (lj / "wavs").mkdir(parents=True, exist_ok=True)
        rows = []
        for cid, text in LJSPEECH:
            speak(text, lj / "wavs" / f"{cid}.wav", voice=VOICE, rate_wpm=165, sample_rate=RATE, gap_ms=150)
            rows.append(f"{cid}|{text}|{normalize_text(text)}")
        (lj / "metadata.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")

        ev = out_root / "data" / "eval"
        ev.mkdir(parents=True, exist_ok=True)
        iparts = [speak(s, t / f"i{i}.wav", voice="en-us+f3", rate_wpm=160, pitch=35, sample_rate=RATE,
                        gap_ms=int(rng.uniform(300, 800))) for i, s in enumerate(IMPOSTOR)]
        concat(iparts, ev / "impostor.flac")
        (ev / "impostor.txt").write_text("\n".join(IMPOSTOR) + "\n", encoding="utf-8")


DEMO_VOICE_ID = "demo_voice"
DEMO_SPEAKER_NAME = "Demo Speaker"


def _lane(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lane", *args, "--root", str(ROOT)], capture_output=True, text=True,
                          cwd=ROOT)


def has_consent(recording: Path) -> bool:
    from lane.consent.gate import covering, problem, spoken_for

    record = spoken_for(ROOT, DEMO_VOICE_ID)
    if record is None:
        return False
    try:
        return problem(covering(ROOT, record, [recording], DEMO_VOICE_ID), DEMO_VOICE_ID) == ""
    except Exception:
        return False


def consent(attempts: int = 5) -> int:
    """The demo speaker's spoken consent, through the CLI as an operator would run it."""
    recording = ROOT / "data" / "demo" / "longform.flac"
    if has_consent(recording):
        print("demo consent: an accepted spoken consent for demo_voice already covers data/demo/longform.flac")
        return 0
    for attempt in range(1, attempts + 1):
        issued = _lane("consent", "challenge", "--voice-profile-id", DEMO_VOICE_ID, "--speaker", DEMO_SPEAKER_NAME,
                       "--use", "commercial", "--json")
        if issued.returncode != 0:
            print(issued.stdout + issued.stderr, file=sys.stderr)
            return issued.returncode
        ch = json.loads(issued.stdout)
        with tempfile.TemporaryDirectory(prefix="lane-demo-consent-") as tmp:
            take = speak(ch["text"], Path(tmp) / "consent.wav", voice=VOICE, rate_wpm=165, sample_rate=RATE, gap_ms=300)
            done = _lane("consent", "record", str(take), "--challenge", ch["id"], "--audio", str(recording))
        print(f"demo consent, take {attempt}: {ch['text']}\n{done.stdout.strip()}")
        if done.returncode == 0 or "consent_statement_mismatch" not in done.stdout:
            return done.returncode
    return 1


def main() -> int:
    if sys.argv[1:] == ["consent"]:
        return consent()
    make(ROOT)
    total = sum(p.stat().st_size for d in ("data/demo", "data/eval") for p in (ROOT / d).rglob("*") if p.is_file())
    print(f"demo data: {total / 1e6:.2f} MB under data/demo and data/eval")
    return 0 if total < 5e6 else 1


if __name__ == "__main__":
    raise SystemExit(main())
