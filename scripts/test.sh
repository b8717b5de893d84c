#!/usr/bin/env bash
# Sets up the environment (idempotent, Slurm and the container engine included) and runs the whole test suite: ruff, mypy, pytest.
#   bash scripts/test.sh                 # everything
#   bash scripts/test.sh -k protocol     # extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."
# the tests also drive headless Chromium (the rendered report): Debian's chromium
LANE_APT_EXTRA="chromium ${LANE_APT_EXTRA:-}" bash scripts/setup.sh
# a real single-node Slurm for the managed_job tests: the packages here; the session fixture
# (tests/slurm_cluster.py) starts the daemons and stops them by their pids when the tests end
bash scripts/slurm/cluster.sh install
# a real container engine for local_docker (podman + runc, debootstrap for the image's base): the
# packages here; the session fixture (tests/container_engine.py) starts the service, builds the image
# and stops the service by its pid when the tests end
bash scripts/container/engine.sh install
export PYTHONUNBUFFERED=1
.venv/bin/ruff check lane tests bench scripts
.venv/bin/mypy lane
.venv/bin/python -m pytest "$@"
