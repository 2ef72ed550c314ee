//! Command-line definitions: the single source for `--help` and the manual.
//!
//! The plain form takes exactly git-upload-pack's arguments.

use std::path::PathBuf;

use clap::{Arg, ArgAction, Command};

/// The parsed plain (upload-pack) invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadPackArgs {
    /// `--strict`: no `<dir>.git` or `<dir>/.git` guessing.
    pub strict: bool,
    /// `--timeout=<n>` seconds of client inactivity.
    pub timeout: Option<u64>,
    /// `--stateless-rpc`.
    pub stateless_rpc: bool,
    /// `--advertise-refs` / `--http-backend-info-refs`.
    pub advertise_refs: bool,
    /// `--max-*`: request limits replacing the configured ones.
    pub limits: crate::config::LimitOverrides,
    /// The repository.
    pub directory: String,
}

/// `packserve shell`: the forced command of an OpenSSH key or account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellArgs {
    /// Repositories are served from below this directory only.
    pub root: PathBuf,
    /// Globs (relative to the root) limiting which repositories may be read; empty: all.
    pub allow: Vec<String>,
    /// Name for the log line (which key this is).
    pub user: Option<String>,
    /// Log file (without it, no log: the shell's stderr is the client's).
    pub log: Option<PathBuf>,
    /// `--log-format`.
    pub log_format: crate::log::Format,
    /// Seconds of inactivity before giving up.
    pub timeout: Option<u64>,
    /// `--receive-pack`: git's receive-pack (an absolute path), run for pushes this key may make.
    pub receive_pack: Option<PathBuf>,
    /// `--allow-push` globs: repositories this key may push to (with `--receive-pack`).
    pub allow_push: Vec<String>,
}

/// `packserve http-backend`: a CGI program for smart HTTP fetches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpBackendArgs {
    /// Log file (default: stderr, the web server's error log).
    pub log: Option<PathBuf>,
    /// `--log-format`.
    pub log_format: crate::log::Format,
    /// Seconds of inactivity before giving up.
    pub timeout: Option<u64>,
}

/// `packserve inetd`: one git:// connection on stdin/stdout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InetdArgs {
    /// Client paths are taken below this directory (`--base-path`).
    pub base_path: Option<PathBuf>,
    /// Serve repositories without `git-daemon-export-ok`.
    pub export_all: bool,
    /// Tell the client why it was refused.
    pub informative_errors: bool,
    /// Only exact directory matches (`--strict-paths`).
    pub strict_paths: bool,
    /// Seconds of inactivity before giving up.
    pub timeout: Option<u64>,
    /// Log file (default: stderr).
    pub log: Option<PathBuf>,
    /// `--log-format`.
    pub log_format: crate::log::Format,
    /// Allowed directories (git-daemon's whitelist); empty: all.
    pub directories: Vec<String>,
}

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Serve one upload-pack connection on stdin/stdout.
    UploadPack(UploadPackArgs),
    /// The OpenSSH forced command.
    Shell(ShellArgs),
    /// The CGI program.
    HttpBackend(HttpBackendArgs),
    /// The inetd / socket-activated git:// server.
    Inetd(InetdArgs),
}

/// `packserve inetd`'s `--timeout` when none is given: the one front-end facing the network
/// with nothing in front of it (sshd and web servers have their own timeouts).
pub const INETD_DEFAULT_TIMEOUT: u64 = 600;

/// The names that select a front-end when they are the first argument.
pub const FRONTENDS: [&str; 3] = ["shell", "http-backend", "inetd"];

fn log_arg() -> Arg {
    Arg::new("log")
        .long("log")
        .value_name("file")
        .value_parser(clap::value_parser!(PathBuf))
        .help("Append the one-line-per-request operator log to <file>")
}

fn log_format_arg() -> Arg {
    Arg::new("log-format")
        .long("log-format")
        .value_name("format")
        .value_parser(|s: &str| crate::log::Format::parse(s))
        .help("The log line's form: text (key=value pairs, the default) or json (one object a line)")
}

/// `--log-format`'s value.
fn log_format(m: &clap::ArgMatches) -> crate::log::Format {
    m.get_one::<crate::log::Format>("log-format").copied().unwrap_or_default()
}

