//! Finding and opening the repository the way git's `enter_repo` does: `<dir>`, `<dir>.git`,
//! `<dir>/.git` (not with `--strict`), `~/` and `~user/` paths, `.git` files, and git's
//! repository ownership check (`safe.directory`); then the object database, the packs and the
//! refs' home.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::config::{Entries, ServeConfig};
use crate::odb::Odb;
use crate::pack::source::PackSet;

/// An open repository with everything a session reads.
pub struct Repo {
    /// The git directory (absolute).
    git_dir: PathBuf,
    /// Where objects, refs and the shared configuration are: the git directory, or what a
    /// worktree's `commondir` names.
    common_dir: PathBuf,
    /// Objects for walking.
    pub odb: Odb,
    /// The configuration keys packserve honours.
    pub config: ServeConfig,
    /// Every configuration value, for the front-ends' own keys.
    pub entries: Entries,
}

/// Errors opening a repository.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("'{0}' does not appear to be a git repository")]
    NotARepository(String),
    #[error("cannot open repository '{path}': {message}")]
    Open { path: String, message: String },
}

/// Why [`enter_repo`] found no repository to serve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnterError {
    /// Nothing that looks like a git directory there.
    #[error("does not appear to be a git repository")]
    NotFound,
    /// A repository owned by someone else and not listed in `safe.directory` (git's message).
    #[error(
        "detected dubious ownership in repository at '{0}'\nTo add an exception for this directory, call:\n\n\tgit config --global --add safe.directory {0}"
    )]
    DubiousOwnership(String),
    /// A regular file where a repository was looked for, which is not a usable `.git` file
    /// (git's `read_gitfile` messages: `invalid gitfile format: <path>`, `no path in gitfile:
    /// <path>`, `not a git repository: <dir>`, ...).
    #[error("{0}")]
    BadGitfile(String),
}

/// What git's ownership check (setup.c `ensure_valid_ownership`, run by `enter_repo` in
/// git-upload-pack, git-daemon and git-http-backend since 2.45.1 / 2.39.4) needs to know, as
/// plain values gathered by the front-end.
///
/// A repository is served when its git directory (and its `.git` file, if that is how it was
/// found) belongs to the effective user — for root also to `SUDO_UID` — or when
/// `safe.directory` in *protected* configuration (system, global, command line; never the
/// repository's own) lists it: `*`, its path, or a `<dir>/*` prefix; an empty value clears
/// the list so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ownership {
    /// The effective user id; `None` when it cannot be known (then nothing counts as owned).
    pub euid: Option<u32>,
    /// `SUDO_UID`, consulted only when running as root.
    pub sudo_uid: Option<u32>,
    /// `GIT_TEST_ASSUME_DIFFERENT_OWNER` (git's test knob): every repository counts as foreign.
    pub assume_different_owner: bool,
    /// `safe.directory` values from protected configuration, in the order git reads them.
    pub safe_directories: SafeDirectories,
    /// `$HOME`, for `~/` in values.
    pub home: Option<PathBuf>,
}

/// The `safe.directory` values: given, or where to read them. Like git, they are read only
/// when a repository's owner is not the user (parsing the system and global configuration
/// for every request would cost more than serving a small listing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SafeDirectories {
    /// These values.
    Values(Vec<String>),
    /// The protected configuration: these files (system, then global, as the front-end found
    /// them) then the command-line `overrides` (`key=value`), read on first use.
    Protected { files: Vec<PathBuf>, overrides: Vec<String>, read: std::sync::OnceLock<Vec<String>> },
}

impl SafeDirectories {
    /// Reads `files`, then `overrides`, when first asked.
    pub fn protected(files: Vec<PathBuf>, overrides: Vec<String>) -> SafeDirectories {
        SafeDirectories::Protected { files, overrides, read: std::sync::OnceLock::new() }
    }

