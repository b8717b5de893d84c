"""Weights manifest verification: cold (streaming sha256 of every file) vs warm (the hash cache in
root/.cache/weights-hash.json, keyed by path, size and mtime_ns), for a 300 MB stand-in .nemo and for
the example manifest's real evaluator weights.

    .venv/bin/python bench/bench_weights_hash.py [--mb 300]

Writes bench/results/weights_hash.json. On a shared CPU the numbers are noisy; the machine block says
where they were taken."""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lane.core.weights import verify_manifest  # noqa: E402


def _timed(fn, repeat: int = 3) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=300)
    args = ap.parse_args()
    out: dict[str, object] = {
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count(), "python": platform.python_version()},
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "note": "shared CPU while other work ran: noisy. cold = hash cache removed before each timing, but the file is in the OS page cache (just written), so cold_s is sha256 speed, not disk speed",
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        big = root / "models" / "base.nemo"
        big.parent.mkdir()
        h = hashlib.sha256()
        with open(big, "wb") as f:
            for _ in range(args.mb):
                block = os.urandom(1 << 20)
                h.update(block)
                f.write(block)
        manifest = root / "m.json"
        manifest.write_text(json.dumps({"schema": "voice_weights/1", "entries": [{
            "id": "base", "role": "base_spectrogram", "path": "models/base.nemo", "sha256": h.hexdigest(),
            "source": "bench", "code_license": "Apache-2.0", "weights_license": "CC-BY-4.0", "notes": ""}]}))
        (root / "configs").symlink_to(REPO / "configs")
        cache = root / ".cache" / "weights-hash.json"

        def cold() -> None:
            cache.unlink(missing_ok=True)
            assert verify_manifest(manifest, root).ok

        def warm() -> None:
            r = verify_manifest(manifest, root)
            assert r.ok and r.cache_misses == 0

        t_cold = _timed(cold, 2)
        warm()
        t_warm = _timed(warm, 5)
        out["big_file"] = {"mb": args.mb, "cold_s": round(t_cold, 4), "warm_s": round(t_warm, 5),
                           "cold_mb_per_s": round(args.mb / t_cold, 1), "speedup": round(t_cold / t_warm, 1)}

        example = REPO / "configs" / "voice" / "weights-manifest.example.json"
        eroot = root / "example"
        eroot.mkdir()
        (eroot / "configs").symlink_to(REPO / "configs")
        ecache = eroot / ".cache" / "weights-hash.json"

        def ecold() -> None:
            ecache.unlink(missing_ok=True)
            assert verify_manifest(example, eroot).ok

        def ewarm() -> None:
            assert verify_manifest(example, eroot).cache_misses == 0

        e_cold = _timed(ecold, 2)
        ecold()
        e_warm = _timed(ewarm, 5)
        out["example_manifest"] = {"cold_s": round(e_cold, 4), "warm_s": round(e_warm, 5),
                                   "speedup": round(e_cold / e_warm, 1)}
    dest = REPO / "bench" / "results" / "weights_hash.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
