"""The servers under test, each in its own isolated home.

`ours` is this project (`python -m wassette`, whichever `wassette` the
running interpreter imports: use a release build of the engine for published
figures); `wassette` is Microsoft's Wassette 0.8 (a Rust binary). Both keep
components in a component directory, `<id>.wasm` plus metadata, and both
take `--component-dir`:

- ours caches compiled artifacts by content hash in `$XDG_CACHE_HOME/wassette/compiled`
  and tool schemas in `<id>.metadata.json`;
- Wassette 0.8 precompiles each component to `<id>.cwasm` next to it and
  caches its tool schemas in `<id>.metadata.json` (with the component id and
  the wasm's size and mtime as a validation stamp).

Copies of a fixture under other ids are made with each server's own CLI
(`component load file://.../<id>.wasm`) for ours; for Wassette, whose CLI
compiles every copy again (20-40 s for a JS or Python component here), the
first copy is loaded with the CLI and further copies get its files with the
id and stamp rewritten, which is what its CLI writes.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from suite import fixtures
from suite.clients import BUILTINS

ANCHOR_DEFAULT = Path.home() / ".cache/wassette-anchor/wassette"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Subject:
    name: str  # "ours" or "wassette"
    command: list[str]
    home: Path
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "XDG_DATA_HOME": str(self.home / "data"),
            "XDG_CONFIG_HOME": str(self.home / "config"),
            "XDG_CACHE_HOME": str(self.home / "cache"),
            "RUST_LOG": "error",
            "WASSETTE_LOG": "error",
        }
        # PYTHONPATH: which `wassette` ours imports; WASSETTE_WORKERS: e.g. 1 to measure ours'
        # HTTP server as one process (default: one worker per usable core).
        for key in ("PYTHONPATH", "WASSETTE_WORKERS"):
            if key in os.environ:
                self.env[key] = os.environ[key]

    @property
    def is_ours(self) -> bool:
        return self.name == "ours"

    def version(self) -> str:
        out = subprocess.run([*self.command, "--version"], env=self.env, capture_output=True, text=True)
        return (out.stdout or out.stderr).strip().splitlines()[0]

    def cli(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [*self.command, *args], env=self.env, capture_output=True, timeout=timeout, check=False
        )

    def load(self, wasm: Path, component_dir: Path) -> float:
        """`component load file://...`; returns the wall time in seconds."""
        component_dir.mkdir(parents=True, exist_ok=True)
        args = ["component", "load", wasm.as_uri(), "--component-dir", str(component_dir)]
        if self.is_ours:
            args.append("-q")
        t = time.perf_counter()
        done = self.cli(*args)
        elapsed = time.perf_counter() - t
        if done.returncode != 0:
            raise RuntimeError(f"{self.name}: loading {wasm} failed: {done.stderr.decode()[-2000:]}")
        return elapsed

    # -- component directories -------------------------------------------

    def populate(
        self, component_dir: Path, components: list[tuple[str, str]], built: dict[str, Path]
    ) -> None:
        """Installs `components` ((id, fixture) pairs) into an empty directory."""
        component_dir.mkdir(parents=True, exist_ok=True)
        staging = self.home / "staging"
        staging.mkdir(exist_ok=True)
        first: dict[str, str] = {}
        for cid, fixture in components:
            if not self.is_ours and fixture in first:
                self._copy_wassette(component_dir, first[fixture], cid)
                continue
            named = staging / f"{cid}.wasm"
            shutil.copyfile(built[fixture], named)
            self.load(named, component_dir)
            first.setdefault(fixture, cid)

    @staticmethod
    def _copy_wassette(component_dir: Path, source: str, cid: str) -> None:
        shutil.copyfile(component_dir / f"{source}.wasm", component_dir / f"{cid}.wasm")
        shutil.copyfile(component_dir / f"{source}.cwasm", component_dir / f"{cid}.cwasm")
        meta = json.loads((component_dir / f"{source}.metadata.json").read_text())
        st = (component_dir / f"{cid}.wasm").stat()
        meta["component_id"] = cid
        meta["validation_stamp"] = {"file_size": st.st_size, "mtime": int(st.st_mtime), "content_hash": None}
        (component_dir / f"{cid}.metadata.json").write_text(json.dumps(meta))

    def expected_tools(self, component_dir: Path) -> int:
        """How many component tools a complete tools/list shows (from the CLI)."""
        done = self.cli("tool", "list", "--component-dir", str(component_dir))
        if done.returncode != 0:
            raise RuntimeError(f"{self.name}: tool list failed: {done.stderr.decode()[-2000:]}")
        data = json.loads(done.stdout)
        tools = data["tools"] if isinstance(data, dict) else data
        return sum(1 for t in tools if t["name"] not in BUILTINS)

    @contextlib.contextmanager
    def cold(self, component_dir: Path) -> Iterator[None]:
        """No compiled artifacts while inside: ours' content-addressed cache
        is moved away, Wassette's `<id>.cwasm` files likewise; put back after."""
        stash = self.home / "stash"
        shutil.rmtree(stash, ignore_errors=True)
        stash.mkdir()
        moved: list[tuple[Path, Path]] = []
        if self.is_ours:
            cache = self.home / "cache/wassette/compiled"
            if cache.exists():
                moved.append((cache, stash / "compiled"))
        else:
            moved += [(p, stash / p.name) for p in component_dir.glob("*.cwasm")]
        for src, dst in moved:
            src.rename(dst)
        try:
            yield
        finally:
            if self.is_ours:
                shutil.rmtree(self.home / "cache/wassette/compiled", ignore_errors=True)
            else:
                for p in component_dir.glob("*.cwasm"):
                    p.unlink()
            for src, dst in moved:
                dst.rename(src)

    # -- processes -------------------------------------------------------

    def stdio_command(self, component_dir: Path) -> list[str]:
        return [*self.command, "run", "--component-dir", str(component_dir)]

    def http_command(self, component_dir: Path, port: int, workers: int | None = None) -> list[str]:
        """`serve` on `port`; `workers` (ours only): its worker processes
        (None: its default, one per usable core)."""
        extra = ["--workers", str(workers)] if workers is not None and self.is_ours else []
        return [
            *self.command,
            "serve",
            "--component-dir",
            str(component_dir),
            "--bind-address",
            f"127.0.0.1:{port}",
            *extra,
        ]

    @contextlib.contextmanager
    def process(self, command: list[str], *, stdio: bool) -> Iterator[subprocess.Popen[bytes]]:
        proc = subprocess.Popen(
            command,
            env=self.env,
            stdin=subprocess.PIPE if stdio else subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdio else subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            yield proc
        finally:
            stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Ends a server (Wassette 0.8 does not exit when stdin closes)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system) used so far by these processes."""
    ticks = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (ours' worker processes)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            with contextlib.suppress(OSError):
                todo.extend(int(c) for c in (task / "children").read_text().split())
    return found


def rss_kib(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak) of a process, in KiB."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    return out


def reset_peak(pid: int) -> None:
    """Resets VmHWM to the current RSS (Linux: `5` to clear_refs)."""
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


def make_subjects(root: Path, wassette: Path | None, ours: list[str] | None) -> list[Subject]:
    subjects = [Subject("ours", ours or [sys.executable, "-m", "wassette"], root / "ours")]
    if wassette is not None:
        subjects.append(Subject("wassette", [str(wassette)], root / "wassette"))
    for s in subjects:
        s.home.mkdir(parents=True, exist_ok=True)
    return subjects


def find_wassette(explicit: Path | None, disabled: bool) -> Path | None:
    if disabled:
        return None
    path = explicit or Path(os.environ.get("WASSETTE_ANCHOR") or ANCHOR_DEFAULT)
    if not path.exists():
        print(f"note: Wassette 0.8 not found at {path}; measuring ours and the floor only", file=sys.stderr)
        return None
    return path


def bench_components() -> list[tuple[str, str]]:
    """The four fixtures under their own names: one server offers all four calls."""
    return [(name, name) for name in fixtures.FIXTURES]
