"""Throughput over Streamable HTTP: calls per second with 1, 4 and 16
concurrent clients (each its own session on its own keep-alive connection,
one call after the other), for the C and the JS fixture; ours with
`--workers 1` and `--workers 2`.

The clients run on asyncio in this process; on a 2-core machine they share
the CPU with the server, the same way for both servers. Each cell records
the CPU the clients (this process) and the server (all its processes) used,
as a share of one core.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from suite import clients, fixtures
from suite.stats import Records
from suite.subjects import Subject, cpu_seconds, free_port, process_tree

FIXTURES = ("io", "time-server")
CONCURRENCY = (1, 4, 16)
WORKERS = (1, 2)


async def calls_per_second(port: int, call: fixtures.Call, concurrency: int, seconds: float) -> float:
    conns = [await clients.AsyncHttp.open(port) for _ in range(concurrency)]
    try:
        await asyncio.gather(*(c.initialize() for c in conns))
        counted = 0
        start = time.perf_counter() + min(1.0, seconds / 3)  # warm-up before counting
        end = start + seconds

        async def worker(conn: clients.AsyncHttp) -> None:
            nonlocal counted
            params = {"name": call.tool, "arguments": call.arguments}
            while True:
                conn.next_id += 1
                body = {"jsonrpc": "2.0", "id": conn.next_id, "method": "tools/call", "params": params}
                _, answer = await conn.post(json.dumps(body).encode())
                now = time.perf_counter()
                reply = clients.sse_or_json(answer)
                if not clients.tool_ok(reply.get("result", {})):
                    raise RuntimeError(f"{call.tool}: {reply}")
                if now >= end:
                    return
                if now >= start:
                    counted += 1

        await asyncio.gather(*(worker(c) for c in conns))
        return counted / seconds
    finally:
        for c in conns:
            c.close()


def measure(
    records: Records, subject: Subject, component_dir: Path, expected: int, seconds: float, repeat: int
) -> None:
    for workers in WORKERS if subject.is_ours else (None,):
        port = free_port()
        with subject.process(subject.http_command(component_dir, port, workers), stdio=False) as proc:
            first = clients.connect_http(port)
            clients.wait_listed(first, expected)
            first.close()
            if workers is not None:
                clients.wait_workers(port, workers)
            time.sleep(clients.SETTLE_S)
            server = process_tree(proc.pid)
            for name in FIXTURES:
                for concurrency in CONCURRENCY:
                    client_before, server_before = time.process_time(), cpu_seconds(server)
                    began = time.perf_counter()
                    rate = asyncio.run(calls_per_second(port, fixtures.CALLS[name], concurrency, seconds))
                    elapsed = time.perf_counter() - began
                    extra = {"workers": workers} if workers is not None else {}
                    records.add(
                        "throughput",
                        subject.name,
                        repeat,
                        fixture=name,
                        concurrency=concurrency,
                        calls_per_s=round(rate, 1),
                        client_cpu=round((time.process_time() - client_before) / elapsed, 2),
                        server_cpu=round((cpu_seconds(server) - server_before) / elapsed, 2),
                        **extra,
                    )
