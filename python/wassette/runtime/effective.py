"""From a validated policy to the effective policy the engine enforces.

Resolves what a policy leaves to the host: relative storage paths (against
the storage base), `~`, symlinks in granted paths, environment values (from
the configured sources and the component's secrets), and limits (policy, else
server defaults). The result is the plain structure `src/policy.rs` reads.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from wassette.runtime import policy as policy_mod
from wassette.runtime.config import Settings
from wassette.runtime.permissions import Permissions
from wassette.runtime.policy import NetworkRule, Policy, StorageRule
from wassette.runtime.secrets import SecretStore
from wassette.runtime.store import FileStamp, file_stamp


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


class EffectivePolicies:
    """Each component's policy and effective policy, kept until an input
    changes: the policy or secrets file (by stamp), environment overrides,
    or where a granted path leads (checked at every call, as symlinks may
    change). A grant made by another process applies from the next call."""

    def __init__(self, settings: Settings, permissions: Permissions, secrets: SecretStore) -> None:
        self.settings = settings
        self.permissions = permissions
        self.secrets = secrets
        self._policies: dict[str, tuple[FileStamp | None, Policy]] = {}
        self._effective: dict[str, tuple[tuple[object, ...], str]] = {}
        # Each component's policy and secrets file, as the str paths checked
        # at every call (building them with pathlib cost more than the stats).
        self._files: dict[str, tuple[str, str]] = {}
        self._env_overrides: dict[str, dict[str, str]] = {}
        self._env_version = 0

    def forget(self, component_id: str) -> None:
        self._policies.pop(component_id, None)
        self._effective.pop(component_id, None)

    def _stamped_files(self, component_id: str) -> tuple[str, str]:
        files = self._files.get(component_id)
        if files is None:
            files = (str(self.permissions.path(component_id)), str(self.secrets.path(component_id)))
            self._files[component_id] = files
        return files

    def entry(self, component_id: str) -> tuple[FileStamp | None, Policy]:
        """The component's policy and the stamp of the file it was read from."""
        key = file_stamp(self._stamped_files(component_id)[0])
        cached = self._policies.get(component_id)
        if cached is not None and cached[0] == key:
            return cached
        policy = self.permissions.get(component_id) if key is not None else policy_mod.empty()
        entry = (key, policy)
        self._policies[component_id] = entry
        return entry

    def policy(self, component_id: str) -> Policy:
        return self.entry(component_id)[1]

    def set_environment(self, component_id: str, values: Mapping[str, str]) -> None:
        self._env_overrides[component_id] = dict(values)
        self._env_version += 1

    def json(self, component_id: str) -> str:
        """The effective policy as the JSON text the engine reads."""
        return self.json_and_policy(component_id)[0]

    def json_and_policy(self, component_id: str) -> tuple[str, Policy]:
        """The effective policy's JSON text and the policy it comes from (one
        look at the files: this is on every call's path)."""
        policy_key, policy = self.entry(component_id)
        key = (
            policy_key,
            file_stamp(self._stamped_files(component_id)[1]),
            self._env_version,
            resolution(policy, self.settings.storage_base),
        )
        cached = self._effective.get(component_id)
        if cached is not None and cached[0] == key:
            return cached[1], policy
        text = json.dumps(self.build(component_id, policy))
        self._effective[component_id] = (key, text)
        return text, policy

    def build(self, component_id: str, policy: Policy | None = None) -> dict[str, Any]:
        """What the engine enforces for the next call of this component."""
        overrides = self._env_overrides.get(component_id)
        settings = self.settings
        return build(
            policy or self.policy(component_id),
            env_sources={**settings.environment, **overrides} if overrides else settings.environment,
            secrets=self.secrets.get(component_id),
            storage_base=settings.storage_base,
            memory_limit_bytes=settings.memory_limit_bytes,
            timeout_ms=settings.timeout_ms,
        )
