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

Every message names the tenant (config [tenants]) whose sessions or tools
it is about: tenants' sessions are kept apart (records of their own), and
a worker acts on a message only within that tenant.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from wassette.server.core import jsonrpc
from wassette.server.core.jsonrpc import Message
from wassette.server.core.session import Session, session_scope
from wassette.server.http import relay
from wassette.server.http.bus import Bus
from wassette.server.http.relay import HOME, KeptRelay
from wassette.server.http.resume_relay import ResumeRelay
from wassette.server.http.shared_sessions import SessionRecords
from wassette.server.http.supervisor import WorkerSpec

if TYPE_CHECKING:
    from wassette.server.http.tenants import Served, Tenants

log = logging.getLogger("wassette.http")


# The name standing for the untenanted part in messages and record folders
# (not a tenant name: those start with a letter or digit).
UNTENANTED = "_"


class WorkerLink:
    """This worker's link to the others of the set: one bus, and what comes
    over it handed to the tenant it names."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self.bus = Bus(spec.directory / "bus", f"worker-{spec.number}")
        self._tenants: Tenants | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Per tenant: calls of kept components, relayed to the home worker;
        # polled streams resumed on another worker than the one keeping them.
        self._relays: dict[str, KeptRelay] = {}
        self._resumes: dict[str, ResumeRelay] = {}

    def attach(self, tenants: Tenants, loop: asyncio.AbstractEventLoop) -> None:
        self._tenants, self._loop = tenants, loop
        for served in tenants.all():
            self.serve(served)
        self.bus.start(self._received)
        if self.spec.number == HOME:
            relay.cleanup(self.spec.directory)
        # A worker replacing another: what that one kept is gone.
        self.bus.send({"t": "up", "n": self.spec.number})

    def serve(self, served: Served) -> None:
        """Links one tenant's part of this worker (when it is first used)."""
        peers = Peers(self, served.name or UNTENANTED)
        served.server.relay = peers.relay
        served.server.changes.elsewhere = lambda: self.bus.send({"t": "tools", "tn": peers.tenant})
        served.streamable.sessions.peers = peers
        served.sse.peers = peers
        kept = self._relays[peers.tenant] = KeptRelay(
            self.bus, self.spec.directory, self.spec.number, peers.tenant, served
        )
        if self.spec.number != HOME:
            served.server.calls.kept_elsewhere = kept.call
        assert self._loop is not None
        resumes = self._resumes[peers.tenant] = ResumeRelay(
            peers.send, self.spec.directory, self.spec.number, self._loop
        )
        served.streamable.resume_relay = resumes
        served.streamable.stream_prefix = f"w{self.spec.number}x"
        calls = served.server.calls
        if calls.rounds is not None:  # a retry names the worker its call waits in
            calls.rounds.prefix = f"w{self.spec.number}~"
            calls.rounds_elsewhere = kept.retry

    def close(self) -> None:
        self.bus.close()

    # -- from the others (the bus's thread) ---------------------------------------------

    def _received(self, message: dict[str, Any]) -> None:
        tenants, loop = self._tenants, self._loop
        assert tenants is not None and loop is not None
        number = message.get("n")
        if message.get("t") == "up" and isinstance(number, int):
            for each in list(self._relays.values()):
                each.restarted(number)
            return
        tenant = message.get("tn")
        if not isinstance(tenant, str):
            return
        # Only a tenant this worker serves already: one it has not seen has
        # nothing here to tell (it reads everything when first used).
        served = tenants.known(None if tenant == UNTENANTED else tenant)
        if served is None:
            return
        kind, sid = message.get("t"), message.get("sid")
        if kind in ("resume", "rpush", "rgone"):
            resumes = self._resumes.get(tenant)
            if resumes is not None:
                resumes.received(message, served.streamable.sessions.get)
            return
        if isinstance(kind, str) and kind.startswith("k"):
            relayed = self._relays.get(tenant)
            if relayed is not None:
                relayed.received(message)
            return
        if kind == "tools":
            served.server.changes.refresh(announced=True)
            return
        if not isinstance(sid, str):
            return
        sessions = served.streamable.sessions
        if kind == "end":
            loop.call_soon_threadsafe(sessions.end_here, sid)
            if self.spec.number == HOME:  # its kept instances, held here whoever served it
                served.server.runtime.instances.end_scope(session_scope(sid))
        elif kind == "sse":
            owner = message.get("owner")
            loop.call_soon_threadsafe(
                served.sse.deliver,
                sid,
                str(message.get("body", "")).encode(),
                owner if isinstance(owner, str) else None,
            )
        elif kind == "push":
            pushed = message.get("message")
            held = sessions.get(sid)
            if held is not None and isinstance(pushed, dict):
                held.push(pushed)
        elif kind in ("cancel", "answer"):
            held = sessions.get(sid)
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


class Peers:
    """The other workers of the set, as one tenant's sessions here see them."""

    def __init__(self, link: WorkerLink, tenant: str) -> None:
        self.spec = link.spec
        self.tenant = tenant
        self.bus = link.bus
        self.records = SessionRecords(link.spec.directory / "sessions" / tenant)

    def send(self, message: dict[str, Any]) -> None:
        """To the other workers, about this tenant."""
        self._send(message)

    def _send(self, message: dict[str, Any]) -> None:
        self.bus.send({**message, "tn": self.tenant})

    def relay(self, session: Session, message: Message) -> None:
        """A cancellation or an answer that no request here waits for."""
        if session.id is None:
            return
        if message.kind == "notification":
            self._send({"t": "cancel", "sid": session.id, "params": message.params})
        else:
            answer = {"id": message.id, "result": message.result, "error": message.error}
            self._send({"t": "answer", "sid": session.id, "answer": answer})

    def ended(self, sid: str) -> None:
        self.records.remove(sid)
        self._send({"t": "end", "sid": sid})

    def push(self, sid: str, message: dict[str, Any]) -> bool:
        """A question for the client of a session whose GET stream another worker holds."""
        self._send({"t": "push", "sid": sid, "message": message})
        return True

    def forward_sse(self, sid: str, body: bytes, owner: str | None = None) -> None:
        self._send({"t": "sse", "sid": sid, "body": body.decode("utf-8", "replace"), "owner": owner})
