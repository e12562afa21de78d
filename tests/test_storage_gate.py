"""The storage gate, attacked from inside the sandbox.

The `fsprobe` component (C, wasi-libc) drives every `wasi:filesystem` path
primitive. Each test builds a small tree on the host, grants part of it, and
checks that what the policy does not allow is refused on every route (`..`,
symlinks, renames, hard links, case tricks), that the host files are
untouched, and that each refusal is reported with the path and the reason.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import outcomes

Probe = Callable[..., Any]


@pytest.fixture
def fsprobe(compiled: Callable[[str], Any]) -> Any:
    return compiled("fsprobe")


class Outcome(outcomes.Outcome):
    @property
    def refused(self) -> bool:
        """The guest got EACCES and the gate recorded why."""
        return super().refused and self.value == {"err": "Permission denied"}


def allow(path: Path | str, *, read: bool = True, write: bool = False) -> dict[str, Any]:
    return {"path": str(path), "read": read, "write": write, "origin": f"allow {path}"}


def deny(path: Path | str) -> dict[str, Any]:
    return {"path": str(path), "origin": f"deny {path}"}


@pytest.fixture
def probe(fsprobe: Any) -> Callable[..., Probe]:
    """probe(allow=[...], deny=[...]) -> fn(export, **args) -> Outcome."""

    def with_policy(allow: list[dict[str, Any]] = (), deny: list[dict[str, Any]] = ()) -> Probe:  # type: ignore[assignment]
        policy = json.dumps({"storage": {"allow": list(allow), "deny": list(deny)}})

        def run(export: str, **args: Any) -> Outcome:
            return Outcome(fsprobe.start(None, export, json.dumps(args), policy).finish())

        return run

    return with_policy


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """root/
    allowed/      a.txt, sub/b.txt, secrets/key.txt, SECRETS/key.txt
    outside/      secret.txt
    """
    root = tmp_path.resolve()
    (root / "allowed/sub").mkdir(parents=True)
    (root / "allowed/secrets").mkdir()
    (root / "allowed/SECRETS").mkdir()
    (root / "outside").mkdir()
    (root / "allowed/a.txt").write_text("A")
    (root / "allowed/sub/b.txt").write_text("B")
    (root / "allowed/secrets/key.txt").write_text("KEY")
    (root / "allowed/SECRETS/key.txt").write_text("UPPER KEY")
    (root / "outside/secret.txt").write_text("OUTSIDE")
    return root


def snapshot(root: Path) -> dict[str, str]:
    """Every file and symlink under root with its content or target."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = "-> " + os.readlink(p)
            elif p.is_file():
                out[rel] = p.read_text()
            else:
                out[rel] = "<dir>"
    return out


# --- nothing granted -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/etc/passwd", "/proc/self/environ", "/", "/tmp"])
def test_no_grant_reads_nothing(probe: Callable[..., Probe], path: str) -> None:
    """With no storage grant, reading any host path is refused and recorded."""
    out = probe()("read-file", path=path)
    assert out.status == "err"
    if path == "/":
        assert out.value == {"err": "Is a directory"} or out.refused
    else:
        assert out.refused
        assert out.denials[0]["resource"] == path and out.denials[0]["reason"] == "not granted"


def test_no_grant_lists_an_empty_root(probe: Callable[..., Probe]) -> None:
    """The guest's `/` is an empty decoy: listing it shows nothing of the host."""
    out = probe()("list-dir", path="/")
    assert out.value == {"ok": []}


def test_no_grant_cannot_write(probe: Callable[..., Probe], tmp_path: Path) -> None:
    target = tmp_path / "planted.txt"
    out = probe()("write-file", path=str(target), contents="x")
    assert out.refused and not target.exists()


# --- read-only grant -------------------------------------------------------------------------------


