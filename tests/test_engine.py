"""The engine: compiling, the artifact cache, every way a call can end, and the sandbox.

Each failure is checked to be contained: after it, the same Engine (and, where
the fixture has a second export, the same Component) keeps working.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from wassette import _engine

MiB = 1024 * 1024
FLOOD = 5_000_000


# --- helpers -------------------------------------------------------------------------------------


def call(component: Any, function: str, args: dict[str, Any] | None = None, **policy: Any) -> Any:
    """Calls a world-level export with JSON args and an effective policy given as keywords."""
    return component.start(None, function, json.dumps(args or {}), json.dumps(policy)).finish()


def value(outcome: Any) -> Any:
    return None if outcome.value_json is None else json.loads(outcome.value_json)


def assert_engine_healthy(engine: Any, components: dict[str, Path]) -> None:
    """The engine still compiles and runs a component after whatever just happened."""
    arith = engine.compile(components["arith"].read_bytes())
    out = call(arith, "add", {"a": 2, "b": 3})
    assert (out.status, value(out)) == ("ok", 5)


def assert_one_line(message: str) -> None:
    assert message.strip() == message and message
    assert "\n" not in message


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- compile errors ------------------------------------------------------------------------------


def half_of(name: str) -> Callable[[dict[str, Path]], bytes]:
    def cut(components: dict[str, Path]) -> bytes:
        data = components[name].read_bytes()
        return data[: len(data) // 2]

    return cut


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(lambda _: os.urandom(4096), "not a WebAssembly binary (bad magic number)", id="random"),
        pytest.param(lambda _: b"", "not a WebAssembly binary (bad magic number)", id="empty"),
        pytest.param(lambda _: b"\0asm", "not a WebAssembly binary (bad magic number)", id="magic-only"),
        pytest.param(
            lambda _: b"\0asm\x01\0\0\0", "this is a core WebAssembly module, not a component", id="core"
        ),
        pytest.param(
            lambda _: b"\0asm\x0d\0\x01\0\xff\xff", "failed to parse WebAssembly module", id="bad-section"
        ),
        pytest.param(half_of("arith"), "failed to parse WebAssembly module", id="truncated-wat"),
        pytest.param(half_of("io"), "failed to parse WebAssembly module", id="truncated-c"),
        pytest.param(half_of("types"), "failed to parse WebAssembly module", id="truncated-python"),
    ],
)
def test_compile_errors_are_one_clear_line(
    engine: Any, components: dict[str, Path], make: Callable[[dict[str, Path]], bytes], message: str
) -> None:
    """Bytes that are not a usable component raise ComponentError with a one-line message."""
    with pytest.raises(_engine.ComponentError) as info:
        engine.compile(make(components))
    assert str(info.value).startswith(message)
    assert_one_line(str(info.value))
    assert isinstance(info.value, ValueError)
    assert_engine_healthy(engine, components)


def test_core_module_error_says_how_to_fix_it(engine: Any) -> None:
    """A core module is told apart from a component, with the command that wraps it."""
    with pytest.raises(_engine.ComponentError, match="wasm-tools component new"):
        engine.compile(b"\0asm\x01\0\0\0")


# --- the compiled-artifact cache -----------------------------------------------------------------


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def artifact(cache_dir: Path, engine: Any, wasm: bytes) -> Path:
    """The cache file of `wasm`: named by its sha256 and the engine fingerprint."""
    path = cache_dir / f"{sha256(wasm)}-{engine.fingerprint}.cwasm"
    assert path.is_file() and path.with_name(path.name + ".sha256").is_file()
    return path


def test_second_compile_comes_from_the_cache(cache_dir: Path, components: dict[str, Path]) -> None:
    """The first compile stores an artifact; the next, even from a new Engine, loads it."""
    wasm = components["arith"].read_bytes()
    engine = _engine.Engine(str(cache_dir))
    first = engine.compile(wasm)
    assert (first.from_cache, first.sha256) == (False, sha256(wasm))
    artifact(cache_dir, engine, wasm)
    assert engine.compile(wasm).from_cache
    again = _engine.Engine(str(cache_dir)).compile(wasm)
    assert again.from_cache
    assert (call(again, "add", {"a": 1, "b": 1}).status, again.functions()) == ("ok", first.functions())


def test_no_cache_dir_means_no_cache(components: dict[str, Path]) -> None:
    """An Engine without a cache dir compiles every time."""
    engine = _engine.Engine()
    wasm = components["arith"].read_bytes()
    assert not engine.compile(wasm).from_cache
    assert not engine.compile(wasm).from_cache


def test_unusable_cache_dir_only_costs_a_recompile(tmp_path: Path, components: dict[str, Path]) -> None:
    """A cache dir that cannot be created (a file is in the way) is not an error."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_bytes(b"")
    engine = _engine.Engine(str(blocker))
    wasm = components["arith"].read_bytes()
    assert not engine.compile(wasm).from_cache
    assert call(engine.compile(wasm), "add", {"a": 1, "b": 2}).status == "ok"


