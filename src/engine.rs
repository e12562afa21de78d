//! The Wasmtime engine, its linker, the epoch ticker and the compiled-artifact
//! cache.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

use crate::error::Error;
use crate::exports::{ExportFunc, ExportInfo, describe_all, export_funcs};
use crate::sandbox::Host;
use crate::ticker::{ActiveGuard, Ticker};

/// How often the epoch advances while calls run: the granularity of
/// deadlines, cancellation and CPU-time checks.
pub const TICK: Duration = Duration::from_millis(10);

/// Bumped when anything we store in the artifact cache changes meaning.
const CACHE_FORMAT: &str = "wassette-cwasm-1";

pub struct EngineCore {
    pub engine: Engine,
    linker: Linker<Host>,
    pub fingerprint: String,
    cache_dir: Option<PathBuf>,
    ticker: Arc<Ticker>,
    pub allocator: Allocator,
    /// Whether pooled slots are reset with `PAGEMAP_SCAN` (see `pooling_config`).
    pub pagemap_scan: bool,
    /// TLS client configuration for guests' HTTPS requests.
    pub tls: Arc<rustls::ClientConfig>,
}

/// A compiled component, pre-linked so each call only needs a new store.
pub struct Compiled {
    pub sha256: String,
    pub pre: InstancePre<Host>,
    pub funcs: Vec<ExportFunc>,
    /// Functions of imported interfaces the host does not provide, as
    /// (interface, function): what another loaded component may satisfy.
    pub imports: Vec<(String, String)>,
    /// Whether this load came from the artifact cache.
    pub from_cache: bool,
    /// Whether it imports `wassette:mcp/host`'s questions (elicit,
    /// sample): its calls may wait for the client.
    pub asks_client: bool,
}

/// How instance memory is allocated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allocator {
    /// Preallocated slots reused call after call (copy-on-write memory
    /// images, no mmap per call): measured faster for every fixture.
    Pooling,
    /// Memory mapped for each instance and unmapped after it.
    OnDemand,
}

impl Allocator {
    pub fn name(self) -> &'static str {
        match self {
            Allocator::Pooling => "pooling",
            Allocator::OnDemand => "on-demand",
        }
    }
}

fn engine_config(allocator: Allocator, pagemap_scan: bool) -> Config {
    let mut cfg = Config::new();
    cfg.wasm_component_model(true)
        .epoch_interruption(true)
        .parallel_compilation(true)
        .cranelift_opt_level(OptLevel::Speed)
        .memory_init_cow(true);
    if allocator == Allocator::Pooling {
        cfg.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling_config(pagemap_scan)));
    }
    cfg
}

impl EngineCore {
    /// `allocator: None` picks pooling, falling back to on-demand where the
    /// pool cannot be reserved (e.g. a tight address-space limit).
    /// `ca_pem`: extra root certificates for guests' HTTPS (a private CA).
    pub fn new(
        cache_dir: Option<PathBuf>,
        allocator: Option<Allocator>,
        ca_pem: Option<&[u8]>,
    ) -> wasmtime::Result<Self> {
        let tls = crate::gates::net::tls_config(ca_pem).map_err(|e| wasmtime::format_err!("{e}"))?;
        let scan = PoolingAllocationConfig::is_pagemap_scan_available() && !swap_active();
        let (engine, allocator) = match allocator {
            Some(a) => (Engine::new(&engine_config(a, scan))?, a),
            None => match Engine::new(&engine_config(Allocator::Pooling, scan)) {
                Ok(e) => (e, Allocator::Pooling),
                Err(_) => (Engine::new(&engine_config(Allocator::OnDemand, scan))?, Allocator::OnDemand),
            },
        };
        let pagemap_scan = scan && allocator == Allocator::Pooling;

        let mut linker = Linker::<Host>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        // The gates replace parts of the standard WASI implementations.
        linker.allow_shadowing(true);
        crate::gates::fs::add_to_linker(&mut linker)?;
        crate::gates::net::add_to_linker(&mut linker)?;
        linker.allow_shadowing(false);
        crate::gates::config::add_to_linker(&mut linker)?;
        crate::gates::mcp::add_to_linker(&mut linker)?;

        let mut h = ShaHasher(Sha256::new());
        CACHE_FORMAT.hash(&mut h);
        engine.precompile_compatibility_hash().hash(&mut h);
        let fingerprint = hex::encode(h.0.finalize())[..16].to_string();

        let ticker = Ticker::start(engine.clone());
        Ok(EngineCore { engine, linker, fingerprint, cache_dir, ticker, allocator, pagemap_scan, tls })
    }

