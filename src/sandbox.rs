//! The per-call sandbox: the store's data, built from an effective policy.
//!
//! Deny by default: no environment, arguments, stdin, preopens, sockets or
//! outgoing HTTP unless the policy lists them. Guest stdout/stderr go to
//! bounded in-memory captures, never to the host's streams.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use crate::gates::Record;
use crate::gates::fs::{self, FsGate};
use crate::gates::net::NetGate;
use crate::link::Scope;
use crate::policy::{DEFAULT_OUTPUT_LIMIT, EffectivePolicy};

/// A bounded capture of a guest output stream: bytes past the limit are
/// counted and dropped, so a flood costs the guest time, not the host memory.
#[derive(Clone)]
pub struct Capture(Arc<Mutex<CaptureBuf>>);

struct CaptureBuf {
    data: Vec<u8>,
    limit: usize,
    dropped: u64,
}

impl Capture {
    pub fn new(limit: usize) -> Self {
        Capture(Arc::new(Mutex::new(CaptureBuf { data: Vec::new(), limit, dropped: 0 })))
    }

    fn push(&self, bytes: &[u8]) {
        let mut b = self.0.lock().unwrap();
        let room = b.limit.saturating_sub(b.data.len());
        let take = room.min(bytes.len());
        b.data.extend_from_slice(&bytes[..take]);
        b.dropped += (bytes.len() - take) as u64;
    }

    /// The captured bytes and how many were dropped.
    pub fn take(&self) -> (Vec<u8>, u64) {
        let mut b = self.0.lock().unwrap();
        (std::mem::take(&mut b.data), std::mem::take(&mut b.dropped))
    }
}

impl IsTerminal for Capture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Capture {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for Capture {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Capture {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for Capture {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Caps the sum of all linear memories and tables of one instance.
pub struct Limiter {
    pub memory_limit: u64,
    /// Linear memories and tables of the instance, in bytes (they only grow).
    pub memory_used: u64,
    /// Set when the guest asked for more than the limit, to tell an
    /// out-of-memory apart from other traps.
    pub memory_denied: bool,
}

/// Table elements per instance; generous for real toolchains, far from the
/// point where tables themselves become a memory problem.
const TABLE_ELEMENTS_LIMIT: usize = 1 << 20;

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        let next = self.memory_used + (desired - current) as u64;
        if next > self.memory_limit {
            self.memory_denied = true;
            return Ok(false);
        }
        self.memory_used = next;
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= TABLE_ELEMENTS_LIMIT)
    }
}

/// Hands outgoing HTTP requests to the network gate, which decides and sends them.
pub struct HttpGate {
    net: NetGate,
}

impl WasiHttpHooks for HttpGate {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = wasmtime_wasi_http::Result<(
                    http::Response<wasmtime_wasi_http::WasiBody>,
                    Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                )>,
            > + Send,
    > {
        let net = self.net.clone();
        Box::new(async move { net.send(request, options).await })
    }
}

/// WASI state of one call: the context and the resource table.
pub struct WasiState {
    ctx: WasiCtx,
    table: ResourceTable,
}

impl WasiView for WasiState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.ctx, table: &mut self.table }
    }
}

/// The data of one call's store.
pub struct Host {
    pub wasi: WasiState,
    http: WasiHttpCtx,
    gate: HttpGate,
    pub fs: FsGate,
    pub net: NetGate,
    pub limiter: Limiter,
    pub stdout: Capture,
    pub stderr: Capture,
    /// What the gates refused, and allowed accesses that failed.
    pub record: Record,
    /// What `wasi:config/store` serves: the granted variables, as the
    /// environment.
    pub config: Vec<(String, String)>,
    /// What imports of other components' interfaces resolve to (`link.rs`).
    pub links: Option<Scope>,
    /// Where `wassette:mcp/host` calls go (`gates/mcp.rs`).
    pub mcp: crate::gates::mcp::McpHost,
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        self.wasi.ctx()
    }
}

impl WasiHttpView for Host {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.wasi.table, hooks: &mut self.gate }
    }
}

impl Host {
    pub fn new(policy: &EffectivePolicy, tls: Arc<rustls::ClientConfig>) -> wasmtime::Result<Self> {
        let stdout = Capture::new(policy.stdout_limit_bytes.unwrap_or(DEFAULT_OUTPUT_LIMIT));
        let stderr = Capture::new(policy.stderr_limit_bytes.unwrap_or(DEFAULT_OUTPUT_LIMIT));
        let record = Record::default();

        let mut b = WasiCtxBuilder::new();
        b.stdout(stdout.clone()).stderr(stderr.clone());
        b.envs(&policy.env);
        let fs = fs::configure(&mut b, &policy.storage, &record)?;
        let net = NetGate::new(&policy.network, &policy.egress_limits, &record, tls)?;
        net.configure(&mut b);

        Ok(Host {
            wasi: WasiState { ctx: b.build(), table: ResourceTable::new() },
            http: WasiHttpCtx::new(),
            gate: HttpGate { net: net.clone() },
            fs,
            net,
            limiter: Limiter { memory_limit: policy.memory_limit(), memory_used: 0, memory_denied: false },
            stdout,
            stderr,
            record,
            config: policy.env.clone(),
            links: None,
            mcp: Default::default(),
        })
    }
}
