"""The runtime layer: tool naming, the component store, restarts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from wassette.distribution.loading import load_component
from wassette.runtime import naming as catalog
from wassette.runtime.errors import InvalidComponentError, SourceError, UnknownComponentError
from wassette.runtime.runtime import Runtime


def export(function: str, interface: str | None = None, unsupported: str | None = None) -> dict[str, object]:
    return {
        "interface": interface,
        "function": function,
        "description": None,
        "input_schema": {"type": "object", "properties": {}},
        "output_schema": None,
        "unsupported": unsupported,
    }


def test_names_follow_the_wassette_convention() -> None:
    """World exports keep their name; interface exports are `pkg_name_iface_func`."""
    cat = catalog.build({"c": [export("fetch"), export("get-time", "wasi-demo:clock/api@1.2.0")]})
    assert set(cat.tools) == {"fetch", "wasi-demo_clock_api_get-time"}
    assert catalog.sanitize("a.b c/d") == "a_b_c_d"
    assert len(catalog.base_name("p:q/" + "x" * 300, "f")) == 128


def test_collisions_are_order_independent_and_reported() -> None:
    """Two components exporting `add`: both qualified, same result whatever the order."""
    one = catalog.build({"b": [export("add")], "a": [export("add"), export("sub")]})
    two = catalog.build({"a": [export("add"), export("sub")], "b": [export("add")]})
    assert set(one.tools) == set(two.tools) == {"a__add", "b__add", "sub"}
    assert one.collisions == ["tool name 'add' is exported by a, b; each is offered as '<component id>__add'"]


def test_builtin_names_are_reserved() -> None:
    """A component tool never takes a built-in tool's name."""
    cat = catalog.build({"c": [export("load-component")]}, reserved={"load-component"})
    assert set(cat.tools) == {"c__load-component"}
    assert "a built-in tool" in cat.collisions[0]


def test_unsupported_exports_are_skipped_with_reason() -> None:
    cat = catalog.build({"c": [export("[method]r.m", unsupported="resource methods cannot be tools")]})
    assert cat.tools == {}
    assert cat.skipped == [("c", "[method]r.m", "resource methods cannot be tools")]


def test_restart_lists_from_metadata_without_compiling(runtime: Runtime, components: dict[str, Path]) -> None:
    """After a restart the tools are listed from `<id>.metadata.json`; the
    component is compiled (or taken from the cache) only on the first call."""
    load_component(runtime, components["arith"].as_uri())
    again = Runtime(runtime.settings)
    again.refresh()
    assert "add" in {t.name for t in again.tools()}
    assert again.compiler.get("arith") is None  # listing did not compile
    assert again.call_tool("add", {"a": 2, "b": 3}).value == 5


def test_hand_copied_component_is_picked_up(runtime: Runtime, components: dict[str, Path]) -> None:
    """A .wasm dropped into the directory (no metadata) is described and listed."""
    runtime.store.ensure()
    shutil.copy(components["strings"], runtime.store.path("dropped"))
    runtime.refresh()
    assert {t.name for t in runtime.tools()} == {"echo", "length"}
    meta = json.loads(runtime.store.path("dropped", ".metadata.json").read_text())
    assert meta["sha256"] and meta["exports"]


def test_changed_wasm_invalidates_metadata(runtime: Runtime, components: dict[str, Path]) -> None:
    """Replacing the wasm behind the store's back is noticed (size/mtime differ)."""
    load_component(runtime, components["arith"].as_uri())
    shutil.copy(components["strings"], runtime.store.path("arith"))
    fresh = Runtime(runtime.settings)
    fresh.refresh()
    assert {t.name for t in fresh.tools()} == {"echo", "length"}


def test_broken_component_does_not_stop_others(runtime: Runtime, components: dict[str, Path]) -> None:
    """A corrupt file in the directory is reported; the rest keeps working."""
    load_component(runtime, components["arith"].as_uri())
    runtime.store.path("broken").write_bytes(b"\0asm\x01\0\0\0")
    fresh = Runtime(runtime.settings)
    fresh.refresh()
    assert "core WebAssembly module" in fresh.broken_components()["broken"]
    assert fresh.call_tool("add", {"a": 1, "b": 1}).value == 2


