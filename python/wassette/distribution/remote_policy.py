"""`wassette policy attach ID https://...|oci://...`: a policy from elsewhere,
verified before it is attached.

A policy decides what a component may reach, so one fetched from the network
is held to the trust configuration components are held to (`[signatures]`,
trust.py): it is taken when it matches a digest the user pinned
(`--digest sha256:...`, or an `oci://...@sha256:...` reference), or when its
OCI artifact carries a signature by a trusted signer (signatures.py, on the
manifest digest, as for components). Anything else is refused under mode
`require` (the default), taken with a warning under `warn`, silently under
`off`. An `https://` policy cannot carry a signature: pin it.

The OCI artifact is any manifest with one policy layer: the one `wassette
component publish --policy` writes (its component layer is not downloaded),
or a policy-only artifact.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from wassette.distribution import artifact, reference, signatures
from wassette.distribution.reference import DIGEST_RE
from wassette.distribution.registry import Descriptor, Manifest, RegistryClient
from wassette.distribution.sources import FetchOptions, http_client, trust_policy
from wassette.distribution.trust import TrustRule
from wassette.runtime import policy as policy_mod
from wassette.runtime.config import Settings
from wassette.runtime.errors import SourceError
from wassette.runtime.events import emit
from wassette.runtime.policy import Policy

REMOTE_SCHEMES = ("https://", "http://", "oci://")


@dataclass(frozen=True)
class RemotePolicy:
    policy: Policy
    source: str  # what was fetched (OCI: pinned to the manifest digest)
    verified: dict[str, Any]  # how: the digest pin, the signature check
    warnings: tuple[str, ...] = field(default=())


def is_remote(uri: str) -> bool:
    return uri.startswith(REMOTE_SCHEMES)


def fetch_policy(uri: str, settings: Settings, options: FetchOptions) -> RemotePolicy:
    """The policy at `uri`, validated and verified, or an error saying why not."""
    if options.digest is not None and not DIGEST_RE.match(options.digest):
        raise SourceError(f"--digest {options.digest!r} is not sha256: followed by 64 lowercase hex digits")
    if uri.startswith("oci://"):
        return _from_oci(uri, settings, options)
    return _from_https(uri, settings, options)


def _from_https(uri: str, settings: Settings, options: FetchOptions) -> RemotePolicy:
    http = http_client(settings, options)
    http.check_url(uri)
    resp = http.request("GET", uri, headers={"Accept": "application/yaml, text/yaml, */*"})
    if resp.status != 200:
        resp.close()
        raise SourceError(f"{uri}: HTTP {resp.status}")
    text = resp.read(artifact.MAX_POLICY_BYTES)
    digest = "sha256:" + hashlib.sha256(text).hexdigest()
    verified: dict[str, Any] = {"sha256": digest}
    warnings: list[str] = []
    if options.digest is not None:
        if options.digest != digest:
            raise SourceError(
                f"digest pin mismatch for {uri}: expected {options.digest}, the policy is {digest}"
            )
        verified["pinned"] = True
    else:
        parts = urlsplit(uri)
        rule = trust_policy(settings).rule_for(f"{parts.netloc}{parts.path}")
        verified.update(pinned=False, signature={"status": "unsigned", "mode": rule.mode})
        how = (
            f"check its content (now {digest}) and attach it with --digest {digest}, or publish it "
            "as a signed OCI artifact"
        )
        _apply_mode(rule, f"{uri} is not pinned, and an https:// policy carries no signature", how, warnings)
    return RemotePolicy(_parse(text, uri), uri, verified, tuple(warnings))


def _from_oci(uri: str, settings: Settings, options: FetchOptions) -> RemotePolicy:
    ref = reference.parse(uri)
    client = RegistryClient(ref, http_client(settings, options), credentials=options.credentials)
    manifest = client.manifest(ref.ref)
    layer = policy_layer(manifest, str(ref))
    pin = options.digest or ref.digest
    if options.digest is not None and options.digest not in (manifest.digest, layer.digest):
        raise SourceError(
            f"digest pin mismatch for {ref}: expected {options.digest}, the registry has manifest "
            f"{manifest.digest} (policy layer {layer.digest})"
        )
    pinned = ref.with_digest(manifest.digest)
    trust = trust_policy(settings)
    rule = trust.rule_for(ref.name)
    warnings: list[str] = []
    if rule.mode == "off":
        decision = signatures.Decision(True, None, None, "skipped")
    else:
        found = signatures.discover(client, manifest.digest)
        checks = signatures.check(found, manifest.digest, rule, trust.trusted_root)
        # Judged as `require` so an untrusted one is never "ok" here; the
        # rule's own mode decides below, once the pin has had its say.
        strict = TrustRule(rule.pattern, "require", rule.identities, rule.keys)
        decision = signatures.decide(checks, strict, f"the policy {pinned}")
        emit("signature_check", status=decision.status, tenant=settings.tenant or "")
    verified: dict[str, Any] = {
        "manifest_digest": manifest.digest,
        "sha256": layer.digest,
        "pinned": pin is not None,
        "signature": {"status": decision.status, "signer": decision.signer, "mode": rule.mode},
    }
    if not decision.ok and pin is None:
        problem = (decision.message or "not signed").removeprefix("refused: ")
        how = f"check it and attach it with --digest {manifest.digest}, or have it signed by a trusted signer"
        _apply_mode(rule, problem, how, warnings)
    text = client.blob(layer, limit=artifact.MAX_POLICY_BYTES)
    return RemotePolicy(_parse(text, str(pinned)), pinned.uri(), verified, tuple(warnings))


def policy_layer(manifest: Manifest, what: str) -> Descriptor:
    """The one policy layer of an artifact."""
    if "manifests" in manifest.doc:
        raise SourceError(f"{what} is an image index, not an artifact with a policy layer")
    layers_raw = manifest.doc.get("layers")
    if not isinstance(layers_raw, list):
        raise SourceError(f"{what} has no layers")
    layers = [Descriptor.parse(layer, f"{what} layer {i}") for i, layer in enumerate(layers_raw)]
    found = [d for d in layers if d.media_type in artifact.POLICY_LAYER_TYPES]
    if len(found) != 1:
        kinds = ", ".join(sorted({d.media_type for d in layers})) or "none"
        raise SourceError(
            f"{what} has {len(found)} policy layers (expected one of type {artifact.POLICY_LAYER}; "
            f"its layers: {kinds}); publish one with `wassette component publish --policy`"
        )
    return found[0]


def _apply_mode(rule: TrustRule, problem: str, how: str, warnings: list[str]) -> None:
    if rule.mode == "require":
        raise signatures.SignatureError(
            f'refused: {problem}. To attach it: {how}; or set signatures.mode = "warn" in config.toml '
            "(WASSETTE_SIGNATURES=warn) to take unverified policies"
        )
    if rule.mode == "warn":
        warnings.append(f"{problem} (attached anyway: signature mode is warn)")


def _parse(text: bytes, source: str) -> Policy:
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError:
        raise SourceError(f"{source}: the policy is not UTF-8 text") from None
    return policy_mod.parse(decoded, source=source)
