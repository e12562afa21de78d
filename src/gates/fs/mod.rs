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
use std::path::{Path, PathBuf};
use std::sync::Arc;

use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::filesystem::{Descriptor, WasiFilesystemCtxView, WasiFilesystemView};
use wasmtime_wasi::p2::bindings::filesystem::types::{
    self, DirectoryEntryStream, ErrorCode, HostDescriptor, HostDirectoryEntryStream,
};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, FsError, FsResult};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

mod check;
mod host;
pub mod rules;

use host::{Base, decoy_dir, preopen_roots, proc_fd_works};
use rules::{Need, StorageRules, normalize};

use crate::gates::Record;
use crate::policy::StoragePolicy;
use crate::sandbox::Host;

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

fn denied() -> FsError {
    ErrorCode::Access.into()
}

/// A borrowed handle to the same descriptor (resources are not `Clone`).
fn same<T: 'static>(r: &Resource<T>) -> Resource<T> {
    if r.owned() { Resource::new_own(r.rep()) } else { Resource::new_borrow(r.rep()) }
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
