#!/usr/bin/env bash
# Run the whole test suite: unit and gradient tests, TensorFlow reference checks,
# every notebook under nbval, the quick benchmark, and the real-browser test of
# notebook 06. Sets up .venv (and Debian's Chromium for the browser test) first.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$ROOT"
# System packages: Chromium for the browser test; Debian's copy of the Fashion-MNIST
# IDX files, which the data tests read when present (they write tiny IDX files too).
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -d /usr/share/datasets/fashion-mnist ] || missing+=(dataset-fashion-mnist)
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "[test] installing ${missing[*]} with apt-get"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "[test] missing system packages: ${missing[*]} (install them with apt-get; the browser test needs chromium)" >&2
  fi
fi
export CI="${CI:-true}"          # notebooks train on small subsets under test
python -m pytest tests notebooks --nbval-lax --nbval-current-env -p no:cacheprovider "$@"
