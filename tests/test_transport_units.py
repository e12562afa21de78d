"""Transport pieces that need no server: option resolution, the Host
allowlist, and the stdio line framing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from wassette.cli.main import build_parser
from wassette.runtime.config_schema import validate
from wassette.runtime.errors import ConfigError
from wassette.runtime.serve_config import ServeSettings, parse_bind_address, serve_settings
from wassette.server.http.guard import HostAllowlist
from wassette.server.stdio import LineSplitter, rejection


def resolve(
    *, env: dict[str, str] | None = None, config: dict[str, Any] | None = None, **flags: Any
) -> ServeSettings:
    """What `serve` listens on, from its flags, the environment and config.toml."""
    if "request_limit" in flags:
        flags["max_request_bytes"] = flags.pop("request_limit")
    return serve_settings(env or {}, validate(config or {}, "config.toml"), flags)


def test_bind_address_precedence() -> None:
    assert (resolve().host, resolve().port) == ("127.0.0.1", 9001)
    config = {"bind_address": "127.0.0.2:7000"}
    assert (resolve(config=config).host, resolve(config=config).port) == ("127.0.0.2", 7000)
    o = resolve(config=config, env={"PORT": "8080"})
    assert (o.host, o.port) == ("127.0.0.2", 8080)
    o = resolve(config=config, env={"PORT": "8080", "BIND_HOST": "0.0.0.0"})
    assert (o.host, o.port) == ("0.0.0.0", 8080)
    o = resolve(config=config, env={"PORT": "8080", "WASSETTE_BIND_ADDRESS": "[::1]:9100"})
    assert (o.host, o.port) == ("::1", 9100)
    o = resolve(bind_address="localhost:1234", env={"WASSETTE_BIND_ADDRESS": "[::1]:9100"})
    assert (o.host, o.port) == ("localhost", 1234)
    assert parse_bind_address(":9002") == ("127.0.0.1", 9002)
    assert parse_bind_address("10.1.2.3") == ("10.1.2.3", 9001)


@pytest.mark.parametrize("bad", ["host:port", "1.2.3.4:70000", "[::1]:x"])
def test_bad_bind_address(bad: str) -> None:
    with pytest.raises(ConfigError, match="bind address"):
        resolve(bind_address=bad)


def test_bad_config_values() -> None:
    with pytest.raises(ConfigError, match="PORT"):
        resolve(env={"PORT": "eighty"})
    with pytest.raises(ConfigError, match="allowed_hosts"):
        resolve(config={"allowed_hosts": "localhost"})
    with pytest.raises(ConfigError, match="positive number of bytes"):
        resolve(config={"max_request_bytes": 0})
    assert resolve(config={"max_request_bytes": 1000}).max_request_bytes == 1000
    assert resolve(config={"max_request_bytes": 1000}, request_limit=5).max_request_bytes == 5


def test_token_and_hosts_sources() -> None:
    assert resolve(env={"WASSETTE_AUTH_TOKEN": "t1"}).auth_token == "t1"
    assert resolve(auth_token="t2", env={"WASSETTE_AUTH_TOKEN": "t1"}).auth_token == "t2"
    assert "t2" not in repr(resolve(auth_token="t2"))
    assert resolve(env={"WASSETTE_ALLOWED_HOSTS": "a.test, b.test"}).allowed_hosts == ("a.test", "b.test")
    assert resolve(config={"allowed_hosts": ["c.test"]}).allowed_hosts == ("c.test",)
    assert resolve(allowed_hosts=["d.test"], config={"allowed_hosts": ["c.test"]}).allowed_hosts == (
        "d.test",
    )


def test_host_allowlist() -> None:
    default = HostAllowlist()
    for ok in ("127.0.0.1", "127.0.0.1:9001", "localhost:80", "LOCALHOST", "[::1]:9001"):
        assert default.allows(ok), ok
    for bad in ("evil.example", "evil.example:9001", "127.0.0.1.evil.example", "", "[::1", "localhost:x"):
        assert not default.allows(bad), bad
    assert default.allows_origin("http://localhost:3000")
    assert not default.allows_origin("http://evil.example") and not default.allows_origin("null")
    assert not default.allows_origin("file://localhost")
    # As in Wassette, a list replaces the loopback default; a port pins it.
    custom = HostAllowlist(["mcp.internal", "gateway:8443"])
    assert custom.allows("mcp.internal:9001") and custom.allows("gateway:8443")
    assert not custom.allows("gateway:9001") and not custom.allows("localhost:9001")
    assert HostAllowlist(["*"]).allows("anything.example:1")


def test_cli_transport_options() -> None:
    parser = build_parser()
    args = parser.parse_args(["serve"])
    assert (args.transport, args.legacy_sessions, args.json_response) == (None, True, False)
    args = parser.parse_args(["serve", "--json-response", "--legacy-sessions", "false"])
    assert (args.json_response, args.legacy_sessions) == (True, False)
    assert parser.parse_args(["serve", "--json-response", "false"]).json_response is False
    assert parser.parse_args(["serve", "--http"]).transport == "sse"
    assert parser.parse_args(["serve", "--sse"]).transport == "sse"
    assert parser.parse_args(["serve", "--streamable-http"]).transport == "streamable-http"
    assert parser.parse_args(["serve", "--stdio"]).transport == "stdio"
    args = parser.parse_args(["serve", "--allowed-host", "a", "--allowed-host", "b:1"])
    assert args.allowed_host == ["a", "b:1"]
    with pytest.raises(SystemExit):
        parser.parse_args(["serve", "--sse", "--stdio"])
    with pytest.raises(SystemExit):
        parser.parse_args(["serve", "--legacy-sessions", "maybe"])


def test_line_splitter() -> None:
    s = LineSplitter(10)
    assert s.feed(b'{"a":1}\n{"b"') == [b'{"a":1}']
    assert s.feed(b":2}\n") == [b'{"b":2}']
    assert s.feed(b"x" * 11) == [None]  # reported once, as soon as it is too long
    assert s.feed(b"yyyy\nok\n") == [b"ok"]  # the rest of that line is dropped
    assert s.feed(b"0123456789\n") == [b"0123456789"]  # exactly the limit is fine
    assert s.feed(b"01234567890\n") == [None]
    assert s.feed(b"tail") == [] and s.finish() == b"tail"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"{nope", {"id": None, "code": -32700}),
        (b"[1, 2]", {"id": None, "code": -32600}),
        (b'{"jsonrpc": "2.0", "id": 7}', {"id": 7, "code": -32600}),
        (b'{"jsonrpc": "2.0", "id": "x", "method": 5}', {"id": "x", "code": -32600}),
        (b'{"jsonrpc": "2.0", "id": true, "method": "ping"}', {"id": None, "code": -32600}),
        (b'{"jsonrpc": "2.0", "method": 5}', None),  # a notification: never answered
        (b'{"jsonrpc": "2.0", "id": 1, "result": 5, "extra": {}}', None),  # a response
    ],
)
def test_rejection(line: bytes, expected: dict[str, Any] | None) -> None:
    answer = rejection(line)
    if expected is None:
        assert answer is None
    else:
        assert answer is not None
        message = json.loads(answer)
        assert (message["id"], message["error"]["code"]) == (expected["id"], expected["code"])
