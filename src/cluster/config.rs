//! Building a kube-rs client from connection settings: kubeconfig files and contexts, inline
//! host/token/certificates, exec credential plugins, or the in-cluster service account, with the
//! usual environment fallbacks (`KUBE_CONFIG_PATH`, `KUBE_CONFIG_PATHS`, `KUBECONFIG`,
//! `~/.kube/config`, in-cluster). [`check`] finds malformed or contradictory settings without
//! connecting; [`LazyClient`] builds the client on first use. Errors name the setting to fix.
//!
//! Knows nothing of Terraform; depends on no other module of this crate.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use kube::config::{
    AuthInfo, Cluster, Context, ExecConfig, KubeConfigOptions, Kubeconfig, KubeconfigError,
    NamedAuthInfo, NamedCluster, NamedContext,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::OnceCell;

/// The exec API version used when `exec.api_version` is not set.
pub const DEFAULT_EXEC_API_VERSION: &str = "client.authentication.k8s.io/v1";

/// How to reach the cluster. Every field is optional; unset fields fall back to kubeconfig
/// files found through the environment, then to the in-cluster service account.
#[derive(Clone, Default, PartialEq)]
pub struct Settings {
    /// One kubeconfig file (`~` expands to the home directory).
    pub config_path: Option<String>,
    /// Several kubeconfig files, merged in order (the first to set a value wins).
    pub config_paths: Vec<String>,
    /// The context to use instead of the file's `current-context`.
    pub config_context: Option<String>,
    /// The API server URL (`https://host:port`; a bare `host:port` means https).
    pub host: Option<String>,
    /// A bearer token. Secret.
    pub token: Option<String>,
    /// PEM client certificate.
    pub client_certificate: Option<String>,
    /// PEM client key. Secret.
    pub client_key: Option<String>,
    /// PEM certificate authority bundle for the API server.
    pub cluster_ca_certificate: Option<String>,
    /// Skip TLS verification of the API server.
    pub insecure: Option<bool>,
    /// The server name to verify the API server's certificate against.
    pub tls_server_name: Option<String>,
    /// Proxy for API requests (`http://`, `https://` or `socks5://`).
    pub proxy_url: Option<String>,
    /// An exec credential plugin.
    pub exec: Option<ExecSettings>,
}

impl fmt::Debug for Settings {
    /// Secrets are shown as `<redacted>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("Settings")
            .field("config_path", &self.config_path)
            .field("config_paths", &self.config_paths)
            .field("config_context", &self.config_context)
            .field("host", &self.host)
            .field("token", &redact(&self.token))
            .field(
                "client_certificate",
                &self.client_certificate.as_ref().map(|_| "<pem>"),
            )
            .field("client_key", &redact(&self.client_key))
            .field(
                "cluster_ca_certificate",
                &self.cluster_ca_certificate.as_ref().map(|_| "<pem>"),
            )
            .field("insecure", &self.insecure)
            .field("tls_server_name", &self.tls_server_name)
            .field(
                "proxy_url",
                &self.proxy_url.as_ref().map(|u| redact_userinfo(u)),
            )
            .field("exec", &self.exec)
            .finish()
    }
}

/// An exec credential plugin (kubeconfig `users[].user.exec`).
#[derive(Clone, Default, PartialEq)]
pub struct ExecSettings {
    /// `client.authentication.k8s.io/v1` unless set.
    pub api_version: Option<String>,
    /// The command to run (required).
    pub command: Option<String>,
    /// Its arguments.
    pub args: Vec<String>,
    /// Extra environment variables.
    pub env: BTreeMap<String, String>,
}

impl fmt::Debug for ExecSettings {
    /// Environment values may hold secrets: only their names are shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecSettings")
            .field("api_version", &self.api_version)
            .field("command", &self.command)
            .field("args", &self.args)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The environment the fallbacks read (injectable for tests).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Environment {
    /// `KUBE_CONFIG_PATH`.
    pub kube_config_path: Option<String>,
    /// `KUBE_CONFIG_PATHS` (OS path-list separated).
    pub kube_config_paths: Option<String>,
    /// `KUBECONFIG` (OS path-list separated).
    pub kubeconfig: Option<String>,
    /// The home directory (for `~` and `~/.kube/config`).
    pub home: Option<PathBuf>,
    /// Whether `KUBERNETES_SERVICE_HOST` is set (running in a pod).
    pub in_cluster: bool,
}

impl Environment {
    /// The current process environment.
    pub fn from_process() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Self {
            kube_config_path: var("KUBE_CONFIG_PATH"),
            kube_config_paths: var("KUBE_CONFIG_PATHS"),
            kubeconfig: var("KUBECONFIG"),
            home: var("HOME").map(PathBuf::from),
            in_cluster: var("KUBERNETES_SERVICE_HOST").is_some(),
        }
    }

    fn expand(&self, path: &str) -> PathBuf {
        match (path.strip_prefix("~/"), &self.home) {
            (Some(rest), Some(home)) => home.join(rest),
            _ if path == "~" => self.home.clone().unwrap_or_else(|| PathBuf::from(path)),
            _ => PathBuf::from(path),
        }
    }
}

/// Where the connection comes from, once the fallbacks are resolved.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// Kubeconfig files, merged in order; `setting` says which setting or variable named them.
    Files {
        /// The files.
        paths: Vec<PathBuf>,
        /// `config_path`, `config_paths`, `KUBE_CONFIG_PATH`, `KUBE_CONFIG_PATHS`, `KUBECONFIG` or
        /// `~/.kube/config`.
        setting: &'static str,
    },
    /// Only the inline settings (`host` and credentials).
    Inline,
    /// The in-cluster service account.
    InCluster,
}

