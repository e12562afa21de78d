"""Learning the least policy a component needs (`wassette policy learn`).

From what the component tried: the refusals in the audit log, and/or the
component's recorded cases (runtime/cases.py) run in a learning sandbox. A
learning run starts from a scratch policy that holds only the deny rules of
the policy in force (the person's word; they only narrow), runs every case,
and widens the scratch policy with exactly each refused item (the path with
the access refused, the scheme://host:port, the address and port), then runs
again, until no case is refused anything new or a bound on rounds is hit.
The scratch policy lives in a private runtime (callers give `learn` a
`call` that runs a case under a policy document there): nothing is granted
to the installed component, and the proposal is only printed.

Environment variables are not observable one by one (a guest gets its whole
environment at once), so they are learned by elimination: the candidates
(the keys the person offers with --env, and those the current policy grants
by name) are all offered, then each is withheld in turn, and a key whose
absence changes no case's outcome is left out.

The proposal collapses storage grants (several paths under one directory ->
the directory, per access kind), writes paths under the storage base as
relative `fs://` URIs, and sets memory and timeout limits from what the
cases used, with headroom (twice the peak, rounded up).
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from wassette.runtime.calls import CallResult, network_target
from wassette.runtime.cases import Case

# Several paths under one directory become the directory (per access kind).
COLLAPSE_AT = 3
MAX_ROUNDS = 8
# Timeouts are rounded up to one of these (ms): a person reads "5s", not
# "3862ms"; at least 2 s, as a busy host can stretch a short call tenfold.
_TIMEOUT_STEPS = (2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 1_800_000)


class Grants:
    """The scratch grants: exactly the items refused so far."""

    def __init__(self) -> None:
        self.storage: dict[str, set[str]] = {}  # host path -> read/write
        self.network: dict[str, dict[str, Any]] = {}  # rule text -> rule
        # A refusal no grant can lift (a deny rule, serving, one that stayed
        # refused with its grant): what it was -> why.
        self.unlearnable: dict[str, str] = {}
        # Grants made this round: a second refusal of the same item in the
        # round that granted it is no sign that the grant did not help.
        self._fresh: set[str] = set()

    def next_round(self) -> None:
        self._fresh = set()

    def add(self, denial: Mapping[str, Any]) -> bool:
        """Widens with what `denial` refused; True when that is new."""
        what = f"{denial.get('kind')} {denial.get('access')} of {denial.get('resource')}"
        if denial.get("rule"):
            self.unlearnable[what] = f"denied by {denial['rule']}: no grant overrides a deny rule"
            return False
        grant = grant_for(denial)
        if grant is None:
            self.unlearnable[what] = str(denial.get("reason") or "no grant allows it")
            return False
        if grant[0] == "storage":
            path, access = grant[1], grant[2]
            have = self.storage.setdefault(path, set())
            key = f"{access} {path}"
            if access in have:
                return self._stuck(key, what, denial)
            have.add(access)
        else:
            rule = grant[1]
            key = _rule_key(rule)
            if key in self.network:
                return self._stuck(key, what, denial)
            self.network[key] = rule
        self._fresh.add(key)
        return True

    def _stuck(self, key: str, what: str, denial: Mapping[str, Any]) -> bool:
        if key not in self._fresh:
            self.unlearnable[what] = f"still refused with its grant: {denial.get('reason')}"
        return False

    def document(self, carried: Mapping[str, Any], env: Iterable[str]) -> dict[str, Any]:
        """The scratch policy: these grants, the carried deny rules, `env`."""
        perms = _deny_rules(carried)
        storage = [
            {"uri": "fs://" + path, "access": sorted(access)} for path, access in sorted(self.storage.items())
        ]
        _put(perms, "storage", "allow", storage)
        _put(perms, "network", "allow", list(self.network.values()))
        _put(perms, "environment", "allow", [{"key": k} for k in sorted(set(env))])
        return {"version": "1.0", "permissions": perms}


def grant_for(denial: Mapping[str, Any]) -> tuple[str, Any, str] | None:
    """The one grant that would allow a refused access, or None:
    ("storage", host path, read|write) or ("network", rule, "")."""
    kind, access = denial.get("kind"), str(denial.get("access", ""))
    resource = str(denial.get("resource", ""))
    if kind == "storage":
        # Where a symlink or `..` led is what needs the grant.
        path = str(denial.get("resolved") or resource)
        return ("storage", os.path.normpath(path), "write" if access == "write" else "read")
    if kind != "network" or access in ("bind", "listen"):
        return None
    if access == "http":
        target = network_target(resource)
        return ("network", {"host": target}, "") if target else None
    if access in ("tcp connect", "udp send"):
        host, _, port = resource.rpartition(":")
        if not port.isdigit() or not host:
            return None
        transport = "tcp" if access == "tcp connect" else "udp"
        return ("network", {"host": host.strip("[]"), "protocols": [transport], "ports": [int(port)]}, "")
    if access == "name lookup" and resource:
        # Raw sockets to the addresses the name resolves to; narrowed to the
        # ports used once they are seen (see `proposal`).
        return ("network", {"host": resource, "protocols": ["tcp"]}, "")
    return None


def _rule_key(rule: Mapping[str, Any]) -> str:
    return f"{rule.get('host')} {rule.get('protocols', '')} {rule.get('ports', '')}"


def _put(perms: dict[str, Any], section: str, kind: str, rules: list[Any]) -> None:
    if rules:
        perms.setdefault(section, {})[kind] = rules


def _deny_rules(document: Mapping[str, Any]) -> dict[str, Any]:
    """The deny rules of a policy document, alone."""
    perms = document.get("permissions") or {}
    out: dict[str, Any] = {}
    for section in ("storage", "network", "environment"):
        deny = (perms.get(section) or {}).get("deny")
        if deny:
            out[section] = {"deny": copy.deepcopy(deny)}
    return out


# -- learning from cases --------------------------------------------------------------

Call = Callable[[Case, dict[str, Any]], CallResult]


class Learning(NamedTuple):
    grants: Grants
    env: tuple[str, ...]  # the environment keys some case needs
    results: tuple[CallResult, ...]  # the last round's, one per learned case
    rounds: int
    settled: bool  # the last round was refused nothing new


def learns_from(case: Case) -> bool:
    """A case that expects a refusal exists to check it: not learned from."""
    return "denied" not in case.expect


def learn(
    call: Call,
    cases: Sequence[Case],
    *,
    carried: Mapping[str, Any],
    grants: Grants | None = None,
    env: Sequence[str] = (),
    max_rounds: int = MAX_ROUNDS,
) -> Learning:
    """Runs the cases, widening the scratch policy with each refused item,
    until nothing new is refused (or `max_rounds`); then drops the
    environment keys no case needs."""
    grants = grants or Grants()
    chosen = [c for c in cases if learns_from(c)]
    results: list[CallResult] = []
    rounds, settled = 0, False
    while rounds < max_rounds and not settled:
        rounds += 1
        document = grants.document(carried, env)
        results = [call(case, document) for case in chosen]
        grants.next_round()
        new = False
        for result in results:
            for denial in result.denials:
                new = grants.add(denial) or new
        settled = not new
    needed = _needed_env(call, chosen, grants, carried, list(env), results) if env and settled else list(env)
    return Learning(grants, tuple(needed), tuple(results), rounds, settled)


def _signature(result: CallResult, value: bool) -> tuple[Any, ...]:
    """What a case's outcome says about the sandbox (and its value, when
    the value is the same on every run)."""
    return (
        result.status,
        repr(result.value) if value else None,
        sorted((str(d.get("kind")), str(d.get("access")), str(d.get("resource"))) for d in result.denials),
        sorted((str(e.get("transport")), str(e.get("host")), int(e.get("port", 0))) for e in result.egress),
        sorted(str(a.get("resource")) for a in result.accesses),
    )


def _needed_env(
    call: Call,
    cases: Sequence[Case],
    grants: Grants,
    carried: Mapping[str, Any],
    env: list[str],
    baseline: Sequence[CallResult],
) -> list[str]:
    """Withholds each key in turn; keeps those whose absence changes an outcome."""
    document = grants.document(carried, env)
    again = [call(case, document) for case in cases]
    # A value that differs between two identical runs (a clock, a random
    # number) says nothing about the environment: not compared.
    stable = [repr(a.value) == repr(b.value) for a, b in zip(baseline, again, strict=True)]
    expected = [_signature(r, s) for r, s in zip(baseline, stable, strict=True)]
    kept = list(env)
    for key in env:
        trial = [k for k in kept if k != key]
        document = grants.document(carried, trial)
        outcome = [_signature(call(case, document), s) for case, s in zip(cases, stable, strict=True)]
        if outcome == expected:
            kept = trial
    return kept


# -- learning from the audit log ------------------------------------------------------


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`--since`: an ISO 8601 time, or an age like 30m, 2h, 7d."""
    from wassette.runtime.errors import WassetteError

    now = now or datetime.now(UTC)
    text = text.strip()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text[:-1].isdigit() and text[-1:] in units:
        return now - timedelta(seconds=int(text[:-1]) * units[text[-1]])
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise WassetteError(
            f"--since {text!r}: give a time (2026-11-22T10:00) or an age (30m, 2h, 7d)"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def from_audit(
    records: Iterable[Mapping[str, Any]], grants: Grants, since: datetime | None = None
) -> tuple[int, list[str]]:
    """Widens `grants` with the refusals recorded in the audit log (newer
    than `since`); returns how many were read and the statuses of stopped
    calls (`out_of_memory`, `timeout`, `cpu_limit`)."""
    count, stopped = 0, []
    for record in records:
        if since is not None:
            try:
                when = datetime.fromisoformat(str(record.get("ts")))
            except ValueError:
                continue
            if when < since:
                continue
        if record.get("event") == "denied":
            count += 1
            grants.add(record)
        elif record.get("event") == "stopped":
            stopped.append(str(record.get("status")))
    return count, stopped


# -- the proposal -----------------------------------------------------------------------


def collapse(entries: Mapping[str, set[str]], at: int = COLLAPSE_AT) -> dict[str, set[str]]:
    """Several paths under one directory -> that directory, per access kind
    (read and write apart: reading many files and writing one does not
    make the directory writable). Never to `/`, a top-level directory or
    the home directory: too much for what a few files justify."""
    home = os.path.expanduser("~")
    out: dict[str, set[str]] = {}
    for kind in ("read", "write"):
        paths = _outermost(p for p, access in entries.items() if kind in access)
        while True:
            by_parent: dict[str, list[str]] = {}
            for p in paths:
                by_parent.setdefault(os.path.dirname(p), []).append(p)
            parent = next(
                (
                    d
                    for d, kids in sorted(by_parent.items())
                    if len(kids) >= at and d.count("/") >= 2 and d != home
                ),
                None,
            )
            if parent is None:
                break
            paths = _outermost([*paths, parent])
        for p in paths:
            out.setdefault(p, set()).add(kind)
    return out


def _outermost(paths: Iterable[str]) -> list[str]:
    """The paths no other path of the list contains (a path reaches what is below it)."""
    result: list[str] = []
    for p in sorted(set(paths)):
        if not any(p == q or p.startswith(q.rstrip("/") + "/") for q in result):
            result.append(p)
    return result


def storage_uri(path: str, base: Path) -> str:
    """`fs://rel` for a path under the storage base (so the policy moves
    with it, like a hand-written one), else `fs:///abs/path`."""
    try:
        rel = Path(path).relative_to(base)
    except ValueError:
        return "fs://" + path
    return "fs://" + str(rel) if str(rel) != "." else "fs://" + path


# The least memory limit proposed: a few cases of a small component peak at
# a few hundred KiB, and a limit that tight would fail on its next input.
MIN_MEMORY_MIB = 16


def memory_limit(peak_bytes: int) -> str:
    """Twice the peak, rounded up to a power of two in MiB (at least 16Mi)."""
    mib = max(MIN_MEMORY_MIB, math.ceil(2 * peak_bytes / 2**20))
    return f"{2 ** math.ceil(math.log2(mib))}Mi"


def timeout_limit(longest_ms: float) -> str:
    """Twice the longest call, rounded up to a step (at least 2s)."""
    need = 2 * longest_ms
    ms = next((s for s in _TIMEOUT_STEPS if s >= need), 3_600_000)
    return f"{ms // 1000}s" if ms < 120_000 else f"{ms // 60_000}m"


def proposal(
    grants: Grants,
    *,
    carried: Mapping[str, Any],
    env: Iterable[str],
    base: Path,
    results: Sequence[CallResult] = (),
    stopped: Sequence[str] = (),
    current_limits: tuple[int, int] | None = None,
    description: str = "",
) -> dict[str, Any]:
    """The proposed policy document. `results`: the learned cases' last
    calls (memory, time, ports used); `stopped`: statuses of audited calls
    the sandbox stopped, with `current_limits` (memory bytes, timeout ms in
    force) to raise."""
    perms = _deny_rules(carried)
    storage = [
        {"uri": storage_uri(path, base), "access": sorted(access)}
        for path, access in sorted(collapse(grants.storage).items())
    ]
    _put(perms, "storage", "allow", storage)
    _put(perms, "network", "allow", _network_rules(grants, results))
    _put(perms, "environment", "allow", [{"key": k} for k in sorted(set(env))])
    limits: dict[str, str] = {}
    if results:
        limits["memory"] = memory_limit(max(r.memory_bytes for r in results))
        limits["timeout"] = timeout_limit(max(r.duration_ms for r in results))
    if current_limits is not None:
        # A call the sandbox stopped needed more than it had: double it.
        memory, timeout = current_limits
        if "out_of_memory" in stopped:
            doubled = memory_limit(memory)
            if "memory" not in limits or _mi(doubled) > _mi(limits["memory"]):
                limits["memory"] = doubled
        if "timeout" in stopped:
            doubled = timeout_limit(timeout)
            if "timeout" not in limits or _s(doubled) > _s(limits["timeout"]):
                limits["timeout"] = doubled
    if limits:
        perms["resources"] = {"limits": limits}
    doc: dict[str, Any] = {"version": "1.0"}
    if description:
        doc["description"] = description
    doc["permissions"] = perms
    return doc


def _mi(text: str) -> int:
    return int(text[:-2])


def _s(text: str) -> int:
    return int(text[:-1]) * (60 if text.endswith("m") else 1)


def _network_rules(grants: Grants, results: Sequence[CallResult]) -> list[dict[str, Any]]:
    """The network grants; a name granted for raw sockets is narrowed to
    the TCP ports the cases connected to (addresses granted by IP aside)."""
    rules = [copy.deepcopy(r) for r in grants.network.values()]
    by_ip = {str(r["host"]) for r in rules if r.get("ports")}
    ports = sorted(
        {
            int(e["port"])
            for result in results
            for e in result.egress
            if e.get("transport") == "tcp" and str(e.get("host")) not in by_ip
        }
    )
    for r in rules:
        if r.get("protocols") == ["tcp"] and "ports" not in r and ports:
            r["ports"] = ports
    return rules
