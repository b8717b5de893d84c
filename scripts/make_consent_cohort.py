#!/usr/bin/env python3
"""Make the spoken-consent cohort: one GE2E embedding per synthetic voice, shipped with the package.

    python scripts/make_consent_cohort.py            # writes lane/assets/consent_cohort/

Every voice of scripts/consent_voices.py (espeak-ng accents x variants, Festival's kal and ked
diphone voices, flite's awb, kal and rms) except the demo speaker (espeak en-us) and the impostor the
tests use (espeak en-us+f3), which stay out so a test never scores a voice against itself. Each voice
reads the three sentences below (processing as the demo data: 16 kHz mono 16-bit); its embedding is
the speaker encoder's (lane.metrics.evaluators.SpeakerEncoder) on the three clips, averaged.

Writes cohort.npz (names, embeddings) and cohort.json (the voices, the sentences, the encoder's
sha256, the engines' versions), then prints the sha256 to pin in lane/consent/voice.py.
Installs the Debian packages festival, festvox-kallpc16k, festvox-kdlpc16k and flite when missing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import numpy as np  # noqa: E402
from consent_voices import DEMO_SPEAKER, TEST_IMPOSTOR, all_voices, ensure_engines, speak  # noqa: E402

OUT = ROOT / "lane" / "assets" / "consent_cohort"
SENTENCES = (
    "Most people walk to the shops when the weather is fine.",
    "Could you tell me which bus goes to the hospital, please?",
    "We kept the windows open all summer and slept under thin blankets.",
)


def cohort_voices() -> list[str]:
    return [v for v in all_voices() if v not in (DEMO_SPEAKER, TEST_IMPOSTOR)]


def embed_voice(encoder: object, voice: str, tmp: Path) -> np.ndarray:
    from lane.metrics.audio import load_audio

    clips = []
    for i, s in enumerate(SENTENCES):
        clips.append(load_audio(speak(voice, s, tmp / f"{i}.wav", gap_ms=300)))
    return np.asarray(encoder.embed_speaker(clips), dtype=np.float32)  # type: ignore[attr-defined]


def versions() -> dict[str, str]:
    out = {}
    for name, cmd in (("espeak-ng", ["espeak-ng", "--version"]), ("flite", ["flite", "--version"]),
                      ("festival", ["festival", "--version"])):
        r = subprocess.run(cmd, capture_output=True, text=True)
        out[name] = (r.stdout or r.stderr).strip().splitlines()[0] if (r.stdout or r.stderr).strip() else "?"
    return out


def main() -> int:
    from lane.core.fsutil import sha256_file
    from lane.metrics.evaluators import SpeakerEncoder
    from lane.metrics.speaker_encoder import DEFAULT_WEIGHTS

    missing = ensure_engines()
    if missing:
        print(f"missing Debian packages: {' '.join(missing)} (apt-get install them, then rerun)", file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(1)  # one thread: many times faster than two on a shared, busy CPU
    encoder = SpeakerEncoder()
    voices = cohort_voices()
    embs = []
    with tempfile.TemporaryDirectory(prefix="lane-cohort-") as tmp:
        for i, v in enumerate(voices, 1):
            embs.append(embed_voice(encoder, v, Path(tmp)))
            print(f"[{i}/{len(voices)}] {v}", flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    np.savez(OUT / "cohort.npz", names=np.array(voices), embeddings=np.stack(embs))
    meta = {"voices": voices, "excluded": [DEMO_SPEAKER, TEST_IMPOSTOR], "sentences": list(SENTENCES),
            "processing": "engine default rate and pitch; sox -R rate -v 16000, mono, 16-bit; 300 ms between clips",
            "encoder": {"name": "resemblyzer GE2E (lane.metrics.speaker_encoder)", "sha256": sha256_file(DEFAULT_WEIGHTS)},
            "engines": versions(), "made_by": "scripts/make_consent_cohort.py"}
    (OUT / "cohort.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    print(f"cohort: {len(voices)} voices -> {OUT / 'cohort.npz'} sha256 {sha256_file(OUT / 'cohort.npz')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
