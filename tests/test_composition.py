"""Composition with the isolation kept: a component importing an interface
another loaded component exports.

The pair: `fetcher` (tests/components/js/fetcher) exports
`wassette-examples:fetch/fetcher@0.1.0`; `summariser` imports it and exports
the tools `summarise` and `fetch-direct`. End to end through `wassette run`
with the official MCP client, as a user runs it: each side is granted only
its own hosts, and each side's refusals are reported and audited under its
own id. `ping` and `pong` (WAT) import each other's interface: a cycle, which
the depth bound must end. The chain's deadline and cancellation are checked
on the engine directly, against a loopback server that holds its answer.
"""

from __future__ import annotations

import http.server
import json
import shutil
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import ClientSession

from test_examples import Cli, audit, load, server, text

pytestmark = pytest.mark.anyio

FETCHER = "wassette-examples:fetch/fetcher@0.1.0"
FETCH_TOOL = "wassette-examples_fetch_fetcher_fetch"  # the fetcher's export, as a tool
PAGE = b"Linked calls keep\neach sandbox to itself"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Site:
    """A loopback web server: `/page` answers at once; `/slow` holds its
    answer until `release` is set (and says when it got the request)."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.release = threading.Event()
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/slow":
                    site.arrived.set()
                    site.release.wait(60)
                body = PAGE
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.web.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.web.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.web.shutdown()
        self.web.server_close()


@pytest.fixture
def site() -> Iterator[Site]:
    made = Site()
    yield made
    made.close()


@pytest.fixture
def other_site() -> Iterator[Site]:
    made = Site()
    yield made
    made.close()


@asynccontextmanager
async def pair(env: dict[str, str], components: dict[str, Path]) -> AsyncIterator[ClientSession]:
    async with server(env) as s:
        assert await load(s, components["fetcher"]) == [FETCH_TOOL]
        assert await load(s, components["summariser"]) == ["fetch-direct", "summarise"]
        yield s


def grant(cli: Cli, component: str, target: str) -> None:
    r = cli("permission", "grant", "network", component, target)
    assert r.returncode == 0, r.stderr


def denials(home: Path) -> list[dict[str, Any]]:
    return [r for r in audit(home) if r["event"] == "denied"]


# --- dynamic linking, end to end -------------------------------------------------------------


async def test_each_side_runs_under_its_own_policy(
    env: dict[str, str], home: Path, cli: Cli, components: dict[str, Path], site: Site, other_site: Site
) -> None:
    """The fetcher is granted `site`, the summariser `other_site`: neither
    reaches the other's host, through the link or around it."""
    async with pair(env, components) as s:
        grant(cli, "fetcher", site.url)
        grant(cli, "summariser", other_site.url)
        r = await s.call_tool("summarise", {"url": f"{site.url}/page", "max-words": 3})
        assert not r.is_error, text(r)
        assert r.structured_content == {"result": {"ok": "7 words, 2 lines: Linked calls keep ..."}}
        assert denials(home) == []

        # The caller cannot reach what only the callee is granted.
        r = await s.call_tool("fetch-direct", {"url": f"{site.url}/page"})
        assert r.is_error
        assert f"denied: network http of {site.url}/page" in text(r)
        assert f"wassette permission grant network summariser {site.url}" in text(r)
        [refused] = denials(home)
        assert refused["component"] == "summariser" and "via" not in refused

        # The callee does not get the caller's grants; its refusal is its
        # own, reported and audited under its id.
        r = await s.call_tool("summarise", {"url": f"{other_site.url}/page"})
        assert r.is_error
        assert f"in linked component fetcher: denied: network http of {other_site.url}/page" in text(r)
        assert f"to allow it, run: wassette permission grant network fetcher {other_site.url}" in text(r)
        assert "grant network summariser" not in text(r)
        refused = denials(home)[-1]
        assert refused["component"] == "fetcher" and refused["via"] == "summariser"
        assert refused["tool"] == "summarise" and refused["resource"] == f"{other_site.url}/page"
        assert len(denials(home)) == 2  # nothing under the caller's id for it
        r = await s.call_tool("fetch-direct", {"url": f"{other_site.url}/page"})
        assert not r.is_error, text(r)  # while the caller itself may go there


