"""How `wassette serve` listens and answers: address, allowed hosts, the
static token or OAuth, worker processes, rate limit, /metrics. One part of
the configuration (config.py reads the rest); same precedence: flag, then
`WASSETTE_*` environment variable, then config.toml, then the default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from wassette.runtime.config_schema import MAX_WORKERS, Document, parse_bool, split_host
from wassette.runtime.errors import ConfigError

DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024
DEFAULT_BIND_ADDRESS = "127.0.0.1:9001"


def parse_bind_address(text: str) -> tuple[str, int]:
    """`host:port`, `[v6]:port`, `:port` or `host` (default port 9001)."""
    try:
        host, port = ("", int(text[1:])) if text.startswith(":") else split_host(text)
    except ValueError:
        raise ConfigError(f"bind address {text!r}: expected HOST:PORT, e.g. 127.0.0.1:9001") from None
    if port is None:
        port = int(DEFAULT_BIND_ADDRESS.rsplit(":", 1)[1])
    if not 0 <= port <= 65535:
        raise ConfigError(f"bind address {text!r}: port out of range")
    return host or "127.0.0.1", port


DEFAULT_OAUTH_ALGORITHMS = ("RS256", "ES256", "EdDSA")
DEFAULT_OAUTH_SCOPES = {
    "tools": "wassette:tools",
    "components": "wassette:components",
    "grants": "wassette:grants",
    "audit": "wassette:audit",
}


class OAuthSettings(NamedTuple):
    """`serve` as an OAuth 2.1 resource server: tokens from `issuer`, for
    `resource` (their audience), signed with a key of the issuer's JWKS."""

    issuer: str
    resource: str
    jwks_uri: str | None = None
    algorithms: tuple[str, ...] = DEFAULT_OAUTH_ALGORITHMS
    clock_skew_s: int = 60
    # A token naming a key not in the cached JWKS refetches it at most this often.
    jwks_min_refresh_s: int = 10
    # right -> scope
    scopes: Mapping[str, str] = MappingProxyType(DEFAULT_OAUTH_SCOPES)


class ServeSettings(NamedTuple):
    """How `wassette serve` listens and answers."""

    host: str = "127.0.0.1"
    port: int = 9001
    allowed_hosts: tuple[str, ...] = ()
    auth_token: str | None = None
    legacy_sessions: bool = True
    json_response: bool = False
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    # Worker processes serving HTTP (1: this process serves, as it always did).
    workers: int = 1
    # OAuth 2.1 resource server (None: the static token, or no auth).
    oauth: OAuthSettings | None = None
    # /metrics without a token (else behind the same auth as everything).
    metrics_public: bool = False
    # Tool calls a minute per caller (0: no limit).
    rate_limit_per_minute: int = 0
    # SEP-1699 polling: a call's event stream is ended after this long and
    # the client resumes it (server/http/resume.py); 0: never.
    sse_poll_after_ms: int = 0

    def __repr__(self) -> str:  # the token stays out of logs and tracebacks
        shown = self._replace(auth_token="***" if self.auth_token else None)
        return (
            "ServeSettings(" + ", ".join(f"{k}={v!r}" for k, v in zip(self._fields, shown, strict=True)) + ")"
        )


def serve_settings(env: Mapping[str, str], doc: Document, flags: Mapping[str, Any]) -> ServeSettings:
    """Flag > environment (`WASSETTE_BIND_ADDRESS`, or `BIND_HOST` and
    `PORT`; `WASSETTE_ALLOWED_HOSTS`, `WASSETTE_AUTH_TOKEN`) > config.toml >
    defaults."""
    if flags.get("bind_address"):
        host, port = parse_bind_address(flags["bind_address"])
    elif env.get("WASSETTE_BIND_ADDRESS"):
        host, port = parse_bind_address(env["WASSETTE_BIND_ADDRESS"])
    else:
        host, port = parse_bind_address(doc.get("bind_address", DEFAULT_BIND_ADDRESS))
        host = env.get("BIND_HOST") or host
        if env.get("PORT"):
            try:
                port = int(env["PORT"])
            except ValueError:
                raise ConfigError(f"PORT={env['PORT']!r} is not a port number") from None
    hosts: Sequence[str] = flags.get("allowed_hosts") or ()
    if not hosts and env.get("WASSETTE_ALLOWED_HOSTS"):
        hosts = env["WASSETTE_ALLOWED_HOSTS"].split(",")
    if not hosts:
        hosts = doc.get("allowed_hosts", [])
    limit = flags.get("max_request_bytes")
    if limit is not None and (not isinstance(limit, int) or limit <= 0):
        raise ConfigError(f"max request size must be a positive number of bytes, got {limit!r}")
    workers = _workers(flags.get("workers") or env.get("WASSETTE_WORKERS") or doc.get("workers", "auto"))
    poll_after = _poll_after(env.get("WASSETTE_SSE_POLL_AFTER_MS") or doc.get("sse_poll_after_ms"))
    return ServeSettings(
        host=host,
        port=port,
        allowed_hosts=tuple(h.strip() for h in hosts if h.strip()),
        auth_token=flags.get("auth_token") or env.get("WASSETTE_AUTH_TOKEN") or None,
        legacy_sessions=flags.get("legacy_sessions", True),
        json_response=flags.get("json_response", False),
        max_request_bytes=limit or doc.get("max_request_bytes", DEFAULT_MAX_REQUEST_BYTES),
        workers=workers,
        oauth=_oauth(env, doc, flags, host, port),
        metrics_public=flag(
            env.get("WASSETTE_METRICS_PUBLIC") or doc.get("metrics_public"), "metrics_public"
        ),
        rate_limit_per_minute=_rate_limit(
            env.get("WASSETTE_RATE_LIMIT_PER_MINUTE") or doc.get("rate_limit_per_minute")
        ),
        sse_poll_after_ms=poll_after,
    )


