#!/usr/bin/env sh
# Builds build/time-server-js.wasm from this directory's sources with the project's
# pinned toolchain (run scripts/setup-toolchain.sh once, in the venv you use).
# Builds are cached by source hash, so an unchanged example is not rebuilt.
#
# What it runs, in this directory:
#   jco componentize time-server.js --wit wit --world-name time-server --disable http fetch-event -o build/time-server-js.wasm
# then adds the WIT doc comments to the component (they become the tool
# descriptions; the toolchains drop them).
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
python="${PYTHON:-$(command -v python || command -v python3)}"
exec "$python" "$here/../../tests/components/build.py" time-server-js
