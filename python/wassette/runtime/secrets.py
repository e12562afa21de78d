"""Per-component secrets: `$XDG_CONFIG_HOME/wassette/secrets/<id>.yaml`.

Flat `KEY: value` files in a 0700 directory, each file 0600, written
atomically. A component sees its own secrets as environment variables and no
other component's; values are never printed or logged unless asked for.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable
from pathlib import Path

from wassette.runtime.errors import WassetteError
from wassette.runtime.store import write_atomic

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SecretError(WassetteError):
    """A secret could not be read, written or parsed."""


class SecretStore:
    """`locked`: the component directory's lock (a change of secrets is a
    change of the state, and with a shared state one of its transactions)."""

    def __init__(
        self, directory: Path, locked: Callable[[], contextlib.AbstractContextManager[None]] | None = None
    ) -> None:
        self.dir = directory
        self._locked = locked or contextlib.nullcontext

    def path(self, component_id: str) -> Path:
        """The component's secrets file (it may not exist)."""
        return self.dir / f"{component_id}.yaml"

    def get(self, component_id: str) -> dict[str, str]:
        path = self.path(component_id)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as e:
            raise SecretError(f"cannot read secrets of {component_id}: {e.strerror}") from None
        import yaml

        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError:
            raise SecretError(f"{path}: not valid YAML") from None
        if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
            raise SecretError(f"{path}: expected a flat mapping of KEY: value")
        return {k: "" if v is None else str(v) for k, v in data.items()}

    def set(self, component_id: str, values: dict[str, str]) -> list[str]:
        for key in values:
            if not _KEY.match(key):
                raise SecretError(f"{key!r} is not a valid variable name")
        with self._locked():
            self.replace(component_id, {**self.get(component_id), **values})
        return sorted(values)

    def delete(self, component_id: str, keys: list[str]) -> list[str]:
        with self._locked():
            current = self.get(component_id)
            missing = [k for k in keys if k not in current]
            if missing:
                raise SecretError(f"no secret {', '.join(missing)} for component {component_id}")
            for k in keys:
                del current[k]
            self.replace(component_id, current)
        return sorted(keys)

    def remove_all(self, component_id: str) -> None:
        self.path(component_id).unlink(missing_ok=True)

    def replace(self, component_id: str, values: dict[str, str]) -> None:
        """The component's secrets become exactly `values` (none: the file goes)."""
        import yaml

        try:
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(self.dir, 0o700)
            if not values:
                self.remove_all(component_id)
                return
            data = yaml.safe_dump(dict(sorted(values.items())), allow_unicode=True).encode()
            write_atomic(self.path(component_id), data, mode=0o600)
        except OSError as e:
            raise SecretError(f"cannot write secrets of {component_id}: {e.strerror}") from None
