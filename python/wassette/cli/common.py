"""What command handlers share: the runtime they act on, fetch options,
the JSON shape of a tool."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from wassette.runtime.errors import WassetteError
from wassette.runtime.runtime import Runtime


def settings(args: argparse.Namespace, serve: dict[str, Any] | None = None) -> Any:
    """The settings the command line, the environment and config.toml give."""
    from wassette.runtime.config import Settings

    return Settings.load(
        component_dir=getattr(args, "component_dir", None),
        env_vars=getattr(args, "env", None) or (),
        env_file=getattr(args, "env_file", None),
        allow_insecure_loopback=getattr(args, "allow_insecure_loopback", None),
        serve=serve,
        state=getattr(args, "state", None),
        tenant=getattr(args, "tenant", None),
    )


def runtime(
    args: argparse.Namespace, *, refresh: bool = True, serve: dict[str, Any] | None = None
) -> Runtime:
    rt = Runtime(settings(args, serve))
    if refresh:
        rt.refresh()
    elif rt.shared is not None and serve is None:
        rt.shared.start()  # the working copy is read even without the components
    return rt


def fetch_options(args: argparse.Namespace) -> Any:
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


def tool_json(tool: Any) -> dict[str, Any]:
    return {
        "name": tool.name,
        "component_id": tool.component_id,
        "export": tool.export,
        "description": tool.summary,
        "inputSchema": tool.input_schema,
        "outputSchema": tool.output_schema,
    }


def require_component(rt: Runtime, component_id: str) -> None:
    if not rt.store.exists(component_id):
        from wassette.runtime.errors import UnknownComponentError

        raise UnknownComponentError(component_id)