fn timeout_arg() -> Arg {
    Arg::new("timeout")
        .long("timeout")
        .value_name("n")
        .value_parser(clap::value_parser!(u64))
        .help("Give up after <n> seconds without traffic")
}

/// `packserve shell`.
pub fn shell_command() -> Command {
    Command::new("shell")
        .bin_name("packserve shell")
        .about("OpenSSH forced command: serves the git-upload-pack named in SSH_ORIGINAL_COMMAND from below --root, hands a push to --receive-pack only where --allow-push allows it, refuses everything else")
        .override_usage("command=\"packserve shell --root <dir> [--allow <glob>]... [--receive-pack <program> --allow-push <glob>...] [--user <name>] [--log <file>]\",no-pty,... <key>")
        .arg(
            Arg::new("root")
                .long("root")
                .value_name("dir")
                .required(true)
                .value_parser(clap::value_parser!(PathBuf))
                .help("Serve repositories from below <dir> only (client paths are taken relative to it; ~/ is <dir>, ~user/ is <dir>/user)"),
        )
        .arg(
            Arg::new("allow")
                .long("allow")
                .value_name("glob")
                .action(ArgAction::Append)
                .help("Only repositories whose path below --root matches <glob>, by git's wildmatch rules (*, ? and [..] never cross a /; ** between slashes or at an end crosses them); repeatable"),
        )
        .arg(
            Arg::new("receive-pack")
                .long("receive-pack")
                .value_name("program")
                .value_parser(absolute_path)
                .help("Hand pushes (git-receive-pack) to <program>, git's receive-pack given by its absolute path, for the repositories an --allow-push glob matches; off without it"),
        )
        .arg(
            Arg::new("allow-push")
                .long("allow-push")
                .value_name("glob")
                .action(ArgAction::Append)
                .requires("receive-pack")
                .help("This key may push to repositories whose path below --root matches <glob> (as --allow; they must be readable too); repeatable; needs --receive-pack"),
        )
        .arg(Arg::new("user").long("user").value_name("name").help("Name this key in the log (default: the account's name)"))
        .arg(log_arg().help("Append the operator log to <file> (without it nothing is logged: stderr goes to the client)"))
        .arg(log_format_arg())
        .arg(timeout_arg())
}

/// An absolute path (a program packserve runs is never looked up in PATH).
fn absolute_path(s: &str) -> Result<PathBuf, String> {
    let p = PathBuf::from(s);
    if p.is_absolute() {
        Ok(p)
    } else {
        Err(format!("'{s}' is not an absolute path"))
    }
}

/// `packserve http-backend`.
pub fn http_backend_command() -> Command {
    Command::new("http-backend")
        .bin_name("packserve http-backend")
        .about("CGI program serving the fetch half of smart HTTP, as git http-backend does (GIT_PROJECT_ROOT, PATH_INFO, ...)")
        .override_usage("ScriptAlias /git/ /usr/local/libexec/packserve-http-backend/   (a wrapper running: packserve http-backend [--log <file>])")
        .arg(log_arg().help("Append the operator log to <file> (default: stderr, the web server's error log)"))
        .arg(log_format_arg())
        .arg(timeout_arg())
}

/// `packserve inetd`.
pub fn inetd_command() -> Command {
    Command::new("inetd")
        .bin_name("packserve inetd")
        .about("One git:// connection on stdin/stdout, as git daemon --inetd serves it (inetd, xinetd, systemd Accept=yes)")
        .override_usage("packserve inetd [--base-path <dir>] [--export-all] [--informative-errors] [--strict-paths]\n                       [--timeout <n>] [--log <file>] [<directory>...]")
        .arg(
            Arg::new("base-path")
                .long("base-path")
                .value_name("dir")
                .value_parser(clap::value_parser!(PathBuf))
                .help("Remap every requested path below <dir> (git://host/a.git serves <dir>/a.git)"),
        )
        .arg(
            Arg::new("export-all")
                .long("export-all")
                .action(ArgAction::SetTrue)
                .help("Serve repositories that have no git-daemon-export-ok file"),
        )
        .arg(
            Arg::new("informative-errors")
                .long("informative-errors")
                .action(ArgAction::SetTrue)
                .help("Tell the client why it was refused (default: 'access denied or repository not exported')"),
        )
        .arg(
            Arg::new("strict-paths")
                .long("strict-paths")
                .action(ArgAction::SetTrue)
                .help("Match the path exactly: no <dir>.git or <dir>/.git guessing, no subdirectories of allowed directories"),
        )
        .arg(timeout_arg().help("Give up after <n> seconds without traffic; the request line must arrive within <n> seconds too (default 600; 0: never)"))
        .arg(log_arg().help("Append the operator log to <file> (default: stderr; under xinetd stderr is the socket, so give a file)"))
        .arg(log_format_arg())
        .arg(
            Arg::new("directory")
                .value_name("directory")
                .action(ArgAction::Append)
                .help("Serve only these directories and (without --strict-paths) their subdirectories"),
        )
}

