"""Tool names: the Wassette convention, unique per server.

A world-level export ``fetch`` is the tool ``fetch``; a function ``f`` of an
exported interface ``pkg:name/iface@1.0.0`` is ``pkg_name_iface_f``. Anything
outside ``[A-Za-z0-9_-]`` becomes ``_``; names are cut to 128 characters.

When two components (or a component and a built-in tool) would export the
same name, every one of them is qualified with its component id
(``<id>__<name>``). The rule does not depend on load order, so a restart
gives the same names, and each collision is reported.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

MAX_NAME = 128
TOOL_RESULT_FIELDS = {"content", "structured-json", "is-error"}
# Components that speak MCP themselves export interfaces of this package
# (runtime/mcp_exports.py); its functions are served as MCP, not as tools.
MCP_PACKAGE = "wassette:mcp/"

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


class Tool(NamedTuple):
    """A component export offered as a tool."""

    name: str
    component_id: str
    interface: str | None
    function: str
    description: str | None
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None
    # A tool the component declares itself (wassette:mcp/tools): its name
    # there, passed to `call-tool`. None: a typed export.
    declared: str | None = None
    # Answers MCP content (wassette:mcp/types.tool-result), not one value.
    rich: bool = False
    # MCP icons ({src, mimeType?, sizes?, theme?}) the component gives it
    # (wassette:mcp/icons); its title, if it declares one.
    icons: tuple[dict[str, Any], ...] = ()
    title: str | None = None

    @property
    def export(self) -> str:
        return f"{self.interface}#{self.function}" if self.interface else self.function

    @property
    def summary(self) -> str:
        """What the tool does, for people and agents: its WIT doc comment, else
        the export and its component."""
        return self.description or f"{self.export} (component {self.component_id})"


class Catalog:
    def __init__(self) -> None:
        self.tools: dict[str, Tool] = {}
        self.collisions: list[str] = []
        # Exports that cannot be tools, as (component id, export, reason).
        self.skipped: list[tuple[str, str, str]] = []

    def for_component(self, component_id: str) -> list[Tool]:
        return [t for t in self.tools.values() if t.component_id == component_id]


def answers_tool_result(output_schema: Mapping[str, Any] | None) -> bool:
    """Whether a typed export returns wassette:mcp/types.tool-result (a
    record of exactly content, structured-json and is-error): its answer
    is MCP content, as is."""
    if not output_schema:
        return False
    result = output_schema.get("properties", {}).get("result", {})
    return set(result.get("properties", {})) == TOOL_RESULT_FIELDS


def is_protocol_interface(interface: str | None) -> bool:
    return interface is not None and interface.startswith(MCP_PACKAGE)


def sanitize(name: str) -> str:
    return _UNSAFE.sub("_", name)[:MAX_NAME]


def base_name(interface: str | None, function: str) -> str:
    if interface is None:
        return sanitize(function)
    package_path = interface.split("@", 1)[0]  # the version is not part of the name
    return sanitize(f"{package_path}_{function}")


def build(exports: Mapping[str, Iterable[Mapping[str, Any]]], reserved: Iterable[str] = ()) -> Catalog:
    """Names every usable export of every component.

    `exports` maps a component id to the export descriptions produced by the
    engine; `reserved` are names taken by built-in tools.
    """
    catalog = Catalog()
    claims: dict[str, list[tuple[str, Mapping[str, Any]]]] = defaultdict(list)
    for component_id in sorted(exports):
        for info in exports[component_id]:
            function = str(info["function"])
            interface = info.get("interface")
            if is_protocol_interface(interface) and not info.get("declared"):
                continue  # wassette:mcp/* functions are served as MCP, not as tools
            if info.get("unsupported"):
                label = f"{interface}#{function}" if interface else function
                catalog.skipped.append((component_id, label, str(info["unsupported"])))
                continue
            declared = info.get("declared")
            name = sanitize(str(declared)) if declared else base_name(interface, function)
            claims[name].append((component_id, info))

    reserved_names = set(reserved)
    for name in sorted(claims):
        owners = claims[name]
        components = sorted({cid for cid, _ in owners})
        qualify = len(components) > 1 or name in reserved_names
        if qualify:
            who = ", ".join(components) + (" and a built-in tool" if name in reserved_names else "")
            catalog.collisions.append(
                f"tool name {name!r} is exported by {who}; each is offered as '<component id>__{name}'"
            )
        for component_id, info in owners:
            final = sanitize(f"{component_id}__{name}") if qualify else name
            # Two exports of one component can still meet (e.g. after
            # sanitising); later ones get a numeric suffix, in sorted order.
            candidate, n = final, 2
            while candidate in catalog.tools or candidate in reserved_names:
                suffix = f"-{n}"
                candidate = final[: MAX_NAME - len(suffix)] + suffix
                n += 1
            catalog.tools[candidate] = Tool(
                name=candidate,
                component_id=component_id,
                interface=info.get("interface"),
                function=str(info["function"]),
                description=info.get("description"),
                input_schema=dict(info["input_schema"]),
                output_schema=dict(info["output_schema"]) if info.get("output_schema") else None,
                declared=info.get("declared"),
                rich=bool(info.get("declared")) or answers_tool_result(info.get("output_schema")),
                icons=tuple(info.get("icons") or ()),
                title=info.get("title") or None,
            )
    return catalog
