//! What a raw socket carries: the streams of a connected TCP socket and the
//! datagrams of a UDP socket, counted into the call's egress record (per
//! destination) and against its egress budgets. Wasmtime's own socket
//! implementation does the work; these functions shadow the few that hand
//! out streams or move datagrams, and wrap what they return.
//!
//! A raw socket over a budget traps the guest at once: its call is over
//! (`call.rs` reports the quota), and no byte past the budget moves.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpSocketAddress};
use wasmtime_wasi::p2::bindings::sockets::tcp::HostTcpSocket;
use wasmtime_wasi::p2::bindings::sockets::udp::{
    HostIncomingDatagramStream, HostOutgoingDatagramStream, HostUdpSocket, IncomingDatagram, IncomingDatagramStream,
    OutgoingDatagram, OutgoingDatagramStream,
};
use wasmtime_wasi::p2::pipe::{ClosedInputStream, ClosedOutputStream};
use wasmtime_wasi::p2::{
    DynInputStream, DynOutputStream, InputStream, OutputStream, Pollable, SocketError, StreamError, StreamResult,
    TcpSocket, UdpSocket,
};
use wasmtime_wasi::sockets::WasiSocketsView;

use super::NetGate;
use super::rules::canonical;
use crate::gates::Bytes as Counters;
use crate::gates::quota::{Flow, Quota};
use crate::sandbox::Host;

/// The WASI versions our functions are registered under (any 0.2.x import
/// links to them, as to the rest of Wasmtime's implementation).
const TCP_INTERFACE: &str = "wasi:sockets/tcp@0.2.12";
const UDP_INTERFACE: &str = "wasi:sockets/udp@0.2.12";

/// A socket error as the guest gets it, or the trap it is.
fn guest_error<T>(e: SocketError) -> wasmtime::Result<Result<T, ErrorCode>> {
    e.downcast().map(Err)
}

fn over_quota(message: String) -> wasmtime::Error {
    wasmtime::format_err!("{message}")
}

pub fn add_to_linker(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    let mut tcp = linker.instance(TCP_INTERFACE)?;
    tcp.func_wrap(
        "[method]tcp-socket.finish-connect",
        |mut store: StoreContextMut<'_, Host>, (this,): (Resource<TcpSocket>,)| {
            let host = store.data_mut();
            let gate = host.net.clone();
            let mut view = host.sockets();
            let rep = this.rep();
            let (input, output) = match HostTcpSocket::finish_connect(&mut view, this) {
                Ok(streams) => streams,
                Err(e) => return Ok((guest_error(e)?,)),
            };
            let peer: Option<SocketAddr> =
                HostTcpSocket::remote_address(&mut view, Resource::new_borrow(rep)).ok().map(Into::into);
            let counters = peer.and_then(|p| gate.record.counter("tcp", &canonical(p.ip()).to_string(), p.port()));
            let counters = counters.unwrap_or_default();
            let quota = gate.quota.clone();
            let slot = view.table.get_mut(&input)?;
            let inner = std::mem::replace(slot, Box::new(ClosedInputStream));
            *slot = Box::new(CountedInput { inner, counters: counters.clone(), quota: quota.clone() });
            let slot = view.table.get_mut(&output)?;
            let inner = std::mem::replace(slot, Box::new(ClosedOutputStream));
            *slot = Box::new(CountedOutput { inner, counters, quota });
            Ok((Ok((input, output)),))
        },
    )?;

    let mut udp = linker.instance(UDP_INTERFACE)?;
    udp.func_wrap_async(
        "[method]udp-socket.stream",
        |mut store: StoreContextMut<'_, Host>, (this, remote): (Resource<UdpSocket>, Option<IpSocketAddress>)| {
            Box::new(async move {
                let host = store.data_mut();
                let gate = host.net.clone();
                let streams = match HostUdpSocket::stream(&mut host.sockets(), this, remote).await {
                    Ok(streams) => streams,
                    Err(e) => return Ok((guest_error(e)?,)),
                };
                // A connected stream's sends name no address: remember it.
                let mut peers = gate.udp_peers.lock().unwrap();
                match remote {
                    Some(addr) => peers.insert(streams.1.rep(), addr.into()),
                    None => peers.remove(&streams.1.rep()),
                };
                Ok((Ok(streams),))
            })
        },
    )?;
    udp.func_wrap(
        "[method]outgoing-datagram-stream.send",
        |mut store: StoreContextMut<'_, Host>,
         (this, datagrams): (Resource<OutgoingDatagramStream>, Vec<OutgoingDatagram>)| {
            let host = store.data_mut();
            let gate = host.net.clone();
            let rep = this.rep();
            let peer = gate.udp_peers.lock().unwrap().get(&rep).copied();
            let sizes: Vec<(u64, Option<SocketAddr>)> = datagrams
                .iter()
                .map(|d| (d.data.len() as u64, d.remote_address.map(SocketAddr::from).or(peer)))
                .collect();
            let total: u64 = sizes.iter().map(|s| s.0).sum();
            if gate.quota.limited()
                && total > gate.quota.room(Flow::Sent)
                && let Err(message) = gate.quota.take(Flow::Sent, total)
            {
                return Err(over_quota(message));
            }
            let sent = match HostOutgoingDatagramStream::send(&mut host.sockets(), this, datagrams) {
                Ok(n) => n,
                Err(e) => return Ok((guest_error(e)?,)),
            };
            for (len, addr) in sizes.into_iter().take(sent as usize) {
                let _ = gate.quota.take(Flow::Sent, len);
                if let Some(c) = addr.and_then(|a| counters(&gate, a)) {
                    c.sent.fetch_add(len, Ordering::Relaxed);
                }
            }
            Ok((Ok(sent),))
        },
    )?;
    udp.func_wrap(
        "[method]incoming-datagram-stream.receive",
        |mut store: StoreContextMut<'_, Host>, (this, max): (Resource<IncomingDatagramStream>, u64)| {
            let host = store.data_mut();
            let gate = host.net.clone();
            let datagrams: Vec<IncomingDatagram> =
                match HostIncomingDatagramStream::receive(&mut host.sockets(), this, max) {
                    Ok(d) => d,
                    Err(e) => return Ok((guest_error(e)?,)),
                };
            let total = datagrams.iter().map(|d| d.data.len() as u64).sum();
            gate.quota.take(Flow::Received, total).map_err(over_quota)?;
            for d in &datagrams {
                if let Some(c) = counters(&gate, d.remote_address.into()) {
                    c.received.fetch_add(d.data.len() as u64, Ordering::Relaxed);
                }
            }
            Ok((Ok(datagrams),))
        },
    )?;
    Ok(())
}

