"""MCP revisions: which are served, how a session picks one, what each
answer looks like at each, and the per-request envelope of 2026-07-28.

Two eras: the handshake era (an `initialize` exchange opens a session at one
revision) and 2026-07-28, where every request carries its own envelope
(protocol version, client capabilities, client info) in `params._meta`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from wassette import __version__
from wassette.server.core.jsonrpc import (
    HEADER_MISMATCH,
    INVALID_PARAMS,
    UNSUPPORTED_PROTOCOL_VERSION,
    RpcError,
)

SERVER_NAME = "wassette"
SERVER_INFO: dict[str, Any] = {"name": SERVER_NAME, "version": __version__}
INSTRUCTIONS = (
    "Tools here run as WebAssembly components in a deny-by-default sandbox: they reach files, "
    "network hosts and environment variables only where their policy grants it. Permission "
    "grants asked for through the built-in tools are confirmed by the user."
)

# Revisions reachable through the initialize handshake, oldest first.
HANDSHAKE_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
# Revisions of per-request envelopes (no handshake, no sessions).
MODERN_VERSIONS = ("2026-07-28",)
SUPPORTED_VERSIONS = (*HANDSHAKE_VERSIONS, *MODERN_VERSIONS)
# What a handshake-era request without a version header is taken to be
# (Streamable HTTP: a client that does not say speaks 2025-03-26).
DEFAULT_HANDSHAKE_VERSION = "2025-03-26"

# Reserved `_meta` keys of 2026-07-28.
VERSION_KEY = "io.modelcontextprotocol/protocolVersion"
CAPABILITIES_KEY = "io.modelcontextprotocol/clientCapabilities"
CLIENT_INFO_KEY = "io.modelcontextprotocol/clientInfo"
LOG_LEVEL_KEY = "io.modelcontextprotocol/logLevel"
SERVER_INFO_KEY = "io.modelcontextprotocol/serverInfo"
SUBSCRIPTION_ID_KEY = "io.modelcontextprotocol/subscriptionId"

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
    """The revision an `initialize` asking for `requested` gets: that one
    if it is served, else the newest handshake revision."""
    return (
        requested
        if isinstance(requested, str) and requested in HANDSHAKE_VERSIONS
        else HANDSHAKE_VERSIONS[-1]
    )


def is_modern(version: str | None) -> bool:
    return version in MODERN_VERSIONS


TASKS_EXTENSION = "io.modelcontextprotocol/tasks"


def capabilities(version: str | None) -> dict[str, Any]:
    """What the server offers. Change notifications reach handshake-era
    clients on their session, 2026-07-28 clients on `subscriptions/listen`
    streams; log messages are sent on a client's request at both; prompts
    (the server's and the components'), the components' resources, and
    completion of prompt and template arguments (server/core/served.py)."""
    # Prompt and resource lists change with components, told of with the
    # tool list's notification; at 2026-07-28 `listChanged` says only that
    # `subscriptions/listen` is served (as the SDK derives it).
    modern = is_modern(version)
    caps: dict[str, Any] = {
        "logging": {},
        "tools": {"listChanged": True},
        "prompts": {"listChanged": modern},
        "resources": {"subscribe": True, "listChanged": modern},
        "completions": {},
    }
    if modern:  # long tool calls as tasks (server/core/tasks.py)
        caps["extensions"] = {TASKS_EXTENSION: {}}
    else:  # task-augmented calls, from 2025-11-25 on (server/core/task_requests.py)
        caps["tasks"] = TASKS_2025
    return caps


# What tasks a 2025-11-25 client may ask for: tools/call as a task, listing, cancelling.
TASKS_2025: dict[str, Any] = {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}


def initialize_result(version: str) -> dict[str, Any]:
    return {
        "protocolVersion": version,
        "capabilities": capabilities(version),
        "serverInfo": dict(SERVER_INFO),
        "instructions": INSTRUCTIONS,
    }


def discover_result() -> dict[str, Any]:
    return {
        "supportedVersions": list(MODERN_VERSIONS),
        "capabilities": capabilities(MODERN_VERSIONS[-1]),
        "instructions": INSTRUCTIONS,
        **NOT_CACHED,
    }


# Results of cacheable methods at 2026-07-28 say how long they may be
# reused: not at all (the tool list changes with every load and grant), and
# only by this caller.
NOT_CACHED: dict[str, Any] = {"ttlMs": 0, "cacheScope": "private"}


def finish_result(version: str | None, body: dict[str, Any]) -> dict[str, Any]:
    """A result as the revision wants it on the wire: at 2026-07-28 with its
    `resultType` and the server's identity in `_meta`."""
    if version not in MODERN_VERSIONS:
        return body
    body.setdefault("resultType", "complete")
    meta = body.get("_meta")
    stamp = {SERVER_INFO_KEY: dict(SERVER_INFO)}
    body["_meta"] = {**meta, **stamp} if isinstance(meta, dict) else stamp
    return body


