"""The official MCP conformance suite against `wassette serve`, as
scripts/conformance.sh runs it (CI runs this): every scenario of the active
suite passes over Streamable HTTP, with SSE answers and with plain JSON."""

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
    lines = re.findall(r"^(sse|json): (\d+) passed, (\d+) failed$", done.stdout, re.MULTILINE)
    summary = {mode: (int(passed), int(failed)) for mode, passed, failed in lines}
    # 31 scenarios, 39 checks in the pinned suite (0.1.16); none may fail.
    assert summary == {"sse": (39, 0), "json": (39, 0)}, done.stdout[-4000:]
    for scenario in (
        "tools-call-elicitation",
        "tools-call-sampling",
        "resources-templates-read",
        "prompts-get-with-image",
    ):
        assert f"✓ {scenario}:" in done.stdout
