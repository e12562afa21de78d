"""What a component's `wassette:mcp/host` calls become for the client of
the tool call: progress and log notifications on the request's stream,
elicitation and sampling requests to the client (the engine bounds how
many and how large; src/gates/mcp.rs).

Questions are asked only of a client that declared the capability, and
each one is audited (who asked, what kind, how the user answered); the
values the user gives are not.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from wassette.runtime.audit import AuditLog
from wassette.runtime.naming import Tool
from wassette.runtime.runtime import Runtime
from wassette.server.core.rounds import Round, Rounds
from wassette.server.core.session import Exchange
from wassette.server.core.tasks import Tasks, declared

HostCallback = Callable[[str, str], str | None]
# Asks the client (exchange, method, params) and returns its answer.
Asker = Callable[[Exchange, str, dict[str, Any]], Any]


class Refused(Exception):
    """A question the client cannot be asked (its message goes to the guest)."""


def for_exchange(
    exchange: Exchange,
    name: str,
    runtime: Runtime,
    tasks: Tasks | None = None,
    rounds: tuple[Rounds, Round] | None = None,
) -> HostCallback:
    """The engine's host callback for one call of tool `name` in `exchange`
    (made for every call: the tool is looked up only when it is used).
    `rounds`: a 2026-07-28 call asks over rounds (rounds.py); what it says
    goes to the request carrying it by then."""

    def handle(kind: str, payload_json: str) -> str | None:
        payload: dict[str, Any] = json.loads(payload_json)
        tool, audit = runtime.tool(name), runtime.audit
        current = rounds[1].exchange if rounds is not None else exchange
        if kind == "progress":
            current.progress(payload["done"], payload.get("total"), payload.get("message"))
            return None
        if kind == "log":
            _log(current, tool, payload)
            return None
        # A 2026-07-28 client that declared the tasks extension is asked
        # through the task (input_required); another 2026-07-28 client
        # over rounds; any other through a request.
        if tasks is not None and declared(exchange):
            ask = _via(tasks)
        elif rounds is not None:
            ask = _over(*rounds)
        else:
            ask = _ask
        if kind == "elicit":
            return _elicit(current, tool, audit, payload, ask)
        if kind == "sample":
            return _sample(current, tool, audit, payload, ask)
        raise Refused(f"unknown host call {kind!r}")

    return handle


def _log(exchange: Exchange, tool: Tool, payload: dict[str, Any]) -> None:
    level = payload["level"]
    if not exchange.wants_log(level):
        return
    try:
        data = json.loads(payload["data_json"])
    except json.JSONDecodeError:
        data = payload["data_json"]  # not JSON: sent as the text it is
    logger = payload.get("logger") or tool.name
    exchange.notify("notifications/message", {"level": level, "logger": logger, "data": data})


def _capable(exchange: Exchange, capability: str, what: str) -> None:
    if capability not in exchange.session.client_capabilities:
        raise Refused(f"the client did not declare the {capability} capability: it cannot be asked {what}")


def _ask(exchange: Exchange, method: str, params: dict[str, Any]) -> Any:
    from wassette.server.core.jsonrpc import RpcError
    from wassette.server.core.session import NoBackChannel

    if method == "elicitation/create" and exchange.version == "2025-11-25":
        params = {**params, "mode": "form"}  # as the built-in tools ask
    try:
        return exchange.ask(method, params)
    except (NoBackChannel, TimeoutError) as e:
        raise Refused(f"the client could not be asked: {e}") from None
    except RpcError as e:
        raise Refused(f"the client refused: {e.message}") from None


def _via(tasks: Tasks) -> Asker:
    def ask(exchange: Exchange, method: str, params: dict[str, Any]) -> Any:
        if method == "elicitation/create":
            params = {"mode": "form", **params}  # 2026-07-28 names the mode
        try:
            return tasks.ask(exchange, method, params)
        except (TimeoutError, ConnectionAbortedError) as e:
            raise Refused(f"the client could not be asked: {e}") from None

    return ask


def _over(rounds: Rounds, round_: Round) -> Asker:
    def ask(exchange: Exchange, method: str, params: dict[str, Any]) -> Any:
        if method == "elicitation/create":
            params = {"mode": "form", **params}  # 2026-07-28 names the mode
        try:
            return rounds.ask(round_, method, params)
        except TimeoutError as e:
            raise Refused(f"the client could not be asked: {e}") from None

    return ask


def _elicit(exchange: Exchange, tool: Tool, audit: AuditLog, payload: dict[str, Any], ask: Asker) -> str:
    _capable(exchange, "elicitation", "the user")
    try:
        schema = json.loads(payload["requested_schema_json"])
    except json.JSONDecodeError as e:
        raise Refused(f"the requested schema is not JSON: {e}") from None
    if not isinstance(schema, dict) or schema.get("type") != "object":
        raise Refused("the requested schema must be a JSON object schema (type: object)")
    answer = ask(exchange, "elicitation/create", {"message": payload["message"], "requestedSchema": schema})
    action = answer.get("action") if isinstance(answer, dict) else None
    audit.record("elicitation", component=tool.component_id, tool=tool.name, action=action)
    if action not in ("accept", "decline", "cancel"):
        raise Refused("the client answered no action")
    return json.dumps({"action": action, "content": answer.get("content") if action == "accept" else None})


def _sample(exchange: Exchange, tool: Tool, audit: AuditLog, payload: dict[str, Any], ask: Asker) -> str:
    _capable(exchange, "sampling", "its model")
    try:
        params = json.loads(payload["request_json"])
    except json.JSONDecodeError as e:
        raise Refused(f"the request is not JSON: {e}") from None
    if not isinstance(params, dict) or not isinstance(params.get("messages"), list):
        raise Refused("the request must be sampling/createMessage params with messages")
    result = ask(exchange, "sampling/createMessage", params)
    audit.record("sampling", component=tool.component_id, tool=tool.name, model=_model(result))
    return json.dumps(result)


def _model(result: Any) -> Any:
    return result.get("model") if isinstance(result, dict) else None
