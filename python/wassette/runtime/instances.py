"""Instances kept across calls: components whose policy says
`resources.instance: per-session`.

One engine instance (`_engine.Instance`) per component and *scope*: an MCP
session of the 2025 revisions, or an instance id the server minted
(`open-instance`: the 2026-07-28 revision has no sessions; SEP-2567's state
handles). What the component keeps in memory lives from one call of that
scope to the next, and never reaches another scope: a scope is one client's,
an instance id is bound to the owner that opened it (another owner is told
it does not exist), and this registry is one runtime's, which is one
tenant's.

Bounded: at most `max_live` instances (and opened ids) at once, each closed
after its policy's idle timeout without a call, when its session ends, when
its component is unloaded or replaced, and when its policy changes (the
sandbox is built once, at the instance's first call: a revoked permission
must not live on in it).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from wassette import _engine
from wassette.runtime.errors import WassetteError

if TYPE_CHECKING:
    from wassette.runtime.audit import AuditLog

DEFAULT_MAX_LIVE = 64
# The argument naming a kept instance (`open-instance`'s id) in the tools of
# components kept per session; no WIT name can clash with it (no `_` in WIT).
INSTANCE_ARG = "instance_id"
# Prefix of minted instance ids (what the tools' `instance_id` takes).
ID_PREFIX = "inst_"


class InstanceError(WassetteError):
    """No instance for this call: unknown id, or too many live."""


class Scope(NamedTuple):
    """Whose instance a call runs in: `key` names the session or the id;
    `owner` is who the client is (None: not known, e.g. stdio)."""

    key: str
    owner: str | None = None


class _Kept:
    __slots__ = ("calls", "component_id", "engine", "idle_s", "last_used", "running", "scope", "signature")

    def __init__(self, component_id: str, scope: Scope, idle_s: float) -> None:
        self.component_id = component_id
        self.scope = scope
        self.idle_s = idle_s
        self.engine: _engine.Instance | None = None
        # (component sha256, effective policy) the engine instance was made under.
        self.signature: tuple[str, str] | None = None
        self.last_used = time.monotonic()
        self.calls = 0
        self.running = 0

    def expired(self, now: float) -> bool:
        return self.running == 0 and now - self.last_used > self.idle_s

    def drop(self) -> None:
        if self.engine is not None:
            self.engine.close()
            self.engine = None


class Instances:
    def __init__(self, max_live: int, audit: AuditLog | None = None) -> None:
        self.max_live = max_live
        self.audit = audit
        self._lock = threading.Lock()
        self._kept: dict[tuple[str, str], _Kept] = {}
        # Minted ids: id -> (component id, owner).
        self._ids: dict[str, tuple[str, str | None]] = {}

    # -- ids (2026-07-28) -----------------------------------------------------

    def open(self, component_id: str, owner: str | None, idle_s: float) -> str:
        """A new instance id for `component_id`, bound to `owner`; the
        instance itself is made at its first call."""
        handle = ID_PREFIX + secrets.token_urlsafe(18)
        scope = Scope("id:" + handle, owner)
        with self._lock:
            self._make_room()
            self._kept[(component_id, scope.key)] = _Kept(component_id, scope, idle_s)
            self._ids[handle] = (component_id, owner)
        self._record("instance_opened", component_id, scope)
        return handle

    def scope_of(self, handle: Any, component_id: str, owner: str | None) -> Scope:
        """The scope of an instance id given to a tool of `component_id`."""
        with self._lock:
            self._sweep(time.monotonic())
            found = self._ids.get(handle) if isinstance(handle, str) else None
        # Another owner's id is as unknown as one never minted: nothing
        # tells a prober that it exists.
        if found is None or found[1] != owner:
            raise InstanceError(
                f"unknown instance id {str(handle)[:64]!r}: it was closed, timed out, or never opened "
                "here; open one with the built-in tool `open-instance`"
            )
        if found[0] != component_id:
            raise InstanceError(
                f"instance id {handle!r} belongs to component `{found[0]}`, not `{component_id}`"
            )
        return Scope("id:" + handle, owner)

    def close_id(self, handle: Any, owner: str | None) -> bool:
        """Closes an opened id and its instance; False when unknown (or another owner's)."""
        with self._lock:
            found = self._ids.get(handle) if isinstance(handle, str) else None
            if found is None or found[1] != owner:
                return False
            del self._ids[handle]
            kept = self._kept.pop((found[0], "id:" + handle), None)
        if kept is not None:
            kept.drop()
            self._record("instance_closed", kept.component_id, kept.scope, reason="closed by the client")
        return True

    # -- calls --------------------------------------------------------------------

    def scope_for_call(
        self,
        tool: str,
        component_id: str,
        arguments: Mapping[str, Any] | str | None,
        scope: Scope | None,
        owner: str | None,
        need_scope: bool,
    ) -> tuple[Mapping[str, Any] | str | None, Scope | None]:
        """The arguments without `instance_id`, and the scope a call of a
        kept component's tool runs in: the id's, else the session's."""
        if isinstance(arguments, Mapping) and INSTANCE_ARG in arguments:
            rest = {k: v for k, v in arguments.items() if k != INSTANCE_ARG}
            return rest, self.scope_of(arguments[INSTANCE_ARG], component_id, owner)
        if scope is None and need_scope:
            raise InstanceError(
                f"`{tool}` keeps state between calls (its component's policy: resources.instance: "
                f"per-session), and this protocol revision has no sessions: open an instance with the "
                f"built-in tool `open-instance` (component_id: {component_id}) and pass its id as "
                f"`{INSTANCE_ARG}`"
            )
        return arguments, scope

    def for_call(
        self, component: _engine.Component, component_id: str, scope: Scope, policy: str, idle_s: float
    ) -> _engine.Instance:
        """The instance a call of `component_id` in `scope` runs in (made,
        or made again, as needed). Raises InstanceError when none may be."""
        signature = (component.sha256, policy)
        reset: str | None = None
        with self._lock:
            self._sweep(time.monotonic())
            kept = self._kept.get((component_id, scope.key))
            if kept is None:
                if scope.key.startswith("id:"):
                    raise InstanceError("the instance was closed or timed out; open a new one")
                self._make_room()
                kept = self._kept[(component_id, scope.key)] = _Kept(component_id, scope, idle_s)
            elif kept.scope.owner != scope.owner:  # never another client's
                raise InstanceError("the instance belongs to another client")
            if kept.engine is not None and kept.signature is not None and kept.signature != signature:
                reset = "its component changed" if kept.signature[0] != signature[0] else "its policy changed"
                old, kept.engine = kept.engine, None
                old.close()
            if kept.engine is None:
                kept.engine = component.instance()
                kept.signature = signature
            kept.idle_s = idle_s
            kept.running += 1
            kept.calls += 1
            kept.last_used = time.monotonic()
            engine = kept.engine
        if reset is not None:
            self._record("instance_reset", component_id, scope, reason=reset)
        return engine

    def call_ended(self, component_id: str, scope: Scope) -> None:
        with self._lock:
            kept = self._kept.get((component_id, scope.key))
            if kept is not None:
                kept.running = max(0, kept.running - 1)
                kept.last_used = time.monotonic()

    # -- ends -----------------------------------------------------------------------

    def end_scope(self, key: str) -> None:
        """A session ended: its instances go."""
        with self._lock:
            gone = [k for k in self._kept.values() if k.scope.key == key]
            for kept in gone:
                del self._kept[(kept.component_id, key)]
        for kept in gone:
            kept.drop()
            self._record("instance_closed", kept.component_id, kept.scope, reason="the session ended")

    def end_component(self, component_id: str) -> None:
        """A component was unloaded: its instances (and ids) go."""
        with self._lock:
            gone = [k for k in self._kept.values() if k.component_id == component_id]
            for kept in gone:
                del self._kept[(component_id, kept.scope.key)]
                if kept.scope.key.startswith("id:"):
                    self._ids.pop(kept.scope.key[3:], None)
        for kept in gone:
            kept.drop()

    def close(self) -> None:
        with self._lock:
            gone = list(self._kept.values())
            self._kept.clear()
            self._ids.clear()
        for kept in gone:
            kept.drop()

    def live(self) -> list[dict[str, Any]]:
        """What is kept, for status pages and tests (no ids: they are keys)."""
        now = time.monotonic()
        with self._lock:
            return [
                {
                    "component": k.component_id,
                    "kind": "id" if k.scope.key.startswith("id:") else "session",
                    "calls": k.calls,
                    "running": k.running,
                    "made": k.engine is not None and k.engine.live,
                    "idle_s": round(now - k.last_used, 3),
                    "idle_timeout_s": k.idle_s,
                }
                for k in self._kept.values()
            ]

    def __len__(self) -> int:
        with self._lock:
            return len(self._kept)

    # -- inside the lock ------------------------------------------------------------

    def _make_room(self) -> None:
        if len(self._kept) < self.max_live:
            return
        self._sweep(time.monotonic())
        if len(self._kept) >= self.max_live:
            raise InstanceError(
                f"{len(self._kept)} stateful instances are live, the most this server keeps "
                f"(max_live_instances = {self.max_live}); close one (`close-instance`), end a "
                "session, or wait for idle ones to time out"
            )

    def _sweep(self, now: float) -> None:
        for key, kept in list(self._kept.items()):
            if kept.expired(now):
                del self._kept[key]
                if kept.scope.key.startswith("id:"):
                    self._ids.pop(kept.scope.key[3:], None)
                kept.drop()

    def _record(self, event: str, component_id: str, scope: Scope, **extra: Any) -> None:
        if self.audit is not None:
            kind = "id" if scope.key.startswith("id:") else "session"
            self.audit.record(event, component=component_id, scope=kind, **extra)
