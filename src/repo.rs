//! Finding and opening the repository the way git's `enter_repo` does: `<dir>`, `<dir>.git`,
//! `<dir>/.git` (not with `--strict`), `~/` and `~user/` paths, `.git` files; then the object
//! database, the packs and the refs' home.

use std::path::{Path, PathBuf};

use crate::config::ServeConfig;
use crate::odb::Odb;
use crate::pack::source::PackSet;

/// An open repository with everything a session reads.
pub struct Repo {
    /// The gix repository (refs, config).
    pub repo: gix::Repository,
    /// Objects for walking.
    pub odb: Odb,
    /// Mapped packs for streaming.
    pub packs: PackSet,
    /// The configuration keys packserve honours.
    pub config: ServeConfig,
}

/// Errors opening a repository.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("'{0}' does not appear to be a git repository")]
    NotARepository(String),
    #[error("cannot open repository '{path}': {message}")]
    Open { path: String, message: String },
}

/// Finds the git directory for `path` as git's `enter_repo` does. `home` is `$HOME` for `~/`.
pub fn enter_repo(path: &str, strict: bool, home: Option<&Path>) -> Option<PathBuf> {
    if path.is_empty() || path.contains('\0') {
        return None;
    }
    if strict {
        let p = PathBuf::from(path);
        let p = if p.is_file() { read_gitfile(&p)? } else { p };
        return is_git_directory(&p).then_some(p);
    }
    let base = expand_user_path(path, home)?;
    // git tries these suffixes in this order.
    for suffix in ["/.git", "", ".git/.git", ".git"] {
        let mut candidate = base.clone().into_os_string();
        candidate.push(suffix);
        let candidate = PathBuf::from(candidate);
        let Ok(meta) = std::fs::metadata(&candidate) else {
            continue;
        };
        if meta.is_file() {
            let dir = read_gitfile(&candidate)?;
            return is_git_directory(&dir).then_some(dir);
        }
        if meta.is_dir() && is_git_directory(&candidate) {
            return Some(candidate);
        }
    }
    None
}

fn expand_user_path(path: &str, home: Option<&Path>) -> Option<PathBuf> {
    let Some(rest) = path.strip_prefix('~') else {
        return Some(PathBuf::from(path));
    };
    let (user, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    };
    let dir = if user.is_empty() { home?.to_path_buf() } else { home_of(user)? };
    Some(if tail.is_empty() { dir } else { dir.join(tail) })
}

/// The home directory of `user` from the password database file.
fn home_of(user: &str) -> Option<PathBuf> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let fields: Vec<&str> = l.split(':').collect();
        (fields.len() >= 6 && fields[0] == user).then(|| PathBuf::from(fields[5]))
    })
}

/// Reads a `.git` file (`gitdir: <path>`), relative paths resolved against its directory.
fn read_gitfile(file: &Path) -> Option<PathBuf> {
    let content = std::fs::read_to_string(file).ok()?;
    let target = content.lines().next()?.strip_prefix("gitdir: ")?.trim_end();
    let p = PathBuf::from(target);
    Some(if p.is_absolute() { p } else { file.parent()?.join(p) })
}

/// git's `is_git_directory`: a HEAD, an objects directory and a refs directory (through
/// `commondir` for worktrees).
pub fn is_git_directory(dir: &Path) -> bool {
    let common = std::fs::read_to_string(dir.join("commondir"))
        .ok()
        .map(|c| {
            let c = PathBuf::from(c.trim_end());
            if c.is_absolute() {
                c
            } else {
                dir.join(c)
            }
        })
        .unwrap_or_else(|| dir.to_path_buf());
    let head = dir.join("HEAD");
    let head_ok = match std::fs::symlink_metadata(&head) {
        Ok(m) if m.file_type().is_symlink() => true,
        Ok(m) if m.is_file() => std::fs::read(&head).is_ok_and(|c| {
            c.starts_with(b"ref: refs/") || (c.len() >= 40 && c[..40].iter().all(u8::is_ascii_hexdigit))
        }),
        _ => false,
    };
    head_ok && common.join("objects").is_dir() && common.join("refs").is_dir()
}

/// Object directories: the repository's own, then its alternates (recursively, as git reads them).
fn object_dirs(objects: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![objects.to_path_buf()];
    let mut i = 0;
    while i < dirs.len() && dirs.len() < 64 {
        let dir = dirs[i].clone();
        if let Ok(text) = std::fs::read_to_string(dir.join("info/alternates")) {
            for line in text.lines() {
                let line = line.trim_end();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let p = PathBuf::from(line);
                let p = if p.is_absolute() { p } else { dir.join(p) };
                let p = p.canonicalize().unwrap_or(p);
                if !dirs.contains(&p) {
                    dirs.push(p);
                }
            }
        }
        i += 1;
    }
    dirs
}

impl Repo {
    /// Opens the repository at `git_dir` (already found by [`enter_repo`]); `overrides` are
    /// `key=value` configuration values that win over the files (`GIT_CONFIG_PARAMETERS`).
    pub fn open(git_dir: &Path, display: &str, overrides: &[String]) -> Result<Repo, RepoError> {
        let open_err =
            |e: &dyn std::fmt::Display| RepoError::Open { path: display.to_owned(), message: e.to_string() };
        let opts = gix::open::Options::default()
            .strict_config(false)
            .config_overrides(overrides.iter().map(|o| gix::bstr::BString::from(o.as_str())));
        let mut repo = gix::open_opts(git_dir, opts).map_err(|e| open_err(&e))?;
        // Namespaces are applied by refs.rs from the session's settings, not by gix.
        repo.clear_namespace();
        let odb = Odb::new(&repo);
        let packs = PackSet::open(&object_dirs(&repo.common_dir().join("objects")), repo.object_hash())
            .map_err(|e| open_err(&e))?;
        let config = ServeConfig::from_repo(&repo);
        Ok(Repo { repo, odb, packs, config })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_home() {
        let home = Path::new("/home/x");
        assert_eq!(expand_user_path("~/r.git", Some(home)), Some(PathBuf::from("/home/x/r.git")));
        assert_eq!(expand_user_path("~", Some(home)), Some(PathBuf::from("/home/x")));
        assert_eq!(expand_user_path("/srv/r", Some(home)), Some(PathBuf::from("/srv/r")));
        assert_eq!(expand_user_path("~root/r", None), Some(PathBuf::from("/root/r")));
        assert_eq!(expand_user_path("~no-such-user-here/r", None), None);
    }

    #[test]
    fn rejects_nul_and_empty() {
        assert_eq!(enter_repo("", false, None), None);
        assert_eq!(enter_repo("a\0b", false, None), None);
    }
}
