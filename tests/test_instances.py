"""Stateful components, opt in (`resources.instance: per-session`), through
the official MCP client: one instance per session (2025 revisions) or per
instance id from `open-instance` (2026-07-28, no sessions); never shared
between sessions or owners; bounded in number, idle time and by its policy;
gone when a call fails it, its session ends, or its policy changes.

The fixture `counter` (tests/components/wat/counter.wat) returns 0 from a
fresh instance and 4 more on each call of a kept one."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path
from typing import Any

import anyio
import httpx2 as httpx
import mcp.types as types
import pytest

from homes import Cli
from servers import http_server, http_session, messages
from test_mcp_features import session, text
from test_mcp_http import wait_for
from wassette.server.core import protocol

pytestmark = pytest.mark.anyio

KEPT = """\
version: "1.0"
permissions:
  resources:
    instance: per-session
    idle_timeout: {idle}
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def kept(cli: Cli, tmp_path: Path, component: str, idle: str = "10m", extra: str = "") -> None:
    f = tmp_path / f"{component}-policy.yaml"
    f.write_text(KEPT.format(idle=idle) + textwrap.indent(extra, "  "))
    r = cli("policy", "attach", component, str(f))
    assert r.returncode == 0, r.stderr


@pytest.fixture
def counter(cli: Cli, components, tmp_path: Path) -> Cli:
    r = cli("component", "load", components["counter"].as_uri())
    assert r.returncode == 0, r.stderr
    kept(cli, tmp_path, "counter")
    return cli


async def bump(s: Any, **args: Any) -> Any:
    r = await s.call_tool("bump", args)
    assert not r.is_error, text(r)
    return json.loads(text(r))


async def test_a_session_keeps_its_instance_and_another_session_has_its_own(env, counter) -> None:
    async with session(env) as a, session(env) as b:
        tools = {t.name: t for t in (await a.list_tools()).tools}
        assert "instance_id" in tools["bump"].input_schema["properties"]
        assert [await bump(a) for _ in range(3)] == [0, 4, 8]
        # Another session (another client) never sees the first one's state.
        assert [await bump(b) for _ in range(2)] == [0, 4]
        assert await bump(a) == 12


async def test_without_the_policy_every_call_is_fresh(env, cli, components) -> None:
    assert cli("component", "load", components["counter"].as_uri()).returncode == 0
    async with session(env) as s:
        tools = {t.name: t for t in (await s.list_tools()).tools}
        assert "instance_id" not in tools["bump"].input_schema.get("properties", {})
        assert [await bump(s) for _ in range(3)] == [0, 0, 0]


async def test_instance_ids_open_close_and_belong_to_their_component(env, counter, components) -> None:
    assert counter("component", "load", components["arith"].as_uri()).returncode == 0
    async with session(env) as s:
        opened = json.loads(text(await s.call_tool("open-instance", {"component_id": "counter"})))
        handle = opened["instance_id"]
        assert opened["idle_timeout_s"] == 600
        # An id is its own instance, apart from the session's.
        assert [await bump(s, instance_id=handle) for _ in range(2)] == [0, 4]
        assert await bump(s) == 0
        assert await bump(s, instance_id=handle) == 8
        # Not for another component's tools, nor for one that keeps nothing.
        r = await s.call_tool("open-instance", {"component_id": "arith"})
        assert r.is_error and "does not keep state" in text(r)
        r = await s.call_tool("open-instance", {"component_id": "nope"})
        assert r.is_error
        closed = await s.call_tool("close-instance", {"instance_id": handle})
        assert not closed.is_error
        r = await s.call_tool("bump", {"instance_id": handle})
        assert r.is_error and "unknown instance id" in text(r)
        r = await s.call_tool("bump", {"instance_id": "inst_" + "A" * 24})
        assert r.is_error and "unknown instance id" in text(r)
        r = await s.call_tool("bump", {"instance_id": 12})
        assert r.is_error and "unknown instance id" in text(r)
        r = await s.call_tool("close-instance", {"instance_id": handle})
        assert r.is_error and "unknown instance id" in text(r)


async def test_a_failed_call_discards_the_instance_and_the_next_starts_fresh(env, counter) -> None:
    """A call that traps may leave the instance half-way: it is not used again."""
    async with session(env) as s:
        assert [await bump(s) for _ in range(2)] == [0, 4]
        r = await s.call_tool("bump-and-trap", {})
        assert r.is_error and "trapped" in text(r), text(r)
        assert [await bump(s) for _ in range(2)] == [0, 4]


async def test_a_policy_change_makes_a_new_instance(env, counter, tmp_path) -> None:
    async with session(env) as s:
        assert [await bump(s) for _ in range(2)] == [0, 4]
        r = counter("permission", "grant", "environment-variable", "counter", "HOME")
        assert r.returncode == 0, r.stderr
        # The sandbox was built with the old policy: a new instance has the new one.
        assert await bump(s) == 0
    exported = counter("audit", "export").stdout.splitlines()
    reset = [r for r in map(json.loads, exported) if r["event"] == "instance_reset"]
    assert reset and reset[-1]["reason"] == "its policy changed"


