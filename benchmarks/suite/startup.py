"""Start-up: process start to a complete tools/list (every component tool
listed; Wassette 0.8 answers initialize at once and adds components as it
loads them in the background), with 0 and 10 components, cold (no compiled
artifacts) and warm. Also the time to the first successful tools/call after
that, which shows work deferred past the listing (lazy imports, lazy loads,
Wassette's background compilation).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

from suite import clients, fixtures
from suite.stats import Records
from suite.subjects import Subject, free_port


def _first_call(client: clients.RawStdio | clients.RawHttp, names: list[str], t0: float) -> float | None:
    """Time to the first successful call of the set's `strings` component (if
    the set has one). Wassette 0.8 lists tools from its metadata cache before
    it has compiled them, and answers "Tool not found" until then: retried."""
    call = fixtures.UNIQUE
    if call.tool not in names:
        return None
    while True:
        result = client.call(call.tool, call.arguments)
        if clients.tool_ok(result):
            return time.perf_counter() - t0
        if "not found" not in json.dumps(result) or time.perf_counter() - t0 > clients.LIST_LIMIT_S:
            raise RuntimeError(f"first call failed: {result}")
        time.sleep(0.001)


def stdio(subject: Subject, component_dir: Path, expected: int) -> tuple[float, float | None]:
    t0 = time.perf_counter()
    with subject.process(subject.stdio_command(component_dir), stdio=True) as proc:
        client = clients.RawStdio(proc)
        client.initialize()
        names = clients.wait_listed(client, expected, t0)
        return time.perf_counter() - t0, _first_call(client, names, t0)


def http(subject: Subject, component_dir: Path, expected: int) -> tuple[float, float | None]:
    port = free_port()
    t0 = time.perf_counter()
    with subject.process(subject.http_command(component_dir, port), stdio=False):
        client = clients.connect_http(port)
        try:
            names = clients.wait_listed(client, expected, t0)
            return time.perf_counter() - t0, _first_call(client, names, t0)
        finally:
            client.close()


@contextlib.contextmanager
def _state(subject: Subject, component_dir: Path, cache: str) -> Iterator[None]:
    if cache == "cold":
        with subject.cold(component_dir):
            yield
    else:
        yield


def measure(
    records: Records,
    subject: Subject,
    component_dir: Path,
    components: int,
    cache: str,
    transport: str,
    expected: int,
    repeat: int,
) -> None:
    with _state(subject, component_dir, cache):
        listed, first_call = (stdio if transport == "stdio" else http)(subject, component_dir, expected)
    records.add(
        "startup",
        subject.name,
        repeat,
        transport=transport,
        components=components,
        cache=cache,
        tools_list_ms=round(listed * 1000, 2),
        first_call_ms=round(first_call * 1000, 2) if first_call is not None else None,
    )
