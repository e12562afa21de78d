"""componentize-py implementation of world `wassette-tests:mcp-py/mcp-py` (wit/world.wit).

Declared tools through wassette:mcp/tools, calling wassette:mcp/host. How
componentize-py maps the WIT: records are dataclasses (fields in snake_case),
a variant case is a dataclass per case (`Content_Text(value)`), an option is
`X | None`, an enum is a Python Enum, and a `result` return is "return the ok
value or raise Err(err value)". `types` lands in `wit_world.imports.types`
(an exported interface's `use` imports it), `tool` in `wit_world.exports.tools`.
"""

import json

import wit_world.exports
from componentize_py_types import Err
from wit_world.exports.tools import Tool
from wit_world.imports import host
from wit_world.imports.types import Blob, Content, Content_Image, Content_Text, ToolResult

# A 1x1 PNG.
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="


def schema(props: dict[str, object], required: list[str]) -> str:
    return json.dumps({"type": "object", "properties": props, "required": required})


def ok(content: list[Content], structured: str | None = None) -> ToolResult:
    return ToolResult(content=content, structured_json=structured, is_error=False)


def failed(why: str) -> ToolResult:
    return ToolResult(content=[Content_Text(why)], structured_json=None, is_error=True)


class Tools(wit_world.exports.Tools):
    def list_tools(self) -> list[Tool]:
        return [
            Tool("py_progress", None, "Counts to 3, reporting progress", schema({}, []), None),
            Tool("py_log", None, "Logs a message at info", schema({}, []), None),
            Tool(
                "py_ask",
                None,
                "Asks the user for a colour",
                schema({"question": {"type": "string"}}, ["question"]),
                None,
            ),
            Tool(
                "py_image",
                "A picture",
                "Answers a 1x1 PNG, a caption and structured content",
                schema({}, []),
                schema({"ok": {"type": "boolean"}}, ["ok"]),
            ),
        ]

    def call_tool(self, name: str, arguments_json: str) -> ToolResult:
        args = json.loads(arguments_json)
        if name == "py_progress":
            host.progress(0, 3, "start")
            for i in range(1, 4):
                host.progress(i, 3, None)
            return ok([Content_Text("counted to 3")])
        if name == "py_log":
            host.log(host.Level.INFO, "py", json.dumps({"from": "python"}))
            return ok([Content_Text("logged")])
        if name == "py_ask":
            try:
                answer = host.elicit(args["question"], schema({"colour": {"type": "string"}}, ["colour"]))
            except Err as e:  # result<answer, string>: the error string is e.value
                return failed(f"could not ask: {e.value}")
            action = answer.action.name.lower()  # host.Action.ACCEPT -> "accept"
            return ok([Content_Text(f"{action} {answer.content_json or 'nothing'}")])
        if name == "py_image":
            image = Content_Image(Blob(data=PNG, mime_type="image/png"))
            return ok([image, Content_Text("a red dot")], json.dumps({"ok": True}))
        return failed(f"no tool {name}")
