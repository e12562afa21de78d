"""`wassette run` (MCP over stdio) and `wassette serve` (over HTTP)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
from typing import TYPE_CHECKING, Any

from wassette.cli.options import Parents
from wassette.runtime.config_schema import LOCAL_COMPONENTS_MODES

log = logging.getLogger("wassette.cli")

if TYPE_CHECKING:
    from wassette.server.http.options import HttpOptions
    from wassette.server.http.supervisor import WorkerSpec


def _bool(text: str) -> bool:
    from wassette.runtime.config_schema import parse_bool

    try:
        return parse_bool(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _server_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--disable-builtin-tools", action="store_true", help="offer only component tools")
    p.add_argument(
        "--agent-grants",
        choices=("allow", "ask", "deny"),
        default="ask",
        help="permission grants asked for by the agent: ask the user (default), allow, or deny",
    )
    p.add_argument(
        "--local-components",
        choices=LOCAL_COMPONENTS_MODES,
        metavar="MODE",
        help="load the drop directory's components: off, startup, or watch (load changes as they come); "
        "default: run watch, serve off (env WASSETTE_LOCAL_COMPONENTS)",
    )


def add_run(sub: Any, p: Parents) -> None:
    run = sub.add_parser("run", parents=[p.dirs, p.envs, p.prov], help="serve MCP over stdio")
    _server_options(run)
    run.set_defaults(handler=cmd_run)


def add_serve(sub: Any, p: Parents) -> None:
    serve = sub.add_parser(
        "serve",
        parents=[p.dirs, p.envs, p.prov],
        help="serve MCP over Streamable HTTP (default 127.0.0.1:9001/mcp)",
    )
    _server_options(serve)
    mode = serve.add_mutually_exclusive_group()
    mode.add_argument(
        "--streamable-http",
        dest="transport",
        action="store_const",
        const="streamable-http",
        help="Streamable HTTP at /mcp (the default)",
    )
    mode.add_argument(
        "--sse",
        "--http",
        dest="transport",
        action="store_const",
        const="sse",
        help="the legacy HTTP+SSE transport at /sse",
    )
    mode.add_argument(
        "--stdio", dest="transport", action="store_const", const="stdio", help="stdio, as `wassette run`"
    )
    serve.add_argument(
        "--bind-address",
        metavar="HOST:PORT",
        help="where to listen (default 127.0.0.1:9001; env WASSETTE_BIND_ADDRESS or BIND_HOST/PORT)",
    )
    serve.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="accept requests for this Host header (repeatable; replaces the loopback-only default; '*' for any)",
    )
    serve.add_argument(
        "--auth-token",
        metavar="TOKEN",
        help="require 'Authorization: Bearer TOKEN' (env WASSETTE_AUTH_TOKEN, preferred: not shown by ps)",
    )
    serve.add_argument(
        "--oauth-issuer",
        metavar="URL",
        help="accept OAuth 2.1 access tokens from this authorization server (its JWKS checks them; "
        "env WASSETTE_OAUTH_ISSUER)",
    )
    serve.add_argument(
        "--oauth-resource",
        metavar="URL",
        help="this server's resource URI, the audience tokens must name (default http://HOST:PORT/mcp; "
        "env WASSETTE_OAUTH_RESOURCE)",
    )
    serve.add_argument(
        "--legacy-sessions",
        type=_bool,
        default=True,
        metavar="BOOL",
        help="keep the 2025 session lifecycle (Mcp-Session-Id) next to stateless 2026-07-28 (default true)",
    )
    serve.add_argument(
        "--json-response",
        type=_bool,
        nargs="?",
        const=True,
        default=False,
        metavar="BOOL",
        help="answer POSTs with plain JSON instead of an SSE stream (default false)",
    )
    serve.add_argument(
        "--max-request-bytes",
        type=int,
        metavar="N",
        help="largest request body accepted (default 4 MiB)",
    )
    serve.add_argument(
        "--workers",
        metavar="N",
        help="worker processes serving the address (default 'auto': one per usable core; 1: this process "
        "serves; env WASSETTE_WORKERS)",
    )
    serve.add_argument(
        "--console",
        action="store_true",
        help="serve the web console at /console (behind the same token; agents' grant requests wait there)",
    )
    serve.set_defaults(handler=cmd_serve)


def _serve_flags(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "bind_address": getattr(args, "bind_address", None),
        "allowed_hosts": getattr(args, "allowed_host", None) or (),
        "auth_token": getattr(args, "auth_token", None),
        "oauth_issuer": getattr(args, "oauth_issuer", None),
        "oauth_resource": getattr(args, "oauth_resource", None),
        "legacy_sessions": getattr(args, "legacy_sessions", True),
        "json_response": getattr(args, "json_response", False),
        "max_request_bytes": getattr(args, "max_request_bytes", None),
        "workers": getattr(args, "workers", None),
    }


def _start(args: argparse.Namespace, rt: Any = None, *, provision_it: bool = True) -> Any:
    """The runtime to serve (`rt`, read now, or one made here), provisioned
    from `--manifest` first."""
    from wassette.cli.common import runtime

    if rt is None:
        rt = runtime(args, serve=_serve_flags(args))
    else:
        rt.refresh()
    if provision_it and getattr(args, "manifest", None):
        from pathlib import Path

        from wassette.distribution.provision import provision

        provision(rt, Path(args.manifest), continue_on_failure=args.continue_on_provisioning_failure)
    if provision_it and _drop_mode(args, rt) != "off":
        from wassette.distribution import local_components

        report = local_components.sync(rt)
        for r in report.refused:
            log.warning("drop directory %s: %s refused: %s", report.directory, r["file"], r["reason"])
        if report.loaded:
            log.info("loaded from %s: %s", report.directory, ", ".join(report.loaded))
    return rt


def _drop_mode(args: argparse.Namespace, rt: Any) -> str:
    """When the drop directory is synced: the flag, else the environment or
    config, else `run` watches and `serve` (a shared service) does not."""
    chosen = args.local_components or rt.settings.local_components
    if chosen:
        return str(chosen)
    return "watch" if args.handler is cmd_run or args.transport == "stdio" else "off"


def _server_options_of(args: argparse.Namespace, rt: Any, *, syncs: bool = True) -> Any:
    from wassette.server.core.server import ServerOptions

    return ServerOptions(
        builtin_tools=not args.disable_builtin_tools,
        agent_grants=args.agent_grants,
        watch_local_components=syncs and _drop_mode(args, rt) == "watch",
    )


def cmd_run(args: argparse.Namespace) -> int:
    from wassette.server.stdio import serve_stdio

    rt = _start(args)
    serve_stdio(rt, _server_options_of(args, rt), max_request_bytes=rt.settings.serve.max_request_bytes)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    if args.transport == "stdio":
        return cmd_run(args)
    from wassette.cli.common import runtime
    from wassette.server.http.options import HttpOptions

    # Not read yet: the parent of a worker set never reads the components.
    rt = runtime(args, refresh=False, serve=_serve_flags(args))
    options = HttpOptions.from_settings(rt.settings, transport=args.transport or "streamable-http")
    options = dataclasses.replace(options, console=args.console)
    if rt.settings.serve.workers > 1:
        return _supervise(args, rt, options, rt.settings.serve.workers)
    return _serve(args, rt, options, None)


def _serve(args: argparse.Namespace, rt: Any, options: HttpOptions, worker: WorkerSpec | None) -> int:
    """Serves HTTP in this process: alone, or as one `worker` of a set."""
    from wassette.cli.common import settings
    from wassette.server.http.app import serve_http
    from wassette.server.http.options import HttpOptions

    def reload() -> HttpOptions:  # SIGHUP: the configuration as it is now
        read = HttpOptions.from_settings(settings(args, _serve_flags(args)), transport=options.transport)
        return dataclasses.replace(read, console=options.console)

    rt = _start(args, rt, provision_it=worker is None or worker.provisions)
    # One worker of a set syncs the drop directory (the one that provisions).
    syncs = worker is None or worker.provisions
    serve_http(rt, options, _server_options_of(args, rt, syncs=syncs), worker, reload)
    return 0


def _supervise(args: argparse.Namespace, rt: Any, options: HttpOptions, count: int) -> int:
    from wassette.server.http.options import announcement
    from wassette.server.http.sockets import bind_socket
    from wassette.server.http.supervisor import Supervisor

    # Held for the set (bound, not listening: it takes no connection), so a
    # port 0 becomes one port every worker binds.
    held = bind_socket(options.host, options.port, shared=True, listen=False)
    host, port = held.getsockname()[:2]
    try:
        supervisor = Supervisor(count, host, port, lambda spec: _serve(args, rt, options, spec))
        return supervisor.run(announcement(options, host, port))
    finally:
        held.close()
