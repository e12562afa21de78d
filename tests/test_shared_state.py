"""`--state postgresql://...`: replicas that share components, policies,
secrets and the audit log through a real PostgreSQL server (a throwaway
cluster made with initdb, tests/postgres.py). Each replica is a real
`wassette serve` (or CLI) with a home of its own, so it has its own working
copy; clients are the official MCP client."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import psycopg
import pytest

from homes import Cli, isolated_env
from postgres import Postgres, bindir, postgres
from servers import http_server, http_session, text
from test_mcp_http import is_list_changed, wait_for

pytestmark = pytest.mark.skipif(bindir() is None, reason="PostgreSQL is not installed")

KEY = base64.b64encode(bytes(range(32))).decode()


@pytest.fixture(scope="module")
def pg() -> Iterator[Postgres]:
    with postgres() as server:
        yield server


@pytest.fixture
def db(pg: Postgres, request: pytest.FixtureRequest) -> str:
    """A fresh database of the module's cluster, for one test."""
    name = "t_" + request.node.name.lower().replace("[", "_").replace("]", "").replace("-", "_")[:50]
    with psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    return pg.url.rsplit("/", 1)[0] + "/" + name


def replica(tmp_path: Path, name: str, url: str, **extra: str) -> dict[str, str]:
    """The environment of one replica: its own home (so its own working copy)."""
    (tmp_path / name).mkdir(exist_ok=True)
    return {
        **isolated_env(tmp_path / name),
        "WASSETTE_STATE": url,
        "WASSETTE_SECRETS_KEY": KEY,
        "WASSETTE_WORKERS": "1",
        **extra,
    }


def ok(r: subprocess.CompletedProcess[str]) -> Any:
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout) if r.stdout.strip() else None


def invoke(cli: Cli, tool: str, args: dict[str, Any], *extra: str) -> Any:
    return ok(cli("tool", "invoke", tool, "--args", json.dumps(args), *extra))["result"]


# -- migrations ---------------------------------------------------------------------------