def _whole(value: object, most: int, problem: str) -> int:
    """A whole number from 0 to `most` (unset: 0); else ConfigError(problem)."""
    if value is None or value == "":
        return 0
    try:
        number = int(str(value))
    except ValueError:
        number = -1
    if not 0 <= number <= most:
        raise ConfigError(f"{problem}, got {value!r}")
    return number


def _poll_after(value: object) -> int:
    return _whole(value, 3_600_000, "sse_poll_after_ms must be milliseconds from 0 (never) to 3600000")


def _rate_limit(value: object) -> int:
    return _whole(value, 2**63, "rate_limit_per_minute must be a number of calls (0: no limit)")


def _oauth(
    env: Mapping[str, str], doc: Document, flags: Mapping[str, Any], host: str, port: int
) -> OAuthSettings | None:
    def pick(key: str, flag: str | None = None, var: str | None = None) -> Any:
        return (flags.get(flag) if flag else None) or (env.get(var) if var else None) or doc.get(key)

    issuer = pick("oauth_issuer", "oauth_issuer", "WASSETTE_OAUTH_ISSUER")
    if not issuer:
        return None
    for name, value in (("issuer", issuer),):
        parts = urlsplit(str(value))
        loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
        if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
            raise ConfigError(f"oauth {name} {value!r}: expected an https:// URL (http:// only on loopback)")
    if flags.get("auth_token") or env.get("WASSETTE_AUTH_TOKEN"):
        raise ConfigError("choose one: an OAuth issuer or a static bearer token (--auth-token)")
    resource = pick("oauth_resource", "oauth_resource", "WASSETTE_OAUTH_RESOURCE") or (
        f"http://{host}:{port}/mcp"
    )
    algorithms = tuple(doc.get("oauth_algorithms") or DEFAULT_OAUTH_ALGORITHMS)
    if not algorithms or any(a.lower() == "none" or a.startswith("HS") for a in algorithms):
        raise ConfigError(
            "oauth_algorithms: only asymmetric signatures (RS*, PS*, ES*, EdDSA) are accepted, never none or HS*"
        )
    return OAuthSettings(
        issuer=str(issuer),
        resource=str(resource),
        jwks_uri=pick("oauth_jwks_uri", None, "WASSETTE_OAUTH_JWKS_URI"),
        algorithms=algorithms,
        clock_skew_s=int(doc.get("oauth_clock_skew_s", 60)),
        jwks_min_refresh_s=int(doc.get("oauth_jwks_min_refresh_s", 10)),
        scopes=MappingProxyType({**DEFAULT_OAUTH_SCOPES, **doc.get("oauth_scopes", {})}),
    )


def usable_cores(cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """The cores this process may use: those it may run on (its affinity,
    e.g. a container's cpuset), at most its cgroup's CPU quota rounded up
    (a Kubernetes CPU limit: 1.5 cores of a 64-core node are 2)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:
        quota, period = cpu_max.read_text().split()[:2]
        if quota != "max":
            cores = min(cores, -(-int(quota) // int(period)))
    except (OSError, ValueError):
        pass  # no cgroup v2 quota here
    return max(1, cores)


def _workers(value: object) -> int:
    """`auto` (one per usable core) or a number of processes."""
    if value == "auto":
        return min(usable_cores(), MAX_WORKERS)
    try:
        count = int(str(value))
    except ValueError:
        count = 0
    if not 1 <= count <= MAX_WORKERS:
        raise ConfigError(f"workers must be 'auto' or a number from 1 to {MAX_WORKERS}, got {value!r}")
    return count


def flag(value: Any, key: str) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    try:
        return parse_bool(str(value))
    except ValueError:
        raise ConfigError(f"{key} must be true or false, got {value!r}") from None
