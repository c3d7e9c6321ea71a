#!/usr/bin/env bash
# Open the series in JupyterLab at notebook 00 (sets up .venv on first use).
# Extra arguments go to `jupyter lab`, e.g. `bash scripts/lab.sh --no-browser --port 8899`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$ROOT"
extra=()
if [ "$(id -u)" = 0 ]; then extra+=(--allow-root); fi      # containers often run as root
exec jupyter lab "${extra[@]}" --ServerApp.root_dir="$ROOT" \
  --LabApp.default_url=/lab/tree/notebooks/00_start_here.ipynb "$@"
