//! Real Git servers on loopback for tests: bare repositories in a temporary directory
//! ([`GitRepos`]), served over smart HTTP(S) by the real `git http-backend` behind a small
//! hyper server with basic/bearer auth ([`GitHttpServer`], a thin wrapper over
//! `kube_sandbox::git_http`, the one implementation, also behind `kube-sandbox git-serve`), and
//! over SSH by a real `sshd` ([`SshGitServer`]). Helpers create repositories (empty, or with
//! history via `git fast-import`), push commits "by someone else" with the git CLI, and inspect
//! history.
//!
//! Test-only code: it panics with a clear message when the environment lacks `git` or `sshd`.
//! Include it with `#[path = "common/git_server.rs"] mod git_server;`.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener as StdTcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use kube_sandbox::git_http::{HttpServerOptions, RequestRecord};

// ---------------------------------------------------------------------------------------------
// Repositories
// ---------------------------------------------------------------------------------------------

/// A directory of bare repositories (`<root>/<name>.git`), shared by the servers.
pub struct GitRepos {
    dir: tempfile::TempDir,
}

/// Runs `git` with `args` in `cwd`, isolated from the user's configuration; panics on failure.
pub fn git(cwd: &Path, args: &[&str]) -> String {
    git_with_input(cwd, args, None)
}

