"""Component policies: Wassette's `policy.yaml` format, read strictly.

A policy is a plain document (what the user wrote, kept as written so it can
be shown and saved back) plus a validated view of it. Validation rejects
anything we could not enforce, with the file, the field path and the problem:
``policy.yaml: permissions.network.allow[2].cidr: '10.0.0.0/33' is not a valid CIDR``.

Format (version "1.x")::

    version: "1.0"
    description: "..."
    permissions:
      storage:
        allow: [{uri: "fs:///abs/dir", access: [read, write]}, {uri: "fs://data/**/*.csv", access: [read]}]
        deny:  [{uri: "fs:///abs/dir/secrets/**"}]
      network:
        allow: [{host: "api.example.com"}, {host: "*.github.com"}, {host: "https://api.x.com:8443"},
                {host: "db.internal", protocols: [tcp], ports: [5432]}, {cidr: "10.0.0.0/8"}]
        deny:  [{host: "169.254.169.254"}]
      environment:
        allow: [{key: "API_KEY"}, {key: "USER_CONFIG_*"}]
        deny:  [{key: "SYSTEM_*"}]
      resources:
        limits: {memory: "512Mi", cpu: "500m", timeout: "30s"}
"""

from __future__ import annotations

import copy
import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple, NoReturn, TypeVar

from wassette.runtime import egress
from wassette.runtime.errors import PolicyError
from wassette.runtime.quantities import parse_cpu, parse_duration_ms, parse_quantity

__all__ = ["Policy", "PolicyError", "parse", "parse_cpu", "parse_duration_ms", "parse_quantity", "validate"]


R = TypeVar("R")


def schema_text() -> str:
    """The JSON Schema of the format, shipped with the package (read as a
    plain file: importlib.resources cost 8 ms of every server's start)."""
    return Path(__file__).with_name("policy.schema.json").read_text(encoding="utf-8")


def schema() -> dict[str, Any]:
    """The JSON Schema of the format (shipped with the package): the one
    definition of its structure. The validator below takes every field name,
    enumeration and pattern from it, and adds what a schema cannot say (host
    and CIDR syntax, glob rules, quantities' ranges)."""
    value: dict[str, Any] = json.loads(schema_text())
    return value


_SCHEMA = schema()
_DEFS: dict[str, Any] = _SCHEMA["$defs"]
_PERMISSIONS: dict[str, Any] = _SCHEMA["properties"]["permissions"]["properties"]
_RESOURCES: dict[str, Any] = _PERMISSIONS["resources"]["properties"]


def _fields(node: dict[str, Any]) -> set[str]:
    return set(node["properties"])


egress.check_schema_fields(_fields(_DEFS["egressLimits"]))


