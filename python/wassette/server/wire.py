"""The wire form (plain JSON-able dicts) of what the server answers: the
initialize result, tools as tools/list shows them, tool-call results, log
messages.

One definition for both paths: the MCP SDK's handlers (app.py) validate these
into its types, and the stdio fast path (stdio.py) writes them as they are,
without the SDK loaded. This module must not import the SDK (importing it
takes ~0.6 s); tests/test_wire.py checks every form here against what the
SDK itself answers, at each revision in FAST_VERSIONS.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from wassette import __version__
from wassette.runtime.catalog import Tool
from wassette.runtime.errors import WassetteError
from wassette.runtime.lifecycle import CallResult, Runtime
from wassette.server.builtin_specs import BUILTINS, NAMES

SERVER_NAME = "wassette"
INSTRUCTIONS = (
    "Tools here run as WebAssembly components in a deny-by-default sandbox: they reach files, "
    "network hosts and environment variables only where their policy grants it. Permission "
    "grants asked for through the built-in tools are confirmed by the user."
)
CAPABILITIES: dict[str, Any] = {"logging": {}, "tools": {"listChanged": True}}

# The SDK's `mcp_types.version.HANDSHAKE_PROTOCOL_VERSIONS` (same order; tested).
HANDSHAKE_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
# The SDK's `mcp_types.version.MODERN_PROTOCOL_VERSIONS` (tested): stateless, no handshake.
MODERN_VERSIONS = ("2026-07-28",)
# Revisions whose answers this module writes exactly as the SDK would (tested);
# sessions at other revisions are served by the SDK alone.
FAST_VERSIONS = frozenset({"2025-06-18", "2025-11-25"})

# MCP log levels, least to most severe, and their Python equivalents.
LEVELS: dict[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "notice": logging.INFO + 5,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
    "alert": logging.CRITICAL + 5,
    "emergency": logging.CRITICAL + 10,
}


def negotiate(requested: object) -> str:
    """The revision an `initialize` asking for `requested` gets (as the SDK picks it)."""
    return (
        requested
        if isinstance(requested, str) and requested in HANDSHAKE_VERSIONS
        else HANDSHAKE_VERSIONS[-1]
    )


def handshake(params: object) -> str | None:
    """The revision an `initialize` with these params negotiates, if they are
    well-formed (else the SDK answers it, and words the error)."""
    if not isinstance(params, dict):
        return None
    info = params.get("clientInfo")
    if not (
        isinstance(params.get("protocolVersion"), str)
        and isinstance(params.get("capabilities"), dict)
        and isinstance(info, dict)
        and isinstance(info.get("name"), str)
        and isinstance(info.get("version"), str)
    ):
        return None
    return negotiate(params["protocolVersion"])


def plain_listing(params: object) -> bool:
    """A tools/list the fast paths answer: no params, or only a cursor (one
    page holds every tool)."""
    return params is None or (isinstance(params, dict) and set(params) <= {"cursor"})


def initialize_result(version: str) -> dict[str, Any]:
    return {
        "protocolVersion": version,
        "capabilities": CAPABILITIES,
        "serverInfo": {"name": SERVER_NAME, "version": __version__},
        "instructions": INSTRUCTIONS,
    }


def component_tool(tool: Tool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": tool.name,
        "description": tool.description or f"{tool.export} (component {tool.component_id})",
        "inputSchema": tool.input_schema,
    }
    if tool.output_schema is not None:
        out["outputSchema"] = tool.output_schema
    return out


def tools(component_tools: list[Tool], builtin_tools: bool) -> list[dict[str, Any]]:
    """Every tool offered: component exports, then the built-in tools."""
    out = [component_tool(t) for t in component_tools]
    if builtin_tools:
        out += [b.wire() for b in BUILTINS]
    return out


def dumps(message: dict[str, Any]) -> bytes:
    """A message as compact JSON in UTF-8 (ASCII escapes where a string
    cannot be encoded, e.g. a lone surrogate)."""
    try:
        return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()
    except UnicodeEncodeError:
        return json.dumps(message, separators=(",", ":")).encode()


def valid_id(value: object) -> bool:
    """A JSON-RPC request id as MCP allows it: a string or an integer."""
    return isinstance(value, str | int) and not isinstance(value, bool)


def component_call(
    params: object, runtime: Runtime, builtin_tools: bool
) -> tuple[str, dict[str, Any]] | None:
    """(tool, arguments) of a tools/call the fast paths serve: a component
    tool, arguments an object, nothing else but a progress token; None for
    anything else (the SDK answers those, and words their errors)."""
    if not isinstance(params, dict) or not set(params) <= {"name", "arguments", "_meta"}:
        return None
    name, arguments, meta = params.get("name"), params.get("arguments"), params.get("_meta")
    if not isinstance(name, str) or not (arguments is None or isinstance(arguments, dict)):
        return None
    if meta is not None and not (
        isinstance(meta, dict) and set(meta) <= {"progressToken"} and valid_id(meta.get("progressToken"))
    ):
        return None
    if name in NAMES and builtin_tools:
        return None
    try:
        runtime.tool(name)
    except WassetteError:
        return None
    return name, arguments or {}


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def error_result(message: str) -> dict[str, Any]:
    return {"content": [_text(message)], "isError": True}


def call_result(result: CallResult) -> dict[str, Any]:
    """An engine outcome as an MCP tool result: `{"result": v}` as structured
    content, `isError` for anything but a successful return."""
    notes: list[str] = []
    if result.stdout_dropped or result.stderr_dropped:
        notes.append(
            f"(guest output truncated: {result.stdout_dropped} stdout and "
            f"{result.stderr_dropped} stderr bytes dropped)"
        )
    if result.is_error:
        text = result.message()
        if result.detail:
            text += "\n" + result.detail
        out: dict[str, Any] = {"content": [_text("\n".join([text, *notes]))], "isError": True}
        if result.value is not None:
            out["structuredContent"] = {"result": result.value}
        return out
    if result.denials:
        notes.append(result.message())
    if result.tool.output_schema is None:
        return {"content": [_text(n) for n in (notes or ["null"])], "isError": False}
    return {
        "content": [_text(json.dumps(result.value, ensure_ascii=False)), *(_text(n) for n in notes)],
        "structuredContent": {"result": result.value},
        "isError": False,
    }


def stderr_log(tool: str, stderr: bytes) -> dict[str, Any]:
    """The `notifications/message` params carrying a call's guest stderr."""
    return {
        "level": "info",
        "logger": "wassette",
        "data": {"tool": tool, "stderr": stderr.decode("utf-8", "replace")},
    }
