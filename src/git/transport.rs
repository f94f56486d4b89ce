//! The connection side of an operation: validated URL and credentials, libgit2 callbacks
//! (credentials, certificate and host-key checks, progress with cancellation, push statuses),
//! the reachability check, and the mapping of libgit2 failures to redacted [`Error`]s.

use std::cell::{Cell, RefCell};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;

use git2::{
    AutotagOption, CertificateCheckStatus, Cred, CredentialType, ErrorClass, ErrorCode,
    FetchOptions, PushOptions, RemoteCallbacks,
};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier as _;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tracing::{debug, trace};

use super::auth::{Auth, HttpCredentials};
use super::endpoint::{Endpoint, Scheme};
use super::known_hosts::{self, KnownHosts, Verdict};
use super::redact::Redactor;
use super::{Error, Options};

/// The step an error happened in, for [`Session::map_error`].
#[derive(Clone, Copy, Debug)]
pub(crate) enum Step {
    Clone,
    Fetch,
    Push,
}

/// What the callbacks observed during one libgit2 call.
#[derive(Default)]
pub(crate) struct CallState {
    auth_attempts: Cell<u32>,
    auth_failure: RefCell<Option<String>>,
    host_key: RefCell<Option<String>>,
    certificate: RefCell<Option<String>>,
    pub(crate) rejected: RefCell<Vec<String>>,
}

/// Trusted CA certificates and the verifier built from them.
struct CustomCa {
    verifier: Arc<WebPkiServerVerifier>,
    certs: Vec<CertificateDer<'static>>,
}

/// Everything needed to talk to one remote branch. Holds secrets: no `Debug` beyond the URL.
pub(crate) struct Session {
    pub(crate) endpoint: Endpoint,
    pub(crate) branch: String,
    pub(crate) options: Options,
    pub(crate) redactor: Redactor,
    auth: Auth,
    known_hosts: KnownHosts,
    ca: Option<CustomCa>,
    headers: Vec<String>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("url", &self.endpoint.url)
            .field("branch", &self.branch)
            .finish_non_exhaustive()
    }
}

impl Session {
    pub(crate) fn new(
        url: &str,
        branch: &str,
        auth: &Auth,
        options: &Options,
    ) -> Result<Self, Error> {
        let endpoint = Endpoint::parse(url)?;
        if !git2::Reference::is_valid_name(&format!("refs/heads/{branch}")) || branch.is_empty() {
            return Err(Error::BranchName(branch.to_owned()));
        }
        let mut known_hosts = KnownHosts::default();
        let mut ca = None;
        let mut headers = Vec::new();
        match (endpoint.scheme, auth) {
            (Scheme::Ssh, Auth::Ssh(ssh)) => {
                known_hosts = KnownHosts::parse(&ssh.known_hosts)?;
                if ssh.private_key.is_empty() {
                    return Err(Error::Config("the SSH private key is empty".to_owned()));
                }
            }
            (Scheme::Ssh, _) => {
                return Err(Error::Config(
                    "an ssh:// URL needs SSH settings (private key and known_hosts)".to_owned(),
                ));
            }
            (_, Auth::Ssh(_)) => {
                return Err(Error::Config(
                    "SSH settings were given for an http(s):// URL; use an ssh:// URL or HTTP \
                     settings"
                        .to_owned(),
                ));
            }
            (scheme, Auth::Http(http)) => {
                if scheme == Scheme::Http && !http.allow_insecure_http {
                    return Err(Error::Config(
                        "http:// URLs send credentials unencrypted; use https:// or allow \
                         insecure HTTP explicitly"
                            .to_owned(),
                    ));
                }
                if let HttpCredentials::Bearer { token } = &http.credentials {
                    if token.is_empty()
                        || token.expose().chars().any(|c| c.is_control() || c == ' ')
                    {
                        return Err(Error::Config(
                            "the bearer token is empty or contains spaces or control characters"
                                .to_owned(),
                        ));
                    }
                    headers.push(format!("Authorization: Bearer {}", token.expose()));
                }
                if let Some(pem) = &http.certificate_authority {
                    ca = Some(custom_ca(pem)?);
                }
            }
            (Scheme::Http, Auth::None) => {
                return Err(Error::Config(
                    "http:// URLs need HTTP settings with insecure HTTP allowed".to_owned(),
                ));
            }
            (Scheme::Https, Auth::None) => {}
        }
        Ok(Self {
            endpoint,
            branch: branch.to_owned(),
            options: options.clone(),
            redactor: auth.redactor(),
            auth: auth.clone(),
            known_hosts,
            ca,
            headers,
        })
    }

