"""Memory: server RSS with 1, 10 and 50 components loaded (once RSS settles
after a complete tools/list; for ours also after one call to every
component), and the
per-call peak: with the four fixtures loaded, the rise of peak RSS (VmHWM,
reset before) over RSS during 20 calls of one fixture after a warm-up call.
"""

from __future__ import annotations

import time
from pathlib import Path

from suite import clients, fixtures
from suite.stats import Records
from suite.subjects import Subject, free_port, process_tree, reset_peak, rss_kib

# RSS counts as settled when it moved less than this over SETTLE_WINDOW_S.
SETTLE_MIB = 1.0
SETTLE_WINDOW_S = 1.0
SETTLE_LIMIT_S = 120.0


def settled_rss_kib(pid: int) -> int:
    """RSS once it stops moving: Wassette 0.8 lists tools from its metadata
    before it has loaded the components, then keeps loading them."""
    deadline = time.monotonic() + SETTLE_LIMIT_S
    last = rss_kib(pid)["VmRSS"]
    while True:
        time.sleep(SETTLE_WINDOW_S)
        now = rss_kib(pid)["VmRSS"]
        if abs(now - last) < SETTLE_MIB * 1024 or time.monotonic() > deadline:
            return now
        last = now


def _tool_for(component_id: str, names: list[str]) -> str:
    """Ours' name for the component's tool: plain, or `<id>__<tool>` where
    several components export the same name."""
    tool = fixtures.call_for(component_id).tool
    qualified = f"{component_id}__{tool}"
    return qualified if qualified in names else tool


def loaded(
    records: Records, subject: Subject, component_dir: Path, components: int, expected: int, repeat: int
) -> None:
    """RSS after a complete tools/list; for ours also after one call to every
    component (Wassette 0.8 has loaded them all by then; it cannot call a
    tool name that several components export)."""
    with subject.process(subject.stdio_command(component_dir), stdio=True) as proc:
        client = clients.RawStdio(proc)
        client.initialize()
        names = clients.wait_listed(client, expected)
        idle = settled_rss_kib(proc.pid)
        called = None
        if subject.is_ours:
            for path in sorted(component_dir.glob("*.wasm")):
                cid = path.name[: -len(".wasm")]
                clients.call_ok(
                    client, _tool_for(cid, names), fixtures.call_for(cid).arguments, f"{subject.name}: {cid}"
                )
            called = settled_rss_kib(proc.pid)
    records.add(
        "memory",
        subject.name,
        repeat,
        components=components,
        idle_mib=round(idle / 1024, 1),
        all_called_mib=round(called / 1024, 1) if called is not None else None,
    )


def per_call(
    records: Records, subject: Subject, component_dir: Path, expected: int, calls: int, repeat: int
) -> None:
    with subject.process(subject.stdio_command(component_dir), stdio=True) as proc:
        client = clients.RawStdio(proc)
        client.initialize()
        clients.wait_listed(client, expected)
        for name, call in fixtures.CALLS.items():
            client.call(call.tool, call.arguments)  # loads and warms this component
            time.sleep(0.2)
            before = rss_kib(proc.pid)["VmRSS"]
            reset_peak(proc.pid)
            for _ in range(calls):
                clients.call_ok(client, call.tool, call.arguments, f"{subject.name}: {name}")
            peak = rss_kib(proc.pid)["VmHWM"]
            records.add(
                "memory_call",
                subject.name,
                repeat,
                fixture=name,
                rss_mib=round(before / 1024, 1),
                peak_rise_mib=round(max(0, peak - before) / 1024, 2),
            )


def workers(
    records: Records, subject: Subject, component_dir: Path, components: int, expected: int, repeat: int
) -> None:
    """Ours over HTTP with `--workers 2`: RSS of the parent, of each worker
    and of the whole set, once idle after a complete tools/list and a call
    to every component through each worker."""
    port = free_port()
    with subject.process(subject.http_command(component_dir, port, 2), stdio=False) as proc:
        client = clients.connect_http(port)
        names = clients.wait_listed(client, expected)
        client.close()
        clients.wait_workers(port, 2)
        seen: set[int] = set()
        while len(seen) < 2:  # new connections until both workers served every component
            client = clients.RawHttp(port)
            worker = client.worker()
            if worker not in seen:
                client.initialize()
                for path in sorted(component_dir.glob("*.wasm")):
                    cid = path.name[: -len(".wasm")]
                    clients.call_ok(
                        client,
                        _tool_for(cid, names),
                        fixtures.call_for(cid).arguments,
                        f"{subject.name}: {cid}",
                    )
                seen.add(worker)
            client.close()
        members = process_tree(proc.pid)
        each = [settled_rss_kib(pid) for pid in members]
    records.add(
        "memory_workers",
        subject.name,
        repeat,
        components=components,
        parent_mib=round(each[0] / 1024, 1),
        worker_mib=[round(kib / 1024, 1) for kib in each[1:]],
        total_mib=round(sum(each) / 1024, 1),
    )
