#!/usr/bin/env python3
"""Build the test-component fixtures in tests/components, cached by source hash.

Usage:
    python tests/components/build.py [--list] [--force] [--json] [-j N] [--examples] [NAME ...]

The same recipes build the examples in ``examples/<name>/`` (named like
``time-server-js``); an example's output goes to ``examples/<name>/build/<name>.wasm``.

Each fixture is built into ``$CACHE/fixtures/<name>-<key>.wasm`` where ``key``
is a sha256 over the recipe version, the versions of the tools the recipe
uses, and every source file's relative path and bytes; an unchanged fixture
is never rebuilt. Results are then copied to ``tests/components/build/``
(gitignored). ``$CACHE`` is ``$WASSETTE_DEV_CACHE``, else
``${XDG_CACHE_HOME:-~/.cache}/wassette-dev``.

Tests import this file by path and call ``build()``::

    spec = importlib.util.spec_from_file_location("fixtures_build", path)
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    paths = mod.build(["arith", "io"])      # {"arith": Path(...), "io": Path(...)}

Toolchain: run ``scripts/setup-toolchain.sh`` first, in the Python environment
that runs this script (wasm-tools and componentize-py are looked up next to
``sys.executable`` first, then on PATH). Rust examples use cargo and rustc from
PATH, with the wasm32-wasip2 target; their target directory is ``$CACHE/rust-target``.
Go examples use ``go`` from PATH (1.24 or newer), with ``GOCACHE``, ``GOMODCACHE``
and ``GOPATH`` under ``$CACHE/go``, and the preview1 adapter that ``wassette new go``
ships (python/wassette/templates/go/adapter).
"""

import argparse
import concurrent.futures
import fcntl
import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
import tomllib
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

# Bump when a recipe (commands, flags, post-processing) changes in a way the
# source files and tool versions do not show.
RECIPE_VERSION = "fixtures-recipe-2"

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
EXAMPLES_DIR = REPO / "examples"
TOOLCHAIN_DIR = REPO / "tests" / "toolchain"
# The preview1 adapter for Go reactors, as `wassette new go` ships it.
GO_ADAPTER = REPO / "python" / "wassette" / "templates" / "go" / "adapter"
OUT_DIR = HERE / "build"
SETUP_HINT = "run scripts/setup-toolchain.sh (in the Python environment that runs build.py)"


@dataclass(frozen=True)
class Fixture:
    """One fixture: `src` is a .wat file or a directory holding `wit/` + `entry`."""

    name: str
    kind: str  # "wat" | "py" | "js" | "c" | "rust" | "go"
    src: str  # relative to tests/components
    world: str = ""
    entry: str = ""
    http: bool = False  # JS: keep StarlingMonkey's wasi:http imports (for fetch)
    example: bool = False  # `src` is under examples/, not tests/components/

    @property
    def base(self) -> Path:
        return EXAMPLES_DIR if self.example else HERE

    @property
    def path(self) -> Path:
        return self.base / self.src

    @property
    def out_dir(self) -> Path:
        return self.path / "build" if self.example else OUT_DIR


FIXTURES: dict[str, Fixture] = {
    f.name: f
    for f in (
        Fixture("arith", "wat", "wat/arith.wat"),
        Fixture("strings", "wat", "wat/strings.wat"),
        Fixture("spin", "wat", "wat/spin.wat"),
        Fixture("grow", "wat", "wat/grow.wat"),
        Fixture("iface", "wat", "wat/iface.wat"),
        Fixture("trap", "wat", "wat/trap.wat"),
        Fixture("counter", "wat", "wat/counter.wat"),
        Fixture("stash", "wat", "wat/stash.wat"),
        Fixture("types", "py", "py/types", world="types", entry="app"),
        Fixture("eval", "py", "py/eval", world="eval-py", entry="app"),
        Fixture("mcp-py", "py", "py/mcp-py", world="mcp-py", entry="app"),
        Fixture(
            "time-server",
            "js",
            "js/time-server",
            world="time-server",
            entry="time-server.js",
        ),
        Fixture("http-probe", "js", "js/http-probe", world="http-probe", entry="http-probe.js", http=True),
        Fixture("config-probe", "js", "js/config-probe", world="config-probe", entry="config-probe.js"),
        Fixture("io", "c", "c/io", world="io", entry="io.c"),
        Fixture("fsprobe", "c", "c/fsprobe", world="fsprobe", entry="fsprobe.c"),
        Fixture("mcp-c", "c", "c/mcp-c", world="mcp-c", entry="mcp-c.c"),
        Fixture("netprobe", "py", "py/netprobe", world="netprobe", entry="app"),
        Fixture("conformance", "rust", "rust/conformance", world="conformance"),
        Fixture("mcp-js", "js", "js/mcp-js", world="mcp-js", entry="mcp-js.js"),
        Fixture("ping", "wat", "wat/ping.wat"),
        Fixture("pong", "wat", "wat/pong.wat"),
        Fixture("fetcher", "js", "js/fetcher", world="fetcher-world", entry="fetcher.js", http=True),
        Fixture("summariser", "js", "js/summariser", world="summariser", entry="summariser.js", http=True),
    )
}