/// The `--max-*` flags of the plain form (none of git-upload-pack's own flags start so).
fn limit_args() -> [Arg; 5] {
    let arg = |name: &'static str, help: &'static str| {
        Arg::new(name).long(name).value_name("n").value_parser(clap::value_parser!(u64)).help(help)
    };
    [
        arg("max-request-bytes", "Refuse a request (or v0 round of haves) larger than <n> bytes (packserve.maxRequestBytes, default 64 MiB)"),
        arg("max-wants", "Refuse more than <n> want lines in a request (packserve.maxWants, default 1000000)"),
        arg("max-haves", "Refuse more than <n> have lines per request, or per connection in stateful v0 (packserve.maxHaves, default 4000000)"),
        arg("max-depth", "Refuse deepen <n> above this (packserve.maxDepth, default 2147483647, git's maximum)"),
        arg("max-filter-depth", "Refuse tree:<depth> filters deeper than <n> (packserve.maxFilterDepth, default none)"),
    ]
}

fn limit_overrides(m: &clap::ArgMatches) -> crate::config::LimitOverrides {
    let get = |name: &str| m.get_one::<u64>(name).copied();
    crate::config::LimitOverrides {
        max_request_bytes: get("max-request-bytes"),
        max_wants: get("max-wants"),
        max_haves: get("max-haves"),
        max_depth: get("max-depth"),
        max_filter_depth: get("max-filter-depth"),
    }
}

/// The clap command (also used to render the manual).
pub fn command() -> Command {
    Command::new("packserve")
        .version(env!("CARGO_PKG_VERSION"))
        .about("A drop-in replacement for git-upload-pack: serves git clone and git fetch from mmapped packfiles")
        .override_usage(
            "packserve [--[no-]strict] [--timeout=<n>] [--stateless-rpc]\n                 [--advertise-refs | --http-backend-info-refs] [--max-<limit>=<n>]... <directory>",
        )
        .arg(
            Arg::new("strict")
                .long("strict")
                .action(ArgAction::SetTrue)
                .overrides_with("no-strict")
                .help("Do not try <directory>/.git/ if <directory> is not a git directory"),
        )
        .arg(Arg::new("no-strict").long("no-strict").action(ArgAction::SetTrue).overrides_with("strict").help("Undo --strict"))
        .arg(
            Arg::new("timeout")
                .long("timeout")
                .value_name("n")
                .value_parser(clap::value_parser!(u64))
                .help("Interrupt the transfer after <n> seconds of inactivity"),
        )
        .arg(
            Arg::new("stateless-rpc")
                .long("stateless-rpc")
                .action(ArgAction::SetTrue)
                .help("Serve a single request and response, as smart HTTP uses it"),
        )
        .arg(
            Arg::new("advertise-refs")
                .long("advertise-refs")
                .visible_alias("http-backend-info-refs")
                .action(ArgAction::SetTrue)
                .help("Print the ref (or v2 capability) advertisement and exit"),
        )
        .args(limit_args())
        .arg(Arg::new("directory").required(true).value_name("directory").help("The repository to serve"))
        .after_help(
            "Front-ends for servers that cannot be told which upload-pack to run (see `packserve help <front-end>`):\n  \
             packserve shell --root <dir> [--allow <glob>]...   OpenSSH authorized_keys command= / ForceCommand\n  \
             packserve http-backend                          CGI program for smart HTTP (like git http-backend)\n  \
             packserve inetd --base-path <dir> [<dir>...]     one git:// connection (inetd, xinetd, systemd socket)\n\
             `packserve help` prints this text, `packserve help <front-end>` a front-end's.",
        )
}

