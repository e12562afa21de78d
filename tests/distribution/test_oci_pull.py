"""Loading components from a real OCI registry (Debian's docker-registry on
loopback), pushed by our own `component publish` and by oras."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import oras.client
from oci_helpers import Registry, stored, unique_component, write_config


def _publish(cli, wasm: Path, ref: str, *extra: str) -> dict:
    r = cli("component", "publish", str(wasm), ref, *extra)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_publish_then_load_by_tag_digest_and_bare_reference(
    cli, oenv, registry: Registry, components: dict[str, Path], component_dir: Path
) -> None:
    cli.env = {**oenv, "WASSETTE_SIGNATURES": "off"}
    pub = _publish(cli, components["arith"], f"oci://{registry.host}/tools/arith:1.0")
    digest = pub["digest"]
    assert digest.startswith("sha256:") and pub["reference"] == f"{registry.host}/tools/arith:1.0"

    r = cli("component", "load", f"oci://{registry.host}/tools/arith:1.0")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["id"] == "arith" and "add" in report["tools"]
    assert report["digest"] == digest
    assert report["source"] == f"oci://{registry.host}/tools/arith:1.0@{digest}"
    assert (component_dir / "arith.wasm").read_bytes() == components["arith"].read_bytes()
    # one line per step when stderr is not a terminal
    assert f"wassette: resolving {registry.host}/tools/arith:1.0" in r.stderr.splitlines()

    [listed] = json.loads(cli("component", "list").stdout)
    prov = listed["provenance"]
    assert listed["source"] == report["source"]
    assert (prov["registry"], prov["repository"], prov["tag"]) == (registry.host, "tools/arith", "1.0")
    assert prov["manifest_digest"] == digest
    assert prov["layer_digest"] == "sha256:" + hashlib.sha256(components["arith"].read_bytes()).hexdigest()
    assert prov["signature"] == {"status": "skipped", "signer": None, "mode": "off"}
    r = cli("tool", "invoke", "add", "--args", '{"a": 40, "b": 2}')
    assert json.loads(r.stdout) == {"result": 42}

    for uri in (f"oci://{registry.host}/tools/arith@{digest}", f"{registry.host}/tools/arith:1.0"):
        r = cli("component", "load", "-q", uri)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["status"] == "component reloaded successfully"
        assert r.stderr == ""
    assert json.loads(cli("component", "list").stdout)[0]["provenance"]["tag"] == "1.0"


def test_oras_pushed_artifact_loads(
    cli, oenv, registry: Registry, components: dict[str, Path], tmp_path: Path, monkeypatch
) -> None:
    """An artifact pushed by another tool (oras, the CNCF wasm layout) loads."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "strings.wasm").write_bytes(components["strings"].read_bytes())
    (tmp_path / "config.json").write_text('{"architecture": "wasm", "os": "wasip2"}')
    client = oras.client.OrasClient(hostname=registry.host, insecure=True)
    client.push(
        target=f"{registry.host}/oras/strings:v1",
        files=["strings.wasm:application/wasm"],
        manifest_config="config.json:application/vnd.wasm.config.v0+json",
    )
    cli.env = {**oenv, "WASSETTE_SIGNATURES": "off"}
    r = cli("component", "load", f"oci://{registry.host}/oras/strings:v1")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["tools"] == ["echo", "length"]
    r = cli("tool", "invoke", "length", "--args", '{"s": "héllo"}')
    assert r.returncode == 0, r.stderr


def test_moved_tag_is_reported(
    cli, oenv, registry: Registry, components: dict[str, Path], tmp_path: Path
) -> None:
    cli.env = {**oenv, "WASSETTE_SIGNATURES": "off"}
    ref = f"oci://{registry.host}/tools/mover:stable"
    first = _publish(cli, components["arith"], ref)["digest"]
    assert cli("component", "load", ref).returncode == 0
    second_wasm = tmp_path / "arith.wasm"
    second_wasm.write_bytes(unique_component(components["arith"].read_bytes(), "v2"))
    second = _publish(cli, second_wasm, ref)["digest"]
    assert first != second

    r = cli("component", "load", ref)
    assert r.returncode == 0, r.stderr
    [warning] = [line for line in r.stderr.splitlines() if line.startswith("warning:")]
    assert f"tag stable of {registry.host}/tools/mover has moved" in warning
    assert first in warning and second in warning
    # loading it again: the tag did not move since
    r = cli("component", "load", ref)
    assert not [line for line in r.stderr.splitlines() if line.startswith("warning:")]