def flip_middle_bytes(path: Path) -> None:
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    for i in range(mid, mid + 16):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def delete_checksum(path: Path) -> None:
    path.with_name(path.name + ".sha256").unlink()


def wrong_checksum(path: Path) -> None:
    path.with_name(path.name + ".sha256").write_text("0" * 64)


@pytest.mark.parametrize("tamper", [flip_middle_bytes, truncate, delete_checksum, wrong_checksum])
def test_tampered_artifact_is_not_trusted(
    cache_dir: Path, components: dict[str, Path], tamper: Callable[[Path], None]
) -> None:
    """An altered cwasm is native code we must not run: it is recompiled, and the cache is repaired."""
    wasm = components["arith"].read_bytes()
    engine = _engine.Engine(str(cache_dir))
    engine.compile(wasm)
    tamper(artifact(cache_dir, engine, wasm))
    fresh = _engine.Engine(str(cache_dir))
    recompiled = fresh.compile(wasm)
    assert not recompiled.from_cache
    assert value(call(recompiled, "add", {"a": 20, "b": 22})) == 42
    repaired = fresh.compile(wasm)
    assert repaired.from_cache
    assert value(call(repaired, "negate", {"x": 5})) == -5


def test_load_with_sha256_uses_the_cache_without_reading_the_file(
    tmp_path: Path, cache_dir: Path, components: dict[str, Path]
) -> None:
    """`load(path, sha256)` takes the cached artifact; with it cached, the wasm file is not even read."""
    wasm_path = tmp_path / "arith.wasm"
    shutil.copy(components["arith"], wasm_path)
    sha = sha256(wasm_path.read_bytes())
    engine = _engine.Engine(str(cache_dir))
    first = engine.load(str(wasm_path))
    assert (first.from_cache, first.sha256) == (False, sha)
    assert engine.load(str(wasm_path), sha).from_cache
    wasm_path.unlink()
    gone = engine.load(str(wasm_path), sha)
    assert (gone.from_cache, gone.sha256) == (True, sha)
    assert value(call(gone, "add", {"a": 1, "b": 2})) == 3


def test_load_of_a_changed_file_with_its_old_sha256_fails(
    tmp_path: Path, cache_dir: Path, components: dict[str, Path]
) -> None:
    """A file whose sha256 no longer matches the recorded one (and is not cached) raises ComponentError."""
    recorded = sha256(components["arith"].read_bytes())
    wasm_path = tmp_path / "tool.wasm"
    shutil.copy(components["strings"], wasm_path)  # replaced behind our back
    engine = _engine.Engine(str(cache_dir))
    with pytest.raises(_engine.ComponentError, match="changed on disk") as info:
        engine.load(str(wasm_path), recorded)
    message = str(info.value)
    assert_one_line(message)
    assert recorded in message and sha256(wasm_path.read_bytes()) in message
    assert engine.load(str(wasm_path)).functions() == [(None, "echo"), (None, "length")]


def test_load_of_a_missing_file_is_an_engine_error(
    tmp_path: Path, engine: Any, components: dict[str, Path]
) -> None:
    """A file the host cannot read is an EngineError (the host's problem), not a ComponentError."""
    with pytest.raises(_engine.EngineError, match="cannot read") as info:
        engine.load(str(tmp_path / "missing.wasm"))
    assert isinstance(info.value, RuntimeError) and not isinstance(info.value, ValueError)
    assert_one_line(str(info.value))
    assert_engine_healthy(engine, components)


