"""What the console shows, read from the runtime (the same store, policies
and audit log the CLI and the server use), and the changes a person makes
there, each through the same runtime function as the CLI's."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from wassette.runtime.calls import grant_command, network_target
from wassette.runtime.errors import WassetteError
from wassette.runtime.runtime import Runtime

# Records read from the end of the log for one audit page (before the tool
# and time filters, which the log's reader does not apply).
SCAN = 2000
SHOWN = 200
EVENTS = (
    "denied",
    "call",
    "stopped",
    "granted",
    "revoked",
    "reset",
    "policy_attached",
    "policy_accepted",
    "grant_request",
    "secret_set",
    "secret_deleted",
    "over_quota",
)
SINCE = ("15m", "1h", "24h", "7d")


class Permission(NamedTuple):
    """The one grant that would allow a refused access (as `grant_command` says)."""

    kind: str  # storage | network
    value: str  # fs:///path | host[:port] or scheme://host
    access: str  # read | write (storage); "" (network)

    def describe(self) -> str:
        return f"{self.kind} {self.value}" + (f" ({self.access})" if self.access else "")


def permission_for(component: str, denial: Mapping[str, Any]) -> Permission | None:
    if grant_command(component, dict(denial)) is None:
        return None  # a deny rule decided, or nothing a policy grants
    resource = str(denial.get("resource", ""))
    if denial.get("kind") == "storage":
        path = str(denial.get("resolved") or resource)
        return Permission("storage", f"fs://{path}", "write" if denial.get("access") == "write" else "read")
    host = network_target(resource)
    return Permission("network", host, "") if host else None


def grant(runtime: Runtime, component: str, permission: Permission, by: str) -> dict[str, Any]:
    if permission.kind == "storage":
        if permission.access not in ("read", "write") or not permission.value.startswith("fs://"):
            raise WassetteError("a storage grant names an fs:// URI and read or write")
        return runtime.permissions.grant_storage(component, permission.value, [permission.access], by=by)
    if permission.kind == "network" and permission.value:
        return runtime.permissions.grant_network(component, permission.value, by=by)
    raise WassetteError(f"the console grants storage or network access, not {permission.kind!r}")


class AuditFilter(NamedTuple):
    component: str = ""
    tool: str = ""
    event: str = ""
    since: str = ""
    after: int = -1  # only records after this chain sequence number (live updates)

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> AuditFilter:
        after = query.get("after", "")
        return cls(
            component=query.get("component", "").strip(),
            tool=query.get("tool", "").strip(),
            event=query.get("event", "").strip(),
            since=query.get("since", "").strip(),
            after=int(after) if after.isdigit() else -1,
        )

    def query(self) -> dict[str, str]:
        return {k: v for k, v in self._asdict().items() if k != "after" and v}


def audit_records(runtime: Runtime, f: AuditFilter) -> list[dict[str, Any]]:
    """The newest records that match, oldest first."""
    records = runtime.audit_records(SCAN, component=f.component or None, event=f.event or None)
    if f.tool:
        records = [r for r in records if r.get("tool") == f.tool]
    if f.since:
        from wassette.runtime.learn import parse_since

        floor = parse_since(f.since)
        records = [r for r in records if _when(r) >= floor]
    if f.after >= 0:
        records = [r for r in records if seq_of(r) > f.after]
    return records[-SHOWN:]


def seq_of(record: Mapping[str, Any]) -> int:
    chain = record.get("chain")
    seq = chain.get("seq") if isinstance(chain, dict) else None
    return seq if isinstance(seq, int) else -1


def _when(record: Mapping[str, Any]) -> datetime:
    try:
        when = datetime.fromisoformat(str(record.get("ts")))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


class ComponentView(NamedTuple):
    id: str
    source: str
    sha256: str
    installed_at: str
    tools: list[str]
    provenance: dict[str, Any]
    policy: dict[str, Any]
    effective: dict[str, Any] | str  # the engine's view, or why it cannot be built
    pending: dict[str, Any] | None


def components(runtime: Runtime) -> list[ComponentView]:
    runtime.refresh()  # what another process loaded since counts too
    out = []
    for info in runtime.components():
        effective: dict[str, Any] | str
        try:
            effective = runtime.effective_policy(info.id)
        except WassetteError as e:
            effective = str(e)
        pending = runtime.permissions.pending(info.id)
        out.append(
            ComponentView(
                info.id,
                info.source,
                info.sha256,
                info.installed_at,
                info.tools,
                info.provenance,
                runtime.permissions.get(info.id).document,
                effective,
                pending.document if pending is not None else None,
            )
        )
    return out


def signer(provenance: Mapping[str, Any]) -> str:
    """Who signed it, as the load's signature check recorded."""
    signature = provenance.get("signature")
    if isinstance(signature, dict):
        status = signature.get("status") or "unchecked"
        return f"{signature.get('signer') or 'no signer'} ({status})"
    return "not signed (not from a registry)"


class PendingView(NamedTuple):
    component: str
    policy: dict[str, Any]
    diff: list[str] | None  # an upgrade's changes (policy_diff.py); None: no diff available


def pending_policies(runtime: Runtime) -> list[PendingView]:
    runtime.refresh()
    out = []
    for info in runtime.components():
        proposed = runtime.permissions.pending(info.id)
        if proposed is not None:
            out.append(PendingView(info.id, proposed.document, _diff(runtime, info.id, proposed)))
    return out


def _diff(runtime: Runtime, component: str, proposed: Any) -> list[str] | None:
    """What the pending policy adds, removes, widens or narrows against the
    one in force (policy_diff.py; None if that module is unavailable)."""
    try:
        from wassette.runtime.policy_diff import diff
    except ImportError:
        return None
    current = runtime.permissions.get(component)
    return diff(current, proposed, base=runtime.settings.storage_base).lines()
