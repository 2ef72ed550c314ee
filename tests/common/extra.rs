//! Helpers for the tests of the wider upload-pack contract (shallow, partial clone, hidden
//! refs, namespaces, want policies, v2 extras, tracing, repositories found in the wild):
//! wrapper scripts that give a server its own environment, clones and fetches through any
//! server program, and comparisons that include the `shallow` file and missing objects.

use super::*;

/// Runs the body once per client/protocol combination worth checking without blowing up the
/// run time: git 2.47 with v0 and v2, git 2.39 with v2. `$f` is a `fn(Client, u8)`.
#[macro_export]
macro_rules! client_variants {
    ($($name:ident => $f:expr;)*) => {$(
        mod $name {
            use super::*;
            #[test] fn git247_v0() { ($f)(Client::New, 0) }
            #[test] fn git247_v2() { ($f)(Client::New, 2) }
            #[test] fn git239_v2() { ($f)(Client::Old, 2) }
        }
    )*};
}

/// One `#[test]` per listed client/protocol pair, each calling `$f(client, protocol)`:
/// `client_tests!(go; git247_v0(New, 0), git239_v2(Old, 2));`
#[macro_export]
macro_rules! client_tests {
    ($f:expr; $($test:ident($client:ident, $proto:expr)),* $(,)?) => {$(
        #[test]
        fn $test() {
            ($f)(Client::$client, $proto)
        }
    )*};
}

/// Both servers, git's first (so that a broken scenario shows up as such).
pub const BOTH: [Server; 2] = [Server::Reference, Server::UnderTest];

pub fn server_name(server: Server) -> &'static str {
    match server {
        Server::UnderTest => "packserve",
        Server::Reference => "git-upload-pack",
    }
}

/// Single-quotes a string for sh.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

