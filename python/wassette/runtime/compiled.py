"""The engine and the compiled components of one runtime.

Compiled code is kept per component id, shared between ids that hold the
same wasm (calls share nothing: each gets a new instance and its own
policy), and loaded from the engine's artifact cache when it has it.
"""

from __future__ import annotations

import threading
from pathlib import Path

from wassette import _engine
from wassette.runtime.config import Settings
from wassette.runtime.errors import ConfigError, InvalidComponentError, StoreError
from wassette.runtime.events import emit


class Compiler:
    def __init__(self, settings: Settings, engine_of: Compiler | None = None) -> None:
        """`engine_of`: a compiler whose engine this one uses (one engine per
        process serves every tenant: its artifact cache is keyed by digest)."""
        self.settings = settings
        self._engine_of = engine_of
        self._engine: _engine.Engine | None = None
        self._compiled: dict[str, _engine.Component] = {}
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    @property
    def engine(self) -> _engine.Engine:
        if self._engine_of is not None:
            return self._engine_of.engine
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    self._engine = self._new_engine()
        return self._engine

    def _new_engine(self) -> _engine.Engine:
        ca_pem = None
        if self.settings.ca_bundle is not None:
            # The private CA the loader trusts is trusted by guests' HTTPS too.
            try:
                ca_pem = self.settings.ca_bundle.read_bytes()
            except OSError as e:
                raise ConfigError(f"cannot read CA bundle {self.settings.ca_bundle}: {e.strerror}") from None
        try:
            return _engine.Engine(str(self.settings.cache_dir), self.settings.allocator, ca_pem)
        except _engine.EngineError as e:
            raise ConfigError(f"cannot start the engine: {e}") from None

    def compile(self, wasm: bytes, label: str) -> _engine.Component:
        """Compiles bytes (or takes them from the artifact cache); not kept."""
        try:
            compiled = self.engine.compile(wasm)
        except _engine.ComponentError as e:
            raise InvalidComponentError(f"{label}: {e}") from None
        self._compiled_event(compiled)
        return compiled

    def _compiled_event(self, compiled: _engine.Component) -> None:
        emit("compile", cached="true" if compiled.from_cache else "false", tenant=self.settings.tenant or "")

    def get(self, cid: str) -> _engine.Component | None:
        return self._compiled.get(cid)

    def keep(self, cid: str, component: _engine.Component) -> None:
        self._compiled[cid] = component

    def drop(self, cid: str) -> None:
        self._compiled.pop(cid, None)

    def load(self, cid: str, path: Path, sha256: str) -> _engine.Component:
        """The compiled component of an installed id, compiled (or read from
        the artifact cache) on first use, once even when several threads ask."""
        compiled = self._compiled.get(cid)
        if compiled is not None:
            return compiled
        with self._lock:
            lock = self._locks.setdefault(cid, threading.Lock())
        with lock:
            compiled = self._compiled.get(cid)
            if compiled is not None:
                return compiled
            twin = next((c for c in list(self._compiled.values()) if c.sha256 == sha256), None)
            if twin is not None:
                self._compiled[cid] = twin
                return twin
            try:
                compiled = self.engine.load(str(path), sha256)
            except _engine.ComponentError as e:
                raise InvalidComponentError(f"component {cid}: {e}") from None
            except _engine.EngineError as e:
                raise StoreError(f"component {cid}: {e}") from None
            self._compiled[cid] = compiled
            self._compiled_event(compiled)
            return compiled

    def artifact_bytes(self, sha256: str) -> int:
        """The size of the compiled artifact of this wasm in the engine's
        cache (0 when it has none)."""
        name = f"{sha256}-{self.engine.fingerprint}.cwasm"
        try:
            return (self.settings.cache_dir / name).stat().st_size
        except OSError:
            return 0
