"""Components that speak MCP themselves (wassette/wit/mcp.wit,
`wassette:mcp@0.1.x`): tools they declare with their own names and
schemas, resources, prompts, and rich results.

The functions of those interfaces are not tools themselves. `list-tools`
is called once when a component is described (its answer is kept with the
component's metadata, as exports are); each declared tool becomes an export
entry that calls `call-tool`. Resources and prompts are asked for when a
client asks, each in a fresh sandbox under the component's policy, like a
tool call.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from wassette import _engine
from wassette.runtime.errors import WassetteError
from wassette.runtime.naming import MCP_PACKAGE, Tool

# The 0.1 line: any patch version is the same interface.
_VERSION = re.compile(r"@0\.1\.\d+$")
# A declared tool's name: MCP's recommended characters.
TOOL_NAME = re.compile(r"[A-Za-z0-9_.-]{1,128}")
# list-tools, resource and prompt listings: at most this many entries, and
# this much JSON (a component cannot make the server hold unbounded lists).
MAX_DECLARED = 1000
MAX_LISTING_BYTES = 4 << 20
# Listing calls are quick: this bounds a component that loops in one.
LISTING_TIMEOUT_MS = 5000


def interface_of(functions: Iterable[tuple[str | None, str]], name: str) -> str | None:
    """The exact interface (with its version) through which the component
    exports `wassette:mcp/<name>` 0.1.x, if it does."""
    for interface, _ in functions:
        if interface and interface.startswith(f"{MCP_PACKAGE}{name}@") and _VERSION.search(interface):
            return interface
    return None


def call_export(
    component: _engine.Component,
    interface: str,
    function: str,
    arguments: Mapping[str, Any],
    policy_json: str,
    what: str,
) -> Any:
    """Calls one export in a fresh sandbox and returns its value (JSON);
    a trap, timeout or bad answer is a WassetteError naming `what`."""
    outcome = component.start(interface, function, json.dumps(arguments), policy_json).finish()
    if outcome.status != _engine.CallStatus.OK:
        detail = outcome.error or outcome.status.value
        if outcome.status == _engine.CallStatus.ERR and outcome.value_json is not None:
            detail = str(json.loads(outcome.value_json).get("err", detail))
        raise WassetteError(f"{what} failed: {detail}")
    text = outcome.value_json or "null"
    if len(text) > MAX_LISTING_BYTES:
        raise WassetteError(f"{what} answered {len(text)} bytes of JSON, over {MAX_LISTING_BYTES}")
    return json.loads(text)


def listing_policy(policy_json: str) -> str:
    """The component's policy with a short time limit (for listings)."""
    policy = json.loads(policy_json)
    policy["timeout_ms"] = min(int(policy.get("timeout_ms") or LISTING_TIMEOUT_MS), LISTING_TIMEOUT_MS)
    return json.dumps(policy)


def describe(component: _engine.Component, wasm: bytes) -> list[dict[str, Any]]:
    """The export entries of a component: its typed functions (the engine's
    description) and the tools it declares."""
    exports: list[dict[str, Any]] = json.loads(component.describe(wasm))
    return exports + declared_tools(component)


def declared_tools(component: _engine.Component, policy_json: str = "{}") -> list[dict[str, Any]]:
    """Export entries (as the engine's describe makes them) for the tools a
    component declares through `wassette:mcp/tools`, or [] if it declares
    none. Raises WassetteError for a listing that is not usable."""
    interface = interface_of(component.functions(), "tools")
    if interface is None:
        return []
    value = call_export(component, interface, "list-tools", {}, listing_policy(policy_json), "list-tools")
    if not isinstance(value, list):
        raise WassetteError("list-tools did not answer a list")
    if len(value) > MAX_DECLARED:
        raise WassetteError(f"list-tools declared {len(value)} tools, over {MAX_DECLARED}")
    entries: list[dict[str, Any]] = []
    seen: set[str] = set()
    for item in value:
        name = str(item.get("name", ""))
        if not TOOL_NAME.fullmatch(name):
            raise WassetteError(f"list-tools declared a tool named {name!r}: use 1-128 of A-Z a-z 0-9 _ . -")
        if name in seen:
            raise WassetteError(f"list-tools declared {name!r} twice")
        seen.add(name)
        entries.append(
            {
                "interface": interface,
                "function": "call-tool",
                "declared": name,
                "title": item.get("title"),
                "description": item.get("description") or None,
                "input_schema": _schema(
                    item.get("input-schema-json"), f"{name}'s input schema", object_=True
                ),
                "output_schema": _schema(item.get("output-schema-json"), f"{name}'s output schema")
                if item.get("output-schema-json")
                else None,
            }
        )
    icons = tool_icons(component, policy_json, seen)
    for entry in entries:
        if entry["declared"] in icons:
            entry["icons"] = icons[entry["declared"]]
    return entries


# wassette:mcp/icons: at most this many icons per tool, a data: URI at most
# this long, sizes like 48x48 or any, a theme light or dark.
MAX_ICONS = 8
MAX_ICON_URI = 64 * 1024
_SIZE = re.compile(r"any|[1-9][0-9]{0,4}x[1-9][0-9]{0,4}")
_MIME = re.compile(r"image/[A-Za-z0-9.+-]{1,64}")


