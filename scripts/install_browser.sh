#!/usr/bin/env bash
# Headless Chromium + ChromeDriver from Debian's packages, for the report.html test
# (tests/e2e/test_report_html.py). Idempotent: does nothing when both are installed.
# .ci/run calls it before `make test`; on a developer's machine run it once.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_browser.sh: no apt-get here; install Chromium yourself (the report.html test skips without it, fails in CI)" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver
chromium --version
