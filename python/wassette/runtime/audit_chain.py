"""The audit log's hash chain and signed checkpoints (pure logic).

Each record carries `chain: {seq, prev, hash}`: its number in the log
(from 0), the hash of the record before it (GENESIS for the first), and
SHA-256 over the canonical JSON of the record without `chain.hash`
(sorted keys, no spaces, UTF-8). A `checkpoint` record also carries an
Ed25519 signature (`sig`) over the same canonical form without `sig`, so
it signs "the chain up to `seq` ends in `prev`" with a key kept outside
the log (config `audit_key_file`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

GENESIS = "0" * 64
CHECKPOINT = "checkpoint"


# One encoder for every record: json.dumps with options builds a new one per call.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical(value: Any) -> bytes:
    # surrogatepass: a path that is no valid Unicode still hashes (the same
    # way on both sides) instead of failing the write.
    return _CANONICAL.encode(value).encode("utf-8", "surrogatepass")


def _unhashed(record: dict[str, Any]) -> dict[str, Any]:
    chain = record["chain"]
    return {**record, "chain": {"seq": chain["seq"], "prev": chain["prev"]}}


def record_hash(record: dict[str, Any]) -> str:
    """The hash a chained record must carry (`chain.hash` itself left out)."""
    return hashlib.sha256(canonical(_unhashed(record))).hexdigest()


def signed_part(record: dict[str, Any]) -> bytes:
    """What a checkpoint's signature covers: the record without `sig` and `chain.hash`."""
    part = _unhashed(record)
    part.pop("sig", None)
    return canonical(part)


def seal(entry: dict[str, Any], seq: int, prev: str) -> tuple[bytes, str]:
    """The line of a record at `seq` after `prev`, and its hash. The line is
    the canonical form with the hash put in (one encoding per record: the
    hot part of writing the log)."""
    entry["chain"] = {"seq": seq, "prev": prev}
    body = _CANONICAL.encode(entry)
    digest = hashlib.sha256(body.encode("utf-8", "surrogatepass")).hexdigest()
    entry["chain"]["hash"] = digest
    # Sorted keys, and quotes inside strings escaped: the first match is the
    # top-level `chain` (a nested one would have to hold this very prev).
    bare = f'"chain":{{"prev":"{prev}","seq":{seq}}}'
    line = body.replace(bare, f'"chain":{{"hash":"{digest}","prev":"{prev}","seq":{seq}}}', 1)
    try:
        return line.encode() + b"\n", digest
    except UnicodeEncodeError:  # a lone surrogate: \u escapes parse back to the same value
        return json.dumps(entry).encode() + b"\n", digest


def chained(record: Any) -> dict[str, Any] | None:
    """The `chain` of a record that has a well-formed one."""
    if not isinstance(record, dict):
        return None
    chain = record.get("chain")
    if (
        isinstance(chain, dict)
        and isinstance(chain.get("seq"), int)
        and not isinstance(chain.get("seq"), bool)
        and isinstance(chain.get("prev"), str)
        and isinstance(chain.get("hash"), str)
    ):
        return chain
    return None


class Head(NamedTuple):
    """The end of the chain: the last record's seq and hash (seq -1: none yet)."""

    seq: int
    hash: str
    checkpoint: bool = False


EMPTY = Head(-1, GENESIS)


def head_of(data: bytes) -> Head | None:
    """The last chained record in `data` (whole lines), if any."""
    for line in reversed(data.split(b"\n")):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a torn or foreign line: the chain goes on from the record before it
        chain = chained(record)
        if chain is not None:
            return Head(chain["seq"], chain["hash"], record.get("event") == CHECKPOINT)
    return None


def read_head(fd: int, size: int, chunk: int = 64 * 1024) -> Head:
    """The last chained record of a file, read backwards from its end."""
    position, tail = size, b""
    while position > 0:
        step = min(chunk, position)
        position -= step
        data = os.pread(fd, step, position) + tail
        if position > 0:  # the first line may start in the chunk before
            cut = data.find(b"\n")
            if cut < 0:
                tail = data
                continue
            whole, tail = data[cut + 1 :], data[: cut + 1]
        else:
            whole, tail = data, b""
        head = head_of(whole)
        if head is not None:
            return head
    return EMPTY


# -- the signing key -------------------------------------------------------------


def key_id(public: Ed25519PublicKey) -> str:
    from cryptography.hazmat.primitives import serialization

    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_private_key(path: Path) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path}: not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """A public key (PEM), or the public half of a private key file."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    data = path.read_bytes()
    if b"PRIVATE KEY" in data:
        return load_private_key(path).public_key()
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path}: not an Ed25519 public key")
    return key


def ensure_key(path: Path) -> Ed25519PrivateKey:
    """The private key at `path`, made (mode 0600) if there is none yet."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if path.exists():
        return load_private_key(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mode 0600
    temp = Path(name)
    try:
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        # A link fails if another process made the key first: theirs is kept,
        # so every record of every process is signed by one key.
        os.link(temp, path)
    except FileExistsError:
        return load_private_key(path)
    finally:
        temp.unlink(missing_ok=True)
    return key


def sign(entry: dict[str, Any], key: Ed25519PrivateKey) -> None:
    """Adds `sig` to a checkpoint whose `chain` (seq, prev) is set."""
    entry["sig"] = base64.b64encode(key.sign(signed_part(entry))).decode()


def signature_ok(record: dict[str, Any], public: Ed25519PublicKey) -> bool:
    from cryptography.exceptions import InvalidSignature

    try:
        public.verify(base64.b64decode(str(record.get("sig", "")), validate=True), signed_part(record))
    except (InvalidSignature, ValueError):
        return False
    return True
