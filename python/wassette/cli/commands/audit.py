"""`wassette audit verify|export|public-key`: the audit log's hash chain,
checked; an excerpt to ship; the key a receiver checks checkpoints with."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from wassette.cli.common import settings
from wassette.cli.options import Parents, group
from wassette.cli.output import emit
from wassette.runtime.errors import WassetteError


def add(sub: Any, p: Parents) -> None:
    asub = group(sub, "audit", "the audit log: check its hash chain, export it for shipping")
    v = asub.add_parser(
        "verify",
        parents=[p.dirs, p.out],
        help="check the hash chain and signed checkpoints; name each edited, deleted, moved, inserted or "
        "cut record (exit 1 if any)",
    )
    v.add_argument(
        "--file",
        metavar="PATH",
        help="a log or an export to check ('-': standard input; default: this state's audit.jsonl)",
    )
    v.add_argument(
        "--public-key",
        metavar="PEM",
        help="the key checkpoints are checked with (default: the public half of audit_key_file)",
    )
    v.add_argument(
        "--filtered",
        action="store_true",
        help="the file is an export by --component or --event: records may be left out",
    )
    v.set_defaults(handler=cmd_verify)
    e = asub.add_parser(
        "export",
        parents=[p.dirs],
        help="records as JSON lines with their chain fields (to stdout), for shipping",
    )
    e.add_argument(
        "--since",
        metavar="TIME",
        help="from the first record at or after TIME: ISO 8601 (UTC unless it says) or ago (15m, 2h, 7d)",
    )
    e.add_argument("--until", metavar="TIME", help="up to the first record after TIME")
    e.add_argument("--component", metavar="ID", help="only this component's records (and checkpoints)")
    e.add_argument("--event", metavar="KIND", help="only records of this event (and checkpoints)")
    e.set_defaults(handler=cmd_export)
    k = asub.add_parser(
        "public-key",
        parents=[p.dirs],
        help="print the public key checkpoints are signed with (PEM), for a receiver of exports",
    )
    k.set_defaults(handler=cmd_public_key)


def _log(args: argparse.Namespace) -> tuple[Path, Path | None]:
    """The audit log of this state (or tenant), and its checkpoint key."""
    s = settings(args)
    return s.data_dir / "audit.jsonl", s.audit_key_file


def cmd_verify(args: argparse.Namespace) -> int:
    from wassette.runtime.audit import checkpoint_file
    from wassette.runtime.audit_chain import load_public_key
    from wassette.runtime.audit_verify import Verifier, verify_lines

    log, key_file = _log(args)
    key_path = Path(args.public_key) if args.public_key else key_file
    public = None
    if key_path is not None and (args.public_key or key_path.exists()):
        try:
            public = load_public_key(key_path)
        except (OSError, ValueError) as e:
            raise WassetteError(
                f"cannot read the key {key_path}: {getattr(e, 'strerror', None) or e}"
            ) from None
    verifier = Verifier(public, excerpt=args.file is not None, filtered=args.filtered)
    source = args.file or str(log)
    if args.file == "-":
        verify_lines(sys.stdin.buffer, verifier)
        report = verifier.finish()
    else:
        path = Path(source)
        try:
            with path.open("rb") as f:
                verify_lines(f, verifier)
        except FileNotFoundError:
            if args.file is not None:
                raise WassetteError(f"{path}: no such file") from None
        except OSError as e:
            raise WassetteError(f"cannot read {path}: {e.strerror}") from None
        kept = checkpoint_file(path)
        # The checkpoint kept beside the log must be there once the log has
        # one; beside a copy or an export it is checked only if present.
        report = verifier.finish(*_kept(kept, required=args.file is None))
    report = {"file": source, **report}
    if args.output_format == "table":
        print(report["summary"])
        if report["problems"]:
            emit(report["problems"], "table", columns=["line", "seq", "problem"])
    else:
        emit(report, args.output_format)
    return 0 if report["ok"] else 1


def _kept(path: Path, *, required: bool) -> tuple[dict[str, Any] | None, str | None]:
    import json

    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return None, (path.name if required else None)
    except OSError as e:
        raise WassetteError(f"cannot read {path}: {e.strerror}") from None
    try:
        value = json.loads(text)
    except ValueError:
        value = "not JSON"
    return (value if isinstance(value, dict) else {}), path.name


def cmd_export(args: argparse.Namespace) -> int:
    from wassette.runtime.audit_verify import Excerpt, parse_time

    try:
        since = parse_time(args.since) if args.since else None
        until = parse_time(args.until) if args.until else None
    except ValueError as e:
        raise WassetteError(str(e)) from None
    log, _ = _log(args)
    excerpt = Excerpt(since, until, args.component, args.event)
    out = sys.stdout.buffer
    try:
        with log.open("rb") as f:
            for line in excerpt.lines(f):
                out.write(line)
    except FileNotFoundError:
        pass  # no log yet: nothing to ship
    except OSError as e:
        raise WassetteError(f"cannot read {log}: {e.strerror}") from None
    out.flush()
    if excerpt.skipped:
        print(f"warning: {excerpt.skipped} line(s) of {log} are no record and were left out", file=sys.stderr)
    return 0


def cmd_public_key(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives import serialization

    from wassette.runtime.audit_chain import ensure_key

    _, key_file = _log(args)
    if key_file is None:
        raise WassetteError("no audit key file is configured")
    try:
        key = ensure_key(key_file)
    except (OSError, ValueError) as e:
        raise WassetteError(f"audit key {key_file}: {getattr(e, 'strerror', None) or e}") from None
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    sys.stdout.write(pem.decode())
    return 0