def test_read_only_grant_reads_inside(probe: Callable[..., Probe], tree: Path) -> None:
    run = probe([allow(tree / "allowed")])
    assert run("read-file", path=str(tree / "allowed/a.txt")).value == {"ok": "A"}
    assert run("read-file", path=str(tree / "allowed/sub/b.txt")).value == {"ok": "B"}
    assert run("list-dir", path=str(tree / "allowed")).value == {"ok": ["SECRETS", "a.txt", "secrets", "sub"]}
    assert run("stat", path=str(tree / "allowed/a.txt")).value == {"ok": 1}


@pytest.mark.parametrize(
    ("export", "args"),
    [
        ("write-file", {"path": "allowed/a.txt", "contents": "X"}),
        ("write-file", {"path": "allowed/new.txt", "contents": "X"}),
        ("append-file", {"path": "allowed/a.txt", "contents": "X"}),
        ("overwrite-file", {"path": "allowed/a.txt", "contents": "X"}),
        ("truncate-file", {"path": "allowed/a.txt", "size": 0}),
        ("touch", {"path": "allowed/a.txt"}),
        ("mkdir", {"path": "allowed/newdir"}),
        ("remove-file", {"path": "allowed/a.txt"}),
        ("remove-dir", {"path": "allowed/sub"}),
        ("rename", {"source": "allowed/a.txt", "destination": "allowed/moved.txt"}),
        ("symlink", {"target": "a.txt", "link": "allowed/link"}),
        ("hard-link", {"source": "allowed/a.txt", "destination": "allowed/hard"}),
    ],
)
def test_read_only_grant_refuses_every_write(
    probe: Callable[..., Probe], tree: Path, export: str, args: dict[str, Any]
) -> None:
    """A read-only grant cannot create, write, truncate, touch, rename, link or delete."""
    before = snapshot(tree)
    absolute = {
        k: str(tree / v) if k != "contents" and isinstance(v, str) and "/" in v else v
        for k, v in args.items()
    }
    if export == "symlink":
        absolute["target"] = "a.txt"
    out = probe([allow(tree / "allowed")])(export, **absolute)
    assert out.refused, (export, out.status, out.value, out.denials)
    assert out.denials[0]["access"] == "write"
    assert out.denials[0]["reason"] == "granted read-only"
    assert snapshot(tree) == before


# --- escapes out of a grant ------------------------------------------------------------------------


def test_dotdot_out_of_a_grant(probe: Callable[..., Probe], tree: Path) -> None:
    out = probe([allow(tree / "allowed")])("read-file", path=f"{tree}/allowed/../outside/secret.txt")
    assert out.refused
    assert out.denials[0]["resource"] == f"{tree}/outside/secret.txt"


def test_dotdot_inside_a_grant_is_fine(probe: Callable[..., Probe], tree: Path) -> None:
    out = probe([allow(tree / "allowed")])("read-file", path=f"{tree}/allowed/sub/../a.txt")
    assert out.value == {"ok": "A"}


@pytest.mark.parametrize("target", ["outside/secret.txt", "/etc/passwd", "/proc/self/environ"])
def test_planted_symlink_out_of_a_grant(probe: Callable[..., Probe], tree: Path, target: str) -> None:
    """A symlink inside the grant that points out of it is refused, naming where it leads."""
    real = target if target.startswith("/") else str(tree / target)
    (tree / "allowed/escape").symlink_to(real)
    out = probe([allow(tree / "allowed")])("read-file", path=str(tree / "allowed/escape"))
    assert out.refused
    assert out.denials[0]["resource"] == str(tree / "allowed/escape")
    assert out.denials[0]["resolved"] == os.path.realpath(real)


def test_planted_directory_symlink_out_of_a_grant(probe: Callable[..., Probe], tree: Path) -> None:
    (tree / "allowed/door").symlink_to(tree / "outside")
    run = probe([allow(tree / "allowed")])
    assert run("read-file", path=str(tree / "allowed/door/secret.txt")).refused
    assert run("list-dir", path=str(tree / "allowed/door")).refused


