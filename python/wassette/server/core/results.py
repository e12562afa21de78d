"""The wire form (plain JSON-able dicts) of tools and tool results.

One definition for every transport and revision: tools as tools/list shows
them, a component call's outcome as an MCP tool result, errors as tool
errors, guest stderr as a log message.
"""

from __future__ import annotations

import json
from typing import Any

from wassette.runtime.builtin_tools import BUILTIN_TOOLS, BuiltinTool
from wassette.runtime.calls import CallResult
from wassette.runtime.naming import Tool


def component_tool(tool: Tool) -> dict[str, Any]:
    out: dict[str, Any] = {"name": tool.name, "description": tool.summary, "inputSchema": tool.input_schema}
    if tool.output_schema is not None:
        out["outputSchema"] = tool.output_schema
    return out


def builtin_tool(tool: BuiltinTool) -> dict[str, Any]:
    hints: dict[str, Any] = {"readOnlyHint": tool.read_only}
    if not tool.read_only:
        hints["destructiveHint"] = tool.destructive
    hints["openWorldHint"] = False
    return {
        "name": tool.name,
        "description": tool.description,
        "inputSchema": tool.input_schema,
        "annotations": hints,
    }


_BUILTIN_WIRE = [builtin_tool(b) for b in BUILTIN_TOOLS]


def tools(component_tools: list[Tool], builtin_tools: bool) -> list[dict[str, Any]]:
    """Every tool offered: component exports, then the built-in tools."""
    out = [component_tool(t) for t in component_tools]
    if builtin_tools:
        out += _BUILTIN_WIRE
    return out


# Made once (see jsonrpc.dumps): a result's value as the text content shows it.
_TEXT = json.JSONEncoder(ensure_ascii=False)


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def text_result(data: Any, *, error: bool = False) -> dict[str, Any]:
    """A result of one text block: a string as it is, anything else as JSON."""
    text = data if isinstance(data, str) else _TEXT.encode(data)
    return {"content": [_text(text)], "isError": error}


def error_result(message: str) -> dict[str, Any]:
    return text_result(message, error=True)


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
    if result.denials or result.failures:
        notes.append(result.message())
    if result.tool.output_schema is None:
        return {"content": [_text(n) for n in (notes or ["null"])], "isError": False}
    return {
        "content": [_text(_TEXT.encode(result.value)), *(_text(n) for n in notes)],
        "structuredContent": {"result": result.value},
        "isError": False,
    }


def stderr_log(tool: str, stderr: bytes) -> dict[str, Any]:
    """What a log message carrying a call's guest stderr says."""
    return {"tool": tool, "stderr": stderr.decode("utf-8", "replace")}
