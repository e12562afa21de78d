"""Long tool calls as tasks: the `io.modelcontextprotocol/tasks` extension
(SEP-2663) of 2026-07-28.

A client that declares the extension on a `tools/call` gets the result as
usual when the call ends within TASK_AFTER_S; a longer call answers with a
task (`resultType: "task"`) and goes on. The client polls `tasks/get` (the
result comes inline once completed) and may `tasks/cancel`.

Tasks are files in the state's data directory (`tasks/<id>.json`), written
whole and renamed into place, so every worker of `serve --workers N` on the
machine sees them; a cancellation asked of another worker is a marker file
the running call's worker looks for between slices. A task belongs to the
caller that made it (the authenticated identity, or the stdio connection):
anyone else asking for its id is told there is no such task. Finished tasks
are kept for their TTL, then swept.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wassette.runtime.calls import ToolCall
from wassette.server.core.jsonrpc import INVALID_PARAMS, RpcError
from wassette.server.core.protocol import TASKS_EXTENSION
from wassette.server.core.session import Exchange

log = logging.getLogger("wassette.server")

EXTENSION = TASKS_EXTENSION
# A call still running after this long answers with a task instead.
TASK_AFTER_S = 1.0
TTL_MS = 3_600_000
POLL_INTERVAL_MS = 1000
# Tasks one caller may have that are still running (a flood gets an error).
MAX_RUNNING_PER_OWNER = 64
# How often a running task's worker looks for a cancellation marker.
CANCEL_LOOK_MS = 100
_ID = re.compile(r"[A-Za-z0-9_-]{20,64}")
TERMINAL = ("completed", "failed", "cancelled")


def declared(exchange: Exchange) -> bool:
    """Whether the client declared the extension (on this request, at 2026-07-28)."""
    caps = exchange.session.client_capabilities
    extensions = caps.get("extensions") if isinstance(caps, dict) else None
    return exchange.session.modern and isinstance(extensions, dict) and EXTENSION in extensions


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TaskStore:
    """Task records as files; `owner` is hashed into each (never stored)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, task_id: str, suffix: str = ".json") -> Path:
        return self.directory / f"{task_id}{suffix}"

    @staticmethod
    def _owner(owner: str) -> str:
        return hashlib.sha256(owner.encode()).hexdigest()

    def create(self, owner: str) -> dict[str, Any]:
        self.sweep()
        mine = self._owner(owner)
        running = sum(1 for r in self._records() if r.get("owner") == mine and r["status"] not in TERMINAL)
        if running >= MAX_RUNNING_PER_OWNER:
            raise RpcError(
                INVALID_PARAMS, f"too many running tasks ({MAX_RUNNING_PER_OWNER}): wait for some to end"
            )
        now = _now()
        record = {
            "taskId": secrets.token_urlsafe(24),
            "status": "working",
            "createdAt": now,
            "lastUpdatedAt": now,
            "ttlMs": TTL_MS,
            "pollIntervalMs": POLL_INTERVAL_MS,
            "owner": mine,
            "expires": time.time() + TTL_MS / 1000,
        }
        self._write(record)
        return record

    def load(self, task_id: object, owner: str) -> dict[str, Any] | None:
        """The task, if it exists, is not expired, and is the caller's."""
        if not isinstance(task_id, str) or not _ID.fullmatch(task_id):
            return None
        try:
            record: dict[str, Any] = json.loads(self._path(task_id).read_text())
        except (OSError, ValueError):
            return None
        if record.get("owner") != self._owner(owner) or record.get("expires", 0) < time.time():
            return None
        return record

    def of_owner(self, owner: str) -> list[dict[str, Any]]:
        """The caller's tasks that have not expired."""
        mine, now = self._owner(owner), time.time()
        return [r for r in self._records() if r.get("owner") == mine and r.get("expires", 0) >= now]

    def update(self, record: dict[str, Any], **fields: Any) -> dict[str, Any]:
        """The record with these fields (None: removed), written."""
        record = {**record, **fields, "lastUpdatedAt": _now()}
        record = {k: v for k, v in record.items() if v is not None}
        self._write(record)
        return record

    def give_answer(self, task_id: str, key: str, answer: dict[str, Any]) -> None:
        """The client's answer to question `key` (a key the task issued)."""
        path = self._path(task_id, f".{key}.answer")
        temp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
        temp.write_text(json.dumps(answer))
        os.replace(temp, path)

    def take_answer(self, task_id: str, key: str) -> dict[str, Any] | None:
        path = self._path(task_id, f".{key}.answer")
        try:
            answer: dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        path.unlink(missing_ok=True)
        return answer

    def ask_cancel(self, task_id: str) -> None:
        self._path(task_id, ".cancel").touch()

    def cancel_asked(self, task_id: str) -> bool:
        return self._path(task_id, ".cancel").exists()

    def sweep(self) -> None:
        """Removes expired tasks (and their markers)."""
        now = time.time()
        for record in self._records():
            if record.get("expires", 0) < now:
                for path in self.directory.glob(f"{record['taskId']}.*"):
                    path.unlink(missing_ok=True)

    def _records(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        try:
            paths = list(self.directory.glob("*.json"))
        except OSError:
            return out
        for path in paths:
            try:
                out.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                continue
        return out

    def _write(self, record: dict[str, Any]) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self._path(record["taskId"])
        temp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
        temp.write_text(json.dumps(record))
        os.replace(temp, path)


def wire(record: dict[str, Any]) -> dict[str, Any]:
    """A task as the client sees it (not its owner, expiry or question count)."""
    return {k: v for k, v in record.items() if k not in ("owner", "expires", "asked")}


class Tasks:
    """The extension's methods, and the turning of long calls into tasks."""

    def __init__(self, store: TaskStore) -> None:
        self.store = store

    def routes(self) -> dict[str, Any]:
        return {"tasks/get": self.get, "tasks/update": self.update, "tasks/cancel": self.cancel}

    # -- a call that may become a task ------------------------------------------

    def run(self, exchange: Exchange, call: ToolCall, token: Any, finish: Any) -> None:
        """On a worker thread: runs `call` (stopped by `token`) to its end;
        answers the request with the result if it ends within TASK_AFTER_S
        (and asks the client nothing), else with a task that gets the
        result. `finish(result)` shapes a CallResult as the answer."""
        deadline = time.monotonic() + TASK_AFTER_S
        result = None
        while result is None and exchange.task is None and time.monotonic() < deadline:
            result = call.run_for(int(max(1, (deadline - time.monotonic()) * 1000)))
        if result is not None and exchange.task is None:
            exchange.reply(finish(result))
            return
        task_id = (exchange.task or self._become_task(exchange))["taskId"]
        while result is None:
            if self.store.cancel_asked(task_id):
                token.cancel()
            result = call.run_for(CANCEL_LOOK_MS)
        record = self.store.load(task_id, owner_of(exchange)) or exchange.task or {}
        if result.status == "cancelled" and self.store.cancel_asked(task_id):
            self.store.update(
                record, status="cancelled", statusMessage="cancelled by the client", inputRequests=None
            )
        else:
            self.store.update(record, status="completed", result=finish(result), inputRequests=None)

    def _become_task(self, exchange: Exchange) -> dict[str, Any]:
        """Answers the request with a new task: from now on the call's
        outcome and questions go through it."""
        record = self.store.create(owner_of(exchange))
        exchange.task = record
        exchange.reply({**wire(record), "resultType": "task"})
        return record

    def ask(self, exchange: Exchange, method: str, params: dict[str, Any]) -> Any:
        """A question of the call's component (on the call's thread): the
        call becomes a task if it is not one yet, the task waits in
        `input_required` with the question, and the client's answer comes
        through `tasks/update`. Raises TimeoutError or ConnectionAbortedError."""
        record = exchange.task or self._become_task(exchange)
        task_id = record["taskId"]
        asked = int(record.get("asked", 0)) + 1
        key = f"q{asked}"
        record = self.store.update(
            record,
            status="input_required",
            asked=asked,
            inputRequests={key: {"method": method, "params": params}},
        )
        exchange.task = record
        while True:
            answer = self.store.take_answer(task_id, key)
            if answer is not None:
                exchange.task = self.store.update(record, status="working", inputRequests=None)
                return answer
            if self.store.cancel_asked(task_id):
                raise ConnectionAbortedError("the task was cancelled")
            if record["expires"] < time.time():
                raise TimeoutError("the task expired before the client answered")
            time.sleep(CANCEL_LOOK_MS / 1000)  # the answer may come to another worker: a file to look for

    # -- the methods ------------------------------------------------------------

    def _task(self, exchange: Exchange, params: dict[str, Any] | None) -> dict[str, Any]:
        if not declared(exchange):
            raise RpcError(
                -32003,
                "Missing required client capability",
                {"requiredCapabilities": {"extensions": {EXTENSION: {}}}},
            )
        return find(self.store, exchange, params)

    def get(self, exchange: Exchange, params: dict[str, Any] | None) -> dict[str, Any]:
        return wire(self._task(exchange, params))

    def update(self, exchange: Exchange, params: dict[str, Any] | None) -> dict[str, Any]:
        """Answers to the task's outstanding questions; others are ignored."""
        record = self._task(exchange, params)
        responses = (params or {}).get("inputResponses")
        if not isinstance(responses, dict):
            raise RpcError(INVALID_PARAMS, "Invalid params: inputResponses must be an object")
        outstanding = record.get("inputRequests") or {}
        for key, answer in responses.items():
            if key in outstanding and isinstance(answer, dict):
                self.store.give_answer(record["taskId"], key, answer)
        return {}

    def cancel(self, exchange: Exchange, params: dict[str, Any] | None) -> dict[str, Any]:
        record = self._task(exchange, params)
        if record["status"] not in TERMINAL:
            self.store.ask_cancel(record["taskId"])
        return {}


def find(store: TaskStore, exchange: Exchange, params: dict[str, Any] | None) -> dict[str, Any]:
    """The caller's task that `params` names (both revisions' methods), or -32602."""
    task_id = (params or {}).get("taskId")
    record = store.load(task_id, owner_of(exchange))
    if record is None:
        raise RpcError(INVALID_PARAMS, f"Invalid params: no task {str(task_id)[:64]!r}")
    return record


def owner_of(exchange: Exchange) -> str:
    """Who a task belongs to: the caller's identity (HTTP), else its session."""
    session = exchange.session
    return session.owner or f"session:{session.id or id(session)}"