/// The front-ends' commands, in the manual's order.
pub fn front_end_commands() -> [Command; 3] {
    [shell_command(), http_backend_command(), inetd_command()]
}

/// `packserve help [<front-end>]`: clap's help error for the plain form or the front-end, so
/// that it prints and exits as `--help` does; an error naming the front-ends otherwise.
/// Not taken when packserve runs as `git-upload-pack`: there every argument is git's, and a
/// repository may be called `help`.
fn help(args: &[std::ffi::OsString]) -> Option<clap::Error> {
    let argv0 = args.first().map(std::path::Path::new).and_then(|p| p.file_name());
    if args.get(1).and_then(|a| a.to_str()) != Some("help")
        || argv0.is_some_and(|n| n == "git-upload-pack")
        || args.len() > 3
    {
        return None;
    }
    let cmd = match args.get(2).map(|a| a.to_string_lossy()) {
        None => command(),
        Some(name) => match front_end_commands().into_iter().find(|c| c.get_name() == name) {
            Some(c) => c,
            None => {
                return Some(command().error(
                    clap::error::ErrorKind::InvalidSubcommand,
                    format!("no front-end '{name}': packserve help [{}]", FRONTENDS.join(" | ")),
                ))
            }
        },
    };
    let name = cmd.get_name().to_owned();
    cmd.try_get_matches_from([name.as_str(), "--help"]).err()
}

/// The argument lists git and its front-ends give upload-pack (`[--strict] [--timeout=<n>]
/// [--stateless-rpc] [--advertise-refs] <directory>`, each flag at most once), read without
/// building the clap command: that costs more than serving a small `ls-refs`. Anything else
/// (`--help`, limits, repeated flags, `--`, odd values) is left to clap, which gives the same
/// result for these lists (see the tests).
fn plain_upload_pack(args: &[std::ffi::OsString]) -> Option<UploadPackArgs> {
    let mut a = UploadPackArgs {
        strict: false,
        timeout: None,
        stateless_rpc: false,
        advertise_refs: false,
        limits: Default::default(),
        directory: String::new(),
    };
    let mut seen = [false; 6];
    let mut once = |i: usize| !std::mem::replace(&mut seen[i], true);
    for arg in args.get(1..)? {
        let arg = arg.to_str()?;
        let fresh = match arg {
            "--strict" | "--no-strict" => {
                a.strict = arg == "--strict";
                once(if a.strict { 0 } else { 5 })
            }
            "--stateless-rpc" => {
                a.stateless_rpc = true;
                once(1)
            }
            "--advertise-refs" | "--http-backend-info-refs" => {
                a.advertise_refs = true;
                once(2)
            }
            _ => match arg.strip_prefix("--timeout=") {
                Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                    a.timeout = Some(n.parse::<u64>().ok()?).filter(|&t| t > 0);
                    once(3)
                }
                Some(_) => return None,
                None if arg.is_empty() || arg.starts_with('-') => return None,
                None => {
                    a.directory = arg.to_owned();
                    once(4)
                }
            },
        };
        if !fresh {
            return None;
        }
    }
    (!a.directory.is_empty()).then_some(a)
}

