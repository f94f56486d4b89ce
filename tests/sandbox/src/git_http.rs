//! A smart-HTTP(S) Git server for tests and demos: the real `git http-backend` run as a CGI
//! program behind a small hyper server on loopback, with optional basic and bearer auth, optional
//! TLS (a certificate for `127.0.0.1`/`localhost` signed by a CA generated at start), a read-only
//! switch, and a log of the requests served (without credentials).
//!
//! [`GitHttpServer::start`] serves the bare repositories under a root directory
//! (`<root>/<name>.git`, created with [`init_bare`]); [`run_cli`] is the `kube-sandbox git-serve`
//! subcommand. The server runs on a thread of its own with its own tokio runtime, so it can be
//! started from synchronous tests and from async code alike.
//!
//! This module knows nothing of Kubernetes or the rest of the crate; it needs `git` on `PATH`.

use std::convert::Infallible;
use std::io::Write;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

/// Errors starting the server, creating repositories or running the CLI.
#[derive(Debug, thiserror::Error)]
pub enum GitHttpError {
    /// Binding or configuring the listening socket failed.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// Generating the TLS certificates failed.
    #[error("generating certificates: {0}")]
    Certificates(#[from] rcgen::Error),
    /// Building the rustls configuration failed.
    #[error("configuring TLS: {0}")]
    TlsConfig(#[from] rustls::Error),
    /// Starting the server's thread or runtime failed.
    #[error("starting the server thread: {0}")]
    Runtime(std::io::Error),
    /// Creating the repository root failed.
    #[error("creating {path}: {source}")]
    CreateRoot {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// `git init --bare` failed (or `git` is missing).
    #[error("creating bare repository {path}: {message}")]
    InitRepository {
        /// The repository.
        path: PathBuf,
        /// `git`'s error output, or why it could not run.
        message: String,
    },
    /// The command line is wrong.
    #[error("{0}\nusage: {CLI_USAGE}")]
    Usage(String),
    /// Installing signal handlers or writing the ready line failed.
    #[error("{step}: {source}")]
    Io {
        /// What was being done.
        step: &'static str,
        /// The cause.
        source: std::io::Error,
    },
}

/// Which credentials the server accepts; each one that is set is accepted. With neither `basic`
/// nor `bearer`, every request is served anonymously.
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

/// Work to run once, just before the server answers the next push negotiation.
type PushHook = Box<dyn FnOnce() + Send>;

struct HttpState {
    opts: HttpServerOptions,
    log: Vec<RequestRecord>,
    before_next_push: Option<PushHook>,
    /// How long a push (the `git-receive-pack` POST) hangs before it is served.
    push_delay: std::time::Duration,
    /// Pushes hanging right now.
    stalled: usize,
}

fn lock(state: &Mutex<HttpState>) -> MutexGuard<'_, HttpState> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `git http-backend` behind a loopback HTTP(S) server. Stops on drop.
pub struct GitHttpServer {
    root: PathBuf,
    addr: SocketAddr,
    state: Arc<Mutex<HttpState>>,
    ca_pem: Option<String>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for GitHttpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHttpServer")
            .field("root", &self.root)
            .field("addr", &self.addr)
            .field("tls", &self.ca_pem.is_some())
            .finish()
    }
}

impl GitHttpServer {
    /// Starts serving the bare repositories under `root` on `listen` (port 0 picks a free port).
    ///
    /// # Errors
    ///
    /// When the address cannot be bound, the certificates cannot be generated or the server
    /// thread cannot start.
    pub fn start(
        root: impl Into<PathBuf>,
        listen: SocketAddr,
        opts: HttpServerOptions,
    ) -> Result<Self, GitHttpError> {
        let root = root.into();
        let (acceptor, ca_pem) = if opts.tls {
            let (acceptor, ca) = tls_acceptor()?;
            (Some(acceptor), Some(ca))
        } else {
            (None, None)
        };
        let bind_err = |source| GitHttpError::Bind {
            addr: listen,
            source,
        };
        let listener = StdTcpListener::bind(listen).map_err(bind_err)?;
        listener.set_nonblocking(true).map_err(bind_err)?;
        let addr = listener.local_addr().map_err(bind_err)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(GitHttpError::Runtime)?;
        let state = Arc::new(Mutex::new(HttpState {
            opts,
            log: Vec::new(),
            before_next_push: None,
            push_delay: std::time::Duration::ZERO,
            stalled: 0,
        }));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        let served_root = root.clone();
        let thread = std::thread::Builder::new()
            .name("git-http".to_owned())
            .spawn(move || runtime.block_on(accept_loop(listener, served_root, st, acceptor, rx)))
            .map_err(GitHttpError::Runtime)?;
        Ok(Self {
            root,
            addr,
            state,
            ca_pem,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// The directory of repositories served.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>` (or `https://…` with TLS).
    pub fn base_url(&self) -> String {
        let scheme = if self.ca_pem.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// The URL of repository `name`: `<base_url>/<name>.git`.
    pub fn url(&self, name: &str) -> String {
        format!("{}/{name}.git", self.base_url())
    }

    /// The PEM certificate of the CA that signed the server certificate (TLS only).
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// Changes the accepted basic-auth password (credential rotation); no effect without basic
    /// auth.
    pub fn set_password(&self, password: &str) {
        if let Some((_, p)) = lock(&self.state).opts.basic.as_mut() {
            *p = password.to_owned();
        }
    }

    /// Makes the server refuse (or accept again) pushes with 403 Forbidden.
    pub fn set_read_only(&self, read_only: bool) {
        lock(&self.state).opts.read_only = read_only;
    }

    /// Changes the accepted bearer token.
    pub fn set_token(&self, token: &str) {
        lock(&self.state).opts.bearer = Some(token.to_owned());
    }

    /// The requests served so far.
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.state).log.clone()
    }

    /// Runs `hook` once, just before the server answers the next push negotiation (the
    /// `git-receive-pack` ref advertisement): what the hook writes to the repositories lands
    /// between a client's clone and its push, like a concurrent writer's commit.
    pub fn before_next_push(&self, hook: impl FnOnce() + Send + 'static) {
        lock(&self.state).before_next_push = Some(Box::new(hook));
    }

    /// Makes every push (the `git-receive-pack` POST that carries the pack) hang for `delay`
    /// before it is served, silently, like a stalled server; `Duration::ZERO` ends it.
    pub fn set_push_delay(&self, delay: std::time::Duration) {
        lock(&self.state).push_delay = delay;
    }

    /// How many pushes are hanging right now (see [`GitHttpServer::set_push_delay`]).
    pub fn stalled_pushes(&self) -> usize {
        lock(&self.state).stalled
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

async fn accept_loop(
    listener: StdTcpListener,
    root: PathBuf,
    state: Arc<Mutex<HttpState>>,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let root = root.clone();
                let state = state.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(req, root.clone(), state.clone()));
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
}

/// Creates the empty bare repository `<root>/<name>.git` with `main` as its initial branch
/// (nothing happens when it exists already), creating `root` if needed.
///
/// # Errors
///
/// When the directory cannot be created or `git init` fails.
pub fn init_bare(root: &Path, name: &str) -> Result<PathBuf, GitHttpError> {
    std::fs::create_dir_all(root).map_err(|source| GitHttpError::CreateRoot {
        path: root.to_path_buf(),
        source,
    })?;
    let path = root.join(format!("{name}.git"));
    let failed = |message: String| GitHttpError::InitRepository {
        path: path.clone(),
        message,
    };
    let out = std::process::Command::new("git")
        .args(["init", "-q", "--bare", "-b", "main"])
        .arg(&path)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| failed(format!("running git: {e}")))?;
    if !out.status.success() {
        return Err(failed(
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ));
    }
    Ok(path)
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

/// The user a request is served as, or `None` when its credentials are missing or wrong.
fn authorised_user(
    opts: &HttpServerOptions,
    scheme: &str,
    credential: Option<String>,
) -> Option<String> {
    if opts.basic.is_none() && opts.bearer.is_none() {
        return Some("anonymous".to_owned());
    }
    match (scheme, credential) {
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
    let (user, bearer_challenge, read_only) = {
        let st = lock(&state);
        (
            authorised_user(&st.opts, &scheme, credential),
            st.opts.bearer.is_some(),
            st.opts.read_only,
        )
    };
    let push =
        uri.contains("service=git-receive-pack") || req.uri().path().ends_with("/git-receive-pack");
    let response = match user {
        Some(_) if read_only && push => plain(StatusCode::FORBIDDEN, "write access denied"),
        None => {
            let mut r = plain(StatusCode::UNAUTHORIZED, "authentication required");
            r.headers_mut().append(
                hyper::header::WWW_AUTHENTICATE,
                hyper::header::HeaderValue::from_static("Basic realm=\"git\""),
            );
            if bearer_challenge {
                r.headers_mut().append(
                    hyper::header::WWW_AUTHENTICATE,
                    hyper::header::HeaderValue::from_static("Bearer realm=\"git\""),
                );
            }
            r
        }
        Some(user) => {
            let hook = if push && method == "GET" {
                lock(&state).before_next_push.take()
            } else {
                None
            };
            if let Some(hook) = hook {
                let _ran = tokio::task::spawn_blocking(hook).await;
            }
            let delay = lock(&state).push_delay;
            if push && method == "POST" && !delay.is_zero() {
                lock(&state).stalled += 1;
                tokio::time::sleep(delay).await;
                lock(&state).stalled -= 1;
            }
            cgi(req, &root, &user).await
        }
    };
    lock(&state).log.push(RequestRecord {
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
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("spawning git http-backend: {e}"),
            );
        }
    };
    let writer = child.stdin.take().map(|mut stdin| {
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt as _;
            let _ = stdin.write_all(&body).await;
        })
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
    if let Some(writer) = writer {
        let _ = writer.await;
    }
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
fn tls_acceptor() -> Result<(tokio_rustls::TlsAcceptor, String), GitHttpError> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "git-test-ca");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate()?;
    let mut leaf_params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?;
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "git-test-server");
    let leaf = leaf_params.signed_by(&leaf_key, &issuer)?;
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
        leaf_key.serialize_der(),
    ));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(vec![leaf.der().clone()], key)?;
    Ok((
        tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        ca_cert.pem(),
    ))
}

// ---------------------------------------------------------------------------------------------
// `kube-sandbox git-serve`
// ---------------------------------------------------------------------------------------------

/// The `git-serve` command line, after the subcommand name.
pub const CLI_USAGE: &str = "kube-sandbox git-serve --root <dir> [--listen 127.0.0.1:0] \
     [--username <u> --password <p> | --token <t>] [--init <repo-name>...]";

/// Parsed `git-serve` arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServeArgs {
    /// The directory of bare repositories.
    pub root: PathBuf,
    /// Where to listen.
    pub listen: SocketAddr,
    /// Basic-auth credentials, if any.
    pub basic: Option<(String, String)>,
    /// Bearer token, if any.
    pub token: Option<String>,
    /// Repositories to create (empty, branch `main`) before serving.
    pub init: Vec<String>,
}

