//! The network gate: outgoing `wasi:http` requests, `wasi:sockets`
//! connections and name lookups, decided by one set of rules.
//!
//! - A name is looked up only when an allow rule names it (no DNS
//!   exfiltration through lookups of arbitrary names); the addresses it
//!   resolves to are remembered with the rules that allowed the name, and a
//!   socket may connect only to such an address, or to one an IP/CIDR rule
//!   names, on an allowed port and transport.
//! - A name that resolves to a loopback, private, link-local, shared or
//!   cloud-metadata address is refused unless an IP/CIDR rule names that
//!   address (DNS-rebinding defence).
//! - HTTP requests are sent by the gate itself, to the address it checked,
//!   so the guest cannot reach a different address than the one approved.
//! - Deny rules win over allow rules. Listening for connections is refused.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use http_body_util::BodyExt;
use ipnet::IpNet;
use wasmtime::component::{Linker, Resource, ResourceType};
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddress, Ipv4Address, Ipv6Address, Network};
use wasmtime_wasi::p2::{DynPollable, Pollable, subscribe};
use wasmtime_wasi::runtime::AbortOnDropJoinHandle;
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{WasiCtxBuilder, WasiView};
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody};

use crate::policy::{NetRule, NetworkPolicy};
use crate::sandbox::{Denial, Denials, Host};

/// The WASI version our name-lookup implementation is registered under;
/// components importing any 0.2.x version link to it.
const LOOKUP_INTERFACE: &str = "wasi:sockets/ip-name-lookup@0.2.12";

#[derive(Clone, Debug)]
enum Target {
    Name(String),
    /// `*.example.com`: any subdomain (stored as `.example.com`), not the apex.
    Wildcard(String),
    Net(IpNet),
}

#[derive(Clone, Debug)]
struct Rule {
    target: Target,
    ports: Vec<u16>,
    schemes: Vec<String>,
    transports: Vec<String>,
    origin: String,
}

impl Rule {
    fn parse(r: &NetRule) -> Result<Self, String> {
        let target = match (&r.host, &r.cidr) {
            (Some(h), None) => {
                let h = h.trim_end_matches('.').to_ascii_lowercase();
                if let Ok(ip) = IpAddr::from_str(h.trim_start_matches('[').trim_end_matches(']')) {
                    Target::Net(IpNet::from(ip))
                } else if let Some(rest) = h.strip_prefix("*.") {
                    Target::Wildcard(format!(".{rest}"))
                } else {
                    Target::Name(h)
                }
            }
            (None, Some(c)) => Target::Net(IpNet::from_str(c).map_err(|e| format!("bad CIDR {c:?}: {e}"))?.trunc()),
            _ => return Err(format!("network rule {} needs exactly one of host or cidr", r.origin)),
        };
        Ok(Rule {
            target,
            ports: r.ports.clone(),
            schemes: r.schemes.clone(),
            transports: r.transports.clone(),
            origin: r.origin.clone(),
        })
    }

    fn names(&self, host: &str) -> bool {
        match &self.target {
            Target::Name(n) => n == host,
            Target::Wildcard(suffix) => host.len() > suffix.len() && host.ends_with(suffix.as_str()),
            Target::Net(_) => false,
        }
    }

    fn covers(&self, ip: IpAddr) -> bool {
        matches!(&self.target, Target::Net(net) if net.contains(&canonical(ip)))
    }

    fn port_for_http(&self, scheme: &str, port: u16) -> bool {
        if self.ports.is_empty() { port == default_port(scheme) } else { self.ports.contains(&port) }
    }

    fn port_for_socket(&self, port: u16) -> bool {
        if !self.ports.is_empty() {
            self.ports.contains(&port)
        } else if !self.schemes.is_empty() {
            self.schemes.iter().any(|s| default_port(s) == port)
        } else {
            true
        }
    }

    fn deny_port(&self, port: u16) -> bool {
        self.ports.is_empty() || self.ports.contains(&port)
    }
}

fn default_port(scheme: &str) -> u16 {
    if scheme == "https" { 443 } else { 80 }
}

/// IPv4-mapped IPv6 addresses are checked as the IPv4 address they are.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// Addresses a public name should never resolve to: loopback, private,
/// link-local (cloud metadata lives there), shared (CGNAT), unspecified,
/// multicast, documentation and other reserved ranges.
fn special(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || (o[0] == 198 && (o[1] & 0xfe) == 18)
                || o[0] >= 240
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] == 0x2001 && s[1] == 0x0db8)
                || (s[0] == 0x64 && s[1] == 0xff9b)
        }
    }
}