/// Parses `argv` (including argv[0]).
/// A first argument that names a front-end selects it; anything else is git-upload-pack's
/// argument list, parsed exactly as before.
pub fn parse(args: Vec<std::ffi::OsString>) -> Result<Mode, clap::Error> {
    if let Some(e) = help(&args) {
        return Err(e);
    }
    match args.get(1).and_then(|a| a.to_str()) {
        Some("shell") => {
            let m = shell_command().try_get_matches_from(&args[1..])?;
            return Ok(Mode::Shell(ShellArgs {
                root: m.get_one::<PathBuf>("root").cloned().unwrap_or_default(),
                allow: m.get_many::<String>("allow").map(|v| v.cloned().collect()).unwrap_or_default(),
                user: m.get_one::<String>("user").cloned(),
                log: m.get_one::<PathBuf>("log").cloned(),
                log_format: log_format(&m),
                timeout: m.get_one::<u64>("timeout").copied().filter(|&t| t > 0),
                receive_pack: m.get_one::<PathBuf>("receive-pack").cloned(),
                allow_push: m
                    .get_many::<String>("allow-push")
                    .map(|v| v.cloned().collect())
                    .unwrap_or_default(),
            }));
        }
        Some("http-backend") => {
            let m = http_backend_command().try_get_matches_from(&args[1..])?;
            return Ok(Mode::HttpBackend(HttpBackendArgs {
                log: m.get_one::<PathBuf>("log").cloned(),
                log_format: log_format(&m),
                timeout: m.get_one::<u64>("timeout").copied().filter(|&t| t > 0),
            }));
        }
        Some("inetd") => {
            let m = inetd_command().try_get_matches_from(&args[1..])?;
            return Ok(Mode::Inetd(InetdArgs {
                base_path: m.get_one::<PathBuf>("base-path").cloned(),
                export_all: m.get_flag("export-all"),
                informative_errors: m.get_flag("informative-errors"),
                strict_paths: m.get_flag("strict-paths"),
                timeout: match m.get_one::<u64>("timeout").copied() {
                    None => Some(INETD_DEFAULT_TIMEOUT),
                    Some(t) => Some(t).filter(|&t| t > 0),
                },
                log: m.get_one::<PathBuf>("log").cloned(),
                log_format: log_format(&m),
                directories: m
                    .get_many::<String>("directory")
                    .map(|v| v.cloned().collect())
                    .unwrap_or_default(),
            }));
        }
        _ => {}
    }
    if let Some(plain) = plain_upload_pack(&args) {
        return Ok(Mode::UploadPack(plain));
    }
    let m = command().try_get_matches_from(args)?;
    Ok(Mode::UploadPack(upload_pack_args(&m)))
}

