"""A fleet on one machine: a real PostgreSQL (initdb in a temp dir), three
`wassette serve --state postgresql://...` replicas on loopback ports, and a
real load balancer in front (Debian's haproxy: round-robin, sessions pinned
by `Mcp-Session-Id`). Clients are the official MCP client. Replicas are
killed with SIGKILL mid-change; the database restarts mid-traffic."""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import psycopg
import pytest

from homes import Cli
from postgres import Postgres, bindir, free_port
from servers import HttpServer, RawSession, http_session, text
from test_mcp_http import is_list_changed, wait_for
from test_shared_state import ok, replica

pytestmark = pytest.mark.skipif(
    bindir() is None or shutil.which("haproxy") is None, reason="PostgreSQL or haproxy is not installed"
)

HAPROXY = """
global
    maxconn 512
defaults
    mode http
    timeout connect 2s
    timeout client 120s
    timeout server 120s
    retries 3
    option redispatch
    retry-on conn-failure empty-response
frontend mcp
    bind 127.0.0.1:{port}
    default_backend replicas
backend replicas
    balance roundrobin
    option httpchk
    http-check send meth GET uri /ready ver HTTP/1.1 hdr Host localhost
    default-server check inter 200ms fall 2 rise 1
    stick-table type string len 80 size 10k expire 30m
    stick on req.hdr(mcp-session-id)
    stick store-response res.hdr(mcp-session-id)
{servers}
"""


class Fleet:
    def __init__(self, tmp_path: Path, pg: Postgres) -> None:
        self.pg = pg
        self.url = pg.url
        self.envs = {name: replica(tmp_path, name, pg.url) for name in "abc"}
        ok(Cli(self.envs["a"])("state", "migrate"))
        self.replicas = {
            name: HttpServer(env, tmp_path / f"{name}.log", "--env", "K=v", "--agent-grants", "allow")
            for name, env in self.envs.items()
        }
        port = free_port()
        servers = "\n".join(
            f"    server {name} {r.base.removeprefix('http://')}" for name, r in self.replicas.items()
        )
        config = tmp_path / "haproxy.cfg"
        config.write_text(HAPROXY.format(port=port, servers=servers))
        self.haproxy_log = tmp_path / "haproxy.log"
        with self.haproxy_log.open("wb") as sink:
            self.haproxy = subprocess.Popen(["haproxy", "-db", "-f", str(config)], stdout=sink, stderr=sink)
        self.base = f"http://127.0.0.1:{port}"
        self.mcp = f"{self.base}/mcp"
        deadline = time.monotonic() + 20
        while True:
            try:
                RawSession(self.mcp)
                break
            except Exception:
                if time.monotonic() > deadline or self.haproxy.poll() is not None:
                    raise AssertionError(self.haproxy_log.read_text()) from None
                time.sleep(0.05)

    def cli(self, name: str = "cli") -> Cli:
        return Cli(self.envs.get(name) or self.envs["a"])

    def close(self) -> None:
        self.haproxy.terminate()
        self.haproxy.wait(10)
        for r in self.replicas.values():
            r.stop()


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    pg = Postgres()
    fleet = None
    try:
        fleet = Fleet(tmp_path, pg)
        yield fleet
    finally:
        if fleet is not None:
            fleet.close()
        pg.destroy()


def call(session: RawSession, rid: int, name: str, args: dict[str, Any]) -> dict[str, Any]:
    r = session.call(rid, name, args)
    body = r.text
    if r.headers["content-type"].startswith("application/json"):
        answer = json.loads(body)
    else:
        answer = [json.loads(line[5:]) for line in body.splitlines() if line.startswith("data:")][-1]
    assert "result" in answer, answer
    result: dict[str, Any] = answer["result"]
    return result


