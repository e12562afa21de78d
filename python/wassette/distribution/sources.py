"""Turns a component URI into bytes, an id and a recorded provenance.

`file://` (or a path to a .wasm), `https://`, `oci://registry/repo:tag`,
`oci://registry/repo@sha256:...` and a bare `registry/repo:tag`. Nothing here
writes to the component store: a fetch that fails leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from wassette.distribution import artifact, reference, signatures
from wassette.distribution.auth import Credentials
from wassette.distribution.httpclient import HttpClient
from wassette.distribution.reference import DIGEST_RE, Reference
from wassette.distribution.registry import RegistryClient
from wassette.distribution.trust import TrustPolicy, TrustRule
from wassette.runtime.config import Settings
from wassette.runtime.errors import SourceError
from wassette.runtime.events import emit
from wassette.runtime.install import Package, Progress
from wassette.runtime.install import quiet as _quiet

SUPPORTED_SCHEMES = ("file://", "https://", "oci://")


@dataclass(frozen=True)
class FetchOptions:
    credentials: Credentials | None = None
    allow_insecure_loopback: bool | None = None  # None: as configured
    digest: str | None = None  # an expected sha256 (manifest or wasm)


def component_id_for(path: Path) -> str:
    """The Wassette convention: the file stem, made safe as a file name."""
    stem = path.name[: -len(".wasm")] if path.name.endswith(".wasm") else path.stem
    return safe_id(stem)


def safe_id(name: str) -> str:
    cid = re.sub(r"[^A-Za-z0-9_.-]", "_", name).lstrip(".")
    if not cid:
        raise SourceError(f"cannot derive a component id from {name!r}")
    return cid[:128].rstrip(".")


def local_path(uri: str) -> Path | None:
    """The file a `file://` URI (or plain path to a .wasm file) names, if any."""
    if uri.startswith("file://"):
        parts = urlsplit(uri)
        if parts.netloc and parts.netloc not in ("localhost",):
            # `file://relative/dir/x.wasm` and `file://./x.wasm`: a relative path.
            return Path(unquote(parts.netloc + parts.path))
        return Path(unquote(parts.path))
    # `my.dir/tool.wasm` could also read as a registry reference: an existing file wins.
    if (
        "://" not in uri
        and uri.endswith(".wasm")
        and (Path(uri).exists() or not reference.looks_like_reference(uri))
    ):
        return Path(uri)
    return None


def is_oci(uri: str) -> bool:
    return uri.startswith("oci://") or (reference.looks_like_reference(uri) and local_path(uri) is None)


def http_client(settings: Settings, options: FetchOptions) -> HttpClient:
    insecure = options.allow_insecure_loopback
    return HttpClient(
        ca_bundle=settings.ca_bundle,
        allow_insecure_loopback=settings.allow_insecure_loopback if insecure is None else insecure,
    )


def trust_policy(settings: Settings) -> TrustPolicy:
    return TrustPolicy.from_config(
        settings.signatures,
        config_dir=settings.config_dir,
        override=settings.signatures_override,
        source=str(settings.config_file or "config.toml"),
    )


def fetch(
    uri: str,
    settings: Settings,
    options: FetchOptions | None = None,
    progress: Progress | None = None,
) -> Package:
    """Reads the component named by `uri`, verified as far as its source allows."""
    options = options or FetchOptions()
    say = progress or _quiet
    if options.digest is not None and not DIGEST_RE.match(options.digest):
        raise SourceError(f"digest pin {options.digest!r} is not sha256: followed by 64 lowercase hex digits")
    # A label of a metric: only names that exist (any other is "other").
    given = uri.split("://", 1)[0].lower() if "://" in uri else "file"
    scheme = given if given in ("file", "https", "http", "oci") else "other"
    outcome = "error"
    try:
        fetched = _fetch(uri, settings, options, say)
        outcome = "ok"
        return fetched
    finally:
        emit("pull", scheme=scheme, outcome=outcome, tenant=settings.tenant or "")


def _fetch(uri: str, settings: Settings, options: FetchOptions, say: Progress) -> Package:
    if uri.startswith("https://") or uri.startswith("http://"):
        fetched = _fetch_https(uri, settings, options, say)
    elif is_oci(uri):
        return _fetch_oci(uri, settings, options, say)
    else:
        fetched = _fetch_file(uri, settings.max_component_bytes)
    if options.digest is not None:
        actual = "sha256:" + hashlib.sha256(fetched.wasm).hexdigest()
        if actual != options.digest:
            raise SourceError(
                f"digest pin mismatch for {uri}: expected {options.digest}, the component is {actual}"
            )
    return fetched


def _fetch_file(uri: str, max_bytes: int) -> Package:
    path = local_path(uri)
    if path is None:
        scheme = uri.split("://", 1)[0] + "://" if "://" in uri else uri
        raise SourceError(
            f"unsupported component URI {scheme!r}: use file:///absolute/path/to/tool.wasm, "
            f"https://host/tool.wasm or oci://registry/repository:tag "
            f"(supported schemes: {', '.join(SUPPORTED_SCHEMES)})"
        )
    path = path.expanduser().resolve()
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise SourceError(f"{path} is a directory, not a component file")
        if not path.is_file():
            raise SourceError(f"{path} is not a regular file")
        if size > max_bytes:
            raise SourceError(f"{path} is {size} bytes, over the limit of {max_bytes} bytes")
        wasm = path.read_bytes()
    except FileNotFoundError:
        raise SourceError(f"no such file: {path}") from None
    except PermissionError:
        raise SourceError(f"permission denied reading {path}") from None
    return Package(
        component_id=component_id_for(path),
        wasm=wasm,
        source=path.as_uri(),
        provenance={"kind": "file", "sha256": "sha256:" + hashlib.sha256(wasm).hexdigest()},
    )


def _fetch_https(uri: str, settings: Settings, options: FetchOptions, say: Progress) -> Package:
    http = http_client(settings, options)
    http.check_url(uri)
    name = unquote(urlsplit(uri).path.rsplit("/", 1)[-1])
    cid = component_id_for(Path(name or "component.wasm"))
    say(f"downloading {uri}")
    resp = http.request("GET", uri, headers={"Accept": "application/wasm, */*"})
    if resp.status != 200:
        resp.close()
        raise SourceError(f"{uri}: HTTP {resp.status}")
    limit = settings.max_component_bytes
    length = resp.header("content-length")
    total = int(length) if length and length.isdigit() else None
    if total is not None and total > limit:
        resp.close()
        raise SourceError(f"{uri} is {total} bytes, over the limit of {limit} bytes (max_component_bytes)")
    out = bytearray()
    tick = _Ticker(say, "downloading", total)
    for chunk in resp.chunks():
        out += chunk
        if len(out) > limit:
            resp.close()
            raise SourceError(f"{uri} is over the limit of {limit} bytes (max_component_bytes)")
        tick(len(out))
    if total is not None and len(out) != total:
        raise SourceError(f"truncated download of {uri}: got {len(out)} of {total} bytes")
    wasm = bytes(out)
    return Package(
        component_id=cid,
        wasm=wasm,
        source=uri,
        provenance={"kind": "https", "url": uri, "sha256": "sha256:" + hashlib.sha256(wasm).hexdigest()},
    )


class _Ticker:
    """Byte progress, reported about every 2% (not every chunk)."""

    def __init__(self, say: Progress, message: str, total: int | None) -> None:
        self.say, self.message, self.total, self.last = say, message, total, -1

    def __call__(self, done: int, total: int | None = None) -> None:
        total = total if total is not None else self.total
        step = max((total or 0) // 50, 64 << 10)
        if done - self.last >= step or (total is not None and done >= total):
            self.last = done
            self.say(self.message, done, total)


def resolve(ref: Reference, client: RegistryClient, options: FetchOptions) -> artifact.WasmManifest:
    """The verified wasm manifest a reference names, checked against a pin."""
    manifest = client.manifest(ref.ref)
    wm = artifact.parse(manifest, str(ref))
    if options.digest is not None and options.digest not in (manifest.digest, wm.wasm.digest):
        raise SourceError(
            f"digest pin mismatch for {ref}: expected {options.digest}, the registry has manifest "
            f"{manifest.digest} (component layer {wm.wasm.digest})"
        )
    return wm


def _fetch_oci(uri: str, settings: Settings, options: FetchOptions, say: Progress) -> Package:
    ref = reference.parse(uri)
    client = RegistryClient(ref, http_client(settings, options), credentials=options.credentials)
    say(f"resolving {ref}")
    wm = resolve(ref, client, options)
    digest = wm.manifest.digest
    pinned = ref.with_digest(digest)
    trust = trust_policy(settings)
    rule = trust.rule_for(ref.name)
    warnings: list[str] = []
    if rule.mode == "off":
        decision = signatures.Decision(True, None, None, "skipped")
    else:
        say("checking signatures")
        found = signatures.discover(client, digest)
        checks = signatures.check(found, digest, rule, trust.trusted_root)
        decision = signatures.decide(checks, rule, str(pinned))
        emit("signature_check", status=decision.status, tenant=settings.tenant or "")
        if not decision.ok:
            raise signatures.SignatureError(decision.message or "refused by the signature trust policy")
        if decision.message:
            warnings.append(decision.message)
        if decision.signer:
            say(f"signed by {decision.signer}")
    size = wm.wasm.size
    tick = _Ticker(say, "downloading", size)
    say(f"downloading component {wm.wasm.digest[:19]}… ({size} bytes)")
    wasm = client.blob(wm.wasm, limit=settings.max_component_bytes, progress=tick)
    policy = None
    if wm.policy is not None:
        say("downloading policy layer")
        policy = client.blob(wm.policy, limit=artifact.MAX_POLICY_BYTES)
    provenance = {
        "kind": "oci",
        "reference": str(ref.with_digest(ref.digest) if ref.digest else ref),
        "registry": ref.registry,
        "repository": ref.repository,
        "tag": ref.tag,
        "manifest_digest": digest,
        "layer_digest": wm.wasm.digest,
        "policy_digest": wm.policy.digest if wm.policy else None,
        "signature": {"status": decision.status, "signer": decision.signer, "mode": rule.mode},
    }
    repo_name = ref.repository.rsplit("/", 1)[-1]
    return Package(
        component_id=safe_id(repo_name),
        wasm=wasm,
        source=pinned.uri(),
        provenance=provenance,
        policy=policy,
        warnings=tuple(warnings),
    )


@dataclass(frozen=True)
class Verification:
    """What `wassette component verify` shows: who signed what, and whether
    the trust policy is satisfied."""

    reference: str
    manifest_digest: str
    component_digest: str
    rule: TrustRule
    checks: list[signatures.Check]
    decision: signatures.Decision

    def to_json(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "manifest_digest": self.manifest_digest,
            "component_digest": self.component_digest,
            "trust_policy": {
                "pattern": self.rule.pattern,
                "mode": self.rule.mode,
                "trusted": self.rule.expected,
            },
            "signatures": [c.to_json() for c in self.checks],
            "verified": self.decision.status == "verified",
            "signer": self.decision.signer,
            "message": self.decision.message,
        }


def verify(uri: str, settings: Settings, options: FetchOptions | None = None) -> Verification:
    """Checks every signature of an OCI component against the trust policy,
    without installing anything (and whatever the mode, it looks)."""
    options = options or FetchOptions()
    if not is_oci(uri):
        raise SourceError(f"{uri}: signatures are checked for OCI components (oci://registry/repository:tag)")
    ref = reference.parse(uri)
    client = RegistryClient(ref, http_client(settings, options), credentials=options.credentials)
    wm = resolve(ref, client, options)
    digest = wm.manifest.digest
    policy = trust_policy(settings)
    rule = policy.rule_for(ref.name)
    checks = signatures.check(signatures.discover(client, digest), digest, rule, policy.trusted_root)
    judged = rule if rule.mode != "off" else TrustRule(rule.pattern, "warn", rule.identities, rule.keys)
    decision = signatures.decide(checks, judged, str(ref.with_digest(digest)))
    return Verification(str(ref), digest, wm.wasm.digest, rule, checks, decision)
