"""MCP over stdio (`wassette run`): newline-delimited JSON-RPC on
stdin/stdout. Framing only: every message goes to the core server.

One thread reads stdin and hands each message to the server, which answers
most requests right there (component calls run their first slice on this
thread); calls that run longer are answered from a worker thread while
reading goes on. Bad input gets its JSON-RPC error and the session goes on.

As the official SDK does, fd 0 is pointed at /dev/null and fd 1 at stderr
while serving, so nothing else in the process can write into the protocol
stream.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from wassette.runtime.runtime import Runtime
from wassette.runtime.serve_config import DEFAULT_MAX_REQUEST_BYTES
from wassette.server.core import jsonrpc
from wassette.server.core.jsonrpc import INVALID_REQUEST, Id, Rejected
from wassette.server.core.server import McpServer, ServerOptions
from wassette.server.core.session import Session

log = logging.getLogger("wassette.stdio")

_CHUNK = 64 * 1024
# When the input ends, what was already read is still answered if it finishes
# within this long (`printf ... | wassette run` gets every answer); guests
# still running then are stopped, as the client is gone.
EOF_GRACE_S = 5.0
SHUTDOWN_MESSAGE = f"stopped: the client closed stdin and the call did not finish within {EOF_GRACE_S:g} s"
# How long to let stopped calls end before the process exits.
_STOP_GRACE_S = 2.0


class LineSplitter:
    """Cuts a byte stream into lines of at most `limit` bytes; a longer line
    is dropped and reported as None, once, in its place."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._buffer = bytearray()
        self._dropping = False

    def feed(self, chunk: bytes) -> list[bytes | None]:
        lines: list[bytes | None] = []
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            if end < 0:
                break
            if self._dropping:
                self._dropping = False
            elif len(self._buffer) + end - start > self.limit:
                lines.append(None)
            else:
                self._buffer += chunk[start:end]
                lines.append(bytes(self._buffer))
            self._buffer.clear()
            start = end + 1
        if not self._dropping:
            self._buffer += chunk[start:]
            if len(self._buffer) > self.limit:
                self._buffer.clear()
                self._dropping = True
                lines.append(None)
        return lines

    def finish(self) -> bytes | None:
        """The last line, if the stream did not end with a newline."""
        rest = bytes(self._buffer)
        self._buffer.clear()
        return rest if rest.strip() and not self._dropping else None


def rejection(line: bytes) -> bytes | None:
    """The JSON-RPC error answering a line that is not a valid message, or
    None when nothing may be answered (a malformed notification or response,
    or a valid message)."""
    parsed = jsonrpc.parse(line)
    if isinstance(parsed, Rejected) and parsed.answer is not None:
        return jsonrpc.dumps(parsed.answer) + b"\n"
    return None


class Output:
    """Writes whole lines to the client, from any thread, one at a time
    (blocking writes: a client that stops reading holds up its own answers).
    It is the session's channel for every request and its outbound."""

    can_ask = True
    carries_events = True

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._lock = threading.Lock()
        self._gone = False

    def write(self, data: bytes) -> bool:
        with self._lock:
            if self._gone:
                return False
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(self.fd, view) :]
            except OSError as e:  # the client closed its end: nobody to answer
                log.debug("stdout closed by the client: %s", e)
                self._gone = True
                return False
        return True

    # Channel and Outbound
    def send(self, message: dict[str, Any], final: bool = False) -> bool:
        return self.write(jsonrpc.dumps(message) + b"\n")

    def cancelled(self, request_id: Id) -> None:
        """A request the client cancelled is never answered."""


def _claim(fd: int, diversion: Callable[[], int]) -> tuple[int, Callable[[], None]]:
    """Moves a standard fd to a private descriptor and points the standard
    one elsewhere; returns the private fd and how to undo it."""
    private = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    other = diversion()
    os.dup2(other, fd)
    os.close(other)

    def restore() -> None:
        os.dup2(private, fd)
        os.close(private)

    return private, restore


class _End:
    """The end of the input."""


END = _End()


class _Input:
    """Lines read from the client (None for an oversized one)."""

    def __init__(self, fd: int, limit: int) -> None:
        self.fd = fd
        self.splitter = LineSplitter(limit)
        self.lines: deque[bytes | None] = deque()
        self.eof = False

    def next(self) -> bytes | _End | None:
        """The next line (None for an oversized one), or END."""
        while not self.lines:
            if self.eof:
                return END
            try:
                chunk = os.read(self.fd, _CHUNK)
            except OSError as e:
                log.debug("stdin unreadable: %s", e)
                chunk = b""
            if not chunk:
                self.eof = True
                last = self.splitter.finish()
                if last is not None:
                    self.lines.append(last)
                continue
            self.lines.extend(self.splitter.feed(chunk))
        return self.lines.popleft()


class StdioConnection:
    """One client on a pair of file descriptors: the reading thread and the
    session it feeds."""

    def __init__(self, server: McpServer, in_fd: int, output: Output, max_request_bytes: int) -> None:
        self.server = server
        self.output = output
        self.input = _Input(in_fd, max_request_bytes)
        self.max_request_bytes = max_request_bytes
        self.session = server.open(Session(output))
        self.session.lasting = True  # the connection is the session
        self.ended = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._read, name="wassette-stdio", daemon=True).start()

    def _read(self) -> None:
        while True:
            line = self.input.next()
            if isinstance(line, _End):
                self.ended.set()
                return
            try:
                self._handle(line)
            except Exception:  # a bug answering one line must not end the session
                log.exception("handling a %d-byte line failed", len(line or b""))

    def _handle(self, line: bytes | None) -> None:
        if line is None:
            message = f"Invalid Request: larger than the {self.max_request_bytes}-byte limit"
            self.output.send(jsonrpc.error(None, INVALID_REQUEST, message))
            return
        if not line.strip():
            return
        parsed = jsonrpc.parse(line)
        if isinstance(parsed, Rejected):
            if parsed.answer is not None:
                self.output.send(parsed.answer)
            return
        self.server.handle(self.session, parsed, self.output)

    def stop(self) -> None:
        """Lets what was read be answered within the grace after the input
        ended, then stops the rest (answered with why) and waits briefly."""
        self.session.wait_idle(EOF_GRACE_S)
        self.server.close(self.session, SHUTDOWN_MESSAGE)
        self.session.wait_idle(_STOP_GRACE_S)


def serve_stdio(
    runtime: Runtime, options: ServerOptions, *, max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
) -> None:
    since = runtime.store.stamp()
    in_fd, restore_in = _claim(0, lambda: os.open(os.devnull, os.O_RDONLY))
    out_fd, restore_out = _claim(1, lambda: os.dup(2))
    server = McpServer(runtime, options)
    connection = StdioConnection(server, in_fd, Output(out_fd), max_request_bytes)
    try:
        connection.start()
        server.changes.watch(since)
        connection.ended.wait()
    finally:
        server.changes.stop()
        connection.stop()
        restore_out()
        restore_in()
