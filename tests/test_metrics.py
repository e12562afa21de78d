"""`GET /metrics`: scraped by a real Prometheus server (Debian's
`prometheus`, started on loopback by the fixture), from a worker set whose
workers' values add up, behind the server's own token."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from homes import Cli
from postgres import free_port
from servers import RawSession, http_server

pytestmark = pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus is not installed")

TOKEN = "metrics-test-token"
REPO = Path(__file__).resolve().parent.parent


class Prometheus:
    def __init__(self, target: str, token: str | None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="wassette-prom-"))
        auth = f"    authorization:\n      credentials: {token}\n" if token else ""
        (self.dir / "prometheus.yml").write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            "scrape_configs:\n  - job_name: wassette\n    metrics_path: /metrics\n"
            f"{auth}    static_configs:\n      - targets: ['{target}']\n"
        )
        self.port = free_port()
        self.log = self.dir / "log"
        with self.log.open("wb") as sink:
            self.proc = subprocess.Popen(
                [
                    "prometheus",
                    f"--config.file={self.dir / 'prometheus.yml'}",
                    f"--storage.tsdb.path={self.dir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=sink,
                stderr=sink,
            )
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(self.log.read_text())
            time.sleep(0.1)

    def query(self, expr: str) -> list[dict[str, Any]]:
        r = httpx.get(f"{self.url}/api/v1/query?query={urllib.parse.quote(expr)}", timeout=10)
        assert r.status_code == 200, r.text
        result: list[dict[str, Any]] = r.json()["data"]["result"]
        return result

    def wait_for(self, expr: str, want: float, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            found = self.query(expr)
            if found and float(found[0]["value"][1]) == want:
                return
            if time.monotonic() > deadline:
                targets = httpx.get(f"{self.url}/api/v1/targets", timeout=10).text
                raise AssertionError(f"{expr}: {found}, want {want}; targets: {targets}")
            time.sleep(0.2)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def served(env: dict[str, str], tmp_path: Path, components: dict[str, Path]) -> Iterator[Any]:
    cli = Cli(env)
    for name in ("arith", "io"):
        assert cli("component", "load", components[name].as_uri()).returncode == 0
    environment = {**env, "WASSETTE_WORKERS": "2", "WASSETTE_AUTH_TOKEN": TOKEN}
    with http_server(environment, tmp_path / "serve.log") as server:
        yield server


def call(url: str, count: int, tool: str, args: dict[str, Any]) -> None:
    """`count` calls, each on a new connection (so over both workers)."""
    for _ in range(count):
        session = RawSession(url, headers={"authorization": f"Bearer {TOKEN}"})
        r = session.call(1, tool, args)
        assert r.status_code == 200, r.text


def test_prometheus_scrapes_every_workers_calls(served: Any) -> None:
    base = served.base
    assert httpx.get(f"{base}/metrics", timeout=10).status_code == 401  # behind the token
    prometheus = Prometheus(base.removeprefix("http://"), TOKEN)
    try:
        call(served.url, 6, "add", {"a": 1, "b": 2})
        call(served.url, 3, "read-file", {"path": "/etc/hostname"})  # refused: no storage grant
        prometheus.wait_for('sum(wassette_tool_calls_total{tool="add", outcome="ok"})', 6)
        prometheus.wait_for('sum(wassette_tool_calls_total{tool="read-file"})', 3)
        prometheus.wait_for('sum(wassette_denials_total{component="io", kind="storage"})', 3)
        prometheus.wait_for('sum(wassette_tool_call_duration_seconds_count{component="arith"})', 6)
        prometheus.wait_for("max(wassette_components)", 2)
        prometheus.wait_for("sum(wassette_tool_calls_in_flight)", 0)
        # Each worker compiled its components once, from the artifact cache.
        prometheus.wait_for('clamp_max(sum(wassette_compiles_total{cached="true"}), 1)', 1)
        prometheus.wait_for('up{job="wassette"}', 1)
        # Every query of the Grafana dashboard in deploy/ runs, and those about calls have data.
        dashboard = json.loads((REPO / "deploy/grafana/wassette.json").read_text())
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                deadline = time.monotonic() + 20  # a rate needs two scrapes of the series
                while not prometheus.query(target["expr"]):
                    assert time.monotonic() < deadline, (panel["title"], target["expr"])
                    time.sleep(0.2)
    finally:
        prometheus.close()
    text = httpx.get(f"{base}/metrics", headers={"authorization": f"Bearer {TOKEN}"}, timeout=10).text
    lines = [line for line in text.splitlines() if line.startswith("wassette_tool_calls_total{")]
    add = [line for line in lines if 'tool="add"' in line and 'outcome="ok"' in line]
    assert len(add) == 1 and add[0].endswith(" 6.0"), lines  # both workers' calls, added up


def test_metrics_can_be_public(env: dict[str, str], tmp_path: Path) -> None:
    environment = {
        **env,
        "WASSETTE_WORKERS": "1",
        "WASSETTE_AUTH_TOKEN": TOKEN,
        "WASSETTE_METRICS_PUBLIC": "1",
    }
    with http_server(environment, tmp_path / "serve.log") as server:
        r = httpx.get(f"{server.base}/metrics", timeout=10)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        assert 'wassette_components{tenant=""} 0.0' in r.text
        assert httpx.get(f"{server.base}/info", timeout=10).status_code == 401  # only /metrics is open
        assert json.loads(httpx.get(f"{server.base}/health", timeout=10).text) == {"status": "ok"}


def test_logs_as_json_lines(env: dict[str, str], tmp_path: Path) -> None:
    """`WASSETTE_LOG_FORMAT=json`: every line of the server's log is one
    JSON object with the documented keys."""
    environment = {**env, "WASSETTE_WORKERS": "2", "WASSETTE_LOG_FORMAT": "json"}
    with http_server(environment, tmp_path / "serve.log") as server:
        assert server.url.endswith("/mcp")
        assert httpx.get(f"{server.base}/health", timeout=10).status_code == 200
    lines = [line for line in (tmp_path / "serve.log").read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]
    assert all(set(r) >= {"ts", "level", "logger", "message"} for r in records), records
    assert any(r["message"].startswith("serving MCP (streamable-http) at http://") for r in records)
    assert {r["level"] for r in records} <= {"debug", "info", "warning", "error", "critical"}
