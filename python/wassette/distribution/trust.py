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
        section: Mapping[str, Any],
        *,
        config_dir: Path,
        override: str | None = None,
        source: str = "config.toml",
    ) -> TrustPolicy:
        """From the [signatures] table, its shape already checked against the
        config schema (runtime/config_schema.py)."""
        if override is not None and override not in MODES:
            raise ConfigError(f"WASSETTE_SIGNATURES={override!r}: expected one of {', '.join(MODES)}")
        default_mode = _mode(section.get("mode", DEFAULT_MODE), f"{source}: signatures.mode")
        root = section.get("trusted_root")
        entries = section.get("trust", [])
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


def _rule(entry: Mapping[str, Any], where: str, default_mode: str, config_dir: Path) -> TrustRule:
    pattern = entry["pattern"]
    mode = _mode(entry.get("mode", default_mode), f"{where}.mode")
    identities = []
    for i, item in enumerate(entry.get("identities", [])):
        at = f"{where}.identities[{i}]"
        ident, regexp, issuer = item.get("identity"), item.get("identity_regexp"), item["issuer"]
        if (ident is None) == (regexp is None):
            raise ConfigError(f"{at}: give exactly one of identity or identity_regexp")
        if regexp is not None:
            try:
                re.compile(regexp)
            except re.error as e:
                raise ConfigError(f"{at}.identity_regexp: {e}") from None
        identities.append(Identity(identity=ident, identity_regexp=regexp, issuer=issuer))
    keys = []
    for i, item in enumerate(entry.get("keys", [])):
        at = f"{where}.keys[{i}]"
        if item.lstrip().startswith("-----BEGIN"):
            keys.append(Key(label=f"inline key {i}", pem=item.encode()))
            continue
        path = _path(item, config_dir)
        try:
            keys.append(Key(label=str(path), pem=path.read_bytes()))
        except OSError as e:
            raise ConfigError(f"{at}: cannot read {path}: {e.strerror}") from None
    return TrustRule(pattern=pattern, mode=mode, identities=tuple(identities), keys=tuple(keys))
