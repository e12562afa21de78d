"""Signature checks for OCI components: Sigstore bundles (keyless, identity and
issuer pinned, verified offline against the committed mock trust root) found
as referrers or under cosign's `.sig` tag, and cosign key-pair signatures.

The signed artifact is tests/distribution/fixtures/sigstore/arith.wasm, whose
manifest (as `component publish` writes it, byte for byte) was signed once by
fixtures/sigstore/generate.py; see there."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from oci_helpers import (
    SIGSTORE,
    Registry,
    attach_bundle,
    cosign_sign,
    stored,
    unique_component,
    write_config,
)

TESTER = "tester@example.com (issuer https://oauth2.sigstore.dev/auth)"
MANIFEST = (SIGSTORE / "manifest.json").read_bytes()
DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()


@dataclass
class Signed:
    host: str
    good_key: Path
    other_key: Path


def _publish(host: str, repository: str, wasm: Path) -> str:
    from wassette.distribution.publish import publish
    from wassette.distribution.sources import FetchOptions
    from wassette.runtime.config import Settings

    settings = Settings.load(env={"HOME": str(wasm.parent)})
    result = publish(
        wasm, f"oci://{host}/{repository}:1", settings, options=FetchOptions(allow_insecure_loopback=True)
    )
    return str(result["digest"])


@pytest.fixture(scope="module")
def signed(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Signed:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    tmp = tmp_path_factory.mktemp("signed")
    wasm = tmp / "arith.wasm"
    wasm.write_bytes((SIGSTORE / "arith.wasm").read_bytes())
    host = registry.host
    bundles = {
        "signed/referrer": ("tester.sigstore.json", "referrer"),
        "signed/sigtag": ("tester.sigstore.json", "sig-tag"),
        "signed/dsse": ("tester.dsse.sigstore.json", "referrer"),
        "signed/other": ("other.sigstore.json", "referrer"),
    }
    for repo, (bundle, how) in bundles.items():
        # the publish is deterministic: it reproduces the manifest that was signed
        assert _publish(host, repo, wasm) == DIGEST
        attach_bundle(host, repo, DIGEST, len(MANIFEST), (SIGSTORE / bundle).read_bytes(), how)
    for repo in ("signed/unsigned", "unconfigured/arith"):
        _publish(host, repo, wasm)
    # a bundle attached to a different manifest than the one it signed
    other = tmp / "variant" / "arith.wasm"
    other.parent.mkdir()
    other.write_bytes(unique_component(wasm.read_bytes(), "variant"))
    variant = _publish(host, "signed/mismatch", other)
    attach_bundle(
        host, "signed/mismatch", variant, 0, (SIGSTORE / "tester.sigstore.json").read_bytes(), "sig-tag"
    )

    keys = {}
    for name in ("good", "other"):
        key = ec.generate_private_key(ec.SECP256R1())
        pem = tmp / f"{name}.pub"
        pem.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        keys[name] = (key, pem)
    for repo, signer in (("keyed/good", "good"), ("keyed/wrong", "other")):
        digest = _publish(host, repo, wasm)
        cosign_sign(host, repo, digest, keys[signer][0], tmp)
    return Signed(host, keys["good"][1], keys["other"][1])


@pytest.fixture
def trusting(home: Path, signed: Signed) -> Signed:
    write_config(
        home,
        f"""
[signatures]
trusted_root = "{SIGSTORE / "trusted_root.json"}"

[[signatures.trust]]
pattern = "127.0.0.1:*/signed/*"
identities = [{{ identity = "tester@example.com", issuer = "https://oauth2.sigstore.dev/auth" }}]