async def test_unloading_the_callee_fails_the_import_clearly(
    env: dict[str, str], cli: Cli, components: dict[str, Path], site: Site
) -> None:
    async with pair(env, components) as s:
        grant(cli, "fetcher", site.url)
        r = await s.call_tool("summarise", {"url": f"{site.url}/page"})
        assert not r.is_error, text(r)
        r = await s.call_tool("unload-component", {"id": "fetcher"})
        assert not r.is_error, text(r)
        names = {t.name for t in (await s.list_tools()).tools}
        assert {"summarise", "fetch-direct"} <= names and FETCH_TOOL not in names
        r = await s.call_tool("summarise", {"url": f"{site.url}/page"})
        assert r.is_error
        assert f"no loaded component exports {FETCHER}" in text(r), text(r)
        # Loaded again, it is linked again (its grants went with it).
        await load(s, components["fetcher"])
        r = await s.call_tool("summarise", {"url": f"{site.url}/page"})
        assert r.is_error and "in linked component fetcher: denied" in text(r)
        grant(cli, "fetcher", site.url)
        r = await s.call_tool("summarise", {"url": f"{site.url}/page"})
        assert not r.is_error, text(r)


async def test_a_cycle_of_imports_ends_at_the_depth_bound(
    env: dict[str, str], tmp_path: Path, components: dict[str, Path]
) -> None:
    async with server(env) as s:
        assert await load(s, components["ping"]) == ["test_loop_ping_ping"]
        r = await s.call_tool("test_loop_ping_ping", {"n": 2})
        assert r.is_error and "no loaded component exports test:loop/pong@0.1.0" in text(r)
        assert await load(s, components["pong"]) == ["test_loop_pong_pong"]
        r = await s.call_tool("test_loop_ping_ping", {"n": 8})  # ping -> pong -> ... 8 linked calls deep
        assert r.structured_content == {"result": 8}, text(r)
        r = await s.call_tool("test_loop_ping_ping", {"n": 1000})
        assert r.is_error
        assert "linked calls are already 8 deep: a cycle of imports, or a chain too long" in text(r)
        # Two exporters of one interface: neither is picked.
        twin = tmp_path / "pong2.wasm"
        shutil.copy(components["pong"], twin)
        await load(s, twin)
        r = await s.call_tool("test_loop_ping_ping", {"n": 1})
        assert r.is_error and "several loaded components export it (pong, pong2)" in text(r)
        await s.call_tool("unload-component", {"id": "pong2"})
        # The server is healthy after all that.
        r = await s.call_tool("test_loop_pong_pong", {"n": 5})
        assert r.structured_content == {"result": 5}, text(r)


def test_component_list_shows_what_satisfies_imports(cli: Cli, components: dict[str, Path]) -> None:
    for name in ("summariser", "fetcher"):
        r = cli("component", "load", components[name].as_uri())
        assert r.returncode == 0, r.stderr
    r = cli("component", "list", "--imports")
    assert r.returncode == 0, r.stderr
    listed = {c["id"]: c for c in json.loads(r.stdout)}
    assert listed["summariser"]["imports"] == {FETCHER: "fetcher"}
    assert listed["fetcher"]["imports"] == {}
    assert "imports" not in json.loads(cli("component", "list").stdout)[0]  # only when asked


# --- the chain stops as a whole ---------------------------------------------------------------


def network(site: Site, **limits: int) -> str:
    rule = {"host": "127.0.0.1", "ports": [site.port], "schemes": ["http"], "transports": [], "origin": "t"}
    return json.dumps({"network": {"allow": [rule]}, **limits})


def start_summarise(
    engine: Any, components: dict[str, Path], site: Site, caller: str, callee: str, **kw: Any
) -> Any:
    fetcher = engine.load(str(components["fetcher"]))
    summariser = engine.load(str(components["summariser"]))
    links = [(FETCHER, "fetcher", fetcher, callee)]
    args = json.dumps({"url": f"{site.url}/slow"})
    return summariser.start(None, "summarise", args, caller, kw.get("cancel"), links)


