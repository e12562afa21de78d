"""The server's own prompts: how an agent writes, builds, loads and grants
a component (`prompts/list`, `prompts/get`), and completion of their
arguments (`completion/complete`).

The code an agent is shown is the `wassette new` template of the language
(distribution/projects.py), so what the prompt teaches is what the CLI
makes, and both are built and tested in CI.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from wassette.distribution import projects
from wassette.server.core.jsonrpc import INVALID_PARAMS, RpcError

# completion/complete answers at most this many values (the spec's cap).
MAX_COMPLETIONS = 100
# Longest argument value taken (a tool's description, a URI).
MAX_ARGUMENT_CHARS = 4096


class Argument(NamedTuple):
    name: str
    description: str
    required: bool = False


class Prompt(NamedTuple):
    name: str
    title: str
    description: str
    arguments: tuple[Argument, ...]

    def wire(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "arguments": [a._asdict() for a in self.arguments],
        }


PROMPTS = (
    Prompt(
        "write-component",
        "Write a tool as a WebAssembly component",
        "How to write, build, load, test and grant a new tool as a WebAssembly component, "
        "starting from the project `wassette new` makes for the language.",
        (
            Argument("language", f"the component's language: {', '.join(projects.LANGUAGES)}", True),
            Argument("task", "what the tool should do", True),
            Argument("name", "the component's name: lower-case words joined by '-' (default: my-tool)"),
        ),
    ),
    Prompt(
        "load-component",
        "Load a component and grant it what it needs",
        "How to load a component from a file, an https:// URL or an OCI registry, see its tools, "
        "and grant it the least it needs.",
        (
            Argument(
                "source", "file:///path/tool.wasm, https://host/tool.wasm or oci://registry/repo:tag", True
            ),
        ),
    ),
    Prompt(
        "grant-permissions",
        "Grant a component only what a task needs",
        "How to read why a call was denied and grant the one permission that allows it, no more.",
        (Argument("component_id", "the component's id (see list-components)", True),),
    ),
)
BY_NAME = {p.name: p for p in PROMPTS}


def list_result() -> dict[str, Any]:
    return {"prompts": [p.wire() for p in PROMPTS]}


def get_result(params: dict[str, Any] | None) -> dict[str, Any]:
    """The messages of `prompts/get` (invalid params: an RpcError naming why)."""
    params = params or {}
    name = params.get("name")
    prompt = BY_NAME.get(name) if isinstance(name, str) else None
    if prompt is None:
        known = ", ".join(BY_NAME)
        raise RpcError(INVALID_PARAMS, f"Invalid params: unknown prompt {name!r} (prompts: {known})")
    arguments = _arguments(prompt, params.get("arguments"))
    text = TEXTS[prompt.name](arguments)
    return {
        "description": prompt.description,
        "messages": [{"role": "user", "content": {"type": "text", "text": text}}],
    }


def _arguments(prompt: Prompt, given: object) -> dict[str, str]:
    if given is None:
        given = {}
    if not isinstance(given, dict) or not all(isinstance(v, str) for v in given.values()):
        raise RpcError(INVALID_PARAMS, "Invalid params: arguments must be an object of strings")
    known = {a.name for a in prompt.arguments}
    unknown = sorted(set(given) - known)
    if unknown:
        raise RpcError(
            INVALID_PARAMS,
            f"Invalid params: {prompt.name} takes no argument {unknown[0]!r} (it takes {', '.join(sorted(known))})",
        )
    for a in prompt.arguments:
        value = given.get(a.name, "")
        if a.required and not value.strip():
            raise RpcError(
                INVALID_PARAMS,
                f"Invalid params: {prompt.name} needs the argument {a.name!r}: {a.description}",
            )
        if len(value) > MAX_ARGUMENT_CHARS:
            raise RpcError(
                INVALID_PARAMS, f"Invalid params: {a.name} is over {MAX_ARGUMENT_CHARS} characters"
            )
    return {k: v.strip() for k, v in given.items()}


# -- the texts -----------------------------------------------------------------


def _write_component(args: dict[str, str]) -> str:
    language = projects.language_of(args["language"])
    if language is None:
        raise RpcError(
            INVALID_PARAMS,
            f"Invalid params: no template for {args['language']!r}; the languages are {', '.join(projects.LANGUAGES)}",
        )
    name = args.get("name") or "my-tool"
    if not projects.valid_name(name):
        raise RpcError(INVALID_PARAMS, f"Invalid params: {projects.name_problem(name)}")
    files = projects.render(language, name)
    info = projects.LANGUAGES[language]
    shown = [
        "wit/world.wit",
        info["source"].replace("{{name}}", name),
        "build.sh",
        "policy.yaml",
        "wassette-cases.yaml",
    ]
    listing = "\n\n".join(f"`{path}`:\n```\n{files[path].rstrip()}\n```" for path in shown if path in files)
    return f"""Write a tool that does this: {args["task"]}