@pytest.mark.parametrize("allocator", ["pooling", "on-demand"])
def test_both_allocators_run_calls(components: dict[str, Path], allocator: str) -> None:
    """Pooling is the default (measured faster: benchmarks/engine_bench.py); on-demand
    remains selectable and behaves the same, limits included."""
    engine = _engine.Engine(None, allocator)
    assert engine.allocator == allocator
    arith = engine.compile(components["arith"].read_bytes())
    assert value(call(arith, "add", {"a": 2, "b": 3})) == 5
    grow = engine.compile(components["grow"].read_bytes())
    assert call(grow, "grow-loop", memory_limit_bytes=MiB).status == "out_of_memory"
    assert value(call(arith, "add", {"a": 1, "b": 1})) == 2


@pytest.mark.parametrize("allocator", ["pooling", "on-demand"])
def test_no_state_survives_a_call(components: dict[str, Path], allocator: str) -> None:
    """Each call starts from the component's initial state: globals, data,
    zero-filled and grown memory written by one call are not seen by the next
    (pooled slots are reset, also where only written pages are copied back),
    also when other components' calls use the slots in between."""
    engine = _engine.Engine(None, allocator)
    counter = engine.compile(components["counter"].read_bytes())
    strings = engine.compile(components["strings"].read_bytes())
    for _ in range(3):
        assert value(call(counter, "bump")) == 0
        assert value(call(strings, "echo", {"s": "x" * 100_000})) == "x" * 100_000
        assert value(call(counter, "bump")) == 0


def _swap_on() -> bool:
    return any(line.strip() for line in Path("/proc/swaps").read_text().splitlines()[1:])


