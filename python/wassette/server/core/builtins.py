"""What the 14 built-in tools do (their names and schemas are in
runtime/builtin_tools.py). They call the same runtime and distribution
functions as the CLI, in a worker thread, through the one call runner.

Grants and resets asked for by the agent are not the human's word: under
`--agent-grants ask` (the default) the human confirms them through MCP
elicitation, and without a client that can ask, they are refused with the
exact CLI command the human can run instead. While a console is open
(`serve --console`, `wassette console`), the person decides there instead:
the call waits in its queue, a bounded time. `allow` grants at once
(Wassette's behaviour); `deny` never does. Revocations need no confirmation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from wassette.runtime.builtin_tools import BUILTIN_NAMES
from wassette.runtime.errors import UnknownComponentError, WassetteError
from wassette.runtime.grant_queue import WAIT_S, GrantQueue
from wassette.runtime.install import InstallOptions, PolicyApproval, describe_request
from wassette.runtime.runtime import Runtime
from wassette.server.core.jsonrpc import RpcError
from wassette.server.core.results import text_result
from wassette.server.core.session import Exchange, NoBackChannel

log = logging.getLogger("wassette.server")

AGENT_GRANT_MODES = ("allow", "ask", "deny")


class ArgumentError(WassetteError):
    pass


def _str(args: dict[str, Any], key: str) -> str:
    value = args.get(key)
    if not isinstance(value, str) or not value:
        raise ArgumentError(f"argument {key!r} must be a non-empty string")
    return value


def _details(args: dict[str, Any]) -> dict[str, Any]:
    details = args.get("details")
    return details if isinstance(details, dict) else {}


def _detail(args: dict[str, Any], key: str) -> Any:
    details = args.get("details")
    if not isinstance(details, dict) or key not in details:
        raise ArgumentError(f"argument details.{key} is required")
    return details[key]


Handler = Callable[[dict[str, Any], Exchange], Any]

# The built-in tools about kept instances: with `serve --workers N`, they run
# where the instances are kept (server/http/relay.py), as these functions.
INSTANCE_TOOLS = frozenset({"open-instance", "close-instance"})


def open_instance(runtime: Runtime, args: dict[str, Any], owner: str | None) -> dict[str, Any]:
    cid = _str(args, "component_id")
    if runtime.known(cid) is None:
        raise UnknownComponentError(cid)
    limits = runtime.policies.policy(cid).limits
    if not limits.per_session:
        raise ArgumentError(
            f"component `{cid}` does not keep state between calls (its policy does not say "
            "resources.instance: per-session): call its tools without an instance"
        )
    idle_s = limits.idle_timeout_ms / 1000
    handle = runtime.instances.open(cid, owner, idle_s)
    return {"instance_id": handle, "component_id": cid, "idle_timeout_s": idle_s}


def close_instance(runtime: Runtime, args: dict[str, Any], owner: str | None) -> dict[str, Any]:
    handle = _str(args, "instance_id")
    if not runtime.instances.close_id(handle, owner):
        raise ArgumentError(f"unknown instance id {handle[:64]!r}")
    return {"closed": handle}


def run_instance_tool(runtime: Runtime, name: str, args: dict[str, Any], owner: str | None) -> dict[str, Any]:
    """The result of open-instance or close-instance for `owner`."""
    try:
        run = open_instance if name == "open-instance" else close_instance
        return text_result(run(runtime, args, owner))
    except WassetteError as e:
        return text_result(str(e), error=True)


class Builtins:
    """Runs built-in tool calls; `announce` tells every client the tool
    list changed."""

    def __init__(self, runtime: Runtime, *, agent_grants: str, announce: Callable[[], None]) -> None:
        if agent_grants not in AGENT_GRANT_MODES:
            raise WassetteError(f"--agent-grants must be one of {', '.join(AGENT_GRANT_MODES)}")
        self.runtime = runtime
        self.agent_grants = agent_grants
        self.announce = announce
        self.queue = GrantQueue(runtime.settings.data_dir, runtime.audit)
        self._handlers: dict[str, Handler] = {
            "load-component": self._load,
            "unload-component": self._unload,
            "list-components": lambda args, ex: {"components": [c.to_json() for c in runtime.components()]},
            "search-components": self._search,
            "get-policy": self._get_policy,
            "grant-storage-permission": self._grant_storage,
            "grant-network-permission": self._grant_network,
            "grant-environment-variable-permission": self._grant_environment,
            "revoke-storage-permission": lambda args, ex: runtime.permissions.revoke_storage(
                _str(args, "component_id"), _str(_details(args), "uri"), by="mcp"
            ),
            "revoke-network-permission": lambda args, ex: runtime.permissions.revoke_network(
                _str(args, "component_id"), _str(_details(args), "host"), by="mcp"
            ),
            "revoke-environment-variable-permission": lambda args, ex: runtime.permissions.revoke_environment(
                _str(args, "component_id"), _str(_details(args), "key"), by="mcp"
            ),
            "reset-permission": self._reset,
            "open-instance": self._open_instance,
            "close-instance": self._close_instance,
        }
        assert set(self._handlers) == BUILTIN_NAMES, "every built-in tool has a handler"

    def call(self, name: str, args: dict[str, Any], exchange: Exchange) -> dict[str, Any]:
        """The tool result (blocking: loads fetch and compile, grants may
        wait for the user)."""
        try:
            return text_result(self._handlers[name](args, exchange))
        except WassetteError as e:
            return text_result(str(e), error=True)

    # -- kept instances -------------------------------------------------------

    def _open_instance(self, args: dict[str, Any], exchange: Exchange) -> Any:
        return open_instance(self.runtime, args, exchange.session.owner)

    def _close_instance(self, args: dict[str, Any], exchange: Exchange) -> Any:
        return close_instance(self.runtime, args, exchange.session.owner)

    # -- components -----------------------------------------------------------

    def _load(self, args: dict[str, Any], exchange: Exchange) -> Any:
        from wassette.distribution.loading import load_component

        uri = _str(args, "path")
        step = 0

        def progress(message: str, done: int | None = None, total: int | None = None) -> None:
            # Steps count 1, 2, 3...; bytes of a download fill in the
            # fraction after the current step, so progress only grows.
            nonlocal step
            if done is None:
                step += 1
                exchange.progress(float(step), None, message)
            elif total:
                value = step + min(done / total, 1.0) * 0.99
                exchange.progress(value, None, f"{message}: {done} of {total} bytes")

        install = InstallOptions(accept_policy=self._policy_approval(exchange))
        report = load_component(self.runtime, uri, progress=progress, install=install)
        self.announce()
        return report.to_json()

    def _policy_approval(self, exchange: Exchange) -> PolicyApproval | bool:
        """A policy the component ships (or a new version's wider one) takes
        effect only when the user accepts it, asked through elicitation;
        otherwise it stays pending and the policy in force stays."""
        if self.agent_grants == "deny":
            return False

        def ask(cid: str, policy: Any) -> bool:
            if exchange.session.modern or not exchange.session.can_elicit():
                return False
            what = describe_request(self.runtime, cid, policy)
            message = (
                f"The component '{cid}' ships a policy that asks for: {what}. Apply it? "
                f"If not, the policy in force stays; `wassette policy accept {cid}` applies it later."
            )
            try:
                return confirm(exchange, message, Component=cid, Permissions=what)
            except (NoBackChannel, RpcError, TimeoutError) as e:
                log.info("elicitation failed: %s", e)
                return False

        return ask

    def _unload(self, args: dict[str, Any], exchange: Exchange) -> Any:
        cid = _str(args, "id")
        self.runtime.unload_component(cid)
        self.announce()
        return {"status": "component unloaded successfully", "id": cid}

    def _search(self, args: dict[str, Any], exchange: Exchange) -> Any:
        from wassette.distribution import catalog

        query = args.get("query")
        if query is not None and not isinstance(query, str):
            raise ArgumentError("argument 'query' must be a string")
        entries, warnings = catalog.load(self.runtime.settings)
        result: dict[str, Any] = {"components": [e.to_json() for e in catalog.search(query, entries)]}
        if warnings:
            result["warnings"] = warnings
        return result

    def _get_policy(self, args: dict[str, Any], exchange: Exchange) -> Any:
        cid = _str(args, "component_id")
        return {"component_id": cid, "policy": self.runtime.permissions.get(cid).document}

    # -- grants ---------------------------------------------------------------

    def _grant_storage(self, args: dict[str, Any], exchange: Exchange) -> Any:
        cid = _str(args, "component_id")
        uri = _str(_details(args), "uri")
        access = _detail(args, "access")
        if not isinstance(access, list) or not access or not all(a in ("read", "write") for a in access):
            raise ArgumentError("argument details.access must be a list of 'read' and/or 'write'")
        command = f"wassette permission grant storage {cid} {uri} --access {','.join(access)}"
        by = self._approve(exchange, cid, "storage", f"{uri} ({', '.join(access)})", command)
        return self.runtime.permissions.grant_storage(cid, uri, access, by=by)

    def _grant_network(self, args: dict[str, Any], exchange: Exchange) -> Any:
        cid = _str(args, "component_id")
        host = _str(_details(args), "host")
        by = self._approve(exchange, cid, "network", host, f"wassette permission grant network {cid} {host}")
        return self.runtime.permissions.grant_network(cid, host, by=by)

    def _grant_environment(self, args: dict[str, Any], exchange: Exchange) -> Any:
        cid = _str(args, "component_id")
        key = _str(_details(args), "key")
        command = f"wassette permission grant environment-variable {cid} {key}"
        by = self._approve(exchange, cid, "environment variable", key, command)
        return self.runtime.permissions.grant_environment(cid, key, by=by)

    def _reset(self, args: dict[str, Any], exchange: Exchange) -> Any:
        cid = _str(args, "component_id")
        by = self._approve(exchange, cid, "reset", "all permissions", f"wassette permission reset {cid}")
        return self.runtime.permissions.reset(cid, by=by)

    def _approve(self, exchange: Exchange, cid: str, permission: str, scope: str, command: str) -> str:
        """Returns who approved the change (`by` of its audit record) when it
        may go ahead; raises with the reason otherwise. With a console open
        (grant_queue.py), the person decides there."""
        if not self.runtime.store.exists(cid):
            raise UnknownComponentError(cid)
        if self.agent_grants == "allow":
            return "mcp"
        refusal = (
            f"not granted: permission changes requested by the agent need the user's approval. "
            f"The user can run: {command}"
        )
        if self.agent_grants == "deny":
            raise WassetteError(refusal)
        if self.queue.console_open():
            return self._queued(exchange, cid, permission, scope, command)
        if exchange.session.modern or not exchange.session.can_elicit():
            raise WassetteError(
                refusal + " (this client cannot ask the user for confirmation; "
                "or open `wassette console` to approve such requests there)"
            )
        what = (
            "reset ALL permissions of"
            if permission == "reset"
            else f"grant {permission} access to {scope} for"
        )
        message = f"The agent asks to {what} component '{cid}'. Allow?"
        try:
            accepted = confirm(exchange, message, Component=cid, Permission=permission, Scope=scope)
        except (NoBackChannel, RpcError, TimeoutError) as e:
            log.info("elicitation failed: %s", e)
            raise WassetteError(refusal + f" (confirmation could not be asked: {e})") from None
        if not accepted:
            raise WassetteError(f"not granted: the user declined. The user can still run: {command}")
        return "mcp"

    def _queued(self, exchange: Exchange, cid: str, permission: str, scope: str, command: str) -> str:
        """The request waits in the console's queue (bounded) for a person."""
        request = self.queue.ask(cid, permission, scope, command)
        exchange.log("info", f"waiting for approval in the wassette console (request {request.id})")
        decided = self.queue.wait(request, lambda: exchange.token.cancelled)
        if decided.state == "approved":
            return decided.decided_by or "console"
        if decided.state == "denied":
            raise WassetteError(
                f"not granted: {decided.decided_by} denied the request in the console. "
                f"The user can still run: {command}"
            )
        raise WassetteError(
            f"not granted: nobody approved the request in the console within {int(WAIT_S)} s. "
            f"The user can run: {command}"
        )


def confirm(exchange: Exchange, message: str, **shown: str) -> bool:
    """Asks the user to confirm (elicitation), showing each `shown` field
    (title: value) as a prefilled string; True when accepted. Raises
    NoBackChannel, RpcError or TimeoutError when the user cannot be asked."""
    properties = {
        title.lower(): {"type": "string", "title": title, "default": value} for title, value in shown.items()
    }
    params: dict[str, Any] = {
        "message": message,
        "requestedSchema": {"type": "object", "properties": properties},
    }
    if exchange.version == "2025-11-25":
        params["mode"] = "form"
    answer = exchange.ask("elicitation/create", params)
    return isinstance(answer, dict) and answer.get("action") == "accept"
