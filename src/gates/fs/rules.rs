//! Storage rules over absolute host paths: which path may be read, written
//! or seen (stat, traverse, list). Pure logic, no I/O.
//!
//! - An allow rule without globs names a file, or a directory and everything
//!   below it. With globs (`*` within a segment, `**` for any number of
//!   segments) it names exactly the paths the pattern matches.
//! - A deny rule matches a path when it matches the path or any ancestor of
//!   it, compared case-insensitively: deny rules err on the side of denying.
//! - A path may be seen when it may be read or written, or when it lies on
//!   the way to something granted (an ancestor of a rule, or a prefix of a
//!   glob pattern).

use std::path::{Component, Path, PathBuf};

use crate::policy::{StoragePolicy, StorageRule};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    Read,
    Write,
    /// stat, traverse, list a directory: allowed on the way to a grant.
    See,
    /// stat a file (or anything not a directory): only where a rule grants it.
    SeeFile,
}

impl Need {
    pub fn word(self) -> &'static str {
        match self {
            Need::Read => "read",
            Need::Write => "write",
            Need::See | Need::SeeFile => "see",
        }
    }
}

/// Why an access was refused.
#[derive(Clone, Debug)]
pub struct Refusal {
    pub reason: String,
    /// The deny rule that decided, if one did.
    pub rule: Option<String>,
}

struct Pattern {
    segments: Vec<String>,
    glob: bool,
}

impl Pattern {
    fn new(path: &str, lowercase: bool) -> Self {
        let path = if lowercase { path.to_lowercase() } else { path.to_string() };
        let segments: Vec<String> = path.split('/').filter(|s| !s.is_empty()).map(str::to_string).collect();
        let glob = segments.iter().any(|s| s.contains('*'));
        Pattern { segments, glob }
    }

    /// The pattern names this path exactly (globs), or the path is the named
    /// file or directory or lies below it (no globs).
    fn covers(&self, path: &[&str]) -> bool {
        if self.glob {
            match_all(&self.segments, path)
        } else {
            path.len() >= self.segments.len() && self.segments.iter().zip(path).all(|(a, b)| a == b)
        }
    }

    /// The path is, or may be, on the way to something the pattern names.
    fn leads_to(&self, path: &[&str]) -> bool {
        if self.glob {
            match_prefix(&self.segments, path)
        } else {
            path.len() <= self.segments.len() && self.segments.iter().zip(path).all(|(a, b)| a == b)
        }
    }

    /// The part before the first glob segment, as an absolute path.
    fn fixed_prefix(&self) -> PathBuf {
        let mut p = PathBuf::from("/");
        for s in self.segments.iter().take_while(|s| !s.contains('*')) {
            p.push(s);
        }
        p
    }
}

fn match_all(pattern: &[String], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => {
            match_all(rest, path) || (!path.is_empty() && match_all(pattern, &path[1..]))
        }
        Some((first, rest)) => !path.is_empty() && match_segment(first, path[0]) && match_all(rest, &path[1..]),
    }
}

fn match_prefix(pattern: &[String], path: &[&str]) -> bool {
    if path.is_empty() {
        return true;
    }
    match pattern.split_first() {
        None => false,
        Some((first, _)) if first == "**" => true,
        Some((first, rest)) => match_segment(first, path[0]) && match_prefix(rest, &path[1..]),
    }
}

/// `*` matches any run of characters within one segment.
fn match_segment(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(i) => rest = &rest[i + middle.len()..],
            None => return false,
        }
    }
    true
}

struct Allow {
    pattern: Pattern,
    alias: Option<Pattern>,
    read: bool,
    write: bool,
}

struct Deny {
    pattern: Pattern,
    origin: String,
}

/// The compiled storage rules of one call.
pub struct StorageRules {
    allow: Vec<Allow>,
    deny: Vec<Deny>,
}

impl StorageRules {
    pub fn new(policy: &StoragePolicy) -> Self {
        let allow = policy
            .allow
            .iter()
            .map(|r: &StorageRule| Allow {
                pattern: Pattern::new(&r.path, false),
                alias: r.alias.as_deref().map(|a| Pattern::new(a, false)),
                read: r.read,
                write: r.write,
            })
            .collect();
        let deny = policy
            .deny
            .iter()
            .map(|r| Deny { pattern: Pattern::new(&r.path, true), origin: r.origin.clone() })
            .collect();
        StorageRules { allow, deny }
    }

    pub fn has_deny_rules(&self) -> bool {
        !self.deny.is_empty()
    }

    /// Decides one access to an absolute, normalised path.
    pub fn check(&self, path: &Path, need: Need) -> Result<(), Refusal> {
        let text = path.to_string_lossy();
        let lower = text.to_lowercase();
        let lower_segments: Vec<&str> = lower.split('/').filter(|s| !s.is_empty()).collect();
        for d in &self.deny {
            // Deny holds for the path and everything below a denied path.
            if (0..=lower_segments.len()).any(|n| d.pattern.covers(&lower_segments[..n])) {
                return Err(Refusal { reason: "denied by a deny rule".into(), rule: Some(d.origin.clone()) });
            }
        }
        let segments: Vec<&str> = text.split('/').filter(|s| !s.is_empty()).collect();
        let granted = |want: fn(&Allow) -> bool| self.allow.iter().any(|a| want(a) && a.pattern.covers(&segments));
        let ok = match need {
            Need::Read => granted(|a| a.read),
            Need::Write => granted(|a| a.write),
            Need::SeeFile => granted(|_| true),
            Need::See => granted(|_| true) || self.allow.iter().any(|a| a.pattern.leads_to(&segments)),
        };
        if ok {
            return Ok(());
        }
        let reason = match need {
            Need::Write if granted(|a| a.read) => "granted read-only",
            _ => "not granted",
        };
        Err(Refusal { reason: reason.into(), rule: None })
    }

