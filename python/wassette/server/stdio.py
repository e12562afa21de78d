"""MCP over stdio (`wassette run`): newline-delimited JSON-RPC on stdin/stdout.

Our own framing, with a fast path in front of the SDK's `Server`:
- One thread reads stdin and runs each component tool call's first slice
  itself (`workers.FIRST_SLICES`): most calls end within it and are answered
  from there, nothing hopping between threads on the way; a longer call is
  finished and answered by a worker thread while reading goes on.
- Answered here, in the wire forms of wire.py, for a session at a revision
  in `wire.FAST_VERSIONS`: `initialize`, `ping`, `logging/setLevel`,
  `tools/list`, component `tools/call` (guest stderr as a log message at the
  level the client chose) and `notifications/cancelled` of those calls; the
  client is told of changes to the tool list (`notifications/tools/list_changed`)
  from here too. Everything else (built-in tools, other methods, sessions at
  other revisions such as 2026-07-28, responses to our elicitations) goes to
  the SDK's server, in order.
- The SDK (~0.6 s to import, ~50 MB of memory) is loaded only when a message
  needs it; it then gets the handshake replayed (its own answers to what was
  answered here are dropped) and everything that waited for it.
- Bad input gets the JSON-RPC error (-32700 parse error, -32600 invalid or
  oversized request) and the session goes on (the SDK drops such lines).
As the SDK does, fd 0 is pointed at /dev/null and fd 1 at stderr while
serving, so nothing else in the process can write into the protocol stream.
This module does not import the SDK at load time.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from wassette import _engine
from wassette.runtime.errors import WassetteError
from wassette.runtime.lifecycle import Runtime
from wassette.server import wire
from wassette.server.limits import DEFAULT_MAX_REQUEST_BYTES
from wassette.server.loading import freeze_loaded, prompt_switches
from wassette.server.workers import FIRST_SLICES

if TYPE_CHECKING:
    from wassette.runtime.lifecycle import CallResult, ToolCall
    from wassette.server.app import WassetteServer

log = logging.getLogger("wassette.stdio")

_CHUNK = 64 * 1024
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
INTERNAL_ERROR = -32603
SERVER_BUSY = -32000
# Component calls of one session running or waiting for a worker; a call
# beyond that is refused at once (a client cannot queue without bound).
MAX_CALLS_IN_FLIGHT = 256
# When the input ends, what was already read is still answered if it finishes
# within this long (`printf ... | wassette run` gets every answer); guests
# still running then are stopped, as the client is gone.
EOF_GRACE_S = 5.0
SHUTDOWN_MESSAGE = f"stopped: the client closed stdin and the call did not finish within {EOF_GRACE_S:g} s"
# How long to let cancelled calls end before the process exits.
_STOP_GRACE_S = 2.0


def error_line(request_id: Any, code: int, message: str) -> bytes:
    body = {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}
    return json.dumps(body, separators=(",", ":")).encode() + b"\n"


def response(request_id: Any, result: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


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
    if not wire.valid_id(request_id):
        request_id = None
    return error_line(request_id, INVALID_REQUEST, "Invalid Request: not a JSON-RPC 2.0 request object")


def _call_answer(rid: object, name: str, result: CallResult | Exception) -> dict[str, Any]:
    """The answer to a call that ended, or could not run (an exception)."""
    if isinstance(result, WassetteError):
        return response(rid, wire.error_result(str(result)))
    if not isinstance(result, Exception):
        try:
            return response(rid, wire.call_result(result))
        except Exception as e:  # a bug here must not cost the client its answer
            result = e
    log.error("tool call %s failed", name, exc_info=result)
    return {"jsonrpc": "2.0", "id": rid, "error": {"code": INTERNAL_ERROR, "message": "Internal error"}}


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


class Output:
    """Writes whole lines to the client, from any thread, one at a time
    (blocking writes: a client that stops reading holds up its own answers)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._lock = threading.Lock()
        self._gone = False

    def write(self, data: bytes) -> None:
        with self._lock:
            if self._gone:
                return
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(self.fd, view) :]
            except OSError as e:  # the client closed its end: nobody to answer
                log.debug("stdout closed by the client: %s", e)
                self._gone = True

    def message(self, message: dict[str, Any]) -> None:
        self.write(wire.dumps(message) + b"\n")


