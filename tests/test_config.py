"""config.toml has one schema: every key typed, unknown keys refused, each
error naming the file, the key and what was expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from wassette.runtime.config import Settings
from wassette.runtime.config_schema import SCHEMA
from wassette.runtime.errors import ConfigError
from wassette.runtime.serve_config import usable_cores


def load(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return Settings.load(env={"HOME": str(tmp_path), "WASSETTE_CONFIG_FILE": str(path)})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("timeout = 10", "timeout: unknown key (expected one of: "),
        ('timeout_ms = "10s"', "timeout_ms: expected a positive number of milliseconds, got a string '10s'"),
        ("memory_limit_bytes = -1", "memory_limit_bytes: expected a positive number of bytes"),
        ("allow_insecure_loopback = 1", "allow_insecure_loopback: expected true or false, got an integer 1"),
        ('allowed_hosts = "localhost"', "allowed_hosts: expected an array of strings"),
        ('allocator = "big"', "allocator: expected one of 'auto', 'pooling', 'on-demand'"),
        ('bind_address = "host:port"', 'bind_address: expected HOST:PORT, e.g. "127.0.0.1:9001"'),
        ("catalogs = [1]", "catalogs: expected a string or an array of strings"),
        ("[environment_vars]\nKEY = [1]", 'environment_vars: expected a table of KEY = "value"'),
        ('[signatures]\nmode = "strict"', "signatures.mode: expected one of 'require', 'warn', 'off'"),
        (
            "[signatures]\nkeys = []",
            "signatures.keys: unknown key (expected one of: mode, trust, trusted_root)",
        ),
        ('[[signatures.trust]]\nmode = "warn"', "signatures.trust[0].pattern: is required"),
        ("workers = 0", 'workers: expected "auto" or a number of processes from 1 to 64, got an integer 0'),
        (
            'workers = "all"',
            "workers: expected \"auto\" or a number of processes from 1 to 64, got a string 'all'",
        ),
        (
            '[[signatures.trust]]\npattern = "x/*"\nidentities = [{ identity = "a" }]',
            "signatures.trust[0].identities[0].issuer: is required",
        ),
    ],
)
def test_errors_name_file_key_and_type(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        load(tmp_path, text)
    assert str(e.value).startswith(f"{tmp_path / 'config.toml'}: ")
    assert message in str(e.value)


def test_a_valid_file(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        'component_dir = "/srv/c"\ntimeout_ms = 1000\ncatalogs = "extra.json"\nmax_request_bytes = 1024\n'
        'bind_address = ":8080"\n[environment_vars]\nKEY = 42\n[signatures]\nmode = "warn"\n',
    )
    assert settings.component_dir == Path("/srv/c") and settings.timeout_ms == 1000
    assert settings.catalogs == ("extra.json",) and settings.environment["KEY"] == "42"
    assert settings.signatures == {"mode": "warn"}
    assert (settings.serve.host, settings.serve.port, settings.serve.max_request_bytes) == (
        "127.0.0.1",
        8080,
        1024,
    )


def test_the_cli_refuses_a_bad_file(cli, tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("component_directory = '/tmp'\n")
    done = cli("component", "list", env_extra={"WASSETTE_CONFIG_FILE": str(path)})
    assert done.returncode == 1
    assert f"error: {path}: component_directory: unknown key (expected one of: " in done.stderr


def test_every_key_is_documented() -> None:
    """docs/getting-started.md lists every config.toml key."""
    text = (Path(__file__).resolve().parent.parent / "docs/getting-started.md").read_text()
    missing = [key for key in SCHEMA if f"`{key}`" not in text]
    assert missing == []


def test_worker_count(tmp_path: Path) -> None:
    assert load(tmp_path, "workers = 3").serve.workers == 3
    assert load(tmp_path, 'workers = "auto"').serve.workers == usable_cores()
    env = {"HOME": str(tmp_path), "WASSETTE_WORKERS": "2"}
    assert Settings.load(env=env).serve.workers == 2
    assert Settings.load(env=env, serve={"workers": "1"}).serve.workers == 1  # the flag wins
    with pytest.raises(ConfigError, match="workers must be 'auto' or a number from 1 to 64, got '65'"):
        Settings.load(env={**env, "WASSETTE_WORKERS": "65"})


@pytest.mark.parametrize(
    ("cpu_max", "limit"),
    [
        ("max 100000", None),
        ("150000 100000", 2),
        ("50000 100000", 1),
        ("100000 100000", 1),
        ("garbage", None),
    ],
)
def test_usable_cores_follow_a_cgroup_quota(tmp_path: Path, cpu_max: str, limit: int | None) -> None:
    import os

    path = tmp_path / "cpu.max"
    path.write_text(cpu_max + "\n")
    cores = len(os.sched_getaffinity(0))
    assert usable_cores(path) == (cores if limit is None else min(cores, limit))
    assert usable_cores(tmp_path / "absent") == cores