ACCESS = tuple(_DEFS["storageAllow"]["properties"]["access"]["anyOf"][1]["enum"])
PROTOCOLS = tuple(_DEFS["network"]["properties"]["protocols"]["items"]["enum"])
_KEY_RE = re.compile(_DEFS["key"]["properties"]["key"]["pattern"])
_HOST_RE = re.compile(r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


# -- the validated view ----------------------------------------------------
# Records are NamedTuples, not dataclasses: on Python 3.11 making a dataclass
# costs ~0.6 ms at import, and every server start imports this module.


class StorageRule(NamedTuple):
    uri: str  # as written
    path: str  # as written after `fs://`: absolute, relative, or `~/...`, maybe with globs
    access: tuple[str, ...]  # empty for deny rules
    origin: str


class NetworkRule(NamedTuple):
    text: str  # the `host` or `cidr` as written
    host: str | None  # lower-case name, wildcard or IP literal; no scheme/port
    cidr: str | None
    ports: tuple[int, ...]
    schemes: tuple[str, ...]
    transports: tuple[str, ...]
    origin: str


class KeyRule(NamedTuple):
    key: str  # exact, or a glob with a trailing `*`
    origin: str

    def matches(self, name: str) -> bool:
        if self.key.endswith("*"):
            return name.startswith(self.key[:-1])
        return name == self.key


# How long a kept instance lives without a call, unless its policy says.
DEFAULT_IDLE_TIMEOUT_MS = 600_000


class Limits(NamedTuple):
    memory_bytes: int | None = None
    cpu_cores: float | None = None  # `cpu`, Kubernetes-style
    cpu_time_ms: int | None = None
    timeout_ms: int | None = None
    # `instance: per-session`: an instance kept across calls (runtime/instances.py)
    per_session: bool = False
    idle_timeout_ms: int = DEFAULT_IDLE_TIMEOUT_MS


class Policy(NamedTuple):
    """A validated policy document."""

    document: dict[str, Any]
    storage_allow: tuple[StorageRule, ...] = ()
    storage_deny: tuple[StorageRule, ...] = ()
    network_allow: tuple[NetworkRule, ...] = ()
    network_deny: tuple[NetworkRule, ...] = ()
    env_allow: tuple[KeyRule, ...] = ()
    env_deny: tuple[KeyRule, ...] = ()
    limits: Limits = Limits()
    # network.limits and network.tools (runtime/egress.py)
    egress: egress.EgressPolicy = egress.EgressPolicy()

    @property
    def description(self) -> str | None:
        d = self.document.get("description")
        return str(d) if d is not None else None


EMPTY_DOCUMENT: dict[str, Any] = {"version": "1.0", "permissions": {}}


def empty() -> Policy:
    return Policy(document=copy.deepcopy(EMPTY_DOCUMENT))


# -- parsing ---------------------------------------------------------------


def load_file(path: Path) -> Policy:
    """Reads and validates a policy file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(f"{path}: no such policy file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise PolicyError(f"{path}: cannot read: {e}") from None
    return parse(text, source=str(path))


def parse(text: str, *, source: str = "policy") -> Policy:
    import yaml  # deferred: only needed when a policy exists

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" (line {where.line + 1}, column {where.column + 1})" if where is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise PolicyError(f"{source}: invalid YAML{at}: {problem}") from None
    if doc is None:
        doc = {}
    return validate(doc, source=source)


def validate(doc: Any, *, source: str = "policy") -> Policy:
    """Checks a policy document; raises PolicyError naming the first problem."""
    v = _Validator(source)
    top = v.mapping(doc, "", _fields(_SCHEMA))
    if "version" not in top:
        v.fail("version", 'is required (use "1.0")')
    version = top["version"]
    if isinstance(version, bool) or not isinstance(version, (str, int, float)):
        v.fail("version", f'must be a string like "1.0", got {version!r}')
    if str(version) != "1" and not str(version).startswith("1."):
        v.fail("version", f"{version!r} is not supported (this server reads version 1.x)")
    if "description" in top and not isinstance(top["description"], str):
        v.fail("description", "must be a string")
    perms = v.mapping(top.get("permissions") or {}, "permissions", set(_PERMISSIONS))

    storage = v.mapping(perms.get("storage") or {}, "permissions.storage", _fields(_PERMISSIONS["storage"]))
    network = v.mapping(perms.get("network") or {}, "permissions.network", _fields(_PERMISSIONS["network"]))
    env = v.mapping(
        perms.get("environment") or {}, "permissions.environment", _fields(_PERMISSIONS["environment"])
    )
    return Policy(
        document=copy.deepcopy(top),
        storage_allow=v.rules(
            storage, "permissions.storage", "allow", lambda e, at: v.storage(e, at, deny=False)
        ),
        storage_deny=v.rules(
            storage, "permissions.storage", "deny", lambda e, at: v.storage(e, at, deny=True)
        ),
        network_allow=v.rules(network, "permissions.network", "allow", v.network),
        network_deny=v.rules(network, "permissions.network", "deny", v.network),
        env_allow=v.rules(env, "permissions.environment", "allow", v.key),
        env_deny=v.rules(env, "permissions.environment", "deny", v.key),
        limits=v.resources(perms.get("resources") or {}, "permissions.resources"),
        egress=egress.read(network, "permissions.network", v.fail),
    )


class _Validator:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, problem: str) -> NoReturn:
        where = f"{self.source}: {path}: " if path else f"{self.source}: "
        raise PolicyError(where + problem)

    def mapping(self, value: Any, path: str, allowed: set[str]) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            self.fail(path, f"must be a mapping, got {_kind(value)}")
        for key in value:
            if key not in allowed:
                self.fail(
                    f"{path}.{key}" if path else str(key),
                    f"unknown field (expected one of: {', '.join(sorted(allowed))})",
                )
        return dict(value)

    def sequence(self, value: Any, path: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(path, f"must be a list, got {_kind(value)}")
        return value

    def rules(
        self, section: dict[str, Any], path: str, kind: str, read: Callable[[Any, str], R]
    ) -> tuple[R, ...]:
        """The rules of a section's `allow` or `deny` list, each read by `read`."""
        where = f"{path}.{kind}"
        return tuple(read(e, f"{where}[{i}]") for i, e in enumerate(self.sequence(section.get(kind), where)))

    def string(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(path, f"must be a non-empty string, got {value!r}")
        return str(value).strip()

    def storage(self, entry: Any, path: str, *, deny: bool) -> StorageRule:
        allowed = _fields(_DEFS["storageDeny" if deny else "storageAllow"])
        # `access` on a deny rule gets its own message, below.
        e = self.mapping(entry, path, allowed | ({"access"} if deny else set()))
        if "uri" not in e:
            self.fail(f"{path}.uri", "is required")
        uri = self.string(e["uri"], f"{path}.uri")
        if not uri.startswith("fs://"):
            self.fail(f"{path}.uri", f"{uri!r} must start with fs:// (e.g. fs:///home/me/data)")
        rest = uri[len("fs://") :]
        if not rest:
            self.fail(f"{path}.uri", "names no path")
        self.glob(rest, f"{path}.uri")
        access: tuple[str, ...] = ()
        if not deny:
            raw = e.get("access", ["read"])
            items = raw if isinstance(raw, list) else [raw]
            for item in items:
                if item not in ACCESS:
                    self.fail(f"{path}.access", f"{item!r} is not one of: read, write")
            if not items:
                self.fail(f"{path}.access", "must list read and/or write")
            access = tuple(a for a in ACCESS if a in items)
        elif "access" in e:
            # A deny rule always denies everything; a partial deny would read
            # as a promise we do not make.
            self.fail(f"{path}.access", "deny rules deny all access; remove `access`")
        return StorageRule(uri=uri, path=rest, access=access, origin=path)

    def glob(self, path: str, where: str) -> None:
        for ch in "[]{}?":
            if ch in path:
                self.fail(where, f"unsupported glob character {ch!r} in {path!r} (use * and **)")
        for segment in path.split("/"):
            if "**" in segment and segment != "**":
                self.fail(where, f"bad glob {path!r}: ** must be a whole path segment")
            if segment == "..":
                self.fail(where, f"{path!r} must not contain '..'")

    def network(self, entry: Any, path: str) -> NetworkRule:
        e = self.mapping(entry, path, _fields(_DEFS["network"]))
        if ("host" in e) == ("cidr" in e):
            self.fail(path, "needs exactly one of `host` or `cidr`")
        protocols = tuple(self.sequence(e.get("protocols"), f"{path}.protocols"))
        for p in protocols:
            if p not in PROTOCOLS:
                self.fail(f"{path}.protocols", f"{p!r} is not one of: {', '.join(PROTOCOLS)}")
        ports: list[int] = []
        for p in self.sequence(e.get("ports"), f"{path}.ports"):
            if isinstance(p, bool) or not isinstance(p, int) or not 0 < p < 65536:
                self.fail(f"{path}.ports", f"{p!r} is not a port number (1-65535)")
            ports.append(p)
        schemes = [p for p in protocols if p in ("http", "https")]
        transports = [p for p in protocols if p in ("tcp", "udp")]
        if "cidr" in e:
            text = self.string(e["cidr"], f"{path}.cidr")
            try:
                net = ipaddress.ip_network(text, strict=False)
            except ValueError:
                self.fail(f"{path}.cidr", f"{text!r} is not a valid CIDR (e.g. 10.0.0.0/8)")
            return NetworkRule(text, None, str(net), tuple(ports), tuple(schemes), tuple(transports), path)
        text = self.string(e["host"], f"{path}.host")
        host, port, scheme = self.split_host(text, f"{path}.host")
        if scheme:
            if schemes and scheme not in schemes:
                self.fail(path, f"scheme {scheme}:// contradicts protocols {list(protocols)}")
            schemes = [scheme]
        if port is not None:
            if ports and port not in ports:
                self.fail(path, f"port {port} contradicts ports {ports}")
            ports = [port]
        return NetworkRule(text, host, None, tuple(ports), tuple(schemes), tuple(transports), path)

    def split_host(self, text: str, where: str) -> tuple[str, int | None, str | None]:
        scheme = None
        rest = text
        if "://" in rest:
            scheme, rest = rest.split("://", 1)
            scheme = scheme.lower()
            if scheme not in ("http", "https"):
                self.fail(where, f"scheme {scheme!r} is not supported (use http or https)")
        rest = rest.rstrip("/")
        if "/" in rest:
            self.fail(where, f"{text!r}: a host rule cannot contain a path")
        port: int | None = None
        if rest.startswith("["):  # [v6]:port
            end = rest.find("]")
            if end < 0:
                self.fail(where, f"{text!r}: unclosed [")
            host, tail = rest[1:end], rest[end + 1 :]
            if tail:
                if not tail.startswith(":"):
                    self.fail(where, f"{text!r}: expected :port after ]")
                port = self.port(tail[1:], text, where)
        elif rest.count(":") == 1:
            host, p = rest.split(":")
            port = self.port(p, text, where)
        else:
            host = rest
        host = host.lower()
        try:
            ipaddress.ip_address(host)
            return host, port, scheme
        except ValueError:
            pass
        if not _HOST_RE.match(host):
            self.fail(where, f"{text!r} is not a valid host name, *.wildcard or IP address")
        return host, port, scheme

    def port(self, text: str, whole: str, where: str) -> int:
        if not text.isdigit() or not 0 < int(text) < 65536:
            self.fail(where, f"{whole!r}: bad port {text!r}")
        return int(text)

    def key(self, entry: Any, path: str) -> KeyRule:
        e = self.mapping(entry, path, _fields(_DEFS["key"]))
        if "key" not in e:
            self.fail(f"{path}.key", "is required")
        key = self.string(e["key"], f"{path}.key")
        if not _KEY_RE.match(key):
            self.fail(f"{path}.key", f"{key!r} is not a variable name or NAME_* prefix glob")
        return KeyRule(key, path)

    def resources(self, value: Any, path: str) -> Limits:
        r = self.mapping(value, path, set(_RESOURCES))
        limits = self.mapping(r.get("limits") or {}, f"{path}.limits", _fields(_RESOURCES["limits"]))
        memory = None
        if "memory" in limits:
            memory = parse_quantity(limits["memory"], f"{self.source}: {path}.limits.memory")
        if "memory_bytes" in r:
            memory = self.positive(r["memory_bytes"], f"{path}.memory_bytes")
        cpu = None
        if "cpu" in limits:
            cpu = parse_cpu(limits["cpu"], f"{self.source}: {path}.limits.cpu")
        timeout = None
        if "timeout" in limits:
            timeout = parse_duration_ms(limits["timeout"], f"{self.source}: {path}.limits.timeout")
        if "timeout_ms" in r:
            timeout = self.positive(r["timeout_ms"], f"{path}.timeout_ms")
        cpu_time = self.positive(r["cpu_time_ms"], f"{path}.cpu_time_ms") if "cpu_time_ms" in r else None
        instance = r.get("instance", "per-call")
        if instance not in ("per-call", "per-session"):
            self.fail(f"{path}.instance", f"must be per-call or per-session, got {instance!r}")
        idle = DEFAULT_IDLE_TIMEOUT_MS
        if "idle_timeout" in r:
            idle = parse_duration_ms(r["idle_timeout"], f"{self.source}: {path}.idle_timeout")
        return Limits(
            memory_bytes=memory,
            cpu_cores=cpu,
            cpu_time_ms=cpu_time,
            timeout_ms=timeout,
            per_session=instance == "per-session",
            idle_timeout_ms=idle,
        )

    def positive(self, value: Any, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            self.fail(path, f"must be a positive integer, got {value!r}")
        return int(value)


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", type(None): "nothing"}.get(
        type(value), type(value).__name__
    )


def dump(policy: Policy) -> str:
    import yaml

    return str(yaml.safe_dump(policy.document, sort_keys=False, allow_unicode=True))