def test_failed_load_leaves_nothing(runtime: Runtime, tmp_path: Path) -> None:
    bad = tmp_path / "bad.wasm"
    bad.write_bytes(b"garbage!")
    with pytest.raises(InvalidComponentError, match="not a WebAssembly binary"):
        load_component(runtime, bad.as_uri())
    assert runtime.store.ids() == []
    with pytest.raises(SourceError):
        load_component(runtime, "https://example.com/x.wasm")
    with pytest.raises(UnknownComponentError):
        runtime.unload_component("bad")


def test_interrupted_write_is_invisible(runtime: Runtime, components: dict[str, Path]) -> None:
    """Temp files of an interrupted write are never listed as components."""
    runtime.store.ensure()
    (runtime.store.dir / ".arith.wasm.123.tmp").write_bytes(components["arith"].read_bytes())
    runtime.refresh()
    assert runtime.store.ids() == []


def test_effective_policy_follows_every_change(
    runtime: Runtime, components: dict[str, Path], tmp_path: Path
) -> None:
    """The effective policy is cached between calls, yet every input change
    applies from the next call: secrets, grants, environment overrides, and
    where a granted symlink points."""
    load_component(runtime, components["io"].as_uri())

    def env(key: str) -> object:
        return runtime.call_tool("get-env", {"key": key}).value

    assert env("TOKEN") is None
    runtime.secrets.set("io", {"TOKEN": "one"})
    assert env("TOKEN") == "one"
    runtime.secrets.set("io", {"TOKEN": "two"})  # same size, a new file
    assert env("TOKEN") == "two"
    runtime.secrets.delete("io", ["TOKEN"])
    assert env("TOKEN") is None

    runtime.permissions.grant_environment("io", "OVERRIDDEN")
    assert env("OVERRIDDEN") is None
    runtime.set_environment("io", {"OVERRIDDEN": "yes"})
    assert env("OVERRIDDEN") == "yes"

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "f.txt").write_text("from a")
    (tmp_path / "b" / "f.txt").write_text("from b")
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "a")
    runtime.permissions.grant_storage("io", f"fs://{link}", ["read"])
    read = {"path": f"{link}/f.txt"}
    assert runtime.call_tool("read-file", read).value == {"ok": "from a"}
    link.unlink()
    link.symlink_to(tmp_path / "b")
    assert runtime.call_tool("read-file", read).value == {"ok": "from b"}
    runtime.permissions.revoke_storage("io", f"fs://{link}")
    assert runtime.call_tool("read-file", read).status == "err"


def test_copies_share_compiled_code_not_permissions(
    runtime: Runtime, components: dict[str, Path], tmp_path: Path
) -> None:
    """The same wasm under two ids is compiled (and held in memory) once;
    each id still runs under its own policy."""
    for cid in ("io-a", "io-b"):
        shutil.copy(components["io"], tmp_path / f"{cid}.wasm")
        load_component(runtime, (tmp_path / f"{cid}.wasm").as_uri())
    runtime.permissions.grant_environment("io-a", "SHARED_TEST_KEY")
    fresh = Runtime(runtime.settings)  # as after a restart: compiled on first call
    fresh.refresh()
    fresh.set_environment("io-a", {"SHARED_TEST_KEY": "for a"})
    fresh.set_environment("io-b", {"SHARED_TEST_KEY": "for b"})
    assert fresh.call_tool("io-a__get-env", {"key": "SHARED_TEST_KEY"}).value == "for a"
    assert fresh.call_tool("io-b__get-env", {"key": "SHARED_TEST_KEY"}).value is None
    assert fresh.compiler.get("io-a") is fresh.compiler.get("io-b") is not None


def test_a_name_that_does_not_resolve_is_said_so_not_called_a_denial(
    runtime: Runtime, components: dict[str, Path]
) -> None:
    """A DNS failure for a granted host: the user reads that the name did not
    resolve, with no grant hint for a grant that exists, and the audit log
    records no denial."""
    load_component(runtime, components["http-probe"].as_uri())
    runtime.permissions.grant_network("http-probe", "no-such-host.invalid")
    result = runtime.call_tool("fetch-url", {"url": "http://no-such-host.invalid/", "method": "GET"})
    assert result.status == "err" and result.denials == []
    text = result.message()
    assert "network failure: http of http://no-such-host.invalid:80/: the name does not resolve" in text
    assert "denied" not in text and "wassette permission grant" not in text
    audit = runtime.audit.path.read_text() if runtime.audit.path.exists() else ""
    assert '"denied"' not in audit


