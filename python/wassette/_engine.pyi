"""Type stubs of the Rust extension (src/lib.rs), checked against the
module by `python -m mypy.stubtest wassette._engine`."""

from collections.abc import Callable
from typing import ClassVar, final

__all__ = [
    "DEFAULT_MEMORY_LIMIT_BYTES",
    "DEFAULT_OUTPUT_LIMIT_BYTES",
    "DEFAULT_TIMEOUT_MS",
    "ArgumentsError",
    "CallOutcome",
    "CallStatus",
    "CancelToken",
    "Component",
    "ComponentError",
    "Engine",
    "EngineError",
    "ExportError",
    "Instance",
    "PendingCall",
    "PolicyError",
    "__version__",
]

__version__: str
DEFAULT_MEMORY_LIMIT_BYTES: int
DEFAULT_TIMEOUT_MS: int
DEFAULT_OUTPUT_LIMIT_BYTES: int

class ComponentError(ValueError): ...
class EngineError(RuntimeError): ...
class ArgumentsError(ValueError): ...
class PolicyError(ValueError): ...
class ExportError(ValueError): ...

@final
class Engine:
    def __new__(
        cls, cache_dir: str | None = None, allocator: str = "auto", ca_pem: bytes | None = None
    ) -> Engine: ...
    @property
    def fingerprint(self) -> str: ...
    @property
    def allocator(self) -> str: ...
    @property
    def pagemap_scan(self) -> bool: ...
    def compile(self, wasm: bytes) -> Component: ...
    def load(self, path: str, sha256: str | None = None) -> Component: ...

@final
class Component:
    @property
    def sha256(self) -> str: ...
    @property
    def from_cache(self) -> bool: ...
    @property
    def asks_client(self) -> bool: ...
    def functions(self) -> list[tuple[str | None, str]]: ...
    def imports(self) -> list[tuple[str, str]]: ...
    def describe(self, wasm: bytes) -> str: ...
    def start(
        self,
        interface: str | None,
        function: str,
        args_json: str,
        policy_json: str = "{}",
        cancel: CancelToken | None = None,
        links: list[tuple[str, str, Component | None, str]] | None = None,
        host: Callable[[str, str], str | None] | None = None,
    ) -> PendingCall: ...
    def instance(self) -> Instance: ...

@final
class Instance:
    """One instance kept across calls (made at its first call)."""

    @property
    def live(self) -> bool: ...
    def close(self) -> None: ...
    def start(
        self,
        interface: str | None,
        function: str,
        args_json: str,
        policy_json: str = "{}",
        cancel: CancelToken | None = None,
        links: list[tuple[str, str, Component | None, str]] | None = None,
        host: Callable[[str, str], str | None] | None = None,
    ) -> PendingCall: ...

@final
class PendingCall:
    def run_for(self, budget_ms: int) -> CallOutcome | None: ...
    def finish(self) -> CallOutcome: ...

@final
class CancelToken:
    def __new__(cls) -> CancelToken: ...
    def cancel(self) -> None: ...
    @property
    def cancelled(self) -> bool: ...

@final
class CallStatus:
    OK: ClassVar[CallStatus]
    ERR: ClassVar[CallStatus]
    INVALID_ARGUMENTS: ClassVar[CallStatus]
    TRAP: ClassVar[CallStatus]
    TIMEOUT: ClassVar[CallStatus]
    CPU_LIMIT: ClassVar[CallStatus]
    OUT_OF_MEMORY: ClassVar[CallStatus]
    CANCELLED: ClassVar[CallStatus]
    EXIT: ClassVar[CallStatus]
    SANDBOX_ERROR: ClassVar[CallStatus]
    QUOTA_EXCEEDED: ClassVar[CallStatus]
    @property
    def value(self) -> str: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class CallOutcome:
    status: CallStatus
    value_json: str | None
    error: str | None
    detail: str | None
    stdout: bytes
    stderr: bytes
    stdout_dropped: int
    stderr_dropped: int
    denials_json: str
    failures_json: str
    egress_json: str
    accesses_json: str
    memory_bytes: int
    duration_ms: float
    linked_json: str
    quota_json: str | None