Write it as a WebAssembly component in {info["language"]}, named `{name}`. Every function the
component's WIT world exports becomes an MCP tool: its parameters and result types become the
tool's JSON Schema, and the `///` doc comments in the WIT file become the descriptions the agent
reads, so document every function and parameter. A `result<T, string>` result reports failures
as tool errors. The component runs in a deny-by-default sandbox: no files, network or environment
variables unless its policy grants them.

1. Make the project: `wassette new {language} {name}` (or write these files yourself). The starting
   point it makes:

{listing}

2. Change the world in `wit/world.wit` to the functions the task needs (names in kebab-case),
   write them in {info["source"].replace("{{name}}", name)}, and record what they must answer
   in `wassette-cases.yaml`.
3. Build: `bash build.sh` ({info["build_line"]}). It writes `{name}.wasm`.
4. Test: `wassette component test {name}.wasm` runs the recorded cases; fix until all pass.
5. Load it into this server with the `load-component` tool, `path`: `file:///absolute/path/to/{name}.wasm`.
   The tools it exports are offered at once (the server tells clients the tool list changed).
6. Call the tool. If a call is denied, the error names the exact permission that would allow it;
   ask the user before granting it with `grant-storage-permission`, `grant-network-permission`
   or `grant-environment-variable-permission`, and grant only the host, directory or variable
   the task needs. Write the same grants in `policy.yaml` so they ship with the component.
"""


def _load_component(args: dict[str, str]) -> str:
    return f"""Load the component at {args["source"]} into this server and make it usable.

1. Call the `load-component` tool with `path`: `{args["source"]}` (a file:// URI, an https:// URL
   or an oci:// reference). The answer lists the component's id and its tools; an OCI component's
   signature is checked against the server's trust policy, and a policy shipped with it is not
   applied until the user accepts it.
2. Read each new tool's description and input schema in `tools/list` before calling it.
3. The component starts with no permissions. Call `get-policy` with its id to see what it has.
   Call the tool; if a call is denied, the error names the permission that would allow it. Tell
   the user what the tool wants to reach and why, and only then grant that one permission with
   `grant-storage-permission`, `grant-network-permission` or
   `grant-environment-variable-permission`. Never grant wider than the task needs (a host, not
   every host; one directory, read-only when reading is enough).
4. When it is no longer needed, `unload-component` removes it.
"""


def _grant_permissions(args: dict[str, str]) -> str:
    cid = args["component_id"]
    return f"""Give the component `{cid}` what the user's task needs, and nothing more.

1. Call `get-policy` with `component_id`: `{cid}` to see what it may reach now.
2. Run the task. A denied call's error names exactly what was refused and the permission that
   would allow it: a storage path (fs:// URI with read or write access), a network host, or an
   environment variable.
3. Ask the user before each grant, saying what the tool will reach. Grant the narrowest form:
   - `grant-storage-permission`: `uri` of the one directory (fs:///path/**), `access` ["read"]
     unless the tool must write;
   - `grant-network-permission`: `host` of the one host it must call;
   - `grant-environment-variable-permission`: `key` of the one variable.
4. Call again. When the task is done, `revoke-storage-permission`, `revoke-network-permission`,
   `revoke-environment-variable-permission` or `reset-permission` take grants back.
"""


TEXTS: dict[str, Callable[[dict[str, str]], str]] = {
    "write-component": _write_component,
    "load-component": _load_component,
    "grant-permissions": _grant_permissions,
}


def complete(params: dict[str, Any] | None, component_ids: Callable[[], list[str]]) -> dict[str, Any]:
    """`completion/complete` for the prompts' arguments: the languages, and
    the ids of the loaded components."""
    params = params or {}
    ref, argument = params.get("ref"), params.get("argument")
    if (
        not isinstance(ref, dict)
        or not isinstance(argument, dict)
        or not isinstance(argument.get("name"), str)
    ):
        raise RpcError(
            INVALID_PARAMS, "Invalid params: completion/complete needs ref and argument {name, value}"
        )
    value = argument.get("value", "")
    if not isinstance(value, str):
        raise RpcError(INVALID_PARAMS, "Invalid params: argument.value must be a string")
    if ref.get("type") != "ref/prompt" or ref.get("name") not in BY_NAME:
        raise RpcError(
            INVALID_PARAMS, f"Invalid params: no completion for {ref.get('type')!r} {ref.get('name')!r}"
        )
    candidates: list[str] = []
    if argument["name"] == "language":
        candidates = list(projects.LANGUAGES)
    elif argument["name"] == "component_id":
        candidates = sorted(component_ids())
    return completion([c for c in candidates if c.startswith(value)])


def completion(found: list[str]) -> dict[str, Any]:
    """A `completion/complete` result of these values (at most 100 sent)."""
    return {
        "completion": {
            "values": found[:MAX_COMPLETIONS],
            "total": len(found),
            "hasMore": len(found) > MAX_COMPLETIONS,
        }
    }
