"""Loading a component from a URI: fetch (and verify) it here, then hand
the package to the runtime to install. The CLI, the built-in tools and
provisioning all load through `load_component`."""

from __future__ import annotations

from wassette.distribution import sources
from wassette.distribution.sources import FetchOptions
from wassette.runtime.install import InstallOptions, LoadReport, Progress, quiet
from wassette.runtime.naming import Catalog
from wassette.runtime.runtime import Runtime


def load_component(
    runtime: Runtime,
    uri: str,
    *,
    progress: Progress | None = None,
    fetch: FetchOptions | None = None,
    install: InstallOptions | None = None,
) -> LoadReport:
    """Fetches (and verifies), compiles and installs a component; replaces
    one with the same id. Nothing is written unless every check passed."""
    say = progress or quiet
    say(f"fetching {uri}")
    package = sources.fetch(uri, runtime.settings, fetch or FetchOptions(), say)
    return runtime.install(package, install, say)


def inspect_source(runtime: Runtime, uri: str, *, progress: Progress | None = None) -> Catalog:
    """The tools a component file (or URI) would offer, with their schemas,
    without installing it: fetched and verified as for a load, but nothing
    is written to the component directory. Names are as the component would
    get them on its own."""
    return runtime.describe(sources.fetch(uri, runtime.settings, None, progress))
