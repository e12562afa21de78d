"""`wassette component publish FILE oci://...`: push a component (and its
policy) as a Wasm OCI artifact, with our own registry client: the push side of
the distribution API is three requests per blob and one for the manifest, on
the same authentication code the pulls use, so no extra dependency (oras-py
would bring requests and its own auth handling) is worth it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wassette.distribution import artifact, reference
from wassette.distribution.registry import OCI_MANIFEST, RegistryClient, sha256_digest
from wassette.distribution.sources import FetchOptions, http_client
from wassette.runtime import policy as policy_mod
from wassette.runtime.config import Settings
from wassette.runtime.errors import SourceError, WassetteError
from wassette.runtime.install import Progress

COMPONENT_PREAMBLE = b"\0asm\x0d\x00\x01\x00"
CORE_PREAMBLE = b"\0asm\x01\x00\x00\x00"


def read_component(path: Path, max_bytes: int) -> bytes:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise WassetteError(f"{path} is {size} bytes, over the limit of {max_bytes} bytes")
        data = path.read_bytes()
    except FileNotFoundError:
        raise WassetteError(f"no such file: {path}") from None
    except OSError as e:
        raise WassetteError(f"cannot read {path}: {e.strerror}") from None
    if data[:8] == CORE_PREAMBLE:
        raise WassetteError(
            f"{path} is a core WebAssembly module, not a component (wrap it with `wasm-tools component new`)"
        )
    if data[:8] != COMPONENT_PREAMBLE:
        raise WassetteError(f"{path} is not a WebAssembly component")
    return data


def publish(
    wasm_path: Path,
    uri: str,
    settings: Settings,
    *,
    policy_path: Path | None = None,
    options: FetchOptions | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    options = options or FetchOptions()
    ref = reference.parse(uri)
    if ref.digest:
        raise SourceError(f"{uri}: publish to a tag (oci://registry/repository:tag), not a digest")
    wasm = read_component(wasm_path, settings.max_component_bytes)
    policy = None
    if policy_path is not None:
        try:
            policy = policy_path.read_bytes()
        except OSError as e:
            raise WassetteError(f"cannot read {policy_path}: {e.strerror}") from None
        policy_mod.parse(policy.decode("utf-8", "replace"), source=str(policy_path))
    built = artifact.build(wasm, title=wasm_path.name, policy=policy)
    client = RegistryClient(ref, http_client(settings, options), credentials=options.credentials, push=True)
    for digest, blob in built.blobs.items():
        if progress:
            progress(f"uploading {digest[:19]}… ({len(blob)} bytes)")
        client.push_blob(blob)
    if progress:
        progress(f"pushing manifest {ref}")
    digest = client.push_manifest(built.manifest, OCI_MANIFEST, ref.tag)
    return {
        "status": "component published successfully",
        "reference": str(ref),
        "digest": digest,
        "uri": ref.with_digest(digest).uri(),
        "layers": [d for d in built.blobs if d != sha256_digest(built.config)],
    }
