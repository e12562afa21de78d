//! One tool call: a fresh store from the pre-instantiated component, the
//! sandbox built from the effective policy, a deadline, an optional CPU-time
//! budget and cancellation. Every way a call can end is an `Outcome`.
//!
//! Or a call of a kept instance (`Kept`): the store and instance of the
//! instance's earlier calls, with its memory; the per-call parts (deadline,
//! CPU budget, egress budgets, captures, the host callback) are new.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use wasmtime::component::Val;
use wasmtime::{Store, Trap, WasmBacktrace};

use crate::engine::{Compiled, EngineCore, error_text, runtime};
use crate::gates::quota::QuotaHit;
use crate::gates::{Access, Denial, Egress, Failure};
use crate::kept::{Kept, Live, Turn};
use crate::link::{Chain, Linked, Links, Scope};
use crate::policy::EffectivePolicy;
use crate::policy::RESULT_LIMIT;
use crate::sandbox::Host;
use crate::stop::{Cancel, CpuClock, Interrupted, Stop, interrupt_if, overdue};
use crate::values::{args_to_vals, json_size, val_to_json};

/// How a call ended.
#[pyo3::pyclass(frozen, module = "wassette._engine")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallStatus {
    /// The function returned (a WIT `result` returned `ok`).
    #[pyo3(name = "OK")]
    Ok,
    /// The WIT `result` was `err`.
    #[pyo3(name = "ERR")]
    Err,
    /// The arguments do not fit the function's parameters.
    #[pyo3(name = "INVALID_ARGUMENTS")]
    InvalidArguments,
    /// The guest trapped (or failed in a host call).
    #[pyo3(name = "TRAP")]
    Trap,
    /// The wall-clock limit was reached.
    #[pyo3(name = "TIMEOUT")]
    Timeout,
    /// The CPU-time budget was used up.
    #[pyo3(name = "CPU_LIMIT")]
    CpuLimit,
    /// The guest asked for more memory than its limit.
    #[pyo3(name = "OUT_OF_MEMORY")]
    OutOfMemory,
    /// The call was cancelled.
    #[pyo3(name = "CANCELLED")]
    Cancelled,
    /// The guest called `exit`.
    #[pyo3(name = "EXIT")]
    Exit,
    /// The sandbox could not be set up from the policy.
    #[pyo3(name = "SANDBOX_ERROR")]
    SandboxError,
    /// The call's network egress went over one of its budgets
    /// (`gates::quota`): stopped.
    #[pyo3(name = "QUOTA_EXCEEDED")]
    QuotaExceeded,
}

impl CallStatus {
    /// The status as one word, for logs, audit records and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Ok => "ok",
            CallStatus::Err => "err",
            CallStatus::InvalidArguments => "invalid_arguments",
            CallStatus::Trap => "trap",
            CallStatus::Timeout => "timeout",
            CallStatus::CpuLimit => "cpu_limit",
            CallStatus::OutOfMemory => "out_of_memory",
            CallStatus::Cancelled => "cancelled",
            CallStatus::Exit => "exit",
            CallStatus::SandboxError => "sandbox_error",
            CallStatus::QuotaExceeded => "quota_exceeded",
        }
    }
}

/// How a call ended.
pub struct Outcome {
    pub status: CallStatus,
    /// The returned value as JSON, when the function returned.
    pub value: Option<Value>,
    pub error: Option<String>,
    /// Extra detail for errors, e.g. the wasm backtrace of a trap.
    pub detail: Option<String>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub stdout_dropped: u64,
    pub stderr_dropped: u64,
    pub denials: Vec<Denial>,
    pub failures: Vec<Failure>,
    pub egress: Vec<Egress>,
    pub accesses: Vec<Access>,
    /// The instance's linear memory at the end (its peak: memory only grows).
    pub memory_bytes: u64,
    pub duration: Duration,
    /// The calls of imports linked to other components, each with the
    /// callee's id and what its own gates saw.
    pub linked: Vec<Linked>,
    /// The egress budget the call exceeded (status `QuotaExceeded`).
    pub quota: Option<QuotaHit>,
}

