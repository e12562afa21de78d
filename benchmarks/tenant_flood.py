"""What one tenant's flood does to another tenant's calls: p50 of `acme`'s
calls (the C `io` component, raw keep-alive HTTP client, OAuth tokens of a
real issuer on loopback) while the server is quiet, while tenant `greedy`
(no quota) floods it with CPU-bound calls from 16 connections, and while
tenant `capped` (quota `concurrent_calls = 1`) floods it the same way.
The flood calls `spin` (a loop, stopped by its policy's 200 ms limit).

Usage: python benchmarks/tenant_flood.py [--calls 400] [--flooders 16] [--json OUT]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from shared_state import Server, emit, home, wassette
from suite import clients, fixtures

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from issuer import RESOURCE, Issuer  # noqa: E402  (the tests' issuer)

CONFIG = '[tenants]\nclaim = "org"\n[tenants.quota.capped]\nconcurrent_calls = 1\n'
SPIN_POLICY = 'version: "1.0"\npermissions:\n  resources: {limits: {timeout: 200ms}}\n'


def connect(port: int, token: str) -> clients.RawHttp:
    client = clients.RawHttp(port)
    client.headers["authorization"] = f"Bearer {token}"
    client.initialize()
    return client


def p50_ms(client: clients.RawHttp, call: fixtures.Call, calls: int) -> float:
    samples = []
    for _ in range(calls):
        t = time.perf_counter()
        answer = client.call(call.tool, call.arguments)
        samples.append(time.perf_counter() - t)
        assert not answer.get("isError"), answer
    return statistics.median(samples) * 1000


def flooded(port: int, token: str, flooders: int, measure: Any) -> tuple[float, dict[str, int]]:
    """`measure()` while `flooders` connections call `spin` without pause."""
    stop = threading.Event()
    outcomes: dict[str, int] = {"ran": 0, "over_quota": 0}
    lock = threading.Lock()

    def flood() -> None:
        client = connect(port, token)
        while not stop.is_set():
            try:
                client.call("spin", {})
                outcome = "ran"
            except RuntimeError as e:  # the raw client's word for a status other than 2xx
                if "429" not in str(e):
                    raise
                outcome = "over_quota"
                client.close()  # its answer was not read: a new connection
                client = connect(port, token)
            with lock:
                outcomes[outcome] += 1
        client.close()

    threads = [threading.Thread(target=flood) for _ in range(flooders)]
    for t in threads:
        t.start()
    try:
        while sum(outcomes.values()) < flooders:  # the flood is on
            time.sleep(0.01)
        return measure(), outcomes
    finally:
        stop.set()
        for t in threads:
            t.join(30)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=400)
    ap.add_argument("--flooders", type=int, default=16)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    built = fixtures.build(["io"])
    spin = REPO / "tests/components/build/spin.wasm"
    call = fixtures.CALLS["io"]
    issuer = Issuer()
    try:
        with tempfile.TemporaryDirectory(prefix="wassette-bench-flood-") as tmp:
            env = home(Path(tmp), "h", None)
            (Path(env["XDG_CONFIG_HOME"]) / "wassette").mkdir(parents=True, exist_ok=True)
            (Path(env["XDG_CONFIG_HOME"]) / "wassette" / "config.toml").write_text(CONFIG)
            policy = Path(tmp) / "spin.yaml"
            policy.write_text(SPIN_POLICY)
            wassette(env, "component", "load", built["io"].as_uri(), "--tenant", "acme")
            for tenant in ("greedy", "capped"):
                wassette(env, "component", "load", spin.as_uri(), "--tenant", tenant)
                wassette(env, "policy", "attach", "spin", str(policy), "--tenant", tenant)
            clients.HTTP_HEADERS["authorization"] = (
                f"Bearer {issuer.token(org='acme', scope='wassette:tools')}"
            )
            try:
                server = Server(
                    env, Path(tmp) / "serve.log", "--oauth-issuer", issuer.url, "--oauth-resource", RESOURCE
                )
            finally:
                clients.HTTP_HEADERS.pop("authorization", None)
            try:
                acme = server.client
                for _ in range(200):
                    acme.call(call.tool, call.arguments)
                p50 = {"quiet": p50_ms(acme, call, args.calls)}
                outcomes = {}
                for tenant in ("greedy", "capped"):
                    token = issuer.token(org=tenant, sub=f"{tenant}-bot", scope="wassette:tools")
                    p50[tenant], outcomes[tenant] = flooded(
                        server.port, token, args.flooders, lambda: p50_ms(acme, call, args.calls)
                    )
                p50["quiet_after"] = p50_ms(acme, call, args.calls)
            finally:
                server.stop()
    finally:
        issuer.close()
    results = {
        "fixture": "io (C, env-count), acme's calls",
        "calls": args.calls,
        "flooders": args.flooders,
        "p50_ms": {k: round(v, 4) for k, v in p50.items()},
        "ratio_to_quiet": {k: round(v / p50["quiet"], 3) for k, v in p50.items()},
        "flood_outcomes": outcomes,
    }
    emit(results, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
