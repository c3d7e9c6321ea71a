#!/usr/bin/env bash
# Open the series in JupyterLab at notebook 00 (sets up .venv on first use).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$ROOT"
exec jupyter lab notebooks/00_start_here.ipynb "$@"
