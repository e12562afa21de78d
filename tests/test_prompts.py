"""The server's authoring prompts, through the official MCP client: listed,
rendered from the same templates `wassette new` writes, their arguments
completed, and bad arguments refused with a clear error."""

from __future__ import annotations

from pathlib import Path

import mcp.types as types
import pytest
from mcp.shared.exceptions import MCPError

from homes import Cli
from test_mcp_features import session

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def only_text(result: types.GetPromptResult) -> str:
    assert len(result.messages) == 1 and result.messages[0].role == "user"
    content = result.messages[0].content
    assert isinstance(content, types.TextContent)
    return content.text


async def test_prompts_teach_what_wassette_new_makes(env: dict[str, str], tmp_path: Path) -> None:
    async with session(env) as s:
        caps = s.server_capabilities
        assert caps is not None and caps.prompts is not None and caps.completions is not None
        listed = {p.name: p for p in (await s.list_prompts()).prompts}
        assert set(listed) == {"write-component", "load-component", "grant-permissions"}
        required = {a.name for a in listed["write-component"].arguments or [] if a.required}
        assert required == {"language", "task"}

        got = await s.get_prompt(
            "write-component", {"language": "rs", "task": "count words in a text", "name": "word-count"}
        )
        text = only_text(got)
    assert "count words in a text" in text and "wassette new rust word-count" in text
    # The code shown is what `wassette new` writes for the same name.
    r = Cli(env)("new", "rust", "word-count", "--dir", str(tmp_path / "wc"))
    assert r.returncode == 0, r.stderr
    for shown in ("wit/world.wit", "src/lib.rs", "build.sh", "policy.yaml"):
        assert (tmp_path / "wc" / shown).read_text().rstrip() in text, shown
    assert "load-component" in text and "grant-network-permission" in text


async def test_other_prompts_and_completion(env: dict[str, str], cli: Cli, components) -> None:
    assert cli("component", "load", components["io"].as_uri()).returncode == 0
    cli("component", "load", components["arith"].as_uri())
    async with session(env) as s:
        text = only_text(await s.get_prompt("load-component", {"source": "oci://ghcr.io/x/y:1"}))
        assert "oci://ghcr.io/x/y:1" in text and "get-policy" in text
        text = only_text(await s.get_prompt("grant-permissions", {"component_id": "io"}))
        assert "`io`" in text and "revoke-network-permission" in text

        ref = types.PromptReference(type="ref/prompt", name="write-component")
        done = await s.complete(ref, {"name": "language", "value": "ty"})
        assert done.completion.values == ["typescript"]
        done = await s.complete(ref, {"name": "language", "value": ""})
        assert {"rust", "python", "javascript", "typescript", "c"} <= set(done.completion.values)
        ref = types.PromptReference(type="ref/prompt", name="grant-permissions")
        done = await s.complete(ref, {"name": "component_id", "value": "a"})
        assert done.completion.values == ["arith"]


@pytest.mark.parametrize(
    ("name", "arguments", "message"),
    [
        ("nope", {}, "unknown prompt 'nope'"),
        ("write-component", {"task": "x"}, "needs the argument 'language'"),
        ("write-component", {"language": "cobol", "task": "x"}, "no template for 'cobol'"),
        ("write-component", {"language": "c", "task": "x", "name": "../etc"}, "is not a component name"),
        ("write-component", {"language": "c", "task": "x", "colour": "red"}, "takes no argument 'colour'"),
        ("load-component", {"source": "x" * 5000}, "over 4096 characters"),
    ],
)
async def test_bad_arguments_are_refused_clearly(
    env: dict[str, str], name: str, arguments: dict[str, str], message: str
) -> None:
    async with session(env) as s:
        with pytest.raises(MCPError) as caught:
            await s.get_prompt(name, arguments)
        assert message in caught.value.message
        # The session goes on.
        assert (await s.list_prompts()).prompts