# The examples users try first (examples/<name>/, each with its own README).
EXAMPLES: dict[str, Fixture] = {
    f.name: f
    for f in (
        Fixture(
            "time-server-js",
            "js",
            "time-server-js",
            world="time-server",
            entry="time-server.js",
            example=True,
        ),
        Fixture(
            "get-weather-js",
            "js",
            "get-weather-js",
            world="get-weather",
            entry="weather.js",
            http=True,
            example=True,
        ),
        Fixture("fetch-js", "js", "fetch-js", world="fetch", entry="fetch.js", http=True, example=True),
        Fixture("eval-py", "py", "eval-py", world="eval-py", entry="app", example=True),
        Fixture("filesystem-py", "py", "filesystem-py", world="filesystem", entry="app", example=True),
        Fixture("wordcount-c", "c", "wordcount-c", world="wordcount", entry="wordcount.c", example=True),
        Fixture("fetch-rs", "rust", "fetch-rs", world="fetch", example=True),
        Fixture("filesystem-rs", "rust", "filesystem-rs", world="filesystem", example=True),
        Fixture("gomodule-go", "go", "gomodule-go", world="gomodule", example=True),
    )
}
ALL: dict[str, Fixture] = {**FIXTURES, **EXAMPLES}

# Files in a source directory that are not part of the build (an example's
# docs, policy, build script and output).
_NOT_SOURCES = frozenset({"README.md", "policy.yaml", "build.sh", ".gitignore"})

# Slow recipes first so parallel builds finish sooner.
_KIND_ORDER = {"rust": 0, "js": 0, "py": 1, "go": 2, "c": 2, "wat": 3}


class BuildError(RuntimeError):
    """A fixture could not be built; the message names it and carries tool output."""


