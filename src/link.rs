//! Dynamic composition: a component's import of an interface that another
//! loaded component exports.
//!
//! The runtime says, per call, which component satisfies each imported
//! interface (`Links`), with that component's own effective policy and id.
//! Every call of such an import runs the callee in a new store with a new
//! sandbox built from the callee's policy: its own gates, memory limit,
//! timeout, CPU budget and record. Only values cross (copied by the host, as
//! between two tool calls); no memory, no handles, no grants. What the
//! callee's gates saw comes back with the caller's outcome, tagged with the
//! callee's id (`Linked`), so it is audited under the callee's name.
//!
//! The caller's deadline, CPU budget and cancellation stop the whole chain;
//! chains are at most `MAX_DEPTH` linked calls deep, so a cycle of imports
//! (A -> B -> A) ends with an error instead of exhausting the host.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use wasmtime::component::Val;
use wasmtime::{Store, StoreContextMut};

use crate::call::{CallStatus, classify};
use crate::engine::{Compiled, EngineCore};
use crate::gates::{Access, Denial, Egress, Failure, Record};
use crate::policy::EffectivePolicy;
use crate::sandbox::Host;
use crate::stop::{Cancel, CpuClock, Interrupted, Stop, interrupt_if, overdue};
use crate::values::val_to_json;

/// How many linked calls may be nested inside one tool call.
pub const MAX_DEPTH: usize = 8;

/// Linked calls reported per tool call; a guest calling an import in a loop
/// costs itself time, not the host memory.
const MAX_LINKED: usize = 256;

/// What one imported interface is linked to, for one call.
pub enum Target {
    Linked(Box<Callee>),
    /// Not linked, and why (e.g. several components export it).
    Unlinked(String),
}

/// A loaded component that satisfies an import, as the runtime handed it over.
pub struct Callee {
    pub id: String,
    pub compiled: Arc<Compiled>,
    pub policy: EffectivePolicy,
}

/// Imported interface name (with its version) -> what satisfies it.
pub type Links = HashMap<String, Target>;

/// One linked call, reported with the caller's outcome.
#[derive(Serialize)]
pub struct Linked {
    /// The callee's id: its denials are its own.
    pub component: String,
    pub interface: String,
    pub function: String,
    /// 1 for an import of the tool's component, 2 for an import of that
    /// callee, and so on.
    pub depth: usize,
    pub status: &'static str,
    pub error: Option<String>,
    pub denials: Vec<Denial>,
    pub failures: Vec<Failure>,
    pub egress: Vec<Egress>,
    pub accesses: Vec<Access>,
    pub memory_bytes: u64,
    pub duration_ms: f64,
    /// The egress budget of the callee's own policy it exceeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota: Option<crate::gates::quota::QuotaHit>,
}

/// What the stores of one tool call share: the links, and what stops the
/// call as a whole (the tool call's own cancel token, deadline, CPU budget).
pub struct Chain {
    pub core: Arc<EngineCore>,
    pub links: Links,
    pub cancel: Option<Arc<Cancel>>,
    pub deadline: Instant,
    pub cpu_budget: Option<Duration>,
    pub clock: Arc<CpuClock>,
    /// The tool call's stop: set by a callee that stops for the whole call,
    /// so the tool call is reported as timed out or cancelled, not crashed.
    pub stop: Arc<Mutex<Option<Stop>>>,
    pub records: Mutex<Vec<Linked>>,
}

impl Chain {
    /// Whether the whole call must stop now, and why.
    fn stopped(&self) -> Option<Stop> {
        if self.cancel.as_ref().is_some_and(|c| c.is_cancelled()) {
            Some(Stop::Cancelled)
        } else if Instant::now() >= self.deadline {
            Some(Stop::Deadline)
        } else if self.cpu_budget.is_some_and(|b| self.clock.used() >= b) {
            Some(Stop::CpuTime)
        } else {
            None
        }
    }

    pub fn take_records(&self) -> Vec<Linked> {
        std::mem::take(&mut *self.records.lock().unwrap())
    }
}

/// Why a linked import failed, in words: carried unchanged up the chain, so
/// the tool call says what went wrong where, not a trap per level.
#[derive(Debug, Clone)]
pub struct LinkFailure(pub String);

impl std::fmt::Display for LinkFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LinkFailure {}

fn fail<T>(message: String) -> wasmtime::Result<T> {
    Err(wasmtime::Error::new(LinkFailure(message)))
}

/// Where in a chain a store is: what its imports resolve against.
#[derive(Clone)]
pub struct Scope {
    pub chain: Arc<Chain>,
    /// Linked calls this store is nested in (0: the tool call itself).
    pub depth: usize,
}

