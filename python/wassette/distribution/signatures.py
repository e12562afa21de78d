"""Finding and checking signatures of an OCI component.

What is signed is the manifest digest (which pins every layer's digest).
Where signatures are looked for, in order:
- OCI referrers of the manifest (the referrers API, or the referrers tag
  schema `sha256-<hex>` for registries without it, such as Debian's
  docker-registry): Sigstore bundles (`application/vnd.dev.sigstore.bundle*`);
- cosign's tag convention `sha256-<hex>.sig` (and `.att`): simple-signing
  layers signed with a key pair (checked against configured public keys), and
  Sigstore bundle layers.
A Sigstore bundle is either a message signature over the manifest bytes or a
DSSE in-toto statement whose subject is the manifest digest (cosign 3).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wassette.distribution.registry import Descriptor, RegistryClient
from wassette.distribution.trust import Key, TrustRule
from wassette.runtime.errors import SourceError

log = logging.getLogger("wassette.signatures")

BUNDLE_PREFIX = "application/vnd.dev.sigstore.bundle"
SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
COSIGN_SIGNATURE = "dev.cosignproject.cosign/signature"
COSIGN_CERTIFICATE = "dev.sigstore.cosign/certificate"
IN_TOTO = "application/vnd.in-toto+json"
MAX_SIGNATURE_BYTES = 256 << 10
MAX_SIGNATURES = 16

_ISSUER_V1 = "1.3.6.1.4.1.57264.1.1"
_ISSUER_V2 = "1.3.6.1.4.1.57264.1.8"


class SignatureError(SourceError):
    """A component refused by the trust policy."""


@dataclass(frozen=True)
class Found:
    kind: str  # "sigstore" | "cosign-key" | "cosign-keyless"
    location: str
    data: bytes  # a bundle's JSON, or cosign's simple-signing payload
    signature: bytes = b""


@dataclass
class Check:
    found: Found
    valid: bool = False
    trusted: bool = False
    signer: str | None = None
    problem: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.found.kind,
            "found": self.found.location,
            "signer": self.signer,
            "valid": self.valid,
            "trusted": self.trusted,
            "problem": self.problem,
        }


# -- discovery -------------------------------------------------------------


def discover(client: RegistryClient, digest: str) -> list[Found]:
    found: list[Found] = []
    referrers = client.referrers(digest) or []
    for desc in referrers:
        if (desc.artifact_type or "").startswith(BUNDLE_PREFIX) and len(found) < MAX_SIGNATURES:
            found.extend(_from_manifest(client, desc.digest, f"referrer {desc.digest[:19]}…"))
    for suffix in (".sig", ".att"):
        tag = digest.replace(":", "-") + suffix
        if client.manifest_if_exists(tag) is not None:
            found.extend(_from_manifest(client, tag, f"tag {tag[:19]}…{suffix}"))
    return found[:MAX_SIGNATURES]


def _from_manifest(client: RegistryClient, ref: str, where: str) -> list[Found]:
    manifest = client.manifest(ref)
    out = []
    for i, raw in enumerate(manifest.doc.get("layers") or []):
        try:
            layer = Descriptor.parse(raw, f"{where} layer {i}")
        except SourceError as e:
            log.info("skipping a signature layer: %s", e)
            continue
        if layer.media_type.startswith(BUNDLE_PREFIX):
            out.append(Found("sigstore", where, client.blob(layer, limit=MAX_SIGNATURE_BYTES)))
        elif layer.media_type == SIMPLESIGNING and COSIGN_SIGNATURE in layer.annotations:
            try:
                sig = base64.b64decode(layer.annotations[COSIGN_SIGNATURE], validate=True)
            except ValueError:
                sig = b""
            kind = "cosign-keyless" if COSIGN_CERTIFICATE in layer.annotations else "cosign-key"
            out.append(Found(kind, where, client.blob(layer, limit=MAX_SIGNATURE_BYTES), sig))
    return out


# -- verification ----------------------------------------------------------

_verifiers: dict[str, Any] = {}


def _verifier(trusted_root: Path | None) -> Any:
    key = str(trusted_root) if trusted_root else ""
    if key not in _verifiers:
        from sigstore.models import TrustedRoot
        from sigstore.verify import Verifier

        if trusted_root is None:
            # The public-good root shipped inside the sigstore package: no network.
            logging.getLogger("sigstore").setLevel(logging.ERROR)
            _verifiers[key] = Verifier.production(offline=True)
        else:
            try:
                _verifiers[key] = Verifier(trusted_root=TrustedRoot.from_file(str(trusted_root)))
            except Exception as e:  # unreadable or malformed root
                raise SourceError(f"cannot use trusted root {trusted_root}: {e}") from None
    return _verifiers[key]


class _Capture:
    """A certificate policy that accepts any identity and remembers the
    certificate: identities are matched against the trust rule afterwards, so
    `verify` can say who signed even when that signer is not trusted."""

    def __init__(self) -> None:
        self.cert: Any = None

    def verify(self, cert: Any) -> None:
        self.cert = cert


def check(found: list[Found], digest: str, rule: TrustRule, trusted_root: Path | None) -> list[Check]:
    return [_check_one(f, digest, rule, trusted_root) for f in found]


def _check_one(found: Found, digest: str, rule: TrustRule, trusted_root: Path | None) -> Check:
    c = Check(found)
    try:
        if found.kind == "sigstore":
            _check_bundle(c, digest, rule, trusted_root)
        elif found.kind == "cosign-key":
            _check_cosign_key(c, digest, rule.keys)
        else:
            c.problem = (
                "legacy cosign keyless signature (certificate annotation): publish a Sigstore bundle instead"
            )
    except SourceError as e:
        c.problem = str(e)
    return c


def _check_bundle(c: Check, digest: str, rule: TrustRule, trusted_root: Path | None) -> None:
    from sigstore.errors import Error as SigstoreError
    from sigstore.hashes import Hashed
    from sigstore.models import Bundle
    from sigstore_models.common.v1 import HashAlgorithm

    try:
        bundle = Bundle.from_json(c.found.data)
    except Exception as e:
        c.problem = f"not a valid Sigstore bundle: {str(e).splitlines()[0]}"
        return
    verifier = _verifier(trusted_root)
    capture = _Capture()
    try:
        if bundle._dsse_envelope is not None:
            payload_type, payload = verifier.verify_dsse(bundle, capture)
            if payload_type != IN_TOTO or not _statement_names(payload, digest):
                c.problem = "the DSSE statement does not name this manifest digest"
                return
        else:
            hashed = Hashed(algorithm=HashAlgorithm.SHA2_256, digest=bytes.fromhex(digest.split(":", 1)[1]))
            verifier.verify_artifact(hashed, bundle, capture)
    except SigstoreError as e:
        c.problem = f"invalid: {str(e).splitlines()[0]}"
        if capture.cert is not None:
            c.signer = _describe_cert(capture.cert)
        return
    c.valid = True
    sans, issuer = _cert_identity(capture.cert)
    c.signer = _describe_cert(capture.cert)
    c.trusted = any(i.matches(sans, issuer) for i in rule.identities)


def _statement_names(payload: bytes, digest: str) -> bool:
    try:
        statement = json.loads(payload)
        subjects = statement.get("subject") or []
        hexdigest = digest.split(":", 1)[1]
        return any(
            isinstance(s, dict) and (s.get("digest") or {}).get("sha256") == hexdigest for s in subjects
        )
    except (ValueError, AttributeError):
        return False


def _cert_identity(cert: Any) -> tuple[set[str], str | None]:
    from cryptography import x509

    sans: set[str] = set()
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        sans.update(san.get_values_for_type(x509.RFC822Name))
        sans.update(san.get_values_for_type(x509.UniformResourceIdentifier))
        for other in san.get_values_for_type(x509.OtherName):
            sans.add(other.value.decode(errors="replace"))
    except x509.ExtensionNotFound:
        pass
    issuer = None
    for oid in (_ISSUER_V2, _ISSUER_V1):
        try:
            value = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(oid)).value.value
        except x509.ExtensionNotFound:
            continue
        # v2 is a DER UTF8String; v1 is the raw string.
        if oid == _ISSUER_V2 and len(value) > 2 and value[0] == 0x0C:
            value = value[2:] if value[1] < 0x80 else value[2 + (value[1] & 0x7F) :]
        issuer = value.decode(errors="replace")
        break
    return sans, issuer


def _describe_cert(cert: Any) -> str:
    sans, issuer = _cert_identity(cert)
    who = ", ".join(sorted(sans)) or "an unnamed certificate"
    return f"{who} (issuer {issuer})" if issuer else who


def _check_cosign_key(c: Check, digest: str, keys: tuple[Key, ...]) -> None:
    try:
        payload = json.loads(c.found.data)
        signed_digest = payload["critical"]["image"]["docker-manifest-digest"]
    except (ValueError, KeyError, TypeError):
        c.problem = "the simple-signing payload is malformed"
        return
    if signed_digest != digest:
        c.problem = f"the signature is for {signed_digest}, not this manifest"
        return
    if not keys:
        c.signer = "an unknown key"
        c.problem = "signed with a key pair, but no public key is configured for this repository"
        return
    for key in keys:
        if _key_verifies(key, c.found.signature, c.found.data):
            c.valid = c.trusted = True
            c.signer = f"{key.describe()} (sha256:{_fingerprint(key)[:16]})"
            return
    c.signer = "an unknown key"
    c.problem = "the signature does not verify with any configured key"


def _fingerprint(key: Key) -> str:
    from cryptography.hazmat.primitives import serialization

    try:
        public = serialization.load_pem_public_key(key.pem)
        der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    except ValueError:
        der = key.pem
    return hashlib.sha256(der).hexdigest()


def _key_verifies(key: Key, signature: bytes, payload: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

    try:
        public = serialization.load_pem_public_key(key.pem)
    except ValueError:
        raise SourceError(f"{key.label} is not a PEM public key") from None
    try:
        if isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
        elif isinstance(public, rsa.RSAPublicKey):
            public.verify(signature, payload, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(public, ed25519.Ed25519PublicKey):
            public.verify(signature, payload)
        else:
            return False
    except InvalidSignature:
        return False
    return True


# -- the decision ----------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    ok: bool
    signer: str | None
    message: str | None  # why refused (ok=False) or a warning (ok=True)
    status: str  # verified | unsigned | untrusted | skipped


def decide(checks: list[Check], rule: TrustRule, what: str) -> Decision:
    """Applies the rule's mode to the checks."""
    trusted = [c for c in checks if c.trusted]
    if trusted:
        return Decision(True, trusted[0].signer, None, "verified")
    if not rule.has_signers:
        problem = (
            f"no trusted signer is configured for {what}: add a [[signatures.trust]] entry with "
            f"identities or keys to config.toml, or set WASSETTE_SIGNATURES=warn for development"
        )
    elif not checks:
        problem = (
            f"{what} is not signed; the trust policy ({rule.pattern}) requires a signature by {rule.expected}"
        )
    else:
        seen = "; ".join(
            f"{c.found.kind} signature from {c.signer or 'an unknown signer'} ({c.found.location})"
            + (f": {c.problem}" if c.problem else ": signer not trusted")
            for c in checks
        )
        problem = f"{what} is not signed by {rule.expected} (trust policy {rule.pattern}); found {seen}"
    status = "untrusted" if checks else "unsigned"
    if rule.mode == "require":
        return Decision(False, None, f"refused: {problem}", status)
    return Decision(True, None, f"{problem} (loaded anyway: signature mode is warn)", status)
