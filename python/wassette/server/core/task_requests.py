"""Task-augmented requests of the 2025-11-25 revision (experimental there):
a `tools/call` with a `task` parameter is answered at once with the task
(`CreateTaskResult`) and runs on; `tasks/get` answers its status,
`tasks/result` waits for its end and answers the call's result,
`tasks/list` the caller's tasks, `tasks/cancel` stops it.

The records are the ones of the 2026-07-28 extension (tasks.py: files in
the data directory, every worker sees them, a task is its caller's only),
shown in this revision's form (`ttl`, `pollInterval`). While a task's
component asks the user, the task is `input_required` and the question
travels on the session's standing stream; its progress and log messages
too, once the request is answered.
"""

from __future__ import annotations

import time
from typing import Any

from wassette.runtime.calls import ToolCall
from wassette.server.core.jsonrpc import INVALID_PARAMS, RpcError
from wassette.server.core.session import Exchange
from wassette.server.core.tasks import CANCEL_LOOK_MS, TERMINAL, TTL_MS, TaskStore, find, owner_of

RELATED_TASK = "io.modelcontextprotocol/related-task"
MIN_TTL_MS = 1000
# tasks/list: this many a page.
PAGE = 100


def requested(exchange: Exchange, task: Any) -> bool:
    """Whether a handshake-era request asks to run as a task (2025-11-25
    defines it; an older client sending `task` gets it too)."""
    return isinstance(task, dict) and not exchange.session.modern


def wire(record: dict[str, Any]) -> dict[str, Any]:
    """A task as this revision shows it."""
    out = {
        "taskId": record["taskId"],
        "status": record["status"],
        "createdAt": record["createdAt"],
        "lastUpdatedAt": record["lastUpdatedAt"],
        "ttl": record["ttlMs"],
        "pollInterval": record["pollIntervalMs"],
    }
    if record.get("statusMessage"):
        out["statusMessage"] = record["statusMessage"]
    return out


class TaskRequests:
    def __init__(self, store: TaskStore, answer_later: Any) -> None:
        self.store = store
        # Runs a blocking answer on a call worker (calls.answer_later).
        self.answer_later = answer_later

    def routes(self) -> dict[str, Any]:
        return {
            "tasks/get": self.get,
            "tasks/result": self.result,
            "tasks/list": self.list,
            "tasks/cancel": self.cancel,
        }

    # -- a task-augmented call ----------------------------------------------------

    def begin(self, exchange: Exchange, task: dict[str, Any]) -> dict[str, Any]:
        """Answers the request with a new task (its TTL as asked, within bounds)."""
        ttl = task.get("ttl")
        ttl_ms = (
            min(max(int(ttl), MIN_TTL_MS), TTL_MS)
            if isinstance(ttl, int) and not isinstance(ttl, bool)
            else TTL_MS
        )
        record = self.store.create(owner_of(exchange))
        record = self.store.update(record, ttlMs=ttl_ms, expires=time.time() + ttl_ms / 1000)
        exchange.task = record
        exchange.reply({"task": wire(record)})
        return record

    def run(self, exchange: Exchange, call: ToolCall, token: Any, finish: Any) -> None:
        """On a worker thread: the call to its end, its result kept with the task."""
        assert exchange.task is not None
        task_id = exchange.task["taskId"]
        result = None
        while result is None:
            if self.store.cancel_asked(task_id):
                token.cancel()
            result = call.run_for(CANCEL_LOOK_MS)
        record = self.store.load(task_id, owner_of(exchange)) or exchange.task
        if self.store.cancel_asked(task_id):  # cancelled: so it stays, whatever the call did
            self.store.update(record, status="cancelled", statusMessage="cancelled by the client")
            return
        body = finish(result)
        failed = bool(body.get("isError"))
        message = body["content"][0].get("text") if failed and body.get("content") else None
        self.store.update(
            record, status="failed" if failed else "completed", result=body, statusMessage=message
        )

    def asking(self, exchange: Exchange, waiting: bool) -> None:
        """The task's component asks the user (or was answered)."""
        if exchange.task is not None:
            status = "input_required" if waiting else "working"
            exchange.task = self.store.update(exchange.task, status=status)

    # -- the methods --------------------------------------------------------------

    def _task(self, exchange: Exchange, params: dict[str, Any] | None) -> dict[str, Any]:
        return find(self.store, exchange, params)

    def get(self, exchange: Exchange, params: dict[str, Any] | None) -> dict[str, Any]:
        return wire(self._task(exchange, params))

    def result(self, exchange: Exchange, params: dict[str, Any] | None) -> None:
        """Waits (on a call worker) for the task's end: the call's result."""
        record = self._task(exchange, params)

        def wait() -> dict[str, Any]:
            current = record
            while current["status"] not in TERMINAL:
                time.sleep(CANCEL_LOOK_MS / 1000)  # the call may run in another worker: its file
                loaded = self.store.load(record["taskId"], owner_of(exchange))
                if loaded is None:
                    raise RpcError(INVALID_PARAMS, "Invalid params: the task expired")
                if exchange.token.cancelled:
                    raise RpcError(INVALID_PARAMS, "the request was cancelled")
                current = loaded
            if current["status"] == "cancelled":
                raise RpcError(INVALID_PARAMS, "Invalid params: the task was cancelled; it has no result")
            body: dict[str, Any] = dict(current["result"])
            meta = body.get("_meta")
            body["_meta"] = {
                **(meta if isinstance(meta, dict) else {}),
                RELATED_TASK: {"taskId": current["taskId"]},
            }
            return body

        self.answer_later(exchange, wait)

    def list(self, exchange: Exchange, params: dict[str, Any] | None) -> dict[str, Any]:
        mine = self.store.of_owner(owner_of(exchange))
        mine.sort(key=lambda r: (r["createdAt"], r["taskId"]))
        cursor = (params or {}).get("cursor")
        start = int(cursor) if isinstance(cursor, str) and cursor.isdigit() else 0
        page = mine[start : start + PAGE]
        out: dict[str, Any] = {"tasks": [wire(r) for r in page]}
        if start + PAGE < len(mine):
            out["nextCursor"] = str(start + PAGE)
        return out

    def cancel(self, exchange: Exchange, params: dict[str, Any] | None) -> dict[str, Any]:
        record = self._task(exchange, params)
        if record["status"] in TERMINAL:
            raise RpcError(INVALID_PARAMS, f"Invalid params: the task is {record['status']} already")
        self.store.ask_cancel(record["taskId"])
        record = self.store.update(record, status="cancelled", statusMessage="cancelled by the client")
        return wire(record)
