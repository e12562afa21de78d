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
from urllib.parse import urlsplit

from wassette import _engine
from wassette.runtime.config_schema import (
    MAX_WORKERS,
    SCHEMA,
    STATE,
    Document,
    parse_bool,
    split_host,
    validate,
)
from wassette.runtime.errors import ConfigError

__all__ = [
    "ConfigError",
    "OAuthSettings",
    "ServeSettings",
    "Settings",
    "StateSettings",
    "parse_bind_address",
    "parse_bool",
    "split_host",
]

DEFAULT_MEMORY_LIMIT = _engine.DEFAULT_MEMORY_LIMIT_BYTES
DEFAULT_TIMEOUT_MS = _engine.DEFAULT_TIMEOUT_MS
DEFAULT_MAX_COMPONENT_BYTES = 256 * 1024 * 1024
DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024
DEFAULT_BIND_ADDRESS = "127.0.0.1:9001"
DEFAULT_STATE_MAX_STALENESS_MS = 30_000


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


DEFAULT_OAUTH_ALGORITHMS = ("RS256", "ES256", "EdDSA")
DEFAULT_OAUTH_SCOPES = {
    "tools": "wassette:tools",
    "components": "wassette:components",
    "grants": "wassette:grants",
    "audit": "wassette:audit",
}


class OAuthSettings(NamedTuple):
    """`serve` as an OAuth 2.1 resource server: tokens from `issuer`, for
    `resource` (their audience), signed with a key of the issuer's JWKS."""

    issuer: str
    resource: str
    jwks_uri: str | None = None
    algorithms: tuple[str, ...] = DEFAULT_OAUTH_ALGORITHMS
    clock_skew_s: int = 60
    # A token naming a key not in the cached JWKS refetches it at most this often.
    jwks_min_refresh_s: int = 10
    # right -> scope
    scopes: Mapping[str, str] = MappingProxyType(DEFAULT_OAUTH_SCOPES)


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
    # OAuth 2.1 resource server (None: the static token, or no auth).
    oauth: OAuthSettings | None = None
    # /metrics without a token (else behind the same auth as everything).
    metrics_public: bool = False
    # Tool calls a minute per caller (0: no limit).
    rate_limit_per_minute: int = 0

    def __repr__(self) -> str:  # the token stays out of logs and tracebacks
        shown = self._replace(auth_token="***" if self.auth_token else None)
        return (
            "ServeSettings(" + ", ".join(f"{k}={v!r}" for k, v in zip(self._fields, shown, strict=True)) + ")"
        )


class StateSettings(NamedTuple):
    """A shared state in PostgreSQL. The replica serves from a working copy
    (`working_dir`); `local_*` are the directories the local state would
    use (what `wassette state import/export` move)."""

    url: str
    working_dir: Path
    local_component_dir: Path
    local_secrets_dir: Path
    local_data_dir: Path
    max_staleness_ms: int = DEFAULT_STATE_MAX_STALENESS_MS
    secrets_key: bytes | None = None
    secrets_key_source: str = "none"

    @property
    def shown(self) -> str:
        """The URL without its password (for messages and logs)."""
        return redact_url(self.url)

    def __repr__(self) -> str:  # the password and the key stay out of logs and tracebacks
        return f"StateSettings(url={self.shown!r}, working_dir={self.working_dir!r})"


