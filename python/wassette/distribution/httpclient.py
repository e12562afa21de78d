"""A small HTTP(S) client for registries and https:// sources (stdlib only).

Why not urllib or httpx: we need exact control over three things that decide
safety here: plain http only for loopback and only when asked, credentials
dropped when a redirect leaves the origin (registries redirect blob downloads
to storage hosts), and bodies streamed with a hard size cap.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from wassette import __version__
from wassette.runtime.errors import SourceError

USER_AGENT = f"wassette-python/{__version__}"
INSECURE_HINT = (
    "pass --allow-insecure-loopback (or set WASSETTE_ALLOW_INSECURE_LOOPBACK=1) for a server on this machine"
)


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class Response:
    status: int
    headers: Mapping[str, str]
    url: str
    _raw: http.client.HTTPResponse | None = field(default=None, repr=False)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def chunks(self, size: int = 256 * 1024) -> Iterator[bytes]:
        raw = self._raw
        if raw is None:
            return
        try:
            while True:
                try:
                    data = raw.read(size)
                except http.client.IncompleteRead as e:
                    if e.partial:
                        yield e.partial
                    return
                except (OSError, http.client.HTTPException) as e:
                    raise SourceError(f"download from {_origin(self.url)} failed: {_reason(e)}") from None
                if not data:
                    return
                yield data
        finally:
            self.close()

    def read(self, limit: int) -> bytes:
        """The whole body; refuses bodies over `limit` bytes."""
        length = self.header("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            self.close()
            raise SourceError(f"{self.url}: response of {length} bytes is over the limit of {limit} bytes")
        out = bytearray()
        for chunk in self.chunks():
            out += chunk
            if len(out) > limit:
                self.close()
                raise SourceError(f"{self.url}: response is over the limit of {limit} bytes")
        return bytes(out)

    def close(self) -> None:
        if self._raw is not None:
            self._raw.close()
            self._raw = None


class HttpClient:
    """One client per operation; connections are not pooled (a pull makes a
    handful of requests, and a fresh connection never hits a stale socket)."""

    def __init__(
        self,
        *,
        ca_bundle: Path | None = None,
        allow_insecure_loopback: bool = False,
        timeout: float = 30.0,
    ) -> None:
        self.allow_insecure_loopback = allow_insecure_loopback
        self.timeout = timeout
        self.ca_bundle = ca_bundle
        self._ssl: ssl.SSLContext | None = None

    @property
    def ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            # The system's trust store (SSL_CERT_FILE / SSL_CERT_DIR are honoured),
            # plus a configured bundle for private CAs.
            ctx = ssl.create_default_context()
            if self.ca_bundle is not None:
                try:
                    ctx.load_verify_locations(cafile=str(self.ca_bundle))
                except (OSError, ssl.SSLError) as e:
                    raise SourceError(f"cannot read CA bundle {self.ca_bundle}: {_reason(e)}") from None
            self._ssl = ctx
        return self._ssl

    def check_url(self, url: str) -> None:
        """https everywhere; plain http only to loopback, and only when asked."""
        parts = urlsplit(url)
        if parts.scheme == "https":
            return
        if parts.scheme == "http":
            host = parts.hostname or ""
            if is_loopback(host) and self.allow_insecure_loopback:
                return
            if is_loopback(host):
                raise SourceError(f"plain http:// is refused for {url}: use https://, or {INSECURE_HINT}")
            raise SourceError(f"plain http:// is refused for {url}: use https://")
        raise SourceError(f"unsupported URL scheme in {url!r}")

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        max_redirects: int = 5,
    ) -> Response:
        """Sends a request, following redirects. The caller reads or closes
        the response. Raises SourceError for transport failures."""
        hdrs = {"User-Agent": USER_AGENT, **(headers or {})}
        for _ in range(max_redirects + 1):
            self.check_url(url)
            resp = self._send(method, url, hdrs, body)
            if resp.status not in (301, 302, 303, 307, 308):
                return resp
            location = resp.header("location")
            resp.close()
            if not location:
                raise SourceError(f"{url}: redirect without a Location header")
            target = urljoin(url, location)
            if _origin(target) != _origin(url):
                # Never hand registry credentials to another host.
                hdrs = {k: v for k, v in hdrs.items() if k.lower() != "authorization"}
            if resp.status == 303 or (resp.status in (301, 302) and method == "POST"):
                method, body = "GET", None
            url = target
        raise SourceError(f"{url}: too many redirects")

    def _send(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None) -> Response:
        parts = urlsplit(url)
        host = parts.hostname or ""
        conn: http.client.HTTPConnection
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(
                host, parts.port, timeout=self.timeout, context=self.ssl_context
            )
        else:
            conn = http.client.HTTPConnection(host, parts.port, timeout=self.timeout)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        try:
            conn.request(method, path, body=body, headers=dict(headers))
            raw = conn.getresponse()
        except ssl.SSLCertVerificationError as e:
            conn.close()
            raise SourceError(
                f"TLS certificate of {_origin(url)} is not trusted ({e.verify_message}); for a private CA "
                f"set ca_bundle in config.toml or WASSETTE_CA_BUNDLE"
            ) from None
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise SourceError(f"cannot reach {_origin(url)}: {_reason(e)}") from None
        hdrs = {k.lower(): v for k, v in raw.getheaders()}
        return Response(status=raw.status, headers=hdrs, url=url, _raw=raw)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _reason(e: BaseException) -> str:
    if isinstance(e, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, socket.gaierror):
        return f"unknown host ({e.strerror})"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e) or type(e).__name__
