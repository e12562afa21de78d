"""Components that speak MCP (python/wassette/wit/mcp.wit), through the
official MCP client: declared tools with their own names and schemas, rich
content, resources, resource templates, prompts and completion — and what a
component answering nonsense gets (a clear error, the server going on)."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Any

import anyio
import mcp.types as types
import pytest
from mcp.shared.exceptions import MCPError

from homes import Cli
from test_mcp_features import BUILTINS, session, text
from test_mcp_http import wait_for

pytestmark = pytest.mark.anyio
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def loaded(cli: Cli, components) -> Cli:
    r = cli("component", "load", components["conformance"].as_uri())
    assert r.returncode == 0, r.stderr
    return cli


def test_the_fixture_uses_the_published_wit() -> None:
    """The fixtures bind the package's own WIT file, byte for byte."""
    shipped = REPO / "python" / "wassette" / "wit" / "mcp.wit"
    for fixture in ("rust/conformance", "py/mcp-py", "c/mcp-c"):
        copy = REPO / "tests" / "components" / fixture / "wit" / "deps" / "mcp" / "mcp.wit"
        assert shipped.read_bytes() == copy.read_bytes(), copy


async def test_declared_tools_and_rich_content(env: dict[str, str], loaded: Cli) -> None:
    async with session(env) as s:
        tools = {t.name: t for t in (await s.list_tools()).tools}
        # Declared names as the component gives them; its protocol functions are no tools.
        assert {"test_simple_text", "json_schema_2020_12_tool", "add_numbers", "rich-echo"} <= set(tools)
        assert not {n for n in tools if "list-tools" in n or "call-tool" in n or "read-resource" in n}
        schema = tools["json_schema_2020_12_tool"].input_schema
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema" and "$defs" in schema
        assert tools["add_numbers"].output_schema == {
            "type": "object",
            "properties": {"sum": {"type": "number"}},
            "required": ["sum"],
        }
        assert tools["rich-echo"].output_schema is None  # a typed export answering content
        # Icons from wassette:mcp/icons, in MCP's form; none where none are given.
        [png] = tools["test_simple_text"].icons
        assert png.src.startswith("data:image/png;base64,") and png.mime_type == "image/png"
        assert png.sizes == ["1x1"] and png.theme is None
        [svg] = tools["add_numbers"].icons
        assert (svg.src, svg.mime_type, svg.sizes, svg.theme) == (
            "https://example.com/icons/add.svg",
            "image/svg+xml",
            ["any"],
            "dark",
        )
        assert not tools["test_image_content"].icons and not tools["rich-echo"].icons

        r = await s.call_tool("test_multiple_content_types", {})
        kinds = [c.type for c in r.content]
        assert kinds == ["text", "image", "resource"] and not r.is_error
        image = r.content[1]
        assert isinstance(image, types.ImageContent) and image.mime_type == "image/png"
        assert base64.b64decode(image.data).startswith(b"\x89PNG")
        audio = (await s.call_tool("test_audio_content", {})).content[0]
        assert isinstance(audio, types.AudioContent) and audio.mime_type == "audio/wav"

        r = await s.call_tool("add_numbers", {"a": 2, "b": 0.5})
        assert r.structured_content == {"sum": 2.5} and not r.is_error
        # Checked against the declared schema before the component runs.
        r = await s.call_tool("add_numbers", {"a": 2, "b": "x"})
        assert r.is_error and "args.b: 'x' is not of type 'number'" in r.content[0].text  # type: ignore[union-attr]
        r = await s.call_tool("test_error_handling", {})
        assert r.is_error and "intentionally" in r.content[0].text  # type: ignore[union-attr]

        r = await s.call_tool("rich-echo", {"text": "hi", "count": 2})
        assert [c.type for c in r.content] == ["text", "text", "resource_link"]
        link = r.content[2]
        assert isinstance(link, types.ResourceLink) and str(link.uri) == "test://static-text"


