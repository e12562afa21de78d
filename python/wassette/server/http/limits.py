"""Rate limits per identity: `rate_limit_per_minute` tool calls for each
caller (the OAuth subject; with a static token or none, the client's
address), as token buckets (a burst of up to the limit, refilled evenly).

With a worker set the buckets live in a file of the set's directory, mapped
by every worker and each slot locked (a byte-range lock) while it is read
and written, so a caller's limit is one limit whichever workers its
connections reach. Alone, they live in a dict.
"""

from __future__ import annotations

import fcntl
import hashlib
import mmap
import os
import struct
import threading
import time
from pathlib import Path

# A slot: the identity's key (8 bytes of its hash; 0: free), tokens, last refill.
_SLOT = struct.Struct("<Qdd")
SLOTS = 4096
# Slots probed after the hashed one before sharing a bucket (a full table).
PROBES = 8


def _key(identity: str) -> int:
    return int.from_bytes(hashlib.blake2b(identity.encode(), digest_size=8).digest(), "little") or 1


def _spend(capacity: float, tokens: float, stamp: float, now: float) -> tuple[float, float]:
    """A bucket of `capacity` a minute, refilled since `stamp`, less one
    token: (tokens left, 0.0), or (tokens, seconds until one) when empty."""
    refill = capacity / 60.0
    tokens = min(capacity, tokens + max(0.0, now - stamp) * refill)
    if tokens >= 1.0:
        return tokens - 1.0, 0.0
    return tokens, (1.0 - tokens) / refill


class RateLimiter:
    def __init__(self, per_minute: int, shared: Path | None = None) -> None:
        self.capacity = float(per_minute)
        self._lock = threading.Lock()
        self._local: dict[str, tuple[float, float]] = {}
        self._fd = -1
        self._map: mmap.mmap | None = None
        if shared is not None:
            self._fd = os.open(shared, os.O_RDWR | os.O_CREAT, 0o600)
            if os.fstat(self._fd).st_size < SLOTS * _SLOT.size:
                os.ftruncate(self._fd, SLOTS * _SLOT.size)
            self._map = mmap.mmap(self._fd, SLOTS * _SLOT.size)

    def take(self, identity: str, per_minute: int = 0) -> float:
        """Takes a token for `identity` (whose limit is `per_minute`, when
        not the limiter's): 0.0 when it may go on, else the seconds until it
        may (Retry-After)."""
        now = time.time()  # wall clock: the same in every worker
        capacity = float(per_minute) if per_minute else self.capacity
        if self._map is None:
            with self._lock:
                tokens, stamp = self._local.get(identity, (capacity, now))
                tokens, wait = _spend(capacity, tokens, stamp, now)
                if len(self._local) >= 100_000 and identity not in self._local:
                    self._local.clear()  # a flood of identities: start over rather than grow
                self._local[identity] = (tokens, now)
            return wait
        return self._take_shared(_key(identity), capacity, now)

    def _take_shared(self, key: int, capacity: float, now: float) -> float:
        assert self._map is not None
        start = key % SLOTS
        for probe in range(PROBES):
            slot = (start + probe) % SLOTS
            offset = slot * _SLOT.size
            fcntl.lockf(self._fd, fcntl.LOCK_EX, _SLOT.size, offset)
            try:
                found, tokens, stamp = _SLOT.unpack_from(self._map, offset)
                if found not in (0, key) and probe < PROBES - 1:
                    continue  # another identity's: try the next slot
                if found != key:  # a free slot, or (table full) shared with another
                    tokens, stamp = capacity, now
                tokens, wait = _spend(capacity, tokens, stamp, now)
                _SLOT.pack_into(self._map, offset, key, tokens, now)
                return wait
            finally:
                fcntl.lockf(self._fd, fcntl.LOCK_UN, _SLOT.size, offset)
        return 0.0  # not reached: the last probe always answers