class _End:
    """Marks the end of the input."""


_EOF = _End()


class _Input:
    """The input side: lines read from the client."""

    def __init__(self, fd: int, limit: int) -> None:
        self.fd = fd
        self.splitter = LineSplitter(limit)
        self.lines: deque[bytes | None] = deque()
        self.eof = False

    def next(self) -> bytes | _End | None:
        """The next line (None for an oversized one), or _EOF."""
        while not self.lines:
            if self.eof:
                return _EOF
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


# A message for the SDK: the line (None: the input ended), and the request id
# whose SDK answer is dropped (the handshake replayed, answered here already).
_SdkItem = tuple[bytes | None, object]
_NOT_MUTED = object()
_LIST_CHANGED = {"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}
# How often the component directory is checked for changes by other processes.
_WATCH_INTERVAL_S = 1.0


class StdioSession:
    """One client on stdin/stdout: what is answered without the SDK, the
    thread that reads (and calls), and the queue of messages for the SDK."""

    def __init__(
        self,
        runtime: Runtime,
        output: Output,
        in_fd: int,
        *,
        builtin_tools: bool = True,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    ) -> None:
        self.runtime = runtime
        self.output = output
        self.builtin_tools = builtin_tools
        self.input = _Input(in_fd, max_request_bytes)
        self.max_request_bytes = max_request_bytes
        # Set once `initialize` was answered here: the fast path is on.
        self.version: str | None = None
        self._initialize_seen = False
        self._client_initialized = False
        # The level chosen with logging/setLevel (replayed to the SDK).
        self.log_level: int | None = None
        self._lock = threading.Lock()
        self._inflight: dict[object, _engine.CancelToken] = {}
        self._cancelled: set[object] = set()
        # Calls taken and not yet answered (or dropped, when cancelled).
        self._unanswered = 0
        # Set when calls still running are stopped because the server stops.
        self._shutting_down = False
        # Messages for the SDK before it runs, in order, and whether any needs it.
        self._pending: list[_SdkItem] = []
        self.sdk_needed = False
        self._sink: Callable[[_SdkItem], None] | None = None
        self._sdk_tools_changed: Callable[[], None] | None = None
        self.ended = threading.Event()
        self.ended_at = 0.0  # time.monotonic() when the input ended
        # Set when the SDK is first needed, or the input ended.
        self.wake = threading.Event()
        self._idle_calls = threading.Condition(self._lock)

    # -- threads ---------------------------------------------------------

    def start(self, since: frozenset[tuple[str, int]] | None = None) -> None:
        """Starts answering, and watching the component directory for changes
        made since `since` (its stamp when the runtime read it)."""
        threading.Thread(target=self._read, name="wassette-stdio", daemon=True).start()
        last = self.runtime.store.stamp() if since is None else since
        threading.Thread(target=self._watch, args=(last,), name="wassette-stdio-watch", daemon=True).start()

    def _read(self) -> None:
        """Reads and handles lines until the input ends."""
        while True:
            line = self.input.next()
            if isinstance(line, _End):
                self._end()
                return
            try:
                self._handle(line)
            except Exception:  # a bug answering one line must not end the session
                log.exception("handling a %d-byte line failed", len(line or b""))

    # -- messages --------------------------------------------------------

    def _handle(self, line: bytes | None) -> None:
        """Answers or forwards one line."""
        if line is None:
            message = f"Invalid Request: larger than the {self.max_request_bytes}-byte limit"
            self.output.write(error_line(None, INVALID_REQUEST, message))
            return
        if not line.strip():
            return
        try:
            msg = json.loads(line)
        except (ValueError, RecursionError):
            log.debug("rejected a line that is not JSON (%d bytes)", len(line))
            self.output.write(error_line(None, PARSE_ERROR, "Parse error: the line is not valid JSON"))
            return
        if isinstance(msg, dict):
            method = msg.get("method")
            if "id" in msg:
                well_formed = msg.get("jsonrpc") == "2.0" and wire.valid_id(msg["id"])
                if (
                    well_formed
                    and isinstance(method, str)
                    and self._request(msg["id"], method, msg.get("params"), line)
                ):
                    return
            elif method == "notifications/cancelled" and self._cancel(msg.get("params")):
                return
            elif method == "notifications/initialized" and self.version is not None:
                self._client_initialized = True
                self._to_sdk((line, _NOT_MUTED), needed=False)
                return
        self._to_sdk((line, _NOT_MUTED))

    def _request(self, rid: object, method: str, params: object, line: bytes) -> bool:
        """Whether a well-formed request was handled here."""
        if method == "initialize" and not self._initialize_seen:
            self._initialize_seen = True
            version = wire.handshake(params)
            if version in wire.FAST_VERSIONS:
                self.output.message(response(rid, wire.initialize_result(version)))
                self.version = version
                self._to_sdk((line, rid), needed=False)  # for the SDK, if it ever runs
                return True
            return False
        if self.version is None:
            return False
        if method == "tools/call":
            return self._call(rid, params)
        if method == "tools/list" and wire.plain_listing(params):
            self.output.message(
                response(rid, {"tools": wire.tools(self.runtime.tools(), self.builtin_tools)})
            )
            return True
        if method == "ping" and not params:
            self.output.message(response(rid, {}))
            return True
        if method == "logging/setLevel" and isinstance(params, dict) and set(params) == {"level"}:
            level = params["level"]
            if isinstance(level, str) and level in wire.LEVELS:
                self.log_level = wire.LEVELS[level]
                self.output.message(response(rid, {}))
                self._to_sdk((line, rid), needed=False)  # the SDK keeps its own copy
                return True
        return False

    def _call(self, rid: object, params: object) -> bool:
        """Runs a component tool call in a shape this path serves (False for
        any other): its first slice here, the rest, if any, in a worker."""
        call = wire.component_call(params, self.runtime, self.builtin_tools)
        if call is None:
            return False
        name, arguments = call
        token = _engine.CancelToken()
        with self._lock:
            busy = self._unanswered >= MAX_CALLS_IN_FLIGHT
            if not busy:
                self._inflight[rid] = token
                self._unanswered += 1
        if busy:
            message = f"Server busy: {MAX_CALLS_IN_FLIGHT} calls of this session have not ended; retry later"
            self.output.write(error_line(rid, SERVER_BUSY, message))
            return True
        try:
            started = self.runtime.start_tool(name, arguments, cancel=token)
            result = FIRST_SLICES.run(name, started)
        except Exception as e:
            self._answer(rid, name, token, e)
            return True
        if result is None:
            FIRST_SLICES.workers.start(lambda: self._finish(rid, name, token, started))
        else:
            self._answer(rid, name, token, result)
        return True

    def _finish(self, rid: object, name: str, token: _engine.CancelToken, call: ToolCall) -> None:
        """In a worker thread: the rest of a call, and its answer."""
        try:
            result: CallResult | Exception = FIRST_SLICES.complete(name, call)
        except Exception as e:
            result = e
        self._answer(rid, name, token, result)

    def _answer(
        self, rid: object, name: str, token: _engine.CancelToken, result: CallResult | Exception
    ) -> None:
        """Answers a call that ended, or could not run (an exception)."""
        try:
            self._answer_call(rid, name, token, result)
        finally:
            with self._lock:
                self._unanswered -= 1
                self._idle_calls.notify_all()

    def _answer_call(
        self, rid: object, name: str, token: _engine.CancelToken, result: CallResult | Exception
    ) -> None:
        token.cancel()  # as the SDK path does; a finished call ignores it
        with self._lock:
            self._inflight.pop(rid, None)
            cancelled = rid in self._cancelled
            self._cancelled.discard(rid)
        if cancelled:
            return  # a cancelled request is never answered
        answer = _call_answer(rid, name, result)
        if isinstance(result, Exception):
            self.output.message(answer)
            return
        if result.status == "cancelled" and self._shutting_down:
            answer = response(rid, wire.error_result(SHUTDOWN_MESSAGE))
        stderr = result.stderr
        if stderr and self.log_level is not None and wire.LEVELS["info"] >= self.log_level:
            self.output.message(
                {"jsonrpc": "2.0", "method": "notifications/message", "params": wire.stderr_log(name, stderr)}
            )
        self.output.message(answer)

    def _cancel(self, params: object) -> bool:
        """Stops a call of this path named by `notifications/cancelled`."""
        rid = params.get("requestId") if isinstance(params, dict) else None
        if not wire.valid_id(rid):
            return False
        with self._lock:
            token = self._inflight.get(rid)
            if token is None:
                return False
            self._cancelled.add(rid)
        token.cancel()
        return True

    def _end(self) -> None:
        """The input ended: what was read is answered (see EOF_GRACE_S)."""
        self.ended_at = time.monotonic()
        self._to_sdk((None, _NOT_MUTED), needed=False)
        self.ended.set()
        self.wake.set()

    def grace_left(self) -> float:
        """Seconds left to answer what was read before the input ended."""
        return max(0.0, self.ended_at + EOF_GRACE_S - time.monotonic()) if self.ended.is_set() else 0.0

    def stop(self) -> None:
        """Lets calls still running finish within the grace after the input
        ended, then stops the rest and waits (briefly) for them to end."""
        with self._lock:
            self._idle_calls.wait_for(lambda: not self._unanswered, timeout=self.grace_left())
            self._shutting_down = True
            for token in self._inflight.values():
                token.cancel()
            self._idle_calls.wait_for(lambda: not self._unanswered, timeout=_STOP_GRACE_S)

    # -- the SDK ---------------------------------------------------------

    def _to_sdk(self, item: _SdkItem, *, needed: bool = True) -> None:
        """Forwards a message to the SDK; before it runs, keeps it for then
        and, if the message `needed` the SDK, has it loaded."""
        with self._lock:
            if self._sink is not None:
                self._sink(item)
                return
            self._pending.append(item)
            if needed and not self.sdk_needed:
                self.sdk_needed = True
                self.wake.set()

    def attach_sdk(self, sink: Callable[[_SdkItem], None], tools_changed: Callable[[], None]) -> None:
        """From now on messages for the SDK go to `sink`, after those that
        waited; changes to the tool list are announced through `tools_changed`."""
        with self._lock:
            for item in self._pending:
                sink(item)
            self._pending.clear()
            self._sink = sink
            self._sdk_tools_changed = tools_changed

    # -- changes to the tool list ---------------------------------------

    def _watch(self, last: frozenset[tuple[str, int]]) -> None:
        """Rescans when components change under the running server
        (`wassette component load|unload` from another process, files copied
        in by hand) and tells the client."""
        while not self.ended.wait(_WATCH_INTERVAL_S):
            now = self.runtime.store.stamp()
            if now == last:
                continue
            last = now
            try:
                changed = self.runtime.rescan()
            except WassetteError as e:
                log.warning("rescanning components failed: %s", e)
                continue
            if changed:
                with self._lock:
                    announce = self._sdk_tools_changed or self.announce_tools_changed
                announce()

    def announce_tools_changed(self) -> None:
        """`notifications/tools/list_changed` to a client served here (the
        SDK tells the clients it serves itself)."""
        if self.version is not None and self._client_initialized:
            self.output.message(_LIST_CHANGED)


async def _serve_sdk(session: StdioSession, app: WassetteServer) -> None:
    """The SDK's server on the messages the session forwards, until the input ends."""
    import asyncio

    import anyio
    import mcp.types as types
    from mcp.shared.message import SessionMessage

    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[_SdkItem] = asyncio.Queue()
    read_send, read_receive = anyio.create_memory_object_stream[SessionMessage | Exception](16)
    write_send, write_receive = anyio.create_memory_object_stream[SessionMessage](16)
    muted: set[object] = set()
    # Requests the SDK has not answered yet; when the input ends they are
    # still answered (within the session's grace) before the SDK stops.
    outstanding: set[object] = set()
    answered = asyncio.Event()

    async def pump() -> None:
        async with read_send:
            while True:
                line, mute = await queue.get()
                if line is None:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(session.grace_left()):
                            while outstanding:
                                answered.clear()
                                await answered.wait()
                    return
                try:
                    parsed = types.jsonrpc_message_adapter.validate_json(line, by_name=False)
                except Exception:
                    log.debug("rejected a malformed line (%d bytes)", len(line))
                    answer = rejection(line)
                    if answer is not None:
                        session.output.write(answer)
                    continue
                if mute is not _NOT_MUTED:
                    muted.add(mute)
                elif isinstance(parsed, types.JSONRPCRequest):
                    outstanding.add(parsed.id)
                await read_send.send(SessionMessage(parsed))

    async def write_output() -> None:
        async with write_receive:
            async for message in write_receive:
                m = message.message
                if isinstance(m, types.JSONRPCResponse | types.JSONRPCError) and m.id in outstanding:
                    outstanding.discard(m.id)
                    answered.set()
                if isinstance(m, types.JSONRPCResponse | types.JSONRPCError) and m.id in muted:
                    muted.discard(m.id)
                    if isinstance(m, types.JSONRPCError):
                        log.warning("the SDK refused what the fast path answered: %s", m.error)
                    continue
                session.output.write(m.model_dump_json(by_alias=True, exclude_unset=True).encode() + b"\n")

    def forward(item: _SdkItem) -> None:  # from the reading threads
        loop.call_soon_threadsafe(queue.put_nowait, item)

    def tools_changed() -> None:  # from the watching thread
        asyncio.run_coroutine_threadsafe(app.tools_changed(), loop)

    # A session served here is told of changes by the session, not by the SDK.
    app.tracks = lambda connection: session.version is None
    app.on_tools_changed = session.announce_tools_changed
    session.attach_sdk(forward, tools_changed)
    async with anyio.create_task_group() as outer:
        outer.start_soon(write_output)
        async with anyio.create_task_group() as tg:
            tg.start_soon(pump)
            await app.server.run(read_receive, write_send, app.initialization_options())
            tg.cancel_scope.cancel()
        write_send.close()  # the writer drains what the server sent, then ends


def serve_stdio(
    runtime: Runtime,
    *,
    builtin_tools: bool = True,
    agent_grants: str = "ask",
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
) -> None:
    since = runtime.store.stamp()
    in_fd, restore_in = _claim(0, lambda: os.open(os.devnull, os.O_RDONLY))
    out_fd, restore_out = _claim(1, lambda: os.dup(2))
    session = StdioSession(
        runtime, Output(out_fd), in_fd, builtin_tools=builtin_tools, max_request_bytes=max_request_bytes
    )
    try:
        session.start(since)  # the client is answered from here on
        session.wake.wait()
        if session.sdk_needed:
            with prompt_switches():
                import asyncio

                from wassette.server.app import WassetteServer

                app = WassetteServer(runtime, builtin_tools=builtin_tools, agent_grants=agent_grants)
            freeze_loaded()
            asyncio.run(_serve_sdk(session, app))
        else:
            session.ended.wait()
    finally:
        session.stop()
        restore_out()
        restore_in()
