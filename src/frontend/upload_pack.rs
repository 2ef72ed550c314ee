//! The plain form: git-upload-pack's own arguments, `GIT_PROTOCOL` for the version.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cli::UploadPackArgs;
use crate::repo::{self, EnterError, Ownership, Repo, SafeDirectories};
use crate::session::{self, SessionError, Settings, Summary, Version};

/// Picks the protocol version from a `GIT_PROTOCOL` value (colon-separated `key=value` list);
/// the highest version named wins, as in git.
pub fn protocol_version(git_protocol: Option<&str>) -> Version {
    let mut v = Version::V0;
    for item in git_protocol.unwrap_or_default().split(':') {
        match item {
            "version=2" => v = Version::V2,
            "version=1" if v != Version::V2 => v = Version::V1,
            _ => {}
        }
    }
    v
}

/// The exit status of a client that went away: a shell's for a process killed by SIGPIPE, as
/// git's upload-pack ends then.
pub const HANGUP_STATUS: i32 = 128 + libc::SIGPIPE;

/// Exit status and message of a failed run.
pub struct Failure {
    /// Process exit status.
    pub code: i32,
    /// What to print on stderr (already prefixed), if anything.
    pub message: Option<String>,
}

/// The exit status of a request refused by admission control (`EX_TEMPFAIL`): front-ends that
/// say "busy" in their envelope (HTTP 503) recognise it by this.
pub const BUSY_EXIT: i32 = 75;

impl From<SessionError> for Failure {
    fn from(e: SessionError) -> Self {
        match e {
            // The client went away: nothing to tell anyone.
            SessionError::Write(err) if err.kind() == std::io::ErrorKind::BrokenPipe => {
                Failure { code: HANGUP_STATUS, message: None }
            }
            SessionError::Config(e) => Failure { code: 128, message: Some(e.stderr()) },
            SessionError::Busy(msg, ..) => {
                Failure { code: BUSY_EXIT, message: Some(format!("fatal: {msg}")) }
            }
            other => Failure { code: 128, message: Some(format!("fatal: {other}")) },
        }
    }
}

/// Runs upload-pack on stdin/stdout, writing the operator log line when `PACKSERVE_LOG` names
/// a file (`PACKSERVE_LOG_FORMAT`: `text` or `json`): installed as `git-upload-pack`, that is
/// how an admin sees that packserve serves. The remote address is `REMOTE_ADDR` (git daemon,
/// CGI) or the first field of `SSH_CONNECTION`; the user `REMOTE_USER` (CGI) or `USER`.
pub fn run(args: &UploadPackArgs) -> Result<(), Failure> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let Some(log) = var("PACKSERVE_LOG") else { return run_plain(args, &mut None) };
    let mut entry = crate::log::Entry::new("upload-pack");
    if let Some(f) = var("PACKSERVE_LOG_FORMAT") {
        match crate::log::Format::parse(&f) {
            Ok(f) => entry.format = f,
            Err(e) => eprintln!("warning: PACKSERVE_LOG_FORMAT: {e}"),
        }
    }
    entry.repo = Some(args.directory.clone());
    entry.addr = var("REMOTE_ADDR")
        .or_else(|| var("SSH_CONNECTION").and_then(|c| c.split_whitespace().next().map(str::to_owned)));
    entry.user = var("REMOTE_USER").or_else(|| var("USER"));
    let mut logged = Some(entry);
    let res = run_plain(args, &mut logged);
    let mut entry = logged.unwrap_or_else(|| crate::log::Entry::new("upload-pack"));
    match &res {
        Ok(()) => {}
        Err(f) if f.code == HANGUP_STATUS => entry.outcome = crate::log::Outcome::Hangup,
        Err(f) if entry.version.is_none() => {
            let msg = f.message.as_deref().unwrap_or("refused");
            entry.outcome =
                crate::log::Outcome::Refused(msg.strip_prefix("fatal: ").unwrap_or(msg).to_owned());
        }
        Err(f) => {
            let msg = f.message.as_deref().unwrap_or("failed");
            entry.outcome = crate::log::Outcome::Error(msg.strip_prefix("fatal: ").unwrap_or(msg).to_owned());
        }
    }
    entry.write(&crate::log::Sink::File(log.into()));
    res
}

