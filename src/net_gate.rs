//! The network gate: outgoing `wasi:http` requests and `wasi:sockets` checked
//! against the network policy, through one set of rules.
//!
//! (Stub: everything is denied and recorded.)

use std::sync::Arc;

use wasmtime::component::Linker;
use wasmtime_wasi::WasiCtxBuilder;

use crate::policy::NetworkPolicy;
use crate::sandbox::{Denial, Denials, Host};

/// Per-call state of the gate, kept in the store.
#[derive(Clone)]
pub struct NetGate {
    pub denials: Denials,
}

/// Registers gated implementations (e.g. name lookups) in the linker.
pub fn add_to_linker(_linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    Ok(())
}

/// Configures sockets for `network` and returns the gate for HTTP requests.
pub fn configure(b: &mut WasiCtxBuilder, network: &NetworkPolicy, denials: &Denials) -> wasmtime::Result<NetGate> {
    if !network.allow.is_empty() {
        wasmtime::bail!("network grants are not supported yet");
    }
    let socket_denials = Arc::clone(denials);
    b.socket_addr_check(move |addr, usage| {
        socket_denials.lock().unwrap().push(Denial {
            kind: "network",
            resource: format!("{addr}"),
            access: format!("{usage:?}"),
            reason: "no network permission".into(),
            rule: None,
        });
        Box::pin(async { false })
    });
    b.allow_ip_name_lookup(false);
    Ok(NetGate { denials: Arc::clone(denials) })
}

impl NetGate {
    /// Decides an outgoing HTTP request: `Err` with the WASI HTTP error code
    /// when refused.
    pub fn check_request(&self, uri: &http::Uri) -> Result<(), wasmtime_wasi_http::Error> {
        self.denials.lock().unwrap().push(Denial {
            kind: "network",
            resource: uri.to_string(),
            access: "http".into(),
            reason: "no network permission".into(),
            rule: None,
        });
        Err(wasmtime_wasi_http::Error::HttpRequestDenied)
    }
}
