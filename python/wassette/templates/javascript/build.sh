#!/usr/bin/env bash
# Builds {{name}}.wasm with jco (npm install @bytecodealliance/jco): the
# StarlingMonkey engine, without the wasi:http imports this tool does not use.
set -euo pipefail
cd "$(dirname "$0")"
${JCO:-npx jco} componentize {{name}}.js --wit wit --world-name {{name}} --disable http fetch-event -o {{name}}.wasm
echo "built {{name}}.wasm"
