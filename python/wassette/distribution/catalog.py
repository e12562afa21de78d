"""The component catalog: a bundled list (Wassette's published examples)
that `registry search` and the `search-components` tool rank by query."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Entry:
    name: str
    description: str
    uri: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "uri": self.uri}


BUNDLED: tuple[Entry, ...] = (
    Entry(
        "time-server-js",
        "Current time and time-zone conversion (JavaScript)",
        "oci://ghcr.io/microsoft/time-server-js:latest",
    ),
    Entry(
        "get-weather-js",
        "Weather for a city from OpenWeather; needs network and an API key (JavaScript)",
        "oci://ghcr.io/microsoft/get-weather-js:latest",
    ),
    Entry(
        "fetch-rs",
        "Fetch a URL and return its content as text or markdown (Rust)",
        "oci://ghcr.io/microsoft/fetch-rs:latest",
    ),
    Entry(
        "filesystem-rs",
        "List, read, write and search files under granted directories (Rust)",
        "oci://ghcr.io/microsoft/filesystem-rs:latest",
    ),
    Entry(
        "eval-py",
        "Evaluate a Python expression in the sandbox (Python)",
        "oci://ghcr.io/microsoft/eval-py:latest",
    ),
    Entry("gomodule-go", "Look up Go module information (Go)", "oci://ghcr.io/microsoft/gomodule-go:latest"),
    Entry("arxiv-rs", "Search and fetch arXiv papers (Rust)", "oci://ghcr.io/microsoft/arxiv-rs:latest"),
    Entry(
        "brave-search-rs",
        "Web search through the Brave Search API (Rust)",
        "oci://ghcr.io/microsoft/brave-search-rs:latest",
    ),
    Entry(
        "context7-rs",
        "Library documentation lookup through Context7 (Rust)",
        "oci://ghcr.io/microsoft/context7-rs:latest",
    ),
)


def search(query: str | None, entries: tuple[Entry, ...] = BUNDLED) -> list[Entry]:
    """Entries matching every word of `query`, best first (name matches rank
    above description matches); all entries, by name, without a query."""
    if not query or not query.strip():
        return sorted(entries, key=lambda e: e.name)
    words = [w.lower() for w in query.split()]
    scored: list[tuple[int, str, Entry]] = []
    for e in entries:
        name, desc = e.name.lower(), e.description.lower()
        if not all(w in name or w in desc for w in words):
            continue
        score = sum(3 if name == w else 2 if w in name else 1 for w in words)
        scored.append((-score, e.name, e))
    return [e for _, _, e in sorted(scored)]