# -- the 2026-07-28 envelope --------------------------------------------------


class Envelope(NamedTuple):
    """What a 2026-07-28 request says about its client."""

    version: str
    capabilities: Any
    client_info: Any
    log_level: int | None


def has_envelope(params: Mapping[str, Any] | None) -> bool:
    """Whether a request claims the 2026-07-28 era (its `_meta` names a
    protocol version: handshake-era requests never carry that key)."""
    meta = params.get("_meta") if params else None
    return isinstance(meta, dict) and VERSION_KEY in meta


def unsupported(requested: object, supported: tuple[str, ...] = MODERN_VERSIONS) -> RpcError:
    shown = requested if isinstance(requested, str) else repr(requested)
    return RpcError(
        UNSUPPORTED_PROTOCOL_VERSION,
        f"Unsupported protocol version {shown}: this server supports {', '.join(supported)}",
        {"supported": list(supported), "requested": requested},
    )


# Methods whose subject is mirrored in the `Mcp-Name` header, and the param.
NAME_PARAMS = {
    "tools/call": "name",
    "prompts/get": "name",
    "resources/read": "uri",
    # SEP-2663: load balancers route a task's requests by its id.
    "tasks/get": "taskId",
    "tasks/update": "taskId",
    "tasks/cancel": "taskId",
}


def envelope(
    method: str, params: Mapping[str, Any] | None, headers: Mapping[bytes, bytes] | None = None
) -> Envelope:
    """Checks a 2026-07-28 request's envelope (and, over HTTP, that its
    routing headers agree with its body). Raises RpcError for the first
    problem, in the order the revision gives."""
    meta = params.get("_meta") if params else None
    if not isinstance(meta, dict):
        raise RpcError(
            INVALID_PARAMS,
            f"params._meta must be an object carrying the required {VERSION_KEY!r} and "
            f"{CAPABILITIES_KEY!r} envelope keys",
        )
    missing = [k for k in (VERSION_KEY, CAPABILITIES_KEY) if k not in meta]
    if missing:
        raise RpcError(
            INVALID_PARAMS, f"params._meta is missing the required envelope key(s): {', '.join(missing)}"
        )
    version = meta[VERSION_KEY]
    if headers is not None:
        header = headers.get(b"mcp-protocol-version")
        if header is None or header.decode("latin-1") != version:
            raise RpcError(
                HEADER_MISMATCH,
                "mcp-protocol-version header does not match the request envelope's protocol version",
            )
        if headers.get(b"mcp-method", b"").decode("latin-1") != method:
            raise RpcError(HEADER_MISMATCH, "mcp-method header does not match the request body's method")
        key = NAME_PARAMS.get(method)
        value = params.get(key) if key is not None and params else None
        if value is not None:
            raw = headers.get(b"mcp-name")
            if decode_header_value(raw.decode("latin-1") if raw is not None else None) != value:
                raise RpcError(
                    HEADER_MISMATCH, f"mcp-name header does not match the request body's {key!r} parameter"
                )
    if not isinstance(version, str):
        raise RpcError(INVALID_PARAMS, "the protocol-version envelope value must be a string")
    if version not in MODERN_VERSIONS:
        raise unsupported(version)
    level = meta.get(LOG_LEVEL_KEY)
    return Envelope(
        version,
        meta[CAPABILITIES_KEY],
        meta.get(CLIENT_INFO_KEY),
        LEVELS.get(level) if isinstance(level, str) else None,
    )


_B64_SENTINEL = re.compile(r"^=\?base64\?(?P<payload>.*)\?=$")


def decode_header_value(value: str | None) -> str | None:
    """A header value as sent: verbatim, or base64 inside `=?base64?...?=`
    (how clients carry values that are not plain ASCII); None if malformed."""
    if value is None:
        return None
    found = _B64_SENTINEL.fullmatch(value)
    if found is None:
        return value
    import base64  # only for such values: stdio and most requests never need it
    import binascii

    payload = found.group("payload")
    try:
        decoded = base64.b64decode(payload, validate=True)
        if base64.b64encode(decoded).decode("ascii") != payload:
            return None
        return decoded.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
