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
    LOCAL_COMPONENTS_MODES,
    SCHEMA,
    STATE,
    Document,
    parse_bool,
    split_host,
    validate,
)
from wassette.runtime.errors import ConfigError
from wassette.runtime.instances import DEFAULT_MAX_LIVE
from wassette.runtime.serve_config import ServeSettings, flag, serve_settings
from wassette.runtime.tenants import Quota, Tenancy, for_tenant

__all__ = ["ConfigError", "Settings", "StateSettings", "parse_bool", "split_host"]

DEFAULT_MEMORY_LIMIT = _engine.DEFAULT_MEMORY_LIMIT_BYTES
DEFAULT_TIMEOUT_MS = _engine.DEFAULT_TIMEOUT_MS
DEFAULT_MAX_COMPONENT_BYTES = 256 * 1024 * 1024
DEFAULT_STATE_MAX_STALENESS_MS = 30_000


def _xdg(env: Mapping[str, str], var: str, fallback: str) -> Path:
    value = env.get(var)
    if value and Path(value).is_absolute():
        return Path(value)
    return Path(env.get("HOME", str(Path.home()))) / fallback


class StateSettings(NamedTuple):
    """A shared state in PostgreSQL. The replica serves from a working copy
    (`working_dir`); `local_*` are the directories the local state would
    use (what `wassette state import/export` move)."""

    url: str
    working_dir: Path
    local_component_dir: Path
    local_secrets_dir: Path
    local_data_dir: Path
    # The key of local_secrets_dir (None: the keyring, else beside it).
    local_secrets_store_key_file: Path | None = None
    max_staleness_ms: int = DEFAULT_STATE_MAX_STALENESS_MS
    secrets_key: bytes | None = None
    secrets_key_source: str = "none"
    # A tenant's schema (tenants.py); None: the database's default (public).
    schema: str | None = None

    @property
    def channel(self) -> str:
        """The NOTIFY channel of this state's changes (one per schema)."""
        return "wassette_state" if self.schema is None else f"wassette_state_{self.schema}"

    @property
    def shown(self) -> str:
        """The URL without its password (for messages and logs)."""
        return redact_url(self.url)

    def __repr__(self) -> str:  # the password and the key stay out of logs and tracebacks
        return f"StateSettings(url={self.shown!r}, working_dir={self.working_dir!r})"