def test_a_lone_surrogate_is_refused_naming_where(runtime: Runtime, components: dict[str, Path]) -> None:
    """Valid JSON, not valid Unicode: the error says what is wrong and where."""
    load_component(runtime, components["strings"].as_uri())
    result = runtime.call_tool("echo", json.loads('{"s": "ok \\ud800"}'))
    assert result.status == "invalid_arguments"
    assert result.error == "args.s: lone surrogate U+D800 at offset 3 (a string must be valid Unicode)"


def test_stale_temp_files_are_swept_but_not_a_live_writers(
    runtime: Runtime, components: dict[str, Path]
) -> None:
    """A write killed midway leaves `.<name>.<random>.tmp`: the next scan of
    the directory removes it once it is old and nobody holds it; a temp file
    a live writer holds is left alone, however old."""
    import fcntl
    import os
    import time

    load_component(runtime, components["arith"].as_uri())
    directory = runtime.store.dir
    dead = directory / ".arith.policy.yaml.dead1234.tmp"
    dead.write_text("half a polic")
    live = directory / ".arith.policy.yaml.live5678.tmp"
    live.write_text("being written")
    fresh = directory / ".arith.policy.yaml.new0000.tmp"
    fresh.write_text("just created")
    old = time.time() - 3600
    for path in (dead, live):
        os.utime(path, (old, old))
    with open(live, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another process's writer, as write_atomic locks
        runtime.refresh()
        assert not dead.exists() and live.exists() and fresh.exists()
    runtime.refresh()
    assert not live.exists() and fresh.exists()


def test_audit_log_reads_the_newest_records_from_the_end(tmp_path: Path) -> None:
    """Across read chunks, with torn and foreign lines skipped."""
    from wassette.runtime.audit import AuditLog

    log = AuditLog(tmp_path / "audit.jsonl")
    for i in range(3000):
        log.record("denied" if i % 3 else "granted", component=f"c{i % 2}", n=i, pad="x" * 40)
    with log.path.open("ab") as f:
        f.write(b'{"torn": \nnot json\n[1, 2]\n')
    log.record("granted", component="c1", n=3000)
    newest = log.read(5)
    assert [r["n"] for r in newest] == [2996, 2997, 2998, 2999, 3000]
    granted = log.read(3, event="granted", component="c0")
    assert [r["n"] for r in granted] == [2982, 2988, 2994]  # i % 6 == 0: granted, and c0
    assert len(log.read(10_000)) == 3001
    assert AuditLog(tmp_path / "none.jsonl").read(10) == []


def test_a_tenants_calls_at_once_are_capped_in_the_runtime(
    runtime: Runtime, components: dict[str, Path]
) -> None:
    """The runtime's own check of `concurrent_calls` (every transport, the
    HTTP queue in front of it or not): a call beyond it ends at once as
    `over_quota`, audited; once one ends, the next runs."""
    from wassette import _engine
    from wassette.runtime.tenants import Quota, for_tenant

    tenant = Runtime(
        for_tenant(runtime.settings, "t1")._replace(quota=Quota(concurrent_calls=1)), engine_of=runtime
    )
    load_component(tenant, components["spin"].as_uri())
    load_component(tenant, components["arith"].as_uri())
    cancel = _engine.CancelToken()
    spinning = tenant.start_tool("spin", {}, cancel=cancel)
    refused = tenant.call_tool("add", {"a": 1, "b": 2})
    assert refused.status == "over_quota" and "concurrent_calls = 1" in refused.message()
    assert "tenant t1" in refused.message()
    cancel.cancel()
    assert spinning.finish().status == "cancelled"
    assert tenant.call_tool("add", {"a": 1, "b": 2}).value == 3
    assert [r["quota"] for r in tenant.audit.read(10, event="over_quota")] == ["concurrent_calls"]
    assert tenant.compiler.engine is runtime.compiler.engine  # one engine for every tenant


def test_a_failing_observer_does_not_fail_the_call(runtime: Runtime, components: dict[str, Path]) -> None:
    """Metrics or tracing that break are logged; the call's result stands."""

    class Broken:
        def started(self, tool: object) -> object:
            raise RuntimeError("observer broke at start")

        def ended(self, result: object, handle: object) -> None:
            raise RuntimeError("observer broke at the end")

    load_component(runtime, components["arith"].as_uri())
    runtime.observers.append(Broken())
    assert runtime.call_tool("add", {"a": 2, "b": 3}).value == 5
