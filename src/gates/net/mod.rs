//! The network gate: outgoing `wasi:http` requests, `wasi:sockets`
//! connections and name lookups, decided by one set of rules (`rules.rs`).
//!
//! - A name is looked up only when an allow rule names it (no DNS
//!   exfiltration through lookups of arbitrary names); the addresses it
//!   resolves to are remembered with the rules that allowed the name, and a
//!   socket may connect only to such an address, or to one an IP/CIDR rule
//!   names, on an allowed port and transport.
//! - HTTP requests are sent by the gate itself (`http.rs`), to the address it
//!   checked, so the guest cannot reach a different address than the one
//!   approved.
//! - A refusal is a denial; an allowed access that fails (a granted name that
//!   does not resolve, a refused connection, a TLS failure) is a failure,
//!   reported as what it is.
//! - Egress quotas (`gates::quota`): every request, connection and datagram,
//!   and every byte through the gate's connections and raw sockets' streams
//!   (`sockets.rs`), is counted against the call's budgets.

mod http;
mod lookup;
pub mod rules;
mod sockets;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::sockets::SocketAddrUse;

pub use http::tls_config;
use rules::{Refusal, Rules, canonical, special};

use crate::gates::quota::{Flow, Quota};
use crate::gates::{Denial, Failure, Record};
use crate::policy::{EgressLimit, NetworkPolicy};
use crate::sandbox::Host;

/// Registers the gated name lookups, and the socket functions that count
/// what a raw socket carries.
pub fn add_to_linker(linker: &mut wasmtime::component::Linker<Host>) -> wasmtime::Result<()> {
    lookup::add_to_linker(linker)?;
    sockets::add_to_linker(linker)
}

/// How long a name lookup may take.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a lookup of an allowed name gave no usable address.
enum LookupError {
    /// The name did not resolve (or not in time): a failure.
    Failed { reason: String, timed_out: bool },
    /// It resolved only to addresses no rule grants: a denial.
    Refused(Refusal),
}

/// Per-call state of the gate, shared by the socket check, the name lookup
/// and the HTTP sender.
#[derive(Clone)]
pub struct NetGate {
    rules: Arc<Rules>,
    /// Address -> indices of the allow rules whose name resolved to it.
    learned: Arc<Mutex<HashMap<IpAddr, Vec<usize>>>>,
    record: Record,
    tls: Arc<rustls::ClientConfig>,
    /// The call's egress budgets and what it used of them.
    pub quota: Arc<Quota>,
    /// Where each connected UDP stream sends (its resource's rep): a send
    /// names no address, and its bytes belong to that destination.
    udp_peers: Arc<Mutex<HashMap<u32, SocketAddr>>>,
}

impl NetGate {
    pub fn new(
        policy: &NetworkPolicy,
        limits: &[EgressLimit],
        record: &Record,
        tls: Arc<rustls::ClientConfig>,
    ) -> wasmtime::Result<Self> {
        let rules = Rules::new(policy).map_err(|e| wasmtime::format_err!("{e}"))?;
        Ok(NetGate {
            rules: Arc::new(rules),
            learned: Arc::default(),
            record: record.clone(),
            tls,
            quota: Arc::new(Quota::new(limits)),
            udp_peers: Arc::default(),
        })
    }

    /// Routes every socket address the guest uses through `check_socket`.
    pub fn configure(&self, b: &mut WasiCtxBuilder) {
        let gate = self.clone();
        b.socket_addr_check(move |addr, usage| {
            let ok = gate.check_socket(addr, usage);
            Box::pin(async move { ok })
        });
        b.allow_tcp(true).allow_udp(true);
    }

    fn deny(&self, resource: String, access: &str, refusal: Refusal) {
        self.record.deny(Denial {
            kind: "network",
            resource,
            resolved: None,
            access: access.into(),
            reason: refusal.reason,
            rule: refusal.rule,
        });
    }

    fn fail(&self, resource: String, access: &str, reason: String) {
        self.record.fail(Failure { kind: "network", resource, access: access.into(), reason });
    }