def test_cancelling_the_call_stops_the_callee(engine: Any, components: dict[str, Path], site: Site) -> None:
    from wassette import _engine

    cancel = _engine.CancelToken()
    call = start_summarise(engine, components, site, "{}", network(site), cancel=cancel)
    done: list[Any] = []
    worker = threading.Thread(target=lambda: done.append(call.finish()))
    worker.start()
    assert site.arrived.wait(30)  # the callee is blocked in its request
    began = time.monotonic()
    cancel.cancel()
    worker.join(10)
    assert done and done[0].status == "cancelled", done and done[0].error
    assert time.monotonic() - began < 5
    # Stopped while waiting in its request, the callee is still reported.
    [linked] = json.loads(done[0].linked_json)
    assert (linked["component"], linked["status"]) == ("fetcher", "cancelled")
    assert linked["egress"][0]["host"] == "127.0.0.1"


def test_the_callers_deadline_stops_the_callee(engine: Any, components: dict[str, Path], site: Site) -> None:
    outcome = start_summarise(engine, components, site, '{"timeout_ms": 300}', network(site)).finish()
    assert outcome.status == "timeout", outcome.error
    assert "time limit of 300 ms" in outcome.error
    [linked] = json.loads(outcome.linked_json)
    assert (linked["component"], linked["status"]) == ("fetcher", "timeout")


def test_the_callees_own_deadline_fails_the_import(
    engine: Any, components: dict[str, Path], site: Site
) -> None:
    outcome = start_summarise(engine, components, site, "{}", network(site, timeout_ms=300)).finish()
    assert outcome.status == "trap"
    assert outcome.error.startswith(f"the linked component `fetcher` ({FETCHER}#fetch): ")
    assert "time limit of 300 ms" in outcome.error
    [linked] = json.loads(outcome.linked_json)
    assert linked["component"] == "fetcher" and linked["status"] == "timeout" and linked["depth"] == 1


def test_imports_are_listed(engine: Any, components: dict[str, Path]) -> None:
    assert engine.load(str(components["summariser"])).imports() == [(FETCHER, "fetch")]
    assert engine.load(str(components["fetcher"])).imports() == []
    assert engine.load(str(components["ping"])).imports() == [("test:loop/pong@0.1.0", "pong")]


# --- static composition -----------------------------------------------------------------------


async def test_static_composition(
    env: dict[str, str], cli: Cli, components: dict[str, Path], toolchain: Any, tmp_path: Path, site: Site
) -> None:
    """`wasm-tools compose` (the pinned wasm-tools) plugs the fetcher into the
    summariser: one component, one policy, no links."""
    composed = tmp_path / "summarise-composed.wasm"
    r = subprocess.run(
        [
            str(toolchain.wasm_tools),
            "compose",
            str(components["summariser"]),
            "-d",
            str(components["fetcher"]),
            "-o",
            str(composed),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    async with server(env) as s:
        assert await load(s, composed) == ["fetch-direct", "summarise"]
        r = await s.call_tool("summarise", {"url": f"{site.url}/page"})
        assert r.is_error and "grant network summarise-composed" in text(r)
        grant(cli, "summarise-composed", site.url)
        r = await s.call_tool("summarise", {"url": f"{site.url}/page", "max-words": 2})
        assert r.structured_content == {"result": {"ok": "7 words, 2 lines: Linked calls ..."}}, text(r)


def test_a_linked_stop_is_audited_under_the_callee(
    engine: Any, components: dict[str, Path], site: Site, tmp_path: Path
) -> None:
    """The callee ran out of its own time: `stopped` under its id, not the tool's."""
    from wassette.runtime.audit import AuditLog
    from wassette.runtime.calls import CallResult, audit_result
    from wassette.runtime.naming import Tool

    outcome = start_summarise(engine, components, site, "{}", network(site, timeout_ms=300)).finish()
    tool = Tool("summarise", "summariser", None, "summarise", None, {}, None)
    result = CallResult.from_outcome(tool, outcome)
    log = AuditLog(tmp_path / "audit.jsonl")
    audit_result(log, result)
    [stopped] = log.read(10, event="stopped")
    assert stopped["event"] == "stopped" and stopped["status"] == "timeout"
    assert (stopped["component"], stopped["via"], stopped["tool"]) == ("fetcher", "summariser", "summarise")