def _page_out_anonymous_memory() -> None:
    """Asks the kernel to swap out every private anonymous mapping of this
    process (MADV_PAGEOUT), guest memories included."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split()
        if fields[1].startswith("rw") and fields[1].endswith("p") and len(fields) == 5:
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            libc.madvise(lo, hi - lo, 21)  # MADV_PAGEOUT; refusals do not matter


def test_pooled_slots_are_reset_by_scan_only_without_swap() -> None:
    """Pooled slots are reset by finding the pages a call wrote
    (`PAGEMAP_SCAN`, Linux 6.7+), except while swap is on: the scan misses
    written pages that are swapped out (see the next test)."""
    release = tuple(int(x) for x in os.uname().release.split(".")[:2] if x.isdigit())
    expected = release >= (6, 7) and not _swap_on()
    assert _engine.Engine(None, "pooling").pagemap_scan is expected
    assert _engine.Engine(None, "on-demand").pagemap_scan is False


@pytest.mark.skipif(not Path("/proc/swaps").exists() or not _swap_on(), reason="needs swap space turned on")
def test_a_page_swapped_out_during_a_call_does_not_reach_the_next(components: dict[str, Path]) -> None:
    """A call stores a secret and computes; meanwhile its memory is paged out
    to swap. The next call's fresh instance must not see the secret. (With
    the `PAGEMAP_SCAN` reset and swap on, it did: Wasmtime 48 skips written
    pages that are not in memory.)"""
    engine = _engine.Engine(None, "pooling")
    stash = engine.compile(components["stash"].read_bytes())
    for attempt in range(6):
        secret = 0x5EC12E7 + attempt
        pager = threading.Timer(0.1, _page_out_anonymous_memory)
        pager.start()
        assert call(stash, "stash", {"value": secret, "rounds": 1_000_000_000}).status == "ok"
        pager.join()
        assert value(call(stash, "peek")) == 0


def test_default_allocator_and_bad_names() -> None:
    assert _engine.Engine().allocator == "pooling"
    with pytest.raises(ValueError, match='unknown allocator "fast"'):
        _engine.Engine(None, "fast")


# --- call-level errors raised to Python -----------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ('{"bogus": 1}', "invalid effective policy: unknown field `bogus`"),
        ("[", "invalid effective policy"),
        ('{"timeout_ms": -1}', "invalid effective policy"),
        ('{"storage": {"allow": [{"read": true}]}}', "invalid effective policy: missing field `path`"),
    ],
)
def test_bad_policy_raises_value_error(compiled: Callable[[str], Any], policy: str, message: str) -> None:
    """An effective policy that does not parse is refused before the call runs."""
    with pytest.raises(ValueError, match=message):
        compiled("arith").start(None, "add", '{"a": 1, "b": 2}', policy).finish()


def test_bad_network_rule_is_a_sandbox_error(compiled: Callable[[str], Any]) -> None:
    """A network rule the gate cannot read ends the call as sandbox_error, before the guest runs."""
    out = call(compiled("io"), "env-count", network={"allow": [{"cidr": "10.0.0.0/99"}]})
    assert out.status == "sandbox_error"
    assert out.value_json is None and "bad CIDR" in out.error


# --- traps, limits and cancellation --------------------------------------------------------------


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.monotonic()
    result = fn()
    return result, time.monotonic() - start


def test_trap_is_an_outcome_not_a_crash(
    engine: Any, compiled: Callable[[str], Any], components: dict[str, Path]
) -> None:
    """`unreachable` ends the call as status "trap" with a message and a wasm backtrace."""
    trap = compiled("trap")
    for _ in range(2):  # the component is not poisoned: each call is a fresh instance
        out = call(trap, "boom")
        assert out.status == "trap"
        assert "unreachable" in out.error
        assert_one_line(out.error)
        assert out.value_json is None
        assert "wasm backtrace" in out.detail
    assert_engine_healthy(engine, components)


def test_timeout(engine: Any, compiled: Callable[[str], Any], components: dict[str, Path]) -> None:
    """An endless loop is stopped at its wall-clock limit with status "timeout"."""
    out, elapsed = timed(lambda: call(compiled("spin"), "spin", timeout_ms=300))
    assert out.status == "timeout"
    assert out.error == "the call exceeded its time limit of 300 ms and was stopped"
    assert 0.25 <= elapsed <= 2.5
    assert out.duration_ms >= 300
    assert_engine_healthy(engine, components)


def test_cancel_from_another_thread(
    engine: Any, compiled: Callable[[str], Any], components: dict[str, Path]
) -> None:
    """A CancelToken cancelled from another thread stops a running call promptly."""
    token = _engine.CancelToken()
    cancelled_at: list[float] = []

    def cancel() -> None:
        cancelled_at.append(time.monotonic())
        token.cancel()

    timer = threading.Timer(0.3, cancel)
    timer.start()
    out = compiled("spin").start(None, "spin", "{}", json.dumps({"timeout_ms": 20_000}), token).finish()
    returned_at = time.monotonic()
    timer.join()
    assert (out.status, out.error) == ("cancelled", "the call was cancelled")
    assert token.cancelled
    assert returned_at - cancelled_at[0] < 1.5
    assert_engine_healthy(engine, components)


def test_started_call_runs_in_slices_and_moves_between_threads(compiled: Callable[[str], Any]) -> None:
    """`start` + `run_for`: a short call ends within its first slice; a long
    one comes back unfinished after about the slice (bounded by an epoch
    tick) and is finished by another thread, its deadline and cancellation
    still in force."""
    quick = compiled("arith").start(None, "add", '{"a": 40, "b": 2}', "{}")
    out = quick.run_for(1_000)
    assert out is not None and out.status == "ok" and out.value_json == "42"
    assert quick.run_for(1_000) is None  # ended: nothing more to run
    with pytest.raises(_engine.EngineError):
        quick.finish()

    started = time.monotonic()
    spinning = compiled("spin").start(None, "spin", "{}", json.dumps({"timeout_ms": 700}))
    assert spinning.run_for(30) is None
    assert time.monotonic() - started < 0.3  # the slice ends at the next epoch tick
    elsewhere: list[Any] = []
    finisher = threading.Thread(target=lambda: elsewhere.append(spinning.finish()))
    finisher.start()
    finisher.join(10)
    assert elsewhere and elsewhere[0].status == "timeout"
    assert time.monotonic() - started >= 0.7  # the deadline counts from the start

    token = _engine.CancelToken()
    cancelled = compiled("spin").start(None, "spin", "{}", "{}", token)
    assert cancelled.run_for(20) is None
    threading.Timer(0.2, token.cancel).start()
    assert cancelled.finish().status == "cancelled"

    with pytest.raises(ValueError, match="not valid JSON"):
        compiled("arith").start(None, "add", "{", "{}")


def _burn_cpu(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def _on_a_new_thread(fn: Callable[[], Any]) -> Any:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(fn()))
    thread.start()
    thread.join(30)
    return out[0]


def test_cpu_budget_counts_a_call_across_threads(compiled: Callable[[str], Any]) -> None:
    """A call started on one thread and finished on another is charged the
    CPU time it used on each, whatever those threads computed before: a busy
    starting thread does not stretch the budget, a busy finishing thread does
    not end the call early. (Each thread has its own CPU clock.)"""
    policy = json.dumps({"cpu_time_ms": 300, "timeout_ms": 20_000})
    _burn_cpu(2.0)  # this thread is now the busy one

    def start() -> Any:
        call = compiled("spin").start(None, "spin", "{}", policy)
        assert call.run_for(20) is None
        return call

    stretched = _on_a_new_thread(start().finish)  # busy start, fresh finish
    assert stretched.status == "cpu_limit"
    assert stretched.duration_ms < 1_500

    early = _on_a_new_thread(start).finish()  # fresh start, busy finish
    assert early.status == "cpu_limit"
    assert early.duration_ms >= 250


def test_already_cancelled_token_stops_the_call_at_once(compiled: Callable[[str], Any]) -> None:
    """A token cancelled before the call starts ends it right away as "cancelled"."""
    token = _engine.CancelToken()
    assert not token.cancelled
    token.cancel()
    out, elapsed = timed(lambda: compiled("spin").start(None, "spin", "{}", "{}", token).finish())
    assert out.status == "cancelled"
    assert elapsed < 2.0


def test_cpu_time_limit(engine: Any, compiled: Callable[[str], Any], components: dict[str, Path]) -> None:
    """A CPU-time budget stops a busy guest with status "cpu_limit", well before the wall-clock limit."""
    out, elapsed = timed(lambda: call(compiled("spin"), "spin", cpu_time_ms=200, timeout_ms=20_000))
    assert out.status == "cpu_limit"
    assert out.error == "the call used more than its CPU-time budget of 200 ms and was stopped"
    assert 0.15 <= elapsed < 10
    assert_engine_healthy(engine, components)


def test_out_of_memory(engine: Any, compiled: Callable[[str], Any], components: dict[str, Path]) -> None:
    """Growing past the memory limit traps as "out_of_memory"; the same component then works normally."""
    grow = compiled("grow")
    out = call(grow, "grow-loop", memory_limit_bytes=MiB)
    assert out.status == "out_of_memory"
    assert out.error == "the component tried to use more than its memory limit of 1 MiB and failed"
    after = call(grow, "grow", {"pages": 1}, memory_limit_bytes=MiB)
    assert (after.status, value(after)) == ("ok", 1)
    assert_engine_healthy(engine, components)


@pytest.mark.parametrize(("pages", "result"), [(0, 1), (1, 1), (15, 1), (16, -1), (1000, -1)])
def test_memory_grow_within_and_beyond_the_limit(
    compiled: Callable[[str], Any], pages: int, result: int
) -> None:
    """`memory.grow` under the limit returns the old size; past it, -1 (a refusal, not a trap)."""
    out = call(compiled("grow"), "grow", {"pages": pages}, memory_limit_bytes=MiB)  # 16 pages of 64 KiB
    assert (out.status, value(out)) == ("ok", result)


def test_calls_run_in_parallel_without_the_gil(compiled: Callable[[str], Any]) -> None:
    """Calls from several threads overlap in time: the GIL is released while guests run."""
    spin, n, seconds = compiled("spin"), 4, 1.0

    def one(_: int) -> tuple[float, float, str]:
        start = time.monotonic()
        out = call(spin, "spin", timeout_ms=int(seconds * 1000))
        return start, time.monotonic(), out.status

    with ThreadPoolExecutor(n) as pool:
        runs, total = timed(lambda: list(pool.map(one, range(n))))
    assert [status for _, _, status in runs] == ["timeout"] * n
    assert max(start for start, _, _ in runs) < min(end for _, end, _ in runs)  # all were running at once
    assert total < 0.6 * n * seconds


# --- guest output --------------------------------------------------------------------------------


def test_guest_output_is_captured_not_written(
    compiled: Callable[[str], Any], capfd: pytest.CaptureFixture[str]
) -> None:
    """Guest stdout/stderr land in the outcome and never reach the host's fd 1 and 2."""
    io = compiled("io")
    out = call(io, "print-stdout", {"text": "to stdout \u00e9\n"})
    err = call(io, "print-stderr", {"text": "to stderr \U0001f600\n"})
    assert (out.status, out.stdout, out.stderr) == ("ok", "to stdout \u00e9\n".encode(), b"")
    assert (err.status, err.stdout, err.stderr) == ("ok", b"", "to stderr \U0001f600\n".encode())
    assert (out.stdout_dropped, err.stderr_dropped) == (0, 0)
    host = capfd.readouterr()
    assert "to stdout" not in host.out + host.err
    assert "to stderr" not in host.out + host.err


