//! Exports of world example:filesystem-rs/filesystem (wit/filesystem.wit).
//!
//! Plain `std::fs` calls: the sandbox maps each granted directory at its real
//! path, so the paths an agent passes are the paths on the host. Every failure
//! is an `Err` with the OS message (a refused access reads "Permission
//! denied"; the server adds which permission was missing and the command that
//! grants it).

wit_bindgen::generate!({ world: "filesystem", path: "wit" });

use std::fs;
use std::io::{self, Read};
use std::path::Path;

use glob::Pattern;

const MAX_READ: u64 = 4 * 1024 * 1024;

struct Filesystem;

impl Guest for Filesystem {
    fn list_directory(path: String) -> Result<Vec<Entry>, String> {
        let mut entries = Vec::new();
        for entry in fs::read_dir(&path).map_err(|e| fail(&path, &e))? {
            let entry = entry.map_err(|e| fail(&path, &e))?;
            let meta = fs::symlink_metadata(entry.path()).map_err(|e| fail(&path, &e))?;
            let kind = kind_of(&meta.file_type());
            let size = if matches!(kind, EntryKind::Directory) { 0 } else { meta.len() };
            entries.push(Entry { name: entry.file_name().to_string_lossy().into_owned(), kind, size });
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    fn read_file(path: String) -> Result<String, String> {
        let mut data = Vec::new();
        fs::File::open(&path).and_then(|f| f.take(MAX_READ + 1).read_to_end(&mut data)).map_err(|e| fail(&path, &e))?;
        if data.len() as u64 > MAX_READ {
            return Err(format!("{path}: larger than {MAX_READ} bytes"));
        }
        String::from_utf8(data).map_err(|_| format!("{path}: not a UTF-8 text file"))
    }

    fn write_file(path: String, content: String) -> Result<u64, String> {
        fs::write(&path, &content).map_err(|e| fail(&path, &e))?;
        Ok(content.len() as u64)
    }

    fn create_directory(path: String) -> Result<(), String> {
        fs::create_dir_all(&path).map_err(|e| fail(&path, &e))
    }

    fn search_files(
        root: String,
        pattern: String,
        containing: Option<String>,
        limit: Option<u32>,
    ) -> Result<Vec<String>, String> {
        let pattern = Pattern::new(&pattern).map_err(|e| format!("bad pattern {pattern:?}: {e}"))?;
        let search = Search { pattern, containing, limit: limit.unwrap_or(100) as usize };
        let mut found = Vec::new();
        // Only the root must open; directories below it that the policy
        // hides or that fail to open are skipped.
        let top = fs::read_dir(&root).map_err(|e| fail(&root, &e))?;
        search.walk(Path::new(&root), top, &mut found);
        Ok(found)
    }
}

export!(Filesystem);

struct Search {
    pattern: Pattern,
    containing: Option<String>,
    limit: usize,
}

impl Search {
    /// Top down, like Python's `os.walk`: a directory's files (sorted), then
    /// each subdirectory (sorted). Symbolic links to directories are not followed.
    fn walk(&self, dir: &Path, listing: fs::ReadDir, found: &mut Vec<String>) {
        let mut files = Vec::new();
        let mut dirs = Vec::new();
        for entry in listing.flatten() {
            let Ok(kind) = entry.file_type() else { continue };
            let name = entry.file_name().to_string_lossy().into_owned();
            if kind.is_dir() {
                dirs.push(name);
            } else if !(kind.is_symlink() && fs::metadata(entry.path()).is_ok_and(|m| m.is_dir())) {
                // (a link to a directory is neither a file nor searched)
                files.push(name);
            }
        }
        files.sort();
        dirs.sort();
        for name in files {
            if found.len() >= self.limit {
                return;
            }
            let path = dir.join(&name);
            if self.pattern.matches(&name) && self.contains(&path) {
                found.push(path.to_string_lossy().into_owned());
            }
        }
        for name in dirs {
            if found.len() >= self.limit {
                return;
            }
            let path = dir.join(&name);
            if let Ok(listing) = fs::read_dir(&path) {
                self.walk(&path, listing, found);
            }
        }
    }

    fn contains(&self, path: &Path) -> bool {
        let Some(needle) = &self.containing else { return true };
        let mut data = Vec::new();
        match fs::File::open(path).and_then(|f| f.take(MAX_READ).read_to_end(&mut data)) {
            Ok(_) => String::from_utf8_lossy(&data).contains(needle.as_str()),
            Err(_) => false,
        }
    }
}

fn kind_of(t: &fs::FileType) -> EntryKind {
    if t.is_symlink() {
        EntryKind::Symlink
    } else if t.is_dir() {
        EntryKind::Directory
    } else if t.is_file() {
        EntryKind::File
    } else {
        EntryKind::Other
    }
}

/// "PATH: REASON" with the OS's words, without Rust's "(os error N)" suffix.
fn fail(path: &str, err: &io::Error) -> String {
    let text = err.to_string();
    let reason = text.split(" (os error ").next().unwrap_or(&text);
    format!("{path}: {reason}")
}
