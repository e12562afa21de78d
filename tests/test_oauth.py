"""`serve --oauth-issuer`: an OAuth 2.1 resource server, checked against a
real issuer on loopback made with the same JOSE library (PyJWT): its
metadata (RFC 8414), its JWKS, and tokens with every kind of defect."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2 as httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from homes import Cli
from issuer import ALL, INIT, METADATA, RESOURCE, Issuer, b64
from servers import RAW_HEADERS, HttpServer, http_server, http_session, text


@pytest.fixture(scope="module")
def server(
    issuer: Issuer, module_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HttpServer]:
    log = tmp_path_factory.mktemp("oauth") / "serve.log"
    config = Path(module_env["XDG_CONFIG_HOME"]) / "wassette" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("oauth_jwks_min_refresh_s = 1\n")
    args = ("--oauth-issuer", issuer.url, "--oauth-resource", RESOURCE, "--agent-grants", "allow")
    with http_server({**module_env, "WASSETTE_WORKERS": "1"}, log, *args) as srv:
        yield srv


def post(server: HttpServer, body: dict[str, Any], token: str | None, **headers: str) -> httpx.Response:
    h: dict[str, str | bytes] = dict(RAW_HEADERS, **headers)
    if token is not None:
        h["authorization"] = f"Bearer {token}".encode()  # bytes: a non-ASCII token is sent as it is
    return httpx.post(server.url, json=body, headers=h, timeout=30)


def challenge(r: httpx.Response) -> str:
    return r.headers.get("www-authenticate", "")


def test_metadata_and_the_challenge_lead_a_client_to_the_issuer(server: HttpServer, issuer: Issuer) -> None:
    r = post(server, INIT, None)
    assert r.status_code == 401
    assert challenge(r).startswith("Bearer ") and f'resource_metadata="{METADATA}"' in challenge(r)
    meta = httpx.get(f"{server.base}/.well-known/oauth-protected-resource/mcp", timeout=10)
    assert meta.status_code == 200  # no token needed to learn where tokens come from
    doc = meta.json()
    assert doc["resource"] == RESOURCE and doc["authorization_servers"] == [issuer.url]
    assert set(doc["scopes_supported"]) == set(ALL.split()) and doc["bearer_methods_supported"] == ["header"]
    assert httpx.get(f"{server.base}/health", timeout=10).status_code == 200
    assert httpx.get(f"{server.base}/info", timeout=10).status_code == 401


def _none_token(issuer: Issuer) -> str:
    now = int(time.time())
    claims = {"iss": issuer.url, "aud": RESOURCE, "sub": "mallory", "exp": now + 300, "scope": ALL}
    return f"{b64({'alg': 'none', 'kid': 'rsa-1'})}.{b64(claims)}."


def _hs256_with_public_key(issuer: Issuer) -> str:
    """The old algorithm-confusion attack: HMAC keyed with the public key."""
    public = (
        issuer.keys["rsa-1"]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    now = int(time.time())
    claims = {"iss": issuer.url, "aud": RESOURCE, "sub": "mallory", "exp": now + 300, "scope": ALL}
    header = b64({"alg": "HS256", "kid": "rsa-1", "typ": "JWT"})
    import hmac

    signing = f"{header}.{b64(claims)}".encode()
    mac = base64.urlsafe_b64encode(hmac.new(public, signing, hashlib.sha256).digest()).rstrip(b"=").decode()
    return f"{signing.decode()}.{mac}"


def _wrong_signature(issuer: Issuer) -> str:
    """Signed by another key under the published key's id."""
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    claims = {"iss": issuer.url, "aud": RESOURCE, "sub": "mallory", "exp": now + 300, "scope": ALL}
    return jwt.encode(claims, forger, algorithm="RS256", headers={"kid": "rsa-1"})


DEFECTS: dict[str, tuple[Any, str]] = {
    "wrong signature": (_wrong_signature, "bad signature"),
    "alg none": (_none_token, "signature algorithm 'none' is not accepted"),
    "HS256 keyed with the public key": (
        _hs256_with_public_key,
        "signature algorithm 'HS256' is not accepted",
    ),
    "wrong audience": (lambda i: i.token(aud="https://other.example/mcp"), "not for this resource"),
    "no audience": (lambda i: i.token(aud=None), "invalid token"),
    "wrong issuer": (lambda i: i.token(iss="https://evil.example"), "from another issuer"),
    "expired": (lambda i: i.token(exp=int(time.time()) - 120), "has expired"),
    "not valid yet": (lambda i: i.token(nbf=int(time.time()) + 600), "not valid yet"),
    "no expiry": (lambda i: i.token(exp=None), "invalid token"),
    "unknown kid": (lambda i: _unpublished(i), "key the issuer does not publish"),
    "no kid": (lambda i: jwt.encode({"sub": "x"}, i.keys["rsa-1"], algorithm="RS256"), "names no key"),
    "garbage": (lambda i: "not.a.jwt", "not a JWT"),
    "huge": (lambda i: "a" * 20_000, "token too long"),
    "non-ascii": (lambda i: "tök.én.x", "not a JWT"),
}