impl Outcome {
    fn failed(status: CallStatus, error: String, start: Instant) -> Self {
        Outcome {
            status,
            value: None,
            error: Some(error),
            detail: None,
            stdout: Vec::new(),
            stderr: Vec::new(),
            stdout_dropped: 0,
            stderr_dropped: 0,
            denials: Vec::new(),
            failures: Vec::new(),
            egress: Vec::new(),
            accesses: Vec::new(),
            memory_bytes: 0,
            duration: start.elapsed(),
            linked: Vec::new(),
            quota: None,
        }
    }
}

/// What a call needs, owned, so that the call can run as a `Send` future
/// and move between threads (see `Pending`).
pub struct CallSpec {
    pub core: Arc<EngineCore>,
    pub compiled: Arc<Compiled>,
    pub func: usize,
    pub args: Value,
    pub policy: EffectivePolicy,
    pub cancel: Option<Arc<Cancel>>,
    /// What the component's imports of other components' interfaces are
    /// linked to (empty: none are).
    pub links: Links,
    /// Where the guest's `wassette:mcp/host` calls go (None: nowhere).
    pub mcp: Option<crate::gates::mcp::Callback>,
    /// The kept instance the call runs in (None: a fresh one).
    pub keep: Option<Arc<Kept>>,
}

/// A call that may be run a slice at a time: started on one thread, and if
/// it has not ended when the slice is over, finished on another.
pub struct Pending {
    future: Option<Pin<Box<dyn Future<Output = Outcome> + Send>>>,
    clock: Arc<CpuClock>,
}

impl Pending {
    pub fn new(spec: CallSpec) -> Self {
        let clock = Arc::new(CpuClock::default());
        Pending { future: Some(Box::pin(run(spec, clock.clone()))), clock }
    }

    /// Runs the call for up to `budget` (a computing guest is seen at its
    /// next epoch tick); its outcome if it ended. None also once finished.
    pub fn run_for(&mut self, budget: Duration) -> Option<Outcome> {
        let future = self.future.as_mut()?;
        let outcome = self
            .clock
            .segment(|| runtime().block_on(async { tokio::time::timeout(budget, future.as_mut()).await.ok() }));
        if outcome.is_some() {
            self.future = None;
        }
        outcome
    }

    /// Runs the call to its end; None if it had ended already.
    pub fn finish(&mut self) -> Option<Outcome> {
        let future = self.future.take()?;
        Some(self.clock.segment(|| runtime().block_on(future)))
    }
}