    fn check_socket(&self, addr: SocketAddr, usage: SocketAddrUse) -> bool {
        let (transport, access) = match usage {
            // Implicit binds before a connect or send use the wildcard
            // address and port 0: harmless. Anything else would serve.
            SocketAddrUse::TcpBind | SocketAddrUse::UdpBind => {
                let implicit = addr.ip().is_unspecified() && addr.port() == 0;
                if !implicit {
                    let refusal = Refusal::not_granted("binding a local address is not permitted");
                    self.deny(addr.to_string(), "bind", refusal);
                }
                return implicit;
            }
            SocketAddrUse::TcpListen | SocketAddrUse::TcpAccept => {
                let refusal = Refusal::not_granted("listening for connections is not permitted");
                self.deny(addr.to_string(), "listen", refusal);
                return false;
            }
            SocketAddrUse::TcpConnect => ("tcp", "tcp connect"),
            SocketAddrUse::UdpSend => ("udp", "udp send"),
            // Datagrams from elsewhere are dropped, quietly.
            SocketAddrUse::UdpReceive => return self.socket_allowed(addr, "udp").is_ok(),
            #[allow(unreachable_patterns)]
            _ => ("tcp", "socket"),
        };
        match self.socket_allowed(addr, transport) {
            // Allowed, and within the call's requests budget (a refusal
            // there stops the call: no denial, the quota says it).
            Ok(()) if self.quota.take(Flow::Request, 1).is_err() => false,
            Ok(()) => {
                // Connections (datagrams) counted here; their bytes by the
                // streams (`sockets.rs`).
                self.record.egress(transport, &canonical(addr.ip()).to_string(), addr.port(), false);
                true
            }
            Err(r) => {
                self.deny(addr.to_string(), access, r);
                false
            }
        }
    }

    fn socket_allowed(&self, addr: SocketAddr, transport: &str) -> Result<(), Refusal> {
        let learned = self.learned.lock().unwrap();
        let resolved_by = learned.get(&canonical(addr.ip())).map(Vec::as_slice);
        self.rules.socket(addr, transport, resolved_by)
    }

    /// Resolves an allowed name; keeps only addresses it may reach.
    async fn resolve(&self, name: &str, port: u16) -> Result<Vec<IpAddr>, LookupError> {
        let found = match tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host((name, port))).await {
            Err(_) => {
                let reason = format!("the name lookup timed out after {} s", LOOKUP_TIMEOUT.as_secs());
                return Err(LookupError::Failed { reason, timed_out: true });
            }
            Ok(Err(e)) => {
                let reason = format!("the name does not resolve: {e}");
                return Err(LookupError::Failed { reason, timed_out: false });
            }
            Ok(Ok(found)) => found,
        };
        let mut kept = Vec::new();
        let mut dropped = Vec::new();
        for sa in found {
            let ip = canonical(sa.ip());
            if special(ip) && !self.rules.names_ip(ip) {
                dropped.push(ip);
            } else if !kept.contains(&ip) {
                kept.push(ip);
            }
        }
        if kept.is_empty() && !dropped.is_empty() {
            let list: Vec<String> = dropped.iter().map(ToString::to_string).collect();
            return Err(LookupError::Refused(Refusal::not_granted(format!(
                "{name} resolves to {}, a loopback/private/link-local address; grant that address explicitly to allow it",
                list.join(", ")
            ))));
        }
        if kept.is_empty() {
            return Err(LookupError::Failed { reason: "the name resolves to no address".into(), timed_out: false });
        }
        Ok(kept)
    }

    /// Remembers which rules a lookup's addresses came from. Special
    /// addresses are not remembered: only an IP/CIDR rule reaches them, on
    /// the ports and transports it names.
    fn learn(&self, ips: &[IpAddr], rules: &[usize]) {
        let mut learned = self.learned.lock().unwrap();
        for ip in ips.iter().filter(|ip| !special(**ip)) {
            let entry = learned.entry(*ip).or_default();
            for r in rules {
                if !entry.contains(r) {
                    entry.push(*r);
                }
            }
        }
    }
}
