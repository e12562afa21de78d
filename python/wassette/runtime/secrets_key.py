"""The key that encrypts a secrets directory at rest (`secrets.py`).

Where it is, first found wins: the key file when it exists (configured by
`secrets_store_key_file`, else `<secrets dir>.key`, so the default is
`$XDG_CONFIG_HOME/wassette/secrets.key`); with no configured file, the OS
keyring (the `keyring` package) when it has a usable backend; else a new key
file, 0600, made on first use with a warning that the key sits on disk.

A key is only ever made while no file in the directory is encrypted: a key
that went missing is reported, never silently replaced (which would make
every stored secret unreadable).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from wassette.runtime.errors import WassetteError
from wassette.runtime.state.sealed import SealError, key_id, new_key, parse_key
from wassette.runtime.store import write_atomic

log = logging.getLogger("wassette.secrets")

KEYRING_SERVICE = "wassette"
CONFIG_HINT = "secrets_store_key_file in config.toml or WASSETTE_SECRETS_STORE_KEY_FILE"


class SecretError(WassetteError):
    """A secret could not be read, written or parsed."""


def default_key_file(secrets_dir: Path) -> Path:
    """`<dir>.key` beside the directory: `.../wassette/secrets.key` for the default one."""
    return secrets_dir.parent / f"{secrets_dir.name}.key"


def _usable_keyring() -> Any | None:
    """The keyring backend, if one can keep a secret (not the fail/null ones
    a headless machine gets)."""
    try:
        import keyring
        from keyring.backends import chainer, fail, null

        backend = keyring.get_keyring()
    except Exception:  # a broken backend plugin must not stop the store
        return None
    if isinstance(backend, fail.Keyring | null.Keyring):
        return None
    if isinstance(backend, chainer.ChainerBackend) and not backend.backends:
        return None
    return backend


class SecretsKey:
    """Finds (or makes) the key of one secrets directory, once per process."""

    def __init__(self, secrets_dir: Path, key_file: Path | None = None) -> None:
        self.dir = secrets_dir
        self.configured = key_file is not None
        self.file = key_file if key_file is not None else default_key_file(secrets_dir)
        self._found: tuple[bytes, str] | None = None

    @property
    def keyring_user(self) -> str:
        return f"secrets key of {self.dir.resolve()}"

    def describe(self) -> str:
        """Where the key is looked for, for messages."""
        if self.configured or _usable_keyring() is None:
            return f"the key file {self.file}"
        return f"the key file {self.file} and the OS keyring ({KEYRING_SERVICE}: {self.keyring_user})"

    def get(self, *, may_create: Callable[[], bool]) -> tuple[bytes, str]:
        """The key and where it came from. `may_create`: asked only when there
        is no key; False (some file is already encrypted) makes it an error."""
        if self._found is not None:
            return self._found
        found = self._lookup()
        if found is None:
            if not may_create():
                raise SecretError(
                    f"the secrets in {self.dir} are encrypted, but their key is missing (looked in "
                    f"{self.describe()}). Restore the key file (or point {CONFIG_HINT} at it), or delete "
                    f"the files in {self.dir} and set the secrets again"
                )
            with self._creating():
                found = self._lookup() or self._create()
        self._found = found
        return found

    def key_id(self, *, may_create: Callable[[], bool]) -> str:
        return key_id(self.get(may_create=may_create)[0])

    def _lookup(self) -> tuple[bytes, str] | None:
        try:
            text = self.file.read_text(encoding="utf-8")
        except FileNotFoundError:
            text = None
        except OSError as e:
            raise SecretError(f"cannot read the secrets key file {self.file}: {e.strerror}") from None
        if text is not None:
            try:
                return parse_key(text, f"secrets key file {self.file}"), str(self.file)
            except SealError as e:
                raise SecretError(str(e)) from None
        if self.configured:
            return None
        backend = _usable_keyring()
        if backend is None:
            return None
        try:
            stored = backend.get_password(KEYRING_SERVICE, self.keyring_user)
        except Exception as e:  # a locked or unreachable keyring: say so, never guess a key
            log.warning(
                "the OS keyring could not be read (%s); looking for a key file instead", type(e).__name__
            )
            return None
        if stored is None:
            return None
        try:
            return parse_key(stored, "the OS keyring's secrets key"), "the OS keyring"
        except SealError as e:
            raise SecretError(str(e)) from None

    @contextlib.contextmanager
    def _creating(self) -> Iterator[None]:
        """Two processes making a key at once would each encrypt with their
        own: the second waits, then finds the first one's."""
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.dir / ".key.lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _create(self) -> tuple[bytes, str]:
        text = new_key()
        key = parse_key(text, "new key")
        backend = None if self.configured else _usable_keyring()
        if backend is not None:
            try:
                backend.set_password(KEYRING_SERVICE, self.keyring_user, text)
                if backend.get_password(KEYRING_SERVICE, self.keyring_user) == text:
                    log.info("made the key encrypting %s; it is in the OS keyring", self.dir)
                    return key, "the OS keyring"
            except Exception as e:  # fall back to a file, as on a machine without a keyring
                log.warning("the OS keyring could not store a key (%s)", type(e).__name__)
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_atomic(self.file, (text + "\n").encode(), mode=0o600)
        except OSError as e:
            raise SecretError(f"cannot write the secrets key file {self.file}: {e.strerror}") from None
        log.warning(
            "secrets in %s are now encrypted with a key stored in %s (no OS keyring is available): "
            "anyone who can read that file can decrypt them. Keep it 0600 and out of backups of the "
            "secrets (see docs/security.md)",
            self.dir,
            self.file,
        )
        return key, str(self.file)
