"""Registry credentials and the token handshake of the distribution spec.

Credentials come from the command line (`--registry-username` with
`--registry-password-stdin`) or from the Docker config file
(`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`, its `auths`
entries). Credential helpers are not run: they execute arbitrary programs.
"""

from __future__ import annotations

import base64
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from wassette.distribution.httpclient import HttpClient
from wassette.runtime.errors import SourceError

_DOCKER_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io")


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str
    origin: str  # where they came from, for error messages

    def basic(self) -> str:
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return f"Basic {token}"


def docker_config_path() -> Path:
    base = os.environ.get("DOCKER_CONFIG")
    return Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"


def _key_host(key: str) -> str:
    if "://" in key:
        return urlsplit(key).netloc
    return key.split("/", 1)[0]


def from_docker_config(registry: str, path: Path | None = None) -> tuple[Credentials | None, str | None]:
    """(credentials, note): the note says why none were usable, if that is
    worth telling (a credential helper is configured, the file is broken)."""
    path = path or docker_config_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError) as e:
        return None, f"{path} is unreadable ({e})"
    if not isinstance(data, dict):
        return None, f"{path} is not a JSON object"
    wanted = set(_DOCKER_HUB_KEYS) if registry == "docker.io" else {registry}
    auths = data.get("auths") if isinstance(data.get("auths"), dict) else {}
    for key, entry in (auths or {}).items():
        if (_key_host(str(key)) not in wanted and str(key) not in wanted) or not isinstance(entry, dict):
            continue
        creds = _entry_credentials(entry, f"{path} auths[{key!r}]")
        if creds is not None:
            return creds, None
    helpers = data.get("credHelpers") if isinstance(data.get("credHelpers"), dict) else {}
    if any(_key_host(str(k)) in wanted for k in helpers or {}) or data.get("credsStore"):
        return None, f"{path} names a credential helper, which wassette does not run"
    return None, None


def _entry_credentials(entry: dict[str, Any], origin: str) -> Credentials | None:
    if isinstance(entry.get("auth"), str) and entry["auth"]:
        try:
            user, sep, password = base64.b64decode(entry["auth"]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise SourceError(f"{origin}: 'auth' is not base64 of user:password") from None
        if sep:
            return Credentials(user, password, origin)
    if isinstance(entry.get("username"), str) and isinstance(entry.get("password"), str):
        return Credentials(entry["username"], entry["password"], origin)
    return None


_PARAM_RE = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """`Bearer realm="...",service="...",scope="..."` -> ("bearer", {...})."""
    scheme, _, rest = header.strip().partition(" ")
    params = {
        m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
        for m in _PARAM_RE.finditer(rest)
    }
    return scheme.lower(), params


def fetch_token(
    http: HttpClient, params: dict[str, str], scope: str, credentials: Credentials | None, registry: str
) -> str:
    """The bearer-token flow: ask the realm for a token for `scope`, with
    Basic credentials when we have them, anonymously otherwise."""
    realm = params.get("realm")
    if not realm:
        raise SourceError(f"registry {registry} sent a Bearer challenge without a realm")
    query = {"scope": scope}
    if params.get("service"):
        query["service"] = params["service"]
    sep = "&" if "?" in realm else "?"
    headers = {"Authorization": credentials.basic()} if credentials else {}
    resp = http.request("GET", f"{realm}{sep}{urlencode(query)}", headers=headers)
    body = resp.read(1 << 20)
    if resp.status in (401, 403):
        if credentials:
            raise SourceError(
                f"registry {registry} refused the credentials of {credentials.username!r} "
                f"(from {credentials.origin})"
            )
        raise SourceError(f"registry {registry} requires authentication: {login_hint(registry)}")
    if resp.status != 200:
        raise SourceError(f"token request to {realm} failed with HTTP {resp.status}")
    try:
        data = json.loads(body)
        token = data.get("token") or data.get("access_token")
    except (ValueError, AttributeError):
        token = None
    if not isinstance(token, str) or not token:
        raise SourceError(f"token service {realm} answered without a token")
    return token


def login_hint(registry: str) -> str:
    return (
        f"add credentials for {registry} to ~/.docker/config.json (auths), or pass "
        f"--registry-username USER --registry-password-stdin"
    )
