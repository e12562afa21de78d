"""Policy diffs: the pure comparison (runtime/policy_diff.py), rule by rule,
and `wassette policy diff ID FILE|pending` as a user runs it. (Loading a
new version whose shipped policy is wider: tests/distribution/test_policy_upgrade.py.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from homes import Cli
from wassette.runtime import policy as policy_mod
from wassette.runtime.policy import Limits
from wassette.runtime.policy_diff import diff, path_covers


def pol(**perms: Any) -> policy_mod.Policy:
    return policy_mod.validate({"version": "1.0", "permissions": perms})


def changes(old: policy_mod.Policy, new: policy_mod.Policy, **kw: Any) -> list[tuple[str, str, str, bool]]:
    return [(c.change, c.section, c.rule, c.wider) for c in diff(old, new, **kw).changes]


def test_identical_policies_have_no_change() -> None:
    p = pol(
        storage={"allow": [{"uri": "fs:///data", "access": ["read"]}]}, network={"allow": [{"host": "a.com"}]}
    )
    d = diff(p, p)
    assert d.empty and not d.wider and d.lines() == ["no change: both policies grant the same"]


def test_storage_added_removed_widened_narrowed() -> None:
    old = pol(
        storage={
            "allow": [
                {"uri": "fs:///data", "access": ["read"]},
                {"uri": "fs:///logs", "access": ["read", "write"]},
            ]
        }
    )
    new = pol(
        storage={
            "allow": [
                {"uri": "fs:///data", "access": ["read", "write"]},
                {"uri": "fs:///etc", "access": ["read"]},
            ]
        }
    )
    assert changes(old, new) == [
        ("widened", "storage", "fs:///data", True),
        ("added", "storage", "fs:///etc", True),
        ("removed", "storage", "fs:///logs", False),
    ]
    assert changes(new, old)[0] == ("narrowed", "storage", "fs:///data", False)


def test_an_added_rule_an_old_one_covers_is_not_wider() -> None:
    old = pol(storage={"allow": [{"uri": "fs:///data", "access": ["read"]}, {"uri": "fs:///csv/**/*.csv"}]})
    new = pol(storage={"allow": [{"uri": "fs:///data/a/b.txt"}, {"uri": "fs:///csv/x/y.csv"}]})
    d = diff(old, new)
    added = [c for c in d.changes if c.change == "added"]
    assert [(c.rule, c.covered_by, c.wider) for c in added] == [
        ("fs:///data/a/b.txt", "fs:///data", False),
        ("fs:///csv/x/y.csv", "fs:///csv/**/*.csv", False),
    ]
    assert not d.wider
    # Writing is not covered by a read grant.
    assert diff(old, pol(storage={"allow": [{"uri": "fs:///data/x", "access": ["write"]}]})).wider
    # A sibling with a common prefix is not below the directory.
    assert diff(old, pol(storage={"allow": [{"uri": "fs:///database"}]})).wider


def test_relative_paths_resolve_against_the_storage_base(tmp_path: Path) -> None:
    old = pol(storage={"allow": [{"uri": "fs://project", "access": ["read"]}]})
    new = pol(storage={"allow": [{"uri": f"fs://{tmp_path}/project/README.md", "access": ["read"]}]})
    assert not diff(old, new, base=tmp_path).wider
    assert diff(old, new).wider  # without the base, a relative path covers no absolute one


def test_path_covers() -> None:
    assert path_covers("/a", "/a/b/c") and path_covers("/a", "/a")
    assert not path_covers("/a/b", "/a") and not path_covers("/a", "/ab")
    assert path_covers("/a/**", "/a/b/c") and path_covers("/a/*.md", "/a/x.md")
    assert not path_covers("/a/*.md", "/a/b/x.md") and path_covers("/a/**/*.md", "/a/b/x.md")
    assert path_covers("/a", "/a/**/*.md") and not path_covers("/a/*", "/a/**")


def test_removing_a_deny_rule_is_wider_adding_one_is_not() -> None:
    old = pol(storage={"allow": [{"uri": "fs:///p"}], "deny": [{"uri": "fs:///p/.env"}]})
    new = pol(storage={"allow": [{"uri": "fs:///p"}]})
    assert changes(old, new) == [("removed", "storage", "fs:///p/.env", True)]
    assert changes(new, old) == [("added", "storage", "fs:///p/.env", False)]
    # Still covered by a wider deny rule: not wider.
    kept = pol(storage={"allow": [{"uri": "fs:///p"}], "deny": [{"uri": "fs:///p"}]})
    assert not diff(old, kept).wider
    net_old = pol(network={"deny": [{"cidr": "169.254.169.254/32"}]})
    assert diff(net_old, pol()).wider and not diff(pol(), net_old).wider
    env_old = pol(environment={"deny": [{"key": "SECRET_*"}]})
    assert diff(env_old, pol()).wider


@pytest.mark.parametrize(
    ("old", "new", "change", "wider"),
    [
        ("api.example.com", "https://api.example.com", "narrowed", False),
        ("https://api.example.com", "api.example.com", "widened", True),
        ("https://api.example.com", "https://api.example.com:8443", "widened", True),
        ("http://127.0.0.1:8080", "127.0.0.1:8080", "widened", True),
    ],
)
def test_network_rules_compare_by_what_they_reach(old: str, new: str, change: str, wider: bool) -> None:
    [c] = diff(pol(network={"allow": [{"host": old}]}), pol(network={"allow": [{"host": new}]})).changes
    assert (c.change, c.wider) == (change, wider)
    assert c.before and c.after


def test_network_coverage_by_wildcards_cidrs_and_ports() -> None:
    old = pol(
        network={
            "allow": [
                {"host": "*.example.com"},
                {"cidr": "10.0.0.0/8", "protocols": ["tcp"]},
                {"host": "db.internal", "protocols": ["tcp"], "ports": [5432]},
            ]
        }
    )
    covered = pol(
        network={
            "allow": [
                {"host": "https://api.example.com"},
                {"host": "10.1.2.3", "protocols": ["tcp"], "ports": [6379]},
                {"cidr": "10.1.0.0/16", "protocols": ["tcp"]},
            ]
        }
    )
    assert not diff(old, covered).wider
    for rule in (
        {"host": "example.com"},  # the wildcard does not name the domain itself
        {"host": "10.1.2.3"},  # http is not raw tcp
        {"host": "db.internal", "protocols": ["tcp"], "ports": [5433]},
        {"host": "db.internal", "protocols": ["udp"], "ports": [5432]},
    ):
        assert diff(old, pol(network={"allow": [rule]})).wider, rule


def test_environment_keys_and_globs() -> None:
    old = pol(environment={"allow": [{"key": "APP_*"}, {"key": "HOME"}]})
    new = pol(environment={"allow": [{"key": "APP_TOKEN"}, {"key": "API_KEY"}]})
    assert changes(old, new) == [
        ("added", "environment", "APP_TOKEN", False),
        ("added", "environment", "API_KEY", True),
        ("removed", "environment", "APP_*", False),
        ("removed", "environment", "HOME", False),
    ]


def test_limits_compare_as_enforced_with_defaults() -> None:
    defaults = Limits(memory_bytes=512 * 2**20, timeout_ms=30_000)
    tight = pol(resources={"limits": {"memory": "64Mi", "timeout": "2s", "cpu": "500m"}})
    assert changes(pol(), tight, defaults=defaults) == [
        ("narrowed", "resources", "memory", False),
        ("narrowed", "resources", "timeout", False),
        ("narrowed", "resources", "cpu time", False),
    ]
    assert [c[3] for c in changes(tight, pol(), defaults=defaults)] == [True, True, True]
    big = pol(resources={"limits": {"memory": "1Gi"}})
    [c] = diff(pol(), big, defaults=defaults).changes
    assert (c.change, c.before, c.after, c.wider) == ("widened", "512Mi", "1024Mi", True)
    assert c.line() == "~ resources         memory: 512Mi -> 1024Mi  [widened, wider]"


def test_json_and_summary() -> None:
    d = diff(pol(), pol(network={"allow": [{"host": "a.com"}]}))
    assert d.to_json() == {
        "wider": True,
        "changes": [
            {
                "change": "added",
                "section": "network",
                "kind": "allow",
                "rule": "a.com",
                "wider": True,
                "after": "http:80, https:443, tcp:443, tcp:80",
            }
        ],
    }
    assert d.summary() == "added network a.com"


# -- `wassette policy diff` ---------------------------------------------------------------


def test_policy_diff_cli(cli: Cli, components: dict[str, Path], tmp_path: Path) -> None:
    assert cli("component", "load", components["io"].as_uri()).returncode == 0
    current = tmp_path / "current.yaml"
    current.write_text(
        yaml.safe_dump(
            {
                "version": "1.0",
                "permissions": {
                    "storage": {"allow": [{"uri": "fs:///srv/data", "access": ["read"]}]},
                    "network": {"allow": [{"host": "https://api.example.com"}]},
                },
            }
        )
    )
    assert cli("policy", "attach", "io", str(current)).returncode == 0
    proposed = tmp_path / "proposed.yaml"
    proposed.write_text(
        yaml.safe_dump(
            {
                "version": "1.0",
                "permissions": {
                    "storage": {"allow": [{"uri": "fs:///srv/data", "access": ["read", "write"]}]},
                    "environment": {"allow": [{"key": "API_KEY"}]},
                },
            }
        )
    )
    done = cli("policy", "diff", "io", str(proposed))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "~ storage allow     fs:///srv/data: read -> read, write  [widened, wider]",
        "- network allow     https://api.example.com (https:443)  [removed]",
        "+ environment allow API_KEY  [added, wider]",
    ]
    report = json.loads(cli("policy", "diff", "io", proposed.as_uri(), "--output", "json").stdout)
    assert report["component_id"] == "io" and report["wider"] is True
    assert [(c["change"], c["rule"]) for c in report["changes"]] == [
        ("widened", "fs:///srv/data"),
        ("removed", "https://api.example.com"),
        ("added", "API_KEY"),
    ]
    # Nothing was applied.
    assert yaml.safe_load(cli("policy", "get", "io", "-o", "yaml").stdout) == yaml.safe_load(
        current.read_text()
    )
    done = cli("policy", "diff", "io", str(current))
    assert done.stdout.strip() == "no change: both policies grant the same"

    done = cli("policy", "diff", "io", "pending")
    assert done.returncode == 1 and "has no policy waiting for acceptance" in done.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1.0\npermissions: {netwrk: {}}\n")
    done = cli("policy", "diff", "io", str(bad))
    assert done.returncode == 1 and "permissions.netwrk: unknown field" in done.stderr
    done = cli("policy", "diff", "nope", str(current))
    assert done.returncode == 1 and "nope" in done.stderr


def test_policy_diff_of_a_remote_policy_is_verified_like_attach(
    cli: Cli, env: dict[str, str], components: dict[str, Path], https_server: Any
) -> None:
    import hashlib

    text = yaml.safe_dump(
        {"version": "1.0", "permissions": {"network": {"allow": [{"host": "api.example.com"}]}}}
    )
    https_server.files["/policies/diff.yaml"] = text.encode()
    url = f"{https_server.url}/policies/diff.yaml"
    cli.env = {**env, "WASSETTE_CA_BUNDLE": str(https_server.ca)}
    assert cli("component", "load", components["io"].as_uri()).returncode == 0
    done = cli("policy", "diff", "io", url)
    assert done.returncode == 1 and "is not pinned" in done.stderr  # the default trust mode: require
    digest = "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    done = cli("policy", "diff", "io", url, "--digest", digest)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("+ network allow     api.example.com")
    assert json.loads(cli("policy", "get", "io").stdout)["permissions"] == {}