impl ServeArgs {
    /// Parses the arguments that follow `git-serve`. `--init` takes one or more names (up to the
    /// next `--option`) and may be repeated.
    ///
    /// # Errors
    ///
    /// [`GitHttpError::Usage`] for a missing or unknown argument.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Self, GitHttpError> {
        let usage = |m: String| GitHttpError::Usage(m);
        let mut it = args.into_iter().peekable();
        let mut root = None;
        let mut listen = SocketAddr::from(([127, 0, 0, 1], 0));
        let (mut username, mut password, mut token) = (None, None, None);
        let mut init = Vec::new();
        while let Some(arg) = it.next() {
            let mut value = |name: &str| {
                it.next()
                    .ok_or_else(|| usage(format!("{name} needs a value")))
            };
            match arg.as_str() {
                "--root" => root = Some(PathBuf::from(value("--root")?)),
                "--listen" => {
                    listen = value("--listen")?
                        .parse()
                        .map_err(|_| usage("--listen must be ip:port".to_owned()))?;
                }
                "--username" => username = Some(value("--username")?),
                "--password" => password = Some(value("--password")?),
                "--token" => token = Some(value("--token")?),
                "--init" => {
                    let before = init.len();
                    while let Some(name) = it.next_if(|a| !a.starts_with("--")) {
                        init.push(name);
                    }
                    if init.len() == before {
                        return Err(usage(
                            "--init needs at least one repository name".to_owned(),
                        ));
                    }
                }
                other => return Err(usage(format!("unknown argument {other:?}"))),
            }
        }
        let basic = match (username, password) {
            (Some(u), Some(p)) => Some((u, p)),
            (None, None) => None,
            _ => {
                return Err(usage("--username and --password go together".to_owned()));
            }
        };
        if let Some(bad) = init
            .iter()
            .find(|n| n.is_empty() || n.contains('/') || n.starts_with('.'))
        {
            return Err(usage(format!("bad repository name {bad:?}")));
        }
        Ok(Self {
            root: root.ok_or_else(|| usage("--root is required".to_owned()))?,
            listen,
            basic,
            token,
            init,
        })
    }
}