    fn values(&self, home: Option<&Path>) -> &[String] {
        match self {
            SafeDirectories::Values(v) => v,
            SafeDirectories::Protected { files, overrides, read } => {
                read.get_or_init(|| Ownership::read_safe_directories(files, overrides, home))
            }
        }
    }
}

impl Ownership {
    /// Trusts every repository: for callers that have already decided (and for tests).
    pub fn any_owner() -> Ownership {
        Ownership {
            euid: None,
            sudo_uid: None,
            assume_different_owner: false,
            safe_directories: SafeDirectories::Values(vec!["*".into()]),
            home: None,
        }
    }

    /// Collects `safe.directory` from the protected configuration: the `files` (system, then
    /// global, as the front-end found them; missing ones are skipped; includes are followed),
    /// then the command-line `overrides` (`key=value`).
    pub fn read_safe_directories(
        files: &[PathBuf],
        overrides: &[String],
        home: Option<&Path>,
    ) -> Vec<String> {
        use gix::config::{file, path::interpolate, File, Source};
        let metas: Vec<file::Metadata> = files
            .iter()
            .filter(|p| p.is_file())
            .filter_map(|p| file::Metadata::try_from_path(p, Source::User).ok())
            .collect();
        let options = file::init::Options {
            includes: file::includes::Options::follow(
                interpolate::Context { home_dir: home, ..Default::default() },
                Default::default(),
            ),
            lossy: true,
            ignore_io_errors: true,
        };
        let mut out: Vec<String> = File::from_paths_metadata(metas, options)
            .ok()
            .flatten()
            .and_then(|f| f.strings("safe.directory"))
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.to_string())
            .collect();
        for o in overrides {
            let (k, v) = o.split_once('=').unwrap_or((o.as_str(), ""));
            if k.eq_ignore_ascii_case("safe.directory") {
                out.push(v.to_owned());
            }
        }
        out
    }

    /// git's `is_path_owned_by_current_uid`: `lstat`'s owner is the effective user; for root
    /// also `SUDO_UID`.
    fn owns(&self, path: &Path) -> bool {
        let (Ok(meta), Some(euid)) = (std::fs::symlink_metadata(path), self.euid) else {
            return false;
        };
        match (euid, meta.uid()) {
            (e, o) if e == o => true,
            (0, o) => self.sudo_uid == Some(o),
            _ => false,
        }
    }

    /// git's `ensure_valid_ownership(gitfile, NULL, gitdir)`.
    pub fn allows(&self, gitfile: Option<&Path>, gitdir: &Path) -> bool {
        if !self.assume_different_owner && gitfile.is_none_or(|f| self.owns(f)) && self.owns(gitdir) {
            return true;
        }
        let Ok(path) = gitdir.canonicalize() else {
            return false;
        };
        let mut safe = false;
        for value in self.safe_directories.values(self.home.as_deref()) {
            if value.is_empty() {
                safe = false;
            } else if value == "*" {
                safe = true;
            } else if let Some(allowed) = self.normalize(value) {
                let allowed = allowed.to_string_lossy();
                let hit = match allowed.strip_suffix('*') {
                    Some(prefix) if prefix.ends_with('/') => path.to_string_lossy().starts_with(prefix),
                    _ => path.as_os_str() == std::ffi::OsStr::new(allowed.as_ref()),
                };
                safe |= hit;
            }
        }
        safe
    }

    /// A `safe.directory` value as git compares it: `~` expanded, absolute (or `.`), resolved
    /// through symlinks (its last component may be missing, so `<dir>/*` keeps its `*`).
    fn normalize(&self, value: &str) -> Option<PathBuf> {
        let p = if value.starts_with('~') {
            expand_user_path(value, self.home.as_deref())?
        } else {
            value.into()
        };
        if !p.is_absolute() && p != Path::new(".") {
            return None;
        }
        if let Ok(real) = p.canonicalize() {
            return Some(real);
        }
        let name = p.file_name()?;
        Some(p.parent()?.canonicalize().ok()?.join(name))
    }
}

