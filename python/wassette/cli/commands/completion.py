"""`wassette completion bash|zsh|fish`: the shell code that completes
wassette's commands and options (argcomplete: the shell asks `wassette`
itself, so completions always match this version's commands)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from wassette.cli.options import Parents

SHELLS = ("bash", "zsh", "fish")


def add(sub: Any, p: Parents) -> None:
    c = sub.add_parser(
        "completion",
        help='print shell code that completes wassette\'s commands: eval "$(wassette completion bash)"',
    )
    c.add_argument("shell", choices=SHELLS)
    c.set_defaults(handler=cmd_completion)


def cmd_completion(args: argparse.Namespace) -> int:
    from argcomplete.shell_integration import shellcode

    sys.stdout.write(shellcode(["wassette"], shell=args.shell))
    return 0


def complete(parser: argparse.ArgumentParser) -> None:
    """Answers a shell's completion request (argcomplete's protocol: the
    `_ARGCOMPLETE` environment); exits."""
    import argcomplete

    argcomplete.autocomplete(parser)