async def test_resources_templates_prompts_and_completion(env: dict[str, str], loaded: Cli) -> None:
    async with session(env) as s:
        caps = s.server_capabilities
        assert caps is not None and caps.resources is not None and caps.resources.subscribe
        listed = {str(r.uri): r for r in (await s.list_resources()).resources}
        assert set(listed) == {"test://static-text", "test://static-binary", "test://watched-resource"}
        assert listed["test://static-binary"].mime_type == "image/png"
        text = (await s.read_resource("test://static-text")).contents[0]
        assert isinstance(text, types.TextResourceContents) and "static text resource" in text.text
        blob = (await s.read_resource("test://static-binary")).contents[0]
        assert isinstance(blob, types.BlobResourceContents) and base64.b64decode(blob.blob)[:4] == b"\x89PNG"
        templates = (await s.list_resource_templates()).resource_templates
        assert [t.uri_template for t in templates] == ["test://template/{id}/data"]
        data = (await s.read_resource("test://template/42/data")).contents[0]
        assert isinstance(data, types.TextResourceContents) and json.loads(data.text)["id"] == "42"
        with pytest.raises(MCPError) as caught:
            await s.read_resource("test://nothing-here")
        assert caught.value.code == -32002 and "no resource" in caught.value.message
        await s.subscribe_resource("test://watched-resource")

        prompts = {p.name for p in (await s.list_prompts()).prompts}
        assert {"test_simple_prompt", "test_prompt_with_arguments", "write-component"} <= prompts
        got = await s.get_prompt("test_prompt_with_arguments", {"arg1": "one", "arg2": "two"})
        assert "arg1='one', arg2='two'" in got.messages[0].content.text  # type: ignore[union-attr]
        got = await s.get_prompt("test_prompt_with_embedded_resource", {"resourceUri": "test://x"})
        assert got.messages[0].content.type == "resource"
        with pytest.raises(MCPError) as caught:
            await s.get_prompt("test_prompt_with_arguments", {"arg1": "one"})
        assert "needs the argument 'arg2'" in caught.value.message

        ref = types.PromptReference(type="ref/prompt", name="test_prompt_with_arguments")
        done = await s.complete(ref, {"name": "arg1", "value": "teste"})
        assert done.completion.values == ["tested"]
        template = types.ResourceTemplateReference(type="ref/resource", uri="test://template/{id}/data")
        done = await s.complete(template, {"name": "id", "value": "4"})
        assert done.completion.values == ["456"]


async def test_two_components_offering_one_prompt_name_are_qualified(
    env: dict[str, str], loaded: Cli, components, tmp_path: Path
) -> None:
    twin = tmp_path / "twin.wasm"
    shutil.copyfile(components["conformance"], twin)
    assert loaded("component", "load", twin.as_uri()).returncode == 0
    async with session(env) as s:
        names = {p.name for p in (await s.list_prompts()).prompts}
        assert {"conformance__test_simple_prompt", "twin__test_simple_prompt"} <= names
        assert "test_simple_prompt" not in names
        got = await s.get_prompt("twin__test_simple_prompt", {})
        assert "simple prompt" in got.messages[0].content.text  # type: ignore[union-attr]
        tools = {t.name for t in (await s.list_tools()).tools}
        assert {"conformance__test_simple_text", "twin__test_simple_text"} <= tools


async def test_host_calls_reach_the_client(env: dict[str, str], loaded: Cli) -> None:
    """wassette:mcp/host from a component: logs, progress, a question to the
    user and one to the model, each through the official client's callbacks."""
    logs: list[types.LoggingMessageNotificationParams] = []
    asked: list[Any] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logs.append(params)

    async def on_elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params)
        return types.ElicitResult(action="accept", content={"username": "ada", "email": "ada@example.com"})

    async def on_sample(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        asked.append(params)
        content = types.TextContent(type="text", text="forty-two")
        return types.CreateMessageResult(role="assistant", content=content, model="test-model")

    progress: list[tuple[float, float | None]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, total))

    kwargs = {"logging_callback": on_log, "elicitation_callback": on_elicit, "sampling_callback": on_sample}
    async with session(env, **kwargs) as s:
        await s.set_logging_level("debug")
        r = await s.call_tool("test_tool_with_logging", {})
        assert not r.is_error
        await wait_for(lambda: len(logs) >= 3, what=f"three log messages: {logs}")
        assert [log.data for log in logs[:3]] == [
            "Tool execution started",
            "Tool processing data",
            "Tool execution completed",
        ]
        assert {log.logger for log in logs[:3]} == {"test_tool_with_logging"} and logs[0].level == "info"

        r = await s.call_tool("test_tool_with_progress", {}, progress_callback=on_progress)
        assert not r.is_error and progress == [(0, 100), (50, 100), (100, 100)]

        r = await s.call_tool("test_elicitation", {"message": "Who are you?"})
        assert "action=accept" in text(r) and '"username": "ada"' in text(r).replace('":"', '": "')
        assert asked[-1].message == "Who are you?" and asked[-1].requested_schema["required"] == [
            "username",
            "email",
        ]

        r = await s.call_tool("test_sampling", {"prompt": "six times seven?"})
        assert not r.is_error and "forty-two" in text(r)
        assert asked[-1].messages[0].content.text == "six times seven?"


