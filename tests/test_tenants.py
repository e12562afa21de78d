"""Tenants (config [tenants]): each OAuth caller's tenant has its own
components, policies, secrets, approvals and audit log, and no request of
one tenant reaches another's: guessed tool names, component ids, session
ids, ids with path separators, change notifications, the audit log. Per
tenant quotas refuse what is over them with a clear error. Every probe is
made with a valid token of a real issuer (tests/issuer.py)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from homes import Cli
from issuer import INIT, RESOURCE, Issuer
from servers import RAW_HEADERS, HttpServer, RawSession, all_serving, http_server, messages, pinned

CONFIG = """
oauth_jwks_min_refresh_s = 1
[tenants]
claim = "org"
[tenants.map]
"svc-robot" = "globex"
[tenants.quota.solo]
concurrent_calls = 1
[tenants.quota.tiny]
components = 1
[tenants.quota.slow]
calls_per_minute = 5
[tenants.quota.small]
compiled_cache_bytes = 1
"""
SPIN_POLICY = 'version: "1.0"\npermissions:\n  resources: {limits: {timeout: 500ms}}\n'


@pytest.fixture(scope="module")
def tenants_env(module_env: dict[str, str]) -> dict[str, str]:
    config = Path(module_env["XDG_CONFIG_HOME"]) / "wassette" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(CONFIG)
    return {**module_env, "WASSETTE_WORKERS": "1"}


@pytest.fixture(scope="module")
def loaded(tenants_env: dict[str, str], components: dict[str, Path], tmp_path_factory: Any) -> Cli:
    """acme has arith, globex has io, the untenanted state has strings;
    solo has spin (500 ms limit) and arith. Loaded with `--tenant`."""
    cli = Cli(tenants_env)
    for tenant, name in (("acme", "arith"), ("globex", "io"), ("solo", "spin"), ("solo", "arith")):
        done = cli("component", "load", components[name].as_uri(), "--tenant", tenant)
        assert done.returncode == 0, done.stderr
    policy = tmp_path_factory.mktemp("policy") / "spin.yaml"
    policy.write_text(SPIN_POLICY)
    assert cli("policy", "attach", "spin", str(policy), "--tenant", "solo").returncode == 0
    assert cli("component", "load", components["strings"].as_uri()).returncode == 0
    return cli


@pytest.fixture(scope="module")
def server(
    issuer: Issuer, tenants_env: dict[str, str], loaded: Cli, tmp_path_factory: Any
) -> Iterator[HttpServer]:
    log = tmp_path_factory.mktemp("tenants") / "serve.log"
    args = ("--oauth-issuer", issuer.url, "--oauth-resource", RESOURCE, "--agent-grants", "allow")
    with http_server(tenants_env, log, *args) as srv:
        yield srv


def auth(issuer: Issuer, org: Any, sub: str = "alice") -> dict[str, str]:
    return {"authorization": f"Bearer {issuer.token(sub=sub, org=org)}"}


def session(server: HttpServer, issuer: Issuer, org: Any, sub: str = "alice") -> RawSession:
    return RawSession(server.url, headers=auth(issuer, org, sub))


def result(response: httpx.Response) -> dict[str, Any]:
    answer = messages(response)[-1]
    assert "result" in answer, answer
    return dict(answer["result"])


def tool_names(s: RawSession) -> set[str]:
    listed = result(s.post({"jsonrpc": "2.0", "id": 9, "method": "tools/list"}))
    return {t["name"] for t in listed["tools"]}


def error_text(response: httpx.Response) -> str:
    answer = messages(response)[-1]
    if "error" in answer:
        return str(answer["error"]["message"])
    assert answer["result"]["isError"], answer
    return str(answer["result"]["content"][0]["text"])


def test_each_tenant_sees_only_its_own(server: HttpServer, issuer: Issuer, loaded: Cli) -> None:
    acme, globex = session(server, issuer, "acme"), session(server, issuer, "globex")
    acme_tools, globex_tools = tool_names(acme), tool_names(globex)
    assert "add" in acme_tools and "read-file" not in acme_tools and "echo" not in acme_tools
    assert "read-file" in globex_tools and "add" not in globex_tools and "echo" not in globex_tools
    # A mapped subject (no claim) is its tenant's too.
    robot = session(server, issuer, None, sub="svc-robot")
    assert tool_names(robot) == globex_tools
    listing = json.dumps(result(acme.call(1, "list-components", {})))
    assert "arith" in listing and '"io"' not in listing and "strings" not in listing
    # The CLI shows each tenant's own.
    shown = loaded("component", "list", "--tenant", "globex", "--output-format", "json")
    assert shown.returncode == 0 and "io" in shown.stdout and "arith" not in shown.stdout
    untenanted = loaded("component", "list", "--output-format", "json").stdout
    assert "strings" in untenanted and "arith" not in untenanted
    info = httpx.get(f"{server.base}/info", headers=auth(issuer, "acme"), timeout=10).json()
    assert info["components"] == 1


def test_another_tenants_names_and_ids_lead_nowhere(server: HttpServer, issuer: Issuer) -> None:
    """acme guesses globex's tool name and component id, and ids that try
    to climb out of its own directory: each is unknown or invalid to it."""
    acme = session(server, issuer, "acme")

    def told(tool: str, args: dict[str, Any], name: str) -> str:
        """The error, with the guessed name made anonymous."""
        return error_text(acme.call(1, tool, args)).replace(name, "NAME")

    # Another tenant's tool or component answers exactly as one that never
    # existed: the errors tell nothing.
    assert told("read-file", {"path": "/etc/passwd"}, "read-file") == told("zz-none", {}, "zz-none")
    for tool, args in (
        ("get-policy", {"component_id": "ID"}),
        (
            "grant-storage-permission",
            {"component_id": "ID", "details": {"uri": "fs:///tmp", "access": ["read"]}},
        ),
        ("unload-component", {"id": "ID"}),
    ):
        nothing = told(tool, json.loads(json.dumps(args).replace("ID", "zz-none")), "zz-none")
        assert (
            "zz-none" not in nothing
            and told(tool, json.loads(json.dumps(args).replace("ID", "io")), "io") == nothing
        )
        for cid in (
            "../globex/components/io",
            "..",
            "../../tenants/globex",
            "io/../io",
            "/io",
            "io\\x",
            ".",
            "",
        ):
            text = error_text(
                acme.call(2, tool, json.loads(json.dumps(args).replace('"ID"', json.dumps(cid))))
            )
            low = text.lower()
            refused = ("unknown component", "not a valid component id", "no component", "non-empty string")
            assert any(words in low for words in refused), (cid, text)
    # globex's component is still there and still works for globex.
    globex = session(server, issuer, "globex")
    assert "read-file" in tool_names(globex)


def test_a_session_id_is_its_tenants_alone(server: HttpServer, issuer: Issuer) -> None:
    """The same subject in two tenants is two callers: neither uses the
    other's session (404, as for an unknown session)."""
    acme = session(server, issuer, "acme", sub="alice")
    sid = acme.headers["mcp-session-id"]
    for org, sub in (("globex", "alice"), ("globex", "mallory"), ("acme", "mallory")):
        headers = {
            **RAW_HEADERS,
            **auth(issuer, org, sub),
            "mcp-session-id": sid,
            "mcp-protocol-version": "2025-11-25",
        }
        r = httpx.post(
            server.url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, headers=headers, timeout=10
        )
        assert r.status_code == 404, (org, sub, r.text)
    assert "add" in tool_names(acme)  # still acme's, and alive


