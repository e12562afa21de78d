"""The 12 built-in MCP tools, with Wassette's names and argument shapes.

They call the same runtime functions as the CLI. Grants and resets asked for
by the agent are not the human's word: under `--agent-grants ask` (the
default) the human confirms them through MCP elicitation, and without a
client that can ask, they are refused with the exact CLI command the human
can run instead. `allow` grants at once (Wassette's behaviour); `deny` never
does. Revocations need no confirmation.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import mcp.types as types

from wassette.distribution import catalog
from wassette.runtime.errors import WassetteError
from wassette.runtime.lifecycle import Runtime

log = logging.getLogger("wassette.server")

AGENT_GRANT_MODES = ("allow", "ask", "deny")


class ArgumentError(WassetteError):
    pass


def _text(data: Any, *, error: bool = False) -> types.CallToolResult:
    text = data if isinstance(data, str) else json.dumps(data, indent=None, ensure_ascii=False)
    return types.CallToolResult(content=[types.TextContent(text=text)], is_error=error)


def _str(args: dict[str, Any], key: str) -> str:
    value = args.get(key)
    if not isinstance(value, str) or not value:
        raise ArgumentError(f"argument {key!r} must be a non-empty string")
    return value


def _detail(args: dict[str, Any], key: str) -> Any:
    details = args.get("details")
    if not isinstance(details, dict) or key not in details:
        raise ArgumentError(f"argument details.{key} is required")
    return details[key]


Approver = Callable[[str, str, str, str], Awaitable[str | None]]


class BuiltinTools:
    """Dispatches built-in tool calls to the runtime."""

    def __init__(
        self, runtime: Runtime, *, agent_grants: str, on_change: Callable[[], Awaitable[None]]
    ) -> None:
        if agent_grants not in AGENT_GRANT_MODES:
            raise WassetteError(f"--agent-grants must be one of {', '.join(AGENT_GRANT_MODES)}")
        self.runtime = runtime
        self.agent_grants = agent_grants
        self.on_change = on_change

    async def call(self, name: str, args: dict[str, Any], ctx: Any) -> types.CallToolResult:
        try:
            return await self._call(name, args, ctx)
        except WassetteError as e:
            return _text(str(e), error=True)

    async def _call(self, name: str, args: dict[str, Any], ctx: Any) -> types.CallToolResult:
        rt = self.runtime
        if name == "load-component":
            uri = _str(args, "path")
            step = 0

            def progress(message: str, done: int | None = None, total: int | None = None) -> None:
                # Steps count 1, 2, 3...; bytes of a download fill in the
                # fraction after the current step, so progress only grows.
                nonlocal step
                if done is None:
                    step += 1
                    anyio.from_thread.run(_report, ctx, float(step), message)
                elif total:
                    value = step + min(done / total, 1.0) * 0.99
                    anyio.from_thread.run(_report, ctx, value, f"{message}: {done} of {total} bytes")

            report = await anyio.to_thread.run_sync(lambda: rt.load_component(uri, progress=progress))
            await self.on_change()
            return _text(report.to_json())
        if name == "unload-component":
            cid = _str(args, "id")
            await anyio.to_thread.run_sync(lambda: rt.unload_component(cid))
            await self.on_change()
            return _text({"status": "component unloaded successfully", "id": cid})
        if name == "list-components":
            return _text({"components": [c.to_json() for c in rt.components()]})
        if name == "search-components":
            query = args.get("query")
            if query is not None and not isinstance(query, str):
                raise ArgumentError("argument 'query' must be a string")
            entries, warnings = await anyio.to_thread.run_sync(lambda: catalog.load(rt.settings))
            result: dict[str, Any] = {"components": [e.to_json() for e in catalog.search(query, entries)]}
            if warnings:
                result["warnings"] = warnings
            return _text(result)
        if name == "get-policy":
            cid = _str(args, "component_id")
            policy = rt.permissions.get(cid)
            return _text({"component_id": cid, "policy": policy.document})
        cid = _str(args, "component_id")
        perms = rt.permissions
        if name == "grant-storage-permission":
            uri = _str(args.get("details") or {}, "uri")
            access = _detail(args, "access")
            if not isinstance(access, list) or not access or not all(a in ("read", "write") for a in access):
                raise ArgumentError("argument details.access must be a list of 'read' and/or 'write'")
            command = f"wassette permission grant storage {cid} {uri} --access {','.join(access)}"
            await self._approve(ctx, cid, "storage", f"{uri} ({', '.join(access)})", command)
            return _text(perms.grant_storage(cid, uri, access, by="mcp"))
        if name == "grant-network-permission":
            host = _str(args.get("details") or {}, "host")
            await self._approve(ctx, cid, "network", host, f"wassette permission grant network {cid} {host}")
            return _text(perms.grant_network(cid, host, by="mcp"))
        if name == "grant-environment-variable-permission":
            key = _str(args.get("details") or {}, "key")
            command = f"wassette permission grant environment-variable {cid} {key}"
            await self._approve(ctx, cid, "environment variable", key, command)
            return _text(perms.grant_environment(cid, key, by="mcp"))
        if name == "revoke-storage-permission":
            return _text(perms.revoke_storage(cid, _str(args.get("details") or {}, "uri"), by="mcp"))
        if name == "revoke-network-permission":
            return _text(perms.revoke_network(cid, _str(args.get("details") or {}, "host"), by="mcp"))
        if name == "revoke-environment-variable-permission":
            return _text(perms.revoke_environment(cid, _str(args.get("details") or {}, "key"), by="mcp"))
        if name == "reset-permission":
            await self._approve(ctx, cid, "reset", "all permissions", f"wassette permission reset {cid}")
            return _text(perms.reset(cid, by="mcp"))
        raise ArgumentError(f"unknown built-in tool {name!r}")

    async def _approve(self, ctx: Any, cid: str, permission: str, scope: str, command: str) -> None:
        """Returns when the grant may go ahead; raises with the reason otherwise."""
        if not self.runtime.store.exists(cid):
            from wassette.runtime.errors import UnknownComponentError

            raise UnknownComponentError(cid)
        if self.agent_grants == "allow":
            return
        refusal = (
            f"not granted: permission changes requested by the agent need the user's approval. "
            f"The user can run: {command}"
        )
        if self.agent_grants == "deny":
            raise WassetteError(refusal)
        session: Any = getattr(ctx, "session", None)
        if session is None or not session.check_client_capability(
            types.ClientCapabilities(elicitation=types.ElicitationCapability())
        ):
            raise WassetteError(refusal + " (this client cannot ask the user for confirmation)")
        what = (
            "reset ALL permissions of"
            if permission == "reset"
            else f"grant {permission} access to {scope} for"
        )
        message = f"The agent asks to {what} component '{cid}'. Allow?"
        schema: dict[str, Any] = {
            "type": "object",
            "properties": {
                "component": {"type": "string", "title": "Component", "default": cid},
                "permission": {"type": "string", "title": "Permission", "default": permission},
                "scope": {"type": "string", "title": "Scope", "default": scope},
            },
        }
        try:
            answer = await session.elicit_form(
                message, schema, related_request_id=getattr(ctx, "request_id", None)
            )
        except Exception as e:  # no back-channel (stateless HTTP), client error
            log.info("elicitation failed: %s", e)
            raise WassetteError(refusal + f" (confirmation could not be asked: {e})") from None
        if answer.action != "accept":
            raise WassetteError(f"not granted: the user declined. The user can still run: {command}")


async def _report(ctx: Any, step: float, message: str) -> None:
    """A progress notification, when the client sent a progress token."""
    session = getattr(ctx, "session", None)
    if session is not None:
        try:
            await session.report_progress(step, None, message)
        except Exception as e:  # progress is best effort
            log.debug("progress notification failed: %s", e)
