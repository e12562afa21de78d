"""MCP latency, side by side with Microsoft's Wassette 0.8 when it is installed.

Same component (the WAT fixture `arith`, tool `add`), same clients, one run:
- startup: process start to the first tools/list answer (initialize included),
  median of several fresh starts with a warm compile cache;
- call: tools/call latency, p50 and p99, over stdio and Streamable HTTP, with
  two clients: the official MCP Python client (`sdk`), and a minimal one
  (`raw`: one JSON line per request on stdio, one POST per request on HTTP)
  that shows the server's own share.

Usage:
  python benchmarks/mcp_latency.py [--calls 500] [--starts 5] [--wassette PATH | --no-wassette]
                                   [--only stdio|http] [--json OUT]
Wassette 0.8 is found at --wassette, $WASSETTE_ANCHOR, or ~/.cache/wassette-anchor/wassette
(install it with ../shared/anchors/install-wassette.sh); without it only ours is measured.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import logging
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2 as httpx
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

REPO = Path(__file__).resolve().parent.parent
ANCHOR_DEFAULT = Path.home() / ".cache/wassette-anchor/wassette"
HTTP_HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
INIT = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}}
ADD = {"name": "add", "arguments": {"a": 1, "b": 2}}


def arith_component() -> Path:
    spec = importlib.util.spec_from_file_location("fixtures_build", REPO / "tests/components/build.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    path: Path = mod.build(["arith"])["arith"]
    return path


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def summary(samples_s: list[float]) -> dict[str, float]:
    ms = [x * 1000 for x in samples_s]
    return {
        "p50_ms": round(percentile(ms, 0.5), 3),
        "p99_ms": round(percentile(ms, 0.99), 3),
        "mean_ms": round(statistics.fmean(ms), 3),
        "n": len(ms),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Subject:
    """One server implementation, with its own isolated state directories."""

    def __init__(self, name: str, command: list[str], home: Path) -> None:
        self.name = name
        self.command = command
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "XDG_DATA_HOME": str(home / "data"),
            "XDG_CONFIG_HOME": str(home / "config"),
            "XDG_CACHE_HOME": str(home / "cache"),
            "RUST_LOG": "error",
            "WASSETTE_LOG": "warning",
        }
        if "PYTHONPATH" in os.environ:
            self.env["PYTHONPATH"] = os.environ["PYTHONPATH"]

    def load(self, wasm: Path) -> None:
        subprocess.run(
            [*self.command, "component", "load", wasm.as_uri()],
            env=self.env,
            check=True,
            capture_output=True,
            timeout=120,
        )

    def version(self) -> str:
        out = subprocess.run([*self.command, "--version"], env=self.env, capture_output=True, text=True)
        return (out.stdout or out.stderr).strip().splitlines()[0]

    @contextlib.contextmanager
    def http(self, port: int) -> Iterator[subprocess.Popen[bytes]]:
        proc = subprocess.Popen(
            [*self.command, "serve", "--bind-address", f"127.0.0.1:{port}"],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# -- the official client ---------------------------------------------------


@contextlib.asynccontextmanager
async def sdk_stdio(subject: Subject) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(
        command=subject.command[0], args=[*subject.command[1:], "run"], env=subject.env
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


@contextlib.asynccontextmanager
async def sdk_http(url: str) -> AsyncIterator[ClientSession]:
    async with streamable_http_client(url) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


async def sdk_calls(session: ClientSession, calls: int, warmup: int) -> list[float]:
    samples = []
    for i in range(warmup + calls):
        t = time.perf_counter()
        result = await session.call_tool("add", {"a": 1, "b": 2})
        elapsed = time.perf_counter() - t
        assert result.structured_content == {"result": 3}, result
        if i >= warmup:
            samples.append(elapsed)
    return samples


async def first_listing_with_add(session: ClientSession) -> None:
    """tools/list until it shows `add` (Wassette 0.8 loads components in the
    background after it answers initialize)."""
    with anyio.fail_after(30):
        while not any(tool.name == "add" for tool in (await session.list_tools()).tools):
            await anyio.sleep(0.001)


async def sdk_startup_stdio(subject: Subject) -> float:
    t = time.perf_counter()
    async with sdk_stdio(subject) as session:
        await first_listing_with_add(session)
        return time.perf_counter() - t


async def sdk_startup_http(subject: Subject) -> float:
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    t = time.perf_counter()
    with subject.http(port):
        while True:
            try:
                async with sdk_http(url) as session:
                    await first_listing_with_add(session)
                    return time.perf_counter() - t
            except Exception:  # not listening yet (a ConnectError in a group): retry
                if time.perf_counter() - t > 30:
                    raise
                await anyio.sleep(0.005)


# -- the minimal client ------------------------------------------------------


def raw_stdio_calls(subject: Subject, calls: int, warmup: int) -> list[float]:
    proc = subprocess.Popen(
        [*subject.command, "run"],
        env=subject.env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdin and proc.stdout
    stdin, stdout = proc.stdin, proc.stdout

    def request(rid: int, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        message = {"jsonrpc": "2.0", "id": rid, "method": method, **({"params": params} if params else {})}
        stdin.write(json.dumps(message).encode() + b"\n")
        stdin.flush()
        while True:
            reply: dict[str, Any] = json.loads(stdout.readline())
            if reply.get("id") == rid:
                return reply

    try:
        request(0, "initialize", INIT)
        stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
        stdin.flush()
        samples = []
        for i in range(warmup + calls):
            t = time.perf_counter()
            reply = request(i + 1, "tools/call", ADD)
            elapsed = time.perf_counter() - t
            assert reply["result"]["structuredContent"] == {"result": 3}, reply
            if i >= warmup:
                samples.append(elapsed)
        return samples
    finally:
        proc.kill()
        proc.wait()


class RawHttp:
    """HTTP/1.1 keep-alive POSTs on one socket: each request written in one
    piece with TCP_NODELAY, and every read acknowledged at once (TCP_QUICKACK),
    so that neither side's Nagle/delayed-ACK interplay (40 ms) is measured."""

    def __init__(self, url: str) -> None:
        authority, _, path = url.split("://", 1)[1].partition("/")
        host, _, port = authority.partition(":")
        self.host, self.path = authority, "/" + path
        self.sock = socket.create_connection((host, int(port)))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def _fill(self) -> None:
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("the server closed the connection")
        self.buffer += data

    def _line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            self._fill()
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line

    def _exactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            self._fill()
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def post(self, body: dict[str, Any], headers: dict[str, str]) -> tuple[dict[str, str], bytes]:
        data = json.dumps(body).encode()
        head = [f"POST {self.path} HTTP/1.1", f"Host: {self.host}", f"Content-Length: {len(data)}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        self.sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + data)
        status = self._line()
        assert status.startswith(b"HTTP/1.1 2"), status
        got: dict[str, str] = {}
        while line := self._line():
            k, _, v = line.decode().partition(":")
            got[k.strip().lower()] = v.strip()
        if "content-length" in got:
            return got, self._exactly(int(got["content-length"]))
        chunks = []
        while size := int(self._line().strip() or b"0", 16):
            chunks.append(self._exactly(size))
            self._line()
        self._line()
        return got, b"".join(chunks)

    def close(self) -> None:
        self.sock.close()


def raw_http_calls(url: str, calls: int, warmup: int) -> list[float]:
    client = RawHttp(url)
    try:
        got, _ = client.post(
            {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": INIT}, HTTP_HEADERS
        )
        headers = {**HTTP_HEADERS, "mcp-protocol-version": "2025-11-25"}
        if "mcp-session-id" in got:
            headers["mcp-session-id"] = got["mcp-session-id"]
        client.post({"jsonrpc": "2.0", "method": "notifications/initialized"}, headers)
        samples = []
        for i in range(warmup + calls):
            body = {"jsonrpc": "2.0", "id": i + 1, "method": "tools/call", "params": ADD}
            t = time.perf_counter()
            _, answer = client.post(body, headers)
            elapsed = time.perf_counter() - t
            assert b'"structuredContent":{"result":3}' in answer.replace(b" ", b""), answer
            if i >= warmup:
                samples.append(elapsed)
        return samples
    finally:
        client.close()


# -- the run -------------------------------------------------------------------


def measure(subject: Subject, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"command": subject.command, "version": subject.version()}
    warmup = max(10, args.calls // 20)
    if args.only in (None, "stdio"):
        starts = [anyio.run(sdk_startup_stdio, subject) for _ in range(args.starts)]
        out["stdio_startup_to_tools_list"] = summary(starts) | {"min_ms": round(min(starts) * 1000, 1)}

        async def stdio_sdk() -> list[float]:
            async with sdk_stdio(subject) as session:
                return await sdk_calls(session, args.calls, warmup)

        out["stdio_call_sdk"] = summary(anyio.run(stdio_sdk))
        out["stdio_call_raw"] = summary(raw_stdio_calls(subject, args.calls, warmup))
    if args.only in (None, "http"):
        starts = [anyio.run(sdk_startup_http, subject) for _ in range(args.starts)]
        out["http_startup_to_tools_list"] = summary(starts) | {"min_ms": round(min(starts) * 1000, 1)}
        port = free_port()
        url = f"http://127.0.0.1:{port}/mcp"
        with subject.http(port):
            wait_for_http(url)

            async def http_sdk() -> list[float]:
                async with sdk_http(url) as session:
                    return await sdk_calls(session, args.calls, warmup)

            out["http_call_sdk"] = summary(anyio.run(http_sdk))
            out["http_call_raw"] = summary(raw_http_calls(url, args.calls, warmup))
    return out


def wait_for_http(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.post(
                url, headers=HTTP_HEADERS, json={"jsonrpc": "2.0", "id": 0, "method": "ping"}, timeout=2
            )
            return
        except httpx.TransportError:
            time.sleep(0.01)
    raise SystemExit(f"{url} does not answer")


def table(results: dict[str, dict[str, Any]]) -> str:
    rows = [("measure", *results)]
    keys = [k for k in next(iter(results.values())) if isinstance(next(iter(results.values()))[k], dict)]
    for key in keys:
        for stat in ("p50_ms", "p99_ms"):
            rows.append(
                (f"{key} {stat}", *(f"{r[key][stat]:.2f}" if key in r else "-" for r in results.values()))
            )
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows)


def main() -> int:
    logging.getLogger("mcp").setLevel(logging.CRITICAL)  # e.g. a 202 to the closing DELETE
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=500, help="tools/call samples per transport and client")
    parser.add_argument(
        "--starts", type=int, default=5, help="fresh starts per transport for the startup time"
    )
    parser.add_argument("--wassette", type=Path, help="Wassette 0.8 executable (or wrapper)")
    parser.add_argument("--no-wassette", action="store_true", help="measure only this project")
    parser.add_argument("--only", choices=("stdio", "http"), help="one transport only")
    parser.add_argument("--json", type=Path, help="write the raw results here")
    parser.add_argument(
        "--label", default="wassette-py", help="name for this project's column, e.g. 'release engine'"
    )
    args = parser.parse_args()

    anchor: Path | None = None
    if not args.no_wassette:
        anchor = args.wassette or Path(os.environ.get("WASSETTE_ANCHOR") or ANCHOR_DEFAULT)
        if not anchor.exists():
            print(f"note: Wassette 0.8 not found at {anchor}; measuring only this project", file=sys.stderr)
            anchor = None

    load_at_start = os.getloadavg()
    wasm = arith_component()
    subjects: list[tuple[str, list[str]]] = [(args.label, [sys.executable, "-m", "wassette"])]
    if anchor is not None:
        subjects.append(("wassette-0.8", [str(anchor)]))

    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="mcp-latency-") as tmp:
        for name, command in subjects:
            home = Path(tmp) / name
            subject = Subject(name, command, home)
            subject.load(wasm)
            print(f"measuring {name} ...", file=sys.stderr)
            results[name] = measure(subject, args)

    print(table(results))
    report = {
        "benchmark": "mcp_latency",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "argv": sys.argv,
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_at_start": load_at_start,
        },
        "component": "arith (WAT), tool add",
        "pythonpath": os.environ.get("PYTHONPATH"),
        "results": results,
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
