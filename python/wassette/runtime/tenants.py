"""Tenants: callers that share one server and never see each other.

Each tenant has a state of its own, laid out like the untenanted one under
`<data>/tenants/<name>/` (components, secrets, audit log), or, with a
shared PostgreSQL state, in a schema of its own (`tenant_<name>`) with its
working copy under `<working copy>/tenants/<name>/`. The untenanted state
stays the operator's (the CLI without `--tenant`, the static token).

Who belongs to which tenant is the server's business (config `[tenants]`:
a token claim, or a subject -> tenant map); this module names tenants and
their quotas, and moves a runtime's settings onto one tenant's state.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

from wassette.runtime.errors import ConfigError, WassetteError

if TYPE_CHECKING:
    from wassette.runtime.config import Settings

# Lower case only: "Acme" and "acme" must not be two tenants of one name
# on a case-insensitive file system, nor one tenant on another.
TENANT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
QUOTA_KEYS = ("components", "concurrent_calls", "calls_per_minute", "compiled_cache_bytes")


def valid_tenant(name: object) -> bool:
    return isinstance(name, str) and TENANT_NAME.fullmatch(name) is not None


def check_tenant(name: str, where: str = "tenant") -> str:
    if not valid_tenant(name):
        raise ConfigError(
            f"{where} {name!r}: a tenant name is 1-63 lower-case letters, digits, '_' or '-', "
            "starting with a letter or digit"
        )
    return name


class Quota(NamedTuple):
    """What one tenant may use (0: no limit)."""

    components: int = 0
    concurrent_calls: int = 0
    calls_per_minute: int = 0
    compiled_cache_bytes: int = 0

    def to_json(self) -> dict[str, int]:
        return self._asdict()


class Tenancy(NamedTuple):
    """config.toml `[tenants]`: how a caller's tenant is found, and the quotas."""

    # The token claim that names the tenant (None: only `subjects` map).
    claim: str | None = None
    # subject -> tenant, taken over the claim.
    subjects: Mapping[str, str] = MappingProxyType({})
    quota: Quota = Quota()
    # tenant -> its own quota (keys not given: the default's).
    quotas: Mapping[str, Quota] = MappingProxyType({})

    @classmethod
    def from_config(cls, table: Mapping[str, Any]) -> Tenancy:
        default = Quota(**{k: int(table[k]) for k in QUOTA_KEYS if k in table})
        subjects = {str(k): check_tenant(str(v), f"tenants.map.{k}") for k, v in table.get("map", {}).items()}
        quotas = {
            check_tenant(name, "tenants.quota"): default._replace(**{k: int(v) for k, v in values.items()})
            for name, values in table.get("quota", {}).items()
        }
        if not table.get("claim") and not subjects:
            raise ConfigError("[tenants] needs a claim (the token claim naming the tenant) or a map")
        return cls(table.get("claim"), MappingProxyType(subjects), default, MappingProxyType(quotas))

    def quota_of(self, tenant: str) -> Quota:
        return self.quotas.get(tenant, self.quota)

    def tenant_of(self, subject: str, claims: Mapping[str, Any]) -> str:
        """The tenant of a token's subject and claims. Raises WassetteError
        (the token's fault: the caller is told why) when it has none."""
        mapped = self.subjects.get(subject)
        if mapped is not None:
            return mapped
        value = claims.get(self.claim) if self.claim else None
        if value is None:
            raise WassetteError(
                f"the token names no tenant (claim {self.claim!r})" if self.claim else "no tenant"
            )
        if not valid_tenant(value):
            raise WassetteError(f"the token's tenant claim {self.claim!r} is not a tenant name")
        return str(value)


def for_tenant(settings: Settings, name: str) -> Settings:
    """The settings of tenant `name`'s state: its directories (or schema and
    working copy), its quota. The engine's compiled-artifact cache stays
    shared (artifacts are keyed by the wasm's digest: no tenant's data)."""
    check_tenant(name)
    quota = settings.tenancy.quota_of(name) if settings.tenancy is not None else Quota()
    state = settings.state
    if state is None:
        root = settings.data_dir / "tenants" / name
        return settings._replace(
            tenant=name,
            quota=quota,
            component_dir=root / "components",
            secrets_dir=root / "secrets",
            secrets_store_key_file=None,  # each tenant's own key, beside its secrets
            data_dir=root,
            local_components_dir=root / "local-components",
        )
    root = state.working_dir / "tenants" / name
    local = state.local_data_dir / "tenants" / name
    state = state._replace(
        working_dir=root,
        schema=f"tenant_{name}",
        local_component_dir=local / "components",
        local_secrets_dir=local / "secrets",
        local_secrets_store_key_file=None,
        local_data_dir=local,
    )
    return settings._replace(
        tenant=name,
        quota=quota,
        component_dir=root / "components",
        secrets_dir=root / "secrets",
        secrets_store_key_file=None,
        data_dir=root / "data",
        local_components_dir=local / "local-components",
        state=state,
    )
