"""The runtime: installed components, their tools, and calls into them.

The CLI and the MCP server both drive this one object; neither touches the
component directory or the engine directly. Where components come from is
the distribution layer's business: it hands finished packages to `install`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from wassette import _engine
from wassette.runtime import egress, mcp_exports, naming
from wassette.runtime.audit import AuditLog
from wassette.runtime.builtin_tools import BUILTIN_NAMES
from wassette.runtime.calls import CallResult, ToolCall, arguments_json, audit_result, unencodable
from wassette.runtime.compiled import Compiler
from wassette.runtime.config import Settings
from wassette.runtime.effective import EffectivePolicies
from wassette.runtime.errors import UnknownComponentError, UnknownToolError, WassetteError
from wassette.runtime.instances import InstanceError, Instances, Scope
from wassette.runtime.links import Links
from wassette.runtime.naming import Catalog, Tool
from wassette.runtime.permissions import Permissions
from wassette.runtime.policy import PolicyError
from wassette.runtime.quotas import CallSlots
from wassette.runtime.secrets import SecretStore
from wassette.runtime.store import ComponentStore, Metadata, valid_id

if TYPE_CHECKING:
    # Installing is imported when a load needs it: serving does not (a
    # faster start for every `wassette run`).
    from wassette.runtime.install import InstallOptions, LoadReport, Package, Progress
    from wassette.runtime.state.postgres import PostgresState

log = logging.getLogger("wassette.runtime")


class ComponentInfo(NamedTuple):
    id: str
    source: str
    sha256: str
    size: int
    installed_at: str
    tools: list[str]
    provenance: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "sha256": self.sha256,
            "size": self.size,
            "installed_at": self.installed_at,
            "tools": self.tools,
            "provenance": self.provenance,
        }


class CallObserver(Protocol):
    """Told when a call starts (on the caller's thread) and when it ends
    (on any thread), with what `started` returned (e.g. a trace span)."""

    def started(self, tool: Tool) -> object: ...

    def ended(self, result: CallResult, handle: object) -> None: ...


class Runtime:
    """Components, their tools, and calls into them."""

    def __init__(self, settings: Settings, *, engine_of: Runtime | None = None) -> None:
        """`engine_of`: a runtime whose engine this one uses (a tenant's, in
        a server of several tenants)."""
        self.settings = settings
        self.store = ComponentStore(settings.component_dir)
        self.audit = AuditLog(settings.data_dir / "audit.jsonl", key_file=settings.audit_key_file)
        self.permissions = Permissions(self.store, self.audit)
        self.secrets = SecretStore(settings.secrets_dir, self.store.locked, settings.secrets_store_key_file)
        # A fleet's shared state (`--state postgresql://`): the directories
        # above are this replica's working copy of it.
        self.shared: PostgresState | None = None
        if settings.state is not None:
            from wassette.runtime.state.postgres import PostgresState
            from wassette.runtime.state.records import Directories

            self.shared = PostgresState(
                settings.state, Directories(settings.component_dir, settings.secrets_dir)
            )
            self.store.shared = self.shared
            self.audit.also = self.shared.audit_log.ship
            self.audit.also_flush = self.shared.audit_log.flush
        self.policies = EffectivePolicies(settings, self.permissions, self.secrets)
        self.compiler: Compiler = Compiler(settings, engine_of.compiler if engine_of is not None else None)
        quota = settings.quota
        self.slots = CallSlots(quota.concurrent_calls, settings.tenant) if quota.concurrent_calls else None
        self._metadata: dict[str, Metadata] = {}
        self._broken: dict[str, str] = {}
        self._catalog = Catalog()
        # Per tool name, the tool and its compiled component: what a call
        # needs first, in one lookup (measured: 16 -> 1 us per call after a
        # JS call, whose guest leaves the caches cold for path building).
        self._targets: dict[str, tuple[Tool, _engine.Component]] = {}
        # Which loaded component satisfies which import (links.py).
        # Egress over the last minute, per component (per-minute quotas).
        self.egress = egress.Windows()
        self.links = Links(self.compiled, lambda cid: egress.callee_policy(self.policies, self.egress, cid))
        # Instances kept across calls (policy `resources.instance: per-session`).
        self.instances = Instances(settings.max_live_instances, self.audit)
        self._lock = threading.RLock()
        # Told of every call the engine ran, when it starts and when it ends
        # (the server's metrics); the audit log is told of refusals anyway.
        self.observers: list[CallObserver] = []

    # -- the component directory ------------------------------------------------

    def refresh(self) -> None:
        """Re-reads the component directory (components added or removed by
        another process, or dropped in by hand). With a shared state, the
        first one brings the working copy up to date (and migrates the
        database if it must)."""
        if self.shared is not None and not self.shared.started:
            self.shared.start()
        with self._lock:
            self.store.sweep_temp_files()
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
                    self.compiler.drop(cid)
                self._metadata[cid] = meta
                self._broken.pop(cid, None)
            for cid in list(self._metadata):
                try:
                    self.policies.policy(cid)
                except PolicyError as e:
                    # A broken policy takes its component out, not the server.
                    self._broken[cid] = str(e)
                    log.warning("component %s is unavailable: %s", cid, e)
                    del self._metadata[cid]
            self._rebuild_catalog()
        for line in self._catalog.collisions:
            log.warning("%s", line)

    def rescan(self) -> bool:
        """`refresh`, and whether the tools offered changed (names, schemas,
        or the component behind them: a rebuilt component is news to a
        client even when its schemas are the same)."""
        before = self._offered()
        self.refresh()
        return self._offered() != before

    def _offered(self) -> tuple[dict[str, Tool], dict[str, str]]:
        with self._lock:
            return {t.name: t for t in self.tools()}, {cid: m.sha256 for cid, m in self._metadata.items()}

    def _describe_existing(self, cid: str) -> Metadata:
        """Metadata for a wasm that has none (copied in by hand, or stale)."""
        wasm = self.store.read_wasm(cid)
        compiled = self.compiler.compile(wasm, cid)
        exports = mcp_exports.describe(compiled, wasm)
        previous = self.store.recorded_source(cid)
        with self.store.locked():
            st = self.store.path(cid).stat()
            meta = Metadata(
                id=cid,
                sha256=compiled.sha256,
                size=st.st_size,
                mtime_ns=st.st_mtime_ns,
                source=previous or self.store.path(cid).as_uri(),
                installed_at=datetime.now(UTC).isoformat(timespec="seconds"),
                exports=exports,
                provenance={},
            )
            try:
                self.store.write_metadata(meta)
            except OSError as e:
                log.warning("cannot cache metadata of %s: %s", cid, e.strerror)
        self.compiler.keep(cid, compiled)
        return meta

    # -- installing and removing -------------------------------------------------

    def install(
        self, package: Package, options: InstallOptions | None = None, progress: Progress | None = None
    ) -> LoadReport:
        """Compiles and installs a fetched component (see install.py)."""
        from wassette.runtime.install import InstallOptions, install, quiet

        return install(self, package, options or InstallOptions(), progress or quiet)

    @contextlib.contextmanager
    def changing(self) -> Iterator[None]:
        """Held while the set of components changes."""
        with self._lock:
            yield

    def installed(self, meta: Metadata, compiled: _engine.Component) -> None:
        """Takes note of a component just installed (under `changing`)."""
        self.policies.forget(meta.id)
        self._metadata[meta.id] = meta
        self.compiler.keep(meta.id, compiled)
        self._broken.pop(meta.id, None)
        self._rebuild_catalog()

    def known(self, cid: str) -> Metadata | None:
        return self._metadata.get(cid)

    def unload_component(self, component_id: str) -> None:
        if not valid_id(component_id):
            raise UnknownComponentError(component_id)
        with self._lock:
            with self.store.locked():
                self.store.remove(component_id)
            self._forget(component_id)
            self._rebuild_catalog()

    def _forget(self, cid: str) -> None:
        self.instances.end_component(cid)
        self._metadata.pop(cid, None)
        self.policies.forget(cid)
        self.compiler.drop(cid)
        self._broken.pop(cid, None)

    # -- queries ----------------------------------------------------------------

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
                    provenance=m.provenance,
                )
                for m in sorted(self._metadata.values(), key=lambda m: m.id)
            ]

    def broken_components(self) -> Mapping[str, str]:
        """Components in the directory that cannot be loaded, with why."""
        return dict(self._broken)

    @property
    def catalog(self) -> Catalog:
        """The current tool catalog (a new object whenever it changes)."""
        return self._catalog

    def tools(self) -> list[Tool]:
        return sorted(self._catalog.tools.values(), key=lambda t: t.name)

    def keeps(self, name: str) -> bool:
        """Whether tool `name`'s component keeps an instance per session."""
        target = self._targets.get(name)
        try:
            tool = target[0] if target is not None else self.tool(name)
            return self.policies.policy(tool.component_id).limits.per_session
        except WassetteError:
            return False

    def kept_components(self) -> frozenset[str]:
        """Components whose policy keeps an instance per session."""
        kept = set()
        for cid in list(self._metadata):
            with contextlib.suppress(WassetteError):
                if self.policies.policy(cid).limits.per_session:
                    kept.add(cid)
        return frozenset(kept)

    def tool(self, name: str) -> Tool:
        try:
            return self._catalog.tools[name]
        except KeyError:
            raise UnknownToolError(name) from None

    def describe(self, package: Package) -> Catalog:
        """The tools a package would offer on its own, with their schemas,
        without installing it."""
        compiled = self.compiler.compile(package.wasm, package.component_id)
        exports = mcp_exports.describe(compiled, package.wasm)
        return naming.build({package.component_id: exports}, BUILTIN_NAMES)

    def component_tools(self, component_id: str) -> list[Tool]:
        if component_id not in self._metadata:
            raise UnknownComponentError(component_id)
        return sorted(self._catalog.for_component(component_id), key=lambda t: t.name)

    @property
    def collisions(self) -> list[str]:
        return list(self._catalog.collisions)

    # -- calls ------------------------------------------------------------------

    def call_tool(
        self,
        name: str,
        arguments: Mapping[str, Any] | str | None,
        *,
        cancel: _engine.CancelToken | None = None,
    ) -> CallResult:
        """Runs a tool in a fresh sandbox. Blocks; the GIL is released inside."""
        return self.start_tool(name, arguments, cancel=cancel).finish()

    def start_tool(
        self,
        name: str,
        arguments: Mapping[str, Any] | str | None,
        *,
        cancel: _engine.CancelToken | None = None,
        host: Callable[[str, str], str | None] | None = None,
        scope: Scope | None = None,
        owner: str | None = None,
        need_scope: bool = False,
    ) -> ToolCall:
        """A call in a fresh sandbox, to be run a slice at a time
        (`ToolCall.run_for`) and finished on any thread (`ToolCall.finish`).
        Raises UnknownToolError; every other failure is the call's result.

        A tool of a component kept per session (`resources.instance:
        per-session`) runs in the instance of `scope` (the client's session),
        or of the instance id in its `instance_id` argument; with neither, in
        a fresh one, unless `need_scope` (no sessions: an id is needed). An
        instance id is `owner`'s only (the client's identity)."""
        target = self._targets.get(name)
        if target is None:
            target = self._target(name)
        tool, component = target
        shared = self.shared
        if shared is not None and (why := shared.refusal()) is not None:
            return ToolCall(tool, None, CallResult(tool=tool, status="policy_error", error=why))
        try:
            policy_json, sandbox_json, policy = egress.call_policy(self.policies, self.egress, tool)
        except WassetteError as e:
            return ToolCall(tool, None, CallResult(tool=tool, status="policy_error", error=str(e)))
        kept: _engine.Instance | None = None
        if policy.limits.per_session:
            try:
                arguments, scope = self.instances.scope_for_call(
                    tool.name, tool.component_id, arguments, scope, owner, need_scope
                )
                if scope is not None:
                    kept = self.instances.for_call(
                        component,
                        tool.component_id,
                        scope,
                        sandbox_json,
                        policy.limits.idle_timeout_ms / 1000,
                    )
            except InstanceError as e:
                return ToolCall(tool, None, CallResult(tool=tool, status="invalid_arguments", error=str(e)))
        args_json = arguments_json(arguments)
        if tool.declared is not None:  # a tool the component declares: its own schema, call-tool
            try:
                args_json = mcp_exports.call_tool_arguments(tool, args_json)
            except ValueError as e:
                self._kept_ended(tool, kept, scope)
                return ToolCall(tool, None, CallResult(tool=tool, status="invalid_arguments", error=str(e)))
        slots = self.slots
        if slots is not None and not slots.enter():
            self._kept_ended(tool, kept, scope)
            self.audit.record(
                "over_quota", component=tool.component_id, tool=tool.name, quota="concurrent_calls"
            )
            return ToolCall(tool, None, CallResult(tool=tool, status="over_quota", error=slots.refusal()))
        try:
            links = self.links.for_call(tool.component_id, component)
            pending = (kept or component).start(
                tool.interface, tool.function, args_json, policy_json, cancel, links, host
            )
        except ValueError as e:  # arguments that are not JSON at all, or not valid Unicode
            if slots is not None:
                slots.leave()
            self._kept_ended(tool, kept, scope)
            why = (unencodable(arguments) if not isinstance(arguments, str) else None) or str(e)
            return ToolCall(tool, None, CallResult(tool=tool, status="invalid_arguments", error=why))
        observers = tuple(self.observers)
        if not observers and slots is None and kept is None:
            return ToolCall(tool, pending, None, self._ended, asks_client=component.asks_client)
        handles: list[object] = []
        for observer in observers:
            try:
                handles.append(observer.started(tool))
            except Exception:  # an observer's failure is logged, never the call's
                log.exception("a call observer failed")
                handles.append(None)

        def ended(result: CallResult) -> None:
            if slots is not None:
                slots.leave()
            self._kept_ended(tool, kept, scope)
            for observer, handle in zip(observers, handles, strict=True):
                try:
                    observer.ended(result, handle)
                except Exception:
                    log.exception("a call observer failed")
            self._ended(result)

        return ToolCall(tool, pending, None, ended, asks_client=component.asks_client)

    def _kept_ended(self, tool: Tool, kept: _engine.Instance | None, scope: Scope | None) -> None:
        if kept is not None and scope is not None:
            self.instances.call_ended(tool.component_id, scope)

    def _target(self, name: str) -> tuple[Tool, _engine.Component]:
        """A tool and its compiled component (compiled on first use)."""
        catalog = self._catalog
        tool = self.tool(name)
        component = self.compiled(tool.component_id)
        with self._lock:
            if catalog is self._catalog:  # not if the catalog changed meanwhile
                self._targets[name] = (tool, component)
        return tool, component

    def compiled(self, cid: str) -> _engine.Component:
        meta = self._metadata.get(cid)
        if meta is None:
            raise UnknownComponentError(cid)
        return self.compiler.load(cid, self.store.path(cid), meta.sha256)

    def _ended(self, result: CallResult) -> None:
        """Refusals and stops are audited (a linked callee's under its id);
        egress joins the per-minute windows."""
        if result.egress or result.linked:
            egress.account(self.policies, self.egress, result)
        audit_result(self.audit, result)

    def close(self) -> None:
        """The process is done with this runtime: the audit log's queued
        records are written, and a checkpoint after them."""
        self.instances.close()
        self.audit.close()

    def set_environment(self, component_id: str, values: Mapping[str, str]) -> None:
        """Values for this component's granted environment variables, taken
        over the server's (a provisioning manifest's `value_from`); kept in
        memory only, never written to disk."""
        with self._lock:
            self.policies.set_environment(component_id, values)

    def audit_records(
        self, limit: int = 100, *, component: str | None = None, event: str | None = None
    ) -> list[dict[str, Any]]:
        """The newest audit records (of the whole fleet, with a shared state)."""
        if self.shared is not None:
            return self.shared.audit_log.read(limit, component=component, event=event)
        return self.audit.read(limit, component=component, event=event)

    def effective_policy(self, component_id: str) -> dict[str, Any]:
        """What the engine enforces for the next call of this component."""
        return self.policies.build(component_id)

    def _rebuild_catalog(self) -> None:
        with self._lock:
            self._catalog = naming.build({cid: m.exports for cid, m in self._metadata.items()}, BUILTIN_NAMES)
            self._targets = {}
            self.links.rebuild(self._metadata)