/// What is wrong with the connection settings, or what failed while building the client.
/// [`Error::setting`] names the setting to fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `config_path` and `config_paths` are both set.
    #[error("config_path and config_paths are both set; set only one of them")]
    ConflictingPaths,
    /// A kubeconfig file could not be read or parsed.
    #[error("cannot read the kubeconfig file {path} (from {setting}): {source}")]
    ReadKubeconfig {
        /// The setting or variable that named the file.
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: KubeconfigError,
    },
    /// The requested context is not in the kubeconfig.
    #[error(
        "context {context:?} is not in the kubeconfig ({files}); available contexts: {available}"
    )]
    ContextNotFound {
        /// The requested context.
        context: String,
        /// The files searched, comma separated.
        files: String,
        /// The contexts that exist, comma separated.
        available: String,
    },
    /// The kubeconfig has no current context and none was chosen.
    #[error(
        "the kubeconfig ({files}) has no current-context; set config_context to one of: {available}"
    )]
    NoCurrentContext {
        /// The files searched.
        files: String,
        /// The contexts that exist.
        available: String,
    },
    /// `config_context` without any kubeconfig file to look it up in.
    #[error(
        "config_context is set but no kubeconfig file is configured; set config_path (or \
         KUBE_CONFIG_PATH/KUBECONFIG), or remove config_context"
    )]
    ContextWithoutFile,
    /// A PEM setting does not hold a valid PEM block of the expected kind.
    #[error("{setting} is not a valid PEM {expected} ({reason})")]
    InvalidPem {
        /// The setting.
        setting: &'static str,
        /// What kind of block was expected.
        expected: &'static str,
        /// Why it did not parse (never the content).
        reason: String,
    },
    /// A client certificate without key, or a key without certificate.
    #[error("{present} is set without {missing}; client certificate authentication needs both")]
    IncompleteClientCertificate {
        /// The setting that is set.
        present: &'static str,
        /// The setting that is missing.
        missing: &'static str,
    },
    /// `insecure` together with a CA certificate.
    #[error(
        "insecure = true disables the verification that cluster_ca_certificate configures; \
         set only one of them"
    )]
    InsecureWithCa,
    /// `exec` without `command`.
    #[error(
        "exec needs a command (the credential plugin to run, e.g. \"aws\" or \"gke-gcloud-auth-plugin\")"
    )]
    ExecWithoutCommand,
    /// `exec.api_version` is not a client.authentication.k8s.io version.
    #[error(
        "exec api_version {0:?} is not supported; use client.authentication.k8s.io/v1 or v1beta1"
    )]
    InvalidExecApiVersion(String),
    /// `tls_server_name` is not a DNS name or IP address.
    #[error(
        "tls_server_name {0:?} is not a DNS name or IP address; use the name in the API server's \
         certificate, e.g. \"kubernetes.default.svc\""
    )]
    InvalidTlsServerName(String),
    /// `host` is not a valid URL.
    #[error("host {host:?} is not a valid API server URL ({reason}); use https://<host>:<port>")]
    InvalidHost {
        /// The value given.
        host: String,
        /// Why.
        reason: String,
    },
    /// `proxy_url` is not a valid proxy URL.
    #[error(
        "proxy_url {url:?} is not a valid proxy URL ({reason}); use http://, https:// or socks5://"
    )]
    InvalidProxyUrl {
        /// The value given, with any credentials redacted.
        url: String,
        /// Why.
        reason: String,
    },
    /// Nothing says where the cluster is.
    #[error(
        "no Kubernetes connection is configured: set kubernetes.config_path or kubernetes.host, \
         or the KUBE_CONFIG_PATH or KUBECONFIG environment variable, or create ~/.kube/config"
    )]
    NoConfiguration,
    /// The in-cluster service account could not be loaded.
    #[error("cannot load the in-cluster service account configuration: {0}")]
    InCluster(#[source] kube::config::InClusterError),
    /// kube-rs rejected the resolved kubeconfig.
    #[error("cannot use the kubeconfig: {0}")]
    Kubeconfig(#[source] KubeconfigError),
    /// kube-rs could not build the client from the configuration.
    #[error("cannot build the Kubernetes client: {0}")]
    BuildClient(#[source] kube::Error),
}

impl Error {
    /// The setting to fix (`config_path`, `exec.command`, ...), when one is to blame.
    pub fn setting(&self) -> Option<&'static str> {
        match self {
            Error::ConflictingPaths => Some("config_paths"),
            Error::ReadKubeconfig { setting, .. } => match *setting {
                "config_path" | "config_paths" => Some(setting),
                _ => None,
            },
            Error::ContextNotFound { .. }
            | Error::NoCurrentContext { .. }
            | Error::ContextWithoutFile => Some("config_context"),
            Error::InvalidPem { setting, .. } => Some(setting),
            Error::IncompleteClientCertificate { missing, .. } => Some(missing),
            Error::InsecureWithCa => Some("insecure"),
            Error::ExecWithoutCommand => Some("exec.command"),
            Error::InvalidExecApiVersion(_) => Some("exec.api_version"),
            Error::InvalidHost { .. } => Some("host"),
            Error::InvalidTlsServerName(_) => Some("tls_server_name"),
            Error::InvalidProxyUrl { .. } => Some("proxy_url"),
            Error::NoConfiguration
            | Error::InCluster(_)
            | Error::Kubeconfig(_)
            | Error::BuildClient(_) => None,
        }
    }
}

fn redact_userinfo(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}://<redacted>@{}", &url[..scheme_end], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

fn split_paths(list: &str) -> Vec<PathBuf> {
    std::env::split_paths(list)
        .filter(|p| !p.as_os_str().is_empty())
        .collect()
}

/// Resolves where the connection comes from: explicit files, inline `host` (without files),
/// then `KUBE_CONFIG_PATH`, `KUBE_CONFIG_PATHS`, `KUBECONFIG` (existing files only),
/// `~/.kube/config`, in-cluster. Touches the file system only to test file existence.
///
/// # Errors
///
/// [`Error::ConflictingPaths`] or [`Error::NoConfiguration`].
pub fn resolve_source(settings: &Settings, env: &Environment) -> Result<Source, Error> {
    match (&settings.config_path, settings.config_paths.is_empty()) {
        (Some(_), false) => return Err(Error::ConflictingPaths),
        (Some(path), true) => {
            return Ok(Source::Files {
                paths: vec![env.expand(path)],
                setting: "config_path",
            });
        }
        (None, false) => {
            return Ok(Source::Files {
                paths: settings
                    .config_paths
                    .iter()
                    .map(|p| env.expand(p))
                    .collect(),
                setting: "config_paths",
            });
        }
        (None, true) => {}
    }
    if settings.host.is_some() {
        return Ok(Source::Inline);
    }
    if let Some(path) = &env.kube_config_path {
        return Ok(Source::Files {
            paths: vec![env.expand(path)],
            setting: "KUBE_CONFIG_PATH",
        });
    }
    if let Some(list) = &env.kube_config_paths {
        return Ok(Source::Files {
            paths: split_paths(list)
                .iter()
                .map(|p| env.expand(&p.to_string_lossy()))
                .collect(),
            setting: "KUBE_CONFIG_PATHS",
        });
    }
    if let Some(list) = &env.kubeconfig {
        let existing: Vec<PathBuf> = split_paths(list)
            .into_iter()
            .filter(|p| p.exists())
            .collect();
        if !existing.is_empty() {
            return Ok(Source::Files {
                paths: existing,
                setting: "KUBECONFIG",
            });
        }
    }
    if let Some(home) = &env.home {
        let default = home.join(".kube").join("config");
        if default.exists() {
            return Ok(Source::Files {
                paths: vec![default],
                setting: "~/.kube/config",
            });
        }
    }
    if env.in_cluster {
        return Ok(Source::InCluster);
    }
    Err(Error::NoConfiguration)
}

/// Why a PEM did not parse, in words that never include the content.
fn pem_reason(error: &rustls::pki_types::pem::Error, expected_marker: &str) -> String {
    use rustls::pki_types::pem::Error as Pem;
    match error {
        Pem::MissingSectionEnd { .. } => "a section has no END line".to_string(),
        Pem::IllegalSectionStart { .. } => "a BEGIN line is malformed".to_string(),
        Pem::Base64Decode(_) => "the content between BEGIN and END is not valid base64".to_string(),
        Pem::NoItemsFound => format!("no \"BEGIN {expected_marker}\" block found"),
        Pem::SectionTooLarge => "a section is too large".to_string(),
        _ => "it cannot be read".to_string(),
    }
}

fn check_certificates(setting: &'static str, pem: &str) -> Result<(), Error> {
    let invalid = |reason: String| Error::InvalidPem {
        setting,
        expected: "certificate",
        reason,
    };
    let mut count = 0;
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        cert.map_err(|e| invalid(pem_reason(&e, "CERTIFICATE")))?;
        count += 1;
    }
    if count == 0 {
        return Err(invalid("no \"BEGIN CERTIFICATE\" block found".into()));
    }
    Ok(())
}

