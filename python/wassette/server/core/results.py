"""The wire form (plain JSON-able dicts) of tools and tool results.

One definition for every transport and revision: tools as tools/list shows
them, a component call's outcome as an MCP tool result, errors as tool
errors, guest stderr as a log message.
"""

from __future__ import annotations

import binascii
import json
from typing import Any

from wassette.runtime.builtin_tools import BUILTIN_TOOLS, BuiltinTool
from wassette.runtime.calls import CallResult
from wassette.runtime.instances import INSTANCE_ARG
from wassette.runtime.naming import Tool

TASK_OPTIONAL = {"taskSupport": "optional"}


def component_tool(tool: Tool, kept: bool = False, tasks: bool = False) -> dict[str, Any]:
    """`kept`: its component keeps an instance per session; the tool takes
    an instance id too (`open-instance`'s, where there are no sessions)."""
    schema = tool.input_schema
    if kept:
        properties = {**schema.get("properties", {}), INSTANCE_ARG: _INSTANCE_PROPERTY}
        schema = {**schema, "properties": properties}
    out: dict[str, Any] = {"name": tool.name, "description": tool.summary, "inputSchema": schema}
    if tool.title:
        out["title"] = tool.title
    if tasks:  # any component call may run as a 2025-11-25 task (task_requests.py)
        out["execution"] = TASK_OPTIONAL
    if tool.icons:
        out["icons"] = list(tool.icons)
    # A typed export answering tool-result: its content is the answer, no
    # `{"result": ...}` (a declared tool's output schema is its own).
    if tool.output_schema is not None and (tool.declared is not None or not tool.rich):
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


_INSTANCE_PROPERTY = {
    "type": "string",
    "description": "The instance to run in (from the built-in tool open-instance): this component keeps "
    "state between calls. Optional within an MCP session, which has an instance of its own.",
}


def tools(
    component_tools: list[Tool],
    builtin_tools: bool,
    kept: frozenset[str] = frozenset(),
    *,
    tasks: bool = False,
) -> list[dict[str, Any]]:
    """Every tool offered: component exports, then the built-in tools.
    `kept`: components that keep an instance per session; `tasks`: with
    2025-11-25's `execution` (the handshake era's listing)."""
    out = [component_tool(t, t.component_id in kept, tasks) for t in component_tools]
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
    if result.tool.rich:
        return rich_result(result.value, notes)
    if result.tool.output_schema is None:
        return {"content": [_text(n) for n in (notes or ["null"])], "isError": False}
    return {
        "content": [_text(_TEXT.encode(result.value)), *(_text(n) for n in notes)],
        "structuredContent": {"result": result.value},
        "isError": False,
    }


def rich_result(value: Any, notes: list[str]) -> dict[str, Any]:
    """A wassette:mcp/types.tool-result as an MCP tool result."""
    try:
        out: dict[str, Any] = {
            "content": [content_block(c) for c in value["content"]] + [_text(n) for n in notes],
            "isError": bool(value["is-error"]),
        }
        if value.get("structured-json") is not None:
            structured = json.loads(value["structured-json"])
            if not isinstance(structured, dict):
                raise ValueError("structured content must be a JSON object")
            out["structuredContent"] = structured
    except (KeyError, TypeError, ValueError) as e:
        return error_result(f"the tool answered content that is not valid MCP: {e}")
    return out


def content_block(block: dict[str, Any]) -> dict[str, Any]:
    """One wassette:mcp/types.content (a variant: one key) as MCP content."""
    ((case, v),) = block.items()
    if case == "text":
        return _text(v)
    if case in ("image", "audio"):
        return {"type": case, "data": _base64(v["data"]), "mimeType": v["mime-type"]}
    if case == "resource":
        return {"type": "resource", "resource": resource_contents(v)}
    if case == "resource-link":
        link = {"type": "resource_link", "uri": v["uri"], "name": v["name"]}
        return link | _present({"description": v.get("description"), "mimeType": v.get("mime-type")})
    raise ValueError(f"unknown content {case!r}")


def resource_contents(v: dict[str, Any]) -> dict[str, Any]:
    """wassette:mcp/types.resource-contents as MCP resource contents."""
    ((kind, data),) = v["body"].items()
    if kind not in ("text", "blob"):
        raise ValueError(f"unknown resource body {kind!r}")
    out = {"uri": v["uri"]} | _present({"mimeType": v.get("mime-type")})
    out[kind] = _base64(data) if kind == "blob" else data
    return out


def _base64(data: str) -> str:
    try:
        binascii.a2b_base64(data, strict_mode=True)
    except (binascii.Error, ValueError):
        raise ValueError("data is not base64") from None
    return data


def _present(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def stderr_log(tool: str, stderr: bytes) -> dict[str, Any]:
    """What a log message carrying a call's guest stderr says."""
    return {"tool": tool, "stderr": stderr.decode("utf-8", "replace")}