@pytest.mark.parametrize(
    ("org", "why"),
    [
        (None, "names no tenant"),
        ("../globex", "not a tenant name"),
        ("ACME", "not a tenant name"),
        ("a/b", "not a tenant name"),
        ("", "not a tenant name"),
        (["acme"], "not a tenant name"),
        (7, "not a tenant name"),
        ("x" * 64, "not a tenant name"),
    ],
    ids=["none", "dotdot", "upper", "slash", "empty", "list", "number", "too-long"],
)
def test_a_token_without_a_valid_tenant_is_refused(
    server: HttpServer, issuer: Issuer, org: Any, why: str
) -> None:
    r = httpx.post(server.url, json=INIT, headers={**RAW_HEADERS, **auth(issuer, org, "mallory")}, timeout=10)
    assert r.status_code == 403 and why in r.text, r.text
    assert httpx.get(f"{server.base}/health", timeout=10).status_code == 200
    assert "add" in tool_names(session(server, issuer, "acme"))


def test_changes_are_announced_to_their_tenant_only(
    server: HttpServer, issuer: Issuer, components: dict[str, Path]
) -> None:
    """globex listens; acme loads a component; then globex loads one: the
    first thing globex hears is its own change, never acme's."""
    listener = auth(issuer, "globex", "listener")
    globex = RawSession(server.url, headers=listener)
    with httpx.stream("GET", server.url, headers={**globex.headers, **listener}, timeout=30) as events:
        assert events.status_code == 200
        acme = session(server, issuer, "acme", sub="loader")
        loaded = result(acme.call(1, "load-component", {"path": components["counter"].as_uri()}))
        assert not loaded["isError"], loaded
        mine = session(server, issuer, "globex", sub="loader")
        loaded = result(mine.call(1, "load-component", {"path": components["stash"].as_uri()}))
        assert not loaded["isError"], loaded
        # What globex lists now: its new tools, none of acme's.
        names = tool_names(globex)
        assert {"stash", "peek"} <= names and "bump" not in names
        # Ending the session ends its stream: what it carried is all there.
        assert globex.client.delete(server.url, headers=globex.headers).status_code == 200
        heard = [json.loads(line[5:]) for line in events.iter_lines() if line.startswith("data:")]
    assert [m["method"] for m in heard] == ["notifications/tools/list_changed"], heard
    assert "bump" in tool_names(acme) and "stash" not in tool_names(acme)
    assert not result(acme.call(2, "unload-component", {"id": "counter"}))["isError"]
    assert not result(mine.call(2, "unload-component", {"id": "stash"}))["isError"]


