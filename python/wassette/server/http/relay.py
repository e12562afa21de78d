"""Kept instances in a set of workers (`serve --workers N`).

An instance kept across calls (`resources.instance: per-session`) lives in
one process's memory, while a client's requests land on any worker. So one
worker, the home (number 0), keeps every instance of the set: the others
relay to it each call of a kept component and each open-instance and
close-instance, over the set's bus. The home runs the call as its own (same
scope: the session id is the set's, the owner the caller's) and sends back
what the call says on the way (progress, log messages, questions to the
user, asked through the caller's exchange and answered back) and its result,
which the relaying worker shapes and answers as any other.

Bounded: a relayed call the home does not take up within ACK_S fails with a
clear error; a home that restarts (its instances are gone with it) fails
every call relayed to it; a result too large for one message travels as a
file in the set's private directory.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wassette.runtime.calls import CallResult
from wassette.runtime.errors import UnknownToolError
from wassette.runtime.instances import Scope
from wassette.server.core import host_calls, jsonrpc
from wassette.server.core.builtins import INSTANCE_TOOLS, run_instance_tool
from wassette.server.core.calls import BUSY, CancelToken, cancel_token
from wassette.server.core.jsonrpc import RpcError
from wassette.server.core.results import error_result
from wassette.server.core.session import Exchange, Session

if TYPE_CHECKING:
    from wassette.server.http.bus import Bus
    from wassette.server.http.tenants import Served

log = logging.getLogger("wassette.http")

HOME = 0
# How long a relayed call may wait for the home to take it up.
ACK_S = 10.0
# Longest a question relayed back to the caller's worker waits for its answer.
ASK_S = 600.0
# Results larger than this go through a file, not the bus.
INLINE_BYTES = 512 * 1024


class _Relayed:
    """A call relayed from here, waiting for the home."""

    __slots__ = ("acked", "exchange", "host", "name", "to")

    def __init__(self, exchange: Exchange, name: str, host: host_calls.HostCallback, to: int = HOME) -> None:
        self.exchange = exchange
        self.name = name
        self.host = host
        self.to = to  # the worker running it
        self.acked = threading.Event()


class _Asked:
    __slots__ = ("answer", "done", "error")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.answer: str | None = None
        self.error: str | None = None


class KeptRelay:
    """One tenant's part of the relay, in one worker."""

    def __init__(self, bus: Bus, directory: Path, number: int, tenant: str, served: Served) -> None:
        self.bus = bus
        self.directory = directory
        self.number = number
        self.tenant = tenant
        self.served = served
        self._lock = threading.Lock()
        self._relayed: dict[str, _Relayed] = {}  # here: calls waiting for the home
        self._running: dict[str, Callable[[], None]] = {}  # at the home: relayed calls' cancel
        self._asked: dict[str, _Asked] = {}  # at the home: questions waiting for their answer

    def _send(self, to: int, message: dict[str, Any]) -> None:
        self.bus.send({**message, "tn": self.tenant, "to": to, "from": self.number})

    # -- the relaying worker --------------------------------------------------------

    def call(self, exchange: Exchange, name: str, arguments: dict[str, Any]) -> None:
        """Relays a call of `name` to the home; `exchange` is answered when it ends."""
        server = self.served.server
        rid = secrets.token_hex(12)
        log.debug("worker %d relays a call of %s to the home worker", self.number, name)
        host = host_calls.for_exchange(exchange, name, server.runtime)
        relayed = _Relayed(exchange, name, host)
        with self._lock:
            self._relayed[rid] = relayed
        scope = exchange.session.instance_scope()
        exchange.on_cancel = lambda: self._send(HOME, {"t": "kcancel", "rid": rid})
        self._send(
            HOME,
            {
                "t": "kcall",
                "rid": rid,
                "name": name,
                "arguments": arguments,
                "scope": list(scope) if scope is not None else None,
                "owner": exchange.session.owner,
            },
        )
        timer = threading.Timer(ACK_S, self._unacked, (rid,))
        timer.daemon = True
        timer.start()

    def retry(self, exchange: Exchange, name: str, params: dict[str, Any]) -> None:
        """Relays a 2026-07-28 retry (core/rounds.py) to the worker whose
        call waits for it (its requestState names it); the answer comes back
        as that worker gives it."""
        state = str(params.get("requestState"))
        holder = worker_of(state)
        if holder is None or holder == self.number:
            raise RpcError(jsonrpc.INVALID_PARAMS, "Invalid params: no call waits with this requestState")
        rid = secrets.token_hex(12)
        log.debug("worker %d relays a retry of %s to worker %d", self.number, name, holder)
        host = host_calls.for_exchange(exchange, name, self.served.server.runtime)
        with self._lock:
            self._relayed[rid] = _Relayed(exchange, name, host, holder)
        exchange.on_cancel = lambda: self._send(holder, {"t": "kcancel", "rid": rid})
        session = exchange.session
        self._send(
            holder,
            {
                "t": "kretry",
                "rid": rid,
                "id": exchange.id,
                "name": name,
                "params": params,
                "owner": session.owner,
                "capabilities": session.client_capabilities,
                "version": exchange.version,
                "log_level": exchange.log_level,
                "progress": exchange.progress_token,
            },
        )
        timer = threading.Timer(ACK_S, self._unacked, (rid,))
        timer.daemon = True
        timer.start()

    def _unacked(self, rid: str) -> None:
        with self._lock:
            relayed = self._relayed.get(rid)
            if relayed is None or relayed.acked.is_set():
                return
            del self._relayed[rid]
        relayed.exchange.reply(error_result("the worker running this call did not answer"))

    def restarted(self, number: int) -> None:
        """Worker `number` was replaced: what it kept (stateful instances,
        calls waiting for answers) is gone, with the calls relayed to it."""
        with self._lock:
            gone = [rid for rid, r in self._relayed.items() if r.to == number]
            relayed = [self._relayed.pop(rid) for rid in gone]
        for each in relayed:
            each.exchange.reply(error_result("the worker running this call restarted; what it kept is gone"))

    def _from_home(self, kind: str, message: dict[str, Any]) -> None:
        rid = message.get("rid")
        with self._lock:
            relayed = self._relayed.get(rid) if isinstance(rid, str) else None
            if relayed is not None and kind == "kdone":
                del self._relayed[str(rid)]
        if relayed is None:
            return
        relayed.acked.set()
        if kind == "kdone" and isinstance(message.get("raw"), dict):
            relayed.exchange.respond(message["raw"])  # the holder's answer, as it is
        elif kind == "knote" and isinstance(message.get("message"), dict):
            note = message["message"]
            relayed.exchange.notify(str(note.get("method")), note.get("params") or {})
        elif kind == "kdone":
            self._done(relayed, message)
        elif kind == "kask":
            qid, what, payload = message.get("qid"), message.get("kind"), message.get("payload")
            if isinstance(what, str) and isinstance(payload, str):
                if what in ("progress", "log"):  # no answer: here, on the bus's thread
                    self._answer(relayed, str(qid), what, payload, reply=False)
                elif not self.served.server.calls.slices.workers.start(
                    lambda: self._answer(relayed, str(qid), what, payload, reply=True)
                ):
                    self._send(HOME, {"t": "kreply", "qid": qid, "error": "the server is busy"})

    def _answer(self, relayed: _Relayed, qid: str, kind: str, payload: str, *, reply: bool) -> None:
        try:
            answer, error = relayed.host(kind, payload), None
        except Exception as e:  # the guest gets the message as its error
            answer, error = None, str(e)
        if reply:
            self._send(HOME, {"t": "kreply", "qid": qid, "answer": answer, "error": error})

    def _done(self, relayed: _Relayed, message: dict[str, Any]) -> None:
        exchange = relayed.exchange
        try:
            body = message.get("body")
            if "file" in message:
                path = self.directory / str(message["file"])
                body = json.loads(path.read_text(encoding="utf-8"))
                path.unlink(missing_ok=True)
            if isinstance(body, dict) and "result" in message.get("shape", ""):
                tool = self.served.server.runtime.tool(relayed.name)
                body = self.served.server.calls.shape(
                    exchange, relayed.name, CallResult.from_wire(tool, body)
                )
            if not isinstance(body, dict):
                raise ValueError("no result")
        except Exception:
            log.exception("a relayed call's result could not be read")
            exchange.fail(RpcError(jsonrpc.INTERNAL_ERROR, "Internal error"))
            return
        exchange.reply(body)

    # -- the home -------------------------------------------------------------------

    def _take(self, message: dict[str, Any]) -> None:
        rid, sender, name = message.get("rid"), message.get("from"), message.get("name")
        arguments, owner = message.get("arguments"), message.get("owner")
        if not isinstance(rid, str) or not isinstance(sender, int) or not isinstance(name, str):
            return
        if not isinstance(arguments, dict):
            arguments = {}
        owner = owner if isinstance(owner, str) else None
        raw = message.get("scope")
        scope = Scope(str(raw[0]), owner) if isinstance(raw, list) and raw else None
        token = cancel_token()
        with self._lock:
            self._running[rid] = token.cancel
        self._send(sender, {"t": "kack", "rid": rid})
        job = lambda: self._run(rid, sender, name, arguments, scope, owner, token)  # noqa: E731
        if not self.served.server.calls.slices.workers.start(job):
            with self._lock:
                self._running.pop(rid, None)
            self._finish(sender, rid, error_result(BUSY.message), shape="")

    def _take_retry(self, message: dict[str, Any]) -> None:
        """A retry another worker relayed: resumed here, as if it came here,
        its messages and answer going back there."""
        rid, sender, name, params = (
            message.get("rid"),
            message.get("from"),
            message.get("name"),
            message.get("params"),
        )
        if not (
            isinstance(rid, str)
            and isinstance(sender, int)
            and isinstance(name, str)
            and isinstance(params, dict)
        ):
            return
        owner = message.get("owner")
        session = Session(era="modern", version=str(message.get("version")), ready=True)
        session.owner = owner if isinstance(owner, str) else None
        caps = message.get("capabilities")
        session.client_capabilities = caps if isinstance(caps, dict) else {}
        request_id = message.get("id")
        level = message.get("log_level")
        exchange = Exchange(
            session,
            request_id if jsonrpc.valid_id(request_id) else None,
            "tools/call",
            _BusChannel(self, sender, rid),
            version=str(message.get("version")),
            log_level=level if isinstance(level, int) else None,
            progress_token=message.get("progress"),
        )
        with self._lock:
            self._running[rid] = lambda: exchange.cancel(by_client=True)
        self._send(sender, {"t": "kack", "rid": rid})
        try:
            self.served.server.calls.resume(exchange, name, params)
        except RpcError as e:
            exchange.fail(e)

    def _run(
        self,
        rid: str,
        sender: int,
        name: str,
        arguments: dict[str, Any],
        scope: Scope | None,
        owner: str | None,
        token: CancelToken,
    ) -> None:
        runtime = self.served.server.runtime
        try:
            if name in INSTANCE_TOOLS:
                self._finish(sender, rid, run_instance_tool(runtime, name, arguments, owner), shape="")
                return
            host = lambda kind, payload: self._ask(sender, rid, kind, payload)  # noqa: E731
            call = runtime.start_tool(
                name, arguments, cancel=token, host=host, scope=scope, owner=owner, need_scope=scope is None
            )
            self._finish(sender, rid, call.finish().to_wire(), shape="result")
        except UnknownToolError as e:
            self._finish(sender, rid, error_result(str(e)), shape="")
        except Exception:
            log.exception("a relayed call of %s failed", name)
            self._finish(sender, rid, error_result("Internal error"), shape="")
        finally:
            with self._lock:
                self._running.pop(rid, None)

    def _finish(self, sender: int, rid: str, body: dict[str, Any], *, shape: str) -> None:
        text = json.dumps(body, separators=(",", ":"))
        message: dict[str, Any] = {"t": "kdone", "rid": rid, "shape": shape}
        if len(text) > INLINE_BYTES:
            name = f"relay-{rid}.json"
            (self.directory / name).write_text(text, encoding="utf-8")
            message["file"] = name
        else:
            message["body"] = body
        self._send(sender, message)

    def _ask(self, sender: int, rid: str, kind: str, payload: str) -> str | None:
        """The engine's host callback at the home: to the caller's worker."""
        if kind in ("progress", "log"):
            self._send(sender, {"t": "kask", "rid": rid, "qid": "", "kind": kind, "payload": payload})
            return None
        qid = secrets.token_hex(8)
        asked = _Asked()
        with self._lock:
            self._asked[qid] = asked
        try:
            self._send(sender, {"t": "kask", "rid": rid, "qid": qid, "kind": kind, "payload": payload})
            if not asked.done.wait(ASK_S):
                raise RuntimeError("no answer came from the client in time")
        finally:
            with self._lock:
                self._asked.pop(qid, None)
        if asked.error is not None:
            raise RuntimeError(asked.error)
        return asked.answer

    def _replied(self, message: dict[str, Any]) -> None:
        with self._lock:
            asked = self._asked.get(str(message.get("qid")))
        if asked is None:
            return
        answer, error = message.get("answer"), message.get("error")
        asked.answer = answer if isinstance(answer, str) else None
        asked.error = error if isinstance(error, str) else None
        asked.done.set()

    # -- the bus ----------------------------------------------------------------------

    def received(self, message: dict[str, Any]) -> None:
        """A relay message (its kind starts with k) for this tenant."""
        if message.get("to") != self.number:
            return
        kind = message.get("t")
        if kind == "kcall" and self.number == HOME:
            self._take(message)
        elif kind == "kcancel":
            with self._lock:
                cancel = self._running.get(str(message.get("rid")))
            if cancel is not None:
                cancel()
        elif kind == "kreply":
            self._replied(message)
        elif kind in ("kack", "kask", "kdone", "knote"):
            self._from_home(str(kind), message)
        elif kind == "kretry":
            self._take_retry(message)


