"""What changes between two policies, rule by rule: added, removed, widened
and narrowed rules, and whether the new policy reaches anything the old one
did not (`PolicyDiff.wider`). Pure: no files, no engine.

Used by `wassette policy diff`, `policy learn` (the proposal against the
policy in force) and by loading a new version of a component whose shipped
policy asks for more than the accepted one (install.py): only a wider policy
needs a person's consent.

A rule is compared with the rule of the same name in the other policy (the
storage `uri`, the network `host`/`cidr`, the environment `key`). An added
allow rule that an old rule already covers (`fs:///data/a.txt` under
`fs:///data`, `api.example.com` under `*.example.com`) is listed, but does
not make the policy wider. Removing a deny rule does. Limits are compared as
enforced: a policy without a limit gets the server's default.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from wassette.runtime.policy import KeyRule, Limits, NetworkRule, Policy, StorageRule

__all__ = ["Change", "PolicyDiff", "diff", "key_covers", "network_covers", "storage_covers"]

# The engine's defaults (src/policy.rs), for a policy that sets no limit.
DEFAULT_LIMITS = Limits(memory_bytes=512 * 1024 * 1024, timeout_ms=30_000)


class Change(NamedTuple):
    change: str  # added | removed | widened | narrowed
    section: str  # storage | network | environment | resources
    kind: str  # allow | deny | limits
    rule: str  # the rule as written (uri, host, cidr, key) or the limit's name
    before: str | None = None  # what it granted before (access, protocols, a limit)
    after: str | None = None
    # The old rule that already grants what an added rule names.
    covered_by: str | None = None
    wider: bool = False  # the new policy reaches more because of this change

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "change": self.change,
            "section": self.section,
            "kind": self.kind,
            "rule": self.rule,
            "wider": self.wider,
        }
        for key in ("before", "after", "covered_by"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out

    def line(self) -> str:
        mark = {"added": "+", "removed": "-"}.get(self.change, "~")
        what = f"{self.section} {self.kind}" if self.kind != "limits" else self.section
        text = f"{mark} {what:<17} {self.rule}"
        if self.before is not None or self.after is not None:
            if self.change in ("widened", "narrowed"):
                text += f": {self.before or 'default'} -> {self.after or 'default'}"
            else:
                text += f" ({self.after or self.before})"
        text += f"  [{self.change}{', wider' if self.wider else ''}]"
        if self.covered_by:
            text += f" (already granted by {self.covered_by})"
        return text


class PolicyDiff(NamedTuple):
    changes: tuple[Change, ...]

    @property
    def wider(self) -> bool:
        """The new policy reaches something the old one did not."""
        return any(c.wider for c in self.changes)

    @property
    def empty(self) -> bool:
        return not self.changes

    def to_json(self) -> dict[str, Any]:
        return {"wider": self.wider, "changes": [c.to_json() for c in self.changes]}

    def lines(self) -> list[str]:
        if not self.changes:
            return ["no change: both policies grant the same"]
        return [c.line() for c in self.changes]

    def summary(self) -> str:
        """One line for a warning: what the new policy adds or widens."""
        parts = [f"{c.change} {c.section} {c.rule}" for c in self.changes if c.wider]
        return "; ".join(parts) if parts else "nothing wider"


def diff(
    old: Policy, new: Policy, *, base: Path | None = None, defaults: Limits = DEFAULT_LIMITS
) -> PolicyDiff:
    """The changes from `old` to `new`. `base` resolves relative storage
    paths (the storage base); without it they are compared as written."""
    changes: list[Change] = []
    changes += _storage(old, new, base)
    changes += _network(old, new)
    changes += _keys(old.env_allow, new.env_allow, old.env_deny, new.env_deny)
    changes += _limits(old.limits, new.limits, defaults)
    return PolicyDiff(tuple(changes))


# -- storage ------------------------------------------------------------------


def _path(rule: StorageRule, base: Path | None) -> str:
    raw = rule.path
    if raw.startswith("/"):
        path = raw
    elif raw == "~" or raw.startswith("~/"):
        path = os.path.expanduser(raw)
    elif base is not None:
        path = str(base / raw)
    else:
        return raw.rstrip("/") or raw
    return os.path.normpath(path)


def _segments_match(pattern: Sequence[str], path: Sequence[str]) -> bool:
    if not pattern:
        return not path
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_segments_match(rest, path[i:]) for i in range(len(path) + 1))
    if not path or not _segment_match(head, path[0]):
        return False
    return _segments_match(rest, path[1:])


def _segment_match(pattern: str, name: str) -> bool:
    if "*" not in pattern:
        return pattern == name
    parts = pattern.split("*")
    if not name.startswith(parts[0]) or not name.endswith(parts[-1]):
        return False
    at = len(parts[0])
    for middle in parts[1:-1]:
        found = name.find(middle, at)
        if found < 0:
            return False
        at = found + len(middle)
    return at <= len(name) - len(parts[-1])


def path_covers(pattern: str, path: str) -> bool:
    """Whether a storage rule's path (maybe a glob) reaches everything `path`
    names: a plain path reaches itself and everything below it; a glob
    exactly what it matches (a glob `path` only when it is the same)."""
    if pattern == path:
        return True
    p_segments = [s for s in pattern.split("/") if s]
    segments = [s for s in path.split("/") if s]
    if pattern.startswith("/") != path.startswith("/"):
        return False
    glob = any("*" in s for s in p_segments)
    if not glob:
        # A glob below a plain directory is covered by it, too: compare the
        # part before its first wildcard.
        cut = next((i for i, s in enumerate(segments) if "*" in s), len(segments))
        return cut >= len(p_segments) and segments[: len(p_segments)] == p_segments
    if any("*" in s for s in segments):
        return False
    return _segments_match(p_segments, segments)


def storage_covers(
    rules: Iterable[StorageRule], path: str, access: Iterable[str], base: Path | None = None
) -> StorageRule | None:
    """The first allow rule that grants every `access` on `path` (resolved)."""
    wanted = set(access)
    for r in rules:
        if wanted <= set(r.access) and path_covers(_path(r, base), path):
            return r
    return None


def _storage(old: Policy, new: Policy, base: Path | None) -> list[Change]:
    changes: list[Change] = []
    before = {_path(r, base): r for r in old.storage_allow}
    after = {_path(r, base): r for r in new.storage_allow}
    for path, r in after.items():
        was = before.get(path)
        if was is None:
            cover = storage_covers(old.storage_allow, path, r.access, base)
            changes.append(
                Change(
                    "added",
                    "storage",
                    "allow",
                    r.uri,
                    after=", ".join(r.access),
                    covered_by=cover.uri if cover else None,
                    wider=cover is None,
                )
            )
        elif set(r.access) != set(was.access):
            more = not set(r.access) <= set(was.access)
            changes.append(
                Change(
                    "widened" if more else "narrowed",
                    "storage",
                    "allow",
                    r.uri,
                    before=", ".join(was.access),
                    after=", ".join(r.access),
                    wider=more,
                )
            )
    for path, r in before.items():
        if path not in after:
            changes.append(Change("removed", "storage", "allow", r.uri, before=", ".join(r.access)))
    old_deny = {_path(r, base): r for r in old.storage_deny}
    new_deny = {_path(r, base): r for r in new.storage_deny}
    for path, r in new_deny.items():
        if path not in old_deny:
            changes.append(Change("added", "storage", "deny", r.uri))
    for path, r in old_deny.items():
        if path not in new_deny:
            # Still denied when a remaining deny rule covers it (deny rules
            # cover the path and everything below it).
            kept = any(path_covers(p, path) for p in new_deny)
            changes.append(Change("removed", "storage", "deny", r.uri, wider=not kept))
    return changes


# -- network ------------------------------------------------------------------

_DEFAULT_PORT = {"http": 80, "https": 443}


def reach(rule: NetworkRule) -> frozenset[tuple[str, int | None]]:
    """What a rule allows per protocol: (protocol, port), None for any port
    (the forms of docs/permissions.md: a rule that names no protocol means
    http, https and tcp; without ports, HTTP 80, HTTPS 443, raw sockets the
    ports of the rule's schemes, or any port)."""
    schemes, transports = rule.schemes, rule.transports
    if not schemes and not transports:
        schemes, transports = ("http", "https"), ("tcp",)
    out: set[tuple[str, int | None]] = set()
    for s in schemes:
        out |= {(s, p) for p in rule.ports} if rule.ports else {(s, _DEFAULT_PORT[s])}
    for t in transports:
        if rule.ports:
            out |= {(t, p) for p in rule.ports}
        elif schemes:
            out |= {(t, _DEFAULT_PORT[s]) for s in schemes}
        else:
            out.add((t, None))
    return frozenset(out)


def _reach_covers(outer: frozenset[tuple[str, int | None]], inner: frozenset[tuple[str, int | None]]) -> bool:
    return all(item in outer or (item[0], None) in outer for item in inner)


def _target_covers(outer: NetworkRule, inner: NetworkRule) -> bool:
    """Whether every address `inner` names is named by `outer` too."""
    if outer.cidr is not None:
        net = ipaddress.ip_network(outer.cidr)
        try:
            if inner.cidr is not None:
                sub = ipaddress.ip_network(inner.cidr)
                return sub.version == net.version and sub.subnet_of(net)  # type: ignore[arg-type]
            if inner.host is not None:
                return ipaddress.ip_address(inner.host) in net
        except ValueError:
            return False  # a name: where it resolves is not known here
        return False
    if outer.host is None or inner.host is None:
        return False
    if outer.host == inner.host:
        return True
    if outer.host.startswith("*."):
        suffix = outer.host[1:]  # ".example.com"
        return inner.host.endswith(suffix) and inner.host != suffix[1:]
    return False


def network_covers(rules: Iterable[NetworkRule], rule: NetworkRule) -> NetworkRule | None:
    """The first rule that allows everything `rule` allows."""
    wanted = reach(rule)
    for r in rules:
        if _target_covers(r, rule) and _reach_covers(reach(r), wanted):
            return r
    return None


def _describe(rule: NetworkRule) -> str:
    parts = sorted(f"{p}:{'*' if port is None else port}" for p, port in reach(rule))
    return ", ".join(parts)


def _name(rule: NetworkRule) -> str:
    return rule.cidr or rule.host or rule.text


def _network(old: Policy, new: Policy) -> list[Change]:
    changes: list[Change] = []
    before: dict[str, list[NetworkRule]] = {}
    for r in old.network_allow:
        before.setdefault(_name(r), []).append(r)
    seen: set[str] = set()
    for r in new.network_allow:
        name = _name(r)
        same = before.get(name)
        if same is None:
            cover = network_covers(old.network_allow, r)
            changes.append(
                Change(
                    "added",
                    "network",
                    "allow",
                    r.text,
                    after=_describe(r),
                    covered_by=cover.text if cover else None,
                    wider=cover is None,
                )
            )
            continue
        seen.add(name)
        old_reach = frozenset().union(*(reach(o) for o in same))
        new_reach = reach(r)
        if new_reach == old_reach:
            continue
        more = not _reach_covers(old_reach, new_reach)
        changes.append(
            Change(
                "widened" if more else "narrowed",
                "network",
                "allow",
                r.text,
                before="; ".join(_describe(o) for o in same),
                after=_describe(r),
                wider=more,
            )
        )
    for name, rules in before.items():
        if name not in seen:
            changes += [Change("removed", "network", "allow", r.text, before=_describe(r)) for r in rules]
    old_deny = {(r.text, r.ports) for r in old.network_deny}
    new_deny = {(r.text, r.ports) for r in new.network_deny}
    changes += [Change("added", "network", "deny", t) for t, p in sorted(new_deny - old_deny)]
    changes += [Change("removed", "network", "deny", t, wider=True) for t, p in sorted(old_deny - new_deny)]
    return changes


# -- environment ----------------------------------------------------------------


def key_covers(rules: Iterable[KeyRule], key: str) -> KeyRule | None:
    """The first rule that grants every variable `key` (maybe a `PREFIX_*`) names."""
    for r in rules:
        if r.key == key or (r.key.endswith("*") and key.startswith(r.key[:-1])):
            return r
    return None


def _keys(
    old_allow: Sequence[KeyRule],
    new_allow: Sequence[KeyRule],
    old_deny: Sequence[KeyRule],
    new_deny: Sequence[KeyRule],
) -> list[Change]:
    changes: list[Change] = []
    before = {r.key for r in old_allow}
    after = {r.key for r in new_allow}
    for key in [r.key for r in new_allow if r.key not in before]:
        cover = key_covers(old_allow, key)
        changes.append(
            Change(
                "added",
                "environment",
                "allow",
                key,
                covered_by=cover.key if cover else None,
                wider=cover is None,
            )
        )
    changes += [Change("removed", "environment", "allow", r.key) for r in old_allow if r.key not in after]
    old_d = {r.key for r in old_deny}
    new_d = {r.key for r in new_deny}
    changes += [Change("added", "environment", "deny", r.key) for r in new_deny if r.key not in old_d]
    changes += [
        Change("removed", "environment", "deny", r.key, wider=key_covers(new_deny, r.key) is None)
        for r in old_deny
        if r.key not in new_d
    ]
    return changes


# -- resources ------------------------------------------------------------------


def _mib(n: int) -> str:
    return f"{n / 2**20:g}Mi" if n % 1024 == 0 else f"{n} bytes"


def _ms(n: int) -> str:
    return f"{n / 1000:g}s" if n % 100 == 0 else f"{n}ms"


def _cpu_ms(limits: Limits, timeout: int) -> int | None:
    if limits.cpu_time_ms is not None:
        return limits.cpu_time_ms
    if limits.cpu_cores is not None:
        return max(1, int(limits.cpu_cores * timeout))
    return None


def _limits(old: Limits, new: Limits, defaults: Limits) -> list[Change]:
    changes: list[Change] = []
    old_mem = old.memory_bytes or defaults.memory_bytes or 0
    new_mem = new.memory_bytes or defaults.memory_bytes or 0
    old_time = old.timeout_ms or defaults.timeout_ms or 0
    new_time = new.timeout_ms or defaults.timeout_ms or 0
    pairs: list[tuple[str, int | None, int | None, Any]] = [
        ("memory", old_mem, new_mem, _mib),
        ("timeout", old_time, new_time, _ms),
        ("cpu time", _cpu_ms(old, old_time), _cpu_ms(new, new_time), _ms),
    ]
    for name, a, b, show in pairs:
        if a == b:
            continue
        # No CPU budget means only the time limit bounds the call: unlimited.
        more = b is None or (a is not None and b > a)
        changes.append(
            Change(
                "widened" if more else "narrowed",
                "resources",
                "limits",
                name,
                before=show(a) if a is not None else "unlimited",
                after=show(b) if b is not None else "unlimited",
                wider=more,
            )
        )
    return changes
