"""Headless provisioning: install the components a manifest lists at start-up.

The manifest format is Wassette's (`wassette serve --manifest FILE`)::

    version: 1
    components:
      - uri: oci://ghcr.io/microsoft/get-weather-js:1.2.3
        name: weather-service                 # optional: the component id
        digest: sha256:<64 hex>               # optional pin (manifest or wasm digest)
        permissions:                          # required ({} for none): policy.yaml's shape
          network:     { allow: [ { host: api.openweathermap.org } ] }
          environment: { allow: [ { key: API_KEY, value_from: OPENWEATHER_API_KEY } ] }
          resources:   { memory_bytes: 268435456, cpu_time_ms: 5000 }
        retry_policy: { attempts: 3, backoff: { type: exponential, base_ms: 500 } }

Every component is attempted; the permissions are the operator's word and
replace any policy the component ships. Signature checks apply as for any load.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wassette.distribution.loading import load_component
from wassette.distribution.reference import DIGEST_RE
from wassette.distribution.signatures import SignatureError
from wassette.distribution.sources import FetchOptions
from wassette.runtime import policy as policy_mod
from wassette.runtime.errors import ConfigError, SourceError, WassetteError
from wassette.runtime.install import InstallOptions
from wassette.runtime.policy import Policy, PolicyError
from wassette.runtime.runtime import Runtime

log = logging.getLogger("wassette.provision")

MAX_DELAY_MS = 30_000


@dataclass(frozen=True)
class Backoff:
    kind: str = "exponential"  # exponential | linear
    base_ms: int = 500  # exponential: base_ms * 2^(n-1); linear: increment_ms * n

    def delay_ms(self, attempt: int) -> int:
        ms = self.base_ms * (2 ** (attempt - 1)) if self.kind == "exponential" else self.base_ms * attempt
        return min(ms, MAX_DELAY_MS)


@dataclass(frozen=True)
class Entry:
    uri: str
    name: str | None
    digest: str | None
    policy: Policy
    value_from: Mapping[str, str]  # granted variable -> server variable it is read from
    attempts: int = 1
    backoff: Backoff = field(default_factory=Backoff)


@dataclass
class Report:
    loaded: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (uri, why)

    def summary(self) -> str:
        total = len(self.loaded) + len(self.failed)
        lines = [f"provisioned {len(self.loaded)} of {total} components"]
        lines += [f"  failed: {uri}: {why}" for uri, why in self.failed]
        return "\n".join(lines)


def _fail(path: Path, where: str, problem: str) -> ConfigError:
    return ConfigError(f"{path}: {where}: {problem}" if where else f"{path}: {problem}")


def parse(path: Path) -> list[Entry]:
    import yaml

    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"manifest {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(f"{path}: invalid YAML{at}: {getattr(e, 'problem', None) or e}") from None
    if not isinstance(doc, dict):
        raise _fail(path, "", "a manifest is a mapping with `version: 1` and `components`")
    extra = set(doc) - {"version", "components"}
    if extra:
        raise _fail(path, sorted(extra)[0], "unknown field (expected version, components)")
    if doc.get("version") != 1 or isinstance(doc.get("version"), bool):
        raise _fail(path, "version", f"must be the integer 1, got {doc.get('version')!r}")
    comps = doc.get("components")
    if not isinstance(comps, list) or not comps:
        raise _fail(path, "components", "must be a non-empty list")
    entries = [_entry(path, f"components[{i}]", c) for i, c in enumerate(comps)]
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        if entry.uri in seen:
            raise _fail(path, f"components[{i}].uri", f"{entry.uri} is listed twice")
        seen.add(entry.uri)
    return entries


def _entry(path: Path, where: str, c: Any) -> Entry:
    if not isinstance(c, dict):
        raise _fail(path, where, "must be a mapping with uri and permissions")
    allowed = {"uri", "name", "digest", "permissions", "retry_policy"}
    for key in c:
        if key not in allowed:
            raise _fail(
                path, f"{where}.{key}", f"unknown field (expected one of: {', '.join(sorted(allowed))})"
            )
    uri = c.get("uri")
    if not isinstance(uri, str) or not uri:
        raise _fail(path, f"{where}.uri", "is required")
    name = c.get("name")
    if name is not None and (not isinstance(name, str) or not name):
        raise _fail(path, f"{where}.name", "must be a non-empty string")
    digest = c.get("digest")
    if digest is not None and (not isinstance(digest, str) or not DIGEST_RE.match(digest)):
        raise _fail(path, f"{where}.digest", "must be sha256: followed by 64 lowercase hex digits")
    if "permissions" not in c:
        raise _fail(path, f"{where}.permissions", "is required (use {} for none)")
    perms = c["permissions"] or {}
    if not isinstance(perms, dict):
        raise _fail(path, f"{where}.permissions", "must be a mapping")
    perms, value_from = _split_value_from(path, where, perms)
    try:
        policy = policy_mod.validate({"version": "1.0", "permissions": perms}, source=f"{path}: {where}")
    except PolicyError as e:
        raise ConfigError(str(e)) from None
    attempts, backoff = _retry(path, f"{where}.retry_policy", c.get("retry_policy"))
    return Entry(uri, name, digest, policy, value_from, attempts, backoff)


def _split_value_from(path: Path, where: str, perms: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Takes `value_from` out of environment entries (our policy has no such
    field): the policy keeps the key, the mapping feeds the value."""
    env = perms.get("environment")
    if not isinstance(env, dict) or not isinstance(env.get("allow"), list):
        return perms, {}
    value_from: dict[str, str] = {}
    allow = []
    for i, item in enumerate(env["allow"]):
        if isinstance(item, dict) and "value_from" in item:
            source = item["value_from"]
            if not isinstance(source, str) or not source:
                raise _fail(
                    path, f"{where}.permissions.environment.allow[{i}].value_from", "must be a variable name"
                )
            if isinstance(item.get("key"), str):
                value_from[item["key"]] = source
            item = {k: v for k, v in item.items() if k != "value_from"}
        allow.append(item)
    return {**perms, "environment": {**env, "allow": allow}}, value_from


