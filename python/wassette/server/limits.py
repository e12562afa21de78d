"""Request size limit shared by the transports (config key `max_request_bytes`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wassette.runtime.errors import ConfigError

DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024


def max_request_bytes(config: Mapping[str, Any], flag: int | None = None) -> int:
    """The largest request accepted: flag > config.toml > 4 MiB."""
    limit = flag if flag is not None else config.get("max_request_bytes", DEFAULT_MAX_REQUEST_BYTES)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit <= 0:
        raise ConfigError(f"max request size must be a positive number of bytes, got {limit!r}")
    return limit
