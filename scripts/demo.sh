#!/usr/bin/env bash
# The main job: the end-to-end RFT demo on the embedded defaults (installs what it needs first).
#   bash scripts/demo.sh           # the quick run (14 min on an idle 2-core CPU)
#   bash scripts/demo.sh --long    # one epoch, 48 steps (53 min on a shared 2-core CPU)
#   bash scripts/demo.sh --full    # the full run (hours)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/openrft demo "$@"
