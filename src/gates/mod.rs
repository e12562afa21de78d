//! The gates: every place where a guest's access to the host is decided,
//! after Wasmtime's own `crates/wasi` model: a protocol-neutral rules core
//! per resource (`fs::rules`, `net::rules`, pure and unit-tested) and thin
//! bindings per WASI interface that consult it.
//!
//! What the gates decide is recorded in one place, the `Record` of the call:
//! denials (an access the policy refuses) and failures (an access the policy
//! allows that failed: a name that does not resolve, a refused connection).
//! A failure is never reported as a denial. And egress: where allowed
//! network accesses went (with the bytes each way: HTTP counted on the
//! connection, raw sockets through their streams, until the call ends).

pub mod config;
pub mod fs;
pub mod mcp;
pub mod net;
pub mod quota;

use std::sync::atomic::{AtomicU64, Ordering};
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

/// Where allowed network accesses of one call went: one entry per
/// transport, host and port, with the bytes sent and received (`None` when
/// nothing was carried: a connection that never completed).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Egress {
    /// http, https, tcp, udp
    pub transport: &'static str,
    pub host: String,
    pub port: u16,
    /// Connections (HTTP requests) opened, or datagram destinations used.
    pub connections: u64,
    pub sent: Option<u64>,
    pub received: Option<u64>,
}

/// A path the storage gate let the guest reach, with the kinds of access
/// granted (each path once, its accesses merged).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Access {
    pub kind: &'static str,
    pub resource: String,
    /// read, write, see
    pub access: Vec<&'static str>,
}

/// The byte counters of one HTTP connection, shared with its stream.
#[derive(Clone, Default)]
pub struct Bytes {
    pub sent: Arc<AtomicU64>,
    pub received: Arc<AtomicU64>,
}

struct EgressEntry {
    transport: &'static str,
    host: String,
    port: u16,
    connections: u64,
    bytes: Option<Vec<Bytes>>,
}

/// What the gates saw during one call, shared by all of them.
#[derive(Clone, Default)]
pub struct Record(Arc<Mutex<Recorded>>);

#[derive(Default)]
struct Recorded {
    events: Events,
    egress: Vec<EgressEntry>,
    // resource -> index in events.accesses
    accessed: std::collections::HashMap<String, usize>,
}

#[derive(Default)]
pub struct Events {
    pub denials: Vec<Denial>,
    pub failures: Vec<Failure>,
    pub egress: Vec<Egress>,
    pub accesses: Vec<Access>,
}

/// At most this many of each are kept per call: a guest that loops over
/// refused accesses costs itself time, not the host memory (and the audit
/// log is not flooded by one call).
const MAX_EVENTS: usize = 1000;

impl Record {
    pub fn deny(&self, denial: Denial) {
        let events = &mut self.0.lock().unwrap().events;
        if events.denials.len() < MAX_EVENTS {
            events.denials.push(denial);
        }
    }

    pub fn fail(&self, failure: Failure) {
        let events = &mut self.0.lock().unwrap().events;
        if events.failures.len() < MAX_EVENTS {
            events.failures.push(failure);
        }
    }

    /// An access the gate allowed (what `tool invoke --trace` and policy
    /// learning show); each path once.
    pub fn allow(&self, kind: &'static str, resource: &str, access: &'static str) {
        let recorded = &mut *self.0.lock().unwrap();
        if let Some(&i) = recorded.accessed.get(resource) {
            let known = &mut recorded.events.accesses[i].access;
            if !known.contains(&access) {
                known.push(access);
            }
            return;
        }
        if recorded.events.accesses.len() < MAX_EVENTS {
            recorded.accessed.insert(resource.to_string(), recorded.events.accesses.len());
            recorded.events.accesses.push(Access { kind, resource: resource.into(), access: vec![access] });
        }
    }

    /// An allowed connection to `host:port`; for HTTP, the counters its
    /// stream adds its bytes to (None past MAX_EVENTS destinations: the
    /// connection goes on, uncounted).
    pub fn egress(&self, transport: &'static str, host: &str, port: u16, counted: bool) -> Option<Bytes> {
        let recorded = &mut *self.0.lock().unwrap();
        let found = recorded.egress.iter().position(|e| e.transport == transport && e.port == port && e.host == host);
        let index = match found {
            Some(i) => i,
            None if recorded.egress.len() < MAX_EVENTS => {
                let bytes = counted.then(Vec::new);
                recorded.egress.push(EgressEntry { transport, host: host.into(), port, connections: 0, bytes });
                recorded.egress.len() - 1
            }
            None => return None,
        };
        let entry = &mut recorded.egress[index];
        entry.connections += 1;
        let bytes = Bytes::default();
        entry.bytes.as_mut()?.push(bytes.clone());
        Some(bytes)
    }