fn check_private_key(pem: &str) -> Result<(), Error> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map(|_| ())
        .map_err(|e| Error::InvalidPem {
            setting: "client_key",
            expected: "private key",
            reason: pem_reason(&e, "... PRIVATE KEY"),
        })
}

fn normalise_host(host: &str) -> Result<String, Error> {
    let invalid = |reason: &str| Error::InvalidHost {
        host: host.to_string(),
        reason: reason.to_string(),
    };
    let with_scheme = if host.contains("://") {
        host.to_string()
    } else {
        format!("https://{host}")
    };
    let uri: http::Uri = with_scheme
        .parse()
        .map_err(|e: http::uri::InvalidUri| invalid(&e.to_string()))?;
    match uri.scheme_str() {
        Some("https" | "http") => {}
        _ => return Err(invalid("the scheme must be https or http")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid("no host name"));
    }
    Ok(with_scheme)
}

fn check_proxy(url: &str) -> Result<(), Error> {
    let invalid = |reason: &str| Error::InvalidProxyUrl {
        url: redact_userinfo(url),
        reason: reason.to_string(),
    };
    let uri: http::Uri = url
        .parse()
        .map_err(|_| invalid("it does not parse as a URL"))?;
    match uri.scheme_str() {
        Some("http" | "https" | "socks5") => {}
        Some(_) => return Err(invalid("unsupported scheme")),
        None => return Err(invalid("no scheme")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid("no host name"));
    }
    Ok(())
}

/// Checks the settings without connecting (kubeconfig files are read): returns every problem
/// found, each naming its setting. [`check_inline`] followed by [`check_source`].
pub fn check(settings: &Settings, env: &Environment) -> Vec<Error> {
    let mut problems = check_inline(settings);
    problems.extend(check_source(settings, env));
    problems
}

