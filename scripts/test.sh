#!/usr/bin/env bash
# Run the whole test suite (installs what it needs first): the lint and type gate (ruff, mypy; configured in
# pyproject.toml), then pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/setup_browser.sh || echo "openrft: browser tests will be skipped (Chromium could not be installed)"
echo "openrft: ruff check"
.venv/bin/ruff check --no-cache src tests benchmarks scripts
echo "openrft: mypy"
.venv/bin/mypy --no-incremental
exec .venv/bin/python -m pytest "$@"