/// Rules plus what lookups taught the gate during this call.
struct Rules {
    allow: Vec<Rule>,
    deny: Vec<Rule>,
}

/// A refused access, before it is recorded.
struct Refusal {
    reason: String,
    rule: Option<String>,
}

impl Refusal {
    fn not_granted(reason: impl Into<String>) -> Self {
        Refusal { reason: reason.into(), rule: None }
    }
}

impl Rules {
    fn denied_name(&self, host: &str, port: Option<u16>) -> Option<Refusal> {
        self.deny
            .iter()
            .find(|r| r.names(host) && port.is_none_or(|p| r.deny_port(p)))
            .map(|r| Refusal { reason: "denied by a deny rule".into(), rule: Some(r.origin.clone()) })
    }

    fn denied_ip(&self, ip: IpAddr, port: u16) -> Option<Refusal> {
        self.deny
            .iter()
            .find(|r| r.covers(ip) && r.deny_port(port))
            .map(|r| Refusal { reason: "denied by a deny rule".into(), rule: Some(r.origin.clone()) })
    }

    /// An IP/CIDR allow rule names this address (on some port, for some use).
    fn names_ip(&self, ip: IpAddr) -> bool {
        self.allow.iter().any(|r| r.covers(ip))
    }
}

#[derive(Default)]
struct Learned {
    /// Address -> indices of the allow rules whose name resolved to it.
    resolved: HashMap<IpAddr, Vec<usize>>,
}

/// Per-call state of the gate, shared by the socket check, the name lookup
/// and the HTTP sender.
#[derive(Clone)]
pub struct NetGate {
    rules: Arc<Rules>,
    learned: Arc<Mutex<Learned>>,
    denials: Denials,
    tls: Arc<rustls::ClientConfig>,
}

