#!/usr/bin/env bash
# Rebuild the Binder environment (binder/) in a fresh virtual environment and run
# every notebook in it with nbval. Slow: several minutes, most of it installing
# tensorflow-cpu (pip's cache is kept, so later runs are quicker).
# Usage: bash .ci/binder_check.sh [extra pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; fi
start=$(date +%s)
CNNLIB_BINDER_TEST=1 "$PYTHON" -m pytest tests/test_binder_env.py -m binder \
  -p no:cacheprovider -q -rs "$@"
echo "[binder] finished in $(( $(date +%s) - start )) s"
