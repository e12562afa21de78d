#!/usr/bin/env bash
# Release artifacts. Today: the wheel, an abi3 manylinux wheel of the package
# with the engine inside (maturin; one wheel for every CPython >= 3.11 on
# x86-64 Linux with this machine's glibc or newer). It installs with
# `pip install wassette-*.whl` where no Rust toolchain exists (the tests check
# exactly that: tests/test_release.py).
#
#   scripts/release.sh                 # release profile, into dist/
#   scripts/release.sh --out DIR       # elsewhere
#   scripts/release.sh --dev           # debug profile (what the tests package: same files, built faster)
#   scripts/release.sh --image TAG     # then the container image from it (scripts/image.sh)
#
# Prints the wheel's path on its last line (with --image: the image's tag).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
out="$ROOT/dist"
profile=(--release)
image=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --out) out="$2"; shift 2 ;;
        --dev) profile=(); shift ;;
        --image) image="$2"; shift 2 ;;
        *) echo "release.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
export WASSETTE_DEV_CACHE="${WASSETTE_DEV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wassette-dev}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$WASSETTE_DEV_CACHE/target}"
command -v maturin >/dev/null || { echo "release.sh: maturin is needed (pip install -r tests/requirements.txt)" >&2; exit 1; }
mkdir -p "$out"
before="$(mktemp)"
trap 'rm -f "$before"' EXIT
ls "$out" >"$before"
maturin build -q "${profile[@]}" -o "$out" >&2
wheel="$(comm -13 "$before" <(ls "$out") | grep '\.whl$' | tail -n1 || true)"
if [[ -z "$wheel" ]]; then  # rebuilt under the same name
    wheel="$(ls -t "$out"/wassette-*.whl | head -n1 | xargs -n1 basename)"
fi
echo "$out/$wheel"
if [[ -n "$image" ]]; then
    exec "$ROOT/scripts/image.sh" "$out/$wheel" --tag "$image"
fi
