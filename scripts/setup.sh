#!/usr/bin/env bash
# Shared setup for scripts/lab.sh and scripts/test.sh: a virtual environment in
# .venv with everything from requirements.txt (cnnlib itself included, editable).
# Re-running is cheap: pip skips what is already installed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CNNLIB_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating virtual environment $VENV"
  "$PYTHON" -m venv "$VENV"
fi
echo "[setup] installing requirements.txt into $VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
(cd "$ROOT" && "$VENV/bin/python" -m pip install --quiet -r requirements.txt)
# Offline development copy of MNIST, if this checkout sits beside one (CI does).
if [ -z "${CNNLIB_MNIST:-}" ] && [ -f "$ROOT/../shared/data/mnist.npz" ]; then
  export CNNLIB_MNIST="$ROOT/../shared/data/mnist.npz"
fi
export PATH="$VENV/bin:$PATH"
