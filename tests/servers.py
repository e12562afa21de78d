"""Helpers for tests that drive a real `wassette serve` process over HTTP
with the official MCP client (and a few raw requests), and a `wassette run`
fed a whole session on stdin."""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx2 as httpx
import mcp.types as types
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

ANNOUNCE = re.compile(r"serving MCP \(([a-z-]+)\) at (http://[^\s\"]+)")  # also inside a JSON log line


class HttpServer:
    """`wassette serve` on a free loopback port; stderr goes to a log file."""

    def __init__(
        self, env: dict[str, str], log: Path, *args: str, ready: bool = True, executable: str | None = None
    ) -> None:
        """Returns once the server answers /ready, or only /health with
        `ready=False`; `executable`: a `wassette` other than this interpreter's."""
        self.log = log
        command = [executable] if executable else [sys.executable, "-m", "wassette"]
        with log.open("wb") as sink:
            self.proc = subprocess.Popen(
                [*command, "serve", "--bind-address", "127.0.0.1:0", *args],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=sink,
            )
        self.url = self._wait_for_announce()
        self.base = self.url.rsplit("/", 1)[0]
        self._wait_until_up("/ready" if ready else "/health")

    def _wait_for_announce(self) -> str:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = ANNOUNCE.search(self.log.read_text(errors="replace"))
            if found:
                return found.group(2)
            if self.proc.poll() is not None:
                raise AssertionError(f"wassette serve exited {self.proc.returncode}:\n{self.log.read_text()}")
            time.sleep(0.05)
        raise AssertionError(f"wassette serve did not start:\n{self.log.read_text()}")

    def _wait_until_up(self, probe: str) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}{probe}", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"wassette serve does not answer:\n{self.log.read_text()}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextmanager
def http_server(
    env: dict[str, str], log: Path, *args: str, ready: bool = True, executable: str | None = None
) -> Iterator[HttpServer]:
    server = HttpServer(env, log, *args, ready=ready, executable=executable)
    try:
        yield server
    finally:
        server.stop()


@asynccontextmanager
async def http_session(
    url: str, *, headers: dict[str, str] | None = None, version: str | None = None, **kwargs: Any
) -> AsyncIterator[ClientSession]:
    """An initialized ClientSession over Streamable HTTP with a session
    (handshake era), at `version` (default: the SDK's newest, 2025-11-25)."""
    async with (
        http_client(headers) as client,
        streamable_http_client(url, http_client=client) as (read, write),
        ClientSession(read, write, **kwargs) as session,
    ):
        if version in (None, "2025-11-25"):
            await session.initialize()
        else:
            await initialize_at(session, version)
        yield session


def http_client(headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    """An HTTP client with the MCP SDK's default timeouts (long reads for streams)."""
    return httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(30, read=300))


async def initialize_at(session: ClientSession, version: str) -> types.InitializeResult:
    """The initialize handshake at a given revision. The SDK client always
    offers its newest one, so this sends the same request with another
    version (declaring no optional client capabilities) and then lets the
    SDK carry on as usual."""
    result = await session.send_request(
        types.InitializeRequest(
            params=types.InitializeRequestParams(
                protocol_version=version,
                capabilities=types.ClientCapabilities(),
                client_info=types.Implementation(name="wassette-tests", version="0"),
            )
        ),
        types.InitializeResult,
    )
    assert result.protocol_version == version, result.protocol_version
    session.adopt(result)
    await session.send_notification(types.InitializedNotification())
    return result


def text(result: types.CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, types.TextContent))


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (a `serve --workers N` parent and its workers)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            with suppress(OSError):
                todo.extend(int(c) for c in (task / "children").read_text().split())
    return found


def cpu_seconds(pid: int) -> float:
    """CPU time used by `pid` and its descendants (the workers, which run the calls)."""
    total = 0
    for member in process_tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


RAW_HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


class RawSession:
    """A handshake-era session, driven with plain HTTP requests."""

    def __init__(
        self,
        url: str,
        version: str = "2025-11-25",
        headers: dict[str, str] | None = None,
        capabilities: dict[str, Any] | None = None,
    ) -> None:
        self.url = url
        # Sent with every request (e.g. Authorization).
        self.client = httpx.Client(timeout=30, headers=headers)
        init = {
            "protocolVersion": version,
            "capabilities": capabilities or {},
            "clientInfo": {"name": "t", "version": "0"},
        }
        r = self.post({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": init}, session=False)
        self.headers = {
            **RAW_HEADERS,
            "mcp-session-id": r.headers["mcp-session-id"],
            "mcp-protocol-version": version,
        }
        self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def post(self, body: dict[str, Any], session: bool = True) -> httpx.Response:
        return self.client.post(self.url, json=body, headers=self.headers if session else RAW_HEADERS)

    def call(self, rid: int, name: str, args: dict[str, Any], **extra: Any) -> httpx.Response:
        params = {"name": name, "arguments": args, **extra}
        return self.post({"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": params})


def messages(response: httpx.Response) -> list[dict[str, Any]]:
    """The JSON-RPC messages of a response (SSE events or one JSON body), with
    code offsets in trap backtraces blanked (they vary between instances)."""
    text = re.sub(r"0x[0-9a-f]+", "0x?", response.text)
    if response.headers["content-type"].startswith("application/json"):
        return [json.loads(text)]
    lines = re.split(r"\r\n|\r|\n", text)  # SSE line ends (not str.splitlines: U+2028 is data)
    return [json.loads(line[5:]) for line in lines if line.startswith("data:") and line[5:].strip()]


PIPE_INIT = {
    "protocolVersion": "2025-11-25",
    "capabilities": {},
    "clientInfo": {"name": "pipe", "version": "0"},
}


def piped_session(*extra: dict[str, Any]) -> list[dict[str, Any]]:
    """A session as `printf ... | wassette run` sends it: initialize,
    initialized, a component call (`add` of the arith fixture, id 1), a
    built-in call (id 2), then `extra`."""
    return [
        {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": PIPE_INIT},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "add", "arguments": {"a": 2, "b": 3}},
        },
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "list-components", "arguments": {}},
        },
        *extra,
    ]


