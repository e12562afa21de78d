"""The examples in examples/, end to end, as their READMEs walk through them.

Each example is built from source (the same cached recipes as the test
fixtures), loaded into `wassette run` through the official MCP client over
stdio, called without the permission it needs (the tool error must name the
exact `wassette permission grant ...` command), granted by running exactly
that command, and called again. Network examples talk to servers on loopback
that the tests start: a fake OpenWeather API and a small web site.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shlex
import stat
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import mcp.types as types
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client

pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parent.parent
Cli = Any  # the `cli` fixture of conftest.py: runs `wassette ...` in a subprocess

EXAMPLES = (
    "time-server-js",
    "get-weather-js",
    "fetch-js",
    "eval-py",
    "filesystem-py",
    "wordcount-c",
    "fetch-rs",
    "filesystem-rs",
    "gomodule-go",
)
GRANT = re.compile(r"to allow it, run: (wassette permission grant .+)$", re.MULTILINE)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def server(env: dict[str, str]) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(command=sys.executable, args=["-m", "wassette", "run"], env=env)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as s:
        await s.initialize()
        yield s


async def load(s: ClientSession, wasm: Path) -> list[str]:
    """Loads a component through the built-in tool, as an agent would."""
    r = await s.call_tool("load-component", {"path": wasm.as_uri()})
    assert not r.is_error, text(r)
    tools: list[str] = json.loads(text(r))["tools"]
    return tools


def text(result: types.CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, types.TextContent))


def grant_from(result: types.CallToolResult, cli: Cli) -> str:
    """Runs the grant command the denial names, exactly as written."""
    assert result.is_error, text(result)
    commands = GRANT.findall(text(result))
    assert len(commands) == 1, text(result)
    argv = shlex.split(commands[0])
    r = cli(*argv[1:])
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["status"] == "permission granted successfully"
    return str(commands[0])


def audit(home: Path) -> list[dict[str, Any]]:
    path = home / "data" / "wassette" / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


# --- the example directories ---------------------------------------------------------------------


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_directory_is_complete(name: str) -> None:
    """WIT, source, a valid policy, a README with the commands, an executable build script."""
    from wassette.runtime import policy

    d = REPO / "examples" / name
    assert list((d / "wit").glob("*.wit"))
    policy.load_file(d / "policy.yaml")  # raises on anything invalid
    assert (d / "build.sh").stat().st_mode & stat.S_IXUSR
    readme = (d / "README.md").read_text()
    assert "wassette component load" in readme
    if name != "time-server-js":
        assert "wassette permission grant" in readme


@pytest.mark.parametrize("name", EXAMPLES)
def test_build_script_builds_the_example(name: str, examples: dict[str, Path]) -> None:
    """`examples/<name>/build.sh` runs the cached recipe (a no-op after the session build)."""
    script = REPO / "examples" / name / "build.sh"
    r = subprocess.run(
        [str(script)], env={**os.environ, "PYTHON": sys.executable}, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [name, str(examples[name])]


def test_examples_build_into_their_own_directories(examples: dict[str, Path]) -> None:
    assert set(examples) == set(EXAMPLES)
    for name, wasm in examples.items():
        assert wasm == REPO / "examples" / name / "build" / f"{name}.wasm"
        assert wasm.read_bytes()[:8] == b"\0asm\x0d\0\x01\0"  # a component, not a core module


# --- time-server-js: no permission at all --------------------------------------------------------


async def test_time_server_js(env: dict[str, str], examples: dict[str, Path]) -> None:
    async with server(env) as s:
        assert await load(s, examples["time-server-js"]) == ["convert-time", "get-current-time"]
        tools = {t.name: t for t in (await s.list_tools()).tools}
        assert tools["convert-time"].description.startswith("Re-expresses the ISO 8601 timestamp")
        r = await s.call_tool("get-current-time", {})
        assert not r.is_error
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r.structured_content["result"])
        r = await s.call_tool("convert-time", {"timestamp": "2026-11-22T09:30:00Z", "utc-offset": "+05:30"})
        assert r.structured_content == {"result": {"ok": "2026-11-22T15:00:00.000+05:30"}}
        r = await s.call_tool("convert-time", {"timestamp": "2026-11-22T09:30:00Z", "utc-offset": "-08:00"})
        assert r.structured_content == {"result": {"ok": "2026-11-22T01:30:00.000-08:00"}}
        r = await s.call_tool("convert-time", {"timestamp": "yesterday", "utc-offset": "Z"})
        assert r.is_error and 'cannot parse timestamp "yesterday"' in text(r)


# --- get-weather-js: one environment variable and one host ---------------------------------------


class LoopbackApi:
    """A small HTTP API on loopback: `answer(path)` gives (status, content
    type, body) for each GET; the paths asked for are kept in order."""

    def __init__(self, answer: Callable[[str], tuple[int, str, bytes]]) -> None:
        self.requests: list[str] = []
        requests = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                requests.append(self.path)
                code, content_type, data = answer(self.path)
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class FakeWeather(LoopbackApi):
    """The two OpenWeather endpoints the example uses, on loopback."""

    KEY = "test-key-123"

    def __init__(self) -> None:
        super().__init__(self._answer)

    @staticmethod
    def _answer(path: str) -> tuple[int, str, bytes]:
        url = urllib.parse.urlsplit(path)
        query = urllib.parse.parse_qs(url.query)
        body: Any
        if query.get("appid") != [FakeWeather.KEY]:
            code, body = 401, {"cod": 401, "message": "Invalid API key"}
        elif url.path == "/geo/1.0/direct":
            known = query["q"][0].lower() == "paris"
            code, body = 200, [{"name": "Paris", "lat": 48.86, "lon": 2.35, "country": "FR"}] * known
        elif url.path == "/data/2.5/weather" and query["units"] == ["metric"]:
            code, body = (
                200,
                {
                    "main": {"temp": 11.4, "humidity": 81},
                    "weather": [{"description": "light rain"}],
                    "wind": {"speed": 4.1},
                },
            )
        else:
            code, body = 404, {"message": "not found"}
        return code, "application/json", json.dumps(body).encode()


@pytest.fixture
def weather_api() -> Iterator[FakeWeather]:
    api = FakeWeather()
    yield api
    api.close()


async def test_get_weather_js(
    env: dict[str, str], cli: Cli, home: Path, examples: dict[str, Path], weather_api: FakeWeather
) -> None:
    env = {**env, "OPENWEATHER_API_KEY": FakeWeather.KEY, "OPENWEATHER_API_BASE": weather_api.base}
    async with server(env) as s:
        await load(s, examples["get-weather-js"])
        # 1. The key is in the server's environment, but not granted: invisible.
        r = await s.call_tool("get-weather", {"city": "Paris"})
        assert r.is_error
        assert (
            "grant it with `wassette permission grant environment-variable get-weather-js OPENWEATHER_API_KEY`"
            in text(r)
        )
        for key in ("OPENWEATHER_API_KEY", "OPENWEATHER_API_BASE"):
            assert cli("permission", "grant", "environment-variable", "get-weather-js", key).returncode == 0
        # 2. Now the key is there, the host is not: refused before any request.
        r = await s.call_tool("get-weather", {"city": "Paris"})
        command = grant_from(r, cli)
        assert command == f"wassette permission grant network get-weather-js {weather_api.base}"
        assert weather_api.requests == []
        assert FakeWeather.KEY not in text(r)  # the denial names the URL without its query
        # 3. Granted: two requests, the key sent, the answer typed by the WIT record.
        r = await s.call_tool("get-weather", {"city": "Paris"})
        assert not r.is_error, text(r)
        assert r.structured_content == {
            "result": {
                "ok": {
                    "city": "Paris",
                    "country": "FR",
                    "temperature-celsius": 11.4,
                    "conditions": "light rain",
                    "humidity-percent": 81,
                    "wind-speed-mps": 4.1,
                }
            }
        }
        assert [urllib.parse.urlsplit(p).path for p in weather_api.requests] == [
            "/geo/1.0/direct",
            "/data/2.5/weather",
        ]
        r = await s.call_tool("get-weather", {"city": "Atlantis"})
        assert r.is_error and "unknown city: Atlantis" in text(r)
    events = [e["event"] for e in audit(home) if e.get("component") == "get-weather-js"]
    assert events.count("granted") == 3 and events.count("denied") == 1


# --- fetch-js: one host at a time ----------------------------------------------------------------

PAGE = b"""<!doctype html>
<html><head><title>Sandbox notes</title><style>body{color:red}</style><script>alert(1)</script></head>
<body><nav><a href="/">Home</a></nav>
<h1>Sandbox notes</h1>
<p>Tools run as <strong>WebAssembly components</strong> &amp; see only what the
<a href="/policy.html">policy</a> grants.</p>
<h2>Steps</h2><ol><li>Load a component</li><li>Grant a permission</li></ol>
<pre>wassette run</pre><!-- hidden -->
</body></html>"""


@pytest.fixture
def site() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body, kind = (PAGE, "text/html") if self.path == "/" else (b'{"ok":true}', "application/json")
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{web.server_address[1]}"
    web.shutdown()
    web.server_close()


async def test_fetch_js(env: dict[str, str], cli: Cli, examples: dict[str, Path], site: str) -> None:
    async with server(env) as s:
        await load(s, examples["fetch-js"])
        r = await s.call_tool("fetch", {"url": f"{site}/"})
        assert grant_from(r, cli) == f"wassette permission grant network fetch-js {site}"
        r = await s.call_tool("fetch", {"url": f"{site}/"})
        assert not r.is_error, text(r)
        assert r.structured_content == {
            "result": {
                "ok": f"[Home]({site}/)\n\n# Sandbox notes\n\nTools run as **WebAssembly components** & "
                f"see only what the [policy]({site}/policy.html) grants.\n\n## Steps\n\n"
                "1. Load a component\n2. Grant a permission\n\n```\nwassette run\n```"
            }
        }
        r = await s.call_tool("fetch", {"url": f"{site}/data.json", "max-chars": 6})
        assert r.structured_content == {"result": {"ok": '{\n  "o\n\n[... 10 more characters]'}}
        # The grant is for that address and port only; a name for it is another host.
        port = site.rsplit(":", 1)[1]
        r = await s.call_tool("fetch", {"url": f"http://localhost:{port}/"})
        assert r.is_error and "denied: network http of" in text(r)


# --- fetch-rs: the same tool in Rust, over wasi:http directly -----------------------------------

NOTES = b"""<html><head><title>Field  notes</title></head><body>
<p>See <a href="sub/page.html">the next page</a>.</p><ul><li>one</li><li>two</li></ul>
<img src="pic.png" alt="a picture"></body></html>"""


@pytest.fixture
def rs_site() -> Iterator[tuple[str, list[str]]]:
    """A small web site on loopback: pages, a redirect, binary content; and the paths asked for."""
    requests: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            port = self.server.server_address[1]
            routes: dict[str, tuple[int, dict[str, str], bytes]] = {
                "/": (200, {"Content-Type": "text/html; charset=utf-8"}, PAGE),
                "/notes/": (200, {"Content-Type": "text/html"}, NOTES),
                "/data.json": (200, {"Content-Type": "application/json"}, b'{"ok":true}'),
                "/old": (302, {"Location": "/"}, b""),
                # A redirect to another host: that hop needs a grant of its own.
                "/away": (302, {"Location": f"http://localhost:{port}/"}, b""),
                "/blob": (200, {"Content-Type": "application/octet-stream"}, b"\0\1\2"),
            }
            code, headers, body = routes.get(self.path, (404, {"Content-Type": "text/plain"}, b"no"))
            self.send_response(code)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{web.server_address[1]}", requests
    web.shutdown()
    web.server_close()


async def test_fetch_rs(
    env: dict[str, str], cli: Cli, examples: dict[str, Path], rs_site: tuple[str, list[str]]
) -> None:
    site, requests = rs_site
    async with server(env) as s:
        assert await load(s, examples["fetch-rs"]) == ["fetch"]
        tools = {t.name: t for t in (await s.list_tools()).tools}
        assert tools["fetch"].description.startswith("Fetches `url` (http or https)")  # WIT docs kept
        r = await s.call_tool("fetch", {"url": f"{site}/"})
        assert "access denied" in text(r)
        assert grant_from(r, cli) == f"wassette permission grant network fetch-rs {site}"
        assert requests == []  # refused before anything was sent
        # The same Markdown as fetch-js gives for this page.
        expected = (
            f"[Home]({site}/)\n\n# Sandbox notes\n\nTools run as **WebAssembly components** & "
            f"see only what the [policy]({site}/policy.html) grants.\n\n## Steps\n\n"
            "1. Load a component\n2. Grant a permission\n\n```\nwassette run\n```"
        )
        r = await s.call_tool("fetch", {"url": f"{site}/"})
        assert r.structured_content == {"result": {"ok": expected}}, text(r)
        r = await s.call_tool("fetch", {"url": f"{site}/old"})
        assert r.structured_content == {"result": {"ok": expected}}, text(r)
        assert requests[-2:] == ["/old", "/"]
        # No heading of its own: the title heads the text; relative links made absolute.
        r = await s.call_tool("fetch", {"url": f"{site}/notes/"})
        assert r.structured_content == {
            "result": {
                "ok": f"# Field notes\n\nSee [the next page]({site}/notes/sub/page.html).\n\n"
                f"- one\n- two\n\n![a picture]({site}/notes/pic.png)"
            }
        }, text(r)
        r = await s.call_tool("fetch", {"url": f"{site}/data.json", "max-chars": 6})
        assert r.structured_content == {"result": {"ok": '{\n  "o\n\n[... 10 more characters]'}}
        r = await s.call_tool("fetch", {"url": f"{site}/blob"})
        assert r.is_error and "cannot show content of type application/octet-stream" in text(r)
        r = await s.call_tool("fetch", {"url": f"{site}/missing"})
        assert r.is_error and f"{site}/missing: HTTP 404" in text(r)
        r = await s.call_tool("fetch", {"url": "file:///etc/passwd"})
        assert r.is_error and "only http and https URLs" in text(r)
        # Each redirect hop is gated: the grant is for that address and port only.
        port = site.rsplit(":", 1)[1]
        r = await s.call_tool("fetch", {"url": f"{site}/away"})
        assert grant_from(r, cli) == f"wassette permission grant network fetch-rs http://localhost:{port}"
        assert requests[-1] == "/away"


# --- gomodule-go: standard Go over wasi:http, one proxy at a time ------------------------------


GO_MOD = (
    "module golang.org/x/text\n\ngo 1.23.0 // toolchain below\n\n"
    "require (\n\tgolang.org/x/tools v0.27.0 // indirect\n\tgolang.org/x/mod v0.22.0\n)\n"
    "require golang.org/x/sync v0.10.0\n"
)
GO_PROXY_ROUTES: dict[str, tuple[int, str | bytes]] = {
    "/golang.org/x/text/@latest": (200, '{"Version":"v0.21.0","Time":"2024-12-04T17:15:32Z"}'),
    "/golang.org/x/text/@v/list": (
        200,
        "v0.3.0\nv0.21.0\nv0.21.0-rc.2\nv0.9.0\nv0.21.0-rc.10\nv0.20.0\n",
    ),
    "/golang.org/x/text/@v/v0.20.0.info": (200, '{"Version":"v0.20.0","Time":"2024-11-05T10:00:00Z"}'),
    "/golang.org/x/text/@v/v0.20.0.mod": (200, GO_MOD.replace("1.23.0", "1.22")),
    "/golang.org/x/text/@v/v0.21.0.mod": (200, GO_MOD),
    "/github.com/!burnt!sushi/toml/@latest": (200, '{"Version":"v1.4.0","Time":"2024-06-13T08:07:28Z"}'),
    # No @latest (optional in the protocol): the highest release listed is the latest.
    "/example.com/files/@v/list": (200, "v1.0.0\nv1.1.0-rc.1\nv0.9.0\n"),
    "/example.com/files/@v/v1.0.0.info": (200, '{"Version":"v1.0.0","Time":"2023-01-02T03:04:05Z"}'),
    # Not UTF-8 (Latin-1): a WIT string must be, so the tool replaces the byte.
    "/example.com/latin1/@latest": (404, b"not found: caf\xe9"),
    # Enough versions that the answer is lowered in many pieces.
    "/example.com/many/@v/list": (200, "".join(f"v1.{i}.0\n" for i in range(3000))),
}


class FakeGoProxy(LoopbackApi):
    """A Go module proxy (the GOPROXY protocol's GET paths) on loopback, for the
    modules in GO_PROXY_ROUTES (one with capitals in its path); the paths asked for."""

    def __init__(self) -> None:
        super().__init__(self._answer)

    @staticmethod
    def _answer(path: str) -> tuple[int, str, bytes]:
        default = (404, f"not found: module {path[1:]}: no matching versions")
        code, body = GO_PROXY_ROUTES.get(path, default)
        data = body if isinstance(body, bytes) else body.encode()
        return code, "text/plain; charset=utf-8", data


@pytest.fixture
def go_proxy() -> Iterator[FakeGoProxy]:
    proxy = FakeGoProxy()
    yield proxy
    proxy.close()


async def test_gomodule_go(
    env: dict[str, str], cli: Cli, examples: dict[str, Path], go_proxy: FakeGoProxy
) -> None:
    proxy = go_proxy.base
    async with server(env) as s:
        assert sorted(await load(s, examples["gomodule-go"])) == [
            "latest-version",
            "list-versions",
            "module-info",
        ]
        tools = {t.name: t for t in (await s.list_tools()).tools}
        assert tools["latest-version"].description.startswith(
            "The latest version of the Go module"
        )  # WIT docs
        # Not granted: refused before anything is sent, with the grant that would allow it.
        r = await s.call_tool("latest-version", {"module-path": "golang.org/x/text", "proxy": proxy})
        assert "HTTP-request-denied" in text(r)
        assert grant_from(r, cli) == f"wassette permission grant network gomodule-go {proxy}"
        assert go_proxy.requests == []
        r = await s.call_tool("latest-version", {"module-path": "golang.org/x/text", "proxy": proxy})
        assert r.structured_content == {
            "result": {"ok": {"version": "v0.21.0", "time": "2024-12-04T17:15:32Z"}}
        }
        # Newest first by semantic version: a release above its release candidates, rc.10 above rc.2.
        r = await s.call_tool("list-versions", {"module-path": "golang.org/x/text", "proxy": proxy})
        assert r.structured_content == {
            "result": {"ok": ["v0.21.0", "v0.21.0-rc.10", "v0.21.0-rc.2", "v0.20.0", "v0.9.0", "v0.3.0"]}
        }
        r = await s.call_tool(
            "module-info", {"module-path": "golang.org/x/text", "version": "v0.20.0", "proxy": proxy}
        )
        requires = ["golang.org/x/tools v0.27.0", "golang.org/x/mod v0.22.0", "golang.org/x/sync v0.10.0"]
        assert r.structured_content == {
            "result": {
                "ok": {
                    "path": "golang.org/x/text",
                    "version": "v0.20.0",
                    "time": "2024-11-05T10:00:00Z",
                    "go-version": "1.22",
                    "requires": requires,
                }
            }
        }, text(r)
        r = await s.call_tool("module-info", {"module-path": "golang.org/x/text", "proxy": proxy})
        ok = r.structured_content["result"]["ok"]
        assert (ok["version"], ok["go-version"], ok["requires"]) == ("v0.21.0", "1.23.0", requires)
        assert go_proxy.requests[-2:] == ["/golang.org/x/text/@latest", "/golang.org/x/text/@v/v0.21.0.mod"]
        # The proxy protocol's case encoding: capitals become '!' and the lower case.
        r = await s.call_tool("latest-version", {"module-path": "github.com/BurntSushi/toml", "proxy": proxy})
        assert r.structured_content == {
            "result": {"ok": {"version": "v1.4.0", "time": "2024-06-13T08:07:28Z"}}
        }
        r = await s.call_tool("latest-version", {"module-path": "example.com/files", "proxy": proxy})
        assert r.structured_content == {
            "result": {"ok": {"version": "v1.0.0", "time": "2023-01-02T03:04:05Z"}}
        }
        assert go_proxy.requests[-3:] == [
            "/example.com/files/@latest",
            "/example.com/files/@v/list",
            "/example.com/files/@v/v1.0.0.info",
        ]
        r = await s.call_tool("list-versions", {"module-path": "example.com/many", "proxy": proxy})
        versions = r.structured_content["result"]["ok"]
        assert (
            len(versions) == 3000 and versions[:2] == ["v1.2999.0", "v1.2998.0"] and versions[-1] == "v1.0.0"
        )
        r = await s.call_tool("latest-version", {"module-path": "example.com/gone", "proxy": proxy})
        assert r.is_error and "example.com/gone: not found on the proxy: not found: module" in text(r)
        r = await s.call_tool("latest-version", {"module-path": "example.com/latin1", "proxy": proxy})
        assert r.is_error and "not found on the proxy: not found: caf\ufffd" in text(r)
        r = await s.call_tool("latest-version", {"module-path": "text", "proxy": proxy})
        assert r.is_error and "expected a path such as golang.org/x/text" in text(r)
        # Without `proxy`: the public proxy, which this server has not been granted.
        r = await s.call_tool("latest-version", {"module-path": "golang.org/x/text"})
        assert GRANT.findall(text(r)) == [
            "wassette permission grant network gomodule-go https://proxy.golang.org"
        ]


# --- eval-py: untrusted code stays in the sandbox ------------------------------------------------


async def test_eval_py(env: dict[str, str], cli: Cli, examples: dict[str, Path], tmp_path: Path) -> None:
    data = tmp_path.resolve() / "numbers"
    data.mkdir()
    (data / "numbers.txt").write_text("3 4 5\n")
    read = f"sum(int(n) for n in open({str(data / 'numbers.txt')!r}).read().split())"
    async with server({**env, "SERVER_SECRET": "hunter2"}) as s:
        await load(s, examples["eval-py"])
        r = await s.call_tool("eval", {"expression": "statistics.mean([2, 4, 9]) * 3"})
        assert r.structured_content == {"result": {"ok": "15"}}
        # The server's own environment and the host's files are not there.
        r = await s.call_tool("eval", {"expression": "dict(os.environ)"})
        assert r.structured_content == {"result": {"ok": "{}"}}
        r = await s.call_tool("eval", {"expression": "os.listdir('/')"})
        assert r.structured_content == {"result": {"ok": "[]"}}
        r = await s.call_tool("eval", {"expression": "socket.getaddrinfo('example.com', 443)"})
        assert r.is_error and "denied: network name lookup of example.com" in text(r)
        r = await s.call_tool("eval", {"expression": read})
        assert "PermissionError" in text(r)
        command = grant_from(r, cli)
        assert command.endswith(f"eval-py fs://{data}/numbers.txt --access read")
        r = await s.call_tool("eval", {"expression": read})
        assert r.structured_content == {"result": {"ok": "12"}}


# --- filesystem-py: read-only, then read-write, then a deny rule ---------------------------------


async def test_filesystem_py(
    env: dict[str, str], cli: Cli, examples: dict[str, Path], tmp_path: Path
) -> None:
    base = tmp_path.resolve() / "base"
    project = base / "project"
    (project / "docs").mkdir(parents=True)
    (project / "secrets").mkdir()
    (project / "README.md").write_text("# Project\n")
    (project / "docs" / "install.md").write_text("Install with pip.\n")
    (project / "secrets" / "token.txt").write_text("token")
    (project / ".env").write_text("API_KEY=xyz\n")
    (base / "scratch").mkdir()
    async with server({**env, "WASSETTE_STORAGE_BASE": str(base)}) as s:
        await load(s, examples["filesystem-py"])
        r = await s.call_tool("list-directory", {"path": str(project)})
        grant = grant_from(r, cli)
        assert grant == f"wassette permission grant storage filesystem-py fs://{project} --access read"
        r = await s.call_tool("list-directory", {"path": str(project)})
        entries = r.structured_content["result"]["ok"]
        assert [(e["name"], e["kind"]) for e in entries] == [
            (".env", "file"),
            ("README.md", "file"),
            ("docs", "directory"),
            ("secrets", "directory"),
        ]
        r = await s.call_tool("search-files", {"root": str(project), "pattern": "*.md", "containing": "pip"})
        assert r.structured_content == {"result": {"ok": [f"{project}/docs/install.md"]}}
        # Read-only: a write is refused, and the message says why and how to allow it.
        notes = project / "notes.md"
        r = await s.call_tool("write-file", {"path": str(notes), "content": "hello"})
        assert "granted read-only" in text(r)
        assert grant_from(r, cli).endswith(f"fs://{notes} --access write")
        r = await s.call_tool("write-file", {"path": str(notes), "content": "hello"})
        assert r.structured_content == {"result": {"ok": 5}}
        assert notes.read_text() == "hello"

        # The example's own policy: relative paths under the storage base, and deny rules.
        policy = REPO / "examples" / "filesystem-py" / "policy.yaml"
        assert cli("policy", "attach", "filesystem-py", str(policy)).returncode == 0
        r = await s.call_tool("list-directory", {"path": str(project)})
        names = [e["name"] for e in r.structured_content["result"]["ok"]]
        assert names == ["README.md", "docs", "notes.md"]  # denied entries are not even listed
        r = await s.call_tool("read-file", {"path": str(project / ".env")})
        assert r.is_error and "decided by permissions.storage.deny[0]" in text(r)
        assert "to allow it" not in text(r)  # no grant overrides a deny rule
        r = await s.call_tool("write-file", {"path": str(base / "scratch" / "out.md"), "content": "ok"})
        assert r.structured_content == {"result": {"ok": 2}}
        r = await s.call_tool("write-file", {"path": str(project / "README.md"), "content": "x"})
        assert r.is_error and (project / "README.md").read_text() == "# Project\n"


# --- wordcount-c: a compiled language ------------------------------------------------------------


async def test_wordcount_c(env: dict[str, str], cli: Cli, examples: dict[str, Path], tmp_path: Path) -> None:
    notes = tmp_path.resolve() / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("Wassette runs tools\nin a sandbox.\n")
    async with server(env) as s:
        assert await load(s, examples["wordcount-c"]) == ["count-file", "count-text"]
        r = await s.call_tool("count-text", {"text": "one two\nthree\n"})
        assert r.structured_content == {"result": {"lines": 2, "words": 3, "bytes": 14}}
        r = await s.call_tool("count-file", {"path": str(notes / "todo.txt")})
        assert r.structured_content == {"result": {"err": "Permission denied"}}
        assert grant_from(r, cli).endswith(f"wordcount-c fs://{notes}/todo.txt --access read")
        r = await s.call_tool("count-file", {"path": str(notes / "todo.txt")})
        assert r.structured_content == {"result": {"ok": {"lines": 2, "words": 6, "bytes": 34}}}


# --- filesystem-rs: the same tools in Rust (std::fs) ---------------------------------------------


async def test_filesystem_rs(
    env: dict[str, str], cli: Cli, examples: dict[str, Path], tmp_path: Path
) -> None:
    base = tmp_path.resolve() / "base"
    project = base / "project"
    (project / "docs" / "deep").mkdir(parents=True)
    (project / "secrets").mkdir()
    (project / "README.md").write_text("# Project\n")
    (project / "docs" / "install.md").write_text("Install with pip.\n")
    (project / "docs" / "deep" / "more.md").write_text("pip again\n")
    (project / "docs" / "logo.bin").write_bytes(b"\xff\xfe")
    (project / "secrets" / "token.md").write_text("pip token")
    (project / ".env").write_text("API_KEY=xyz\n")
    (base / "scratch").mkdir()
    async with server({**env, "WASSETTE_STORAGE_BASE": str(base)}) as s:
        assert await load(s, examples["filesystem-rs"]) == [
            "create-directory",
            "list-directory",
            "read-file",
            "search-files",
            "write-file",
        ]
        r = await s.call_tool("list-directory", {"path": str(project)})
        assert r.structured_content == {"result": {"err": f"{project}: Permission denied"}}
        grant = grant_from(r, cli)
        assert grant == f"wassette permission grant storage filesystem-rs fs://{project} --access read"
        r = await s.call_tool("list-directory", {"path": str(project)})
        assert r.structured_content == {
            "result": {
                "ok": [
                    {"name": ".env", "kind": "file", "size": 12},
                    {"name": "README.md", "kind": "file", "size": 10},
                    {"name": "docs", "kind": "directory", "size": 0},
                    {"name": "secrets", "kind": "directory", "size": 0},
                ]
            }
        }
        r = await s.call_tool("read-file", {"path": str(project / "README.md")})
        assert r.structured_content == {"result": {"ok": "# Project\n"}}
        r = await s.call_tool("read-file", {"path": str(project / "docs" / "logo.bin")})
        assert r.is_error and "not a UTF-8 text file" in text(r)
        # Top down: a directory's files before its subdirectories, each sorted.
        r = await s.call_tool("search-files", {"root": str(project), "pattern": "*.md", "containing": "pip"})
        found = [f"{project}/docs/install.md", f"{project}/docs/deep/more.md", f"{project}/secrets/token.md"]
        assert r.structured_content == {"result": {"ok": found}}
        r = await s.call_tool("search-files", {"root": str(project), "pattern": "*.md", "limit": 1})
        assert r.structured_content == {"result": {"ok": [f"{project}/README.md"]}}
        # Read-only: a write is refused, and the message says why and how to allow it.
        notes = project / "notes" / "today.md"
        r = await s.call_tool("create-directory", {"path": str(notes.parent)})
        assert "granted read-only" in text(r)
        assert grant_from(r, cli).endswith(f"fs://{notes.parent} --access write")
        r = await s.call_tool("create-directory", {"path": str(notes.parent)})
        assert r.structured_content == {"result": {"ok": None}}, text(r)
        assert notes.parent.is_dir()
        r = await s.call_tool("write-file", {"path": str(notes), "content": "héllo"})
        assert r.structured_content == {"result": {"ok": 6}}  # bytes, not characters
        assert notes.read_text() == "héllo"

        # The example's own policy: relative paths under the storage base, and deny rules.
        policy = REPO / "examples" / "filesystem-rs" / "policy.yaml"
        assert cli("policy", "attach", "filesystem-rs", str(policy)).returncode == 0
        r = await s.call_tool("list-directory", {"path": str(project)})
        names = [e["name"] for e in r.structured_content["result"]["ok"]]
        assert names == ["README.md", "docs", "notes"]  # denied entries are not even listed
        r = await s.call_tool("search-files", {"root": str(project), "pattern": "*.md", "containing": "pip"})
        assert r.structured_content == {"result": {"ok": found[:2]}}  # secrets/ is skipped
        r = await s.call_tool("read-file", {"path": str(project / ".env")})
        assert r.is_error and "decided by permissions.storage.deny[0]" in text(r)
        assert "to allow it" not in text(r)  # no grant overrides a deny rule
        r = await s.call_tool("write-file", {"path": str(base / "scratch" / "out.md"), "content": "ok"})
        assert r.structured_content == {"result": {"ok": 2}}
        r = await s.call_tool("write-file", {"path": str(project / "README.md"), "content": "x"})
        assert r.is_error and (project / "README.md").read_text() == "# Project\n"