def test_the_audit_log_is_each_tenants_own(
    server: HttpServer, issuer: Issuer, tenants_env: dict[str, str]
) -> None:
    globex = session(server, issuer, "globex")
    denied = globex.call(1, "read-file", {"path": "/etc/hostname"})
    assert "denied" in error_text(denied)
    theirs = httpx.get(f"{server.base}/audit?event=denied", headers=auth(issuer, "globex"), timeout=10).json()
    assert any(r.get("component") == "io" for r in theirs["records"])
    mine = httpx.get(f"{server.base}/audit", headers=auth(issuer, "acme"), timeout=10).json()
    assert all(r.get("component") != "io" for r in mine["records"]), mine
    data = Path(tenants_env["XDG_DATA_HOME"]) / "wassette"
    assert "/etc/hostname" in (data / "tenants" / "globex" / "audit.jsonl").read_text()
    untenanted = data / "audit.jsonl"
    assert not untenanted.exists() or "/etc/hostname" not in untenanted.read_text()
    # /metrics shows every tenant: not for a tenant's token.
    r = httpx.get(f"{server.base}/metrics", headers=auth(issuer, "acme"), timeout=10)
    assert r.status_code == 403 and "operator" in r.text


def test_quota_of_components(
    server: HttpServer, issuer: Issuer, components: dict[str, Path], loaded: Cli
) -> None:
    tiny = session(server, issuer, "tiny")
    first = result(tiny.call(1, "load-component", {"path": components["arith"].as_uri()}))
    assert not first["isError"], first
    again = result(tiny.call(2, "load-component", {"path": components["arith"].as_uri()}))
    assert not again["isError"], again  # replacing one is no new one
    second = tiny.call(3, "load-component", {"path": components["strings"].as_uri()})
    assert "over quota (components)" in error_text(second) and "tenant tiny" in error_text(second)
    done = loaded("component", "load", components["strings"].as_uri(), "--tenant", "tiny")
    assert done.returncode != 0 and "over quota (components)" in done.stderr
    assert "add" in tool_names(tiny) and "echo" not in tool_names(tiny)


def test_quota_of_compiled_cache_bytes(
    server: HttpServer, issuer: Issuer, components: dict[str, Path]
) -> None:
    small = session(server, issuer, "small")
    refused = small.call(1, "load-component", {"path": components["arith"].as_uri()})
    assert "over quota (compiled_cache_bytes)" in error_text(refused)
    assert "add" not in tool_names(small)


