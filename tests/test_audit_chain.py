"""The tamper-evident audit log: every record chained to the one before,
signed checkpoints, `wassette audit verify` naming each kind of tampering
where it is, `wassette audit export` for shipping, one `call` record per
tool call, and a chain that stays linear while processes append at once."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from wassette.cli.main import main
from wassette.runtime import audit as audit_module
from wassette.runtime.audit import AuditLog, checkpoint_file
from wassette.runtime.audit_chain import (
    GENESIS,
    canonical,
    ensure_key,
    head_of,
    read_head,
    record_hash,
    seal,
    sign,
)
from wassette.runtime.audit_verify import Excerpt, Verifier, parse_time, verify_lines
from wassette.runtime.calls import CallResult, call_record
from wassette.runtime.naming import Tool

# -- pure logic ----------------------------------------------------------------------


def test_a_sealed_line_carries_the_hash_of_its_canonical_form() -> None:
    entry = {"ts": "t", "event": "granted", "component": "c", "details": {"path": "/tmp/ü"}}
    line, digest = seal(entry, 7, GENESIS)
    record = json.loads(line)
    assert record["chain"] == {"seq": 7, "prev": GENESIS, "hash": digest}
    assert record_hash(record) == digest
    assert "/tmp/ü" in line.decode()  # UTF-8, not \u escapes
    record["details"]["path"] = "/tmp/u"
    assert record_hash(record) != digest
    # Key order and spacing do not matter: the hash is of the canonical form.
    assert canonical({"b": 1, "a": [1, 2]}) == b'{"a":[1,2],"b":1}'
    # A path that is no valid Unicode is still written and hashed alike.
    odd, odd_hash = seal({"ts": "t", "event": "denied", "resource": "/x\udcff"}, 0, GENESIS)
    assert record_hash(json.loads(odd)) == odd_hash


def test_the_head_is_the_last_chained_record_past_torn_lines(tmp_path: Path) -> None:
    lines = [seal({"ts": "t", "event": "e", "n": i, "pad": "x" * 50}, i, GENESIS)[0] for i in range(40)]
    data = b"".join(lines) + b'{"torn": \nnot json\n{"unchained": 1}\n'
    assert (head := head_of(data)) is not None and head.seq == 39
    path = tmp_path / "log"
    path.write_bytes(data)
    import os

    fd = os.open(path, os.O_RDONLY)
    try:
        for chunk in (7, 100, 64 * 1024):  # lines across chunk boundaries
            assert read_head(fd, len(data), chunk).seq == 39
        assert read_head(fd, 0).seq == -1
    finally:
        os.close(fd)
    assert head_of(b"not json\n") is None


def test_times_for_export() -> None:
    now = datetime(2026, 1, 2, 12, 0, tzinfo=UTC)
    assert parse_time("2h", now) == now - timedelta(hours=2)
    assert parse_time("15m", now) == now - timedelta(minutes=15)
    assert parse_time("2026-01-02T10:00:00Z") == datetime(2026, 1, 2, 10, tzinfo=UTC)
    assert parse_time("2026-01-02") == datetime(2026, 1, 2, tzinfo=UTC)
    assert parse_time("2026-01-02T10:00:00+02:00") == datetime(2026, 1, 2, 8, tzinfo=UTC)
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_time("yesterday")


def test_a_call_record_is_compact() -> None:
    tool = Tool("fetch", "web", None, "fetch", None, {}, None)
    egress = {"transport": "https", "host": "api.example.com", "port": 443, "connections": 1}
    result = CallResult(
        tool=tool,
        status="ok",
        duration_ms=1.23456,
        denials=[{"kind": "network"}],
        egress=[{**egress, "sent": 120, "received": 3400, "extra": "x"}],
        linked=[{"component": "helper"}],
    )
    assert call_record(result) == {
        "component": "web",
        "tool": "fetch",
        "status": "ok",
        "duration_ms": 1.235,
        "denials": 1,
        "egress": [{**egress, "sent": 120, "received": 3400}],
        "linked": ["helper"],
    }
    assert "egress" not in call_record(CallResult(tool=tool, status="ok"))


# -- a log, and what verify says of it ----------------------------------------------


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated home for the CLI run in this process (`wassette.cli.main`)."""
    for sub in ("data", "config", "cache"):
        (tmp_path / sub).mkdir()
        monkeypatch.setenv(f"XDG_{sub.upper()}_HOME", str(tmp_path / sub))
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in ("WASSETTE_STATE", "WASSETTE_TENANT", "WASSETTE_AUDIT_KEY_FILE", "WASSETTE_CONFIG_FILE"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def log_of(home: Path, every: int = 4) -> AuditLog:
    return AuditLog(
        home / "data/wassette/audit.jsonl", key_file=home / "config/wassette/audit-key", every=every
    )


Run = Callable[..., tuple[int, Any]]


@pytest.fixture
def run(home: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> Run:
    """`wassette ARGS` in this process: (exit code, its JSON output or text)."""

    def run(*args: str) -> tuple[int, Any]:
        capsysbinary.readouterr()
        code = main(list(args))
        out = capsysbinary.readouterr().out.decode()
        try:
            return code, json.loads(out)
        except ValueError:
            return code, out

    return run


def made(home: Path, count: int = 11) -> list[bytes]:
    """A log of `count` records with a checkpoint every 4 and one at close."""
    log = log_of(home)
    for i in range(count):
        log.record("granted", component=f"c{i % 3}", by="cli", details={"n": i})
    log.close()
    return log.path.read_bytes().splitlines(keepends=True)


def problems(report: dict[str, Any]) -> list[tuple[int | None, str]]:
    return [(p["line"], p["problem"]) for p in report["problems"]]


def test_an_untouched_log_verifies(home: Path, run: Run) -> None:
    lines = made(home)
    events = [json.loads(x)["event"] for x in lines]
    # Checkpoints at seq 4, 8, 12 (every 4) and 14 (at close).
    assert events.count("checkpoint") == 4 and events[-1] == "checkpoint"
    code, report = run("audit", "verify")
    assert code == 0 and report["ok"], report
    assert report["chained"] == len(lines) and report["checkpoints"] == 4
    assert report["not_yet_checkpointed"] == 0 and report["signatures"].startswith("checked with key")
    assert json.loads(checkpoint_file(home / "data/wassette/audit.jsonl").read_bytes()) == json.loads(
        lines[-1]
    )
    (home / "data/wassette/audit.jsonl").open("ab").write(
        seal({"ts": "t", "event": "denied"}, len(lines), json.loads(lines[-1])["chain"]["hash"])[0]
    )
    code, report = run("audit", "verify")
    assert code == 0 and report["not_yet_checkpointed"] == 1
    assert "1 record(s) after the last checkpoint not yet checkpointed" in report["summary"]


def tampered(home: Path, lines: list[bytes]) -> None:
    (home / "data/wassette/audit.jsonl").write_bytes(b"".join(lines))


def test_an_edited_field_is_named(home: Path, run: Run) -> None:
    lines = made(home)
    lines[2] = lines[2].replace(b'"component":"c2"', b'"component":"c9"')
    tampered(home, lines)
    code, report = run("audit", "verify")
    assert code == 1 and problems(report) == [
        (3, "its content does not match its hash: the record was edited")
    ]
    assert report["summary"].startswith("TAMPERED OR DAMAGED: 1 problem(s)")


def test_a_deleted_record_is_named(home: Path, run: Run) -> None:
    lines = made(home)
    del lines[5]  # seq 5
    tampered(home, lines)
    code, report = run("audit", "verify")
    assert code == 1 and problems(report) == [
        (6, "1 record(s) missing before it (seq 5, after line 5): deleted")
    ]


def test_swapped_records_are_named(home: Path, run: Run) -> None:
    lines = made(home)
    lines[1], lines[2] = lines[2], lines[1]
    tampered(home, lines)
    code, report = run("audit", "verify")
    assert code == 1 and problems(report) == [
        (3, "out of order: seq 1 comes after seq 2 (line 2): records were moved")
    ]


def test_a_truncated_log_is_named(home: Path, run: Run) -> None:
    lines = made(home)
    tampered(home, lines[:6])  # cut after seq 5: the checkpoints after it gone too
    code, report = run("audit", "verify")
    assert code == 1 and problems(report) == [
        (
            None,
            f"the log ends at seq 5 but audit.jsonl.checkpoint holds a checkpoint at seq {len(lines) - 1}: "
            f"the log was cut short ({len(lines) - 6} record(s) or more gone)",
        )
    ]
    tampered(home, [*lines[:6], lines[6][:30]])  # inside a line
    code, report = run("audit", "verify")
    assert code == 1 and problems(report)[0] == (7, "not a JSON record (the file ends inside it: cut short)")
    # Its checkpoint file gone as well: that is said too.
    checkpoint_file(home / "data/wassette/audit.jsonl").unlink()
    tampered(home, lines[:6])
    code, report = run("audit", "verify")
    assert code == 1 and problems(report) == [
        (None, "audit.jsonl.checkpoint, the newest checkpoint kept beside the log, is missing")
    ]


def forged_checkpoint(line: bytes, key_id: str | None = None) -> bytes:
    """The checkpoint of `line` signed again with another key (and its id, or `key_id`)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from wassette.runtime.audit_chain import key_id as id_of

    other = Ed25519PrivateKey.generate()
    record = json.loads(line)
    chain = record.pop("chain")
    record.pop("sig")
    record["key"] = key_id or id_of(other.public_key())
    record["chain"] = {"seq": chain["seq"], "prev": chain["prev"]}
    sign(record, other)
    forged, digest = seal(record, chain["seq"], chain["prev"])
    assert digest != chain["hash"]
    return forged


def test_a_forged_checkpoint_is_named(home: Path, run: Run) -> None:
    lines = made(home)
    assert json.loads(lines[4])["event"] == "checkpoint"
    original = lines[4]
    lines[4] = forged_checkpoint(original)
    tampered(home, lines)
    code, report = run("audit", "verify")
    mine = json.loads(original)["key"]
    forged_id = json.loads(lines[4])["key"]
    assert code == 1 and problems(report) == [
        (5, f"the checkpoint is signed by key {forged_id}, not this log's key {mine}: forged"),
        (6, "its prev is not the hash of seq 4 (line 5): a record was replaced"),
    ]
    lines[4] = forged_checkpoint(original, key_id=mine)
    tampered(home, lines)
    code, report = run("audit", "verify")
    assert problems(report)[0] == (
        5,
        "the checkpoint's signature does not verify: forged, or the records before it rewritten",
    )


def test_a_rewritten_chain_fails_at_the_next_checkpoint(home: Path, run: Run) -> None:
    """Hashes are no secret: an edit with every later hash made again (up to
    the next checkpoint) is caught by that checkpoint's signature."""
    lines = made(home)
    records = [json.loads(x) for x in lines]
    records[1]["details"] = {"n": 99}
    prev = records[0]["chain"]["hash"]
    for record in records[1:]:
        line, prev = seal({k: v for k, v in record.items() if k != "chain"}, record["chain"]["seq"], prev)
        lines[record["chain"]["seq"]] = line
    tampered(home, lines)
    code, report = run("audit", "verify")
    assert code == 1
    assert (5, "the checkpoint's signature does not verify: forged, or the records before it rewritten") in (
        problems(report)
    )


def test_an_inserted_record_is_named(home: Path, run: Run) -> None:
    lines = made(home)
    unchained = json.dumps({"ts": "2026-01-01T00:00:00.000+00:00", "event": "granted"}).encode() + b"\n"
    tampered(home, [*lines[:3], unchained, *lines[3:]])
    code, report = run("audit", "verify")
    assert code == 1 and problems(report) == [(4, "a record without chain fields inside the chain: inserted")]
    tampered(home, [*lines[:3], lines[1], *lines[3:]])  # a copy of seq 1
    code, report = run("audit", "verify")
    assert code == 1 and problems(report) == [
        (4, "seq 1 is already at line 2: a record was duplicated or inserted")
    ]


def test_corrupt_lines_are_reported_not_a_crash(home: Path, run: Run) -> None:
    lines = made(home)
    tampered(home, [*lines[:2], b"\x00\xff garbage {\n", b"[1, 2]\n", *lines[2:]])
    code, report = run("audit", "verify")
    assert code == 1 and problems(report) == [(3, "not a JSON record"), (4, "not a JSON record")]
    assert report["chained"] == len(lines)
    code, out = run("audit", "verify", "-o", "table")
    assert code == 1 and "TAMPERED OR DAMAGED: 2 problem(s)" in out and "not a JSON record" in out


def test_records_from_before_the_chain_are_counted_not_failed(home: Path, run: Run) -> None:
    path = home / "data/wassette/audit.jsonl"
    path.parent.mkdir(parents=True)
    old = [{"ts": "2025-01-01T00:00:00.000+00:00", "event": "granted", "component": "c"}] * 3
    path.write_text("".join(json.dumps(r) + "\n" for r in old))
    log = log_of(home)
    log.record("revoked", component="c", by="cli")
    log.close()
    code, report = run("audit", "verify")
    assert code == 0 and report["ok"], report
    assert report["unchained_before_chain"] == 3 and report["first_seq"] == 0
    assert "3 unchained record(s) before the chain starts" in report["summary"]
    assert json.loads(path.read_text().splitlines()[3])["chain"]["prev"] == GENESIS


def test_a_torn_last_line_does_not_swallow_the_next_record(home: Path, run: Run) -> None:
    lines = made(home, 3)
    tampered(home, [*lines, b'{"ts": "2026-01-01T00:00:00.000+00:00", "ev'])  # a crash mid-write
    log = log_of(home)
    log.record("granted", component="c", by="cli")
    log.flush()
    code, report = run("audit", "verify")
    assert code == 1 and problems(report) == [(len(lines) + 1, "not a JSON record")]
    assert report["chained"] == len(lines) + 1


# -- export --------------------------------------------------------------------------


class Clock:
    """time.time() for the audit module, set by the test (sleep stays real)."""

    def __init__(self, start: datetime) -> None:
        self.now = start.timestamp()
        import time

        self.sleep = time.sleep

    def time(self) -> float:
        return self.now


def test_export_cuts_a_time_range_that_verifies(
    home: Path, run: Run, monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    clock = Clock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))
    monkeypatch.setattr(audit_module, "time", clock)
    log = log_of(home, every=5)
    for hour in range(6):
        for component in ("a", "b"):
            log.record("granted", component=component, by="cli", details={"hour": hour})
        clock.now += 3600
    log.close()
    capsysbinary.readouterr()
    assert (
        main(["audit", "export", "--since", "2026-03-01T11:00:00Z", "--until", "2026-03-01T13:00:00Z"]) == 0
    )
    out = capsysbinary.readouterr().out
    records = [json.loads(x) for x in out.splitlines()]
    hours = [r["details"]["hour"] for r in records if r["event"] == "granted"]
    assert hours == [2, 2, 3, 3, 4, 4]
    assert all(r["chain"]["seq"] > 0 for r in records) and any(r["event"] == "checkpoint" for r in records)
    exported = home / "export.jsonl"
    exported.write_bytes(out)
    code, report = run("audit", "verify", "--file", str(exported))
    assert code == 0 and report["ok"] and report["checkpoints"] >= 1, report
    # By component: checkpoints kept, gaps expected (--filtered), signatures still checked.
    capsysbinary.readouterr()
    assert main(["audit", "export", "--component", "b"]) == 0
    exported.write_bytes(capsysbinary.readouterr().out)
    kinds = {(r["event"], r.get("component")) for r in map(json.loads, exported.read_bytes().splitlines())}
    assert kinds == {("granted", "b"), ("checkpoint", None)}
    code, report = run("audit", "verify", "--file", str(exported), "--filtered")
    assert code == 0 and report["ok"], report
    code, report = run("audit", "verify", "--file", str(exported))
    assert code == 1 and "missing before it" in report["problems"][0]["problem"]
    # Tampered in transit: the receiver sees it.
    data = exported.read_bytes().replace(b'"hour":3', b'"hour":7', 1)
    exported.write_bytes(data)
    code, report = run("audit", "verify", "--file", str(exported), "--filtered")
    assert code == 1 and "edited" in report["problems"][0]["problem"]


def test_export_of_recent_records_and_the_public_key(
    home: Path, run: Run, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    made(home, 3)
    capsysbinary.readouterr()
    assert main(["audit", "export", "--since", "10m", "--event", "granted"]) == 0
    assert len(capsysbinary.readouterr().out.splitlines()) == 3 + 1  # and the checkpoint at close
    assert main(["audit", "export", "--since", "2999-01-01"]) == 0
    assert capsysbinary.readouterr().out == b""
    assert main(["audit", "public-key"]) == 0
    pem = home / "audit.pub"
    pem.write_bytes(capsysbinary.readouterr().out)
    assert pem.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    code, report = run("audit", "verify", "--public-key", str(pem))
    assert code == 0 and report["ok"]
    assert main(["audit", "export", "--since", "yesterday"]) == 1


def test_the_key_is_private_and_made_once(home: Path) -> None:
    path = home / "config/wassette/audit-key"
    with ThreadPoolExecutor(4) as pool:
        keys = list(pool.map(lambda _: ensure_key(path), range(8)))
    assert path.stat().st_mode & 0o777 == 0o600
    raw = {k.private_bytes_raw() for k in keys}
    assert len(raw) == 1  # every racer ends with the one key on disk


# -- several writers at once ------------------------------------------------------------

WRITER = """
import sys
from pathlib import Path
from wassette.runtime.audit import AuditLog
log = AuditLog(Path(sys.argv[1]), key_file=Path(sys.argv[2]), every=50)
for i in range(int(sys.argv[3])):
    if i % 3:
        log.enqueue("call", component=sys.argv[4], tool="t", n=i)
    else:
        log.record("granted", component=sys.argv[4], by="cli", n=i)
"""


def test_processes_appending_at_once_keep_one_chain(home: Path, run: Run) -> None:
    """Four processes, each with its own view of the chain's end, mixing
    queued and written-at-once records; none calls close: what is queued
    is written at exit, with a checkpoint."""
    path, key = home / "data/wassette/audit.jsonl", home / "config/wassette/audit-key"
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(key), "300", f"p{n}"])
        for n in range(4)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    records = [json.loads(x) for x in path.read_bytes().splitlines()]
    assert [r["chain"]["seq"] for r in records] == list(range(len(records)))
    for n in range(4):
        assert [r["n"] for r in records if r.get("component") == f"p{n}"] == list(range(300))
    assert sum(r["event"] == "checkpoint" for r in records) >= 1200 // 50
    code, report = run("audit", "verify")
    assert code == 0 and report["ok"] and report["not_yet_checkpointed"] == 0, report