impl Sandbox {
    /// Writes an executable wrapper script that runs `setup` (shell), exports `env` and execs
    /// `server` with the arguments it was given: a server with its own environment, to pass
    /// as `--upload-pack`.
    pub fn wrapper(&self, server: Server, env: &[(&str, &str)], setup: &str) -> PathBuf {
        let path = self.unique(&format!("wrap-{}", server_name(server)));
        let mut s = String::from("#!/bin/sh\n");
        s.push_str(setup);
        s.push('\n');
        for (k, v) in env {
            s.push_str(&format!("{k}={}\nexport {k}\n", sh_quote(v)));
        }
        s.push_str(&format!("exec {} \"$@\"\n", sh_quote(server.program().to_str().unwrap())));
        // Written by a child process, not by this (multi-threaded) one: a write descriptor of
        // ours could be inherited by a concurrent fork in another test thread and make the
        // exec of the script fail with ETXTBSY ("Text file busy").
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "cat >\"$1\" && chmod 755 \"$1\"", "sh"]).arg(&path);
        run(cmd, Some(s.as_bytes())).assert_success();
        path
    }

    /// A git command (`client`) in `dir` with `-c protocol.version=<protocol>`.
    pub fn git_cmd(&self, client: Client, protocol: u8, dir: &Path) -> Command {
        let mut cmd = self.command(client.program());
        cmd.current_dir(dir).arg("-c").arg(format!("protocol.version={protocol}"));
        cmd
    }

    /// Runs a transfer command with `GIT_TRACE_PACKFILE` to count the objects received.
    pub fn run_transfer(&self, cmd: Command) -> Transfer {
        self.transfer(cmd)
    }

    /// `git clone --no-progress --upload-pack=<upload_pack> <extra> file://<src> <dest>`,
    /// unjudged.
    pub fn try_clone_via(
        &self,
        client: Client,
        protocol: u8,
        upload_pack: &Path,
        src: &Path,
        dest: &Path,
        extra: &[&str],
    ) -> Transfer {
        let mut cmd = self.git_cmd(client, protocol, self.path());
        cmd.arg("clone")
            .arg("--no-progress")
            .arg(format!("--upload-pack={}", upload_pack.display()))
            .args(extra)
            .arg(file_url(src))
            .arg(dest);
        self.transfer(cmd)
    }

    /// `git fetch --no-progress --upload-pack=<upload_pack> <args>` in `repo` (args name the
    /// remote and refspecs), unjudged.
    pub fn try_fetch_via(
        &self,
        client: Client,
        protocol: u8,
        upload_pack: &Path,
        repo: &Path,
        args: &[&str],
    ) -> Transfer {
        let mut cmd = self.git_cmd(client, protocol, repo);
        cmd.arg("fetch")
            .arg("--no-progress")
            .arg(format!("--upload-pack={}", upload_pack.display()))
            .args(args);
        self.transfer(cmd)
    }

    /// `git ls-remote --upload-pack=<upload_pack> <extra> file://<src>`, unjudged.
    pub fn try_ls_remote_via(
        &self,
        client: Client,
        protocol: u8,
        upload_pack: &Path,
        src: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Output {
        let mut cmd = self.git_cmd(client, protocol, self.path());
        cmd.arg("ls-remote")
            .arg(format!("--upload-pack={}", upload_pack.display()))
            .args(extra)
            .arg(file_url(src));
        for (k, v) in env {
            cmd.env(k, v);
        }
        run(cmd, None)
    }

    /// Sets `key` to `value` in the repository's own config.
    #[track_caller]
    pub fn config(&self, repo: &Path, key: &str, value: &str) {
        self.git(repo, &["config", key, value]);
    }

    /// Adds a value to a multi-valued key in the repository's config.
    #[track_caller]
    pub fn config_add(&self, repo: &Path, key: &str, value: &str) {
        self.git(repo, &["config", "--add", key, value]);
    }

    /// The repository's `shallow` file as sorted lines (empty when there is none).
    pub fn shallow(&self, repo: &Path) -> Vec<String> {
        let path = self.git(repo, &["rev-parse", "--path-format=absolute", "--git-path", "shallow"]);
        let mut lines: Vec<String> =
            std::fs::read_to_string(path.trim()).unwrap_or_default().lines().map(str::to_owned).collect();
        lines.sort();
        lines
    }

    /// `git rev-list --objects --all --missing=print`: the reachable objects with their
    /// paths, and the missing ones (partial clones) as `?<oid>`.
    pub fn reachable_listing(&self, repo: &Path) -> BTreeSet<String> {
        self.git(repo, &["rev-list", "--objects", "--all", "--missing=print"])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Plain `git fsck` (shallow and partial repositories pass it; `--strict` adds nothing
    /// about connectivity).
    #[track_caller]
    pub fn fsck_plain(&self, repo: &Path) {
        let out = self.git_with(Client::New, repo, &["fsck", "--no-progress"]);
        if !out.status.success() {
            panic!("git fsck failed in {}:\n{out}", repo.display());
        }
    }

    /// Holds the repository made through the server under test to the one made through git:
    /// both pass fsck; same refs, same present objects, same `shallow` file, same
    /// reachable/missing listing.
    #[track_caller]
    pub fn assert_same_repo(&self, ours: &Path, theirs: &Path, context: &str) {
        self.fsck_plain(theirs);
        self.fsck_plain(ours);
        let (a, b) = (self.refs(ours), self.refs(theirs));
        assert!(a == b, "{context}: refs differ:\n{}", map_diff("packserve", &a, "git", &b));
        let (a, b) = (self.shallow(ours), self.shallow(theirs));
        assert!(
            a == b,
            "{context}: shallow files differ\n--- packserve ---\n{}\n--- git ---\n{}",
            a.join("\n"),
            b.join("\n")
        );
        let (a, b) = (self.objects(ours), self.objects(theirs));
        assert!(a == b, "{context}: present objects differ: {}", set_diff("packserve", &a, "git", &b));
        let (a, b) = (self.reachable_listing(ours), self.reachable_listing(theirs));
        assert!(
            a == b,
            "{context}: rev-list --objects --missing=print differs: {}",
            set_diff("packserve", &a, "git", &b)
        );
    }

    /// A fresh repository with `origin` pointing at `src` and nothing fetched.
    pub fn empty_clone_of(&self, src: &Path, name: &str) -> PathBuf {
        let dir = self.join(name);
        self.git(self.path(), &["init", "-q", dir.to_str().unwrap()]);
        self.git(&dir, &["remote", "add", "origin", &file_url(src)]);
        dir
    }
}

/// Asserts that a transfer failed, with `needle` in its stderr.
#[track_caller]
pub fn assert_failed_with(t: &Output, needle: &str, who: &str) {
    assert!(!t.status.success(), "{who}: expected a failure, but the command succeeded:\n{t}");
    assert!(t.stderr_str().contains(needle), "{who}: stderr does not contain {needle:?}:\n{t}");
}

/// The lines of a v2 capability advertisement (between `version 2` and the flush).
pub fn v2_caps(out: &[u8]) -> Vec<String> {
    let pkts = pktline::parse_all(out);
    assert_eq!(
        pkts.first().and_then(pktline::Pkt::text).as_deref(),
        Some("version 2"),
        "{}",
        pktline::render(&pkts)
    );
    pkts[1..].iter().filter_map(pktline::Pkt::text).collect()
}

/// A running server with its stdin held open (for `--timeout`).
pub struct Held {
    pub child: std::process::Child,
    pub stdin: Option<std::process::ChildStdin>,
    out: Option<std::thread::JoinHandle<Vec<u8>>>,
    err: Option<std::thread::JoinHandle<Vec<u8>>>,
}

impl Held {
    pub fn spawn(mut cmd: Command) -> Held {
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
        let mut child = cmd.spawn().expect("spawn server");
        let stdin = child.stdin.take();
        let mut o = child.stdout.take().unwrap();
        let mut e = child.stderr.take().unwrap();
        let out = std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = o.read_to_end(&mut v);
            v
        });
        let err = std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = e.read_to_end(&mut v);
            v
        });
        Held { child, stdin, out: Some(out), err: Some(err) }
    }

    /// Waits up to `limit` for the process to exit; kills it (and fails) otherwise.
    /// Returns the exit status, how long it took and the outputs.
    pub fn wait_for(mut self, limit: Duration) -> (ExitStatus, Duration, Vec<u8>, Vec<u8>) {
        let start = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let elapsed = start.elapsed();
                drop(self.stdin.take());
                let out = self.out.take().unwrap().join().unwrap();
                let err = self.err.take().unwrap().join().unwrap();
                return (status, elapsed, out, err);
            }
            if start.elapsed() > limit {
                let pid = self.child.id();
                let _ = Command::new("kill").args(["-KILL", "--", &format!("-{pid}")]).status();
                let _ = self.child.wait();
                panic!("server still running after {limit:?} (killed)");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let pid = self.child.id();
            let _ = Command::new("kill").args(["-KILL", "--", &format!("-{pid}")]).status();
            let _ = self.child.wait();
        }
    }
}
