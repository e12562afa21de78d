"""`serve` as an OAuth 2.1 resource server, as the MCP authorization spec
describes: protected-resource metadata (RFC 9728), access tokens checked
against the issuer's keys (PyJWT: the signature with an allow-listed
algorithm, `iss`, `aud` = this server's resource URI per RFC 8707, `exp` and
`nbf` with a bounded leeway), and scopes mapped to rights.

The issuer's JWKS is fetched once and kept; a token naming a key it lacks
makes it fetch again (at most every `oauth_jwks_min_refresh_s`), so keys rotate without
a restart and a flood of made-up key ids costs no fetch per request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
import urllib.request
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit, urlunsplit

from wassette.runtime.builtin_tools import RIGHT_OF
from wassette.runtime.serve_config import OAuthSettings
from wassette.server.http.guard import METADATA_PATH

log = logging.getLogger("wassette.http")

# Longer tokens are refused unread (a bound on the work a request can cause).
MAX_TOKEN_BYTES = 16 * 1024
JWKS_MAX_AGE_S = 3600.0
FETCH_TIMEOUT_S = 5.0
MAX_DOCUMENT_BYTES = 1024 * 1024


class Identity(NamedTuple):
    """Who a valid token speaks for, and what it may do."""

    subject: str
    scopes: frozenset[str]
    claims: dict[str, Any]
    # The tenant the token's claims name (config [tenants]; None: no tenants).
    tenant: str | None = None

    @property
    def owner(self) -> str:
        """Whose sessions these are: the subject, within its tenant."""
        return self.subject if self.tenant is None else f"{self.tenant}/{self.subject}"


class InvalidToken(Exception):
    """The token cannot be used (the message says why, to the client too)."""


def required_right(message: Any) -> str | None:
    """The right a JSON-RPC message needs beyond a valid token: calling a
    tool needs `tools`; the built-in tools that load or unload need
    `components`, those that grant, revoke or reset need `grants`."""
    if not isinstance(message, dict) or message.get("method") != "tools/call":
        return None
    params = message.get("params")
    name = params.get("name") if isinstance(params, dict) else None
    return RIGHT_OF.get(name, "tools") if isinstance(name, str) else "tools"


class TokenVerifier:
    def __init__(self, settings: OAuthSettings, ca_bundle: Path | None = None) -> None:
        self.settings = settings
        self._ssl = ssl.create_default_context(cafile=str(ca_bundle) if ca_bundle else None)
        self._keys: dict[str, Any] = {}  # kid -> PyJWK
        self._fetched_at = 0.0
        self._jwks_uri = settings.jwks_uri
        self._lock = asyncio.Lock()

    # -- what clients are told -------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        """RFC 9728: where tokens come from and what scopes mean here."""
        scopes = self.settings.scopes
        return {
            "resource": self.settings.resource,
            "authorization_servers": [self.settings.issuer],
            "scopes_supported": [scopes[r] for r in ("tools", "components", "grants", "audit")],
            "bearer_methods_supported": ["header"],
            "resource_name": "Wassette MCP server",
        }

    @property
    def metadata_url(self) -> str:
        """Where the metadata of this resource is (RFC 9728: the well-known
        path, then the resource's own path)."""
        parts = urlsplit(self.settings.resource)
        path = METADATA_PATH + parts.path.rstrip("/")
        return urlunsplit((parts.scheme, parts.netloc, path, "", ""))

    def scope_of(self, right: str) -> str:
        return self.settings.scopes[right]

    # -- checking a token ----------------------------------------------------------------

    async def verify(self, token: str) -> Identity:
        import jwt

        if len(token) > MAX_TOKEN_BYTES:
            raise InvalidToken("token too long")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("not a JWT") from None
        alg = header.get("alg")
        if alg not in self.settings.algorithms:
            raise InvalidToken(f"signature algorithm {str(alg)[:20]!r} is not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid or len(kid) > 256:
            raise InvalidToken("the token names no key (kid)")
        key = await self._key(kid)
        if key is None:
            raise InvalidToken("the token is signed with a key the issuer does not publish")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=self.settings.resource,
                issuer=self.settings.issuer,
                leeway=self.settings.clock_skew_s,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise InvalidToken("the token is not valid yet") from None
        except jwt.InvalidAudienceError:
            raise InvalidToken(f"the token is not for this resource ({self.settings.resource})") from None
        except jwt.InvalidIssuerError:
            raise InvalidToken("the token is from another issuer") from None
        except jwt.InvalidSignatureError:
            raise InvalidToken("bad signature") from None
        except jwt.PyJWTError as e:
            raise InvalidToken(f"invalid token: {str(e)[:200]}") from None
        return Identity(str(claims["sub"]), _scopes(claims), claims)

    async def _key(self, kid: str) -> Any:
        key = self._keys.get(kid)
        stale = time.monotonic() - self._fetched_at > JWKS_MAX_AGE_S
        if key is not None and not stale:
            return key
        async with self._lock:
            key = self._keys.get(kid)
            since = time.monotonic() - self._fetched_at
            wait = self.settings.jwks_min_refresh_s if key is None else JWKS_MAX_AGE_S
            if (key is None or stale) and since > wait:
                try:
                    self._keys = await asyncio.to_thread(self._fetch_keys)
                except (OSError, ValueError) as e:
                    log.error("cannot fetch the issuer's keys: %s", e)  # kept: the old keys
                self._fetched_at = time.monotonic()
                key = self._keys.get(kid)
        return key

    def _fetch_keys(self) -> dict[str, Any]:
        import jwt

        if self._jwks_uri is None:
            self._jwks_uri = self._discover()
        document = self._get(self._jwks_uri)
        keys: dict[str, Any] = {}
        for entry in document.get("keys", []) if isinstance(document, dict) else []:
            if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
                continue
            if entry.get("use", "sig") != "sig":
                continue
            try:
                keys[entry["kid"]] = jwt.PyJWK(entry)
            except jwt.PyJWTError as e:
                log.warning("skipping key %r of the issuer: %s", entry["kid"][:64], e)
        log.info("issuer keys: %d from %s", len(keys), self._jwks_uri)
        return keys

    def _discover(self) -> str:
        """RFC 8414 metadata (then OpenID Connect's) names the JWKS."""
        parts = urlsplit(self.settings.issuer)
        path = parts.path.rstrip("/")
        for well_known in ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"):
            url = urlunsplit((parts.scheme, parts.netloc, well_known + path, "", ""))
            try:
                document = self._get(url)
            except (OSError, ValueError):
                continue
            if isinstance(document, dict) and isinstance(document.get("jwks_uri"), str):
                return str(document["jwks_uri"])
        raise ValueError(f"the issuer {self.settings.issuer} publishes no jwks_uri in its metadata")

    def _get(self, url: str) -> Any:
        if not url.startswith(("https://", "http://")):
            raise ValueError(f"not an http(s) URL: {url[:100]}")
        request = urllib.request.Request(url, headers={"accept": "application/json"})
        with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT_S, context=self._ssl) as response:
            return json.loads(response.read(MAX_DOCUMENT_BYTES + 1)[:MAX_DOCUMENT_BYTES])


def _scopes(claims: dict[str, Any]) -> frozenset[str]:
    """`scope` (RFC 8693/9068: space-separated) or `scp` (a list, as some issuers send)."""
    value = claims.get("scope", claims.get("scp", ""))
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list):
        return frozenset(s for s in value if isinstance(s, str))
    return frozenset()