/// Checks the settings that need no file: host, PEM blocks, client certificate pairs, TLS,
/// proxy and exec. Usable when the file-related settings are not known yet.
pub fn check_inline(settings: &Settings) -> Vec<Error> {
    let mut problems = Vec::new();
    if let Some(host) = &settings.host
        && let Err(e) = normalise_host(host)
    {
        problems.push(e);
    }
    if let Some(pem) = &settings.cluster_ca_certificate
        && let Err(e) = check_certificates("cluster_ca_certificate", pem)
    {
        problems.push(e);
    }
    if let Some(pem) = &settings.client_certificate
        && let Err(e) = check_certificates("client_certificate", pem)
    {
        problems.push(e);
    }
    if let Some(pem) = &settings.client_key
        && let Err(e) = check_private_key(pem)
    {
        problems.push(e);
    }
    match (&settings.client_certificate, &settings.client_key) {
        (Some(_), None) => problems.push(Error::IncompleteClientCertificate {
            present: "client_certificate",
            missing: "client_key",
        }),
        (None, Some(_)) => problems.push(Error::IncompleteClientCertificate {
            present: "client_key",
            missing: "client_certificate",
        }),
        _ => {}
    }
    if settings.insecure == Some(true) && settings.cluster_ca_certificate.is_some() {
        problems.push(Error::InsecureWithCa);
    }
    if let Some(name) = &settings.tls_server_name
        && rustls::pki_types::ServerName::try_from(name.as_str()).is_err()
    {
        problems.push(Error::InvalidTlsServerName(name.clone()));
    }
    if let Some(url) = &settings.proxy_url
        && let Err(e) = check_proxy(url)
    {
        problems.push(e);
    }
    if let Some(exec) = &settings.exec {
        if exec.command.as_deref().is_none_or(|c| c.trim().is_empty()) {
            problems.push(Error::ExecWithoutCommand);
        }
        if let Some(version) = &exec.api_version
            && !matches!(
                version.as_str(),
                "client.authentication.k8s.io/v1" | "client.authentication.k8s.io/v1beta1"
            )
        {
            problems.push(Error::InvalidExecApiVersion(version.clone()));
        }
    }
    problems
}

/// Checks where the connection comes from: conflicting path settings, unreadable kubeconfig
/// files, and a context that is not in them (or has no file to be looked up in).
pub fn check_source(settings: &Settings, env: &Environment) -> Vec<Error> {
    let mut problems = Vec::new();
    match resolve_source(settings, env) {
        Ok(Source::Files { paths, setting }) => {
            if let Err(e) = load_files(&paths, setting)
                .and_then(|kubeconfig| select_context(&kubeconfig, settings, &paths).map(drop))
            {
                problems.push(e);
            }
        }
        Ok(Source::Inline | Source::InCluster) | Err(Error::NoConfiguration) => {
            if settings.config_context.is_some() {
                problems.push(Error::ContextWithoutFile);
            }
        }
        Err(e) => problems.push(e),
    }
    problems
}

/// Refuses a file that starts with a UTF-16 byte-order mark but holds an odd number of bytes
/// after it (a truncated or corrupted file): kube's reader indexes past the end of such a file
/// and panics, which would crash the provider instead of naming the file.
fn truncated_utf16(path: &Path) -> Result<(), KubeconfigError> {
    // A file that cannot be read is left to kube's reader, which names the I/O error.
    let Ok(bytes) = std::fs::read(path) else {
        return Ok(());
    };
    match bytes.as_slice() {
        [0xFF, 0xFE, rest @ ..] | [0xFE, 0xFF, rest @ ..] if rest.len() % 2 == 1 => {
            Err(KubeconfigError::ReadConfig(
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "the file starts with a UTF-16 byte-order mark but has an odd number of \
                     bytes (truncated or not UTF-16)",
                ),
                path.to_path_buf(),
            ))
        }
        _ => Ok(()),
    }
}

fn load_files(paths: &[PathBuf], setting: &'static str) -> Result<Kubeconfig, Error> {
    let mut merged: Option<Kubeconfig> = None;
    for path in paths {
        let read = |p: &Path| {
            truncated_utf16(p)
                .and_then(|()| Kubeconfig::read_from(p))
                .map_err(|source| Error::ReadKubeconfig {
                    setting,
                    path: p.to_path_buf(),
                    source,
                })
        };
        let next = read(path)?;
        merged = Some(match merged {
            None => next,
            Some(current) => current
                .merge(next)
                .map_err(|source| Error::ReadKubeconfig {
                    setting,
                    path: path.clone(),
                    source,
                })?,
        });
    }
    Ok(merged.unwrap_or_default())
}

fn list(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

/// The context to use: `config_context`, else the file's current context.
fn select_context(
    kubeconfig: &Kubeconfig,
    settings: &Settings,
    paths: &[PathBuf],
) -> Result<String, Error> {
    let files = || list(paths.iter().map(|p| p.display().to_string()));
    let available = || list(kubeconfig.contexts.iter().map(|c| c.name.clone()));
    let name = match (&settings.config_context, &kubeconfig.current_context) {
        (Some(name), _) => name.clone(),
        (None, Some(current)) if !current.is_empty() => current.clone(),
        (None, _) => {
            return Err(Error::NoCurrentContext {
                files: files(),
                available: available(),
            });
        }
    };
    if kubeconfig.contexts.iter().any(|c| c.name == name) {
        Ok(name)
    } else {
        Err(Error::ContextNotFound {
            context: name,
            files: files(),
            available: available(),
        })
    }
}

fn base64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
}

