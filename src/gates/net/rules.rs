//! Network rules over hosts, addresses, ports and protocols: what a request,
//! a connection or a name lookup may reach. Pure logic, no I/O.
//!
//! - A host rule names a host (`api.example.com`), a wildcard (`*.example.com`:
//!   any subdomain, not the apex) or an IP literal; a CIDR rule names a range.
//! - A name resolving to a loopback, private, link-local, shared or
//!   cloud-metadata address reaches it only where an IP/CIDR rule names that
//!   address (the DNS-rebinding defence).
//! - Deny rules win over allow rules.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use ipnet::IpNet;

use crate::policy::{NetRule, NetworkPolicy};

#[derive(Clone, Debug, PartialEq)]
enum Target {
    Name(String),
    /// `*.example.com`: any subdomain (stored as `.example.com`), not the apex.
    Wildcard(String),
    Net(IpNet),
}

#[derive(Clone, Debug)]
pub struct Rule {
    target: Target,
    ports: Vec<u16>,
    pub schemes: Vec<String>,
    transports: Vec<String>,
    origin: String,
}

impl Rule {
    pub fn parse(r: &NetRule) -> Result<Self, String> {
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

    /// The rule names this host name.
    pub fn names(&self, host: &str) -> bool {
        match &self.target {
            Target::Name(n) => n == host,
            Target::Wildcard(suffix) => host.len() > suffix.len() && host.ends_with(suffix.as_str()),
            Target::Net(_) => false,
        }
    }

    /// The rule (an IP or CIDR rule) names this address.
    pub fn covers(&self, ip: IpAddr) -> bool {
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

    /// Allows HTTP(S) to a host or address it names, on this scheme and port.
    pub fn fits_http(&self, scheme: &str, port: u16) -> bool {
        self.schemes.iter().any(|s| s == scheme) && self.port_for_http(scheme, port)
    }

    /// Allows a raw socket of this transport on this port.
    pub fn fits_socket(&self, transport: &str, port: u16) -> bool {
        self.transports.iter().any(|t| t == transport) && self.port_for_socket(port)
    }
}

pub fn default_port(scheme: &str) -> u16 {
    if scheme == "https" { 443 } else { 80 }
}

/// IPv4-mapped IPv6 addresses are checked as the IPv4 address they are.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// Addresses a public name should never resolve to: loopback, private,
/// link-local (cloud metadata lives there), shared (CGNAT), unspecified,
/// multicast, documentation and other reserved ranges.
pub fn special(ip: IpAddr) -> bool {
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

/// A refused access, before it is recorded.
#[derive(Debug, PartialEq)]
pub struct Refusal {
    pub reason: String,
    pub rule: Option<String>,
}

impl Refusal {
    pub fn not_granted(reason: impl Into<String>) -> Self {
        Refusal { reason: reason.into(), rule: None }
    }

    fn by(rule: &Rule) -> Self {
        Refusal { reason: "denied by a deny rule".into(), rule: Some(rule.origin.clone()) }
    }
}

/// The compiled network rules of one call.
pub struct Rules {
    pub allow: Vec<Rule>,
    deny: Vec<Rule>,
}

impl Rules {
    pub fn new(policy: &NetworkPolicy) -> Result<Self, String> {
        let parse = |rules: &[NetRule]| rules.iter().map(Rule::parse).collect::<Result<Vec<_>, _>>();
        Ok(Rules { allow: parse(&policy.allow)?, deny: parse(&policy.deny)? })
    }

    pub fn denied_name(&self, host: &str, port: Option<u16>) -> Option<Refusal> {
        self.deny.iter().find(|r| r.names(host) && port.is_none_or(|p| r.deny_port(p))).map(Refusal::by)
    }

    pub fn denied_ip(&self, ip: IpAddr, port: u16) -> Option<Refusal> {
        self.deny.iter().find(|r| r.covers(ip) && r.deny_port(port)).map(Refusal::by)
    }

    /// An IP/CIDR allow rule names this address (on some port, for some use).
    pub fn names_ip(&self, ip: IpAddr) -> bool {
        self.allow.iter().any(|r| r.covers(ip))
    }

    /// Whether a name may be looked up; the allow rules that name it.
    pub fn lookup(&self, name: &str) -> Result<Vec<usize>, Refusal> {
        if let Some(r) = self.denied_name(name, None) {
            return Err(r);
        }
        let idx: Vec<usize> = (0..self.allow.len()).filter(|&i| self.allow[i].names(name)).collect();
        if idx.is_empty() {
            return Err(Refusal::not_granted("no rule grants this host"));
        }
        Ok(idx)
    }

    /// Whether a raw socket may reach `addr`; `resolved_by`: the allow rules
    /// whose names resolved to the address in this call, if any.
    pub fn socket(&self, addr: SocketAddr, transport: &str, resolved_by: Option<&[usize]>) -> Result<(), Refusal> {
        let ip = canonical(addr.ip());
        if let Some(r) = self.denied_ip(ip, addr.port()) {
            return Err(r);
        }
        if self.allow.iter().any(|r| r.covers(ip) && r.fits_socket(transport, addr.port())) {
            return Ok(());
        }
        if let Some(idx) = resolved_by {
            if idx.iter().any(|&i| self.allow[i].fits_socket(transport, addr.port())) {
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

    /// Whether an HTTP request may go to `host` (a name or an IP literal),
    /// before any lookup.
    pub fn http_target(&self, host: &str, scheme: &str, port: u16) -> Result<(), Refusal> {
        if scheme != "http" && scheme != "https" {
            return Err(Refusal::not_granted(format!("scheme {scheme} is not supported")));
        }
        if let Ok(ip) = IpAddr::from_str(host) {
            let ip = canonical(ip);
            if let Some(r) = self.denied_ip(ip, port) {
                return Err(r);
            }
            if !self.allow.iter().any(|r| r.covers(ip) && r.fits_http(scheme, port)) {
                return Err(Refusal::not_granted(self.hint(|r| r.covers(ip), scheme, port)));
            }
            return Ok(());
        }
        if let Some(r) = self.denied_name(host, Some(port)) {
            return Err(r);
        }
        if !self.allow.iter().any(|r| r.names(host) && r.fits_http(scheme, port)) {
            return Err(Refusal::not_granted(self.hint(|r| r.names(host), scheme, port)));
        }
        Ok(())
    }

    /// Of the addresses a granted name resolved to, those an HTTP request
    /// may use: a special address only where an IP/CIDR rule grants it for
    /// this scheme and port.
    pub fn http_addresses(&self, host: &str, ips: &[IpAddr], scheme: &str, port: u16) -> Result<Vec<IpAddr>, Refusal> {
        let mut allowed = Vec::new();
        for &ip in ips {
            if let Some(r) = self.denied_ip(ip, port) {
                return Err(r);
            }
            if !special(ip) || self.allow.iter().any(|r| r.covers(ip) && r.fits_http(scheme, port)) {
                allowed.push(ip);
            }
        }
        if allowed.is_empty() {
            return Err(Refusal::not_granted(format!(
                "{host} resolves to a loopback/private/link-local address that no rule grants for {scheme} on port {port}"
            )));
        }
        Ok(allowed)
    }

    /// Why a request was refused, in words that help fix it.
    fn hint(&self, names: impl Fn(&Rule) -> bool, scheme: &str, port: u16) -> String {
        let matching: Vec<&Rule> = self.allow.iter().filter(|r| names(r)).collect();
        if matching.is_empty() {
            return "no rule grants this host".into();
        }
        if !matching.iter().any(|r| r.schemes.iter().any(|s| s == scheme)) {
            return format!("the host is granted, but not for {scheme}");
        }
        format!("the host is granted, but not on port {port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(host: Option<&str>, cidr: Option<&str>, ports: &[u16], schemes: &[&str], transports: &[&str]) -> NetRule {
        NetRule {
            host: host.map(str::to_string),
            cidr: cidr.map(str::to_string),
            ports: ports.to_vec(),
            schemes: schemes.iter().map(|s| s.to_string()).collect(),
            transports: transports.iter().map(|s| s.to_string()).collect(),
            origin: "test".into(),
        }
    }

    fn rules(allow: Vec<NetRule>, deny: Vec<NetRule>) -> Rules {
        Rules::new(&NetworkPolicy { allow, deny }).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        IpAddr::from_str(s).unwrap()
    }

    #[test]
    fn wildcards_name_subdomains_not_the_apex() {
        let r = Rule::parse(&rule(Some("*.Example.com."), None, &[], &[], &[])).unwrap();
        assert!(r.names("api.example.com") && r.names("a.b.example.com"));
        assert!(!r.names("example.com") && !r.names("badexample.com"));
    }

    #[test]
    fn cidr_rules_cover_their_range_and_mapped_addresses() {
        let r = Rule::parse(&rule(None, Some("10.1.2.3/8"), &[], &[], &[])).unwrap();
        assert!(r.covers(ip("10.200.0.1")) && r.covers(ip("::ffff:10.0.0.9")));
        assert!(!r.covers(ip("11.0.0.1")));
        assert!(Rule::parse(&rule(None, Some("10.0.0.0/33"), &[], &[], &[])).is_err());
        assert!(Rule::parse(&rule(Some("a"), Some("10.0.0.0/8"), &[], &[], &[])).is_err());
    }

    #[test]
    fn special_addresses() {
        for s in ["127.0.0.1", "10.0.0.1", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0"] {
            assert!(special(ip(s)), "{s}");
        }
        for s in ["::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "64:ff9b::1"] {
            assert!(special(ip(s)), "{s}");
        }
        for s in ["93.184.216.34", "2606:4700::1111", "1.1.1.1"] {
            assert!(!special(ip(s)), "{s}");
        }
    }

    #[test]
    fn http_needs_a_matching_scheme_and_port() {
        let r = rules(vec![rule(Some("api.x.com"), None, &[], &["https"], &[])], vec![]);
        assert!(r.http_target("api.x.com", "https", 443).is_ok());
        assert_eq!(r.http_target("api.x.com", "http", 80).unwrap_err().reason, "the host is granted, but not for http");
        assert_eq!(
            r.http_target("api.x.com", "https", 8443).unwrap_err().reason,
            "the host is granted, but not on port 8443"
        );
        assert_eq!(r.http_target("other.com", "https", 443).unwrap_err().reason, "no rule grants this host");
        assert!(r.http_target("api.x.com", "ftp", 21).is_err());
    }

    #[test]
    fn deny_rules_win() {
        let r = rules(
            vec![
                rule(Some("*.x.com"), None, &[], &["https"], &["tcp"]),
                rule(None, Some("10.0.0.0/8"), &[], &["https"], &["tcp"]),
            ],
            vec![rule(Some("secret.x.com"), None, &[], &[], &[]), rule(None, Some("10.9.0.0/16"), &[443], &[], &[])],
        );
        assert_eq!(r.http_target("secret.x.com", "https", 443).unwrap_err().rule.as_deref(), Some("test"));
        assert!(r.http_target("open.x.com", "https", 443).is_ok());
        assert!(r.lookup("secret.x.com").is_err());
        assert!(r.http_target("10.9.1.1", "https", 443).is_err());
        assert!(r.http_target("10.8.1.1", "https", 443).is_ok());
        assert!(r.socket("10.9.1.1:443".parse().unwrap(), "tcp", None).is_err());
    }

    #[test]
    fn names_resolving_to_special_addresses_need_an_address_rule() {
        let r = rules(vec![rule(Some("intranet.x.com"), None, &[], &["http"], &[])], vec![]);
        assert!(r.http_addresses("intranet.x.com", &[ip("10.0.0.5")], "http", 80).is_err());
        assert_eq!(
            r.http_addresses("intranet.x.com", &[ip("10.0.0.5"), ip("1.2.3.4")], "http", 80).unwrap(),
            vec![ip("1.2.3.4")]
        );
        let with_cidr = rules(
            vec![
                rule(Some("intranet.x.com"), None, &[], &["http"], &[]),
                rule(None, Some("10.0.0.0/24"), &[], &["http"], &[]),
            ],
            vec![],
        );
        assert_eq!(
            with_cidr.http_addresses("intranet.x.com", &[ip("10.0.0.5")], "http", 80).unwrap(),
            vec![ip("10.0.0.5")]
        );
    }

    #[test]
    fn sockets_reach_what_a_lookup_taught_or_an_address_rule_names() {
        let r = rules(
            vec![
                rule(Some("db.x.com"), None, &[5432], &[], &["tcp"]),
                rule(None, Some("192.168.0.0/16"), &[], &[], &["udp"]),
            ],
            vec![],
        );
        let learned = r.lookup("db.x.com").unwrap();
        assert!(r.socket("1.2.3.4:5432".parse().unwrap(), "tcp", Some(&learned)).is_ok());
        assert!(r.socket("1.2.3.4:5433".parse().unwrap(), "tcp", Some(&learned)).is_err());
        assert!(r.socket("1.2.3.4:5432".parse().unwrap(), "udp", Some(&learned)).is_err());
        assert!(r.socket("1.2.3.4:5432".parse().unwrap(), "tcp", None).is_err());
        assert!(r.socket("192.168.1.1:53".parse().unwrap(), "udp", None).is_ok());
        assert!(r.socket("127.0.0.1:53".parse().unwrap(), "udp", None).unwrap_err().reason.contains("loopback"));
    }
}