/// The plain form's work; fills `entry` when it is being logged.
fn run_plain(args: &UploadPackArgs, entry: &mut Option<crate::log::Entry>) -> Result<(), Failure> {
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let git_dir = match repo::enter_repo(&args.directory, args.strict, home.as_deref(), &env_ownership()) {
        Ok(d) => d,
        Err(EnterError::NotFound) => {
            crate::trace2::error(
                &format!("'{}' does not appear to be a git repository", args.directory),
                "'%s' does not appear to be a git repository",
            );
            return Err(Failure {
                code: 128,
                message: Some(format!("fatal: '{}' does not appear to be a git repository", args.directory)),
            });
        }
        Err(e) => return Err(Failure { code: 128, message: Some(format!("fatal: {e}")) }),
    };
    let mut repo = open_repo(&git_dir, &args.directory)
        .map_err(|e| Failure { code: 128, message: Some(format!("fatal: {e}")) })?;
    args.limits.apply(&mut repo.config.limits);
    let settings = env_settings(
        protocol_version(std::env::var("GIT_PROTOCOL").ok().as_deref()),
        args.stateless_rpc,
        args.advertise_refs,
    );
    let stdin = std::io::stdin().lock();
    let stdout = std::io::stdout().lock();
    match entry {
        Some(e) => {
            e.version = Some(settings.version);
            serve_stream(&repo, stdin, stdout, settings, args.timeout, &mut e.summary)
        }
        None => serve_stream(&repo, stdin, stdout, settings, args.timeout, &mut Summary::default()),
    }
}

/// Starts trace2 as git's `GIT_TRACE2_EVENT` asks (an absolute path, appended to, or a directory
/// to put one file per process in; `1`/`true` or a digit: stderr or that descriptor), with
/// `GIT_TRACE2_PARENT_SID` and `GIT_TRACE2_PARENT_NAME`; `argv` for the `start` event. Called
/// once, by `main`.
pub fn start_trace2(argv: &[String]) {
    let var = |k: &str| std::env::var(k).ok();
    let value = var("GIT_TRACE2_EVENT");
    let parent_sid = var("GIT_TRACE2_PARENT_SID");
    let parent_name = var("GIT_TRACE2_PARENT_NAME");
    // A directory gets a file named after this process's session id.
    let sink = match crate::trace::Destination::parse(value.as_deref()) {
        crate::trace::Destination::File(dir) if dir.is_dir() => {
            crate::trace2::install(None, parent_sid.clone(), None, &[]);
            let sid = crate::trace2::session_id();
            let name = sid.rsplit('/').next().unwrap_or(sid);
            std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(dir.join(name))
                .ok()
                .map(|f| Box::new(f) as Box<dyn Write + Send>)
        }
        _ => crate::trace::open("GIT_TRACE2_EVENT", value.as_deref()).ok().flatten(),
    };
    crate::trace2::install(sink, parent_sid, parent_name, argv);
}

/// Opens a repository with the configuration given in the environment (`GIT_CONFIG_PARAMETERS`,
/// what `git -c` exports) on top of its files. Shared by every front-end.
pub(crate) fn open_repo(git_dir: &std::path::Path, display: &str) -> Result<Repo, String> {
    let overrides = match std::env::var("GIT_CONFIG_PARAMETERS") {
        Ok(p) => crate::config::parse_config_parameters(&p)?,
        Err(_) => Vec::new(),
    };
    Repo::open(git_dir, display, &overrides).map_err(|e| e.to_string())
}

/// `key=value` items of the command-line configuration, as git reads them: the
/// `GIT_CONFIG_COUNT`/`GIT_CONFIG_KEY_<n>`/`GIT_CONFIG_VALUE_<n>` pairs, then
/// `GIT_CONFIG_PARAMETERS` (what `git -c` exports). Malformed parts are skipped.
fn command_line_config() -> Vec<String> {
    let mut out = Vec::new();
    let count = std::env::var("GIT_CONFIG_COUNT").ok().and_then(|c| c.trim().parse::<usize>().ok());
    for i in 0..count.unwrap_or(0).min(4096) {
        if let (Ok(k), Ok(v)) =
            (std::env::var(format!("GIT_CONFIG_KEY_{i}")), std::env::var(format!("GIT_CONFIG_VALUE_{i}")))
        {
            out.push(format!("{k}={v}"));
        }
    }
    if let Ok(p) = std::env::var("GIT_CONFIG_PARAMETERS") {
        out.extend(crate::config::parse_config_parameters(&p).unwrap_or_default());
    }
    out
}

/// The effective user id.
fn effective_uid() -> Option<u32> {
    // SAFETY: geteuid takes nothing, cannot fail and has no side effect.
    Some(unsafe { libc::geteuid() })
}

/// git's repository ownership rules with what the environment says: the effective user,
/// `SUDO_UID`, `GIT_TEST_ASSUME_DIFFERENT_OWNER`, and `safe.directory` from the protected
/// configuration — the system file (`GIT_CONFIG_SYSTEM` or `/etc/gitconfig`, unless
/// `GIT_CONFIG_NOSYSTEM`), the global ones (`GIT_CONFIG_GLOBAL`, or
/// `$XDG_CONFIG_HOME/git/config` and `~/.gitconfig`) and the command line. Shared by every
/// front-end.
pub(crate) fn env_ownership() -> Ownership {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(std::path::PathBuf::from);
    let flag = |k: &str| std::env::var(k).ok().and_then(|v| crate::config::parse_bool(&v)).unwrap_or(false);
    let home = var("HOME");
    let mut files = Vec::new();
    if !flag("GIT_CONFIG_NOSYSTEM") {
        files.push(var("GIT_CONFIG_SYSTEM").unwrap_or_else(|| "/etc/gitconfig".into()));
    }
    match std::env::var_os("GIT_CONFIG_GLOBAL") {
        Some(global) => files.push(global.into()),
        None => {
            files.extend(
                var("XDG_CONFIG_HOME")
                    .map(|x| x.join("git/config"))
                    .or_else(|| home.as_ref().map(|h| h.join(".config/git/config"))),
            );
            files.extend(home.as_ref().map(|h| h.join(".gitconfig")));
        }
    }
    Ownership {
        euid: effective_uid(),
        sudo_uid: std::env::var("SUDO_UID").ok().and_then(|s| s.trim().parse().ok()),
        assume_different_owner: flag("GIT_TEST_ASSUME_DIFFERENT_OWNER"),
        safe_directories: SafeDirectories::protected(files, command_line_config()),
        home,
    }
}