def _unpublished(issuer: Issuer) -> str:
    if "rsa-secret" not in issuer.keys:
        issuer.add(
            "rsa-secret", rsa.generate_private_key(public_exponent=65537, key_size=2048), publish=False
        )
    return issuer.token("rsa-secret")


def test_an_accepted_token_is_refused_once_past_its_leeway(server: HttpServer, issuer: Issuer) -> None:
    """A token is taken until its `exp` plus the leeway (60 s by default),
    however often it was taken before: one expired 58 s ago is taken for
    about 2 s more, then refused as expired."""
    token = issuer.token(exp=int(time.time()) - 58)
    for _ in range(3):
        assert post(server, INIT, token).status_code == 200
    deadline = time.monotonic() + 10
    while (r := post(server, INIT, token)).status_code == 200:  # polling: exp passes
        assert time.monotonic() < deadline, "an expired token was still accepted"
        time.sleep(0.2)
    assert r.status_code == 401 and "has expired" in r.json()["error"]["message"]
    # A token differing in one byte is another (and not a valid one).
    other = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    assert post(server, INIT, other).status_code == 401


@pytest.mark.parametrize("defect", list(DEFECTS))
def test_every_defective_token_is_refused(server: HttpServer, issuer: Issuer, defect: str) -> None:
    make, why = DEFECTS[defect]
    r = post(server, INIT, make(issuer))
    assert r.status_code == 401, (defect, r.text)
    assert 'error="invalid_token"' in challenge(r) and f'resource_metadata="{METADATA}"' in challenge(r)
    assert why in r.json()["error"]["message"], (defect, r.json())
    assert post(server, INIT, issuer.token()).status_code == 200  # and the server is fine


def test_valid_tokens_serve_the_official_client(
    server: HttpServer, issuer: Issuer, components: dict[str, Path]
) -> None:
    async def main() -> None:
        for kid in ("rsa-1", "ec-1"):
            headers = {"authorization": f"Bearer {issuer.token(kid)}"}
            async with http_session(server.url, headers=headers) as s:
                r = await s.call_tool("load-component", {"path": components["arith"].as_uri()})
                assert not r.is_error, text(r)
                r = await s.call_tool("add", {"a": 40, "b": 2})
                assert r.structured_content == {"result": 42}, text(r)

    anyio.run(main)


def call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }


def session(server: HttpServer, token: str) -> dict[str, str]:
    """Opens a session with `token`; the headers that name it."""
    r = post(server, INIT, token)
    assert r.status_code == 200, r.text
    named = {"mcp-session-id": r.headers["mcp-session-id"], "mcp-protocol-version": "2025-11-25"}
    assert post(server, {"jsonrpc": "2.0", "method": "notifications/initialized"}, token, **named).is_success
    return named


def test_scopes_map_to_rights(
    server: HttpServer, issuer: Issuer, components: dict[str, Path], module_env: dict[str, str]
) -> None:
    """Each right needs its scope; a missing one is a 403 naming it."""
    admin = session(server, issuer.token())
    r = post(server, call("load-component", {"path": components["arith"].as_uri()}), issuer.token(), **admin)
    assert r.status_code == 200 and '"isError":false' in r.text.replace(" ", ""), r.text
    cases = [
        ("wassette:tools", call("add", {"a": 1, "b": 2}), None),
        ("wassette:tools", call("list-components", {}), None),
        ("wassette:tools", call("load-component", {"path": "file:///x.wasm"}), "wassette:components"),
        ("wassette:tools", call("unload-component", {"id": "arith"}), "wassette:components"),
        ("wassette:tools", call("grant-network-permission", {"component_id": "arith", "details": {"host": "a.b"}}),
         "wassette:grants"),
        ("wassette:tools", call("reset-permission", {"component_id": "arith"}), "wassette:grants"),
        ("wassette:components", call("add", {"a": 1, "b": 2}), "wassette:tools"),
        ("", call("add", {"a": 1, "b": 2}), "wassette:tools"),
    ]  # fmt: skip
    for scope, body, missing in cases:
        token = issuer.token(scope=scope)
        r = post(server, body, token, **session(server, token))
        if missing is None:
            assert r.status_code == 200, (scope, body, r.text)
            continue
        assert r.status_code == 403, (scope, body, r.text)
        assert 'error="insufficient_scope"' in challenge(r) and f'scope="{missing}"' in challenge(r), (
            challenge(r)
        )
        assert missing in r.json()["error"]["message"]
    token = issuer.token(scope="wassette:tools")
    batch = [call("add", {"a": 1, "b": 2}), call("unload-component", {"id": "arith"})]
    r = post(server, batch, token, **session(server, token))  # type: ignore[arg-type]
    assert r.status_code == 403 and 'scope="wassette:components"' in challenge(r)  # a batch is checked whole
    names = [c["id"] for c in json.loads(Cli(module_env)("component", "list").stdout)]
    assert "arith" in names  # no refused unload happened


