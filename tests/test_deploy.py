"""The Helm chart (deploy/helm/wassette): `helm lint`, `helm template` with
the defaults and with every option, each manifest decoded strictly against
Kubernetes' own API types (k8s-validate, client-go), the security settings
checked, and the server started with exactly the container's command line
and environment. No cluster runs here: what a cluster would add (scheduling,
the probes actually polled, the network policy enforced) is not tested."""

from __future__ import annotations

import json
import os
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import httpx2 as httpx
import yaml

from servers import http_server
from wassette.runtime.config_schema import validate

REPO = Path(__file__).resolve().parent.parent
CHART = REPO / "deploy/helm/wassette"
CACHE = Path(os.environ.get("WASSETTE_DEV_CACHE", Path.home() / ".cache/wassette-dev"))
TOOLS = CACHE / "k8s-tools/bin"
EVERYTHING = [
    "--set", "auth.existingSecret=wassette-token",
    "--set", "autoscaling.enabled=true",
    "--set", "state.existingSecret=wassette-db",
    "--set", "persistence.existingClaim=wassette-state",
    "--set", "provisioning.enabled=true",
    "--set", "provisioning.manifest.components[0].uri=oci://registry.example/tools/fetch:1.0",
    "--set", "provisioning.continueOnFailure=true",
    "--set", "networkPolicy.egressCIDRs[0]=10.0.0.0/8",
    "--set", "allowedHosts[0]=mcp.example.internal",
    "--set", "env.API_BASE=https://api.example.internal",
    "--set", "workers=3",
]  # fmt: skip


def tool(name: str) -> str:
    path = TOOLS / name
    assert path.exists(), f"{path} is missing: run scripts/setup-toolchain.sh"
    return str(path)


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "HOME": str(CACHE), "HELM_CACHE_HOME": str(CACHE / "helm")}
    return subprocess.run([tool("helm"), *args], capture_output=True, text=True, timeout=120, env=env)


def render(*values: str) -> str:
    done = helm("template", "mcp", str(CHART), "--namespace", "tools", *values)
    assert done.returncode == 0, done.stderr
    return done.stdout


def validated(manifests: str) -> list[str]:
    done = subprocess.run([tool("k8s-validate")], input=manifests, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [line.split()[-1] for line in done.stdout.splitlines()]


def documents(manifests: str) -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in yaml.safe_load_all(manifests) if d}


def test_lint() -> None:
    done = helm("lint", str(CHART), "--strict", "--set", "auth.token=t")
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_token_no_install() -> None:
    done = helm("template", "mcp", str(CHART))
    assert done.returncode != 0 and "auth.token or auth.existingSecret is required" in done.stderr


