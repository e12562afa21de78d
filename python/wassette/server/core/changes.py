"""Telling clients that the tool list changed.

A load or unload through any client, and a change to the component directory
made by another process (`wassette component load`, files copied in by hand,
seen by the watcher thread), is announced once to every client: handshake-era
sessions get `notifications/tools/list_changed` on their standing channel,
2026-07-28 clients on their `subscriptions/listen` streams.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wassette.runtime.errors import WassetteError
from wassette.runtime.runtime import Runtime
from wassette.server.core.jsonrpc import INTERNAL_ERROR, RpcError
from wassette.server.core.protocol import SUBSCRIPTION_ID_KEY
from wassette.server.core.session import Exchange, Session

log = logging.getLogger("wassette.server")

Stamp = frozenset[tuple[str, int]]

LIST_CHANGED = {"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}
# Open `subscriptions/listen` streams, at most.
MAX_LISTENERS = 1024
# How often the component directory is checked for changes by other processes.
WATCH_INTERVAL_S = 1.0


class Changes:
    """Sessions and listen streams to tell of changes, and the watcher."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._lock = threading.Lock()
        self._sessions: set[Session] = set()
        self._listeners: dict[int, Exchange] = {}
        self._stop = threading.Event()
        self._rescanning = threading.Lock()
        # The component directory's stamp as last read, and as last told of.
        self._seen: Stamp | None = None
        self._told: Stamp | None = None
        # Told of a load or unload made here (`serve --workers N` tells the
        # other workers, which rescan at once instead of at their next look).
        self.elsewhere: Callable[[], None] | None = None
        # The drop directory the watcher syncs (None: not watched), and its
        # stamp as last synced.
        self.drop_dir: Path | None = None
        self._drop_seen: frozenset[tuple[str, int, int]] | None = None

    # -- who is told -----------------------------------------------------------

    def track(self, session: Session) -> None:
        with self._lock:
            self._sessions.add(session)

    def forget(self, session: Session) -> None:
        with self._lock:
            self._sessions.discard(session)

    def listen(self, exchange: Exchange, params: dict[str, Any] | None) -> None:
        """Serves `subscriptions/listen`: acknowledges what will be sent (of
        what was asked: only tool-list changes exist here), then keeps the
        request open; each change is a notification on it."""
        wanted = (params or {}).get("notifications")
        tools = isinstance(wanted, dict) and wanted.get("toolsListChanged") is True
        meta = {SUBSCRIPTION_ID_KEY: exchange.id}
        with self._lock:
            if len(self._listeners) >= MAX_LISTENERS:
                raise RpcError(INTERNAL_ERROR, f"Subscription limit reached ({MAX_LISTENERS} open streams)")
            if tools:
                self._listeners[id(exchange)] = exchange
        honored = {"toolsListChanged": True} if tools else {}
        exchange.notify("notifications/subscriptions/acknowledged", {"notifications": honored, "_meta": meta})
        exchange.on_end = lambda: self._unlisten(exchange)
        # Cancelled (notifications/cancelled, or the client went away): the stream ends.
        exchange.on_cancel = lambda: exchange.reply({"_meta": meta})

    def _unlisten(self, exchange: Exchange) -> None:
        with self._lock:
            self._listeners.pop(id(exchange), None)

    def close_listeners(self) -> None:
        """Ends every listen stream gracefully (the server stops)."""
        with self._lock:
            listeners = list(self._listeners.values())
            self._listeners.clear()
        for exchange in listeners:
            exchange.reply({"_meta": {SUBSCRIPTION_ID_KEY: exchange.id}})

    # -- telling --------------------------------------------------------------

    def tools_changed(self) -> None:
        """Tells every client the tool list changed (from any thread)."""
        with self._lock:
            sessions = [s for s in self._sessions if s.client_initialized and not s.modern]
            listeners = list(self._listeners.values())
        for session in sessions:
            session.send(LIST_CHANGED)
        for exchange in listeners:
            exchange.notify("notifications/tools/list_changed", {"_meta": {SUBSCRIPTION_ID_KEY: exchange.id}})

    def announce(self) -> None:
        """A load or unload made by this process: every client here hears
        of it, and so do the other workers."""
        stamp = self.runtime.store.stamp()
        with self._rescanning:
            self._seen = self._told = stamp  # this process knows it already
        self.tools_changed()
        if self.elsewhere is not None:
            self.elsewhere()

    def refresh(self, *, announced: bool = False) -> bool:
        """Rereads the component directory; tells every client when the
        tools changed (another process loaded or unloaded one), and when
        another worker `announced` a load or unload of a directory state
        not yet told of (a reload changes no tool, and is announced all the
        same). True when the tools changed."""
        with self._rescanning:
            stamp = self.runtime.store.stamp()
            try:
                changed = self.runtime.rescan()
            except WassetteError as e:
                log.warning("rescanning components failed: %s", e)
                changed = False
            self._seen = stamp
            tell = changed or (announced and stamp != self._told)
            if tell:
                self._told = stamp
        if tell:
            self.tools_changed()
        return changed

    def current(self) -> bool:
        """Catches up with the component directory if it changed since last
        read (before answering tools/list, or a call of an unknown tool: a
        load by the CLI or another worker shows at once, not at the watcher's
        next look). True when the tools changed."""
        if self._seen is None or self.runtime.store.stamp() == self._seen:
            return False  # not watching yet (the runtime was just read), or nothing changed
        return self.refresh()

    # -- the watcher ------------------------------------------------------------

    def watch(self, since: frozenset[tuple[str, int]] | None = None) -> None:
        """Starts a thread that rescans when components change under the
        running server and tells every client. `since`: the directory's stamp
        when the runtime read it."""
        self._seen = self._told = self.runtime.store.stamp() if since is None else since
        if self.drop_dir is not None:
            from wassette.distribution import local_components

            self._drop_seen = local_components.stamp(self.drop_dir)
        threading.Thread(target=self._watch, name="wassette-watch", daemon=True).start()
        if self.runtime.shared is not None:
            # Other replicas' changes land in the working copy: told at once.
            self.runtime.shared.follow(self.current)

    def stop(self) -> None:
        self._stop.set()
        if self.runtime.shared is not None:
            self.runtime.shared.stop()

    def _watch(self) -> None:
        while not self._stop.wait(WATCH_INTERVAL_S):
            if self.drop_dir is not None:
                self.sync_drop_dir()
            self.current()

    def sync_drop_dir(self) -> None:
        """Loads what changed in the drop directory since last looked at,
        and tells every client when tools came or went."""
        from wassette.distribution import local_components

        assert self.drop_dir is not None
        now = local_components.stamp(self.drop_dir)
        if now == self._drop_seen:
            return
        self._drop_seen = now
        try:
            report = local_components.sync(self.runtime, self.drop_dir)
        except WassetteError as e:
            log.warning("%s", e)
            return
        for r in report.refused:
            log.warning("drop directory %s: %s refused: %s", self.drop_dir, r["file"], r["reason"])
        if report.changed:
            log.info(
                "drop directory %s: loaded %s, unloaded %s",
                self.drop_dir,
                ", ".join(report.loaded) or "none",
                ", ".join(report.unloaded) or "none",
            )
            self.announce()