    /// Marks a call as running, so the epoch advances; ends with the guard.
    pub fn active(&self) -> ActiveGuard {
        self.ticker.enter()
    }

    /// Compiles `wasm`, or loads its artifact from the cache when the cache
    /// holds one for this exact wasm and engine.
    pub fn compile(&self, wasm: &[u8]) -> Result<Compiled, Error> {
        check_header(wasm)?;
        let sha256 = hex::encode(Sha256::digest(wasm));
        if let Some(component) = self.cached(&sha256) {
            return self.finish(sha256, component, true);
        }
        let component = Component::new(&self.engine, wasm).map_err(|e| Error::InvalidComponent(error_text(&e)))?;
        self.store_cached(&sha256, &component);
        // Served from the stored artifact from now on: mapped, not a private copy.
        let component = self.cached(&sha256).unwrap_or(component);
        self.finish(sha256, component, false)
    }

    /// Loads the component at `path`; with `sha256` given (the hash recorded
    /// when it was installed) a cached artifact is used without reading the
    /// wasm at all.
    pub fn load(&self, path: &Path, sha256: Option<&str>) -> Result<Compiled, Error> {
        if let Some(sha) = sha256
            && let Some(component) = self.cached(sha)
        {
            return self.finish(sha.to_string(), component, true);
        }
        let wasm = fs::read(path).map_err(|e| Error::Host(format!("cannot read {}: {e}", path.display())))?;
        let compiled = self.compile(&wasm)?;
        if let Some(expected) = sha256
            && expected != compiled.sha256
        {
            return Err(Error::InvalidComponent(format!(
                "{} changed on disk: sha256 is {}, expected {expected}",
                path.display(),
                compiled.sha256
            )));
        }
        Ok(compiled)
    }

    /// Schemas and docs of the exports (needs the wasm for its WIT docs).
    pub fn describe(&self, compiled: &Compiled, wasm: &[u8]) -> Vec<ExportInfo> {
        describe_all(&compiled.funcs, wasm)
    }

    fn finish(&self, sha256: String, component: Component, from_cache: bool) -> Result<Compiled, Error> {
        let mut linker = self.linker.clone();
        let imports = crate::imports::stub_unknown_imports(&mut linker, &self.engine, &component)
            .map_err(|e| Error::InvalidComponent(error_text(&e)))?;
        let pre = linker.instantiate_pre(&component).map_err(|e| Error::InvalidComponent(error_text(&e)))?;
        let funcs = export_funcs(&self.engine, &component);
        let asks_client = crate::gates::mcp::asks_client(&self.engine, &component);
        Ok(Compiled { sha256, pre, funcs, imports, from_cache, asks_client })
    }

    fn cache_paths(&self, sha256: &str) -> Option<(PathBuf, PathBuf)> {
        // The key is the wasm's hash and the engine fingerprint; anything else
        // in the directory is never looked at.
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let dir = self.cache_dir.as_ref()?;
        let base = format!("{sha256}-{}", self.fingerprint);
        Some((dir.join(format!("{base}.cwasm")), dir.join(format!("{base}.cwasm.sha256"))))
    }

    /// The cached artifact for this wasm, mapped from its file: only the
    /// pages a call touches take memory, and they are shared with the page
    /// cache (a private copy of a JS or Python component is ~33 MB).
    fn cached(&self, sha256: &str) -> Option<Component> {
        let (artifact, sum) = self.cache_paths(sha256)?;
        let expected = fs::read_to_string(&sum).ok()?;
        // A truncated or altered artifact is native code we must not run: it
        // is hashed through one open file, and that same file (not whatever
        // the path names by then) is what gets mapped.
        let mut file = fs::File::open(&artifact).ok()?;
        if sha256_of(&mut file).ok()? != expected.trim() {
            return None;
        }
        let fd_path = Path::new("/proc/self/fd").join(file.as_raw_fd().to_string());
        if fd_path.exists() {
            // SAFETY: the artifact was written by this engine configuration
            // (the fingerprint is in its name) with an atomic rename (so no
            // writer of ours changes a mapped file), and its content hash
            // matches the one recorded when it was written; Wasmtime re-checks
            // compatibility.
            return unsafe { Component::deserialize_file(&self.engine, &fd_path) }.ok();
        }
        // Without /proc: a private copy of the bytes, checked again.
        let mut bytes = Vec::new();
        file.seek(SeekFrom::Start(0)).and_then(|_| file.read_to_end(&mut bytes)).ok()?;
        if hex::encode(Sha256::digest(&bytes)) != expected.trim() {
            return None;
        }
        // SAFETY: as above; these are the bytes just hashed.
        unsafe { Component::deserialize(&self.engine, &bytes) }.ok()
    }

