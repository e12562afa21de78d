"""The runtime: load and unload components, keep the tool catalog, call tools.

The CLI and the MCP server both drive this one object; neither touches the
component directory or the engine directly.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from wassette import _engine
from wassette.distribution import sources
from wassette.runtime import catalog as catalog_mod
from wassette.runtime.catalog import Catalog, Tool
from wassette.runtime.config import Settings
from wassette.runtime.errors import (
    InvalidComponentError,
    StoreError,
    UnknownComponentError,
    UnknownToolError,
    WassetteError,
)
from wassette.runtime.store import ComponentStore, Metadata, valid_id

log = logging.getLogger("wassette.runtime")

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ComponentInfo:
    id: str
    source: str
    sha256: str
    size: int
    installed_at: str
    tools: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "sha256": self.sha256,
            "size": self.size,
            "installed_at": self.installed_at,
            "tools": self.tools,
        }


@dataclass(frozen=True)
class LoadReport:
    id: str
    tools: list[str]
    replaced: bool
    warnings: list[str]

    def to_json(self) -> dict[str, Any]:
        status = "component reloaded successfully" if self.replaced else "component loaded successfully"
        return {"status": status, "id": self.id, "tools": self.tools, "warnings": self.warnings}


@dataclass
class CallResult:
    """How a tool call ended; `status` as in the engine's CallOutcome."""

    tool: Tool
    status: str
    value: Any = None
    error: str | None = None
    detail: str | None = None
    stdout: bytes = b""
    stderr: bytes = b""
    stdout_dropped: int = 0
    stderr_dropped: int = 0
    denials: list[dict[str, Any]] = field(default_factory=list)
    duration_ms: float = 0.0

    @property
    def is_error(self) -> bool:
        return self.status != "ok"

    def message(self) -> str:
        """One line saying what went wrong, for humans and agents."""
        labels = {
            "err": "the tool returned an error",
            "invalid_arguments": "invalid arguments",
            "trap": "the component crashed",
            "timeout": "time limit exceeded",
            "cpu_limit": "CPU-time limit exceeded",
            "out_of_memory": "memory limit exceeded",
            "cancelled": "cancelled",
            "exit": "the component exited",
            "sandbox_error": "the sandbox could not be set up",
        }
        label = labels.get(self.status, self.status)
        return f"{label}: {self.error}" if self.error else label


