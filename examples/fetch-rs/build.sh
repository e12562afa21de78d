#!/usr/bin/env sh
# Builds build/fetch-rs.wasm from this directory's sources with the project's
# pinned toolchain (run scripts/setup-toolchain.sh once, in the venv you use).
# Builds are cached by source hash, so an unchanged example is not rebuilt.
#
# What it runs, in this directory:
#   cargo build --release --locked --target wasm32-wasip2 --target-dir $CACHE/rust-target
# ($CACHE is $WASSETTE_DEV_CACHE, else ~/.cache/wassette-dev; one target
# directory for all Rust examples, so dependencies compile once), copies
# $CACHE/rust-target/wasm32-wasip2/release/fetch_rs.wasm to build/fetch-rs.wasm,
# then adds the WIT doc comments to the component (they become the tool
# descriptions; the toolchain drops them).
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
python="${PYTHON:-$(command -v python || command -v python3)}"
exec "$python" "$here/../../tests/components/build.py" fetch-rs
