//! Real servers for the transport tests: OpenSSH's sshd with `packserve shell` as the forced
//! command, Apache 2.4 with mod_cgi running `packserve http-backend`, and socat in front of
//! `packserve inetd`. Each test starts its own on 127.0.0.1 and a free high port, inside its
//! sandbox, and stops it by its PID (the process group it leads) when dropped.
//!
//! The software must be installed (`scripts/setup` does it, and `scripts/test` runs that
//! first); a missing program fails the test with a message saying what to install — never a
//! silent pass.
//!
//! Also the client scenarios shared by tests/ssh.rs, tests/http.rs and tests/daemon.rs, and
//! the drivers for the other clients: pygit2 (libgit2) and dulwich through `client.py`, and
//! JGit (`jgit-cli`).

use super::*;
use std::net::{TcpListener, TcpStream};
use std::process::Child;
use std::time::Instant;

/// The program, or a test failure naming the package that provides it.
pub fn require(program: &str, package: &str) -> PathBuf {
    let p = Path::new(program);
    if p.is_absolute() {
        assert!(
            p.exists(),
            "{program} is missing: install {package} (scripts/setup does; scripts/test runs it)"
        );
        return p.to_path_buf();
    }
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        if dir.join(program).is_file() {
            return dir.join(program);
        }
    }
    panic!("{program} is not on PATH: install {package} (scripts/setup does; scripts/test runs it)");
}

/// Fails the test unless `python3 -c "import <module>"` works.
pub fn require_python_module(module: &str) {
    let out = Command::new("python3").args(["-c", &format!("import {module}")]).output();
    match out {
        Ok(o) if o.status.success() => {}
        _ => panic!(
            "python3 module {module} is missing: `python3 -m pip install {module}` (scripts/setup does)"
        ),
    }
}

/// A recipe from `contrib/` as an admin installs it, with the paths it names replaced by the
/// test's (`from` → `to`, in order). Every `from` must be in the file, so that a recipe that
/// changes shape fails here instead of silently going untested.
pub fn recipe(file: &str, replace: &[(&str, String)]) -> String {
    let path = manifest_dir().join("contrib").join(file);
    let mut text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for (from, to) in replace {
        assert!(
            text.contains(from),
            "contrib/{file} no longer contains {from:?}: update the test's template"
        );
        text = text.replace(from, to);
    }
    text
}

/// The replacements every recipe needs: the binary, the served root, git's programs.
fn install_paths(root: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("/usr/local/bin/packserve", server_under_test().display().to_string()),
        ("/srv/git", root.display().to_string()),
    ]
}

/// A free TCP port on 127.0.0.1 (from the kernel's ephemeral range, so a high one).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