impl NetGate {
    pub fn new(policy: &NetworkPolicy, denials: &Denials, tls: Arc<rustls::ClientConfig>) -> wasmtime::Result<Self> {
        let parse = |rules: &[NetRule]| rules.iter().map(Rule::parse).collect::<Result<Vec<_>, _>>();
        let rules = Rules {
            allow: parse(&policy.allow).map_err(|e| wasmtime::format_err!("{e}"))?,
            deny: parse(&policy.deny).map_err(|e| wasmtime::format_err!("{e}"))?,
        };
        Ok(NetGate { rules: Arc::new(rules), learned: Arc::default(), denials: denials.clone(), tls })
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

    fn record(&self, resource: String, access: &str, refusal: Refusal) {
        self.denials.lock().unwrap().push(Denial {
            kind: "network",
            resource,
            resolved: None,
            access: access.into(),
            reason: refusal.reason,
            rule: refusal.rule,
        });
    }

    fn check_socket(&self, addr: SocketAddr, usage: SocketAddrUse) -> bool {
        let (transport, access) = match usage {
            // Implicit binds before a connect or send use the wildcard
            // address and port 0: harmless. Anything else would serve.
            SocketAddrUse::TcpBind | SocketAddrUse::UdpBind => {
                let implicit = addr.ip().is_unspecified() && addr.port() == 0;
                if !implicit {
                    self.record(
                        addr.to_string(),
                        "bind",
                        Refusal::not_granted("binding a local address is not permitted"),
                    );
                }
                return implicit;
            }
            SocketAddrUse::TcpListen | SocketAddrUse::TcpAccept => {
                self.record(
                    addr.to_string(),
                    "listen",
                    Refusal::not_granted("listening for connections is not permitted"),
                );
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
            Ok(()) => true,
            Err(r) => {
                self.record(addr.to_string(), access, r);
                false
            }
        }
    }

    fn socket_allowed(&self, addr: SocketAddr, transport: &str) -> Result<(), Refusal> {
        let ip = canonical(addr.ip());
        if let Some(r) = self.rules.denied_ip(ip, addr.port()) {
            return Err(r);
        }
        let fits = |r: &Rule| r.transports.iter().any(|t| t == transport) && r.port_for_socket(addr.port());
        if self.rules.allow.iter().any(|r| r.covers(ip) && fits(r)) {
            return Ok(());
        }
        let learned = self.learned.lock().unwrap();
        if let Some(idx) = learned.resolved.get(&ip) {
            if idx.iter().any(|&i| fits(&self.rules.allow[i])) {
                return Ok(());
            }
            return Err(Refusal::not_granted(format!(
                "no rule grants raw {transport} to this host on port {}",
                addr.port()
            )));
        }
        if special(ip) {
            return Err(Refusal::not_granted(format!(
                "a loopback/private/link-local address: only an IP/CIDR rule for it grants raw {transport}"
            )));
        }
        Err(Refusal::not_granted(format!("no rule grants raw {transport} to this address")))
    }

    /// Whether a name may be looked up; the allow rules that name it.
    fn lookup_allowed(&self, name: &str) -> Result<Vec<usize>, Refusal> {
        if let Some(r) = self.rules.denied_name(name, None) {
            return Err(r);
        }
        let idx: Vec<usize> = (0..self.rules.allow.len()).filter(|&i| self.rules.allow[i].names(name)).collect();
        if idx.is_empty() {
            return Err(Refusal::not_granted("no rule grants this host"));
        }
        Ok(idx)
    }

    /// Resolves an allowed name; keeps only addresses it may reach.
    async fn resolve(&self, name: &str, port: u16) -> Result<Vec<IpAddr>, Refusal> {
        let found = tokio::time::timeout(Duration::from_secs(10), tokio::net::lookup_host((name, port)))
            .await
            .map_err(|_| Refusal::not_granted("the name lookup timed out"))?
            .map_err(|e| Refusal::not_granted(format!("the name does not resolve: {e}")))?;
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
            return Err(Refusal::not_granted(format!(
                "{name} resolves to {}, a loopback/private/link-local address; grant that address explicitly to allow it",
                list.join(", ")
            )));
        }
        Ok(kept)
    }

    /// Remembers which rules a lookup's addresses came from. Special
    /// addresses are not remembered: only an IP/CIDR rule reaches them, on
    /// the ports and transports it names.
    fn learn(&self, ips: &[IpAddr], rules: &[usize]) {
        let mut learned = self.learned.lock().unwrap();
        for ip in ips.iter().filter(|ip| !special(**ip)) {
            let entry = learned.resolved.entry(*ip).or_default();
            for r in rules {
                if !entry.contains(r) {
                    entry.push(*r);
                }
            }
        }
    }

    /// Decides an outgoing HTTP request and picks the addresses to use.
    async fn plan_request(&self, uri: &http::Uri) -> Result<(String, u16, bool, Vec<SocketAddr>), HttpError> {
        let scheme = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
        let host = uri.host().ok_or(HttpError::HttpRequestUriInvalid)?;
        let host = host.trim_start_matches('[').trim_end_matches(']').trim_end_matches('.').to_ascii_lowercase();
        let port = uri.port_u16().unwrap_or(default_port(&scheme));
        let shown = format!("{scheme}://{}:{port}{}", bracket(&host), uri.path());
        let refuse = |r: Refusal| {
            self.record(shown.clone(), "http", r);
            HttpError::HttpRequestDenied
        };
        if scheme != "http" && scheme != "https" {
            return Err(refuse(Refusal::not_granted(format!("scheme {scheme} is not supported"))));
        }
        let fits = |r: &Rule| r.schemes.contains(&scheme) && r.port_for_http(&scheme, port);
        let ips: Vec<IpAddr> = if let Ok(ip) = IpAddr::from_str(&host) {
            let ip = canonical(ip);
            if let Some(r) = self.rules.denied_ip(ip, port) {
                return Err(refuse(r));
            }
            if !self.rules.allow.iter().any(|r| r.covers(ip) && fits(r)) {
                return Err(refuse(Refusal::not_granted(grant_hint(&self.rules, |r| r.covers(ip), &scheme, port))));
            }
            vec![ip]
        } else {
            if let Some(r) = self.rules.denied_name(&host, Some(port)) {
                return Err(refuse(r));
            }
            if !self.rules.allow.iter().any(|r| r.names(&host) && fits(r)) {
                return Err(refuse(Refusal::not_granted(grant_hint(&self.rules, |r| r.names(&host), &scheme, port))));
            }
            let ips = self.resolve(&host, port).await.map_err(refuse)?;
            let mut allowed = Vec::new();
            for ip in ips {
                if let Some(r) = self.rules.denied_ip(ip, port) {
                    return Err(refuse(r));
                }
                // A special address is reached only where an IP/CIDR rule
                // grants it for this scheme and port.
                if !special(ip) || self.rules.allow.iter().any(|r| r.covers(ip) && fits(r)) {
                    allowed.push(ip);
                }
            }
            if allowed.is_empty() {
                return Err(refuse(Refusal::not_granted(format!(
                    "{host} resolves to a loopback/private/link-local address that no rule grants for {scheme} on port {port}"
                ))));
            }
            allowed
        };
        if ips.is_empty() {
            return Err(refuse(Refusal::not_granted("the name resolves to no address")));
        }
        let addrs = ips.into_iter().map(|ip| SocketAddr::new(ip, port)).collect();
        Ok((host, port, scheme == "https", addrs))
    }

    /// Sends an allowed request to an address the gate approved.
    pub async fn send(
        &self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<(http::Response<WasiBody>, Box<dyn Future<Output = Result<(), HttpError>> + Send>), HttpError> {
        let (host, _port, tls, addrs) = self.plan_request(request.uri()).await?;
        let connect_timeout = options.and_then(|o| o.connect_timeout).unwrap_or(Duration::from_secs(30));
        let first_byte_timeout = options.and_then(|o| o.first_byte_timeout).unwrap_or(Duration::from_secs(600));

        let mut last = HttpError::ConnectionRefused;
        let mut stream = None;
        for addr in addrs {
            match tokio::time::timeout(connect_timeout, tokio::net::TcpStream::connect(addr)).await {
                Ok(Ok(s)) => {
                    stream = Some(s);
                    break;
                }
                Ok(Err(e)) => last = HttpError::Connect(e),
                Err(_) => last = HttpError::ConnectionTimeout,
            }
        }
        let stream = stream.ok_or(last)?;
        let io: Box<dyn Stream> = if tls {
            let name = match IpAddr::from_str(&host) {
                Ok(ip) => rustls::pki_types::ServerName::from(ip),
                Err(_) => rustls::pki_types::ServerName::try_from(host.clone())
                    .map_err(|_| HttpError::HttpRequestUriInvalid)?,
            };
            let connector = tokio_rustls::TlsConnector::from(self.tls.clone());
            Box::new(connector.connect(name, stream).await.map_err(HttpError::Tls)?)
        } else {
            Box::new(stream)
        };
        let (mut sender, conn) = tokio::time::timeout(
            connect_timeout,
            hyper::client::conn::http1::handshake(wasmtime_wasi_http::io::TokioIo::new(io)),
        )
        .await
        .map_err(|_| HttpError::ConnectionTimeout)??;
        // The request line carries only the path; the host is in `Host`.
        let path = request.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
        *request.uri_mut() =
            http::Uri::builder().path_and_query(path).build().map_err(|_| HttpError::HttpRequestUriInvalid)?;

        // The connection runs as its own task (aborted when dropped) so the
        // guest can read the body at its own pace.
        let driver = wasmtime_wasi::runtime::spawn(conn);
        let response = tokio::time::timeout(first_byte_timeout, sender.send_request(request))
            .await
            .map_err(|_| HttpError::ConnectionReadTimeout)?
            .map_err(HttpError::from)?;
        let io_done = async move { driver.await.map_err(HttpError::from) };
        let response = response.map(|body| body.map_err(HttpError::from).boxed_unsync());
        Ok((response, Box::new(io_done)))
    }
}

trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static> Stream for T {}

fn bracket(host: &str) -> String {
    if host.contains(':') { format!("[{host}]") } else { host.to_string() }
}

/// Why a request was refused, in words that help fix it.
fn grant_hint(rules: &Rules, names: impl Fn(&Rule) -> bool, scheme: &str, port: u16) -> String {
    let matching: Vec<&Rule> = rules.allow.iter().filter(|r| names(r)).collect();
    if matching.is_empty() {
        return "no rule grants this host".into();
    }
    if !matching.iter().any(|r| r.schemes.iter().any(|s| s == scheme)) {
        return format!("the host is granted, but not for {scheme}");
    }
    format!("the host is granted, but not on port {port}")
}

/// The TLS client configuration guests' HTTPS requests use: the Mozilla
/// roots (webpki-roots), plus the certificates in `extra_pem` (a private CA).
pub fn tls_config(extra_pem: Option<&[u8]>) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.into() };
    if let Some(pem) = extra_pem {
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| format!("CA bundle: {e}"))?;
            roots.add(cert).map_err(|e| format!("CA bundle: {e}"))?;
            added += 1;
        }
        if added == 0 {
            return Err("CA bundle: no PEM certificate found".into());
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

// -- name lookups ---------------------------------------------------------

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
                match gate.lookup_allowed(&name) {
                    Err(r) => {
                        gate.record(name.clone(), "name lookup", r);
                        return Ok((Err(ErrorCode::AccessDenied),));
                    }
                    Ok(rules) => {
                        let task = wasmtime_wasi::runtime::spawn(async move {
                            match gate.resolve(&name, 0).await {
                                Ok(ips) => {
                                    gate.learn(&ips, &rules);
                                    Ok(ips)
                                }
                                Err(r) => {
                                    gate.record(name.clone(), "name lookup", r);
                                    Err(ErrorCode::AccessDenied)
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
