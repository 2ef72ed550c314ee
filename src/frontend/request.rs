//! What every front-end does once its envelope is unwrapped: open the repository, run the
//! session, turn the result into an exit status, and write the operator's log line. Also the
//! path rules the daemon-like front-ends share (git's `daemon_avoid_alias`, root confinement).
//!
//! Reads no environment and no arguments: the front-ends pass plain values in.

use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use super::upload_pack::{serve_stream, Failure};
use crate::log::{Entry, Outcome, Sink};
use crate::repo::Repo;
use crate::session::Settings;

/// Opens `git_dir` (found by [`crate::repo::enter_repo`]) and serves one session on
/// `input`/`output`, recording the outcome in `entry`. Does not write the log line.
pub fn open_and_serve<R: Read, W: Write>(
    entry: &mut Entry,
    git_dir: &Path,
    display: &str,
    input: R,
    output: W,
    settings: Settings,
    timeout: Option<u64>,
) -> Result<(), Failure> {
    entry.version = Some(settings.version);
    let repo = match crate::frontend::upload_pack::open_repo(git_dir, display) {
        Ok(r) => r,
        Err(e) => {
            entry.outcome = Outcome::Error(e.to_string());
            return Err(Failure { code: 128, message: Some(format!("fatal: {e}")) });
        }
    };
    serve_repo(entry, &repo, input, output, settings, timeout)
}

/// Serves one session over an open repository, recording the outcome in `entry`.
pub fn serve_repo<R: Read, W: Write>(
    entry: &mut Entry,
    repo: &Repo,
    input: R,
    output: W,
    settings: Settings,
    timeout: Option<u64>,
) -> Result<(), Failure> {
    entry.version = Some(settings.version);
    let res = serve_stream(repo, input, output, settings, timeout, &mut entry.summary);
    match &res {
        Ok(()) => entry.outcome = Outcome::Ok,
        Err(f) if f.code == super::upload_pack::HANGUP_STATUS => entry.outcome = Outcome::Hangup,
        Err(f) if f.code == super::upload_pack::BUSY_EXIT => {
            let msg = f.message.as_deref().unwrap_or("busy");
            entry.outcome = Outcome::Refused(msg.strip_prefix("fatal: ").unwrap_or(msg).to_owned());
        }
        Err(f) => {
            let msg = f.message.as_deref().unwrap_or("failed");
            entry.outcome = Outcome::Error(msg.strip_prefix("fatal: ").unwrap_or(msg).to_owned());
        }
    }
    res
}

/// Records a refusal in `entry`, writes the log line, and returns the failure to report:
/// `fatal: <message>` on stderr, exit status 128.
pub fn refuse(entry: &mut Entry, sink: &Sink, message: String) -> Failure {
    entry.outcome = Outcome::Refused(message.clone());
    entry.write(sink);
    Failure { code: 128, message: Some(format!("fatal: {message}")) }
}

/// git's `daemon_avoid_alias`: true when `p` must be refused — it is neither absolute nor a
/// `~` form, or it has `//`, `/./` or `/../` in it, or ends in `/.` or `/..`.
pub fn is_aliased(p: &str) -> bool {
    let b = p.as_bytes();
    if b.first().is_none_or(|&c| c != b'/' && c != b'~') {
        return true;
    }
    let (mut sl, mut ndot) = (true, 0);
    for &ch in &b[1..] {
        if sl {
            match ch {
                b'.' => ndot += 1,
                b'/' if ndot < 3 => return true,
                b'/' => ndot = 0,
                _ => {
                    sl = false;
                    ndot = 0;
                }
            }
        } else if ch == b'/' {
            sl = true;
            ndot = 0;
        }
    }
    sl && ndot > 0 && ndot < 3
}

/// True when `p` has a `..` component (relative or absolute).
pub fn has_dot_dot(p: &str) -> bool {
    Path::new(p).components().any(|c| c == Component::ParentDir)
}

/// The canonical form of `git_dir` when it lies inside `root` (both resolved through every
/// symlink), with its path relative to the root; `None` when it escapes.
pub fn confine(root: &Path, git_dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let root = root.canonicalize().ok()?;
    let dir = git_dir.canonicalize().ok()?;
    let rel = dir.strip_prefix(&root).ok()?.to_path_buf();
    Some((dir, rel))
}

/// The repository's name relative to a root, as `--allow` globs see it: `team/a.git` for a
/// bare repository, `team/a` for `team/a/.git`.
pub fn repo_name(rel: &Path) -> String {
    let s = rel.to_string_lossy();
    let s = s.strip_suffix("/.git").unwrap_or(if s == ".git" { "" } else { &s });
    s.to_owned()
}

/// Glob match over `/`-separated names with git's wildmatch (gix's, as `git ls-files` and
/// pathspecs with `:(glob)` use it): `*`, `?` and `[...]` (`[!...]`, `[^...]`, `[[:alpha:]]`)
/// never match a `/`; `**` crosses components when it stands between slashes or at an end
/// (`team/**` matches everything below `team/`, `**/a.git` any `a.git`, `a/**/b` matches
/// `a/b` too); `\` escapes. Everything else matches itself.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    gix::glob::wildmatch(pattern.into(), name.into(), gix::glob::wildmatch::Mode::NO_MATCH_SLASH_LITERAL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliased_paths_as_git_daemon_sees_them() {
        for ok in ["/a", "/a.git", "~", "~u/x", "/a/...b", "/a/.../b", "/.hidden", "/a/b/"] {
            assert!(!is_aliased(ok), "{ok}");
        }
        for bad in
            ["a", "", "~/x", "//a", "/a//b", "/./a", "/a/./b", "/../a", "/a/../b", "/a/.", "/a/..", "-x"]
        {
            assert!(is_aliased(bad), "{bad}");
        }
    }

    #[test]
    fn globs() {
        assert!(glob_match("*", "a.git"));
        assert!(!glob_match("*", "team/a.git"));
        assert!(glob_match("team/*", "team/a.git"));
        assert!(glob_match("team/**", "team/x/a.git"));
        assert!(glob_match("**/a.git", "team/x/a.git"));
        assert!(glob_match("**/a.git", "a.git"));
        assert!(glob_match("a/**/b", "a/b"));
        assert!(glob_match("a?.git", "ab.git"));
        assert!(!glob_match("a?", "a/"));
        assert!(glob_match("[ab]*.git", "b1.git"));
        assert!(!glob_match("[!ab]*.git", "b1.git"));
        assert!(glob_match("[a-c]x", "bx"));
        assert!(!glob_match("public", "public2"));
        assert!(glob_match("public", "public"));
        // git's wildmatch beyond what the hand-written matcher knew.
        assert!(glob_match("[[:alpha:]]*.git", "b1.git"));
        assert!(!glob_match("[[:digit:]]*.git", "b1.git"));
        assert!(glob_match("[^ab]*.git", "c.git"));
        assert!(glob_match("a\\*", "a*"));
        assert!(!glob_match("a\\*", "ab"));
        assert!(!glob_match("team/*", "team/x/a.git"), "* does not cross /");
    }

    #[test]
    fn repo_names() {
        assert_eq!(repo_name(Path::new("team/a.git")), "team/a.git");
        assert_eq!(repo_name(Path::new("team/a/.git")), "team/a");
        assert_eq!(repo_name(Path::new(".git")), "");
    }

    #[test]
    fn dot_dot() {
        assert!(has_dot_dot("a/../b"));
        assert!(has_dot_dot("../b"));
        assert!(!has_dot_dot("a/..b/c"));
    }
}
