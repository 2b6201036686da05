#!/usr/bin/env bash
# Short libFuzzer runs of the core's fuzz targets (config_parse, capture_encode, classify).
#   filter/core/fuzz/run.sh [SECONDS_PER_TARGET]   (default 30)
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`); without them it says
# so and exits 0: the proptest versions (filter/core/tests/fuzz_props.rs) run in `cargo test`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
SECS=${1:-30}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${ADTAP_CACHE:-$HOME/.cache/adtap}/target}-fuzz
if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "fuzz: no nightly toolchain (rustup toolchain install nightly): skipped"
  exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz: cargo-fuzz is not installed (cargo install cargo-fuzz): skipped"
  exit 0
fi
for target in config_parse capture_encode classify; do
  echo "fuzz: $target for ${SECS}s"
  mkdir -p "corpus/$target"
  cargo +nightly fuzz run "$target" "corpus/$target" -- -max_total_time="$SECS" -max_len=4096
done
echo "fuzz: all targets ran ${SECS}s without a crash"
