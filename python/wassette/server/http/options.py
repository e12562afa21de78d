"""How `wassette serve` serves HTTP (HttpOptions, from the settings), its
paths, and the line that says where it listens."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

from wassette.runtime.config import ConfigError, Settings
from wassette.runtime.serve_config import OAuthSettings
from wassette.server.http.guard import LOOPBACK_HOSTS, HostAllowlist

log = logging.getLogger("wassette.http")

MCP_PATH = "/mcp"
# The newest audit records, as JSON (with OAuth: the `audit` right).
AUDIT_PATH = "/audit"
MAX_AUDIT_RECORDS = 10_000
# Prometheus metrics (with OAuth: the `audit` right; `metrics_public`: no token).
METRICS_PATH = "/metrics"
SSE_PATH = "/sse"
# At SIGTERM, requests in flight get this long to finish; those still
# running a second before the end are stopped and answered with why.
DRAIN_S = 10

Transport = Literal["streamable-http", "sse"]


@dataclass(frozen=True)
class HttpOptions:
    host: str = "127.0.0.1"
    port: int = 9001
    transport: Transport = "streamable-http"
    allowed_hosts: tuple[str, ...] = ()
    auth_token: str | None = field(default=None, repr=False)
    legacy_sessions: bool = True
    json_response: bool = False
    max_request_bytes: int = 4 * 1024 * 1024
    oauth: OAuthSettings | None = None
    ca_bundle: str | None = None
    metrics_public: bool = False
    rate_limit_per_minute: int = 0
    sse_poll_after_ms: int = 0
    # The web console at /console (`--console`; wassette/console).
    console: bool = False

    @classmethod
    def from_settings(cls, settings: Settings, *, transport: Transport = "streamable-http") -> HttpOptions:
        """Where and how to serve, as the configuration says (flags,
        environment and config.toml were merged into `settings.serve`)."""
        serve = settings.serve
        try:
            HostAllowlist(serve.allowed_hosts)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        options = cls(
            host=serve.host,
            port=serve.port,
            transport=transport,
            allowed_hosts=serve.allowed_hosts,
            auth_token=serve.auth_token,
            legacy_sessions=serve.legacy_sessions,
            json_response=serve.json_response,
            max_request_bytes=serve.max_request_bytes,
            oauth=serve.oauth,
            metrics_public=serve.metrics_public,
            rate_limit_per_minute=serve.rate_limit_per_minute,
            sse_poll_after_ms=serve.sse_poll_after_ms,
            ca_bundle=str(settings.ca_bundle) if settings.ca_bundle else None,
        )
        check_tenancy(settings, options)
        return options

    @property
    def path(self) -> str:
        return SSE_PATH if self.transport == "sse" else MCP_PATH


def check_tenancy(settings: Settings, options: HttpOptions) -> None:
    if settings.tenancy is None:
        return
    if options.oauth is None:
        raise ConfigError("[tenants] needs OAuth (oauth_issuer): a tenant is named by the caller's token")
    if settings.tenant is not None:
        raise ConfigError("--tenant serves one tenant's state: it cannot be combined with [tenants]")


def announcement(options: HttpOptions, host: str, port: int) -> str:
    """The line that says where the server listens (after any warning about how)."""
    if host not in LOOPBACK_HOSTS:
        if options.auth_token is None:
            log.warning("listening on %s without an auth token: whoever reaches it can use every tool", host)
        if not options.allowed_hosts:
            log.warning("only requests naming a loopback host are served; add --allowed-host for others")
    shown = f"[{host}]" if ":" in host else host
    return f"serving MCP ({options.transport}) at http://{shown}:{port}{options.path}"
