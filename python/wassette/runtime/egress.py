"""Egress quotas: how much network traffic a component's calls may make.

The policy says it under ``permissions.network``::

    limits:                       # every call of the component
      bytes_sent_per_call: 64Ki
      bytes_received_per_call: 1Mi
      requests_per_call: 10
      requests_per_minute: 60     # over all its calls in the last 60 s
      bytes_per_minute: 10Mi      # sent + received, likewise
    tools:
      fetch-url:                  # one tool: its fields replace the component's
        limits: {bytes_received_per_call: 4Mi}

The engine's network gate counts and enforces a call's budgets
(``src/gates/quota.rs``): per-call limits as written, per-minute limits as
what is left of the window when the call starts. The window is kept here,
per component (and per tool, for a tool's own per-minute limit), and the
call's egress (the outcome's bytes and connections) is added when it ends.
So calls that run at the same time each see the window as it was when they
started, and together may overshoot a per-minute limit by what each was
given (a per-call limit bounds that).
"""

from __future__ import annotations

import collections
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn

from wassette.runtime.errors import PolicyError
from wassette.runtime.naming import Tool

if TYPE_CHECKING:
    from wassette.runtime.calls import CallResult
    from wassette.runtime.effective import EffectivePolicies
    from wassette.runtime.policy import Policy

# What each field counts, in the engine's terms, and over what.
FIELDS: dict[str, tuple[str, str]] = {
    "bytes_sent_per_call": ("sent", "call"),
    "bytes_received_per_call": ("received", "call"),
    "requests_per_call": ("requests", "call"),
    "requests_per_minute": ("requests", "minute"),
    "bytes_per_minute": ("bytes", "minute"),
}
WINDOW_S = 60.0
_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "ki": 1024, "mi": 1024**2, "gi": 1024**3}


class Limit(NamedTuple):
    field: str  # one of FIELDS
    value: int
    origin: str  # the policy field, e.g. network.tools.fetch.limits.requests_per_call
    tool: str | None  # the tool whose override set it, or None: the component's


class EgressPolicy(NamedTuple):
    """The egress limits of a policy: the component's, and each tool's override."""

    limits: tuple[Limit, ...] = ()
    tools: Mapping[str, tuple[Limit, ...]] = {}

    def __bool__(self) -> bool:
        return bool(self.limits or self.tools)

    def for_tool(self, tool: Tool) -> tuple[Limit, ...]:
        """The limits of one tool's calls: the tool's override, field by
        field, over the component's. A tool is named by its function, its
        `interface#function`, its declared name, or its MCP tool name."""
        own: tuple[Limit, ...] = ()
        for name in (tool.function, tool.export, tool.declared, tool.name):
            if name is not None and name in self.tools:
                own = self.tools[name]
                break
        fields = {limit.field for limit in own}
        return own + tuple(limit for limit in self.limits if limit.field not in fields)


Fail = Callable[[str, str], NoReturn]


def read(network: Mapping[str, Any], path: str, fail: Fail) -> EgressPolicy:
    """`limits` and `tools` of a policy's network section (fields checked
    against the schema already); `fail(path, problem)` raises."""
    limits = _limits(network.get("limits"), f"{path}.limits", None, fail)
    tools: dict[str, tuple[Limit, ...]] = {}
    raw_tools = network.get("tools") or {}
    if not isinstance(raw_tools, Mapping):
        fail(f"{path}.tools", "must be a mapping of tool names to {limits: ...}")
    for name, entry in raw_tools.items():
        where = f"{path}.tools.{name}"
        if not isinstance(name, str) or not name:
            fail(where, "a tool name must be a non-empty string")
        if not isinstance(entry, Mapping):
            fail(where, "must be a mapping with `limits`")
        for key in entry:
            if key != "limits":
                fail(f"{where}.{key}", "unknown field (expected one of: limits)")
        tools[name] = _limits(entry.get("limits"), f"{where}.limits", name, fail)
    return EgressPolicy(limits, tools)