async def test_questions_need_the_client_capability(env: dict[str, str], loaded: Cli, home: Path) -> None:
    """A client that declared neither elicitation nor sampling is not asked:
    the component gets the reason as its error; nothing is audited as asked."""
    async with session(env) as s:
        r = await s.call_tool("test_elicitation", {"message": "Who are you?"})
        assert r.is_error and "did not declare the elicitation capability" in text(r)
        r = await s.call_tool("test_sampling", {"prompt": "hi"})
        assert r.is_error and "did not declare the sampling capability" in text(r)
    audit = (home / "data" / "wassette" / "audit.jsonl").read_text()
    assert '"elicitation"' not in audit and '"sampling"' not in audit


async def test_a_log_flood_is_stopped_and_the_server_goes_on(env: dict[str, str], loaded: Cli) -> None:
    async with session(env) as s:
        await s.set_logging_level("emergency")  # nothing sent: the bound holds even so
        r = await s.call_tool("flood_logs", {"count": 10_001})
        assert r.is_error and "over 10000 calls of wassette:mcp/host@0.1.0 in one tool call" in text(r)
        r = await s.call_tool("flood_logs", {"count": 10_000})
        assert not r.is_error and "logged 10000" in text(r)
        assert not (await s.call_tool("test_simple_text", {})).is_error


async def test_a_component_asking_in_a_loop_is_stopped_after_16_questions(
    env: dict[str, str], loaded: Cli
) -> None:
    """A component that elicits again and again, ignoring the answers: the
    user is asked 16 times at most, then the call stops with the reason,
    and the server goes on."""
    asked: list[str] = []

    async def on_elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action="decline")

    async with session(env, elicitation_callback=on_elicit) as s:
        r = await s.call_tool("elicit_loop", {})
        assert r.is_error and "asked more than 16 questions (elicit, sample) in one tool call" in text(r), (
            text(r)
        )
        assert asked == ["Again?"] * 16
        assert not (await s.call_tool("test_simple_text", {})).is_error
        # The bound is per call: the next call may ask again.
        await s.call_tool("elicit_loop", {})
        assert len(asked) == 32