@pytest.mark.parametrize(
    ("policy", "kept"),
    [
        pytest.param({}, MiB, id="default-1MiB"),
        pytest.param({"stdout_limit_bytes": 4096}, 4096, id="4KiB"),
        pytest.param({"stdout_limit_bytes": 0}, 0, id="none"),
        pytest.param({"stdout_limit_bytes": 8 * MiB}, FLOOD, id="above-the-flood"),
    ],
)
def test_stdout_flood_is_capped(compiled: Callable[[str], Any], policy: dict[str, Any], kept: int) -> None:
    """A 5 MB flood keeps the first `stdout_limit_bytes` (1 MiB by default) and counts the rest as dropped."""
    out = call(compiled("io"), "flood", {"bytes": FLOOD}, **policy)
    assert (out.status, value(out)) == ("ok", FLOOD)  # the guest is not told; its writes just vanish
    assert out.stdout == b"x" * kept
    assert out.stdout_dropped == FLOOD - kept
    assert (out.stderr, out.stderr_dropped) == (b"", 0)


def test_stderr_limit(compiled: Callable[[str], Any]) -> None:
    """`stderr_limit_bytes` caps stderr the same way."""
    out = call(compiled("io"), "print-stderr", {"text": "abcdef"}, stderr_limit_bytes=4)
    assert (out.stderr, out.stderr_dropped) == (b"abcd", 2)