def redact_url(url: str) -> str:
    from urllib.parse import urlunsplit

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
    # The drop directory (distribution/local_components.py) and when the
    # server syncs it (None: the command's default).
    local_components_dir: Path = Path("local-components")
    local_components: str | None = None
    secrets_dir: Path = Path(".")
    # The key file encrypting secrets_dir (None: the OS keyring, else
    # `<secrets_dir>.key`; runtime/secrets_key.py).
    secrets_store_key_file: Path | None = None
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
    # Instances kept across calls (policy `resources.instance: per-session`)
    # alive at once, per tenant.
    max_live_instances: int = DEFAULT_MAX_LIVE
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
    # config [tenants] (None: no tenants); the tenant whose state this is
    # (None: the untenanted one) and its quota.
    tenancy: Tenancy | None = None
    tenant: str | None = None
    quota: Quota = Quota()
    # The Ed25519 key signing the audit log's checkpoints (made on first
    # use), kept apart from the log it vouches for.
    audit_key_file: Path | None = None

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
        tenant: str | None = None,
    ) -> Settings:
        """`env_vars` are `KEY=VALUE` strings (--env), `env_file` a dotenv
        file (--env-file); both feed granted environment variables. `serve`:
        the flags of `wassette serve` that were given (bind_address,
        allowed_hosts, auth_token, legacy_sessions, json_response,
        max_request_bytes). `tenant` (--tenant, WASSETTE_TENANT): that
        tenant's state instead of the untenanted one."""
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
        secrets_key_file = pick("secrets_store_key_file")
        drop = pick("local_components_dir")
        ca_bundle = pick("ca_bundle")
        audit_key = pick("audit_key_file")
        insecure = pick("allow_insecure_loopback", True if allow_insecure_loopback else None)
        allocator = str(pick("allocator") or "auto")
        if allocator not in ("auto", "pooling", "on-demand"):
            raise ConfigError(f"allocator {allocator!r} is not one of: auto, pooling, on-demand")
        catalogs = doc.get("catalogs", [])
        drop_mode = pick("local_components")
        if drop_mode is not None and drop_mode not in LOCAL_COMPONENTS_MODES:
            modes = ", ".join(LOCAL_COMPONENTS_MODES)
            raise ConfigError(
                f"local_components {drop_mode!r} (WASSETTE_LOCAL_COMPONENTS) is not one of: {modes}"
            )
        settings = cls(
            component_dir=Path(chosen).expanduser() if chosen else data_home / "components",
            cache_dir=Path(cache).expanduser()
            if cache
            else _xdg(env, "XDG_CACHE_HOME", ".cache") / "wassette" / "compiled",
            config_dir=config_dir,
            data_dir=data_home,
            local_components_dir=Path(str(drop)).expanduser() if drop else data_home / "local-components",
            local_components=drop_mode,
            secrets_dir=Path(secrets).expanduser() if secrets else config_dir / "secrets",
            secrets_store_key_file=Path(str(secrets_key_file)).expanduser() if secrets_key_file else None,
            storage_base=Path(base).expanduser().resolve() if base else Path.cwd(),
            environment=_environment(env, doc, env_file, env_vars),
            memory_limit_bytes=doc.get("memory_limit_bytes", DEFAULT_MEMORY_LIMIT),
            timeout_ms=doc.get("timeout_ms", DEFAULT_TIMEOUT_MS),
            max_component_bytes=doc.get("max_component_bytes", DEFAULT_MAX_COMPONENT_BYTES),
            allocator=allocator,
            max_live_instances=_max_live(pick("max_live_instances")),
            config_file=path,
            config=doc,
            ca_bundle=Path(str(ca_bundle)).expanduser() if ca_bundle else None,
            allow_insecure_loopback=flag(insecure, "WASSETTE_ALLOW_INSECURE_LOOPBACK"),
            signatures_override=env.get("WASSETTE_SIGNATURES") or None,
            catalogs=(catalogs,) if isinstance(catalogs, str) else tuple(catalogs),
            serve=serve_settings(env, doc, serve or {}),
            tenancy=Tenancy.from_config(doc.get("tenants")) if doc.get("tenants") is not None else None,
            audit_key_file=Path(str(audit_key)).expanduser() if audit_key else config_dir / "audit-key",
        )
        url = str(pick("state", state) or "local")
        if url != "local":
            STATE.validate(url, "state (--state, WASSETTE_STATE or config state)")
            settings = shared_state(settings, url, env, doc)
        tenant = tenant or env.get("WASSETTE_TENANT") or None
        return for_tenant(settings, tenant) if tenant is not None else settings


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
        local_secrets_store_key_file=settings.secrets_store_key_file,
        max_staleness_ms=staleness_ms,
        secrets_key=key,
        secrets_key_source=source,
    )
    return settings._replace(
        component_dir=working / "components",
        secrets_dir=working / "secrets",
        secrets_store_key_file=None,  # the working copy's own key, beside it
        data_dir=working / "data",
        state=state,
    )


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


def _max_live(value: Any) -> int:
    """max_live_instances (WASSETTE_MAX_LIVE_INSTANCES): a count from 1 up."""
    if value is None:
        return DEFAULT_MAX_LIVE
    try:
        count = int(value)
    except (TypeError, ValueError):
        count = 0
    if isinstance(value, bool) or count < 1:
        raise ConfigError(
            f"max_live_instances {value!r} (WASSETTE_MAX_LIVE_INSTANCES) must be a number from 1 up"
        )
    return count
