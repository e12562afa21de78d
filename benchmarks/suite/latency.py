"""Tool-call latency, p50/p99, over stdio and Streamable HTTP, with the
official client (`sdk`) and the minimal one (`raw`), for each fixture.

One server per subject, transport and client serves all four fixtures (each
in the component directory under its own name); once its tools/list is
complete and it had clients.SETTLE_S to settle, each fixture gets a warm-up and then
`calls` timed calls, one after the other.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio

from suite import clients, fixtures
from suite.stats import Records, latency_ms
from suite.subjects import Subject, free_port


def _warmup(calls: int) -> int:
    return max(10, calls // 10)


def _timed(call: Any, calls: int) -> list[float]:
    samples = []
    for i in range(_warmup(calls) + calls):
        t = time.perf_counter()
        call()
        elapsed = time.perf_counter() - t
        if i >= _warmup(calls):
            samples.append(elapsed)
    return samples


def raw_stdio(subject: Subject, component_dir: Path, expected: int, calls: int) -> dict[str, list[float]]:
    with subject.process(subject.stdio_command(component_dir), stdio=True) as proc:
        client = clients.RawStdio(proc)
        client.initialize()
        clients.wait_listed(client, expected)
        time.sleep(clients.SETTLE_S)
        return _each_fixture(client, subject, calls)


def raw_http(port: int, calls: int, subject: Subject) -> dict[str, list[float]]:
    client = clients.connect_http(port)
    try:
        return _each_fixture(client, subject, calls)
    finally:
        client.close()


def _each_fixture(
    client: clients.RawStdio | clients.RawHttp, subject: Subject, calls: int
) -> dict[str, list[float]]:
    """Per fixture, the times of `calls` calls one after the other."""
    out: dict[str, list[float]] = {}
    for name, c in fixtures.CALLS.items():
        what = f"{subject.name} {c.tool}"
        out[name] = _timed(lambda c=c, what=what: clients.call_ok(client, c.tool, c.arguments, what), calls)
    return out


async def _sdk_calls(session: Any, calls: int, subject: Subject) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for name, c in fixtures.CALLS.items():
        samples = []
        for i in range(_warmup(calls) + calls):
            t = time.perf_counter()
            result = await session.call_tool(c.tool, c.arguments)
            elapsed = time.perf_counter() - t
            if result.is_error:
                raise RuntimeError(f"{subject.name} {c.tool}: {result}")
            if i >= _warmup(calls):
                samples.append(elapsed)
        out[name] = samples
    return out


def sdk_stdio(subject: Subject, component_dir: Path, expected: int, calls: int) -> dict[str, list[float]]:
    async def run() -> dict[str, list[float]]:
        async with clients.sdk_stdio(subject.stdio_command(component_dir), subject.env) as session:
            await clients.sdk_wait_listed(session, expected)
            await anyio.sleep(clients.SETTLE_S)
            return await _sdk_calls(session, calls, subject)

    return anyio.run(run)


def sdk_http(port: int, calls: int, subject: Subject) -> dict[str, list[float]]:
    async def run() -> dict[str, list[float]]:
        async with clients.sdk_http(port) as session:
            return await _sdk_calls(session, calls, subject)

    return anyio.run(run)


def measure(
    records: Records,
    subject: Subject,
    component_dir: Path,
    expected: int,
    calls: int,
    repeat: int,
    transports: tuple[str, ...] = ("stdio", "http"),
) -> None:
    def keep(transport: str, client: str, results: dict[str, list[float]]) -> None:
        for name, samples in results.items():
            records.add(
                "latency",
                subject.name,
                repeat,
                transport=transport,
                client=client,
                fixture=name,
                **latency_ms(samples),
            )

    if "stdio" in transports:
        keep("stdio", "raw", raw_stdio(subject, component_dir, expected, calls))
        keep("stdio", "sdk", sdk_stdio(subject, component_dir, expected, calls))
    if "http" in transports:
        port = free_port()
        with subject.process(subject.http_command(component_dir, port), stdio=False):
            first = clients.connect_http(port)
            clients.wait_listed(first, expected)
            first.close()
            time.sleep(clients.SETTLE_S)
            keep("http", "raw", raw_http(port, calls, subject))
            keep("http", "sdk", sdk_http(port, calls, subject))
