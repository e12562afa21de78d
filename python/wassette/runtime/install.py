"""Installing a component the distribution layer fetched (and verified):
compile, describe, decide on a shipped policy, write atomically, report.

Nothing is written unless every check passed; a load that replaces a
component says what changed about where it comes from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from wassette.runtime import mcp_exports
from wassette.runtime import policy as policy_mod
from wassette.runtime.errors import WassetteError
from wassette.runtime.policy import Policy, PolicyError
from wassette.runtime.quotas import check_install
from wassette.runtime.store import Metadata, valid_id

if TYPE_CHECKING:
    from wassette.runtime.policy_diff import PolicyDiff
    from wassette.runtime.runtime import Runtime


class Progress(Protocol):
    """A step (`message` alone) or bytes done of a step (`done`, `total`)."""

    def __call__(self, message: str, done: int | None = None, total: int | None = None) -> None: ...


def quiet(message: str, done: int | None = None, total: int | None = None) -> None:
    return None


@dataclass(frozen=True)
class Package:
    """A component as a source yields it: bytes, the id it would get,
    where it came from, and a policy it ships with (not yet accepted)."""

    component_id: str
    wasm: bytes
    source: str
    provenance: dict[str, Any] = field(default_factory=dict)
    policy: bytes | None = None
    warnings: tuple[str, ...] = ()


# Asked whether a policy shipped with a component may take effect: gets the
# component id and the policy, returns True to apply it now.
PolicyApproval = Callable[[str, Policy], bool]


@dataclass(frozen=True)
class InstallOptions:
    """An id to use instead of the derived one, what to do with a shipped
    policy (`accept_policy`: True, or a function that asks the user), and a
    policy to apply instead (from a provisioning manifest: the operator's word)."""

    component_id: str | None = None
    accept_policy: bool | PolicyApproval = False
    policy: Policy | None = None


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
    # A new version's shipped policy against the one in force (policy_diff.py).
    policy_diff: dict[str, Any] | None = None

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
        if self.policy_diff is not None:
            out["policy_diff"] = self.policy_diff
        return out


def install(runtime: Runtime, package: Package, options: InstallOptions, say: Progress) -> LoadReport:
    """Compiles, describes and installs a package; replaces a component with
    the same id."""
    cid = options.component_id or package.component_id
    if not valid_id(cid):
        raise WassetteError(f"{cid!r} is not a valid component id (letters, digits, _ . -)")
    shipped = None
    if package.policy is not None:
        try:
            shipped = policy_mod.parse(
                package.policy.decode("utf-8", "replace"), source=f"policy shipped with {package.source}"
            )
        except PolicyError as e:
            raise WassetteError(f"refused: {e}") from None
    say(f"compiling {cid} ({len(package.wasm)} bytes)")
    compiled = runtime.compiler.compile(package.wasm, cid)
    exports = mcp_exports.describe(compiled, package.wasm)
    warnings = list(package.warnings)
    previous = runtime.store.metadata(cid) or runtime.known(cid)
    if previous is not None:
        warnings += replacement_warnings(cid, previous, package)
    policy_state = "none"
    # What a new version's shipped policy adds to the one in force.
    upgrade = requested_change(runtime, cid, shipped) if shipped is not None else None
    if shipped is not None and options.policy is None:
        # May ask the user: before taking any lock.
        policy_state = _shipped_policy_state(runtime, cid, shipped, options.accept_policy)
    elif shipped is None and options.policy is None:
        warnings += _unbound_warning(runtime, cid, compiled.sha256)
    permissions = runtime.permissions
    with runtime.changing():
        runtime.store.ensure()
        with runtime.store.locked():
            check_install(runtime, cid, compiled.sha256)
            replaced = runtime.store.exists(cid)
            meta = runtime.store.install(
                cid,
                package.wasm,
                sha256=compiled.sha256,
                source=package.source,
                installed_at=datetime.now(UTC).isoformat(timespec="seconds"),
                exports=exports,
                provenance=package.provenance,
            )
            if options.policy is not None:
                text = policy_mod.dump(options.policy).encode()
                permissions.install_shipped(cid, text, source=package.source, accepted=True)
                policy_state = "applied"
            elif package.policy is not None and policy_state in ("applied", "pending"):
                permissions.install_shipped(
                    cid, package.policy, source=package.source, accepted=policy_state == "applied"
                )
            elif policy_state in ("none", "unchanged"):
                # A pending policy of an earlier version is no longer what this one ships.
                permissions.drop_pending(cid)
        runtime.installed(meta, compiled)
    if policy_state == "applied" and options.policy is None:
        runtime.audit.record("policy_accepted", component=cid, by="load", source=package.source)
    say(f"loaded {meta.id}")
    catalog = runtime.catalog
    warnings += [c for c in catalog.collisions if f" {meta.id}" in c or f"{meta.id}," in c]
    warnings += [
        f"export {export} is not offered as a tool: {why}"
        for c, export, why in catalog.skipped
        if c == meta.id
    ]
    if policy_state == "pending" and upgrade is not None:
        warnings.append(
            f"this version ships a policy wider than the one in force ({upgrade.summary()}); the "
            f"accepted policy stays in force until you accept the new one: `wassette policy diff {cid} "
            f"pending` shows the change, `wassette policy accept {cid}` applies it"
        )
    elif policy_state == "pending":
        warnings.append(
            f"the component ships a policy that is not applied until accepted: "
            f"{describe_permissions(shipped)}; run `wassette policy accept {cid}` to apply it"
        )
    return LoadReport(
        id=meta.id,
        tools=sorted(t.name for t in catalog.for_component(meta.id)),
        replaced=replaced,
        warnings=warnings,
        source=package.source,
        provenance=package.provenance,
        policy=policy_state,
        policy_diff=upgrade.to_json() if upgrade is not None and policy_state != "unchanged" else None,
    )


def _shipped_policy_state(runtime: Runtime, cid: str, shipped: Policy, accept: bool | PolicyApproval) -> str:
    """`unchanged` when the active policy already grants everything the
    shipped one asks for (the same policy, or a new version asking for no
    more), else `applied` when accepted (by flag or by the user), else
    `pending`: the policy in force stays until a person accepts."""
    change = requested_change(runtime, cid, shipped)
    if change is not None and not change.wider:
        return "unchanged"
    if accept is True or (callable(accept) and accept(cid, shipped)):
        return "applied"
    return "pending"


def requested_change(runtime: Runtime, cid: str, shipped: Policy) -> PolicyDiff | None:
    """What a shipped policy changes against the policy in force (None:
    there is none, or it cannot be read: the shipped one is all new)."""
    from wassette.runtime.policy_diff import diff

    permissions = runtime.permissions
    if not runtime.store.exists(cid) or not permissions.path(cid).exists():
        return None
    try:
        current = permissions.get(cid)
    except PolicyError:
        return None
    settings = runtime.settings
    defaults = policy_mod.Limits(memory_bytes=settings.memory_limit_bytes, timeout_ms=settings.timeout_ms)
    return diff(current, shipped, base=settings.storage_base, defaults=defaults)


def describe_request(runtime: Runtime, cid: str, shipped: Policy) -> str:
    """What a person is asked to accept, `; `-separated: every permission of
    a new policy, or what a new version's policy adds to the one in force."""
    change = requested_change(runtime, cid, shipped)
    if change is None:
        return describe_permissions(shipped)
    return "; ".join(c.line() for c in change.changes if c.wider) or "nothing beyond the policy in force"


def _unbound_warning(runtime: Runtime, cid: str, sha256: str) -> list[str]:
    """A new version that ships no policy runs under the one in force:
    said when that policy was granted for another digest."""
    if not runtime.store.exists(cid):
        return []
    bound = runtime.permissions.granted_for(cid)
    if bound is None or bound == sha256:
        return []
    return [
        f"the policy in force for {cid} was granted for sha256:{bound[:12]}…; this version "
        f"(sha256:{sha256[:12]}…) ships no policy and runs under it"
    ]


def replacement_warnings(cid: str, previous: Metadata, package: Package) -> list[str]:
    """Says when a reload changes what the id means: a tag that now points to
    another manifest, or a component from somewhere else entirely."""
    old, new = previous.provenance, package.provenance
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
    if previous.source != package.source and _origin(previous.source) != _origin(package.source):
        return [f"component {cid} (from {previous.source}) is replaced by the one from {package.source}"]
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
