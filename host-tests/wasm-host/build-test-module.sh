#!/usr/bin/env bash
# Builds the proxy-wasm test module used by adtap-wasm-host's own tests and prints its path.
# The tests read the path from ADTAP_TEST_MODULE_WASM (default: the path printed here) and call
# this script themselves when the file is missing.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
target_dir="${ADTAP_TESTMOD_TARGET_DIR:-${ADTAP_CACHE:-$HOME/.cache/adtap}/target-testmod}"
cargo build --quiet --release --target wasm32-wasip1 \
  --manifest-path "$here/test-module/Cargo.toml" --target-dir "$target_dir" >&2
echo "$target_dir/wasm32-wasip1/release/adtap_wasm_host_testmod.wasm"