def _retry(path: Path, where: str, value: Any) -> tuple[int, Backoff]:
    if value is None:
        return 1, Backoff()
    if not isinstance(value, dict):
        raise _fail(path, where, "must be a mapping with attempts and backoff")
    extra = set(value) - {"attempts", "backoff"}
    if extra:
        raise _fail(path, f"{where}.{sorted(extra)[0]}", "unknown field (expected attempts, backoff)")
    attempts = value.get("attempts", 1)
    if not isinstance(attempts, int) or isinstance(attempts, bool) or not 1 <= attempts <= 100:
        raise _fail(path, f"{where}.attempts", "must be an integer from 1 to 100")
    b = value.get("backoff") or {}
    if not isinstance(b, dict):
        raise _fail(path, f"{where}.backoff", "must be a mapping")
    kind = b.get("type", "exponential")
    if kind not in ("exponential", "linear"):
        raise _fail(path, f"{where}.backoff.type", f"{kind!r} is not exponential or linear")
    key = "base_ms" if kind == "exponential" else "increment_ms"
    extra = set(b) - {"type", key}
    if extra:
        raise _fail(
            path, f"{where}.backoff.{sorted(extra)[0]}", f"unknown field for {kind} backoff (expected {key})"
        )
    ms = b.get(key, 500)
    if not isinstance(ms, int) or isinstance(ms, bool) or ms < 0:
        raise _fail(path, f"{where}.backoff.{key}", "must be a non-negative integer (milliseconds)")
    return attempts, Backoff(kind, ms)


def provision(
    runtime: Runtime,
    path: Path,
    *,
    continue_on_failure: bool = False,
    fetch: FetchOptions | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Report:
    """Installs and verifies every component of the manifest. Raises with a
    summary when one fails, unless `continue_on_failure`."""
    entries = parse(path)
    report = Report()
    for entry in entries:
        try:
            cid = _install(runtime, entry, fetch or FetchOptions(), sleep)
            report.loaded.append(cid)
            log.info("provisioned %s from %s", cid, entry.uri)
        except WassetteError as error:
            report.failed.append((entry.uri, str(error)))
            log.error("cannot provision %s: %s", entry.uri, error)
    if report.failed:
        if not continue_on_failure:
            raise WassetteError(
                f"provisioning from {path} failed (use --continue-on-provisioning-failure to serve "
                f"what loaded):\n{report.summary()}"
            )
        log.warning("%s", report.summary())
    return report


def _install(runtime: Runtime, entry: Entry, fetch: FetchOptions, sleep: Callable[[float], None]) -> str:
    values = {}
    for key, var in entry.value_from.items():
        if var not in runtime.settings.environment:
            raise WassetteError(f"environment variable {var} (value_from for {key}) is not set")
        values[key] = runtime.settings.environment[var]
    pinned = FetchOptions(
        credentials=fetch.credentials,
        allow_insecure_loopback=fetch.allow_insecure_loopback,
        digest=entry.digest,
    )
    options = InstallOptions(component_id=entry.name, policy=entry.policy)
    for attempt in range(1, entry.attempts + 1):
        try:
            report = load_component(runtime, entry.uri, fetch=pinned, install=options)
            break
        except SignatureError:
            raise  # a refusal does not change by asking again
        except SourceError as e:
            if attempt == entry.attempts:
                raise
            delay = entry.backoff.delay_ms(attempt)
            log.warning(
                "attempt %d of %d for %s failed (%s); retrying in %d ms",
                attempt,
                entry.attempts,
                entry.uri,
                e,
                delay,
            )
            sleep(delay / 1000)
    for w in report.warnings:
        log.warning("%s: %s", report.id, w)
    if values:
        runtime.set_environment(report.id, values)
    return report.id