class Runtime:
    """Components, their tools, and calls into them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = ComponentStore(settings.component_dir)
        self._engine: _engine.Engine | None = None
        self._compiled: dict[str, _engine.Component] = {}
        self._metadata: dict[str, Metadata] = {}
        self._broken: dict[str, str] = {}
        self._catalog = Catalog()
        self._reserved: frozenset[str] = frozenset()
        self._lock = threading.RLock()
        self._compile_locks: dict[str, threading.Lock] = {}

    # -- set-up ----------------------------------------------------------

    @property
    def engine(self) -> _engine.Engine:
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    self._engine = _engine.Engine(str(self.settings.cache_dir))
        return self._engine

    def reserve_names(self, names: Iterable[str]) -> None:
        """Tool names owned by someone else (the built-in tools)."""
        self._reserved = frozenset(names)
        self._rebuild_catalog()

    def refresh(self) -> None:
        """Re-reads the component directory (components added or removed by
        another process, or dropped in by hand)."""
        with self._lock:
            ids = self.store.ids()
            for cid in list(self._metadata):
                if cid not in ids:
                    self._forget(cid)
            for cid in ids:
                meta = self.store.metadata(cid)
                known = self._metadata.get(cid)
                if meta is not None and known is not None and meta.sha256 == known.sha256:
                    continue
                if meta is None:
                    try:
                        meta = self._describe_existing(cid)
                    except WassetteError as e:
                        self._broken[cid] = str(e)
                        log.warning("component %s cannot be loaded: %s", cid, e)
                        continue
                if known is not None and known.sha256 != meta.sha256:
                    self._compiled.pop(cid, None)
                self._metadata[cid] = meta
                self._broken.pop(cid, None)
            self._rebuild_catalog()
        for line in self._catalog.collisions:
            log.warning("%s", line)

    def _describe_existing(self, cid: str) -> Metadata:
        """Metadata for a wasm that has none (copied in by hand, or stale)."""
        wasm = self.store.read_wasm(cid)
        compiled = self._compile(wasm, cid)
        exports = json.loads(compiled.describe(wasm))
        previous = self._previous_source(cid)
        with self.store.locked():
            st = self.store.path(cid).stat()
            meta = Metadata(
                id=cid,
                sha256=compiled.sha256,
                size=st.st_size,
                mtime_ns=st.st_mtime_ns,
                source=previous or self.store.path(cid).as_uri(),
                installed_at=_now(),
                exports=exports,
            )
            try:
                self.store.write_metadata(meta)
            except OSError as e:
                log.warning("cannot cache metadata of %s: %s", cid, e.strerror)
        self._compiled[cid] = compiled
        return meta

    def _previous_source(self, cid: str) -> str | None:
        try:
            data = json.loads(self.store.path(cid, ".metadata.json").read_bytes())
            return str(data["source"]) if isinstance(data, dict) and "source" in data else None
        except (OSError, ValueError):
            return None

    # -- lifecycle -------------------------------------------------------

    def load_component(self, uri: str, *, progress: Progress | None = None) -> LoadReport:
        """Fetches, compiles and installs a component; replaces one with the same id."""
        say = progress or (lambda _msg: None)
        say(f"fetching {uri}")
        fetched = sources.fetch(uri, max_bytes=self.settings.max_component_bytes)
        say(f"compiling {fetched.component_id} ({len(fetched.wasm)} bytes)")
        compiled = self._compile(fetched.wasm, fetched.component_id)
        exports = json.loads(compiled.describe(fetched.wasm))
        with self._lock:
            self.store.ensure()
            with self.store.locked():
                replaced = self.store.exists(fetched.component_id)
                meta = self.store.install(
                    fetched.component_id,
                    fetched.wasm,
                    sha256=compiled.sha256,
                    source=fetched.source,
                    installed_at=_now(),
                    exports=exports,
                )
            self._metadata[meta.id] = meta
            self._compiled[meta.id] = compiled
            self._broken.pop(meta.id, None)
            self._rebuild_catalog()
        say(f"loaded {meta.id}")
        warnings = [c for c in self._catalog.collisions if f" {meta.id}" in c or f"{meta.id}," in c]
        warnings += [
            f"export {export} is not offered as a tool: {why}"
            for cid, export, why in self._catalog.skipped
            if cid == meta.id
        ]
        tools = sorted(t.name for t in self._catalog.for_component(meta.id))
        return LoadReport(id=meta.id, tools=tools, replaced=replaced, warnings=warnings)

    def unload_component(self, component_id: str) -> None:
        if not valid_id(component_id):
            raise UnknownComponentError(component_id)
        with self._lock:
            with self.store.locked():
                self.store.remove(component_id)
            self._forget(component_id)
            self._rebuild_catalog()

    def _forget(self, cid: str) -> None:
        self._metadata.pop(cid, None)
        self._compiled.pop(cid, None)
        self._broken.pop(cid, None)

    # -- queries ---------------------------------------------------------

    def components(self) -> list[ComponentInfo]:
        with self._lock:
            return [
                ComponentInfo(
                    id=m.id,
                    source=m.source,
                    sha256=m.sha256,
                    size=m.size,
                    installed_at=m.installed_at,
                    tools=sorted(t.name for t in self._catalog.for_component(m.id)),
                )
                for m in sorted(self._metadata.values(), key=lambda m: m.id)
            ]

    def broken_components(self) -> Mapping[str, str]:
        """Components in the directory that cannot be loaded, with why."""
        return dict(self._broken)

    def tools(self) -> list[Tool]:
        return sorted(self._catalog.tools.values(), key=lambda t: t.name)

    def tool(self, name: str) -> Tool:
        try:
            return self._catalog.tools[name]
        except KeyError:
            raise UnknownToolError(name) from None

    def component_tools(self, component_id: str) -> list[Tool]:
        if component_id not in self._metadata:
            raise UnknownComponentError(component_id)
        return sorted(self._catalog.for_component(component_id), key=lambda t: t.name)

    @property
    def collisions(self) -> list[str]:
        return list(self._catalog.collisions)

    # -- calls -----------------------------------------------------------

    def call_tool(
        self,
        name: str,
        arguments: Mapping[str, Any] | str | None,
        *,
        cancel: _engine.CancelToken | None = None,
    ) -> CallResult:
        """Runs a tool in a fresh sandbox. Blocks; the GIL is released inside."""
        tool = self.tool(name)
        component = self._component(tool.component_id)
        args_json = arguments if isinstance(arguments, str) else json.dumps(arguments or {})
        try:
            outcome = component.call(
                tool.interface, tool.function, args_json, self._effective_policy(tool.component_id), cancel
            )
        except ValueError as e:  # arguments that are not JSON at all
            return CallResult(tool=tool, status="invalid_arguments", error=str(e))
        return CallResult(
            tool=tool,
            status=outcome.status,
            value=json.loads(outcome.value_json) if outcome.value_json is not None else None,
            error=outcome.error,
            detail=outcome.detail,
            stdout=outcome.stdout,
            stderr=outcome.stderr,
            stdout_dropped=outcome.stdout_dropped,
            stderr_dropped=outcome.stderr_dropped,
            denials=json.loads(outcome.denials_json),
            duration_ms=outcome.duration_ms,
        )

    def _effective_policy(self, component_id: str) -> str:
        # Deny by default: nothing but limits until the policy engine grants more.
        return json.dumps(
            {"memory_limit_bytes": self.settings.memory_limit_bytes, "timeout_ms": self.settings.timeout_ms}
        )

    def _component(self, cid: str) -> _engine.Component:
        compiled = self._compiled.get(cid)
        if compiled is not None:
            return compiled
        with self._lock:
            lock = self._compile_locks.setdefault(cid, threading.Lock())
        with lock:
            compiled = self._compiled.get(cid)
            if compiled is None:
                meta = self._metadata.get(cid)
                if meta is None:
                    raise UnknownComponentError(cid)
                try:
                    compiled = self.engine.load(str(self.store.path(cid)), meta.sha256)
                except _engine.ComponentError as e:
                    raise InvalidComponentError(f"component {cid}: {e}") from None
                except _engine.EngineError as e:
                    raise StoreError(f"component {cid}: {e}") from None
                self._compiled[cid] = compiled
        return compiled

    def _compile(self, wasm: bytes, cid: str) -> _engine.Component:
        try:
            return self.engine.compile(wasm)
        except _engine.ComponentError as e:
            raise InvalidComponentError(f"{cid}: {e}") from None

    def _rebuild_catalog(self) -> None:
        with self._lock:
            self._catalog = catalog_mod.build(
                {cid: m.exports for cid, m in self._metadata.items()}, self._reserved
            )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
