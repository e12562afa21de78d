"""Loading the MCP SDK while the fast paths already answer.

Importing the SDK takes ~0.8 s (its protocol types are pydantic models built
at import). Both transports answer the handshake, tools/list and component
calls without it, and load it only when (stdio) or as soon as (HTTP) the
server is up.
"""

from __future__ import annotations

import contextlib
import gc
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def prompt_switches() -> Iterator[None]:
    """While a thread imports, let the answering threads have the GIL often."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def freeze_loaded() -> None:
    """Takes what is in memory now (the SDK's modules and pydantic models:
    ~80 000 objects) out of future garbage collections, which would otherwise
    walk it all: a full collection took 25-30 ms, a stall for every request
    in flight."""
    gc.freeze()
