"""The signature trust policy: who may sign what, and how strict to be.

In config.toml::

    [signatures]
    mode = "require"                  # require (default) | warn | off, for OCI sources
    trusted_root = "trusted_root.json"  # optional; default: Sigstore's public root, offline

    [[signatures.trust]]              # first matching entry wins
    pattern = "ghcr.io/acme/*"        # registry/repository, shell-style wildcards
    mode = "require"                  # optional; default: [signatures] mode
    identities = [{ identity = "https://github.com/acme/tools/.github/workflows/release.yml@refs/heads/main",
                    issuer = "https://token.actions.githubusercontent.com" }]
    keys = ["cosign.pub"]             # cosign public keys (PEM files; relative to the config dir)

`WASSETTE_SIGNATURES=require|warn|off` overrides every mode for one run.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wassette.runtime.errors import ConfigError

MODES = ("require", "warn", "off")
DEFAULT_MODE = "require"


@dataclass(frozen=True)
class Identity:
    """A keyless signer: a certificate identity (exact or regular expression)
    issued through an OIDC issuer."""

    identity: str | None
    identity_regexp: str | None
    issuer: str | None

    def matches(self, sans: set[str], issuer: str | None) -> bool:
        if self.issuer is not None and issuer != self.issuer:
            return False
        if self.identity is not None:
            return self.identity in sans
        assert self.identity_regexp is not None
        pattern = re.compile(self.identity_regexp)
        return any(pattern.fullmatch(s) for s in sans)

    def describe(self) -> str:
        who = self.identity or f"identity matching /{self.identity_regexp}/"
        return f"{who} (issuer {self.issuer})" if self.issuer else who


@dataclass(frozen=True)
class Key:
    label: str  # the path, or "inline key N"
    pem: bytes

    def describe(self) -> str:
        return f"key {self.label}"


@dataclass(frozen=True)
class TrustRule:
    pattern: str
    mode: str
    identities: tuple[Identity, ...] = ()
    keys: tuple[Key, ...] = ()

    @property
    def expected(self) -> str:
        """Who the rule trusts, for messages."""
        names = [i.describe() for i in self.identities] + [k.describe() for k in self.keys]
        return " or ".join(names) if names else "nobody (no trusted signer is configured)"

    @property
    def has_signers(self) -> bool:
        return bool(self.identities or self.keys)


@dataclass(frozen=True)
class TrustPolicy:
    default_mode: str = DEFAULT_MODE
    rules: tuple[TrustRule, ...] = ()
    trusted_root: Path | None = None
    override: str | None = None
    source: str = "config.toml"

    def rule_for(self, name: str) -> TrustRule:
        """The rule for `registry/repository`: the first matching entry, with
        the environment override applied."""
        for rule in self.rules:
            if fnmatch.fnmatchcase(name, rule.pattern):
                return TrustRule(rule.pattern, self.override or rule.mode, rule.identities, rule.keys)
        return TrustRule("(default)", self.override or self.default_mode)

    @classmethod
    def from_config(
        cls,
        raw: Mapping[str, Any],
        *,
        config_dir: Path,
        override: str | None = None,
        source: str = "config.toml",
    ) -> TrustPolicy:
        if override is not None and override not in MODES:
            raise ConfigError(f"WASSETTE_SIGNATURES={override!r}: expected one of {', '.join(MODES)}")
        section = raw.get("signatures", {})
        if not isinstance(section, Mapping):
            raise ConfigError(f"{source}: [signatures] must be a table")
        allowed = {"mode", "trusted_root", "trust"}
        for key in section:
            if key not in allowed:
                raise ConfigError(
                    f"{source}: signatures.{key}: unknown key (expected one of: {', '.join(sorted(allowed))})"
                )
        default_mode = _mode(section.get("mode", DEFAULT_MODE), f"{source}: signatures.mode")
        root = section.get("trusted_root")
        if root is not None and not isinstance(root, str):
            raise ConfigError(f"{source}: signatures.trusted_root must be a path")
        entries = section.get("trust", [])
        if not isinstance(entries, list):
            raise ConfigError(f"{source}: signatures.trust must be an array of tables ([[signatures.trust]])")
        rules = tuple(
            _rule(e, f"{source}: signatures.trust[{i}]", default_mode, config_dir)
            for i, e in enumerate(entries)
        )
        return cls(
            default_mode=default_mode,
            rules=rules,
            trusted_root=_path(root, config_dir) if root else None,
            override=override,
            source=source,
        )


def _mode(value: Any, where: str) -> str:
    if value not in MODES:
        raise ConfigError(f"{where}: {value!r} is not one of {', '.join(MODES)}")
    return str(value)


def _path(text: str, base: Path) -> Path:
    p = Path(text).expanduser()
    return p if p.is_absolute() else base / p


def _rule(entry: Any, where: str, default_mode: str, config_dir: Path) -> TrustRule:
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{where} must be a table")
    allowed = {"pattern", "mode", "identities", "keys"}
    for key in entry:
        if key not in allowed:
            raise ConfigError(f"{where}.{key}: unknown key (expected one of: {', '.join(sorted(allowed))})")
    pattern = entry.get("pattern")
    if not isinstance(pattern, str) or not pattern:
        raise ConfigError(f'{where}.pattern is required (e.g. "ghcr.io/acme/*")')
    mode = _mode(entry.get("mode", default_mode), f"{where}.mode")
    identities = []
    raw_ids = entry.get("identities", [])
    if not isinstance(raw_ids, list):
        raise ConfigError(f"{where}.identities must be an array of {{ identity, issuer }} tables")
    for i, item in enumerate(raw_ids):
        at = f"{where}.identities[{i}]"
        if not isinstance(item, Mapping):
            raise ConfigError(f'{at} must be a table like {{ identity = "...", issuer = "..." }}')
        extra = set(item) - {"identity", "identity_regexp", "issuer"}
        if extra:
            raise ConfigError(f"{at}: unknown key {sorted(extra)[0]!r}")
        ident, regexp, issuer = item.get("identity"), item.get("identity_regexp"), item.get("issuer")
        if (ident is None) == (regexp is None):
            raise ConfigError(f"{at}: give exactly one of identity or identity_regexp")
        for name, value in (("identity", ident), ("identity_regexp", regexp), ("issuer", issuer)):
            if value is not None and (not isinstance(value, str) or not value):
                raise ConfigError(f"{at}.{name} must be a non-empty string")
        if issuer is None:
            raise ConfigError(f"{at}.issuer is required (the OIDC issuer that vouches for the identity)")
        if regexp is not None:
            try:
                re.compile(regexp)
            except re.error as e:
                raise ConfigError(f"{at}.identity_regexp: {e}") from None
        identities.append(Identity(identity=ident, identity_regexp=regexp, issuer=issuer))
    keys = []
    raw_keys = entry.get("keys", [])
    if not isinstance(raw_keys, list):
        raise ConfigError(f"{where}.keys must be an array of PEM files")
    for i, item in enumerate(raw_keys):
        at = f"{where}.keys[{i}]"
        if not isinstance(item, str) or not item:
            raise ConfigError(f"{at} must be the path of a PEM public key (or the PEM text)")
        if item.lstrip().startswith("-----BEGIN"):
            keys.append(Key(label=f"inline key {i}", pem=item.encode()))
            continue
        path = _path(item, config_dir)
        try:
            keys.append(Key(label=str(path), pem=path.read_bytes()))
        except OSError as e:
            raise ConfigError(f"{at}: cannot read {path}: {e.strerror}") from None
    return TrustRule(pattern=pattern, mode=mode, identities=tuple(identities), keys=tuple(keys))
