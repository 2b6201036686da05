#!/usr/bin/env bash
# Ablation: where adtap's per-request time goes inside Envoy.
#
# Builds variants of the filter in a temporary copy of filter/ (the repository is not touched)
# with parts of the per-request work switched off by stream-switches.patch, then measures each
# against the no-op filter with adtap-bench (`--only envoy --variants noop,adtap`):
#
#   full        the filter as it is
#   no_headers  on_http_request_headers returns at once (no host call, nothing captured)
#   no_capture  reads :method/:path/:authority and matches the rule, captures nothing
#   no_props    captures, encodes and ships, but reads no property in on_log
#   no_encode   captures and reads the properties, but neither encodes nor buffers the event
#
# Usage: host-tests/bench/ablation/run.sh [ROUNDS] [SECS]   (default 2 rounds of 4 s)
# Needs what ./build.sh setup installs; the variants build into $ADTAP_CACHE/target-ablation.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
ROUNDS=${1:-2}
SECS=${2:-4}
export ADTAP_CACHE=${ADTAP_CACHE:-$HOME/.cache/adtap}
export ADTAP_ENVOY=${ADTAP_ENVOY:-$ADTAP_CACHE/venv/bin/envoy}
BENCH_TARGET=${CARGO_TARGET_DIR:-$ADTAP_CACHE/target}
VARIANT_TARGET=$ADTAP_CACHE/target-ablation

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/filter"
cp -r "$ROOT/filter/core" "$ROOT/filter/wasm" "$work/filter/"
cp "$ROOT/Cargo.lock" "$work/"
# A workspace of just the two crates, with the repository's dependencies, lints and profile.
sed 's|^members = \[.*\]|members = ["filter/core", "filter/wasm"]|' "$ROOT/Cargo.toml" >"$work/Cargo.toml"
# The criterion bench is not needed (and would need its dev-dependency resolved).
rm -rf "$work/filter/core/benches"
sed -i '/^\[\[bench\]\]/,/^harness = false/d; /^criterion/d' "$work/filter/core/Cargo.toml"
patch -s -d "$work" -p1 <"$HERE/stream-switches.patch"
printf '\n[features]\nno_headers = []\nno_capture = []\nno_props = []\nno_encode = []\n' \
  >>"$work/filter/wasm/Cargo.toml"

(cd "$ROOT" && CARGO_TARGET_DIR=$BENCH_TARGET cargo build -q --release -p adtap-bench)
for variant in full no_headers no_capture no_props no_encode; do
  features=()
  [ "$variant" != full ] && features=(--features "$variant")
  (cd "$work" && CARGO_TARGET_DIR=$VARIANT_TARGET cargo build -q --release \
    --target wasm32-wasip1 -p adtap-filter "${features[@]}")
  cp "$VARIANT_TARGET/wasm32-wasip1/release/adtap_filter.wasm" "$work/$variant.wasm"
done
echo "| variant | no-op req/s | variant req/s | variant / no-op | µs per request over no-op |"
echo "|---|---|---|---|---|"
for variant in full no_headers no_capture no_props no_encode; do
  ADTAP_WASM="$work/$variant.wasm" CARGO_TARGET_DIR=$BENCH_TARGET \
    "$BENCH_TARGET/release/adtap-bench" --only envoy --variants noop,adtap \
    --rounds "$ROUNDS" --secs "$SECS" --out "$work/$variant.md" >/dev/null 2>"$work/$variant.log" || true
  noop=$(grep '^| no-op Wasm filter' "$work/$variant.md" | head -1 | cut -d'|' -f3 | xargs)
  adtap=$(grep '^| adtap (V8)' "$work/$variant.md" | head -1 | cut -d'|' -f3 | xargs)
  ratio=$(grep '^| adtap (V8)' "$work/$variant.md" | head -1 | cut -d'|' -f5 | xargs)
  added=$(grep -o 'adds [^ ]* [^µ]*µs over the no-op filter' "$work/$variant.md" | head -1 | sed 's/adds //; s/ µs over the no-op filter//')
  echo "| $variant | $noop | $adtap | $ratio | $added |"
done
