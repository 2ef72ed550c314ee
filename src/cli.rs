//! Command-line definitions: the single source for `--help` and the manual.
//!
//! The plain form takes exactly git-upload-pack's arguments.

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
    /// The repository.
    pub directory: String,
}

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Serve one upload-pack connection on stdin/stdout.
    UploadPack(UploadPackArgs),
}

/// The clap command (also used to render the manual).
pub fn command() -> Command {
    Command::new("packserve")
        .version(env!("CARGO_PKG_VERSION"))
        .about("A drop-in replacement for git-upload-pack: serves git clone and git fetch from mmapped packfiles")
        .override_usage(
            "packserve [--[no-]strict] [--timeout=<n>] [--stateless-rpc]\n                 [--advertise-refs | --http-backend-info-refs] <directory>",
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
        .arg(Arg::new("directory").required(true).value_name("directory").help("The repository to serve"))
}

/// Parses `argv` (including argv[0]).
pub fn parse(args: Vec<std::ffi::OsString>) -> Result<Mode, clap::Error> {
    let m = command().try_get_matches_from(args)?;
    Ok(Mode::UploadPack(UploadPackArgs {
        strict: m.get_flag("strict"),
        timeout: m.get_one::<u64>("timeout").copied().filter(|&t| t > 0),
        stateless_rpc: m.get_flag("stateless-rpc"),
        advertise_refs: m.get_flag("advertise-refs"),
        directory: m.get_one::<String>("directory").cloned().unwrap_or_default(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Mode, clap::Error> {
        parse(std::iter::once("packserve").chain(args.iter().copied()).map(Into::into).collect())
    }

    #[test]
    fn git_upload_pack_arguments() {
        let Mode::UploadPack(a) =
            p(&["--strict", "--timeout=5", "--stateless-rpc", "--advertise-refs", "/r"]).unwrap();
        assert_eq!(
            a,
            UploadPackArgs {
                strict: true,
                timeout: Some(5),
                stateless_rpc: true,
                advertise_refs: true,
                directory: "/r".into()
            }
        );
        let Mode::UploadPack(a) = p(&["--strict", "--no-strict", "--http-backend-info-refs", "r"]).unwrap();
        assert!(!a.strict && a.advertise_refs);
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
        clap_mangen::Man::new(super::command()).render(&mut out).unwrap();
        out.extend_from_slice(&std::fs::read(root.join("man/sections.roff")).unwrap());
        let path = root.join("man/packserve.1");
        if std::env::var_os("UPDATE_MAN").is_some() {
            std::fs::write(&path, &out).unwrap();
        }
        let committed = std::fs::read(&path).unwrap_or_default();
        assert!(committed == out, "man/packserve.1 is stale: run `UPDATE_MAN=1 cargo test man_page`");
    }
}
