"""The CNCF Wasm OCI artifact layout: what we accept when pulling and what we
write when publishing.

A manifest with config `application/vnd.wasm.config.v0+json` and one
`application/wasm` layer; optionally one policy layer
(`application/vnd.wasm.policy.v1+yaml`, the type Wassette uses). Published
manifests are byte-for-byte deterministic (no timestamps), so the same
component published twice has the same digest and keeps its signatures.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from wassette.distribution.registry import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    Manifest,
    sha256_digest,
)
from wassette.runtime.errors import SourceError

WASM_CONFIG = "application/vnd.wasm.config.v0+json"
WASM_LAYER = "application/wasm"
POLICY_LAYER = "application/vnd.wasm.policy.v1+yaml"
# Accepted from other publishers (Wassette's loader reads the same set).
WASM_LAYER_TYPES = (
    WASM_LAYER,
    "application/vnd.wasm.component.v1",
    "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm",
)
POLICY_LAYER_TYPES = (POLICY_LAYER, "application/vnd.wassette.policy+yaml", "application/x-yaml", "text/yaml")
CONFIG_TYPES = (WASM_CONFIG, "application/vnd.oci.image.config.v1+json")
TITLE = "org.opencontainers.image.title"
MAX_POLICY_BYTES = 1 << 20


@dataclass(frozen=True)
class WasmManifest:
    manifest: Manifest
    config: Descriptor
    wasm: Descriptor
    policy: Descriptor | None


def parse(manifest: Manifest, what: str) -> WasmManifest:
    """The wasm and policy layers of a manifest; a clear error for anything
    that is not a wasm artifact."""
    if manifest.media_type in (OCI_INDEX, DOCKER_LIST) or "manifests" in manifest.doc:
        raise SourceError(
            f"{what} is an image index (a multi-platform image), not a wasm artifact; "
            f"push the component with `wassette component publish`"
        )
    if manifest.media_type not in (OCI_MANIFEST, DOCKER_MANIFEST, ""):
        raise SourceError(f"{what} has unsupported manifest media type {manifest.media_type!r}")
    config = Descriptor.parse(manifest.doc.get("config"), f"{what} config")
    layers_raw = manifest.doc.get("layers")
    if not isinstance(layers_raw, list) or not layers_raw:
        raise SourceError(f"{what} has no layers")
    layers = [Descriptor.parse(layer, f"{what} layer {i}") for i, layer in enumerate(layers_raw)]
    wasm = [d for d in layers if d.media_type in WASM_LAYER_TYPES]
    policy = [d for d in layers if d.media_type in POLICY_LAYER_TYPES]
    if not wasm:
        found = ", ".join(sorted({d.media_type for d in layers}))
        raise SourceError(
            f"{what} is not a wasm component artifact: its layers are {found} (expected {WASM_LAYER}); "
            f"config is {config.media_type}"
        )
    if len(wasm) > 1:
        raise SourceError(f"{what} has {len(wasm)} wasm layers; a component artifact has exactly one")
    if len(policy) > 1:
        raise SourceError(f"{what} has {len(policy)} policy layers; expected at most one")
    if config.media_type not in CONFIG_TYPES:
        raise SourceError(f"{what} has config media type {config.media_type!r} (expected {WASM_CONFIG})")
    return WasmManifest(manifest=manifest, config=config, wasm=wasm[0], policy=policy[0] if policy else None)


def _dumps(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Built:
    """A ready-to-push artifact: blobs by digest and the manifest bytes."""

    config: bytes
    blobs: dict[str, bytes]
    manifest: bytes

    @property
    def digest(self) -> str:
        return sha256_digest(self.manifest)


def build(wasm: bytes, *, title: str, policy: bytes | None = None) -> Built:
    """The manifest, config and layers for a component (and its policy)."""
    wasm_digest = sha256_digest(wasm)
    config = _dumps({"architecture": "wasm", "os": "wasip2", "layerDigests": [wasm_digest]})
    layers: list[dict[str, Any]] = [
        {"mediaType": WASM_LAYER, "digest": wasm_digest, "size": len(wasm), "annotations": {TITLE: title}}
    ]
    blobs = {sha256_digest(config): config, wasm_digest: wasm}
    if policy is not None:
        pd = sha256_digest(policy)
        layers.append(
            {
                "mediaType": POLICY_LAYER,
                "digest": pd,
                "size": len(policy),
                "annotations": {TITLE: "policy.yaml"},
            }
        )
        blobs[pd] = policy
    manifest = _dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": WASM_CONFIG, "digest": sha256_digest(config), "size": len(config)},
            "layers": layers,
        }
    )
    return Built(config=config, blobs=blobs, manifest=manifest)