def test_guest_made_symlink_cannot_escape(probe: Callable[..., Probe], tree: Path) -> None:
    """A writable grant lets the guest make symlinks; following one out is still refused."""
    run = probe([allow(tree / "allowed", write=True)])
    # Absolute targets are refused outright by the runtime (EPERM).
    out = run("symlink", target=str(tree / "outside/secret.txt"), link=str(tree / "allowed/mine"))
    assert out.value == {"err": "Operation not permitted"}
    assert run("symlink", target="../outside/secret.txt", link=str(tree / "allowed/rel")).ok
    assert run("read-file", path=str(tree / "allowed/rel")).refused
    assert run("write-file", path=str(tree / "allowed/rel"), contents="PWNED").refused
    assert (tree / "outside/secret.txt").read_text() == "OUTSIDE"


def test_symlink_into_read_only_area_cannot_be_written_through(
    probe: Callable[..., Probe], tree: Path
) -> None:
    """Writable dir + read-only dir: a link from the first into the second does not make it writable,
    and truncation through it never happens."""
    (tree / "rw").mkdir()
    (tree / "rw/link").symlink_to(tree / "allowed/a.txt")
    run = probe([allow(tree / "allowed"), allow(tree / "rw", write=True)])
    assert run("write-file", path=str(tree / "rw/link"), contents="X").refused
    assert run("truncate-file", path=str(tree / "rw/link"), size=0).refused
    assert (tree / "allowed/a.txt").read_text() == "A"


def test_hard_link_from_read_only_into_writable_is_refused(probe: Callable[..., Probe], tree: Path) -> None:
    (tree / "rw").mkdir()
    run = probe([allow(tree / "allowed"), allow(tree / "rw", write=True)])
    assert run("hard-link", source=str(tree / "allowed/a.txt"), destination=str(tree / "rw/a")).refused
    assert not (tree / "rw/a").exists()


def test_rename_out_of_a_read_only_grant_is_refused(probe: Callable[..., Probe], tree: Path) -> None:
    (tree / "rw").mkdir()
    run = probe([allow(tree / "allowed"), allow(tree / "rw", write=True)])
    assert run("rename", source=str(tree / "allowed/a.txt"), destination=str(tree / "rw/a.txt")).refused
    assert (tree / "allowed/a.txt").exists()


# --- deny rules inside an allowed directory --------------------------------------------------------


@pytest.fixture
def fenced(probe: Callable[..., Probe], tree: Path) -> Probe:
    """allowed/ read-write, allowed/secrets/** denied."""
    return probe([allow(tree / "allowed", write=True)], [deny(f"{tree}/allowed/secrets/**")])


def test_deny_rule_refuses_the_literal_path(fenced: Probe, tree: Path) -> None:
    out = fenced("read-file", path=str(tree / "allowed/secrets/key.txt"))
    assert out.refused
    assert out.denials[0]["rule"] == f"deny {tree}/allowed/secrets/**"
    assert fenced("read-file", path=str(tree / "allowed/a.txt")).value == {"ok": "A"}


def test_deny_rule_hides_the_directory(fenced: Probe, tree: Path) -> None:
    names = fenced("list-dir", path=str(tree / "allowed")).value["ok"]
    assert "secrets" not in names and "a.txt" in names
    assert fenced("list-dir", path=str(tree / "allowed/secrets")).refused
    assert fenced("stat", path=str(tree / "allowed/secrets/key.txt")).refused


def test_deny_rule_holds_against_dotdot(fenced: Probe, tree: Path) -> None:
    assert fenced("read-file", path=f"{tree}/allowed/sub/../secrets/key.txt").refused


def test_deny_rule_holds_against_planted_symlinks(fenced: Probe, tree: Path) -> None:
    (tree / "allowed/alias").symlink_to(tree / "allowed/secrets/key.txt")
    (tree / "allowed/dir-alias").symlink_to("secrets")
    out = fenced("read-file", path=str(tree / "allowed/alias"))
    assert out.refused and out.denials[0]["resolved"] == str(tree / "allowed/secrets/key.txt")
    assert fenced("read-file", path=str(tree / "allowed/dir-alias/key.txt")).refused


