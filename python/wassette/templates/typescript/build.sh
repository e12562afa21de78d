#!/usr/bin/env bash
# Builds {{name}}.wasm from {{name}}.ts: `jco guest-types` writes the world's
# types (target/types), `tsc` checks the code against them, `jco componentize`
# compiles it into the StarlingMonkey engine, without the wasi:http imports
# this tool does not use. The tools: `npm install` here (package.json pins
# them), or on PATH, or named by JCO=... TSC=...
set -euo pipefail
cd "$(dirname "$0")"

# tool NAME VAR: $VAR if set, else ./node_modules/.bin/NAME, else NAME on PATH.
tool() {
    if [[ -n "${!2:-}" ]]; then
        echo "${!2}"
    elif [[ -x "node_modules/.bin/$1" ]]; then
        echo "node_modules/.bin/$1"
    elif command -v "$1" >/dev/null; then
        command -v "$1"
    else
        echo "build.sh: $1 not found: run \`npm install\` here (package.json pins it), or set $2=/path/to/$1" >&2
        exit 1
    fi
}
jco="$(tool jco JCO)"
tsc="$(tool tsc TSC)"

"$jco" guest-types wit --world-name {{name}} -o target/types --quiet
"$tsc" -p .
"$jco" componentize {{name}}.ts --wit wit --world-name {{name}} --disable http fetch-event -o {{name}}.wasm
echo "built {{name}}.wasm"
