"""Checking an audit log's hash chain and checkpoints, and cutting an
excerpt of it to ship (`wassette audit verify`, `wassette audit export`).

The chain proves what is in the file was written in this order and not
edited since; the checkpoints' signatures prove it up to them with a key
the log does not hold. Every problem is named with its line, its seq and
what is wrong: an edited record (its hash), a deleted one (a seq missing),
records moved (a seq out of order), one inserted (no chain, or a seq seen
twice), a forged checkpoint (its signature), a log cut short (the newest
checkpoint, kept beside the log, is past its end).
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from wassette.runtime.audit_chain import CHECKPOINT, GENESIS, chained, key_id, record_hash, signature_ok

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

# Problems listed in a report (a log rewritten from its start has one per line).
MAX_PROBLEMS = 100


class Problem(NamedTuple):
    line: int | None
    seq: int | None
    problem: str

    def to_json(self) -> dict[str, Any]:
        return {"line": self.line, "seq": self.seq, "problem": self.problem}


class Verifier:
    """Fed a log's lines in order, then `finish`ed: its report."""

    def __init__(
        self, public: Ed25519PublicKey | None, *, excerpt: bool = False, filtered: bool = False
    ) -> None:
        """`excerpt`: the chain may start past seq 0 (an export);
        `filtered`: records may be left out (an export by component or
        event): only each record's own hash and signature are checked."""
        self.public = public
        self.key = key_id(public) if public is not None else None
        self.excerpt = excerpt or filtered
        self.filtered = filtered
        self.lines = 0
        self.unchained_before = 0
        self.problems: list[Problem] = []
        self.problem_count = 0
        self.seen: dict[int, tuple[int, str]] = {}  # seq -> (line, hash)
        self.waiting: dict[int, tuple[int, int, str]] = {}  # seq -> (line, seq, prev) of its successor
        self.last: tuple[int, int] | None = None  # (seq, line) of the record before
        self.checkpoints = 0
        self.last_checkpoint: tuple[int, int] | None = None  # (line, seq)

    def problem(self, line: int | None, seq: int | None, what: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(line, seq, what))

    def feed(self, n: int, raw: bytes, *, cut: bool = False) -> None:
        """Line `n` (from 1); `cut`: the file ends inside it (no newline)."""
        if not raw.strip():
            return
        self.lines += 1
        try:
            record = json.loads(raw)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            self.problem(
                n, None, "not a JSON record" + (" (the file ends inside it: cut short)" if cut else "")
            )
            return
        chain = chained(record)
        if chain is None:
            if self.last is None:
                self.unchained_before += 1
            else:
                self.problem(n, None, "a record without chain fields inside the chain: inserted")
            return
        seq, digest = chain["seq"], chain["hash"]
        if record_hash(record) != digest:
            self.problem(n, seq, "its content does not match its hash: the record was edited")
        if record.get("event") == CHECKPOINT:
            self._checkpoint(n, seq, record)
        if self.last is None:
            if not self.excerpt and seq != 0:
                self.problem(n, seq, f"the chain starts at seq {seq}, not 0: the records before it are gone")
            elif not self.excerpt and chain["prev"] != GENESIS:
                self.problem(n, seq, "the first record does not follow the genesis")
        elif seq in self.seen:
            self.problem(
                n,
                seq,
                f"seq {seq} is already at line {self.seen[seq][0]}: a record was duplicated or inserted",
            )
            self.last = (seq, n)
            return
        elif seq < self.last[0]:
            self.problem(
                n,
                seq,
                f"out of order: seq {seq} comes after seq {self.last[0]} (line {self.last[1]}): records were moved",
            )
        if self.last is not None and not self.filtered:
            self._link(n, seq, chain["prev"])
        waiting = self.waiting.pop(seq, None)
        if waiting is not None and waiting[2] != digest:
            self.problem(
                waiting[0],
                waiting[1],
                f"its prev is not the hash of seq {seq} (line {n}): a record was replaced",
            )
        self.seen[seq] = (n, digest)
        self.last = (seq, n)

    def _link(self, n: int, seq: int, prev: str) -> None:
        before = self.seen.get(seq - 1)
        if before is None:
            self.waiting[seq - 1] = (n, seq, prev)  # checked when (if) it comes
        elif before[1] != prev:
            self.problem(
                n, seq, f"its prev is not the hash of seq {seq - 1} (line {before[0]}): a record was replaced"
            )

    def _checkpoint(self, n: int, seq: int, record: dict[str, Any]) -> None:
        self.checkpoints += 1
        self.last_checkpoint = (n, seq)
        if record.get("records") != seq:
            self.problem(n, seq, f"the checkpoint counts {record.get('records')} records but is at seq {seq}")
        if self.public is None:
            return
        if record.get("key") != self.key:
            self.problem(
                n,
                seq,
                f"the checkpoint is signed by key {record.get('key')}, not this log's key {self.key}: forged",
            )
        elif not signature_ok(record, self.public):
            self.problem(
                n,
                seq,
                "the checkpoint's signature does not verify: forged, or the records before it rewritten",
            )

    def finish(self, kept: dict[str, Any] | None = None, kept_name: str | None = None) -> dict[str, Any]:
        """The report. `kept`: the newest checkpoint as kept beside the log
        (None with `kept_name`: that file is missing)."""
        seqs = sorted(self.seen)
        for before, after in itertools.pairwise(seqs):
            if after - before > 1 and not self.filtered:
                gone = f"seq {before + 1}" if after - before == 2 else f"seq {before + 1} to {after - 1}"
                self.problem(
                    self.seen[after][0],
                    after,
                    f"{after - before - 1} record(s) missing before it ({gone}, after line {self.seen[before][0]}): deleted",
                )
        if kept_name is not None:
            self._kept(kept, kept_name, seqs[-1] if seqs else -1)
        last_cp = self.last_checkpoint[1] if self.last_checkpoint else -1
        pending = sum(1 for s in seqs if s > last_cp)
        report: dict[str, Any] = {
            "ok": self.problem_count == 0,
            "records": self.lines,
            "chained": len(seqs),
            "unchained_before_chain": self.unchained_before,
            "first_seq": seqs[0] if seqs else None,
            "last_seq": seqs[-1] if seqs else None,
            "checkpoints": self.checkpoints,
            "last_checkpoint": {"line": self.last_checkpoint[0], "seq": last_cp}
            if self.last_checkpoint
            else None,
            "not_yet_checkpointed": pending,
            "signatures": f"checked with key {self.key}" if self.key else "not checked: no key",
            "problems": [p.to_json() for p in self.problems],
        }
        if self.problem_count > len(self.problems):
            report["more_problems"] = self.problem_count - len(self.problems)
        report["summary"] = _summary(report)
        return report

    def _kept(self, kept: dict[str, Any] | None, name: str, last_seq: int) -> None:
        if kept is None:
            if self.checkpoints:
                self.problem(None, None, f"{name}, the newest checkpoint kept beside the log, is missing")
            return
        chain = chained(kept)
        if chain is None or record_hash(kept) != chain["hash"] or kept.get("event") != CHECKPOINT:
            self.problem(None, None, f"{name} is not a checkpoint record")
            return
        seq = chain["seq"]
        if self.public is not None and (kept.get("key") != self.key or not signature_ok(kept, self.public)):
            self.problem(None, seq, f"{name}: the checkpoint's signature does not verify: forged")
        elif seq > last_seq:
            self.problem(
                None,
                seq,
                f"the log ends at seq {last_seq} but {name} holds a checkpoint at seq {seq}: "
                f"the log was cut short ({seq - last_seq} record(s) or more gone)",
            )
        elif seq in self.seen and self.seen[seq][1] != chain["hash"]:
            self.problem(
                self.seen[seq][0],
                seq,
                f"the record at seq {seq} is not the checkpoint {name} holds: replaced",
            )
        elif self.last_checkpoint is not None and self.last_checkpoint[1] > seq:
            self.problem(
                None, seq, f"{name} holds an older checkpoint (seq {seq}) than the log's last: replaced"
            )


