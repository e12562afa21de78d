"""Progress for long CLI commands (loading, publishing) on stderr: a bar on a
terminal, one plain line per step otherwise (logs, CI)."""

from __future__ import annotations

import sys
from typing import TextIO

from wassette.runtime.policy import Policy


class ProgressPrinter:
    def __init__(self, stream: TextIO | None = None, *, tty: bool | None = None, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.quiet = quiet
        self._bar = False

    def __call__(self, message: str, done: int | None = None, total: int | None = None) -> None:
        if self.quiet:
            return
        if done is None:
            self._end_bar()
            self.stream.write(f"wassette: {message}\n")
        elif self.tty:
            self.stream.write("\r" + _bar(message, done, total))
            self._bar = True
        self.stream.flush()

    def _end_bar(self) -> None:
        if self._bar:
            self.stream.write("\n")
            self._bar = False

    def close(self) -> None:
        self._end_bar()
        self.stream.flush()


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n = n / 1024  # type: ignore[assignment]
    return f"{n} B"


def _bar(message: str, done: int, total: int | None, width: int = 30) -> str:
    if not total:
        return f"wassette: {message} {_size(done)}"
    frac = min(1.0, done / total)
    filled = int(frac * width)
    return f"wassette: {message} [{'#' * filled}{'.' * (width - filled)}] {frac:4.0%} {_size(done)}/{_size(total)}"


def ask_policy(component_id: str, policy: Policy, describe: str) -> bool:
    """Shows what a shipped policy grants and asks whether to apply it."""
    sys.stderr.write(
        f"\nThe component {component_id!r} ships a policy that asks for:\n"
        + "".join(f"  - {part}\n" for part in describe.split("; "))
        + "Apply it now? Without it the component runs with no permissions. [y/N] "
    )
    sys.stderr.flush()
    try:
        answer = sys.stdin.readline()
    except (OSError, KeyboardInterrupt):
        return False
    return answer.strip().lower() in ("y", "yes")
