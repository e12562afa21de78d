//! The gates: every place where a guest's access to the host is decided,
//! after Wasmtime's own `crates/wasi` model: a protocol-neutral rules core
//! per resource (`fs::rules`, `net::rules`, pure and unit-tested) and thin
//! bindings per WASI interface that consult it.
//!
//! What the gates decide is recorded in one place, the `Record` of the call:
//! denials (an access the policy refuses) and failures (an access the policy
//! allows that failed: a name that does not resolve, a refused connection).
//! A failure is never reported as a denial.

pub mod config;
pub mod fs;
pub mod net;

use std::sync::{Arc, Mutex};

use serde::Serialize;

/// One access the sandbox refused, reported back with the call's outcome.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Denial {
    /// `storage`, `network`, ...
    pub kind: &'static str,
    /// What was asked for: a path (as the guest named it), a URL, an address.
    pub resource: String,
    /// Where the path really leads, when a symlink or `..` took it elsewhere.
    pub resolved: Option<String>,
    /// The access wanted: read, write or see (stat, list) for storage;
    /// http, tcp connect, udp send, name lookup, bind or listen for network.
    pub access: String,
    /// Why it was refused, in words.
    pub reason: String,
    /// The policy rule that decided (its origin), when one did.
    pub rule: Option<String>,
}

/// An allowed access that failed, reported back with the call's outcome.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Failure {
    pub kind: &'static str,
    pub resource: String,
    /// http, name lookup, ...
    pub access: String,
    /// What went wrong, in words (e.g. "the name does not resolve: ...").
    pub reason: String,
}

/// What the gates saw during one call, shared by all of them.
#[derive(Clone, Default)]
pub struct Record(Arc<Mutex<Events>>);

#[derive(Default)]
pub struct Events {
    pub denials: Vec<Denial>,
    pub failures: Vec<Failure>,
}

/// At most this many of each are kept per call: a guest that loops over
/// refused accesses costs itself time, not the host memory (and the audit
/// log is not flooded by one call).
const MAX_EVENTS: usize = 1000;

impl Record {
    pub fn deny(&self, denial: Denial) {
        let mut events = self.0.lock().unwrap();
        if events.denials.len() < MAX_EVENTS {
            events.denials.push(denial);
        }
    }

    pub fn fail(&self, failure: Failure) {
        let mut events = self.0.lock().unwrap();
        if events.failures.len() < MAX_EVENTS {
            events.failures.push(failure);
        }
    }

    /// Everything recorded so far (the call has ended).
    pub fn take(&self) -> Events {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denial(resource: &str) -> Denial {
        Denial {
            kind: "storage",
            resource: resource.into(),
            resolved: None,
            access: "read".into(),
            reason: "not granted".into(),
            rule: None,
        }
    }

    #[test]
    fn the_record_is_bounded_and_taken_once() {
        let record = Record::default();
        for i in 0..2 * MAX_EVENTS {
            record.deny(denial(&format!("/b{i}")));
        }
        let events = record.take();
        assert_eq!(events.denials.len(), MAX_EVENTS);
        assert_eq!(events.denials[0].resource, "/b0");
        assert!(record.take().denials.is_empty());
    }
}