    /// The counters a raw socket's streams (or datagrams) to `host:port`
    /// add their bytes to; its connection was counted by `egress` when the
    /// gate allowed it. One set per destination, shared.
    pub fn counter(&self, transport: &'static str, host: &str, port: u16) -> Option<Bytes> {
        let recorded = &mut *self.0.lock().unwrap();
        let found = recorded.egress.iter().position(|e| e.transport == transport && e.port == port && e.host == host);
        let index = match found {
            Some(i) => i,
            None if recorded.egress.len() < MAX_EVENTS => {
                let entry = EgressEntry { transport, host: host.into(), port, connections: 0, bytes: None };
                recorded.egress.push(entry);
                recorded.egress.len() - 1
            }
            None => return None,
        };
        let bytes = recorded.egress[index].bytes.get_or_insert_with(Vec::new);
        if bytes.is_empty() {
            bytes.push(Bytes::default());
        }
        Some(bytes[0].clone())
    }

    /// Everything recorded so far (the call has ended): bytes as counted
    /// up to now.
    pub fn take(&self) -> Events {
        let recorded = std::mem::take(&mut *self.0.lock().unwrap());
        let mut events = recorded.events;
        let sum = |bytes: &[Bytes], pick: fn(&Bytes) -> &AtomicU64| {
            bytes.iter().map(|b| pick(b).load(Ordering::Relaxed)).sum()
        };
        events.egress = recorded
            .egress
            .into_iter()
            .map(|e| Egress {
                transport: e.transport,
                host: e.host,
                port: e.port,
                connections: e.connections,
                sent: e.bytes.as_deref().map(|b| sum(b, |b| &b.sent)),
                received: e.bytes.as_deref().map(|b| sum(b, |b| &b.received)),
            })
            .collect();
        events
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

    #[test]
    fn egress_adds_up_per_destination() {
        let record = Record::default();
        let a = record.egress("https", "api.example.com", 443, true).unwrap();
        let b = record.egress("https", "api.example.com", 443, true).unwrap();
        assert!(record.egress("tcp", "10.0.0.1", 5432, false).is_none());
        a.sent.fetch_add(100, Ordering::Relaxed);
        b.sent.fetch_add(20, Ordering::Relaxed);
        b.received.fetch_add(7, Ordering::Relaxed);
        let egress = record.take().egress;
        assert_eq!(egress.len(), 2);
        assert_eq!((egress[0].connections, egress[0].sent, egress[0].received), (2, Some(120), Some(7)));
        assert_eq!((egress[1].transport, egress[1].connections, egress[1].sent), ("tcp", 1, None));
        for i in 0..2 * MAX_EVENTS {
            record.egress("udp", &format!("h{i}"), 53, false);
        }
        assert_eq!(record.take().egress.len(), MAX_EVENTS);
    }

    #[test]
    fn a_raw_sockets_bytes_join_its_destination() {
        let record = Record::default();
        record.egress("tcp", "10.0.0.1", 5432, false);
        record.egress("tcp", "10.0.0.1", 5432, false);
        let a = record.counter("tcp", "10.0.0.1", 5432).unwrap();
        let b = record.counter("tcp", "10.0.0.1", 5432).unwrap();
        a.sent.fetch_add(3, Ordering::Relaxed);
        b.received.fetch_add(4, Ordering::Relaxed);
        let udp = record.counter("udp", "10.0.0.2", 53).unwrap();
        udp.received.fetch_add(9, Ordering::Relaxed);
        let egress = record.take().egress;
        assert_eq!((egress[0].connections, egress[0].sent, egress[0].received), (2, Some(3), Some(4)));
        assert_eq!((egress[1].transport, egress[1].connections, egress[1].received), ("udp", 0, Some(9)));
    }

    #[test]
    fn accesses_are_kept_once_per_path() {
        let record = Record::default();
        record.allow("storage", "/data/a", "read");
        record.allow("storage", "/data/a", "read");
        record.allow("storage", "/data/a", "write");
        record.allow("storage", "/data/b", "see");
        let accesses = record.take().accesses;
        assert_eq!(accesses.len(), 2);
        assert_eq!(accesses[0].access, vec!["read", "write"]);
        assert_eq!(accesses[1].resource, "/data/b");
    }
}