def test_threads_and_logs_sharing_a_file_keep_one_chain(home: Path, run: Run) -> None:
    logs = [log_of(home, every=25) for _ in range(3)]

    def write(n: int) -> None:
        log = logs[n % 3]
        for i in range(200):
            (log.enqueue if i % 2 else log.record)("granted", component=f"t{n}", n=i)

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(write, range(6)))
    for log in logs:
        log.close()
    code, report = run("audit", "verify")
    assert code == 0 and report["ok"], report
    assert report["chained"] - report["checkpoints"] == 1200


def test_cli_processes_granting_at_once_verify(cli: Any, components: dict[str, Path], home: Path) -> None:
    assert cli("component", "load", components["io"].as_uri()).returncode == 0

    def change(n: int) -> int:
        host = f"h{n}.example.com"
        done = [
            cli("permission", "grant", "network", "io", host),
            cli("permission", "revoke", "network", "io", host),
        ]
        return max(r.returncode for r in done)

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(change, range(4))) == [0, 0, 0, 0]
    r = cli("audit", "verify")
    report = json.loads(r.stdout)
    assert r.returncode == 0 and report["ok"], report
    lines = (home / "data/wassette/audit.jsonl").read_text().splitlines()
    events = [json.loads(x)["event"] for x in lines]
    assert events.count("granted") == 4 and events.count("revoked") == 4 and events[-1] == "checkpoint"