def cache_root() -> Path:
    explicit = os.environ.get("WASSETTE_DEV_CACHE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "wassette-dev"


def _run(
    fixture: str,
    step: str,
    cmd: Sequence[str | Path],
    cwd: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> str:
    """Run a tool; raise BuildError naming the fixture, step and output on failure."""
    env = {**os.environ, **(extra_env or {})}
    # componentize-py adds $VIRTUAL_ENV's site-packages to the app's module
    # path; fixtures must only see their own sources.
    env.pop("VIRTUAL_ENV", None)
    try:
        proc = subprocess.run(
            [str(c) for c in cmd],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            check=False,
        )
    except OSError as exc:
        raise BuildError(f"fixture {fixture!r}: {step}: cannot run {cmd[0]}: {exc}") from exc
    if proc.returncode != 0:
        output = (proc.stdout + proc.stderr).strip()
        shown = " ".join(str(c) for c in cmd)
        raise BuildError(f"fixture {fixture!r}: {step} failed (exit {proc.returncode})\n$ {shown}\n{output}")
    return proc.stdout


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Toolchain:
    """Locates the tools and reports the versions that go into cache keys."""

    def _find(self, name: str) -> Path:
        scripts = sysconfig.get_path("scripts")
        found = shutil.which(name, path=scripts) or shutil.which(name)
        if not found:
            raise BuildError(f"{name} not found next to {sys.executable} or on PATH; {SETUP_HINT}")
        return Path(found)

    @functools.cached_property
    def wasm_tools(self) -> Path:
        path = self._find("wasm-tools")
        # PyPI "wasm-tools" (AppThreat) installs an unrelated script of the same name.
        if not self._version_of(path).startswith("wasm-tools 1."):
            raise BuildError(f"{path} is not the Bytecode Alliance wasm-tools; {SETUP_HINT}")
        return path

    @functools.cached_property
    def componentize_py(self) -> Path:
        return self._find("componentize-py")

    @functools.cached_property
    def clang(self) -> Path:
        return self._find("clang")

    @functools.cached_property
    def cargo(self) -> Path:
        return self._find("cargo")

    @functools.cached_property
    def go(self) -> Path:
        return self._find("go")

    @functools.cached_property
    def node_dir(self) -> Path:
        lock = TOOLCHAIN_DIR / "package-lock.json"
        digest = hashlib.sha256(lock.read_bytes()).hexdigest()[:16]
        node_dir = cache_root() / f"node-{digest}"
        if not (node_dir / ".complete").is_file():
            raise BuildError(f"npm toolchain missing at {node_dir}; {SETUP_HINT}")
        return node_dir

    @property
    def jco(self) -> Path:
        return self.node_dir / "node_modules" / ".bin" / "jco"

    @property
    def reactor_adapter(self) -> Path:
        lib = self.node_dir / "node_modules" / "@bytecodealliance" / "jco" / "lib"
        return lib / "wasi_snapshot_preview1.reactor.wasm"

    @staticmethod
    @functools.cache
    def _version_of(tool: Path, flag: str = "--version") -> str:
        try:
            out = subprocess.run([str(tool), flag], capture_output=True, text=True, check=True).stdout
        except (OSError, subprocess.CalledProcessError) as exc:
            raise BuildError(f"cannot run {tool} {flag}: {exc}") from exc
        return out.strip().splitlines()[0] if out.strip() else ""

    @functools.cache  # noqa: B019 - one Toolchain per build() call
    def versions(self, kind: str) -> tuple[str, ...]:
        """Tool identities that affect the output of a recipe kind."""
        wasm_tools = self._version_of(self.wasm_tools)
        if kind == "wat":
            return (wasm_tools,)
        if kind == "py":
            return (wasm_tools, self._version_of(self.componentize_py))
        # The npm lock hash (in node_dir's name) pins jco, componentize-js
        # and the preview1 adapter.
        if kind == "js":
            node = self._version_of(self._find("node"))
            return (wasm_tools, self.node_dir.name, node)
        if kind == "c":
            libc = Path("/usr/lib/wasm32-wasi/libc.a")
            libc_id = _file_digest(libc)[:16] if libc.exists() else "no-libc"
            return (
                wasm_tools,
                self.node_dir.name,
                self._version_of(self.clang),
                libc_id,
            )
        if kind == "rust":
            # rustc also pins the wasm32-wasip2 standard library; Cargo.lock
            # (a source file) pins the crates.
            rustc = self._version_of(self._find("rustc"))
            return (wasm_tools, rustc, self._version_of(self.cargo))
        if kind == "go":
            # `go version` pins the compiler and standard library (a Go example
            # uses nothing else: go.mod, a source file, would pin modules); the
            # adapter's sources are part of the recipe.
            adapter = "".join(_file_digest(p)[:16] for p in sorted(GO_ADAPTER.iterdir()))
            return (wasm_tools, self._version_of(self.go, "version"), f"adapter={adapter}")
        raise BuildError(f"unknown fixture kind {kind!r}")


def _source_files(fixture: Fixture) -> list[Path]:
    if fixture.path.is_file():
        return [fixture.path]
    if not fixture.path.is_dir():
        raise BuildError(f"fixture {fixture.name!r}: source {fixture.path} does not exist")
    return sorted(
        p
        for p in fixture.path.rglob("*")
        if p.is_file()
        and not {"__pycache__", "build", "target"} & set(p.relative_to(fixture.path).parts)
        and p.suffix != ".pyc"
        and p.name not in _NOT_SOURCES
    )


def cache_key(fixture: Fixture, tools: Toolchain) -> str:
    h = hashlib.sha256()

    def field(data: bytes) -> None:  # length-prefixed, so fields cannot run together
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)

    for part in (
        RECIPE_VERSION,
        fixture.name,
        fixture.kind,
        fixture.world,
        fixture.entry,
        f"http={fixture.http}",
    ):
        field(part.encode())
    for version in tools.versions(fixture.kind):
        field(version.encode())
    for path in _source_files(fixture):
        field(path.relative_to(fixture.base).as_posix().encode())
        field(path.read_bytes())
    return h.hexdigest()


# ------------------------------------------------------------------ recipes


def _build_wat(fx: Fixture, tools: Toolchain, tmp: Path) -> Path:
    out = tmp / "out.wasm"
    _run(fx.name, "wasm-tools parse", [tools.wasm_tools, "parse", fx.path, "-o", out])
    return out


def _build_py(fx: Fixture, tools: Toolchain, tmp: Path) -> Path:
    out = tmp / "out.wasm"
    # Build from a copy: componentize-py writes __pycache__ next to the app,
    # and bundles whatever else is in that directory.
    src = tmp / "src"
    shutil.copytree(
        fx.path, src, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "build", *_NOT_SOURCES)
    )
    cmd: list[str | Path] = [
        tools.componentize_py,
        "-d",
        src / "wit",
        "-w",
        fx.world,
        "componentize",
    ]
    cmd += ["-p", src, fx.entry, "-o", out]
    _run(fx.name, "componentize-py", cmd, cwd=tmp)
    return _inject_docs(fx, tools, tmp, out)


