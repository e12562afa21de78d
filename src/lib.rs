//! `wassette._engine`: the sandbox engine of Wassette for Python.
//!
//! Knows WebAssembly, Wasmtime and WASI; knows nothing of MCP, YAML or config
//! files. Takes bytes/paths and an effective policy (JSON), returns JSON
//! strings and plain values. The GIL is released while compiling and calling.

mod call;
mod engine;
mod error;
mod exports;
mod gates;
mod imports;
mod kept;
mod link;
mod policy;
mod sandbox;
mod schema;
mod stop;
mod ticker;
mod values;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pyo3::create_exception;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::call::CallStatus;
use crate::engine::{Allocator, Compiled, EngineCore};
use crate::error::Error;
use crate::policy::EffectivePolicy;

create_exception!(_engine, ComponentError, PyValueError, "The bytes are not a usable WebAssembly component.");
create_exception!(_engine, EngineError, PyRuntimeError, "The engine could not do its part.");
create_exception!(_engine, ArgumentsError, PyValueError, "The arguments are not JSON, or not valid Unicode.");
create_exception!(_engine, PolicyError, PyValueError, "The effective policy is malformed.");
create_exception!(_engine, ExportError, PyValueError, "The component has no such export.");

/// The one place where engine errors become Python exceptions.
impl From<Error> for PyErr {
    fn from(e: Error) -> PyErr {
        let text = e.to_string();
        match e {
            Error::InvalidComponent(_) => ComponentError::new_err(text),
            Error::Host(_) | Error::CallEnded => EngineError::new_err(text),
            Error::InvalidArguments(_) => ArgumentsError::new_err(text),
            Error::InvalidPolicy(_) => PolicyError::new_err(text),
            Error::UnknownExport(_) => ExportError::new_err(text),
        }
    }
}

/// A Wasmtime engine configured for sandboxed tool calls, with an optional
/// on-disk cache of compiled artifacts.
#[pyclass(frozen, module = "wassette._engine")]
struct Engine {
    core: Arc<EngineCore>,
}

#[pymethods]
impl Engine {
    /// `allocator`: "auto" (pooling where it can be reserved, else
    /// on-demand), "pooling" or "on-demand".
    /// `ca_pem`: PEM certificates guests' HTTPS requests trust besides the
    /// public roots.
    #[new]
    #[pyo3(signature = (cache_dir=None, allocator="auto", ca_pem=None))]
    fn new(cache_dir: Option<PathBuf>, allocator: &str, ca_pem: Option<&[u8]>) -> PyResult<Self> {
        let allocator = match allocator {
            "auto" => None,
            "pooling" => Some(Allocator::Pooling),
            "on-demand" => Some(Allocator::OnDemand),
            other => {
                return Err(PyValueError::new_err(format!(
                    "unknown allocator {other:?} (use auto, pooling or on-demand)"
                )));
            }
        };
        let core = EngineCore::new(cache_dir, allocator, ca_pem).map_err(|e| Error::Host(engine::error_text(&e)))?;
        Ok(Engine { core: Arc::new(core) })
    }

    /// The instance allocator in use: "pooling" or "on-demand".
    #[getter]
    fn allocator(&self) -> &'static str {
        self.core.allocator.name()
    }

    /// Whether pooled slots are reset by finding the pages a call wrote
    /// (Linux `PAGEMAP_SCAN`); not while swap is on, where that could let a
    /// swapped-out page outlive its call.
    #[getter]
    fn pagemap_scan(&self) -> bool {
        self.core.pagemap_scan
    }

    /// Identifies the engine configuration; compiled artifacts are keyed by it.
    #[getter]
    fn fingerprint(&self) -> &str {
        &self.core.fingerprint
    }

    /// Compiles a component from its bytes (or takes it from the cache).
    fn compile(&self, py: Python<'_>, wasm: &[u8]) -> PyResult<Component> {
        let core = self.core.clone();
        let compiled = py.detach(|| core.compile(wasm))?;
        Ok(Component { core: self.core.clone(), inner: Arc::new(compiled) })
    }

    /// Loads the component file at `path`. With the `sha256` recorded at
    /// install time, a cached artifact is used without reading the wasm.
    #[pyo3(signature = (path, sha256=None))]
    fn load(&self, py: Python<'_>, path: PathBuf, sha256: Option<String>) -> PyResult<Component> {
        let core = self.core.clone();
        let compiled = py.detach(|| core.load(&path, sha256.as_deref()))?;
        Ok(Component { core: self.core.clone(), inner: Arc::new(compiled) })
    }
}

/// A compiled, pre-linked component. Each call runs in a new instance.
#[pyclass(frozen, module = "wassette._engine")]
struct Component {
    core: Arc<EngineCore>,
    inner: Arc<Compiled>,
}

