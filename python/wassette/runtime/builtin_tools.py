"""The 14 built-in tools, declared once: names (Wassette's 12, and the two
that open and close kept instances), descriptions,
argument schemas and hints. Their names are reserved here (a component
export never takes one, in the CLI and every server alike); what they do is
in server/core/builtins.py.
"""

from __future__ import annotations

from typing import Any, NamedTuple

_ID = {"component_id": {"type": "string", "description": "Id of a loaded component"}}


def _object(props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": required, "additionalProperties": False}


def _details(props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return _object({**_ID, "details": _object(props, required)}, ["component_id", "details"])


class BuiltinTool(NamedTuple):
    name: str
    description: str
    input_schema: dict[str, Any]
    read_only: bool = False
    destructive: bool = False
    # The right a caller needs (an OAuth scope maps to each): tools (read and
    # call), components (load, unload), grants (grant, revoke, reset).
    right: str = "tools"


_URI = {"type": "string", "description": "fs:// URI of a file, directory or glob, e.g. fs:///home/me/data/**"}
_HOST = {"type": "string", "description": "Host, *.wildcard, host:port, https://host, IP or CIDR"}
_KEY = {"type": "string", "description": "Environment variable name, or PREFIX_* glob"}

BUILTIN_TOOLS: tuple[BuiltinTool, ...] = (
    BuiltinTool(
        "load-component",
        "Load a WebAssembly component from a file:// (or oci://, https://) URI; its exports become tools.",
        _object({"path": {"type": "string", "description": "URI of the component"}}, ["path"]),
        right="components",
    ),
    BuiltinTool(
        "unload-component",
        "Unload a component and remove its files.",
        _object({"id": {"type": "string"}}, ["id"]),
        destructive=True,
        right="components",
    ),
    BuiltinTool(
        "list-components", "List loaded components and their tools.", _object({}, []), read_only=True
    ),
    BuiltinTool(
        "search-components",
        "Search the component catalog by name or description.",
        _object({"query": {"type": "string", "description": "Words to look for (optional)"}}, []),
        read_only=True,
    ),
    BuiltinTool(
        "get-policy",
        "Show the permissions policy of a component.",
        _object(_ID, ["component_id"]),
        read_only=True,
    ),
    BuiltinTool(
        "grant-storage-permission",
        "Ask to let a component read (and write) a path. The user confirms grants.",
        _details(
            {"uri": _URI, "access": {"type": "array", "items": {"enum": ["read", "write"]}, "minItems": 1}},
            ["uri", "access"],
        ),
        right="grants",
    ),
    BuiltinTool(
        "grant-network-permission",
        "Ask to let a component reach a host. The user confirms grants.",
        _details({"host": _HOST}, ["host"]),
        right="grants",
    ),
    BuiltinTool(
        "grant-environment-variable-permission",
        "Ask to let a component read an environment variable. The user confirms grants.",
        _details({"key": _KEY}, ["key"]),
        right="grants",
    ),
    *(
        BuiltinTool(
            f"revoke-{kind}-permission",
            f"Remove a component's access to {what}.",
            _details({field: schema}, [field]),
            destructive=True,
            right="grants",
        )
        for kind, what, field, schema in (
            ("storage", "an fs:// URI", "uri", _URI),
            ("network", "a host", "host", _HOST),
            ("environment-variable", "an environment variable", "key", _KEY),
        )
    ),
    BuiltinTool(
        "reset-permission",
        "Remove every permission of a component (back to deny-all). The user confirms resets.",
        _object(_ID, ["component_id"]),
        destructive=True,
        right="grants",
    ),
    BuiltinTool(
        "open-instance",
        "Open an instance of a component that keeps state between calls (its policy says "
        "resources.instance: per-session). Pass the returned instance_id to its tools as `instance_id`; "
        "needed where the protocol has no sessions (2026-07-28).",
        _object(_ID, ["component_id"]),
    ),
    BuiltinTool(
        "close-instance",
        "Close an instance opened with open-instance; what it kept is gone.",
        _object(
            {"instance_id": {"type": "string", "description": "The id open-instance returned"}},
            ["instance_id"],
        ),
        destructive=True,
    ),
)

BUILTIN_NAMES = frozenset(b.name for b in BUILTIN_TOOLS)
# Rights, each mapped to an OAuth scope: calling tools, managing components,
# granting permissions, reading the audit log.
RIGHTS = ("tools", "components", "grants", "audit")
RIGHT_OF = {b.name: b.right for b in BUILTIN_TOOLS}
