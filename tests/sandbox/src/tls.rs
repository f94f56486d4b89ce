//! Socket mode: HTTPS on a loopback port with a generated CA (rcgen), a server certificate for
//! `127.0.0.1`/`localhost`, a client certificate and a bearer token; requests without either get
//! `401 Unauthorized`. Also writes kubeconfigs for the served endpoint.
//!
//! rustls is used with the `ring` provider only (kube's default), never the process default, so
//! no `aws-lc-rs` provider can clash. Depends on `http` for the connection-reset marker.

use crate::http::ResetConnection;
use axum::Router;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt as _;

/// Errors starting the TLS server.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Generating certificates failed.
    #[error("generating certificates: {0}")]
    Certificates(#[from] rcgen::Error),
    /// Building the rustls configuration failed.
    #[error("configuring TLS: {0}")]
    Config(#[from] rustls::Error),
    /// Building the client verifier failed.
    #[error("configuring client certificate verification: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// Binding the listener failed.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

struct Pki {
    ca_pem: String,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: PrivateKeyDer<'static>,
    ca_der: CertificateDer<'static>,
    client_cert_pem: String,
    client_key_pem: String,
}

fn pki() -> Result<Pki, rcgen::Error> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "kube-sandbox-ca");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let mut sp = CertificateParams::new(vec![
        "localhost".to_string(),
        "kubernetes.default.svc".to_string(),
    ])?;
    sp.subject_alt_names
        .push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
    sp.distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    sp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let skey = KeyPair::generate()?;
    let scert = sp.signed_by(&skey, &issuer)?;

    let mut cp = CertificateParams::new(Vec::<String>::new())?;
    cp.distinguished_name
        .push(DnType::CommonName, "kube-sandbox-admin");
    cp.distinguished_name
        .push(DnType::OrganizationName, "system:masters");
    cp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let ckey = KeyPair::generate()?;
    let ccert = cp.signed_by(&ckey, &issuer)?;

    Ok(Pki {
        ca_pem: ca_cert.pem(),
        ca_der: ca_cert.der().clone(),
        server_chain: vec![scert.der().clone()],
        server_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(skey.serialize_der())),
        client_cert_pem: ccert.pem(),
        client_key_pem: ckey.serialize_pem(),
    })
}

/// A running HTTPS endpoint of a sandbox. Dropping it stops the server, like [`Served::shutdown`]
/// without waiting.
#[derive(Debug)]
pub struct Served {
    /// `https://127.0.0.1:<port>`.
    pub url: String,
    /// The bound address.
    pub addr: SocketAddr,
    /// PEM of the CA that signed the server and client certificates.
    pub ca_pem: String,
    /// A bearer token the server accepts.
    pub token: String,
    /// PEM of a client certificate the server accepts.
    pub client_cert_pem: String,
    /// PEM (PKCS#8) of that certificate's key.
    pub client_key_pem: String,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// How the user of a generated kubeconfig authenticates.
#[derive(Debug, Clone, PartialEq)]
pub enum Credentials {
    /// `token:` inline.
    Token,
    /// `client-certificate-data` / `client-key-data` inline.
    ClientCertificate,
    /// `tokenFile:` pointing at a file that holds the token (the caller writes it).
    TokenFile(std::path::PathBuf),
    /// An `exec` plugin (`client.authentication.k8s.io/v1`) run as `command args...`; it must
    /// print an `ExecCredential` with `status.token` set to [`Served::token`].
    Exec {
        /// Program.
        command: String,
        /// Arguments.
        args: Vec<String>,
    },
    /// No credentials at all (requests get 401).
    None,
}

/// Variants of the generated kubeconfig.
#[derive(Debug, Clone, PartialEq)]
pub struct KubeconfigOptions {
    /// User credentials.
    pub credentials: Credentials,
    /// Omit the CA and set `insecure-skip-tls-verify: true`.
    pub insecure_skip_tls_verify: bool,
    /// `tls-server-name` (the server certificate covers `localhost` and
    /// `kubernetes.default.svc`).
    pub tls_server_name: Option<String>,
    /// Replace the server URL (default [`Served::url`]).
    pub server: Option<String>,
    /// Namespace of the context.
    pub namespace: String,
}

impl Default for KubeconfigOptions {
    fn default() -> Self {
        KubeconfigOptions {
            credentials: Credentials::Token,
            insecure_skip_tls_verify: false,
            tls_server_name: None,
            server: None,
            namespace: "default".into(),
        }
    }
}

impl Served {
    /// A kubeconfig (YAML) for this endpoint with the given variant; context and cluster are
    /// named `kube-sandbox`, the user `kube-sandbox-admin`.
    pub fn kubeconfig(&self, o: &KubeconfigOptions) -> String {
        let mut cluster = format!("    server: {}\n", o.server.as_deref().unwrap_or(&self.url));
        if o.insecure_skip_tls_verify {
            cluster.push_str("    insecure-skip-tls-verify: true\n");
        } else {
            cluster.push_str(&format!(
                "    certificate-authority-data: {}\n",
                b64(&self.ca_pem)
            ));
        }
        if let Some(n) = &o.tls_server_name {
            cluster.push_str(&format!("    tls-server-name: {n}\n"));
        }
        let user = match &o.credentials {
            Credentials::Token => format!("    token: {}\n", self.token),
            Credentials::ClientCertificate => format!(
                "    client-certificate-data: {}\n    client-key-data: {}\n",
                b64(&self.client_cert_pem),
                b64(&self.client_key_pem)
            ),
            Credentials::TokenFile(p) => format!("    tokenFile: {}\n", p.display()),
            Credentials::Exec { command, args } => {
                let mut e = format!(
                    "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: {command}\n      interactiveMode: Never\n"
                );
                if !args.is_empty() {
                    e.push_str("      args:\n");
                    for a in args {
                        e.push_str(&format!("      - {a:?}\n"));
                    }
                }
                e
            }
            Credentials::None => "    {}\n".to_string(),
        };
        let user = if o.credentials == Credentials::None {
            "  user: {}\n".to_string()
        } else {
            format!("  user:\n{user}")
        };
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kube-sandbox\n  cluster:\n{cluster}contexts:\n- name: kube-sandbox\n  context:\n    cluster: kube-sandbox\n    user: kube-sandbox-admin\n    namespace: {}\ncurrent-context: kube-sandbox\npreferences: {{}}\nusers:\n- name: kube-sandbox-admin\n{user}",
            o.namespace
        )
    }