/// Applies the inline settings on top of the selected context's cluster and user.
fn overlay(cluster: &mut Cluster, user: &mut AuthInfo, settings: &Settings) -> Result<(), Error> {
    if let Some(host) = &settings.host {
        cluster.server = Some(normalise_host(host)?);
    }
    if let Some(ca) = &settings.cluster_ca_certificate {
        cluster.certificate_authority = None;
        cluster.certificate_authority_data = Some(base64(ca));
    }
    if let Some(insecure) = settings.insecure {
        cluster.insecure_skip_tls_verify = Some(insecure);
    }
    if let Some(name) = &settings.tls_server_name {
        cluster.tls_server_name = Some(name.clone());
    }
    if let Some(proxy) = &settings.proxy_url {
        cluster.proxy_url = Some(proxy.clone());
    }
    if let Some(token) = &settings.token {
        user.token = Some(token.clone().into());
        user.token_file = None;
    }
    if let Some(cert) = &settings.client_certificate {
        user.client_certificate = None;
        user.client_certificate_data = Some(base64(cert));
    }
    if let Some(key) = &settings.client_key {
        user.client_key = None;
        user.client_key_data = Some(base64(key).into());
    }
    if let Some(exec) = &settings.exec {
        let command = exec
            .command
            .clone()
            .filter(|c| !c.trim().is_empty())
            .ok_or(Error::ExecWithoutCommand)?;
        let env: Vec<serde_json::Value> = exec
            .env
            .iter()
            .map(|(name, value)| serde_json::json!({ "name": name, "value": value }))
            .collect();
        let config: ExecConfig = serde_json::from_value(serde_json::json!({
            "apiVersion": exec.api_version.clone().unwrap_or_else(|| DEFAULT_EXEC_API_VERSION.to_string()),
            "command": command,
            "args": exec.args,
            "env": env,
            "interactiveMode": "Never",
        }))
        .map_err(|_| Error::ExecWithoutCommand)?;
        user.exec = Some(config);
    }
    Ok(())
}

/// The kubeconfig the client is built from, and the context to use in it.
fn resolve_kubeconfig(settings: &Settings, source: &Source) -> Result<(Kubeconfig, String), Error> {
    let (mut kubeconfig, context) = match source {
        Source::Files { paths, setting } => {
            let kubeconfig = load_files(paths, setting)?;
            let context = select_context(&kubeconfig, settings, paths)?;
            (kubeconfig, context)
        }
        Source::Inline | Source::InCluster => {
            if settings.config_context.is_some() {
                return Err(Error::ContextWithoutFile);
            }
            let name = "terraform".to_string();
            let kubeconfig = Kubeconfig {
                clusters: vec![NamedCluster {
                    name: name.clone(),
                    cluster: Some(Cluster::default()),
                    ..NamedCluster::default()
                }],
                auth_infos: vec![NamedAuthInfo {
                    name: name.clone(),
                    auth_info: Some(AuthInfo::default()),
                    ..NamedAuthInfo::default()
                }],
                contexts: vec![NamedContext {
                    name: name.clone(),
                    context: Some(Context {
                        cluster: name.clone(),
                        user: Some(name.clone()),
                        ..Context::default()
                    }),
                    ..NamedContext::default()
                }],
                current_context: Some(name.clone()),
                ..Kubeconfig::default()
            };
            (kubeconfig, name)
        }
    };
    let (cluster_name, user_name) = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == context)
        .and_then(|c| c.context.as_ref())
        .map(|c| (c.cluster.clone(), c.user.clone()))
        .unwrap_or_default();
    let mut user_name = user_name.unwrap_or_default();
    if user_name.is_empty() {
        // A context without a user: give it one so inline credentials have a place.
        user_name = format!("{context}-terraform-user");
        if let Some(ctx) = kubeconfig
            .contexts
            .iter_mut()
            .find(|c| c.name == context)
            .and_then(|c| c.context.as_mut())
        {
            ctx.user = Some(user_name.clone());
        }
    }
    if !kubeconfig.auth_infos.iter().any(|a| a.name == user_name) {
        kubeconfig.auth_infos.push(NamedAuthInfo {
            name: user_name.clone(),
            auth_info: Some(AuthInfo::default()),
            ..NamedAuthInfo::default()
        });
    }
    let mut fallback_cluster = Cluster::default();
    let cluster = kubeconfig
        .clusters
        .iter_mut()
        .find(|c| c.name == cluster_name)
        .map(|c| c.cluster.get_or_insert_with(Cluster::default));
    let mut fallback_user = AuthInfo::default();
    // Borrow the cluster and the user separately (different vectors).
    let cluster = cluster.unwrap_or(&mut fallback_cluster);
    let user = kubeconfig
        .auth_infos
        .iter_mut()
        .find(|a| a.name == user_name)
        .map(|a| a.auth_info.get_or_insert_with(AuthInfo::default))
        .unwrap_or(&mut fallback_user);
    overlay(cluster, user, settings)?;
    Ok((kubeconfig, context))
}

/// Builds the kube-rs configuration (reads files and, for in-cluster, the service account;
/// never connects).
///
/// # Errors
///
/// Any [`Error`]; most name the setting to fix.
pub async fn build_config(settings: &Settings, env: &Environment) -> Result<kube::Config, Error> {
    if let Some(problem) = check(settings, env).into_iter().next() {
        return Err(problem);
    }
    let source = resolve_source(settings, env)?;
    if source == Source::InCluster {
        let mut config = kube::Config::incluster().map_err(Error::InCluster)?;
        with_user_agent(&mut config);
        if let Some(proxy) = &settings.proxy_url {
            config.proxy_url = proxy.parse().ok();
        }
        return Ok(config);
    }
    let (kubeconfig, context) = resolve_kubeconfig(settings, &source)?;
    let options = KubeConfigOptions {
        context: Some(context),
        ..KubeConfigOptions::default()
    };
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(Error::Kubeconfig)?;
    with_user_agent(&mut config);
    Ok(config)
}