    /// Whether the deny rules name this path (used for hard-link checks).
    pub fn denied(&self, path: &Path) -> bool {
        self.check(path, Need::See).err().is_some_and(|r| r.rule.is_some())
    }

    /// Directories to walk to find every file a deny rule names.
    pub fn deny_roots(&self) -> Vec<PathBuf> {
        self.deny.iter().map(|d| d.pattern.fixed_prefix()).collect()
    }

    /// Each allow rule's fixed prefix, the same prefix as the user named it
    /// (when a symlink lies on the way), and whether it may be written.
    pub fn allow_roots(&self) -> Vec<(PathBuf, Option<PathBuf>, bool)> {
        self.allow
            .iter()
            .map(|a| (a.pattern.fixed_prefix(), a.alias.as_ref().map(Pattern::fixed_prefix), a.write))
            .collect()
    }
}

/// `base` joined with `rel`, with `.` and `..` resolved as text.
pub fn normalize(base: &Path, rel: &str) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in base.join(rel).components() {
        match c {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(path: &str, read: bool, write: bool) -> StorageRule {
        StorageRule { path: path.into(), alias: None, read, write, origin: format!("rule {path}") }
    }

    fn rules(allow: Vec<StorageRule>, deny: Vec<StorageRule>) -> StorageRules {
        StorageRules::new(&StoragePolicy { allow, deny })
    }

    fn ok(r: &StorageRules, path: &str, need: Need) -> bool {
        r.check(Path::new(path), need).is_ok()
    }

    #[test]
    fn a_plain_rule_names_a_directory_and_everything_below() {
        let r = rules(vec![rule("/data", true, false)], vec![]);
        assert!(ok(&r, "/data", Need::Read) && ok(&r, "/data/a/b.txt", Need::Read));
        assert!(!ok(&r, "/database", Need::Read), "a prefix of a name is not the name");
        assert!(!ok(&r, "/data/x", Need::Write));
        assert_eq!(r.check(Path::new("/data/x"), Need::Write).unwrap_err().reason, "granted read-only");
        assert_eq!(r.check(Path::new("/etc"), Need::Read).unwrap_err().reason, "not granted");
    }

    #[test]
    fn the_way_to_a_grant_may_be_seen_not_read() {
        let r = rules(vec![rule("/home/me/data", true, true)], vec![]);
        assert!(ok(&r, "/", Need::See) && ok(&r, "/home", Need::See) && ok(&r, "/home/me", Need::See));
        assert!(!ok(&r, "/home", Need::Read) && !ok(&r, "/home/other", Need::See));
        assert!(!ok(&r, "/home/me/notes.txt", Need::SeeFile));
    }

    #[test]
    fn globs_match_segments() {
        let r = rules(vec![rule("/d/*.csv", true, false), rule("/logs/**/app.log", true, false)], vec![]);
        assert!(ok(&r, "/d/a.csv", Need::Read) && !ok(&r, "/d/a.txt", Need::Read));
        assert!(!ok(&r, "/d/sub/a.csv", Need::Read), "* stays within one segment");
        assert!(ok(&r, "/logs/app.log", Need::Read) && ok(&r, "/logs/x/y/app.log", Need::Read));
        assert!(ok(&r, "/logs/x", Need::See), "on the way to a ** pattern");
        assert!(match_segment("a*b*c", "aXbYc") && !match_segment("a*b*c", "aXc") && match_segment("*", ""));
    }

    #[test]
    fn deny_wins_below_and_regardless_of_case() {
        let r = rules(vec![rule("/data", true, true)], vec![rule("/data/Secrets", false, false)]);
        let refusal = r.check(Path::new("/data/secrets/key"), Need::Read).unwrap_err();
        assert_eq!(refusal.rule.as_deref(), Some("rule /data/Secrets"));
        assert!(!ok(&r, "/DATA/SECRETS", Need::See));
        assert!(ok(&r, "/data/public", Need::Write));
        assert!(r.denied(Path::new("/data/secrets/x")) && !r.denied(Path::new("/data/x")));
    }

    #[test]
    fn normalize_resolves_dots_as_text() {
        assert_eq!(normalize(Path::new("/data/a"), "../../etc/passwd"), PathBuf::from("/etc/passwd"));
        assert_eq!(normalize(Path::new("/"), "../../.."), PathBuf::from("/"));
        assert_eq!(normalize(Path::new("/data"), "./x/./y"), PathBuf::from("/data/x/y"));
    }

    #[test]
    fn roots_and_prefixes() {
        let r = rules(vec![rule("/a/b/*.txt", true, true)], vec![rule("/a/b/private/**", false, false)]);
        assert_eq!(r.allow_roots(), vec![(PathBuf::from("/a/b"), None, true)]);
        assert_eq!(r.deny_roots(), vec![PathBuf::from("/a/b/private")]);
    }
}
