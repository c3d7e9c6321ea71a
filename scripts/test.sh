#!/usr/bin/env bash
# Run the whole test suite: unit and gradient tests, TensorFlow reference checks,
# every notebook under nbval, the quick benchmark, and the real-browser test of
# notebook 06. Sets up .venv (and Debian's Chromium for the browser test) first.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$ROOT"
if [ ! -x /usr/bin/chromium ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "[test] installing Chromium for the browser test"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "[test] /usr/bin/chromium is missing: install Debian's chromium package (the browser test needs it)" >&2
  fi
fi
export CI="${CI:-true}"          # notebooks train on small subsets under test
python -m pytest tests notebooks --nbval-lax --nbval-current-env -p no:cacheprovider "$@"