def test_deny_rule_holds_against_guest_symlinks(fenced: Probe, tree: Path) -> None:
    assert fenced("symlink", target="secrets/key.txt", link=str(tree / "allowed/peek")).ok
    assert fenced("read-file", path=str(tree / "allowed/peek")).refused
    assert fenced("write-file", path=str(tree / "allowed/peek"), contents="X").refused
    assert (tree / "allowed/secrets/key.txt").read_text() == "KEY"


def test_deny_rule_holds_against_renames(fenced: Probe, tree: Path) -> None:
    src, dst = tree / "allowed/secrets/key.txt", tree / "allowed/stolen.txt"
    assert fenced("rename", source=str(src), destination=str(dst)).refused
    assert fenced(
        "rename", source=str(tree / "allowed/secrets"), destination=str(tree / "allowed/open")
    ).refused
    assert fenced("rename", source=str(tree / "allowed/a.txt"), destination=str(src)).refused
    assert src.read_text() == "KEY" and not dst.exists() and (tree / "allowed/a.txt").exists()


def test_deny_rule_holds_against_guest_hard_links(fenced: Probe, tree: Path) -> None:
    out = fenced(
        "hard-link", source=str(tree / "allowed/secrets/key.txt"), destination=str(tree / "allowed/hl")
    )
    assert out.refused and not (tree / "allowed/hl").exists()


def test_deny_rule_holds_against_planted_hard_links(fenced: Probe, tree: Path) -> None:
    """A hard link made outside the sandbox is another name for a denied file: refused too."""
    os.link(tree / "allowed/secrets/key.txt", tree / "allowed/innocent.txt")
    out = fenced("read-file", path=str(tree / "allowed/innocent.txt"))
    assert out.refused
    assert "hard link" in out.denials[0]["reason"]
    assert fenced("write-file", path=str(tree / "allowed/innocent.txt"), contents="X").refused
    assert (tree / "allowed/secrets/key.txt").read_text() == "KEY"


def test_deny_rule_holds_against_case_tricks(fenced: Probe, tree: Path) -> None:
    """Deny rules compare without case: `SECRETS` is denied like `secrets`, so a
    case-insensitive filesystem could not be used to sidestep them."""
    assert fenced("read-file", path=str(tree / "allowed/SECRETS/key.txt")).refused
    # A path that does not exist is refused alike, without a record.
    missing = fenced("read-file", path=str(tree / "allowed/Secrets/key.txt"))
    assert missing.value == {"err": "Permission denied"} and missing.denials == []


def test_probing_for_missing_files_is_not_recorded(probe: Callable[..., Probe], tree: Path) -> None:
    """Runtimes probe for modules and config files that are not there: refused, not
    recorded; a write to a missing path is an attempt with effect and is recorded."""
    run = probe([allow(tree / "allowed")])
    out = run("read-file", path="/no/such/module.py")
    assert out.value == {"err": "Permission denied"} and out.denials == []
    assert run("write-file", path="/no/such/file", contents="x").refused


def test_deny_rule_refuses_creating_inside(fenced: Probe, tree: Path) -> None:
    assert fenced("write-file", path=str(tree / "allowed/secrets/planted"), contents="x").refused
    assert fenced("mkdir", path=str(tree / "allowed/secrets/d")).refused
    assert not (tree / "allowed/secrets/planted").exists()


def test_writable_grant_works(fenced: Probe, tree: Path) -> None:
    """Everything a writable grant allows still works next to the fence."""
    base = tree / "allowed"
    assert fenced("write-file", path=str(base / "n.txt"), contents="N").ok
    assert fenced("append-file", path=str(base / "n.txt"), contents="2").ok
    assert fenced("read-file", path=str(base / "n.txt")).value == {"ok": "N2"}
    assert fenced("mkdir", path=str(base / "d")).ok
    assert fenced("rename", source=str(base / "n.txt"), destination=str(base / "d/m.txt")).ok
    assert fenced("hard-link", source=str(base / "d/m.txt"), destination=str(base / "d/h.txt")).ok
    assert fenced("read-file", path=str(base / "d/h.txt")).value == {"ok": "N2"}
    assert fenced("truncate-file", path=str(base / "d/m.txt"), size=1).ok
    assert fenced("touch", path=str(base / "d/m.txt")).ok
    assert fenced("remove-file", path=str(base / "d/m.txt")).ok
    assert fenced("remove-file", path=str(base / "d/h.txt")).ok
    assert fenced("remove-dir", path=str(base / "d")).ok
    assert (base / "d").exists() is False


