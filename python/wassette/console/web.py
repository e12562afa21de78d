"""Plain ASGI framing for the console: HTML answers with the security
headers every page carries, forms, cookies, and the CSRF check.

CSRF: a random token in a `SameSite=Strict`, `HttpOnly` cookie, repeated in
every form (hidden field `csrf`) or the `X-CSRF-Token` header; a POST must
carry both, equal, and an `Origin` that is exactly this console's own
(scheme aside: a TLS proxy may sit in front). The server's Guard already
refuses origins outside the allowed hosts; this also refuses another port of
the same host (any other local web page)."""

from __future__ import annotations

import hmac
import secrets
from typing import Any
from urllib.parse import parse_qsl, urlsplit

Scope = dict[str, Any]
Receive = Any
Send = Any

CSRF_COOKIE = "wassette_csrf"
AUTH_COOKIE = "wassette_console"
MAX_FORM_BYTES = 64 * 1024
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    # Not no-referrer: under it browsers send `Origin: null` with a POST.
    (b"referrer-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
]
HTML = b"text/html; charset=utf-8"


def headers_of(scope: Scope) -> dict[bytes, bytes]:
    return {k.lower(): v for k, v in scope["headers"]}


def cookies(scope: Scope) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in headers_of(scope).get(b"cookie", b"").decode("latin-1").split(";"):
        name, _, value = part.strip().partition("=")
        if name and name not in out:
            out[name] = value
    return out


def cookie(name: str, value: str, *, max_age: int | None = None) -> tuple[bytes, bytes]:
    age = f"; Max-Age={max_age}" if max_age is not None else ""
    text = f"{name}={value}; Path=/console; HttpOnly; SameSite=Strict{age}"
    return (b"set-cookie", text.encode("latin-1"))


def query(scope: Scope) -> dict[str, str]:
    return dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))


async def send_response(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes = HTML,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        *SECURITY_HEADERS,
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def redirect(send: Send, location: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    """303: after a POST, the browser GETs the page (a reload does not post again)."""
    await send_response(send, 303, b"", extra=[(b"location", location.encode("latin-1")), *(extra or [])])


async def read_form(receive: Receive) -> dict[str, str] | None:
    """The url-encoded form of a POST; None when larger than the limit."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return dict(parse_qsl(b"".join(chunks).decode("utf-8", "replace"), keep_blank_values=True))


def csrf_token(scope: Scope) -> tuple[str, list[tuple[bytes, bytes]]]:
    """The browser's CSRF token, and the cookie to set when it had none."""
    token = cookies(scope).get(CSRF_COOKIE, "")
    if len(token) == 43 and token.replace("-", "").replace("_", "").isalnum():
        return token, []
    token = secrets.token_urlsafe(32)
    return token, [cookie(CSRF_COOKIE, token)]


def forged(scope: Scope, form: dict[str, str]) -> str | None:
    """Why a POST is refused as cross-site, or None when it is the console's own."""
    headers = headers_of(scope)
    origin = headers.get(b"origin", b"").decode("latin-1")
    host = headers.get(b"host", b"").decode("latin-1")
    parts = urlsplit(origin)
    if not origin or parts.scheme not in ("http", "https") or parts.netloc != host:
        return f"Origin {origin or '(none)'!r} is not this console's"
    expected = cookies(scope).get(CSRF_COOKIE, "")
    given = form.get("csrf") or headers.get(b"x-csrf-token", b"").decode("latin-1")
    if not expected or not given or not hmac.compare_digest(expected.encode(), given.encode()):
        return "missing or wrong CSRF token (reload the page)"
    return None
