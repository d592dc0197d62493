#!/usr/bin/env bash
# The main job: the whole workflow on the embedded defaults (installs what it needs first): base model, best
# prompt, SFT, RFT and SFT→RFT scored on the same held-out acts (README, "What the demo does").
#   bash scripts/demo.sh              # the quick budget (see the README for its measured time per stage)
#   bash scripts/demo.sh --seeds 3    # the training stages for three seeds
#   bash scripts/demo.sh --long       # one epoch of 48 steps per training stage
#   bash scripts/demo.sh --full       # every training row (hours)
#   bash scripts/demo.sh --equal-cpu  # plus RFT alone at about SFT→RFT's CPU time, paired against it
#   bash scripts/demo.sh --sft-epochs 1   # the SFT stage's epochs (default 3)
#   bash scripts/demo.sh --rft-only   # the earlier RFT-only demo
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/openrft demo "$@"
