//! The storage gate: `wasi:filesystem` checked against the storage policy.
//!
//! (Stub: directories are preopened as granted; per-path rules are not yet
//! enforced, so a policy with globs, single files or deny rules is refused.)

use wasmtime::component::Linker;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use crate::policy::StoragePolicy;
use crate::sandbox::{Denials, Host};

/// Per-call state of the gate, kept in the store.
#[derive(Default)]
pub struct FsGate {}

/// Registers the gated `wasi:filesystem` implementation in the linker.
pub fn add_to_linker(_linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    Ok(())
}

/// Preopens what `storage` grants and returns the gate that checks paths.
pub fn configure(b: &mut WasiCtxBuilder, storage: &StoragePolicy, _denials: &Denials) -> wasmtime::Result<FsGate> {
    if !storage.deny.is_empty() || storage.allow.iter().any(|r| r.path.contains('*')) {
        wasmtime::bail!("storage deny rules and globs are not supported yet");
    }
    for rule in &storage.allow {
        let perms = if rule.write { FsPerms::ReadWrite } else { FsPerms::ReadOnly };
        b.preopened_dir(&rule.path, &rule.path, perms)
            .map_err(|e| e.context(format!("cannot open granted directory {}", rule.path)))?;
    }
    Ok(FsGate {})
}
