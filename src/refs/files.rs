//! Loose refs, read as git's files backend reads them (refs/files-backend.c): the files under
//! `refs/` (per-worktree ones from the worktree's git directory), a file's content parsed as
//! `parse_loose_ref_contents` does, symbolic refs followed as `refs_resolve_ref_unsafe` follows
//! them, at most [`SYMREF_MAX_DEPTH`] reads deep, falling back to `packed-refs` for names that
//! have no file.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use gix::hash::ObjectId;

use super::name;
use super::packed::is_space;

/// git's `SYMREF_MAXDEPTH`: reads of one resolution.
pub const SYMREF_MAX_DEPTH: usize = 5;

/// A ref file bigger than this is not read in full: no id or ref name git writes comes near.
const MAX_REF_FILE: u64 = 1 << 20;

/// Where a repository's ref files are.
#[derive(Debug, Clone)]
pub struct Dirs {
    /// The git directory (HEAD and per-worktree refs).
    pub git_dir: PathBuf,
    /// The common directory (everything else, and `packed-refs`).
    pub common_dir: PathBuf,
}

impl Dirs {
    /// git's `files_ref_path`: per-worktree refs (`refs/bisect/`, `refs/worktree/`,
    /// `refs/rewritten/`) and root refs such as `HEAD` live in the git directory, the others
    /// in the common directory.
    pub fn path(&self, name: &[u8]) -> PathBuf {
        let per_worktree = [&b"refs/bisect/"[..], b"refs/worktree/", b"refs/rewritten/"];
        let base = if name.starts_with(b"refs/") && !per_worktree.iter().any(|p| name.starts_with(p)) {
            &self.common_dir
        } else {
            &self.git_dir
        };
        base.join(std::ffi::OsStr::from_bytes(name))
    }
}

/// What a ref holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Raw {
    /// An object id.
    Id(ObjectId),
    /// The name of another ref.
    Symref(Vec<u8>),
}

/// Why a ref could not be read (the errno git's `read_raw_ref` reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadError {
    /// ENOENT: no such ref.
    NotFound,
    /// EISDIR: a directory where the file would be, and no packed ref of the name.
    IsDir,
    /// ENOTDIR: a file where one of the name's directories would be.
    NotDir,
    /// EINVAL: a file whose content is not a ref.
    Broken,
    /// Any other error (permissions, I/O).
    Other,
}

impl ReadError {
    /// Whether git's lenient resolution takes this as "the ref does not exist" (an unborn
    /// branch) rather than as a broken ref.
    pub fn is_missing(self) -> bool {
        matches!(self, ReadError::NotFound | ReadError::IsDir | ReadError::NotDir)
    }
}

fn io_error(e: &std::io::Error) -> ReadError {
    match e.raw_os_error() {
        Some(2) => ReadError::NotFound,
        Some(20) => ReadError::NotDir,
        Some(21) => ReadError::IsDir,
        _ => ReadError::Other,
    }
}

/// git's `parse_loose_ref_contents` on a file's content: trailing whitespace trimmed, then
/// `ref: <name>`, or an id optionally followed by whitespace and anything (`FETCH_HEAD`).
pub fn parse_contents(content: &[u8], hash: gix::hash::Kind) -> Result<Raw, ReadError> {
    let end = content.iter().rposition(|&b| !is_space(b)).map_or(0, |i| i + 1);
    let content = &content[..end];
    // git reads it as a C string from here on.
    let content = &content[..content.iter().position(|&b| b == 0).unwrap_or(content.len())];
    if let Some(rest) = content.strip_prefix(b"ref:") {
        let start = rest.iter().position(|&b| !is_space(b)).unwrap_or(rest.len());
        return Ok(Raw::Symref(rest[start..].to_vec()));
    }
    let hex_len = hash.len_in_hex();
    match content.get(..hex_len) {
        Some(hex)
            if hex.iter().all(u8::is_ascii_hexdigit) && content.get(hex_len).is_none_or(|&b| is_space(b)) =>
        {
            Ok(Raw::Id(super::packed::parse_hex(hex)))
        }
        _ => Err(ReadError::Broken),
    }
}

/// git's `read_ref_internal` without the fallback to `packed-refs`: the file of ref `name`.
/// A symbolic link whose target looks like a ref name (`refs/...`) is a symbolic ref; any
/// other is followed.
pub fn read_file(dirs: &Dirs, name: &[u8], hash: gix::hash::Kind) -> Result<Raw, ReadError> {
    read_path(&dirs.path(name), hash)
}