def _summary(report: dict[str, Any]) -> str:
    parts = [f"{report['chained']} chained record(s)"]
    if report["unchained_before_chain"]:
        parts.append(f"{report['unchained_before_chain']} unchained record(s) before the chain starts")
    parts.append(f"{report['checkpoints']} checkpoint(s)")
    if report["checkpoints"] and report["signatures"].startswith("not checked"):
        parts.append("their signatures not checked (no key)")
    if report["not_yet_checkpointed"]:
        parts.append(
            f"{report['not_yet_checkpointed']} record(s) after the last checkpoint not yet checkpointed"
        )
    if not report["ok"]:
        count = len(report["problems"]) + report.get("more_problems", 0)
        return f"TAMPERED OR DAMAGED: {count} problem(s); " + ", ".join(parts)
    return "OK: " + ", ".join(parts)


def verify_lines(lines: Iterable[bytes], verifier: Verifier) -> Verifier:
    """Feeds numbered lines (each with its newline, as a binary file gives them)."""
    for n, raw in enumerate(lines, 1):
        verifier.feed(n, raw, cut=not raw.endswith(b"\n"))
    return verifier


# -- export ------------------------------------------------------------------------

_RELATIVE = re.compile(r"(\d+)\s*([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_time(text: str, now: datetime | None = None) -> datetime:
    """ISO 8601 (a date, or a time; UTC unless it says otherwise), or a
    time ago: 30s, 15m, 2h, 7d."""
    relative = _RELATIVE.fullmatch(text.strip())
    if relative:
        ago = timedelta(**{_UNITS[relative[2]]: int(relative[1])})
        return (now or datetime.now(UTC)) - ago
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r}: expected an ISO 8601 time (2025-06-01T12:00:00Z) or a time ago (15m, 2h, 7d)"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _time(record: dict[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(str(record.get("ts")))
    except ValueError:
        return None


class Excerpt:
    """The lines to ship, as the log has them (chain fields included): in
    file order, from the first record at or after `since` until the first
    after `until`, and of those the component's or event's, checkpoints
    always (a receiver checks their signatures). `skipped`: lines that are
    no record."""

    def __init__(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        component: str | None = None,
        event: str | None = None,
    ) -> None:
        self.since, self.until, self.component, self.event = since, until, component, event
        self.skipped = 0

    def lines(self, lines: Iterable[bytes]) -> Iterator[bytes]:
        started = self.since is None
        for raw in lines:
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except ValueError:
                record = None
            when = _time(record) if isinstance(record, dict) else None
            if not isinstance(record, dict) or when is None:
                self.skipped += 1
                continue
            if not started:
                assert self.since is not None
                if when < self.since:
                    continue
                started = True
            if self.until is not None and when > self.until:
                return
            if record.get("event") == CHECKPOINT or (
                (self.component is None or record.get("component") == self.component)
                and (self.event is None or record.get("event") == self.event)
            ):
                yield raw if raw.endswith(b"\n") else raw + b"\n"
