"""Per-component secrets: `$XDG_CONFIG_HOME/wassette/secrets/<id>.yaml`.

One file per component in a 0700 directory, each file 0600, written
atomically, its values encrypted with AES-256-GCM (the `cryptography`
package) under the directory's key (`secrets_key.py`)::

    wassette-secrets: aes-256-gcm
    key: "1f0c2a9e4b7d"        # which key sealed it (a fingerprint)
    nonce: "<base64>"
    data: "<base64>"           # the KEY: value mapping as JSON, sealed

The component id is the associated data: a file copied to another id does
not open. A file in the old plain `KEY: value` form is read as it is and
rewritten encrypted at once (in place, by rename: a crash leaves the plain
file or the encrypted one). A component sees its own secrets as environment
variables and no other component's; values are never printed or logged.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import json
import logging
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from wassette.runtime.secrets_key import CONFIG_HINT, SecretError, SecretsKey
from wassette.runtime.state.sealed import NONCE_BYTES, key_id
from wassette.runtime.store import write_atomic

__all__ = ["SecretError", "SecretStore"]

log = logging.getLogger("wassette.secrets")

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Not a valid variable name (the hyphen), so no plain file can be mistaken for one.
MARKER = "wassette-secrets"
CIPHER = "aes-256-gcm"


class SecretStore:
    """`locked`: the component directory's lock (a change of secrets is a
    change of the state, and with a shared state one of its transactions).
    `key_file`: where the key is (None: keyring, else `<dir>.key`)."""

    def __init__(
        self,
        directory: Path,
        locked: Callable[[], contextlib.AbstractContextManager[None]] | None = None,
        key_file: Path | None = None,
    ) -> None:
        self.dir = directory
        self._locked = locked or contextlib.nullcontext
        self.key = SecretsKey(directory, key_file)

    def path(self, component_id: str) -> Path:
        """The component's secrets file (it may not exist)."""
        return self.dir / f"{component_id}.yaml"

    def get(self, component_id: str) -> dict[str, str]:
        values, plain = self._read(component_id)
        if plain is not None:
            self._migrate(component_id, plain, values)
        return values

    def set(self, component_id: str, values: dict[str, str]) -> list[str]:
        for key in values:
            if not _KEY.match(key):
                raise SecretError(f"{key!r} is not a valid variable name")
        with self._locked():
            self.replace(component_id, {**self._read(component_id)[0], **values})
        return sorted(values)

    def delete(self, component_id: str, keys: list[str]) -> list[str]:
        with self._locked():
            current = self._read(component_id)[0]
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
        with self._writing():
            self._write(component_id, values)

    # -- reading -----------------------------------------------------------------

    def _read(self, component_id: str) -> tuple[dict[str, str], bytes | None]:
        """The secrets, and the file's bytes when it is still in plain text."""
        path = self.path(component_id)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return {}, None
        except OSError as e:
            raise SecretError(f"cannot read secrets of {component_id}: {e.strerror}") from None
        import yaml

        try:
            doc = yaml.safe_load(raw.decode("utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError):
            raise _corrupt(path, component_id, "not valid YAML") from None
        if isinstance(doc, dict) and MARKER in doc:
            return self._open(path, component_id, doc), None
        return _flat(doc, path, component_id), raw

    def _open(self, path: Path, component_id: str, doc: dict[Any, Any]) -> dict[str, str]:
        if doc.get(MARKER) != CIPHER:
            raise _corrupt(path, component_id, f"unknown encryption {doc.get(MARKER)!r}")
        try:
            nonce = base64.b64decode(str(doc["nonce"]), validate=True)
            data = base64.b64decode(str(doc["data"]), validate=True)
            sealed_by = str(doc["key"])
        except (KeyError, binascii.Error):
            raise _corrupt(
                path, component_id, "its nonce, data or key field is missing or not base64"
            ) from None
        if len(nonce) != NONCE_BYTES:
            raise _corrupt(path, component_id, "bad nonce")
        key, source = self.key.get(may_create=lambda: False)
        if sealed_by != key_id(key):
            raise SecretError(
                f"cannot read the secrets of {component_id}: {path} was encrypted with key {sealed_by}, "
                f"but the key in {source} is {key_id(key)}. Restore the key that was used (or point "
                f"{CONFIG_HINT} at it), or delete {path} and set the secrets again"
            )
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        try:
            plain = AESGCM(key).decrypt(nonce, data, _context(component_id))
        except InvalidTag:
            raise _corrupt(
                path, component_id, "it does not decrypt: altered, or copied from another id"
            ) from None
        try:
            values = json.loads(plain)
        except ValueError:
            raise _corrupt(path, component_id, "its decrypted content is not JSON") from None
        return _flat(values, path, component_id)

    def _migrate(self, component_id: str, plain: bytes, values: dict[str, str]) -> None:
        """Rewrites a plain-text file encrypted, unless it changed since it was
        read (its writer encrypted it). A store that cannot be written still
        serves what it read."""
        try:
            with self._writing():
                try:
                    if self.path(component_id).read_bytes() != plain:
                        return
                except FileNotFoundError:
                    return
                self._write(component_id, values)
        except SecretError as e:
            log.warning("the plain-text secrets of %s stay unencrypted for now: %s", component_id, e)
            return
        log.info("encrypted the plain-text secrets file of %s", component_id)

    # -- writing -----------------------------------------------------------------

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """The directory's own lock around each write, so a migration never
        puts back values a concurrent `set` has just changed."""
        try:
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(self.dir, 0o700)
            lock = open(self.dir / ".secrets.lock", "a+b")  # noqa: SIM115 (held across the yield)
        except OSError as e:
            raise SecretError(f"cannot write secrets in {self.dir}: {e.strerror}") from None
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _write(self, component_id: str, values: dict[str, str]) -> None:
        if not values:
            self.remove_all(component_id)
            return
        key, _ = self.key.get(may_create=self._none_encrypted)
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        nonce = os.urandom(NONCE_BYTES)
        plain = json.dumps(dict(sorted(values.items())), ensure_ascii=False).encode()
        sealed = AESGCM(key).encrypt(nonce, plain, _context(component_id))
        text = (
            "# wassette secrets, encrypted: change them with `wassette secret set|delete`\n"
            f"{MARKER}: {CIPHER}\n"  # quoted below: a hex or base64 text may read as a YAML number
            f'key: "{key_id(key)}"\n'
            f'nonce: "{base64.b64encode(nonce).decode()}"\n'
            f'data: "{base64.b64encode(sealed).decode()}"\n'
        )
        try:
            write_atomic(self.path(component_id), text.encode(), mode=0o600)
        except OSError as e:
            raise SecretError(f"cannot write secrets of {component_id}: {e.strerror}") from None

    def _none_encrypted(self) -> bool:
        """True when no file here is encrypted (so a new key orphans nothing)."""
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return True
        except OSError as e:
            raise SecretError(f"cannot list {self.dir}: {e.strerror}") from None
        for name in names:
            if name.endswith(".yaml"):
                with contextlib.suppress(OSError), open(self.dir / name, "rb") as f:
                    if f"\n{MARKER}: ".encode() in f.read(4096):
                        return False
        return True


def _flat(doc: Any, path: Path, component_id: str) -> dict[str, str]:
    if not isinstance(doc, dict) or not all(isinstance(k, str) for k in doc):
        raise _corrupt(path, component_id, "expected a flat mapping of KEY: value")
    return {k: "" if v is None else str(v) for k, v in doc.items()}


def _corrupt(path: Path, component_id: str, why: str) -> SecretError:
    # Never the content: it may be a secret.
    return SecretError(
        f"the secrets file {path} is corrupt ({why}): delete it and set the secrets of {component_id} again"
    )


def _context(component_id: str) -> bytes:
    return f"wassette secrets file\0{component_id}".encode()
