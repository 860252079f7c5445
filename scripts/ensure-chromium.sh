#!/usr/bin/env bash
# Make Debian's chromium available for the browser tests (Playwright drives /usr/bin/chromium;
# `playwright install` cannot download browsers on these machines). Without root or apt, the browser
# tests skip themselves with a message instead.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's chromium for the browser tests..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium >/dev/null
else
  echo "chromium not found and cannot be installed here (need root + apt-get): browser tests will be skipped"
fi
