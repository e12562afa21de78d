"""Options shared by several commands, as argparse parent parsers."""

from __future__ import annotations

import argparse
from typing import Any, NamedTuple

from wassette.cli.output import FORMATS


def _component_dir() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "--component-dir",
        "--plugin-dir",
        dest="component_dir",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="component directory (default: $XDG_DATA_HOME/wassette/components; env WASSETTE_COMPONENT_DIR)",
    )
    p.add_argument(
        "--state",
        metavar="URL",
        default=argparse.SUPPRESS,
        help="where components, policies and secrets live: 'local' (default: the directories) or a "
        "PostgreSQL URL shared by a fleet of replicas (env WASSETTE_STATE)",
    )
    p.add_argument(
        "--tenant",
        metavar="NAME",
        default=argparse.SUPPRESS,
        help="act on this tenant's components, policies, secrets and audit log (env WASSETTE_TENANT)",
    )
    return p


def _env() -> argparse.ArgumentParser:
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


def _output() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "-o", "--output-format", choices=FORMATS, default="json", help="output format (default: json)"
    )
    return p


def _insecure_loopback(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--allow-insecure-loopback",
        action="store_true",
        default=None,
        help="allow plain http:// to a registry or server on this machine (development only)",
    )


def _registry() -> argparse.ArgumentParser:
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
    _insecure_loopback(p)
    return p


def _load() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "--accept-policy",
        action="store_true",
        help="apply a policy shipped with the component without asking",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    return p


def _provisioning() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "--manifest", metavar="FILE", help="install and verify the components a manifest lists at start"
    )
    p.add_argument(
        "--continue-on-provisioning-failure",
        action="store_true",
        help="serve the components that provisioned even if some failed (default: exit non-zero)",
    )
    _insecure_loopback(p)
    return p


def group(sub: Any, name: str, help: str, dest: str = "subcommand", metavar: str = "SUBCOMMAND") -> Any:
    """A command with subcommands (`wassette policy get`): its subparsers."""
    return sub.add_parser(name, help=help).add_subparsers(dest=dest, metavar=metavar, required=True)


def with_id(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("id", help="component id")
    return parser


class Parents(NamedTuple):
    """Options shared by several commands."""

    dirs: argparse.ArgumentParser
    out: argparse.ArgumentParser
    envs: argparse.ArgumentParser
    reg: argparse.ArgumentParser
    loadopts: argparse.ArgumentParser
    prov: argparse.ArgumentParser


def parents() -> Parents:
    return Parents(_component_dir(), _output(), _env(), _registry(), _load(), _provisioning())
