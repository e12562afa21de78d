"""From a validated policy to the effective policy the engine enforces.

Resolves what a policy leaves to the host: relative storage paths (against
the storage base), `~`, symlinks in granted paths, environment values (from
the configured sources and the component's secrets), and limits (policy, else
server defaults). The result is the plain structure `src/policy.rs` reads.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from wassette.runtime.policy import NetworkRule, Policy, StorageRule


def storage_paths(rule: StorageRule, base: Path) -> tuple[str, str]:
    """The absolute host path (or glob) a storage rule names: as written, and
    with symlinks in its fixed (non-glob) part resolved.

    `fs:///abs` is absolute; `fs://~/x` is under the home directory; any other
    `fs://rel/x` is relative to the storage base. Rules are enforced on the
    resolved form; the written form is where the guest also finds it.
    """
    raw = rule.path
    if raw.startswith("/"):
        path = raw
    elif raw == "~" or raw.startswith("~/"):
        path = os.path.expanduser(raw)
    else:
        path = str(base / raw)
    parts = path.split("/")
    fixed: list[str] = []
    rest: list[str] = []
    for i, part in enumerate(parts):
        if "*" in part:
            rest = parts[i:]
            break
        fixed.append(part)
    written = os.path.normpath("/".join(fixed) or "/")
    real = os.path.realpath(written)

    def with_globs(prefix: str) -> str:
        return "/".join([prefix.rstrip("/"), *rest]) if rest else prefix

    return with_globs(written), with_globs(real)


def resolution(policy: Policy, base: Path) -> tuple[tuple[str, str], ...]:
    """Where every storage rule of the policy leads now (symlinks followed):
    part of what an effective policy depends on besides the files."""
    return tuple(storage_paths(r, base) for r in (*policy.storage_allow, *policy.storage_deny))


def environment(
    policy: Policy, sources: Mapping[str, str], secrets: Mapping[str, str]
) -> list[tuple[str, str]]:
    """Granted variables from the sources, plus the component's own secrets;
    deny rules win over both."""
    out: dict[str, str] = {}
    for name, value in sources.items():
        if any(r.matches(name) for r in policy.env_allow) and not any(
            r.matches(name) for r in policy.env_deny
        ):
            out[name] = value
    for name, value in secrets.items():
        if not any(r.matches(name) for r in policy.env_deny):
            out[name] = value
    return sorted(out.items())


def build(
    policy: Policy,
    *,
    env_sources: Mapping[str, str],
    secrets: Mapping[str, str],
    storage_base: Path,
    memory_limit_bytes: int,
    timeout_ms: int,
) -> dict[str, Any]:
    limits = policy.limits
    timeout = limits.timeout_ms or timeout_ms
    cpu_time = limits.cpu_time_ms
    if cpu_time is None and limits.cpu_cores is not None:
        # `cpu: 500m` = half a core over the call's time window.
        cpu_time = max(1, int(limits.cpu_cores * timeout))
    storage_allow = []
    for r in policy.storage_allow:
        written, real = storage_paths(r, storage_base)
        storage_allow.append(
            {
                "path": real,
                # Reached through a symlink: the guest finds it where the user named it, too.
                "alias": written if written != real else None,
                "read": "read" in r.access,
                "write": "write" in r.access,
                "origin": r.origin,
            }
        )
    return {
        "env": [list(p) for p in environment(policy, env_sources, secrets)],
        "storage": {
            "allow": storage_allow,
            "deny": [
                {"path": storage_paths(r, storage_base)[1], "origin": r.origin} for r in policy.storage_deny
            ],
        },
        "network": {
            "allow": [_net(r) for r in policy.network_allow],
            "deny": [_net(r) for r in policy.network_deny],
        },
        "memory_limit_bytes": limits.memory_bytes or memory_limit_bytes,
        "timeout_ms": timeout,
        "cpu_time_ms": cpu_time,
    }


def _net(rule: NetworkRule) -> dict[str, Any]:
    """A rule that names no protocol grants what a plain host grant means:
    HTTP and HTTPS, and raw TCP to the same host on the same ports."""
    schemes, transports = rule.schemes, rule.transports
    if not schemes and not transports:
        schemes, transports = ("http", "https"), ("tcp",)
    return {
        "host": rule.host,
        "cidr": rule.cidr,
        "ports": list(rule.ports),
        "schemes": list(schemes),
        "transports": list(transports),
        "origin": rule.origin,
    }
