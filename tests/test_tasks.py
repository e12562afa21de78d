"""Long tool calls as tasks (the io.modelcontextprotocol/tasks extension of
2026-07-28), over real HTTP: a call still running after a second answers
with a task; `tasks/get` polls it and brings the result; `tasks/cancel`
stops it; a task is nobody else's; every worker of a set knows every task."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from homes import Cli
from servers import HttpServer, http_server, messages
from wassette.server.core import protocol

MODERN = "2026-07-28"
EXTENSION = "io.modelcontextprotocol/tasks"


def envelope(tasks: bool = True) -> dict[str, Any]:
    caps: dict[str, Any] = {"extensions": {EXTENSION: {}}} if tasks else {}
    return {
        "_meta": {
            protocol.VERSION_KEY: MODERN,
            protocol.CAPABILITIES_KEY: caps,
            protocol.CLIENT_INFO_KEY: {"name": "t", "version": "0"},
        }
    }


def rpc(url: str, method: str, params: dict[str, Any], *, name: str | None = None) -> dict[str, Any]:
    headers = {
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": MODERN,
        "mcp-method": method,
        **({"mcp-name": name} if name else {}),
    }
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    response = httpx.post(url, json=body, headers=headers, timeout=60)
    answers = [m for m in messages(response) if m.get("id") == 1]
    assert len(answers) == 1, response.text
    return answers[0]


def call(url: str, tool: str, arguments: dict[str, Any], tasks: bool = True) -> dict[str, Any]:
    return rpc(url, "tools/call", {"name": tool, "arguments": arguments, **envelope(tasks)}, name=tool)


def get(url: str, task_id: str, tasks: bool = True) -> dict[str, Any]:
    return rpc(url, "tasks/get", {"taskId": task_id, **envelope(tasks)}, name=task_id)


def poll(
    url: str, task_id: str, until: tuple[str, ...] = ("completed", "failed", "cancelled")
) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        task = get(url, task_id)["result"]
        if task["status"] in until:
            return task
        time.sleep(task["pollIntervalMs"] / 1000 / 10)  # polling, as a client does
    raise AssertionError(f"task {task_id} did not reach {until}")


@pytest.fixture(scope="module", params=[1, 2], ids=["one-worker", "two-workers"])
def server(request, module_env, module_cli: Cli, components, tmp_path_factory) -> Iterator[HttpServer]:
    assert module_cli("component", "load", components["conformance"].as_uri()).returncode == 0
    assert module_cli("component", "load", components["spin"].as_uri()).returncode == 0
    log = tmp_path_factory.mktemp("log") / "serve.log"
    with http_server(module_env, log, "--workers", str(request.param)) as s:
        yield s


def test_a_long_call_becomes_a_task_and_brings_its_result(server: HttpServer) -> None:
    answer = call(server.url, "sleep_ms", {"ms": 1800})["result"]
    assert answer["resultType"] == "task" and answer["status"] == "working"
    assert set(answer) >= {"taskId", "createdAt", "lastUpdatedAt", "ttlMs", "pollIntervalMs"}
    assert "owner" not in answer and "expires" not in answer
    task = poll(server.url, answer["taskId"])
    assert task["status"] == "completed" and task["resultType"] == "complete"
    assert task["result"]["content"] == [{"type": "text", "text": "slept 1800 ms"}]
    # Polled again (from any worker): the same result, kept for its TTL.
    assert get(server.url, answer["taskId"])["result"]["result"] == task["result"]


def test_short_calls_and_clients_without_the_extension_get_results(server: HttpServer) -> None:
    quick = call(server.url, "sleep_ms", {"ms": 10})["result"]
    assert "taskId" not in quick and quick["content"][0]["text"] == "slept 10 ms"
    waited = call(server.url, "sleep_ms", {"ms": 1300}, tasks=False)["result"]
    assert "taskId" not in waited and waited["content"][0]["text"] == "slept 1300 ms"
    # The task methods need the extension declared.
    error = get(server.url, "x" * 32, tasks=False)["error"]
    assert error["code"] == -32003 and error["data"] == {
        "requiredCapabilities": {"extensions": {EXTENSION: {}}}
    }


def test_a_task_is_cancelled(server: HttpServer) -> None:
    answer = call(server.url, "spin", {})["result"]
    assert answer["resultType"] == "task"
    ack = rpc(server.url, "tasks/cancel", {"taskId": answer["taskId"], **envelope()}, name=answer["taskId"])
    assert ack["result"]["resultType"] == "complete" and set(ack["result"]) <= {"resultType", "_meta"}
    task = poll(server.url, answer["taskId"])
    assert task["status"] == "cancelled"
    # The server goes on.
    assert call(server.url, "test_simple_text", {})["result"]["content"][0]["text"].startswith("This is")


@pytest.mark.parametrize("task_id", ["../../etc/passwd", "x" * 32, "", "a/b" * 10, "x" * 100])
def test_unknown_and_hostile_task_ids(server: HttpServer, task_id: str) -> None:
    answer = rpc(server.url, "tasks/get", {"taskId": task_id, **envelope()}, name=task_id or None)
    if not task_id:  # no Mcp-Name header to route by: refused before it is looked up
        assert answer["error"]["code"] == -32020
        return
    assert answer["error"]["code"] == -32602 and "no task" in answer["error"]["message"]


def test_a_task_id_of_the_wrong_type(server: HttpServer) -> None:
    answer = rpc(server.url, "tasks/get", {"taskId": 42, **envelope()}, name="42")
    assert "error" in answer


def test_a_task_belongs_to_its_caller(issuer, module_env, module_cli: Cli, tmp_path: Path) -> None:
    """With OAuth, a task is its subject's: Bob asking for Alice's task id
    is told there is no such task; Alice gets it."""
    resource = "http://127.0.0.1/mcp"
    args = ("--oauth-issuer", issuer.url, "--oauth-resource", resource, "--workers", "1")
    with http_server(module_env, tmp_path / "serve.log", *args) as srv:

        def as_user(sub: str, method: str, params: dict[str, Any], name: str) -> dict[str, Any]:
            headers = {
                "authorization": f"Bearer {issuer.token(sub=sub, aud=resource)}",
                "accept": "application/json, text/event-stream",
                "mcp-protocol-version": MODERN,
                "mcp-method": method,
                "mcp-name": name,
            }
            body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": {**params, **envelope()}}
            response = httpx.post(srv.url, json=body, headers=headers, timeout=30)
            return messages(response)[-1]

        task = as_user("alice", "tools/call", {"name": "sleep_ms", "arguments": {"ms": 1500}}, "sleep_ms")[
            "result"
        ]
        assert task["resultType"] == "task"
        refused = as_user("bob", "tasks/get", {"taskId": task["taskId"]}, task["taskId"])
        assert "no task" in refused["error"]["message"], json.dumps(refused)
        refused = as_user("bob", "tasks/cancel", {"taskId": task["taskId"]}, task["taskId"])
        assert "no task" in refused["error"]["message"]
        mine = as_user("alice", "tasks/get", {"taskId": task["taskId"]}, task["taskId"])
        assert mine["result"]["taskId"] == task["taskId"]


def test_a_question_from_a_task_waits_for_tasks_update(server: HttpServer) -> None:
    """A component that asks the user during a 2026-07-28 call: the call
    becomes a task in input_required with the question, and the answer given
    with tasks/update reaches the component."""
    params = {"name": "test_elicitation", "arguments": {"message": "Who?"}, **envelope()}
    params["_meta"][protocol.CAPABILITIES_KEY]["elicitation"] = {}
    answer = rpc(server.url, "tools/call", params, name="test_elicitation")["result"]
    assert answer["resultType"] == "task"
    task = poll(server.url, answer["taskId"], until=("input_required",))
    ((key, question),) = task["inputRequests"].items()
    assert question["method"] == "elicitation/create" and question["params"]["message"] == "Who?"
    assert question["params"]["requestedSchema"]["required"] == ["username", "email"]
    # An answer to a key never issued is ignored; the real one is taken.
    for responses in (
        {"q999": {"action": "decline"}},
        {key: {"action": "accept", "content": {"username": "ada"}}},
    ):
        update = {"taskId": answer["taskId"], "inputResponses": responses, **envelope()}
        assert "result" in rpc(server.url, "tasks/update", update, name=answer["taskId"])
    done = poll(server.url, answer["taskId"])
    assert done["status"] == "completed" and "inputRequests" not in done
    assert done["result"]["content"][0]["text"] == 'User response: action=accept, content={"username":"ada"}'


# -- 2025-11-25: task-augmented requests (experimental in that revision) ------------


def test_2025_11_25_task_augmented_calls(server: HttpServer) -> None:
    """A 2025-11-25 `tools/call` with `task` is answered with the task at
    once; `tasks/get` polls it, `tasks/result` waits for the call's result,
    `tasks/list` lists the caller's, `tasks/cancel` stops one; every answer
    is what the SDK's own types accept; nobody else sees them."""
    import mcp_types

    from servers import RawSession

    # One worker, and a set of two (the `server` fixture).
    s = RawSession(server.url)
    init = s.post({"jsonrpc": "2.0", "id": 90, "method": "ping"})
    assert init.status_code == 200
    tools = messages(s.post({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))[0]["result"]["tools"]
    sleep_tool = next(t for t in tools if t["name"] == "sleep_ms")
    assert mcp_types.Tool.model_validate(sleep_tool).execution.task_support == "optional"

    created = messages(s.call(2, "sleep_ms", {"ms": 2000}, task={"ttl": 60_000}))[0]["result"]
    task = mcp_types.CreateTaskResult.model_validate(created).task
    assert task.status == "working" and task.ttl == 60_000
    got = messages(
        s.post({"jsonrpc": "2.0", "id": 3, "method": "tasks/get", "params": {"taskId": task.task_id}})
    )
    # Still running: the request was answered without waiting for the call.
    assert mcp_types.GetTaskResult.model_validate(got[0]["result"]).status == "working"

    # tasks/result waits for the end: the call's result, tied to its task.
    done = messages(
        s.post({"jsonrpc": "2.0", "id": 4, "method": "tasks/result", "params": {"taskId": task.task_id}})
    )
    result = done[-1]["result"]
    assert mcp_types.CallToolResult.model_validate(result).content[0].text == "slept 2000 ms"
    assert result["_meta"]["io.modelcontextprotocol/related-task"] == {"taskId": task.task_id}
    got = messages(
        s.post({"jsonrpc": "2.0", "id": 5, "method": "tasks/get", "params": {"taskId": task.task_id}})
    )
    assert got[0]["result"]["status"] == "completed"

    # A tool error: the task failed, its result says why.
    failed = messages(s.call(6, "test_error_handling", {}, task={}))[0]["result"]["task"]["taskId"]
    done = messages(
        s.post({"jsonrpc": "2.0", "id": 7, "method": "tasks/result", "params": {"taskId": failed}})
    )
    assert done[-1]["result"]["isError"]
    got = messages(s.post({"jsonrpc": "2.0", "id": 8, "method": "tasks/get", "params": {"taskId": failed}}))
    assert got[0]["result"]["status"] == "failed" and got[0]["result"]["statusMessage"]

    # Cancelled while it runs: the call stops, the task says so, it has no result.
    long = messages(s.call(9, "sleep_ms", {"ms": 30_000}, task={}))[0]["result"]["task"]["taskId"]
    cancelled = messages(
        s.post({"jsonrpc": "2.0", "id": 10, "method": "tasks/cancel", "params": {"taskId": long}})
    )
    assert mcp_types.CancelTaskResult.model_validate(cancelled[0]["result"]).status == "cancelled"
    again = messages(
        s.post({"jsonrpc": "2.0", "id": 11, "method": "tasks/cancel", "params": {"taskId": long}})
    )
    assert again[0]["error"]["code"] == -32602
    no_result = messages(
        s.post({"jsonrpc": "2.0", "id": 12, "method": "tasks/result", "params": {"taskId": long}})
    )
    assert no_result[-1]["error"]["code"] == -32602 and "cancelled" in no_result[-1]["error"]["message"]

    listed = messages(s.post({"jsonrpc": "2.0", "id": 13, "method": "tasks/list", "params": {}}))[0]["result"]
    ids = {t.task_id for t in mcp_types.ListTasksResult.model_validate(listed).tasks}
    assert {task.task_id, failed, long} <= ids

    # Another session sees none of it; a built-in tool does not run as a task.
    other = RawSession(server.url)
    listed = messages(other.post({"jsonrpc": "2.0", "id": 1, "method": "tasks/list", "params": {}}))[0][
        "result"
    ]
    assert listed["tasks"] == []
    peek = messages(
        other.post({"jsonrpc": "2.0", "id": 2, "method": "tasks/get", "params": {"taskId": task.task_id}})
    )
    assert peek[0]["error"]["code"] == -32602
    builtin = messages(other.call(3, "list-components", {}, task={}))
    assert builtin[0]["error"]["code"] == -32601
