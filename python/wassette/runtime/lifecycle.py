"""The runtime: load and unload components, keep the tool catalog, call tools.

The CLI and the MCP server both drive this one object; neither touches the
component directory or the engine directly.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from wassette import _engine
from wassette.runtime import catalog as catalog_mod
from wassette.runtime import effective
from wassette.runtime import policy as policy_mod
from wassette.runtime.audit import AuditLog
from wassette.runtime.catalog import Catalog, Tool
from wassette.runtime.config import Settings
from wassette.runtime.errors import (
    ConfigError,
    InvalidComponentError,
    StoreError,
    UnknownComponentError,
    UnknownToolError,
    WassetteError,
)
from wassette.runtime.permissions import Permissions
from wassette.runtime.policy import Policy, PolicyError
from wassette.runtime.secrets import SecretStore
from wassette.runtime.store import ComponentStore, FileStamp, Metadata, file_stamp, valid_id

if TYPE_CHECKING:
    # Fetching (registries, signatures, HTTP) is imported when a load needs
    # it: serving components does not, and starts faster without it.
    from wassette.distribution import sources
    from wassette.distribution.sources import Progress

log = logging.getLogger("wassette.runtime")

# Asked whether a policy shipped with a component may take effect: gets the
# component id and the policy, returns True to apply it now.
PolicyApproval = Callable[[str, Policy], bool]


def _fetch_options() -> sources.FetchOptions:
    from wassette.distribution.sources import FetchOptions

    return FetchOptions()


@dataclass(frozen=True)
class LoadOptions:
    """How to load: fetch options (credentials, digest pin, loopback http),
    an id to use instead of the derived one, what to do with a shipped policy
    (`accept_policy`: True, or a function that asks the user), and a policy
    to apply instead (from a provisioning manifest: the operator's word)."""

    fetch: sources.FetchOptions = field(default_factory=_fetch_options)
    component_id: str | None = None
    accept_policy: bool | PolicyApproval = False
    policy: Policy | None = None


# Call outcomes where the sandbox, not the component, ended the call.
STOPPED = frozenset({"timeout", "cpu_limit", "out_of_memory"})


@dataclass(frozen=True)
class ComponentInfo:
    id: str
    source: str
    sha256: str
    size: int
    installed_at: str
    tools: list[str]
    provenance: dict[str, Any] = field(default_factory=dict)

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


@dataclass(frozen=True)
class LoadReport:
    id: str
    tools: list[str]
    replaced: bool
    warnings: list[str]
    source: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)
    # none | applied | pending | unchanged: what happened to a shipped policy
    policy: str = "none"

    def to_json(self) -> dict[str, Any]:
        status = "component reloaded successfully" if self.replaced else "component loaded successfully"
        out: dict[str, Any] = {
            "status": status,
            "id": self.id,
            "tools": self.tools,
            "warnings": self.warnings,
            "source": self.source,
            "policy": self.policy,
        }
        if self.provenance.get("kind") == "oci":
            out["digest"] = self.provenance.get("manifest_digest")
            out["signature"] = self.provenance.get("signature")
        if self.policy == "pending":
            out["policy_hint"] = f"run `wassette policy accept {self.id}` to apply the policy shipped with it"
        return out


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
        """What went wrong, for humans and agents: one line, plus one line per
        refused access with the command that would grant it."""
        text = self._headline()
        return "\n".join([text, *(denial_line(self.tool.component_id, d) for d in self.denials)])

    def _headline(self) -> str:
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
            "policy_error": "the component's policy is invalid",
        }
        if self.status == "ok":
            return "the tool succeeded, but the sandbox refused some accesses"
        label = labels.get(self.status, self.status)
        return f"{label}: {self.error}" if self.error else label


class ToolCall:
    """A call started by `Runtime.start_tool`: `run_for` runs a slice of it
    on this thread, `finish` the rest (on any thread); each gives the result
    once the call has ended."""

    def __init__(
        self, runtime: Runtime, tool: Tool, pending: _engine.PendingCall | None, ended: CallResult | None
    ) -> None:
        self._runtime = runtime
        self._tool = tool
        self._pending = pending
        self._ended = ended

    def run_for(self, budget_ms: int) -> CallResult | None:
        """The result if the call ends within `budget_ms` (None: it goes on)."""
        if self._pending is not None and self._ended is None:
            outcome = self._pending.run_for(budget_ms)
            if outcome is not None:
                self._ended = self._runtime._result(self._tool, outcome)
        return self._ended

    def finish(self) -> CallResult:
        """Runs the call to its end. Blocks; the GIL is released inside."""
        if self._ended is None:
            assert self._pending is not None
            self._ended = self._runtime._result(self._tool, self._pending.finish())
        return self._ended


