"""Policies: the format, validation, grants and revocations, environment
variables, secrets, limits and the audit log, end to end through the CLI."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from wassette.runtime import policy as policy_mod
from wassette.runtime.policy import PolicyError

WASSETTE_EXAMPLE = """
version: "1.0"
description: "An example policy"
permissions:
  storage:
    allow:
      - uri: "fs:///tmp/data"
        access: [read, write]
      - uri: "fs://workspace/**"
        access: [read]
    deny:
      - uri: "fs://workspace/secrets/**"
  network:
    allow:
      - host: "api.example.com"
      - host: "*.github.com"
      - host: "https://api.x.com"
      - cidr: "10.0.0.0/8"
      - host: "api.y.com"
        protocols: ["https"]
    deny:
      - host: "localhost"
      - host: "127.0.0.1"
  environment:
    allow:
      - key: "API_KEY"
      - key: "USER_CONFIG_*"
    deny:
      - key: "SYSTEM_*"
  resources:
    limits:
      memory: "512Mi"
      cpu: "500m"
"""


def test_wassette_policy_reads_unchanged() -> None:
    """The documented Wassette example parses, every field understood."""
    p = policy_mod.parse(WASSETTE_EXAMPLE, source="example.yaml")
    assert [r.uri for r in p.storage_allow] == ["fs:///tmp/data", "fs://workspace/**"]
    assert p.storage_allow[0].access == ("read", "write")
    assert p.network_allow[1].host == "*.github.com"
    assert p.network_allow[2].schemes == ("https",) and p.network_allow[2].host == "api.x.com"
    assert p.network_allow[3].cidr == "10.0.0.0/8"
    assert p.network_allow[4].schemes == ("https",)
    assert p.env_allow[1].matches("USER_CONFIG_HOME") and not p.env_allow[1].matches("USER")
    assert p.limits.memory_bytes == 512 * 1024 * 1024 and p.limits.cpu_cores == 0.5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: '2.0'\n", "p.yaml: version: '2.0' is not supported"),
        ("permissions: {}\n", "p.yaml: version: is required"),
        ("version: '1.0'\nperms: {}\n", "p.yaml: perms: unknown field"),
        (
            "version: '1.0'\npermissions: {network: {allow: [{cidr: 10.0.0.0/33}]}}\n",
            "p.yaml: permissions.network.allow[0].cidr: '10.0.0.0/33' is not a valid CIDR",
        ),
        (
            "version: '1.0'\npermissions: {storage: {allow: [{uri: 'fs:///a/b**c'}]}}\n",
            "p.yaml: permissions.storage.allow[0].uri: bad glob '/a/b**c'",
        ),
        (
            "version: '1.0'\npermissions: {storage: {allow: [{uri: 'fs:///a/[ab]'}]}}\n",
            "unsupported glob character '['",
        ),
        (
            "version: '1.0'\npermissions: {storage: {allow: [{uri: '/no/scheme'}]}}\n",
            "permissions.storage.allow[0].uri: '/no/scheme' must start with fs://",
        ),
        (
            "version: '1.0'\npermissions: {storage: {allow: [{uri: 'fs:///x', access: [execute]}]}}\n",
            "permissions.storage.allow[0].access: 'execute' is not one of: read, write",
        ),
        (
            "version: '1.0'\npermissions: {network: {allow: [{host: 'exa mple.com'}]}}\n",
            "is not a valid host name",
        ),
        (
            "version: '1.0'\npermissions: {network: {allow: [{host: 'ftp://x.com'}]}}\n",
            "scheme 'ftp' is not supported",
        ),
        (
            "version: '1.0'\npermissions: {network: {allow: [{host: x.com, protocols: [smtp]}]}}\n",
            "'smtp' is not one of",
        ),
        (
            "version: '1.0'\npermissions: {environment: {allow: [{key: 'A-B'}]}}\n",
            "permissions.environment.allow[0].key: 'A-B' is not a variable name",
        ),
        (
            "version: '1.0'\npermissions: {resources: {limits: {memory: lots}}}\n",
            "permissions.resources.limits.memory: 'lots' is not a memory size",
        ),
        ("version: '1.0'\npermissions: [1, 2\n", "p.yaml: invalid YAML (line"),
    ],
)
def test_validation_names_file_field_and_problem(text: str, message: str) -> None:
    """A policy we cannot enforce is rejected whole, with a precise message."""
    with pytest.raises(PolicyError) as e:
        policy_mod.parse(text, source="p.yaml")
    assert message in str(e.value)


def test_schema_key_is_accepted() -> None:
    p = policy_mod.parse("$schema: https://example.com/policy.json\nversion: '1.0'\n")
    assert p.storage_allow == ()


SCHEMA_AGREEMENT = [
    (WASSETTE_EXAMPLE, True),
    ("version: 1\n", True),
    ("version: '1.2'\npermissions: {storage: {allow: [{uri: 'fs://~/x', access: write}]}}\n", True),
    (
        "version: '1.0'\npermissions: {network: {allow: [{host: db, protocols: [tcp], ports: [5432]}]}}\n",
        True,
    ),
    (
        "version: '1.0'\npermissions: {resources: {cpu_time_ms: 50, limits: {timeout: 2s, memory: 1048576}}}\n",
        True,
    ),
    ("version: '2.0'\n", False),
    ("permissions: {}\n", False),
    ("version: '1.0'\nperms: {}\n", False),
    ("version: '1.0'\npermissions: {storage: {allow: [{uri: '/no/scheme'}]}}\n", False),
    ("version: '1.0'\npermissions: {storage: {allow: [{uri: 'fs:///x', access: [execute]}]}}\n", False),
    ("version: '1.0'\npermissions: {storage: {deny: [{uri: 'fs:///x', access: [read]}]}}\n", False),
    ("version: '1.0'\npermissions: {storage: {allow: [{uri: 'fs:///a/[ab]'}]}}\n", False),
    ("version: '1.0'\npermissions: {network: {allow: [{host: a.com, cidr: 10.0.0.0/8}]}}\n", False),
    ("version: '1.0'\npermissions: {network: {allow: [{host: x.com, protocols: [smtp]}]}}\n", False),
    ("version: '1.0'\npermissions: {network: {allow: [{host: x.com, ports: [70000]}]}}\n", False),
    ("version: '1.0'\npermissions: {environment: {allow: [{key: 'A-B'}]}}\n", False),
    ("version: '1.0'\npermissions: {resources: {limits: {memory: lots}}}\n", False),
    ("version: '1.0'\npermissions: {resources: {limits: {timeout: soon}}}\n", False),
]


@pytest.mark.parametrize(("text", "valid"), SCHEMA_AGREEMENT)
def test_shipped_json_schema_agrees_with_the_validator(text: str, valid: bool) -> None:
    """The JSON Schema we ship (for editors, `$schema`) accepts what the server
    accepts and rejects what it rejects, for everything a schema can express."""
    import jsonschema
    import yaml

    schema = json.loads(policy_mod.schema_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    schema_ok = jsonschema.Draft202012Validator(schema).is_valid(yaml.safe_load(text))
    try:
        policy_mod.parse(text)
        server_ok = True
    except PolicyError:
        server_ok = False
    assert (schema_ok, server_ok) == (valid, valid)


def test_policy_schema_command(cli) -> None:
    r = cli("policy", "schema")
    assert r.returncode == 0 and json.loads(r.stdout)["title"].startswith("Wassette component policy")


@pytest.fixture
def io_loaded(cli, components: dict[str, Path]) -> None:
    assert cli("component", "load", components["io"].as_uri()).returncode == 0


def invoke(cli, tool: str, args: dict, *extra: str) -> tuple[int, object, str]:
    r = cli("tool", "invoke", tool, "--args", json.dumps(args), *extra)
    value = json.loads(r.stdout)["result"] if r.stdout.strip() else None
    return r.returncode, value, r.stderr


def test_environment_is_denied_by_default(cli, io_loaded, env: dict[str, str]) -> None:
    """No policy: not even the server's own environment is visible."""
    assert "HOME" in env
    assert invoke(cli, "env-count", {})[1] == 0
    assert invoke(cli, "get-env", {"key": "HOME"})[1] is None


