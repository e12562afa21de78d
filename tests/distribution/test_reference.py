"""OCI reference parsing: the forms users type, and clear refusals."""

from __future__ import annotations

import pytest

from wassette.distribution.reference import Reference, looks_like_reference, parse
from wassette.runtime.errors import SourceError

D = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "oci://ghcr.io/microsoft/time-server-js:latest",
            Reference("ghcr.io", "microsoft/time-server-js", "latest"),
        ),
        ("oci://127.0.0.1:5000/tools/arith", Reference("127.0.0.1:5000", "tools/arith", "latest")),
        (f"oci://ghcr.io/a/b@{D}", Reference("ghcr.io", "a/b", None, D)),
        (f"oci://ghcr.io/a/b:1.0@{D}", Reference("ghcr.io", "a/b", "1.0", D)),
        ("ghcr.io/a/b:1.0", Reference("ghcr.io", "a/b", "1.0")),
        ("localhost:5000/a:v1", Reference("localhost:5000", "a", "v1")),
        ("oci://docker.io/alpine:3", Reference("docker.io", "library/alpine", "3")),
        ("oci://index.docker.io/acme/tool:1", Reference("docker.io", "acme/tool", "1")),
    ],
)
def test_parse(text: str, expected: Reference) -> None:
    ref = parse(text)
    assert ref == expected
    assert parse(ref.uri()) == ref


def test_docker_hub_api_host_and_pinning() -> None:
    ref = parse("oci://docker.io/acme/tool:1")
    assert ref.api_host == "registry-1.docker.io"
    assert str(ref.with_digest(D)) == f"docker.io/acme/tool:1@{D}"
    assert parse(f"oci://ghcr.io/a/b@{D}").ref == D


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("oci://ghcr.io", "is not an OCI reference"),
        ("oci://ghcr.io/a/b@sha256:abc", "is not sha256: followed by 64 lowercase hex digits"),
        ("oci://ghcr.io/A/B:1", "is not a valid repository name"),
        ("oci://ghcr.io/a/b:-bad", "is not a valid tag"),
        ("oci://bad_host!/a:1", "is not a registry host"),
    ],
)
def test_bad_references(text: str, message: str) -> None:
    with pytest.raises(SourceError, match=message.replace("(", r"\(")):
        parse(text)


@pytest.mark.parametrize(
    ("text", "is_ref"),
    [
        ("ghcr.io/a/b:1", True),
        ("localhost/a", True),
        ("127.0.0.1:5000/a", True),
        ("tools/arith.wasm", False),
        ("./x.wasm", False),
        ("file:///x.wasm", False),
        ("arith.wasm", False),
    ],
)
def test_bare_reference_detection(text: str, is_ref: bool) -> None:
    assert looks_like_reference(text) is is_ref