def run_piped(
    env: dict[str, str], messages: list[dict[str, Any]]
) -> tuple[subprocess.CompletedProcess[bytes], dict[Any, dict[str, Any]]]:
    """Runs `wassette run` with `messages` on stdin until it exits; returns
    the process and its answers by id."""
    stdin = b"".join(json.dumps(m).encode() + b"\n" for m in messages)
    done = subprocess.run(
        [sys.executable, "-m", "wassette", "run"], env=env, input=stdin, capture_output=True, timeout=60
    )
    answers = {m["id"]: m for m in map(json.loads, done.stdout.splitlines()) if "id" in m}
    return done, answers


class Pinned:
    """One keep-alive connection, and so one worker."""

    def __init__(self, server: HttpServer, headers: dict[str, str] | None = None) -> None:
        host, port = server.base.removeprefix("http://").rsplit(":", 1)
        self.conn = http.client.HTTPConnection(host, int(port), timeout=60)
        # Sent with every request (e.g. Authorization).
        self.headers = headers or {}
        self.worker = self.get("/info")["worker"]

    def get(self, path: str) -> Any:
        self.conn.request("GET", path, headers=self.headers)
        r = self.conn.getresponse()
        return json.loads(r.read())

    def post(
        self, body: dict[str, Any], sid: str | None = None
    ) -> tuple[int, list[dict[str, Any]], dict[str, str]]:
        headers = {**RAW_HEADERS, **self.headers}
        if sid is not None:
            headers.update({"mcp-session-id": sid, "mcp-protocol-version": "2025-11-25"})
        self.conn.request("POST", "/mcp", json.dumps(body), headers)
        r = self.conn.getresponse()
        raw = r.read().decode()
        if not raw:
            found = []
        elif r.getheader("content-type", "").startswith("application/json"):
            found = [json.loads(raw)]
        else:
            found = [
                json.loads(line[5:])
                for line in raw.splitlines()
                if line.startswith("data:") and line[5:].strip()
            ]
        return r.status, found, {k.lower(): v for k, v in r.getheaders()}

    def delete(self, sid: str) -> int:
        self.conn.request("DELETE", "/mcp", headers={**self.headers, "mcp-session-id": sid})
        r = self.conn.getresponse()
        r.read()
        return r.status

    def listen(self, sid: str) -> http.client.HTTPResponse:
        """The session's standing GET stream, on this connection's worker."""
        headers = {"accept": "text/event-stream", "mcp-session-id": sid, "mcp-protocol-version": "2025-11-25"}
        self.conn.request("GET", "/mcp", headers={**self.headers, **headers})
        events = self.conn.getresponse()
        assert events.status == 200
        return events

    def close(self) -> None:
        self.conn.close()


def pinned(server: HttpServer, count: int = 2, headers: dict[str, str] | None = None) -> list[Pinned]:
    """One connection to each of `count` workers (a worker that is starting
    gets connections once it listens)."""
    by_worker: dict[int, Pinned] = {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        p = Pinned(server, headers)
        if p.worker in by_worker:
            p.close()
        else:
            by_worker[p.worker] = p
        if len(by_worker) == count:
            return [by_worker[n] for n in sorted(by_worker)]
    raise AssertionError(f"connections for 30 s reached only workers {sorted(by_worker)}")


def all_serving(server: HttpServer, count: int = 2) -> None:
    """Waits until every worker listens (the first serves alone until then)."""
    deadline = time.monotonic() + 60
    while f"{count} workers serving" not in server.log.read_text():
        assert server.proc.poll() is None and time.monotonic() < deadline, server.log.read_text()
        time.sleep(0.05)


@contextmanager
def static_web(body: bytes) -> Iterator[int]:
    """A loopback HTTP server answering every GET with `body`; gives its port."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    web = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Thread(target=web.serve_forever, daemon=True).start()
    try:
        yield web.server_address[1]
    finally:
        web.shutdown()
        web.server_close()