# --- single files and globs ------------------------------------------------------------------------


def test_single_file_grant_exposes_only_that_file(probe: Callable[..., Probe], tree: Path) -> None:
    run = probe([allow(tree / "allowed/a.txt")])
    assert run("read-file", path=str(tree / "allowed/a.txt")).value == {"ok": "A"}
    assert run("read-file", path=str(tree / "allowed/sub/b.txt")).refused
    assert run("list-dir", path=str(tree / "allowed")).value == {"ok": ["a.txt"]}
    assert run("write-file", path=str(tree / "allowed/a.txt"), contents="X").refused


def test_glob_grant(probe: Callable[..., Probe], tree: Path) -> None:
    (tree / "data/2024/q1").mkdir(parents=True)
    (tree / "data/2024/q1/sales.csv").write_text("1,2")
    (tree / "data/2024/q1/notes.txt").write_text("no")
    (tree / "data/top.csv").write_text("0")
    run = probe([allow(f"{tree}/data/**/*.csv")])
    assert run("read-file", path=str(tree / "data/2024/q1/sales.csv")).value == {"ok": "1,2"}
    assert run("read-file", path=str(tree / "data/top.csv")).value == {"ok": "0"}
    assert run("read-file", path=str(tree / "data/2024/q1/notes.txt")).refused
    assert run("list-dir", path=str(tree / "data/2024/q1")).value == {"ok": ["sales.csv"]}
    assert run("read-file", path=str(tree / "allowed/a.txt")).refused


def test_single_star_matches_one_segment(probe: Callable[..., Probe], tree: Path) -> None:
    run = probe([allow(f"{tree}/allowed/*.txt")])
    assert run("read-file", path=str(tree / "allowed/a.txt")).value == {"ok": "A"}
    assert run("read-file", path=str(tree / "allowed/sub/b.txt")).refused


def test_engine_stays_healthy_after_refusals(probe: Callable[..., Probe], tree: Path) -> None:
    """Many refusals in one call leave the component usable for the next."""
    run = probe([allow(tree / "allowed")])
    for _ in range(3):
        assert run("read-file", path="/etc/shadow").refused
    assert run("read-file", path=str(tree / "allowed/a.txt")).value == {"ok": "A"}


def test_grant_through_a_symlink_is_found_where_the_user_named_it(fsprobe: Any, tree: Path) -> None:
    """`fs://…/link` where link -> allowed: the guest reaches the files both by the
    name the user granted and by their real path; rules hold on the real path."""
    from wassette.runtime import effective
    from wassette.runtime import policy as policy_mod

    (tree / "link").symlink_to(tree / "allowed")
    doc = {
        "version": "1.0",
        "permissions": {
            "storage": {
                "allow": [{"uri": f"fs://{tree}/link", "access": ["read"]}],
                "deny": [{"uri": f"fs://{tree}/link/secrets/**"}],
            }
        },
    }
    policy = json.dumps(
        effective.build(
            policy_mod.validate(doc),
            env_sources={},
            secrets={},
            storage_base=tree,
            memory_limit_bytes=64 << 20,
            timeout_ms=10_000,
        )
    )

    def run(export: str, **args: Any) -> Outcome:
        return Outcome(fsprobe.start(None, export, json.dumps(args), policy).finish())

    assert run("read-file", path=str(tree / "link/a.txt")).value == {"ok": "A"}
    assert run("read-file", path=str(tree / "allowed/a.txt")).value == {"ok": "A"}
    denied = run("read-file", path=str(tree / "link/secrets/key.txt"))
    assert denied.refused and denied.denials[0]["resource"] == str(tree / "allowed/secrets/key.txt")
    assert run("read-file", path=str(tree / "outside/secret.txt")).refused
