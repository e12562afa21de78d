//! Outgoing `wasi:http` requests: decided by the rules, then sent by the
//! gate itself (hyper + rustls) to an address it checked.

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody};

use super::rules::{canonical, default_port};
use super::{LookupError, NetGate};
use crate::gates::Bytes;
use crate::gates::quota::{Flow, Quota};

impl NetGate {
    /// Decides an outgoing HTTP request and picks the addresses to use.
    async fn plan_request(&self, uri: &http::Uri) -> Result<(String, bool, Vec<SocketAddr>), HttpError> {
        let scheme = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
        let host = uri.host().ok_or(HttpError::HttpRequestUriInvalid)?;
        let host = host.trim_start_matches('[').trim_end_matches(']').trim_end_matches('.').to_ascii_lowercase();
        let port = uri.port_u16().unwrap_or(default_port(&scheme));
        let shown = format!("{scheme}://{}:{port}{}", bracket(&host), uri.path());
        if let Err(r) = self.rules.http_target(&host, &scheme, port) {
            self.deny(shown, "http", r);
            return Err(HttpError::HttpRequestDenied);
        }
        let ips = if let Ok(ip) = IpAddr::from_str(&host) {
            vec![canonical(ip)]
        } else {
            let resolved = match self.resolve(&host, port).await {
                Ok(ips) => ips,
                Err(LookupError::Refused(r)) => {
                    self.deny(shown, "http", r);
                    return Err(HttpError::HttpRequestDenied);
                }
                Err(LookupError::Failed { reason, timed_out }) => {
                    self.fail(shown, "http", reason.clone());
                    return Err(if timed_out {
                        HttpError::DnsTimeout
                    } else {
                        HttpError::DnsError { rcode: Some(reason), info_code: None }
                    });
                }
            };
            match self.rules.http_addresses(&host, &resolved, &scheme, port) {
                Ok(ips) => ips,
                Err(r) => {
                    self.deny(shown, "http", r);
                    return Err(HttpError::HttpRequestDenied);
                }
            }
        };
        let addrs = ips.into_iter().map(|ip| SocketAddr::new(ip, port)).collect();
        Ok((host, scheme == "https", addrs))
    }

    /// Sends an allowed request to an address the gate approved.
    pub async fn send(
        &self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<(http::Response<WasiBody>, Box<dyn Future<Output = Result<(), HttpError>> + Send>), HttpError> {
        let (host, tls, addrs) = self.plan_request(request.uri()).await?;
        // Over the requests budget: refused, and the call stops (`call.rs`).
        if self.quota.take(Flow::Request, 1).is_err() {
            return Err(HttpError::HttpRequestDenied);
        }
        let shown = request.uri().to_string();
        let connect_timeout = options.and_then(|o| o.connect_timeout).unwrap_or(Duration::from_secs(30));
        let first_byte_timeout = options.and_then(|o| o.first_byte_timeout).unwrap_or(Duration::from_secs(600));
        let failed = |error: HttpError, reason: String| {
            // Failed because the call went over an egress budget: the quota
            // is the news, not a network failure.
            if self.quota.hit().is_none() {
                self.fail(shown.clone(), "http", reason);
            }
            error
        };

        let mut last = (HttpError::ConnectionRefused, "no address to connect to".to_string());
        let mut stream = None;
        for addr in addrs {
            match tokio::time::timeout(connect_timeout, tokio::net::TcpStream::connect(addr)).await {
                Ok(Ok(s)) => {
                    // Counted on the wire (TLS included), for the call's egress.
                    let bytes = self.record.egress(if tls { "https" } else { "http" }, &host, addr.port(), true);
                    stream = Some(Counted { inner: s, bytes: bytes.unwrap_or_default(), quota: self.quota.clone() });
                    break;
                }
                Ok(Err(e)) => {
                    let reason = format!("cannot connect to {addr}: {e}");
                    last = (HttpError::Connect(e), reason);
                }
                Err(_) => last = (HttpError::ConnectionTimeout, format!("connecting to {addr} timed out")),
            }
        }
        let Some(stream) = stream else { return Err(failed(last.0, last.1)) };
        let io: Box<dyn Stream> = if tls {
            let name = match IpAddr::from_str(&host) {
                Ok(ip) => rustls::pki_types::ServerName::from(ip),
                Err(_) => rustls::pki_types::ServerName::try_from(host.clone())
                    .map_err(|_| HttpError::HttpRequestUriInvalid)?,
            };
            let connector = tokio_rustls::TlsConnector::from(self.tls.clone());
            match connector.connect(name, stream).await {
                Ok(s) => Box::new(s),
                Err(e) => {
                    let reason = format!("TLS with {host} failed: {e}");
                    return Err(failed(HttpError::Tls(e), reason));
                }
            }
        } else {
            Box::new(stream)
        };
        let (mut sender, conn) = match tokio::time::timeout(
            connect_timeout,
            hyper::client::conn::http1::handshake(wasmtime_wasi_http::io::TokioIo::new(io)),
        )
        .await
        {
            Ok(Ok(pair)) => pair,
            Ok(Err(e)) => return Err(failed(HttpError::from(e), "the HTTP handshake failed".into())),
            Err(_) => return Err(failed(HttpError::ConnectionTimeout, "the HTTP handshake timed out".into())),
        };
        // The request line carries only the path; the host is in `Host`.
        let path = request.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
        *request.uri_mut() =
            http::Uri::builder().path_and_query(path).build().map_err(|_| HttpError::HttpRequestUriInvalid)?;

        // The connection runs as its own task (aborted when dropped) so the
        // guest can read the body at its own pace.
        let driver = wasmtime_wasi::runtime::spawn(conn);
        let response = match tokio::time::timeout(first_byte_timeout, sender.send_request(request)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return Err(failed(HttpError::from(e), "the request failed".into())),
            Err(_) => return Err(failed(HttpError::ConnectionReadTimeout, "no response in time".into())),
        };
        let io_done = async move { driver.await.map_err(HttpError::from) };
        let response = response.map(|body| body.map_err(HttpError::from).boxed_unsync());
        Ok((response, Box::new(io_done)))
    }
}

trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// A connection that adds the bytes it carries to the call's egress record,
/// within the call's egress budgets: bytes over a budget are not let
/// through (the connection fails, and the call is stopped).
struct Counted<S> {
    inner: S,
    bytes: Bytes,
    quota: Arc<Quota>,
}

fn over_quota(message: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::PermissionDenied, message)
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = (buf.filled().len() - before) as u64;
        if let Err(message) = self.quota.take(Flow::Received, read) {
            // Read off the socket, never handed on.
            buf.set_filled(before);
            return Poll::Ready(Err(over_quota(message)));
        }
        self.bytes.received.fetch_add(read, Ordering::Relaxed);
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        // Refused before it is written: what leaves stays within the budget
        // (other connections of the call may race for the same room: the
        // count after the write catches them, and stops the call).
        if self.quota.limited()
            && data.len() as u64 > self.quota.room(Flow::Sent)
            && let Err(message) = self.quota.take(Flow::Sent, data.len() as u64)
        {
            return Poll::Ready(Err(over_quota(message)));
        }
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = polled {
            self.bytes.sent.fetch_add(n as u64, Ordering::Relaxed);
            // Already sent: a refusal here only stops the call.
            let _ = self.quota.take(Flow::Sent, n as u64);
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

fn bracket(host: &str) -> String {
    if host.contains(':') { format!("[{host}]") } else { host.to_string() }
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
