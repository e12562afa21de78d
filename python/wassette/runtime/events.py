"""Counted events of the runtime and the distribution layer — a component
compiled (or taken from the artifact cache), a pull, a signature check —
told to whoever listens (the server's metrics). Process-wide, like the
engine and its cache; nobody listening costs a loop over an empty list."""

from __future__ import annotations

from collections.abc import Callable, Mapping

# `compile` {cached: "true"|"false"}, `pull` {scheme, outcome: "ok"|"error"},
# `signature_check` {status: the trust decision's status}; every event also
# names its tenant ("" for none) when it has one.
EVENTS = ("compile", "pull", "signature_check")

Listener = Callable[[str, Mapping[str, str]], None]
_listeners: list[Listener] = []


def listen(listener: Listener) -> None:
    _listeners.append(listener)


def emit(event: str, **labels: str) -> None:
    for listener in _listeners:
        listener(event, labels)