def test_a_fleet_behind_a_load_balancer(fleet: Fleet, components: dict[str, Path]) -> None:
    """Load through the balancer, heard by clients of every replica; grant
    on one, applied on all; SIGKILL during a burst of grants and during a
    load loses no acknowledged grant and leaves no half component; the
    database restarts mid-traffic and the fleet goes on."""
    a, b, c = (fleet.replicas[n] for n in "abc")

    async def announced_everywhere() -> None:
        heard = {name: 0 for name in "abc"}

        def counter(name: str) -> Any:
            async def on_message(message: Any) -> None:
                if is_list_changed(message):
                    heard[name] += 1

            return on_message

        async with (
            http_session(a.url, message_handler=counter("a")) as sa,
            http_session(b.url, message_handler=counter("b")) as sb,
            http_session(c.url, message_handler=counter("c")) as sc,
            http_session(fleet.mcp) as through,
        ):
            r = await through.call_tool("load-component", {"path": components["io"].as_uri()})
            assert not r.is_error, text(r)
            await wait_for(lambda: all(heard.values()), what=f"tools/list_changed everywhere: {heard}")
            r = await sc.call_tool(
                "grant-environment-variable-permission", {"component_id": "io", "details": {"key": "K"}}
            )
            assert not r.is_error, text(r)
            for s in (sa, sb, through):
                with anyio.fail_after(5):
                    while (await s.call_tool("get-env", {"key": "K"})).structured_content != {"result": "v"}:
                        await anyio.sleep(0.01)

    anyio.run(announced_everywhere)

    # A burst of grants on B, killed midway: every acknowledged grant survives.
    acknowledged: list[str] = []
    session_b = RawSession(b.url)

    def burst() -> None:
        for i in range(200):
            try:
                result = call(
                    session_b,
                    i + 10,
                    "grant-network-permission",
                    {"component_id": "io", "details": {"host": f"h{i}.example.com"}},
                )
            except Exception:
                return  # the replica died under us
            assert not result["isError"], result
            acknowledged.append(f"h{i}.example.com")

    thread = threading.Thread(target=burst)
    thread.start()
    deadline = time.monotonic() + 30
    while len(acknowledged) < 5 and time.monotonic() < deadline:
        time.sleep(0.005)
    b.proc.send_signal(signal.SIGKILL)
    thread.join(30)
    assert 5 <= len(acknowledged) < 200
    policy = ok(fleet.cli("a")("policy", "get", "io"))
    hosts = {r["host"] for r in policy["permissions"]["network"]["allow"]}
    assert set(acknowledged) <= hosts, set(acknowledged) - hosts
    assert hosts <= {f"h{i}.example.com" for i in range(200)}

    # A load on C, killed midway: the component is wholly there, or not at all.
    session_c = RawSession(c.url)

    def load() -> None:
        with contextlib.suppress(Exception):  # the replica dies under it (or it finished first)
            call(session_c, 5, "load-component", {"path": components["time-server"].as_uri()})

    loading = threading.Thread(target=load)
    loading.start()
    time.sleep(0.3)  # the load is under way (fetching, compiling or writing): not synchronisation
    c.proc.send_signal(signal.SIGKILL)
    loading.join(30)
    with psycopg.connect(fleet.url) as conn:
        rows = conn.execute(
            "SELECT c.id, b.sha256 IS NOT NULL FROM wassette_components c "
            "LEFT JOIN wassette_blobs b ON b.sha256 = c.sha256 WHERE c.sha256 IS NOT NULL"
        ).fetchall()
    assert all(has_blob for _, has_blob in rows), rows
    listed = {x["id"] for x in ok(fleet.cli("a")("component", "list"))}
    assert listed in ({"io"}, {"io", "time-server"}), listed

    # The balancer routes around the dead replicas; the database restarts mid-traffic.
    async def through_restart() -> None:
        async with http_session(fleet.mcp) as s:
            answers = 0
            restarted = False
            while answers < 60:
                r = await s.call_tool("get-env", {"key": "K"})
                assert not r.is_error and r.structured_content == {"result": "v"}, text(r)
                answers += 1
                if answers == 20:
                    fleet.pg.stop("fast")
                if answers == 40:
                    fleet.pg.start()
                    restarted = True
            assert restarted
            # A change after the restart reaches the surviving replica (it reconnected).
            ok(fleet.cli("c")("permission", "revoke", "environment-variable", "io", "K"))
            with anyio.fail_after(10):
                while (await s.call_tool("get-env", {"key": "K"})).structured_content != {"result": None}:
                    await anyio.sleep(0.02)

    anyio.run(through_restart)
    assert "Traceback" not in a.log.read_text()