def _build_js(fx: Fixture, tools: Toolchain, tmp: Path) -> Path:
    out = tmp / "out.wasm"
    # StarlingMonkey (default backend). Unless the fixture fetches, leave the
    # wasi:http imports out; clocks/random/stdio stay.
    cmd: list[str | Path] = [
        tools.jco,
        "componentize",
        fx.entry,
        "--wit",
        "wit",
        "--world-name",
        fx.world,
    ]
    cmd += ["--disable", "fetch-event"] if fx.http else ["--disable", "http", "fetch-event"]
    cmd += ["-o", out]
    _run(fx.name, "jco componentize", cmd, cwd=fx.path)
    return _inject_docs(fx, tools, tmp, out)


def _build_c(fx: Fixture, tools: Toolchain, tmp: Path) -> Path:
    core, embedded, out = tmp / "core.wasm", tmp / "embed.wasm", tmp / "out.wasm"
    cflags: list[str | Path] = [
        "--target=wasm32-wasi",
        "--sysroot=/usr",
        "-O2",
        "-Wall",
        "-Wextra",
    ]
    # Reactor: no main(), _initialize runs at instantiation. Debug info from
    # wasi-libc would triple the size.
    cflags += ["-mexec-model=reactor", "-Wl,--strip-debug"]
    _run(fx.name, "clang", [tools.clang, *cflags, "-o", core, fx.path / fx.entry])
    return _core_to_component(fx, tools, tmp, core, embedded, tools.reactor_adapter, out)


def _core_to_component(
    fx: Fixture, tools: Toolchain, tmp: Path, core: Path, embedded: Path, adapter: Path, out: Path
) -> Path:
    """A wasip1 reactor core module as a component: its WIT embedded, the
    preview1 calls adapted (C: jco's reactor adapter; Go: its own)."""
    wt = tools.wasm_tools
    embed: list[str | Path] = [
        wt,
        "component",
        "embed",
        fx.path / "wit",
        "--world",
        fx.world,
        core,
        "-o",
        embedded,
    ]
    _run(fx.name, "wasm-tools component embed", embed)
    adapt = f"wasi_snapshot_preview1={adapter}"
    _run(fx.name, "wasm-tools component new", [wt, "component", "new", embedded, "--adapt", adapt, "-o", out])
    return _inject_docs(fx, tools, tmp, out)


def _build_rust(fx: Fixture, tools: Toolchain, tmp: Path) -> Path:
    manifest = fx.path / "Cargo.toml"
    crate = tomllib.loads(manifest.read_text())["package"]["name"]
    # One target directory for every Rust example, outside the source tree:
    # dependencies compile once, and a one-line change rebuilds one crate.
    target_dir = cache_root() / "rust-target"
    cmd: list[str | Path] = [tools.cargo, "build", "--release", "--locked", "--target", "wasm32-wasip2"]
    cmd += ["--manifest-path", manifest, "--target-dir", target_dir]
    _run(fx.name, "cargo build", cmd, cwd=fx.path)
    # A copy: the driver moves its result into the cache, and cargo's own
    # output must stay where cargo looks for it.
    out = tmp / "out.wasm"
    shutil.copyfile(target_dir / "wasm32-wasip2" / "release" / f"{crate.replace('-', '_')}.wasm", out)
    return _inject_docs(fx, tools, tmp, out)