async def test_the_interface_from_javascript(env: dict[str, str], cli: Cli, components) -> None:
    """The same interface from a second language (JavaScript through jco):
    progress, logs, elicitation, sampling, rich content, a resource."""
    assert cli("component", "load", components["mcp-js"].as_uri()).returncode == 0
    logs: list[Any] = []
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logs.append(params)

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, total, message))

    async def on_elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        return types.ElicitResult(action="accept", content={"colour": "teal"})

    async def on_sample(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        content = types.TextContent(type="text", text=f"you asked {params.messages[0].content.text!r}")  # type: ignore[union-attr]
        return types.CreateMessageResult(role="assistant", content=content, model="m")

    kwargs = {"logging_callback": on_log, "elicitation_callback": on_elicit, "sampling_callback": on_sample}
    async with session(env, **kwargs) as s:
        await s.set_logging_level("info")
        r = await s.call_tool("js_steps", {"n": 3}, progress_callback=on_progress)
        assert r.structured_content == {"steps": 3} and progress == [
            (1, 3, "step 1"),
            (2, 3, "step 2"),
            (3, 3, "step 3"),
        ]
        await wait_for(lambda: len(logs) >= 3, what=f"three logs: {logs}")
        assert [log.data for log in logs] == [{"step": 1}, {"step": 2}, {"step": 3}] and logs[
            0
        ].logger == "js"
        r = await s.call_tool("js_steps", {"n": 0})
        assert r.is_error and "args.n: 0 is less than the minimum of 1" in text(r)
        assert text(await s.call_tool("js_ask", {})) == 'accept: {"colour":"teal"}'
        assert text(await s.call_tool("js_think", {"q": "why?"})) == "the model says: you asked 'why?'"
        r = await s.call_tool("picture", {"text": "a red dot"})
        assert [c.type for c in r.content] == ["text", "image"]
        hello = (await s.read_resource("js://hello")).contents[0]
        assert isinstance(hello, types.TextResourceContents) and hello.text == "hello from JavaScript"


async def test_the_interface_from_python(env: dict[str, str], cli: Cli, components) -> None:
    """The same interface from Python (componentize-py): declared tools with
    their schemas, progress, a log, elicitation, an image with structured content."""
    assert cli("component", "load", components["mcp-py"].as_uri()).returncode == 0
    logs: list[Any] = []
    progress: list[tuple[float, float | None, str | None]] = []
    asked: list[types.ElicitRequestParams] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logs.append(params)

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, total, message))

    async def on_elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params)
        return types.ElicitResult(action="accept", content={"colour": "teal"})

    kwargs = {"logging_callback": on_log, "elicitation_callback": on_elicit}
    async with session(env, **kwargs) as s:
        tools = {t.name: t for t in (await s.list_tools()).tools}
        # Exactly the declared tools; `list-tools`, `call-tool` and componentize-py's `init` are none.
        assert set(tools) - BUILTINS == {"py_progress", "py_log", "py_ask", "py_image"}
        empty = {"type": "object", "properties": {}, "required": []}
        assert tools["py_progress"].input_schema == empty and tools["py_progress"].output_schema is None
        assert tools["py_ask"].input_schema == {
            "type": "object",
            "properties": {"question": {"type": "string"}},
            "required": ["question"],
        }
        assert tools["py_image"].title == "A picture" and tools["py_image"].output_schema == {
            "type": "object",
            "properties": {"ok": {"type": "boolean"}},
            "required": ["ok"],
        }

        r = await s.call_tool("py_progress", {}, progress_callback=on_progress)
        assert not r.is_error and text(r) == "counted to 3"
        assert progress == [(0, 3, "start"), (1, 3, None), (2, 3, None), (3, 3, None)]

        await s.set_logging_level("info")
        assert text(await s.call_tool("py_log", {})) == "logged"
        await wait_for(lambda: len(logs) >= 1, what=f"a log: {logs}")
        [log] = logs
        assert (log.level, log.logger, log.data) == ("info", "py", {"from": "python"})

        r = await s.call_tool("py_ask", {"question": "Your favourite colour?"})
        assert not r.is_error and text(r) == 'accept {"colour":"teal"}'
        [question] = asked
        assert question.message == "Your favourite colour?"
        assert question.requested_schema["required"] == ["colour"]
        r = await s.call_tool("py_ask", {"question": 3})
        assert r.is_error and "args.question: 3 is not of type 'string'" in text(r)

        r = await s.call_tool("py_image", {})
        assert not r.is_error and [c.type for c in r.content] == ["image", "text"]
        image, caption = r.content
        assert isinstance(image, types.ImageContent) and image.mime_type == "image/png"
        assert base64.b64decode(image.data).startswith(b"\x89PNG")
        assert isinstance(caption, types.TextContent) and caption.text == "a red dot"
        assert r.structured_content == {"ok": True}


async def test_a_flood_of_output_is_refused_and_the_server_goes_on(env: dict[str, str], loaded: Cli) -> None:
    """A result over 32 MiB of JSON is refused before it is copied out of the
    engine; a large one under it arrives whole."""
    async with session(env) as s:
        r = await s.call_tool("big_text", {"mib": 40})
        assert r.is_error and "over the limit of 33554432 bytes" in text(r)
        r = await s.call_tool("big_image", {"mib": 100})  # a 100 MiB image
        assert r.is_error and "over the limit of 33554432 bytes" in text(r)
        r = await s.call_tool("big_text", {"mib": 4})
        assert not r.is_error and len(text(r)) == 4 << 20
        assert not (await s.call_tool("test_simple_text", {})).is_error


@pytest.mark.parametrize(
    ("icon", "why"),
    [
        ({"src": "http://example.com/a.png"}, "not an https: or data:image/ URI"),
        ({"src": "javascript:alert(1)"}, "not an https: or data:image/ URI"),
        ({"src": "data:text/html,<script>"}, "not an https: or data:image/ URI"),
        ({"src": "data:image/png;base64," + "A" * 70_000}, "over 65536 characters"),
        ({"src": "https://x/a.png", "mime-type": "text/html"}, "not an image type"),
        ({"src": "https://x/a.png", "sizes": ["huge"]}, "use e.g. 48x48 or any"),
        ({"src": "https://x/a.png", "theme": "blue"}, "use light or dark"),
        ("not a record", "has no src"),
    ],
)
def test_unusable_icons_are_refused_with_the_reason(icon: Any, why: str) -> None:
    from wassette.runtime.errors import WassetteError
    from wassette.runtime.mcp_exports import _icon

    with pytest.raises(WassetteError, match=why.replace("(", r"\(")):
        _icon(icon, "t")


