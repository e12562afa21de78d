"""A client for the OCI distribution API: manifests and blobs, pulled with
every digest checked, pushed for `component publish`, with the anonymous or
credentialed token flow done on the first 401."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urljoin

from wassette.distribution import auth
from wassette.distribution.auth import Credentials
from wassette.distribution.httpclient import HttpClient, Response, is_loopback
from wassette.distribution.reference import DIGEST_RE, Reference
from wassette.runtime.errors import SourceError

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST)
MAX_MANIFEST_BYTES = 4 << 20

# (bytes done, bytes total) while a blob downloads.
ByteProgress = Callable[[int, int], None]


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str]
    artifact_type: str | None = None

    @classmethod
    def parse(cls, value: Any, where: str) -> Descriptor:
        if not isinstance(value, dict):
            raise SourceError(f"{where} is not a descriptor object")
        media_type, digest, size = value.get("mediaType"), value.get("digest"), value.get("size")
        if not isinstance(media_type, str):
            raise SourceError(f"{where} has no mediaType")
        if not isinstance(digest, str) or not DIGEST_RE.match(digest):
            raise SourceError(f"{where} has no sha256 digest (got {digest!r})")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise SourceError(f"{where} has no valid size")
        ann = value.get("annotations") or {}
        art = value.get("artifactType")
        return cls(
            media_type=media_type,
            digest=digest,
            size=size,
            annotations={str(k): str(v) for k, v in ann.items()} if isinstance(ann, dict) else {},
            artifact_type=art if isinstance(art, str) else None,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out


@dataclass(frozen=True)
class Manifest:
    raw: bytes
    digest: str
    media_type: str
    doc: dict[str, Any]


class RegistryClient:
    """Talks to one registry about one repository."""

    def __init__(
        self, ref: Reference, http: HttpClient, *, credentials: Credentials | None = None, push: bool = False
    ) -> None:
        self.ref = ref
        self.http = http
        self.push = push
        note = None
        if credentials is None:
            credentials, note = auth.from_docker_config(ref.registry)
        self.credentials = credentials
        self._note = note
        self._auth: str | None = None
        insecure = is_loopback(ref.host) and http.allow_insecure_loopback
        self.base = f"{'http' if insecure else 'https'}://{ref.api_host}/v2/"

    # -- plumbing --------------------------------------------------------

    def _url(self, path: str) -> str:
        return urljoin(self.base, path)

    def _scope(self) -> str:
        return f"repository:{self.ref.repository}:{'pull,push' if self.push else 'pull'}"

    def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> Response:
        """A request with authentication: on a 401, answer the challenge once."""
        for attempt in range(2):
            hdrs = dict(headers or {})
            if self._auth:
                hdrs["Authorization"] = self._auth
            resp = self.http.request(method, url, headers=hdrs, body=body)
            if resp.status != 401 or attempt == 1:
                if resp.status == 401:
                    resp.close()
                    raise self._auth_error()
                return resp
            challenge = resp.header("www-authenticate") or ""
            resp.close()
            self._auth = self._answer(challenge)
        raise AssertionError("unreachable")

    def _answer(self, challenge: str) -> str:
        scheme, params = auth.parse_challenge(challenge)
        if scheme == "bearer":
            token = auth.fetch_token(self.http, params, self._scope(), self.credentials, self.ref.registry)
            return f"Bearer {token}"
        if scheme == "basic":
            if self.credentials is None:
                raise self._auth_error()
            return self.credentials.basic()
        raise SourceError(f"registry {self.ref.registry} asks for unsupported authentication {challenge!r}")

    def _auth_error(self) -> SourceError:
        if self.credentials is not None:
            return SourceError(
                f"registry {self.ref.registry} refused the credentials of {self.credentials.username!r} "
                f"(from {self.credentials.origin})"
            )
        note = f" ({self._note})" if self._note else ""
        return SourceError(
            f"registry {self.ref.registry} requires authentication{note}: {auth.login_hint(self.ref.registry)}"
        )

    def _fail(self, resp: Response, what: str) -> SourceError:
        detail = ""
        try:
            errors = json.loads(resp.read(64 << 10)).get("errors") or []
            if errors and isinstance(errors[0], dict):
                detail = f": {errors[0].get('code', '')} {errors[0].get('message', '')}".rstrip()
        except (ValueError, AttributeError, SourceError):
            pass
        finally:
            resp.close()
        if resp.status == 404:
            return SourceError(f"{what} not found in registry {self.ref.registry}{detail}")
        if resp.status == 403:
            return SourceError(f"registry {self.ref.registry} denied access to {what}{detail}")
        return SourceError(f"registry {self.ref.registry} answered HTTP {resp.status} for {what}{detail}")

    # -- pulling ---------------------------------------------------------

    def manifest(self, ref: str, *, accept: tuple[str, ...] = MANIFEST_TYPES) -> Manifest:
        """The manifest for a tag or digest, verified: by digest it must hash
        to that digest; by tag it must agree with the registry's digest header."""
        what = (
            f"{self.ref.repository}:{ref}"
            if not ref.startswith("sha256:")
            else f"{self.ref.repository}@{ref}"
        )
        resp = self.send(
            "GET", self._url(f"{self.ref.repository}/manifests/{ref}"), headers={"Accept": ", ".join(accept)}
        )
        if resp.status != 200:
            raise self._fail(resp, f"manifest {what}")
        raw = resp.read(MAX_MANIFEST_BYTES)
        digest = sha256_digest(raw)
        if ref.startswith("sha256:") and digest != ref:
            raise SourceError(f"digest mismatch for manifest {what}: the registry sent content with {digest}")
        claimed = resp.header("docker-content-digest")
        if claimed and claimed.startswith("sha256:") and claimed != digest:
            raise SourceError(
                f"digest mismatch for manifest {what}: registry says {claimed}, content is {digest}"
            )
        try:
            doc = json.loads(raw)
        except ValueError:
            raise SourceError(f"manifest {what} is not valid JSON") from None
        if not isinstance(doc, dict):
            raise SourceError(f"manifest {what} is not a JSON object")
        media_type = doc.get("mediaType") or (resp.header("content-type") or "").split(";")[0].strip()
        return Manifest(raw=raw, digest=digest, media_type=str(media_type), doc=doc)

    def manifest_if_exists(self, ref: str, *, accept: tuple[str, ...] = MANIFEST_TYPES) -> Manifest | None:
        try:
            return self.manifest(ref, accept=accept)
        except SourceError as e:
            if " not found in registry " in str(e):
                return None
            raise

    def blob(self, desc: Descriptor, *, limit: int, progress: ByteProgress | None = None) -> bytes:
        """A blob, streamed and checked against the descriptor's size and digest."""
        short = desc.digest[:19]
        if desc.size > limit:
            raise SourceError(
                f"blob {short}… is {desc.size} bytes, over the limit of {limit} bytes "
                f"(max_component_bytes in config.toml)"
            )
        resp = self.send("GET", self._url(f"{self.ref.repository}/blobs/{desc.digest}"))
        if resp.status != 200:
            raise self._fail(resp, f"blob {desc.digest}")
        h = hashlib.sha256()
        got = 0
        out = bytearray()
        for chunk in resp.chunks():
            got += len(chunk)
            if got > desc.size:
                resp.close()
                raise SourceError(f"blob {short}… is longer than the {desc.size} bytes its manifest declares")
            h.update(chunk)
            out += chunk
            if progress:
                progress(got, desc.size)
        if got < desc.size:
            raise SourceError(f"truncated download of blob {short}…: got {got} of {desc.size} bytes")
        actual = "sha256:" + h.hexdigest()
        if actual != desc.digest:
            raise SourceError(
                f"digest mismatch for blob {desc.digest}: the registry sent content with {actual}"
            )
        return bytes(out)

    def referrers(self, digest: str) -> list[Descriptor] | None:
        """Referrers of a manifest: the OCI 1.1 API, else the referrers tag
        schema (`sha256-<hex>` image index). None when neither exists."""
        resp = self.send(
            "GET", self._url(f"{self.ref.repository}/referrers/{digest}"), headers={"Accept": OCI_INDEX}
        )
        index: dict[str, Any] | None = None
        if resp.status == 200 and (resp.header("content-type") or "").startswith(OCI_INDEX):
            try:
                index = json.loads(resp.read(MAX_MANIFEST_BYTES))
            except ValueError:
                index = None
        else:
            resp.close()
            fallback = self.manifest_if_exists(digest.replace(":", "-"), accept=(OCI_INDEX,))
            if fallback is not None and fallback.doc.get("mediaType", OCI_INDEX) == OCI_INDEX:
                index = fallback.doc
        if not isinstance(index, dict):
            return None
        out = []
        for i, m in enumerate(index.get("manifests") or []):
            try:
                out.append(Descriptor.parse(m, f"referrer {i}"))
            except SourceError:
                continue
        return out

    # -- pushing ---------------------------------------------------------

    def has_blob(self, digest: str) -> bool:
        resp = self.send("HEAD", self._url(f"{self.ref.repository}/blobs/{digest}"))
        resp.close()
        return resp.status == 200

    def push_blob(self, data: bytes, *, progress: ByteProgress | None = None) -> str:
        """Uploads a blob (monolithic POST + PUT) unless the registry has it."""
        digest = sha256_digest(data)
        if self.has_blob(digest):
            return digest
        resp = self.send("POST", self._url(f"{self.ref.repository}/blobs/uploads/"), body=b"")
        location = resp.header("location")
        if resp.status != 202 or not location:
            raise self._fail(resp, f"upload to {self.ref.repository}")
        resp.close()
        upload = urljoin(self.base, location)
        sep = "&" if "?" in upload else "?"
        resp = self.send(
            "PUT",
            f"{upload}{sep}{urlencode({'digest': digest})}",
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(data))},
            body=data,
        )
        if resp.status not in (201, 204):
            raise self._fail(resp, f"upload of blob {digest}")
        resp.close()
        if progress:
            progress(len(data), len(data))
        return digest

    def push_manifest(self, raw: bytes, media_type: str, tag: str | None) -> str:
        digest = sha256_digest(raw)
        resp = self.send(
            "PUT",
            self._url(f"{self.ref.repository}/manifests/{tag or digest}"),
            headers={"Content-Type": media_type},
            body=raw,
        )
        if resp.status not in (200, 201, 204):
            raise self._fail(resp, f"manifest {self.ref.repository}:{tag or digest}")
        resp.close()
        return digest
