#!/bin/sh
# The console's browser test (app/console_browser_test.go) drives Debian's chromium
# headless. Install it when it is missing; fail loudly when that is not possible, since
# the test itself fails, never skips, without a browser.
set -eu
if command -v chromium >/dev/null 2>&1; then
	exit 0
fi
echo "chromium is missing: installing Debian's package (apt-get install -y chromium)" >&2
if [ "$(id -u)" -ne 0 ]; then
	SUDO=sudo
else
	SUDO=
fi
$SUDO apt-get update
$SUDO apt-get install -y chromium
command -v chromium >/dev/null 2>&1 || { echo "chromium is still missing after apt-get install" >&2; exit 1; }