@pytest.mark.parametrize("workers", [1, 2])
def test_questions_over_2026_07_28_take_rounds(
    env: dict[str, str], loaded: Cli, tmp_path: Path, workers: int
) -> None:
    """2026-07-28 without tasks: a component's question answers the call
    with `input_required`; the official client asks its user and retries
    with the answer; the call goes on and answers the retry — round after
    round, on any worker of a set."""
    from mcp.client import Client

    from servers import http_server

    asked: list[str] = []

    async def on_elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"username": "ada", "email": "ada@example.com"})

    async def on_sample(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        content = types.TextContent(type="text", text="forty-two")
        return types.CreateMessageResult(role="assistant", content=content, model="test-model")

    async def run(url: str) -> None:
        async with Client(url, elicitation_callback=on_elicit, sampling_callback=on_sample) as c:
            assert c.protocol_version == "2026-07-28"
            for _ in range(3):  # new connections: in a set, on either worker
                r = await c.call_tool("test_elicitation", {"message": "Who are you?"})
                assert not r.is_error and "action=accept" in text(r), text(r)
                r = await c.call_tool("test_sampling", {"prompt": "six times seven?"})
                assert not r.is_error and "forty-two" in text(r), text(r)
            # Several questions in one call: a round each.
            r = await c.call_tool("test_elicitation_sep1034_defaults", {})
            assert not r.is_error, text(r)

    with http_server(env, tmp_path / "serve.log", "--workers", str(workers)) as server:
        anyio.run(run, server.url)
    assert asked[:3] == ["Who are you?"] * 3


def _modern_call(url: str, params: dict[str, Any]) -> dict[str, Any]:
    """A 2026-07-28 tools/call on a new connection (in a set: either worker)."""
    import httpx2 as httpx

    from servers import messages
    from wassette.server.core import protocol

    meta = {
        protocol.VERSION_KEY: "2026-07-28",
        protocol.CAPABILITIES_KEY: {"elicitation": {}},
        protocol.CLIENT_INFO_KEY: {"name": "t", "version": "0"},
    }
    headers = {
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": "tools/call",
        "mcp-name": params["name"],
    }
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {**params, "_meta": meta}}
    answer: dict[str, Any] = messages(httpx.post(url, json=body, headers=headers, timeout=60))[-1]
    return answer


def test_a_retry_with_a_stale_or_foreign_request_state_is_refused(
    env: dict[str, str], loaded: Cli, tmp_path: Path
) -> None:
    from servers import http_server

    with http_server(env, tmp_path / "serve.log", "--workers", "1") as server:
        post = lambda params: _modern_call(server.url, params)  # noqa: E731
        first = post({"name": "test_elicitation", "arguments": {"message": "Who?"}})["result"]
        assert first["resultType"] == "input_required"
        [(key, question)] = first["inputRequests"].items()
        assert question["method"] == "elicitation/create" and question["params"]["message"] == "Who?"
        state = first["requestState"]
        retry = {"name": "test_elicitation", "arguments": {}, "requestState": state}
        wrong = post({**retry, "requestState": "nope", "inputResponses": {}})
        assert wrong["error"]["code"] == -32602 and "no call waits" in wrong["error"]["message"]
        other_tool = post({**retry, "name": "test_sampling", "inputResponses": {}})
        assert other_tool["error"]["code"] == -32602
        no_answer = post({**retry, "inputResponses": {}})
        assert no_answer["error"]["code"] == -32602 and key in no_answer["error"]["message"]
        done = post({**retry, "inputResponses": {key: {"action": "decline"}}})
        assert done["result"]["resultType"] == "complete"
        assert "action=decline" in done["result"]["content"][0]["text"]
        # The state is spent.
        again = post({**retry, "inputResponses": {key: {"action": "decline"}}})
        assert again["error"]["code"] == -32602


def test_a_retry_reaching_another_worker_is_relayed_to_its_call(
    env: dict[str, str], loaded: Cli, tmp_path: Path
) -> None:
    from servers import http_server

    log = tmp_path / "serve.log"
    with http_server({**env, "WASSETTE_LOG": "debug"}, log, "--workers", "2") as server:
        for _ in range(24):  # each request on a new connection: 1 in 2 reaches the other worker
            first = _modern_call(server.url, {"name": "test_elicitation", "arguments": {"message": "Who?"}})
            [key] = first["result"]["inputRequests"]
            answer = {key: {"action": "accept", "content": {"username": "ada", "email": "a@b.c"}}}
            retry = {"name": "test_elicitation", "arguments": {}, "inputResponses": answer}
            done = _modern_call(server.url, {**retry, "requestState": first["result"]["requestState"]})
            assert done["result"]["resultType"] == "complete", done
            assert "action=accept" in done["result"]["content"][0]["text"]
            if "relays a retry of test_elicitation" in log.read_text():
                break
        else:
            raise AssertionError("no retry reached the other worker")