def test_migrations_run_once_even_when_replicas_race(db: str, tmp_path: Path) -> None:
    """Four replicas migrating at once: one applies the schema, the others
    wait for its lock and find nothing to do; a database from a newer
    wassette is refused with what to do."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "wassette", "state", "migrate"],
            env=replica(tmp_path, f"r{i}", db),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    outcomes = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        outcomes.append(json.loads(out))
    assert sorted(o["status"] for o in outcomes) == ["migrated", "up to date", "up to date", "up to date"]
    assert [o["applied"] for o in outcomes if o["status"] == "migrated"] == [[1]]
    assert "s3cret" not in json.dumps(outcomes)  # the URL is shown without its password
    with psycopg.connect(db, autocommit=True) as conn:
        assert conn.execute("SELECT version FROM wassette_migrations").fetchall() == [(1,)]
        conn.execute("INSERT INTO wassette_migrations (version, name) VALUES (99, 'from the future')")
    r = Cli(replica(tmp_path, "r9", db))("component", "list")
    assert r.returncode == 1
    assert "schema version 99, newer than this wassette knows (1): upgrade wassette" in r.stderr
    assert "Traceback" not in r.stderr


def test_bad_state_settings_are_clear_errors(db: str, tmp_path: Path) -> None:
    cli = Cli(replica(tmp_path, "r", db))
    r = cli("component", "list", "--state", "mysql://x")
    assert r.returncode != 0 and "state" in r.stderr and "postgresql://" in r.stderr
    r = cli("component", "list", env_extra={"WASSETTE_SECRETS_KEY": "too-short"})
    assert r.returncode != 0 and "WASSETTE_SECRETS_KEY: expected a 32-byte key" in r.stderr
    r = cli("component", "list", "--state", "postgresql://wassette:pw@127.0.0.1:1/none")
    assert (
        r.returncode != 0
        and "cannot reach the shared state at postgresql://wassette:***@127.0.0.1:1/none" in r.stderr
    )
    assert "Traceback" not in r.stderr + cli("component", "list", "--state", "postgresql://[").stderr


# -- replicas sharing one state -------------------------------------------------------------


def test_replicas_share_loads_grants_revokes_and_announce_them(
    db: str, tmp_path: Path, components: dict[str, Path]
) -> None:
    """A load through replica A is announced to a client of replica B and
    callable there; a grant made on B applies on A's next call, and so does
    a revoke; the CLI of a third home sees the same state."""
    env_a = replica(tmp_path, "a", db)
    env_b = replica(tmp_path, "b", db, WASSETTE_WORKERS="2")
    cli = Cli(replica(tmp_path, "c", db))
    with (
        http_server(env_a, tmp_path / "a.log", "--env", "SHARED_K=from-a") as a,
        http_server(env_b, tmp_path / "b.log", "--env", "SHARED_K=from-b", "--agent-grants", "allow") as b,
    ):

        async def main() -> None:
            changed: list[Any] = []

            async def on_message(message: Any) -> None:
                if is_list_changed(message):
                    changed.append(message)

            async with http_session(a.url) as sa, http_session(b.url, message_handler=on_message) as sb:
                r = await sa.call_tool("load-component", {"path": components["io"].as_uri()})
                assert not r.is_error, text(r)
                await wait_for(lambda: changed, what="tools/list_changed on replica B")
                listed = {t.name for t in (await sb.list_tools()).tools}
                assert "get-env" in listed, (listed, b.log.read_text()[-3000:])  # (a rare CI flake: its log)
                r = await sb.call_tool("get-env", {"key": "SHARED_K"})
                assert not r.is_error and r.structured_content == {"result": None}  # denied by default
                r = await sb.call_tool(
                    "grant-environment-variable-permission",
                    {"component_id": "io", "details": {"key": "SHARED_K"}},
                )
                assert not r.is_error, text(r)
                # The grant lands on A from the notification: poll A's next calls briefly.
                await wait_for_result(sa, "from-a")
                assert invoke(cli, "get-env", {"key": "SHARED_K"}, "--env", "SHARED_K=from-c") == "from-c"
                ok(cli("permission", "revoke", "environment-variable", "io", "SHARED_K"))
                await wait_for_result(sa, None)
                await wait_for_result(sb, None)

        anyio.run(main)
        assert "Traceback" not in a.log.read_text() + b.log.read_text()
    with psycopg.connect(db) as conn:
        events = [r[0] for r in conn.execute("SELECT event FROM wassette_audit ORDER BY id")]
    assert events.count("granted") == 1 and events.count("revoked") == 1, events


async def wait_for_result(session: Any, want: Any, timeout: float = 5) -> None:
    seen: list[Any] = []

    async def probe() -> bool:
        r = await session.call_tool("get-env", {"key": "SHARED_K"})
        assert not r.is_error, text(r)
        seen.append(r.structured_content["result"])
        return seen[-1] == want

    with anyio.fail_after(timeout):
        while not await probe():
            await anyio.sleep(0.01)


def test_concurrent_changes_from_two_replicas_lose_nothing(
    db: str, tmp_path: Path, components: dict[str, Path]
) -> None:
    """Two replicas granting at once, each to the same policy: every grant
    of both is in it at the end (each change edits what the other committed)."""
    a, b = Cli(replica(tmp_path, "a", db)), Cli(replica(tmp_path, "b", db))
    ok(a("component", "load", components["io"].as_uri()))
    errors: list[str] = []

    def grant(cli: Cli, prefix: str) -> None:
        for i in range(8):
            r = cli("permission", "grant", "network", "io", f"{prefix}{i}.example.com")
            if r.returncode != 0:
                errors.append(r.stderr)

    threads = [threading.Thread(target=grant, args=(c, p)) for c, p in ((a, "a"), (b, "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    hosts = {r["host"] for r in ok(a("policy", "get", "io"))["permissions"]["network"]["allow"]}
    assert hosts == {f"{p}{i}.example.com" for p in "ab" for i in range(8)}
    assert ok(b("policy", "get", "io")) == ok(a("policy", "get", "io"))


def test_a_replica_killed_mid_change_leaves_no_half_record(
    db: str, tmp_path: Path, components: dict[str, Path]
) -> None:
    """A replica killed while installing (its files written, not committed):
    the database has no trace of it, other replicas never see it, and the
    killed replica's working copy is put right when it starts again."""
    env_a = replica(tmp_path, "a", db)
    ok(Cli(env_a)("state", "migrate"))
    script = (
        "import os, signal, sys\n"
        "from wassette.runtime.config import Settings\n"
        "from wassette.runtime.runtime import Runtime\n"
        "rt = Runtime(Settings.load()); rt.refresh()\n"
        "with rt.store.locked():\n"
        "    rt.store.write_file('half', '.wasm', open(sys.argv[1], 'rb').read())\n"
        "    rt.store.write_file('half', '.policy.yaml', b'version: \"1.0\"\\n')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(components["io"])], env=env_a, timeout=60)
    assert done.returncode == -signal.SIGKILL
    with psycopg.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM wassette_components").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM wassette_blobs").fetchone() == (0,)
        assert conn.execute("SELECT revision FROM wassette_state").fetchone() == (0,)
    assert ok(Cli(replica(tmp_path, "b", db))("component", "list")) == []
    working = next((tmp_path / "a" / "cache" / "wassette" / "state").iterdir()) / "components"
    assert (working / "half.wasm").exists()  # what the killed write left here...
    assert ok(Cli(env_a)("component", "list")) == []  # ...is undone from the database
    assert not (working / "half.wasm").exists() and not (working / "half.policy.yaml").exists()