/// Session settings with what the environment adds: `GIT_NAMESPACE`, `GIT_TRACE_PACKET` (with
/// `GIT_TRACE_BARE`) and `GIT_USER_AGENT`. A trace value git would warn about gets git's
/// warning on stderr.
pub(crate) fn env_settings(version: Version, stateless_rpc: bool, advertise_refs: bool) -> Settings {
    fn warned<T: Default>(r: Result<T, String>) -> T {
        r.unwrap_or_else(|w| {
            eprintln!("warning: {w}");
            T::default()
        })
    }
    let var = |k: &str| std::env::var_os(k).map(|v| v.to_string_lossy().into_owned());
    let trace = warned(crate::trace::open("GIT_TRACE_PACKET", var("GIT_TRACE_PACKET").as_deref())).map(|w| {
        crate::trace::Trace {
            sink: std::rc::Rc::new(std::cell::RefCell::new(w)),
            bare: warned(crate::trace::bare(var("GIT_TRACE_BARE").as_deref())),
        }
    });
    let user_agent = std::env::var_os("GIT_USER_AGENT");
    Settings {
        namespace: std::env::var("GIT_NAMESPACE").ok().filter(|n| !n.is_empty()),
        trace,
        version,
        stateless_rpc,
        advertise_refs,
        agent: crate::session::caps::agent(user_agent.as_ref().map(|v| v.as_encoded_bytes())),
        busy_by_envelope: false,
        output_fd: None,
    }
}

/// Serves one session on `input`/`output`; with a `timeout`, the process ends after that many
/// seconds without a byte moving either way (git's `--timeout`). Shared by every front-end;
/// `output` is always a writer over the process's stdout, so without a timeout (whose
/// watchdog counts the bytes) cache hits may be sent to descriptor 1 directly.
pub(crate) fn serve_stream<R: Read, W: Write>(
    repo: &Repo,
    input: R,
    output: W,
    settings: Settings,
    timeout: Option<u64>,
    summary: &mut Summary,
) -> Result<(), Failure> {
    // git's upload-pack says which version it speaks once the repository is entered.
    let version = match settings.version {
        Version::V0 => "0",
        Version::V1 => "1",
        Version::V2 => "2",
    };
    crate::trace2::data("transfer", "negotiated-version", version);
    match timeout {
        Some(secs) => {
            let activity = Arc::new(AtomicU64::new(0));
            watchdog(Duration::from_secs(secs), activity.clone());
            let r = Activity { inner: input, last: activity.clone(), start: Instant::now() };
            let w = Activity { inner: output, last: activity, start: Instant::now() };
            session::serve(repo, r, w, settings, summary)?;
        }
        None => {
            let settings = Settings { output_fd: Some(1), ..settings };
            session::serve(repo, input, output, settings, summary)?
        }
    }
    Ok(())
}

/// Wraps stdin/stdout and records the time of the last successful transfer.
struct Activity<T> {
    inner: T,
    last: Arc<AtomicU64>,
    start: Instant,
}

impl<T> Activity<T> {
    fn touch(&self) {
        self.last.store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

impl<T: Read> Read for Activity<T> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.touch();
        Ok(n)
    }
}

impl<T: Write> Write for Activity<T> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.touch();
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Ends the process when neither side has moved for `limit` (git's `--timeout`).
fn watchdog(limit: Duration, last: Arc<AtomicU64>) {
    let start = Instant::now();
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_millis(250));
        let idle = start.elapsed().as_millis() as u64
            - last.load(Ordering::Relaxed).min(start.elapsed().as_millis() as u64);
        if idle >= limit.as_millis() as u64 {
            eprintln!("fatal: timeout after {}s of inactivity", limit.as_secs());
            std::process::exit(128);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_from_git_protocol() {
        assert_eq!(protocol_version(None), Version::V0);
        assert_eq!(protocol_version(Some("version=2")), Version::V2);
        assert_eq!(protocol_version(Some("version=1")), Version::V1);
        assert_eq!(protocol_version(Some("foo=bar:version=2")), Version::V2);
        assert_eq!(protocol_version(Some("version=2:version=1")), Version::V2);
        assert_eq!(protocol_version(Some("version=3")), Version::V0);
    }
}