def cleanup(directory: Path) -> None:
    """Result files no worker read (a worker that died meanwhile)."""
    for path in directory.glob("relay-*.json"):
        with contextlib.suppress(OSError):
            path.unlink()


class _BusChannel:
    """A relayed retry's channel at the holder: its messages go back to the
    worker the client is connected to."""

    def __init__(self, relay: KeptRelay, to: int, rid: str) -> None:
        self.relay, self.to, self.rid = relay, to, rid

    def send(self, message: dict[str, Any], final: bool) -> None:
        if final:
            with self.relay._lock:
                self.relay._running.pop(self.rid, None)
            self.relay._send(self.to, {"t": "kdone", "rid": self.rid, "raw": message})
        else:
            self.relay._send(self.to, {"t": "knote", "rid": self.rid, "message": message})

    def cancelled(self, request_id: Any) -> None:
        self.send(jsonrpc.error(request_id, jsonrpc.REQUEST_CANCELLED, "Request cancelled"), True)

    @property
    def can_ask(self) -> bool:
        return False

    @property
    def carries_events(self) -> bool:
        return True


def worker_of(state: str) -> int | None:
    """The worker a requestState names (`w<n>~...`, core/rounds.py)."""
    head, sep, _ = state.partition("~")
    if not sep or not head.startswith("w") or not head[1:].isdigit():
        return None
    return int(head[1:])
