"""The console's routes under /console: pages (GET), the changes a person
makes (POST, CSRF-checked), and its two static files. Whoever mounts it
(server/http/console_mount.py, or `wassette console`: standalone.py) has
authenticated the request and says who it is (`Viewer`)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from html import escape
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote

from wassette.console import pages, views, web
from wassette.console.web import Receive, Scope, Send
from wassette.runtime.errors import WassetteError
from wassette.runtime.grant_queue import GrantQueue
from wassette.runtime.runtime import Runtime

STATIC = Path(__file__).parent / "static"
_TYPES = {".css": b"text/css; charset=utf-8", ".js": b"text/javascript; charset=utf-8"}
# Read once: two small files, served from memory.
_FILES = {p.name: (p.read_bytes(), _TYPES[p.suffix]) for p in STATIC.iterdir() if p.suffix in _TYPES}


class Viewer(NamedTuple):
    """An authenticated request: whose runtime, who (for the audit log's
    `by`), and whether they may change permissions (the grants right)."""

    runtime: Runtime
    who: str
    may_grant: bool = True


Page = Callable[[Viewer, dict[str, str], str], tuple[str, str, str]]


class Console:
    async def __call__(self, scope: Scope, receive: Receive, send: Send, viewer: Viewer) -> None:
        path = scope["path"].removeprefix(pages.PREFIX) or "/"
        method = scope["method"]
        if path.startswith("/static/") and method == "GET":
            found = _FILES.get(path.removeprefix("/static/"))
            if found is None:
                await web.send_response(send, 404, b"not found", b"text/plain")
            else:
                await web.send_response(send, 200, found[0], found[1])
            return
        if method == "GET":
            await self._get(scope, send, viewer, path)
        elif method == "POST" and path in _ACTIONS:
            await self._post(scope, receive, send, viewer, path)
        else:
            await web.send_response(
                send, 405 if path in _ACTIONS or path in _PAGES else 404, b"", b"text/plain"
            )

    async def _get(self, scope: Scope, send: Send, viewer: Viewer, path: str) -> None:
        token, set_cookie = web.csrf_token(scope)
        query = web.query(scope)
        fragment = _FRAGMENTS.get(path)
        try:
            if fragment is not None:
                body = await asyncio.to_thread(fragment, viewer, query, token)
                await web.send_response(send, 200, body.encode(), b"application/json", set_cookie)
                return
            page = _PAGES.get(path)
            if page is None:
                await web.send_response(send, 404, b"not found", b"text/plain")
                return
            current, title, body = await asyncio.to_thread(page, viewer, query, token)
        except WassetteError as e:
            current, title, body = "", "Error", f'<p class="flash error">{escape(str(e))}</p>'
        html = pages.layout(title, body, who=viewer.who, current=current, flash=query.get("flash", "")[:300])
        await web.send_response(send, 200, html.encode(), extra=set_cookie)

    async def _post(self, scope: Scope, receive: Receive, send: Send, viewer: Viewer, path: str) -> None:
        form = await web.read_form(receive)
        if form is None:
            await web.send_response(send, 413, b"form too large", b"text/plain")
            return
        why = web.forged(scope, form)
        if why is not None:
            await web.send_response(send, 403, f"refused: {why}".encode(), b"text/plain")
            return
        if not viewer.may_grant:
            await web.send_response(send, 403, b"refused: this needs the grants right", b"text/plain")
            return
        back, act = _ACTIONS[path]
        try:
            said = await asyncio.to_thread(act, viewer, form)
        except WassetteError as e:
            said = f"not done: {e}"
        await web.redirect(send, f"{pages.PREFIX}{back}?flash={quote(said)}")

    def login(self, scope: Scope, failed: bool) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        """The sign-in page (for a mount that needs a token) and its cookie."""
        token, set_cookie = web.csrf_token(scope)
        html = pages.page("Sign in", pages.login_page(token, failed), "not signed in")
        return html.encode(), set_cookie


# -- pages: (current tab, title, body) ----------------------------------------------------


def _components(viewer: Viewer, query: dict[str, str], token: str) -> tuple[str, str, str]:
    items = views.components(viewer.runtime)
    body = pages.components_page(items, viewer.runtime.broken_components())
    return "components", "Components", body


def _audit(viewer: Viewer, query: dict[str, str], token: str) -> tuple[str, str, str]:
    f = views.AuditFilter.parse(query)._replace(after=-1)
    records = views.audit_records(viewer.runtime, f)
    return "audit", "Audit log", pages.audit_page(records, f, token, viewer.may_grant)


def _requests(viewer: Viewer, query: dict[str, str], token: str) -> tuple[str, str, str]:
    queue = _queue(viewer.runtime)
    return "requests", "Grant requests", pages.requests_page(queue.pending(), token, viewer.may_grant)


def _policies(viewer: Viewer, query: dict[str, str], token: str) -> tuple[str, str, str]:
    items = views.pending_policies(viewer.runtime)
    return "policies", "Pending policies", pages.policies_page(items, token, viewer.may_grant)


_PAGES: dict[str, Page] = {
    "/": _components,
    "/audit": _audit,
    "/requests": _requests,
    "/policies": _policies,
}

# -- fragments for console.js (JSON: the HTML to put in, and where it ends) -------------


def _audit_rows(viewer: Viewer, query: dict[str, str], token: str) -> str:
    f = views.AuditFilter.parse(query)
    records = views.audit_records(viewer.runtime, f)
    rows = "".join(pages.audit_row(r, token, viewer.may_grant) for r in reversed(records))
    after = max((views.seq_of(r) for r in records), default=f.after)
    return json.dumps({"html": rows, "after": after})


def _requests_list(viewer: Viewer, query: dict[str, str], token: str) -> str:
    pending = _queue(viewer.runtime).pending()
    return json.dumps({"html": pages.requests_list(pending, token, viewer.may_grant), "count": len(pending)})


_FRAGMENTS: dict[str, Callable[[Viewer, dict[str, str], str], str]] = {
    "/audit/rows": _audit_rows,
    "/requests/list": _requests_list,
}

# -- actions: (the page to go back to, what to do) -------------------------------------------


def _grant(viewer: Viewer, form: dict[str, str]) -> str:
    permission = views.Permission(form.get("kind", ""), form.get("value", ""), form.get("access", ""))
    component = form.get("component", "")
    views.grant(viewer.runtime, component, permission, viewer.who)
    return f"granted {permission.describe()} to {component}"


def _decide(viewer: Viewer, form: dict[str, str]) -> str:
    approve = form.get("decision") == "approve"
    decided = _queue(viewer.runtime).decide(form.get("request", ""), approve, viewer.who)
    return f"{decided.state}: {decided.permission} {decided.scope} for {decided.component}"


def _accept(viewer: Viewer, form: dict[str, str]) -> str:
    component = form.get("component", "")
    viewer.runtime.permissions.accept_pending(component, by=viewer.who)
    return f"accepted the policy {component} shipped with"


_ACTIONS: dict[str, tuple[str, Callable[[Viewer, dict[str, str]], str]]] = {
    "/grant": ("/audit", _grant),
    "/requests/decide": ("/requests", _decide),
    "/policies/accept": ("/policies", _accept),
}


def _queue(runtime: Runtime) -> GrantQueue:
    return GrantQueue(runtime.settings.data_dir, runtime.audit)