def test_environment_grant_and_sources(cli, io_loaded, tmp_path: Path, home: Path) -> None:
    """A granted key takes its value from the server env, --env-file, --env or
    config [environment_vars]; un-granted keys stay invisible."""
    r = cli("permission", "grant", "environment-variable", "io", "API_*")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["status"] == "permission granted successfully"
    envfile = tmp_path / "vars.env"
    envfile.write_text("# comment\nAPI_FILE='from file'\nOTHER=hidden\n")
    (home / "config" / "wassette").mkdir(parents=True, exist_ok=True)
    (home / "config" / "wassette" / "config.toml").write_text(
        '[environment_vars]\nAPI_CONF = "from config"\n'
    )
    extra = ("--env", "API_FLAG=from flag", "--env-file", str(envfile))
    assert invoke(cli, "get-env", {"key": "API_FLAG"}, *extra)[1] == "from flag"
    assert invoke(cli, "get-env", {"key": "API_FILE"}, *extra)[1] == "from file"
    assert invoke(cli, "get-env", {"key": "API_CONF"}, *extra)[1] == "from config"
    assert invoke(cli, "get-env", {"key": "OTHER"}, *extra)[1] is None
    assert invoke(cli, "env-count", {}, *extra)[1] == 3


def test_environment_deny_wins(cli, io_loaded) -> None:
    cli("permission", "grant", "environment-variable", "io", "APP_*")
    r = cli("policy", "get", "io", "-o", "json")
    doc = json.loads(r.stdout)
    doc["permissions"]["environment"]["deny"] = [{"key": "APP_SECRET"}]
    path = Path(cli.env["XDG_DATA_HOME"]) / "wassette/components/io.policy.yaml"
    path.write_text(json.dumps(doc))  # JSON is YAML
    extra = ("--env", "APP_NAME=a", "--env", "APP_SECRET=s")
    assert invoke(cli, "get-env", {"key": "APP_NAME"}, *extra)[1] == "a"
    assert invoke(cli, "get-env", {"key": "APP_SECRET"}, *extra)[1] is None