#[pymethods]
impl Component {
    #[getter]
    fn sha256(&self) -> &str {
        &self.inner.sha256
    }

    /// Whether the compiled artifact came from the cache.
    #[getter(from_cache)]
    fn cached(&self) -> bool {
        self.inner.from_cache
    }

    /// The callable exports as `(interface or None, function)` pairs.
    fn functions(&self) -> Vec<(Option<String>, String)> {
        self.inner.funcs.iter().map(|f| (f.interface.clone(), f.name.clone())).collect()
    }

    /// Whether the component imports `wassette:mcp/host`'s questions to
    /// the client (elicit, sample): its calls may wait for an answer, so
    /// they must run where waiting blocks nothing else.
    #[getter]
    fn asks_client(&self) -> bool {
        self.inner.asks_client
    }

    /// Functions of imported interfaces the host does not provide, as
    /// `(interface, function)` pairs: what `start`'s `links` may satisfy.
    fn imports(&self) -> Vec<(String, String)> {
        self.inner.imports.clone()
    }

    /// JSON list describing every export: interface, function, description,
    /// input_schema, output_schema, unsupported. `wasm` supplies WIT docs.
    fn describe(&self, py: Python<'_>, wasm: &[u8]) -> PyResult<String> {
        let (core, inner) = (self.core.clone(), self.inner.clone());
        let infos = py.detach(|| core.describe(&inner, wasm));
        Ok(serde_json::to_string(&infos).map_err(|e| Error::Host(e.to_string()))?)
    }

    /// A call of an export with JSON arguments under an effective policy
    /// (JSON), not run yet: `PendingCall.run_for` runs a slice of it on one
    /// thread and `finish` the rest (or all of it), on any other.
    ///
    /// `links`: what the imports of other components' interfaces are linked
    /// to, as `(interface, component id, component, its effective policy
    /// JSON)`; with no component, the last item says why the interface is
    /// not linked. Each call of a linked import runs in a new sandbox of
    /// that component, under its own policy; the callee's imports resolve
    /// against the same links.
    /// `host`: called as `host(kind, payload_json)` for each of the guest's
    /// `wassette:mcp/host` calls (progress, log, elicit, sample), on the
    /// thread running the call; for elicit and sample it returns the
    /// answer's JSON (an exception: the guest gets its message as the error).
    #[pyo3(signature = (interface, function, args_json, policy_json="{}", cancel=None, links=None, host=None))]
    #[allow(clippy::too_many_arguments)]
    fn start(
        &self,
        py: Python<'_>,
        interface: Option<&str>,
        function: &str,
        args_json: &str,
        policy_json: &str,
        cancel: Option<&CancelToken>,
        links: Option<Vec<LinkEntry>>,
        host: Option<Py<PyAny>>,
    ) -> PyResult<PendingCall> {
        let call = Call { interface, function, args_json, policy_json, cancel, links, host };
        self.pending(py, call, None)
    }

    /// An instance kept across calls (`Instance.start`), made at its first
    /// call under that call's policy.
    fn instance(slf: Py<Self>) -> Instance {
        Instance { component: slf, kept: Arc::default() }
    }
}

/// The arguments of `start`, shared by `Component` and `Instance`.
struct Call<'a> {
    interface: Option<&'a str>,
    function: &'a str,
    args_json: &'a str,
    policy_json: &'a str,
    cancel: Option<&'a CancelToken>,
    links: Option<Vec<LinkEntry>>,
    host: Option<Py<PyAny>>,
}

impl Component {
    fn pending(&self, py: Python<'_>, call: Call<'_>, keep: Option<Arc<kept::Kept>>) -> PyResult<PendingCall> {
        let Call { interface, function, args_json, policy_json, cancel, links, host } = call;
        let func = self
            .inner
            .funcs
            .iter()
            .position(|f| f.interface.as_deref() == interface && f.name == function)
            .ok_or_else(|| {
                Error::UnknownExport(match interface {
                    Some(i) => format!("{i}#{function}"),
                    None => function.to_string(),
                })
            })?;
        let policy = EffectivePolicy::parse(policy_json).map_err(Error::InvalidPolicy)?;
        let mut table = link::Links::new();
        for (name, id, component, text) in links.unwrap_or_default() {
            let target = match component {
                Some(c) => link::Target::Linked(Box::new(link::Callee {
                    policy: EffectivePolicy::parse(&text)
                        .map_err(|e| Error::InvalidPolicy(format!("linked component {id}: {e}")))?,
                    id,
                    compiled: c.get().inner.clone(),
                })),
                None => link::Target::Unlinked(text),
            };
            table.insert(name, target);
        }
        let args: serde_json::Value = py
            .detach(|| serde_json::from_str(args_json))
            .map_err(|e| Error::InvalidArguments(format!("arguments are not valid JSON: {e}")))?;
        let spec = call::CallSpec {
            core: self.core.clone(),
            compiled: self.inner.clone(),
            func,
            args,
            policy,
            cancel: cancel.map(|c| c.inner.clone()),
            links: table,
            mcp: host.map(python_callback),
            keep,
        };
        Ok(PendingCall { inner: Mutex::new(call::Pending::new(spec)) })
    }
}

