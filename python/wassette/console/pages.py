"""The console's HTML: server-rendered from `string.Template`s, every value
through `html.escape`. No inline script or style (the Content-Security-Policy
allows only the console's own files): behaviour hangs on data- attributes
that console.js reads."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from html import escape
from string import Template
from typing import Any
from urllib.parse import urlencode

from wassette.console.views import (
    EVENTS,
    SINCE,
    AuditFilter,
    ComponentView,
    PendingView,
    permission_for,
    seq_of,
    signer,
)
from wassette.runtime.grant_queue import GrantRequest, stamp

PREFIX = "/console"

_LAYOUT = Template("""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title · Wassette console</title>
<link rel="stylesheet" href="$p/static/console.css">
<script src="$p/static/console.js" defer></script>
</head>
<body>
<header>
<span class="brand">Wassette console</span>
<nav>
<a href="$p/"$c_components>Components</a>
<a href="$p/audit"$c_audit>Audit log</a>
<a href="$p/requests"$c_requests>Grant requests</a>
<a href="$p/policies"$c_policies>Pending policies</a>
</nav>
<span class="who">$who</span>
</header>
<main>
<h1>$title</h1>
$flash$body
</main>
</body>
</html>
""")


def layout(title: str, body: str, *, who: str, current: str, flash: str = "") -> str:
    marks = {f"c_{name}": ' aria-current="page"' if name == current else "" for name in _PAGES}
    note = f'<p class="flash" role="status">{escape(flash)}</p>\n' if flash else ""
    return _LAYOUT.substitute(p=PREFIX, title=escape(title), who=escape(who), body=body, flash=note, **marks)


_PAGES = ("components", "audit", "requests", "policies")


def _form(action: str, csrf: str, fields: Mapping[str, str], label: str, kind: str = "") -> str:
    hidden = "".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in fields.items()
    )
    css = f' class="{kind}"' if kind else ""
    return (
        f'<form method="post" action="{PREFIX}/{action}">'
        f'<input type="hidden" name="csrf" value="{escape(csrf)}">{hidden}'
        f"<button{css}>{escape(label)}</button></form>"
    )


def _json(value: Any) -> str:
    return f"<pre>{escape(json.dumps(value, indent=2, sort_keys=True))}</pre>"


# -- components --------------------------------------------------------------------


def components_page(items: Sequence[ComponentView], broken: Mapping[str, str]) -> str:
    if not items and not broken:
        return '<p class="empty">No component is loaded.</p>'
    parts = [_component(c) for c in items]
    for cid, why in sorted(broken.items()):
        parts.append(
            f'<section class="component broken"><h2>{escape(cid)}</h2><p>{escape(why)}</p></section>'
        )
    return "\n".join(parts)


def _component(c: ComponentView) -> str:
    tools = "".join(f"<li><code>{escape(t)}</code></li>" for t in c.tools) or "<li>(none)</li>"
    pending = (
        f'<p class="warn">A shipped policy waits for acceptance: <a href="{PREFIX}/policies">review it</a>.</p>'
        if c.pending is not None
        else ""
    )
    effective = c.effective if isinstance(c.effective, dict) else {"error": c.effective}
    return f"""<section class="component" id="component-{escape(c.id)}">
<h2>{escape(c.id)}</h2>
<dl>
<dt>Source</dt><dd class="source"><code>{escape(c.source)}</code></dd>
<dt>Digest</dt><dd class="digest"><code>sha256:{escape(c.sha256.removeprefix("sha256:"))}</code></dd>
<dt>Signer</dt><dd class="signer">{escape(signer(c.provenance))}</dd>
<dt>Installed</dt><dd>{escape(c.installed_at)}</dd>
</dl>
{pending}<h3>Tools</h3>
<ul class="tools">{tools}</ul>
<details><summary>Provenance</summary>{_json(c.provenance)}</details>
<details><summary>Policy</summary>{_json(c.policy)}</details>
<details class="effective"><summary>Effective policy (what the sandbox enforces)</summary>{_json(effective)}</details>
</section>"""


# -- the audit log -------------------------------------------------------------------


def audit_page(records: Sequence[Mapping[str, Any]], f: AuditFilter, csrf: str, may_grant: bool) -> str:
    options = "".join(
        f'<option value="{e}"{" selected" if e == f.event else ""}>{e}</option>' for e in EVENTS
    )
    since = "".join(
        f'<option value="{s}"{" selected" if s == f.since else ""}>last {s}</option>' for s in SINCE
    )
    rows = "\n".join(audit_row(r, csrf, may_grant) for r in reversed(records))
    newest = max((seq_of(r) for r in records), default=-1)
    live = f"{PREFIX}/audit/rows?{urlencode(f.query())}"
    return f"""<form class="filters" method="get" action="{PREFIX}/audit">