fn git_with_input(cwd: &Path, args: &[&str], input: Option<&[u8]>) -> String {
    let mut cmd = Command::new("git");
    cmd.args(args)
        .current_dir(cwd)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn git");
    if let Some(input) = input {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "git {args:?} in {} failed: {}",
        cwd.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl GitRepos {
    /// A new, empty directory of repositories.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            dir: tempfile::Builder::new()
                .prefix("git-repos-")
                .tempdir()
                .unwrap(),
        })
    }

    /// The directory holding the repositories.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The bare repository `<root>/<name>.git`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.root().join(format!("{name}.git"))
    }

    /// Creates an empty bare repository.
    pub fn create_empty(&self, name: &str) -> PathBuf {
        let path = self.path(name);
        git(
            self.root(),
            &["init", "-q", "--bare", "-b", "main", path.to_str().unwrap()],
        );
        path
    }

    /// Creates a bare repository whose `branch` has `commits` commits over `files` files
    /// (`file-<j>.txt`): the first commit adds every file, each later one changes one file.
    /// Written with one `git fast-import` run.
    pub fn create_with_history(
        &self,
        name: &str,
        branch: &str,
        commits: usize,
        files: usize,
    ) -> PathBuf {
        let path = self.create_empty(name);
        let mut stream = Vec::new();
        for i in 0..commits {
            let msg = format!("commit {i}\n");
            write!(
                stream,
                "commit refs/heads/{branch}\nmark :{}\nauthor Someone <someone@example.com> {} +0000\ncommitter Someone <someone@example.com> {} +0000\ndata {}\n{msg}",
                i + 1,
                1_700_000_000 + i,
                1_700_000_000 + i,
                msg.len()
            )
            .unwrap();
            let touched: Vec<usize> = if i == 0 {
                (0..files).collect()
            } else {
                vec![i % files.max(1)]
            };
            for j in touched {
                let content = format!("file {j}, version {i}\n");
                write!(
                    stream,
                    "M 100644 inline file-{j}.txt\ndata {}\n{content}\n",
                    content.len()
                )
                .unwrap();
            }
        }
        git_with_input(&path, &["fast-import", "--quiet"], Some(&stream));
        git(
            &path,
            &["symbolic-ref", "HEAD", &format!("refs/heads/{branch}")],
        );
        path
    }

    /// Commits `content` to `file` on `branch` as "Someone Else" through a git CLI clone and
    /// push (over the file system), as a concurrent writer would. Returns the new commit SHA.
    pub fn push_as_someone_else(
        &self,
        name: &str,
        branch: &str,
        file: &str,
        content: &str,
        message: &str,
    ) -> String {
        let work = tempfile::tempdir().unwrap();
        let url = format!("file://{}", self.path(name).display());
        git(work.path(), &["clone", "-q", "--branch", branch, &url, "w"]);
        let w = work.path().join("w");
        let target = w.join(file);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(&target, content).unwrap();
        git(&w, &["add", "-A"]);
        git(
            &w,
            &[
                "-c",
                "user.name=Someone Else",
                "-c",
                "user.email=else@example.com",
                "commit",
                "-q",
                "-m",
                message,
            ],
        );
        git(&w, &["push", "-q", "origin", branch]);
        git(&w, &["rev-parse", "HEAD"]).trim().to_owned()
    }

    /// `<sha> <subject>` lines of `branch`, newest first (empty when the branch does not exist).
    pub fn log(&self, name: &str, branch: &str) -> Vec<String> {
        let path = self.path(name);
        if !self.branches(name).iter().any(|b| b == branch) {
            return Vec::new();
        }
        git(&path, &["log", "--format=%H %s", branch])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The SHA of the tip of `branch`, if it exists.
    pub fn tip(&self, name: &str, branch: &str) -> Option<String> {
        self.log(name, branch).first().map(|l| l[..40].to_owned())
    }

    /// The branches of the repository, sorted.
    pub fn branches(&self, name: &str) -> Vec<String> {
        let mut b: Vec<String> = git(
            &self.path(name),
            &["for-each-ref", "--format=%(refname:short)", "refs/heads/"],
        )
        .lines()
        .map(str::to_owned)
        .collect();
        b.sort();
        b
    }

    /// The content of `file` at the tip of `branch`, if present.
    pub fn read_file(&self, name: &str, branch: &str, file: &str) -> Option<String> {
        let out = Command::new("git")
            .args(["show", &format!("{branch}:{file}")])
            .current_dir(self.path(name))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The files at the tip of `branch`, sorted.
    pub fn files(&self, name: &str, branch: &str) -> Vec<String> {
        git(&self.path(name), &["ls-tree", "-r", "--name-only", branch])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Whether commit `ancestor` is reachable from `branch` (`git merge-base --is-ancestor`):
    /// after a push that did not force, every earlier tip still is.
    pub fn is_ancestor(&self, name: &str, ancestor: &str, branch: &str) -> bool {
        Command::new("git")
            .args(["merge-base", "--is-ancestor", ancestor, branch])
            .current_dir(self.path(name))
            .status()
            .unwrap()
            .success()
    }
}

// ---------------------------------------------------------------------------------------------
// Smart HTTP server
// ---------------------------------------------------------------------------------------------

/// `git http-backend` behind a loopback HTTP(S) server serving [`GitRepos`]
/// ([`kube_sandbox::git_http::GitHttpServer`]). Stops on drop.
pub struct GitHttpServer {
    repos: Arc<GitRepos>,
    inner: kube_sandbox::git_http::GitHttpServer,
}

impl GitHttpServer {
    /// Starts serving `repos` on a free loopback port.
    pub fn start(repos: Arc<GitRepos>, opts: HttpServerOptions) -> Self {
        let inner = kube_sandbox::git_http::GitHttpServer::start(
            repos.root(),
            std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            opts,
        )
        .expect("start the Git HTTP server");
        Self { repos, inner }
    }

    /// The URL of repository `name`.
    pub fn url(&self, name: &str) -> String {
        self.inner.url(name)
    }

    /// The repositories served.
    pub fn repos(&self) -> &Arc<GitRepos> {
        &self.repos
    }

    /// The PEM certificate of the CA that signed the server certificate (TLS only).
    pub fn ca_pem(&self) -> Option<&str> {
        self.inner.ca_pem()
    }

    /// Changes the accepted basic-auth password (credential rotation).
    pub fn set_password(&self, password: &str) {
        self.inner.set_password(password);
    }

    /// Makes the server refuse (or accept again) pushes with 403 Forbidden.
    pub fn set_read_only(&self, read_only: bool) {
        self.inner.set_read_only(read_only);
    }

    /// Makes pushes hang for `delay` before they are served (`Duration::ZERO`: no more).
    pub fn set_push_delay(&self, delay: Duration) {
        self.inner.set_push_delay(delay);
    }

    /// How many pushes are hanging right now.
    pub fn stalled_pushes(&self) -> usize {
        self.inner.stalled_pushes()
    }

    /// Changes the accepted bearer token.
    pub fn set_token(&self, token: &str) {
        self.inner.set_token(token);
    }

    /// Runs `hook` once, just before the next push negotiation (a concurrent writer).
    pub fn before_next_push(&self, hook: impl FnOnce() + Send + 'static) {
        self.inner.before_next_push(hook);
    }

    /// The requests served so far.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.inner.requests()
    }
}

// ---------------------------------------------------------------------------------------------
// SSH server
// ---------------------------------------------------------------------------------------------

/// An SSH key pair generated with `ssh-keygen`.
#[derive(Clone, Debug)]
pub struct SshKey {
    /// The private key file's content (OpenSSH format).
    pub private_key: String,
    /// The `authorized_keys` line.
    pub public_key: String,
    /// The passphrase the private key is encrypted with, if any.
    pub passphrase: Option<String>,
}

/// Generates a key pair of `kind` (`ed25519`, `rsa`, `ecdsa`) with `ssh-keygen`.
pub fn generate_ssh_key(kind: &str, passphrase: Option<&str>) -> SshKey {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("key");
    let status = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            kind,
            "-N",
            passphrase.unwrap_or(""),
            "-C",
            "git-test",
            "-f",
        ])
        .arg(&file)
        .stdin(Stdio::null())
        .status()
        .expect("ssh-keygen must be installed (openssh-client)");
    assert!(status.success(), "ssh-keygen -t {kind} failed");
    SshKey {
        private_key: std::fs::read_to_string(&file).unwrap(),
        public_key: std::fs::read_to_string(file.with_extension("pub"))
            .unwrap()
            .trim()
            .to_owned(),
        passphrase: passphrase.map(str::to_owned),
    }
}