def _limits(value: Any, path: str, tool: str | None, fail: Fail) -> tuple[Limit, ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        fail(path, "must be a mapping")
    out = []
    for key, raw in value.items():
        if key not in FIELDS:
            fail(f"{path}.{key}", f"unknown field (expected one of: {', '.join(sorted(FIELDS))})")
        number = _count(raw, bytes_=key.startswith("bytes"))
        if number is None:
            example = "1Mi, 500k or 1048576" if key.startswith("bytes") else "10"
            fail(f"{path}.{key}", f"must be a whole number of at least 0 (e.g. {example}), got {raw!r}")
        # `permissions.` left out: the policy's own words for where the limit is.
        out.append(Limit(key, number, f"{path}.{key}".removeprefix("permissions."), tool))
    return tuple(out)


def _count(value: Any, *, bytes_: bool) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if not bytes_ or not isinstance(value, str):
        return None
    text = value.strip()
    unit = text.lstrip("0123456789.")
    number = text[: len(text) - len(unit)]
    factor = _UNITS.get(unit.strip().lower())
    if factor is None or not number or number.count(".") > 1:
        return None
    return int(float(number) * factor)


class Windows:
    """The egress of each component's recent calls (and of each tool with a
    per-minute limit of its own), over a sliding window of 60 s. `clock`
    is a monotonic time in seconds (injectable: tests move it)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        # key -> deque of (when, bytes, requests), and their running sums
        # (so a busy component's next call costs no walk over its minute).
        self._spent: dict[tuple[str, str | None], collections.deque[tuple[float, int, int]]] = {}
        self._sums: dict[tuple[str, str | None], tuple[int, int]] = {}
        self._lock = threading.Lock()

    def used(self, key: tuple[str, str | None]) -> tuple[int, int]:
        """Bytes and requests within the window."""
        with self._lock:
            spent = self._spent.get(key)
            if not spent:
                return 0, 0
            nbytes, requests = self._sums[key]
            horizon = self.clock() - WINDOW_S
            while spent and spent[0][0] <= horizon:
                _, old_bytes, old_requests = spent.popleft()
                nbytes, requests = nbytes - old_bytes, requests - old_requests
            self._sums[key] = (nbytes, requests)
            return nbytes, requests

    def add(self, key: tuple[str, str | None], nbytes: int, requests: int) -> None:
        if nbytes or requests:
            with self._lock:
                self._spent.setdefault(key, collections.deque()).append((self.clock(), nbytes, requests))
                total_bytes, total_requests = self._sums.get(key, (0, 0))
                self._sums[key] = (total_bytes + nbytes, total_requests + requests)

    def budgets(self, component_id: str, limits: Sequence[Limit]) -> list[dict[str, Any]]:
        """The engine's budgets for one call (`egress_limits` of the
        effective policy): per-minute limits as what the window has left."""
        out = []
        for limit in limits:
            counts, per = FIELDS[limit.field]
            room = limit.value
            if per == "minute":
                nbytes, requests = self.used((component_id, limit.tool))
                room = max(0, limit.value - (requests if counts == "requests" else nbytes))
            out.append(
                {"counts": counts, "max": room, "value": limit.value, "per": per, "origin": limit.origin}
            )
        return out

    def account(
        self, component_id: str, limits: Sequence[Limit], egress: Sequence[Mapping[str, Any]]
    ) -> None:
        """A call of the component ended: its egress joins the component's
        window, and its tool's, when the tool has a per-minute limit of its own."""
        nbytes = sum((e.get("sent") or 0) + (e.get("received") or 0) for e in egress)
        requests = sum(e.get("connections") or 0 for e in egress)
        self.add((component_id, None), nbytes, requests)
        tools = {
            limit.tool for limit in limits if limit.tool is not None and FIELDS[limit.field][1] == "minute"
        }
        for tool in tools:
            self.add((component_id, tool), nbytes, requests)


def with_budgets(policy_json: str, budgets: Sequence[Mapping[str, Any]]) -> str:
    """The effective policy JSON (an object, as json.dumps writes it, with
    no `egress_limits` yet) with this call's budgets added."""
    if not budgets:
        return policy_json
    head = policy_json.rstrip()[:-1].rstrip()
    separator = ", " if head != "{" else ""
    return f'{head}{separator}"egress_limits": {json.dumps(list(budgets))}}}'


def call_policy(policies: EffectivePolicies, windows: Windows, tool: Tool) -> tuple[str, str, Policy]:
    """The effective policy JSON of one call of `tool` with its budgets; the
    same without them (what a kept instance's sandbox is made of); and the
    policy they come from."""
    text, policy = policies.json_and_policy(tool.component_id)
    rules = policy.egress
    if not rules:
        return text, text, policy
    return with_budgets(text, windows.budgets(tool.component_id, rules.for_tool(tool))), text, policy


def callee_policy(policies: EffectivePolicies, windows: Windows, component_id: str) -> str:
    """The effective policy JSON of a linked callee: its component's budgets."""
    text = policies.json(component_id)
    rules = policies.policy(component_id).egress
    if not rules.limits:
        return text
    return with_budgets(text, windows.budgets(component_id, rules.limits))


def account(policies: EffectivePolicies, windows: Windows, result: CallResult) -> None:
    """A call ended: its egress, and each linked callee's, joins the windows
    of the components that have egress limits."""
    tool = result.tool
    if result.egress:
        rules = policies.policy(tool.component_id).egress
        if rules:
            windows.account(tool.component_id, rules.for_tool(tool), result.egress)
    for call in result.linked:
        callee = str(call.get("component"))
        if call.get("egress") and policies.policy(callee).egress.limits:
            windows.account(callee, (), call["egress"])


def check_schema_fields(schema_fields: set[str]) -> None:
    """The schema and this module name the same limits (checked at import
    by policy.py; a mismatch is a packaging bug)."""
    if schema_fields != set(FIELDS):
        raise PolicyError(f"policy schema limits {sorted(schema_fields)} != {sorted(FIELDS)}")
