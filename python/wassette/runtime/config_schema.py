"""The schema of config.toml: every key, its type, and where it may also
come from (an environment variable). One table, checked when the file is
read: an unknown key or a value of the wrong type is an error that names
the file, the key and what was expected.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from wassette.runtime.errors import ConfigError

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


def parse_bool(text: str) -> bool:
    """The one reading of a boolean written as text (flags, environment)."""
    value = text.strip().lower()
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS:
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def split_host(value: str) -> tuple[str, int | None]:
    """The one reading of `host[:port]` (IPv6 in brackets): (lower-case
    host without brackets, port or None)."""
    value = value.strip().lower()
    if value.startswith("["):
        host, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"bad IPv6 address in {value!r}")
        port = rest[1:]
    elif value.count(":") == 1:
        host, _, port = value.partition(":")
    else:
        host, port = value, ""
    if port and not port.isdigit():
        raise ValueError(f"bad port in {value!r}")
    if port and not 0 <= int(port) <= 65535:
        raise ValueError(f"port out of range in {value!r}")
    return host, int(port) if port else None


def _kind(value: object) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array"}
    if isinstance(value, dict):
        return "a table"
    return names.get(type(value), type(value).__name__)


class Type:
    """A value's expected type: what to say when it is wrong, and a check.
    (Plain classes: this module is imported by every command.)"""

    def __init__(self, expected: str, check: Callable[[Any], bool]) -> None:
        self.expected = expected
        self.check = check

    def validate(self, value: Any, where: str) -> Any:
        if not self.check(value):
            raise ConfigError(f"{where}: expected {self.expected}, got {_kind(value)} {value!r}")
        return value


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


STRING = Type("a string", lambda v: isinstance(v, str))
NONEMPTY = Type("a non-empty string", lambda v: isinstance(v, str) and bool(v.strip()))
PATH = Type("a path (a string)", lambda v: isinstance(v, str) and bool(v.strip()))
POSITIVE = Type("a positive integer", lambda v: _is_int(v) and v > 0)
BYTES = Type("a positive number of bytes", lambda v: _is_int(v) and v > 0)
MILLISECONDS = Type("a positive number of milliseconds", lambda v: _is_int(v) and v > 0)
BOOL = Type("true or false", lambda v: isinstance(v, bool))
STRINGS = Type("an array of strings", lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v))
STRING_OR_STRINGS = Type("a string or an array of strings", lambda v: isinstance(v, str) or STRINGS.check(v))
SCALARS = Type(
    'a table of KEY = "value"',
    lambda v: isinstance(v, dict) and all(isinstance(x, str | int | float | bool) for x in v.values()),
)


# When the server loads the drop directory (distribution/local_components.py).
LOCAL_COMPONENTS_MODES = ("off", "startup", "watch")


def choice(*options: str) -> Type:
    return Type("one of " + ", ".join(repr(o) for o in options), lambda v: v in options)


MAX_WORKERS = 64


def _workers(v: Any) -> bool:
    return v == "auto" or (_is_int(v) and 1 <= v <= MAX_WORKERS)


WORKERS = Type(f'"auto" or a number of processes from 1 to {MAX_WORKERS}', _workers)
URL = Type("an http(s):// URL", lambda v: isinstance(v, str) and v.startswith(("https://", "http://")))
COUNT = Type("a number from 0 up", lambda v: _is_int(v) and v >= 0)
REFRESH = Type("a number of seconds from 1 to 3600", lambda v: _is_int(v) and 1 <= v <= 3600)
SKEW = Type("a number of seconds from 0 to 300", lambda v: _is_int(v) and 0 <= v <= 300)
SCOPES = Type(
    'a table of right = "scope" (rights: tools, components, grants, audit)',
    lambda v: (
        isinstance(v, dict)
        and set(v) <= {"tools", "components", "grants", "audit"}
        and all(isinstance(x, str) and x.strip() and " " not in x for x in v.values())
    ),
)
STATE_SCHEMES = ("postgresql://", "postgres://")
STATE = Type(
    '"local" or a PostgreSQL URL (postgresql://...)',
    lambda v: isinstance(v, str) and (v == "local" or v.startswith(STATE_SCHEMES)),
)


def host_port() -> Type:
    def ok(v: Any) -> bool:
        if not isinstance(v, str):
            return False
        try:
            split_host(v[1:] if v.startswith(":") else v)
        except ValueError:
            return False
        return True

    return Type('HOST:PORT, e.g. "127.0.0.1:9001"', ok)


class Table:
    """A table with these keys (and no others)."""

    def __init__(
        self,
        fields: Mapping[str, Type | Table | Tables | Named],
        required: tuple[str, ...] = (),
        expected: str = "a table",
    ) -> None:
        self.fields = fields
        self.required = required
        self.expected = expected

    def validate(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected {self.expected}, got {_kind(value)}")
        out: dict[str, Any] = {}
        for key, item in value.items():
            spec = self.fields.get(key)
            at = f"{where}.{key}" if where and not where.endswith(":") else f"{where} {key}".strip()
            if spec is None:
                known = ", ".join(sorted(self.fields))
                raise ConfigError(f"{at}: unknown key (expected one of: {known})")
            out[key] = spec.validate(item, at)
        for key in self.required:
            if key not in out:
                raise ConfigError(f"{where}.{key}: is required")
        return out


class Tables:
    """An array of tables (`[[name]]`)."""

    def __init__(self, item: Table) -> None:
        self.item = item

    def validate(self, value: Any, where: str) -> list[dict[str, Any]]:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected an array of tables ([[...]]), got {_kind(value)}")
        return [self.item.validate(v, f"{where}[{i}]") for i, v in enumerate(value)]


class Named:
    """A table of tables by name (`[table.NAME]`)."""

    def __init__(self, item: Table) -> None:
        self.item = item

    def validate(self, value: Any, where: str) -> dict[str, dict[str, Any]]:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table of tables ([...NAME]), got {_kind(value)}")
        return {str(k): self.item.validate(v, f"{where}.{k}") for k, v in value.items()}


STRING_MAP = Type(
    'a table of NAME = "value"',
    lambda v: isinstance(v, dict) and all(isinstance(x, str) and x for x in v.values()),
)
QUOTA = {
    "components": COUNT,
    "concurrent_calls": COUNT,
    "calls_per_minute": COUNT,
    "compiled_cache_bytes": COUNT,
}
TENANTS = Table(
    {"claim": NONEMPTY, "map": STRING_MAP, "quota": Named(Table(QUOTA)), **QUOTA},
    expected='a table like { claim = "tenant", concurrent_calls = 8 }',
)

IDENTITY = Table(
    {"identity": NONEMPTY, "identity_regexp": NONEMPTY, "issuer": NONEMPTY},
    required=("issuer",),
    expected='a table like { identity = "...", issuer = "..." }',
)
TRUST_ENTRY = Table(
    {
        "pattern": NONEMPTY,
        "mode": choice("require", "warn", "off"),
        "identities": Tables(IDENTITY),
        "keys": Type(
            "an array of PEM public keys (paths or PEM text)",
            lambda v: isinstance(v, list) and all(isinstance(x, str) and x for x in v),
        ),
    },
    required=("pattern",),
)
SIGNATURES = Table(
    {"mode": choice("require", "warn", "off"), "trusted_root": PATH, "trust": Tables(TRUST_ENTRY)}
)


class Key:
    """A top-level key of config.toml; `env`: variables that set it too
    (they win over the file)."""

    def __init__(self, type: Type | Table, env: tuple[str, ...] = (), doc: str = "") -> None:
        self.type = type
        self.env = env
        self.doc = doc


SCHEMA: dict[str, Key] = {
    "component_dir": Key(PATH, ("WASSETTE_COMPONENT_DIR", "WASSETTE_PLUGIN_DIR"), "component directory"),
    "plugin_dir": Key(PATH, (), "the older name of component_dir"),
    "local_components_dir": Key(
        PATH, ("WASSETTE_LOCAL_COMPONENTS_DIR",), "drop directory of components to load (NAME.wasm)"
    ),
    "local_components": Key(
        choice(*LOCAL_COMPONENTS_MODES),
        ("WASSETTE_LOCAL_COMPONENTS",),
        "when the server loads the drop directory (default: run watch, serve off)",
    ),
    "cache_dir": Key(PATH, ("WASSETTE_CACHE_DIR",), "compiled-artifact cache"),
    "secrets_dir": Key(PATH, ("WASSETTE_SECRETS_DIR",), "per-component secrets"),
    "secrets_store_key_file": Key(
        PATH, ("WASSETTE_SECRETS_STORE_KEY_FILE",), "key encrypting the secrets directory at rest"
    ),
    "storage_base": Key(PATH, ("WASSETTE_STORAGE_BASE",), "base of relative fs:// paths"),
    "environment_vars": Key(SCALARS, (), "values of granted environment variables"),
    "memory_limit_bytes": Key(BYTES, (), "default memory limit per call"),
    "timeout_ms": Key(MILLISECONDS, (), "default time limit per call"),
    "max_component_bytes": Key(BYTES, (), "largest component accepted"),
    "allocator": Key(choice("auto", "pooling", "on-demand"), ("WASSETTE_ALLOCATOR",), "instance allocator"),
    "max_live_instances": Key(
        COUNT,
        ("WASSETTE_MAX_LIVE_INSTANCES",),
        "instances kept across calls (policy instance: per-session) alive at once, per tenant (default 64)",
    ),
    "ca_bundle": Key(PATH, ("WASSETTE_CA_BUNDLE",), "extra CA for https:// sources and registries"),
    "allow_insecure_loopback": Key(BOOL, ("WASSETTE_ALLOW_INSECURE_LOOPBACK",), "plain http:// to loopback"),
    "catalogs": Key(STRING_OR_STRINGS, (), "extra catalogs for registry search"),
    "signatures": Key(SIGNATURES, (), "signature checks for OCI components"),
    "bind_address": Key(host_port(), ("WASSETTE_BIND_ADDRESS",), "where `serve` listens"),
    "allowed_hosts": Key(STRINGS, ("WASSETTE_ALLOWED_HOSTS",), "Host headers `serve` accepts"),
    "max_request_bytes": Key(BYTES, (), "largest request accepted"),
    "workers": Key(WORKERS, ("WASSETTE_WORKERS",), "processes `serve` runs (auto: one per usable core)"),
    "rate_limit_per_minute": Key(
        COUNT, ("WASSETTE_RATE_LIMIT_PER_MINUTE",), "tool calls a minute per caller (0: no limit)"
    ),
    "metrics_public": Key(BOOL, ("WASSETTE_METRICS_PUBLIC",), "serve /metrics without a token"),
    "sse_poll_after_ms": Key(
        COUNT,
        ("WASSETTE_SSE_POLL_AFTER_MS",),
        "end a call's event stream after this long; the client resumes it with Last-Event-ID (0: never)",
    ),
    "oauth_issuer": Key(
        URL, ("WASSETTE_OAUTH_ISSUER",), "the authorization server whose tokens `serve` accepts"
    ),
    "oauth_resource": Key(URL, ("WASSETTE_OAUTH_RESOURCE",), "this server's resource URI (tokens' audience)"),
    "oauth_jwks_uri": Key(
        URL, ("WASSETTE_OAUTH_JWKS_URI",), "the issuer's keys (default: from its metadata)"
    ),
    "oauth_algorithms": Key(STRINGS, (), "signature algorithms accepted (default RS256, ES256, EdDSA)"),
    "oauth_clock_skew_s": Key(SKEW, (), "leeway for exp/nbf/iat, seconds (default 60, at most 300)"),
    "oauth_jwks_min_refresh_s": Key(
        REFRESH, (), "a token naming an unknown key refetches the JWKS at most this often (default 10)"
    ),
    "oauth_scopes": Key(SCOPES, (), "the scope of each right: tools, components, grants, audit"),
    "state": Key(
        STATE, ("WASSETTE_STATE",), "where components, policies and secrets live (local, postgresql://)"
    ),
    "state_max_staleness_ms": Key(
        MILLISECONDS, ("WASSETTE_STATE_MAX_STALENESS_MS",), "calls are refused once the shared state is older"
    ),
    "secrets_key_file": Key(PATH, ("WASSETTE_SECRETS_KEY_FILE",), "key sealing secrets in the shared state"),
    "audit_key_file": Key(PATH, ("WASSETTE_AUDIT_KEY_FILE",), "key signing the audit log's checkpoints"),
    "tenants": Key(TENANTS, (), "tenants of a shared server: the token claim naming them, their quotas"),
}


class Document:
    """A validated config.toml, and where it came from."""

    def __init__(self, values: dict[str, Any] | None = None, source: str = "config.toml") -> None:
        self.values = values or {}
        self.source = source

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)


def validate(raw: Mapping[str, Any], source: str) -> Document:
    return Document(Table({k: v.type for k, v in SCHEMA.items()}).validate(dict(raw), f"{source}:"), source)