/// A server process started by a test: its own process group, stopped by PID on drop.
pub struct Daemon {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Daemon {
    /// Starts `cmd` (stdout and stderr to `log`), waits until 127.0.0.1:`port` accepts.
    pub fn start(name: &str, mut cmd: Command, port: u16, log: PathBuf) -> Daemon {
        let out = std::fs::File::create(&log).unwrap();
        let cmdline = format!("{cmd:?}");
        cmd.stdin(Stdio::null()).stdout(out.try_clone().unwrap()).stderr(out).process_group(0);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {name} ({cmdline}): {e}"));
        let mut d = Daemon { name: name.to_owned(), child, log };
        let start = Instant::now();
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return d;
            }
            if let Ok(Some(status)) = d.child.try_wait() {
                panic!("{name} exited with {status} before listening on {port}:\n{}", d.log_text());
            }
            if start.elapsed() > Duration::from_secs(20) {
                panic!("{name} does not listen on 127.0.0.1:{port} after 20s:\n{}", d.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // The group this process leads: the server and the children it forked.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).stderr(Stdio::null()).status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
        let _ = self.child.wait();
    }
}

/// The operator log at `path` once `done` holds for it (a server writes its line when the
/// connection ends, which can be just after the client has exited); fails after 10s.
#[track_caller]
pub fn log_when(path: &Path, done: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if done(&text) {
            return text;
        }
        if start.elapsed() > Duration::from_secs(10) {
            panic!("the log {} never got the expected line:\n{text}", path.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------
// The served tree

/// The directory the servers serve, with:
/// - `main.git`: bare, exported (`git-daemon-export-ok`), a few branches and tags,
///   `uploadpack.allowFilter` and `uploadpack.allowAnySHA1InWant` on (what partial clones
///   need from git's own upload-pack: filters, and in v0 the lazy fetches of single blobs);
/// - `private.git`: bare, not exported;
/// - `team/tool.git`: bare, exported (for `--allow` globs);
/// - `escape.git`: a symlink to a repository outside the root.
pub struct Served {
    pub root: PathBuf,
}

impl Served {
    pub fn new(sb: &Sandbox) -> Served {
        let root = sb.join("srv");
        std::fs::create_dir_all(&root).unwrap();
        sb.sh(
            sb.path(),
            r#"
            make_repo() {
                git init -q --bare "$1"
                git -C "$1" symbolic-ref HEAD refs/heads/main
                ( cd "$1" && many_commits refs/heads/main 12 && many_commits refs/heads/side 3 refs/heads/main~4 )
                tick
                git -C "$1" tag -a -m "release one" v1 refs/heads/main~2
                git -C "$1" tag light refs/heads/main~5
            }
            make_repo srv/main.git
            touch srv/main.git/git-daemon-export-ok
            git -C srv/main.git config uploadpack.allowFilter true
            git -C srv/main.git config uploadpack.allowAnySHA1InWant true
            make_repo srv/private.git
            mkdir -p srv/team
            make_repo srv/team/tool.git
            touch srv/team/tool.git/git-daemon-export-ok
            make_repo outside.git
            touch outside.git/git-daemon-export-ok
            ln -s ../outside.git srv/escape.git
            "#,
        );
        Served { root }
    }

    pub fn repo(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }
}

/// Adds commits to `main`, a new branch and a new tag in the served repository `repo`.
pub fn advance(sb: &Sandbox, repo: &Path) {
    sb.sh(
        repo,
        "tick_after_repo; many_commits refs/heads/main 4; many_commits refs/heads/fresh 2 refs/heads/side; \
         tick; git tag -a -m 'release' \"r-$(git rev-parse --short refs/heads/main)\" refs/heads/main",
    );
}

// ---------------------------------------------------------------------------
// Remotes: how a client reaches the served tree

/// How a client reaches the served tree through one server.
#[derive(Clone, Debug)]
pub struct Remote {
    /// `ssh`, `http` or `git`.
    pub transport: &'static str,
    /// URL of the served root, without a trailing slash.
    pub base: String,
    /// Environment for clients (GIT_SSH_COMMAND and the like).
    pub env: Vec<(String, String)>,
    /// `--upload-pack=` for git clients, if the server needs one named.
    pub upload_pack: Option<String>,
    /// What git prints when a push is refused (a part of it).
    pub push_refusal: &'static str,
}

impl Remote {
    pub fn url(&self, name: &str) -> String {
        format!("{}/{name}", self.base)
    }

    pub fn apply(&self, cmd: &mut Command) {
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
    }

    /// `git <pre...> <sub> [--upload-pack=...] <args...>` as `client` speaking `protocol`.
    pub fn git(
        &self,
        sb: &Sandbox,
        client: Client,
        protocol: u8,
        dir: &Path,
        sub: &str,
        args: &[&str],
    ) -> Output {
        let mut cmd = sb.command(client.program());
        cmd.current_dir(dir).arg("-c").arg(format!("protocol.version={protocol}")).arg(sub);
        if let Some(up) = &self.upload_pack {
            if sub != "push" {
                cmd.arg(format!("--upload-pack={up}"));
            }
        }
        cmd.args(args);
        self.apply(&mut cmd);
        run(cmd, None)
    }
}

// ---------------------------------------------------------------------------
// sshd

/// Client keys the ssh server knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// `command="packserve shell --root <srv>"`.
    Forced,
    /// No forced command: the client names packserve with `--upload-pack`.
    Plain,
    /// Forced, with `--allow 'team/*'`.
    Limited,
    /// Forced; an RSA key in PEM form, for JGit's jsch.
    Rsa,
    /// Forced, with `--receive-pack <git's> --allow-push 'push*.git' --allow-push 'team/*'`.
    Pusher,
    /// Forced, with `--receive-pack <git's>` but no `--allow-push`.
    NoPushGlob,
}

/// git's receive-pack, which `--receive-pack` names in the pushing keys.
pub fn git_receive_pack() -> PathBuf {
    reference_upload_pack().with_file_name("git-receive-pack")
}

pub struct SshServer {
    pub daemon: Daemon,
    pub port: u16,
    pub user: String,
    dir: PathBuf,
    pub root: PathBuf,
    /// The `--log` file of the forced commands.
    pub log: PathBuf,
}

fn keygen(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let key = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(args)
        .args(["-q", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .output()
        .expect("run ssh-keygen");
    assert!(out.status.success(), "ssh-keygen failed: {}", String::from_utf8_lossy(&out.stderr));
    key
}

impl SshServer {
    pub fn start(sb: &Sandbox, served: &Served) -> SshServer {
        let sshd = require("/usr/sbin/sshd", "openssh-server");
        require("ssh", "openssh-client");
        require("ssh-keygen", "openssh-client");
        // Debian's sshd insists on its privilege-separation directory.
        std::fs::create_dir_all("/run/sshd").expect("create /run/sshd (are the tests running as root?)");
        let dir = sb.join("ssh");
        std::fs::create_dir_all(&dir).unwrap();
        let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_owned();
        let port = free_port();
        let log = dir.join("packserve.log");
        let host_ed = keygen(&dir, "host_ed25519", &["-t", "ed25519"]);
        let host_ec = keygen(&dir, "host_ecdsa", &["-t", "ecdsa", "-b", "256"]);
        let mut authorized = String::new();
        // The first forced command of contrib/sshd/authorized_keys, with the key's name and
        // the test's flags in place of `--user alice`.
        let template = {
            let mut r = install_paths(&served.root);
            r.push(("/var/log/packserve/ssh.log", log.display().to_string()));
            let keys = recipe("sshd/authorized_keys", &r);
            let line = keys.lines().find(|l| l.starts_with("command=")).expect("a command= line").to_owned();
            let opts = line.split(" ssh-ed25519 ").next().unwrap().to_owned();
            assert!(opts.contains(" --user alice\""), "{opts}");
            opts
        };
        let forced = |extra: &str| template.replace(" --user alice\"", &format!("{extra}\""));
        for (name, opts, args) in [
            ("forced", forced(" --user forced-key"), &["-t", "ed25519"][..]),
            ("plain", String::new(), &["-t", "ed25519"][..]),
            ("limited", forced(" --user limited-key --allow team/*"), &["-t", "ed25519"][..]),
            ("rsa", forced(" --user rsa-key"), &["-t", "rsa", "-b", "2048", "-m", "PEM"][..]),
            (
                "pusher",
                forced(&format!(
                    " --user pusher --receive-pack {} --allow-push 'push*.git' --allow-push 'team/*'",
                    git_receive_pack().display()
                )),
                &["-t", "ed25519"][..],
            ),
            (
                "no-push-glob",
                forced(&format!(" --user no-push-glob --receive-pack {}", git_receive_pack().display())),
                &["-t", "ed25519"][..],
            ),
        ] {
            let key = keygen(&dir, name, args);
            let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
            if opts.is_empty() {
                authorized.push_str(&public);
            } else {
                authorized.push_str(&format!("{opts} {public}"));
            }
        }
        std::fs::write(dir.join("authorized_keys"), authorized).unwrap();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nHostKey {}\nPidFile {}\n\
             AuthorizedKeysFile {}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nAcceptEnv GIT_PROTOCOL\n\
             PubkeyAcceptedAlgorithms +ssh-rsa\nLogLevel VERBOSE\nPrintMotd no\n\
             MaxStartups 200\nMaxSessions 200\n",
            host_ed.display(),
            host_ec.display(),
            dir.join("sshd.pid").display(),
            dir.join("authorized_keys").display(),
        );
        // contrib/sshd/sshd_config.d-packserve.conf, for an account that does not log in here:
        // `sshd -t` below checks that it is valid sshd configuration.
        let mut r = install_paths(&served.root);
        r.push(("/var/log/packserve/ssh.log", log.display().to_string()));
        r.push(("Match User git", "Match User packserve-recipe-check".to_owned()));
        let config = format!("{config}{}", recipe("sshd/sshd_config.d-packserve.conf", &r));
        std::fs::write(dir.join("sshd_config"), config).unwrap();
        let check = Command::new(&sshd).arg("-t").arg("-f").arg(dir.join("sshd_config")).output().unwrap();
        assert!(
            check.status.success(),
            "sshd -t rejects the config: {}",
            String::from_utf8_lossy(&check.stderr)
        );
        let mut cmd = Command::new(&sshd);
        cmd.arg("-D").arg("-e").arg("-f").arg(dir.join("sshd_config"));
        let daemon = Daemon::start("sshd", cmd, port, dir.join("sshd.log"));
        SshServer { daemon, port, user, dir, root: served.root.clone(), log }
    }

    pub fn key_path(&self, key: Key) -> PathBuf {
        self.dir.join(match key {
            Key::Forced => "forced",
            Key::Plain => "plain",
            Key::Limited => "limited",
            Key::Rsa => "rsa",
            Key::Pusher => "pusher",
            Key::NoPushGlob => "no-push-glob",
        })
    }

    /// The ssh command for `key`, as GIT_SSH_COMMAND.
    pub fn ssh_command(&self, key: Key) -> String {
        format!(
            "ssh -F /dev/null -i {} -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR",
            self.key_path(key).display()
        )
    }

    pub fn remote(&self, key: Key) -> Remote {
        let (base, upload_pack) = match key {
            Key::Plain => (
                format!("ssh://{}@127.0.0.1:{}{}", self.user, self.port, self.root.display()),
                Some(server_under_test().display().to_string()),
            ),
            _ => (format!("ssh://{}@127.0.0.1:{}", self.user, self.port), None),
        };
        Remote {
            transport: "ssh",
            base,
            env: vec![
                ("GIT_SSH_COMMAND".into(), self.ssh_command(key)),
                ("PACKSERVE_SSH_KEY".into(), self.key_path(key).display().to_string()),
            ],
            upload_pack,
            push_refusal: "packserve serves fetches only",
        }
    }

    /// JGit's home with `.ssh/config` for the RSA key.
    pub fn jgit_home(&self, sb: &Sandbox) -> PathBuf {
        let home = sb.join("jgit-home");
        std::fs::create_dir_all(home.join(".ssh")).unwrap();
        std::fs::write(
            home.join(".ssh/config"),
            format!(
                "Host 127.0.0.1\n  User {}\n  Port {}\n  IdentityFile {}\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n",
                self.user,
                self.port,
                self.key_path(Key::Rsa).display()
            ),
        )
        .unwrap();
        home
    }
}

// ---------------------------------------------------------------------------
// Apache

pub struct HttpServer {
    pub daemon: Daemon,
    pub port: u16,
    dir: PathBuf,
    /// The `--log` file of the CGI.
    pub log: PathBuf,
}

/// Which CGI program Apache runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// `packserve http-backend`.
    Packserve,
    /// git's own `git http-backend` (the reference), with `safe.directory=*` in its
    /// environment as git-http-backend setups need when the web server's user does not own
    /// the repositories.
    Git,
}

/// A fetch recipe of `contrib/` for a web server, with the CGI at `cgi` serving `root`.
fn http_recipe(file: &str, root: &Path, cgi: &Path) -> String {
    let mut r = vec![
        ("/usr/local/libexec/packserve-http-backend", cgi.display().to_string()),
        ("/srv/git", root.display().to_string()),
    ];
    if file.starts_with("apache/") {
        r.push((
            "<Directory /usr/local/libexec>",
            format!("<Directory {}>", cgi.parent().unwrap().display()),
        ));
    }
    recipe(file, &r)
}

/// contrib/http/packserve-http-backend, logging to `log`.
fn cgi_script(log: &Path) -> String {
    let mut r = install_paths(Path::new("/srv/git"));
    r.truncate(1);
    r.push(("/var/log/packserve/http.log", log.display().to_string()));
    recipe("http/packserve-http-backend", &r)
}

impl HttpServer {
    pub fn start(sb: &Sandbox, served: &Served) -> HttpServer {
        Self::start_with(sb, served, Backend::Packserve)
    }

    pub fn start_with(sb: &Sandbox, served: &Served, backend: Backend) -> HttpServer {
        Self::start_config(sb, served, backend, false)
    }

    /// packserve for fetches, git's `git http-backend` for pushes (authenticated), as the
    /// push recipe for Apache (contrib/apache/packserve-push.conf) routes them.
    pub fn start_push(sb: &Sandbox, served: &Served) -> HttpServer {
        Self::start_config(sb, served, Backend::Packserve, true)
    }

    fn start_config(sb: &Sandbox, served: &Served, backend: Backend, push: bool) -> HttpServer {
        let apache = require("/usr/sbin/apache2", "apache2");
        let modules = Path::new("/usr/lib/apache2/modules");
        assert!(modules.join("mod_cgi.so").exists(), "mod_cgi is missing: install apache2");
        let dir = sb.join("apache");
        std::fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        // Apache runs CGIs as www-data: the packserve log must be writable by it, and the
        // served tree readable (the sandbox is created 0755, files 0644).
        let log = dir.join("packserve.log");
        std::fs::write(&log, "").unwrap();
        std::fs::set_permissions(&log, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
        let cgi = dir.join("packserve-http-backend");
        let script = match backend {
            Backend::Packserve => cgi_script(&log),
            Backend::Git => format!(
                "#!/bin/sh\nexport GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=safe.directory GIT_CONFIG_VALUE_0='*'\nexec {}\n",
                reference_upload_pack().with_file_name("git-http-backend").display()
            ),
        };
        std::fs::write(&cgi, script).unwrap();
        // Basic authentication under /auth/, so that REMOTE_USER reaches the CGI.
        let htpasswd = require("htpasswd", "apache2-utils");
        let out = Command::new(htpasswd)
            .arg("-bc")
            .arg(dir.join("htpasswd"))
            .args(["alice", "s3cret-pw"])
            .output()
            .unwrap();
        assert!(out.status.success(), "htpasswd failed: {}", String::from_utf8_lossy(&out.stderr));
        std::fs::set_permissions(&cgi, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let load = [
            "mpm_prefork",
            "authz_core",
            "authz_user",
            "authn_core",
            "authn_file",
            "auth_basic",
            "alias",
            "cgi",
            "env",
            "setenvif",
            "rewrite",
        ]
        .iter()
        .map(|m| format!("LoadModule {m}_module {}/mod_{m}.so\n", modules.display()))
        .collect::<String>();
        let config = format!(
            "{load}ServerName 127.0.0.1\nListen 127.0.0.1:{port}\nServerRoot {d}\nPidFile {d}/httpd.pid\n\
             DefaultRuntimeDir {d}\nMutex file:{d} default\nErrorLog {d}/error.log\nLogLevel warn\n\
             LogFormat \"%r %>s te=%{{Transfer-Encoding}}i ce=%{{Content-Encoding}}i gp=%{{Git-Protocol}}i\" git\n\
             CustomLog {d}/access.log git\nUser www-data\nGroup www-data\n\
             StartServers 2\nMinSpareServers 1\nMaxSpareServers 4\n\
             {recipe}ScriptAlias /auth/ {cgi}/\n\
             <Location /auth/>\n  AuthType Basic\n  AuthName git\n  AuthUserFile {d}/htpasswd\n  Require valid-user\n</Location>\n\
             <Directory {d}>\n  Require all granted\n</Directory>\n{push}",
            push = if push { apache_push_recipe(&dir.join("htpasswd")) } else { String::new() },
            d = dir.display(),
            cgi = cgi.display(),
            recipe = http_recipe("apache/packserve.conf", &served.root, &cgi),
        );
        std::fs::write(dir.join("httpd.conf"), config).unwrap();
        let mut cmd = Command::new(&apache);
        cmd.arg("-f").arg(dir.join("httpd.conf")).arg("-DFOREGROUND");
        let daemon = Daemon::start("apache2", cmd, port, dir.join("apache2.out"));
        HttpServer { daemon, port, dir, log }
    }

    pub fn remote(&self) -> Remote {
        http_remote(self.port, "403")
    }

    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default()
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

/// A web server's `/git` on `port`; `push_refusal`: the status a push gets.
pub fn http_remote(port: u16, push_refusal: &'static str) -> Remote {
    Remote {
        transport: "http",
        base: format!("http://127.0.0.1:{port}/git"),
        env: vec![],
        upload_pack: None,
        push_refusal,
    }
}

/// git's own `git http-backend`, which the push recipes run for receive-pack.
pub fn git_http_backend() -> PathBuf {
    reference_upload_pack().with_file_name("git-http-backend")
}

/// The user and password the push recipes' htpasswd files accept.
pub const PUSHER: (&str, &str) = ("alice", "s3cret-pw");

/// An htpasswd file in `dir` with [`PUSHER`], readable by the web servers.
fn push_htpasswd(dir: &Path) -> PathBuf {
    let file = dir.join("push.htpasswd");
    let out = Command::new(require("htpasswd", "apache2-utils"))
        .arg("-bc")
        .arg(&file)
        .args([PUSHER.0, PUSHER.1])
        .output()
        .unwrap();
    assert!(out.status.success(), "htpasswd failed: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    file
}

/// contrib/apache/packserve-push.conf: receive-pack (its `info/refs?service=` and its POST)
/// to `git http-backend` under `/git-push/`, where a password is required; everything else
/// stays with packserve under `/git/`.
fn apache_push_recipe(htpasswd: &Path) -> String {
    let mut r = push_paths(None, htpasswd, "/etc/apache2/git.htpasswd");
    r.push((
        "<Directory /usr/lib/git-core>",
        format!("<Directory {}>", git_http_backend().parent().unwrap().display()),
    ));
    recipe("apache/packserve-push.conf", &r)
}

/// The replacements of a push recipe: git http-backend and the password file.
fn push_paths(
    root: Option<&Path>,
    htpasswd: &Path,
    recipe_htpasswd: &'static str,
) -> Vec<(&'static str, String)> {
    let mut r = vec![
        ("/usr/lib/git-core/git-http-backend", git_http_backend().display().to_string()),
        (recipe_htpasswd, htpasswd.display().to_string()),
    ];
    if let Some(root) = root {
        r.push(("/srv/git", root.display().to_string()));
    }
    r
}

/// A served repository that pushes through a web server (running as www-data) can write:
/// owned by www-data, as `git http-backend`'s receive-pack needs.
pub fn give_to_www_data(repo: &Path) {
    let out = Command::new("chown").args(["-R", "www-data:www-data"]).arg(repo).output().unwrap();
    assert!(
        out.status.success(),
        "chown www-data {}: {}",
        repo.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------
// A static web server (bundles and packfiles for the offload tests)

/// nginx serving the files of one directory at `/`, with an access log.
pub struct StaticServer {
    pub daemon: Daemon,
    pub port: u16,
    /// The directory served.
    pub files: PathBuf,
    dir: PathBuf,
}

/// nginx in the foreground under `dir` (one worker, so an upstream's round robin is
/// deterministic), listening on `port`: `http` goes inside its `http { }` block, `server`
/// inside the `server { }` block there.
fn nginx_daemon(name: &str, dir: &Path, port: u16, http: &str, server: &str) -> Daemon {
    let nginx = require("/usr/sbin/nginx", "nginx-light");
    std::fs::create_dir_all(dir).unwrap();
    let config = format!(
        "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\n\
         http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
         {http}  server {{\n    listen 127.0.0.1:{port};\n{server}  }}\n}}\n",
        d = dir.display(),
    );
    std::fs::write(dir.join("nginx.conf"), config).unwrap();
    let mut cmd = Command::new(nginx);
    cmd.arg("-c").arg(dir.join("nginx.conf")).arg("-p").arg(dir);
    Daemon::start(name, cmd, port, dir.join("nginx.out"))
}

impl StaticServer {
    pub fn start(sb: &Sandbox, name: &str) -> StaticServer {
        let dir = sb.join(name);
        let files = dir.join("files");
        std::fs::create_dir_all(&files).unwrap();
        let port = free_port();
        let daemon =
            nginx_daemon("nginx (static)", &dir, port, "", &format!("    root {};\n", files.display()));
        StaticServer { daemon, port, files, dir }
    }

    pub fn url(&self, file: &str) -> String {
        format!("http://127.0.0.1:{}/{file}", self.port)
    }

    /// The access log: one `"GET /<file> HTTP/1.1" <status>` line per request.
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default()
    }

    /// How many times `/<file>` was answered with 200.
    pub fn downloads(&self, file: &str) -> usize {
        let needle = format!("\"GET /{file} HTTP/1.1\" 200 ");
        self.access_log().lines().filter(|l| l.contains(&needle)).count()
    }
}

// ---------------------------------------------------------------------------
// A load balancer in front of replicas

/// nginx with an `upstream` of the given backends (round robin, one worker so the order is
/// deterministic), as docs/replicas.md sets it up.
pub struct LoadBalancer {
    pub daemon: Daemon,
    pub port: u16,
    dir: PathBuf,
}

impl LoadBalancer {
    pub fn nginx(sb: &Sandbox, backends: &[u16]) -> LoadBalancer {
        let dir = sb.join("balancer");
        let port = free_port();
        let servers: String = backends
            .iter()
            .map(|p| format!("    server 127.0.0.1:{p} max_fails=1 fail_timeout=60s;\n"))
            .collect();
        let upstream = format!("  upstream git_replicas {{\n{servers}  }}\n");
        let location = "    location / {\n      proxy_pass http://git_replicas;\n      client_max_body_size 0;\n      \
                        proxy_next_upstream error timeout http_502 http_503;\n      proxy_set_header Host $host;\n    }\n";
        let daemon = nginx_daemon("nginx (balancer)", &dir, port, &upstream, location);
        LoadBalancer { daemon, port, dir }
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    pub fn remote(&self) -> Remote {
        http_remote(self.port, "401")
    }
}

// ---------------------------------------------------------------------------
// socat + packserve inetd

/// contrib/systemd/packserve-git@.service, read as systemd reads the lines the tests use.
pub struct SystemdUnit {
    /// `ExecStart=`, paths replaced.
    pub exec_start: String,
    /// `Environment=` (space-separated assignments), paths replaced.
    pub environment: String,
    /// `User=`.
    pub user: String,
    /// `SuccessExitStatus=`.
    pub success_exit_status: String,
    /// The socket unit's `ListenStream=` and `Accept=`.
    pub listen: (String, String),
}

impl SystemdUnit {
    pub fn read(root: &Path) -> SystemdUnit {
        let service = recipe("systemd/packserve-git@.service", &install_paths(root));
        let socket = recipe("systemd/packserve-git.socket", &[]);
        let key = |text: &str, k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{k}=")))
                .unwrap_or_else(|| panic!("the unit has no {k}="))
                .trim()
                .to_owned()
        };
        SystemdUnit {
            exec_start: key(&service, "ExecStart"),
            environment: key(&service, "Environment"),
            user: key(&service, "User"),
            success_exit_status: key(&service, "SuccessExitStatus"),
            listen: (key(&socket, "ListenStream"), key(&socket, "Accept")),
        }
    }
}

/// The primary group of `user` (as systemd and xinetd use it).
pub fn primary_group(user: &str) -> String {
    let out = Command::new("id").args(["-gn", user]).output().unwrap();
    assert!(out.status.success(), "no user {user}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

pub struct GitDaemon {
    pub daemon: Daemon,
    pub port: u16,
    /// The `--log` file of packserve inetd.
    pub log: PathBuf,
}

impl GitDaemon {
    /// socat (one process per connection, as systemd's `Accept=yes`) running the `ExecStart`
    /// line of contrib/systemd/packserve-git@.service with its `Environment=`, plus `--log`
    /// and `extra`, as the test's user (root).
    pub fn start(sb: &Sandbox, served: &Served, extra: &str) -> GitDaemon {
        let port = free_port();
        let log = sb.join(format!("inetd-{port}.log"));
        let unit = SystemdUnit::read(&served.root);
        let exec = format!("env {} {} --log {} {extra}", unit.environment, unit.exec_start, log.display());
        Self::start_exec(sb, port, log, exec)
    }

    /// The unit as written: its `ExecStart` with its `Environment=`, as its `User=` (through
    /// setpriv; systemd cannot run here), with `--log` (writable by that user).
    pub fn start_unit_as_written(sb: &Sandbox, served: &Served, with_environment: bool) -> GitDaemon {
        let port = free_port();
        let log = sb.join(format!("inetd-unit-{port}.log"));
        std::fs::write(&log, "").unwrap();
        std::fs::set_permissions(&log, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
        let unit = SystemdUnit::read(&served.root);
        let setpriv = require("setpriv", "util-linux");
        let env = if with_environment { unit.environment.as_str() } else { "" };
        let exec = format!(
            "{} --reuid={user} --regid={group} --clear-groups env {env} {} --log {}",
            setpriv.display(),
            unit.exec_start,
            log.display(),
            user = unit.user,
            group = primary_group(&unit.user),
        );
        Self::start_exec(sb, port, log, exec)
    }

    /// contrib/xinetd/git as written: `server` and `server_args` with its `env`, as its `user`.
    pub fn start_xinetd_as_written(sb: &Sandbox, served: &Served) -> GitDaemon {
        let port = free_port();
        let log = sb.join(format!("xinetd-{port}.log"));
        std::fs::write(&log, "").unwrap();
        std::fs::set_permissions(&log, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
        let mut r = install_paths(&served.root);
        r.push(("/var/log/packserve/git.log", log.display().to_string()));
        let text = recipe("xinetd/git", &r);
        let attr = |name: &str| {
            text.lines()
                .find_map(|l| {
                    let (k, v) = l.split_once('=')?;
                    (k.trim() == name).then(|| v.trim().to_owned())
                })
                .unwrap_or_else(|| panic!("contrib/xinetd/git has no {name}"))
        };
        assert_eq!(attr("port"), "9418");
        assert_eq!(attr("wait"), "no", "one process per connection");
        let user = attr("user");
        let setpriv = require("setpriv", "util-linux");
        let exec = format!(
            "{} --reuid={user} --regid={} --clear-groups env {} {} {}",
            setpriv.display(),
            primary_group(&user),
            attr("env"),
            attr("server"),
            attr("server_args"),
        );
        Self::start_exec(sb, port, log, exec)
    }

    /// git's own `git daemon --inetd` behind the same socat (the reference).
    pub fn start_git(sb: &Sandbox, served: &Served) -> GitDaemon {
        let port = free_port();
        let log = sb.join(format!("git-daemon-{port}.log"));
        let exec = format!(
            "{} daemon --inetd --base-path={} --export-all",
            Client::New.program().display(),
            served.root.display()
        );
        Self::start_exec(sb, port, log, exec)
    }

    fn start_exec(sb: &Sandbox, port: u16, log: PathBuf, exec: String) -> GitDaemon {
        let socat = require("socat", "socat");
        let mut cmd = Command::new(socat);
        // socat splits EXEC at spaces: no empty words.
        let exec = exec.split_whitespace().collect::<Vec<_>>().join(" ");
        cmd.arg(format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork")).arg(format!("EXEC:{exec}"));
        let daemon = Daemon::start("socat", cmd, port, sb.join(format!("socat-{port}.out")));
        GitDaemon { daemon, port, log }
    }

    pub fn remote(&self) -> Remote {
        Remote {
            transport: "git",
            base: format!("git://127.0.0.1:{}", self.port),
            env: vec![],
            upload_pack: None,
            push_refusal: "service not enabled",
        }
    }
}

// ---------------------------------------------------------------------------
// Scenarios with git

/// The server's refs as `git ls-remote` prints them (HEAD first), read locally.
pub fn server_ls_remote(sb: &Sandbox, repo: &Path) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    m.insert("HEAD".to_owned(), sb.rev_parse(repo, "HEAD"));
    for l in sb.git(repo, &["for-each-ref", "--format=%(objectname) %(refname) %(*objectname)"]).lines() {
        let parts: Vec<&str> = l.split(' ').collect();
        m.insert(parts[1].to_owned(), parts[0].to_owned());
        if parts.len() > 2 && !parts[2].is_empty() {
            m.insert(format!("{}^{{}}", parts[1]), parts[2].to_owned());
        }
    }
    m
}

/// `<oid>\t<ref>` lines into a map.
pub fn parse_ls_remote(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('\t').map(|(o, r)| (r.trim().to_owned(), o.trim().to_owned())))
        .collect()
}

/// A clone (or fetch result) holds what the server has: fsck clean, remote-tracking refs
/// and tags equal to the server's branches and tags, HEAD on the server's HEAD branch.
#[track_caller]
pub fn assert_mirrors(sb: &Sandbox, clone: &Path, server: &Path, context: &str) {
    sb.fsck(clone);
    let expected = expected_clone_refs(&sb.refs(server));
    let got = fetched_refs(&sb.refs(clone));
    assert!(
        got == expected,
        "{context}: remote-tracking refs and tags differ from the server's refs:\n{}",
        map_diff("clone", &got, "server", &expected)
    );
}

#[track_caller]
pub fn assert_head(sb: &Sandbox, clone: &Path, server: &Path, context: &str) {
    let Head::Symbolic { target, oid } = sb.head(server) else { panic!("server HEAD is detached") };
    let Head::Symbolic { target: t, oid: o } = sb.head(clone) else {
        panic!("{context}: clone HEAD is detached")
    };
    assert_eq!((t, o), (target, oid), "{context}: clone HEAD differs from the server's");
}

/// clone, ls-remote, fetch after new commits; every result checked against the server.
pub fn git_clone_ls_remote_fetch(
    sb: &Sandbox,
    remote: &Remote,
    served: &Served,
    client: Client,
    protocol: u8,
) {
    let ctx = format!("{} {} over {}", label(client, protocol), "clone", remote.transport);
    let server = served.repo("main.git");
    let dest = sb.join("clone");
    let out = remote.git(
        sb,
        client,
        protocol,
        sb.path(),
        "clone",
        &["--no-progress", &remote.url("main.git"), dest.to_str().unwrap()],
    );
    assert!(out.status.success(), "{ctx} failed:\n{out}");
    assert_mirrors(sb, &dest, &server, &ctx);
    assert_head(sb, &dest, &server, &ctx);

    let out = remote.git(sb, client, protocol, sb.path(), "ls-remote", &[&remote.url("main.git")]);
    assert!(out.status.success(), "{ctx}: ls-remote failed:\n{out}");
    let got = parse_ls_remote(&out.stdout_str());
    let want = server_ls_remote(sb, &server);
    assert!(
        got == want,
        "{ctx}: ls-remote differs from the server:\n{}",
        map_diff("ls-remote", &got, "server", &want)
    );

    advance(sb, &server);
    let out = remote.git(sb, client, protocol, &dest, "fetch", &["--no-progress", "origin"]);
    assert!(out.status.success(), "{ctx}: fetch after new commits failed:\n{out}");
    assert_mirrors(sb, &dest, &server, &format!("{ctx}, then fetch"));
}

/// What git's own upload-pack gives for `git clone --depth 1`: one commit per branch
/// fetched (the default branch only, with --single-branch implied), a `shallow` file
/// naming it, fsck clean.
pub fn git_shallow_clone(sb: &Sandbox, remote: &Remote, served: &Served, client: Client, protocol: u8) {
    let ctx = format!("{} shallow clone over {}", label(client, protocol), remote.transport);
    let server = served.repo("main.git");
    let dest = sb.join("shallow");
    let out = remote.git(
        sb,
        client,
        protocol,
        sb.path(),
        "clone",
        &["--no-progress", "--depth", "1", &remote.url("main.git"), dest.to_str().unwrap()],
    );
    assert!(out.status.success(), "{ctx} failed:\n{out}");
    sb.fsck(&dest);
    let main = sb.rev_parse(&server, "refs/heads/main");
    assert_eq!(sb.rev_parse(&dest, "refs/remotes/origin/main"), main, "{ctx}: origin/main");
    let shallow = std::fs::read_to_string(dest.join(".git/shallow")).unwrap_or_default();
    assert_eq!(shallow.trim(), main, "{ctx}: .git/shallow should name the one commit fetched");
    assert_eq!(sb.git(&dest, &["rev-list", "--count", "HEAD"]).trim(), "1", "{ctx}: history depth");
}

/// What git's own upload-pack gives for `git clone --filter=blob:none` on a repository with
/// `uploadpack.allowFilter` (and `allowAnySHA1InWant`, which v0's lazy fetches need): a promisor clone whose checkout fetched only HEAD's blobs, so
/// older blobs are missing, and that still passes fsck and fetches them on demand.
pub fn git_partial_clone(sb: &Sandbox, remote: &Remote, served: &Served, client: Client, protocol: u8) {
    let ctx = format!("{} partial clone over {}", label(client, protocol), remote.transport);
    let server = served.repo("main.git");
    let dest = sb.join("partial");
    let out = remote.git(
        sb,
        client,
        protocol,
        sb.path(),
        "clone",
        &["--no-progress", "--filter=blob:none", &remote.url("main.git"), dest.to_str().unwrap()],
    );
    assert!(out.status.success(), "{ctx} failed:\n{out}");
    assert_eq!(
        sb.git(&dest, &["config", "remote.origin.promisor"]).trim(),
        "true",
        "{ctx}: not a promisor remote"
    );
    let missing = sb.git(&dest, &["rev-list", "--objects", "--all", "--missing=print"]);
    assert!(
        missing.lines().any(|l| l.starts_with('?')),
        "{ctx}: no blob is missing: the filter was not applied"
    );
    assert_mirrors(sb, &dest, &server, &ctx);
    // A lazy fetch through the same transport brings an old blob in.
    let mut cmd = sb.command(client.program());
    cmd.current_dir(&dest).args(["log", "-p", "--format=%H", "-3", "refs/remotes/origin/side"]);
    remote.apply(&mut cmd);
    let out = run(cmd, None);
    assert!(out.status.success(), "{ctx}: lazy fetch of blobs failed:\n{out}");
}

/// A push is refused, says why, and leaves the server's refs as they were.
pub fn git_push_refused(sb: &Sandbox, remote: &Remote, served: &Served, client: Client) {
    let server = served.repo("main.git");
    let before = sb.refs(&server);
    let work = sb.unique("pusher");
    sb.git(sb.path(), &["clone", "-q", server.to_str().unwrap(), work.to_str().unwrap()]);
    sb.sh(&work, "commit pushed.txt pushed 'to be refused'");
    let out = remote.git(sb, client, 0, &work, "push", &[&remote.url("main.git"), "HEAD:refs/heads/pushed"]);
    assert!(!out.status.success(), "push over {} succeeded:\n{out}", remote.transport);
    let all = format!("{}{}", out.stderr_str(), out.stdout_str());
    assert!(
        all.contains(remote.push_refusal),
        "push over {}: expected '{}' in the client's output:\n{out}",
        remote.transport,
        remote.push_refusal
    );
    assert_eq!(sb.refs(&server), before, "the server's refs changed after a refused push");
}

// ---------------------------------------------------------------------------
// Other clients

/// Runs `client.py <client> <args...>` with the remote's environment.
pub fn python_client(sb: &Sandbox, remote: &Remote, client: &str, args: &[&str]) -> Output {
    require("python3", "python3");
    require_python_module(client);
    let script = manifest_dir().join("tests/common/client.py");
    let mut cmd = sb.command("python3");
    cmd.arg(script).arg(client).args(args);
    if let Some(p) = std::env::var_os("PYTHONPATH") {
        cmd.env("PYTHONPATH", p);
    }
    remote.apply(&mut cmd);
    run(cmd, None)
}

/// clone, ls-remote and fetch after new commits with pygit2 or dulwich.
pub fn python_clone_ls_remote_fetch(sb: &Sandbox, remote: &Remote, served: &Served, client: &str) {
    let ctx = format!("{client} over {}", remote.transport);
    let server = served.repo("main.git");
    let dest = sb.join(format!("{client}-clone"));
    let out = python_client(sb, remote, client, &["clone", &remote.url("main.git"), dest.to_str().unwrap()]);
    assert!(out.status.success(), "{ctx}: clone failed:\n{out}");
    assert_mirrors(sb, &dest, &server, &format!("{ctx} clone"));
    assert_head(sb, &dest, &server, &format!("{ctx} clone"));

    let out = python_client(sb, remote, client, &["ls-remote", &remote.url("main.git")]);
    assert!(out.status.success(), "{ctx}: ls-remote failed:\n{out}");
    let got = parse_ls_remote(&out.stdout_str());
    let want = server_ls_remote(sb, &server);
    // Clients differ in whether they list peeled tags; what they list must be right.
    let want_unpeeled: BTreeMap<_, _> =
        want.iter().filter(|(k, _)| !k.ends_with("^{}")).map(|(k, v)| (k.clone(), v.clone())).collect();
    let got_unpeeled: BTreeMap<_, _> =
        got.iter().filter(|(k, _)| !k.ends_with("^{}")).map(|(k, v)| (k.clone(), v.clone())).collect();
    assert!(
        got_unpeeled == want_unpeeled,
        "{ctx}: ls-remote differs from the server:\n{}",
        map_diff("ls-remote", &got_unpeeled, "server", &want_unpeeled)
    );

    advance(sb, &server);
    let out = python_client(sb, remote, client, &["fetch", dest.to_str().unwrap()]);
    assert!(out.status.success(), "{ctx}: fetch failed:\n{out}");
    sb.fsck(&dest);
    for b in ["main", "side", "fresh"] {
        assert_eq!(
            sb.rev_parse(&dest, &format!("refs/remotes/origin/{b}")),
            sb.rev_parse(&server, &format!("refs/heads/{b}")),
            "{ctx}: origin/{b} after fetch"
        );
    }
}

/// A shallow clone (depth 1) with pygit2 or dulwich: one commit, fsck clean.
pub fn python_shallow_clone(sb: &Sandbox, remote: &Remote, served: &Served, client: &str) {
    let ctx = format!("{client} shallow clone over {}", remote.transport);
    let server = served.repo("main.git");
    let dest = sb.join(format!("{client}-shallow"));
    let out = python_client(
        sb,
        remote,
        client,
        &["clone", &remote.url("main.git"), dest.to_str().unwrap(), "--depth", "1"],
    );
    assert!(out.status.success(), "{ctx} failed:\n{out}");
    sb.fsck(&dest);
    assert_eq!(sb.rev_parse(&dest, "HEAD"), sb.rev_parse(&server, "refs/heads/main"), "{ctx}: HEAD");
    assert_eq!(sb.git(&dest, &["rev-list", "--count", "HEAD"]).trim(), "1", "{ctx}: history depth");
}

/// A push with pygit2 or dulwich is refused and the server is unchanged.
pub fn python_push_refused(sb: &Sandbox, remote: &Remote, served: &Served, client: &str) {
    let server = served.repo("main.git");
    let before = sb.refs(&server);
    let work = sb.unique(&format!("{client}-pusher"));
    sb.git(sb.path(), &["clone", "-q", server.to_str().unwrap(), work.to_str().unwrap()]);
    sb.sh(&work, "commit pushed.txt pushed 'to be refused'");
    let out = python_client(
        sb,
        remote,
        client,
        &["push", work.to_str().unwrap(), &remote.url("main.git"), "refs/heads/main:refs/heads/pushed"],
    );
    assert!(!out.status.success(), "{client} push over {} succeeded:\n{out}", remote.transport);
    assert_eq!(sb.refs(&server), before, "the server's refs changed after a refused push");
}

/// The `jgit` command with the jars Debian installs next to it.
pub fn jgit(sb: &Sandbox, remote: &Remote, home: Option<&Path>, dir: &Path, args: &[&str]) -> Output {
    let jgit = require("/usr/bin/jgit", "jgit-cli");
    let j = Path::new("/usr/share/java");
    let jars = [
        "org.eclipse.jgit.jar",
        "org.eclipse.jgit.lfs.jar",
        "org.eclipse.jgit.http.apache.jar",
        "jsch.jar",
        "jzlib.jar",
        "httpclient.jar",
        "httpcore.jar",
        "commons-logging.jar",
        "commons-codec.jar",
        "slf4j-api.jar",
        "slf4j-nop.jar",
        "gson.jar",
        "javaewah.jar",
    ];
    for jar in jars {
        assert!(j.join(jar).exists(), "/usr/share/java/{jar} is missing: install jgit-cli");
    }
    let cp = jars.iter().map(|jar| j.join(jar).display().to_string()).collect::<Vec<_>>().join(":");
    let home = home.map(Path::to_path_buf).unwrap_or_else(|| sb.join("jgit-home"));
    std::fs::create_dir_all(&home).unwrap();
    let mut cmd = sb.command(jgit);
    cmd.current_dir(dir)
        .env("JGIT_CLASSPATH", cp)
        .env(
            "JAVA_TOOL_OPTIONS",
            format!("-Duser.home={} -Xshare:auto -XX:TieredStopAtLevel=1", home.display()),
        )
        .args(args);
    remote.apply(&mut cmd);
    run(cmd, None)
}

/// clone, ls-remote and fetch after new commits with JGit (protocol v0: JGit 4.11 has no v2).
pub fn jgit_clone_ls_remote_fetch(sb: &Sandbox, remote: &Remote, served: &Served, home: Option<&Path>) {
    let ctx = format!("jgit over {}", remote.transport);
    let server = served.repo("main.git");
    let dest = sb.join("jgit-clone");
    let out = jgit(
        sb,
        remote,
        home,
        sb.path(),
        &["clone", "--quiet", &remote.url("main.git"), dest.to_str().unwrap()],
    );
    assert!(out.status.success(), "{ctx}: clone failed:\n{out}");
    assert_mirrors(sb, &dest, &server, &format!("{ctx} clone"));
    assert_head(sb, &dest, &server, &format!("{ctx} clone"));

    let out = jgit(sb, remote, home, sb.path(), &["ls-remote", &remote.url("main.git")]);
    assert!(out.status.success(), "{ctx}: ls-remote failed:\n{out}");
    let got = parse_ls_remote(&out.stdout_str());
    let want = server_ls_remote(sb, &server);
    assert!(
        got == want,
        "{ctx}: ls-remote differs from the server:\n{}",
        map_diff("ls-remote", &got, "server", &want)
    );

    advance(sb, &server);
    let out = jgit(sb, remote, home, &dest, &["fetch"]);
    assert!(out.status.success(), "{ctx}: fetch failed:\n{out}");
    assert_mirrors(sb, &dest, &server, &format!("{ctx} fetch"));
}

/// A push with JGit is refused and the server is unchanged.
pub fn jgit_push_refused(sb: &Sandbox, remote: &Remote, served: &Served, home: Option<&Path>) {
    let server = served.repo("main.git");
    let before = sb.refs(&server);
    let work = sb.unique("jgit-pusher");
    sb.git(sb.path(), &["clone", "-q", server.to_str().unwrap(), work.to_str().unwrap()]);
    sb.sh(&work, "commit pushed.txt pushed 'to be refused'");
    let out = jgit(
        sb,
        remote,
        home,
        &work,
        &["push", &remote.url("main.git"), "refs/heads/main:refs/heads/pushed"],
    );
    let all = format!("{}{}", out.stderr_str(), out.stdout_str());
    assert!(
        !out.status.success() || all.contains("rejected") || all.contains("not"),
        "jgit push over {} succeeded:\n{out}",
        remote.transport
    );
    assert_eq!(sb.refs(&server), before, "the server's refs changed after a refused push");
}

// ---------------------------------------------------------------------------
// lighttpd and nginx + fcgiwrap, from the recipes in contrib/

/// contrib/http/packserve-http-backend, with its `--log` writable by www-data.
fn cgi_wrapper(dir: &Path) -> (PathBuf, PathBuf) {
    let log = dir.join("packserve.log");
    std::fs::write(&log, "").unwrap();
    std::fs::set_permissions(&log, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
    let cgi = dir.join("packserve-http-backend");
    std::fs::write(&cgi, cgi_script(&log)).unwrap();
    std::fs::set_permissions(&cgi, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    (cgi, log)
}

/// A web server in front of `packserve http-backend` under `/git/`.
pub struct WebServer {
    pub daemons: Vec<Daemon>,
    pub port: u16,
    /// The `--log` file of the CGI.
    pub log: PathBuf,
}

impl WebServer {
    /// lighttpd with mod_cgi, mod_alias and mod_setenv, running CGIs as www-data.
    pub fn lighttpd(sb: &Sandbox, served: &Served) -> WebServer {
        Self::lighttpd_in(sb, served, "lighttpd", false)
    }

    /// lighttpd with the push routing of contrib/lighttpd/packserve-push.conf: receive-pack to `git http-backend` behind a
    /// password, everything else to packserve. `name` is its directory in the sandbox.
    pub fn lighttpd_push(sb: &Sandbox, served: &Served, name: &str) -> WebServer {
        Self::lighttpd_in(sb, served, name, true)
    }

    fn lighttpd_in(sb: &Sandbox, served: &Served, name: &str, push: bool) -> WebServer {
        let lighttpd = require("/usr/sbin/lighttpd", "lighttpd");
        let dir = sb.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        // lighttpd opens its error log after dropping to www-data.
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
        let (cgi, log) = cgi_wrapper(&dir);
        let port = free_port();
        let head = format!(
            "server.document-root = \"{d}\"\nserver.port = {port}\nserver.bind = \"127.0.0.1\"\n\
             server.username = \"www-data\"\nserver.groupname = \"www-data\"\n\
             server.errorlog = \"{d}/error.log\"\n",
            d = dir.display(),
        );
        let config = if push {
            let mut r = push_paths(Some(&served.root), &push_htpasswd(&dir), "/etc/lighttpd/git.htpasswd");
            r.insert(0, ("/usr/local/libexec/packserve-http-backend", cgi.display().to_string()));
            format!("{head}{}", recipe("lighttpd/packserve-push.conf", &r))
        } else {
            format!("{head}{}", http_recipe("lighttpd/packserve.conf", &served.root, &cgi))
        };
        std::fs::write(dir.join("lighttpd.conf"), config).unwrap();
        let mut cmd = Command::new(lighttpd);
        cmd.arg("-D").arg("-f").arg(dir.join("lighttpd.conf"));
        let daemon = Daemon::start("lighttpd", cmd, port, dir.join("lighttpd.out"));
        WebServer { daemons: vec![daemon], port, log }
    }

    /// nginx passing `/git/` to fcgiwrap (run as www-data), which runs the CGI.
    pub fn nginx_fcgiwrap(sb: &Sandbox, served: &Served) -> WebServer {
        Self::nginx_in(sb, served, false)
    }

    /// nginx + fcgiwrap with the push routing of contrib/nginx/packserve-push.conf: receive-pack to `git http-backend`
    /// behind a password, everything else to packserve.
    pub fn nginx_push(sb: &Sandbox, served: &Served) -> WebServer {
        Self::nginx_in(sb, served, true)
    }

    fn nginx_in(sb: &Sandbox, served: &Served, push: bool) -> WebServer {
        let nginx = require("/usr/sbin/nginx", "nginx-light");
        let fcgiwrap = require("/usr/sbin/fcgiwrap", "fcgiwrap");
        let setpriv = require("setpriv", "util-linux");
        let dir = sb.join("nginx");
        std::fs::create_dir_all(&dir).unwrap();
        let (cgi, log) = cgi_wrapper(&dir);
        let fcgi_port = free_port();
        let mut cmd = Command::new(setpriv);
        cmd.args(["--reuid=www-data", "--regid=www-data", "--clear-groups"])
            .arg(fcgiwrap)
            .arg("-s")
            .arg(format!("tcp:127.0.0.1:{fcgi_port}"));
        let fcgi = Daemon::start("fcgiwrap", cmd, fcgi_port, dir.join("fcgiwrap.out"));
        let port = free_port();
        let fcgi_socket = ("unix:/run/fcgiwrap.socket", format!("127.0.0.1:{fcgi_port}"));
        let locations = if push {
            let mut r = push_paths(Some(&served.root), &push_htpasswd(&dir), "/etc/nginx/git.htpasswd");
            r.insert(0, ("/usr/local/libexec/packserve-http-backend", cgi.display().to_string()));
            r.push(fcgi_socket);
            recipe("nginx/packserve-push.conf", &r)
        } else {
            let r = vec![
                ("/usr/local/libexec/packserve-http-backend", cgi.display().to_string()),
                fcgi_socket,
                ("/srv/git", served.root.display().to_string()),
            ];
            recipe("nginx/packserve.conf", &r)
        };
        let config = format!(
            "daemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\nhttp {{\n  access_log {d}/access.log;\n  \
             client_body_temp_path {d}/body;\n  fastcgi_temp_path {d}/fastcgi;\n  server {{\n    listen 127.0.0.1:{port};\n\
             {locations}\n  }}\n}}\n",
            d = dir.display(),
        );
        std::fs::write(dir.join("nginx.conf"), config).unwrap();
        let mut cmd = Command::new(nginx);
        cmd.arg("-c").arg(dir.join("nginx.conf")).arg("-p").arg(&dir);
        let daemon = Daemon::start("nginx", cmd, port, dir.join("nginx.out"));
        WebServer { daemons: vec![daemon, fcgi], port, log }
    }

    pub fn remote(&self) -> Remote {
        http_remote(self.port, "403")
    }
}