fn counters(gate: &NetGate, addr: SocketAddr) -> Option<Counters> {
    gate.record.counter("udp", &canonical(addr.ip()).to_string(), addr.port())
}

/// The reading end of a TCP connection, counted.
struct CountedInput {
    inner: DynInputStream,
    counters: Counters,
    quota: Arc<Quota>,
}

impl CountedInput {
    fn count(&self, data: Bytes) -> StreamResult<Bytes> {
        let n = data.len() as u64;
        self.quota.take(Flow::Received, n).map_err(|m| StreamError::Trap(over_quota(m)))?;
        self.counters.received.fetch_add(n, Ordering::Relaxed);
        Ok(data)
    }
}

#[wasmtime_wasi::async_trait]
impl InputStream for CountedInput {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        let data = self.inner.read(size)?;
        self.count(data)
    }

    async fn blocking_read(&mut self, size: usize) -> StreamResult<Bytes> {
        let data = self.inner.blocking_read(size).await?;
        self.count(data)
    }

    fn skip(&mut self, n: usize) -> StreamResult<usize> {
        // Skipped bytes were received all the same.
        let data = self.inner.read(n)?;
        Ok(self.count(data)?.len())
    }

    async fn blocking_skip(&mut self, n: usize) -> StreamResult<usize> {
        let data = self.inner.blocking_read(n).await?;
        Ok(self.count(data)?.len())
    }

    async fn cancel(&mut self) {
        self.inner.cancel().await
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CountedInput {
    async fn ready(&mut self) {
        self.inner.ready().await
    }
}

/// The writing end of a TCP connection, counted: a write over the budget is
/// refused before anything of it is sent.
struct CountedOutput {
    inner: DynOutputStream,
    counters: Counters,
    quota: Arc<Quota>,
}

impl CountedOutput {
    fn count(&self, n: usize) -> StreamResult<()> {
        self.quota.take(Flow::Sent, n as u64).map_err(|m| StreamError::Trap(over_quota(m)))?;
        self.counters.sent.fetch_add(n as u64, Ordering::Relaxed);
        Ok(())
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for CountedOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.count(bytes.len())?;
        self.inner.write(bytes)
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.inner.flush()
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        self.inner.check_write()
    }

    async fn blocking_write_and_flush(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.count(bytes.len())?;
        self.inner.blocking_write_and_flush(bytes).await
    }

    fn write_zeroes(&mut self, n: usize) -> StreamResult<()> {
        self.count(n)?;
        self.inner.write_zeroes(n)
    }

    async fn write_ready(&mut self) -> StreamResult<usize> {
        self.inner.write_ready().await
    }

    async fn cancel(&mut self) {
        self.inner.cancel().await
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CountedOutput {
    async fn ready(&mut self) {
        self.inner.ready().await
    }
}