def redact_url(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        return "postgresql://(unparsable URL)"


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
    # A shared state (None: the local directories above are the state).
    state: StateSettings | None = None

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
        state: str | None = None,
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
        settings = cls(
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
        url = str(pick("state", state) or "local")
        if url == "local":
            return settings
        STATE.validate(url, "state (--state, WASSETTE_STATE or config state)")
        return shared_state(settings, url, env, doc)


def shared_state(settings: Settings, url: str, env: Mapping[str, str], doc: Document) -> Settings:
    """Settings that serve from a working copy of the shared state at `url`:
    the component, secrets and data directories move under the cache, one
    working copy per database (the URL without its password names it)."""
    import hashlib

    from wassette.runtime.state.sealed import parse_key

    key: bytes | None = None
    source = "none"
    if env.get("WASSETTE_SECRETS_KEY"):
        key, source = parse_key(env["WASSETTE_SECRETS_KEY"], "WASSETTE_SECRETS_KEY"), "WASSETTE_SECRETS_KEY"
    else:
        key_file = env.get("WASSETTE_SECRETS_KEY_FILE") or doc.get("secrets_key_file")
        if key_file:
            path = Path(str(key_file)).expanduser()
            try:
                key = parse_key(path.read_text(encoding="utf-8"), str(path))
            except OSError as e:
                raise ConfigError(f"secrets key file {path}: {e.strerror}") from None
            source = str(path)
    staleness = env.get("WASSETTE_STATE_MAX_STALENESS_MS") or doc.get(
        "state_max_staleness_ms", DEFAULT_STATE_MAX_STALENESS_MS
    )
    try:
        staleness_ms = int(staleness)
    except ValueError:
        staleness_ms = 0
    if staleness_ms <= 0:
        raise ConfigError(
            f"state_max_staleness_ms must be a positive number of milliseconds, got {staleness!r}"
        )
    name = hashlib.sha256(redact_url(url).encode()).hexdigest()[:16]
    working = _xdg(env, "XDG_CACHE_HOME", ".cache") / "wassette" / "state" / name
    state = StateSettings(
        url=url,
        working_dir=working,
        local_component_dir=settings.component_dir,
        local_secrets_dir=settings.secrets_dir,
        local_data_dir=settings.data_dir,
        max_staleness_ms=staleness_ms,
        secrets_key=key,
        secrets_key_source=source,
    )
    return settings._replace(
        component_dir=working / "components",
        secrets_dir=working / "secrets",
        data_dir=working / "data",
        state=state,
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
        oauth=_oauth(env, doc, flags, host, port),
        metrics_public=_flag(
            env.get("WASSETTE_METRICS_PUBLIC") or doc.get("metrics_public"), "metrics_public"
        ),
        rate_limit_per_minute=_rate_limit(
            env.get("WASSETTE_RATE_LIMIT_PER_MINUTE") or doc.get("rate_limit_per_minute")
        ),
    )


def _rate_limit(value: object) -> int:
    if value is None or value == "":
        return 0
    try:
        limit = int(str(value))
    except ValueError:
        limit = -1
    if limit < 0:
        raise ConfigError(f"rate_limit_per_minute must be a number of calls (0: no limit), got {value!r}")
    return limit


def _oauth(
    env: Mapping[str, str], doc: Document, flags: Mapping[str, Any], host: str, port: int
) -> OAuthSettings | None:
    def pick(key: str, flag: str | None = None, var: str | None = None) -> Any:
        return (flags.get(flag) if flag else None) or (env.get(var) if var else None) or doc.get(key)

    issuer = pick("oauth_issuer", "oauth_issuer", "WASSETTE_OAUTH_ISSUER")
    if not issuer:
        return None
    for name, value in (("issuer", issuer),):
        parts = urlsplit(str(value))
        loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
        if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
            raise ConfigError(f"oauth {name} {value!r}: expected an https:// URL (http:// only on loopback)")
    if flags.get("auth_token") or env.get("WASSETTE_AUTH_TOKEN"):
        raise ConfigError("choose one: an OAuth issuer or a static bearer token (--auth-token)")
    resource = pick("oauth_resource", "oauth_resource", "WASSETTE_OAUTH_RESOURCE") or (
        f"http://{host}:{port}/mcp"
    )
    algorithms = tuple(doc.get("oauth_algorithms") or DEFAULT_OAUTH_ALGORITHMS)
    if not algorithms or any(a.lower() == "none" or a.startswith("HS") for a in algorithms):
        raise ConfigError(
            "oauth_algorithms: only asymmetric signatures (RS*, PS*, ES*, EdDSA) are accepted, never none or HS*"
        )
    return OAuthSettings(
        issuer=str(issuer),
        resource=str(resource),
        jwks_uri=pick("oauth_jwks_uri", None, "WASSETTE_OAUTH_JWKS_URI"),
        algorithms=algorithms,
        clock_skew_s=int(doc.get("oauth_clock_skew_s", 60)),
        jwks_min_refresh_s=int(doc.get("oauth_jwks_min_refresh_s", 10)),
        scopes=MappingProxyType({**DEFAULT_OAUTH_SCOPES, **doc.get("oauth_scopes", {})}),
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
