//! `wasi:sockets/ip-name-lookup`, gated: only names a rule grants are
//! looked up, and what they resolve to is remembered for the socket check.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::pin::Pin;
use std::str::FromStr;
use std::task::{Context, Poll, Waker};

use wasmtime::component::{Linker, Resource, ResourceType};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddress, Ipv4Address, Ipv6Address, Network};
use wasmtime_wasi::p2::{DynPollable, Pollable, subscribe};
use wasmtime_wasi::runtime::AbortOnDropJoinHandle;

use super::LookupError;
use crate::sandbox::Host;

/// The WASI version our name-lookup implementation is registered under;
/// components importing any 0.2.x version link to it.
const LOOKUP_INTERFACE: &str = "wasi:sockets/ip-name-lookup@0.2.12";

/// A pending or finished lookup, the `resolve-address-stream` resource.
pub struct Lookup {
    pending: Option<AbortOnDropJoinHandle<Result<Vec<IpAddr>, ErrorCode>>>,
    done: Option<Result<VecDeque<IpAddr>, ErrorCode>>,
}

#[wasmtime_wasi::async_trait]
impl Pollable for Lookup {
    async fn ready(&mut self) {
        if let Some(task) = self.pending.take() {
            self.done = Some(task.await.map(VecDeque::from));
        }
    }
}

fn to_wasi(ip: IpAddr) -> IpAddress {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            IpAddress::Ipv4((o[0], o[1], o[2], o[3]) as Ipv4Address)
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddress::Ipv6((s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]) as Ipv6Address)
        }
    }
}

/// Registers the gated `wasi:sockets/ip-name-lookup` in the linker.
pub fn add_to_linker(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    let mut inst = linker.instance(LOOKUP_INTERFACE)?;
    inst.resource("resolve-address-stream", ResourceType::host::<Lookup>(), |mut store, rep| {
        store.data_mut().wasi.ctx().table.delete(Resource::<Lookup>::new_own(rep))?;
        Ok(())
    })?;
    inst.func_wrap(
        "resolve-addresses",
        |mut store: wasmtime::StoreContextMut<'_, Host>, (network, name): (Resource<Network>, String)| {
            let host = store.data_mut();
            host.wasi.ctx().table.get(&network)?;
            let gate = host.net.clone();
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            let lookup = if let Ok(ip) = IpAddr::from_str(name.trim_start_matches('[').trim_end_matches(']')) {
                // An address needs no lookup; connecting to it is checked.
                Lookup { pending: None, done: Some(Ok(VecDeque::from([ip]))) }
            } else {
                match gate.rules.lookup(&name) {
                    Err(r) => {
                        gate.deny(name.clone(), "name lookup", r);
                        return Ok((Err(ErrorCode::AccessDenied),));
                    }
                    Ok(rules) => {
                        let task = wasmtime_wasi::runtime::spawn(async move {
                            match gate.resolve(&name, 0).await {
                                Ok(ips) => {
                                    gate.learn(&ips, &rules);
                                    Ok(ips)
                                }
                                Err(LookupError::Refused(r)) => {
                                    gate.deny(name.clone(), "name lookup", r);
                                    Err(ErrorCode::AccessDenied)
                                }
                                Err(LookupError::Failed { reason, timed_out }) => {
                                    gate.fail(name.clone(), "name lookup", reason);
                                    Err(if timed_out {
                                        ErrorCode::TemporaryResolverFailure
                                    } else {
                                        ErrorCode::NameUnresolvable
                                    })
                                }
                            }
                        });
                        Lookup { pending: Some(task), done: None }
                    }
                }
            };
            let stream = host.wasi.ctx().table.push(lookup)?;
            Ok((Ok(stream),))
        },
    )?;
    inst.func_wrap(
        "[method]resolve-address-stream.resolve-next-address",
        |mut store: wasmtime::StoreContextMut<'_, Host>, (this,): (Resource<Lookup>,)| {
            let lookup = store.data_mut().wasi.ctx().table.get_mut(&this)?;
            if let Some(task) = &mut lookup.pending
                && let Poll::Ready(r) = Pin::new(task).poll(&mut Context::from_waker(Waker::noop()))
            {
                lookup.done = Some(r.map(VecDeque::from));
                lookup.pending = None;
            }
            let result: Result<Option<IpAddress>, ErrorCode> = match &mut lookup.done {
                None => Err(ErrorCode::WouldBlock),
                Some(Err(e)) => Err(*e),
                Some(Ok(queue)) => Ok(queue.pop_front().map(to_wasi)),
            };
            Ok((result,))
        },
    )?;
    inst.func_wrap(
        "[method]resolve-address-stream.subscribe",
        |mut store: wasmtime::StoreContextMut<'_, Host>, (this,): (Resource<Lookup>,)| {
            let pollable: Resource<DynPollable> = subscribe(store.data_mut().wasi.ctx().table, this)?;
            Ok((pollable,))
        },
    )?;
    Ok(())
}