# -- one record per tool call --------------------------------------------------------


@pytest.fixture
def io_runtime(runtime: Any, cli: Any, components: dict[str, Path]) -> Any:
    """The conftest runtime (on this module's home) with `io` loaded."""
    r = cli("component", "load", components["io"].as_uri())
    assert r.returncode == 0, r.stderr
    runtime.refresh()
    return runtime


def test_every_call_leaves_one_record(io_runtime: Any) -> None:
    assert not io_runtime.call_tool("env-count", {}).is_error
    denied = io_runtime.call_tool("read-file", {"path": "/etc/hostname"})
    assert denied.is_error
    records = io_runtime.audit_records(10)
    calls = [r for r in records if r["event"] == "call"]
    assert [(c["tool"], c["status"], c["denials"]) for c in calls] == [
        ("env-count", "ok", 0),
        ("read-file", "err", 1),
    ]
    assert all(c["component"] == "io" and c["duration_ms"] > 0 for c in calls)
    # The refusal comes first, then the call it belongs to.
    assert [r["event"] for r in records][-2:] == ["denied", "call"]
    io_runtime.close()
    report = verify_lines(io_runtime.audit.path.open("rb"), Verifier(None)).finish()
    assert report["ok"] and report["checkpoints"] == 1, report


def test_a_tenants_log_is_a_chain_of_its_own(home: Path, run: Run) -> None:
    from wassette.runtime.config import Settings
    from wassette.runtime.runtime import Runtime

    own = Runtime(Settings.load())
    tenant = Runtime(Settings.load(tenant="acme"))
    for i in range(3):
        own.audit.record("granted", component="c", by="cli", n=i)
    tenant.audit.record("granted", component="c", by="cli", n=0)
    own.close()
    tenant.close()
    assert tenant.audit.path == home / "data/wassette/tenants/acme/audit.jsonl"
    first = json.loads(tenant.audit.path.read_text().splitlines()[0])
    assert first["chain"]["seq"] == 0 and first["chain"]["prev"] == GENESIS
    code, report = run("audit", "verify", "--tenant", "acme")
    assert code == 0 and report["chained"] == 2, report
    code, report = run("audit", "verify")
    assert code == 0 and report["chained"] == 4, report