<label>Component <input name="component" value="{escape(f.component)}"></label>
<label>Tool <input name="tool" value="{escape(f.tool)}"></label>
<label>Event <select name="event"><option value="">any</option>{options}</select></label>
<label>Time <select name="since"><option value="">any time</option>{since}</select></label>
<button>Filter</button>
</form>
<p class="hint">Newest first; new records appear as they are written.</p>
<table class="audit" id="audit" data-live="{escape(live)}" data-after="{newest}">
<thead><tr><th>Time (UTC)</th><th>Event</th><th>Component</th><th>Tool</th><th>What</th><th></th></tr></thead>
<tbody>
{rows}
</tbody>
</table>"""


def audit_row(r: Mapping[str, Any], csrf: str, may_grant: bool) -> str:
    event = str(r.get("event", ""))
    component = str(r.get("component", ""))
    action = ""
    if event == "denied":
        permission = permission_for(component, r)
        if permission is None:
            action = '<span class="muted">no grant allows this</span>'
        else:
            fields = {"component": component, **permission._asdict()}
            label = f"Grant {permission.describe()}"
            action = (
                _form("grant", csrf, fields, label, "grant")
                if may_grant
                else f'<span class="muted">{escape(label)}: needs the grants right</span>'
            )
    return (
        f'<tr class="event-{escape(event)}" data-seq="{seq_of(r)}">'
        f"<td>{escape(str(r.get('ts', ''))[:23].replace('T', ' '))}</td>"
        f"<td>{escape(event)}</td><td>{escape(component)}</td><td>{escape(str(r.get('tool', '')))}</td>"
        f"<td>{escape(_what(r))}</td><td>{action}</td></tr>"
    )


def _what(r: Mapping[str, Any]) -> str:
    event = r.get("event")
    if event == "denied":
        target = r.get("resource")
        if r.get("resolved"):
            target = f"{target} (leads to {r['resolved']})"
        rule = f"; decided by {r['rule']}" if r.get("rule") else ""
        return f"{r.get('kind')} {r.get('access')} of {target}: {r.get('reason') or 'not granted'}{rule}"
    rest = {k: v for k, v in r.items() if k not in ("ts", "event", "component", "tool", "chain")}
    return json.dumps(rest, sort_keys=True)


# -- grant requests -----------------------------------------------------------------


def requests_page(requests: Sequence[GrantRequest], csrf: str, may_grant: bool) -> str:
    return (
        '<p class="hint">Permission changes an agent asked for wait here for your decision; '
        "the agent's tool call waits meanwhile.</p>\n"
        f'<div id="requests" data-refresh="{PREFIX}/requests/list">{requests_list(requests, csrf, may_grant)}</div>'
    )


def requests_list(requests: Sequence[GrantRequest], csrf: str, may_grant: bool) -> str:
    if not requests:
        return '<p class="empty">No request is waiting.</p>'
    rows = []
    for r in requests:
        decide = (
            _form("requests/decide", csrf, {"request": r.id, "decision": "approve"}, "Approve", "grant")
            + _form("requests/decide", csrf, {"request": r.id, "decision": "deny"}, "Deny", "deny")
            if may_grant
            else '<span class="muted">needs the grants right</span>'
        )
        rows.append(
            f'<tr class="request" data-request="{escape(r.id)}"><td>{escape(stamp(r.asked_at))}</td>'
            f"<td>{escape(r.component)}</td><td>{escape(r.permission)}</td><td>{escape(r.scope)}</td>"
            f"<td><code>{escape(r.command)}</code></td><td>{escape(stamp(r.expires_at))}</td>"
            f'<td class="actions">{decide}</td></tr>'
        )
    return (
        '<table class="requests"><thead><tr><th>Asked (UTC)</th><th>Component</th><th>Permission</th>'
        "<th>Scope</th><th>Same as</th><th>Expires</th><th></th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


# -- pending shipped policies --------------------------------------------------------


def policies_page(items: Sequence[PendingView], csrf: str, may_grant: bool) -> str:
    if not items:
        return '<p class="empty">No shipped policy waits for acceptance.</p>'
    parts = []
    for p in items:
        if p.diff is None:
            # Hook: without runtime/policy_diff.py, the whole policy is shown.
            changes = "<p>Changes against the policy in force: not available.</p>"
        else:
            changes = f'<pre class="diff">{escape(chr(10).join(p.diff))}</pre>'
        accept = (
            _form("policies/accept", csrf, {"component": p.component}, "Accept this policy", "grant")
            if may_grant
            else '<span class="muted">needs the grants right</span>'
        )
        parts.append(
            f'<section class="pending" id="pending-{escape(p.component)}"><h2>{escape(p.component)}</h2>'
            f"<h3>Changes against the policy in force</h3>{changes}"
            f"<details><summary>The shipped policy</summary>{_json(p.policy)}</details>{accept}</section>"
        )
    return "\n".join(parts)


# -- signing in ---------------------------------------------------------------------------


def login_page(csrf: str, failed: bool) -> str:
    why = '<p class="flash error" role="alert">That token was not accepted.</p>' if failed else ""
    return f"""{why}<p>This server needs a token: the bearer token it was started with, or an OAuth
access token with the audit right (and the grants right to change permissions).</p>
<form class="login" method="post" action="{PREFIX}/login">
<input type="hidden" name="csrf" value="{escape(csrf)}">
<label>Token <input type="password" name="token" autocomplete="off" required></label>
<button>Sign in</button>
</form>"""


def page(title: str, body: str, who: str, flash: str = "") -> str:
    return layout(title, body, who=who, current="", flash=flash)
