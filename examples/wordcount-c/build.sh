#!/usr/bin/env sh
# Builds build/wordcount-c.wasm from this directory's sources with the project's
# pinned toolchain (run scripts/setup-toolchain.sh once, in the venv you use).
# Builds are cached by source hash, so an unchanged example is not rebuilt.
#
# What it runs, in this directory:
#   clang --target=wasm32-wasi --sysroot=/usr -O2 -mexec-model=reactor -Wl,--strip-debug -o build/core.wasm wordcount.c
#   wasm-tools component embed wit --world wordcount build/core.wasm -o build/embed.wasm
#   wasm-tools component new build/embed.wasm --adapt wasi_snapshot_preview1=<jco>/lib/wasi_snapshot_preview1.reactor.wasm -o build/wordcount-c.wasm
# then adds the WIT doc comments to the component (they become the tool
# descriptions; the toolchains drop them).
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
python="${PYTHON:-$(command -v python || command -v python3)}"
exec "$python" "$here/../../tests/components/build.py" wordcount-c