def _build_go(fx: Fixture, tools: Toolchain, tmp: Path) -> Path:
    core, embedded, out = tmp / "core.wasm", tmp / "embed.wasm", tmp / "out.wasm"
    adapter = tmp / "adapter.wasm"
    go_dir = cache_root() / "go"
    env = {
        # Standard Go: a wasip1 reactor (no main; _initialize starts the
        # runtime, go:wasmexport functions are the exports).
        "GOOS": "wasip1",
        "GOARCH": "wasm",
        "CGO_ENABLED": "0",
        "GOCACHE": str(go_dir / "cache"),
        "GOMODCACHE": str(go_dir / "mod"),
        "GOPATH": str(go_dir / "path"),
        # The Go on PATH, never one go.mod asks to download; go.mod and
        # go.sum as committed.
        "GOTOOLCHAIN": "local",
        "GOFLAGS": "-mod=readonly -modcacherw -buildvcs=false",
    }
    cmd: list[str | Path] = [tools.go, "build", "-trimpath", "-buildmode=c-shared", "-o", core, "."]
    _run(fx.name, "go build", cmd, cwd=fx.path, extra_env=env)
    wt = tools.wasm_tools
    adapter_wit, adapter_wat = GO_ADAPTER / "adapter.wit", GO_ADAPTER / "wasi_snapshot_preview1.wat"
    embed_adapter: list[str | Path] = [wt, "component", "embed", adapter_wit, "--world", "adapter"]
    _run(fx.name, "wasm-tools component embed (adapter)", [*embed_adapter, adapter_wat, "-o", adapter])
    return _core_to_component(fx, tools, tmp, core, embedded, adapter, out)


RECIPES = {
    "wat": _build_wat,
    "py": _build_py,
    "js": _build_js,
    "c": _build_c,
    "rust": _build_rust,
    "go": _build_go,
}


# ------------------------------------------------ WIT docs (package-docs)