/// `User-Agent: terraform-provider-flux/<version>` on every request, so that API server audit
/// logs (and test servers) can tell this provider's requests from others'.
fn with_user_agent(config: &mut kube::Config) {
    let agent = concat!("terraform-provider-flux/", env!("CARGO_PKG_VERSION"));
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_static(agent),
    ));
}

/// The `User-Agent` of every API request: makes the provider's requests attributable in the
/// API server's audit log.
pub const USER_AGENT: &str = concat!("terraform-provider-flux/", env!("CARGO_PKG_VERSION"));

/// A kube-rs client built on first use from [`Settings`], then shared.
pub struct LazyClient {
    settings: Settings,
    env: Environment,
    client: OnceCell<kube::Client>,
}

impl fmt::Debug for LazyClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LazyClient")
            .field("settings", &self.settings)
            .field("built", &self.client.initialized())
            .finish()
    }
}

impl LazyClient {
    /// A client to be built from `settings` and `env` when first needed.
    pub fn new(settings: Settings, env: Environment) -> Self {
        Self {
            settings,
            env,
            client: OnceCell::new(),
        }
    }

    /// The settings the client is built from.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The client, built on the first call. A failed build is retried on the next call.
    ///
    /// # Errors
    ///
    /// Any [`Error`]; [`Error::setting`] names the setting to fix.
    pub async fn client(&self) -> Result<kube::Client, Error> {
        self.client
            .get_or_try_init(|| async {
                let mut config = build_config(&self.settings, &self.env).await?;
                config.headers.push((
                    http::header::USER_AGENT,
                    http::HeaderValue::from_static(USER_AGENT),
                ));
                kube::Client::try_from(config).map_err(Error::BuildClient)
            })
            .await
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    struct Pems {
        cert: String,
        key: String,
    }

    fn pems() -> Pems {
        let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        Pems {
            cert: generated.cert.pem(),
            key: generated.signing_key.serialize_pem(),
        }
    }

    const KUBECONFIG: &str = r#"apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: dev-cluster
  cluster:
    server: https://dev.example.com:6443
- name: prod-cluster
  cluster:
    server: https://prod.example.com:6443
users:
- name: dev-user
  user:
    token: dev-token
- name: prod-user
  user:
    token: prod-token
contexts:
- name: dev
  context:
    cluster: dev-cluster
    user: dev-user
    namespace: apps
- name: prod
  context:
    cluster: prod-cluster
    user: prod-user
"#;

    fn write_kubeconfig(dir: &Path, name: &str, content: &str) -> String {
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        path.display().to_string()
    }

    fn messages(errors: Vec<Error>) -> Vec<(Option<&'static str>, String)> {
        errors
            .into_iter()
            .map(|e| (e.setting(), e.to_string()))
            .collect()
    }

    #[test]
    fn source_resolution_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = write_kubeconfig(dir.path(), "config", KUBECONFIG);
        let home = dir.path().join("home");
        std::fs::create_dir_all(home.join(".kube")).unwrap();
        std::fs::write(home.join(".kube/config"), KUBECONFIG).unwrap();
        let empty_home = dir.path().join("empty");
        struct Case {
            name: &'static str,
            settings: Settings,
            env: Environment,
            want: Result<Source, String>,
        }
        let cases = vec![
            Case {
                name: "explicit config_path wins over everything, ~ expanded",
                settings: Settings {
                    config_path: Some("~/x".into()),
                    host: Some("https://h".into()),
                    ..Settings::default()
                },
                env: Environment {
                    kube_config_path: Some(file.clone()),
                    home: Some(home.clone()),
                    ..Environment::default()
                },
                want: Ok(Source::Files {
                    paths: vec![home.join("x")],
                    setting: "config_path",
                }),
            },
            Case {
                name: "config_path and config_paths conflict",
                settings: Settings {
                    config_path: Some(file.clone()),
                    config_paths: vec![file.clone()],
                    ..Settings::default()
                },
                env: Environment::default(),
                want: Err("config_path and config_paths are both set; set only one of them".into()),
            },
            Case {
                name: "inline host without files ignores the environment",
                settings: Settings {
                    host: Some("https://h".into()),
                    ..Settings::default()
                },
                env: Environment {
                    kubeconfig: Some(file.clone()),
                    ..Environment::default()
                },
                want: Ok(Source::Inline),
            },
            Case {
                name: "KUBE_CONFIG_PATH before KUBECONFIG",
                settings: Settings::default(),
                env: Environment {
                    kube_config_path: Some(file.clone()),
                    kubeconfig: Some("/nope".into()),
                    ..Environment::default()
                },
                want: Ok(Source::Files {
                    paths: vec![PathBuf::from(&file)],
                    setting: "KUBE_CONFIG_PATH",
                }),
            },
            Case {
                name: "KUBE_CONFIG_PATHS is a path list",
                settings: Settings::default(),
                env: Environment {
                    kube_config_paths: Some(format!("{file}:/other")),
                    ..Environment::default()
                },
                want: Ok(Source::Files {
                    paths: vec![PathBuf::from(&file), PathBuf::from("/other")],
                    setting: "KUBE_CONFIG_PATHS",
                }),
            },
            Case {
                name: "KUBECONFIG keeps existing files only",
                settings: Settings::default(),
                env: Environment {
                    kubeconfig: Some(format!("/missing:{file}")),
                    ..Environment::default()
                },
                want: Ok(Source::Files {
                    paths: vec![PathBuf::from(&file)],
                    setting: "KUBECONFIG",
                }),
            },
            Case {
                name: "~/.kube/config when KUBECONFIG names nothing that exists",
                settings: Settings::default(),
                env: Environment {
                    kubeconfig: Some("/missing".into()),
                    home: Some(home.clone()),
                    in_cluster: true,
                    ..Environment::default()
                },
                want: Ok(Source::Files {
                    paths: vec![home.join(".kube/config")],
                    setting: "~/.kube/config",
                }),
            },
            Case {
                name: "in-cluster last",
                settings: Settings::default(),
                env: Environment {
                    home: Some(empty_home.clone()),
                    in_cluster: true,
                    ..Environment::default()
                },
                want: Ok(Source::InCluster),
            },
            Case {
                name: "nothing at all",
                settings: Settings::default(),
                env: Environment {
                    home: Some(empty_home.clone()),
                    ..Environment::default()
                },
                want: Err(Error::NoConfiguration.to_string()),
            },
        ];
        for case in cases {
            let got = resolve_source(&case.settings, &case.env).map_err(|e| e.to_string());
            assert_eq!(got, case.want, "{}", case.name);
        }
    }

