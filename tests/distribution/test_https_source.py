"""`https://` sources, against a loopback HTTPS server whose certificate comes
from a test CA that the loader is told to trust (WASSETTE_CA_BUNDLE, config
`ca_bundle`, or SSL_CERT_FILE)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from oci_helpers import stored, write_config


def test_https_load_with_a_private_ca(
    cli, env, home: Path, https_server, components: dict[str, Path], component_dir: Path
) -> None:
    wasm = components["arith"].read_bytes()
    https_server.files["/tools/arith.wasm"] = wasm
    url = f"{https_server.url}/tools/arith.wasm"

    r = cli("component", "load", url)
    assert r.returncode == 1
    assert f"TLS certificate of {https_server.url} is not trusted" in r.stderr
    assert "WASSETTE_CA_BUNDLE" in r.stderr
    assert stored(component_dir) == []

    for how in ("env", "config", "ssl"):
        e = dict(env)
        if how == "env":
            e["WASSETTE_CA_BUNDLE"] = str(https_server.ca)
        elif how == "config":
            write_config(home, f'ca_bundle = "{https_server.ca}"\n')
        else:
            e["SSL_CERT_FILE"] = str(https_server.ca)
        cli.env = e
        r = cli("component", "load", url)
        assert r.returncode == 0, (how, r.stderr)
        report = json.loads(r.stdout)
        assert report["id"] == "arith" and report["source"] == url
        write_config(home, "")
    [listed] = json.loads(cli("component", "list").stdout)
    assert listed["provenance"] == {
        "kind": "https",
        "url": url,
        "sha256": "sha256:" + hashlib.sha256(wasm).hexdigest(),
    }

    # a missing file
    cli.env = {**env, "WASSETTE_CA_BUNDLE": str(https_server.ca)}
    r = cli("component", "load", f"{https_server.url}/nope.wasm")
    assert r.returncode == 1 and f"{https_server.url}/nope.wasm: HTTP 404" in r.stderr


def test_https_truncated_and_oversized_downloads(
    cli, env, home: Path, https_server, components: dict[str, Path], component_dir: Path
) -> None:
    wasm = components["strings"].read_bytes()
    https_server.lies["/short.wasm"] = (len(wasm), wasm[:200])
    https_server.files["/strings.wasm"] = wasm
    cli.env = {**env, "WASSETTE_CA_BUNDLE": str(https_server.ca)}
    r = cli("component", "load", f"{https_server.url}/short.wasm")
    assert r.returncode == 1
    assert f"truncated download of {https_server.url}/short.wasm: got 200 of {len(wasm)} bytes" in r.stderr
    write_config(home, "max_component_bytes = 300\n")
    r = cli("component", "load", f"{https_server.url}/strings.wasm")
    assert r.returncode == 1
    assert f"is {len(wasm)} bytes, over the limit of 300 bytes" in r.stderr
    assert stored(component_dir) == []
