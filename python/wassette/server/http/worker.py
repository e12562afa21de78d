"""This process as one worker of `wassette serve --workers N` (supervisor.py
starts the set): what it shares with the others, and what it does with
what they share.

- Handshake-era sessions: their records (shared_sessions.py), so any
  worker serves any session's requests.
- A `notifications/cancelled` or a client's answer for a request that runs
  in another worker: relayed to every worker; the one that has it acts.
- `DELETE` of a session, and the idle sweep: every worker drops its copy and
  ends the standing stream it may hold.
- A load or unload made here: the others rescan at once and tell their
  clients (`tools/list_changed`, listen streams); grants need nothing, as
  every call reads the policy's current state.
- A legacy SSE post that lands on a worker without the session's stream:
  relayed to the worker that has it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from wassette.server.core import jsonrpc
from wassette.server.core.jsonrpc import Message
from wassette.server.core.session import Session
from wassette.server.http.bus import Bus
from wassette.server.http.shared_sessions import SessionRecords
from wassette.server.http.supervisor import WorkerSpec

if TYPE_CHECKING:
    from wassette.server.http.app import App

log = logging.getLogger("wassette.http")


class Peers:
    """The other workers of the set, as this worker sees them."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self.records = SessionRecords(spec.directory / "sessions")
        self.bus = Bus(spec.directory / "bus", f"worker-{spec.number}")
        self._app: App | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def attach(self, app: App, loop: asyncio.AbstractEventLoop) -> None:
        self._app, self._loop = app, loop
        server = app.server
        server.relay = self.relay
        server.changes.elsewhere = lambda: self.bus.send({"t": "tools"})
        app.streamable.sessions.peers = self
        app.sse.peers = self
        self.bus.start(self._received)

    def close(self) -> None:
        self.bus.close()

    # -- to the others -------------------------------------------------------------

    def relay(self, session: Session, message: Message) -> None:
        """A cancellation or an answer that no request here waits for."""
        if session.id is None:
            return
        if message.kind == "notification":
            self.bus.send({"t": "cancel", "sid": session.id, "params": message.params})
        else:
            answer = {"id": message.id, "result": message.result, "error": message.error}
            self.bus.send({"t": "answer", "sid": session.id, "answer": answer})

    def ended(self, sid: str) -> None:
        self.records.remove(sid)
        self.bus.send({"t": "end", "sid": sid})

    def push(self, sid: str, message: dict[str, Any]) -> bool:
        """A question for the client of a session whose GET stream another worker holds."""
        self.bus.send({"t": "push", "sid": sid, "message": message})
        return True

    def forward_sse(self, sid: str, body: bytes, owner: str | None = None) -> None:
        self.bus.send({"t": "sse", "sid": sid, "body": body.decode("utf-8", "replace"), "owner": owner})

    # -- from the others (the bus's thread) ---------------------------------------------

    def _received(self, message: dict[str, Any]) -> None:
        app, loop = self._app, self._loop
        assert app is not None and loop is not None
        kind, sid = message.get("t"), message.get("sid")
        if kind == "tools":
            app.server.changes.refresh(announced=True)
            return
        if not isinstance(sid, str):
            return
        if kind == "end":
            loop.call_soon_threadsafe(app.streamable.sessions.end_here, sid)
        elif kind == "sse":
            owner = message.get("owner")
            loop.call_soon_threadsafe(
                app.sse.deliver,
                sid,
                str(message.get("body", "")).encode(),
                owner if isinstance(owner, str) else None,
            )
        elif kind == "push":
            pushed = message.get("message")
            held = app.streamable.sessions.get(sid)
            if held is not None and isinstance(pushed, dict):
                held.push(pushed)
        elif kind in ("cancel", "answer"):
            held = app.streamable.sessions.get(sid)
            if held is None:
                return
            if kind == "cancel":
                params = message.get("params")
                held.session.cancel(params.get("requestId") if isinstance(params, dict) else None)
            else:
                answer = message.get("answer")
                if isinstance(answer, dict) and jsonrpc.valid_id(answer.get("id")):
                    held.session.answered(
                        Message(
                            "response",
                            id=answer["id"],
                            result=answer.get("result"),
                            error=answer.get("error"),
                        )
                    )
