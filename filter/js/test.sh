#!/usr/bin/env bash
# Builds the adtap JS package and runs its tests: Node (validateConfig against the shared config
# table, previewEvent, decodeRecord) and the page in headless Debian chromium.
# Installs chromium (apt) and playwright-core (npm ci) when missing. Screenshots: dist/artifacts/.
set -euo pipefail

JS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${ADTAP_CACHE:-$HOME/.cache/adtap}"
mkdir -p "$CACHE"

bash "$JS/build-js.sh"

if [[ ! -x /usr/bin/chromium ]]; then
    echo "test-js: installing Debian's chromium (once)" >&2
    SUDO=""
    [[ "$(id -u)" == 0 ]] || SUDO="sudo"
    if ! { $SUDO apt-get update && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y chromium; } \
        >"$CACHE/apt-chromium.log" 2>&1; then
        echo "test-js: installing chromium failed; see $CACHE/apt-chromium.log" >&2
        tail -n 20 "$CACHE/apt-chromium.log" >&2
        exit 1
    fi
fi

# playwright-core only drives the system chromium; it downloads no browser of its own.
(cd "$JS" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)

node --test "$JS"/test/*.test.mjs
