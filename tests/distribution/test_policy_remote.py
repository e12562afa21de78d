"""`wassette policy attach ID https://...|oci://...` (distribution/remote_policy.py):
a policy from elsewhere is attached only when it matches a `--digest` pin or,
from a registry, carries a signature by a signer the `[signatures]` trust
configuration names; otherwise it is refused under mode `require` (the
default) and attached with a warning under `warn`."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from oci_helpers import Registry, cosign_sign, registry_client, write_config

POLICY = "version: '1.0'\npermissions:\n  environment:\n    allow: [{key: GREETING}]\n"
DIGEST = "sha256:" + hashlib.sha256(POLICY.encode()).hexdigest()
OTHER = "sha256:" + "0" * 64


def _env_rules(cli) -> list[dict[str, str]]:
    doc = json.loads(cli("policy", "get", "io").stdout)
    return list(doc.get("permissions", {}).get("environment", {}).get("allow", []))


def _meta(component_dir: Path) -> dict:
    return json.loads((component_dir / "io.policy.meta.json").read_text())


def _valid_audit_record(record: dict) -> None:
    import jsonschema

    from wassette.runtime import audit

    schema = json.loads((Path(audit.__file__).parent / "audit.schema.json").read_text())
    assert "verified" in schema["properties"]  # a field log shippers are told about
    jsonschema.Draft202012Validator(schema).validate(record)


@pytest.fixture
def io_loaded(cli, components: dict[str, Path]) -> None:
    assert cli("component", "load", components["io"].as_uri()).returncode == 0


def test_https_policy_needs_a_digest_pin(
    cli, env, home: Path, io_loaded, https_server, component_dir: Path
) -> None:
    https_server.files["/policies/io.yaml"] = POLICY.encode()
    url = f"{https_server.url}/policies/io.yaml"
    cli.env = {**env, "WASSETTE_CA_BUNDLE": str(https_server.ca)}

    r = cli("policy", "attach", "io", url)  # unpinned, and https cannot be signed
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "is not pinned" in r.stderr and f"--digest {DIGEST}" in r.stderr
    assert 'signatures.mode = "warn"' in r.stderr
    assert _env_rules(cli) == []

    r = cli("policy", "attach", "io", url, "--digest", OTHER)
    assert r.returncode == 1 and f"digest pin mismatch for {url}" in r.stderr and DIGEST in r.stderr
    assert _env_rules(cli) == []

    r = cli("policy", "attach", "io", url, "--digest", DIGEST)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["verified"] == {"sha256": DIGEST, "pinned": True}
    assert _env_rules(cli) == [{"key": "GREETING"}]
    assert _meta(component_dir)["source"] == url
    audit = (home / "data" / "wassette" / "audit.jsonl").read_text().splitlines()
    attached = [json.loads(line) for line in audit if "policy_attached" in line]
    assert attached[-1]["source"] == url and attached[-1]["verified"]["sha256"] == DIGEST
    _valid_audit_record(attached[-1])

    cli("permission", "reset", "io")
    write_config(home, '[signatures]\nmode = "warn"\n')
    r = cli("policy", "attach", "io", url)
    assert r.returncode == 0, r.stderr
    [warning] = [line for line in r.stderr.splitlines() if line.startswith("warning:")]
    assert "is not pinned" in warning and "attached anyway" in warning
    assert _env_rules(cli) == [{"key": "GREETING"}]

    # a malformed pin, and a policy that is not valid
    assert "is not sha256:" in cli("policy", "attach", "io", url, "--digest", "md5:x").stderr
    https_server.files["/policies/bad.yaml"] = (
        b"version: '1.0'\npermissions: {network: {allow: [{cidr: nope}]}}\n"
    )
    r = cli("policy", "attach", "io", f"{https_server.url}/policies/bad.yaml")
    assert r.returncode == 1 and "'nope' is not a valid CIDR" in r.stderr


@dataclass
class Published:
    host: str
    digest: dict[str, str]  # repository -> manifest digest
    good_key: Path


@pytest.fixture(scope="module")
def published(
    registry: Registry, components: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Published:
    """The policy as `component publish --policy` ships it, in repositories
    signed by a trusted key, by another key, and not at all; and a
    policy-only artifact."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from wassette.distribution.publish import publish
    from wassette.distribution.sources import FetchOptions
    from wassette.runtime.config import Settings

    tmp = tmp_path_factory.mktemp("remote-policy")
    policy = tmp / "policy.yaml"
    policy.write_text(POLICY)
    settings = Settings.load(env={"HOME": str(tmp)})
    keys = {name: ec.generate_private_key(ec.SECP256R1()) for name in ("good", "other")}
    good_pub = tmp / "good.pub"
    good_pub.write_bytes(
        keys["good"]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    digests = {}
    for repo, signer in (("rpolicy/signed", "good"), ("rpolicy/wrong", "other"), ("rpolicy/unsigned", None)):
        done = publish(
            components["arith"],
            f"oci://{registry.host}/{repo}:1",
            settings,
            policy_path=policy,
            options=FetchOptions(allow_insecure_loopback=True),
        )
        digests[repo] = str(done["digest"])
        if signer is not None:
            cosign_sign(registry.host, repo, digests[repo], keys[signer], tmp)

    # a policy-only artifact (no component layer), pushed with our client
    client = registry_client(registry.host, "rpolicy/only")
    layer = client.push_blob(POLICY.encode())
    config = client.push_blob(b"{}")
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config, "size": 2},
        "layers": [
            {"mediaType": "application/vnd.wasm.policy.v1+yaml", "digest": layer, "size": len(POLICY)}
        ],
    }
    raw = json.dumps(manifest).encode()
    digests["rpolicy/only"] = client.push_manifest(raw, "application/vnd.oci.image.manifest.v1+json", "1")
    return Published(registry.host, digests, good_pub)


