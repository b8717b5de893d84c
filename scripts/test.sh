#!/usr/bin/env bash
# Sets up the environment (idempotent) and runs the whole test suite: ruff, mypy, pytest.
#   bash scripts/test.sh                 # everything
#   bash scripts/test.sh -k protocol     # extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."
# the tests also drive headless Chromium (the rendered report): Debian's chromium
LANE_APT_EXTRA="chromium ${LANE_APT_EXTRA:-}" bash scripts/setup.sh
export PYTHONUNBUFFERED=1
.venv/bin/ruff check lane tests bench scripts
.venv/bin/mypy lane
.venv/bin/python -m pytest "$@"