def grant_command(component_id: str, denial: dict[str, Any]) -> str | None:
    """The exact CLI command that would allow a refused access, if a grant can."""
    if denial.get("rule"):
        return None  # a deny rule decided: no grant overrides it
    resource = str(denial.get("resource", ""))
    if denial.get("kind") == "storage":
        # A symlink or `..` led elsewhere: the place it leads is what needs the grant.
        path = denial.get("resolved") or resource
        access = "write" if denial.get("access") == "write" else "read"
        return f"wassette permission grant storage {component_id} fs://{path} --access {access}"
    if denial.get("kind") == "network":
        if denial.get("access") in ("bind", "listen"):
            return None  # no policy grants serving
        host = network_target(resource)
        return f"wassette permission grant network {component_id} {host}" if host else None
    return None


def network_target(resource: str) -> str | None:
    """`host[:port]` of a refused URL or socket address, as a grant names it."""
    from urllib.parse import urlsplit

    if "://" in resource:
        parts = urlsplit(resource)
        if not parts.hostname:
            return None
        default = {"http": 80, "https": 443}.get(parts.scheme)
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        port = parts.port
        return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")
    return resource.split(" ", 1)[0] or None


def denial_line(component_id: str, denial: dict[str, Any]) -> str:
    target = denial.get("resource")
    if denial.get("resolved"):
        target = f"{target} (which leads to {denial['resolved']})"
    what = f"{denial.get('kind')} {denial.get('access')} of {target}"
    why = denial.get("reason") or "not granted"
    rule = denial.get("rule")
    line = f"denied: {what} ({why}{'; decided by ' + rule if rule else ''})"
    command = grant_command(component_id, denial)
    if command:
        line += f"; to allow it, run: {command}"
    return line