async fn run(spec: CallSpec, clock: Arc<CpuClock>) -> Outcome {
    let CallSpec { core, compiled, func, args, policy, cancel, links, mcp, keep } = spec;
    let func = &compiled.funcs[func];
    let start = Instant::now();
    let vals = match args_to_vals(&func.params, &args) {
        Ok(v) => v,
        Err(e) => return Outcome::failed(CallStatus::InvalidArguments, e.to_string(), start),
    };
    let timeout = Duration::from_millis(policy.timeout_ms());
    let deadline = start + timeout;
    let cpu_budget = policy.cpu_time_ms.map(Duration::from_millis);

    // A kept instance: wait for its previous call to end, within this one's
    // deadline and cancellation.
    let (turn, live) = match &keep {
        None => (Turn(None), None),
        Some(kept) => {
            let cancelled = async {
                match &cancel {
                    Some(c) => c.wait().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                got = kept.acquire() => match got {
                    Ok(got) => got,
                    Err(e) => return Outcome::failed(CallStatus::SandboxError, e, start),
                },
                _ = tokio::time::sleep_until(deadline.into()) => {
                    let why = format!(
                        "the call exceeded its time limit of {} ms waiting for the instance's previous call to end",
                        timeout.as_millis()
                    );
                    return Outcome::failed(CallStatus::Timeout, why, start);
                }
                _ = cancelled => return Outcome::failed(CallStatus::Cancelled, "the call was cancelled".into(), start),
            }
        }
    };
    let (mut store, mut instance) = match live {
        Some(live) => {
            let Live { mut store, instance } = *live;
            let host = store.data_mut();
            host.net.quota.renew(&policy.egress_limits);
            host.limiter.memory_denied = false;
            host.mcp = Default::default();
            host.links = None;
            (store, Some(instance))
        }
        None => match Host::new(&policy, core.tls.clone()) {
            Ok(host) => {
                let mut store = Store::new(&core.engine, host);
                store.limiter(|h| &mut h.limiter);
                (store, None)
            }
            Err(e) => return Outcome::failed(CallStatus::SandboxError, error_text(&e), start),
        },
    };
    let host = store.data_mut();
    host.mcp.callback = mcp;
    let (stdout, stderr, record) = (host.stdout.clone(), host.stderr.clone(), host.record.clone());
    let quota = host.net.quota.clone();

    let stop: Arc<Mutex<Option<Stop>>> = Arc::default();
    let chain = (!links.is_empty()).then(|| {
        let chain = Arc::new(Chain {
            core: core.clone(),
            links,
            cancel: cancel.clone(),
            deadline,
            cpu_budget,
            clock: clock.clone(),
            stop: stop.clone(),
            records: Mutex::default(),
        });
        store.data_mut().links = Some(Scope { chain: chain.clone(), depth: 0 });
        chain
    });

    {
        let stop = stop.clone();
        let cancel = cancel.clone();
        let quota = quota.clone();
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if quota.hit().is_some() {
                // The outcome says which budget (below).
                return Err(wasmtime::Error::new(Interrupted));
            }
            let why = if cancel.as_ref().is_some_and(|c| c.is_cancelled()) {
                Some(Stop::Cancelled)
            } else {
                overdue(deadline, cpu_budget.map(|b| (clock.used(), b)))
            };
            interrupt_if(why, &stop)
        });
    }

    let _active = core.active();
    let made = &mut instance;
    let result: Result<Option<Val>, wasmtime::Error> = async {
        let run = async {
            let instance = match *made {
                Some(i) => i,
                None => {
                    let i = compiled.pre.instantiate_async(&mut store).await?;
                    *made = Some(i);
                    i
                }
            };
            let f = instance
                .get_func(&mut store, func.index)
                .ok_or_else(|| wasmtime::format_err!("export {} not found", func.name))?;
            let mut results = vec![Val::Bool(false); usize::from(func.result.is_some())];
            f.call_async(&mut store, &vals, &mut results).await?;
            Ok(results.pop())
        };
        let cancelled = async {
            match &cancel {
                Some(c) => c.wait().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = run => r,
            // A guest blocked in a host call (a sleep, a slow socket) never
            // reaches an epoch check; dropping its future stops it.
            _ = tokio::time::sleep_until(deadline.into()) => {
                stop.lock().unwrap().get_or_insert(Stop::Deadline);
                Err(wasmtime::Error::new(Interrupted))
            }
            _ = cancelled => {
                stop.lock().unwrap().get_or_insert(Stop::Cancelled);
                Err(wasmtime::Error::new(Interrupted))
            }
            // Over an egress budget while blocked in a host call.
            _ = quota.wait() => Err(wasmtime::Error::new(Interrupted)),
        }
    }
    .await;

    let (out, out_dropped) = stdout.take();
    let (err, err_dropped) = stderr.take();
    let events = record.take();
    let mut outcome = Outcome {
        status: CallStatus::Ok,
        value: None,
        error: None,
        detail: None,
        stdout: out,
        stderr: err,
        stdout_dropped: out_dropped,
        stderr_dropped: err_dropped,
        denials: events.denials,
        failures: events.failures,
        egress: events.egress,
        accesses: events.accesses,
        memory_bytes: store.data().limiter.memory_used,
        duration: Duration::ZERO,
        linked: chain.map(|c| c.take_records()).unwrap_or_default(),
        quota: None,
    };
    match result {
        Ok(value) => {
            if let Some(Val::Result(Err(payload))) = &value {
                outcome.status = CallStatus::Err;
                outcome.error = Some(match payload.as_deref().map(val_to_json) {
                    Some(Value::String(s)) => s,
                    Some(v) => v.to_string(),
                    None => "the function returned an error with no value".into(),
                });
            }
            match value.as_ref().map(json_size) {
                Some(size) if size > RESULT_LIMIT => {
                    outcome.status = CallStatus::SandboxError;
                    outcome.error = Some(format!(
                        "the result is about {size} bytes of JSON, over the limit of {RESULT_LIMIT} bytes"
                    ));
                }
                _ => outcome.value = value.as_ref().map(val_to_json),
            }
        }
        Err(e) => {
            let stopped = *stop.lock().unwrap();
            let memory_denied = store.data().limiter.memory_denied;
            let (status, message) = classify(&e, stopped, memory_denied, &policy, timeout, cpu_budget);
            outcome.status = status;
            outcome.error = Some(message);
            outcome.detail = e.downcast_ref::<WasmBacktrace>().map(|bt| bt.to_string());
        }
    }
    // Over an egress budget is how the call ended, whatever the guest did
    // with the error it got (it may have caught it and returned).
    if let Some(hit) = quota.hit() {
        outcome.status = CallStatus::QuotaExceeded;
        outcome.error = Some(hit.message.clone());
        outcome.value = None;
        outcome.detail = None;
        outcome.quota = Some(hit.clone());
    }
    // Only a call that ended with a returned value leaves the instance
    // whole; a kept one is given back then, else discarded.
    let whole = matches!(outcome.status, CallStatus::Ok | CallStatus::Err);
    turn.end(match instance {
        Some(instance) if whole && keep.is_some() => Some(Box::new(Live { store, instance })),
        _ => None,
    });
    outcome.duration = start.elapsed();
    outcome
}

