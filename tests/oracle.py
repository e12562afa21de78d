"""The reference our answers are checked against: the official MCP SDK's
own server (its lowlevel `Server`), serving the same tools with the same
results, in this test process.

Ours never imports the SDK; the tests that compare the two show that the
envelope of every answer (initialize, listings, errors, revisions, the
2026-07-28 stamps) is what the SDK itself would send.
"""

from __future__ import annotations

import json
import re
import warnings
from typing import Any

import anyio
import mcp.types as types
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp.shared.memory import create_client_server_memory_streams
from mcp.shared.message import SessionMessage

from wassette.runtime.runtime import Runtime
from wassette.server.core import prompts, protocol
from wassette.server.core.results import call_result, error_result, stderr_log, tools

_LEVEL = "wassette.log_level"


class _Server(Server[Any]):
    """Advertises `tools.listChanged`, as ours does, at 2026-07-28 the tasks
    extension and before it the tasks capability of 2025-11-25 (which our server
    serves; the SDK's does not)."""

    def get_capabilities(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
        *,
        protocol_version: str | None = None,
    ) -> types.ServerCapabilities:
        if protocol_version in protocol.MODERN_VERSIONS:
            extensions = {protocol.TASKS_EXTENSION: {}}
        caps = super().get_capabilities(
            notification_options, experimental_capabilities, extensions, protocol_version=protocol_version
        )
        if protocol_version not in protocol.MODERN_VERSIONS:  # task-augmented tools/call (ours serves it)
            caps.tasks = types.ServerTasksCapability.model_validate(protocol.TASKS_2025)
        return caps

    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        return super().create_initialization_options(
            notification_options or NotificationOptions(tools_changed=True),
            experimental_capabilities,
            extensions,
        )


def sdk_server(runtime: Runtime) -> Server[Any]:
    """The SDK's server with our component tools (no built-in tools)."""

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        modern = ctx.session.protocol_version in protocol.MODERN_VERSIONS
        return types.ListToolsResult.model_validate(
            {"tools": tools(runtime.tools(), False, tasks=not modern)}
        )

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        try:
            result = await anyio.to_thread.run_sync(
                lambda: runtime.call_tool(params.name, params.arguments or {})
            )
        except Exception as e:
            return types.CallToolResult.model_validate(error_result(str(e)))
        if result.stderr:
            session: Any = ctx.session
            wanted = session.protocol_version in protocol.MODERN_VERSIONS
            connection = getattr(session, "_connection", None)
            level = connection.state.get(_LEVEL) if connection is not None else None
            if wanted or (level is not None and protocol.LEVELS["info"] >= level):
                data = stderr_log(params.name, result.stderr)
                await session.send_log_message(
                    "info", data, logger="wassette", related_request_id=ctx.request_id
                )
        return types.CallToolResult.model_validate(call_result(result))

    async def set_level(ctx: Any, params: types.SetLevelRequestParams) -> types.EmptyResult:
        connection = getattr(ctx.session, "_connection", None)
        if connection is not None:
            connection.state[_LEVEL] = protocol.LEVELS[params.level]
        return types.EmptyResult()

    async def list_prompts(ctx: Any, params: Any) -> types.ListPromptsResult:
        return types.ListPromptsResult.model_validate(prompts.list_result())

    async def get_prompt(ctx: Any, params: types.GetPromptRequestParams) -> types.GetPromptResult:
        return types.GetPromptResult.model_validate(prompts.get_result(params.model_dump()))

    async def no_resources(ctx: Any, params: Any) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=[])

    async def completion(ctx: Any, params: types.CompleteRequestParams) -> types.CompleteResult:
        done = prompts.complete(params.model_dump(), lambda: [c.id for c in runtime.components()])
        return types.CompleteResult.model_validate(done)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MCPDeprecationWarning)
        return _Server(
            protocol.SERVER_NAME,
            version=protocol.SERVER_INFO["version"],
            instructions=protocol.INSTRUCTIONS,
            on_list_tools=list_tools,
            on_call_tool=call_tool,
            on_set_logging_level=set_level,
            on_list_prompts=list_prompts,
            on_get_prompt=get_prompt,
            on_completion=completion,
            # Declared as ours are (the tests' components offer none).
            on_list_resources=no_resources,
            on_subscribe_resource=lambda ctx, params: types.EmptyResult(),
            on_subscriptions_listen=ListenHandler(InMemorySubscriptionBus()),
        )


def stdio_answers(runtime: Runtime, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the SDK's server answers these messages with on a duplex stream
    (as on stdio), in order; waits for one answer per request."""
    server = sdk_server(runtime)
    expected = sum(1 for m in messages if "id" in m)

    async def run() -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        async with create_client_server_memory_streams() as (client, ends), anyio.create_task_group() as tg:
            tg.start_soon(lambda: server.run(ends[0], ends[1], server.create_initialization_options()))

            async def collect() -> None:
                async for message in client[0]:
                    assert isinstance(message, SessionMessage)
                    out.append(json.loads(message.message.model_dump_json(by_alias=True, exclude_unset=True)))

            tg.start_soon(collect)
            for m in messages:
                answered = sum(1 for x in out if "id" in x)
                await client[1].send(SessionMessage(types.jsonrpc_message_adapter.validate_python(m)))
                if "id" in m:  # as a client would: one request at a time
                    with anyio.fail_after(60):
                        while sum(1 for x in out if "id" in x) <= answered:
                            await anyio.sleep(0.005)
            with anyio.fail_after(60):
                while sum(1 for m in out if "id" in m) < expected:
                    await anyio.sleep(0.005)
            tg.cancel_scope.cancel()
        return out

    return anyio.run(run)


def comparable(message: dict[str, Any]) -> dict[str, Any]:
    """A message with what legitimately differs between two runs blanked:
    code offsets in trap backtraces."""
    out: dict[str, Any] = json.loads(re.sub(r"0x[0-9a-f]+", "0x?", json.dumps(message)))
    return out
