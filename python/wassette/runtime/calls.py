"""How a tool call ends, and how that is said to people and agents.

`CallResult` is the engine's outcome of one call, with the tool; its
`message()` names what went wrong, each refused access with the exact
command that would allow it, and each network failure (a name that did not
resolve, a refused connection) as what it is: never as a denial.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from wassette import _engine
from wassette.runtime.naming import Tool

if TYPE_CHECKING:
    from wassette.runtime.audit import AuditLog

# How a call can end (the engine's CallStatus values).
OK = "ok"
STATUS_LABELS = {
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
    "over_quota": "over quota",
    "quota_exceeded": "the call was stopped",
}
# Outcomes where the sandbox, not the component, ended the call.
STOPPED = frozenset({"timeout", "cpu_limit", "out_of_memory"})


class CallResult(NamedTuple):
    """How a tool call ended; `status` is one of the engine's CallStatus values."""

    tool: Tool
    status: str
    value: Any = None
    error: str | None = None
    detail: str | None = None
    stdout: bytes = b""
    stderr: bytes = b""
    stdout_dropped: int = 0
    stderr_dropped: int = 0
    denials: Sequence[dict[str, Any]] = ()
    # Network failures that are no denial: the access was allowed, and failed.
    failures: Sequence[dict[str, Any]] = ()
    duration_ms: float = 0.0
    # Where allowed network accesses went: {transport, host, port,
    # connections, sent, received} (bytes: None when nothing was carried).
    egress: Sequence[dict[str, Any]] = ()
    # Paths the storage gate let the guest reach: {kind, resource, access: [...]}.
    accesses: Sequence[dict[str, Any]] = ()
    # The instance's linear memory at the end (its peak), bytes.
    memory_bytes: int = 0
    # Calls of imports linked to other loaded components: {component (the
    # callee's id), interface, function, depth, status, error, denials,
    # failures, egress, accesses, memory_bytes, duration_ms}. The callee's
    # denials are its own, not the tool's (`denials` above).
    linked: Sequence[dict[str, Any]] = ()
    # The egress budget the call exceeded (status quota_exceeded): {limit
    # (the policy field), value, per, counts, message}.
    quota: dict[str, Any] | None = None

    @property
    def is_error(self) -> bool:
        return self.status != OK

    def message(self) -> str:
        """What went wrong, for humans and agents: one line, plus one line per
        refused access with the command that would grant it, and one per
        network failure."""
        lines = [self._headline()]
        lines += [denial_line(self.tool.component_id, d) for d in self.denials]
        lines += [failure_line(f) for f in self.failures]
        for call in self.linked:
            callee = str(call.get("component"))
            lines += [
                f"in linked component {callee}: {denial_line(callee, d)}" for d in call.get("denials", ())
            ]
            lines += [f"in linked component {callee}: {failure_line(f)}" for f in call.get("failures", ())]
        return "\n".join(lines)

    def _headline(self) -> str:
        if self.status == OK:
            if self.denials:
                return "the tool succeeded, but the sandbox refused some accesses"
            return "the tool succeeded, but some network accesses failed"
        label = STATUS_LABELS.get(self.status, self.status)
        return f"{label}: {self.error}" if self.error else label

    @classmethod
    def from_outcome(cls, tool: Tool, outcome: _engine.CallOutcome) -> CallResult:
        return cls(
            tool=tool,
            status=outcome.status.value,
            value=json.loads(outcome.value_json) if outcome.value_json is not None else None,
            error=outcome.error,
            detail=outcome.detail,
            stdout=outcome.stdout,
            stderr=outcome.stderr,
            stdout_dropped=outcome.stdout_dropped,
            stderr_dropped=outcome.stderr_dropped,
            denials=json.loads(outcome.denials_json) if outcome.denials_json != "[]" else [],
            failures=json.loads(outcome.failures_json) if outcome.failures_json != "[]" else [],
            duration_ms=outcome.duration_ms,
            egress=json.loads(outcome.egress_json) if outcome.egress_json != "[]" else [],
            accesses=json.loads(outcome.accesses_json) if outcome.accesses_json != "[]" else [],
            memory_bytes=outcome.memory_bytes,
            linked=json.loads(outcome.linked_json) if outcome.linked_json != "[]" else [],
            quota=json.loads(outcome.quota_json) if outcome.quota_json is not None else None,
        )

    def to_wire(self) -> dict[str, Any]:
        """As JSON, to finish a call in another process (`serve --workers N`
        runs kept instances in one worker); the tool goes by name."""
        wire = self._asdict()
        wire["tool"] = self.tool.name
        wire["stdout"] = self.stdout.decode("latin-1")
        wire["stderr"] = self.stderr.decode("latin-1")
        return wire

    @classmethod
    def from_wire(cls, tool: Tool, wire: dict[str, Any]) -> CallResult:
        fields = {k: v for k, v in wire.items() if k in cls._fields and k != "tool"}
        fields["stdout"] = str(wire.get("stdout", "")).encode("latin-1")
        fields["stderr"] = str(wire.get("stderr", "")).encode("latin-1")
        return cls(tool=tool, **fields)


