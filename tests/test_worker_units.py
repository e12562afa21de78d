"""The parts `serve --workers N` is made of, alone: the bus between workers
and the shared session records."""

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from wassette.server.core.session import Session
from wassette.server.http.bus import MAX_MESSAGE_BYTES, Bus
from wassette.server.http.shared_sessions import SessionRecords

SID = "0123456789abcdef0123456789abcdef"


def test_bus_reaches_every_other_worker_and_skips_dead_ones(tmp_path: Path) -> None:
    a, b, c = (Bus(tmp_path, name) for name in ("worker-0", "worker-1", "worker-2"))
    got: dict[str, list[dict[str, Any]]] = {"a": [], "b": [], "c": []}
    arrived = threading.Semaphore(0)
    for key, bus in (("a", a), ("b", b), ("c", c)):
        bus.start(lambda m, key=key: (got[key].append(m), arrived.release()))
    # A socket file whose worker died (nobody reads it) is skipped.
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dead.bind(str(tmp_path / "worker-3.sock"))
    dead.close()
    a.send({"t": "tools"})
    for _ in range(2):
        assert arrived.acquire(timeout=5)
    assert got == {"a": [], "b": [{"t": "tools"}], "c": [{"t": "tools"}]}
    # Too large to relay: not sent, the sender goes on.
    a.send({"t": "answer", "sid": SID, "message": "x" * MAX_MESSAGE_BYTES})
    a.send({"t": "end", "sid": SID})
    for _ in range(2):
        assert arrived.acquire(timeout=5)
    assert got["b"][-1] == got["c"][-1] == {"t": "end", "sid": SID}
    assert len(got["b"]) == 2
    for bus in (a, b, c):
        bus.close()
    assert not list(tmp_path.glob("worker-[012].sock"))


def test_bus_in_a_directory_with_a_long_path(tmp_path: Path) -> None:
    """Longer than a socket address may be (107 bytes): still works."""
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    a, b = Bus(deep, "worker-0"), Bus(deep, "worker-1")
    got = threading.Event()
    b.start(lambda m: got.set())
    a.send({"t": "tools"})
    assert got.wait(5)
    a.close()
    b.close()


def test_bus_survives_garbage(tmp_path: Path) -> None:
    bus = Bus(tmp_path, "worker-0")
    got: list[dict[str, Any]] = []
    done = threading.Event()
    bus.start(lambda m: (got.append(m), done.set()))
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    for junk in (b"\xff\xfe", b"[1, 2]", b"{not json", json.dumps({"t": "tools"}).encode()):
        raw.sendto(junk, str(bus.path))
    assert done.wait(5)
    assert got == [{"t": "tools"}]
    bus.close()


@pytest.mark.parametrize(
    "sid",
    ["../../etc/passwd", "0123456789ABCDEF0123456789ABCDEF", SID + "0", "", "a" * 31 + "/", SID[:-1] + "\0"],
)
def test_session_records_refuse_ids_they_never_minted(tmp_path: Path, sid: str) -> None:
    records = SessionRecords(tmp_path)
    assert records.save(Session(session_id=sid, era="handshake")) is None
    assert records.stamp(sid) is None
    assert records.load(sid, Session()) is None
    records.touch(sid)
    records.remove(sid)
    assert list(tmp_path.iterdir()) == []


def test_session_records_round_trip_and_change(tmp_path: Path) -> None:
    records = SessionRecords(tmp_path)
    session = Session(session_id=SID, era="handshake")
    session.version, session.initialized = "2025-06-18", True
    session.client_capabilities = {"elicitation": {}}
    session.client_info = {"name": "c", "version": "1"}
    first = records.save(session)
    copy = Session(session_id=SID, era="handshake")
    assert records.load(SID, copy) == (first, None) and first == records.stamp(SID)
    assert (copy.version, copy.initialized, copy.client_initialized) == ("2025-06-18", True, False)
    assert copy.can_elicit() and copy.client_info == {"name": "c", "version": "1"}
    session.client_initialized, session.log_level = True, 3
    second = records.save(session, stream=1)  # worker 1 holds the GET stream now
    assert second != first
    assert records.load(SID, copy) == (second, 1)
    assert copy.client_initialized and copy.log_level == 3
    # Marked as used: the atime moves, what says "changed" (the mtime) does not.
    os.utime(tmp_path / f"{SID}.json", (1, 1))  # unused since 1970
    aged = records.stamp(SID)
    assert records.expired(60) == [SID]
    records.touch(SID)
    assert records.expired(60) == [] and records.stamp(SID) == aged
    # A corrupt record is no session.
    (tmp_path / f"{SID}.json").write_text("{")
    assert records.load(SID, copy) is None
    records.remove(SID)
    assert records.stamp(SID) is None
