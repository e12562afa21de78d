"""`wassette inspect` on a registry reference: fetched and verified as for a
load, described, and nothing installed."""

from __future__ import annotations

import json
from pathlib import Path

from oci_helpers import Registry


def test_inspect_oci_reference_without_installing(
    cli, oenv, registry: Registry, components: dict[str, Path], home: Path, component_dir: Path
) -> None:
    ref = f"{registry.host}/tools/inspect-me:1.0"
    cli.env = {**oenv, "WASSETTE_SIGNATURES": "off"}
    assert cli("component", "publish", str(components["iface"]), f"oci://{ref}").returncode == 0

    by_uri = cli("inspect", f"oci://{ref}")
    assert by_uri.returncode == 0, by_uri.stderr
    tools = json.loads(by_uri.stdout)
    assert [t["name"] for t in tools] == ["test_iface_math_double"]
    assert json.loads(cli("inspect", ref).stdout) == tools  # a bare reference, too
    assert not component_dir.exists()

    # Verified as for a load: unsigned, it is refused under the default `require`.
    cli.env = oenv
    r = cli("inspect", f"oci://{ref}")
    assert r.returncode == 1 and "error:" in r.stderr
    assert "Traceback" not in r.stderr
    assert not component_dir.exists()
