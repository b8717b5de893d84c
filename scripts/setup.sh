#!/usr/bin/env bash
# Sets up everything voice-lane needs on a fresh Debian machine: the system packages (espeak-ng and
# sox make the demo and test audio), a virtual environment at .venv, torch (the CPU or the CUDA build,
# chosen explicitly), the NeMo parts the lane uses, and the lane itself with its dev tools.
# Safe to run again: each step is skipped when already done.
#
#   bash scripts/setup.sh                    # lane + NeMo + dev tools
#   LANE_SKIP_APT=1 bash scripts/setup.sh    # when the Debian packages are already there
#   LANE_APT_EXTRA="chromium" ...            # more Debian packages (the test suite's)
#   LANE_TORCH=cpu|cuda bash scripts/setup.sh  # default auto: cuda when `nvidia-smi -L` works, else cpu
#   LANE_TORCH_SPEC='torch==2.13.0' ...      # another torch requirement (same build rules)
#   LANE_SETUP_ONLY=torch ...                # stop once torch is in (tests/test_install.py uses it)
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${LANE_VENV:-.venv}
TORCH_SPEC=${LANE_TORCH_SPEC:-torch==2.13.0}
TORCH_CPU_INDEX=${LANE_TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}
APT_PACKAGES=(espeak-ng flite sox libsndfile1 flac git)
# LANE_APT_EXTRA: more Debian packages (scripts/test.sh adds chromium, which the report tests drive)
read -r -a APT_EXTRA <<< "${LANE_APT_EXTRA:-}"
APT_PACKAGES+=("${APT_EXTRA[@]}")

log() { printf '[setup] %s\n' "$*"; }
warn() { printf '[setup] WARNING: %s\n' "$*" >&2; }
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
# pip install, minus one line of noise some pip configurations print for absent local indexes.
# --no-compile: pip byte-compiles the ~23,000 modules one by one on one core; setup compiles them
# once at the end on every core instead (compileall -j 0), same result.
pip_install() {
  set +e
  "${PIP[@]}" install --no-compile "$@" 2>&1 | grep -v '^WARNING: Location'
  local rc=${PIPESTATUS[0]}
  set -e
  return "$rc"
}

if [ "${LANE_SKIP_APT:-0}" != 1 ]; then
  missing=()
  for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    log "apt-get install ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  python3 -m venv "$VENV"
fi

# torch first, and the build chosen here: anything that depends on torch, installed before it, would
# pull PyPI's default torch, which on Linux is the multi-GB CUDA build.
case "${LANE_TORCH:-auto}" in
  auto) if nvidia-smi -L >/dev/null 2>&1; then want=cuda; else want=cpu; fi ;;
  cpu | cuda) want=$LANE_TORCH ;;
  *) echo "[setup] LANE_TORCH must be auto, cpu or cuda (got '$LANE_TORCH')" >&2; exit 2 ;;
esac
if ! "$VENV/bin/python" -c "import torch" >/dev/null 2>&1; then
  if [ "$want" = cpu ]; then
    # PyTorch's CPU index holds the +cpu builds. It is added as an extra index, so torch's own
    # dependencies still come from the default (or configured) index, and 2.13.0+cpu wins over the
    # default index's plain 2.13.0 (a local version sorts higher). Probed first: pip skips an
    # unreachable index with a warning and would then take the default index's CUDA build.
    if "$VENV/bin/python" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=15)" \
         "${TORCH_CPU_INDEX%/}/torch/" >/dev/null 2>&1; then
      log "installing $TORCH_SPEC (CPU build, from $TORCH_CPU_INDEX)"
      pip_install --extra-index-url "$TORCH_CPU_INDEX" "$TORCH_SPEC"
    else
      log "$TORCH_CPU_INDEX is unreachable: installing plain $TORCH_SPEC (a local or configured CPU wheel, if any)"
      pip_install "$TORCH_SPEC"
    fi
  else
    log "installing $TORCH_SPEC (CUDA build, the default index's)"
    pip_install "$TORCH_SPEC"
  fi || { echo "[setup] torch failed to install" >&2; exit 1; }
fi
build=$("$VENV/bin/python" -c '
import torch
if torch.version.cuda: print(f"torch {torch.__version__} (CUDA {torch.version.cuda} build)")
elif getattr(torch.version, "hip", None): print(f"torch {torch.__version__} (ROCm {torch.version.hip} build)")
else: print(f"torch {torch.__version__} (CPU build)")' 2>/dev/null) \
  || { echo "[setup] torch is installed but does not import" >&2; "$VENV/bin/python" -c "import torch"; exit 1; }
log "$build"
case "$want:$build" in
  cpu:*CUDA* | cpu:*ROCm*)
    warn "********************************************************************************"
    warn "asked for the CPU build of torch (LANE_TORCH=${LANE_TORCH:-auto}) but got: $build"
    warn "that build is several GB and brings nothing without a GPU; to replace it:"
    warn "  rm -rf $VENV && LANE_TORCH=cpu bash scripts/setup.sh"
    warn "********************************************************************************" ;;
  cuda:*CPU*)
    warn "asked for a CUDA build of torch but got: $build (training runs on the CPU);" \
         "set LANE_TORCH_SPEC to a CUDA build, or rm -rf $VENV and run again" ;;
esac
if [ "${LANE_SETUP_ONLY:-}" = torch ]; then exit 0; fi

log "installing voice-lane[nemo,dev,evaluators] (NeMo's TTS and ASR parts the lane uses, the external evaluators)"
pip_install -e ".[nemo,dev,evaluators]" || { echo "[setup] pip install -e .[nemo,dev,evaluators] failed" >&2; exit 1; }
# openai-whisper without its triton requirement (GPU kernels for word timestamps; the lane decodes on the
# CPU without timestamps): its other needs (torch, numba, tiktoken, more-itertools) are installed above.
pip_install --no-deps "openai-whisper==20250625" || { echo "[setup] pip install openai-whisper failed" >&2; exit 1; }
# Whenever the installed set changed (always on a first setup): .pyc for everything installed, so
# imports stay fast where PYTHONDONTWRITEBYTECODE is set (the few files only newer Pythons parse are
# skipped, as pip skips them), and an import of every module the lane takes from NeMo, so a
# dependency missing from the nemo extra shows here. Unchanged since the last success: a quick check.
frozen=$("${PIP[@]}" freeze --all --exclude voice-lane 2>/dev/null || true)
state=$(printf '%s\n' "$frozen" | sha256sum | cut -d' ' -f1)
check="import lane, lane.metrics.speaker_encoder, papermill, silero_vad, pocketsphinx, webrtcvad"
if [ -z "$frozen" ] || [ "$(cat "$VENV/.lane-setup-ok" 2>/dev/null)" != "$state" ]; then
  "$VENV/bin/python" -m compileall -qq -j 0 "$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
    >/dev/null 2>&1 || true
  check="$check, lightning.pytorch
import nemo.collections.tts.models, nemo.collections.asr.models, nemo.collections.tts.g2p.models.en_us_arpabet
import nemo.collections.tts.g2p.models.i18n_ipa"
fi
"$VENV/bin/python" -c "$check" >/dev/null 2>&1 \
  || { echo "[setup] import check failed" >&2; "$VENV/bin/python" -c "$check"; exit 1; }
echo "$state" > "$VENV/.lane-setup-ok"

# A named kernel, so papermill runs notebooks with this venv's Python whatever Jupyter is on PATH.
"$VENV/bin/python" -m ipykernel install --sys-prefix --name voice-lane --display-name "voice-lane (.venv)" >/dev/null
log "ready: $VENV, $build"