/// A guest called `interface#function`, an import the host does not provide:
/// runs it in the component linked to `interface`, or fails the call with
/// why it cannot be.
pub async fn call_import(
    store: StoreContextMut<'_, Host>,
    interface: &str,
    function: &str,
    resources: bool,
    params: &[Val],
    results: &mut [Val],
) -> wasmtime::Result<()> {
    let what = format!("{interface}#{function}");
    let scope = store.data().links.clone();
    let target = scope.as_ref().and_then(|s| s.chain.links.get(interface));
    let (scope, callee) = match (scope.as_ref(), target) {
        (Some(scope), Some(Target::Linked(callee))) => (scope, callee),
        (_, Some(Target::Unlinked(why))) => {
            return fail(format!("the component called `{what}`, but `{interface}` is not linked: {why}"));
        }
        _ => {
            return fail(format!(
                "the component called `{what}`, which this host does not provide, and no loaded component \
                 exports `{interface}`"
            ));
        }
    };
    if resources {
        return fail(format!(
            "the component called `{what}`, which passes resource handles: those cannot cross from one \
             sandbox to another (compose the two statically instead)"
        ));
    }
    if scope.depth >= MAX_DEPTH {
        return fail(format!(
            "the component called `{what}` (component `{}`), but linked calls are already {MAX_DEPTH} deep: \
             a cycle of imports, or a chain too long",
            callee.id
        ));
    }
    let values = run_linked(scope, callee, interface, function, params).await?;
    if values.len() != results.len() {
        return fail(format!(
            "`{}` exports `{what}` with {} results, the caller expects {}",
            callee.id,
            values.len(),
            results.len()
        ));
    }
    for (slot, value) in results.iter_mut().zip(values) {
        *slot = value;
    }
    Ok(())
}

/// One call of `callee`'s export in a store and sandbox of its own.
async fn run_linked(
    scope: &Scope,
    callee: &Callee,
    interface: &str,
    function: &str,
    params: &[Val],
) -> wasmtime::Result<Vec<Val>> {
    let chain = &scope.chain;
    let Some(func) =
        callee.compiled.funcs.iter().find(|f| f.interface.as_deref() == Some(interface) && f.name == function)
    else {
        return fail(format!("`{}` exports `{interface}` but has no function `{function}`", callee.id));
    };
    let start = Instant::now();
    let policy = &callee.policy;
    let mut host = match Host::new(policy, chain.core.tls.clone()) {
        Ok(h) => h,
        Err(e) => return fail(format!("the sandbox of `{}` could not be set up: {e}", callee.id)),
    };
    host.links = Some(Scope { chain: chain.clone(), depth: scope.depth + 1 });
    let mut report = Report {
        chain,
        record: host.record.clone(),
        start,
        linked: Some(Linked {
            component: callee.id.clone(),
            interface: interface.to_string(),
            function: function.to_string(),
            depth: scope.depth + 1,
            status: CallStatus::Ok.as_str(),
            error: None,
            denials: Vec::new(),
            failures: Vec::new(),
            egress: Vec::new(),
            accesses: Vec::new(),
            memory_bytes: 0,
            duration_ms: 0.0,
            quota: None,
        }),
    };
    let quota = host.net.quota.clone();
    let mut store = Store::new(&chain.core.engine, host);
    store.limiter(|h| &mut h.limiter);

    // The callee's own limits, within what is left of the tool call's.
    let timeout = Duration::from_millis(policy.timeout_ms());
    let deadline = (start + timeout).min(chain.deadline);
    let cpu_budget = policy.cpu_time_ms.map(Duration::from_millis);
    let cpu_start = chain.clock.used();
    let own_stop: Arc<Mutex<Option<Stop>>> = Arc::default();
    {
        let (chain, own_stop, quota) = (chain.clone(), own_stop.clone(), quota.clone());
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if quota.hit().is_some() {
                return Err(wasmtime::Error::new(Interrupted));
            }
            if let Some(why) = chain.stopped() {
                chain.stop.lock().unwrap().get_or_insert(why);
                return Err(wasmtime::Error::new(Interrupted));
            }
            let cpu = cpu_budget.map(|b| (chain.clock.used().saturating_sub(cpu_start), b));
            interrupt_if(overdue(deadline, cpu), &own_stop)
        });
    }

    let run = async {
        let instance = callee.compiled.pre.instantiate_async(&mut store).await?;
        let f = instance
            .get_func(&mut store, func.index)
            .ok_or_else(|| wasmtime::format_err!("export {} not found", func.name))?;
        let mut results = vec![Val::Bool(false); usize::from(func.result.is_some())];
        f.call_async(&mut store, params, &mut results).await?;
        Ok::<_, wasmtime::Error>(results)
    };
    // The tool call's deadline and cancellation drop this future from the
    // outside (see `call::run`); only the callee's own deadline is ours.
    let result = tokio::select! {
        r = run => r,
        _ = tokio::time::sleep_until(deadline.into()) => {
            let mine = if deadline < chain.deadline { &own_stop } else { &chain.stop };
            mine.lock().unwrap().get_or_insert(Stop::Deadline);
            Err(wasmtime::Error::new(Interrupted))
        }
        _ = quota.wait() => Err(wasmtime::Error::new(Interrupted)),
    };

    let mut linked = report.linked.take().expect("reported once");
    linked.memory_bytes = store.data().limiter.memory_used;
    let outcome = match result {
        Ok(values) => {
            if let Some(Val::Result(Err(payload))) = values.first() {
                linked.status = CallStatus::Err.as_str();
                linked.error = payload.as_deref().map(|v| match val_to_json(v) {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                });
            }
            Ok(values)
        }
        Err(e) => {
            let whole = *chain.stop.lock().unwrap();
            let stopped = whole.or(*own_stop.lock().unwrap());
            let memory_denied = store.data().limiter.memory_denied;
            let (status, message) = classify(&e, stopped, memory_denied, policy, timeout, cpu_budget);
            linked.status = status.as_str();
            linked.error = Some(message.clone());
            if whole.is_some() {
                // The tool call itself is over; its own outcome says why.
                Err(wasmtime::Error::new(Interrupted))
            } else if let Some(deeper) = e.downcast_ref::<LinkFailure>() {
                // Failed further down the chain: that is the news.
                Err(wasmtime::Error::new(deeper.clone()))
            } else {
                fail(format!("the linked component `{}` ({interface}#{function}): {message}", callee.id))
            }
        }
    };
    // Over its own egress budget: the callee was stopped, and that fails
    // the call of the import (unless the whole tool call is over anyway).
    let outcome = if let Some(hit) = quota.hit()
        && chain.stop.lock().unwrap().is_none()
    {
        linked.status = CallStatus::QuotaExceeded.as_str();
        linked.error = Some(hit.message.clone());
        linked.quota = Some(hit.clone());
        fail(format!("the linked component `{}` ({interface}#{function}): {}", callee.id, hit.message))
    } else {
        outcome
    };
    report.finish(linked);
    outcome
}

