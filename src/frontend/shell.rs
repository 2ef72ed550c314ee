//! `packserve shell`: the program an OpenSSH key's `command=` (or `ForceCommand`) runs.
//!
//! The client's command arrives in `SSH_ORIGINAL_COMMAND`, as git's ssh transport sends it:
//! `git-upload-pack '<path>'` (or `git upload-pack '<path>'`), the path in git's single
//! quoting. Upload-pack is served; `git-receive-pack` is handed to git's receive-pack only when
//! the key opts in (`--receive-pack <program>` and an `--allow-push` glob matching the
//! repository) — the one program packserve ever starts; every other command is refused with
//! one line on stderr and exit status 128. The path is resolved below `--root` and must stay
//! there after every symlink; `--allow` globs narrow it further per key.

use std::path::{Path, PathBuf};

use super::request::{self, confine, glob_match, has_dot_dot, repo_name};
use super::upload_pack::{protocol_version, Failure};
use crate::cli::ShellArgs;
use crate::log::{Entry, Sink};
use crate::repo;

/// What the client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `git-upload-pack` or `git-receive-pack`.
    pub service: Service,
    /// The path as the client sent it (unquoted).
    pub path: String,
}

/// The git command a client runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// A fetch, served by packserve.
    UploadPack,
    /// A push, handed to `--receive-pack` when this key may push there.
    ReceivePack,
}

/// Why a command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShellError {
    /// `git-receive-pack`, `git-upload-archive`: git commands packserve does not serve.
    #[error("packserve serves fetches only: '{0}' is not available here")]
    NotServed(String),
    /// Anything that is not a git transport command.
    #[error("unrecognized command '{0}'")]
    Unrecognized(String),
    /// The argument is missing, not in git's quoting, or starts with `-`.
    #[error("bad argument: expected one single-quoted path, as git sends it")]
    BadArgument,
    /// `..` in the path, or a path that leads out of the root.
    #[error("'{0}': path is outside the served root")]
    OutsideRoot(String),
    /// No repository there.
    #[error("'{0}' does not appear to be a git repository")]
    NotARepository(String),
    /// Owned by another user and not allowed by `safe.directory` (git's ownership check).
    #[error("detected dubious ownership in repository at '{0}' (see safe.directory)")]
    DubiousOwnership(String),
    /// Not matched by any `--allow` glob.
    #[error("'{0}': access denied")]
    NotAllowed(String),
    /// A push by a key with `--receive-pack` but no `--allow-push` glob for this repository.
    #[error("'{0}': push access denied: this key may not push here (no --allow-push matches)")]
    PushNotAllowed(String),
}

/// Parses `SSH_ORIGINAL_COMMAND` the way git-shell does: `git foo` is read as `git-foo`,
/// the argument must be one sq-quoted word not starting with `-`.
pub fn parse_command(cmd: &str) -> Result<Request, ShellError> {
    let cmd = cmd.trim_start();
    let normalized = match cmd.strip_prefix("git") {
        Some(rest) if rest.starts_with([' ', '\t']) => format!("git-{}", rest.trim_start()),
        _ => cmd.to_owned(),
    };
    let (prog, arg) = match normalized.split_once([' ', '\t']) {
        Some((p, a)) => (p, Some(a.trim_start())),
        None => (normalized.as_str(), None),
    };
    let service = match prog {
        "git-upload-pack" => Service::UploadPack,
        "git-receive-pack" => Service::ReceivePack,
        "git-upload-archive" => return Err(ShellError::NotServed(prog.to_owned())),
        _ => {
            let shown: String = cmd.chars().take(80).filter(|c| !c.is_control()).collect();
            return Err(ShellError::Unrecognized(shown));
        }
    };
    let path = arg.and_then(dequote_path).ok_or(ShellError::BadArgument)?;
    if path.starts_with('-') || path.is_empty() {
        return Err(ShellError::BadArgument);
    }
    Ok(Request { service, path })
}

