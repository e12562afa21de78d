"""Where state lives and how it is configured.

Precedence, highest first: command-line flag, `WASSETTE_*` environment
variable, config.toml (`$XDG_CONFIG_HOME/wassette/config.toml`, or the file
named by `WASSETTE_CONFIG_FILE`; its schema is config_schema.py), built-in
default. The defaults of the per-call limits are the engine's own.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

from wassette import _engine
from wassette.runtime.config_schema import MAX_WORKERS, SCHEMA, Document, parse_bool, split_host, validate
from wassette.runtime.errors import ConfigError

__all__ = ["ConfigError", "ServeSettings", "Settings", "parse_bind_address", "parse_bool", "split_host"]

DEFAULT_MEMORY_LIMIT = _engine.DEFAULT_MEMORY_LIMIT_BYTES
DEFAULT_TIMEOUT_MS = _engine.DEFAULT_TIMEOUT_MS
DEFAULT_MAX_COMPONENT_BYTES = 256 * 1024 * 1024
DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024
DEFAULT_BIND_ADDRESS = "127.0.0.1:9001"


def parse_bind_address(text: str) -> tuple[str, int]:
    """`host:port`, `[v6]:port`, `:port` or `host` (default port 9001)."""
    try:
        host, port = ("", int(text[1:])) if text.startswith(":") else split_host(text)
    except ValueError:
        raise ConfigError(f"bind address {text!r}: expected HOST:PORT, e.g. 127.0.0.1:9001") from None
    if port is None:
        port = int(DEFAULT_BIND_ADDRESS.rsplit(":", 1)[1])
    if not 0 <= port <= 65535:
        raise ConfigError(f"bind address {text!r}: port out of range")
    return host or "127.0.0.1", port


def _xdg(env: Mapping[str, str], var: str, fallback: str) -> Path:
    value = env.get(var)
    if value and Path(value).is_absolute():
        return Path(value)
    return Path(env.get("HOME", str(Path.home()))) / fallback


class ServeSettings(NamedTuple):
    """How `wassette serve` listens and answers."""

    host: str = "127.0.0.1"
    port: int = 9001
    allowed_hosts: tuple[str, ...] = ()
    auth_token: str | None = None
    legacy_sessions: bool = True
    json_response: bool = False
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    # Worker processes serving HTTP (1: this process serves, as it always did).
    workers: int = 1

    def __repr__(self) -> str:  # the token stays out of logs and tracebacks
        shown = self._replace(auth_token="***" if self.auth_token else None)
        return (
            "ServeSettings(" + ", ".join(f"{k}={v!r}" for k, v in zip(self._fields, shown, strict=True)) + ")"
        )


class Settings(NamedTuple):
    """Everything the runtime (and the layers above it) needs to know about
    its environment."""

    component_dir: Path
    cache_dir: Path
    config_dir: Path
    data_dir: Path = Path(".")
    secrets_dir: Path = Path(".")
    # Relative `fs://` URIs in policies are resolved against this directory.
    storage_base: Path = Path(".")
    # Where granted environment variables take their values from: the server's
    # environment, config [environment_vars], --env-file, --env (last wins).
    environment: Mapping[str, str] = MappingProxyType({})
    memory_limit_bytes: int = DEFAULT_MEMORY_LIMIT
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    max_component_bytes: int = DEFAULT_MAX_COMPONENT_BYTES
    # Instance allocator: auto (pooling where it can be reserved), pooling, on-demand.
    allocator: str = "auto"
    config_file: Path | None = None
    config: Document = Document()
    # Distribution: an extra CA bundle for https:// sources and registries,
    # whether plain http:// to loopback is allowed (development only), and the
    # WASSETTE_SIGNATURES override of the signature trust policy's modes.
    ca_bundle: Path | None = None
    allow_insecure_loopback: bool = False
    signatures_override: str | None = None
    catalogs: tuple[str, ...] = ()
    serve: ServeSettings = ServeSettings()

    @property
    def signatures(self) -> dict[str, Any]:
        """The validated [signatures] table (distribution/trust.py reads it)."""
        value: dict[str, Any] = self.config.get("signatures", {})
        return value

    @classmethod
    def load(
        cls,
        *,
        component_dir: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        env_vars: Sequence[str] = (),
        env_file: str | None = None,
        allow_insecure_loopback: bool | None = None,
        serve: Mapping[str, Any] | None = None,
    ) -> Settings:
        """`env_vars` are `KEY=VALUE` strings (--env), `env_file` a dotenv
        file (--env-file); both feed granted environment variables. `serve`:
        the flags of `wassette serve` that were given (bind_address,
        allowed_hosts, auth_token, legacy_sessions, json_response,
        max_request_bytes)."""
        env = os.environ if env is None else env
        config_dir = _xdg(env, "XDG_CONFIG_HOME", ".config") / "wassette"
        config_file = Path(env["WASSETTE_CONFIG_FILE"]) if env.get("WASSETTE_CONFIG_FILE") else None
        path = config_file or config_dir / "config.toml"
        doc = validate(_read_config(path, explicit=config_file is not None), str(path))

        def pick(key: str, flag: object = None) -> Any:
            if flag is not None:
                return flag
            for name in SCHEMA[key].env:
                if env.get(name):
                    return env[name]
            return doc.get(key)

        data_home = _xdg(env, "XDG_DATA_HOME", ".local/share") / "wassette"
        chosen = pick("component_dir", component_dir) or doc.get("plugin_dir")
        cache, secrets, base = pick("cache_dir"), pick("secrets_dir"), pick("storage_base")
        ca_bundle = pick("ca_bundle")
        insecure = pick("allow_insecure_loopback", True if allow_insecure_loopback else None)
        allocator = str(pick("allocator") or "auto")
        if allocator not in ("auto", "pooling", "on-demand"):
            raise ConfigError(f"allocator {allocator!r} is not one of: auto, pooling, on-demand")
        catalogs = doc.get("catalogs", [])
        return cls(
            component_dir=Path(chosen).expanduser() if chosen else data_home / "components",
            cache_dir=Path(cache).expanduser()
            if cache
            else _xdg(env, "XDG_CACHE_HOME", ".cache") / "wassette" / "compiled",
            config_dir=config_dir,
            data_dir=data_home,
            secrets_dir=Path(secrets).expanduser() if secrets else config_dir / "secrets",
            storage_base=Path(base).expanduser().resolve() if base else Path.cwd(),
            environment=_environment(env, doc, env_file, env_vars),
            memory_limit_bytes=doc.get("memory_limit_bytes", DEFAULT_MEMORY_LIMIT),
            timeout_ms=doc.get("timeout_ms", DEFAULT_TIMEOUT_MS),
            max_component_bytes=doc.get("max_component_bytes", DEFAULT_MAX_COMPONENT_BYTES),
            allocator=allocator,
            config_file=path,
            config=doc,
            ca_bundle=Path(str(ca_bundle)).expanduser() if ca_bundle else None,
            allow_insecure_loopback=_flag(insecure, "WASSETTE_ALLOW_INSECURE_LOOPBACK"),
            signatures_override=env.get("WASSETTE_SIGNATURES") or None,
            catalogs=(catalogs,) if isinstance(catalogs, str) else tuple(catalogs),
            serve=serve_settings(env, doc, serve or {}),
        )


def serve_settings(env: Mapping[str, str], doc: Document, flags: Mapping[str, Any]) -> ServeSettings:
    """Flag > environment (`WASSETTE_BIND_ADDRESS`, or `BIND_HOST` and
    `PORT`; `WASSETTE_ALLOWED_HOSTS`, `WASSETTE_AUTH_TOKEN`) > config.toml >
    defaults."""
    if flags.get("bind_address"):
        host, port = parse_bind_address(flags["bind_address"])
    elif env.get("WASSETTE_BIND_ADDRESS"):
        host, port = parse_bind_address(env["WASSETTE_BIND_ADDRESS"])
    else:
        host, port = parse_bind_address(doc.get("bind_address", DEFAULT_BIND_ADDRESS))
        host = env.get("BIND_HOST") or host
        if env.get("PORT"):
            try:
                port = int(env["PORT"])
            except ValueError:
                raise ConfigError(f"PORT={env['PORT']!r} is not a port number") from None
    hosts: Sequence[str] = flags.get("allowed_hosts") or ()
    if not hosts and env.get("WASSETTE_ALLOWED_HOSTS"):
        hosts = env["WASSETTE_ALLOWED_HOSTS"].split(",")
    if not hosts:
        hosts = doc.get("allowed_hosts", [])
    limit = flags.get("max_request_bytes")
    if limit is not None and (not isinstance(limit, int) or limit <= 0):
        raise ConfigError(f"max request size must be a positive number of bytes, got {limit!r}")
    return ServeSettings(
        host=host,
        port=port,
        allowed_hosts=tuple(h.strip() for h in hosts if h.strip()),
        auth_token=flags.get("auth_token") or env.get("WASSETTE_AUTH_TOKEN") or None,
        legacy_sessions=flags.get("legacy_sessions", True),
        json_response=flags.get("json_response", False),
        max_request_bytes=limit or doc.get("max_request_bytes", DEFAULT_MAX_REQUEST_BYTES),
        workers=_workers(flags.get("workers") or env.get("WASSETTE_WORKERS") or doc.get("workers", "auto")),
    )


def usable_cores(cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """The cores this process may use: those it may run on (its affinity,
    e.g. a container's cpuset), at most its cgroup's CPU quota rounded up
    (a Kubernetes CPU limit: 1.5 cores of a 64-core node are 2)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:
        quota, period = cpu_max.read_text().split()[:2]
        if quota != "max":
            cores = min(cores, -(-int(quota) // int(period)))
    except (OSError, ValueError):
        pass  # no cgroup v2 quota here
    return max(1, cores)


def _workers(value: object) -> int:
    """`auto` (one per usable core) or a number of processes."""
    if value == "auto":
        return min(usable_cores(), MAX_WORKERS)
    try:
        count = int(str(value))
    except ValueError:
        count = 0
    if not 1 <= count <= MAX_WORKERS:
        raise ConfigError(f"workers must be 'auto' or a number from 1 to {MAX_WORKERS}, got {value!r}")
    return count


def _environment(
    env: Mapping[str, str], doc: Document, env_file: str | None, env_vars: Sequence[str]
) -> dict[str, str]:
    values = dict(env)
    configured: Mapping[str, Any] = doc.get("environment_vars", {})
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
    try:
        return parse_bool(str(value))
    except ValueError:
        raise ConfigError(f"{key} must be true or false, got {value!r}") from None


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
