//! The storage gate: `wasi:filesystem/types` checked against the storage
//! rules on every route a path can take.
//!
//! Wasmtime's own implementation does the work; this layer decides first.
//! - Granted directories are preopened at the same path inside and outside.
//!   An empty, read-only decoy directory is preopened at `/`, so an access
//!   outside every grant still reaches the host, is refused and recorded
//!   (instead of failing silently inside the guest's libc).
//! - A path is checked as written (`..` resolved as text) and as the host
//!   resolves it (symlinks followed where the operation follows them); both
//!   must pass. After an open, the opened file's real path is checked again,
//!   which closes the gap between check and open; a file with several hard
//!   links is refused when one of its names lies under a deny rule.
//! - Truncation is done only after the opened file passed every check.
//! - Directory listings hide entries the guest may not see.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::filesystem::{Descriptor, WasiFilesystemCtxView, WasiFilesystemView};
use wasmtime_wasi::p2::bindings::filesystem::types::{
    self, DirectoryEntryStream, ErrorCode, HostDescriptor, HostDirectoryEntryStream,
};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, FsError, FsResult};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

pub mod rules;

use rules::{Need, Refusal, StorageRules, normalize};

use crate::gates::{Denial, Record};
use crate::policy::StoragePolicy;
use crate::sandbox::Host;

/// Files walked to find the hard-link identities of denied files; beyond
/// this, files with several links are refused outright.
const DENY_WALK_LIMIT: usize = 50_000;

/// Per-call state of the gate, kept in the store.
pub struct FsGate {
    rules: Arc<StorageRules>,
    record: Record,
    decoy: PathBuf,
    /// Directory each open directory-entry stream lists.
    streams: HashMap<u32, PathBuf>,
    /// (device, inode) of every file a deny rule names; `None` when there
    /// were too many to walk.
    denied_inodes: Option<Option<HashSet<(u64, u64)>>>,
}

/// The filesystem view the gated bindings work on.
pub struct GatedFs<'a> {
    inner: WasiFilesystemCtxView<'a>,
    gate: &'a mut FsGate,
}

struct GatedFsData;

impl HasData for GatedFsData {
    type Data<'a> = GatedFs<'a>;
}

impl Host {
    fn gated_fs(&mut self) -> GatedFs<'_> {
        GatedFs { inner: self.wasi.filesystem(), gate: &mut self.fs }
    }
}

/// Replaces `wasi:filesystem/types` in the linker with the gated version.
pub fn add_to_linker(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    types::add_to_linker::<Host, GatedFsData>(linker, Host::gated_fs)
}

/// Preopens what `storage` grants (plus the decoy root) and returns the gate.
pub fn configure(b: &mut WasiCtxBuilder, storage: &StoragePolicy, record: &Record) -> wasmtime::Result<FsGate> {
    let rules = StorageRules::new(storage);
    if !storage.allow.is_empty() {
        proc_fd_works()?;
    }
    let roots = preopen_roots(&rules);
    for root in &roots {
        let perms = if root.write { FsPerms::ReadWrite } else { FsPerms::ReadOnly };
        b.preopened_dir(&root.host, root.guest.to_string_lossy(), perms)
            .map_err(|e| e.context(format!("cannot open granted directory {}", root.host.display())))?;
    }
    let decoy = decoy_dir()?.clone();
    if !roots.iter().any(|r| r.guest == Path::new("/")) {
        b.preopened_dir(&decoy, "/", FsPerms::ReadOnly)?;
    }
    Ok(FsGate { rules: Arc::new(rules), record: record.clone(), decoy, streams: HashMap::new(), denied_inodes: None })
}

/// One preopened directory: where it is, where the guest sees it, and
/// whether anything below it may be written.
#[derive(Debug, PartialEq)]
struct Root {
    host: PathBuf,
    guest: PathBuf,
    write: bool,
}

