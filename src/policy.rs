//! The effective policy of one call: a plain structure computed by the Python
//! side from policy files, grants, secrets and configuration. Everything not
//! listed here is denied.

use serde::Deserialize;

/// Defaults used when the caller does not say otherwise.
pub const DEFAULT_MEMORY_LIMIT: u64 = 512 * 1024 * 1024;
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;
pub const DEFAULT_OUTPUT_LIMIT: usize = 1024 * 1024;
/// The largest result a call may return, as JSON (an image of a few MiB
/// fits; a guest returning hundreds of MiB would otherwise be copied into
/// the server's memory twice over and onto the wire).
pub const RESULT_LIMIT: usize = 32 * 1024 * 1024;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EffectivePolicy {
    /// Environment variables the guest sees, and nothing else.
    pub env: Vec<(String, String)>,
    /// Files and directories the guest may reach, with per-path rules.
    pub storage: StoragePolicy,
    /// Hosts and addresses the guest may reach (HTTP and sockets alike).
    pub network: NetworkPolicy,
    /// Cap on the sum of all linear memories of the instance, in bytes.
    pub memory_limit_bytes: Option<u64>,
    /// Wall-clock limit of the call, in milliseconds.
    pub timeout_ms: Option<u64>,
    /// CPU-time limit of the call (time spent running guest code), in ms.
    pub cpu_time_ms: Option<u64>,
    /// Bytes of guest stdout / stderr kept; the rest is counted and dropped.
    pub stdout_limit_bytes: Option<usize>,
    pub stderr_limit_bytes: Option<usize>,
    /// What this call's network egress may use (`gates::quota`); empty: no
    /// limit. The runtime computes them per call: per-call limits as the
    /// policy states them, per-minute limits as what is left of the window.
    pub egress_limits: Vec<EgressLimit>,
}

/// One egress budget of a call.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EgressLimit {
    /// What it counts: `sent` or `received` bytes, `bytes` (both ways), or
    /// `requests` (HTTP requests, TCP connections, UDP datagram sends).
    pub counts: Counts,
    /// How much of it this call may use.
    pub max: u64,
    /// The limit as the policy states it, and over what (`call`, `minute`),
    /// for the message: "1048576 bytes received per call".
    pub value: u64,
    pub per: String,
    /// The policy field that set it, e.g. `network.limits.bytes_received_per_call`.
    pub origin: String,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Counts {
    Sent,
    Received,
    Bytes,
    Requests,
}

/// Storage rules over absolute host paths. The guest sees granted paths at
/// the same absolute path as the host. An access is allowed when an `allow`
/// rule matches with the needed access and no `deny` rule matches (deny wins).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoragePolicy {
    pub allow: Vec<StorageRule>,
    pub deny: Vec<StorageRule>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageRule {
    /// An absolute, normalised host path, optionally with glob parts: `*`
    /// (within one path segment), `**` (any number of segments). A rule
    /// without globs names a file, or a directory and everything below it.
    pub path: String,
    /// The same place as the user named it, when that differs from `path`
    /// (a symlink on the way): the guest finds the grant there too.
    #[serde(default)]
    pub alias: Option<String>,
    #[serde(default)]
    pub read: bool,
    #[serde(default)]
    pub write: bool,
    /// Where the rule came from (e.g. `permissions.storage.allow[0]`), for
    /// denial messages and audit records.
    #[serde(default)]
    pub origin: String,
}

/// Network rules. A connection or request is allowed when an `allow` rule
/// matches (host or address, port, scheme) and no `deny` rule matches.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkPolicy {
    pub allow: Vec<NetRule>,
    pub deny: Vec<NetRule>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetRule {
    /// A host name (`api.example.com`), a wildcard (`*.example.com`: any
    /// subdomain, not the apex), or an IP literal. Lower-case, no port.
    #[serde(default)]
    pub host: Option<String>,
    /// An address range, e.g. `10.0.0.0/8` or `::1/128`.
    #[serde(default)]
    pub cidr: Option<String>,
    /// Allowed ports. Empty: HTTP on its scheme's default port (80, 443);
    /// raw sockets on the default ports of the rule's schemes, or on any
    /// port when the rule has no schemes.
    #[serde(default)]
    pub ports: Vec<u16>,
    /// Schemes allowed for HTTP requests (`http`, `https`); empty: none.
    #[serde(default)]
    pub schemes: Vec<String>,
    /// Raw-socket transports allowed (`tcp`, `udp`); empty: none.
    #[serde(default)]
    pub transports: Vec<String>,
    #[serde(default)]
    pub origin: String,
}

impl EffectivePolicy {
    pub fn parse(json: &str) -> Result<Self, String> {
        if json.trim().is_empty() {
            return Ok(Self::default());
        }
        serde_json::from_str(json).map_err(|e| format!("invalid effective policy: {e}"))
    }

    pub fn memory_limit(&self) -> u64 {
        self.memory_limit_bytes.unwrap_or(DEFAULT_MEMORY_LIMIT)
    }

    pub fn timeout_ms(&self) -> u64 {
        self.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS)
    }
}
