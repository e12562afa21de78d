"""Recorded test cases for a component (`wassette component test`): each
case calls one tool with arguments, under a policy, and says what must come
back. A cases file (YAML):

    policy: policy.yaml            # optional: every case's policy (relative to this file)
    cases:
      - name: adds
        tool: add
        arguments: {a: 1, b: 2}
        expect: {result: 3}        # the tool's value, exactly
      - name: no network without a grant
        tool: fetch
        arguments: {url: https://example.com/}
        expect: {error: true, denied: network}
      - name: fetches with the grant
        tool: fetch
        arguments: {url: https://example.com/}
        policy: {permissions: {network: {allow: [{host: example.com}]}}}   # this case's own
        expect: {error: false}

`expect` keys: `result` (the value, compared exactly), `error` (true/false:
whether the call is an error; or text the error message must contain),
`status` (the engine's outcome: ok, err, trap, timeout, ...), `denied` (a
kind of refused access that must be recorded: storage, network, ...).
Nothing in a case reaches the user's own components or policies: the runner
gets a runtime of its own.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wassette.runtime import policy as policy_mod
from wassette.runtime.calls import CallResult
from wassette.runtime.errors import WassetteError

_CASE_KEYS = {"name", "tool", "arguments", "policy", "expect"}
_EXPECT_KEYS = {"result", "error", "status", "denied"}


class CaseError(WassetteError):
    """A cases file that cannot be used (the message names where and why)."""


@dataclass(frozen=True)
class Case:
    name: str
    tool: str
    arguments: dict[str, Any]
    expect: dict[str, Any]
    policy: dict[str, Any] | None = None


@dataclass
class Outcome:
    case: str
    tool: str
    passed: bool
    detail: str = ""
    duration_ms: float = 0.0
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "case": self.case,
            "tool": self.tool,
            "outcome": "PASS" if self.passed else "FAIL",
            "detail": self.detail,
            "ms": round(self.duration_ms, 2),
        }


def load(path: Path) -> tuple[list[Case], dict[str, Any] | None]:
    """The cases of a file, and the default policy it names."""
    import yaml

    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise CaseError(f"cannot read {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise CaseError(f"{path}: not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("cases"), list) or not doc["cases"]:
        raise CaseError(f"{path}: expected a mapping with a non-empty list `cases`")
    unknown = set(doc) - {"cases", "policy"}
    if unknown:
        raise CaseError(
            f"{path}: unknown key(s) {', '.join(sorted(map(str, unknown)))} (expected cases, policy)"
        )
    default = _policy(doc.get("policy"), path, "policy")
    cases = [_case(raw, path, i) for i, raw in enumerate(doc["cases"], 1)]
    names = [c.name for c in cases]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise CaseError(f"{path}: case names must differ: {', '.join(duplicated)}")
    return cases, default


def _case(raw: Any, path: Path, number: int) -> Case:
    where = f"{path}: case {number}"
    if not isinstance(raw, dict):
        raise CaseError(f"{where}: expected a mapping")
    unknown = set(raw) - _CASE_KEYS
    if unknown:
        raise CaseError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    tool, arguments, expect = raw.get("tool"), raw.get("arguments", {}), raw.get("expect")
    if not isinstance(tool, str) or not tool:
        raise CaseError(f"{where}: `tool` must name a tool")
    if not isinstance(arguments, dict):
        raise CaseError(f"{where}: `arguments` must be a mapping")
    if not isinstance(expect, dict) or not expect or set(expect) - _EXPECT_KEYS:
        raise CaseError(f"{where}: `expect` must be a mapping of {', '.join(sorted(_EXPECT_KEYS))}")
    name = raw.get("name", f"{number}: {tool}")
    return Case(str(name), tool, arguments, expect, _policy(raw.get("policy"), path, f"case {number} policy"))


def _policy(value: Any, path: Path, what: str) -> dict[str, Any] | None:
    """A policy given inline (a mapping) or as a file next to the cases file;
    validated now, so a typo fails before any case runs."""
    if value is None:
        return None
    if isinstance(value, str):
        policy = policy_mod.load_file(path.parent / value)
    elif isinstance(value, dict):
        policy = policy_mod.validate({"version": "1.0", **value}, source=f"{path}: {what}")
    else:
        raise CaseError(f"{path}: {what}: a file name or a mapping")
    return policy.document


def judge(case: Case, result: CallResult) -> Outcome:
    """Whether the call's result is what the case expects, and if not, why."""
    expect, problems = case.expect, []
    if "result" in expect and (result.is_error or result.value != expect["result"]):
        got = result.error if result.is_error else json.dumps(result.value)
        problems.append(f"expected result {json.dumps(expect['result'])}, got {got}")
    wanted_error = expect.get("error")
    if isinstance(wanted_error, bool) and wanted_error != result.is_error:
        problems.append("expected an error" if wanted_error else f"expected success, got: {result.error}")
    elif isinstance(wanted_error, str) and (not result.is_error or wanted_error not in result.message()):
        problems.append(
            f"expected an error containing {wanted_error!r}, got: {result.message() if result.is_error else 'success'}"
        )
    if "status" in expect and result.status != expect["status"]:
        problems.append(f"expected status {expect['status']}, got {result.status}")
    if "denied" in expect and not any(d.get("kind") == expect["denied"] for d in result.denials):
        kinds = sorted({str(d.get("kind")) for d in result.denials}) or ["none"]
        problems.append(f"expected a refused {expect['denied']} access, got {', '.join(kinds)}")
    detail = "; ".join(problems) if problems else _summary(result)
    return Outcome(case.name, case.tool, not problems, detail, result.duration_ms, problems)


def _summary(result: CallResult) -> str:
    if result.is_error:
        return f"{result.status}: {(result.error or '').splitlines()[0][:80]}"
    return json.dumps(result.value)[:80]


def run(
    cases: list[Case],
    default_policy: dict[str, Any] | None,
    call: Callable[[Case, dict[str, Any] | None], CallResult],
) -> list[Outcome]:
    """Runs every case (`call` runs one under a policy) and judges it; an
    unknown tool is a failed case, not a stop."""
    outcomes = []
    for case in cases:
        try:
            result = call(case, case.policy if case.policy is not None else default_policy)
        except WassetteError as e:
            outcomes.append(Outcome(case.name, case.tool, False, str(e)))
            continue
        outcomes.append(judge(case, result))
    return outcomes
