#!/usr/bin/env bash
# The browser the annotate-ui end-to-end test drives: Debian's chromium (Playwright's own browser
# download does not work on this network). Idempotent: does nothing when /usr/bin/chromium exists.
# Needs root (or sudo) for apt-get; the Python side (playwright) comes from pyproject's test extras.
set -euo pipefail

CHROMIUM=/usr/bin/chromium
if [ -x "$CHROMIUM" ]; then
    echo "setup_browser: $CHROMIUM present ($("$CHROMIUM" --version 2>/dev/null || echo 'version unknown'))"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup_browser: $CHROMIUM is missing and apt-get is not available: install chromium with this system's package manager" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "setup_browser: need root (or sudo) to apt-get install chromium" >&2
        exit 1
    fi
fi
echo "setup_browser: installing chromium with apt-get"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
"$CHROMIUM" --version