/// Reports one linked call with what the callee's gates saw, also when the
/// call is dropped unfinished (the tool call was cancelled or ran out of
/// time while the callee waited in a host call): its denials until then
/// are still audited under its id.
struct Report<'a> {
    chain: &'a Chain,
    record: Record,
    start: Instant,
    linked: Option<Linked>,
}

impl Report<'_> {
    fn finish(&self, mut linked: Linked) {
        let events = self.record.take();
        linked.denials = events.denials;
        linked.failures = events.failures;
        linked.egress = events.egress;
        linked.accesses = events.accesses;
        linked.duration_ms = self.start.elapsed().as_secs_f64() * 1000.0;
        let mut records = self.chain.records.lock().unwrap();
        if records.len() < MAX_LINKED {
            records.push(linked);
        }
    }
}

impl Drop for Report<'_> {
    fn drop(&mut self) {
        if let Some(mut linked) = self.linked.take() {
            // The caller's own deadline timer may drop this call before it
            // records why: then the chain's state says (a race of two timers
            // set to the same instant otherwise reported "cancelled").
            let stop = *self.chain.stop.lock().unwrap();
            let status = match stop.or_else(|| self.chain.stopped()) {
                Some(Stop::Deadline) => CallStatus::Timeout,
                Some(Stop::CpuTime) => CallStatus::CpuLimit,
                _ => CallStatus::Cancelled,
            };
            linked.status = status.as_str();
            linked.error = Some("stopped with the tool call".into());
            self.finish(linked);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_whole_chain_stops_on_cancel_and_deadline() {
        let core = Arc::new(EngineCore::new(None, Some(crate::engine::Allocator::OnDemand), None).unwrap());
        let chain = |deadline: Instant, cancel: Option<Arc<Cancel>>| Chain {
            core: core.clone(),
            links: Links::new(),
            cancel,
            deadline,
            cpu_budget: None,
            clock: Arc::default(),
            stop: Arc::default(),
            records: Mutex::default(),
        };
        let later = Instant::now() + Duration::from_secs(60);
        assert_eq!(chain(later, None).stopped(), None);
        assert_eq!(chain(Instant::now(), None).stopped(), Some(Stop::Deadline));
        let cancel = Arc::new(Cancel::default());
        let c = chain(later, Some(cancel.clone()));
        cancel.cancel();
        assert_eq!(c.stopped(), Some(Stop::Cancelled));
    }
}