[[signatures.trust]]
pattern = "127.0.0.1:*/keyed/*"
keys = ["{signed.good_key}"]
""",
    )
    return signed


def _load(cli, uri: str, *extra: str):  # type: ignore[no-untyped-def]
    return cli("component", "load", uri, *extra)


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize("repo", ["signed/referrer", "signed/sigtag", "signed/dsse"])
def test_sigstore_bundle_verifies(cli, oenv, trusting: Signed, repo: str) -> None:
    """Required by default: a bundle from the pinned identity and issuer,
    as a referrer (tag schema), under the `.sig` tag, or as a DSSE statement."""
    cli.env = oenv
    r = _load(cli, f"oci://{trusting.host}/{repo}:1")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["signature"] == {"status": "verified", "signer": TESTER, "mode": "require"}
    assert f"wassette: signed by {TESTER}" in r.stderr.splitlines()
    [listed] = json.loads(cli("component", "list").stdout)
    assert listed["provenance"]["signature"]["signer"] == TESTER
    assert listed["provenance"]["manifest_digest"] == DIGEST


def test_wrong_signer_refused_under_require_loaded_under_warn_and_off(
    cli, oenv, trusting: Signed, component_dir: Path
) -> None:
    uri = f"oci://{trusting.host}/signed/other:1"
    cli.env = oenv
    r = _load(cli, uri)
    assert r.returncode == 1
    [error] = _errors(r.stderr)
    assert error.startswith(
        f"error: refused: {trusting.host}/signed/other:1@{DIGEST} is not signed by {TESTER}"
    )
    assert "other@example.com" in error
    assert stored(component_dir) == []

    cli.env = {**oenv, "WASSETTE_SIGNATURES": "warn"}
    r = _load(cli, uri)
    assert r.returncode == 0, r.stderr
    [warning] = [line for line in r.stderr.splitlines() if line.startswith("warning:")]
    assert f"is not signed by {TESTER}" in warning and "loaded anyway: signature mode is warn" in warning
    assert json.loads(r.stdout)["signature"]["status"] == "untrusted"

    cli.env = {**oenv, "WASSETTE_SIGNATURES": "off"}
    r = _load(cli, uri)
    assert r.returncode == 0, r.stderr
    assert "warning:" not in r.stderr
    assert json.loads(r.stdout)["signature"]["status"] == "skipped"

    cli.env = {**oenv, "WASSETTE_SIGNATURES": "maybe"}
    r = _load(cli, uri)
    assert r.returncode == 1 and "WASSETTE_SIGNATURES='maybe': expected one of require, warn, off" in r.stderr


def test_unsigned_and_unconfigured_are_refused(cli, oenv, trusting: Signed, component_dir: Path) -> None:
    cli.env = oenv
    r = _load(cli, f"oci://{trusting.host}/signed/unsigned:1")
    assert r.returncode == 1
    [error] = _errors(r.stderr)
    assert "is not signed; the trust policy (127.0.0.1:*/signed/*) requires a signature by " + TESTER in error
    r = _load(cli, f"oci://{trusting.host}/unconfigured/arith:1")
    assert r.returncode == 1
    [error] = _errors(r.stderr)
    assert f"no trusted signer is configured for {trusting.host}/unconfigured/arith:1@" in error
    assert "WASSETTE_SIGNATURES=warn" in error
    r = _load(cli, f"oci://{trusting.host}/signed/mismatch:1")
    assert r.returncode == 1
    [error] = _errors(r.stderr)
    assert "invalid: " in error
    assert stored(component_dir) == []


def test_sigstore_bundle_against_the_production_root_is_refused(
    cli, oenv, home: Path, signed: Signed
) -> None:
    """Without a configured trusted root, the public Sigstore root (shipped in
    the sigstore package, used offline) applies: the mock CA is not in it."""
    write_config(
        home,
        """
[[signatures.trust]]
pattern = "127.0.0.1:*/signed/*"
identities = [{ identity = "tester@example.com", issuer = "https://oauth2.sigstore.dev/auth" }]
""",
    )
    cli.env = oenv
    r = _load(cli, f"oci://{signed.host}/signed/referrer:1")
    assert r.returncode == 1
    [error] = _errors(r.stderr)
    assert "invalid: " in error and "is not signed by" in error


def test_cosign_key_pair_signatures(cli, oenv, trusting: Signed, home: Path) -> None:
    cli.env = oenv
    r = _load(cli, f"oci://{trusting.host}/keyed/good:1")
    assert r.returncode == 0, r.stderr
    signer = json.loads(r.stdout)["signature"]["signer"]
    assert signer.startswith(f"key {trusting.good_key} (sha256:")
    r = _load(cli, f"oci://{trusting.host}/keyed/wrong:1")
    assert r.returncode == 1
    [error] = _errors(r.stderr)
    assert f"is not signed by key {trusting.good_key}" in error
    assert "the signature does not verify with any configured key" in error


def test_verify_shows_who_signed_what(cli, oenv, trusting: Signed) -> None:
    cli.env = oenv
    r = cli("component", "verify", f"oci://{trusting.host}/signed/other:1")
    assert r.returncode == 1
    out = json.loads(r.stdout)
    assert out["manifest_digest"] == DIGEST
    assert out["trust_policy"] == {"pattern": "127.0.0.1:*/signed/*", "mode": "require", "trusted": TESTER}
    [sig] = out["signatures"]
    assert sig["signer"] == "other@example.com (issuer https://oauth2.sigstore.dev/auth)"
    assert (sig["valid"], sig["trusted"], sig["kind"]) == (True, False, "sigstore")
    assert sig["found"].startswith("referrer sha256:")

    r = cli("component", "verify", f"{trusting.host}/signed/sigtag:1", "-o", "table")
    assert r.returncode == 0, r.stderr
    assert "tester@example.com" in r.stdout and "verified: signed by" in r.stderr

    # verify looks even when signatures are switched off for loading
    cli.env = {**oenv, "WASSETTE_SIGNATURES": "off"}
    r = cli("component", "verify", f"oci://{trusting.host}/signed/unsigned:1")
    assert r.returncode == 0
    assert json.loads(r.stdout)["signatures"] == []
    assert json.loads(r.stdout)["verified"] is False