def test_oci_policy_needs_a_trusted_signature(
    cli, oenv, env, home: Path, io_loaded, published: Published, component_dir: Path
) -> None:
    host = published.host
    write_config(
        home,
        f'[signatures]\nmode = "require"\n[[signatures.trust]]\npattern = "{host}/rpolicy/*"\n'
        f'keys = ["{published.good_key}"]\n',
    )
    cli.env = env  # plain http to the loopback registry: only when allowed (else https only)
    r = cli("policy", "attach", "io", f"oci://{host}/rpolicy/signed:1")
    assert r.returncode == 1 and f"cannot reach https://{host}" in r.stderr
    cli.env = oenv

    r = cli("policy", "attach", "io", f"oci://{host}/rpolicy/signed:1")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    signed = published.digest["rpolicy/signed"]
    assert report["source"] == f"oci://{host}/rpolicy/signed:1@{signed}"
    assert report["verified"]["signature"]["status"] == "verified"
    assert report["verified"]["signature"]["signer"].startswith(f"key {published.good_key} (sha256:")
    assert report["verified"]["pinned"] is False and report["verified"]["sha256"] == DIGEST
    assert _env_rules(cli) == [{"key": "GREETING"}]
    assert _meta(component_dir)["verified"]["manifest_digest"] == signed

    for repo, why in (("rpolicy/unsigned", "is not signed;"), ("rpolicy/wrong", "is not signed by key")):
        cli("permission", "reset", "io")
        r = cli("policy", "attach", "io", f"oci://{host}/{repo}:1")
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
        assert why in r.stderr and f"--digest {published.digest[repo]}" in r.stderr
        assert _env_rules(cli) == []

    # pinned: the pin is the verification, whoever signed it
    r = cli(
        "policy",
        "attach",
        "io",
        f"oci://{host}/rpolicy/wrong:1",
        "--digest",
        published.digest["rpolicy/wrong"],
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["verified"]["signature"]["status"] == "untrusted"
    r = cli("policy", "attach", "io", f"oci://{host}/rpolicy/unsigned:1", "--digest", OTHER)
    assert r.returncode == 1 and "digest pin mismatch" in r.stderr

    # warn: attached with the reason as a warning
    cli("permission", "reset", "io")
    cli.env = {**oenv, "WASSETTE_SIGNATURES": "warn"}
    r = cli("policy", "attach", "io", f"oci://{host}/rpolicy/unsigned:1")
    assert r.returncode == 0, r.stderr
    assert "warning:" in r.stderr and "attached anyway" in r.stderr
    assert _env_rules(cli) == [{"key": "GREETING"}]

    # a policy-only artifact, pinned by its reference
    cli("permission", "reset", "io")
    cli.env = oenv
    only = published.digest["rpolicy/only"]
    r = cli("policy", "attach", "io", f"oci://{host}/rpolicy/only@{only}")
    assert r.returncode == 0, r.stderr
    assert _env_rules(cli) == [{"key": "GREETING"}]