    /// The URL for messages. [`Endpoint::parse`] rejected passwords in it, so the user name
    /// (if any) is kept.
    pub(crate) fn url(&self) -> String {
        self.redactor.redact_secrets(&self.endpoint.url)
    }

    fn cancelled(&self) -> bool {
        self.options.interrupted().is_some()
    }

    pub(crate) fn check_cancel(&self) -> Result<(), Error> {
        match self.options.interrupted() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Fails fast with [`Error::Connect`] when no TCP connection to the server can be opened.
    pub(crate) fn preflight(&self) -> Result<(), Error> {
        let Some(timeout) = self.options.connect_timeout else {
            return Ok(());
        };
        let authority = self.endpoint.authority();
        let fail = |message: String| Error::Connect {
            url: self.url(),
            authority: authority.clone(),
            message,
        };
        let addrs: Vec<_> = (self.endpoint.host.as_str(), self.endpoint.effective_port())
            .to_socket_addrs()
            .map_err(|e| fail(format!("cannot resolve the host name: {e}")))?
            .collect();
        let mut last = String::from("the host name resolved to no address");
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, timeout) {
                Ok(_) => return Ok(()),
                Err(e) => last = format!("{addr}: {e}"),
            }
        }
        debug!(url = %self.url(), error = %last, "git server unreachable");
        Err(fail(last))
    }

    fn callbacks<'a>(&'a self, state: &'a CallState) -> RemoteCallbacks<'a> {
        let mut cb = RemoteCallbacks::new();
        cb.credentials(move |_url, user_from_url, allowed| {
            self.credentials(state, user_from_url, allowed)
        });
        cb.certificate_check(move |cert, host| self.certificate_check(state, cert, host));
        cb.transfer_progress(move |p| {
            trace!(
                received = p.received_objects(),
                total = p.total_objects(),
                bytes = p.received_bytes(),
                "git transfer progress"
            );
            !self.cancelled()
        });
        cb.sideband_progress(move |msg| {
            trace!(remote = %self.redactor.redact(&String::from_utf8_lossy(msg)), "git remote message");
            !self.cancelled()
        });
        cb.push_update_reference(move |refname, status| {
            if let Some(status) = status {
                state
                    .rejected
                    .borrow_mut()
                    .push(self.redactor.redact(&format!("{refname}: {status}")));
            }
            Ok(())
        });
        cb
    }

    pub(crate) fn fetch_options<'a>(&'a self, state: &'a CallState) -> FetchOptions<'a> {
        let mut fo = FetchOptions::new();
        fo.remote_callbacks(self.callbacks(state));
        fo.depth(1);
        fo.download_tags(AutotagOption::None);
        let headers: Vec<&str> = self.headers.iter().map(String::as_str).collect();
        fo.custom_headers(&headers);
        fo
    }

    pub(crate) fn push_options<'a>(&'a self, state: &'a CallState) -> PushOptions<'a> {
        let mut po = PushOptions::new();
        po.remote_callbacks(self.callbacks(state));
        let headers: Vec<&str> = self.headers.iter().map(String::as_str).collect();
        po.custom_headers(&headers);
        po
    }

    fn credentials(
        &self,
        state: &CallState,
        user_from_url: Option<&str>,
        allowed: CredentialType,
    ) -> Result<Cred, git2::Error> {
        let refuse = |message: &str| {
            *state.auth_failure.borrow_mut() = Some(message.to_owned());
            Err(git2::Error::from_str(message))
        };
        if self.cancelled() {
            return Err(git2::Error::from_str("cancelled"));
        }
        match &self.auth {
            Auth::Ssh(ssh) => {
                let user = ssh
                    .username
                    .as_deref()
                    .or(user_from_url)
                    .or(self.endpoint.user.as_deref())
                    .unwrap_or("git");
                if allowed.contains(CredentialType::USERNAME) {
                    return Cred::username(user);
                }
                if !allowed.intersects(CredentialType::SSH_MEMORY | CredentialType::SSH_KEY) {
                    return refuse("the SSH server does not accept public-key authentication");
                }
                let attempt = state.auth_attempts.get() + 1;
                state.auth_attempts.set(attempt);
                if attempt > 1 {
                    return refuse(&format!(
                        "the SSH server rejected the private key for user {user:?} (is the \
                         matching public key authorised, with write access?)"
                    ));
                }
                Cred::ssh_key_from_memory(
                    user,
                    None,
                    ssh.private_key.expose(),
                    ssh.passphrase.as_ref().map(|p| p.expose()),
                )
                .or_else(|e| {
                    refuse(&format!(
                        "the SSH private key cannot be used (wrong passphrase or unsupported \
                         format): {}",
                        self.redactor.redact(e.message())
                    ))
                })
            }
            Auth::Http(http) => match &http.credentials {
                HttpCredentials::Basic { username, password } => {
                    let attempt = state.auth_attempts.get() + 1;
                    state.auth_attempts.set(attempt);
                    if attempt > 1 || !allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
                        return refuse(&format!(
                            "the server rejected the user name and password for user {username:?}"
                        ));
                    }
                    Cred::userpass_plaintext(username, password.expose())
                }
                HttpCredentials::Bearer { .. } => refuse("the server rejected the bearer token"),
                HttpCredentials::None => {
                    refuse("the server requires authentication and no credentials are configured")
                }
            },
            Auth::None => {
                refuse("the server requires authentication and no credentials are configured")
            }
        }
    }

    fn certificate_check(
        &self,
        state: &CallState,
        cert: &git2::cert::Cert<'_>,
        host: &str,
    ) -> Result<CertificateCheckStatus, git2::Error> {
        if let Some(hostkey) = cert.as_hostkey() {
            let name = self.endpoint.known_hosts_name();
            let Some(blob) = hostkey.hostkey() else {
                return self.reject_host_key(
                    state,
                    "the SSH transport did not expose the raw host key".to_owned(),
                );
            };
            let offered = format!(
                "the server offered {} key {}",
                known_hosts::key_type(blob),
                known_hosts::fingerprint(blob)
            );
            let howto = format!(
                "If that fingerprint is the server's (check it out of band, e.g. `ssh-keyscan{} {} \
                 | ssh-keygen -lf -`), add this line to known_hosts: {}",
                match self.endpoint.effective_port() {
                    22 => String::new(),
                    p => format!(" -p {p}"),
                },
                self.endpoint.host,
                known_hosts::line_for(&name, blob)
            );
            return match self.known_hosts.check(&name, blob) {
                Verdict::Trusted => {
                    debug!(host = %name, "SSH host key trusted");
                    Ok(CertificateCheckStatus::CertificateOk)
                }
                Verdict::Revoked => self.reject_host_key(
                    state,
                    format!("{offered}, which known_hosts marks @revoked"),
                ),
                Verdict::Mismatch(types) => self.reject_host_key(
                    state,
                    format!(
                        "{offered}, but known_hosts lists different key(s) for this host ({}). \
                         The key changed or someone is intercepting the connection. {howto}",
                        types.join(", ")
                    ),
                ),
                Verdict::Unknown => self.reject_host_key(
                    state,
                    format!("{offered}, and known_hosts has no entry for {name}. {howto}"),
                ),
            };
        }
        let (Some(x509), Some(ca)) = (cert.as_x509(), &self.ca) else {
            return Ok(CertificateCheckStatus::CertificatePassthrough);
        };
        let leaf = CertificateDer::from(x509.data().to_vec());
        let verdict = ServerName::try_from(host.to_owned())
            .map_err(|e| format!("invalid server name: {e}"))
            .and_then(|name| {
                ca.verifier
                    .verify_server_cert(&leaf, &ca.certs, &name, &[], UnixTime::now())
                    .map_err(|e| format!("the certificate does not chain to the configured certificate authority: {e}"))
            });
        match verdict {
            Ok(_) => {
                debug!(host, "TLS certificate verified against the configured CA");
                Ok(CertificateCheckStatus::CertificateOk)
            }
            Err(message) => {
                *state.certificate.borrow_mut() = Some(message.clone());
                Err(git2::Error::from_str(&message))
            }
        }
    }

    fn reject_host_key(
        &self,
        state: &CallState,
        message: String,
    ) -> Result<CertificateCheckStatus, git2::Error> {
        debug!(host = %self.endpoint.known_hosts_name(), "SSH host key rejected");
        *state.host_key.borrow_mut() = Some(message);
        Err(git2::Error::from_str("host key verification failed"))
    }

    /// Maps a libgit2 failure to the [`Error`] of `step`, preferring what the callbacks saw.
    pub(crate) fn map_error(&self, state: &CallState, err: &git2::Error, step: Step) -> Error {
        let message = self.redactor.redact(err.message());
        debug!(url = %self.url(), ?step, error = %message, code = ?err.code(), class = ?err.class(), "git operation failed");
        if let Some(interrupted) = self.options.interrupted() {
            return interrupted;
        }
        if let Some(message) = state.host_key.borrow_mut().take() {
            return Error::HostKey {
                host: self.endpoint.known_hosts_name(),
                message,
            };
        }
        if let Some(message) = state.certificate.borrow_mut().take() {
            return Error::Certificate {
                host: self.endpoint.host.clone(),
                message,
            };
        }
        if let Some(message) = state.auth_failure.borrow_mut().take() {
            return Error::Auth {
                url: self.url(),
                message,
            };
        }
        let lower = message.to_ascii_lowercase();
        if matches!(self.auth, Auth::Ssh(_)) && lower.contains("private key") {
            return Error::Auth {
                url: self.url(),
                message: format!(
                    "the SSH private key cannot be used: wrong passphrase, or a key format \
                     libssh2 does not support ({message})"
                ),
            };
        }
        if err.code() == ErrorCode::Auth
            || (err.class() == ErrorClass::Ssh && lower.contains("authenticat"))
        {
            return Error::Auth {
                url: self.url(),
                message,
            };
        }
        if lower.contains("status code: 403") {
            return Error::Auth {
                url: self.url(),
                message: format!(
                    "the server refused access (HTTP 403 Forbidden); the credentials lack the \
                     permission needed ({})",
                    match step {
                        Step::Push => "write access, to push",
                        Step::Clone | Step::Fetch => "read access",
                    }
                ),
            };
        }
        if err.code() == ErrorCode::Certificate
            || (err.class() == ErrorClass::Ssl && lower.contains("certificate"))
        {
            return Error::Certificate {
                host: self.endpoint.host.clone(),
                message: format!(
                    "{message}; if the server's certificate is signed by a private certificate \
                     authority, configure that CA certificate"
                ),
            };
        }
        let url = self.url();
        let branch = self.branch.clone();
        match step {
            Step::Clone => Error::Clone {
                url,
                branch,
                message,
            },
            Step::Fetch => Error::Fetch {
                url,
                branch,
                message,
            },
            Step::Push => Error::Push {
                url,
                branch,
                message,
            },
        }
    }
}

fn custom_ca(pem: &str) -> Result<CustomCa, Error> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Config(format!("the certificate authority is not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(Error::Config(
            "the certificate authority contains no PEM CERTIFICATE block".to_owned(),
        ));
    }
    let mut roots = rustls::RootCertStore::empty();
    for cert in &certs {
        roots
            .add(cert.clone())
            .map_err(|e| Error::Config(format!("the certificate authority cannot be used: {e}")))?;
    }
    let verifier = WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .map_err(|e| Error::Config(format!("the certificate authority cannot be used: {e}")))?;
    Ok(CustomCa { verifier, certs })
}
