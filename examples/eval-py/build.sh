#!/usr/bin/env sh
# Builds build/eval-py.wasm from this directory's sources with the project's
# pinned toolchain (run scripts/setup-toolchain.sh once, in the venv you use).
# Builds are cached by source hash, so an unchanged example is not rebuilt.
#
# What it runs, in this directory:
#   componentize-py -d wit -w eval-py componentize -p . app -o build/eval-py.wasm
# then adds the WIT doc comments to the component (they become the tool
# descriptions; the toolchains drop them).
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
python="${PYTHON:-$(command -v python || command -v python3)}"
exec "$python" "$here/../../tests/components/build.py" eval-py