def test_defaults_are_valid_and_locked_down() -> None:
    manifests = render("--set", "auth.token=s3cret")
    kinds = validated(manifests)
    assert sorted(kinds) == sorted(
        ["Secret", "ConfigMap", "Service", "Deployment", "PodDisruptionBudget", "NetworkPolicy"]
    )
    docs = documents(manifests)
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert pod["automountServiceAccountToken"] is False
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["resources"]["limits"]["cpu"] == "2"
    # Writable: the state volume and /tmp (the worker set's private directory) only.
    assert {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")} == {
        "/var/lib/wassette",
        "/tmp",
    }
    assert docs["Secret"]["stringData"] == {"auth-token": "s3cret"}
    assert docs["Service"]["spec"]["sessionAffinity"] == "ClientIP"
    egress = docs["NetworkPolicy"]["spec"]["egress"]
    assert egress == [{"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}]
    config = docs["ConfigMap"]["data"]["config.toml"]
    validate(tomllib.loads(config), "config.toml")  # our own schema accepts what the chart writes


def test_replicas_need_a_shared_state() -> None:
    """Two replicas each with its own volume would be two different servers:
    refused; with a database URL the chart makes its Secret and passes it on."""
    done = helm("template", "mcp", str(CHART), "--set", "auth.token=t", "--set", "replicaCount=3")
    assert done.returncode != 0 and "needs a shared state: set state.url" in done.stderr
    url = "postgresql://wassette:pw@db.tools.svc:5432/wassette"
    manifests = render("--set", "auth.token=t", "--set", "replicaCount=3", "--set", f"state.url={url}",
                       "--set", "state.secretsKey=AAAA")  # fmt: skip
    validated(manifests)
    secrets = [d for d in yaml.safe_load_all(manifests) if d and d["kind"] == "Secret"]
    state = next(d for d in secrets if d["metadata"]["name"].endswith("-state"))
    assert state["stringData"] == {"database-url": url, "secrets-key": "AAAA"}
    docs = documents(manifests)
    assert docs["Deployment"]["spec"]["replicas"] == 3
    env = {e["name"]: e for e in docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["WASSETTE_STATE"]["valueFrom"]["secretKeyRef"]["name"] == state["metadata"]["name"]
    assert url not in json.dumps(docs["Deployment"])  # the URL (and its password) only in the Secret


def test_every_option_is_valid() -> None:
    manifests = render(*EVERYTHING)
    kinds = validated(manifests)
    assert "HorizontalPodAutoscaler" in kinds and "Secret" not in kinds
    docs = documents(manifests)
    deployment = docs["Deployment"]["spec"]
    assert "replicas" not in deployment  # the autoscaler owns it
    container = deployment["template"]["spec"]["containers"][0]
    args = container["args"]
    assert args[args.index("--workers") + 1] == "3"
    assert "--manifest" in args and "--continue-on-provisioning-failure" in args
    assert "mcp.example.internal" in args and "mcp-wassette.tools.svc" in args
    assert (
        deployment["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == "wassette-state"
    )
    env = {e["name"]: e for e in container["env"]}
    assert env["WASSETTE_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "wassette-token"
    assert env["WASSETTE_STATE"]["valueFrom"]["secretKeyRef"] == {
        "name": "wassette-db",
        "key": "database-url",
    }
    assert env["WASSETTE_SECRETS_KEY"]["valueFrom"]["secretKeyRef"]["key"] == "secrets-key"
    manifest = yaml.safe_load(docs["ConfigMap"]["data"]["provisioning.yaml"])
    assert manifest["components"][0]["uri"] == "oci://registry.example/tools/fetch:1.0"


def test_the_container_command_line_serves(tmp_path: Path) -> None:
    """The chart's args and environment, with its paths moved under a temp
    dir, start a server that answers the probes (Host: localhost, no token)
    and refuses a request without the token."""
    docs = documents(render("--set", "auth.token=s3cret", "--set", "config=timeout_ms = 5000"))
    container = docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    root = tmp_path / "root"

    def moved(value: str) -> str:
        for prefix in ("/var/lib/wassette", "/etc/wassette", "/tmp"):
            if value.startswith(prefix):
                return str(root) + value
        return value

    (root / "etc/wassette").mkdir(parents=True)
    (root / "tmp").mkdir()
    (root / "etc/wassette/config.toml").write_text(docs["ConfigMap"]["data"]["config.toml"])
    env = {"PATH": os.environ["PATH"], "PYTHONUNBUFFERED": "1", "WASSETTE_AUTH_TOKEN": "s3cret"}
    for item in container["env"]:
        if "value" in item:
            env[item["name"]] = moved(item["value"])
    args = [moved(a) for a in container["args"][1:]]  # after `serve`
    bind = args.index("--bind-address")
    # A free loopback port here, not 0.0.0.0:9001 (the helper binds it), and the address the
    # helper's own readiness check names, next to the chart's hosts.
    args = [*args[:bind], *args[bind + 2 :], "--allowed-host", "127.0.0.1"]
    with http_server(env, tmp_path / "serve.log", *args) as server:
        probe = httpx.get(f"{server.base}/ready", headers={"host": "localhost"})
        assert probe.status_code == 200
        refused = httpx.post(
            server.url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers={"host": "localhost"}
        )
        assert refused.status_code == 401
