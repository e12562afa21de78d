"""Errors the runtime raises. Each carries a one-line, user-facing message."""

from __future__ import annotations


class WassetteError(Exception):
    """Base of every error meant to be shown to a user as one line."""


class ConfigError(WassetteError):
    """The configuration (file, flags or environment) is invalid."""


class SourceError(WassetteError):
    """A component could not be fetched from its URI."""


class InvalidComponentError(WassetteError):
    """The bytes are not a usable WebAssembly component."""


class UnknownComponentError(WassetteError):
    """No component with that id is loaded."""

    def __init__(self, component_id: str) -> None:
        super().__init__(f"no component with id {component_id!r} is loaded (see `wassette component list`)")
        self.component_id = component_id


class UnknownToolError(WassetteError):
    """No tool with that name exists."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no tool named {name!r} (see `wassette tool list`)")
        self.name = name


class PolicyError(WassetteError):
    """A policy document is invalid; the message names file, field and problem."""


class StoreError(WassetteError):
    """The component directory could not be read or written."""