async def test_the_interface_from_c(env: dict[str, str], cli: Cli, components) -> None:
    """The same interface from C (wit-bindgen c, clang, wasi-libc): declared
    tools with an output schema, progress, a log, elicitation answered and
    declined, UTF-8 text and structured content."""
    import subprocess

    from homes import DEV_CACHE

    fixture = REPO / "tests" / "components" / "c" / "mcp-c"
    shipped = REPO / "python" / "wassette" / "wit" / "mcp.wit"
    assert (fixture / "wit" / "deps" / "mcp" / "mcp.wit").read_bytes() == shipped.read_bytes()
    # Its checked-in bindings are what the pinned wit-bindgen c makes of that WIT.
    wit_bindgen = DEV_CACHE / "wit-bindgen-cli" / "bin" / "wit-bindgen"
    assert wit_bindgen.exists(), f"{wit_bindgen} missing: run scripts/setup-toolchain.sh"
    bindgen = [wit_bindgen, "c", "wit", "--world", "mcp-c", "--no-object-file", "--out-dir", "bindings"]
    check = subprocess.run([*bindgen, "--check"], cwd=fixture, capture_output=True, text=True)
    assert check.returncode == 0, f"regenerate tests/components/c/mcp-c/bindings: {check.stderr}"

    assert cli("component", "load", components["mcp-c"].as_uri()).returncode == 0
    logs: list[Any] = []
    progress: list[tuple[float, float | None, str | None]] = []
    asked: list[types.ElicitRequestParams] = []
    answers = [
        types.ElicitResult(action="accept", content={"colour": "teal"}),
        types.ElicitResult(action="decline"),
    ]

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logs.append(params)

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, total, message))

    async def on_elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params)
        return answers.pop(0)

    def one_string(key: str) -> dict[str, Any]:
        return {"type": "object", "properties": {key: {"type": "string"}}, "required": [key]}

    async with session(env, logging_callback=on_log, elicitation_callback=on_elicit) as s:
        tools = {t.name: t for t in (await s.list_tools()).tools}
        assert {n for n in tools if n.startswith("c_")} == {"c_progress", "c_log", "c_ask", "c_echo"}
        assert tools["c_progress"].input_schema == {"type": "object", "properties": {}, "required": []}
        assert tools["c_ask"].input_schema == one_string("question") and tools["c_ask"].output_schema is None
        assert tools["c_echo"].input_schema == one_string("text")
        assert tools["c_echo"].output_schema == {
            "type": "object",
            "properties": {"length": {"type": "integer"}},
            "required": ["length"],
        }

        r = await s.call_tool("c_progress", {}, progress_callback=on_progress)
        assert not r.is_error and text(r) == "done"
        assert progress == [(1, 2, "half"), (2, 2, None)]

        await s.set_logging_level("warning")  # the log's own level: sent
        assert text(await s.call_tool("c_log", {})) == "logged"
        await wait_for(lambda: len(logs) >= 1, what=f"a log: {logs}")
        [log] = logs
        assert (log.level, log.logger, log.data) == ("warning", "c", {"lang": "c"})

        r = await s.call_tool("c_ask", {"question": "Your favourite colour?"})
        assert not r.is_error and text(r) == 'accept {"colour":"teal"}'
        r = await s.call_tool("c_ask", {"question": "And now?"})
        assert not r.is_error and text(r) == "decline none"
        assert [q.message for q in asked] == ["Your favourite colour?", "And now?"]
        assert asked[0].requested_schema == one_string("colour")

        # UTF-8 both ways, JSON escapes decoded; the length in code points.
        for said in ("hello", "héllo ✓", "𝄞 clef", 'a "quote", a \\ and a\nnewline\x01', ""):
            r = await s.call_tool("c_echo", {"text": said})
            assert not r.is_error and text(r) == said, r
            assert r.structured_content == {"length": len(said)}
        r = await s.call_tool("c_echo", {"text": 3})
        assert r.is_error and "args.text: 3 is not of type 'string'" in text(r)
