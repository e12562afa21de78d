"""The trace span of one HTTP request (with tracing on, core/tracing.py):
in the caller's trace when the request names one (`traceparent`: the
header, or the message's `_meta` in 2026-07-28), decided before any span is
made when it names none."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from wassette.server.core import jsonrpc
from wassette.server.http.admission import DECODED
from wassette.server.http.wire import Scope, header_map

if TYPE_CHECKING:
    from wassette.server.core.tracing import Tracing

_TRACE_HEADERS = (b"traceparent", b"tracestate")


def traced(tracing: Tracing | None, scope: Scope, body: bytes) -> contextlib.AbstractContextManager[Any]:
    """The span of this request (a POST of one message), or nothing."""
    if tracing is None or scope["method"] != "POST":
        return contextlib.nullcontext()
    headers = header_map(scope)
    carrier = {name.decode(): headers[name].decode("latin-1") for name in _TRACE_HEADERS if name in headers}
    named = "traceparent" in carrier or b"traceparent" in body
    if not named and not tracing.keeps_root():
        return tracing.unsampled()  # decided before any span is made (tracing.py)
    message = scope.get(DECODED)  # admission's decoding of the body, when it looked
    if message is None:
        try:
            message = jsonrpc.decode(body)
        except ValueError:
            message = None
    method = message.get("method") if isinstance(message, dict) else None
    params = message.get("params") if isinstance(message, dict) else None
    meta = params.get("_meta") if isinstance(params, dict) else None
    if "traceparent" not in carrier and isinstance(meta, dict) and isinstance(meta.get("traceparent"), str):
        carrier = {k: meta[k] for k in ("traceparent", "tracestate") if isinstance(meta.get(k), str)}
    return tracing.request(method if isinstance(method, str) else "batch", carrier, "http")