# --- deny by default -----------------------------------------------------------------------------


def test_no_environment_by_default(compiled: Callable[[str], Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The guest sees none of the host's environment variables unless the policy lists them."""
    monkeypatch.setenv("WASSETTE_TEST_SECRET", "s3cret")
    monkeypatch.setenv("HOME", "/home/tester")
    io = compiled("io")
    for key in ("HOME", "PATH", "WASSETTE_TEST_SECRET"):
        out = call(io, "get-env", {"key": key})
        assert (out.status, value(out)) == ("ok", None)
    assert value(call(io, "env-count")) == 0


def test_policy_env_is_exactly_what_the_guest_sees(compiled: Callable[[str], Any]) -> None:
    """With `env` in the policy the guest sees those variables and nothing more."""
    io = compiled("io")
    env = [["A", "1"], ["B", "two words"]]
    assert value(call(io, "get-env", {"key": "A"}, env=env)) == "1"
    assert value(call(io, "get-env", {"key": "B"}, env=env)) == "two words"
    assert value(call(io, "get-env", {"key": "HOME"}, env=env)) is None
    assert value(call(io, "env-count", env=env)) == 2


def test_no_filesystem_by_default(compiled: Callable[[str], Any]) -> None:
    """Without a storage grant the guest cannot read host files."""
    out = call(compiled("io"), "read-file", {"path": "/etc/passwd"})
    assert out.status == "err"
    assert set(value(out)) == {"err"} and out.error


@pytest.fixture
def shared_dir(tmp_path: Path) -> Path:
    d = tmp_path / "shared"
    d.mkdir()
    (d / "hello.txt").write_text("hello \u00e9\n", encoding="utf-8")
    return d


def preopen(d: Path, write: bool) -> dict[str, Any]:
    return {"allow": [{"path": str(d), "read": True, "write": write}]}


def test_read_only_preopen(compiled: Callable[[str], Any], shared_dir: Path) -> None:
    """A read-only grant allows reading inside it, and refuses writes there and reads outside it."""
    io, pre = compiled("io"), preopen(shared_dir, write=False)
    out = call(io, "read-file", {"path": str(shared_dir / "hello.txt")}, storage=pre)
    assert (out.status, value(out)) == ("ok", {"ok": "hello \u00e9\n"})
    assert value(call(io, "list-dir", {"path": str(shared_dir)}, storage=pre)) == {"ok": ["hello.txt"]}
    denied = call(io, "write-file", {"path": str(shared_dir / "new.txt"), "contents": "x"}, storage=pre)
    assert denied.status == "err"
    assert not (shared_dir / "new.txt").exists()
    assert call(io, "read-file", {"path": "/etc/passwd"}, storage=pre).status == "err"


def test_writable_preopen(compiled: Callable[[str], Any], shared_dir: Path) -> None:
    """With "write": true the guest can create files in the granted directory, and the host sees them."""
    io, pre = compiled("io"), preopen(shared_dir, write=True)
    out = call(
        io,
        "write-file",
        {"path": str(shared_dir / "new.txt"), "contents": "written \U0001f600"},
        storage=pre,
    )
    assert (out.status, value(out)) == ("ok", {"ok": None})
    assert (shared_dir / "new.txt").read_text(encoding="utf-8") == "written \U0001f600"
    back = call(io, "read-file", {"path": str(shared_dir / "new.txt")}, storage=pre)
    assert value(back) == {"ok": "written \U0001f600"}


# --- the toolchain fixtures ----------------------------------------------------------------------


def test_time_server_returns_now(compiled: Callable[[str], Any]) -> None:
    """The JS component's `get-current-time` is an ISO 8601 UTC time close to the host's clock."""
    out = call(compiled("time-server"), "get-current-time")
    assert out.status == "ok"
    text = value(out)
    assert text.endswith("Z")
    assert abs((datetime.fromisoformat(text) - datetime.now(UTC)).total_seconds()) < 120


@pytest.mark.parametrize(
    ("args", "status", "result"),
    [
        (
            {"iso": "2025-01-31T12:00:00.000Z", "offset-minutes": 330},
            "ok",
            {"ok": "2025-01-31T17:30:00.000+05:30"},
        ),
        ({"iso": "not a time", "offset-minutes": 0}, "err", {"err": 'cannot parse timestamp: "not a time"'}),
    ],
)
def test_time_server_convert_time(
    compiled: Callable[[str], Any], args: dict[str, Any], status: str, result: Any
) -> None:
    """The JS component's `result` return maps a thrown string to err."""
    out = call(compiled("time-server"), "convert-time", args)
    assert (out.status, value(out)) == (status, result)


@pytest.mark.parametrize(
    ("req", "status", "result"),
    [
        ({"expression": "1+2"}, "ok", {"ok": "3"}),
        ({"expression": "sqrt(x) * 2", "variables": [{"name": "x", "value": 16.0}]}, "ok", {"ok": "8.0"}),
        ({"expression": "1/0"}, "err", {"err": "ZeroDivisionError: division by zero"}),
    ],
)
def test_eval(compiled: Callable[[str], Any], req: dict[str, Any], status: str, result: Any) -> None:
    """The Python component evaluates expressions; a failing one is status "err" carrying the exception."""
    out = call(compiled("eval"), "eval", {"req": req})
    assert (out.status, value(out)) == (status, result)


def test_eval_syntax_error(compiled: Callable[[str], Any]) -> None:
    """A malformed expression is an err result naming the SyntaxError, not a trap."""
    out = call(compiled("eval"), "eval", {"req": {"expression": "1 +"}})
    assert out.status == "err"
    assert out.error.startswith("SyntaxError: ")
    assert value(out) == {"err": out.error}