    /// A kubeconfig (YAML) with the CA and the bearer token, context `kube-sandbox`.
    pub fn kubeconfig_yaml(&self) -> String {
        self.kubeconfig(&KubeconfigOptions::default())
    }

    /// A kubeconfig (YAML) with the CA and the client certificate instead of a token.
    pub fn kubeconfig_yaml_client_cert(&self) -> String {
        self.kubeconfig(&KubeconfigOptions {
            credentials: Credentials::ClientCertificate,
            ..Default::default()
        })
    }

    /// Writes [`Served::kubeconfig_yaml`] to `path`.
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig_yaml())
    }

    /// Stops accepting connections, drops open ones and waits for the server task.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

fn unauthorized() -> Response {
    let body = serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "Unauthorized", "reason": "Unauthorized", "code": 401});
    let mut r = (StatusCode::UNAUTHORIZED, body.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// Serves `router` over HTTPS on `listen` (use port 0 for an ephemeral port).
pub async fn serve(router: Router, listen: SocketAddr) -> Result<Served, TlsError> {
    let pki = pki()?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca_der.clone())?;
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .allow_unauthenticated()
    .build()?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(pki.server_chain.clone(), pki.server_key.clone_key())?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| TlsError::Bind {
            addr: listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| TlsError::Bind {
        addr: listen,
        source,
    })?;
    let token = uuid::Uuid::new_v4().simple().to_string();
    let (stop, mut stopped) = watch::channel(false);
    let tok = token.clone();
    let task = tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                _ = stopped.changed() => break,
                acc = listener.accept() => {
                    let Ok((tcp, _)) = acc else { continue };
                    let _ = tcp.set_nodelay(true);
                    let acceptor = acceptor.clone();
                    let router = router.clone();
                    let token = tok.clone();
                    conns.spawn(async move {
                        let Ok(tls) = acceptor.accept(tcp).await else { return };
                        let cert_auth = tls.get_ref().1.peer_certificates().is_some_and(|c| !c.is_empty());
                        let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                            let router = router.clone();
                            let token = token.clone();
                            async move {
                                let bearer = req
                                    .headers()
                                    .get(header::AUTHORIZATION)
                                    .and_then(|v| v.to_str().ok())
                                    .and_then(|v| v.strip_prefix("Bearer "))
                                    .is_some_and(|t| t.trim() == token);
                                if !(cert_auth || bearer) {
                                    return Ok::<Response, std::io::Error>(unauthorized());
                                }
                                let resp = match router.oneshot(req.map(axum::body::Body::new)).await {
                                    Ok(r) => r,
                                    Err(never) => match never {},
                                };
                                if resp.extensions().get::<ResetConnection>().is_some() {
                                    return Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "fault injection"));
                                }
                                Ok(resp)
                            }
                        });
                        let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tls), svc).await;
                    });
                }
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
        conns.abort_all();
    });
    Ok(Served {
        url: format!("https://{addr}"),
        addr,
        ca_pem: pki.ca_pem,
        token,
        client_cert_pem: pki.client_cert_pem,
        client_key_pem: pki.client_key_pem,
        stop,
        task,
    })
}
