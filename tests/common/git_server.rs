//! Real Git servers on loopback for tests: bare repositories in a temporary directory
//! ([`GitRepos`]), served over smart HTTP(S) by the real `git http-backend` behind a small
//! hyper server with basic/bearer auth ([`GitHttpServer`]), and over SSH by a real `sshd`
//! ([`SshGitServer`]). Helpers create repositories (empty, or with history via
//! `git fast-import`), push commits "by someone else" with the git CLI, and inspect history.
//!
//! Test-only code: it panics with a clear message when the environment lacks `git` or `sshd`.
//! Include it with `#[path = "common/git_server.rs"] mod git_server;`.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener as StdTcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

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

/// Which credentials the HTTP server accepts. Each one that is set is accepted.
#[derive(Clone, Debug, Default)]
pub struct HttpServerOptions {
    /// `(username, password)` for basic auth.
    pub basic: Option<(String, String)>,
    /// A bearer token.
    pub bearer: Option<String>,
    /// Serve HTTPS with a certificate for `127.0.0.1` and `localhost` signed by a generated CA.
    pub tls: bool,
    /// Refuse pushes to authenticated users with 403 Forbidden, as hosting services do for
    /// read-only credentials (deploy keys or tokens without write scope).
    pub read_only: bool,
}

/// One request as the server saw it (no credentials: only the auth scheme).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// `basic`, `bearer`, `none` or `other`.
    pub auth_scheme: String,
    /// The status returned.
    pub status: u16,
}

struct HttpState {
    opts: HttpServerOptions,
    log: Vec<RequestRecord>,
}

/// `git http-backend` behind a loopback HTTP(S) server. Stops on drop.
pub struct GitHttpServer {
    repos: Arc<GitRepos>,
    addr: SocketAddr,
    state: Arc<Mutex<HttpState>>,
    ca_pem: Option<String>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl GitHttpServer {
    /// Starts serving `repos` on a free loopback port.
    pub fn start(repos: Arc<GitRepos>, opts: HttpServerOptions) -> Self {
        let (acceptor, ca_pem) = if opts.tls {
            let (acceptor, ca) = tls_acceptor();
            (Some(acceptor), Some(ca))
        } else {
            (None, None)
        };
        let listener = StdTcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(HttpState {
            opts,
            log: Vec::new(),
        }));
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let root = repos.root().to_path_buf();
        let st = state.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    tokio::select! {
                        _ = &mut rx => break,
                        accepted = listener.accept() => {
                            let Ok((stream, _)) = accepted else { continue };
                            let root = root.clone();
                            let st = st.clone();
                            let acceptor = acceptor.clone();
                            tokio::spawn(async move {
                                let service = service_fn(move |req| handle(req, root.clone(), st.clone()));
                                let builder = hyper::server::conn::http1::Builder::new();
                                match acceptor {
                                    Some(acceptor) => {
                                        if let Ok(tls) = acceptor.accept(stream).await {
                                            let _ = builder.serve_connection(TokioIo::new(tls), service).await;
                                        }
                                    }
                                    None => {
                                        let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                                    }
                                }
                            });
                        }
                    }
                }
            });
        });
        Self {
            repos,
            addr,
            state,
            ca_pem,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// The URL of repository `name`.
    pub fn url(&self, name: &str) -> String {
        let scheme = if self.ca_pem.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://127.0.0.1:{}/{name}.git", self.addr.port())
    }

    /// The repositories served.
    pub fn repos(&self) -> &Arc<GitRepos> {
        &self.repos
    }

    /// The PEM certificate of the CA that signed the server certificate (TLS only).
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// Changes the accepted basic-auth password (credential rotation).
    pub fn set_password(&self, password: &str) {
        let mut st = self.state.lock().unwrap();
        if let Some((_, p)) = st.opts.basic.as_mut() {
            *p = password.to_owned();
        }
    }

    /// Makes the server refuse (or accept again) pushes with 403 Forbidden.
    pub fn set_read_only(&self, read_only: bool) {
        self.state.lock().unwrap().opts.read_only = read_only;
    }

    /// Changes the accepted bearer token.
    pub fn set_token(&self, token: &str) {
        self.state.lock().unwrap().opts.bearer = Some(token.to_owned());
    }

    /// The requests served so far.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.state.lock().unwrap().log.clone()
    }
}

impl Drop for GitHttpServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn auth_scheme(req: &Request<Incoming>) -> (String, Option<String>) {
    let Some(value) = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return ("none".to_owned(), None);
    };
    match value.split_once(' ') {
        Some((s, rest)) if s.eq_ignore_ascii_case("basic") => {
            ("basic".to_owned(), Some(rest.trim().to_owned()))
        }
        Some((s, rest)) if s.eq_ignore_ascii_case("bearer") => {
            ("bearer".to_owned(), Some(rest.trim().to_owned()))
        }
        _ => ("other".to_owned(), None),
    }
}

