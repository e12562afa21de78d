"""A real OAuth 2.1 authorization server on loopback for the tests, made
with the JOSE library the server uses (PyJWT): metadata, JWKS, dynamic
client registration, the authorization-code grant with PKCE, and tokens
minted with any claims."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

RESOURCE = "https://mcp.example.test/mcp"
METADATA = "https://mcp.example.test/.well-known/oauth-protected-resource/mcp"
ALL = "wassette:tools wassette:components wassette:grants wassette:audit"
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "0"},
    },
}


class Issuer:
    """An authorization server: metadata (RFC 8414), JWKS (counting
    fetches), dynamic client registration, the authorization-code grant
    with PKCE (the test approves each authorization itself: `authorize`),
    and the private keys to mint tokens with."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {}
        self.published: list[str] = []
        self.fetches = 0
        self.codes: dict[str, dict[str, str]] = {}  # code -> the authorization request
        self.granted: list[dict[str, str]] = []  # token requests answered
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/.well-known/oauth-authorization-server":
                    body = {
                        "issuer": issuer.url,
                        "jwks_uri": f"{issuer.url}/jwks",
                        "authorization_endpoint": f"{issuer.url}/authorize",
                        "token_endpoint": f"{issuer.url}/token",
                        "registration_endpoint": f"{issuer.url}/register",
                        "response_types_supported": ["code"],
                        "grant_types_supported": ["authorization_code"],
                        "code_challenge_methods_supported": ["S256"],
                        "token_endpoint_auth_methods_supported": ["none"],
                    }
                elif self.path == "/jwks":
                    issuer.fetches += 1
                    body = {"keys": [issuer.jwk(kid) for kid in issuer.published]}
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.answer(200, body)

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length", 0)))
                if self.path == "/register":
                    body = {
                        **json.loads(raw),
                        "client_id": uuid.uuid4().hex,
                        "client_id_issued_at": int(time.time()),
                    }
                    body["token_endpoint_auth_method"] = "none"
                    self.answer(201, body)
                elif self.path == "/token":
                    self.answer(*issuer.exchange(dict(urllib.parse.parse_qsl(raw.decode()))))
                else:
                    self.answer(404, {"error": "not_found"})

            def answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.add("rsa-1", rsa.generate_private_key(public_exponent=65537, key_size=2048))
        self.add("ec-1", ec.generate_private_key(ec.SECP256R1()))

    def add(self, kid: str, key: Any, publish: bool = True) -> None:
        self.keys[kid] = key
        if publish:
            self.published.append(kid)

    def jwk(self, kid: str) -> dict[str, Any]:
        key = self.keys[kid].public_key()
        if isinstance(key, rsa.RSAPublicKey):
            data = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key))
            data["alg"] = "RS256"
        else:
            data = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key))
            data["alg"] = "ES256"
        return {**data, "kid": kid, "use": "sig"}

    def token(self, kid: str = "rsa-1", scope: str = ALL, alg: str | None = None, **claims: Any) -> str:
        now = int(time.time())
        payload = {
            "iss": self.url,
            "aud": RESOURCE,
            "sub": "alice",
            "iat": now,
            "exp": now + 300,
            "scope": scope,
        }
        payload.update(claims)
        payload = {k: v for k, v in payload.items() if v is not None}
        algorithm = alg or ("RS256" if kid.startswith("rsa") else "ES256")
        return jwt.encode(payload, self.keys[kid], algorithm=algorithm, headers={"kid": kid})

    def authorize(self, url: str) -> tuple[str, str | None]:
        """The user approves: a code for this authorization request, and its state."""
        request = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
        assert request["response_type"] == "code" and request["code_challenge_method"] == "S256"
        code = secrets.token_urlsafe(16)
        self.codes[code] = request
        return code, request.get("state")

    def exchange(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """The token endpoint: the code, once, with the PKCE verifier that matches."""
        request = self.codes.pop(form.get("code", ""), None)
        if request is None or form.get("grant_type") != "authorization_code":
            return 400, {"error": "invalid_grant"}
        verifier = form.get("code_verifier", "").encode()
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=").decode()
        if challenge != request["code_challenge"] or form.get("client_id") != request["client_id"]:
            return 400, {"error": "invalid_grant"}
        audience = form.get("resource") or request.get("resource")
        scope = request.get("scope", "")
        self.granted.append({"resource": str(audience), "scope": scope})
        token = self.token(aud=audience, scope=scope, sub="alice")
        return 200, {"access_token": token, "token_type": "Bearer", "expires_in": 300, "scope": scope}

    def close(self) -> None:
        self.httpd.shutdown()


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