/// A real `sshd` on a loopback port, serving [`GitRepos`] to the keys in its
/// `authorized_keys`. Killed on drop.
pub struct SshGitServer {
    repos: Arc<GitRepos>,
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    user: String,
    host_key: String,
}

fn free_port() -> u16 {
    StdTcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn sshd_path() -> PathBuf {
    ["/usr/sbin/sshd", "/usr/local/sbin/sshd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("sshd is not installed: apt-get install -y openssh-server")
}

impl SshGitServer {
    /// Starts `sshd` for the current user on a free loopback port, with a fresh ed25519 host
    /// key and an empty `authorized_keys`.
    pub fn start(repos: Arc<GitRepos>) -> Self {
        let dir = tempfile::Builder::new().prefix("sshd-").tempdir().unwrap();
        let host_key_file = dir.path().join("host_ed25519");
        let status = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&host_key_file)
            .status()
            .unwrap();
        assert!(status.success(), "ssh-keygen for the host key failed");
        let host_pub = std::fs::read_to_string(host_key_file.with_extension("pub")).unwrap();
        let host_key = host_pub
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        std::fs::write(dir.path().join("authorized_keys"), "").unwrap();
        let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_owned();
        // sshd refuses to start without its privilege-separation directory.
        let _ = std::fs::create_dir_all("/run/sshd");
        let mut last_err = String::new();
        for _ in 0..5 {
            let port = free_port();
            let config = dir.path().join("sshd_config");
            std::fs::write(
                &config,
                format!(
                    "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nAuthorizedKeysFile {ak}\n\
                     StrictModes no\nPermitRootLogin prohibit-password\nPubkeyAuthentication yes\n\
                     PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
                     PidFile {pid}\nAllowUsers {user}\nLogLevel VERBOSE\nPrintMotd no\n\
                     SetEnv GIT_CONFIG_NOSYSTEM=1\n",
                    hk = host_key_file.display(),
                    ak = dir.path().join("authorized_keys").display(),
                    pid = dir.path().join("sshd.pid").display(),
                ),
            )
            .unwrap();
            let log = std::fs::File::create(dir.path().join("sshd.log")).unwrap();
            let mut child = Command::new(sshd_path())
                .args(["-D", "-e", "-f"])
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("spawn sshd");
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Some(status) = child.try_wait().unwrap() {
                    last_err = format!(
                        "sshd exited with {status}: {}",
                        std::fs::read_to_string(dir.path().join("sshd.log")).unwrap_or_default()
                    );
                    break;
                }
                if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                    let mut banner = [0u8; 4];
                    if s.read_exact(&mut banner).is_ok() && &banner == b"SSH-" {
                        return Self {
                            repos,
                            child,
                            port,
                            dir,
                            user,
                            host_key,
                        };
                    }
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_err = "sshd did not answer within 10s".to_owned();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("cannot start sshd: {last_err}");
    }

    /// The repositories served.
    pub fn repos(&self) -> &Arc<GitRepos> {
        &self.repos
    }

    /// Authorises `key` to log in.
    pub fn authorize(&self, key: &SshKey) {
        let path = self.dir.path().join("authorized_keys");
        let mut keys = std::fs::read_to_string(&path).unwrap();
        keys.push_str(&key.public_key);
        keys.push('\n');
        std::fs::write(path, keys).unwrap();
    }

    /// `ssh://<user>@127.0.0.1:<port>/<abs path>/<name>.git`.
    pub fn url(&self, name: &str) -> String {
        format!(
            "ssh://{}@127.0.0.1:{}{}",
            self.user,
            self.port,
            self.repos.path(name).display()
        )
    }

    /// The `known_hosts` line for this server: `[127.0.0.1]:<port> ssh-ed25519 AAAA…`.
    pub fn known_hosts_line(&self) -> String {
        format!("[127.0.0.1]:{} {}", self.port, self.host_key)
    }

    /// The `SHA256:…` fingerprint of the host key, as `ssh-keygen -l` prints it.
    pub fn host_key_fingerprint(&self) -> String {
        let out = Command::new("ssh-keygen")
            .arg("-lf")
            .arg(self.dir.path().join("host_ed25519.pub"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_owned()
    }

    /// The user the server lets in (the current user).
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// sshd's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }
}

impl Drop for SshGitServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Per-test map helper: counts of requests by `(method, status)`.
pub fn request_counts(records: &[RequestRecord]) -> BTreeMap<(String, u16), usize> {
    let mut m = BTreeMap::new();
    for r in records {
        *m.entry((r.method.clone(), r.status)).or_default() += 1;
    }
    m
}