class Runtime:
    """Components, their tools, and calls into them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = ComponentStore(settings.component_dir)
        self.audit = AuditLog(settings.data_dir / "audit.jsonl")
        self.permissions = Permissions(self.store, self.audit)
        self.secrets = SecretStore(settings.secrets_dir)
        # Parsed policies, keyed by the policy file's stamp, and effective
        # policies (as the engine reads them), keyed by everything they are
        # built from: a grant made by another process applies from the next call.
        self._policies: dict[str, tuple[FileStamp | None, Policy]] = {}
        self._effective: dict[str, tuple[tuple[object, ...], str]] = {}
        # Each component's policy and secrets file, as the str paths checked
        # at every call (building them with pathlib cost more than the stats).
        self._stamped: dict[str, tuple[str, str]] = {}
        self._engine: _engine.Engine | None = None
        self._compiled: dict[str, _engine.Component] = {}
        self._metadata: dict[str, Metadata] = {}
        self._broken: dict[str, str] = {}
        self._catalog = Catalog()
        self._reserved: frozenset[str] = catalog_mod.BUILTIN_NAMES
        self._lock = threading.RLock()
        self._compile_locks: dict[str, threading.Lock] = {}
        self._env_overrides: dict[str, dict[str, str]] = {}
        self._env_version = 0

    # -- set-up ----------------------------------------------------------

    @property
    def engine(self) -> _engine.Engine:
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    self._engine = self._new_engine()
        return self._engine

    def _new_engine(self) -> _engine.Engine:
        ca_pem = None
        if self.settings.ca_bundle is not None:
            # The private CA the loader trusts is trusted by guests' HTTPS too.
            try:
                ca_pem = self.settings.ca_bundle.read_bytes()
            except OSError as e:
                raise ConfigError(f"cannot read CA bundle {self.settings.ca_bundle}: {e.strerror}") from None
        try:
            return _engine.Engine(str(self.settings.cache_dir), self.settings.allocator, ca_pem)
        except _engine.EngineError as e:
            raise ConfigError(f"cannot start the engine: {e}") from None

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
            for cid in list(self._metadata):
                try:
                    self._policy(cid)
                except PolicyError as e:
                    # A broken policy takes its component out, not the server.
                    self._broken[cid] = str(e)
                    log.warning("component %s is unavailable: %s", cid, e)
                    del self._metadata[cid]
            self._rebuild_catalog()
        for line in self._catalog.collisions:
            log.warning("%s", line)

    def rescan(self) -> bool:
        """`refresh`, and whether the tools offered changed (names, schemas)."""
        before = {t.name: t for t in self.tools()}
        self.refresh()
        return {t.name: t for t in self.tools()} != before

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

    def load_component(
        self, uri: str, *, progress: Progress | None = None, options: LoadOptions | None = None
    ) -> LoadReport:
        """Fetches (and verifies), compiles and installs a component; replaces
        one with the same id. Nothing is written unless every check passed."""
        from wassette.distribution import sources

        opts = options or LoadOptions()
        say: Progress = progress or _quiet
        say(f"fetching {uri}")
        fetched = sources.fetch(uri, self.settings, opts.fetch, say)
        cid = opts.component_id or fetched.component_id
        if not valid_id(cid):
            raise WassetteError(f"{cid!r} is not a valid component id (letters, digits, _ . -)")
        shipped = None
        if fetched.policy is not None:
            try:
                shipped = policy_mod.parse(
                    fetched.policy.decode("utf-8", "replace"), source=f"policy shipped with {uri}"
                )
            except PolicyError as e:
                raise WassetteError(f"refused: {e}") from None
        say(f"compiling {cid} ({len(fetched.wasm)} bytes)")
        compiled = self._compile(fetched.wasm, cid)
        exports = json.loads(compiled.describe(fetched.wasm))
        warnings = list(fetched.warnings)
        previous = self.store.metadata(cid) or self._metadata.get(cid)
        if previous is not None:
            warnings += _replacement_warnings(cid, previous, fetched)
        policy_state = "none"
        if shipped is not None and opts.policy is None:
            # May ask the user: before taking any lock.
            policy_state = self._shipped_policy_state(cid, shipped, opts.accept_policy)
        with self._lock:
            self.store.ensure()
            with self.store.locked():
                replaced = self.store.exists(cid)
                meta = self.store.install(
                    cid,
                    fetched.wasm,
                    sha256=compiled.sha256,
                    source=fetched.source,
                    installed_at=_now(),
                    exports=exports,
                    provenance=fetched.provenance,
                )
                if opts.policy is not None:
                    text = policy_mod.dump(opts.policy).encode()
                    self.permissions.install_shipped(cid, text, source=uri, accepted=True)
                    policy_state = "applied"
                elif fetched.policy is not None and policy_state in ("applied", "pending"):
                    self.permissions.install_shipped(
                        cid, fetched.policy, source=fetched.source, accepted=policy_state == "applied"
                    )
                elif policy_state == "none":
                    self.permissions.drop_pending(cid)
            self._policies.pop(cid, None)
            self._effective.pop(cid, None)
            self._metadata[meta.id] = meta
            self._compiled[meta.id] = compiled
            self._broken.pop(meta.id, None)
            self._rebuild_catalog()
        if policy_state == "applied" and opts.policy is None:
            self.audit.record("policy_accepted", component=cid, by="load", source=fetched.source)
        say(f"loaded {meta.id}")
        warnings += [c for c in self._catalog.collisions if f" {meta.id}" in c or f"{meta.id}," in c]
        warnings += [
            f"export {export} is not offered as a tool: {why}"
            for c, export, why in self._catalog.skipped
            if c == meta.id
        ]
        if policy_state == "pending":
            warnings.append(
                f"the component ships a policy that is not applied until accepted: "
                f"{describe_permissions(shipped)}; run `wassette policy accept {cid}` to apply it"
            )
        tools = sorted(t.name for t in self._catalog.for_component(meta.id))
        return LoadReport(
            id=meta.id,
            tools=tools,
            replaced=replaced,
            warnings=warnings,
            source=fetched.source,
            provenance=fetched.provenance,
            policy=policy_state,
        )

    def _shipped_policy_state(self, cid: str, shipped: Policy, accept: bool | PolicyApproval) -> str:
        """`unchanged` when the active policy already says the same, else
        `applied` when accepted (by flag or by the user), else `pending`."""
        if self.store.exists(cid):
            try:
                if (
                    self.permissions.path(cid).exists()
                    and self.permissions.get(cid).document == shipped.document
                ):
                    return "unchanged"
            except PolicyError:
                pass
        if accept is True or (callable(accept) and accept(cid, shipped)):
            return "applied"
        return "pending"

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
        self._effective.pop(cid, None)
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
                    provenance=m.provenance,
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

    def inspect_source(self, uri: str, *, progress: Progress | None = None) -> Catalog:
        """The tools a component file (or URI) would offer, with their
        schemas, without installing it: fetched and verified as for a load,
        but nothing is written to the component directory. Names are as the
        component would get them on its own."""
        from wassette.distribution import sources

        fetched = sources.fetch(uri, self.settings, None, progress)
        compiled = self._compile(fetched.wasm, fetched.component_id)
        exports = json.loads(compiled.describe(fetched.wasm))
        return catalog_mod.build({fetched.component_id: exports}, self._reserved)

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
        return self.start_tool(name, arguments, cancel=cancel).finish()

    def start_tool(
        self,
        name: str,
        arguments: Mapping[str, Any] | str | None,
        *,
        cancel: _engine.CancelToken | None = None,
    ) -> ToolCall:
        """A call in a fresh sandbox, to be run a slice at a time
        (`ToolCall.run_for`) and finished on any thread (`ToolCall.finish`)."""
        prepared = self._prepare(name, arguments)
        if isinstance(prepared, CallResult):
            return ToolCall(self, prepared.tool, None, prepared)
        tool, component, args_json, policy_json = prepared
        try:
            pending = component.start(tool.interface, tool.function, args_json, policy_json, cancel)
        except ValueError as e:  # arguments that are not JSON at all
            return ToolCall(self, tool, None, CallResult(tool=tool, status="invalid_arguments", error=str(e)))
        return ToolCall(self, tool, pending, None)

    def _prepare(
        self, name: str, arguments: Mapping[str, Any] | str | None
    ) -> tuple[Tool, _engine.Component, str, str] | CallResult:
        """The tool, its component, the arguments as JSON and the effective
        policy as JSON; or the result of a call that cannot run (its policy
        cannot be built)."""
        tool = self.tool(name)
        component = self._component(tool.component_id)
        args_json = arguments if isinstance(arguments, str) else json.dumps(arguments or {})
        try:
            policy_json = self.effective_policy_json(tool.component_id)
        except WassetteError as e:
            return CallResult(tool=tool, status="policy_error", error=str(e))
        return tool, component, args_json, policy_json

    def _result(self, tool: Tool, outcome: _engine.CallOutcome) -> CallResult:
        """A call's outcome as a result; refusals and stops are audited."""
        result = CallResult(
            tool=tool,
            status=outcome.status,
            value=json.loads(outcome.value_json) if outcome.value_json is not None else None,
            error=outcome.error,
            detail=outcome.detail,
            stdout=outcome.stdout,
            stderr=outcome.stderr,
            stdout_dropped=outcome.stdout_dropped,
            stderr_dropped=outcome.stderr_dropped,
            denials=json.loads(outcome.denials_json) if outcome.denials_json != "[]" else [],
            duration_ms=outcome.duration_ms,
        )
        for d in result.denials:
            self.audit.record("denied", component=tool.component_id, tool=tool.name, **d)
        if result.status in STOPPED:
            self.audit.record(
                "stopped",
                component=tool.component_id,
                tool=tool.name,
                status=result.status,
                error=result.error,
            )
        return result

    def _policy(self, component_id: str) -> Policy:
        return self._policy_entry(component_id)[1]

    def _stamped_files(self, component_id: str) -> tuple[str, str]:
        """The component's policy file and secrets file."""
        files = self._stamped.get(component_id)
        if files is None:
            files = (str(self.permissions.path(component_id)), str(self.secrets.path(component_id)))
            self._stamped[component_id] = files
        return files

    def _policy_entry(self, component_id: str) -> tuple[FileStamp | None, Policy]:
        """The component's policy and the stamp of the file it was read from."""
        key = file_stamp(self._stamped_files(component_id)[0])
        cached = self._policies.get(component_id)
        if cached is not None and cached[0] == key:
            return cached
        policy = self.permissions.get(component_id) if key is not None else policy_mod.empty()
        entry = (key, policy)
        self._policies[component_id] = entry
        return entry

    def set_environment(self, component_id: str, values: Mapping[str, str]) -> None:
        """Values for this component's granted environment variables, taken
        over the server's (a provisioning manifest's `value_from`); kept in
        memory only, never written to disk."""
        with self._lock:
            self._env_overrides[component_id] = dict(values)
            self._env_version += 1

    def effective_policy_json(self, component_id: str) -> str:
        """`effective_policy` as the JSON text the engine reads; built again
        only when an input changed: the policy or secrets file (by stamp),
        environment overrides, or where a granted path leads (checked at every
        call, as symlinks may change)."""
        policy_key, policy = self._policy_entry(component_id)
        key = (
            policy_key,
            file_stamp(self._stamped_files(component_id)[1]),
            self._env_version,
            effective.resolution(policy, self.settings.storage_base),
        )
        cached = self._effective.get(component_id)
        if cached is not None and cached[0] == key:
            return cached[1]
        text = json.dumps(self.effective_policy(component_id, policy))
        self._effective[component_id] = (key, text)
        return text

    def effective_policy(self, component_id: str, policy: Policy | None = None) -> dict[str, Any]:
        """What the engine enforces for the next call of this component."""
        overrides = self._env_overrides.get(component_id)
        return effective.build(
            policy or self._policy(component_id),
            env_sources={**self.settings.environment, **overrides}
            if overrides
            else self.settings.environment,
            secrets=self.secrets.get(component_id),
            storage_base=self.settings.storage_base,
            memory_limit_bytes=self.settings.memory_limit_bytes,
            timeout_ms=self.settings.timeout_ms,
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
                # The same wasm under another id shares its compiled code
                # (calls share nothing: each gets a new instance and its own policy).
                twin = next((c for c in list(self._compiled.values()) if c.sha256 == meta.sha256), None)
                if twin is not None:
                    self._compiled[cid] = twin
                    return twin
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


def _quiet(message: str, done: int | None = None, total: int | None = None) -> None:
    return None


def _replacement_warnings(cid: str, previous: Metadata, fetched: sources.Fetched) -> list[str]:
    """Says when a reload changes what the id means: a tag that now points to
    another manifest, or a component from somewhere else entirely."""
    old, new = previous.provenance, fetched.provenance
    if old.get("kind") == "oci" and new.get("kind") == "oci":
        same_repo = (old.get("registry"), old.get("repository")) == (
            new.get("registry"),
            new.get("repository"),
        )
        if same_repo and old.get("manifest_digest") != new.get("manifest_digest"):
            if old.get("tag") and old.get("tag") == new.get("tag"):
                return [
                    f"tag {new['tag']} of {new['registry']}/{new['repository']} has moved: it was "
                    f"{old.get('manifest_digest')} when installed ({previous.installed_at}), it is now "
                    f"{new.get('manifest_digest')}"
                ]
            return [
                f"component {cid} was {old.get('manifest_digest')}, it is now {new.get('manifest_digest')}"
            ]
        if same_repo:
            return []
    if previous.source != fetched.source and _origin(previous.source) != _origin(fetched.source):
        return [f"component {cid} (from {previous.source}) is replaced by the one from {fetched.source}"]
    return []


def _origin(source: str) -> str:
    """A source without its digest: the same repository or file counts as the same origin."""
    return source.split("@sha256:", 1)[0].rsplit(":", 1)[0] if source.startswith("oci://") else source


def describe_permissions(policy: Policy | None) -> str:
    """One line listing what a policy grants, for a user deciding on it."""
    if policy is None:
        return "no permissions"
    parts = [f"storage {r.uri} ({', '.join(r.access)})" for r in policy.storage_allow]
    parts += [f"network {r.text}" for r in policy.network_allow]
    parts += [f"environment {r.key}" for r in policy.env_allow]
    limits = policy.limits
    if limits.memory_bytes:
        parts.append(f"memory {limits.memory_bytes} bytes")
    if limits.cpu_time_ms or limits.cpu_cores:
        parts.append(f"cpu {limits.cpu_time_ms or limits.cpu_cores}")
    return "; ".join(parts) if parts else "no permissions"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
