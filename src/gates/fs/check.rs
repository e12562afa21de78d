//! The checks of the storage gate: a path as written and as resolved, a
//! descriptor by what it really is once opened, and refusals recorded.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use wasmtime::component::Resource;
use wasmtime_wasi::filesystem::Descriptor;
use wasmtime_wasi::p2::bindings::filesystem::types::{self, ErrorCode};
use wasmtime_wasi::p2::{FsError, FsResult};

use super::host::{Base, fd_path, raw_fd, resolve, walk_denied};
use super::rules::{Need, Refusal, normalize};
use super::{GatedFs, denied};
use crate::gates::Denial;

impl GatedFs<'_> {
    pub(super) fn base(&mut self, fd: &Resource<types::Descriptor>) -> FsResult<Base> {
        let raw = raw_fd(self.inner.table.get(fd)?);
        let path = fd_path(raw)?;
        Ok(if path == self.gate.decoy { Base::Decoy } else { Base::Real(path) })
    }

    /// Records a refusal of `need` on `shown` (really `real`) and returns
    /// the error the guest sees. Looking for something that is not there
    /// (runtimes probe for modules and config files) is refused alike but
    /// not recorded: nothing was at stake.
    pub(super) fn refuse(&self, shown: &Path, real: &Path, need: Need, refusal: Refusal) -> FsError {
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
    pub(super) fn guard(
        &mut self,
        fd: &Resource<types::Descriptor>,
        rel: &str,
        follow: bool,
        need: Need,
    ) -> FsResult<PathBuf> {
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
        self.gate.record.allow("storage", &resolved.display().to_string(), need.word());
        Ok(resolved)
    }

    /// Re-checks a freshly opened descriptor by what it really is; on refusal
    /// the descriptor is closed.
    pub(super) fn verify_opened(
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

    pub(super) fn check_opened(
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

    pub(super) fn denied_inodes(&mut self) -> Option<&HashSet<(u64, u64)>> {
        if self.gate.denied_inodes.is_none() {
            let found = walk_denied(&self.gate.rules);
            self.gate.denied_inodes = Some(found);
        }
        self.gate.denied_inodes.as_ref().and_then(|s| s.as_ref())
    }
}
