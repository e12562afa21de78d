"""Shared test fixtures: real components built from source, isolated state dirs.

Compiled artifacts go to one cache shared by the whole run (and kept between
runs), so each large component is compiled once; component and config dirs
are fresh per test.
"""

from __future__ import annotations

import datetime
import importlib.util
import os
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest

from homes import COMPILED_CACHE, DEV_CACHE, NO_KEYRING, Cli, isolated_env
from issuer import Issuer

REPO = Path(__file__).resolve().parent.parent
# In-process runtimes too: no test may put a secrets key in the developer's keyring.
os.environ["PYTHON_KEYRING_BACKEND"] = NO_KEYRING


def _load_build_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fixtures_build", REPO / "tests/components/build.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    """An OAuth authorization server on loopback for one module's tests."""
    made = Issuer()
    yield made
    made.close()


@pytest.fixture(scope="session")
def components() -> dict[str, Path]:
    """Every test component, built (or taken from the source-hash cache)."""
    built: dict[str, Path] = _load_build_module().build(None)
    return built


@pytest.fixture(scope="session")
def toolchain() -> Any:
    """The fixtures' build tools (where jco, componentize-py, wasm-tools are)."""
    return _load_build_module().Toolchain()


@pytest.fixture(scope="session")
def examples() -> dict[str, Path]:
    """Every example in examples/, built (or taken from the cache) in one go."""
    mod = _load_build_module()
    built: dict[str, Path] = mod.build(list(mod.EXAMPLES))
    return built


@pytest.fixture(scope="session")
def compiled_cache() -> Path:
    """The artifact cache shared by every engine of the run."""
    return COMPILED_CACHE


@pytest.fixture(scope="session")
def engine():  # type: ignore[no-untyped-def]
    from wassette import _engine

    return _engine.Engine(str(COMPILED_CACHE))


@pytest.fixture(scope="session")
def compiled(engine: Any, components: dict[str, Path]) -> Callable[[str], Any]:
    """Compiles (or takes from the shared artifact cache) a fixture once per run."""
    cache: dict[str, Any] = {}

    def get(name: str) -> Any:
        if name not in cache:
            cache[name] = engine.compile(components[name].read_bytes())
        return cache[name]

    return get


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel `scripts/release.sh --dev` makes (the engine's debug build is
    reused; packaging it takes seconds), for the release and container tests."""
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        ["bash", str(REPO / "scripts/release.sh"), "--dev", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An isolated HOME/XDG tree for one test."""
    for sub in ("data", "config", "cache"):
        (tmp_path / sub).mkdir()
    return tmp_path


@pytest.fixture
def env(home: Path) -> dict[str, str]:
    return isolated_env(home)


@pytest.fixture(scope="module")
def module_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Like `env`, shared by the tests of one module (e.g. one server for all)."""
    return isolated_env(tmp_path_factory.mktemp("home"))


@pytest.fixture
def component_dir(home: Path) -> Path:
    return home / "data" / "wassette" / "components"


@pytest.fixture
def cli(env: dict[str, str]) -> Cli:
    return Cli(env)


@pytest.fixture(scope="module")
def module_cli(module_env: dict[str, str]) -> Cli:
    return Cli(module_env)


@pytest.fixture
def runtime(home: Path) -> Iterator[object]:
    """A runtime on an isolated component dir with the shared compile cache."""
    from wassette.runtime.config import Settings
    from wassette.runtime.runtime import Runtime

    settings = Settings.load(
        env={
            "HOME": str(home),
            "XDG_DATA_HOME": str(home / "data"),
            "XDG_CONFIG_HOME": str(home / "config"),
            "WASSETTE_CACHE_DIR": str(COMPILED_CACHE),
        }
    )
    yield Runtime(settings)


@pytest.fixture(scope="session")
def inspector() -> Path:
    """The MCP Inspector CLI (`mcp-inspector`, with its own Node 22) that
    scripts/setup-toolchain.sh installs from tests/toolchain/inspector."""
    import hashlib

    lock = REPO / "tests/toolchain/inspector/package-lock.json"
    directory = DEV_CACHE / f"inspector-{hashlib.sha256(lock.read_bytes()).hexdigest()[:16]}"
    if not (directory / ".complete").is_file():
        pytest.fail(f"the MCP Inspector is not installed in {directory}: run scripts/setup-toolchain.sh")
    return directory / "node_modules" / ".bin"


# -- an HTTPS server with its own CA (loader and guest TLS tests) -------------------------


@dataclass
class HttpsServer:
    url: str  # https://127.0.0.1:PORT
    ca: Path
    files: dict[str, bytes]
    # path -> (declared Content-Length, body): a lying server for truncation tests
    lies: dict[str, tuple[int, bytes]]


@pytest.fixture(scope="session")
def https_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpsServer]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    tmp = tmp_path_factory.mktemp("https")
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wassette test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = tmp / "ca.pem"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_pem, key_pem = tmp / "cert.pem", tmp / "key.pem"
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    files: dict[str, bytes] = {}
    lies: dict[str, tuple[int, bytes]] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path in lies:
                length, body = lies[path]
            elif path in files:
                length, body = len(files[path]), files[path]
            else:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/wasm")
            self.send_header("Content-Length", str(length))
            self.end_headers()
            self.wfile.write(body)
            if path in lies:
                self.close_connection = True

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_pem, key_pem)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield HttpsServer(f"https://127.0.0.1:{server.server_address[1]}", ca_pem, files, lies)
    server.shutdown()
    server.server_close()
