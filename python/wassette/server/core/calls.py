"""The one call runner: every `tools/call`, of a component or a built-in
tool, on every transport and revision, runs here.

- Arguments are checked, then a component call's first slice runs on the
  caller's own thread (stdio's reading thread, HTTP's event loop): most
  calls end within it and are answered from there, nothing hopping between
  threads on the way. A call still running then is finished by a worker
  thread (workers.py) while the caller serves others.
- Built-in tools run in a worker thread from the start: they fetch, compile
  and may wait for the user.
- The request's cancel token stops the guest (the client cancelled, went
  away, or the server stops); guest stderr goes to the client as a log
  message at the level it asked for; the outcome becomes the MCP result.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from wassette import _engine
from wassette.runtime.builtin_tools import BUILTIN_NAMES
from wassette.runtime.calls import CallResult, ToolCall
from wassette.runtime.errors import UnknownToolError, WassetteError
from wassette.runtime.runtime import Runtime
from wassette.server.core import host_calls, jsonrpc, task_requests, tasks
from wassette.server.core.builtins import INSTANCE_TOOLS, Builtins
from wassette.server.core.jsonrpc import INVALID_PARAMS, RpcError
from wassette.server.core.results import call_result, error_result, stderr_log
from wassette.server.core.rounds import Round, Rounds
from wassette.server.core.session import Exchange
from wassette.server.core.task_requests import TaskRequests
from wassette.server.core.tasks import Tasks
from wassette.server.core.workers import FIRST_SLICES, FirstSlices

log = logging.getLogger("wassette.server")

CancelToken = _engine.CancelToken


def cancel_token() -> CancelToken:
    """A new token stopping a call from any thread."""
    return _engine.CancelToken()


BUSY = RpcError(jsonrpc.SERVER_BUSY, "Server busy: too many calls are waiting for a worker; retry later")


def call_params(params: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """(tool name, arguments) of a tools/call, or RpcError."""
    if params is None:
        raise RpcError(INVALID_PARAMS, "Invalid params: tools/call needs params with a tool `name`")
    name, arguments = params.get("name"), params.get("arguments")
    if not isinstance(name, str):
        raise RpcError(INVALID_PARAMS, "Invalid params: the tool `name` must be a string")
    if arguments is not None and not isinstance(arguments, dict):
        raise RpcError(INVALID_PARAMS, "Invalid params: `arguments` must be an object")
    return name, arguments or {}


class CallRunner:
    def __init__(
        self,
        runtime: Runtime,
        builtins: Builtins | None,
        slices: FirstSlices = FIRST_SLICES,
        catch_up: Callable[[], bool] | None = None,
    ) -> None:
        self.runtime = runtime
        self.builtins = builtins
        # Long calls of clients that declare the tasks extension become tasks;
        # 2025-11-25 calls asking for a task run as one.
        self.tasks: Tasks | None = None
        self.task_requests: TaskRequests | None = None
        self.slices = slices
        # Rereads the component directory if it changed; True when the tools did.
        self.catch_up = catch_up
        # Calls asking their client over rounds (2026-07-28 without tasks);
        # a retry for another worker's call goes there (server/http/relay.py).
        self.rounds: Rounds | None = Rounds()
        self.rounds_elsewhere: Callable[[Exchange, str, dict[str, Any]], None] | None = None
        # Where calls of kept components (and open/close-instance) run when
        # not here: `serve --workers N` keeps every instance in one worker
        # (server/http/relay.py). None: here.
        self.kept_elsewhere: Callable[[Exchange, str, dict[str, Any]], None] | None = None

    def start(
        self, exchange: Exchange, name: str, arguments: dict[str, Any], task: Any = None
    ) -> dict[str, Any] | None:
        """The call's result if it ended on this thread; else None, and the
        exchange is answered when it ends. `task`: the request's `task`
        parameter (2025-11-25: run as a task, task_requests.py)."""
        legacy_task = self.task_requests is not None and task_requests.requested(exchange, task)
        if legacy_task and (self.builtins is not None and name in BUILTIN_NAMES):
            raise RpcError(
                jsonrpc.METHOD_NOT_FOUND, f"Method not found: the built-in tool {name} does not run as a task"
            )
        if self.kept_elsewhere is not None and (
            (self.builtins is not None and name in INSTANCE_TOOLS) or self.runtime.keeps(name)
        ):
            self.kept_elsewhere(exchange, name, arguments)
            return None
        if self.builtins is not None and name in BUILTIN_NAMES:
            builtins = self.builtins
            answer_later(
                self.slices.workers.start, exchange, lambda: builtins.call(name, arguments, exchange)
            )
            return None
        # A call that may become a task, or ask its client over rounds
        # (2026-07-28), outlives its request: its own token, cancelled with
        # the request until then.
        as_task = self.tasks is not None and tasks.declared(exchange)
        rounds = self.rounds is not None and not as_task and exchange.session.modern
        token = _engine.CancelToken() if as_task or rounds or legacy_task else exchange.token
        if as_task or rounds:
            exchange.on_cancel = token.cancel
        round_ = Round(exchange, name, tasks.owner_of(exchange), token.cancel) if rounds else None
        try:
            asker = (self.rounds, round_) if self.rounds is not None and round_ is not None else None
            host = host_calls.for_exchange(exchange, name, self.runtime, self.tasks, asker)
            if legacy_task:
                host = self._task_asking(exchange, host)
            scope = exchange.session.instance_scope()
            call = self.runtime.start_tool(
                name,
                arguments,
                cancel=token,
                host=host,
                scope=scope,
                owner=exchange.session.owner,
                need_scope=scope is None,
            )
        except UnknownToolError as e:
            # Loaded a moment ago by another process? Then it is callable now.
            if self.catch_up is None or not self.catch_up():
                return error_result(str(e))
            return self.start(exchange, name, arguments)
        except WassetteError as e:
            return error_result(str(e))
        if legacy_task:  # answered with the task at once; the call runs on
            assert self.task_requests is not None
            requests = self.task_requests
            requests.begin(exchange, task)
            job = lambda: requests.run(exchange, call, token, lambda r: self.shape(exchange, name, r))  # noqa: E731
            if not self.slices.workers.start(job):
                token.cancel()
            return None
        # A first slice here, on the thread reading requests: most calls end
        # in it. Not one that may ask the client (its answer comes that way).
        result = None if call.asks_client else self.slices.run(name, call)
        if result is not None:
            return self.shape(exchange, name, result)
        if as_task:
            assert self.tasks is not None
            run = self.tasks.run
            job = lambda: run(exchange, call, token, lambda r: self.shape(exchange, name, r))  # noqa: E731
        else:
            job = lambda: self._finish(exchange, name, call, round_)  # noqa: E731
        if not self.slices.workers.start(job):
            token.cancel()
            raise BUSY
        return None

    def _task_asking(
        self, exchange: Exchange, host: Callable[[str, str], str | None]
    ) -> Callable[[str, str], str | None]:
        """A 2025-11-25 task's host callback: `input_required` while its
        component waits for the user's answer."""
        requests = self.task_requests
        assert requests is not None

        def asking(kind: str, payload: str) -> str | None:
            if kind not in ("elicit", "sample"):
                return host(kind, payload)
            requests.asking(exchange, True)
            try:
                return host(kind, payload)
            finally:
                requests.asking(exchange, False)

        return asking

    def resume(self, exchange: Exchange, name: str, params: dict[str, Any]) -> None:
        """A retry carrying the answers to a call's question (its requestState);
        one whose call waits in another worker is relayed there."""
        if self.rounds is None or not exchange.session.modern:
            raise RpcError(INVALID_PARAMS, "Invalid params: requestState belongs to 2026-07-28 requests")
        state = params.get("requestState")
        if (
            self.rounds_elsewhere is not None
            and isinstance(state, str)
            and not state.startswith(self.rounds.prefix)
        ):
            self.rounds_elsewhere(exchange, name, params)
            return
        self.rounds.resume(exchange, name, tasks.owner_of(exchange), params)

    def _finish(self, exchange: Exchange, name: str, call: ToolCall, round_: Round | None = None) -> None:
        """In a worker thread: the rest of a component call, and its answer
        (to the request that carries it by then: a retry, after rounds)."""
        try:
            result = self.slices.complete(name, call)
            if round_ is not None:
                exchange = round_.exchange
            body = self.shape(exchange, name, result)
        except Exception:  # a bug here must not cost the client its answer
            log.exception("tool call %s failed", name)
            exchange.fail(RpcError(jsonrpc.INTERNAL_ERROR, "Internal error"))
            return
        exchange.reply(body)

    @staticmethod
    def shape(exchange: Exchange, name: str, result: CallResult) -> dict[str, Any]:
        """A call's result as the answer to `exchange`."""
        if result.status == "cancelled" and exchange.stop_reason is not None:
            return error_result(exchange.stop_reason)
        if result.stderr:
            exchange.log("info", stderr_log(name, result.stderr))
        return call_result(result)


def answer_later(
    start: Callable[[Callable[[], None]], bool], exchange: Exchange, work: Callable[[], dict[str, Any]]
) -> None:
    """Answers `exchange` with `work()` on a call worker (`start`), never on
    the thread reading requests; an RpcError is the answer's error, any other
    failure an internal error (logged). Raises BUSY when no worker is free."""

    def run() -> None:
        try:
            body = work()
        except RpcError as e:
            exchange.fail(e)
            return
        except Exception:  # a bug must not cost the client its answer
            log.exception("answering %s failed", exchange.method)
            exchange.fail(RpcError(jsonrpc.INTERNAL_ERROR, "Internal error"))
            return
        exchange.reply(body)

    if not start(run):
        raise BUSY