async fn handle(
    req: Request<Incoming>,
    root: PathBuf,
    state: Arc<Mutex<HttpState>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().to_string();
    let uri = req.uri().to_string();
    let (scheme, credential) = auth_scheme(&req);
    let (authorised_user, challenge) = {
        let st = state.lock().unwrap();
        let opts = &st.opts;
        let user = match (scheme.as_str(), credential) {
            (_, _) if opts.basic.is_none() && opts.bearer.is_none() => Some("anonymous".to_owned()),
            ("basic", Some(b64)) => {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .ok()
                    .and_then(|d| String::from_utf8(d).ok());
                match (
                    decoded.as_deref().and_then(|d| d.split_once(':')),
                    &opts.basic,
                ) {
                    (Some((u, p)), Some((eu, ep))) if u == eu && p == ep => Some(u.to_owned()),
                    _ => None,
                }
            }
            ("bearer", Some(token)) if opts.bearer.as_deref() == Some(token.as_str()) => {
                Some("token-user".to_owned())
            }
            _ => None,
        };
        let mut challenge = vec!["Basic realm=\"git\"".to_owned()];
        if opts.bearer.is_some() {
            challenge.push("Bearer realm=\"git\"".to_owned());
        }
        (user, challenge)
    };
    let read_only = state.lock().unwrap().opts.read_only;
    let push =
        uri.contains("service=git-receive-pack") || req.uri().path().ends_with("/git-receive-pack");
    let response = match authorised_user {
        Some(_) if read_only && push => plain(StatusCode::FORBIDDEN, "write access denied"),
        None => {
            let mut r = Response::new(Full::new(Bytes::from_static(b"authentication required\n")));
            *r.status_mut() = StatusCode::UNAUTHORIZED;
            for c in challenge {
                r.headers_mut()
                    .append(hyper::header::WWW_AUTHENTICATE, c.parse().unwrap());
            }
            r
        }
        Some(user) => cgi(req, &root, &user).await,
    };
    state.lock().unwrap().log.push(RequestRecord {
        method,
        uri,
        auth_scheme: scheme,
        status: response.status().as_u16(),
    });
    Ok(response)
}

/// Runs `git http-backend` as a CGI program for `req`.
async fn cgi(req: Request<Incoming>, root: &Path, user: &str) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return plain(StatusCode::BAD_REQUEST, &format!("reading body: {e}")),
    };
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GIT_CONFIG_COUNT", "1")
        .env("GIT_CONFIG_KEY_0", "http.receivepack")
        .env("GIT_CONFIG_VALUE_0", "true")
        .env("REQUEST_METHOD", parts.method.as_str())
        .env("PATH_INFO", parts.uri.path())
        .env("QUERY_STRING", parts.uri.query().unwrap_or(""))
        .env("CONTENT_TYPE", header("content-type"))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
        .env("GIT_PROTOCOL", header("git-protocol"))
        .env("REMOTE_USER", user)
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("spawning git http-backend: {e}"),
            );
        }
    };
    let mut stdin = child.stdin.take().unwrap();
    let writer = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt as _;
        let _ = stdin.write_all(&body).await;
    });
    let out = match child.wait_with_output().await {
        Ok(o) => o,
        Err(e) => {
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("git http-backend: {e}"),
            );
        }
    };
    let _ = writer.await;
    parse_cgi(&out.stdout).unwrap_or_else(|| {
        plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!(
                "bad CGI output; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    })
}

/// Parses CGI output: headers (with an optional `Status:`), a blank line, the body.
fn parse_cgi(out: &[u8]) -> Option<Response<Full<Bytes>>> {
    let (head_len, sep) = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| (p, 4))
        .or_else(|| out.windows(2).position(|w| w == b"\n\n").map(|p| (p, 2)))?;
    let head = std::str::from_utf8(&out[..head_len]).ok()?;
    let mut response = Response::new(Full::new(Bytes::copy_from_slice(&out[head_len + sep..])));
    for line in head.lines() {
        let (name, value) = line.split_once(':')?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split_whitespace().next()?.parse::<u16>().ok()?;
            *response.status_mut() = StatusCode::from_u16(code).ok()?;
        } else {
            response.headers_mut().append(
                hyper::header::HeaderName::from_bytes(name.trim().as_bytes()).ok()?,
                value.parse().ok()?,
            );
        }
    }
    Some(response)
}

fn plain(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(format!("{text}\n"))));
    *r.status_mut() = status;
    r
}

/// A TLS acceptor with a certificate for `127.0.0.1`/`localhost` signed by a fresh CA, and the
/// CA's PEM.
fn tls_acceptor() -> (tokio_rustls::TlsAcceptor, String) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "git-test-ca");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf_params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "git-test-server");
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![leaf.der().clone()],
        rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap(),
    )
    .unwrap();
    (
        tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        ca_cert.pem(),
    )
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
