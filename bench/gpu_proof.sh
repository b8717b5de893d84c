#!/usr/bin/env bash
# GPU proof of voice-lane (issue 11): one script, one device call, <= 10 minutes, every measure to JSON.
#
#   bash bench/gpu_proof.sh               # on the GPU machine (the `run` tool: carry .whl, see below)
#   TINY=1 bash bench/gpu_proof.sh        # the same steps with tiny sizes on the CPU (or --tiny)
#   bash bench/gpu_proof.sh --wheel-list  # the wheels the lane needs beyond shared/gpu's two lists
#   bash bench/gpu_proof.sh --prepare     # here, before the device call: wheels into .whl/ (network),
#                                         # and the espeak corpus into .cache/gpu_proof/ if the GPU box lacks espeak-ng
#
# Steps, each under its own hard timeout (and all under BUDGET_S, 570 s by default, so the device call's
# 600 s limit is never hit); a step that would not fit in what is left is skipped and says so:
#   1. env       wheels from .whl/ into /tmp/site (shared/gpu/README.md), versions, GPU, missing modules
#   2. corpus    >= 10.5 min espeak-ng LJSpeech corpus + 12 held-out sentences + impostor
#                (bench/bench_quality.py --make-espeak-data; or the carried .cache/gpu_proof/corpus)
#   3. quality   bench/bench_quality.py: `lane run` with the full-size production profile FROM SCRATCH
#                (--allow-from-scratch), FastPitch 1000 steps at batch 32 (pitch prepared by the data
#                stage, timed), HiFi-GAN from scratch for VOC_STEPS batches, export, validate; then the
#                held-out metrics, batched ONNX RTF (CUDA provider when onnxruntime has one) and batched
#                PyTorch RTF of the trained models on the GPU
#   4. ratio     lane vs bare NeMo FastPitch steps/s on the same dataset (bench_train.py's two loops)
#   5. summary   $OUT/gpu_proof.json (+ bench/results/gpu_proof_<machine>.json), a table on stdout
# Outputs under $OUT (at most 8 files come back from a device call): gpu_proof.json, quality.json,
# train_ratio.json, env.json, log.txt, lane_run.log.
#
# Device call (see shared/gpu/README.md; 64 MiB travel in all, so the evaluator wheels may not fit):
#   run(command="OUT=$OUT bash bench/gpu_proof.sh", carry=[".whl", ".cache/gpu_proof"], timeout_s=600)
# Knobs (environment): BUDGET_S, FP_STEPS (1000), VOC_STEPS (100), RATIO_STEPS (150), MINUTES (10.5),
# HELDOUT_N (12), WORKERS (4), LANE_STAGES (verify,train,export), RTF_BATCH (32), PYTHON,
# WORK (/tmp/gpu_proof_work), OUT (a temporary folder).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
REPO=$PWD
MODE=gpu
[ "${TINY:-0}" = 1 ] && MODE=tiny

# wheels the lane imports that neither the GPU image (KINDS.md) nor shared/gpu/wheels-{nemo,notebooks}.txt has
CORE_WHEELS="cryptography cffi license-expression boolean.py pyloudnorm pyworld num2words docopt nltk
mel-cepstral-distance fastdtw webrtcvad-wheels nbconvert bleach tinycss2 webencodings mistune pandocfilters
defusedxml jupyterlab_pygments beautifulsoup4 soupsieve setuptools"
EVAL_WHEELS="pocketsphinx sounddevice speechmos silero-vad"

wheel_list() {  # NAME==VERSION as installed in this venv (the versions the tests pass with)
  local py=${PYTHON:-.venv/bin/python}
  [ -x "$py" ] || py=python3
  "$py" - "$@" <<'EOF'
import importlib.metadata as m, sys
for name in " ".join(sys.argv[1:]).split():
    try:
        print(f"{name}=={m.version(name)}")
    except m.PackageNotFoundError:
        print(name)
EOF
}