fn read_path(path: &Path, hash: gix::hash::Kind) -> Result<Raw, ReadError> {
    use std::io::Read;
    // git retries when the file changes type between lstat and reading.
    for _ in 0..3 {
        let meta = std::fs::symlink_metadata(path).map_err(|e| io_error(&e))?;
        let link = meta.file_type().is_symlink();
        if link {
            match std::fs::read_link(path) {
                Ok(target) => {
                    let target = target.as_os_str().as_bytes();
                    if target.starts_with(b"refs/") && name::is_valid(target, false) {
                        return Ok(Raw::Symref(target.to_vec()));
                    }
                }
                Err(e) if matches!(e.raw_os_error(), Some(2 | 22)) => continue,
                Err(e) => return Err(io_error(&e)),
            }
        }
        if meta.is_dir() {
            return Err(ReadError::IsDir);
        }
        let mut file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.raw_os_error() == Some(2) && !link => continue,
            Err(e) => return Err(io_error(&e)),
        };
        // One read for a usual ref file: a regular file read whole, as long as lstat said,
        // needs no second read to see its end.
        let mut buf = [0u8; 256];
        let n = loop {
            match file.read(&mut buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_error(&e)),
            }
        };
        let mut content = buf[..n].to_vec();
        if link || n == buf.len() || n as u64 != meta.len() {
            let read = file.take(MAX_REF_FILE + 1 - n as u64).read_to_end(&mut content);
            read.map_err(|e| io_error(&e))?;
        }
        if content.len() as u64 > MAX_REF_FILE && content.starts_with(b"ref:") {
            return Err(ReadError::Broken);
        }
        return parse_contents(&content, hash);
    }
    Err(ReadError::NotFound)
}

/// A loose ref file found under `refs/`, as read then.
#[derive(Debug, Clone)]
pub struct LooseFile {
    /// Its full name.
    pub name: Vec<u8>,
    /// What it held.
    pub raw: Result<Raw, ReadError>,
}