def test_plain_http_needs_the_loopback_flag(
    cli, env, registry: Registry, components: dict[str, Path], component_dir: Path
) -> None:
    """Without the development flag, a plain-http registry is not spoken to in
    the clear; with it (flag or env), loopback works."""
    ref = f"oci://{registry.host}/tools/arith:1.0"
    env["WASSETTE_SIGNATURES"] = "off"
    cli("component", "publish", str(components["arith"]), ref, "--allow-insecure-loopback")
    r = cli("component", "load", ref)
    assert r.returncode == 1
    assert f"cannot reach https://{registry.host}" in r.stderr
    r = cli("component", "load", f"http://{registry.host}/v2/x.wasm")
    assert r.returncode == 1
    assert "plain http:// is refused" in r.stderr and "--allow-insecure-loopback" in r.stderr
    r = cli("component", "load", "--allow-insecure-loopback", "http://example.com/tool.wasm")
    assert r.returncode == 1
    assert "plain http:// is refused for http://example.com/tool.wasm: use https://" in r.stderr
    assert stored(component_dir) == []
    r = cli("component", "load", "--allow-insecure-loopback", ref)
    assert r.returncode == 0, r.stderr
    # the flag also lets a plain-http file server on loopback serve a component
    layer = json.loads(cli("component", "list").stdout)[0]["provenance"]["layer_digest"]
    url = f"http://{registry.host}/v2/tools/arith/blobs/{layer}"
    assert "plain http:// is refused" in cli("component", "load", url).stderr
    r = cli("component", "load", "--allow-insecure-loopback", url)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["source"] == url


def test_bad_artifacts_are_refused_and_leave_nothing(
    cli,
    oenv,
    home: Path,
    registry: Registry,
    components: dict[str, Path],
    component_dir: Path,
    tmp_path,
    monkeypatch,
) -> None:
    cli.env = {**oenv, "WASSETTE_SIGNATURES": "off"}
    host = registry.host
    arith = components["arith"].read_bytes()

    def publish(name: str, wasm: bytes) -> dict:
        path = tmp_path / f"{name}.wasm"
        path.write_bytes(wasm)
        return _publish(cli, path, f"oci://{host}/bad/{name}:1")

    def refused(uri: str, message: str) -> None:
        r = cli("component", "load", uri)
        assert r.returncode == 1, r.stdout
        errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and message in errors[0], r.stderr
        assert stored(component_dir) == []

    refused(f"oci://{host}/bad/missing:1", f"manifest bad/missing:1 not found in registry {host}")
    refused(f"oci://{host}/bad/missing@sha256:{'0' * 64}", "not found in registry")
    refused("oci://127.0.0.1:1/bad/x:1", "cannot reach http://127.0.0.1:1: connection refused")

    # a blob changed in the registry's storage after the push (same length)
    pub = publish("tampered", unique_component(arith, "tampered"))
    layer = pub["layers"][0]
    blob = registry.blob_path(layer)
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF
    blob.write_bytes(bytes(data))
    refused(f"oci://{host}/bad/tampered:1", f"digest mismatch for blob {layer}")

    # a blob cut short in storage
    pub = publish("short", unique_component(arith, "short"))
    blob = registry.blob_path(pub["layers"][0])
    blob.write_bytes(blob.read_bytes()[:100])
    refused(f"oci://{host}/bad/short:1", "truncated download of blob")

    # a manifest pointing at a layer that is not wasm (pushed with oras)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "layer.tar").write_bytes(b"not a wasm")
    (tmp_path / "config.json").write_text("{}")
    client = oras.client.OrasClient(hostname=host, insecure=True)
    client.push(
        target=f"{host}/bad/tarball:1",
        files=["layer.tar:application/vnd.oci.image.layer.v1.tar"],
        manifest_config="config.json:application/vnd.oci.image.config.v1+json",
    )
    refused(f"oci://{host}/bad/tarball:1", "is not a wasm component artifact")

    # a core module published as if it were a component
    (tmp_path / "core.wasm").write_bytes(b"\0asm\x01\0\0\0")
    client.push(
        target=f"{host}/bad/core:1",
        files=["core.wasm:application/wasm"],
        manifest_config="config.json:application/vnd.wasm.config.v0+json",
    )
    refused(f"oci://{host}/bad/core:1", "core WebAssembly module, not a component")

    # over the configured size limit: refused before the download
    publish("big", unique_component(arith, "big"))
    write_config(home, "max_component_bytes = 100\n")
    refused(f"oci://{host}/bad/big:1", "over the limit of 100 bytes")