def test_quota_of_calls_per_minute(server: HttpServer, issuer: Issuer, components: dict[str, Path]) -> None:
    slow = session(server, issuer, "slow", sub="one")
    other = session(server, issuer, "slow", sub="two")
    statuses = [slow.call(i, "list-components", {}).status_code for i in range(5)]
    assert statuses == [200] * 5
    # The tenant's quota, whichever of its callers asks.
    r = other.call(6, "list-components", {})
    assert r.status_code == 429 and "calls_per_minute" in r.text and int(r.headers["retry-after"]) >= 1
    # Another tenant is not slowed.
    assert session(server, issuer, "acme").call(1, "add", {"a": 1, "b": 2}).status_code == 200


def test_quota_of_concurrent_calls(server: HttpServer, issuer: Issuer) -> None:
    """solo may run one call at a time: of 7 spins sent at once, one runs,
    4 wait their turn (never two at once), those beyond are refused (429,
    over quota); another tenant's calls go on meanwhile."""
    spinners = [session(server, issuer, "solo", sub=f"spinner-{i}") for i in range(7)]
    answers: list[httpx.Response] = []
    threads = [threading.Thread(target=lambda s=s: answers.append(s.call(1, "spin", {}))) for s in spinners]
    started = time.monotonic()
    for t in threads:
        t.start()
    assert not result(session(server, issuer, "acme").call(1, "add", {"a": 2, "b": 2}))["isError"]
    for t in threads:
        t.join(60)
    elapsed = time.monotonic() - started
    refused = [r for r in answers if r.status_code == 429]
    ran = [r for r in answers if r.status_code == 200]
    assert len(answers) == 7 and refused and len(ran) <= 5, [r.text for r in answers]
    for r in refused:
        assert "over quota" in r.text and "concurrent_calls = 1" in r.text and r.headers["retry-after"] == "1"
    assert all("time limit" in error_text(r) for r in ran)
    # One after another: each spin runs to its 500 ms limit alone.
    assert elapsed >= 0.45 * len(ran), (elapsed, len(ran))
    assert result(spinners[0].call(3, "add", {"a": 1, "b": 2}))["structuredContent"] == {"result": 3}


