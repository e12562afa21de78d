"""The shared state (`--state postgresql://`), measured against a real
PostgreSQL (a throwaway cluster, tests/postgres.py):

- grant propagation: replicas A and B, each a `wassette serve --workers 1`;
  a grant made on A (the built-in tool, over MCP), then calls on B back to
  back until one sees it. Per round: from A's answer (the grant committed)
  to B's first answer that has it, and from sending the grant.
- per-call latency p50 over HTTP (raw keep-alive client, 2025-11-25 session)
  of the same server with the shared state and with the local directory, in
  alternating rounds (the database is not on the call path: both should be
  the same).

Usage: python benchmarks/shared_state.py [--rounds 200] [--calls 2000] [--json OUT]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from suite import clients, fixtures

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from postgres import Postgres  # noqa: E402  (the tests' throwaway cluster)

ANNOUNCE = re.compile(rb"serving MCP \(streamable-http\) at http://127\.0\.0\.1:(\d+)/mcp")


def home(root: Path, name: str, state: str | None) -> dict[str, str]:
    base = root / name
    for sub in ("data", "config", "cache"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(base),
        "XDG_DATA_HOME": str(base / "data"),
        "XDG_CONFIG_HOME": str(base / "config"),
        "XDG_CACHE_HOME": str(base / "cache"),
        "WASSETTE_CACHE_DIR": str(root / "compiled"),
        "WASSETTE_WORKERS": "1",
        "WASSETTE_SECRETS_KEY": base64.b64encode(bytes(32)).decode(),
    }
    if state:
        env["WASSETTE_STATE"] = state
    return env


def wassette(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "-m", "wassette", *args], env=env, check=True, capture_output=True)


class Server:
    """`wassette serve` of this interpreter (or `python`), with a raw client."""

    def __init__(self, env: dict[str, str], log: Path, *args: str, python: str = sys.executable) -> None:
        self.log = log
        with log.open("wb") as sink:
            self.proc = subprocess.Popen(
                [python, "-m", "wassette", "serve", "--bind-address", "127.0.0.1:0", *args],
                env=env,
                stdout=sink,
                stderr=sink,
            )
        deadline = time.monotonic() + 60
        while not (found := ANNOUNCE.search(log.read_bytes())):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(log.read_text())
            time.sleep(0.05)
        self.port = int(found.group(1))
        self.client = clients.connect_http(self.port)

    def stop(self) -> None:
        self.client.close()
        self.proc.terminate()
        self.proc.wait(10)


def p50_ms(server: Server, call: fixtures.Call, calls: int) -> float:
    """p50 in ms of `calls` calls after 200 to warm up (each answer checked)."""
    for _ in range(200):
        server.client.call(call.tool, call.arguments)
    samples = []
    for _ in range(calls):
        t = time.perf_counter()
        answer = server.client.call(call.tool, call.arguments)
        samples.append(time.perf_counter() - t)
        assert not answer.get("isError"), answer
    return statistics.median(samples) * 1000


def value(answer: dict[str, Any]) -> Any:
    assert not answer.get("isError"), answer
    return answer["structuredContent"]["result"]


def propagation(root: Path, url: str, io: Path, rounds: int) -> dict[str, Any]:
    env_a, env_b = home(root, "a", url), home(root, "b", url)
    wassette(env_a, "component", "load", io.as_uri())
    a = Server(env_a, root / "a.log", "--agent-grants", "allow")
    b = Server(env_b, root / "b.log", "--env", "K=on", "--agent-grants", "allow")
    committed, sent, polls = [], [], []
    try:
        for i in range(rounds):
            grant = i % 2 == 0  # grant, then revoke, so the policy stays one rule long
            want = "on" if grant else None
            tool = (
                "grant-environment-variable-permission" if grant else "revoke-environment-variable-permission"
            )
            t_sent = time.perf_counter()
            answer = a.client.call(tool, {"component_id": "io", "details": {"key": "K"}})
            assert not answer.get("isError"), answer
            t_committed = time.perf_counter()
            n = 0
            while True:
                n += 1
                if value(b.client.call("get-env", {"key": "K"})) == want:
                    break
            t_seen = time.perf_counter()
            committed.append((t_seen - t_committed) * 1000)
            sent.append((t_seen - t_sent) * 1000)
            polls.append(n)
    finally:
        a.stop()
        b.stop()
    return {
        "rounds": rounds,
        "after_commit_ms": summary(committed),
        "after_sending_ms": summary(sent),
        "calls_on_b_until_seen": summary([float(n) for n in polls]),
    }


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50": round(statistics.median(ordered), 3),
        "p99": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 3),
        "max": round(ordered[-1], 3),
    }


def latency(root: Path, url: str, calls: int, repeats: int) -> dict[str, Any]:
    subjects = {"postgresql": home(root, "pg", url), "local": home(root, "local", None)}
    call = fixtures.CALLS["io"]
    built = fixtures.build(["io"])
    for env in subjects.values():
        wassette(env, "component", "load", built["io"].as_uri())
    out: dict[str, list[float]] = {name: [] for name in subjects}
    for _ in range(repeats):
        for name, env in subjects.items():
            server = Server(env, root / f"{name}.log")
            try:
                out[name].append(p50_ms(server, call, calls))
            finally:
                server.stop()
    p50 = {name: round(statistics.median(v), 4) for name, v in out.items()}
    return {
        "fixture": "io (C, env-count)",
        "calls": calls,
        "rounds": repeats,
        "p50_ms": p50,
        "rounds_p50_ms": out,
        "ratio": round(p50["postgresql"] / p50["local"], 3),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=200, help="grant propagation rounds (default 200)")
    ap.add_argument("--calls", type=int, default=2000, help="timed calls per latency round (default 2000)")
    ap.add_argument("--repeats", type=int, default=3, help="latency rounds per subject (default 3)")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args()
    built = fixtures.build(["io"])
    pg = Postgres()
    try:
        with tempfile.TemporaryDirectory(prefix="wassette-bench-state-") as tmp:
            root = Path(tmp)
            results = {
                "postgres": subprocess.run(
                    [str(pg.bin / "postgres"), "--version"], capture_output=True, text=True
                ).stdout.strip(),
                "propagation": propagation(
                    root, pg.url.rsplit("/", 1)[0] + "/postgres", built["io"], args.rounds
                ),
            }
            import psycopg

            with psycopg.connect(pg.url, autocommit=True) as conn:
                conn.execute("CREATE DATABASE latency")
            lat_url = pg.url.rsplit("/", 1)[0] + "/latency"
            results["latency"] = latency(root, lat_url, args.calls, args.repeats)
    finally:
        pg.destroy()
    emit(results, args.json)
    return 0


def emit(results: dict[str, Any], path: Path | None) -> None:
    """Prints the results (JSON), and writes them to `path` when given."""
    text = json.dumps(results, indent=1)
    print(text)
    if path is not None:
        path.write_text(text + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