def test_a_session_belongs_to_the_identity_that_opened_it(server: HttpServer, issuer: Issuer) -> None:
    """Another identity's valid token cannot use (or end) a session it did
    not open, even knowing its id: to it, that session does not exist."""
    alice = session(server, issuer.token(sub="alice"))
    bob = issuer.token(sub="bob")
    r = post(server, call("list-components", {}), bob, **alice)
    assert r.status_code == 404, r.text
    h = {**RAW_HEADERS, **alice, "authorization": f"Bearer {bob}"}
    assert httpx.delete(server.url, headers=h, timeout=10).status_code == 404
    r = post(server, call("list-components", {}), issuer.token(sub="alice"), **alice)
    assert r.status_code == 200, r.text  # still alice's


def test_keys_rotate_without_a_fetch_per_request(server: HttpServer, issuer: Issuer) -> None:
    """A new key is fetched once, when a token first names it; a flood of
    made-up key ids causes at most one fetch per refresh interval."""
    before = issuer.fetches
    for _ in range(50):
        assert post(server, INIT, issuer.token()).status_code == 200
    assert issuer.fetches == before  # valid tokens: no fetch
    started = time.monotonic()
    for _ in range(50):
        forged = jwt.encode(
            {"sub": "x"}, issuer.keys["rsa-1"], algorithm="RS256", headers={"kid": uuid.uuid4().hex}
        )
        assert post(server, INIT, forged).status_code == 401
    elapsed = time.monotonic() - started
    assert issuer.fetches - before <= 1 + int(elapsed)  # one per refresh interval (1 s here), at most
    issuer.add("rsa-2", rsa.generate_private_key(public_exponent=65537, key_size=2048))
    deadline = time.monotonic() + 5
    while post(server, INIT, issuer.token("rsa-2")).status_code != 200:  # once the interval has passed
        assert time.monotonic() < deadline, "the rotated key was never fetched"
        time.sleep(0.1)
    assert httpx.get(f"{server.base}/health", timeout=10).status_code == 200


def test_oauth_and_a_static_token_do_not_mix(module_env: dict[str, str], issuer: Issuer) -> None:
    r = Cli(module_env)(
        "serve", "--oauth-issuer", issuer.url, "--auth-token", "t", "--bind-address", "127.0.0.1:0"
    )
    assert r.returncode != 0 and "choose one" in r.stderr
    r = Cli(module_env)("serve", "--oauth-issuer", "http://issuer.example", "--bind-address", "127.0.0.1:0")
    assert r.returncode != 0 and "https://" in r.stderr


def test_the_audit_log_needs_the_audit_scope(
    server: HttpServer, issuer: Issuer, components: dict[str, Path]
) -> None:
    admin = issuer.token()
    named = session(server, admin)
    assert post(
        server, call("load-component", {"path": components["arith"].as_uri()}), admin, **named
    ).is_success
    grant = call(
        "grant-network-permission", {"component_id": "arith", "details": {"host": "audited.example"}}
    )
    r = post(server, grant, admin, **named)
    assert r.status_code == 200 and "granted" in r.text, r.text

    def audit(token: str, query: str = "") -> httpx.Response:
        return httpx.get(
            f"{server.base}/audit{query}", headers={"authorization": f"Bearer {token}"}, timeout=10
        )

    r = audit(issuer.token(scope="wassette:tools wassette:grants"))
    assert r.status_code == 403 and 'scope="wassette:audit"' in challenge(r)
    r = audit(issuer.token(scope="wassette:audit"), "?event=granted&component=arith&limit=5")
    assert r.status_code == 200, r.text
    records = r.json()["records"]
    assert records and records[-1]["details"] == {"host": "audited.example"} and records[-1]["by"] == "mcp"
    assert all(x["event"] == "granted" for x in records) and len(records) <= 5
    for bad in ("?limit=0", "?limit=abc", "?limit=99999"):
        assert audit(issuer.token(scope="wassette:audit"), bad).status_code == 400
    assert httpx.get(f"{server.base}/audit", timeout=10).status_code == 401


