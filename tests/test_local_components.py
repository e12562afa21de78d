"""The drop directory: `wassette component sync` and `run --local-components`.

Components a user drops in $XDG_DATA_HOME/wassette/local-components are
loaded (with a `NAME.policy.yaml` beside them as their policy), reloaded when
changed, unloaded when removed; what another account could have written is
refused; a running server picks changes up and tells its clients.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from homes import Cli
from test_mcp_features import session, text
from test_mcp_http import is_list_changed, wait_for

POLICY = """version: "1.0"
permissions:
  environment:
    allow:
      - key: GREETING
"""


def drop_dir(home: Path) -> Path:
    d = home / "data" / "wassette" / "local-components"
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    return d


def put(src: Path, dest: Path) -> Path:
    shutil.copyfile(src, dest)
    dest.chmod(0o644)
    return dest


def custom_section(name: str, payload: bytes) -> bytes:
    """A wasm custom section (id 0): valid at the end of any component."""
    body = bytes([len(name)]) + name.encode() + payload
    assert len(body) < 128  # one-byte LEB128 sizes
    return bytes([0, len(body)]) + body


def sync(cli: Cli, *args: str) -> tuple[int, dict[str, Any], str]:
    r = cli("component", "sync", *args)
    return r.returncode, json.loads(r.stdout) if r.stdout.strip() else {}, r.stderr


def test_sync_loads_reloads_and_unloads_what_the_directory_holds(cli: Cli, home: Path, components) -> None:
    d = drop_dir(home)
    put(components["fsprobe"], d / "probe.wasm")
    (d / "probe.policy.yaml").write_text(POLICY)
    (d / "notes.txt").write_text("not a component")
    rc, report, _ = sync(cli)
    assert (rc, report["loaded"], report["refused"]) == (0, ["probe"], [])
    assert report["directory"] == str(d)
    # Its policy file is its policy.
    policy = json.loads(cli("policy", "get", "probe").stdout)
    assert policy["permissions"]["environment"]["allow"] == [{"key": "GREETING"}]
    listed = {c["id"]: c for c in json.loads(cli("component", "list").stdout)}
    assert listed["probe"]["source"] == (d / "probe.wasm").as_uri()

    # Nothing changed: nothing reloaded; a grant made since stays.
    assert cli("permission", "grant", "network", "probe", "example.com").returncode == 0
    rc, report, _ = sync(cli)
    assert (report["loaded"], report["unchanged"]) == ([], ["probe"])
    assert "example.com" in cli("policy", "get", "probe").stdout

    # A new build of it: reloaded.
    put(components["arith"], d / "probe.wasm")
    rc, report, _ = sync(cli)
    assert report["loaded"] == ["probe"]
    tools = json.loads(cli("component", "list").stdout)[0]["tools"]
    assert "add" in tools

    # Removed from the directory: unloaded.
    (d / "probe.wasm").unlink()
    rc, report, _ = sync(cli)
    assert report["unloaded"] == ["probe"]
    assert json.loads(cli("component", "list").stdout) == []


def test_sync_leaves_components_loaded_another_way_unless_forced(cli: Cli, home: Path, components) -> None:
    assert cli("component", "load", components["arith"].as_uri()).returncode == 0
    put(components["strings"], drop_dir(home) / "arith.wasm")
    rc, report, stderr = sync(cli)
    assert rc == 1 and report["loaded"] == []
    assert "already loaded from" in report["refused"][0]["reason"] and "--force" in stderr
    assert "add" in json.loads(cli("component", "list").stdout)[0]["tools"]
    rc, report, _ = sync(cli, "--force")
    assert (rc, report["loaded"]) == (0, ["arith"])
    assert "echo" in json.loads(cli("component", "list").stdout)[0]["tools"]
    # A component loaded another way is never unloaded by a sync.
    assert cli("component", "load", components["io"].as_uri()).returncode == 0
    sync(cli)
    assert {c["id"] for c in json.loads(cli("component", "list").stdout)} == {"arith", "io"}


def test_what_another_account_could_have_written_is_refused(
    cli: Cli, home: Path, components, tmp_path
) -> None:
    d = drop_dir(home)
    bad = put(components["arith"], d / "shared.wasm")
    bad.chmod(0o666)
    put(components["io"], d / "good.wasm")
    (d / "corrupt.wasm").write_bytes(b"\0asm\x0d\0\x01\0 not really")
    (d / "corrupt.wasm").chmod(0o644)
    # A link to a file others may write is refused like the file itself.
    outside = put(components["strings"], tmp_path / "strings.wasm")
    outside.chmod(0o646)
    (d / "linked.wasm").symlink_to(outside)
    rc, report, stderr = sync(cli)
    assert rc == 1 and report["loaded"] == ["good"]
    why = {r["file"]: r["reason"] for r in report["refused"]}
    assert "writable by other users (mode 0666" in why["shared.wasm"]
    assert "linked.wasm's target is writable by other users" in why["linked.wasm"]
    assert why["corrupt.wasm"]  # a clear reason, not a crash
    assert "shared.wasm refused" in stderr
    if os.getuid() == 0:  # root can make a file that belongs to someone else
        bad.chmod(0o644)
        os.chown(bad, 4242, -1)
        _, report, _ = sync(cli)
        assert "owned by uid 4242" in {r["file"]: r["reason"] for r in report["refused"]}["shared.wasm"]
    # A directory others may write: nothing in it is trusted.
    d.chmod(0o777)
    r = cli("component", "sync")
    assert r.returncode == 1 and "drop directory" in r.stderr and "writable by other users" in r.stderr
    d.chmod(0o700)
    assert {c["id"] for c in json.loads(cli("component", "list").stdout)} == {"good"}


def test_link_puts_a_build_output_in_the_directory(cli: Cli, home: Path, components, tmp_path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    wasm = put(components["strings"], project / "words.wasm")
    (project / "words.policy.yaml").write_text(POLICY)
    rc, report, _ = sync(cli, "--link", str(wasm))
    assert (rc, report["loaded"]) == (0, ["words"])
    assert (drop_dir(home) / "words.wasm").resolve() == wasm
    assert (drop_dir(home) / "words.policy.yaml").is_symlink()
    r = cli("component", "sync", "--link", str(project / "missing.wasm"))
    assert r.returncode == 1 and "--link needs a .wasm file" in r.stderr


def test_a_bad_mode_is_a_clear_error(cli: Cli) -> None:
    r = cli("component", "list", env_extra={"WASSETTE_LOCAL_COMPONENTS": "sometimes"})
    assert r.returncode != 0 and "not one of: off, startup, watch" in r.stderr
    r = cli("run", "--local-components", "sometimes")
    assert r.returncode == 2 and "invalid choice" in r.stderr


@pytest.mark.anyio
async def test_run_watches_the_directory_and_tells_clients(
    env: dict[str, str], home: Path, components
) -> None:
    d = drop_dir(home)
    put(components["arith"], d / "arith.wasm")
    changed: list[Any] = []

    async def on_message(message: Any) -> None:
        if is_list_changed(getattr(message, "root", message)):
            changed.append(message)

    async with session(env, message_handler=on_message) as s:
        # Loaded at start (run's default is watch).
        assert "add" in {t.name for t in (await s.list_tools()).tools}
        put(components["strings"], d / "words.wasm")
        await wait_for(lambda: changed, what="tools/list_changed after a file was dropped in")
        assert {"add", "echo"} <= {t.name for t in (await s.list_tools()).tools}
        r = await s.call_tool("echo", {"s": "dropped"})
        assert not r.is_error and "dropped" in text(r)
        # A rebuild with the same tools (here: one more custom section) is
        # news to the clients too: the component behind the tools changed.
        changed.clear()
        rebuilt = (d / "words.wasm").read_bytes() + custom_section("rebuilt", b"2")
        (d / "words.wasm").write_bytes(rebuilt)
        await wait_for(lambda: changed, what="tools/list_changed after a rebuild with the same tools")
        changed.clear()
        (d / "arith.wasm").unlink()
        await wait_for(lambda: changed, what="tools/list_changed after a file was removed")
        assert "add" not in {t.name for t in (await s.list_tools()).tools}
        # A file another account could write is not picked up, and the server
        # goes on. (Dropped before a good one: once the good one is listed,
        # the watcher has judged the hostile one.)
        hostile = put(components["arith"], d / "hostile.wasm")
        hostile.chmod(0o666)
        changed.clear()
        put(components["io"], d / "io.wasm")
        await wait_for(lambda: changed, what="tools/list_changed after io.wasm was dropped in")
        names = {t.name for t in (await s.list_tools()).tools}
        assert "env-count" in names and "add" not in names
        r = await s.call_tool("echo", {"s": "still here"})
        assert not r.is_error


@pytest.mark.anyio
async def test_startup_mode_loads_once_and_off_not_at_all(
    env: dict[str, str], home: Path, components, tmp_path: Path
) -> None:
    d = drop_dir(home)
    put(components["arith"], d / "arith.wasm")
    async with session(env, "--local-components", "off") as s:
        assert "add" not in {t.name for t in (await s.list_tools()).tools}
    changed: list[Any] = []

    async def on_message(message: Any) -> None:
        if is_list_changed(getattr(message, "root", message)):
            changed.append(message)

    async with session(env, "--local-components", "startup", message_handler=on_message) as s:
        assert "add" in {t.name for t in (await s.list_tools()).tools}
        put(components["strings"], d / "words.wasm")
        # A load by another process is told of by the watcher, which has
        # looked after the file was dropped: were it watching, echo would show.
        assert Cli(env)("component", "load", components["io"].as_uri()).returncode == 0
        await wait_for(lambda: changed, what="tools/list_changed after the CLI's load")
        names = {t.name for t in (await s.list_tools()).tools}
        assert "echo" not in names and "add" in names
        # Another process reloads io with a rebuild offering the same tools:
        # the clients hear of it (the component behind the tools changed).
        changed.clear()
        rebuilt = tmp_path / "io.wasm"
        rebuilt.write_bytes(components["io"].read_bytes() + custom_section("rebuilt", b"2"))
        assert Cli(env)("component", "load", rebuilt.as_uri()).returncode == 0
        await wait_for(lambda: changed, what="tools/list_changed after a reload with the same tools")