pub(crate) fn classify(
    e: &wasmtime::Error,
    stopped: Option<Stop>,
    memory_denied: bool,
    policy: &EffectivePolicy,
    timeout: Duration,
    cpu_budget: Option<Duration>,
) -> (CallStatus, String) {
    match stopped {
        Some(Stop::Deadline) => {
            return (
                CallStatus::Timeout,
                format!("the call exceeded its time limit of {} ms and was stopped", timeout.as_millis()),
            );
        }
        Some(Stop::Cancelled) => return (CallStatus::Cancelled, "the call was cancelled".into()),
        Some(Stop::CpuTime) => {
            let ms = cpu_budget.map(|b| b.as_millis()).unwrap_or_default();
            return (
                CallStatus::CpuLimit,
                format!("the call used more than its CPU-time budget of {ms} ms and was stopped"),
            );
        }
        None => {}
    }
    if let Some(exit) = e.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return (CallStatus::Exit, format!("the component exited with status {}", exit.0));
    }
    if memory_denied {
        let mib = policy.memory_limit() as f64 / (1024.0 * 1024.0);
        return (
            CallStatus::OutOfMemory,
            format!("the component tried to use more than its memory limit of {mib:.0} MiB and failed"),
        );
    }
    if let Some(failure) = e.downcast_ref::<crate::link::LinkFailure>() {
        return (CallStatus::Trap, failure.0.clone());
    }
    if let Some(trap) = e.downcast_ref::<Trap>() {
        return (CallStatus::Trap, format!("the component trapped: {trap}"));
    }
    (CallStatus::Trap, format!("the component failed: {}", error_text(e)))
}
