"""Dynamic composition: which loaded component satisfies which import.

A component may import an interface (`wassette-examples:fetch/fetcher@0.1.0`)
that another loaded component of the same runtime exports, under exactly
that name and version. For each call the runtime hands the engine the links
of the whole chain (the tool's component's imports, its callees' imports,
and so on), each with the callee's own id and effective policy: every call
of a linked import runs in a new sandbox of the callee, under the callee's
policy (`src/link.rs`). The caller gains nothing of the callee's grants, nor
the callee of the caller's.

A runtime is one tenant's, so links never cross tenants. An interface that
no loaded component exports, or that several do, is not linked: the call of
the import fails with why, and the caller's tools are listed as ever.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from wassette import _engine
from wassette.runtime.errors import WassetteError

if TYPE_CHECKING:
    from wassette.runtime.store import Metadata

# (interface, callee id, its compiled component or None, its effective
# policy JSON or why the interface is not linked): `Component.start`'s links.
LinkEntry = tuple[str, str, _engine.Component | None, str]


class Links:
    """The exporters of interfaces among the loaded components, and the
    links of a call computed from them."""

    def __init__(self, load: Callable[[str], _engine.Component], policy_json: Callable[[str], str]) -> None:
        """`load`: a loaded component's compiled form by id; `policy_json`:
        its effective policy, as the engine reads it."""
        self._load = load
        self._policy_json = policy_json
        self._exporters: dict[str, tuple[str, ...]] = {}
        # Per component id, the interfaces it imports and the host does not
        # provide (read from the compiled component once).
        self._imports: dict[str, tuple[str, ...]] = {}

    def rebuild(self, metadata: Mapping[str, Metadata]) -> None:
        """Takes note of the loaded components (after any change of them)."""
        exporters: dict[str, set[str]] = {}
        for cid, meta in metadata.items():
            for export in meta.exports:
                interface = export.get("interface")
                if interface:
                    exporters.setdefault(str(interface), set()).add(cid)
        self._exporters = {name: tuple(sorted(ids)) for name, ids in exporters.items()}
        self._imports = {}

    def imports(self, cid: str, component: _engine.Component) -> tuple[str, ...]:
        """The interfaces a component imports that another may satisfy."""
        found = self._imports.get(cid)
        if found is None:
            found = tuple(sorted({interface for interface, _ in component.imports()}))
            self._imports[cid] = found
        return found

    def exporter(self, interface: str) -> tuple[str | None, str]:
        """The id of the one loaded component exporting `interface`, or None
        and why there is none."""
        ids = self._exporters.get(interface, ())
        if len(ids) == 1:
            return ids[0], ""
        if not ids:
            return None, f"no loaded component exports {interface}"
        return None, f"several loaded components export it ({', '.join(ids)}): unload all but one"

    def for_call(self, cid: str, component: _engine.Component) -> list[LinkEntry] | None:
        """The links of a call of `cid`'s tool: its imports and, transitively,
        its callees' (None when it imports nothing another may satisfy)."""
        queue = list(self.imports(cid, component))
        if not queue:
            return None
        entries: list[LinkEntry] = []
        seen: set[str] = set()
        while queue:
            interface = queue.pop()
            if interface in seen:
                continue
            seen.add(interface)
            callee, why = self.exporter(interface)
            if callee is None:
                entries.append((interface, "", None, why))
                continue
            try:
                compiled = self._load(callee)
                policy = self._policy_json(callee)
            except WassetteError as e:
                entries.append((interface, callee, None, f"component {callee} cannot be used: {e}"))
                continue
            entries.append((interface, callee, compiled, policy))
            queue.extend(self.imports(callee, compiled))
        return entries

    def describe(self, cid: str) -> dict[str, str | None]:
        """Each interface a loaded component imports and the id of the
        component that satisfies it now (None: none does)."""
        imported = self.imports(cid, self._load(cid))
        return {interface: self.exporter(interface)[0] for interface in imported}