async def test_idle_instances_time_out(env, cli, components, tmp_path) -> None:
    assert cli("component", "load", components["counter"].as_uri()).returncode == 0
    kept(cli, tmp_path, "counter", idle="2s")
    async with session(env) as s:
        assert [await bump(s) for _ in range(2)] == [0, 4]  # each call makes it live 2 s more
        await anyio.sleep(2.5)  # the timeout itself is what is tested: 2 s without a call
        assert await bump(s) == 0


def modern(url: str, method: str, params: dict[str, Any], owner: str | None = None) -> dict[str, Any]:
    headers = {
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": method,
    }
    if method == "tools/call":
        headers["mcp-name"] = params["name"]
    if owner is not None:
        headers["authorization"] = f"Bearer {owner}"
    meta = {
        protocol.VERSION_KEY: "2026-07-28",
        protocol.CAPABILITIES_KEY: {},
        protocol.CLIENT_INFO_KEY: {"name": "t", "version": "0"},
    }
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": {**params, "_meta": meta}}
    response = httpx.post(url, json=body, headers=headers, timeout=60)
    answers = [m for m in messages(response) if m.get("id") == 1]
    assert len(answers) == 1, response.text
    return answers[0]["result"]


def call(url: str, tool: str, args: dict[str, Any]) -> tuple[bool, Any]:
    r = modern(url, "tools/call", {"name": tool, "arguments": args})
    body = r["content"][0]["text"]
    return bool(r.get("isError")), (body if r.get("isError") else json.loads(body))


@pytest.mark.parametrize("workers", [1, 2])
def test_over_http_sessions_and_ids_keep_state_and_cap_holds(env, counter, tmp_path, workers: int) -> None:
    """HTTP, one worker or a set (where one worker keeps every instance and
    the others relay to it): a 2025 session keeps its instance; 2026-07-28
    needs an id (and says how to get one); past `max_live_instances` a clear
    refusal, and the server goes on."""
    env = {**env, "WASSETTE_MAX_LIVE_INSTANCES": "3"}
    with http_server(env, tmp_path / "serve.log", "--workers", str(workers)) as server:
        url = server.url
        failed, why = call(url, "bump", {})
        assert failed and "open-instance" in why and "instance_id" in why
        _, opened = call(url, "open-instance", {"component_id": "counter"})
        handle = opened["instance_id"]
        # Each request on a new connection: in a set, they land on either worker.
        assert [call(url, "bump", {"instance_id": handle})[1] for _ in range(4)] == [0, 4, 8, 12]

        async def sessions() -> None:
            async with http_session(url) as a, http_session(url) as b:
                assert [await bump(a) for _ in range(3)] == [0, 4, 8]
                assert [await bump(b) for _ in range(2)] == [0, 4]
                # Three live (the cap): the next is refused, clearly, and nothing else breaks.
                failed, why = call(url, "open-instance", {"component_id": "counter"})
                assert failed and "max_live_instances = 3" in why, why
                assert await bump(a) == 12
            # The sessions ended (the client deleted them): their instances went.
            assert not call(url, "open-instance", {"component_id": "counter"})[0]

        anyio.run(sessions)
        assert call(url, "bump", {"instance_id": handle})[1] == 16
        assert not call(url, "close-instance", {"instance_id": handle})[0]
        failed, why = call(url, "bump", {"instance_id": handle})
        assert failed and "unknown instance id" in why


def test_a_kept_component_speaks_mcp_through_the_relay(env, cli, components, tmp_path) -> None:
    """In a set of workers, a kept component's progress, log messages and
    questions to the user reach the client from whichever worker it called."""
    assert cli("component", "load", components["conformance"].as_uri()).returncode == 0
    kept(cli, tmp_path, "conformance")
    logs: list[Any] = []
    progress: list[tuple[float, float | None]] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logs.append(params.data)

    async def on_elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        return types.ElicitResult(action="accept", content={"username": "ada", "email": "ada@example.com"})

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, total))

    async def run(url: str) -> None:
        async with http_session(url, logging_callback=on_log, elicitation_callback=on_elicit) as s:
            await s.set_logging_level("debug")
            progress.clear()
            r = await s.call_tool("test_tool_with_progress", {}, progress_callback=on_progress)
            assert not r.is_error and progress == [(0, 100), (50, 100), (100, 100)], progress
            r = await s.call_tool("test_elicitation", {"message": "Who are you?"})
            assert "action=accept" in text(r), text(r)
            before = logs.count("Tool execution completed")
            r = await s.call_tool("test_tool_with_logging", {})
            assert not r.is_error
            await wait_for(
                lambda: logs.count("Tool execution completed") > before, what=f"the log messages: {logs}"
            )

    log = tmp_path / "serve.log"
    with http_server({**env, "WASSETTE_LOG": "debug"}, log, "--workers", "2") as server:
        # A session's requests go over one connection, to one worker: until
        # one lands on the worker that relays (1 in 2 each), a new session.
        for _ in range(16):
            anyio.run(run, server.url)
            if "relays a call of test_elicitation" in log.read_text():
                break
        else:
            raise AssertionError("no session's calls were relayed")


