#!/usr/bin/env bash
# Builds the adtap JavaScript package (wasm-bindgen build of filter/core) into dist/js/:
#   dist/js/node/   --target nodejs  (require it from Node)
#   dist/js/web/    --target web     (ES module, used by the page)
#   dist/js/page/   the static page (serve dist/js/ over http: node filter/js/serve.mjs)
#   dist/js/bin/, cli/ the `adtap` command (the package's npm bin)
#   dist/js/schema/     the published JSON Schema of the event value
#   dist/js/package.json, package-lock.json, node_modules/ (the CLI's `yaml`)
# Idempotent; installs wasm-bindgen-cli at the crate's pinned version when missing.
# Respects CARGO_TARGET_DIR and ADTAP_CACHE.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${ADTAP_CACHE:-$HOME/.cache/adtap}"
TOOLS="$CACHE/tools"
OUT="$ROOT/dist/js"
mkdir -p "$CACHE" "$OUT"

log() { echo "build-js: $*" >&2; }

# Run quietly; show the log only when the step fails.
quiet() {
    local name="$1"; shift
    local logf="$CACHE/build-js-$name.log"
    if ! "$@" >"$logf" 2>&1; then
        log "$name failed; last lines of $logf:"
        tail -n 40 "$logf" >&2
        return 1
    fi
}

# The CLI must match the wasm-bindgen crate exactly: the generated glue and the .wasm's
# custom section are versioned together. Read the version from Cargo.lock.
WB_VERSION="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$ROOT/Cargo.lock")"
if [[ -z "$WB_VERSION" ]]; then
    log "cannot find wasm-bindgen's version in Cargo.lock"; exit 1
fi
WB="$TOOLS/bin/wasm-bindgen"
if [[ ! -x "$WB" ]] || [[ "$("$WB" --version 2>/dev/null)" != "wasm-bindgen $WB_VERSION" ]]; then
    log "installing wasm-bindgen-cli $WB_VERSION into $TOOLS (a few minutes, once)"
    # --locked first, for the CLI's own tested dependency set; a locked dependency that the
    # registry has since yanked makes that fail, and then a fresh resolution is the only way.
    if ! quiet wasm-bindgen-cli cargo install wasm-bindgen-cli --version "$WB_VERSION" --locked --root "$TOOLS" 2>/dev/null; then
        log "locked install failed; retrying with a fresh dependency resolution"
        quiet wasm-bindgen-cli cargo install wasm-bindgen-cli --version "$WB_VERSION" --root "$TOOLS"
    fi
fi

if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    quiet rustup-target rustup target add wasm32-unknown-unknown
fi

TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
( cd "$ROOT" && quiet cargo-build cargo build -p adtap-js --release --target wasm32-unknown-unknown )
WASM="$TARGET_DIR/wasm32-unknown-unknown/release/adtap_js.wasm"
[[ -f "$WASM" ]] || { log "expected $WASM after the build"; exit 1; }

rm -rf "$OUT/node" "$OUT/web" "$OUT/page"
quiet wasm-bindgen-node "$WB" --target nodejs --out-dir "$OUT/node" --out-name adtap "$WASM"
quiet wasm-bindgen-web "$WB" --target web --out-dir "$OUT/web" --out-name adtap "$WASM"
cp -r "$ROOT/filter/js/page" "$OUT/page"
cp "$ROOT/filter/js/serve.mjs" "$OUT/serve.mjs"

# The package's manifest and lockfile (its one dependency, `yaml`, for the CLI) are
# filter/js/npm/; the version must be the crate's. `cargo pkgid` prints e.g.
# path+file:///…/filter/js#adtap-js@0.1.0
PKGID="$(cd "$ROOT" && cargo pkgid -p adtap-js)"
VERSION="${PKGID##*[#@]}"
NPM_VERSION="$(node -p "require('$ROOT/filter/js/npm/package.json').version")"
if [[ "$NPM_VERSION" != "$VERSION" ]]; then
    log "filter/js/npm/package.json has version $NPM_VERSION, the crate $VERSION: make them equal"
    exit 1
fi
rm -rf "$OUT/bin" "$OUT/cli" "$OUT/schema"
# The published event schema, as committed (filter/core/tests/event_schema.rs keeps it equal to
# the core's; test/schema.test.mjs checks the shipped copy against eventSchema()).
mkdir -p "$OUT/schema"
cp "$ROOT"/filter/core/schema/*.schema.json "$OUT/schema/"
cp -r "$ROOT/filter/js/bin" "$OUT/bin"
cp -r "$ROOT/filter/js/cli" "$OUT/cli"
chmod +x "$OUT/bin/adtap.mjs"
cp "$ROOT/filter/js/npm/package.json" "$ROOT/filter/js/npm/package-lock.json" "$OUT/"
# The dependencies as locked, so that `node dist/js/bin/adtap.mjs` runs from the build (npm's
# cache serves them after the first time).
( cd "$OUT" && quiet npm-ci npm ci --omit=dev --ignore-scripts --no-audit --no-fund )

echo "adtap JS package $VERSION: $OUT (require('$OUT'); page: node $OUT/serve.mjs $OUT, then open /page/)"
