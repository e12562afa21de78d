#!/usr/bin/env sh
# Builds build/gomodule-go.wasm from this directory's sources with standard Go
# (1.24 or newer, from PATH) and wasm-tools (run scripts/setup-toolchain.sh
# once, in the venv you use). Builds are cached by source hash, so an
# unchanged example is not rebuilt.
#
# What it runs, in this directory (A = python/wassette/templates/go/adapter):
#   GOOS=wasip1 GOARCH=wasm go build -trimpath -buildmode=c-shared -o build/core.wasm .
#   wasm-tools component embed $A/adapter.wit --world adapter $A/wasi_snapshot_preview1.wat -o build/adapter.wasm
#   wasm-tools component embed wit --world gomodule build/core.wasm -o build/embed.wasm
#   wasm-tools component new build/embed.wasm --adapt wasi_snapshot_preview1=build/adapter.wasm -o build/gomodule-go.wasm
# then adds the WIT doc comments to the component (they become the tool
# descriptions; the toolchains drop them).
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
python="${PYTHON:-$(command -v python || command -v python3)}"
exec "$python" "$here/../../tests/components/build.py" gomodule-go
