#!/usr/bin/env bash
# Chromium from Debian's packages for the dashboard's browser test (Playwright drives it).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" != "0" ]; then echo "not root: cannot apt-get install chromium"; exit 1; fi
(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) 2>&1 | tail -2
command -v chromium >/dev/null