/// git-upload-pack's arguments as clap read them.
fn upload_pack_args(m: &clap::ArgMatches) -> UploadPackArgs {
    UploadPackArgs {
        strict: m.get_flag("strict"),
        timeout: m.get_one::<u64>("timeout").copied().filter(|&t| t > 0),
        stateless_rpc: m.get_flag("stateless-rpc"),
        advertise_refs: m.get_flag("advertise-refs"),
        limits: limit_overrides(m),
        directory: m.get_one::<String>("directory").cloned().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn p(args: &[&str]) -> Result<Mode, clap::Error> {
        parse(std::iter::once("packserve").chain(args.iter().copied()).map(Into::into).collect())
    }

    #[test]
    fn git_upload_pack_arguments() {
        let Ok(Mode::UploadPack(a)) =
            p(&["--strict", "--timeout=5", "--stateless-rpc", "--advertise-refs", "/r"])
        else {
            panic!("not the plain form")
        };
        assert_eq!(
            a,
            UploadPackArgs {
                strict: true,
                timeout: Some(5),
                stateless_rpc: true,
                advertise_refs: true,
                limits: Default::default(),
                directory: "/r".into()
            }
        );
        let Ok(Mode::UploadPack(a)) = p(&["--max-wants=3", "--max-depth", "9", "r"]) else {
            panic!("not the plain form")
        };
        assert_eq!(a.limits.max_wants, Some(3));
        assert_eq!(a.limits.max_depth, Some(9));
        assert_eq!(a.limits.max_haves, None);
        let Ok(Mode::UploadPack(a)) = p(&["--strict", "--no-strict", "--http-backend-info-refs", "r"]) else {
            panic!("not the plain form")
        };
        assert!(!a.strict && a.advertise_refs);
    }

    #[test]
    fn plain_lists_read_as_clap_reads_them() {
        let by_clap = |args: &[&str]| {
            let argv: Vec<std::ffi::OsString> =
                std::iter::once("packserve").chain(args.iter().copied()).map(Into::into).collect();
            match command().try_get_matches_from(argv) {
                Ok(m) => Some(upload_pack_args(&m)),
                Err(_) => None,
            }
        };
        let fast = |args: &[&str]| {
            let argv: Vec<std::ffi::OsString> =
                std::iter::once("packserve").chain(args.iter().copied()).map(Into::into).collect();
            plain_upload_pack(&argv)
        };
        let lists: &[&[&str]] = &[
            &["/srv/r.git"],
            &["--stateless-rpc", "--advertise-refs", "."],
            &["--stateless-rpc", "r"],
            &["--strict", "--timeout=30", "."],
            &["--strict", "--no-strict", "r"],
            &["--no-strict", "--strict", "r"],
            &["--http-backend-info-refs", "r"],
            &["r", "--stateless-rpc"],
            &["--timeout=0", "r"],
            &["--timeout=007", "r"],
            &["--timeout=18446744073709551615", "r"],
        ];
        for args in lists {
            let f = fast(args);
            assert!(f.is_some(), "{args:?} not taken");
            assert_eq!(f, by_clap(args), "{args:?}");
        }
        // Left to clap.
        let others: &[&[&str]] = &[
            &[],
            &["a", "b"],
            &["--stateless-rpc", "--stateless-rpc", "r"],
            &["--timeout", "5", "r"],
            &["--timeout=", "r"],
            &["--timeout=-1", "r"],
            &["--timeout=99999999999999999999", "r"],
            &["--max-wants=3", "r"],
            &["--", "r"],
            &["-h"],
            &["--version"],
            &["--bogus", "r"],
            &[""],
        ];
        for args in others {
            assert_eq!(fast(args), None, "{args:?}");
        }
    }

    #[test]
    fn front_ends_by_first_argument() {
        let Ok(Mode::Shell(a)) = p(&["shell", "--root", "/srv/git", "--allow", "pub/*", "--allow", "x.git"])
        else {
            panic!("not shell")
        };
        assert_eq!(a.root, PathBuf::from("/srv/git"));
        assert_eq!(a.allow, ["pub/*", "x.git"]);
        assert!(p(&["shell"]).is_err(), "--root is required");
        assert!(a.receive_pack.is_none() && a.allow_push.is_empty(), "pushes are off by default");
        let Ok(Mode::Shell(a)) = p(&[
            "shell",
            "--root",
            "/r",
            "--receive-pack",
            "/usr/bin/git-receive-pack",
            "--allow-push",
            "t/*",
        ]) else {
            panic!("not shell")
        };
        assert_eq!(
            (a.receive_pack.as_deref(), &a.allow_push[..]),
            (Some(Path::new("/usr/bin/git-receive-pack")), &["t/*".to_owned()][..])
        );
        assert!(
            p(&["shell", "--root", "/r", "--allow-push", "t/*"]).is_err(),
            "--allow-push needs --receive-pack"
        );
        assert!(
            p(&["shell", "--root", "/r", "--receive-pack", "git-receive-pack"]).is_err(),
            "relative program"
        );
        assert_eq!(
            p(&["http-backend", "--log", "/l"]).unwrap(),
            Mode::HttpBackend(HttpBackendArgs {
                log: Some("/l".into()),
                log_format: crate::log::Format::Text,
                timeout: None
            })
        );
        let Ok(Mode::Inetd(a)) = p(&["inetd", "--base-path", "/srv", "--export-all", "/srv/a", "/srv/b"])
        else {
            panic!("not inetd")
        };
        assert!(a.export_all && !a.informative_errors && a.directories == ["/srv/a", "/srv/b"]);
        assert_eq!(a.timeout, Some(INETD_DEFAULT_TIMEOUT));
        let Ok(Mode::Inetd(a)) = p(&["inetd", "--timeout=0"]) else { panic!("not inetd") };
        assert_eq!(a.timeout, None);
        // Only the first argument selects a front-end: a repository named like one still works.
        let Ok(Mode::UploadPack(a)) = p(&["--strict", "shell"]) else { panic!("not the plain form") };
        assert_eq!(a.directory, "shell");
    }

    #[test]
    fn help_and_help_of_a_front_end() {
        use clap::error::ErrorKind;
        let e = p(&["help"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::DisplayHelp);
        assert!(e.to_string().contains("--stateless-rpc"), "{e}");
        let e = p(&["help", "inetd"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::DisplayHelp);
        assert!(e.to_string().contains("--base-path"), "{e}");
        let e = p(&["help", "bogus"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidSubcommand);
        // Installed as git-upload-pack, every argument is git's: `help` is a repository.
        let argv = ["/usr/local/bin/git-upload-pack", "help"].map(std::ffi::OsString::from).to_vec();
        let Ok(Mode::UploadPack(a)) = parse(argv) else { panic!("not the plain form") };
        assert_eq!(a.directory, "help");
    }

    #[test]
    fn unknown_flag_is_an_error() {
        assert!(p(&["--frobnicate", "/r"]).is_err());
        assert!(p(&[]).is_err());
    }
}

#[cfg(test)]
mod man_tests {
    /// The manual is generated from [`super::command`] plus `man/sections.roff`; this keeps the
    /// committed `man/packserve.1` current. `UPDATE_MAN=1 cargo test man_page` rewrites it.
    #[test]
    fn man_page_is_current() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut out = Vec::new();
        // clap_mangen's sections, but no SUBCOMMANDS: it would name a page per front-end
        // (packserve-shell(1)...), which do not exist; the front-ends have sections here.
        let man = clap_mangen::Man::new(super::command());
        man.render_title(&mut out).unwrap();
        man.render_name_section(&mut out).unwrap();
        man.render_synopsis_section(&mut out).unwrap();
        man.render_description_section(&mut out).unwrap();
        man.render_options_section(&mut out).unwrap();
        out.extend_from_slice(front_ends_list().as_bytes());
        man.render_extra_section(&mut out).unwrap();
        man.render_version_section(&mut out).unwrap();
        for sub in super::front_end_commands() {
            out.extend_from_slice(front_end_section(&sub).as_bytes());
        }
        out.extend_from_slice(&std::fs::read(root.join("man/sections.roff")).unwrap());
        let path = root.join("man/packserve.1");
        if std::env::var_os("UPDATE_MAN").is_some() {
            std::fs::write(&path, &out).unwrap();
        }
        let committed = std::fs::read(&path).unwrap_or_default();
        assert!(committed == out, "man/packserve.1 is stale: run `UPDATE_MAN=1 cargo test man_page`");
    }

    /// The list of front-ends, each pointing to its section below, and `packserve help`.
    fn front_ends_list() -> String {
        let mut s = String::from(".SH FRONT\\-ENDS\n");
        for cmd in super::front_end_commands() {
            let name = cmd.get_name().to_owned();
            let about = cmd.get_about().map(|a| a.to_string()).unwrap_or_default();
            s.push_str(&format!(
                ".TP\n\\fBpackserve {}\\fR\n{} (section PACKSERVE {} below)\n",
                roff(&name),
                roff(&about),
                roff(&name.to_uppercase())
            ));
        }
        s.push_str(".TP\n\\fBpackserve help\\fR [\\fI<front\\-end>\\fR]\nPrints the help of the plain form, or of a front\\-end\n");
        s
    }

    fn roff(s: &str) -> String {
        s.replace('\\', "\\\\").replace('-', "\\-")
    }

    /// A section per front-end: its usage, what it is, and its options.
    fn front_end_section(cmd: &clap::Command) -> String {
        let mut s = format!(".SH \"PACKSERVE {}\"\n", cmd.get_name().to_uppercase().replace('-', "\\-"));
        if let Some(about) = cmd.get_about() {
            s.push_str(&format!("{}\n.PP\n", roff(&about.to_string())));
        }
        s.push_str(&format!(
            ".nf\n{}\n.fi\n",
            roff(&cmd.clone().render_usage().to_string().replace("Usage: ", ""))
        ));
        for arg in cmd.get_arguments() {
            if arg.get_id() == "help" || arg.get_id() == "version" {
                continue;
            }
            let value = arg.get_value_names().and_then(|v| v.first()).map(|v| format!(" \\fI<{v}>\\fR"));
            let name = match arg.get_long() {
                Some(l) => format!("\\fB\\-\\-{}\\fR{}", roff(l), value.unwrap_or_default()),
                None => format!("\\fI<{}>...\\fR", roff(arg.get_id().as_str())),
            };
            s.push_str(&format!(
                ".TP\n{name}\n{}\n",
                roff(&arg.get_help().map(|h| h.to_string()).unwrap_or_default())
            ));
        }
        s
    }
}
