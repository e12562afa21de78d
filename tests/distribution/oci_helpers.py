"""Helpers shared by the distribution tests (the fixtures are in conftest.py)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SIGSTORE = FIXTURES / "sigstore"
USER, PASSWORD = "alice", "s3cret-pa55"


@dataclass
class Registry:
    host: str  # 127.0.0.1:PORT
    data: Path
    process: subprocess.Popen[bytes]
    log: Path
    auth: dict[str, Any] = field(default_factory=dict)

    def blob_path(self, digest: str) -> Path:
        hexd = digest.split(":", 1)[1]
        return self.data / "docker/registry/v2/blobs/sha256" / hexd[:2] / hexd / "data"


def unique_component(wasm: bytes, label: str) -> bytes:
    """The same component with a custom section naming `label`: different
    bytes (and blob digests) per test, so tests that tamper with a registry's
    storage never touch a blob another test uses."""
    name = b"wassette-test"
    payload = bytes([len(name)]) + name + label.encode()
    return wasm + b"\x00" + _leb(len(payload)) + payload


def _leb(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def write_config(home: Path, text: str) -> Path:
    path = home / "config" / "wassette" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def stored(component_dir: Path) -> list[str]:
    """Files in the component directory (the lock file aside)."""
    if not component_dir.exists():
        return []
    return sorted(p.name for p in component_dir.iterdir() if p.name != ".wassette.lock")


BUNDLE_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
EMPTY = b"{}"


def registry_client(host: str, repository: str) -> Any:
    """Our registry client, for pushes the CLI has no command for (signatures)."""
    from wassette.distribution.httpclient import HttpClient
    from wassette.distribution.reference import parse
    from wassette.distribution.registry import RegistryClient

    return RegistryClient(
        parse(f"{host}/{repository}:x"), HttpClient(allow_insecure_loopback=True), push=True
    )


def attach_bundle(
    host: str, repository: str, subject: str, subject_size: int, bundle: bytes, how: str
) -> None:
    """Attaches a Sigstore bundle to a manifest the way cosign 3 / oras do:
    `referrer` = a manifest with `subject` listed in the referrers tag schema
    index (`sha256-<hex>`, for registries without the referrers API);
    `sig-tag` = cosign's `sha256-<hex>.sig` tag."""
    import hashlib
    import json

    client = registry_client(host, repository)
    bundle_digest = client.push_blob(bundle)
    empty_digest = client.push_blob(EMPTY)
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": BUNDLE_TYPE,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty_digest, "size": 2},
        "layers": [{"mediaType": BUNDLE_TYPE, "digest": bundle_digest, "size": len(bundle)}],
    }
    tag = subject.replace(":", "-")
    if how == "sig-tag":
        client.push_manifest(json.dumps(manifest).encode(), OCI_MANIFEST, tag + ".sig")
        return
    manifest["subject"] = {"mediaType": OCI_MANIFEST, "digest": subject, "size": subject_size}
    raw = json.dumps(manifest).encode()
    digest = client.push_manifest(raw, OCI_MANIFEST, None)
    assert digest == "sha256:" + hashlib.sha256(raw).hexdigest()
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(raw), "artifactType": BUNDLE_TYPE}
        ],
    }
    client.push_manifest(json.dumps(index).encode(), OCI_INDEX, tag)


def cosign_sign(host: str, repository: str, digest: str, key: Any, workdir: Path) -> None:
    """A cosign key-pair signature, made as cosign makes it (simple-signing
    payload, ECDSA P-256/SHA-256, `sha256-<hex>.sig` tag), pushed with oras."""
    import base64
    import contextlib
    import json

    import oras.client
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    payload = json.dumps(
        {
            "critical": {
                "identity": {"docker-reference": f"{host}/{repository}"},
                "image": {"docker-manifest-digest": digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        }
    ).encode()
    signature = base64.b64encode(key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()
    (workdir / "payload.json").write_bytes(payload)
    (workdir / "annotations.json").write_text(
        json.dumps({"payload.json": {"dev.cosignproject.cosign/signature": signature}})
    )
    (workdir / "config.json").write_text("{}")
    with contextlib.chdir(workdir):  # oras wants paths relative to the working directory
        oras.client.OrasClient(hostname=host, insecure=True).push(
            target=f"{host}/{repository}:{digest.replace(':', '-')}.sig",
            files=["payload.json:application/vnd.dev.cosign.simplesigning.v1+json"],
            manifest_config="config.json:application/vnd.oci.image.config.v1+json",
            annotation_file="annotations.json",
        )