/// The directories to preopen: for each allow rule, the nearest existing
/// directory at or above its fixed part, at the same path in the guest (and
/// again where the user named it, if a symlink lies on the way); nested ones
/// fold into the outer.
fn preopen_roots(rules: &StorageRules) -> Vec<Root> {
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
fn proc_fd_works() -> wasmtime::Result<()> {
    static WORKS: OnceLock<bool> = OnceLock::new();
    let works = *WORKS
        .get_or_init(|| fs::File::open("/").is_ok_and(|f| fd_path(f.as_raw_fd()).is_ok_and(|p| p == Path::new("/"))));
    if works { Ok(()) } else { wasmtime::bail!("storage grants need /proc/self/fd (Linux with /proc mounted)") }
}

/// An empty directory no one can write to, shown to the guest as `/`.
fn decoy_dir() -> wasmtime::Result<&'static PathBuf> {
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
enum Base {
    Decoy,
    Real(PathBuf),
}

impl Base {
    fn path(&self) -> &Path {
        match self {
            Base::Decoy => Path::new("/"),
            Base::Real(p) => p,
        }
    }
}

fn raw_fd(d: &Descriptor) -> i32 {
    match d {
        Descriptor::File(f) => f.file.as_raw_fd(),
        Descriptor::Dir(d) => d.dir.as_raw_fd(),
    }
}

/// The current host path of an open file descriptor.
fn fd_path(fd: i32) -> Result<PathBuf, ErrorCode> {
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
fn resolve(path: &Path, follow: bool) -> PathBuf {
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

fn denied() -> FsError {
    ErrorCode::Access.into()
}

/// A borrowed handle to the same descriptor (resources are not `Clone`).
fn same<T: 'static>(r: &Resource<T>) -> Resource<T> {
    if r.owned() { Resource::new_own(r.rep()) } else { Resource::new_borrow(r.rep()) }
}

impl GatedFs<'_> {
    fn base(&mut self, fd: &Resource<types::Descriptor>) -> FsResult<Base> {
        let raw = raw_fd(self.inner.table.get(fd)?);
        let path = fd_path(raw)?;
        Ok(if path == self.gate.decoy { Base::Decoy } else { Base::Real(path) })
    }

    /// Records a refusal of `need` on `shown` (really `real`) and returns
    /// the error the guest sees. Looking for something that is not there
    /// (runtimes probe for modules and config files) is refused alike but
    /// not recorded: nothing was at stake.
    fn refuse(&self, shown: &Path, real: &Path, need: Need, refusal: Refusal) -> FsError {
        if need != Need::Write && fs::symlink_metadata(real).is_err() {
            return denied();
        }
        self.gate.record.deny(Denial {
            kind: "storage",
            resource: shown.display().to_string(),
            resolved: (real != shown).then(|| real.display().to_string()),
            access: need.word().into(),
            reason: refusal.reason,
            rule: refusal.rule,
        });
        denied()
    }

    /// Checks `rel` under `fd` for `need`, as written and as resolved;
    /// returns the resolved host path.
    fn guard(&mut self, fd: &Resource<types::Descriptor>, rel: &str, follow: bool, need: Need) -> FsResult<PathBuf> {
        let base = self.base(fd)?;
        let lexical = normalize(base.path(), rel);
        let rules = self.gate.rules.clone();
        if let Base::Decoy = base {
            // Nothing is reachable through the decoy but its own empty self.
            // A path the rules would allow is merely outside the preopens.
            if lexical == Path::new("/") && need == Need::See {
                return Ok(lexical);
            }
            return match rules.check(&lexical, need) {
                Ok(()) => Err(ErrorCode::NoEntry.into()),
                Err(r) => Err(self.refuse(&lexical, &lexical, need, r)),
            };
        }
        let resolved = resolve(&base.path().join(rel), follow);
        // Seeing a file (its size, its times) needs a grant that names it;
        // directories on the way to a grant may be seen.
        let need = match need {
            Need::See if fs::symlink_metadata(&resolved).is_ok_and(|m| !m.is_dir()) => Need::SeeFile,
            other => other,
        };
        if let Err(r) = rules.check(&lexical, need) {
            return Err(self.refuse(&lexical, &lexical, need, r));
        }
        if resolved != lexical
            && let Err(r) = rules.check(&resolved, need)
        {
            return Err(self.refuse(&lexical, &resolved, need, r));
        }
        Ok(resolved)
    }

    /// Re-checks a freshly opened descriptor by what it really is; on refusal
    /// the descriptor is closed.
    fn verify_opened(
        &mut self,
        new_fd: Resource<types::Descriptor>,
        shown: &Path,
        read: bool,
        write: bool,
    ) -> FsResult<Resource<types::Descriptor>> {
        let outcome = self.check_opened(&new_fd, shown, read, write);
        match outcome {
            Ok(()) => Ok(new_fd),
            Err(e) => {
                let _ = self.inner.table.delete(new_fd);
                Err(e)
            }
        }
    }

    fn check_opened(
        &mut self,
        fd: &Resource<types::Descriptor>,
        shown: &Path,
        read: bool,
        write: bool,
    ) -> FsResult<()> {
        let raw = raw_fd(self.inner.table.get(fd)?);
        let real = fd_path(raw)?;
        if real == self.gate.decoy && !write {
            return Ok(()); // the decoy root itself: empty, read-only
        }
        let meta = match self.inner.table.get(fd)? {
            Descriptor::File(f) => f.file.metadata(),
            Descriptor::Dir(d) => d.dir.metadata(),
        }
        .map_err(|_| ErrorCode::Io)?;
        let is_dir = meta.is_dir();
        let mut needs = Vec::new();
        if write {
            needs.push(Need::Write);
        }
        if read && !is_dir {
            needs.push(Need::Read);
        }
        if needs.is_empty() {
            needs.push(if is_dir { Need::See } else { Need::SeeFile });
        }
        let rules = self.gate.rules.clone();
        for need in needs {
            if let Err(r) = rules.check(&real, need) {
                return Err(self.refuse(shown, &real, need, r));
            }
        }
        if !is_dir && meta.nlink() > 1 && rules.has_deny_rules() {
            let id = (meta.dev(), meta.ino());
            let linked = match self.denied_inodes() {
                Some(set) => set.contains(&id),
                None => true,
            };
            if linked {
                let refusal = Refusal {
                    reason: "the file has another name (a hard link) under a denied path".into(),
                    rule: Some("permissions.storage.deny".into()),
                };
                let need = if write { Need::Write } else { Need::Read };
                return Err(self.refuse(shown, &real, need, refusal));
            }
        }
        Ok(())
    }

    fn denied_inodes(&mut self) -> Option<&HashSet<(u64, u64)>> {
        if self.gate.denied_inodes.is_none() {
            let found = walk_denied(&self.gate.rules);
            self.gate.denied_inodes = Some(found);
        }
        self.gate.denied_inodes.as_ref().and_then(|s| s.as_ref())
    }
}

/// Every file under the deny rules' roots that a deny rule names.
fn walk_denied(rules: &StorageRules) -> Option<HashSet<(u64, u64)>> {
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

impl types::Host for GatedFs<'_> {
    fn convert_error_code(&mut self, err: FsError) -> wasmtime::Result<ErrorCode> {
        types::Host::convert_error_code(&mut self.inner, err)
    }

    fn filesystem_error_code(&mut self, err: Resource<wasmtime::Error>) -> wasmtime::Result<Option<ErrorCode>> {
        types::Host::filesystem_error_code(&mut self.inner, err)
    }
}

/// Methods the gate has nothing to decide for: they act on a descriptor that
/// was checked when it was opened (a read-only one cannot write or resize),
/// and go straight to Wasmtime's own implementation.
macro_rules! pass_through {
    ($(async fn $name:ident(&mut self $(, $arg:ident: $ty:ty)*) -> $ret:ty;)*) => {
        $(async fn $name(&mut self $(, $arg: $ty)*) -> $ret {
            self.inner.$name($($arg),*).await
        })*
    };
    ($(fn $name:ident(&mut self $(, $arg:ident: $ty:ty)*) -> $ret:ty;)*) => {
        $(fn $name(&mut self $(, $arg: $ty)*) -> $ret {
            self.inner.$name($($arg),*)
        })*
    };
}

type Fd = Resource<types::Descriptor>;

impl HostDescriptor for GatedFs<'_> {
    pass_through! {
        async fn advise(&mut self, fd: Fd, offset: types::Filesize, len: types::Filesize, advice: types::Advice) -> FsResult<()>;
        async fn sync_data(&mut self, fd: Fd) -> FsResult<()>;
        async fn get_flags(&mut self, fd: Fd) -> FsResult<types::DescriptorFlags>;
        async fn get_type(&mut self, fd: Fd) -> FsResult<types::DescriptorType>;
        async fn set_size(&mut self, fd: Fd, size: types::Filesize) -> FsResult<()>;
        async fn read(&mut self, fd: Fd, len: types::Filesize, offset: types::Filesize) -> FsResult<(Vec<u8>, bool)>;
        async fn write(&mut self, fd: Fd, buf: Vec<u8>, offset: types::Filesize) -> FsResult<types::Filesize>;
        async fn sync(&mut self, fd: Fd) -> FsResult<()>;
        async fn stat(&mut self, fd: Fd) -> FsResult<types::DescriptorStat>;
        async fn is_same_object(&mut self, a: Fd, b: Fd) -> wasmtime::Result<bool>;
        async fn metadata_hash(&mut self, fd: Fd) -> FsResult<types::MetadataHashValue>;
    }
    pass_through! {
        fn read_via_stream(&mut self, fd: Fd, offset: types::Filesize) -> FsResult<Resource<DynInputStream>>;
        fn write_via_stream(&mut self, fd: Fd, offset: types::Filesize) -> FsResult<Resource<DynOutputStream>>;
        fn append_via_stream(&mut self, fd: Fd) -> FsResult<Resource<DynOutputStream>>;
    }

    async fn set_times(
        &mut self,
        fd: Resource<types::Descriptor>,
        atim: types::NewTimestamp,
        mtim: types::NewTimestamp,
    ) -> FsResult<()> {
        // futimens works on read-only descriptors too: check for write.
        let path = self.base(&fd)?.path().to_path_buf();
        if let Err(r) = self.gate.rules.clone().check(&path, Need::Write) {
            return Err(self.refuse(&path, &path, Need::Write, r));
        }
        self.inner.set_times(fd, atim, mtim).await
    }

    async fn read_directory(
        &mut self,
        fd: Resource<types::Descriptor>,
    ) -> FsResult<Resource<types::DirectoryEntryStream>> {
        let dir = self.base(&fd)?.path().to_path_buf();
        let stream = self.inner.read_directory(fd).await?;
        self.gate.streams.insert(stream.rep(), dir);
        Ok(stream)
    }

    async fn create_directory_at(&mut self, fd: Resource<types::Descriptor>, path: String) -> FsResult<()> {
        self.guard(&fd, &path, false, Need::Write)?;
        self.inner.create_directory_at(fd, path).await
    }

    async fn stat_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        path_flags: types::PathFlags,
        path: String,
    ) -> FsResult<types::DescriptorStat> {
        let follow = path_flags.contains(types::PathFlags::SYMLINK_FOLLOW);
        self.guard(&fd, &path, follow, Need::See)?;
        self.inner.stat_at(fd, path_flags, path).await
    }

    async fn set_times_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        path_flags: types::PathFlags,
        path: String,
        atim: types::NewTimestamp,
        mtim: types::NewTimestamp,
    ) -> FsResult<()> {
        let follow = path_flags.contains(types::PathFlags::SYMLINK_FOLLOW);
        self.guard(&fd, &path, follow, Need::Write)?;
        self.inner.set_times_at(fd, path_flags, path, atim, mtim).await
    }

    async fn link_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        old_path_flags: types::PathFlags,
        old_path: String,
        new_descriptor: Resource<types::Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        // A new name for a file lets it be written through that name: the
        // source must be writable, not only readable.
        self.guard(&fd, &old_path, false, Need::Write)?;
        self.guard(&new_descriptor, &new_path, false, Need::Write)?;
        self.inner.link_at(fd, old_path_flags, old_path, new_descriptor, new_path).await
    }

    async fn open_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        path_flags: types::PathFlags,
        path: String,
        oflags: types::OpenFlags,
        flags: types::DescriptorFlags,
    ) -> FsResult<Resource<types::Descriptor>> {
        use types::{DescriptorFlags as D, OpenFlags as O};
        let follow = path_flags.contains(types::PathFlags::SYMLINK_FOLLOW);
        let write = oflags.intersects(O::CREATE | O::TRUNCATE) || flags.intersects(D::WRITE | D::MUTATE_DIRECTORY);
        let read = flags.contains(D::READ) || !write;
        let base = self.base(&fd)?;
        let shown = normalize(base.path(), &path);
        // Before the open: as written and as resolved. A read of something
        // that turns out to be a directory only needs to see it.
        let resolved_is_dir = match &base {
            Base::Real(b) => fs::metadata(b.join(&path)).map(|m| m.is_dir()).unwrap_or(false),
            Base::Decoy => false,
        };
        let need = if write {
            Need::Write
        } else if oflags.contains(O::DIRECTORY) || resolved_is_dir {
            Need::See
        } else {
            Need::Read
        };
        self.guard(&fd, &path, follow, need)?;
        // Truncate only once the opened file has passed every check.
        let truncate = oflags.contains(O::TRUNCATE);
        let mut open_flags = flags;
        if truncate {
            open_flags |= D::WRITE;
        }
        let new_fd = self.inner.open_at(fd, path_flags, path, oflags & !O::TRUNCATE, open_flags).await?;
        let new_fd = self.verify_opened(new_fd, &shown, read, write)?;
        if truncate {
            let is_file = matches!(self.inner.table.get(&new_fd)?, Descriptor::File(_));
            if is_file && let Err(e) = self.inner.set_size(same(&new_fd), 0).await {
                let _ = self.inner.table.delete(new_fd);
                return Err(e);
            }
        }
        Ok(new_fd)
    }

    fn drop(&mut self, fd: Resource<types::Descriptor>) -> wasmtime::Result<()> {
        HostDescriptor::drop(&mut self.inner, fd)
    }

    async fn readlink_at(&mut self, fd: Resource<types::Descriptor>, path: String) -> FsResult<String> {
        self.guard(&fd, &path, false, Need::Read)?;
        self.inner.readlink_at(fd, path).await
    }

    async fn remove_directory_at(&mut self, fd: Resource<types::Descriptor>, path: String) -> FsResult<()> {
        self.guard(&fd, &path, false, Need::Write)?;
        self.inner.remove_directory_at(fd, path).await
    }

    async fn rename_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        old_path: String,
        new_fd: Resource<types::Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        self.guard(&fd, &old_path, false, Need::Write)?;
        self.guard(&new_fd, &new_path, false, Need::Write)?;
        self.inner.rename_at(fd, old_path, new_fd, new_path).await
    }

    async fn symlink_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        src_path: String,
        dest_path: String,
    ) -> FsResult<()> {
        // The link's content is checked whenever it is followed.
        self.guard(&fd, &dest_path, false, Need::Write)?;
        self.inner.symlink_at(fd, src_path, dest_path).await
    }

    async fn unlink_file_at(&mut self, fd: Resource<types::Descriptor>, path: String) -> FsResult<()> {
        self.guard(&fd, &path, false, Need::Write)?;
        self.inner.unlink_file_at(fd, path).await
    }

    async fn metadata_hash_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        path_flags: types::PathFlags,
        path: String,
    ) -> FsResult<types::MetadataHashValue> {
        let follow = path_flags.contains(types::PathFlags::SYMLINK_FOLLOW);
        self.guard(&fd, &path, follow, Need::See)?;
        self.inner.metadata_hash_at(fd, path_flags, path).await
    }
}

impl HostDirectoryEntryStream for GatedFs<'_> {
    async fn read_directory_entry(
        &mut self,
        stream: Resource<DirectoryEntryStream>,
    ) -> FsResult<Option<types::DirectoryEntry>> {
        let dir = self.gate.streams.get(&stream.rep()).cloned();
        loop {
            let Some(entry) = self.inner.read_directory_entry(same(&stream)).await? else { return Ok(None) };
            let Some(dir) = &dir else { return Ok(Some(entry)) };
            // Entries the guest may not see are left out, without a record.
            let need = if entry.type_ == types::DescriptorType::Directory { Need::See } else { Need::SeeFile };
            if self.gate.rules.check(&dir.join(&entry.name), need).is_ok() {
                return Ok(Some(entry));
            }
        }
    }

    fn drop(&mut self, stream: Resource<DirectoryEntryStream>) -> wasmtime::Result<()> {
        self.gate.streams.remove(&stream.rep());
        HostDirectoryEntryStream::drop(&mut self.inner, stream)
    }
}