def test_a_legacy_sse_session_belongs_to_its_identity(
    issuer: Issuer, module_env: dict[str, str], tmp_path: Path
) -> None:
    args = ("--sse", "--oauth-issuer", issuer.url, "--oauth-resource", RESOURCE)
    with http_server({**module_env, "WASSETTE_WORKERS": "2"}, tmp_path / "sse.log", *args) as server:
        alice = {"authorization": f"Bearer {issuer.token(sub='alice')}"}
        bob = {"authorization": f"Bearer {issuer.token(sub='bob')}"}
        with httpx.stream("GET", f"{server.base}/sse", headers=alice, timeout=30) as stream:
            lines = stream.iter_lines()
            endpoint = next(line for line in lines if line.startswith("data:"))[5:].strip()
            for n in range(6):  # new connections: over both workers (a relayed post is checked too)
                bobs = {"jsonrpc": "2.0", "id": 100 + n, "method": "ping"}
                r = httpx.post(f"{server.base}{endpoint}", json=bobs, headers=bob, timeout=10)
                assert r.status_code in (404, 202), r.text
            ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
            r = httpx.post(f"{server.base}{endpoint}", json=ping, headers=alice, timeout=10)
            assert r.status_code == 202
            answers = []
            for line in lines:
                if line.startswith("data:"):
                    answers.append(json.loads(line[5:]))
                    break
            assert answers == [{"jsonrpc": "2.0", "id": 1, "result": {}}]  # only alice's ping was answered


def test_the_official_client_logs_in_and_steps_up_its_scopes(
    issuer: Issuer, module_env: dict[str, str], tmp_path: Path, components: dict[str, Path]
) -> None:
    """The MCP SDK's own OAuth client: from the 401 to the resource metadata,
    the issuer's metadata, registration, authorization with PKCE and the
    token for this resource (RFC 8707); then, refused a load for want of a
    scope (403 insufficient_scope), it authorizes again for it and goes on."""
    from mcp.client.auth import OAuthClientProvider
    from mcp.shared.auth import OAuthClientMetadata, OAuthToken

    from postgres import free_port

    port = free_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    args = ("--bind-address", f"127.0.0.1:{port}", "--oauth-issuer", issuer.url, "--oauth-resource", resource)
    with http_server({**module_env, "WASSETTE_WORKERS": "1"}, tmp_path / "login.log", *args) as server:
        assert server.url == resource

        class Memory:
            tokens: OAuthToken | None = None
            client: Any = None

            async def get_tokens(self) -> OAuthToken | None:
                return self.tokens

            async def set_tokens(self, tokens: OAuthToken) -> None:
                self.tokens = tokens

            async def get_client_info(self) -> Any:
                return self.client

            async def set_client_info(self, info: Any) -> None:
                self.client = info

        approved: list[tuple[str, str | None]] = []

        async def redirect(url: str) -> None:  # the browser, and the user saying yes
            approved.append(issuer.authorize(url))

        async def callback() -> Any:
            from mcp.shared.auth import AuthorizationCodeResult

            code, state = approved[-1]
            return AuthorizationCodeResult(code=code, state=state)

        provider = OAuthClientProvider(
            server.url,
            OAuthClientMetadata(redirect_uris=["http://127.0.0.1:1/callback"], client_name="wassette-tests"),
            Memory(),
            redirect_handler=redirect,
            callback_handler=callback,
        )

        async def main() -> None:
            from mcp import ClientSession
            from mcp.client.streamable_http import streamable_http_client

            async with (
                httpx.AsyncClient(auth=provider, timeout=30) as client,
                streamable_http_client(server.url, http_client=client) as (read, write),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                r = await session.call_tool("load-component", {"path": components["arith"].as_uri()})
                assert not r.is_error, text(r)
                r = await session.call_tool("add", {"a": 40, "b": 2})
                assert r.structured_content == {"result": 42}, text(r)

        anyio.run(main)
    assert [g["resource"] for g in issuer.granted] == [resource, resource]  # RFC 8707, both times
    assert issuer.granted[0]["scope"] == "wassette:tools"  # what the 401 asked for
    assert set(issuer.granted[1]["scope"].split()) == {"wassette:tools", "wassette:components"}  # stepped up
