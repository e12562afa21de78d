"""Resources and prompts of the loaded components (wassette:mcp/resources,
wassette:mcp/prompts), gathered across components.

Each listing or read is a call of the component's export in a fresh
sandbox, under its policy, with a short time limit. A component whose
listing fails is left out of that answer (and logged), never the others.
Resources are found by URI (the first component in id order that lists it,
else one whose template matches it); a prompt's name is qualified with the
component id (`<id>__<name>`) when two components, or one of the server's
own prompts, offer the same name.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from typing import TYPE_CHECKING, Any, NamedTuple

from wassette.runtime.errors import WassetteError
from wassette.runtime.mcp_exports import call_export, interface_of, listing_policy
from wassette.runtime.naming import MAX_NAME, sanitize

if TYPE_CHECKING:
    from wassette.runtime.runtime import Runtime

log = logging.getLogger("wassette.runtime")


class Provider(NamedTuple):
    component_id: str
    interface: str


class Named(NamedTuple):
    """A prompt as offered: its name here, its component and name there."""

    name: str
    provider: Provider
    declared: str
    prompt: dict[str, Any]


class McpServed:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def providers(self, what: str) -> list[Provider]:
        """The components exporting wassette:mcp/<what>, in id order."""
        found = []
        for info in sorted(self.runtime.components(), key=lambda c: c.id):
            meta = self.runtime.known(info.id)
            exports = meta.exports if meta is not None else []
            interface = interface_of([(e.get("interface"), str(e.get("function"))) for e in exports], what)
            if interface is not None:
                found.append(Provider(info.id, interface))
        return found

    def call(self, provider: Provider, function: str, arguments: dict[str, Any]) -> Any:
        component = self.runtime.compiled(provider.component_id)
        policy = listing_policy(self.runtime.policies.json(provider.component_id))
        what = f"{function} of component {provider.component_id}"
        return call_export(component, provider.interface, function, arguments, policy, what)

    def _gather(self, what: str, function: str) -> list[tuple[Provider, dict[str, Any]]]:
        out: list[tuple[Provider, dict[str, Any]]] = []
        for provider in self.providers(what):
            try:
                items = self.call(provider, function, {})
            except WassetteError as e:
                log.warning("%s", e)
                continue
            if isinstance(items, list):
                out += [(provider, item) for item in items if isinstance(item, dict)]
        return out

    # -- resources -------------------------------------------------------------

    def resources(self) -> list[dict[str, Any]]:
        seen: set[str] = set()
        out = []
        for _provider, item in self._gather("resources", "list-resources"):
            if item.get("uri") not in seen:
                seen.add(str(item.get("uri")))
                out.append(item)
        return out

    def resource_templates(self) -> list[dict[str, Any]]:
        return [item for _, item in self._gather("resources", "list-resource-templates")]

    def read_resource(self, uri: str) -> list[dict[str, Any]]:
        """The contents at `uri`, from the component that lists it or whose
        template matches it; WassetteError if none does."""
        listed = self._gather("resources", "list-resources")
        owner = next((p for p, item in listed if item.get("uri") == uri), None)
        if owner is None:
            for provider, template in self._gather("resources", "list-resource-templates"):
                if matches(str(template.get("uri-template", "")), uri):
                    owner = provider
                    break
        if owner is None:
            raise WassetteError(
                f"no resource {uri!r}: no loaded component lists it or a template matching it"
            )
        value = self.call(owner, "read-resource", {"uri": uri})
        if not isinstance(value, dict) or "ok" not in value:
            raise WassetteError(f"read-resource of component {owner.component_id} answered no contents")
        contents = value["ok"]
        if not isinstance(contents, list):
            raise WassetteError(f"read-resource of component {owner.component_id} answered no list")
        return contents

    # -- prompts ---------------------------------------------------------------

    def prompts(self, reserved: set[str]) -> list[Named]:
        """Every component prompt, named uniquely next to `reserved` names."""
        gathered = self._gather("prompts", "list-prompts")
        counts = Counter(str(item.get("name")) for _, item in gathered)
        out = []
        for provider, item in gathered:
            declared = str(item.get("name"))
            name = sanitize(declared)
            if counts[declared] > 1 or name in reserved:
                name = sanitize(f"{provider.component_id}__{declared}")[:MAX_NAME]
            out.append(Named(name, provider, declared, item))
        return out

    def get_prompt(self, named: Named, arguments: dict[str, str]) -> dict[str, Any]:
        value = self.call(
            named.provider, "get-prompt", {"name": named.declared, "arguments": list(arguments.items())}
        )
        if not isinstance(value, dict):
            raise WassetteError(
                f"get-prompt of component {named.provider.component_id} answered nothing usable"
            )
        if "err" in value:
            raise WassetteError(str(value["err"]))
        result = value.get("ok")
        if not isinstance(result, dict):
            raise WassetteError(
                f"get-prompt of component {named.provider.component_id} answered nothing usable"
            )
        return result

    def complete_template(self, template: str, argument: str, value: str) -> list[str]:
        """Values for an argument of the resource template `template`, from
        the component that lists it (through its prompts' `complete`)."""
        for provider, item in self._gather("resources", "list-resource-templates"):
            if item.get("uri-template") == template:
                completer = next(
                    (p for p in self.providers("prompts") if p.component_id == provider.component_id), None
                )
                return self.complete(completer, template, argument, value) if completer is not None else []
        return []

    def complete(self, provider: Provider, name: str, argument: str, value: str) -> list[str]:
        found = self.call(provider, "complete", {"name": name, "argument": argument, "value": value})
        return [str(v) for v in found] if isinstance(found, list) else []


def matches(template: str, uri: str) -> bool:
    """Whether an RFC 6570 level-1 template (`notes://{id}`) matches `uri`:
    each `{var}` stands for one or more characters other than `/`."""
    if not template:
        return False
    parts = re.split(r"\{[^{}]+\}", template)
    pattern = "[^/]+".join(re.escape(p) for p in parts)
    return re.fullmatch(pattern, uri) is not None
