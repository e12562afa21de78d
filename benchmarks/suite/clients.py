"""MCP clients used against both servers.

- `sdk`: the official MCP Python client (`ClientSession`), over stdio or
  Streamable HTTP, protocol 2025-11-25;
- `raw`: a minimal client that shows the server's own share: one JSON line
  per request on stdio, one keep-alive POST per request on HTTP (written in
  one piece, with TCP_NODELAY and TCP_QUICKACK so that neither side's
  Nagle/delayed-ACK interplay, 40 ms, is measured);
- `AsyncHttp`: the raw HTTP client on asyncio, many connections at once, for
  throughput.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from typing import Any

from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from wassette.runtime.builtin_tools import BUILTIN_NAMES

PROTOCOL = "2025-11-25"
INIT = {"protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}}
HTTP_HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


def request_line(rid: int, method: str, params: dict[str, Any] | None = None) -> bytes:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "method": method}
    if params is not None:
        message["params"] = params
    return json.dumps(message).encode() + b"\n"


def tool_ok(result: dict[str, Any]) -> bool:
    return "content" in result and not result.get("isError")


def call_ok(client: RawStdio | RawHttp, tool: str, arguments: dict[str, Any], what: str) -> None:
    """Calls a tool and raises, naming `what`, unless the call succeeded."""
    result = client.call(tool, arguments)
    if not tool_ok(result):
        raise RuntimeError(f"{what}: {result}")


# Wassette 0.8 has the same twelve built-in tool names as ours.
BUILTINS = BUILTIN_NAMES
LIST_LIMIT_S = 900.0
# After a complete tools/list, time for work a server defers past it
# (Wassette's background loads; ours defers nothing) before anything is timed.
SETTLE_S = 3.0


def complete(names: list[str], expected: int) -> bool:
    """Whether a tools/list shows every component tool (Wassette 0.8 answers
    initialize at once and adds components as it loads them)."""
    return sum(1 for n in names if n not in BUILTINS) >= expected


def wait_listed(client: RawStdio | RawHttp, expected: int, t0: float | None = None) -> list[str]:
    """tools/list until complete; raises after LIST_LIMIT_S."""
    t0 = time.perf_counter() if t0 is None else t0
    while True:
        names = client.tool_names()
        if complete(names, expected):
            return names
        if time.perf_counter() - t0 > LIST_LIMIT_S:
            raise TimeoutError(f"tools/list incomplete after {LIST_LIMIT_S} s: {len(names)} tools")
        time.sleep(0.001)


async def sdk_wait_listed(session: ClientSession, expected: int) -> None:
    t0 = time.perf_counter()
    while not complete([t.name for t in (await session.list_tools()).tools], expected):
        if time.perf_counter() - t0 > LIST_LIMIT_S:
            raise TimeoutError(f"tools/list incomplete after {LIST_LIMIT_S} s")
        await asyncio.sleep(0.001)


# -- raw stdio -------------------------------------------------------------


class RawStdio:
    """Newline-delimited JSON-RPC over a server's stdin/stdout."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdin and proc.stdout
        self.stdin, self.stdout = proc.stdin, proc.stdout
        self.next_id = 0

    def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self.next_id += 1
        rid = self.next_id
        self.stdin.write(request_line(rid, method, params))
        self.stdin.flush()
        while True:
            line = self.stdout.readline()
            if not line:
                raise ConnectionError("the server closed stdout")
            reply: dict[str, Any] = json.loads(line)
            if reply.get("id") == rid and "method" not in reply:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply["result"]
                return result

    def notify(self, method: str) -> None:
        self.stdin.write(json.dumps({"jsonrpc": "2.0", "method": method}).encode() + b"\n")
        self.stdin.flush()

    def initialize(self) -> None:
        self.request("initialize", INIT)
        self.notify("notifications/initialized")

    def call(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return self.request("tools/call", {"name": tool, "arguments": arguments})

    def tool_names(self) -> list[str]:
        return [t["name"] for t in self.request("tools/list")["tools"]]


# -- raw HTTP ----------------------------------------------------------------


def sse_or_json(body: bytes) -> dict[str, Any]:
    """The JSON-RPC message in a plain JSON body or in an SSE stream."""
    text = body.strip()
    if text.startswith(b"{"):
        message: dict[str, Any] = json.loads(text)
        return message
    for line in text.splitlines():
        if line.startswith(b"data:") and line[5:].strip().startswith(b"{"):
            message = json.loads(line[5:])
            if "id" in message and "method" not in message:
                return message
    raise ValueError(f"no JSON-RPC answer in {body[:200]!r}")


def answer_of(method: str, got: dict[str, str], answer: bytes, headers: dict[str, str]) -> dict[str, Any]:
    """The result of a request answered over HTTP; keeps the session id the
    server gave in `headers` for the next requests."""
    if "mcp-session-id" in got:
        headers["mcp-session-id"] = got["mcp-session-id"]
    reply = sse_or_json(answer)
    if "error" in reply:
        raise RuntimeError(f"{method}: {reply['error']}")
    result: dict[str, Any] = reply["result"]
    return result


class RawHttp:
    """HTTP/1.1 keep-alive POSTs on one blocking socket."""

    def __init__(self, port: int) -> None:
        self.host = f"127.0.0.1:{port}"
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""
        self.headers = dict(HTTP_HEADERS)
        self.next_id = 0

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

    def post(self, body: dict[str, Any]) -> tuple[dict[str, str], bytes]:
        data = json.dumps(body).encode()
        head = ["POST /mcp HTTP/1.1", f"Host: {self.host}", f"Content-Length: {len(data)}"]
        head += [f"{k}: {v}" for k, v in self.headers.items()]
        self.sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + data)
        return self._response()

    def worker(self) -> int:
        """Which of ours' worker processes this connection reached (/info)."""
        self.sock.sendall(f"GET /info HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
        return int(json.loads(self._response()[1])["worker"])

    def _response(self) -> tuple[dict[str, str], bytes]:
        status = self._line()
        if not status.startswith(b"HTTP/1.1 2"):
            raise RuntimeError(f"HTTP answer {status!r}")
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

    def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self.next_id += 1
        body: dict[str, Any] = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            body["params"] = params
        got, answer = self.post(body)
        return answer_of(method, got, answer, self.headers)

    def initialize(self) -> None:
        self.request("initialize", INIT)
        self.headers["mcp-protocol-version"] = PROTOCOL
        self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def call(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return self.request("tools/call", {"name": tool, "arguments": arguments})

    def tool_names(self) -> list[str]:
        return [t["name"] for t in self.request("tools/list")["tools"]]

    def close(self) -> None:
        self.sock.close()


def connect_http(port: int, timeout: float = 120) -> RawHttp:
    """A raw client once the server accepts connections and answers initialize."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            client = RawHttp(port)
            client.initialize()
            return client
        except (ConnectionError, OSError, RuntimeError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.002)


class AsyncHttp(asyncio.Protocol):
    """One keep-alive connection on asyncio: a request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[None] | None = None
        self.headers = dict(HTTP_HEADERS)
        self.host = ""
        self.next_id = 0

    @classmethod
    async def open(cls, port: int) -> AsyncHttp:
        loop = asyncio.get_running_loop()
        _, client = await loop.create_connection(cls, "127.0.0.1", port)
        client.host = f"127.0.0.1:{port}"
        sock = client.transport.get_extra_info("socket") if client.transport else None
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return client

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        sock = self.transport.get_extra_info("socket") if self.transport else None
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        self.buffer += data
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection lost"))

    async def _more(self) -> None:
        self.waiter = asyncio.get_running_loop().create_future()
        await self.waiter

    async def _response(self) -> tuple[dict[str, str], bytes]:
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            await self._more()
        head = bytes(self.buffer[:end]).decode().split("\r\n")
        del self.buffer[: end + 4]
        if not head[0].startswith("HTTP/1.1 2"):
            raise RuntimeError(f"HTTP answer {head[0]!r}")
        got = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:])}
        if "content-length" in got:
            n = int(got["content-length"])
            while len(self.buffer) < n:
                await self._more()
            body = bytes(self.buffer[:n])
            del self.buffer[:n]
            return got, body
        chunks = []
        while True:
            while (eol := self.buffer.find(b"\r\n")) < 0:
                await self._more()
            size = int(bytes(self.buffer[:eol]).strip() or b"0", 16)
            while len(self.buffer) < eol + 2 + size + 2:
                await self._more()
            chunks.append(bytes(self.buffer[eol + 2 : eol + 2 + size]))
            del self.buffer[: eol + 2 + size + 2]
            if size == 0:
                return got, b"".join(chunks)

    async def post(self, body: bytes) -> tuple[dict[str, str], bytes]:
        assert self.transport is not None
        head = ["POST /mcp HTTP/1.1", f"Host: {self.host}", f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in self.headers.items()]
        self.transport.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        return await self._response()

    async def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            message["params"] = params
        got, answer = await self.post(json.dumps(message).encode())
        return answer_of(method, got, answer, self.headers)

    async def initialize(self) -> None:
        await self.request("initialize", INIT)
        self.headers["mcp-protocol-version"] = PROTOCOL
        await self.post(b'{"jsonrpc":"2.0","method":"notifications/initialized"}')

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


# -- the official client ---------------------------------------------------


@contextlib.asynccontextmanager
async def sdk_stdio(command: list[str], env: dict[str, str]) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(command=command[0], args=command[1:], env=env)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


@contextlib.asynccontextmanager
async def sdk_http(port: int) -> AsyncIterator[ClientSession]:
    url = f"http://127.0.0.1:{port}/mcp"
    async with streamable_http_client(url) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


def wait_workers(port: int, count: int, timeout: float = 60) -> None:
    """Until `count` worker processes of ours answer (new connections, /info)."""
    seen: set[int] = set()
    deadline = time.monotonic() + timeout
    while len(seen) < count:
        client = RawHttp(port)
        try:
            seen.add(client.worker())
        finally:
            client.close()
        if time.monotonic() > deadline:
            raise TimeoutError(f"only workers {sorted(seen)} of {count} answered")
