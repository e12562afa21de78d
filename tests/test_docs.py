"""The documentation stays true to the code: generated references are current,
links resolve, policy and JSON snippets are valid, and every `wassette ...`
command the docs show exists."""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
PAGES = sorted(
    [
        REPO / "README.md",
        *(REPO / "docs").glob("*.md"),
        REPO / "examples" / "README.md",
        *(REPO / "examples").glob("*/README.md"),
    ]
)
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"\]\(([^)\s]+)\)")
# `wassette <words>` where a shell runs it: at the start of a line or after `$ `
# (either after VAR=value prefixes), after `-- ` / `--cli ` (client commands that
# start the server), or after `run: ` (the grant hint of a denial).
COMMAND = re.compile(
    r"(?:^(?:[A-Z_][A-Z0-9_]*=\S* )*|\$ (?:[A-Z_][A-Z0-9_]*=\S* )*|-- |--cli |run: )(wassette(?: [a-z][a-z-]*)+)"
)


def _gen_docs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_docs", REPO / "scripts" / "gen_docs.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _rel(page: Path) -> str:
    return str(page.relative_to(REPO))


@pytest.mark.parametrize("page", ["cli.md", "mcp-tools.md"])
def test_generated_reference_is_current(page: str) -> None:
    gen = _gen_docs()
    render = {"cli.md": gen.cli_reference, "mcp-tools.md": gen.tools_reference}[page]
    current = (REPO / "docs" / page).read_text(encoding="utf-8")
    assert current == render(), f"docs/{page} is out of date: run python scripts/gen_docs.py"


def test_cli_reference_covers_every_command() -> None:
    from wassette.cli.main import build_parser

    text = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    for path in _command_paths(build_parser()):
        assert f"## {path}\n" in text, path


def test_gen_docs_check_mode_fails_on_drift(tmp_path: Path) -> None:
    """`--check` exits 1 and names the page when it differs from the code."""
    gen = _gen_docs()
    stale = tmp_path / "cli.md"
    stale.write_text("# old\n")
    gen.PAGES = {stale: gen.cli_reference}
    gen.REPO = tmp_path
    assert gen.main(["--check"]) == 1
    assert gen.main([]) == 0 and stale.read_text() == gen.cli_reference()
    assert gen.main(["--check"]) == 0
    r = subprocess.run([sys.executable, "scripts/gen_docs.py", "--check"], cwd=REPO, capture_output=True)
    assert r.returncode == 0, r.stderr


# --- links ---------------------------------------------------------------------------------------


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes."""
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    anchors = set()
    for heading in re.findall(r"^#{1,6} (.+)$", text, re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_relative_links_resolve(page: Path) -> None:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target):
            continue  # https:, mailto:
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        assert dest.exists(), f"{_rel(page)}: broken link {target}"
        if anchor and dest.suffix == ".md":
            assert anchor in _anchors(dest), f"{_rel(page)}: no heading for #{anchor} in {dest.name}"


# --- snippets ------------------------------------------------------------------------------------


def _blocks(page: Path, *languages: str) -> list[str]:
    return [body for lang, body in FENCE.findall(page.read_text(encoding="utf-8")) if lang in languages]


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_policy_snippets_are_valid(page: Path) -> None:
    """Every complete policy shown (a YAML block with `version:`) passes the validator."""
    from wassette.runtime import policy

    for block in _blocks(page, "yaml"):
        if re.search(r"^version:", block, re.MULTILINE):
            policy.parse(block, source=_rel(page))
        else:
            yaml.safe_load(block)  # fragments are still YAML


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_json_snippets_parse(page: Path) -> None:
    """A block may hold several values: alternatives, or JSON lines (audit records)."""
    decoder = json.JSONDecoder()
    for block in _blocks(page, "json"):
        pos, values = 0, 0
        while pos < len(block):
            if block[pos].isspace():
                pos += 1
                continue
            _, pos = decoder.raw_decode(block, pos)
            values += 1
        assert values, f"{_rel(page)}: empty json block"


def _command_paths(parser: argparse.ArgumentParser, prefix: str = "wassette") -> list[str]:
    paths = [prefix]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                paths += _command_paths(sub, f"{prefix} {name}")
    return paths


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_commands_shown_exist(page: Path) -> None:
    """Each `wassette <command> [<subcommand>...]` in a shell block names a real command."""
    from wassette.cli.main import build_parser

    known = set(_command_paths(build_parser()))
    groups = {p for p in known if any(k.startswith(p + " ") for k in known)}
    for block in _blocks(page, "sh", "console", "bash"):
        for line in block.splitlines():
            m = COMMAND.search(line)
            if not m:
                continue
            words = m.group(1).split()
            path = "wassette"
            for word in words[1:]:
                if f"{path} {word}" not in known:
                    break
                path = f"{path} {word}"
            assert path not in groups, f"{_rel(page)}: `{m.group(1)}` is not a complete command"
            assert path != "wassette" or words[1:2] == [], f"{_rel(page)}: unknown command in {line!r}"