def audit_result(audit: AuditLog, result: CallResult) -> None:
    """Refusals and stops of a call: the tool's under its component, a
    linked callee's under the callee's own id (`via`: the tool's component);
    then the call itself."""
    tool = result.tool
    for d in result.denials:
        audit.record("denied", component=tool.component_id, tool=tool.name, **d)
    if result.status in STOPPED:
        audit.record(
            "stopped", component=tool.component_id, tool=tool.name, status=result.status, error=result.error
        )
    if result.quota:
        audit_quota(audit, tool.component_id, tool.name, result.quota)
    for call in result.linked:
        callee, via = call.get("component"), tool.component_id
        for d in call.get("denials", ()):
            audit.record("denied", component=callee, tool=tool.name, via=via, **d)
        if call.get("quota"):
            audit_quota(audit, str(callee), tool.name, call["quota"], via=via)
        if call.get("status") in STOPPED:
            status, error = call.get("status"), call.get("error")
            audit.record("stopped", component=callee, tool=tool.name, via=via, status=status, error=error)
    # One `call` record per call, after its refusals: queued, so the call
    # does not wait for the disk (in-process p50 of a C tool: +1 %; written
    # at once, +22 %).
    audit.enqueue("call", **call_record(result))


def audit_quota(audit: AuditLog, component: str, tool: str, hit: dict[str, Any], **via: Any) -> None:
    """The egress budget a call exceeded: which limit (the policy field), its value."""
    limit, value = hit.get("limit"), hit.get("value")
    audit.record("quota_exceeded", component=component, tool=tool, limit=limit, value=value, **via)


def call_record(result: CallResult) -> dict[str, Any]:
    """The audit log's compact trace of a call: what ran, how it ended,
    how long, how many refusals, where its allowed network traffic went."""
    fields: dict[str, Any] = {
        "component": result.tool.component_id,
        "tool": result.tool.name,
        "status": result.status,
        "duration_ms": round(result.duration_ms, 3),
        "denials": len(result.denials),
    }
    if result.egress:
        fields["egress"] = [
            {k: e.get(k) for k in ("host", "port", "transport", "connections", "sent", "received")}
            for e in result.egress
        ]
    if result.linked:
        fields["linked"] = [str(call.get("component")) for call in result.linked]
    return fields


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


def failure_line(failure: dict[str, Any]) -> str:
    """A network access that was allowed and failed (not a permission matter)."""
    return f"network failure: {failure.get('access')} of {failure.get('resource')}: {failure.get('reason')}"


def arguments_json(arguments: Any) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments or {})


def unencodable(value: Any, path: str = "args") -> str | None:
    """Where a string in the arguments cannot be UTF-8 (a lone surrogate,
    valid JSON escape but no character): `args.text: lone surrogate
    U+D800 at offset 0`; None when every string is fine."""
    if isinstance(value, str):
        for i, ch in enumerate(value):
            if 0xD800 <= ord(ch) <= 0xDFFF:
                return (
                    f"{path}: lone surrogate U+{ord(ch):04X} at offset {i} (a string must be valid Unicode)"
                )
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            found = unencodable(key, f"{path} (a key)") or unencodable(item, f"{path}.{key}")
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = unencodable(item, f"{path}[{i}]")
            if found:
                return found
    return None


class ToolCall:
    """A call started by `Runtime.start_tool`: `run_for` runs a slice of it
    on this thread, `finish` the rest (on any thread); each gives the result
    once the call has ended. `ended` reports each result once (audit)."""

    __slots__ = ("_ended", "_pending", "_report", "asks_client", "tool")

    def __init__(
        self,
        tool: Tool,
        pending: _engine.PendingCall | None,
        ended: CallResult | None,
        report: Any = None,
        *,
        asks_client: bool = False,
    ) -> None:
        self.tool = tool
        # It may wait for the client's answer: never run where that blocks others.
        self.asks_client = asks_client
        self._pending = pending
        self._ended = ended
        self._report = report

    def _done(self, outcome: _engine.CallOutcome) -> CallResult:
        result = CallResult.from_outcome(self.tool, outcome)
        if self._report is not None:
            self._report(result)
        return result

    def run_for(self, budget_ms: int) -> CallResult | None:
        """The result if the call ends within `budget_ms` (None: it goes on)."""
        if self._pending is not None and self._ended is None:
            outcome = self._pending.run_for(budget_ms)
            if outcome is not None:
                self._ended = self._done(outcome)
        return self._ended

    def finish(self) -> CallResult:
        """Runs the call to its end. Blocks; the GIL is released inside."""
        if self._ended is None:
            assert self._pending is not None
            self._ended = self._done(self._pending.finish())
        return self._ended
