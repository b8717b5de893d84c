#!/usr/bin/env bash
# The seed's one command, kept as a thin wrapper over `lane run`. Every setting comes from the
# environment, exactly as the runbook writes it:
#
#   TRAIN_BACKEND=local|local_docker|managed_job   TRAIN_LANE=<lane id>   AUDIO_PATH=<recording>
#   EXPECTED_HEAD=<git sha>   VOICE_PROFILE_ID=<bundle id>   LANE_PROFILE=demo|production
#
# Extra arguments go to `lane run` (e.g. --transcript FILE, --stages verify). The exit code and the
# final `[tts-prod] status=... reason=...` line are the runner's. LANE_ROOT picks another workspace
# root (artifacts/, runs/, reports/, bundles/); the default is this repository.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
if [ -x "$ROOT/.venv/bin/lane" ]; then
  LANE="$ROOT/.venv/bin/lane"
elif command -v lane >/dev/null 2>&1; then
  LANE="$(command -v lane)"
else
  echo "lane is not installed: run bash scripts/setup.sh" >&2
  exit 4
fi
export PYTHONUNBUFFERED=1
exec "$LANE" run --root "${LANE_ROOT:-$ROOT}" "$@"
