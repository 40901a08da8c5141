#!/bin/sh
# What the tests run besides Go: node and python3 (the README's sub-token and webhook
# snippets are executed as the README gives them) and a C compiler (go test -race needs
# cgo). Install what is missing with Debian's packages; fail loudly when that is not
# possible, since those tests fail, never skip, without them.
set -eu
missing=
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v python3 >/dev/null 2>&1 || missing="$missing python3"
command -v "${CC:-gcc}" >/dev/null 2>&1 || missing="$missing gcc libc6-dev"
[ -z "$missing" ] && exit 0
echo "tools.sh: missing for the tests:$missing; installing (apt-get install -y$missing)" >&2
if [ "$(id -u)" -ne 0 ]; then
	SUDO=sudo
else
	SUDO=
fi
$SUDO apt-get update
# shellcheck disable=SC2086 # one word per package
$SUDO apt-get install -y $missing
for tool in node python3 "${CC:-gcc}"; do
	command -v "$tool" >/dev/null 2>&1 || { echo "tools.sh: $tool is still missing after apt-get install" >&2; exit 1; }
done
