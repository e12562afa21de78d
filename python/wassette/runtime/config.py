"""Where state lives and how it is configured.

Precedence, highest first: command-line flag, ``WASSETTE_*`` environment
variable, ``config.toml`` (``$XDG_CONFIG_HOME/wassette/config.toml``, or the
file named by ``WASSETTE_CONFIG_FILE``), built-in default.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wassette.runtime.errors import ConfigError

DEFAULT_MEMORY_LIMIT = 512 * 1024 * 1024
DEFAULT_TIMEOUT_MS = 30_000
DEFAULT_MAX_COMPONENT_BYTES = 256 * 1024 * 1024
ALLOCATORS = ("auto", "pooling", "on-demand")


def _xdg(env: Mapping[str, str], var: str, fallback: str) -> Path:
    value = env.get(var)
    if value and Path(value).is_absolute():
        return Path(value)
    return Path(env.get("HOME", str(Path.home()))) / fallback


@dataclass(frozen=True)
class Settings:
    """Everything the runtime needs to know about its environment."""

    component_dir: Path
    cache_dir: Path
    config_dir: Path
    data_dir: Path = Path(".")
    secrets_dir: Path = Path(".")
    # Relative `fs://` URIs in policies are resolved against this directory.
    storage_base: Path = Path(".")
    # Where granted environment variables take their values from: the server's
    # environment, config [environment_vars], --env-file, --env (last wins).
    environment: Mapping[str, str] = field(default_factory=dict)
    memory_limit_bytes: int = DEFAULT_MEMORY_LIMIT
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    max_component_bytes: int = DEFAULT_MAX_COMPONENT_BYTES
    # Instance allocator: auto (pooling where it can be reserved), pooling, on-demand.
    allocator: str = "auto"
    config_file: Path | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)
    # Distribution: an extra CA bundle for https:// sources and registries,
    # whether plain http:// to loopback is allowed (development only), and the
    # WASSETTE_SIGNATURES override of the signature trust policy's modes.
    ca_bundle: Path | None = None
    allow_insecure_loopback: bool = False
    signatures_override: str | None = None

    @classmethod
    def load(
        cls,
        *,
        component_dir: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        env_vars: Sequence[str] = (),
        env_file: str | None = None,
        allow_insecure_loopback: bool | None = None,
    ) -> Settings:
        """`env_vars` are `KEY=VALUE` strings (--env), `env_file` a dotenv
        file (--env-file); both feed granted environment variables."""
        env = os.environ if env is None else env
        config_dir = _xdg(env, "XDG_CONFIG_HOME", ".config") / "wassette"
        config_file = Path(env["WASSETTE_CONFIG_FILE"]) if env.get("WASSETTE_CONFIG_FILE") else None
        raw = _read_config(config_file or config_dir / "config.toml", explicit=config_file is not None)

        def pick(flag: object, env_names: tuple[str, ...], keys: tuple[str, ...]) -> Any:
            if flag is not None:
                return flag
            for name in env_names:
                if env.get(name):
                    return env[name]
            for key in keys:
                if key in raw:
                    return raw[key]
            return None

        data_home = _xdg(env, "XDG_DATA_HOME", ".local/share") / "wassette"
        chosen = pick(
            component_dir,
            ("WASSETTE_COMPONENT_DIR", "WASSETTE_PLUGIN_DIR"),
            ("component_dir", "plugin_dir"),
        )
        cache = pick(None, ("WASSETTE_CACHE_DIR",), ("cache_dir",))
        secrets = pick(None, ("WASSETTE_SECRETS_DIR",), ("secrets_dir",))
        base = pick(None, ("WASSETTE_STORAGE_BASE",), ("storage_base",))
        ca_bundle = pick(None, ("WASSETTE_CA_BUNDLE",), ("ca_bundle",))
        insecure = pick(
            True if allow_insecure_loopback else None,
            ("WASSETTE_ALLOW_INSECURE_LOOPBACK",),
            ("allow_insecure_loopback",),
        )
        allocator = str(pick(None, ("WASSETTE_ALLOCATOR",), ("allocator",)) or "auto")
        if allocator not in ALLOCATORS:
            raise ConfigError(f"allocator {allocator!r} is not one of: {', '.join(ALLOCATORS)}")
        return cls(
            component_dir=Path(chosen).expanduser() if chosen else data_home / "components",
            cache_dir=Path(cache).expanduser()
            if cache
            else _xdg(env, "XDG_CACHE_HOME", ".cache") / "wassette" / "compiled",
            config_dir=config_dir,
            data_dir=data_home,
            secrets_dir=Path(secrets).expanduser() if secrets else config_dir / "secrets",
            storage_base=Path(base).expanduser().resolve() if base else Path.cwd(),
            environment=_environment(env, raw, env_file, env_vars),
            memory_limit_bytes=_int(raw, "memory_limit_bytes", DEFAULT_MEMORY_LIMIT),
            timeout_ms=_int(raw, "timeout_ms", DEFAULT_TIMEOUT_MS),
            max_component_bytes=_int(raw, "max_component_bytes", DEFAULT_MAX_COMPONENT_BYTES),
            allocator=allocator,
            config_file=config_file or (config_dir / "config.toml"),
            raw=raw,
            ca_bundle=Path(str(ca_bundle)).expanduser() if ca_bundle else None,
            allow_insecure_loopback=_flag(insecure, "allow_insecure_loopback"),
            signatures_override=env.get("WASSETTE_SIGNATURES") or None,
        )


def _environment(
    env: Mapping[str, str], raw: Mapping[str, Any], env_file: str | None, env_vars: Sequence[str]
) -> dict[str, str]:
    values = dict(env)
    configured = raw.get("environment_vars", {})
    if not isinstance(configured, Mapping):
        raise ConfigError('config [environment_vars] must be a table of KEY = "value"')
    values.update({str(k): str(v) for k, v in configured.items()})
    if env_file:
        values.update(read_env_file(Path(env_file)))
    for item in env_vars:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--env {item!r}: expected KEY=VALUE")
        values[key] = value
    return values


def read_env_file(path: Path) -> dict[str, str]:
    """A dotenv file: `KEY=VALUE` lines, `#` comments, optional quotes and `export`."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise ConfigError(f"--env-file {path}: {e.strerror}") from None
    values: dict[str, str] = {}
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{path}:{n}: expected KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def _flag(value: Any, key: str) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in (
        "1",
        "true",
        "yes",
        "on",
        "0",
        "false",
        "no",
        "off",
    ):
        return value.strip().lower() in ("1", "true", "yes", "on")
    raise ConfigError(f"{key} must be true or false, got {value!r}")


def _int(raw: Mapping[str, Any], key: str, default: int) -> int:
    value = raw.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"config key {key!r} must be a positive integer, got {value!r}")
    return value


def _read_config(path: Path, *, explicit: bool) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"config file {path} (from WASSETTE_CONFIG_FILE) does not exist") from None
        return {}
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from None
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror}") from None