for arg in "$@"; do
  case $arg in
    --tiny) MODE=tiny ;;
    --wheel-list) echo "# core (the lane itself)"; wheel_list $CORE_WHEELS
                  echo "# evaluators (CER, DNSMOS, VAD: ~60 MB; without them those metrics are null with a reason)"
                  wheel_list $EVAL_WHEELS; exit 0 ;;
    --prepare)
      lists=$(mktemp); wheel_list $CORE_WHEELS > "$lists"
      [ "${WITH_EVAL_WHEELS:-0}" = 1 ] && wheel_list $EVAL_WHEELS >> "$lists"
      bash ../shared/gpu/fetch-wheels.sh .whl ../shared/gpu/wheels-nemo.txt ../shared/gpu/wheels-notebooks.txt "$lists"
      # the corpus as 16 kHz FLAC (about a third of the WAV size): unpacked to WAV on the box
      rm -rf .cache/gpu_proof && ${PYTHON:-.venv/bin/python} bench/bench_quality.py --make-espeak-data \
        .cache/gpu_proof/corpus --minutes "${MINUTES:-10.5}" --heldout-n "${HELDOUT_N:-12}" --sample-rate 16000 \
        --data-only || exit 1
      for w in .cache/gpu_proof/corpus/*/wavs/*.wav; do sox "$w" "${w%.wav}.flac" && rm "$w"; done
      du -sh .whl .cache/gpu_proof; exit 0 ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "unknown argument $arg (see --help)"; exit 2 ;;
  esac
done

if [ "$MODE" = tiny ]; then
  : "${BUDGET_S:=1500}" "${FP_STEPS:=4}" "${VOC_STEPS:=2}" "${RATIO_STEPS:=6}" "${MINUTES:=0.5}" "${HELDOUT_N:=2}"
  : "${WORKERS:=0}" "${RTF_BATCH:=4}" "${LANE_STAGES:=verify,train,export,validate}"
  CAP_ENV=120 CAP_CORPUS=120 CAP_QUALITY=900 CAP_RATIO=400
  OVERRIDE='{"resources": {"min_free_disk_gb": 1, "min_free_mem_gb": 1}, "data": {"min_total_s": 10},
    "train": {"accelerator": "cpu", "num_workers": 0, "min_epoch_steps": 2, "checkpoint_every": 2, "stats_every": 2,
      "fastpitch": {"model": {"d_model": 64, "n_layer_enc": 2, "n_layer_dec": 2, "d_head": 32, "d_inner": 128,
                              "predictor_filter": 64, "batch_size": 4, "warmup_steps": 50, "lr": 2.0e-3}},
      "vocoder": {"hifigan": {"init": "scratch", "model": {"batch_size": 2, "upsample_initial_channel": 32,
                                                           "n_segments": 4096}}}},
    "eval": {"max_heldout": 2, "rtf_texts": 1, "nemo_agree_n": 1}}'
  EXTRA_QUALITY=(--eval-sentences 2)
else
  : "${BUDGET_S:=570}" "${FP_STEPS:=1000}" "${VOC_STEPS:=100}" "${RATIO_STEPS:=150}" "${MINUTES:=10.5}"
  : "${HELDOUT_N:=12}" "${WORKERS:=4}" "${RTF_BATCH:=32}"
  # the lane's own validate stage (a kernel, NeMo and the evaluators loaded once more) is left out to fit
  # the 10 minutes: the held-out pass runs the same stage function, NeMo-vs-ONNX agreement included
  : "${LANE_STAGES:=verify,train,export}"
  CAP_ENV=120 CAP_CORPUS=90 CAP_QUALITY=360 CAP_RATIO=120
  OVERRIDE='{"train": {"accelerator": "gpu", "num_workers": '"$WORKERS"',
                       "vocoder": {"hifigan": {"init": "scratch"}}},
             "eval": {"max_heldout": 8}}'
  EXTRA_QUALITY=(--eval-sentences 4)
fi
START=$(date +%s)
DEADLINE=$((START + BUDGET_S))
OUT=${OUT:-$(mktemp -d /tmp/gpu_proof_out.XXXXXX)}
WORK=${WORK:-/tmp/gpu_proof_work}
mkdir -p "$OUT"
rm -rf "$WORK" && mkdir -p "$WORK"
STEPS_TSV=$WORK/steps.tsv
: > "$STEPS_TSV"
exec > >(tee -a "$OUT/log.txt") 2>&1
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg NUMBA_CACHE_DIR=$WORK/numba
echo "gpu_proof: mode=$MODE budget=${BUDGET_S}s out=$OUT work=$WORK $(date -u +%FT%TZ)"

step() {  # NAME CAP_S MIN_S COMMAND...: run under min(CAP, time left); skip when under MIN
  local name=$1 cap=$2 min=$3; shift 3
  local left=$((DEADLINE - $(date +%s) - 5))
  local limit=$((cap < left ? cap : left))
  if [ "$limit" -lt "$min" ]; then
    echo "== $name: SKIPPED (${left}s left, needs >= ${min}s)"
    printf '%s\tskipped\t0\t%s\n' "$name" "$limit" >> "$STEPS_TSV"
    return 1
  fi
  echo "== $name (limit ${limit}s)"
  local t0 rc secs
  t0=$(date +%s%N)
  timeout -k 10 "$limit" "$@"
  rc=$?
  secs=$(( ($(date +%s%N) - t0) / 1000000 ))
  secs=$((secs / 1000)).$(printf '%03d' $((secs % 1000)))
  [ "$rc" = 124 ] || [ "$rc" = 137 ] && echo "== $name: TIMED OUT after ${limit}s"
  echo "== $name: rc=$rc ${secs}s"
  printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$secs" "$limit" >> "$STEPS_TSV"
  return "$rc"
}

# ---------------------------------------------------------------------------------------------- 1. env
setup_env() {
  if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
      || return 1
    export PYTHONPATH=/tmp/site:$REPO${PYTHONPATH:+:$PYTHONPATH}
  else
    export PYTHONPATH=$REPO${PYTHONPATH:+:$PYTHONPATH}
  fi
}
if [ -n "${PYTHON:-}" ]; then PY=$PYTHON
elif [ -x .venv/bin/python ]; then PY=$REPO/.venv/bin/python
else PY=python3; fi
export -f setup_env
step env_wheels "$CAP_ENV" 10 bash -c 'setup_env' || true
# the export inside the step's subshell does not reach us: set the path here too
if [ -d /tmp/site ]; then export PYTHONPATH=/tmp/site:$REPO${PYTHONPATH:+:$PYTHONPATH}
else export PYTHONPATH=$REPO${PYTHONPATH:+:$PYTHONPATH}; fi
step env_check 60 5 "$PY" - "$OUT/env.json" <<'EOF' || true
import importlib, json, os, platform, shutil, subprocess, sys, time
mods = ["torch", "lightning", "nemo.collections.tts.models", "papermill", "ipykernel", "nbconvert", "typer", "yaml",
        "jsonschema", "cryptography", "license_expression", "soundfile", "librosa", "pyworld", "pyloudnorm",
        "num2words", "onnx", "onnxruntime", "editdistance", "mel_cepstral_distance", "pocketsphinx", "speechmos",
        "silero_vad", "lane.cli"]
env = {"python": sys.version.split()[0], "executable": sys.executable, "pythonpath": os.environ.get("PYTHONPATH"),
       "platform": platform.platform(), "binaries": {b: shutil.which(b) for b in ("espeak-ng", "sox", "nvidia-smi")},
       "modules": {}}
for m in mods:
    t = time.perf_counter()
    try:
        mod = importlib.import_module(m)
        env["modules"][m] = {"ok": True, "version": getattr(mod, "__version__", None),
                             "import_s": round(time.perf_counter() - t, 2)}
    except Exception as exc:
        env["modules"][m] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
try:
    import torch
    env["cuda"] = torch.cuda.is_available()
    env["gpu"] = torch.cuda.get_device_name(0) if env["cuda"] else None
    import onnxruntime as ort
    env["onnxruntime_providers"] = ort.get_available_providers()
except Exception as exc:
    env["cuda_error"] = str(exc)
if env["binaries"]["nvidia-smi"]:
    env["nvidia_smi"] = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                                        "--format=csv,noheader"], capture_output=True, text=True).stdout.strip()
env["missing"] = [m for m, v in env["modules"].items() if not v["ok"]]
open(sys.argv[1], "w").write(json.dumps(env, indent=2) + "\n")
print("missing modules:", env["missing"] or "none", "| cuda:", env.get("cuda"), env.get("gpu"))
EOF
# the weights manifest: an evaluator whose wheel did not travel (pkg:// package not installed) is marked
# optional, so the run goes on and its metrics are null with the evaluator's reason (not a blocked verify)
WEIGHTS=$WORK/weights-manifest.json
"$PY" - configs/voice/weights-manifest.example.json "$WEIGHTS" <<'EOF' || WEIGHTS=$REPO/configs/voice/weights-manifest.example.json
import importlib.util, json, sys
data = json.load(open(sys.argv[1]))
for e in data["entries"]:
    path = str(e.get("path", ""))
    if path.startswith("pkg://"):
        pkg = path[len("pkg://"):].split("/", 1)[0]
        if importlib.util.find_spec(pkg) is None:
            e["optional"] = True
            e["notes"] = f"gpu_proof.sh: package {pkg} not installed on this machine, marked optional. " + e.get("notes", "")
            print(f"weights: {e['id']} ({pkg} not installed) marked optional")
json.dump(data, open(sys.argv[2], "w"), indent=2)
EOF
SLUG=$("$PY" -c 'import sys; sys.path.insert(0, "bench"); from bench_quality import machine_slug; print(machine_slug())' 2>/dev/null || echo unknown)
[ "$MODE" = tiny ] && SLUG="${SLUG}_tiny"
echo "machine: $SLUG"

# ---------------------------------------------------------------------------------------------- 2. corpus
CORPUS=$WORK/corpus
if command -v espeak-ng >/dev/null && command -v sox >/dev/null; then
  step corpus "$CAP_CORPUS" 10 "$PY" bench/bench_quality.py --make-espeak-data "$CORPUS" --minutes "$MINUTES" \
    --heldout-n "$HELDOUT_N" --data-only || true
elif [ -f .cache/gpu_proof/corpus/corpus.json ]; then
  echo "== corpus: no espeak-ng/sox here: the carried .cache/gpu_proof/corpus (FLAC -> WAV, consent rewritten)"
  step corpus "$CAP_CORPUS" 10 "$PY" - "$REPO/.cache/gpu_proof/corpus" "$CORPUS" <<'EOF' || true
import shutil, sys
from pathlib import Path
import soundfile as sf
sys.path.insert(0, "bench")
from bench_quality import _consent
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
shutil.copytree(src, dst, dirs_exist_ok=True)
for split in ("train", "heldout"):
    for f in sorted((dst / split / "wavs").glob("*.flac")):
        audio, sr = sf.read(str(f), dtype="int16")
        sf.write(str(f.with_suffix(".wav")), audio, sr, subtype="PCM_16")
        f.unlink()
    _consent(dst / split, sorted((dst / split / "wavs").glob("*.wav")), "en-us")
print("corpus unpacked:", dst)
EOF
else
  echo "== corpus: FAILED: no espeak-ng/sox and no carried .cache/gpu_proof/corpus (bash bench/gpu_proof.sh --prepare)"
  printf 'corpus\tmissing\t0\t0\n' >> "$STEPS_TSV"
fi

# ---------------------------------------------------------------------------------------------- 3. quality
if [ -f "$CORPUS/corpus.json" ]; then
  step quality "$CAP_QUALITY" 60 "$PY" bench/bench_quality.py --train "$CORPUS/train" --heldout "$CORPUS/heldout" \
    --impostor "$CORPUS/impostor.flac" --profile production --allow-from-scratch --steps "$FP_STEPS" \
    --vocoder-steps "$VOC_STEPS" --override "$OVERRIDE" "${EXTRA_QUALITY[@]}" --max-heldout "$HELDOUT_N" \
    --rtf-batch "$RTF_BATCH" --torch-rtf "$RTF_BATCH" --workdir "$WORK/qws" --machine-slug "$SLUG" \
    --weights-manifest "$WEIGHTS" \
    --out "$OUT/quality.json" --lane-stages "$LANE_STAGES" --lane-timeout-s $((CAP_QUALITY - 90)) || true
  [ -f "$WORK/qws/qbench_lane_run.log" ] && cp "$WORK/qws/qbench_lane_run.log" "$OUT/lane_run.log"
fi

# ---------------------------------------------------------------------------------------------- 4. ratio
if [ -f "$WORK/qws/artifacts/train_status.tts_prod_train_nemo.json" ]; then
  step ratio "$CAP_RATIO" 40 "$PY" bench/bench_quality.py --ratio-from "$WORK/qws" --ratio-steps "$RATIO_STEPS" \
    --ratio-repeats 1 --ratio-workers "$WORKERS" --machine-slug "$SLUG" --out "$OUT/train_ratio.json" || true
else
  echo "== ratio: SKIPPED (no lane run dataset)"
  printf 'ratio\tskipped\t0\t0\n' >> "$STEPS_TSV"
fi

# ---------------------------------------------------------------------------------------------- 5. summary
"$PY" - "$OUT" "$STEPS_TSV" "$SLUG" "$MODE" "$START" "$FP_STEPS" "$VOC_STEPS" <<'EOF'
import json, sys, time
from pathlib import Path
out, steps_tsv, slug, mode, start, fp_steps, voc_steps = sys.argv[1:8]
out = Path(out)
sys.path.insert(0, "bench")
from benchlib import machine

def load(name):
    try:
        return json.loads((out / name).read_text())
    except (OSError, ValueError):
        return None

steps = {}
for line in Path(steps_tsv).read_text().splitlines():
    name, rc, secs, limit = line.split("\t")
    steps[name] = {"rc": rc, "seconds": round(float(secs or 0), 1), "limit_s": int(float(limit or 0))}
q, ratio, env = load("quality.json") or {}, load("train_ratio.json") or {}, load("env.json") or {}
tr, m = q.get("training") or {}, q.get("metrics") or {}
rb, rt = q.get("rtf_batched") or {}, q.get("rtf_torch_batched") or {}
fp1000 = tr.get("fastpitch_wall_incl_pitch_prep_s")
measures = {
    "lane_over_bare_effective": ratio.get("lane_over_bare_effective"),
    "lane_over_bare_median": ratio.get("lane_over_bare_median"),
    "lane_effective_steps_per_s": ratio.get("lane_effective_steps_per_s"),
    "bare_effective_steps_per_s": ratio.get("bare_effective_steps_per_s"),
    "fastpitch_steps": tr.get("fastpitch_steps"), "fastpitch_batch": tr.get("batch_size"),
    "fastpitch_wall_s": tr.get("train_wall_s"), "pitch_prep_s": tr.get("pitch_prep_s"),
    "fastpitch_wall_incl_pitch_prep_s": fp1000, "hifigan_steps": tr.get("hifigan_steps"),
    "onnx_batched_rtf": rb.get("rtf"), "onnx_batched_provider": rb.get("provider"),
    "onnx_batched_fastpitch_rtf": rb.get("rtf_fastpitch"),
    "torch_batched_rtf": rt.get("rtf"), "torch_batched_fastpitch_rtf": rt.get("rtf_fastpitch"),
    "torch_device": rt.get("device"),
    **{f"quality_{k}": m.get(k) for k in ("cer_synth", "cer_ratio", "spk_sim", "spk_margin", "mcd_db", "f0_corr",
                                           "dnsmos_ovrl", "dnsmos_ratio", "rtf_cpu")},
    "lane_status": (q.get("run") or {}).get("status_line"),
}
targets = {"lane_over_bare_effective": ">= 1.0", "fastpitch_wall_incl_pitch_prep_s": "<= 120 (1000 steps, batch 32)"}
res = {"bench": "gpu_proof", "mode": mode, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(start))),
       "machine": machine(slug=slug), "machine_slug": slug, "settings": {"fastpitch_steps": int(fp_steps),
       "hifigan_steps": int(voc_steps)}, "steps": steps, "measures": measures, "targets": targets,
       "missing_modules": env.get("missing"), "env": env, "quality": q or None, "train_ratio": ratio or None,
       "total_wall_s": round(time.time() - float(start), 1),
       "note": ("tiny sizes on the CPU: proves every step runs, not GPU speed" if mode == "tiny" else
                "GPU run: full-size production profile from scratch, bounded steps")}
text = json.dumps(res, indent=2, default=str) + "\n"
(out / "gpu_proof.json").write_text(text)
dst = Path("bench/results") / f"gpu_proof_{slug}.json"
dst.parent.mkdir(parents=True, exist_ok=True)
dst.write_text(text)
print("\n==================== gpu_proof summary ====================")
print(f"machine {slug}  mode {mode}  total {res['total_wall_s']} s")
for name, s in steps.items():
    print(f"  step {name:<12} rc={s['rc']:<8} {s['seconds']:>7} s (limit {s['limit_s']} s)")
for k, v in measures.items():
    print(f"  {k:<38} {v}" + (f"   target {targets[k]}" if k in targets else ""))
print(f"written: {out / 'gpu_proof.json'} and {dst}")
EOF