/// The path argument: git's sq quoting (`'a'\''b'`), optionally after an unquoted `~/` or
/// `~user/` prefix (JGit and others send `~/'repo.git'`).
fn dequote_path(arg: &str) -> Option<String> {
    let arg = arg.trim_end();
    if let Some(q) = arg.find('\'') {
        let prefix = &arg[..q];
        if !prefix.is_empty() {
            let name = prefix.strip_prefix('~')?.strip_suffix('/')?;
            if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
                return None;
            }
            return sq_dequote(&arg[q..]).map(|rest| format!("{prefix}{rest}"));
        }
    }
    sq_dequote(arg)
}

/// git's `sq_dequote`: one word made of single-quoted runs joined by `\'` or `\!`.
pub fn sq_dequote(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if b.first() != Some(&b'\'') {
        return None;
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 1;
    loop {
        match b.get(i) {
            None => return None,
            Some(b'\'') => {
                // Out of the quotes: the end, or an escaped ' or ! and back into quotes.
                match b.get(i + 1) {
                    None => return String::from_utf8(out).ok(),
                    Some(b'\\')
                        if matches!(b.get(i + 2), Some(b'\'' | b'!')) && b.get(i + 3) == Some(&b'\'') =>
                    {
                        out.push(b[i + 2]);
                        i += 4;
                    }
                    Some(_) => return None,
                }
            }
            Some(&c) => {
                out.push(c);
                i += 1;
            }
        }
    }
}

/// Where a client path points below `root`: `/x` and `x` are `root/x` (an absolute path that
/// already names something under `root` is taken as it is, so `ssh://host/srv/git/a.git`
/// keeps working with `--root /srv/git`); `~` and `~/x` are `root` and `root/x`; `~user/x` is
/// `root/user/x`. `..` is refused outright.
pub fn resolve(root: &Path, path: &str) -> Result<PathBuf, ShellError> {
    if has_dot_dot(path) {
        return Err(ShellError::OutsideRoot(path.to_owned()));
    }
    let rel = if let Some(rest) = path.strip_prefix('~') {
        let (user, tail) = rest.split_once('/').unwrap_or((rest, ""));
        // `~..` and `~.` are no user names: refused before anything on disk is looked at, so
        // the answer never tells whether a repository exists beside the root.
        if user == ".." || user == "." {
            return Err(ShellError::OutsideRoot(path.to_owned()));
        }
        if user.is_empty() {
            tail.to_owned()
        } else {
            format!("{user}/{tail}")
        }
    } else if path.starts_with('/') {
        let root_str = root.to_string_lossy();
        let root_str = root_str.trim_end_matches('/');
        match path.strip_prefix(root_str) {
            Some(tail) if tail.starts_with('/') || tail.is_empty() => tail.to_owned(),
            _ => path.to_owned(),
        }
    } else {
        path.to_owned()
    };
    let rel = rel.trim_start_matches('/');
    Ok(if rel.is_empty() { root.to_path_buf() } else { root.join(rel) })
}

/// The git directory for the client's path, checked against the root and the `--allow` globs.
/// Returns the canonical git dir and the repository's name below the root.
pub fn locate(
    args: &ShellArgs,
    path: &str,
    owner: &repo::Ownership,
) -> Result<(PathBuf, String), ShellError> {
    let candidate = resolve(&args.root, path)?;
    let candidate_str = candidate.to_string_lossy();
    let git_dir = repo::enter_repo(&candidate_str, false, None, owner).map_err(|e| match e {
        repo::EnterError::NotFound | repo::EnterError::BadGitfile(_) => {
            ShellError::NotARepository(path.to_owned())
        }
        repo::EnterError::DubiousOwnership(_) => ShellError::DubiousOwnership(path.to_owned()),
    })?;
    let (dir, rel) = confine(&args.root, &git_dir).ok_or_else(|| ShellError::OutsideRoot(path.to_owned()))?;
    let name = repo_name(&rel);
    if !args.allow.is_empty() && !args.allow.iter().any(|g| glob_match(g, &name)) {
        return Err(ShellError::NotAllowed(path.to_owned()));
    }
    Ok((dir, name))
}

/// Whether this key may push to the repository `name` (its path below the root): only with
/// `--receive-pack`, and only where an `--allow-push` glob matches.
pub fn check_push(args: &ShellArgs, path: &str, name: &str) -> Result<(), ShellError> {
    if args.receive_pack.is_none() {
        return Err(ShellError::NotServed("git-receive-pack".into()));
    }
    if !args.allow_push.iter().any(|g| glob_match(g, name)) {
        return Err(ShellError::PushNotAllowed(path.to_owned()));
    }
    Ok(())
}

/// Runs `--receive-pack <git_dir>` on this connection's stdin/stdout/stderr and waits for it:
/// the push is git's from here on (its hooks and configuration included). The log line says
/// how it ended.
fn hand_to_receive_pack(program: &Path, git_dir: &Path, entry: &mut Entry) -> Result<(), Failure> {
    entry.summary.commands.push("receive-pack");
    let status = std::process::Command::new(program).arg(git_dir).status();
    match status {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => {
            let code = s.code().unwrap_or(128);
            entry.outcome = crate::log::Outcome::Error(format!("receive-pack exited with {s}"));
            Err(Failure { code, message: None })
        }
        Err(e) => {
            let msg = format!("cannot run {}: {e}", program.display());
            entry.outcome = crate::log::Outcome::Error(msg.clone());
            Err(Failure { code: 128, message: Some(format!("fatal: {msg}")) })
        }
    }
}

const INTERACTIVE: &str = "\
This account serves git fetches only (packserve shell); interactive logins are not available.
Clone with: git clone ssh://<this account>@<this host>/<repository>";

/// Runs the forced command: reads `SSH_ORIGINAL_COMMAND`, `GIT_PROTOCOL`, `SSH_CONNECTION`.
pub fn run(args: &ShellArgs) -> Result<(), Failure> {
    let sink = args.log.clone().map(Sink::File).unwrap_or(Sink::Off);
    let mut entry = Entry::new("ssh");
    entry.format = args.log_format;
    entry.user =
        args.user.clone().or_else(|| std::env::var("USER").ok()).or_else(|| std::env::var("LOGNAME").ok());
    entry.addr = std::env::var("SSH_CONNECTION")
        .or_else(|_| std::env::var("SSH_CLIENT"))
        .ok()
        .and_then(|c| c.split_whitespace().next().map(str::to_owned));
    let Some(cmd) = std::env::var_os("SSH_ORIGINAL_COMMAND") else {
        entry.outcome = crate::log::Outcome::Refused("interactive login".into());
        entry.write(&sink);
        return Err(Failure { code: 128, message: Some(INTERACTIVE.to_owned()) });
    };
    let cmd = cmd.to_string_lossy();
    let req = match parse_command(&cmd) {
        Ok(r) => r,
        Err(e) => return Err(request::refuse(&mut entry, &sink, e.to_string())),
    };
    entry.repo = Some(req.path.clone());
    let owner = crate::frontend::upload_pack::env_ownership();
    let (git_dir, name) = match locate(args, &req.path, &owner) {
        Ok(found) => found,
        Err(e) => return Err(request::refuse(&mut entry, &sink, e.to_string())),
    };
    entry.repo = Some(name.clone());
    if req.service == Service::ReceivePack {
        if let Err(e) = check_push(args, &req.path, &name) {
            return Err(request::refuse(&mut entry, &sink, e.to_string()));
        }
        let program = args.receive_pack.as_deref().unwrap_or(Path::new("git-receive-pack"));
        let res = hand_to_receive_pack(program, &git_dir, &mut entry);
        entry.write(&sink);
        return res;
    }
    let settings = crate::frontend::upload_pack::env_settings(
        protocol_version(std::env::var("GIT_PROTOCOL").ok().as_deref()),
        false,
        false,
    );
    let res = request::open_and_serve(
        &mut entry,
        &git_dir,
        &req.path,
        std::io::stdin().lock(),
        std::io::stdout().lock(),
        settings,
        args.timeout,
    );
    entry.write(&sink);
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_as_git_shell_reads_them() {
        let ok = |c: &str| parse_command(c).map(|r| r.path);
        assert_eq!(ok("git-upload-pack '/srv/a.git'"), Ok("/srv/a.git".into()));
        assert_eq!(ok("git upload-pack 'a.git'"), Ok("a.git".into()));
        assert_eq!(ok("git-upload-pack '~/a.git'"), Ok("~/a.git".into()));
        assert_eq!(ok("git-upload-pack ~/'a.git'"), Ok("~/a.git".into()));
        assert_eq!(ok("git-upload-pack ~bob/'a.git'"), Ok("~bob/a.git".into()));
        assert_eq!(ok("git-upload-pack 'it'\\''s.git'"), Ok("it's.git".into()));
        assert_eq!(ok("git-upload-pack 'a'\\!'b'"), Ok("a!b".into()));
        assert_eq!(ok("git-upload-pack 'a b.git'"), Ok("a b.git".into()));
        for bad in [
            "git-upload-pack",
            "git-upload-pack a.git",
            "git-upload-pack 'a.git",
            "git-upload-pack 'a' 'b'",
            "git-upload-pack '-x'",
            "git-upload-pack ''",
            "git-upload-pack 'a'\\x'b'",
            "git-upload-pack ~b;c/'a'",
        ] {
            assert_eq!(parse_command(bad), Err(ShellError::BadArgument), "{bad}");
        }
        let push = parse_command("git receive-pack 'a.git'").unwrap();
        assert_eq!((push.service, push.path.as_str()), (Service::ReceivePack, "a.git"));
        assert_eq!(parse_command("git-receive-pack '-x'"), Err(ShellError::BadArgument));
        assert!(matches!(parse_command("git-upload-archive 'a.git'"), Err(ShellError::NotServed(_))));
        assert!(matches!(parse_command("ls -la"), Err(ShellError::Unrecognized(_))));
        assert!(matches!(parse_command("git-upload-packx 'a'"), Err(ShellError::Unrecognized(_))));
        assert!(matches!(parse_command(""), Err(ShellError::Unrecognized(_))));
    }

    #[test]
    fn pushes_need_both_flags() {
        let mut args = ShellArgs {
            root: "/srv".into(),
            allow: vec![],
            user: None,
            log: None,
            log_format: Default::default(),
            timeout: None,
            receive_pack: None,
            allow_push: vec!["team/*".into()],
        };
        assert!(matches!(check_push(&args, "team/a.git", "team/a.git"), Err(ShellError::NotServed(_))));
        args.receive_pack = Some("/usr/bin/git-receive-pack".into());
        assert_eq!(check_push(&args, "team/a.git", "team/a.git"), Ok(()));
        assert!(matches!(check_push(&args, "main.git", "main.git"), Err(ShellError::PushNotAllowed(_))));
        args.allow_push.clear();
        assert!(matches!(check_push(&args, "team/a.git", "team/a.git"), Err(ShellError::PushNotAllowed(_))));
    }

    #[test]
    fn paths_below_the_root() {
        let root = Path::new("/srv/git");
        let r = |p: &str| resolve(root, p);
        assert_eq!(r("/a.git"), Ok("/srv/git/a.git".into()));
        assert_eq!(r("a.git"), Ok("/srv/git/a.git".into()));
        assert_eq!(r("/srv/git/a.git"), Ok("/srv/git/a.git".into()));
        assert_eq!(r("/srv/gitx/a.git"), Ok("/srv/git/srv/gitx/a.git".into()));
        assert_eq!(r("~/a.git"), Ok("/srv/git/a.git".into()));
        assert_eq!(r("~"), Ok("/srv/git".into()));
        assert_eq!(r("~bob/a.git"), Ok("/srv/git/bob/a.git".into()));
        assert_eq!(r("/etc/passwd"), Ok("/srv/git/etc/passwd".into()));
        for bad in ["../a.git", "/a/../../etc", "~/../x", "~/..", "~../x.git", "~..", "~./a.git"] {
            assert!(matches!(r(bad), Err(ShellError::OutsideRoot(_))), "{bad}");
        }
    }
}