def test_revoke_and_reset(cli, io_loaded) -> None:
    cli("permission", "grant", "environment-variable", "io", "K1")
    cli("permission", "grant", "environment-variable", "io", "K2")
    assert invoke(cli, "env-count", {}, "--env", "K1=1", "--env", "K2=2")[1] == 2
    assert cli("permission", "revoke", "environment-variable", "io", "K1").returncode == 0
    assert invoke(cli, "env-count", {}, "--env", "K1=1", "--env", "K2=2")[1] == 1
    r = cli("permission", "revoke", "environment-variable", "io", "K1")
    assert r.returncode == 1 and "has no environment permission for 'K1'" in r.stderr
    assert cli("permission", "reset", "io").returncode == 0
    assert invoke(cli, "env-count", {}, "--env", "K2=2")[1] == 0
    assert json.loads(cli("policy", "get", "io").stdout) == {"version": "1.0", "permissions": {}}


def test_secrets_are_private(cli, components: dict[str, Path], tmp_path: Path, home: Path) -> None:
    """Secrets: 0700/0600 on disk, never listed with their values, visible only
    to their own component, never in the audit log."""
    other = tmp_path / "other.wasm"
    other.write_bytes(components["io"].read_bytes())
    cli("component", "load", components["io"].as_uri())
    cli("component", "load", other.as_uri())
    r = cli("secret", "set", "io", "TOKEN=s3cr3t-value", "USER_NAME=me")
    assert r.returncode == 0, r.stderr
    secrets_dir = home / "config" / "wassette" / "secrets"
    assert stat.S_IMODE(secrets_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((secrets_dir / "io.yaml").stat().st_mode) == 0o600
    listed = cli("secret", "list", "io").stdout
    assert "TOKEN" in listed and "s3cr3t-value" not in listed
    assert json.loads(cli("secret", "list", "io").stdout) == [{"key": "TOKEN"}, {"key": "USER_NAME"}]
    names = {t["name"] for t in json.loads(cli("tool", "list").stdout)}
    io_get = "io__get-env" if "io__get-env" in names else "get-env"
    other_get = "other__get-env"
    assert invoke(cli, io_get, {"key": "TOKEN"})[1] == "s3cr3t-value"
    assert invoke(cli, other_get, {"key": "TOKEN"})[1] is None
    assert cli("secret", "delete", "io", "TOKEN").returncode == 0
    assert invoke(cli, io_get, {"key": "TOKEN"})[1] is None
    audit = (home / "data" / "wassette" / "audit.jsonl").read_text()
    assert "secret_set" in audit and "s3cr3t-value" not in audit


def test_memory_and_cpu_limits_from_policy(cli, components: dict[str, Path], component_dir: Path) -> None:
    """`resources.limits.memory` caps memory; `cpu` budgets CPU time per call."""
    cli("component", "load", components["grow"].as_uri())
    cli("component", "load", components["spin"].as_uri())
    assert cli("permission", "grant", "memory", "grow", "1Mi").returncode == 0
    code, _, err = invoke(cli, "grow-loop", {})
    assert code == 1 and "memory limit exceeded" in err and "1 MiB" in err
    (component_dir / "spin.policy.yaml").write_text(
        "version: '1.0'\npermissions:\n  resources:\n    limits: {cpu: 100m, timeout: 2s}\n"
    )
    code, _, err = invoke(cli, "spin", {})
    assert code == 1 and "CPU-time limit exceeded" in err and "200 ms" in err


def test_broken_policy_disables_only_that_component(
    cli, components: dict[str, Path], component_dir: Path
) -> None:
    """A broken policy file: that component fails to load with a clear message;
    the others keep working."""
    cli("component", "load", components["io"].as_uri())
    cli("component", "load", components["arith"].as_uri())
    (component_dir / "io.policy.yaml").write_text(
        "version: '1.0'\npermissions: {network: {allow: [{cidr: nope}]}}\n"
    )
    r = cli("component", "list")
    assert [c["id"] for c in json.loads(r.stdout)] == ["arith"]
    assert "io.policy.yaml: permissions.network.allow[0].cidr: 'nope' is not a valid CIDR" in r.stderr
    code, value, _ = invoke(cli, "add", {"a": 1, "b": 2})
    assert (code, value) == (0, 3)


def test_attach_policy_file(cli, io_loaded, tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("version: '1.0'\npermissions:\n  environment:\n    allow: [{key: ONLY_THIS}]\n")
    r = cli("policy", "attach", "io", str(good))
    assert r.returncode == 0, r.stderr
    assert invoke(cli, "get-env", {"key": "ONLY_THIS"}, "--env", "ONLY_THIS=yes")[1] == "yes"
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: '1.0'\nbogus: 1\n")
    r = cli("policy", "attach", "io", str(bad))
    assert r.returncode == 1 and "bad.yaml: bogus: unknown field" in r.stderr
    # the previous policy is untouched
    assert invoke(cli, "get-env", {"key": "ONLY_THIS"}, "--env", "ONLY_THIS=yes")[1] == "yes"


def test_policy_get_formats(cli, io_loaded) -> None:
    cli("permission", "grant", "storage", "io", "fs:///tmp", "--access", "read")
    cli("permission", "grant", "network", "io", "api.example.com")
    as_yaml = cli("policy", "get", "io", "-o", "yaml").stdout
    assert "fs:///tmp" in as_yaml and "api.example.com" in as_yaml
    table = cli("policy", "get", "io", "-o", "table").stdout.splitlines()
    assert table[0].split() == ["KIND", "RULE", "ACCESS"]
    assert any(line.split() == ["storage", "fs:///tmp", "read"] for line in table)


def test_grant_rejects_invalid_input_and_keeps_file(cli, io_loaded, component_dir: Path) -> None:
    cli("permission", "grant", "network", "io", "api.example.com")
    before = (component_dir / "io.policy.yaml").read_bytes()
    r = cli("permission", "grant", "network", "io", "10.0.0.0/99")
    assert r.returncode == 1 and "is not a valid CIDR" in r.stderr
    r = cli("permission", "grant", "storage", "io", "/no/scheme", "--access", "read")
    assert r.returncode == 1 and "must start with fs://" in r.stderr
    r = cli("permission", "grant", "memory", "io", "lots")
    assert r.returncode == 1 and "not a memory size" in r.stderr
    r = cli("permission", "grant", "network", "nope", "x.com")
    assert r.returncode == 1 and "no component with id 'nope'" in r.stderr
    assert (component_dir / "io.policy.yaml").read_bytes() == before


def test_audit_records_changes(cli, io_loaded, home: Path) -> None:
    cli("permission", "grant", "network", "io", "api.example.com")
    cli("permission", "revoke", "network", "io", "api.example.com")
    lines = [json.loads(x) for x in (home / "data/wassette/audit.jsonl").read_text().splitlines()]
    events = [(x["event"], x.get("component"), x.get("by")) for x in lines]
    assert ("granted", "io", "cli") in events and ("revoked", "io", "cli") in events
    assert os.stat(home / "data/wassette/audit.jsonl").st_mode & 0o077 == 0


def test_wasi_config_store_serves_granted_variables_and_secrets(cli, components: dict[str, Path]) -> None:
    """Components that read configuration through `wasi:config/store` (as
    Wassette's get-weather-js does) see exactly what the environment grants:
    granted variables and the component's secrets, nothing else."""
    assert cli("component", "load", components["config-probe"].as_uri()).returncode == 0
    assert invoke(cli, "config-keys", {}, "--env", "API_KEY=k")[1] == []
    cli("permission", "grant", "environment-variable", "config-probe", "API_KEY")
    cli("secret", "set", "config-probe", "TOKEN=t0k")
    extra = ("--env", "API_KEY=k", "--env", "OTHER=o")
    assert invoke(cli, "get-config", {"key": "API_KEY"}, *extra)[1] == "k"
    assert invoke(cli, "get-config", {"key": "TOKEN"}, *extra)[1] == "t0k"
    assert invoke(cli, "get-config", {"key": "OTHER"}, *extra)[1] is None
    assert invoke(cli, "config-keys", {}, *extra)[1] == ["API_KEY", "TOKEN"]


def test_audit_records_follow_the_published_schema(
    cli, components: dict[str, Path], home: Path, tmp_path: Path
) -> None:
    """Every kind of record the scenario makes validates against
    wassette/runtime/audit.schema.json (the stable schema log shippers read)."""
    import jsonschema

    from wassette.runtime import audit

    schema = json.loads((Path(audit.__file__).parent / "audit.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    for name in ("io", "spin"):
        assert cli("component", "load", components[name].as_uri()).returncode == 0
    (home / "config/wassette").mkdir(parents=True, exist_ok=True)
    (home / "config/wassette/config.toml").write_text("timeout_ms = 300\n")
    cli("permission", "grant", "network", "io", "api.example.com")
    cli("permission", "revoke", "network", "io", "api.example.com")
    cli("tool", "invoke", "read-file", "--args", '{"path": "/etc/hostname"}')
    cli("tool", "invoke", "spin", "--args", "{}")
    cli("secret", "set", "io", "K=v")
    cli("secret", "delete", "io", "K")
    policy = tmp_path / "p.yaml"
    policy.write_text('version: "1.0"\npermissions: {}\n')
    cli("policy", "attach", "io", str(policy))
    cli("permission", "reset", "io")
    records = [json.loads(x) for x in (home / "data/wassette/audit.jsonl").read_text().splitlines()]
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    for record in records:
        validator.validate(record)
    seen = {r["event"] for r in records}
    assert seen >= {
        "granted",
        "revoked",
        "denied",
        "stopped",
        "secret_set",
        "secret_deleted",
        "policy_attached",
        "reset",
    }
    assert "v" not in [str(r.get("keys")) for r in records]  # names, never values
    # A tenant's load over its quota (config [tenants]), in its own audit log.
    (home / "config/wassette/config.toml").write_text(
        '[tenants]\nclaim = "org"\n[tenants.quota.q]\ncomponents = 1\n'
    )
    assert cli("component", "load", components["io"].as_uri(), "--tenant", "q").returncode == 0
    assert cli("component", "load", components["spin"].as_uri(), "--tenant", "q").returncode != 0
    theirs = [json.loads(x) for x in (home / "data/wassette/tenants/q/audit.jsonl").read_text().splitlines()]
    for record in theirs:
        validator.validate(record)
    assert [r["quota"] for r in theirs if r["event"] == "over_quota"] == ["components"]