def test_excerpt_lines_skip_what_is_no_record() -> None:
    lines = [
        b"garbage\n",
        json.dumps({"ts": "2026-01-01T00:00:00.000+00:00", "event": "call", "component": "a"}).encode(),
    ]
    excerpt = Excerpt(component="a")
    assert list(excerpt.lines(lines)) == [lines[1] + b"\n"] and excerpt.skipped == 1


def test_a_shared_states_rows_carry_the_chained_records(
    tmp_path: Path, components: dict[str, Path], env: dict[str, str]
) -> None:
    """With `--state postgresql://`, each record shipped to `wassette_audit`
    is the one in the replica's file, chain fields and all."""
    import base64

    from homes import Cli
    from postgres import bindir, postgres

    if bindir() is None:
        pytest.skip("PostgreSQL is not installed")
    import psycopg

    with postgres() as pg:
        key = base64.b64encode(bytes(range(32))).decode()
        cli = Cli({**env, "WASSETTE_STATE": pg.url, "WASSETTE_SECRETS_KEY": key})
        assert cli("component", "load", components["io"].as_uri()).returncode == 0
        assert cli("permission", "grant", "network", "io", "db.example.com").returncode == 0
        r = cli("audit", "verify")
        report = json.loads(r.stdout)
        assert r.returncode == 0 and report["ok"] and report["chained"] >= 2, report
        with psycopg.connect(pg.url) as conn:
            rows = [r[0] for r in conn.execute("SELECT record FROM wassette_audit ORDER BY id")]
    [granted] = [r for r in rows if r["event"] == "granted"]
    assert granted["chain"]["hash"] == record_hash(granted)
    # The replica's working copy holds the same record, line for line.
    [local] = [
        json.loads(line)
        for path in (tmp_path / "cache").rglob("audit.jsonl")
        for line in path.read_text().splitlines()
        if '"granted"' in line
    ]
    assert local == granted
