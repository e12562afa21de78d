"""The 12 built-in MCP tools as declarations: names (Wassette's), descriptions,
argument schemas and hints. What they do is in builtins.py; this module does
not import the MCP SDK, so `wassette run` can list them before it is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wassette.runtime.catalog import BUILTIN_NAMES

_ID = {"component_id": {"type": "string", "description": "Id of a loaded component"}}


def _object(props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": required, "additionalProperties": False}


def _details(props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return _object({**_ID, "details": _object(props, required)}, ["component_id", "details"])


@dataclass(frozen=True)
class Builtin:
    name: str
    description: str
    input_schema: dict[str, Any]
    read_only: bool = False
    destructive: bool = False

    def wire(self) -> dict[str, Any]:
        """The tool as tools/list shows it."""
        hints: dict[str, Any] = {"readOnlyHint": self.read_only}
        if not self.read_only:
            hints["destructiveHint"] = self.destructive
        hints["openWorldHint"] = False
        return {
            "name": self.name,
            "description": self.description,
            "inputSchema": self.input_schema,
            "annotations": hints,
        }


_URI = {"type": "string", "description": "fs:// URI of a file, directory or glob, e.g. fs:///home/me/data/**"}
_HOST = {"type": "string", "description": "Host, *.wildcard, host:port, https://host, IP or CIDR"}
_KEY = {"type": "string", "description": "Environment variable name, or PREFIX_* glob"}

BUILTINS: tuple[Builtin, ...] = (
    Builtin(
        "load-component",
        "Load a WebAssembly component from a file:// (or oci://, https://) URI; its exports become tools.",
        _object({"path": {"type": "string", "description": "URI of the component"}}, ["path"]),
    ),
    Builtin(
        "unload-component",
        "Unload a component and remove its files.",
        _object({"id": {"type": "string"}}, ["id"]),
        destructive=True,
    ),
    Builtin("list-components", "List loaded components and their tools.", _object({}, []), read_only=True),
    Builtin(
        "search-components",
        "Search the component catalog by name or description.",
        _object({"query": {"type": "string", "description": "Words to look for (optional)"}}, []),
        read_only=True,
    ),
    Builtin(
        "get-policy",
        "Show the permissions policy of a component.",
        _object(_ID, ["component_id"]),
        read_only=True,
    ),
    Builtin(
        "grant-storage-permission",
        "Ask to let a component read (and write) a path. The user confirms grants.",
        _details(
            {"uri": _URI, "access": {"type": "array", "items": {"enum": ["read", "write"]}, "minItems": 1}},
            ["uri", "access"],
        ),
    ),
    Builtin(
        "grant-network-permission",
        "Ask to let a component reach a host. The user confirms grants.",
        _details({"host": _HOST}, ["host"]),
    ),
    Builtin(
        "grant-environment-variable-permission",
        "Ask to let a component read an environment variable. The user confirms grants.",
        _details({"key": _KEY}, ["key"]),
    ),
    Builtin(
        "revoke-storage-permission",
        "Remove a component's access to an fs:// URI.",
        _details({"uri": _URI}, ["uri"]),
        destructive=True,
    ),
    Builtin(
        "revoke-network-permission",
        "Remove a component's access to a host.",
        _details({"host": _HOST}, ["host"]),
        destructive=True,
    ),
    Builtin(
        "revoke-environment-variable-permission",
        "Remove a component's access to an environment variable.",
        _details({"key": _KEY}, ["key"]),
        destructive=True,
    ),
    Builtin(
        "reset-permission",
        "Remove every permission of a component (back to deny-all). The user confirms resets.",
        _object(_ID, ["component_id"]),
        destructive=True,
    ),
)

NAMES = frozenset(b.name for b in BUILTINS)
assert NAMES == BUILTIN_NAMES, "the runtime reserves exactly these names"