/// One instance of a component kept across calls: its memory (what the
/// guest keeps in globals) lives from one call to the next. One call at a
/// time runs in it; a call that ends any other way than with a returned
/// value discards it, and the next call starts a new one.
///
/// The sandbox is built from the policy of the call that made the instance;
/// later calls bring their own deadline, CPU and egress budgets. Whoever
/// keeps instances makes a new one when the policy changes.
#[pyclass(frozen, module = "wassette._engine")]
struct Instance {
    component: Py<Component>,
    kept: Arc<kept::Kept>,
}

#[pymethods]
impl Instance {
    /// Like `Component.start`, in this instance.
    #[pyo3(signature = (interface, function, args_json, policy_json="{}", cancel=None, links=None, host=None))]
    #[allow(clippy::too_many_arguments)]
    fn start(
        &self,
        py: Python<'_>,
        interface: Option<&str>,
        function: &str,
        args_json: &str,
        policy_json: &str,
        cancel: Option<&CancelToken>,
        links: Option<Vec<LinkEntry>>,
        host: Option<Py<PyAny>>,
    ) -> PyResult<PendingCall> {
        let call = Call { interface, function, args_json, policy_json, cancel, links, host };
        self.component.get().pending(py, call, Some(self.kept.clone()))
    }

    /// Whether an instance is alive (made by a call, not discarded since).
    #[getter]
    fn live(&self) -> bool {
        self.kept.live()
    }

    /// Frees the instance (when its running call ends, if one runs); calls
    /// after this fail.
    fn close(&self, py: Python<'_>) {
        py.detach(|| self.kept.close());
    }
}

/// A Python callable as the engine's `wassette:mcp/host` callback.
fn python_callback(f: Py<PyAny>) -> crate::gates::mcp::Callback {
    std::sync::Arc::new(move |kind: &str, payload: &str| {
        Python::attach(|py| match f.call1(py, (kind, payload)) {
            Ok(answer) if answer.is_none(py) => Ok(None),
            Ok(answer) => answer.extract::<String>(py).map(Some).map_err(|e| e.to_string()),
            Err(e) => Err(e.value(py).to_string()),
        })
    })
}

/// One entry of `Component.start`'s `links`: (interface, component id,
/// component or None, its effective policy JSON or why it is not linked).
type LinkEntry = (String, String, Option<Py<Component>>, String);

/// A call started by `Component.start`, run a slice at a time.
#[pyclass(frozen, module = "wassette._engine")]
struct PendingCall {
    inner: Mutex<call::Pending>,
}

#[pymethods]
impl PendingCall {
    /// Runs the call for up to `budget_ms` on this thread (a computing guest
    /// is seen at its next epoch tick, every 10 ms); its outcome if it ended,
    /// else None, and it can go on, here or on another thread.
    fn run_for(&self, py: Python<'_>, budget_ms: u64) -> PyResult<Option<CallOutcome>> {
        // Locked without the GIL: a thread holding it may wait for the GIL.
        let outcome = py.detach(|| self.pending().map(|mut p| p.run_for(Duration::from_millis(budget_ms))))?;
        Ok(outcome.map(|o| CallOutcome::from_outcome(py, o)))
    }

    /// Runs the call to its end.
    fn finish(&self, py: Python<'_>) -> PyResult<CallOutcome> {
        let outcome = py.detach(|| self.pending().map(|mut p| p.finish()))?;
        let outcome = outcome.ok_or(Error::CallEnded)?;
        Ok(CallOutcome::from_outcome(py, outcome))
    }
}

impl PendingCall {
    fn pending(&self) -> PyResult<std::sync::MutexGuard<'_, call::Pending>> {
        self.inner.lock().map_err(|_| PyErr::from(Error::Host("the call failed".into())))
    }
}

/// Stops a running call when cancelled (from any thread).
#[pyclass(frozen, module = "wassette._engine")]
struct CancelToken {
    inner: Arc<stop::Cancel>,
}

#[pymethods]
impl CancelToken {
    #[new]
    fn new() -> Self {
        CancelToken { inner: Arc::default() }
    }

    fn cancel(&self) {
        self.inner.cancel();
    }