/// Finds the git directory for `path` as git's `enter_repo` does, including its ownership
/// check. `home` is `$HOME` for `~/`.
pub fn enter_repo(
    path: &str,
    strict: bool,
    home: Option<&Path>,
    owner: &Ownership,
) -> Result<PathBuf, EnterError> {
    if path.is_empty() || path.contains('\0') {
        return Err(EnterError::NotFound);
    }
    // git checks the ownership of what it found before it looks inside (a `.git` file's
    // target, or the directory) and names the gitfile's target in its message if there is one.
    let checked = |gitfile: Option<&Path>, found: &Path| {
        if owner.allows(gitfile, found) {
            Ok(())
        } else {
            Err(EnterError::DubiousOwnership(gitfile.unwrap_or(found).display().to_string()))
        }
    };
    if strict {
        let p = PathBuf::from(path);
        if std::fs::symlink_metadata(&p).is_err() {
            return Err(EnterError::NotFound);
        }
        let gitfile = read_gitfile(&p)?;
        checked(gitfile.as_deref(), &p)?;
        let p = gitfile.unwrap_or(p);
        return if is_git_directory(&p) { Ok(p) } else { Err(EnterError::NotFound) };
    }
    let base = expand_user_path(path, home).ok_or(EnterError::NotFound)?;
    // git tries these suffixes in this order.
    for suffix in ["/.git", "", ".git/.git", ".git"] {
        let mut candidate = base.clone().into_os_string();
        candidate.push(suffix);
        let candidate = PathBuf::from(candidate);
        let Ok(meta) = std::fs::metadata(&candidate) else {
            continue;
        };
        if meta.is_file() {
            let dir = read_gitfile(&candidate)?.ok_or(EnterError::NotFound)?;
            checked(Some(&dir), &candidate)?;
            return Ok(dir);
        }
        if meta.is_dir() && is_git_directory(&candidate) {
            checked(None, &candidate)?;
            return Ok(candidate);
        }
    }
    Err(EnterError::NotFound)
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

/// The home directory of `user` from the password database (`getpwnam_r`, as git's
/// `getpwnam`: NSS, so LDAP and sssd users are found too).
fn home_of(user: &str) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let name = std::ffi::CString::new(user).ok()?;
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: an all-zero `passwd` is a valid value to be overwritten.
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call; `buf` outlives the use of `pw`'s fields.
        let rc = unsafe {
            libc::getpwnam_r(name.as_ptr(), &mut pw, buf.as_mut_ptr().cast(), buf.len(), &mut found)
        };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        if rc != 0 || found.is_null() || pw.pw_dir.is_null() {
            return None;
        }
        // SAFETY: pw_dir points to a NUL-terminated string inside `buf`.
        let dir = unsafe { std::ffi::CStr::from_ptr(pw.pw_dir) };
        return Some(PathBuf::from(std::ffi::OsStr::from_bytes(dir.to_bytes())));
    }
}

