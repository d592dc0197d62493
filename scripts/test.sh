#!/usr/bin/env bash
# Run the whole test suite (installs what it needs first). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/setup_browser.sh || echo "openrft: browser tests will be skipped (Chromium could not be installed)"
exec .venv/bin/python -m pytest "$@"
