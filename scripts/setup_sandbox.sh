#!/usr/bin/env bash
# bubblewrap (bwrap) for the python-grader sandbox (src/openrft/graders/sandbox.py). Idempotent and
# quiet: does nothing when bwrap is already there; says one line when it cannot install it.
set -euo pipefail
if command -v bwrap >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" != "0" ]; then
  echo "openrft: python graders need bubblewrap: sudo apt-get install bubblewrap (not root here)"
  exit 0
fi
(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null) 2>&1 | tail -2 || true
command -v bwrap >/dev/null 2>&1 || echo "openrft: could not install bubblewrap; python graders will report python_grader_server_error"
