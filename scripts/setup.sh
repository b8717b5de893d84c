#!/usr/bin/env bash
# Sets up everything voice-lane needs on a fresh Debian machine: the system packages (espeak-ng and
# sox make the demo and test audio), a virtual environment at .venv, the CPU build of torch, NeMo TTS,
# and the lane itself with its dev tools. Safe to run again: each step is skipped when already done.
#
#   bash scripts/setup.sh            # lane + NeMo + dev tools
#   LANE_SKIP_APT=1 bash scripts/setup.sh   # when the Debian packages are already there
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${LANE_VENV:-.venv}
TORCH_SPEC=${LANE_TORCH_SPEC:-torch==2.13.0}
APT_PACKAGES=(espeak-ng sox libsndfile1 flac git)

log() { printf '[setup] %s\n' "$*"; }

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
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)

# torch first: asking for the nemo extra before torch is present would pull a multi-GB CUDA build.
if ! "$VENV/bin/python" -c "import torch" >/dev/null 2>&1; then
  log "installing $TORCH_SPEC"
  "${PIP[@]}" install "$TORCH_SPEC" 2>&1 | grep -v '^WARNING: Location' || true
  "$VENV/bin/python" -c "import torch" || { echo "[setup] torch failed to install" >&2; exit 1; }
fi

log "installing voice-lane[nemo,dev] (NeMo takes a few minutes the first time)"
"${PIP[@]}" install -e ".[nemo,dev]" 2>&1 | grep -vE '^(WARNING: Location|ERROR: pip.s dependency resolver|resemblyzer)' || true
# resemblyzer pins the long-dead `typing` backport, which cannot install on Python 3; its real needs
# (librosa, webrtcvad, torch, scipy) are already present, so install it without its metadata deps.
"${PIP[@]}" install --no-deps "resemblyzer==0.1.4" 2>&1 | grep -v '^WARNING: Location' || true
"$VENV/bin/python" -c "import lane, papermill, nemo, resemblyzer, silero_vad, pocketsphinx" 2>/dev/null \
  || { echo "[setup] import check failed" >&2; "$VENV/bin/python" -c "import lane, papermill, nemo, resemblyzer, silero_vad, pocketsphinx"; exit 1; }

# A named kernel, so papermill runs notebooks with this venv's Python whatever Jupyter is on PATH.
"$VENV/bin/python" -m ipykernel install --sys-prefix --name voice-lane --display-name "voice-lane (.venv)" >/dev/null
log "ready: $VENV ($("$VENV/bin/python" -c 'import torch; print("torch", torch.__version__)'))"