# -- the engine's kept instance, and the runtime's bounds ------------------------------


def engine_call(target: Any, function: str, **policy: Any) -> Any:
    return target.start(None, function, "{}", json.dumps(policy)).finish()


def test_the_engine_keeps_an_instance_one_call_at_a_time(components) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from wassette import _engine

    component = _engine.Engine().compile(components["counter"].read_bytes())
    kept = component.instance()
    assert not kept.live  # made at its first call
    assert [json.loads(engine_call(kept, "bump").value_json) for _ in range(2)] == [0, 4]
    assert kept.live
    # Calls from many threads at once run one after another, each seeing the last.
    with ThreadPoolExecutor(8) as pool:
        values = sorted(pool.map(lambda _: json.loads(engine_call(kept, "bump").value_json), range(16)))
    assert values == list(range(8, 8 + 4 * 16, 4))
    # A trap discards it; the next call makes a new one.
    assert engine_call(kept, "bump-and-trap").status == "trap"
    assert not kept.live
    assert json.loads(engine_call(kept, "bump").value_json) == 0
    kept.close()
    out = engine_call(kept, "bump")
    assert out.status == "sandbox_error" and "closed" in out.error
    # The component's own calls never saw any of it.
    assert json.loads(engine_call(component, "bump").value_json) == 0


def test_a_call_waiting_for_a_busy_instance_keeps_its_own_deadline(components) -> None:
    from wassette import _engine

    component = _engine.Engine().compile(components["spin"].read_bytes())
    kept = component.instance()
    import threading

    first: list[Any] = []
    spinning = threading.Thread(target=lambda: first.append(engine_call(kept, "spin", timeout_ms=1500)))
    spinning.start()
    deadline = time.monotonic() + 10
    while not kept.live:  # the first call made it and runs
        assert time.monotonic() < deadline
        time.sleep(0.005)
    waiting = engine_call(kept, "spin", timeout_ms=200)
    assert waiting.status == "timeout" and "waiting for the instance" in waiting.error
    spinning.join()
    assert first[0].status == "timeout" and not kept.live


def test_ten_thousand_instances_are_refused_past_the_cap_and_the_runtime_goes_on(counter: Cli) -> None:
    """An attacker opening sessions or ids without end: at most
    max_live_instances (default 64) are kept; each of the other 10 000 tries
    gets a clear error, fast; ending sessions makes room again; an id is
    its owner's only."""
    from wassette.runtime.config import Settings
    from wassette.runtime.instances import DEFAULT_MAX_LIVE, InstanceError, Scope
    from wassette.runtime.runtime import Runtime

    runtime = Runtime(Settings.load(env=counter.env))
    runtime.refresh()
    try:
        scopes = [Scope(f"session:{i}", "mallory") for i in range(10_000)]
        statuses: dict[str, int] = {}
        refusal = ""
        started = time.monotonic()
        for scope in scopes:
            result = runtime.start_tool("bump", {}, scope=scope, owner=scope.owner).finish()
            statuses[result.status] = statuses.get(result.status, 0) + 1
            if result.status != "ok":
                refusal = result.error or ""
        elapsed = time.monotonic() - started
        assert statuses == {"ok": DEFAULT_MAX_LIVE, "invalid_arguments": 10_000 - DEFAULT_MAX_LIVE}
        assert f"max_live_instances = {DEFAULT_MAX_LIVE}" in refusal
        assert len(runtime.instances) == DEFAULT_MAX_LIVE
        with pytest.raises(InstanceError, match="max_live_instances"):
            runtime.instances.open("counter", "mallory", 60)
        assert elapsed < 120, f"10 000 tries took {elapsed:.0f} s"
        # Kept instances serve their own sessions still.
        assert runtime.start_tool("bump", {}, scope=scopes[0], owner="mallory").finish().value == 4
        # Sessions that end free their room.
        for scope in scopes[:10]:
            runtime.instances.end_scope(scope.key)
        handle = runtime.instances.open("counter", "alice", 60)
        # Another owner presenting alice's id is told it does not exist.
        result = runtime.start_tool("bump", {"instance_id": handle}, owner="mallory").finish()
        assert result.status == "invalid_arguments" and "unknown instance id" in (result.error or "")
        assert not runtime.instances.close_id(handle, "mallory")
        result = runtime.start_tool("bump", {"instance_id": handle}, owner="alice").finish()
        assert (result.status, result.value) == ("ok", 0)
    finally:
        runtime.close()
    assert len(runtime.instances) == 0