# -- secrets --------------------------------------------------------------------------------


def test_secrets_are_sealed_in_the_database_and_need_the_key(
    db: str, tmp_path: Path, components: dict[str, Path]
) -> None:
    a = Cli(replica(tmp_path, "a", db))
    ok(a("component", "load", components["io"].as_uri()))
    ok(a("secret", "set", "io", "API_TOKEN=tok-123-plain"))
    b = Cli(replica(tmp_path, "b", db))
    assert invoke(b, "get-env", {"key": "API_TOKEN"}) == "tok-123-plain"
    with psycopg.connect(db) as conn:
        dump = conn.execute("SELECT name, key_id, nonce, ciphertext FROM wassette_secrets").fetchall()
        assert len(dump) == 1 and b"tok-123-plain" not in bytes(dump[0][3])
        assert dump[0][0] == "API_TOKEN"
    other = base64.b64encode(bytes(32)).decode()
    r = Cli(replica(tmp_path, "c", db, WASSETTE_SECRETS_KEY=other))("component", "list")
    assert r.returncode == 1 and "was sealed with key" in r.stderr and "Traceback" not in r.stderr
    r = Cli({**replica(tmp_path, "d", db), "WASSETTE_SECRETS_KEY": ""})("component", "list")
    assert r.returncode == 1 and "no key (set WASSETTE_SECRETS_KEY" in r.stderr
    with psycopg.connect(db) as conn:  # a value moved to another row does not open
        conn.execute("UPDATE wassette_secrets SET name = 'OTHER'")
        conn.execute("UPDATE wassette_components SET revision = revision + 1")
        conn.execute("UPDATE wassette_state SET revision = revision + 1")
    r = Cli(replica(tmp_path, "e", db))("component", "list")
    assert r.returncode == 1 and "secret OTHER of io does not open: altered in the database" in r.stderr


# -- losing the database ----------------------------------------------------------------------


def test_a_replica_that_loses_the_database_fails_closed_then_recovers(
    pg: Postgres, tmp_path: Path, components: dict[str, Path]
) -> None:
    """Database down: calls go on for at most the bound (2 s here), then are
    refused with why, while /health still answers; back up: calls resume,
    and a revoke made meanwhile is applied before the first one."""
    url = pg.url.rsplit("/", 1)[0] + "/outage"
    with psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS outage")
        conn.execute("CREATE DATABASE outage")
    env = replica(tmp_path, "a", url, WASSETTE_STATE_MAX_STALENESS_MS="2000")
    cli = Cli(env)
    ok(cli("component", "load", components["io"].as_uri()))
    ok(cli("permission", "grant", "environment-variable", "io", "SHARED_K"))
    with http_server(env, tmp_path / "a.log", "--env", "SHARED_K=v") as server:

        async def main() -> None:
            async with http_session(server.url) as s:
                r = await s.call_tool("get-env", {"key": "SHARED_K"})
                assert r.structured_content == {"result": "v"}
                pg.stop("immediate")
                stopped = time.monotonic()
                refused = None
                while refused is None:
                    r = await s.call_tool("get-env", {"key": "SHARED_K"})
                    if r.is_error:
                        refused = time.monotonic() - stopped
                        assert "shared state has not been confirmed" in text(r), text(r)
                    else:
                        assert r.structured_content == {"result": "v"}
                        assert time.monotonic() - stopped < 2.0 + 1.0 + 1.0, "served past the bound"
                    await anyio.sleep(0.05)
                assert refused <= 2.0 + 1.0 + 1.0  # the bound, a heartbeat, slack
                with urllib.request.urlopen(f"{server.base}/health", timeout=5) as health:
                    assert health.status == 200
                pg.start()
                # Revoked while this replica could not hear of it:
                ok(cli("permission", "revoke", "environment-variable", "io", "SHARED_K"))
                with anyio.fail_after(15):
                    while True:
                        r = await s.call_tool("get-env", {"key": "SHARED_K"})
                        if not r.is_error:
                            break
                        await anyio.sleep(0.05)
                assert r.structured_content == {"result": None}  # the revoke, never the old grant

        anyio.run(main)
    log = (tmp_path / "a.log").read_text()
    assert "unreachable" in log and "is back" in log and "Traceback" not in log


# -- moving a local state in and out ------------------------------------------------------------


