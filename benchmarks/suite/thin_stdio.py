"""The least a Python stdio server on this engine can do per call, for
`benchmarks/floor_gap.py`: read a line, parse it, run the call (default
policy), write a fixed answer. No MCP, no policy files, no result shaping.

Usage: python thin_stdio.py CACHE_DIR WASM FUNCTION ARGUMENTS_JSON
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main() -> None:
    from wassette import _engine

    cache_dir, wasm, function, arguments = sys.argv[1:5]
    component = _engine.Engine(cache_dir).compile(Path(wasm).read_bytes())
    read, out = sys.stdin.buffer.readline, sys.stdout.buffer
    while line := read():
        message = json.loads(line)
        if message.get("method") == "tools/call":
            outcome = component.start(None, function, arguments).finish()
            if outcome.status != "ok":
                raise SystemExit(f"{function}: {outcome.status} {outcome.error}")
        answer = {"jsonrpc": "2.0", "id": message["id"], "result": {"content": [], "isError": False}}
        out.write(json.dumps(answer).encode() + b"\n")
        out.flush()


if __name__ == "__main__":
    main()
