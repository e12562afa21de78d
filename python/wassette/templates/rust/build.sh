#!/usr/bin/env bash
# Builds {{name}}.wasm: cargo for the wasm32-wasip2 target (it links a component).
set -euo pipefail
cd "$(dirname "$0")"
cargo build --release --target wasm32-wasip2
cp "${CARGO_TARGET_DIR:-target}/wasm32-wasip2/release/{{snake}}.wasm" "{{name}}.wasm"
echo "built {{name}}.wasm"
