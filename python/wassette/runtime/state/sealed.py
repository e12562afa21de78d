"""Secrets at rest in the shared state: each value sealed with AES-256-GCM
(the `cryptography` package) under a key the replicas get from the
environment (`WASSETTE_SECRETS_KEY`) or a mounted file (`secrets_key_file`),
never from the database.

The component id and the variable name are the associated data: a sealed
value moved to another row does not open. Each row names the key it was
sealed with (a short fingerprint), so a replica with another key says so.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from typing import NamedTuple

from wassette.runtime.errors import WassetteError

KEY_BYTES = 32
NONCE_BYTES = 12


class SealError(WassetteError):
    """A secret cannot be sealed or opened (no key, another key, tampered)."""


class Sealed(NamedTuple):
    key_id: str
    nonce: bytes
    ciphertext: bytes


def parse_key(text: str, where: str) -> bytes:
    """A key as written: 32 bytes in base64 (standard or URL-safe) or hex."""
    text = text.strip()
    for decode in (
        lambda t: base64.b64decode(t, validate=True),
        lambda t: base64.urlsafe_b64decode(t + "=" * (-len(t) % 4)),
        bytes.fromhex,
    ):
        try:
            key = decode(text)
        except (ValueError, binascii.Error):
            continue
        if len(key) == KEY_BYTES:
            return key
    raise SealError(
        f"{where}: expected a {KEY_BYTES}-byte key in base64 or hex (make one with `wassette state new-key`)"
    )


def new_key() -> str:
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"wassette secrets key\0" + key).hexdigest()[:12]


class SecretBox:
    """Seals and opens values with one key (or refuses, without one)."""

    def __init__(self, key: bytes | None, source: str) -> None:
        self._key = key
        self.source = source
        self.key_id = key_id(key) if key is not None else None

    def _aead(self, doing: str) -> object:
        if self._key is None:
            raise SealError(
                f"cannot {doing} secrets in the shared state: no key (set WASSETTE_SECRETS_KEY or "
                "secrets_key_file on every replica)"
            )
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        return AESGCM(self._key)

    def seal(self, component_id: str, name: str, value: str) -> Sealed:
        aead = self._aead("store")
        nonce = os.urandom(NONCE_BYTES)
        data = aead.encrypt(nonce, value.encode(), _context(component_id, name))  # type: ignore[attr-defined]
        assert self.key_id is not None
        return Sealed(self.key_id, nonce, data)

    def open(self, component_id: str, name: str, sealed: Sealed) -> str:
        aead = self._aead("read")
        if sealed.key_id != self.key_id:
            raise SealError(
                f"secret {name} of {component_id} was sealed with key {sealed.key_id}; this replica's key "
                f"({self.source}) is {self.key_id}"
            )
        from cryptography.exceptions import InvalidTag

        try:
            plain: bytes = aead.decrypt(sealed.nonce, sealed.ciphertext, _context(component_id, name))  # type: ignore[attr-defined]
        except InvalidTag:
            raise SealError(
                f"secret {name} of {component_id} does not open: altered in the database"
            ) from None
        return plain.decode()


def _context(component_id: str, name: str) -> bytes:
    return f"wassette secret\0{component_id}\0{name}".encode()