/// Runs `kube-sandbox git-serve`: creates the `--init` repositories, serves `--root`, writes
/// exactly `ready http://<addr>` and a newline to `out`, and returns after SIGTERM or SIGINT.
/// Must be called inside a tokio runtime.
///
/// # Errors
///
/// Bad arguments, a repository that cannot be created, a port that cannot be bound.
pub async fn run_cli(
    args: impl IntoIterator<Item = String>,
    out: &mut dyn Write,
) -> Result<(), GitHttpError> {
    use tokio::signal::unix::{SignalKind, signal};
    let args = ServeArgs::parse(args)?;
    for name in &args.init {
        init_bare(&args.root, name)?;
    }
    std::fs::create_dir_all(&args.root).map_err(|source| GitHttpError::CreateRoot {
        path: args.root.clone(),
        source,
    })?;
    let io = |step| move |source| GitHttpError::Io { step, source };
    // Handlers first, so a signal sent right after the ready line is not missed.
    let mut term = signal(SignalKind::terminate()).map_err(io("installing signal handlers"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(io("installing signal handlers"))?;
    let server = GitHttpServer::start(
        args.root.clone(),
        args.listen,
        HttpServerOptions {
            basic: args.basic,
            bearer: args.token,
            ..HttpServerOptions::default()
        },
    )?;
    writeln!(out, "ready {}", server.base_url())
        .and_then(|()| out.flush())
        .map_err(io("writing the ready line"))?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    // Joining the server thread blocks; keep it off the async workers.
    let _ = tokio::task::spawn_blocking(move || drop(server)).await;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn parses_every_option() {
        let parsed = ServeArgs::parse(args(
            "--root /r --listen 127.0.0.1:8080 --username u --password p --token t --init a b --init c",
        ))
        .unwrap();
        assert_eq!(
            parsed,
            ServeArgs {
                root: PathBuf::from("/r"),
                listen: "127.0.0.1:8080".parse().unwrap(),
                basic: Some(("u".into(), "p".into())),
                token: Some("t".into()),
                init: vec!["a".into(), "b".into(), "c".into()],
            }
        );
    }

    #[test]
    fn defaults_to_anonymous_on_a_free_loopback_port() {
        assert_eq!(
            ServeArgs::parse(args("--root r")).unwrap(),
            ServeArgs {
                root: PathBuf::from("r"),
                listen: "127.0.0.1:0".parse().unwrap(),
                basic: None,
                token: None,
                init: vec![],
            }
        );
    }

    #[test]
    fn refuses_bad_command_lines() {
        let cases = [
            ("", "--root is required"),
            (
                "--root r --username u",
                "--username and --password go together",
            ),
            (
                "--root r --init",
                "--init needs at least one repository name",
            ),
            ("--root r --init ../x", "bad repository name \"../x\""),
            ("--root r --listen nowhere", "--listen must be ip:port"),
            ("--root r --verbose", "unknown argument \"--verbose\""),
            ("--root", "--root needs a value"),
        ];
        for (line, message) in cases {
            let err = ServeArgs::parse(args(line)).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("{message}\nusage: {CLI_USAGE}"),
                "{line:?}"
            );
        }
    }

    #[test]
    fn authorises_by_the_configured_schemes_only() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let both = HttpServerOptions {
            basic: Some(("u".into(), "p".into())),
            bearer: Some("t".into()),
            ..HttpServerOptions::default()
        };
        let cases: [(&HttpServerOptions, &str, Option<String>, Option<&str>); 6] = [
            (&both, "basic", Some(b64("u:p")), Some("u")),
            (&both, "basic", Some(b64("u:wrong")), None),
            (&both, "bearer", Some("t".into()), Some("token-user")),
            (&both, "bearer", Some("x".into()), None),
            (&both, "none", None, None),
            (
                &HttpServerOptions::default(),
                "none",
                None,
                Some("anonymous"),
            ),
        ];
        for (opts, scheme, credential, want) in cases {
            assert_eq!(
                authorised_user(opts, scheme, credential.clone()).as_deref(),
                want,
                "{scheme} {credential:?}"
            );
        }
    }
}
