"""Private registries: Basic (htpasswd) and token authentication, with
credentials from the command line or the Docker config file."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from oci_helpers import PASSWORD, USER, Registry, stored


def _docker_config(home: Path, registry: str, user: str, password: str) -> None:
    cfg = home / ".docker" / "config.json"
    cfg.parent.mkdir(exist_ok=True)
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    cfg.write_text(json.dumps({"auths": {registry: {"auth": auth}}}))


def test_htpasswd_registry(
    cli, oenv, home: Path, auth_registry: Registry, components: dict[str, Path], component_dir: Path
) -> None:
    cli.env = {**oenv, "WASSETTE_SIGNATURES": "off"}
    ref = f"oci://{auth_registry.host}/private/arith:1"
    creds = ("--registry-username", USER, "--registry-password-stdin")

    r = cli("component", "publish", str(components["arith"]), ref)
    assert r.returncode == 1
    assert f"registry {auth_registry.host} requires authentication" in r.stderr
    assert "--registry-password-stdin" in r.stderr
    r = cli("component", "publish", str(components["arith"]), ref, *creds, input=PASSWORD + "\n")
    assert r.returncode == 0, r.stderr

    r = cli("component", "load", ref)
    assert r.returncode == 1 and "requires authentication" in r.stderr
    r = cli("component", "load", ref, *creds, input="wrong\n")
    assert r.returncode == 1
    assert f"refused the credentials of '{USER}' (from the command line)" in r.stderr
    assert stored(component_dir) == []
    r = cli("component", "load", ref, *creds, input=PASSWORD + "\n")
    assert r.returncode == 0, r.stderr

    # the Docker config file, as `docker login` leaves it
    cli("component", "unload", "arith")
    _docker_config(home, auth_registry.host, USER, PASSWORD)
    r = cli("component", "load", ref)
    assert r.returncode == 0, r.stderr
    _docker_config(home, auth_registry.host, USER, "stale")
    r = cli("component", "load", ref)
    assert r.returncode == 1
    assert f"refused the credentials of '{USER}' (from {home / '.docker' / 'config.json'}" in r.stderr

    r = cli("component", "load", ref, "--registry-username", USER)
    assert r.returncode == 1 and "--registry-username needs --registry-password-stdin" in r.stderr


def test_token_registry_anonymous_pull_and_authenticated_push(
    cli, oenv, token_registry: Registry, components: dict[str, Path]
) -> None:
    """The bearer-token flow: a 401 challenge, a token from the realm
    (anonymous for pulls, with Basic credentials for pushes), the retry."""
    tokens = token_registry.auth["tokens"]
    cli.env = {**oenv, "WASSETTE_SIGNATURES": "off"}
    ref = f"oci://{token_registry.host}/public/strings:1"
    r = cli("component", "publish", str(components["strings"]), ref)
    assert r.returncode == 1
    assert f"registry {token_registry.host} requires authentication" in r.stderr
    r = cli(
        "component", "publish", str(components["strings"]), ref,
        "--registry-username", USER, "--registry-password-stdin", input=PASSWORD,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert {"user": USER, "scope": "repository:public/strings:pull,push"} in tokens.requests

    tokens.requests.clear()
    r = cli("component", "load", ref)
    assert r.returncode == 0, r.stderr
    assert tokens.requests == [{"user": None, "scope": "repository:public/strings:pull"}]
