"""Type stubs of the Rust extension (src/lib.rs)."""

__version__: str

class ComponentError(ValueError): ...
class EngineError(RuntimeError): ...

class Engine:
    def __init__(
        self, cache_dir: str | None = None, allocator: str = "auto", ca_pem: bytes | None = None
    ) -> None: ...
    @property
    def fingerprint(self) -> str: ...
    @property
    def allocator(self) -> str: ...
    @property
    def pagemap_scan(self) -> bool: ...
    def compile(self, wasm: bytes) -> Component: ...
    def load(self, path: str, sha256: str | None = None) -> Component: ...

class Component:
    @property
    def sha256(self) -> str: ...
    @property
    def from_cache(self) -> bool: ...
    def functions(self) -> list[tuple[str | None, str]]: ...
    def describe(self, wasm: bytes) -> str: ...
    def call(
        self,
        interface: str | None,
        function: str,
        args_json: str,
        policy_json: str = "{}",
        cancel: CancelToken | None = None,
    ) -> CallOutcome: ...
    def start(
        self,
        interface: str | None,
        function: str,
        args_json: str,
        policy_json: str = "{}",
        cancel: CancelToken | None = None,
    ) -> PendingCall: ...

class PendingCall:
    def run_for(self, budget_ms: int) -> CallOutcome | None: ...
    def finish(self) -> CallOutcome: ...

class CancelToken:
    def __init__(self) -> None: ...
    def cancel(self) -> None: ...
    @property
    def cancelled(self) -> bool: ...

class CallOutcome:
    status: str
    value_json: str | None
    error: str | None
    detail: str | None
    stdout: bytes
    stderr: bytes
    stdout_dropped: int
    stderr_dropped: int
    denials_json: str
    duration_ms: float
