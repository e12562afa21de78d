//! Where things are on the host: the directories to preopen, the decoy
//! root, where an open descriptor points, how the host resolves a path, and
//! which files the deny rules name (for hard-link checks).

use std::collections::HashSet;
use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use wasmtime_wasi::filesystem::Descriptor;
use wasmtime_wasi::p2::bindings::filesystem::types::ErrorCode;

use super::rules::{StorageRules, normalize};

/// Files walked to find the hard-link identities of denied files; beyond
/// this, files with several links are refused outright.
const DENY_WALK_LIMIT: usize = 50_000;

/// One preopened directory: where it is, where the guest sees it, and
/// whether anything below it may be written.
#[derive(Debug, PartialEq)]
pub struct Root {
    pub host: PathBuf,
    pub guest: PathBuf,
    pub write: bool,
}

/// The directories to preopen: for each allow rule, the nearest existing
/// directory at or above its fixed part, at the same path in the guest (and
/// again where the user named it, if a symlink lies on the way); nested ones
/// fold into the outer.
pub fn preopen_roots(rules: &StorageRules) -> Vec<Root> {
    let mut roots: Vec<Root> = Vec::new();
    for (prefix, alias, write) in rules.allow_roots() {
        let mut dir = prefix.as_path();
        let mut up = 0;
        while !dir.is_dir() {
            match dir.parent() {
                Some(p) => {
                    dir = p;
                    up += 1;
                }
                None => break,
            }
        }
        roots.push(Root { host: dir.to_path_buf(), guest: dir.to_path_buf(), write });
        if let Some(alias) = alias {
            let guest: PathBuf = alias.ancestors().nth(up).unwrap_or(Path::new("/")).to_path_buf();
            if guest != dir {
                roots.push(Root { host: dir.to_path_buf(), guest, write });
            }
        }
    }
    roots.sort_by(|a, b| a.guest.cmp(&b.guest));
    let mut merged: Vec<Root> = Vec::new();
    for root in roots {
        match merged.iter_mut().find(|outer| root.guest.starts_with(&outer.guest) && root.host.starts_with(&outer.host))
        {
            Some(outer) => outer.write |= root.write,
            None => merged.push(root),
        }
    }
    merged
}

/// The gate learns where a descriptor points from `/proc/self/fd`; without
/// it no grant could be checked, so none is given.
pub fn proc_fd_works() -> wasmtime::Result<()> {
    static WORKS: OnceLock<bool> = OnceLock::new();
    let works = *WORKS
        .get_or_init(|| fs::File::open("/").is_ok_and(|f| fd_path(f.as_raw_fd()).is_ok_and(|p| p == Path::new("/"))));
    if works { Ok(()) } else { wasmtime::bail!("storage grants need /proc/self/fd (Linux with /proc mounted)") }
}

/// An empty directory no one can write to, shown to the guest as `/`.
pub fn decoy_dir() -> wasmtime::Result<&'static PathBuf> {
    static DECOY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let made = DECOY.get_or_init(|| {
        // SAFETY: getuid has no preconditions.
        let uid = unsafe { libc::getuid() };
        let tmp = std::env::temp_dir();
        let stable = tmp.join(format!("wassette-{uid}-empty-root"));
        let _ = fs::DirBuilder::new().mode(0o500).create(&stable);
        if decoy_usable(&stable, uid) {
            return Ok(stable);
        }
        // Someone else's (or a non-empty) directory under that name: use our own.
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let unique = tmp.join(format!("wassette-{uid}-empty-root-{}-{nanos}", std::process::id()));
        fs::DirBuilder::new()
            .mode(0o500)
            .create(&unique)
            .map_err(|e| format!("cannot create {}: {e}", unique.display()))?;
        Ok(unique)
    });
    made.as_ref().map_err(|e| wasmtime::format_err!("{e}"))
}

fn decoy_usable(path: &Path, uid: u32) -> bool {
    let Ok(meta) = fs::symlink_metadata(path) else { return false };
    meta.is_dir()
        && meta.uid() == uid
        && meta.permissions().mode() & 0o222 == 0
        && fs::read_dir(path).map(|mut d| d.next().is_none()).unwrap_or(false)
}

/// Where a descriptor points: the decoy root, or a real host path.
pub enum Base {
    Decoy,
    Real(PathBuf),
}

impl Base {
    pub fn path(&self) -> &Path {
        match self {
            Base::Decoy => Path::new("/"),
            Base::Real(p) => p,
        }
    }
}

pub fn raw_fd(d: &Descriptor) -> i32 {
    match d {
        Descriptor::File(f) => f.file.as_raw_fd(),
        Descriptor::Dir(d) => d.dir.as_raw_fd(),
    }
}

/// The current host path of an open file descriptor.
pub fn fd_path(fd: i32) -> Result<PathBuf, ErrorCode> {
    let link = fs::read_link(format!("/proc/self/fd/{fd}")).map_err(|_| ErrorCode::Io)?;
    let text = link.to_string_lossy();
    Ok(match text.strip_suffix(" (deleted)") {
        Some(t) => PathBuf::from(t),
        None => link,
    })
}

/// How the host resolves `path`: symlinks followed (the final one only when
/// `follow`), `..` taken physically. A missing final component is kept as
/// written under its resolved parent.
pub fn resolve(path: &Path, follow: bool) -> PathBuf {
    if follow && let Ok(p) = fs::canonicalize(path) {
        return p;
    }
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => match fs::canonicalize(parent) {
            Ok(p) => p.join(name),
            Err(_) => normalize(Path::new("/"), &path.to_string_lossy()),
        },
        _ => normalize(Path::new("/"), &path.to_string_lossy()),
    }
}

/// Every file under the deny rules' roots that a deny rule names.
pub fn walk_denied(rules: &StorageRules) -> Option<HashSet<(u64, u64)>> {
    let mut found = HashSet::new();
    let mut seen = 0usize;
    let mut stack = rules.deny_roots();
    while let Some(path) = stack.pop() {
        seen += 1;
        if seen > DENY_WALK_LIMIT {
            return None;
        }
        let Ok(meta) = fs::symlink_metadata(&path) else { continue };
        if meta.is_dir() {
            if let Ok(entries) = fs::read_dir(&path) {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
        } else if meta.is_file() && rules.denied(&path) {
            found.insert((meta.dev(), meta.ino()));
        }
    }
    Some(found)
}
