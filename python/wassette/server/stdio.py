"""MCP over stdio (`wassette run`): newline-delimited JSON-RPC on stdin/stdout.

A lean framing in place of the SDK's `stdio_server`, for two reasons:
- latency: the SDK reads and writes through worker threads (a thread hop per
  line read and two per message written), which dominated a trivial call;
  here pipes are read and written by the event loop itself;
- bad input: the SDK drops a line that is not JSON-RPC without a word; here
  the client gets the JSON-RPC error (-32700 parse error, -32600 invalid or
  oversized request) and the session goes on.
As the SDK does, fd 0 is pointed at /dev/null and fd 1 at stderr while
serving, so nothing else in the process can write into the protocol stream.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import stat
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import mcp.types as types
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.shared.message import SessionMessage

from wassette.runtime.lifecycle import Runtime
from wassette.server.app import WassetteServer
from wassette.server.limits import DEFAULT_MAX_REQUEST_BYTES

log = logging.getLogger("wassette.stdio")

_CHUNK = 64 * 1024
PARSE_ERROR = -32700
INVALID_REQUEST = -32600


def error_line(request_id: Any, code: int, message: str) -> bytes:
    body = {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}
    return json.dumps(body, separators=(",", ":")).encode() + b"\n"


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
    None when nothing may be answered (a malformed notification or response)."""
    try:
        data = json.loads(line)
    except (ValueError, RecursionError):
        return error_line(None, PARSE_ERROR, "Parse error: the line is not valid JSON")
    if isinstance(data, dict) and "id" not in data:
        return None  # notifications (and id-less junk) are never answered
    if isinstance(data, dict) and "method" not in data and ("result" in data or "error" in data):
        return None  # a malformed response to one of our requests
    request_id = data.get("id") if isinstance(data, dict) else None
    if not isinstance(request_id, str | int) or isinstance(request_id, bool):
        request_id = None
    return error_line(request_id, INVALID_REQUEST, "Invalid Request: not a JSON-RPC 2.0 request object")


def _is_pipe(fd: int) -> bool:
    mode = os.fstat(fd).st_mode
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


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


class _Output:
    """Writes lines to the client: by the event loop on a pipe, else (a file,
    a terminal) blocking writes in a worker thread."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._lock = anyio.Lock()
        self._writer: asyncio.StreamWriter | None = None
        self._gone = False

    async def open(self) -> None:
        if _is_pipe(self.fd):
            loop = asyncio.get_running_loop()
            pipe = os.fdopen(self.fd, "wb", buffering=0, closefd=False)
            transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, pipe)
            self._writer = asyncio.StreamWriter(transport, protocol, None, loop)

    async def write(self, data: bytes) -> None:
        async with self._lock:
            if self._gone:
                return
            try:
                if self._writer is not None:
                    self._writer.write(data)
                    await self._writer.drain()
                else:
                    await anyio.to_thread.run_sync(_write_all, self.fd, data)
            except OSError as e:  # the client closed its end: nobody to answer
                log.debug("stdout closed by the client: %s", e)
                self._gone = True

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


async def _chunks(fd: int) -> AsyncIterator[bytes]:
    if _is_pipe(fd):
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=_CHUNK)
        pipe = os.fdopen(fd, "rb", buffering=0, closefd=False)
        transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
        try:
            while chunk := await reader.read(_CHUNK):
                yield chunk
        finally:
            transport.close()
    else:
        while chunk := await anyio.to_thread.run_sync(os.read, fd, _CHUNK, abandon_on_cancel=True):
            yield chunk


@asynccontextmanager
async def stdio_streams(
    max_line_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
) -> AsyncIterator[tuple[MemoryObjectReceiveStream[Any], MemoryObjectSendStream[SessionMessage]]]:
    """The (read, write) stream pair `Server.run` serves, over this process's stdio."""
    in_fd, restore_in = _claim(0, lambda: os.open(os.devnull, os.O_RDONLY))
    out_fd, restore_out = _claim(1, lambda: os.dup(2))
    output = _Output(out_fd)
    read_send, read_receive = anyio.create_memory_object_stream[SessionMessage | Exception](16)
    write_send, write_receive = anyio.create_memory_object_stream[SessionMessage](16)

    async def handle(line: bytes | None) -> None:
        if line is None:
            message = f"Invalid Request: larger than the {max_line_bytes}-byte limit"
            await output.write(error_line(None, INVALID_REQUEST, message))
            return
        if not line.strip():
            return
        try:
            parsed = types.jsonrpc_message_adapter.validate_json(line, by_name=False)
        except Exception:
            answer = rejection(line)
            log.debug("rejected a malformed line (%d bytes)", len(line))
            if answer is not None:
                await output.write(answer)
            return
        await read_send.send(SessionMessage(parsed))

    async def read_input(scope: anyio.CancelScope) -> None:
        with scope:
            async with read_send:
                splitter = LineSplitter(max_line_bytes)
                async for chunk in _chunks(in_fd):
                    for line in splitter.feed(chunk):
                        await handle(line)
                last = splitter.finish()
                if last is not None:
                    await handle(last)

    async def write_output() -> None:
        async with write_receive:
            async for message in write_receive:
                data = message.message.model_dump_json(by_alias=True, exclude_unset=True)
                await output.write(data.encode() + b"\n")

    try:
        await output.open()
        async with anyio.create_task_group() as tg:
            reading = anyio.CancelScope()
            tg.start_soon(read_input, reading)
            tg.start_soon(write_output)
            try:
                yield read_receive, write_send
            finally:
                # Stop reading; let the writer drain what the server sent.
                reading.cancel()
                write_send.close()
    finally:
        output.close()
        restore_out()
        restore_in()


def serve_stdio(
    runtime: Runtime,
    *,
    builtin_tools: bool = True,
    agent_grants: str = "ask",
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
) -> None:
    app = WassetteServer(runtime, builtin_tools=builtin_tools, agent_grants=agent_grants)

    async def main() -> None:
        async with stdio_streams(max_request_bytes) as (read, write), anyio.create_task_group() as tg:
            tg.start_soon(app.watch_components)
            await app.server.run(read, write, app.initialization_options())
            tg.cancel_scope.cancel()

    anyio.run(main)