def test_import_and_export_move_a_local_state(db: str, tmp_path: Path, components: dict[str, Path]) -> None:
    (tmp_path / "local").mkdir()
    (tmp_path / "out").mkdir()
    local_env = isolated_env(tmp_path / "local")
    local = Cli(local_env)
    ok(local("component", "load", components["io"].as_uri()))
    ok(local("component", "load", components["arith"].as_uri()))
    ok(local("permission", "grant", "environment-variable", "io", "K1"))
    ok(local("secret", "set", "io", "S1=secret-one"))
    into = Cli({**local_env, "WASSETTE_STATE": db, "WASSETTE_SECRETS_KEY": KEY})
    report = ok(into("state", "import"))
    assert report["components"] == ["arith", "io"] and report["audit_records"] >= 2
    other = Cli(replica(tmp_path, "b", db))
    assert {c["id"] for c in ok(other("component", "list"))} == {"arith", "io"}
    assert invoke(other, "get-env", {"key": "K1"}, "--env", "K1=x") == "x"
    assert invoke(other, "get-env", {"key": "S1"}) == "secret-one"
    out_env = isolated_env(tmp_path / "out")
    out = Cli({**out_env, "WASSETTE_STATE": db, "WASSETTE_SECRETS_KEY": KEY})
    assert ok(out("state", "export"))["components"] == ["arith", "io"]
    back = Cli(out_env)  # the exported directories, as a local state
    assert ok(back("policy", "get", "io")) == ok(local("policy", "get", "io"))
    assert invoke(back, "get-env", {"key": "S1"}) == "secret-one"
    assert invoke(back, "add", {"a": 2, "b": 3}) == 5
    local_dir = Path(local_env["XDG_DATA_HOME"]) / "wassette/components"
    out_dir = Path(out_env["XDG_DATA_HOME"]) / "wassette/components"
    assert (out_dir / "io.wasm").read_bytes() == (local_dir / "io.wasm").read_bytes()
    bad = tmp_path / "local" / "data" / "wassette" / "audit.jsonl"
    bad.write_text(bad.read_text() + "not json\n")
    r = into("state", "import")
    assert r.returncode == 1 and "not a JSON audit record; nothing was imported" in r.stderr


def test_status_and_new_key(db: str, tmp_path: Path) -> None:
    cli = Cli(replica(tmp_path, "a", db))
    key = ok(cli("state", "new-key"))
    assert len(base64.b64decode(key["key"])) == 32
    assert ok(cli("state", "status"))["schema_version"] == 0
    ok(cli("state", "migrate"))
    status = ok(cli("state", "status"))
    assert status["schema_version"] == 1 and status["components"] == 0 and "***" in status["state"]
    assert os.environ.get("WASSETTE_STATE") is None  # the test run itself is local


def test_tenants_have_schemas_of_their_own(db: str, tmp_path: Path, components: dict[str, Path]) -> None:
    """`--tenant` on a shared state: each tenant's records live in a schema
    of its own (tenant_<name>), which every replica reads for that tenant
    and for no other; the untenanted state stays in the default schema."""
    a, b = Cli(replica(tmp_path, "a", db)), Cli(replica(tmp_path, "b", db))
    ok(a("component", "load", components["arith"].as_uri(), "--tenant", "acme"))
    ok(a("component", "load", components["io"].as_uri(), "--tenant", "globex"))
    ok(a("secret", "set", "io", "S1=globex-secret", "--tenant", "globex"))
    ok(a("component", "load", components["strings"].as_uri()))
    assert {c["id"] for c in ok(b("component", "list", "--tenant", "acme"))} == {"arith"}
    assert {c["id"] for c in ok(b("component", "list", "--tenant", "globex"))} == {"io"}
    assert {c["id"] for c in ok(b("component", "list"))} == {"strings"}
    assert invoke(b, "add", {"a": 2, "b": 3}, "--tenant", "acme") == 5
    assert invoke(b, "get-env", {"key": "S1"}, "--tenant", "globex") == "globex-secret"
    refused = b("tool", "invoke", "get-env", "--args", '{"key": "S1"}', "--tenant", "acme")
    assert refused.returncode != 0 and "get-env" in refused.stderr
    status = ok(b("state", "status", "--tenant", "acme"))
    assert status["schema"] == "tenant_acme" and status["components"] == 1
    with psycopg.connect(db) as conn:
        schemas = {
            r[0] for r in conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tenant_%'")
        }
        assert schemas == {"tenant_acme", "tenant_globex"}
        rows = conn.execute(
            "SELECT id FROM tenant_acme.wassette_components WHERE sha256 IS NOT NULL"
        ).fetchall()
        assert rows == [("arith",)]
        sealed = conn.execute("SELECT ciphertext FROM tenant_globex.wassette_secrets").fetchall()
        assert len(sealed) == 1 and b"globex-secret" not in bytes(sealed[0][0])
    bad = b("component", "list", "--tenant", "../public")
    assert bad.returncode != 0 and "tenant name" in bad.stderr