    #[getter]
    fn cancelled(&self) -> bool {
        self.inner.is_cancelled()
    }
}

/// Like a `StrEnum`: a status is equal to (and hashes as) its word.
#[pymethods]
impl CallStatus {
    /// The status as one word (`ok`, `cpu_limit`, ...).
    #[getter]
    fn value(&self) -> &'static str {
        self.as_str()
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        if let Ok(status) = other.cast::<CallStatus>() {
            return *status.get() == *self;
        }
        other.extract::<String>().is_ok_and(|word| word == self.as_str())
    }

    fn __hash__(&self, py: Python<'_>) -> PyResult<isize> {
        pyo3::types::PyString::new(py, self.as_str()).hash()
    }

    fn __str__(&self) -> &'static str {
        self.as_str()
    }

    fn __repr__(&self) -> String {
        format!("CallStatus.{}", self.as_str().to_uppercase())
    }
}

/// How a call ended.
#[pyclass(frozen, get_all, module = "wassette._engine")]
struct CallOutcome {
    status: CallStatus,
    /// The returned value as JSON text, when the function returned.
    value_json: Option<String>,
    error: Option<String>,
    detail: Option<String>,
    stdout: Py<PyBytes>,
    stderr: Py<PyBytes>,
    stdout_dropped: u64,
    stderr_dropped: u64,
    /// JSON list of refused accesses: {kind, resource, resolved, access, reason, rule}.
    denials_json: String,
    /// JSON list of allowed accesses that failed: {kind, resource, access, reason}.
    failures_json: String,
    /// JSON list of where allowed network accesses went:
    /// {transport, host, port, connections, sent, received} (bytes: null for raw sockets).
    egress_json: String,
    /// JSON list of paths the storage gate let the guest reach: {kind, resource, access: [...]}.
    accesses_json: String,
    /// The instance's linear memory at the end of the call (its peak), bytes.
    memory_bytes: u64,
    duration_ms: f64,
    /// JSON list of the calls of linked imports: {component (the callee's
    /// id), interface, function, depth, status, error, denials, failures,
    /// egress, accesses, memory_bytes, duration_ms}.
    linked_json: String,
    /// JSON of the egress budget the call exceeded (status QUOTA_EXCEEDED):
    /// {limit (the policy field), value, per, counts, message}; else None.
    quota_json: Option<String>,
}

impl CallOutcome {
    fn from_outcome(py: Python<'_>, o: call::Outcome) -> Self {
        CallOutcome {
            status: o.status,
            value_json: o.value.map(|v| v.to_string()),
            error: o.error,
            detail: o.detail,
            stdout: PyBytes::new(py, &o.stdout).unbind(),
            stderr: PyBytes::new(py, &o.stderr).unbind(),
            stdout_dropped: o.stdout_dropped,
            stderr_dropped: o.stderr_dropped,
            denials_json: serde_json::to_string(&o.denials).unwrap_or_else(|_| "[]".into()),
            failures_json: serde_json::to_string(&o.failures).unwrap_or_else(|_| "[]".into()),
            egress_json: serde_json::to_string(&o.egress).unwrap_or_else(|_| "[]".into()),
            accesses_json: serde_json::to_string(&o.accesses).unwrap_or_else(|_| "[]".into()),
            memory_bytes: o.memory_bytes,
            duration_ms: o.duration.as_secs_f64() * 1000.0,
            linked_json: serde_json::to_string(&o.linked).unwrap_or_else(|_| "[]".into()),
            quota_json: o.quota.and_then(|q| serde_json::to_string(&q).ok()),
        }
    }
}

#[pymodule]
fn _engine(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Engine>()?;
    m.add_class::<Component>()?;
    m.add_class::<Instance>()?;
    m.add_class::<CancelToken>()?;
    m.add_class::<CallOutcome>()?;
    m.add_class::<PendingCall>()?;
    m.add_class::<CallStatus>()?;
    m.add("ComponentError", m.py().get_type::<ComponentError>())?;
    m.add("EngineError", m.py().get_type::<EngineError>())?;
    m.add("ArgumentsError", m.py().get_type::<ArgumentsError>())?;
    m.add("PolicyError", m.py().get_type::<PolicyError>())?;
    m.add("ExportError", m.py().get_type::<ExportError>())?;
    // The limits a call gets when its policy sets none: defined here only.
    m.add("DEFAULT_MEMORY_LIMIT_BYTES", policy::DEFAULT_MEMORY_LIMIT)?;
    m.add("DEFAULT_TIMEOUT_MS", policy::DEFAULT_TIMEOUT_MS)?;
    m.add("DEFAULT_OUTPUT_LIMIT_BYTES", policy::DEFAULT_OUTPUT_LIMIT)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