def _leb128(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _sections(wasm: bytes) -> Iterator[tuple[int, int, int, bytes]]:
    """Top-level sections as (id, start, end, payload); nested modules stay opaque."""
    pos = 8  # magic + version/layer
    while pos < len(wasm):
        start, sid = pos, wasm[pos]
        pos += 1
        size = shift = 0
        while True:
            byte = wasm[pos]
            pos += 1
            size |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        yield sid, start, pos + size, wasm[pos : pos + size]
        pos += size


def _custom_name(payload: bytes) -> tuple[str, bytes]:
    length = shift = i = 0
    while True:
        byte = payload[i]
        i += 1
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    return payload[i : i + length].decode(), payload[i + length :]


def _find_custom(wasm: bytes, wanted: str) -> bytes | None:
    for sid, _, _, payload in _sections(wasm):
        if sid == 0:
            name, data = _custom_name(payload)
            if name == wanted:
                return data
    return None


def _inject_docs(fx: Fixture, tools: Toolchain, tmp: Path, component: Path) -> Path:
    """Add the WIT doc comments as a `package-docs` custom section.

    componentize-py, jco, `wasm-tools component new` and cargo's component
    linker drop WIT docs. The section holds wit-parser's PackageMetadata (a
    version byte + JSON). For a
    component (not a WIT package), decoders such as `wasm-tools component wit`
    apply it to the synthetic package `root:component`, whose only world is
    `root`, so the world's entry is stored under that name. Docs of exported
    interfaces from other packages (e.g. `test:types/shapes`) cannot be
    expressed this way and are left out.
    """
    pkg = tmp / "wit-package.wasm"
    wt = tools.wasm_tools
    _run(
        fx.name,
        "wasm-tools component wit --wasm",
        [wt, "component", "wit", fx.path / "wit", "--wasm", "-o", pkg],
    )
    raw = _find_custom(pkg.read_bytes(), "package-docs")
    if raw is None:  # no doc comments at all
        return component
    meta = json.loads(raw[1:])
    world_meta = meta.get("worlds", {}).get(fx.world)
    docs: dict[str, object] = {}
    if meta.get("docs"):
        docs["docs"] = meta["docs"]
    if world_meta:
        docs["worlds"] = {"root": world_meta}
    payload = raw[:1] + json.dumps(docs, separators=(",", ":")).encode()

    wasm = component.read_bytes()
    kept = bytearray(wasm[:8])
    for sid, start, end, p in _sections(wasm):
        if sid == 0 and _custom_name(p)[0] == "package-docs":
            continue  # replace, never duplicate
        kept += wasm[start:end]
    name = b"package-docs"
    body = _leb128(len(name)) + name + payload
    kept += b"\x00" + _leb128(len(body)) + body
    out = tmp / "with-docs.wasm"
    out.write_bytes(bytes(kept))
    return out


# ------------------------------------------------------------------ driver


def _build_one(fx: Fixture, tools: Toolchain, force: bool) -> Path:
    """Return the cache path of `fx`, building it if needed."""
    cache_dir = cache_root() / "fixtures"
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = cache_key(fx, tools)
    target = cache_dir / f"{fx.name}-{key}.wasm"
    if target.is_file() and not force:
        return target
    # One builder per fixture at a time (parallel test workers).
    lock_dir = cache_dir / ".locks"
    lock_dir.mkdir(exist_ok=True)
    with (lock_dir / f"{fx.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.is_file() and not force:
            return target
        with tempfile.TemporaryDirectory(prefix=f"build-{fx.name}-", dir=cache_dir) as tmp_str:
            tmp = Path(tmp_str)
            built = RECIPES[fx.kind](fx, tools, tmp)
            wt = tools.wasm_tools
            _run(fx.name, "wasm-tools validate", [wt, "validate", built])
            _run(fx.name, "wasm-tools component wit", [wt, "component", "wit", built])
            # Same directory as the target, so the rename is atomic: an
            # interrupted build never leaves a partial cache entry.
            built.replace(target)
    return target


def _remove_stale_temps(cache_dir: Path, max_age_s: float = 24 * 3600) -> None:
    """Drop temp dirs of builds that were killed (SIGKILL skips cleanup)."""
    now = time.time()
    for tmp in cache_dir.glob("build-*"):
        try:
            if tmp.is_dir() and now - tmp.stat().st_mtime > max_age_s:
                shutil.rmtree(tmp, ignore_errors=True)
        except OSError:
            pass


def _install(fx: Fixture, cached: Path) -> Path:
    name, out_dir = fx.name, fx.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    dest = out_dir / f"{name}.wasm"
    same_size = dest.is_file() and dest.stat().st_size == cached.stat().st_size
    if same_size and _file_digest(dest) == _file_digest(cached):
        return dest
    # A plain new file (not mkstemp's 0600) so the copy gets the usual umask mode.
    tmp = out_dir / f".{name}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
    try:
        shutil.copyfile(cached, tmp)
        tmp.replace(dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest


def build(names: list[str] | None = None, force: bool = False, jobs: int | None = None) -> dict[str, Path]:
    """Build the named fixtures or examples (all fixtures when None).

    Returns name -> path of the copy in tests/components/build (fixtures) or
    examples/<name>/build (examples).
    """
    wanted = list(FIXTURES) if names is None else list(dict.fromkeys(names))
    unknown = [n for n in wanted if n not in ALL]
    if unknown:
        raise BuildError(f"unknown fixture(s) {', '.join(unknown)}; known: {', '.join(ALL)}")
    tools = Toolchain()
    _remove_stale_temps(cache_root() / "fixtures")
    order = sorted(wanted, key=lambda n: _KIND_ORDER[ALL[n].kind])
    workers = max(1, min(jobs or os.cpu_count() or 1, len(order)))
    cached: dict[str, Path] = {}
    errors: list[str] = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(_build_one, ALL[n], tools, force): n for n in order}
        for fut in concurrent.futures.as_completed(futures):
            try:
                cached[futures[fut]] = fut.result()
            except BuildError as exc:
                errors.append(str(exc))
    installed = {n: _install(ALL[n], cached[n]) for n in wanted if n in cached}
    if errors:
        raise BuildError("\n\n".join(errors))
    return installed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build test-component fixtures (cached).")
    parser.add_argument("names", nargs="*", help="fixtures or examples to build (default: all fixtures)")
    parser.add_argument("--examples", action="store_true", help="also build every example")
    parser.add_argument("--list", action="store_true", help="list fixtures and examples, and exit")
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("-j", "--jobs", type=int, default=None, help="parallel builds (default: CPUs)")
    args = parser.parse_args(argv)
    if args.list:
        for fx in ALL.values():
            print(f"{fx.name:15} {fx.kind:4} {fx.path.relative_to(REPO)}")
        return 0
    names = list(args.names) or (None if not args.examples else list(FIXTURES))
    if args.examples and names is not None:
        names += [n for n in EXAMPLES if n not in names]
    try:
        result = build(names, force=args.force, jobs=args.jobs)
    except BuildError as exc:
        print(f"build.py: error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({n: str(p) for n, p in result.items()}, indent=2))
    else:
        for name, path in result.items():
            print(f"{name}\t{path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
