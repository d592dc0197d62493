#!/usr/bin/env bash
# Debian packages openrft uses: bubblewrap (bwrap) for the python-grader sandbox
# (src/openrft/graders/sandbox.py); wordnet-base and wordnet-sense-index, the WordNet 3.0 database the
# `meteor` similarity metric reads (src/openrft/graders/text_similarity.py). Idempotent and quiet: installs only what is missing; says
# one line for what it cannot install.
set -euo pipefail
want=()
command -v bwrap >/dev/null 2>&1 || want+=(bubblewrap)
[ -f /usr/share/wordnet/data.noun ] || want+=(wordnet-base)
[ -f /usr/share/wordnet/index.sense ] || want+=(wordnet-sense-index)
if [ ${#want[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" != "0" ]; then
  echo "openrft: python graders need bubblewrap and meteor needs WordNet: sudo apt-get install ${want[*]} (not root here)"
  exit 0
fi
(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${want[@]}" >/dev/null) 2>&1 | tail -2 || true
command -v bwrap >/dev/null 2>&1 || echo "openrft: could not install bubblewrap; python graders will report python_grader_server_error"
[ -f /usr/share/wordnet/index.sense ] || echo "openrft: could not install WordNet; the meteor metric will be refused at validation"
