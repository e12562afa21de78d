"""Secrets are encrypted at rest (runtime/secrets.py, runtime/secrets_key.py):
no value is on disk in plain text, old plain files are encrypted in place, the
key is in the keyring or a 0600 key file, and a missing or wrong key or a
damaged file is a clear error that fails only that component's calls."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from servers import piped_session, run_piped

VALUE = "s3cr3t-at-rest-7f1e"
TESTS = Path(__file__).resolve().parent


def _secrets_dir(home: Path) -> Path:
    return home / "config" / "wassette" / "secrets"


def _key_file(home: Path) -> Path:
    return home / "config" / "wassette" / "secrets.key"


def _get_env(cli, key: str) -> tuple[int, object, str]:
    r = cli("tool", "invoke", "get-env", "--args", json.dumps({"key": key}))
    value = json.loads(r.stdout)["result"] if r.stdout.strip() else None
    return r.returncode, value, r.stderr


def _files_holding(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


@pytest.fixture
def io_loaded(cli, components: dict[str, Path]) -> None:
    r = cli("component", "load", components["io"].as_uri())
    assert r.returncode == 0, r.stderr


def test_no_value_on_disk_and_the_component_still_gets_it(cli, io_loaded, home: Path) -> None:
    r = cli("secret", "set", "io", f"TOKEN={VALUE}", "OTHER=x")
    assert r.returncode == 0, r.stderr
    # the one-time warning: the key sits on disk, in a 0600 file
    assert "encrypted with a key stored in" in r.stderr and str(_key_file(home)) in r.stderr
    assert stat.S_IMODE(_key_file(home).stat().st_mode) == 0o600
    assert VALUE not in r.stderr + r.stdout

    text = (_secrets_dir(home) / "io.yaml").read_text()
    assert "wassette-secrets: aes-256-gcm" in text and "TOKEN" not in text
    assert stat.S_IMODE((_secrets_dir(home) / "io.yaml").stat().st_mode) == 0o600
    assert _files_holding(home, VALUE.encode()) == []  # nor the audit log, nor anything else

    # through a real call, as an environment variable of that component
    code, value, err = _get_env(cli, "TOKEN")
    assert (code, value) == (0, VALUE), err
    assert json.loads(cli("secret", "list", "io").stdout) == [{"key": "OTHER"}, {"key": "TOKEN"}]

    r = cli("secret", "set", "io", "MORE=y")
    assert r.returncode == 0 and "key stored in" not in r.stderr  # warned once, when it was made
    assert _get_env(cli, "TOKEN")[1] == VALUE
    assert _files_holding(home, VALUE.encode()) == []


def test_plain_files_are_encrypted_in_place(cli, io_loaded, home: Path) -> None:
    """A file an older version wrote is read as it is, then encrypted: on the
    first read (a call) and on the first write."""
    secrets = _secrets_dir(home)
    secrets.mkdir(mode=0o700, parents=True)
    (secrets / "io.yaml").write_text(f"TOKEN: {VALUE}\n")
    code, value, err = _get_env(cli, "TOKEN")
    assert (code, value) == (0, VALUE), err
    assert VALUE not in err
    assert "wassette-secrets:" in (secrets / "io.yaml").read_text()
    assert _files_holding(home, VALUE.encode()) == []
    assert _get_env(cli, "TOKEN")[1] == VALUE

    # a write migrates too, keeping what was there
    (secrets / "io.yaml").write_text(f"OLD: {VALUE}\n")
    r = cli("secret", "set", "io", "NEW=1")
    assert r.returncode == 0, r.stderr
    assert _files_holding(home, VALUE.encode()) == []
    assert json.loads(cli("secret", "list", "io").stdout) == [{"key": "NEW"}, {"key": "OLD"}]
    assert _get_env(cli, "OLD")[1] == VALUE
    assert [p.name for p in secrets.iterdir() if p.name.endswith(".tmp") or ".yaml." in p.name] == []


def test_a_failed_migration_keeps_the_plain_file(tmp_path: Path, monkeypatch) -> None:
    """A crash mid-write leaves the old file whole: the encrypted one replaces
    it by rename, or not at all."""
    from wassette.runtime.secrets import SecretStore

    secrets = tmp_path / "secrets"
    secrets.mkdir(mode=0o700)
    (secrets / "c.yaml").write_text(f"TOKEN: {VALUE}\n")

    def crash(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    assert SecretStore(secrets).get("c") == {"TOKEN": VALUE}  # still served
    assert (secrets / "c.yaml").read_text() == f"TOKEN: {VALUE}\n"
    assert sorted(p.name for p in secrets.iterdir() if not p.name.startswith(".")) == ["c.yaml"]
    monkeypatch.undo()
    assert SecretStore(secrets).get("c") == {"TOKEN": VALUE}
    assert VALUE not in (secrets / "c.yaml").read_text()


def test_wrong_or_missing_key_is_a_clear_error(cli, io_loaded, home: Path) -> None:
    from wassette.runtime.state.sealed import new_key

    assert cli("secret", "set", "io", f"TOKEN={VALUE}").returncode == 0
    original = _key_file(home).read_text()
    _key_file(home).write_text(new_key() + "\n")
    r = cli("secret", "list", "io")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "was encrypted with key" in r.stderr and "Restore the key that was used" in r.stderr
    code, _, err = _get_env(cli, "TOKEN")
    assert code == 1 and "was encrypted with key" in err and VALUE not in err

    _key_file(home).unlink()
    r = cli("secret", "set", "io", "NEW=1")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "their key is missing" in r.stderr and str(_key_file(home)) in r.stderr
    assert not _key_file(home).exists()  # never a new key over secrets sealed with another

    _key_file(home).write_text(original)
    assert _get_env(cli, "TOKEN")[1] == VALUE


def test_a_corrupt_file_fails_only_that_component(
    cli, env: dict[str, str], components: dict[str, Path], home: Path
) -> None:
    for name in ("io", "arith"):
        assert cli("component", "load", components[name].as_uri()).returncode == 0
    assert cli("secret", "set", "io", f"TOKEN={VALUE}").returncode == 0
    path = _secrets_dir(home) / "io.yaml"
    path.write_text(path.read_text().replace('data: "', 'data: "AAAA'))  # altered ciphertext

    r = cli("secret", "list", "io")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"the secrets file {path} is corrupt" in r.stderr and "set the secrets of io again" in r.stderr

    call = {"jsonrpc": "2.0", "method": "tools/call"}
    done, answers = run_piped(
        env,
        piped_session(
            {**call, "id": 3, "params": {"name": "get-env", "arguments": {"key": "TOKEN"}}},
            {**call, "id": 4, "params": {"name": "add", "arguments": {"a": 40, "b": 2}}},
        ),
    )
    assert done.returncode == 0, done.stderr
    failed = answers[3]["result"]
    assert failed["isError"] is True
    assert "is corrupt (it does not decrypt" in failed["content"][0]["text"]
    assert VALUE not in json.dumps(failed)
    assert answers[4]["result"].get("isError") is not True
    assert answers[4]["result"]["structuredContent"] == {"result": 42}
    assert b"Traceback" not in done.stderr

    path.write_text("TOKEN: [unclosed\n")  # not even YAML
    code, _, err = _get_env(cli, "TOKEN")
    assert code == 1 and "is corrupt (not valid YAML)" in err


def test_the_key_goes_to_a_usable_keyring(cli, io_loaded, home: Path, tmp_path: Path) -> None:
    ring = tmp_path / "keyring.json"
    cli.env = {
        **cli.env,
        "PYTHON_KEYRING_BACKEND": "fake_keyring.FileKeyring",
        "PYTHONPATH": str(TESTS),
        "FAKE_KEYRING_FILE": str(ring),
    }
    r = cli("secret", "set", "io", f"TOKEN={VALUE}")
    assert r.returncode == 0, r.stderr
    assert not _key_file(home).exists() and "key stored in" not in r.stderr
    [(entry, key)] = json.loads(ring.read_text()).items()
    assert entry.startswith("wassette\0secrets key of ") and len(key) == 44
    assert _get_env(cli, "TOKEN")[1] == VALUE
    assert _files_holding(home, VALUE.encode()) == []


def test_the_key_file_can_be_elsewhere(cli, io_loaded, home: Path, tmp_path: Path) -> None:
    key = tmp_path / "vault" / "wassette.key"
    cli.env = {**cli.env, "WASSETTE_SECRETS_STORE_KEY_FILE": str(key)}
    r = cli("secret", "set", "io", f"TOKEN={VALUE}")
    assert r.returncode == 0, r.stderr
    assert str(key) in r.stderr and not _key_file(home).exists()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert _get_env(cli, "TOKEN")[1] == VALUE
