"""OCI references: `oci://registry/repo:tag`, `...@sha256:<hex>`, and the bare
`registry/repo:tag` form (recognised when the first part names a host)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from wassette.runtime.errors import SourceError

DOCKER_HUB = "docker.io"
_DOCKER_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io"}
_REPO_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPO_RE = re.compile(rf"^{_REPO_COMPONENT}(?:/{_REPO_COMPONENT})*$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_HOST_RE = re.compile(r"^(?:\[[0-9a-fA-F:]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::[0-9]{1,5})?$")


@dataclass(frozen=True)
class Reference:
    registry: str  # host[:port] as written (docker.io normalised)
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def api_host(self) -> str:
        """Where the registry's API answers (Docker Hub's differs from its name)."""
        return "registry-1.docker.io" if self.registry == DOCKER_HUB else self.registry

    @property
    def host(self) -> str:
        """The host without the port."""
        if self.registry.startswith("["):
            return self.registry.split("]")[0] + "]"
        return self.registry.rsplit(":", 1)[0] if ":" in self.registry else self.registry

    @property
    def name(self) -> str:
        """`registry/repository`: what trust patterns match against."""
        return f"{self.registry}/{self.repository}"

    @property
    def ref(self) -> str:
        """What to ask the registry for: the digest if pinned, else the tag."""
        return self.digest or self.tag or "latest"

    def with_digest(self, digest: str) -> Reference:
        return Reference(self.registry, self.repository, self.tag, digest)

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    def uri(self) -> str:
        return f"oci://{self}"


def looks_like_reference(text: str) -> bool:
    """A bare `host/repo[:tag]` (the host has a dot or a port, or is localhost)."""
    if "://" in text or "/" not in text:
        return False
    first = text.split("/", 1)[0]
    return ("." in first or ":" in first or first == "localhost") and bool(_HOST_RE.match(first))


def parse(uri: str) -> Reference:
    """Parses `oci://...` or a bare reference; raises SourceError naming the problem."""
    text = uri[len("oci://") :] if uri.startswith("oci://") else uri
    if not text or "/" not in text:
        raise SourceError(f"{uri!r} is not an OCI reference: expected oci://registry/repository:tag")
    registry, rest = text.split("/", 1)
    if not _HOST_RE.match(registry):
        raise SourceError(f"{uri!r}: {registry!r} is not a registry host")
    if registry in _DOCKER_HUB_ALIASES:
        registry = DOCKER_HUB
    digest = None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not DIGEST_RE.match(digest):
            raise SourceError(
                f"{uri!r}: digest {digest!r} is not sha256: followed by 64 lowercase hex digits"
            )
    tag = None
    if ":" in rest.rsplit("/", 1)[-1]:
        rest, tag = rest.rsplit(":", 1)
        if not _TAG_RE.match(tag):
            raise SourceError(f"{uri!r}: {tag!r} is not a valid tag")
    if registry == DOCKER_HUB and "/" not in rest:
        rest = f"library/{rest}"
    if not _REPO_RE.match(rest):
        raise SourceError(
            f"{uri!r}: {rest!r} is not a valid repository name (lowercase letters, digits, . _ - and /)"
        )
    if tag is None and digest is None:
        tag = "latest"
    return Reference(registry=registry, repository=rest, tag=tag, digest=digest)
