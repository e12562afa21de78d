//! The effective policy of one call: a plain structure computed by the Python
//! side from policy files, grants, secrets and configuration. Everything not
//! listed here is denied.

use serde::Deserialize;

/// Defaults used when the caller does not say otherwise.
pub const DEFAULT_MEMORY_LIMIT: u64 = 512 * 1024 * 1024;
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;
pub const DEFAULT_OUTPUT_LIMIT: usize = 1024 * 1024;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EffectivePolicy {
    /// Environment variables the guest sees, and nothing else.
    pub env: Vec<(String, String)>,
    /// Host directories exposed to the guest.
    pub preopens: Vec<Preopen>,
    /// Cap on the sum of all linear memories of the instance, in bytes.
    pub memory_limit_bytes: Option<u64>,
    /// Wall-clock limit of the call, in milliseconds.
    pub timeout_ms: Option<u64>,
    /// CPU-time limit of the call (time spent running guest code), in ms.
    pub cpu_time_ms: Option<u64>,
    /// Bytes of guest stdout / stderr kept; the rest is counted and dropped.
    pub stdout_limit_bytes: Option<usize>,
    pub stderr_limit_bytes: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preopen {
    pub host_path: String,
    pub guest_path: String,
    #[serde(default)]
    pub write: bool,
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
