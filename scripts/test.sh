#!/usr/bin/env bash
# Installs everything the tests need (pinned, cached) and runs them:
# lint (ruff, mypy and stubtest, clippy), the engine build (debug) and its
# unit tests (cargo test), the test components, then pytest. Extra arguments
# go to pytest.
#
#   scripts/test.sh                 # everything
#   scripts/test.sh -k cli          # a subset of the tests
#
# Caches (safe to delete): ${WASSETTE_DEV_CACHE:-~/.cache/wassette-dev} holds the
# Cargo target dir, the npm toolchain, built fixtures and compiled artifacts.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export WASSETTE_DEV_CACHE="${WASSETTE_DEV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wassette-dev}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$WASSETTE_DEV_CACHE/target}"
VENV="${WASSETTE_VENV:-$ROOT/.venv}"
step() { echo "== $*"; }

step "python environment ($VENV)"
[[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
# shellcheck disable=SC1091
. "$VENV/bin/activate"
python -m pip install -q --disable-pip-version-check -r tests/requirements.txt

step "fixture toolchain"
scripts/setup-toolchain.sh

step "engine (debug build)"
# Quiet unless it fails (maturin echoes pip's dependency checks).
log="$(mktemp)"
if ! maturin develop -q >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    exit 1
fi
rm -f "$log"

step "lint"
ruff check python tests benchmarks
ruff format --check python tests benchmarks
mypy
python -m mypy.stubtest wassette._engine
cargo fmt --check
cargo clippy -q --all-targets -- -D warnings

step "engine unit tests"
log="$(mktemp)"
if ! cargo test -q --lib >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    exit 1
fi
grep "test result" "$log"
rm -f "$log"

step "test components"
python tests/components/build.py >/dev/null

step "tests"
python -m pytest -q "$@"
