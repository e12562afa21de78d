#!/usr/bin/env bash
# Runs the official MCP conformance suite (@modelcontextprotocol/conformance,
# pinned in tests/toolchain/inspector, with the Node 22 it needs) against
# `wassette serve` on loopback, serving the conformance component
# (tests/components/rust/conformance: the suite's fixtures, written against
# wassette:mcp), over Streamable HTTP with SSE answers and with
# --json-response. Prints each scenario and a `N passed, M failed` line per
# mode; exits 1 if a check failed that tests/toolchain/conformance-expected-failures
# does not list (it lists none).
#
#   scripts/conformance.sh                                   # every scenario (--suite all), both modes
#   scripts/conformance.sh --scenario server-sse-polling     # arguments go to the suite instead
#
# Needs scripts/setup-toolchain.sh to have run (in the venv you use).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${WASSETTE_DEV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wassette-dev}"
PY="${PYTHON:-$(command -v python || command -v python3)}"
lock_hash="$(sha256sum "$ROOT/tests/toolchain/inspector/package-lock.json" | cut -c1-16)"
BIN="$CACHE/inspector-$lock_hash/node_modules/.bin"
[[ -x "$BIN/conformance" ]] || { echo "conformance: the suite is not installed: run scripts/setup-toolchain.sh" >&2; exit 2; }
EXPECTED="$ROOT/tests/toolchain/conformance-expected-failures.yaml"

wasm="$("$PY" "$ROOT/tests/components/build.py" conformance | cut -f2)"
work="$(mktemp -d)"
server=""
cleanup() {
    [[ -n "$server" ]] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
export HOME="$work" XDG_DATA_HOME="$work/data" XDG_CONFIG_HOME="$work/config" XDG_CACHE_HOME="$work/cache"
export WASSETTE_CACHE_DIR="$CACHE/compiled"
"$PY" -m wassette component load "file://$wasm" >/dev/null

(($#)) || set -- --suite all
status=0
for mode in sse json; do
    flags=(--bind-address 127.0.0.1:0 --workers 1)
    [[ "$mode" == json ]] && flags+=(--json-response)
    # SSE answers: a call still running after 500 ms has its stream ended
    # and resumed by the client (SEP-1699; the suite's test_reconnection).
    WASSETTE_SSE_POLL_AFTER_MS=500 "$PY" -m wassette serve "${flags[@]}" >"$work/serve-$mode.log" 2>&1 &
    server=$!
    url=""
    for _ in $(seq 300); do  # the server says where it listens once it does
        url="$(grep -o 'http://127.0.0.1:[0-9]*/mcp' "$work/serve-$mode.log" | head -1 || true)"
        [[ -n "$url" ]] && curl -s -o /dev/null "$url" && break
        kill -0 "$server" 2>/dev/null || { cat "$work/serve-$mode.log" >&2; exit 1; }
        sleep 0.1
    done
    [[ -n "$url" ]] || { echo "conformance: the server did not start" >&2; cat "$work/serve-$mode.log" >&2; exit 1; }
    echo "== conformance ($mode answers) against $url"
    out="$work/out-$mode"
    set +e
    PATH="$BIN:$PATH" conformance server --url "$url" --expected-failures "$EXPECTED" -o "$out" "$@" \
        >"$work/suite-$mode.log" 2>&1
    rc=$?
    set -e
    sed -n '/=== SUMMARY ===/,$p' "$work/suite-$mode.log" | grep -E '^[✓✗]|Total' || cat "$work/suite-$mode.log"
    total="$(grep -E '^Total:' "$work/suite-$mode.log" | tail -1)"
    passed="$(sed -E 's/Total: ([0-9]+) passed.*/\1/' <<<"$total")"
    failed="$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$total")"
    warnings="$(grep -c 'WARNING' "$work/suite-$mode.log" || true)"
    echo "$mode: ${passed:-0} passed, ${failed:-?} failed, ${warnings:-0} warnings"
    grep 'WARNING' "$work/suite-$mode.log" | sed 's/^/  /' || true
    ((rc == 0)) || status=1
    kill "$server" && wait "$server" 2>/dev/null || true
    server=""
done
exit "$status"
