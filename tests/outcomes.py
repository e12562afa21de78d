"""How an engine call ended, read from its CallOutcome for assertions."""

from __future__ import annotations

import json
from typing import Any


class Outcome:
    def __init__(self, raw: Any) -> None:
        self.status: str = raw.status
        self.value: Any = None if raw.value_json is None else json.loads(raw.value_json)
        self.error: str | None = raw.error
        self.denials: list[dict[str, Any]] = json.loads(raw.denials_json)
        self.failures: list[dict[str, Any]] = json.loads(raw.failures_json)
        self.egress: list[dict[str, Any]] = json.loads(raw.egress_json)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def refused(self) -> bool:
        """The call failed and the sandbox recorded why."""
        return self.status == "err" and bool(self.denials)

    @property
    def reason(self) -> str:
        return str(self.denials[0]["reason"]) if self.denials else ""
