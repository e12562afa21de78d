"""The `wassette` command: the CLI tree of Wassette 0.8, on the same runtime
functions the MCP server uses."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from wassette import __version__
from wassette.cli.output import FORMATS, emit
from wassette.runtime.errors import WassetteError

Handler = Callable[[argparse.Namespace], int]


def _component_dir_options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "--component-dir",
        "--plugin-dir",
        dest="component_dir",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="component directory (default: $XDG_DATA_HOME/wassette/components; env WASSETTE_COMPONENT_DIR)",
    )
    return p


def _env_options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="value for an environment variable a policy grants (repeatable)",
    )
    p.add_argument("--env-file", metavar="FILE", help="KEY=VALUE lines, like --env")
    return p


def _output_options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "-o", "--output-format", choices=FORMATS, default="json", help="output format (default: json)"
    )
    return p


def _registry_options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "--registry-username",
        metavar="USER",
        help="user name for the registry (with --registry-password-stdin)",
    )
    p.add_argument(
        "--registry-password-stdin",
        action="store_true",
        help="read the registry password (or token) from stdin",
    )
    p.add_argument(
        "--allow-insecure-loopback",
        action="store_true",
        default=None,
        help="allow plain http:// to a registry or server on this machine (development only)",
    )
    return p


def _load_options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "--accept-policy",
        action="store_true",
        help="apply a policy shipped with the component without asking",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    return p


def _provisioning_options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "--manifest", metavar="FILE", help="install and verify the components a manifest lists at start"
    )
    p.add_argument(
        "--continue-on-provisioning-failure",
        action="store_true",
        help="serve the components that provisioned even if some failed (default: exit non-zero)",
    )
    p.add_argument(
        "--allow-insecure-loopback",
        action="store_true",
        default=None,
        help="allow plain http:// to a registry or server on this machine (development only)",
    )
    return p


def _bool(text: str) -> bool:
    from wassette.server.http import parse_bool

    try:
        return parse_bool(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _transport_options(serve: argparse.ArgumentParser) -> None:
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


class _Parents(NamedTuple):
    """Options shared by several commands, as argparse parent parsers."""

    dirs: argparse.ArgumentParser
    out: argparse.ArgumentParser
    envs: argparse.ArgumentParser
    reg: argparse.ArgumentParser
    loadopts: argparse.ArgumentParser
    prov: argparse.ArgumentParser


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole CLI; with `command`, only that top-level command (building
    every command's parser took 10 ms of `wassette run`'s ~80 ms start, paid
    by every MCP client that starts a session)."""
    p = _Parents(
        _component_dir_options(),
        _output_options(),
        _env_options(),
        _registry_options(),
        _load_options(),
        _provisioning_options(),
    )
    parser = argparse.ArgumentParser(
        prog="wassette",
        description="A secure MCP server that runs tools as WebAssembly Components in a deny-by-default sandbox.",
        parents=[p.dirs],
    )
    parser.add_argument("--version", action="version", version=f"wassette {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, add in COMMANDS.items():
        if command is None or name == command:
            add(sub, p)
    return parser


def _add_run(sub: Any, p: _Parents) -> None:
    run = sub.add_parser("run", parents=[p.dirs, p.envs, p.prov], help="serve MCP over stdio")
    run.add_argument("--disable-builtin-tools", action="store_true", help="offer only component tools")
    run.add_argument(
        "--agent-grants",
        choices=("allow", "ask", "deny"),
        default="ask",
        help="permission grants asked for by the agent: ask the user (default), allow, or deny",
    )
    run.set_defaults(handler=cmd_run)


def _add_serve(sub: Any, p: _Parents) -> None:
    serve = sub.add_parser(
        "serve",
        parents=[p.dirs, p.envs, p.prov],
        help="serve MCP over Streamable HTTP (default 127.0.0.1:9001/mcp)",
    )
    serve.add_argument("--disable-builtin-tools", action="store_true", help="offer only component tools")
    serve.add_argument("--agent-grants", choices=("allow", "ask", "deny"), default="ask", help="as for `run`")
    _transport_options(serve)
    serve.set_defaults(handler=cmd_serve)


def _add_component(sub: Any, p: _Parents) -> None:
    component = sub.add_parser("component", help="load, unload and list components")
    csub = component.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
    load = csub.add_parser(
        "load",
        parents=[p.dirs, p.out, p.reg, p.loadopts],
        help="load a component from a URI (file://, https://, oci://)",
    )
    load.add_argument(
        "uri",
        help="file:///path/tool.wasm, https://host/tool.wasm, oci://registry/repo:tag or registry/repo@sha256:...",
    )
    load.set_defaults(handler=cmd_component_load)
    verify = csub.add_parser(
        "verify",
        parents=[p.dirs, p.out, p.reg],
        help="show who signed an OCI component and whether that is trusted",
    )
    verify.add_argument("uri", help="oci://registry/repository:tag (or @sha256:...)")
    verify.set_defaults(handler=cmd_component_verify)
    publish = csub.add_parser(
        "publish", parents=[p.dirs, p.out, p.reg], help="push a component as a wasm OCI artifact"
    )
    publish.add_argument("file", help="the component (.wasm)")
    publish.add_argument("uri", help="oci://registry/repository:tag")
    publish.add_argument("--policy", metavar="FILE", help="a policy.yaml to ship as an extra layer")
    publish.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    publish.set_defaults(handler=cmd_component_publish)
    unload = csub.add_parser(
        "unload", parents=[p.dirs, p.out], help="unload a component and remove its files"
    )
    unload.add_argument("id", help="component id")
    unload.set_defaults(handler=cmd_component_unload)
    lst = csub.add_parser("list", parents=[p.dirs, p.out], help="list loaded components")
    lst.set_defaults(handler=cmd_component_list)


def _add_inspect(sub: Any, p: _Parents) -> None:
    inspect = sub.add_parser(
        "inspect", parents=[p.dirs, p.out], help="show a component's tools and their schemas"
    )
    inspect.add_argument(
        "id",
        metavar="ID|FILE",
        help="id of a loaded component, or a component to inspect without loading it: "
        "a .wasm path, file://, https:// or oci:// URI",
    )
    inspect.set_defaults(handler=cmd_inspect)


def _add_tool(sub: Any, p: _Parents) -> None:
    tool = sub.add_parser("tool", help="list, describe and invoke tools")
    tsub = tool.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
    tlist = tsub.add_parser("list", parents=[p.dirs, p.out], help="list every tool of every component")
    tlist.set_defaults(handler=cmd_tool_list)
    tread = tsub.add_parser("read", parents=[p.dirs, p.out], help="show one tool with its schemas")
    tread.add_argument("name", help="tool name")
    tread.set_defaults(handler=cmd_tool_read)
    invoke = tsub.add_parser("invoke", parents=[p.dirs, p.out, p.envs], help="call a tool in the sandbox")
    invoke.add_argument("name", help="tool name")
    invoke.add_argument(
        "--args", default="{}", metavar="JSON", help="arguments as a JSON object, e.g. '{\"a\": 1}'"
    )
    invoke.set_defaults(handler=cmd_tool_invoke)


def _add_policy(sub: Any, p: _Parents) -> None:
    policy = sub.add_parser("policy", help="show or attach a component's policy")
    psub = policy.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
    pget = psub.add_parser("get", parents=[p.dirs, p.out], help="show the policy of a component")
    pget.add_argument("id", help="component id")
    pget.set_defaults(handler=cmd_policy_get)
    pattach = psub.add_parser("attach", parents=[p.dirs, p.out], help="install a policy file for a component")
    pattach.add_argument("id", help="component id")
    pattach.add_argument("file", help="path (or file:// URI) of a policy.yaml")
    pattach.set_defaults(handler=cmd_policy_attach)
    paccept = psub.add_parser(
        "accept",
        parents=[p.dirs, p.out],
        help="apply the policy a component shipped with (see `component load`)",
    )
    paccept.add_argument("id", help="component id")
    paccept.set_defaults(handler=cmd_policy_accept)
    pschema = psub.add_parser("schema", help="print the JSON Schema of policy.yaml")
    pschema.set_defaults(handler=cmd_policy_schema)


def _add_registry(sub: Any, p: _Parents) -> None:
    registry = sub.add_parser("registry", help="search the component catalog, load by name")
    rgsub = registry.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
    rsearch = rgsub.add_parser(
        "search", parents=[p.dirs, p.out], help="search the catalog by name or description"
    )
    rsearch.add_argument("query", nargs="*", help="words to look for (all entries without)")
    rsearch.set_defaults(handler=cmd_registry_search)
    rget = rgsub.add_parser(
        "get", parents=[p.dirs, p.out, p.reg, p.loadopts], help="load a catalog component by name"
    )
    rget.add_argument("name", help="catalog name (see `wassette registry search`)")
    rget.set_defaults(handler=cmd_registry_get)


def _add_permission(sub: Any, p: _Parents) -> None:
    perm = sub.add_parser("permission", help="grant, revoke or reset permissions")
    permsub = perm.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
    grant = permsub.add_parser("grant", help="grant a permission")
    gsub = grant.add_subparsers(dest="kind", metavar="KIND", required=True)
    g = gsub.add_parser("storage", parents=[p.dirs, p.out], help="allow a path: fs:///abs/dir, fs://rel/**")
    g.add_argument("id", help="component id")
    g.add_argument("uri", help="fs:// URI of a file, directory or glob")
    g.add_argument("--access", required=True, help="read, write or read,write")
    g.set_defaults(handler=cmd_grant_storage)
    g = gsub.add_parser(
        "network",
        parents=[p.dirs, p.out],
        help="allow a host: api.x.com, *.x.com, https://x:8443, 10.0.0.0/8",
    )
    g.add_argument("id", help="component id")
    g.add_argument("host", help="host, *.wildcard, host:port, scheme://host[:port], IP address or CIDR")
    g.set_defaults(handler=cmd_grant_network)
    g = gsub.add_parser(
        "environment-variable", parents=[p.dirs, p.out], help="allow an environment variable (or PREFIX_*)"
    )
    g.add_argument("id", help="component id")
    g.add_argument("key", help="variable name, or a PREFIX_* glob")
    g.set_defaults(handler=cmd_grant_env)
    g = gsub.add_parser("memory", parents=[p.dirs, p.out], help="set the memory limit: 512Mi, 1Gi, bytes")
    g.add_argument("id", help="component id")
    g.add_argument("limit", help="memory size: 512Mi, 1Gi, 2048Ki or bytes")
    g.set_defaults(handler=cmd_grant_memory)
    revoke = permsub.add_parser("revoke", help="revoke a permission")
    rsub = revoke.add_subparsers(dest="kind", metavar="KIND", required=True)
    for kind, arg, helptext in (
        ("storage", "uri", "remove all access to an fs:// URI"),
        ("network", "host", "remove a host"),
        ("environment-variable", "key", "remove an environment variable"),
    ):
        r = rsub.add_parser(kind, parents=[p.dirs, p.out], help=helptext)
        r.add_argument("id", help="component id")
        r.add_argument(arg, help=f"the {arg} exactly as granted")
        r.set_defaults(handler=cmd_revoke)
    reset = permsub.add_parser(
        "reset", parents=[p.dirs, p.out], help="remove every permission of a component"
    )
    reset.add_argument("id", help="component id")
    reset.set_defaults(handler=cmd_reset)


def _add_secret(sub: Any, p: _Parents) -> None:
    secret = sub.add_parser("secret", help="per-component secrets (seen as environment variables)")
    ssub = secret.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
    sl = ssub.add_parser("list", parents=[p.dirs, p.out], help="list secret keys")
    sl.add_argument("id", help="component id")
    sl.add_argument("--show-values", action="store_true", help="also print the values")
    sl.set_defaults(handler=cmd_secret_list)
    ss = ssub.add_parser("set", parents=[p.dirs, p.out], help="set secrets: KEY=VALUE ...")
    ss.add_argument("id", help="component id")
    ss.add_argument("pairs", nargs="+", metavar="KEY=VALUE", help="secret names and values")
    ss.set_defaults(handler=cmd_secret_set)
    sd = ssub.add_parser("delete", parents=[p.dirs, p.out], help="delete secrets: KEY ...")
    sd.add_argument("id", help="component id")
    sd.add_argument("keys", nargs="+", metavar="KEY", help="secret names")
    sd.set_defaults(handler=cmd_secret_delete)


COMMANDS: dict[str, Callable[[Any, _Parents], None]] = {
    "run": _add_run,
    "serve": _add_serve,
    "component": _add_component,
    "inspect": _add_inspect,
    "tool": _add_tool,
    "policy": _add_policy,
    "registry": _add_registry,
    "permission": _add_permission,
    "secret": _add_secret,
}


# -- helpers -------------------------------------------------------------


def _runtime(args: argparse.Namespace, *, refresh: bool = True) -> Any:
    from wassette.runtime.config import Settings
    from wassette.runtime.lifecycle import Runtime

    settings = Settings.load(
        component_dir=getattr(args, "component_dir", None),
        env_vars=getattr(args, "env", None) or (),
        env_file=getattr(args, "env_file", None),
        allow_insecure_loopback=getattr(args, "allow_insecure_loopback", None),
    )
    runtime = Runtime(settings)
    if refresh:
        runtime.refresh()
    return runtime


def _tool_json(tool: Any) -> dict[str, Any]:
    return {
        "name": tool.name,
        "component_id": tool.component_id,
        "export": tool.export,
        "description": tool.description,
        "inputSchema": tool.input_schema,
        "outputSchema": tool.output_schema,
    }


def _configure_logging(default: str) -> None:
    level_name = (os.environ.get("WASSETTE_LOG") or os.environ.get("RUST_LOG") or default).split(",")[0]
    level = getattr(logging, level_name.strip().upper(), logging.INFO)
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


# -- commands ------------------------------------------------------------


def _provision(args: argparse.Namespace, runtime: Any) -> None:
    """`--manifest`: install and verify the listed components before serving."""
    if not getattr(args, "manifest", None):
        return
    from pathlib import Path

    from wassette.distribution.provision import provision

    provision(runtime, Path(args.manifest), continue_on_failure=args.continue_on_provisioning_failure)


def cmd_run(args: argparse.Namespace) -> int:
    from wassette.server.limits import max_request_bytes
    from wassette.server.stdio import serve_stdio

    runtime = _runtime(args)
    _provision(args, runtime)
    serve_stdio(
        runtime,
        builtin_tools=not args.disable_builtin_tools,
        agent_grants=args.agent_grants,
        max_request_bytes=max_request_bytes(runtime.settings.raw, getattr(args, "max_request_bytes", None)),
    )
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    if args.transport == "stdio":
        return cmd_run(args)
    from wassette.server.http import HttpOptions, serve_http

    runtime = _runtime(args)
    _provision(args, runtime)
    options = HttpOptions.resolve(
        bind_address=args.bind_address,
        allowed_hosts=args.allowed_host,
        auth_token=args.auth_token,
        transport=args.transport or "streamable-http",
        legacy_sessions=args.legacy_sessions,
        json_response=args.json_response,
        request_limit=args.max_request_bytes,
        env=os.environ,
        config=runtime.settings.raw,
    )
    serve_http(runtime, options, builtin_tools=not args.disable_builtin_tools, agent_grants=args.agent_grants)
    return 0


def _fetch_options(args: argparse.Namespace) -> Any:
    from wassette.distribution.auth import Credentials
    from wassette.distribution.sources import FetchOptions

    credentials = None
    if args.registry_password_stdin:
        if not args.registry_username:
            raise WassetteError("--registry-password-stdin needs --registry-username")
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise WassetteError("--registry-password-stdin: no password on standard input")
        credentials = Credentials(args.registry_username, password, "the command line")
    elif args.registry_username:
        raise WassetteError(
            "--registry-username needs --registry-password-stdin (the password is read from stdin)"
        )
    return FetchOptions(credentials=credentials, allow_insecure_loopback=args.allow_insecure_loopback)


def _load(args: argparse.Namespace, uri: str) -> int:
    """`component load` and `registry get`: progress, the shipped-policy
    question, warnings, the report."""
    from wassette.cli.progress import ProgressPrinter, ask_policy
    from wassette.runtime.lifecycle import LoadOptions, describe_permissions

    fetch = _fetch_options(args)
    runtime = _runtime(args)
    accept: Any = bool(args.accept_policy)
    interactive = sys.stdin.isatty() and sys.stderr.isatty() and not args.registry_password_stdin
    if not accept and interactive:
        accept = lambda cid, policy: ask_policy(cid, policy, describe_permissions(policy))  # noqa: E731
    printer = ProgressPrinter(quiet=args.quiet)
    try:
        report = runtime.load_component(
            uri, progress=printer, options=LoadOptions(fetch=fetch, accept_policy=accept)
        )
    finally:
        printer.close()
    for w in report.warnings:
        print(f"warning: {w}", file=sys.stderr)
    emit(report.to_json(), args.output_format, columns=["status", "id", "tools", "source"])
    return 0


def cmd_component_load(args: argparse.Namespace) -> int:
    return _load(args, args.uri)


def cmd_component_verify(args: argparse.Namespace) -> int:
    from wassette.distribution.sources import verify

    fetch = _fetch_options(args)
    result = verify(args.uri, _runtime(args, refresh=False).settings, fetch)
    if args.output_format == "table":
        rows = [c.to_json() for c in result.checks]
        emit(rows, "table", columns=["kind", "signer", "trusted", "found", "problem"])
        print(
            f"{result.reference}@{result.manifest_digest}: {result.decision.message or 'verified: signed by ' + str(result.decision.signer)}",
            file=sys.stderr,
        )
    else:
        emit(result.to_json(), args.output_format)
    if not result.decision.ok:
        print(f"error: {result.decision.message}", file=sys.stderr)
        return 1
    return 0


def cmd_component_publish(args: argparse.Namespace) -> int:
    from pathlib import Path

    from wassette.cli.progress import ProgressPrinter
    from wassette.distribution.publish import publish, read_component

    fetch = _fetch_options(args)
    runtime = _runtime(args, refresh=False)
    path = Path(args.file)
    runtime._compile(
        read_component(path, runtime.settings.max_component_bytes), path.name
    )  # valid component?
    printer = ProgressPrinter(quiet=args.quiet)
    try:
        result = publish(
            path,
            args.uri,
            runtime.settings,
            policy_path=Path(args.policy) if args.policy else None,
            options=fetch,
            progress=printer,
        )
    finally:
        printer.close()
    emit(result, args.output_format, columns=["status", "reference", "digest"])
    return 0


def cmd_policy_accept(args: argparse.Namespace) -> int:
    emit(_runtime(args, refresh=False).permissions.accept_pending(args.id), args.output_format)
    return 0


def cmd_registry_search(args: argparse.Namespace) -> int:
    from wassette.distribution import catalog

    entries, warnings = catalog.load(_runtime(args, refresh=False).settings)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    rows = [e.to_json() for e in catalog.search(" ".join(args.query), entries)]
    emit(rows, args.output_format, columns=["name", "description", "uri"])
    return 0


def cmd_registry_get(args: argparse.Namespace) -> int:
    from wassette.distribution import catalog

    entries, warnings = catalog.load(_runtime(args, refresh=False).settings)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    return _load(args, catalog.get(args.name, entries).uri)


def cmd_component_unload(args: argparse.Namespace) -> int:
    runtime = _runtime(args)
    runtime.unload_component(args.id)
    emit({"status": "component unloaded successfully", "id": args.id}, args.output_format)
    return 0


def cmd_component_list(args: argparse.Namespace) -> int:
    runtime = _runtime(args)
    rows = [c.to_json() for c in runtime.components()]
    for cid, why in runtime.broken_components().items():
        print(f"warning: component {cid} cannot be loaded: {why}", file=sys.stderr)
    emit(rows, args.output_format, columns=["id", "tools", "source", "sha256"])
    return 0


def _inspect_source(target: str) -> str | None:
    """The URI `inspect` should fetch, or None when `target` is a component id
    (an id never contains `/` or `://`, nor ends in `.wasm`)."""
    from pathlib import Path

    from wassette.distribution.reference import looks_like_reference

    if "://" in target:
        return target
    path = Path(target).expanduser()
    if path.exists() or (("/" in target or target.endswith(".wasm")) and not looks_like_reference(target)):
        return path.absolute().as_uri()
    return target if looks_like_reference(target) else None


def cmd_inspect(args: argparse.Namespace) -> int:
    source = _inspect_source(args.id)
    if source is not None:
        catalog = _runtime(args, refresh=False).inspect_source(source)
        for _cid, export, why in catalog.skipped:
            print(f"warning: export {export} is not offered as a tool: {why}", file=sys.stderr)
        tools = [_tool_json(t) for t in sorted(catalog.tools.values(), key=lambda t: t.name)]
    else:
        tools = [_tool_json(t) for t in _runtime(args).component_tools(args.id)]
    emit(tools, args.output_format, columns=["name", "export", "description"])
    return 0


def cmd_tool_list(args: argparse.Namespace) -> int:
    runtime = _runtime(args)
    rows = [
        {"name": t.name, "component_id": t.component_id, "description": t.description}
        for t in runtime.tools()
    ]
    emit(rows, args.output_format, columns=["name", "component_id", "description"])
    return 0


def cmd_tool_read(args: argparse.Namespace) -> int:
    runtime = _runtime(args)
    emit(_tool_json(runtime.tool(args.name)), args.output_format)
    return 0


def cmd_tool_invoke(args: argparse.Namespace) -> int:
    try:
        arguments = json.loads(args.args)
    except json.JSONDecodeError as e:
        raise WassetteError(f"--args is not valid JSON: {e}") from None
    if not isinstance(arguments, dict):
        raise WassetteError("--args must be a JSON object, e.g. '{\"a\": 1}'")
    runtime = _runtime(args)
    result = runtime.call_tool(args.name, arguments)
    for label, data, dropped in (
        ("stdout", result.stdout, result.stdout_dropped),
        ("stderr", result.stderr, result.stderr_dropped),
    ):
        text = data.decode("utf-8", "replace").rstrip("\n")
        if text:
            print("\n".join(f"[guest {label}] {line}" for line in text.split("\n")), file=sys.stderr)
        if dropped:
            print(f"[guest {label}] ... {dropped} more bytes dropped", file=sys.stderr)
    if result.value is not None or not result.is_error:
        emit({"result": result.value}, args.output_format)
    if result.is_error:
        print(f"error: {result.message()}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # `wassette run ...` needs only the `run` parser; anything else (options
    # first, --help, a typo) gets the whole CLI.
    parser = build_parser(argv[0] if argv and argv[0] in COMMANDS else None)
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    _configure_logging("info" if handler in (cmd_run, cmd_serve) else "warning")
    try:
        return handler(args)
    except WassetteError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def cmd_policy_get(args: argparse.Namespace) -> int:
    runtime = _runtime(args, refresh=False)
    policy = runtime.permissions.get(args.id)
    if args.output_format == "table":
        rows = [
            *({"kind": "storage", "rule": r.uri, "access": ",".join(r.access)} for r in policy.storage_allow),
            *({"kind": "storage", "rule": r.uri, "access": "deny"} for r in policy.storage_deny),
            *({"kind": "network", "rule": r.text, "access": "allow"} for r in policy.network_allow),
            *({"kind": "network", "rule": r.text, "access": "deny"} for r in policy.network_deny),
            *({"kind": "environment", "rule": r.key, "access": "allow"} for r in policy.env_allow),
            *({"kind": "environment", "rule": r.key, "access": "deny"} for r in policy.env_deny),
        ]
        emit(rows, "table", columns=["kind", "rule", "access"])
    else:
        emit(policy.document, args.output_format)
    return 0


def cmd_policy_schema(args: argparse.Namespace) -> int:
    from wassette.runtime.policy import schema_text

    print(schema_text(), end="")
    return 0


def cmd_policy_attach(args: argparse.Namespace) -> int:
    from pathlib import Path

    from wassette.distribution.sources import local_path

    source = local_path(args.file) if args.file.startswith("file://") else Path(args.file)
    if source is None:
        raise WassetteError(f"{args.file!r}: give a local path or file:// URI")
    emit(_runtime(args, refresh=False).permissions.attach(args.id, source), args.output_format)
    return 0


def cmd_grant_storage(args: argparse.Namespace) -> int:
    access = [a.strip() for a in args.access.split(",") if a.strip()]
    perms = _runtime(args, refresh=False).permissions
    emit(perms.grant_storage(args.id, args.uri, access), args.output_format)
    return 0


def cmd_grant_network(args: argparse.Namespace) -> int:
    emit(_runtime(args, refresh=False).permissions.grant_network(args.id, args.host), args.output_format)
    return 0


def cmd_grant_env(args: argparse.Namespace) -> int:
    emit(_runtime(args, refresh=False).permissions.grant_environment(args.id, args.key), args.output_format)
    return 0


def cmd_grant_memory(args: argparse.Namespace) -> int:
    emit(_runtime(args, refresh=False).permissions.grant_memory(args.id, args.limit), args.output_format)
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    perms = _runtime(args, refresh=False).permissions
    if args.kind == "storage":
        result = perms.revoke_storage(args.id, args.uri)
    elif args.kind == "network":
        result = perms.revoke_network(args.id, args.host)
    else:
        result = perms.revoke_environment(args.id, args.key)
    emit(result, args.output_format)
    return 0


def cmd_reset(args: argparse.Namespace) -> int:
    emit(_runtime(args, refresh=False).permissions.reset(args.id), args.output_format)
    return 0


def cmd_secret_list(args: argparse.Namespace) -> int:
    runtime = _runtime(args, refresh=False)
    if not runtime.store.exists(args.id):
        from wassette.runtime.errors import UnknownComponentError

        raise UnknownComponentError(args.id)
    values = runtime.secrets.get(args.id)
    rows = [{"key": k, "value": v if args.show_values else "********"} for k, v in sorted(values.items())]
    emit(rows, args.output_format, columns=["key", "value"])
    return 0


def cmd_secret_set(args: argparse.Namespace) -> int:
    runtime = _runtime(args, refresh=False)
    if not runtime.store.exists(args.id):
        from wassette.runtime.errors import UnknownComponentError

        raise UnknownComponentError(args.id)
    values: dict[str, str] = {}
    for pair in args.pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise WassetteError(f"{pair.split('=')[0]!r}: expected KEY=VALUE")
        values[key] = value
    keys = runtime.secrets.set(args.id, values)
    runtime.audit.record("secret_set", component=args.id, by="cli", keys=keys)
    emit({"status": "secrets set successfully", "component_id": args.id, "keys": keys}, args.output_format)
    return 0


def cmd_secret_delete(args: argparse.Namespace) -> int:
    runtime = _runtime(args, refresh=False)
    keys = runtime.secrets.delete(args.id, args.keys)
    runtime.audit.record("secret_deleted", component=args.id, by="cli", keys=keys)
    emit(
        {"status": "secrets deleted successfully", "component_id": args.id, "keys": keys}, args.output_format
    )
    return 0