/// Lists and reads the loose ref files whose names `wanted` accepts, in name order; `enter`
/// says whether a directory (its name ends with `/`) may hold any. Entries starting with `.`
/// or ending with `.lock` are not refs; symbolic links are followed to see what they are.
pub fn walk(
    dirs: &Dirs,
    hash: gix::hash::Kind,
    enter: impl Fn(&[u8]) -> bool,
    wanted: impl Fn(&[u8]) -> bool,
) -> Vec<LooseFile> {
    let mut out = Vec::new();
    if !enter(b"refs/") {
        return out;
    }
    let mut stack: Vec<Vec<u8>> = vec![b"refs/".to_vec()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(dirs.path(&dir)) else { continue };
        let mut subdirs = Vec::new();
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            let base = file_name.as_bytes();
            if base.first() == Some(&b'.') || base.ends_with(b".lock") {
                continue;
            }
            let mut full = dir.clone();
            full.extend_from_slice(base);
            let Ok(mut kind) = entry.file_type() else { continue };
            if kind.is_symlink() {
                match std::fs::metadata(entry.path()) {
                    Ok(m) => kind = m.file_type(),
                    Err(_) => continue,
                }
            }
            if kind.is_dir() {
                full.push(b'/');
                subdirs.push(full);
            } else if kind.is_file() && wanted(&full) {
                let raw = read_file(dirs, &full, hash);
                out.push(LooseFile { name: full, raw });
            }
        }
        // A linked worktree's own refs are in its git directory, whatever the common one has.
        if dir == b"refs/" && dirs.git_dir != dirs.common_dir {
            for own in [&b"refs/bisect/"[..], b"refs/worktree/", b"refs/rewritten/"] {
                if !subdirs.iter().any(|d| d == own) {
                    subdirs.push(own.to_vec());
                }
            }
        }
        stack.extend(subdirs.into_iter().filter(|d| enter(d)));
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Where a name leads (git's `refs_resolve_ref_unsafe`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// To an id (the null id if a ref holds that), through symbolic refs to the final name
    /// `target` if the name is symbolic.
    Found { id: ObjectId, target: Option<Vec<u8>> },
    /// To a ref that does not exist, `name` (an unborn branch, when `symbolic`).
    Missing { name: Vec<u8>, symbolic: bool },
    /// Nowhere: a broken ref, a bad name, or too many symbolic refs.
    Failed { symbolic: bool },
}

impl Resolved {
    /// What a resolution in git's reading mode (`RESOLVE_REF_READING`) gives: the id and, for a
    /// symbolic ref, the final name; `None` for a missing or broken ref.
    pub fn reading(&self) -> Option<(ObjectId, Option<&[u8]>)> {
        match self {
            Resolved::Found { id, target } => Some((*id, target.as_deref())),
            _ => None,
        }
    }

    /// Whether a symbolic ref was read on the way.
    pub fn symbolic(&self) -> bool {
        match self {
            Resolved::Found { target, .. } => target.is_some(),
            Resolved::Missing { symbolic, .. } | Resolved::Failed { symbolic } => *symbolic,
        }
    }
}

/// Follows `name` through symbolic refs; `read` reads one ref (a file, else `packed-refs`).
pub fn resolve(name: &[u8], mut read: impl FnMut(&[u8]) -> Result<Raw, ReadError>) -> Resolved {
    if !name::is_valid(name, true) {
        return Resolved::Failed { symbolic: false };
    }
    let mut current = name.to_vec();
    let mut symbolic = false;
    for _ in 0..SYMREF_MAX_DEPTH {
        match read(&current) {
            Ok(Raw::Id(id)) => return Resolved::Found { id, target: symbolic.then_some(current) },
            Ok(Raw::Symref(target)) => {
                symbolic = true;
                if !name::is_valid(&target, true) {
                    return Resolved::Failed { symbolic };
                }
                current = target;
            }
            Err(e) if e.is_missing() => return Resolved::Missing { name: current, symbolic },
            Err(_) => return Resolved::Failed { symbolic },
        }
    }
    Resolved::Failed { symbolic }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gix::hash::Kind::Sha1;

    const A: &str = "1111111111111111111111111111111111111111";

    fn id(hex: &str) -> ObjectId {
        ObjectId::from_hex(hex.as_bytes()).unwrap()
    }

    #[test]
    fn contents_as_git_parses_them() {
        let ok = |s: &str| parse_contents(s.as_bytes(), Sha1);
        assert_eq!(ok(&format!("{A}\n")), Ok(Raw::Id(id(A))));
        assert_eq!(ok(&format!("{A}\r\n")), Ok(Raw::Id(id(A))));
        assert_eq!(ok(&format!("{A}\tnot-for-merge x\n")), Ok(Raw::Id(id(A))));
        assert_eq!(ok(&format!("{A}\0junk")), Ok(Raw::Id(id(A))));
        assert_eq!(ok(&A.to_uppercase()), Ok(Raw::Id(id(A))));
        assert_eq!(ok("ref: refs/heads/main\n"), Ok(Raw::Symref(b"refs/heads/main".to_vec())));
        assert_eq!(ok("ref:refs/heads/main"), Ok(Raw::Symref(b"refs/heads/main".to_vec())));
        assert_eq!(ok("ref: \t refs/x \n\n"), Ok(Raw::Symref(b"refs/x".to_vec())));
        // Trimmed before the C string ends: the space before the NUL stays.
        assert_eq!(ok("ref: refs/x \0 \n"), Ok(Raw::Symref(b"refs/x ".to_vec())));
        assert_eq!(ok("ref:"), Ok(Raw::Symref(Vec::new())));
        for bad in ["", "\n", "garbage", &A[..39], &format!("{A}x"), &format!("{}g", &A[..39]), "ref"] {
            assert_eq!(ok(bad), Err(ReadError::Broken), "{bad:?}");
        }
    }

    #[test]
    fn resolution_follows_gits_rules() {
        let table = |name: &[u8]| -> Result<Raw, ReadError> {
            match name {
                b"HEAD" => Ok(Raw::Symref(b"refs/heads/a".to_vec())),
                b"refs/heads/a" => Ok(Raw::Symref(b"refs/heads/b".to_vec())),
                b"refs/heads/b" => Ok(Raw::Symref(b"refs/heads/c".to_vec())),
                b"refs/heads/c" => Ok(Raw::Symref(b"refs/heads/d".to_vec())),
                b"refs/heads/d" => Ok(Raw::Id(id(A))),
                b"refs/heads/e" => Ok(Raw::Symref(b"refs/heads/d".to_vec())),
                b"refs/heads/loop" => Ok(Raw::Symref(b"refs/heads/loop".to_vec())),
                b"refs/heads/bad" => Ok(Raw::Symref(b"refs/heads/a..b".to_vec())),
                b"refs/heads/garbage" => Err(ReadError::Broken),
                b"refs/heads/to-garbage" => Ok(Raw::Symref(b"refs/heads/garbage".to_vec())),
                b"refs/heads/dangling" => Ok(Raw::Symref(b"refs/heads/none".to_vec())),
                _ => Err(ReadError::NotFound),
            }
        };
        let found = |t: &str| Resolved::Found { id: id(A), target: Some(t.as_bytes().to_vec()) };
        // HEAD -> a -> b -> c -> d: five reads, the most git makes.
        assert_eq!(resolve(b"HEAD", table), found("refs/heads/d"));
        assert_eq!(resolve(b"refs/heads/e", table), found("refs/heads/d"));
        assert_eq!(resolve(b"refs/heads/d", table), Resolved::Found { id: id(A), target: None });
        assert_eq!(resolve(b"refs/heads/loop", table), Resolved::Failed { symbolic: true });
        assert_eq!(resolve(b"refs/heads/bad", table), Resolved::Failed { symbolic: true });
        assert_eq!(resolve(b"refs/heads/to-garbage", table), Resolved::Failed { symbolic: true });
        assert_eq!(resolve(b"refs/heads/garbage", table), Resolved::Failed { symbolic: false });
        assert_eq!(
            resolve(b"refs/heads/dangling", table),
            Resolved::Missing { name: b"refs/heads/none".to_vec(), symbolic: true }
        );
        assert_eq!(
            resolve(b"refs/heads/none", table),
            Resolved::Missing { name: b"refs/heads/none".to_vec(), symbolic: false }
        );
        assert_eq!(resolve(b"refs/heads/a b", table), Resolved::Failed { symbolic: false });
    }

    #[test]
    fn files_on_disk() {
        let dir = std::env::temp_dir().join(format!("packserve-loose-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let dirs = Dirs { git_dir: dir.clone(), common_dir: dir.clone() };
        let put = |name: &str, content: &str| {
            let p = dir.join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        };
        put("refs/heads/main", &format!("{A}\n"));
        put("refs/heads/garbage", "garbage\n");
        put("refs/heads/sub/x", &format!("{A}\n"));
        put("refs/heads/main.lock", "x");
        put("refs/heads/.hidden", "x");
        put("refs/tags/v1", &format!("{A}\n"));
        std::fs::create_dir_all(dir.join("refs/heads/empty")).unwrap();
        std::os::unix::fs::symlink("refs/heads/main", dir.join("refs/heads/link")).unwrap();
        std::os::unix::fs::symlink("../tags/v1", dir.join("refs/heads/followed")).unwrap();
        let mut big = b"ref: refs/heads/".to_vec();
        big.resize((MAX_REF_FILE + 10) as usize, b'x');
        std::fs::write(dir.join("big"), big).unwrap();

        // A symbolic link is listed when what it points to (relative to its directory) is a
        // file, as git's get_dtype sees it; read by name, `refs/...` is a symbolic ref.
        let all = walk(&dirs, Sha1, |_| true, |_| true);
        let names: Vec<_> = all.iter().map(|f| String::from_utf8_lossy(&f.name).into_owned()).collect();
        assert_eq!(
            names,
            [
                "refs/heads/followed",
                "refs/heads/garbage",
                "refs/heads/main",
                "refs/heads/sub/x",
                "refs/tags/v1"
            ]
        );
        assert_eq!(all[0].raw, Ok(Raw::Id(id(A))));
        assert_eq!(all[1].raw, Err(ReadError::Broken));
        assert_eq!(read_file(&dirs, b"refs/heads/link", Sha1), Ok(Raw::Symref(b"refs/heads/main".to_vec())));
        let heads = walk(
            &dirs,
            Sha1,
            |d| d.starts_with(b"refs/heads/") || b"refs/heads/".starts_with(d),
            |n| n.starts_with(b"refs/heads/"),
        );
        assert_eq!(heads.len(), 4);
        assert_eq!(read_file(&dirs, b"refs/heads/empty", Sha1), Err(ReadError::IsDir));
        assert_eq!(read_file(&dirs, b"refs/heads/nothing", Sha1), Err(ReadError::NotFound));
        assert_eq!(read_file(&dirs, b"refs/heads/main/x", Sha1), Err(ReadError::NotDir));
        assert_eq!(read_path(&dir.join("big"), Sha1), Err(ReadError::Broken));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
