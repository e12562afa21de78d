#!/usr/bin/env bash
# Builds {{name}}.wasm with componentize-py (pip install componentize-py).
set -euo pipefail
cd "$(dirname "$0")"
"${COMPONENTIZE_PY:-componentize-py}" -d wit -w {{name}} componentize app -o {{name}}.wasm
echo "built {{name}}.wasm"
