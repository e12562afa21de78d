"""Real registries and servers on loopback for the distribution tests.

- `registry`: Debian's docker-registry (CNCF distribution 2.8), anonymous, on a
  free port with its own storage directory, for the whole session.
- `auth_registry`: the same with htpasswd (Basic) authentication.
- `token_registry`: the same with token authentication, and a small token
  service that issues signed JWTs: anonymous tokens may pull, `alice` may push.
- `https_server`: a loopback HTTPS server with a test CA, serving files.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from oci_helpers import PASSWORD, USER, Registry


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_registry(tmp: Path, auth_yaml: str = "") -> Registry:
    exe = shutil.which("docker-registry")
    if exe is None:
        pytest.fail("docker-registry is not installed: run scripts/setup-toolchain.sh")
    port = free_port()
    data = tmp / "data"
    data.mkdir(parents=True)
    config = tmp / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {data}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n" + auth_yaml
    )
    log = tmp / "registry.log"
    proc = subprocess.Popen([exe, "serve", str(config)], stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"docker-registry exited: {log.read_text()}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1).close()
            break
        except urllib.error.HTTPError:
            break  # 401: up, and asking for credentials
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("docker-registry did not start within 30 s")
    return Registry(f"127.0.0.1:{port}", data, proc, log)


def _stop(reg: Registry) -> None:
    reg.process.terminate()
    try:
        reg.process.wait(10)
    except subprocess.TimeoutExpired:
        reg.process.kill()
        reg.process.wait()


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    reg = _start_registry(tmp_path_factory.mktemp("registry"))
    yield reg
    _stop(reg)


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    import bcrypt

    tmp = tmp_path_factory.mktemp("auth-registry")
    htpasswd = tmp / "htpasswd"
    htpasswd.write_bytes(
        USER.encode() + b":" + bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=5)) + b"\n"
    )
    reg = _start_registry(tmp, f"auth:\n  htpasswd:\n    realm: wassette-test\n    path: {htpasswd}\n")
    yield reg
    _stop(reg)


# -- token authentication ----------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenService:
    """Issues the JWTs docker-registry's token auth checks: ES256, the signing
    certificate in `x5c`, the requested scope granted as the rules allow."""

    def __init__(self, tmp: Path) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wassette test token issuer")])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.bundle = tmp / "token-ca.pem"
        self.bundle.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.requests: list[dict[str, Any]] = []
        self.port = free_port()
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                q = parse_qs(urlsplit(self.path).query)
                user = None
                header = self.headers.get("Authorization", "")
                if header.startswith("Basic "):
                    u, _, p = base64.b64decode(header[6:]).decode().partition(":")
                    if (u, p) != (USER, PASSWORD):
                        self.send_response(401)
                        self.end_headers()
                        return
                    user = u
                scope = (q.get("scope") or [""])[0]
                service.requests.append({"user": user, "scope": scope})
                body = json.dumps({"token": service.token(user, scope)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self, user: str | None, scope: str) -> str:
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        access = []
        if scope.startswith("repository:"):
            _, name, actions = scope.split(":", 2)
            wanted = actions.split(",")
            granted = [a for a in wanted if a == "pull" or user == USER]
            access.append({"type": "repository", "name": name, "actions": granted})
        now = int(time.time())
        header = {
            "alg": "ES256",
            "typ": "JWT",
            "x5c": [base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()],
        }
        claims = {
            "iss": "wassette-test-issuer",
            "sub": user or "",
            "aud": "wassette-test-registry",
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": hashlib.sha256(os.urandom(16)).hexdigest(),
            "access": access,
        }
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    tmp = tmp_path_factory.mktemp("token-registry")
    tokens = TokenService(tmp)
    auth = (
        "auth:\n  token:\n"
        f"    realm: http://127.0.0.1:{tokens.port}/token\n"
        "    service: wassette-test-registry\n"
        "    issuer: wassette-test-issuer\n"
        f"    rootcertbundle: {tokens.bundle}\n"
    )
    reg = _start_registry(tmp, auth)
    reg.auth["tokens"] = tokens
    yield reg
    _stop(reg)
    tokens.close()


# -- HTTPS -------------------------------------------------------------------


# -- environment -------------------------------------------------------------


@pytest.fixture
def oenv(env: dict[str, str]) -> dict[str, str]:
    """The CLI environment for loopback registries (plain http allowed)."""
    return {**env, "WASSETTE_ALLOW_INSECURE_LOOPBACK": "1"}
