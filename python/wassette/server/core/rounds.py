"""Questions to the client over 2026-07-28 without tasks: Multi Round-Trip
Requests (SEP-2322).

That revision has no requests from server to client. When a component asks
(elicit, sample) during a `tools/call` whose client did not declare the
tasks extension, the request is answered with `resultType:
"input_required"`: the question under `inputRequests`, and a
`requestState` naming the call. The call waits. The client asks its user
and retries the same `tools/call` with `inputResponses` and the
`requestState`; the retry takes the call over: the answer goes to the
component, and the retry is answered with the call's result (or its next
question, round after round).

The waiting call is this process's (with `serve --workers N`, a retry that
reaches another worker is relayed to it: the state names the worker). It
belongs to the identity that made it (another's state is unknown), waits
ROUND_WAIT_S for a retry at most (then it is stopped), and one owner may
have MAX_WAITING_PER_OWNER of them at once.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from typing import Any

from wassette.server.core.jsonrpc import INVALID_PARAMS, RpcError
from wassette.server.core.session import Exchange

# How long a call waits for the client's retry with its answer.
ROUND_WAIT_S = 300.0
MAX_WAITING_PER_OWNER = 32


class Round:
    """A call asking its client, across the requests that carry it: the
    exchange answered next (the first request's, then each retry's)."""

    def __init__(self, exchange: Exchange, tool: str, owner: str, cancel: Callable[[], None]) -> None:
        self.exchange = exchange
        self.tool = tool
        self.owner = owner
        self.cancel = cancel
        self.state: str | None = None
        self.key = ""
        self.asked = 0
        self.answer: Any = None
        self._answered = threading.Event()


class Rounds:
    """The calls of this process waiting for a retry, by `requestState`."""

    def __init__(self, prefix: str = "") -> None:
        # Names the worker (`serve --workers N`): a retry elsewhere is relayed here.
        self.prefix = prefix
        self._lock = threading.Lock()
        self._waiting: dict[str, Round] = {}

    def ask(self, round_: Round, method: str, params: dict[str, Any]) -> Any:
        """On the call's thread: answers the current request with the
        question and waits for the retry's answer. Raises TimeoutError."""
        with self._lock:
            mine = sum(1 for r in self._waiting.values() if r.owner == round_.owner)
            if mine >= MAX_WAITING_PER_OWNER:
                raise TimeoutError(f"{mine} calls already wait for this client's answers")
            round_.asked += 1
            round_.key = f"q{round_.asked}"
            round_.state = f"{self.prefix}{secrets.token_urlsafe(24)}"
            round_.answer = None
            round_._answered.clear()
            self._waiting[round_.state] = round_
        round_.exchange.reply(
            {
                "resultType": "input_required",
                "inputRequests": {round_.key: {"method": method, "params": params}},
                "requestState": round_.state,
            }
        )
        if not round_._answered.wait(ROUND_WAIT_S):
            with self._lock:
                self._waiting.pop(round_.state, None)
            round_.cancel()
            raise TimeoutError(f"the client did not come back with an answer within {ROUND_WAIT_S:.0f} s")
        return round_.answer

    def resume(self, exchange: Exchange, tool: str, owner: str, params: dict[str, Any]) -> None:
        """A retry: its answer goes to the waiting call, which answers it next."""
        state = params.get("requestState")
        with self._lock:
            round_ = self._waiting.get(state) if isinstance(state, str) else None
            if round_ is None or round_.owner != owner or round_.tool != tool:
                raise RpcError(
                    INVALID_PARAMS,
                    "Invalid params: no call waits with this requestState (it ended, timed out, or is another's)",
                )
            responses = params.get("inputResponses")
            answer = responses.get(round_.key) if isinstance(responses, dict) else None
            if not isinstance(answer, dict):
                raise RpcError(INVALID_PARAMS, f"Invalid params: inputResponses must answer {round_.key!r}")
            del self._waiting[str(state)]
            round_.exchange = exchange
            round_.answer = answer
        exchange.on_cancel = round_.cancel  # the client cancels the retry: the call stops
        round_._answered.set()

    def close(self) -> None:
        """The server stops: every waiting call is stopped."""
        with self._lock:
            waiting = list(self._waiting.values())
            self._waiting.clear()
        for round_ in waiting:
            round_.cancel()
            round_._answered.set()