def tool_icons(
    component: _engine.Component, policy_json: str, declared: set[str]
) -> dict[str, list[dict[str, Any]]]:
    """The icons of declared tools (MCP's wire form), from `tool-icons` if
    the component exports it; a WassetteError for any that is not usable."""
    interface = interface_of(component.functions(), "icons")
    if interface is None:
        return {}
    value = call_export(component, interface, "tool-icons", {}, listing_policy(policy_json), "tool-icons")
    if not isinstance(value, list):
        raise WassetteError("tool-icons did not answer a list")
    out: dict[str, list[dict[str, Any]]] = {}
    for pair in value:
        name, icons = pair if isinstance(pair, list) and len(pair) == 2 else (None, None)
        if name not in declared:
            raise WassetteError(f"tool-icons names {str(name)[:128]!r}, which list-tools does not declare")
        if not isinstance(icons, list) or len(icons) > MAX_ICONS:
            raise WassetteError(f"tool-icons gives {name!r} more than {MAX_ICONS} icons")
        out[str(name)] = [_icon(icon, str(name)) for icon in icons]
    return out


def _icon(icon: Any, name: str) -> dict[str, Any]:
    src = icon.get("src") if isinstance(icon, dict) else None
    if not isinstance(src, str) or len(src) > MAX_ICON_URI:
        raise WassetteError(f"an icon of {name!r} has no src, or one over {MAX_ICON_URI} characters")
    if not (src.startswith("https://") or src.startswith("data:image/")):
        raise WassetteError(f"an icon of {name!r} is not an https: or data:image/ URI: {src[:64]!r}")
    wire: dict[str, Any] = {"src": src}
    mime = icon.get("mime-type")
    if mime is not None:
        if not isinstance(mime, str) or not _MIME.fullmatch(mime):
            raise WassetteError(
                f"an icon of {name!r} has the MIME type {str(mime)[:64]!r}, not an image type"
            )
        wire["mimeType"] = mime
    sizes = icon.get("sizes") or []
    if (
        not isinstance(sizes, list)
        or len(sizes) > MAX_ICONS
        or not all(isinstance(x, str) and _SIZE.fullmatch(x) for x in sizes)
    ):
        raise WassetteError(f"an icon of {name!r} has sizes {str(sizes)[:128]}: use e.g. 48x48 or any")
    if sizes:
        wire["sizes"] = sizes
    theme = icon.get("theme")
    if theme is not None:
        if theme not in ("light", "dark"):
            raise WassetteError(f"an icon of {name!r} has the theme {str(theme)[:32]!r}: use light or dark")
        wire["theme"] = theme
    return wire


def _schema(text: object, what: str, *, object_: bool = False) -> dict[str, Any]:
    if not isinstance(text, str):
        raise WassetteError(f"{what} is missing")
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as e:
        raise WassetteError(f"{what} is not JSON: {e}") from None
    if not isinstance(schema, dict):
        raise WassetteError(f"{what} is not a JSON object")
    if object_ and schema.get("type", "object") != "object":
        raise WassetteError(f"{what} must describe an object (type: object)")
    return schema


def _checked(schema: dict[str, Any], name: str) -> dict[str, Any]:
    """A schema the validator can use (else the component does not load)."""
    from jsonschema import exceptions, validators

    cls = validators.validator_for(schema, default=validators.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except exceptions.SchemaError as e:
        raise WassetteError(f"{name}'s input schema is not a valid JSON Schema: {e.message}") from None
    return schema


def call_tool_arguments(tool: Tool, arguments_json: str) -> str:
    """The arguments of `call-tool` for a declared tool's JSON arguments,
    checked against its input schema first (ValueError: why not)."""
    arguments = json.loads(arguments_json or "{}")
    errors = sorted(_validator(tool).iter_errors(arguments), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "args" + "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in first.absolute_path)
        raise ValueError(f"{where}: {first.message}")
    return json.dumps({"name": tool.declared, "arguments-json": arguments_json or "{}"})


# Compiled validators per declared tool, with the schema they were made
# from (a reloaded component brings a new schema object).
_VALIDATORS: dict[tuple[str, str | None], tuple[dict[str, Any], Any]] = {}
MAX_VALIDATORS = 4096


def _validator(tool: Tool) -> Any:
    """A compiled JSON Schema validator per declared tool (the draft its
    `$schema` names, else 2020-12)."""
    key = (tool.component_id, tool.declared)
    cached = _VALIDATORS.get(key)
    if cached is not None and cached[0] is tool.input_schema:
        return cached[1]
    from jsonschema import validators

    cls = validators.validator_for(tool.input_schema, default=validators.Draft202012Validator)
    validator = cls(tool.input_schema)
    if len(_VALIDATORS) >= MAX_VALIDATORS:
        _VALIDATORS.clear()
    _VALIDATORS[key] = (tool.input_schema, validator)
    return validator