    #[test]
    fn check_reports_malformed_and_contradictory_settings() {
        let dir = tempfile::tempdir().unwrap();
        let file = write_kubeconfig(dir.path(), "config", KUBECONFIG);
        let missing = dir.path().join("missing").display().to_string();
        let utf16 = dir.path().join("utf16").display().to_string();
        std::fs::write(&utf16, [0xfe, 0xff, 0xff, 0xff, 0x71]).unwrap();
        let pems = pems();
        let env = Environment::default();
        struct Case {
            name: &'static str,
            settings: Settings,
            want: Vec<(Option<&'static str>, String)>,
        }
        let cases = vec![
            Case {
                name: "valid file and context",
                settings: Settings {
                    config_path: Some(file.clone()),
                    config_context: Some("prod".into()),
                    ..Settings::default()
                },
                want: vec![],
            },
            Case {
                name: "valid inline settings",
                settings: Settings {
                    host: Some("https://127.0.0.1:6443".into()),
                    client_certificate: Some(pems.cert.clone()),
                    client_key: Some(pems.key.clone()),
                    cluster_ca_certificate: Some(pems.cert.clone()),
                    proxy_url: Some("http://proxy:3128".into()),
                    ..Settings::default()
                },
                want: vec![],
            },
            Case {
                name: "unreadable config_path",
                settings: Settings {
                    config_path: Some(missing.clone()),
                    ..Settings::default()
                },
                want: vec![(
                    Some("config_path"),
                    format!(
                        "cannot read the kubeconfig file {missing} (from config_path): failed to \
                         read kubeconfig from '\"{missing}\"': No such file or directory (os \
                         error 2)"
                    ),
                )],
            },
            Case {
                // Found by the kubeconfig fuzz target: kube's reader panicked on it.
                name: "truncated UTF-16 config_path",
                settings: Settings {
                    config_path: Some(utf16.clone()),
                    ..Settings::default()
                },
                want: vec![(
                    Some("config_path"),
                    format!(
                        "cannot read the kubeconfig file {utf16} (from config_path): failed to \
                         read kubeconfig from '\"{utf16}\"': the file starts with a UTF-16 \
                         byte-order mark but has an odd number of bytes (truncated or not UTF-16)"
                    ),
                )],
            },
            Case {
                name: "context not in the file",
                settings: Settings {
                    config_path: Some(file.clone()),
                    config_context: Some("staging".into()),
                    ..Settings::default()
                },
                want: vec![(
                    Some("config_context"),
                    format!(
                        "context \"staging\" is not in the kubeconfig ({file}); available \
                         contexts: dev, prod"
                    ),
                )],
            },
            Case {
                name: "context without any file",
                settings: Settings {
                    host: Some("https://h".into()),
                    config_context: Some("dev".into()),
                    ..Settings::default()
                },
                want: vec![(
                    Some("config_context"),
                    Error::ContextWithoutFile.to_string(),
                )],
            },
            Case {
                name: "PEM that does not parse, never echoed",
                settings: Settings {
                    host: Some("https://h".into()),
                    client_certificate: Some("not a certificate".into()),
                    client_key: Some("super-secret-key".into()),
                    cluster_ca_certificate: Some(
                        "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n".into(),
                    ),
                    ..Settings::default()
                },
                want: vec![
                    (
                        Some("cluster_ca_certificate"),
                        "cluster_ca_certificate is not a valid PEM certificate (the content \
                         between BEGIN and END is not valid base64)"
                            .into(),
                    ),
                    (
                        Some("client_certificate"),
                        "client_certificate is not a valid PEM certificate (no \"BEGIN \
                         CERTIFICATE\" block found)"
                            .into(),
                    ),
                    (
                        Some("client_key"),
                        "client_key is not a valid PEM private key (no \"BEGIN ... PRIVATE \
                         KEY\" block found)"
                            .into(),
                    ),
                ],
            },
            Case {
                name: "certificate without key, insecure with CA",
                settings: Settings {
                    host: Some("https://h".into()),
                    client_certificate: Some(pems.cert.clone()),
                    cluster_ca_certificate: Some(pems.cert.clone()),
                    insecure: Some(true),
                    ..Settings::default()
                },
                want: vec![
                    (
                        Some("client_key"),
                        "client_certificate is set without client_key; client certificate \
                         authentication needs both"
                            .into(),
                    ),
                    (Some("insecure"), Error::InsecureWithCa.to_string()),
                ],
            },
            Case {
                name: "exec without command, bad api version, bad host and proxy",
                settings: Settings {
                    host: Some("ftp://h".into()),
                    proxy_url: Some("gopher://user:pw@proxy".into()),
                    exec: Some(ExecSettings {
                        api_version: Some("v2".into()),
                        ..ExecSettings::default()
                    }),
                    ..Settings::default()
                },
                want: vec![
                    (
                        Some("host"),
                        "host \"ftp://h\" is not a valid API server URL (the scheme must be \
                         https or http); use https://<host>:<port>"
                            .into(),
                    ),
                    (
                        Some("proxy_url"),
                        "proxy_url \"gopher://<redacted>@proxy\" is not a valid proxy URL \
                         (unsupported scheme); use http://, https:// or socks5://"
                            .into(),
                    ),
                    (Some("exec.command"), Error::ExecWithoutCommand.to_string()),
                    (
                        Some("exec.api_version"),
                        "exec api_version \"v2\" is not supported; use \
                         client.authentication.k8s.io/v1 or v1beta1"
                            .into(),
                    ),
                ],
            },
        ];
        for case in cases {
            let got = messages(check(&case.settings, &env));
            for (_, message) in &got {
                assert!(
                    !message.contains("super-secret-key"),
                    "{}: secret echoed",
                    case.name
                );
            }
            assert_eq!(got, case.want, "{}", case.name);
        }
    }

    #[tokio::test]
    async fn build_from_file_context_with_inline_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let file = write_kubeconfig(dir.path(), "config", KUBECONFIG);
        let env = Environment::default();
        let current = build_config(
            &Settings {
                config_path: Some(file.clone()),
                ..Settings::default()
            },
            &env,
        )
        .await
        .unwrap();
        assert_eq!(
            current.cluster_url.to_string(),
            "https://dev.example.com:6443/"
        );
        assert_eq!(current.default_namespace, "apps");
        let pems = pems();
        let overridden = build_config(
            &Settings {
                config_path: Some(file),
                config_context: Some("prod".into()),
                host: Some("prod-lb.example.com:443".into()),
                cluster_ca_certificate: Some(pems.cert.clone()),
                tls_server_name: Some("kubernetes".into()),
                ..Settings::default()
            },
            &env,
        )
        .await
        .unwrap();
        assert_eq!(
            overridden.cluster_url.to_string(),
            "https://prod-lb.example.com:443/"
        );
        assert_eq!(overridden.default_namespace, "default");
        assert_eq!(overridden.tls_server_name.as_deref(), Some("kubernetes"));
        assert_eq!(overridden.root_cert.as_ref().map(Vec::len), Some(1));
        // The prod user's token from the file is kept.
        assert!(format!("{:?}", overridden.auth_info.token).contains("Secret"));
    }