/// Reads a `.git` file (`gitdir: <path>`) as git's `read_gitfile` does: `Ok(None)` when
/// `file` is missing or not a regular file; the real path of the git directory it names
/// (relative to the file's directory) when that is one; otherwise git's message, with which
/// git dies.
fn read_gitfile(file: &Path) -> Result<Option<PathBuf>, EnterError> {
    use std::io::Read;
    let bad = |m: String| Err(EnterError::BadGitfile(m));
    let shown = file.display();
    match std::fs::metadata(file) {
        Ok(m) if m.is_file() && m.len() > 1 << 20 => {
            return bad(format!("too large to be a .git file: '{shown}'"))
        }
        Ok(m) if m.is_file() => {}
        _ => return Ok(None),
    }
    let mut content = Vec::new();
    match std::fs::File::open(file) {
        Ok(mut f) => {
            if f.read_to_end(&mut content).is_err() {
                return bad(format!("error reading {shown}"));
            }
        }
        Err(e) => return bad(format!("error opening '{shown}': {}", crate::strerror(&e))),
    }
    let Some(rest) = content.strip_prefix(b"gitdir: ") else {
        return bad(format!("invalid gitfile format: {shown}"));
    };
    let end = rest.iter().rposition(|&b| b != b'\n' && b != b'\r').map_or(0, |i| i + 1);
    if end == 0 {
        return bad(format!("no path in gitfile: {shown}"));
    }
    let target = PathBuf::from(std::ffi::OsStr::from_bytes(&rest[..end]));
    let dir = match file.parent() {
        Some(parent) if !target.is_absolute() => parent.join(target),
        _ => target,
    };
    if !is_git_directory(&dir) {
        return bad(format!("not a git repository: {}", dir.display()));
    }
    Ok(Some(dir.canonicalize().unwrap_or(dir)))
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

impl Repo {
    /// Opens the repository at `git_dir` (already found, and its ownership checked, by
    /// [`enter_repo`]); `overrides` are `key=value` configuration values that win over the
    /// files (`GIT_CONFIG_PARAMETERS`).
    ///
    /// Opening is cheap: in the common case the configuration is read directly
    /// ([`crate::config::read_plain`]) and gix opens the repository only when objects are first
    /// read beyond what the packs answer (loose objects, the commit-graph); a ref listing then
    /// reads nothing but the configuration, the ref store and, to peel, pack indexes. Otherwise
    /// (includes, values in the environment, a worktree, an unusual repository format) gix
    /// opens it at once, configuration and all.
    pub fn open(git_dir: &Path, display: &str, overrides: &[String]) -> Result<Repo, RepoError> {
        let open_err =
            |e: &dyn std::fmt::Display| RepoError::Open { path: display.to_owned(), message: e.to_string() };
        // `git_dir` is the git directory itself, never a work tree to look into. gix derives a
        // non-bare repository's work tree from the directory's name, which a relative `.` (git
        // daemon and http-backend start upload-pack inside the git directory) does not have.
        let git_dir = std::path::absolute(git_dir).map_err(|e| open_err(&e))?;
        if let Some(plain) = crate::config::read_plain(&git_dir, overrides) {
            let config = ServeConfig::from_entries(&plain.entries);
            let opener =
                GixOpener { git_dir: git_dir.clone(), display: display.to_owned(), overrides: Vec::new() };
            let odb =
                Odb::lazy(&git_dir, plain.hash, Box::new(move || opener.open().map_err(|e| e.to_string())));
            return Ok(Repo { common_dir: git_dir.clone(), git_dir, odb, config, entries: plain.entries });
        }
        let opener = GixOpener { git_dir, display: display.to_owned(), overrides: overrides.to_vec() };
        let repo = opener.open()?;
        let entries = Entries::of_repo(&repo);
        let config = ServeConfig::from_entries(&entries);
        let (git_dir, common_dir) = (repo.git_dir().to_owned(), repo.common_dir().to_owned());
        let odb = Odb::new(repo);
        Ok(Repo { git_dir, common_dir, odb, config, entries })
    }

    /// The directory holding objects and refs (for a worktree, its repository's).
    pub fn common_dir(&self) -> &Path {
        &self.common_dir
    }

    /// Where the ref files are, and `packed-refs` as git names it in its messages: relative to
    /// the git directory it was started in, or by the real path of the common directory of a
    /// worktree's git directory.
    pub fn ref_dirs(&self) -> (crate::refs::Dirs, String) {
        let git_dir = self.git_dir.clone();
        let common_dir = self.common_dir.clone();
        let shown = if common_dir == git_dir {
            "./packed-refs".into()
        } else {
            let common = common_dir.canonicalize().unwrap_or_else(|_| common_dir.clone());
            common.join("packed-refs").display().to_string()
        };
        (crate::refs::Dirs { git_dir, common_dir }, shown)
    }

    /// The repository's packs (its own and its alternates'), mapped on first use.
    pub fn packs(&self) -> Result<&PackSet, crate::pack::source::SourceError> {
        self.odb.packs()
    }
}

/// How gix opens the repository: fully trusted (the ownership check is git's, done by
/// [`enter_repo`], with `safe.directory` from the protected configuration, which gix would not
/// see in full; gix's reduced trust for a repository owned by someone else would cap object
/// reads at 16 MiB), lenient about configuration, at the git directory as it is.
struct GixOpener {
    git_dir: PathBuf,
    display: String,
    overrides: Vec<String>,
}

impl GixOpener {
    fn open(&self) -> Result<gix::Repository, RepoError> {
        let opts = gix::open::Options::default()
            .with(gix::sec::Trust::Full)
            .strict_config(false)
            .open_path_as_is(true)
            .config_overrides(self.overrides.iter().map(|o| gix::bstr::BString::from(o.as_str())));
        let mut repo = gix::open_opts(&self.git_dir, opts)
            .map_err(|e| RepoError::Open { path: self.display.clone(), message: e.to_string() })?;
        // Namespaces are applied by refs.rs from the session's settings, not by gix.
        repo.clear_namespace();
        Ok(repo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn homes_from_the_password_database() {
        // getpwnam_r: the same answer as getent, which asks NSS too.
        let out = std::process::Command::new("getent").args(["passwd", "root"]).output().unwrap();
        let line = String::from_utf8_lossy(&out.stdout).into_owned();
        let home = line.trim_end().split(':').nth(5).unwrap_or_default().to_owned();
        assert!(!home.is_empty(), "getent passwd root: {line:?}");
        assert_eq!(home_of("root"), Some(PathBuf::from(home)));
        assert_eq!(home_of("no-such-user-packserve"), None);
        assert_eq!(home_of("bad\0name"), None);
    }

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
    fn safe_directory_values() {
        let dir = std::env::temp_dir().join(format!("packserve-owner-unit-{}", std::process::id()));
        let repo = dir.join("r.git");
        std::fs::create_dir_all(&repo).unwrap();
        let uid = std::fs::metadata(&repo).unwrap().uid();
        let foreign = |safe: &[&str]| Ownership {
            euid: Some(uid.wrapping_add(1)),
            sudo_uid: None,
            assume_different_owner: false,
            safe_directories: SafeDirectories::Values(safe.iter().map(|s| s.to_string()).collect()),
            home: Some(dir.clone()),
        };
        let d = dir.display();
        assert!(!foreign(&[]).allows(None, &repo));
        assert!(foreign(&["*"]).allows(None, &repo));
        assert!(!foreign(&["*", ""]).allows(None, &repo));
        assert!(foreign(&["", "*"]).allows(None, &repo));
        assert!(foreign(&[&format!("{d}/r.git")]).allows(None, &repo));
        assert!(foreign(&[&format!("{d}/r.git/")]).allows(None, &repo));
        assert!(foreign(&[&format!("{d}/*")]).allows(None, &repo));
        assert!(!foreign(&[&format!("{d}")]).allows(None, &repo));
        assert!(!foreign(&[&format!("{d}/r")]).allows(None, &repo));
        assert!(!foreign(&["r.git"]).allows(None, &repo));
        assert!(foreign(&["~/r.git"]).allows(None, &repo));
        assert!(!foreign(&["*"]).allows(None, &dir.join("missing")));
        let own = Ownership { euid: Some(uid), ..foreign(&[]) };
        assert!(own.allows(None, &repo));
        assert!(!Ownership { assume_different_owner: true, ..own.clone() }.allows(None, &repo));
        assert!(!Ownership { euid: None, ..own.clone() }.allows(None, &repo));
        if uid != 0 {
            let sudo = Ownership { euid: Some(0), sudo_uid: Some(uid), ..foreign(&[]) };
            assert!(sudo.allows(None, &repo));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rejects_nul_and_empty() {
        let any = Ownership::any_owner();
        assert_eq!(enter_repo("", false, None, &any), Err(EnterError::NotFound));
        assert_eq!(enter_repo("a\0b", false, None, &any), Err(EnterError::NotFound));
    }
}
