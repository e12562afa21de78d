"""The official MCP conformance suite against `wassette serve`, as
scripts/conformance.sh runs it (CI runs this): every scenario of the active
suite (`--suite all`: the pending ones too) passes over Streamable HTTP, with
SSE answers and with plain JSON, without a warning."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_every_scenario_passes_in_both_answer_modes() -> None:
    env = {**os.environ, "PYTHON": sys.executable}
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "conformance.sh")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    lines = re.findall(r"^(sse|json): (\d+) passed, (\d+) failed, (\d+) warnings$", done.stdout, re.MULTILINE)
    summary = {mode: tuple(map(int, counts)) for mode, *counts in lines}
    # The pinned suite (0.1.16), all of it: none may fail or warn. With SSE
    # answers, server-sse-polling's checks run too (priming event, retry,
    # a stream ended mid-call and resumed with Last-Event-ID).
    assert summary == {"sse": (46, 0, 0), "json": (43, 0, 0)}, done.stdout[-4000:]
    for scenario in (
        "server-sse-polling",
        "tools-call-elicitation",
        "tools-call-sampling",
        "resources-templates-read",
        "prompts-get-with-image",
    ):
        assert f"✓ {scenario}:" in done.stdout