    fn store_cached(&self, sha256: &str, component: &Component) {
        let Some((artifact, sum)) = self.cache_paths(sha256) else { return };
        let Ok(bytes) = component.serialize() else { return };
        let digest = hex::encode(Sha256::digest(&bytes));
        // Best effort: a cache that cannot be written only costs a recompile.
        let _ = fs::create_dir_all(artifact.parent().unwrap())
            .and_then(|_| write_atomic(&artifact, &bytes))
            .and_then(|_| write_atomic(&sum, digest.as_bytes()));
    }
}

/// Slots for concurrent instances; sized for real toolchains (componentize-py
/// components hold a dozen core instances) and ~100 calls in flight.
///
/// Between calls a slot is reset to its initial image. Where the kernel has
/// `PAGEMAP_SCAN` (Linux 6.7+), only the pages the call wrote are found and
/// copied back, and they stay mapped: no `madvise` and no page faults on the
/// next call (measured: JS time-server call 1.40 -> 0.97 ms, Python eval
/// 1.62 -> 1.33 ms). Memory a call did not write is never touched; past
/// the resident budget, the rest is released as before.
///
/// Not while swap is on: the scan only finds written pages that are in
/// memory, so a page a call wrote and the kernel swapped out before the call
/// ended keeps its contents into the next call's instance (seen here: a value
/// stored by one call read back by the next, with a swap file on and the
/// call's memory paged out while it ran). The plain reset overwrites or
/// releases every page, swapped or not.
fn pooling_config(pagemap_scan: bool) -> PoolingAllocationConfig {
    let mut p = PoolingAllocationConfig::default();
    p.total_component_instances(128)
        .total_core_instances(2048)
        .total_memories(1024)
        .total_tables(2048)
        .total_stacks(128)
        .max_core_instances_per_component(64)
        .max_memories_per_component(16)
        .max_tables_per_component(64)
        .max_component_instance_size(1 << 20)
        .max_core_instance_size(1 << 20)
        .table_elements(100_000)
        .max_memory_size(4 << 30);
    if pagemap_scan {
        p.pagemap_scan(Enabled::Yes).linear_memory_keep_resident(4 << 20).table_keep_resident(1 << 20);
    } else {
        // Without the scan, kept memory is reset with memset whether it was
        // written or not: only worth it for the first pages.
        p.linear_memory_keep_resident(1 << 20);
    }
    p
}

/// Whether any swap space is on (`/proc/swaps` lists more than its header);
/// yes when that cannot be read. Swap turned on later is not seen.
fn swap_active() -> bool {
    fs::read_to_string("/proc/swaps").map_or(true, |s| s.lines().skip(1).any(|l| !l.trim().is_empty()))
}

/// The hex SHA-256 of a file's content, read through the given handle.
fn sha256_of(file: &mut fs::File) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buffer[..n]);
    }
}

/// Writes `path` so that readers see the old content or the new, never half.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = fs::File::create(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    fs::rename(&tmp, path)
}

/// Tells a core module or random bytes apart from a component, clearly.
fn check_header(wasm: &[u8]) -> Result<(), Error> {
    if wasm.len() < 8 || &wasm[..4] != b"\0asm" {
        return Err(Error::InvalidComponent("not a WebAssembly binary (bad magic number)".into()));
    }
    match &wasm[4..8] {
        [1, 0, 0, 0] => Err(Error::InvalidComponent(
            "this is a core WebAssembly module, not a component; wrap it with \
             `wasm-tools component new` (see the docs on writing components)"
                .into(),
        )),
        [_, _, 1, 0] => Ok(()),
        _ => Err(Error::InvalidComponent("unsupported WebAssembly binary version or layer".into())),
    }
}

/// An error's chain as one line: "outer: inner: root".
pub fn error_text(e: &wasmtime::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}

struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        unreachable!("only used to feed bytes")
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// The async runtime shared by all calls (WASI I/O, HTTP, timers).
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("wassette-io")
            .enable_all()
            .build()
            .expect("tokio runtime")
    })
}
