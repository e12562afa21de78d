"""Resources and prompts over MCP: the components' (runtime/mcp_served.py)
next to the server's own prompts (prompts.py), and completion of both.

Anything that calls a component runs on a call worker, never on the thread
that reads requests: a slow listing delays its own answer only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wassette.runtime.errors import WassetteError
from wassette.runtime.mcp_served import McpServed, Named
from wassette.server.core import prompts
from wassette.server.core.calls import answer_later
from wassette.server.core.jsonrpc import INTERNAL_ERROR, INVALID_PARAMS, RpcError
from wassette.server.core.results import content_block, resource_contents
from wassette.server.core.session import Exchange

# MCP's code for a resource that does not exist.
RESOURCE_NOT_FOUND = -32002
Handler = Callable[[Exchange, dict[str, Any] | None], dict[str, Any] | None]


def _wire(item: dict[str, Any], key: str, wire_key: str) -> dict[str, Any]:
    out = {wire_key: item.get(key), "name": item.get("name")}
    for field, wire in (("title", "title"), ("description", "description"), ("mime-type", "mimeType")):
        if item.get(field) is not None:
            out[wire] = item[field]
    return out


class Served:
    """The request handlers of resources/*, prompts/* and completion/complete."""

    def __init__(self, served: McpServed, start: Callable[[Callable[[], None]], bool]) -> None:
        self.served = served
        # Runs a function on a call worker; False when none is free.
        self.start = start

    def routes(self) -> dict[str, Handler]:
        return {
            "resources/list": self._off(self._list_resources),
            "resources/templates/list": self._off(self._list_templates),
            "resources/read": self._off(self._read),
            "resources/subscribe": self._subscription,
            "resources/unsubscribe": self._subscription,
            "prompts/list": self._off(self._list_prompts),
            "prompts/get": self._off(self._get_prompt),
            "completion/complete": self._off(self._complete),
        }

    def _off(self, handler: Handler) -> Handler:
        """`handler` answered from a call worker."""

        def run(exchange: Exchange, params: dict[str, Any] | None) -> None:
            answer_later(self.start, exchange, lambda: handler(exchange, params) or {})

        return run

    @staticmethod
    def _uri(params: dict[str, Any] | None) -> str:
        uri = (params or {}).get("uri")
        if not isinstance(uri, str) or not uri:
            raise RpcError(INVALID_PARAMS, "Invalid params: uri must be a non-empty string")
        return uri

    # -- resources -------------------------------------------------------------

    def _subscription(self, exchange: Exchange, params: dict[str, Any] | None) -> dict[str, Any]:
        """Accepted: a component's resources change only when it is loaded
        again, which `list_changed` tells."""
        self._uri(params)
        return {}

    def _list_resources(self, exchange: Exchange, params: dict[str, Any] | None) -> dict[str, Any]:
        return exchange.listing({"resources": [_wire(r, "uri", "uri") for r in self.served.resources()]})

    def _list_templates(self, exchange: Exchange, params: dict[str, Any] | None) -> dict[str, Any]:
        templates = [_wire(t, "uri-template", "uriTemplate") for t in self.served.resource_templates()]
        return exchange.listing({"resourceTemplates": templates})

    def _read(self, exchange: Exchange, params: dict[str, Any] | None) -> dict[str, Any]:
        uri = self._uri(params)
        try:
            contents = self.served.read_resource(uri)
            return {"contents": [resource_contents(c) for c in contents]}
        except WassetteError as e:
            raise RpcError(RESOURCE_NOT_FOUND, f"Resource not found: {e}", {"uri": uri}) from None
        except (KeyError, TypeError, ValueError) as e:
            raise RpcError(
                INTERNAL_ERROR, f"the component answered contents that are not valid MCP: {e}"
            ) from None

    # -- prompts ---------------------------------------------------------------

    def _component_prompts(self) -> dict[str, Named]:
        return {p.name: p for p in self.served.prompts(reserved=set(prompts.BY_NAME))}

    def _list_prompts(self, exchange: Exchange, params: dict[str, Any] | None) -> dict[str, Any]:
        listed = prompts.list_result()["prompts"]
        for named in self._component_prompts().values():
            p = named.prompt
            wire: dict[str, Any] = {"name": named.name}
            for field in ("title", "description"):
                if p.get(field) is not None:
                    wire[field] = p[field]
            wire["arguments"] = [
                {"name": a.get("name"), "required": bool(a.get("required"))}
                | ({"description": a["description"]} if a.get("description") is not None else {})
                for a in p.get("arguments") or []
            ]
            listed.append(wire)
        return exchange.listing({"prompts": listed})

    def _get_prompt(self, exchange: Exchange, params: dict[str, Any] | None) -> dict[str, Any]:
        name = (params or {}).get("name")
        if name in prompts.BY_NAME:
            return prompts.get_result(params)
        named = self._component_prompts().get(name) if isinstance(name, str) else None
        if named is None:
            return prompts.get_result(params)  # the error naming the prompts there are
        arguments = (params or {}).get("arguments") or {}
        if not isinstance(arguments, dict) or not all(isinstance(v, str) for v in arguments.values()):
            raise RpcError(INVALID_PARAMS, "Invalid params: arguments must be an object of strings")
        missing = [
            a["name"]
            for a in named.prompt.get("arguments") or []
            if a.get("required") and a["name"] not in arguments
        ]
        if missing:
            raise RpcError(INVALID_PARAMS, f"Invalid params: {name} needs the argument {missing[0]!r}")
        try:
            result = self.served.get_prompt(named, arguments)
            out: dict[str, Any] = {
                "messages": [
                    {"role": m["role"], "content": content_block(m["content"])}
                    for m in result.get("messages", [])
                ]
            }
        except WassetteError as e:
            raise RpcError(INVALID_PARAMS, f"Invalid params: {e}") from None
        except (KeyError, TypeError, ValueError) as e:
            raise RpcError(
                INTERNAL_ERROR, f"the component answered a prompt that is not valid MCP: {e}"
            ) from None
        if result.get("description") is not None:
            out["description"] = result["description"]
        return out

    def _complete(self, exchange: Exchange, params: dict[str, Any] | None) -> dict[str, Any]:
        ref = (params or {}).get("ref")
        argument = (params or {}).get("argument")
        if not isinstance(ref, dict) or not isinstance(argument, dict):
            return prompts.complete(params, lambda: [])  # the error saying what is expected
        value = argument.get("value", "")
        if ref.get("type") == "ref/prompt" and ref.get("name") not in prompts.BY_NAME:
            named = self._component_prompts().get(str(ref.get("name")))
            if named is not None and isinstance(argument.get("name"), str) and isinstance(value, str):
                found = self.served.complete(named.provider, named.declared, argument["name"], value)
                return prompts.completion(found)
        if ref.get("type") == "ref/resource" and isinstance(ref.get("uri"), str) and isinstance(value, str):
            found = self.served.complete_template(ref["uri"], str(argument.get("name", "")), value)
            return prompts.completion(found)
        return prompts.complete(params, lambda: [c.id for c in self.served.runtime.components()])