def test_a_flooding_tenant_does_not_hold_up_another(server: HttpServer, issuer: Issuer) -> None:
    """solo floods from 16 connections, each calling its spin again as soon
    as it is answered; meanwhile acme's 40 calls all succeed, none waiting
    for solo's turn (a median far under one 500 ms spin), and once the
    flood stops the server serves on. (The latency figure, quiet against
    flooded: benchmarks/tenant_flood.py.)"""
    stop = threading.Event()
    outcomes: list[int] = []

    def flood(s: RawSession) -> None:
        while not stop.is_set():
            outcomes.append(s.call(1, "spin", {}).status_code)

    flooders = [session(server, issuer, "solo", sub=f"flood-{i}") for i in range(16)]
    threads = [threading.Thread(target=flood, args=(s,)) for s in flooders]
    for t in threads:
        t.start()
    acme = session(server, issuer, "acme")
    took = []
    try:
        deadline = time.monotonic() + 30
        while 429 not in outcomes:  # the flood is on: some of it refused
            assert time.monotonic() < deadline, outcomes
            time.sleep(0.01)
        for i in range(40):
            t0 = time.monotonic()
            assert result(acme.call(i, "add", {"a": i, "b": 1}))["structuredContent"] == {"result": i + 1}
            took.append(time.monotonic() - t0)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    # Queued behind solo's spins, each would take at least one 500 ms spin.
    assert sorted(took)[len(took) // 2] < 0.45, took
    assert set(outcomes) <= {200, 429}
    assert httpx.get(f"{server.base}/health", timeout=10).status_code == 200
    assert result(flooders[0].call(2, "add", {"a": 1, "b": 1}))["structuredContent"] == {"result": 2}


def _events(stream: Any) -> Iterator[dict[str, Any]]:
    """The stream's messages, until it ends."""
    for line in iter(stream.fp.readline, b""):
        if line.startswith(b"data:"):
            yield json.loads(line[5:])


def test_tenants_on_a_worker_set(
    issuer: Issuer, tenants_env: dict[str, str], loaded: Cli, components: dict[str, Path], tmp_path: Path
) -> None:
    """With two workers: acme's load through worker 0 is announced on
    acme's stream held by worker 1, and globex's stream there hears only
    globex's own change; a session id is its tenant's on every worker."""
    args = ("--oauth-issuer", issuer.url, "--oauth-resource", RESOURCE, "--agent-grants", "allow")
    with http_server({**tenants_env, "WASSETTE_WORKERS": "2"}, tmp_path / "serve.log", *args) as server:
        all_serving(server)
        acme0, acme1 = pinned(server, headers=auth(issuer, "acme", "w"))
        globex0, globex1 = pinned(server, headers=auth(issuer, "globex", "w"))
        sessions = {}
        for name, p in (("acme", acme0), ("globex", globex0)):
            status, _, headers = p.post(INIT)
            assert status == 200
            sessions[name] = headers["mcp-session-id"]
            p.post({"jsonrpc": "2.0", "method": "notifications/initialized"}, sessions[name])
        acme_events = _events(acme1.listen(sessions["acme"]))
        globex_stream = globex1.listen(sessions["globex"])
        load = {"jsonrpc": "2.0", "id": 1, "method": "tools/call"}
        status, answer, _ = acme0.post(
            {
                **load,
                "params": {"name": "load-component", "arguments": {"path": components["counter"].as_uri()}},
            },
            sessions["acme"],
        )
        assert status == 200 and answer[-1]["result"]["isError"] is False, answer
        assert next(acme_events)["method"] == "notifications/tools/list_changed"
        status, answer, _ = globex0.post(
            {
                **load,
                "params": {"name": "load-component", "arguments": {"path": components["stash"].as_uri()}},
            },
            sessions["globex"],
        )
        assert status == 200 and answer[-1]["result"]["isError"] is False, answer
        # A tenant's session id, used by the other tenant, on either worker: unknown.
        listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
        probe0, probe1 = pinned(server, headers=auth(issuer, "globex", "w"))
        assert probe0.post(listing, sessions["acme"])[0] == 404
        assert probe1.post(listing, sessions["acme"])[0] == 404
        # globex's session ends (on worker 0): its stream on worker 1 ends,
        # having carried globex's change alone.
        assert globex0.delete(sessions["globex"]) == 200
        heard = list(_events(globex_stream))
        assert [m["method"] for m in heard] == ["notifications/tools/list_changed"], heard
    for tenant, cid in (("acme", "counter"), ("globex", "stash")):
        assert loaded("component", "unload", cid, "--tenant", tenant).returncode == 0


@pytest.mark.parametrize(
    ("config", "error"),
    [
        ("[tenants]\nconcurrent_calls = 2\n", "[tenants] needs a claim"),
        (
            '[tenants]\nclaim = "org"\nconcurrent_calls = -1\n',
            "tenants.concurrent_calls: expected a number from 0 up",
        ),
        ('[tenants]\nclaim = "org"\nmaximum = 1\n', "tenants.maximum: unknown key"),
        ('[tenants]\nclaim = "org"\n[tenants.quota."Bad Name"]\ncomponents = 1\n', "tenant name"),
        (
            '[tenants]\nclaim = "org"\n[tenants.quota.ok]\nwhatever = 1\n',
            "tenants.quota.ok.whatever: unknown key",
        ),
        ('[tenants]\n[tenants.map]\nbob = "../x"\n', "tenants.map.bob"),
        ('tenants = "org"\n', "tenants: expected a table"),
    ],
)
def test_bad_tenant_settings_are_clear_errors(env: dict[str, str], config: str, error: str) -> None:
    path = Path(env["XDG_CONFIG_HOME"]) / "wassette" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(config)
    done = Cli(env)("component", "list")
    assert done.returncode != 0 and error in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_tenants_need_oauth(env: dict[str, str], tmp_path: Path) -> None:
    path = Path(env["XDG_CONFIG_HOME"]) / "wassette" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('[tenants]\nclaim = "org"\n')
    done = Cli(env)("serve", "--bind-address", "127.0.0.1:0", timeout=60)
    assert done.returncode != 0 and "[tenants] needs OAuth" in done.stderr, done.stderr
    bad = Cli(env)("component", "list", "--tenant", "a/b")
    assert bad.returncode != 0 and "tenant name" in bad.stderr