    #[tokio::test]
    async fn build_inline_with_exec_plugin() {
        let config = build_config(
            &Settings {
                host: Some("https://10.0.0.1:6443".into()),
                insecure: Some(true),
                exec: Some(ExecSettings {
                    api_version: None,
                    command: Some("aws".into()),
                    args: vec!["eks".into(), "get-token".into()],
                    env: BTreeMap::from([("AWS_PROFILE".into(), "ops".into())]),
                }),
                ..Settings::default()
            },
            &Environment::default(),
        )
        .await
        .unwrap();
        assert_eq!(config.cluster_url.to_string(), "https://10.0.0.1:6443/");
        assert!(config.accept_invalid_certs);
        let exec = config.auth_info.exec.unwrap();
        assert_eq!(exec.api_version.as_deref(), Some(DEFAULT_EXEC_API_VERSION));
        assert_eq!(exec.command.as_deref(), Some("aws"));
        assert_eq!(
            exec.args,
            Some(vec!["eks".to_string(), "get-token".to_string()])
        );
        assert_eq!(
            exec.env,
            Some(vec![std::collections::HashMap::from([
                ("name".to_string(), "AWS_PROFILE".to_string()),
                ("value".to_string(), "ops".to_string()),
            ])])
        );
    }

    #[tokio::test]
    async fn lazy_client_reports_the_setting_on_first_use() {
        let lazy = LazyClient::new(
            Settings {
                config_path: Some("/definitely/missing".into()),
                ..Settings::default()
            },
            Environment::default(),
        );
        let Err(error) = lazy.client().await else {
            panic!("a missing kubeconfig must fail");
        };
        assert_eq!(error.setting(), Some("config_path"));
        let lazy = LazyClient::new(
            Settings {
                host: Some("https://127.0.0.1:1".into()),
                token: Some("t".into()),
                ..Settings::default()
            },
            Environment::default(),
        );
        // Building never connects: a port nobody listens on still yields a client.
        lazy.client().await.unwrap();
        // Every documented proxy scheme is usable (kube's proxy features are enabled).
        for proxy in [
            "http://127.0.0.1:1",
            "https://127.0.0.1:1",
            "socks5://127.0.0.1:1",
        ] {
            let lazy = LazyClient::new(
                Settings {
                    host: Some("https://127.0.0.1:1".into()),
                    proxy_url: Some(proxy.into()),
                    ..Settings::default()
                },
                Environment::default(),
            );
            if let Err(e) = lazy.client().await {
                panic!("{proxy}: {e}");
            }
        }
    }

    #[test]
    fn debug_redacts_secrets() {
        let settings = Settings {
            token: Some("tok-123".into()),
            client_key: Some("key-456".into()),
            proxy_url: Some("http://u:pw-789@proxy".into()),
            exec: Some(ExecSettings {
                env: BTreeMap::from([("SECRET".into(), "env-000".into())]),
                ..ExecSettings::default()
            }),
            ..Settings::default()
        };
        let debug = format!("{settings:?}");
        for secret in ["tok-123", "key-456", "pw-789", "env-000"] {
            assert!(!debug.contains(secret), "{secret} leaked in {debug}");
        }
        assert!(debug.contains("<redacted>"));
    }
}
