"""Granting and revoking permissions: the one implementation behind the CLI
(`wassette permission ...`, `wassette policy ...`) and the MCP built-in tools.

Each change reads the component's `<id>.policy.yaml`, edits the document,
validates the result (a change that would make the policy invalid is
refused, the file untouched) and writes it atomically under the store lock.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wassette.runtime import policy as policy_mod
from wassette.runtime.audit import AuditLog
from wassette.runtime.errors import UnknownComponentError, WassetteError
from wassette.runtime.policy import Policy, PolicyError
from wassette.runtime.store import ComponentStore, write_atomic

POLICY_SUFFIX = ".policy.yaml"
POLICY_META_SUFFIX = ".policy.meta.json"
# A policy shipped with a component (an OCI policy layer) that the user has
# not accepted yet: stored, shown, but not enforced.
PENDING_SUFFIX = ".policy.pending.yaml"


class Permissions:
    """Every change is recorded in the audit log with who asked for it
    (`cli`, `mcp`)."""

    def __init__(self, store: ComponentStore, audit: AuditLog) -> None:
        self.store = store
        self.audit = audit

    # -- reading ---------------------------------------------------------

    def path(self, component_id: str) -> Path:
        return self.store.path(component_id, POLICY_SUFFIX)

    def get(self, component_id: str) -> Policy:
        """The component's policy (an empty one when it has none)."""
        self._require(component_id)
        path = self.path(component_id)
        if not path.exists():
            return policy_mod.empty()
        return policy_mod.load_file(path)

    def _require(self, component_id: str) -> None:
        if not self.store.exists(component_id):
            raise UnknownComponentError(component_id)

    # -- changes ---------------------------------------------------------

    def _change(self, component_id: str, edit: Callable[[dict[str, Any]], None]) -> Policy:
        with self.store.locked():
            current = self.get(component_id)
            doc = copy.deepcopy(current.document)
            edit(doc)
            updated = policy_mod.validate(doc, source=str(self.path(component_id)))
            write_atomic(self.path(component_id), policy_mod.dump(updated).encode())
            self._bind(component_id)
            return updated

    # -- the component digest a policy was granted for --------------------

    def granted_for(self, component_id: str) -> str | None:
        """The sha256 of the component the policy in force was attached,
        accepted or last changed for (None: not recorded)."""
        try:
            meta = json.loads(self.store.path(component_id, POLICY_META_SUFFIX).read_bytes())
        except (OSError, ValueError):
            return None
        digest = meta.get("component_sha256") if isinstance(meta, dict) else None
        return str(digest) if digest else None

    def _bind(self, component_id: str, meta: dict[str, Any] | None = None) -> None:
        """Records the installed component's digest with its policy (call
        under `store.locked()`): `meta` is written with it, else the
        recorded one is kept."""
        path = self.store.path(component_id, POLICY_META_SUFFIX)
        if meta is None:
            try:
                meta = json.loads(path.read_bytes())
            except (OSError, ValueError):
                meta = {}
        installed = self.store.metadata(component_id)
        if isinstance(meta, dict) and installed is not None:
            meta["component_sha256"] = installed.sha256
        write_atomic(path, json.dumps(meta).encode())

    def _granted(self, component_id: str, details: dict[str, Any], by: str) -> dict[str, Any]:
        self.audit.record("granted", component=component_id, by=by, details=details)
        return {"status": "permission granted successfully", "component_id": component_id, "details": details}

    @staticmethod
    def _rules(doc: dict[str, Any], section: str, kind: str) -> list[dict[str, Any]]:
        perms = doc.setdefault("permissions", {}) or {}
        doc["permissions"] = perms
        sec = perms.setdefault(section, {}) or {}
        perms[section] = sec
        rules = sec.setdefault(kind, []) or []
        sec[kind] = rules
        return rules

    def grant_storage(
        self, component_id: str, uri: str, access: list[str], *, by: str = "cli"
    ) -> dict[str, Any]:
        if not access:
            raise PolicyError("--access must name read and/or write")

        def edit(doc: dict[str, Any]) -> None:
            rules = self._rules(doc, "storage", "allow")
            for r in rules:
                if isinstance(r, dict) and r.get("uri") == uri:
                    have = r.get("access") or []
                    r["access"] = [a for a in policy_mod.ACCESS if a in have or a in access]
                    return
            rules.append({"uri": uri, "access": [a for a in policy_mod.ACCESS if a in access] or access})

        self._change(component_id, edit)
        return self._granted(component_id, {"uri": uri, "access": access}, by)

    def grant_network(self, component_id: str, host: str, *, by: str = "cli") -> dict[str, Any]:
        def edit(doc: dict[str, Any]) -> None:
            rules = self._rules(doc, "network", "allow")
            key = "cidr" if "/" in host and "://" not in host else "host"
            if not any(isinstance(r, dict) and r.get(key) == host for r in rules):
                rules.append({key: host})

        self._change(component_id, edit)
        return self._granted(component_id, {"host": host}, by)

    def grant_environment(self, component_id: str, key: str, *, by: str = "cli") -> dict[str, Any]:
        def edit(doc: dict[str, Any]) -> None:
            rules = self._rules(doc, "environment", "allow")
            if not any(isinstance(r, dict) and r.get("key") == key for r in rules):
                rules.append({"key": key})

        self._change(component_id, edit)
        return self._granted(component_id, {"key": key}, by)

    def grant_memory(self, component_id: str, limit: str, *, by: str = "cli") -> dict[str, Any]:
        policy_mod.parse_quantity(limit, "memory limit")

        def edit(doc: dict[str, Any]) -> None:
            perms = doc.setdefault("permissions", {}) or {}
            doc["permissions"] = perms
            resources = perms.setdefault("resources", {}) or {}
            perms["resources"] = resources
            limits = resources.setdefault("limits", {}) or {}
            resources["limits"] = limits
            limits["memory"] = limit

        self._change(component_id, edit)
        return self._granted(component_id, {"memory": limit}, by)

    def _revoke(self, component_id: str, section: str, field: str, value: str, by: str) -> dict[str, Any]:
        found = False

        def edit(doc: dict[str, Any]) -> None:
            nonlocal found
            rules = self._rules(doc, section, "allow")
            kept = [r for r in rules if not (isinstance(r, dict) and r.get(field) == value)]
            found = len(kept) != len(rules)
            rules[:] = kept

        self._change(component_id, edit)
        if not found:
            raise WassetteError(f"component {component_id} has no {section} permission for {value!r}")
        self.audit.record("revoked", component=component_id, by=by, kind=section, details={field: value})
        return {
            "status": "permission revoked successfully",
            "component_id": component_id,
            "details": {field: value},
        }

    def revoke_storage(self, component_id: str, uri: str, *, by: str = "cli") -> dict[str, Any]:
        return self._revoke(component_id, "storage", "uri", uri, by)

    def revoke_network(self, component_id: str, host: str, *, by: str = "cli") -> dict[str, Any]:
        field = "cidr" if "/" in host and "://" not in host else "host"
        return self._revoke(component_id, "network", field, host, by)

    def revoke_environment(self, component_id: str, key: str, *, by: str = "cli") -> dict[str, Any]:
        return self._revoke(component_id, "environment", "key", key, by)

    def reset(self, component_id: str, *, by: str = "cli") -> dict[str, Any]:
        """Removes every permission: the component is back to deny-all."""
        self._require(component_id)
        with self.store.locked():
            for suffix in (POLICY_SUFFIX, POLICY_META_SUFFIX):
                self.store.path(component_id, suffix).unlink(missing_ok=True)
        self.audit.record("reset", component=component_id, by=by)
        return {"status": "permissions reset successfully", "component_id": component_id}

    def attach(self, component_id: str, source: Path, *, by: str = "cli") -> dict[str, Any]:
        """Installs a policy file for a component (validated first)."""
        self._require(component_id)
        return self.attach_policy(
            component_id, policy_mod.load_file(source), source.resolve().as_uri(), by=by
        )

    def attach_policy(
        self,
        component_id: str,
        policy: Policy,
        source: str,
        *,
        by: str = "cli",
        verified: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Installs a validated policy; `verified`: how a remote one was
        checked (digest pin, signature), kept with it and audited."""
        self._require(component_id)
        extra = {"verified": verified} if verified is not None else {}
        with self.store.locked():
            write_atomic(self.path(component_id), policy_mod.dump(policy).encode())
            meta = {
                "source": source,
                "attached_at": datetime.now(UTC).isoformat(timespec="seconds"),
                **extra,
            }
            self._bind(component_id, meta)
        self.audit.record("policy_attached", component=component_id, by=by, source=source, **extra)
        return {
            "status": "policy attached successfully",
            "component_id": component_id,
            "source": source,
            **extra,
        }

    # -- policies shipped with components ----------------------------------

    def pending(self, component_id: str) -> Policy | None:
        """The shipped policy waiting for acceptance, if any."""
        self._require(component_id)
        path = self.store.path(component_id, PENDING_SUFFIX)
        return policy_mod.load_file(path) if path.exists() else None

    def install_shipped(self, component_id: str, text: bytes, *, source: str, accepted: bool) -> None:
        """Stores a shipped policy as the active one (accepted) or as pending
        (call under `store.locked()`)."""
        pending = self.store.path(component_id, PENDING_SUFFIX)
        if not accepted:
            write_atomic(pending, text)
            return
        write_atomic(self.path(component_id), text)
        meta = {"source": source, "attached_at": datetime.now(UTC).isoformat(timespec="seconds")}
        self._bind(component_id, meta)
        pending.unlink(missing_ok=True)

    def drop_pending(self, component_id: str) -> None:
        """Forgets a pending policy (call under `store.locked()`)."""
        self.store.path(component_id, PENDING_SUFFIX).unlink(missing_ok=True)

    def accept_pending(self, component_id: str, *, by: str = "cli") -> dict[str, Any]:
        """Makes the pending shipped policy the component's policy."""
        with self.store.locked():
            policy = self.pending(component_id)
            if policy is None:
                raise WassetteError(f"component {component_id} has no policy waiting for acceptance")
            text = self.store.path(component_id, PENDING_SUFFIX).read_bytes()
            self.install_shipped(component_id, text, source="shipped with the component", accepted=True)
        self.audit.record("policy_accepted", component=component_id, by=by)
        return {"status": "policy accepted", "component_id": component_id, "policy": policy.document}
