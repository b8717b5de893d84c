#!/usr/bin/env bash
# Sets up the environment (idempotent) and runs the lane end to end on the embedded demo data:
# verify -> train -> export -> validate, then prints where the report and bundle are.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PYTHONUNBUFFERED=1
[ -f data/demo/longform.flac ] || .venv/bin/python scripts/make_demo_data.py
# the demo speaker's spoken consent, made here as a person's is (challenge, reading, check): README, Speaker consent
.venv/bin/python scripts/make_demo_data.py consent
set +e
.venv/bin/lane run --profile demo --audio data/demo/longform.flac "$@"  # longform.txt is found beside it, the consent in the ledger
rc=$?
set -e
echo "readiness reports: $(ls -t reports/readiness-*.md 2>/dev/null | head -1)"
exit $rc
