//! The provider: its configuration schema (`kubernetes` and `git`, DESIGN.md §3.1), validation
//! of that configuration, Configure (which never connects and tolerates unknown values), the
//! provider data handed to resources, and the list of resources and data sources.
//!
//! May use `framework`, `cluster`, `git` and `resources`; nothing but `main.rs` uses it.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

use crate::cluster::config::{self as kubeconfig, Environment, ExecSettings, LazyClient, Settings};
use crate::cluster::objects::Cluster;
use crate::framework::diagnostics::Diagnostics;
use crate::framework::model::Value;
use crate::framework::path::AttrPath;
use crate::framework::resource::{Context, DynDataSource, DynResource, Provider};
use crate::framework::schema::{Attribute, Nesting, Schema};
use crate::framework::server::Server;
use crate::framework::service::ProviderService;
use crate::git::Secret;
use crate::resources::common::ClusterAccess;
use crate::resources::flux_instance::FluxInstanceResource;

/// The provider as a [`ProviderService`], ready to be served by the protocol layer.
pub fn service() -> Arc<dyn ProviderService> {
    Arc::new(Server::new(FluxProvider))
}

/// The `flux` provider.
#[derive(Clone, Copy, Debug, Default)]
pub struct FluxProvider;

// ---------------------------------------------------------------------------------------------
// Schema
// ---------------------------------------------------------------------------------------------

fn kubernetes_attribute() -> Attribute {
    Attribute::nested(
        "kubernetes",
        Nesting::Single,
        vec![
            Attribute::string("config_path").description(
                "Path to a kubeconfig file. `~` expands to the home directory. When neither \
                 `config_path`, `config_paths` nor `host` is set, the provider falls back to \
                 the `KUBE_CONFIG_PATH` environment variable, then `KUBE_CONFIG_PATHS`, then \
                 `KUBECONFIG`, then `~/.kube/config`, then the in-cluster service account. \
                 Conflicts with `config_paths`.",
            ),
            Attribute::string_list("config_paths").description(
                "Paths to kubeconfig files, merged in order (the first file to set a value \
                 wins, as with `KUBECONFIG`). Conflicts with `config_path`.",
            ),
            Attribute::string("config_context").description(
                "The kubeconfig context to use. Defaults to the file's `current-context`. Must \
                 name a context in the kubeconfig file(s).",
            ),
            Attribute::string("host").description(
                "The Kubernetes API server URL, e.g. `https://127.0.0.1:6443` (a bare \
                 `host:port` means HTTPS). With a kubeconfig file, overrides the server of the \
                 selected context; without one, the connection is built from the inline \
                 settings only and no environment fallback is read.",
            ),
            Attribute::string("token").sensitive().description(
                "A bearer token for the API server. Overrides the kubeconfig user's credentials.",
            ),
            Attribute::string("client_certificate").description(
                "PEM-encoded client certificate for TLS client authentication. Requires \
                 `client_key`.",
            ),
            Attribute::string("client_key")
                .sensitive()
                .description("PEM-encoded private key of `client_certificate`."),
            Attribute::string("cluster_ca_certificate").description(
                "PEM-encoded certificate authority bundle that signs the API server's \
                 certificate. Conflicts with `insecure = true`.",
            ),
            Attribute::bool("insecure").description(
                "Skip verification of the API server's TLS certificate. Defaults to `false`. \
                 Insecure: use only for throwaway test clusters.",
            ),
            Attribute::string("tls_server_name").description(
                "The server name to check the API server's certificate against, when it \
                 differs from the host name in `host`.",
            ),
            Attribute::string("proxy_url").description(
                "URL of a proxy for API server requests: `http://`, `https://` or \
                 `socks5://`.",
            ),
            Attribute::nested(
                "exec",
                Nesting::Single,
                vec![
                    Attribute::string("api_version").description(
                        "The `client.authentication.k8s.io` API version the plugin speaks. \
                         Defaults to `client.authentication.k8s.io/v1`.",
                    ),
                    Attribute::string("command").description(
                        "The credential plugin to run, e.g. `aws` or `gke-gcloud-auth-plugin`. \
                         Required when `exec` is set.",
                    ),
                    Attribute::string_list("args").description("Arguments passed to the command."),
                    Attribute::string_map("env").description(
                        "Extra environment variables for the command (values are not logged).",
                    ),
                ],
            )
            .description(
                "An exec credential plugin that prints a token for the API server (as \
                 `kubectl` runs `users[].user.exec`). Overrides the kubeconfig user's \
                 credentials.",
            ),
        ],
    )
    .description(
        "How to reach the Kubernetes cluster. All settings are optional; see `config_path` for \
         the environment fallbacks. The provider never connects while it is configured: \
         connection problems are reported by the first operation that needs the cluster, \
         naming the setting to fix. The values may be unknown until apply (e.g. when the \
         cluster is created in the same run); plans then proceed without reading the \
         cluster.",
    )
}

fn git_attribute() -> Attribute {
    Attribute::nested(
        "git",
        Nesting::Single,
        vec![
            Attribute::nested(
                "http",
                Nesting::Single,
                vec![
                    Attribute::string("username")
                        .description("User name for HTTP basic authentication (with `password`)."),
                    Attribute::string("password").sensitive().description(
                        "Password or personal access token for HTTP basic authentication.",
                    ),
                    Attribute::string("bearer_token").sensitive().description(
                        "Token sent as `Authorization: Bearer <token>`. Conflicts with \
                         `username` and `password`.",
                    ),
                    Attribute::string("certificate_authority").description(
                        "PEM-encoded certificate authority that signs the Git server's \
                         certificate, for servers with a private CA.",
                    ),
                    Attribute::bool("allow_insecure_http").description(
                        "Allow plain `http://` repository URLs. Defaults to `false`. \
                         Credentials then travel unencrypted.",
                    ),
                ],
            )
            .description(
                "Credentials and TLS settings for `http(s)://` repositories. Conflicts with `ssh`.",
            ),
            Attribute::nested(
                "ssh",
                Nesting::Single,
                vec![
                    Attribute::string("username").description(
                        "The SSH user. Defaults to the user in the repository URL, else `git`.",
                    ),
                    Attribute::string("private_key").sensitive().description(
                        "The private key, PEM or OpenSSH format. Required when `ssh` is set.",
                    ),
                    Attribute::string("password")
                        .sensitive()
                        .description("The passphrase of `private_key`, if it is encrypted."),
                    Attribute::string("known_hosts").description(
                        "Host keys to trust, in `known_hosts` format. The server's key must \
                         match one of them.",
                    ),
                ],
            )
            .description("Credentials for `ssh://` repositories. Conflicts with `http`."),
            Attribute::nested(
                "github_app",
                Nesting::Single,
                vec![
                    Attribute::string("app_id").description(
                        "The GitHub App's ID (a number). Required when `github_app` is set.",
                    ),
                    Attribute::string("installation_id").description(
                        "The ID of the app's installation on the repository's owner (a number). \
                         Exactly one of `installation_id` and `installation_owner`.",
                    ),
                    Attribute::string("installation_owner").description(
                        "The organisation or user the app is installed for, when the \
                         installation ID is not known: it is looked up through the API.",
                    ),
                    Attribute::string("private_key").sensitive().description(
                        "The app's private key, PEM (as GitHub issues it). Never stored in \
                         state; not shown in logs.",
                    ),
                    Attribute::string("base_url").description(
                        "The GitHub API base URL. Default `https://api.github.com`; for GitHub \
                         Enterprise Server `https://<host>/api/v3` (with a private CA in \
                         `git.http.certificate_authority`).",
                    ),
                ],
            )
            .description(
                "Authenticate as a GitHub App installation over HTTPS: before each clone and \
                 push the provider mints an installation access token from the app's private \
                 key (a short-lived JWT exchanged at the GitHub API) and uses it as the \
                 `x-access-token` password. With `flux_bootstrap_git`'s `sync.provider = \
                 \"github\"`, the app's ID, installation and private key are also written to \
                 the sync Secret under the keys Flux reads, so Flux pulls as the app too. \
                 Conflicts with `git.ssh` and with `git.http` credentials (its TLS settings \
                 still apply).",
            ),
            Attribute::string("author_name")
                .description("Name of the commit author. Defaults to `Flux`."),
            Attribute::string("author_email").description("E-mail address of the commit author."),
            Attribute::string("commit_message_appendix").description(
                "Text appended to every commit message, after a blank line (e.g. `[skip ci]` \
                 or a sign-off).",
            ),
        ],
    )
    .description(
        "How to reach the Git repository for `flux_bootstrap_git`. The provider configuration \
         never enters the Terraform state, so credentials given here are never persisted. \
         The provider never connects while it is configured.",
    )
}

/// The provider configuration schema.
pub fn provider_schema() -> Schema {
    Schema::new(
        0,
        "The Flux provider installs and manages [Flux CD](https://fluxcd.io) through the \
         [Flux Operator](https://fluxoperator.dev): the operator itself, the `FluxInstance`, \
         `ResourceSet`s and Git-backed bootstrap.",
        vec![kubernetes_attribute(), git_attribute()],
    )
}

// ---------------------------------------------------------------------------------------------
// Configuration model
// ---------------------------------------------------------------------------------------------

/// The provider configuration.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ProviderModel {
    /// See [`KubernetesModel`].
    pub kubernetes: Value<KubernetesModel>,
    /// See [`GitModel`].
    pub git: Value<GitModel>,
}

/// `kubernetes = { ... }`.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default)]
#[allow(missing_docs)]
pub struct KubernetesModel {
    pub config_path: Value<String>,
    pub config_paths: Value<Vec<Value<String>>>,
    pub config_context: Value<String>,
    pub host: Value<String>,
    pub token: Value<String>,
    pub client_certificate: Value<String>,
    pub client_key: Value<String>,
    pub cluster_ca_certificate: Value<String>,
    pub insecure: Value<bool>,
    pub tls_server_name: Value<String>,
    pub proxy_url: Value<String>,
    pub exec: Value<ExecModel>,
}

/// `kubernetes.exec = { ... }`.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default)]
#[allow(missing_docs)]
pub struct ExecModel {
    pub api_version: Value<String>,
    pub command: Value<String>,
    pub args: Value<Vec<Value<String>>>,
    pub env: Value<BTreeMap<String, Value<String>>>,
}

/// `git = { ... }`.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default)]
#[allow(missing_docs)]
pub struct GitModel {
    pub http: Value<GitHttpModel>,
    pub ssh: Value<GitSshModel>,
    pub github_app: Value<GitHubAppModel>,
    pub author_name: Value<String>,
    pub author_email: Value<String>,
    pub commit_message_appendix: Value<String>,
}

/// `git.http = { ... }`.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default)]
#[allow(missing_docs)]
pub struct GitHttpModel {
    pub username: Value<String>,
    pub password: Value<String>,
    pub bearer_token: Value<String>,
    pub certificate_authority: Value<String>,
    pub allow_insecure_http: Value<bool>,
}

/// `git.ssh = { ... }`.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default)]
#[allow(missing_docs)]
pub struct GitSshModel {
    pub username: Value<String>,
    pub private_key: Value<String>,
    pub password: Value<String>,
    pub known_hosts: Value<String>,
}

/// `git.github_app = { ... }`.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default)]
#[allow(missing_docs)]
pub struct GitHubAppModel {
    pub app_id: Value<String>,
    pub installation_id: Value<String>,
    pub installation_owner: Value<String>,
    pub private_key: Value<String>,
    pub base_url: Value<String>,
}

/// Collects known values and remembers the paths of unknown ones.
struct Reader {
    unknown: Vec<AttrPath>,
}

impl Reader {
    fn take<T: Clone>(&mut self, path: AttrPath, value: &Value<T>) -> Option<T> {
        match value {
            Value::Known(v) => Some(v.clone()),
            Value::Null => None,
            Value::Unknown => {
                self.unknown.push(path);
                None
            }
        }
    }

    fn strings(
        &mut self,
        path: AttrPath,
        value: &Value<Vec<Value<String>>>,
    ) -> Option<Vec<String>> {
        let items = self.take(path.clone(), value)?;
        let known: Option<Vec<String>> = items.iter().map(|v| v.as_known().cloned()).collect();
        if known.is_none() {
            self.unknown.push(path);
        }
        known
    }
}

fn k8s(name: &str) -> AttrPath {
    AttrPath::attr("kubernetes").then_attr(name)
}

/// The cluster settings from the configuration, and the paths of values still unknown.
fn kubernetes_settings(model: &Value<KubernetesModel>) -> (Settings, Vec<AttrPath>) {
    let mut r = Reader {
        unknown: Vec::new(),
    };
    let Some(k) = r.take(AttrPath::attr("kubernetes"), model) else {
        return (Settings::default(), r.unknown);
    };
    let exec = r.take(k8s("exec"), &k.exec).map(|e| {
        let exec_path = |name: &str| k8s("exec").then_attr(name);
        let env = r
            .take(exec_path("env"), &e.env)
            .map(|env| {
                let known: Option<BTreeMap<String, String>> = env
                    .iter()
                    .map(|(name, v)| Some((name.clone(), v.as_known()?.clone())))
                    .collect();
                if known.is_none() {
                    r.unknown.push(exec_path("env"));
                }
                known.unwrap_or_default()
            })
            .unwrap_or_default();
        ExecSettings {
            api_version: r.take(exec_path("api_version"), &e.api_version),
            command: r.take(exec_path("command"), &e.command),
            args: r.strings(exec_path("args"), &e.args).unwrap_or_default(),
            env,
        }
    });
    let settings = Settings {
        config_path: r.take(k8s("config_path"), &k.config_path),
        config_paths: r
            .strings(k8s("config_paths"), &k.config_paths)
            .unwrap_or_default(),
        config_context: r.take(k8s("config_context"), &k.config_context),
        host: r.take(k8s("host"), &k.host),
        token: r.take(k8s("token"), &k.token),
        client_certificate: r.take(k8s("client_certificate"), &k.client_certificate),
        client_key: r.take(k8s("client_key"), &k.client_key),
        cluster_ca_certificate: r.take(k8s("cluster_ca_certificate"), &k.cluster_ca_certificate),
        insecure: r.take(k8s("insecure"), &k.insecure),
        tls_server_name: r.take(k8s("tls_server_name"), &k.tls_server_name),
        proxy_url: r.take(k8s("proxy_url"), &k.proxy_url),
        exec,
    };
    (settings, r.unknown)
}

fn title(summary_for: &kubeconfig::Error) -> &'static str {
    use kubeconfig::Error as E;
    match summary_for {
        E::ConflictingPaths => "Conflicting Kubeconfig Settings",
        E::ReadKubeconfig { .. } => "Unreadable Kubeconfig",
        E::ContextNotFound { .. } | E::NoCurrentContext { .. } | E::ContextWithoutFile => {
            "Invalid Kubernetes Context"
        }
        E::InvalidPem { .. } => "Invalid PEM",
        E::IncompleteClientCertificate { .. } => "Incomplete Client Certificate",
        E::InsecureWithCa => "Conflicting TLS Settings",
        E::ExecWithoutCommand | E::InvalidExecApiVersion(_) => "Invalid Exec Plugin",
        E::InvalidHost { .. } => "Invalid Kubernetes Host",
        E::InvalidTlsServerName(_) => "Invalid TLS Server Name",
        E::InvalidProxyUrl { .. } => "Invalid Proxy URL",
        E::NoConfiguration => "No Kubernetes Configuration",
        E::InCluster(_) | E::Kubeconfig(_) | E::BuildClient(_) => "Kubernetes Client Error",
    }
}

/// The settings of `kubernetes`, as [`kubeconfig::Error`] messages name them (longest first, so
/// that `config_paths` is matched before `config_path`).
const KUBERNETES_SETTINGS: [(&str, &str); 13] = [
    ("exec api_version", "exec.api_version"),
    ("cluster_ca_certificate", "cluster_ca_certificate"),
    ("client_certificate", "client_certificate"),
    ("tls_server_name", "tls_server_name"),
    ("config_context", "config_context"),
    ("config_paths", "config_paths"),
    ("config_path", "config_path"),
    ("client_key", "client_key"),
    ("proxy_url", "proxy_url"),
    ("insecure", "insecure"),
    ("token", "token"),
    ("host", "host"),
    ("exec", "exec"),
];

/// `message` with every bare setting name outside double quotes (values are quoted) written as
/// its attribute path: `proxy_url "x" is not...` becomes `kubernetes.proxy_url "x" is not...`.
fn qualify_settings(message: &str) -> String {
    let mut out = String::with_capacity(message.len() + 32);
    let mut quoted = false;
    let mut rest = message;
    'scan: while let Some(c) = rest.chars().next() {
        if c == '"' {
            quoted = !quoted;
        } else if !quoted {
            let boundary_before = !out
                .chars()
                .last()
                .is_some_and(|p| p.is_ascii_alphanumeric() || matches!(p, '_' | '.' | '<'));
            for (bare, path) in KUBERNETES_SETTINGS {
                let after = rest.get(bare.len()..).and_then(|a| a.chars().next());
                let boundary_after =
                    !after.is_some_and(|a| a.is_ascii_alphanumeric() || a == '_' || a == '.');
                if boundary_before && boundary_after && rest.starts_with(bare) {
                    out.push_str("kubernetes.");
                    out.push_str(path);
                    rest = &rest[bare.len()..];
                    continue 'scan;
                }
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// A diagnostic for a cluster configuration error, at `kubernetes.<setting>` when the error
/// names one. The message names settings by their attribute paths (`kubernetes.proxy_url`), and
/// says what to fix. The messages of [`kubeconfig::Error`] never contain secret values.
pub fn kubernetes_diagnostic(error: &kubeconfig::Error) -> Diagnostics {
    let detail = qualify_settings(&error.to_string());
    match error.setting() {
        Some(setting) => {
            let mut path = AttrPath::attr("kubernetes");
            for step in setting.split('.') {
                path = path.then_attr(step);
            }
            let detail = format!("{detail}. Fix the provider setting {path}.");
            Diagnostics::from_error_at(path, title(error), detail)
        }
        None => Diagnostics::from_error(title(error), format!("{detail}.")),
    }
}

fn git_path(steps: &[&str]) -> AttrPath {
    let mut path = AttrPath::attr("git");
    for step in steps {
        path = path.then_attr(*step);
    }
    path
}

fn check_pem_certificates(pem: &str) -> bool {
    let mut count = 0;
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        if cert.is_err() {
            return false;
        }
        count += 1;
    }
    count > 0
}

/// Git settings from the configuration, the paths of unknown values, and the problems found.
fn git_settings(model: &Value<GitModel>) -> (Option<GitSettings>, Vec<AttrPath>, Diagnostics) {
    let mut r = Reader {
        unknown: Vec::new(),
    };
    let mut diags = Diagnostics::new();
    let Some(g) = r.take(AttrPath::attr("git"), model) else {
        return (None, r.unknown, diags);
    };
    let http = r.take(git_path(&["http"]), &g.http).map(|h| {
        let p = |name: &str| git_path(&["http", name]);
        GitHttpSettings {
            username: r.take(p("username"), &h.username),
            password: r.take(p("password"), &h.password).map(Secret::new),
            bearer_token: r.take(p("bearer_token"), &h.bearer_token).map(Secret::new),
            certificate_authority: r.take(p("certificate_authority"), &h.certificate_authority),
            allow_insecure_http: r
                .take(p("allow_insecure_http"), &h.allow_insecure_http)
                .unwrap_or(false),
        }
    });
    let ssh = r.take(git_path(&["ssh"]), &g.ssh).map(|s| {
        let p = |name: &str| git_path(&["ssh", name]);
        GitSshSettings {
            username: r.take(p("username"), &s.username),
            private_key: r.take(p("private_key"), &s.private_key).map(Secret::new),
            password: r.take(p("password"), &s.password).map(Secret::new),
            known_hosts: r.take(p("known_hosts"), &s.known_hosts),
        }
    });
    let github_app = r.take(git_path(&["github_app"]), &g.github_app).map(|a| {
        let p = |name: &str| git_path(&["github_app", name]);
        GitHubAppSettings {
            app_id: r.take(p("app_id"), &a.app_id),
            installation_id: r.take(p("installation_id"), &a.installation_id),
            installation_owner: r.take(p("installation_owner"), &a.installation_owner),
            private_key: r.take(p("private_key"), &a.private_key).map(Secret::new),
            base_url: r.take(p("base_url"), &a.base_url),
        }
    });
    let settings = GitSettings {
        github_app,
        author_name: r.take(git_path(&["author_name"]), &g.author_name),
        author_email: r.take(git_path(&["author_email"]), &g.author_email),
        commit_message_appendix: r.take(
            git_path(&["commit_message_appendix"]),
            &g.commit_message_appendix,
        ),
        http,
        ssh,
    };
    // `git.http` and `git.ssh` both present (even if their content is unknown).
    if !g.http.is_null() && !g.ssh.is_null() {
        diags.error_at(
            git_path(&["ssh"]),
            "Conflicting Git Settings",
            "git.http and git.ssh are both set, but a repository is reached either over HTTP(S) \
             or over SSH. Keep the one that matches the repository URL and remove the other.",
        );
    }
    let is_unknown = |path: &AttrPath| r.unknown.contains(path);
    if let Some(http) = &settings.http {
        if http.bearer_token.is_some() && (http.username.is_some() || http.password.is_some()) {
            diags.error_at(
                git_path(&["http", "bearer_token"]),
                "Conflicting Git Credentials",
                "git.http.bearer_token is set together with git.http.username/password. Use \
                 either a bearer token or basic authentication, not both.",
            );
        }
        if http.password.is_some()
            && http.username.is_none()
            && !is_unknown(&git_path(&["http", "username"]))
        {
            diags.error_at(
                git_path(&["http", "username"]),
                "Missing Git User Name",
                "git.http.password is set without git.http.username. HTTP basic \
                 authentication needs both; most Git hosts accept any non-empty user name with \
                 a personal access token (e.g. \"git\").",
            );
        }
        if let Some(ca) = &http.certificate_authority
            && !check_pem_certificates(ca)
        {
            diags.error_at(
                git_path(&["http", "certificate_authority"]),
                "Invalid PEM",
                "git.http.certificate_authority is not a valid PEM certificate bundle (expected \
                 one or more \"-----BEGIN CERTIFICATE-----\" blocks). Fix the provider setting \
                 git.http.certificate_authority.",
            );
        }
    }
    if let Some(ssh) = &settings.ssh {
        match &ssh.private_key {
            None if !is_unknown(&git_path(&["ssh", "private_key"])) => diags.error_at(
                git_path(&["ssh", "private_key"]),
                "Missing SSH Private Key",
                "git.ssh is set without git.ssh.private_key. SSH access needs the private key \
                 (PEM or OpenSSH format).",
            ),
            Some(key) if !looks_like_private_key(key.expose()) => diags.error_at(
                git_path(&["ssh", "private_key"]),
                "Invalid SSH Private Key",
                "git.ssh.private_key is not a PEM or OpenSSH private key (expected a \
                 \"-----BEGIN ... PRIVATE KEY-----\" block). The value is not shown because it \
                 is sensitive.",
            ),
            _ => {}
        }
        if let Some(known_hosts) = &ssh.known_hosts
            && let Some(line) = bad_known_hosts_line(known_hosts)
        {
            diags.error_at(
                git_path(&["ssh", "known_hosts"]),
                "Invalid Known Hosts",
                format!(
                    "Line {line} of git.ssh.known_hosts is not a known_hosts entry (expected \
                     \"<hosts> <key type> <base64 key>\")."
                ),
            );
        }
    }
    if let Some(app) = &settings.github_app {
        github_app_problems(app, &settings, &g, &is_unknown, &mut diags);
    }
    if let Some(email) = &settings.author_email
        && !email.contains('@')
    {
        diags.error_at(
            git_path(&["author_email"]),
            "Invalid Author E-mail",
            format!("git.author_email {email:?} is not an e-mail address."),
        );
    }
    (Some(settings), r.unknown, diags)
}

/// What is wrong with `git.github_app`, each at its attribute.
fn github_app_problems(
    app: &GitHubAppSettings,
    settings: &GitSettings,
    model: &GitModel,
    is_unknown: &dyn Fn(&AttrPath) -> bool,
    diags: &mut Diagnostics,
) {
    let at = |name: &str| git_path(&["github_app", name]);
    let number = |name: &str, value: &Option<String>, diags: &mut Diagnostics| {
        if let Some(v) = value
            && v.trim().parse::<u64>().is_err()
        {
            diags.error_at(
                at(name),
                "Invalid GitHub App Setting",
                format!("git.github_app.{name} {v:?} is not a number (GitHub shows it on the app's settings page)."),
            );
        }
    };
    match &app.app_id {
        None if !is_unknown(&at("app_id")) => diags.error_at(
            at("app_id"),
            "Missing GitHub App ID",
            "git.github_app is set without app_id. Set it to the app's ID (a number).",
        ),
        _ => number("app_id", &app.app_id, diags),
    }
    number("installation_id", &app.installation_id, diags);
    let id_set = app.installation_id.is_some() || is_unknown(&at("installation_id"));
    let owner_set = app.installation_owner.is_some() || is_unknown(&at("installation_owner"));
    if id_set == owner_set
        && !(is_unknown(&at("installation_id")) || is_unknown(&at("installation_owner")))
    {
        diags.error_at(
            at("installation_id"),
            "Ambiguous GitHub App Installation",
            "Set exactly one of git.github_app.installation_id and \
             git.github_app.installation_owner.",
        );
    }
    match &app.private_key {
        None if !is_unknown(&at("private_key")) => diags.error_at(
            at("private_key"),
            "Missing GitHub App Private Key",
            "git.github_app is set without private_key (the PEM key GitHub generated for the app).",
        ),
        Some(key) if !looks_like_private_key(key.expose()) => diags.error_at(
            at("private_key"),
            "Invalid GitHub App Private Key",
            "git.github_app.private_key is not a PEM private key (expected a \"-----BEGIN RSA \
             PRIVATE KEY-----\" block). The value is not shown because it is sensitive.",
        ),
        _ => {}
    }
    if let Some(url) = &app.base_url
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        diags.error_at(
            at("base_url"),
            "Invalid GitHub API URL",
            format!("git.github_app.base_url {url:?} must be an https:// URL, e.g. \"https://github.example.com/api/v3\"."),
        );
    }
    if !model.ssh.is_null() {
        diags.error_at(
            git_path(&["github_app"]),
            "Conflicting Git Settings",
            "git.github_app and git.ssh are both set: a GitHub App authenticates over HTTPS only. \
             Remove one.",
        );
    }
    if let Some(http) = &settings.http
        && (http.username.is_some() || http.password.is_some() || http.bearer_token.is_some())
    {
        diags.error_at(
            git_path(&["github_app"]),
            "Conflicting Git Credentials",
            "git.github_app is set together with git.http credentials (username, password or \
             bearer_token). Keep one way to authenticate; git.http may still hold the TLS \
             settings.",
        );
    }
}

fn looks_like_private_key(key: &str) -> bool {
    let key = key.trim();
    key.starts_with("-----BEGIN ") && key.contains("PRIVATE KEY-----") && key.contains("-----END ")
}

/// The 1-based number of the first malformed line, if any.
fn bad_known_hosts_line(known_hosts: &str) -> Option<usize> {
    known_hosts.lines().enumerate().find_map(|(i, line)| {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        let mut fields = line.split_whitespace();
        // An optional marker (@cert-authority, @revoked) comes first.
        if line.starts_with('@') {
            fields.next();
        }
        let ok = fields.next().is_some() && fields.next().is_some() && fields.next().is_some();
        (!ok).then_some(i + 1)
    })
}

// ---------------------------------------------------------------------------------------------
// Provider data
// ---------------------------------------------------------------------------------------------

/// The provider's `git` settings as configured (credentials redacted in `Debug`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GitSettings {
    /// HTTP(S) settings.
    pub http: Option<GitHttpSettings>,
    /// SSH settings.
    pub ssh: Option<GitSshSettings>,
    /// GitHub App settings.
    pub github_app: Option<GitHubAppSettings>,
    /// Commit author name; see [`GitSettings::author_name`].
    pub author_name: Option<String>,
    /// Commit author e-mail.
    pub author_email: Option<String>,
    /// Appended to commit messages after a blank line.
    pub commit_message_appendix: Option<String>,
}

impl GitSettings {
    /// The commit author name: as configured, else `Flux`.
    pub fn author_name(&self) -> &str {
        self.author_name.as_deref().unwrap_or("Flux")
    }
}

/// `git.http`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GitHttpSettings {
    /// Basic auth user name.
    pub username: Option<String>,
    /// Basic auth password or token.
    pub password: Option<Secret>,
    /// Bearer token.
    pub bearer_token: Option<Secret>,
    /// PEM CA bundle.
    pub certificate_authority: Option<String>,
    /// Allow `http://` URLs.
    pub allow_insecure_http: bool,
}

/// `git.ssh`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GitSshSettings {
    /// SSH user.
    pub username: Option<String>,
    /// Private key.
    pub private_key: Option<Secret>,
    /// Passphrase of the private key.
    pub password: Option<Secret>,
    /// Trusted host keys, `known_hosts` format.
    pub known_hosts: Option<String>,
}

/// `git.github_app`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GitHubAppSettings {
    /// The app's ID.
    pub app_id: Option<String>,
    /// The installation's ID.
    pub installation_id: Option<String>,
    /// The installation's owner.
    pub installation_owner: Option<String>,
    /// The app's private key.
    pub private_key: Option<Secret>,
    /// The API base URL.
    pub base_url: Option<String>,
}

/// Settings that may still be unknown when the provider is configured (the values come from
/// resources created in the same apply).
#[derive(Clone, Debug, PartialEq)]
pub enum Configured<T> {
    /// Every value is known.
    Known(T),
    /// These attributes are not known until apply.
    Unknown(Vec<AttrPath>),
}

/// What Configure hands to resources: the Kubernetes connection (client built on first use)
/// and the Git settings.
#[derive(Debug)]
pub struct ProviderData {
    /// The cluster connection settings, or which of them are unknown.
    pub kubernetes: Configured<Arc<LazyClient>>,
    /// The Git settings, or which of them are unknown.
    pub git: Configured<GitSettings>,
    cluster: OnceCell<Cluster>,
}

impl ProviderData {
    /// Provider data from already-resolved parts.
    pub fn new(kubernetes: Configured<Arc<LazyClient>>, git: Configured<GitSettings>) -> Self {
        Self {
            kubernetes,
            git,
            cluster: OnceCell::new(),
        }
    }

    /// False while `kubernetes` settings are unknown (plans then make no cluster request).
    pub fn cluster_known(&self) -> bool {
        matches!(self.kubernetes, Configured::Known(_))
    }

    /// The cluster handle; its client is built on the first call and shared afterwards.
    ///
    /// # Errors
    ///
    /// A diagnostic naming the provider setting to fix (`kubernetes.config_path`, ...), or
    /// saying which settings are still unknown.
    pub async fn cluster(&self) -> Result<Cluster, Diagnostics> {
        let lazy = match &self.kubernetes {
            Configured::Known(lazy) => lazy,
            Configured::Unknown(paths) => {
                let names: Vec<String> = paths.iter().map(ToString::to_string).collect();
                return Err(Diagnostics::from_error(
                    "Kubernetes Connection Unknown",
                    format!(
                        "The provider settings {} are not known yet, so the cluster cannot be \
                         reached. Make sure the values they depend on are created earlier in \
                         the same apply.",
                        names.join(", ")
                    ),
                ));
            }
        };
        self.cluster
            .get_or_try_init(|| async {
                let client = lazy.client().await.map_err(|e| kubernetes_diagnostic(&e))?;
                Ok(Cluster::new(client))
            })
            .await
            .cloned()
    }

    /// The Git settings.
    ///
    /// # Errors
    ///
    /// A diagnostic saying which settings are still unknown.
    pub fn git_settings(&self) -> Result<&GitSettings, Diagnostics> {
        match &self.git {
            Configured::Known(settings) => Ok(settings),
            Configured::Unknown(paths) => {
                let names: Vec<String> = paths.iter().map(ToString::to_string).collect();
                Err(Diagnostics::from_error(
                    "Git Settings Unknown",
                    format!(
                        "The provider settings {} are not known yet. Make sure the values they \
                         depend on are created earlier in the same apply.",
                        names.join(", ")
                    ),
                ))
            }
        }
    }
}

#[async_trait]
impl ClusterAccess for ProviderData {
    fn cluster_known(&self) -> bool {
        ProviderData::cluster_known(self)
    }

    async fn cluster(&self) -> Result<Cluster, Diagnostics> {
        ProviderData::cluster(self).await
    }
}

impl crate::resources::flux_bootstrap_git_config::GitAccess for ProviderData {
    fn git_known(&self) -> bool {
        matches!(self.git, Configured::Known(_))
    }

    fn git_config(
        &self,
    ) -> Result<crate::resources::flux_bootstrap_git_config::GitConfig, Diagnostics> {
        use crate::resources::flux_bootstrap_git_config::{GitConfig, SshConfig};
        let g = self.git_settings()?;
        let http = g.http.clone().unwrap_or_default();
        Ok(GitConfig {
            http_username: http.username,
            http_password: http.password,
            bearer_token: http.bearer_token,
            certificate_authority: http.certificate_authority.clone(),
            allow_insecure_http: http.allow_insecure_http,
            ssh: g.ssh.clone().map(|s| SshConfig {
                username: s.username,
                private_key: s.private_key,
                passphrase: s.password,
                known_hosts: s.known_hosts,
            }),
            author_name: g.author_name().to_owned(),
            author_email: g.author_email.clone(),
            commit_message_appendix: g.commit_message_appendix.clone(),
            github_app: g.github_app.clone().map(|a| crate::git::GitHubApp {
                app_id: a.app_id.unwrap_or_default(),
                installation_id: a.installation_id,
                installation_owner: a.installation_owner,
                private_key: a.private_key.unwrap_or_default(),
                api_url: a.base_url,
                certificate_authority: http.certificate_authority.clone(),
                allow_insecure_http: http.allow_insecure_http,
            }),
        })
    }
}

/// Validates the configuration and resolves what can be resolved. Unknown values are skipped
/// (and reported in the result); problems are diagnostics at the attribute's path.
fn resolve(config: &ProviderModel, env: &Environment) -> (ProviderData, Diagnostics) {
    let mut diags = Diagnostics::new();
    let (settings, k8s_unknown) = kubernetes_settings(&config.kubernetes);
    for problem in kubeconfig::check_inline(&settings) {
        diags.extend(kubernetes_diagnostic(&problem));
    }
    // Files and contexts can only be checked once every setting that selects them is known.
    let source_unknown = k8s_unknown.iter().any(|p| {
        ["config_path", "config_paths", "config_context", "host"]
            .iter()
            .any(|name| *p == k8s(name) || *p == AttrPath::attr("kubernetes"))
    });
    if !source_unknown {
        for problem in kubeconfig::check_source(&settings, env) {
            diags.extend(kubernetes_diagnostic(&problem));
        }
    }
    let (git, git_unknown, git_diags) = git_settings(&config.git);
    diags.extend(git_diags);
    let kubernetes = if k8s_unknown.is_empty() {
        Configured::Known(Arc::new(LazyClient::new(settings, env.clone())))
    } else {
        Configured::Unknown(k8s_unknown)
    };
    let git = if git_unknown.is_empty() {
        Configured::Known(git.unwrap_or_default())
    } else {
        Configured::Unknown(git_unknown)
    };
    (ProviderData::new(kubernetes, git), diags)
}

#[async_trait]
impl Provider for FluxProvider {
    type Data = ProviderData;
    type Config = ProviderModel;

    fn schema(&self) -> Schema {
        provider_schema()
    }

    async fn validate(
        &self,
        _ctx: &mut Context<ProviderData>,
        config: ProviderModel,
    ) -> Result<(), Diagnostics> {
        let (_, diags) = resolve(&config, &Environment::from_process());
        if diags.is_empty() { Ok(()) } else { Err(diags) }
    }

    async fn configure(
        &self,
        _ctx: &mut Context<ProviderData>,
        config: ProviderModel,
    ) -> Result<ProviderData, Diagnostics> {
        let (data, diags) = resolve(&config, &Environment::from_process());
        if diags.has_errors() {
            Err(diags)
        } else {
            Ok(data)
        }
    }

    fn resources(&self) -> Vec<Box<dyn DynResource<ProviderData>>> {
        vec![
            Box::new(FluxInstanceResource),
            Box::new(crate::resources::flux_operator::FluxOperatorResource),
            Box::new(crate::resources::flux_resource_set::FluxResourceSetResource),
            Box::new(
                crate::resources::flux_resource_set_input_provider::FluxResourceSetInputProviderResource,
            ),
            Box::new(crate::resources::flux_bootstrap_git::FluxBootstrapGitResource),
        ]
    }

    fn data_sources(&self) -> Vec<Box<dyn DynDataSource<ProviderData>>> {
        vec![
            Box::new(crate::resources::flux_instance_data::FluxInstanceData),
            Box::new(crate::resources::flux_report_data::FluxReportData),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::diagnostics::{Diagnostic, Severity};
    use crate::framework::model::from_raw;
    use crate::framework::value::RawValue;
    use pretty_assertions::assert_eq;

    #[test]
    fn schema_follows_the_house_rules() {
        let schema = provider_schema();
        assert_eq!(schema.lint(), Vec::<String>::new());
        let sensitive: Vec<String> = schema
            .walk_attributes()
            .into_iter()
            .filter(|(_, a)| a.sensitive)
            .map(|(p, _)| p.to_string())
            .collect();
        assert_eq!(
            sensitive,
            vec![
                "kubernetes.token",
                "kubernetes.client_key",
                "git.http.password",
                "git.http.bearer_token",
                "git.ssh.private_key",
                "git.ssh.password",
                "git.github_app.private_key",
            ]
        );
        let all: Vec<String> = schema
            .walk_attributes()
            .into_iter()
            .map(|(p, _)| p.to_string())
            .collect();
        assert_eq!(
            all,
            vec![
                "kubernetes",
                "kubernetes.config_path",
                "kubernetes.config_paths",
                "kubernetes.config_context",
                "kubernetes.host",
                "kubernetes.token",
                "kubernetes.client_certificate",
                "kubernetes.client_key",
                "kubernetes.cluster_ca_certificate",
                "kubernetes.insecure",
                "kubernetes.tls_server_name",
                "kubernetes.proxy_url",
                "kubernetes.exec",
                "kubernetes.exec.api_version",
                "kubernetes.exec.command",
                "kubernetes.exec.args",
                "kubernetes.exec.env",
                "git",
                "git.http",
                "git.http.username",
                "git.http.password",
                "git.http.bearer_token",
                "git.http.certificate_authority",
                "git.http.allow_insecure_http",
                "git.ssh",
                "git.ssh.username",
                "git.ssh.private_key",
                "git.ssh.password",
                "git.ssh.known_hosts",
                "git.github_app",
                "git.github_app.app_id",
                "git.github_app.installation_id",
                "git.github_app.installation_owner",
                "git.github_app.private_key",
                "git.github_app.base_url",
                "git.author_name",
                "git.author_email",
                "git.commit_message_appendix",
            ]
        );
    }

    #[test]
    fn every_served_schema_follows_the_house_rules() {
        let server = Server::new(FluxProvider);
        let schemas = server.schemas();
        let mut problems = Vec::new();
        for (kind, map) in [
            ("resource", &schemas.resources),
            ("data source", &schemas.data_sources),
        ] {
            for (name, schema) in map {
                for problem in schema.lint() {
                    problems.push(format!("{kind} {name}: {problem}"));
                }
            }
        }
        assert_eq!(problems, Vec::<String>::new());
        assert!(schemas.capabilities.plan_destroy);
    }

    fn s(text: &str) -> RawValue {
        RawValue::from(text)
    }

    /// A provider configuration from `kubernetes` and `git` attribute pairs, shaped by the schema.
    fn config(
        kubernetes: Option<Vec<(&str, RawValue)>>,
        git: Option<Vec<(&str, RawValue)>>,
    ) -> ProviderModel {
        let object = |pairs: Option<Vec<(&str, RawValue)>>| match pairs {
            Some(pairs) => RawValue::object(pairs),
            None => RawValue::Null,
        };
        let raw = RawValue::object([("kubernetes", object(kubernetes)), ("git", object(git))])
            .conform(&provider_schema().type_of());
        from_raw(&raw).unwrap()
    }

    fn paths(diags: &Diagnostics) -> Vec<(Severity, Option<String>, String)> {
        diags
            .iter()
            .map(|d: &Diagnostic| {
                (
                    d.severity,
                    d.path.as_ref().map(ToString::to_string),
                    d.summary.clone(),
                )
            })
            .collect()
    }

    const KUBECONFIG: &str = "apiVersion: v1\nkind: Config\ncurrent-context: dev\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:6443\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: dev\n  context:\n    cluster: c\n    user: u\n";

    #[test]
    fn resolve_reports_each_problem_at_its_attribute() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config");
        std::fs::write(&file, KUBECONFIG).unwrap();
        let file = file.display().to_string();
        let missing = dir.path().join("missing").display().to_string();
        let env = Environment::default();
        type Want = Vec<(Severity, Option<String>, String)>;
        let e = |path: &str, summary: &str| {
            (Severity::Error, Some(path.to_string()), summary.to_string())
        };
        let cases: Vec<(&str, ProviderModel, Want)> = vec![
            ("empty configuration", config(None, None), vec![]),
            (
                "valid file and context",
                config(
                    Some(vec![
                        ("config_path", s(&file)),
                        ("config_context", s("dev")),
                    ]),
                    None,
                ),
                vec![],
            ),
            (
                "unreadable config_path",
                config(Some(vec![("config_path", s(&missing))]), None),
                vec![e("kubernetes.config_path", "Unreadable Kubeconfig")],
            ),
            (
                "context not in the file",
                config(
                    Some(vec![
                        ("config_path", s(&file)),
                        ("config_context", s("prod")),
                    ]),
                    None,
                ),
                vec![e("kubernetes.config_context", "Invalid Kubernetes Context")],
            ),
            (
                "PEM that does not parse",
                config(
                    Some(vec![
                        ("host", s("https://h")),
                        ("client_certificate", s("x")),
                        ("client_key", s("y")),
                        ("cluster_ca_certificate", s("z")),
                    ]),
                    None,
                ),
                vec![
                    e("kubernetes.cluster_ca_certificate", "Invalid PEM"),
                    e("kubernetes.client_certificate", "Invalid PEM"),
                    e("kubernetes.client_key", "Invalid PEM"),
                ],
            ),
            (
                "exec without command",
                config(
                    Some(vec![(
                        "exec",
                        RawValue::object([("args", RawValue::List(vec![s("token")]))]),
                    )]),
                    None,
                ),
                vec![e("kubernetes.exec.command", "Invalid Exec Plugin")],
            ),
            (
                "bad proxy_url and host",
                config(
                    Some(vec![("host", s("ftp://x")), ("proxy_url", s("nope"))]),
                    None,
                ),
                vec![
                    e("kubernetes.host", "Invalid Kubernetes Host"),
                    e("kubernetes.proxy_url", "Invalid Proxy URL"),
                ],
            ),
            (
                "config_path with config_paths",
                config(
                    Some(vec![
                        ("config_path", s(&file)),
                        ("config_paths", RawValue::List(vec![s(&file)])),
                    ]),
                    None,
                ),
                vec![e(
                    "kubernetes.config_paths",
                    "Conflicting Kubeconfig Settings",
                )],
            ),
            (
                "git http and ssh both set, bad CA, password without user",
                config(
                    None,
                    Some(vec![
                        (
                            "http",
                            RawValue::object([
                                ("password", s("hunter2")),
                                ("certificate_authority", s("not pem")),
                            ]),
                        ),
                        (
                            "ssh",
                            RawValue::object([(
                                "private_key",
                                s(
                                    "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----",
                                ),
                            )]),
                        ),
                    ]),
                ),
                vec![
                    e("git.ssh", "Conflicting Git Settings"),
                    e("git.http.username", "Missing Git User Name"),
                    e("git.http.certificate_authority", "Invalid PEM"),
                ],
            ),
            (
                "git ssh without key, bad known_hosts, bearer with basic, bad email",
                config(
                    None,
                    Some(vec![
                        (
                            "ssh",
                            RawValue::object([("known_hosts", s("github.com ssh-ed25519"))]),
                        ),
                        ("author_email", s("nobody")),
                    ]),
                ),
                vec![
                    e("git.ssh.private_key", "Missing SSH Private Key"),
                    e("git.ssh.known_hosts", "Invalid Known Hosts"),
                    e("git.author_email", "Invalid Author E-mail"),
                ],
            ),
        ];
        for (name, model, want) in cases {
            let (_, diags) = resolve(&model, &env);
            assert_eq!(paths(&diags), want, "{name}");
            for d in diags.iter() {
                assert!(!d.detail.contains("hunter2"), "{name}: secret in {d:?}");
            }
        }
    }

    #[test]
    fn messages_name_settings_by_their_paths() {
        let details = |model: ProviderModel| -> Vec<String> {
            let (_, diags) = resolve(&model, &Environment::default());
            diags.iter().map(|d| d.detail.clone()).collect()
        };
        type Case = (Vec<(&'static str, RawValue)>, Vec<&'static str>);
        let cases: Vec<Case> = vec![
            (
                vec![("host", s("https://h")), ("proxy_url", s("nope"))],
                vec![
                    "kubernetes.proxy_url \"nope\" is not a valid proxy URL (no scheme); use \
                     http://, https:// or socks5://. Fix the provider setting \
                     kubernetes.proxy_url.",
                ],
            ),
            (
                vec![("host", s("ftp://x")), ("token", s("t"))],
                vec![
                    "kubernetes.host \"ftp://x\" is not a valid API server URL (the scheme must \
                     be https or http); use https://<host>:<port>. Fix the provider setting \
                     kubernetes.host.",
                ],
            ),
            (
                vec![
                    ("host", s("https://h")),
                    ("tls_server_name", s("not a host")),
                ],
                vec![
                    "kubernetes.tls_server_name \"not a host\" is not a DNS name or IP address; \
                     use the name in the API server's certificate, e.g. \
                     \"kubernetes.default.svc\". Fix the provider setting \
                     kubernetes.tls_server_name.",
                ],
            ),
            (
                vec![
                    ("host", s("https://h")),
                    (
                        "exec",
                        RawValue::object([("command", s("x")), ("api_version", s("v1"))]),
                    ),
                ],
                vec![
                    "kubernetes.exec.api_version \"v1\" is not supported; use \
                     client.authentication.k8s.io/v1 or v1beta1. Fix the provider setting \
                     kubernetes.exec.api_version.",
                ],
            ),
        ];
        for (kubernetes, want) in cases {
            let got = details(config(Some(kubernetes), None));
            let want: Vec<String> = want.iter().map(|w| w.to_string()).collect();
            assert_eq!(got, want);
        }
        // No message starts with a capitalised setting name ("Proxy_url", "Insecure = true").
        let (_, diags) = resolve(
            &config(
                Some(vec![
                    ("host", s("https://h")),
                    ("insecure", RawValue::Bool(true)),
                    (
                        "cluster_ca_certificate",
                        s("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"),
                    ),
                ]),
                None,
            ),
            &Environment::default(),
        );
        let insecure = diags
            .iter()
            .find(|d| d.summary == "Conflicting TLS Settings")
            .map(|d| d.detail.clone());
        assert_eq!(
            insecure.as_deref(),
            Some(
                "kubernetes.insecure = true disables the verification that \
                 kubernetes.cluster_ca_certificate configures; set only one of them. Fix the \
                 provider setting kubernetes.insecure."
            )
        );
    }

    #[test]
    fn github_app_settings_are_checked_at_their_attributes() {
        let key = "-----BEGIN RSA PRIVATE KEY-----\nx\n-----END RSA PRIVATE KEY-----";
        let e = |path: &str, summary: &str| {
            (Severity::Error, Some(path.to_string()), summary.to_string())
        };
        type Want = Vec<(Severity, Option<String>, String)>;
        type Git<'a> = Vec<(&'a str, RawValue)>;
        let cases: Vec<(&str, Git<'_>, Want)> = vec![
            (
                "valid",
                vec![(
                    "github_app",
                    RawValue::object([
                        ("app_id", s("1")),
                        ("installation_id", s("2")),
                        ("private_key", s(key)),
                    ]),
                )],
                vec![],
            ),
            (
                "everything wrong",
                vec![
                    (
                        "github_app",
                        RawValue::object([
                            ("app_id", s("one")),
                            ("installation_id", s("2")),
                            ("installation_owner", s("org")),
                            ("private_key", s("hunter2-key")),
                            ("base_url", s("ghe.example")),
                        ]),
                    ),
                    (
                        "http",
                        RawValue::object([("username", s("u")), ("password", s("p"))]),
                    ),
                ],
                vec![
                    e("git.github_app.app_id", "Invalid GitHub App Setting"),
                    e(
                        "git.github_app.installation_id",
                        "Ambiguous GitHub App Installation",
                    ),
                    e(
                        "git.github_app.private_key",
                        "Invalid GitHub App Private Key",
                    ),
                    e("git.github_app.base_url", "Invalid GitHub API URL"),
                    e("git.github_app", "Conflicting Git Credentials"),
                ],
            ),
            (
                "missing",
                vec![(
                    "github_app",
                    RawValue::object([("installation_owner", s("org"))]),
                )],
                vec![
                    e("git.github_app.app_id", "Missing GitHub App ID"),
                    e(
                        "git.github_app.private_key",
                        "Missing GitHub App Private Key",
                    ),
                ],
            ),
        ];
        for (name, git, want) in cases {
            let (_, diags) = resolve(&config(None, Some(git)), &Environment::default());
            assert_eq!(paths(&diags), want, "{name}");
            for d in diags.iter() {
                assert!(!d.detail.contains("hunter2"), "{name}: secret in {d:?}");
            }
        }
    }

    #[test]
    fn unknown_settings_are_tolerated_and_recorded() {
        let model = config(
            Some(vec![
                ("host", RawValue::unknown()),
                ("cluster_ca_certificate", RawValue::unknown()),
                ("token", s("t")),
            ]),
            Some(vec![(
                "http",
                RawValue::object([("password", RawValue::unknown()), ("username", s("git"))]),
            )]),
        );
        let (data, diags) = resolve(&model, &Environment::default());
        assert_eq!(diags, Diagnostics::new());
        assert!(!data.cluster_known());
        match &data.kubernetes {
            Configured::Unknown(paths) => {
                assert_eq!(paths, &vec![k8s("host"), k8s("cluster_ca_certificate")])
            }
            Configured::Known(_) => panic!("kubernetes must be unknown"),
        }
        assert_eq!(
            data.git,
            Configured::Unknown(vec![git_path(&["http", "password"])])
        );
        // A wholly unknown `kubernetes` object is tolerated as well.
        let model = ProviderModel {
            kubernetes: Value::Unknown,
            git: Value::Null,
        };
        let (data, diags) = resolve(&model, &Environment::default());
        assert_eq!(diags, Diagnostics::new());
        assert_eq!(data.git, Configured::Known(GitSettings::default()));
    }

    #[tokio::test]
    async fn cluster_errors_name_the_setting() {
        let model = config(Some(vec![("host", RawValue::unknown())]), None);
        let (data, _) = resolve(&model, &Environment::default());
        let Err(diags) = data.cluster().await else {
            panic!("unknown settings must not yield a cluster");
        };
        assert_eq!(
            diags,
            Diagnostics::from_error(
                "Kubernetes Connection Unknown",
                "The provider settings kubernetes.host are not known yet, so the cluster cannot \
                 be reached. Make sure the values they depend on are created earlier in the \
                 same apply."
            )
        );
        let data = ProviderData::new(
            Configured::Known(Arc::new(LazyClient::new(
                Settings {
                    config_path: Some("/nonexistent/kubeconfig".into()),
                    ..Settings::default()
                },
                Environment::default(),
            ))),
            Configured::Known(GitSettings::default()),
        );
        let Err(diags) = data.cluster().await else {
            panic!("a missing kubeconfig must fail");
        };
        assert_eq!(
            paths(&diags),
            vec![(
                Severity::Error,
                Some("kubernetes.config_path".into()),
                "Unreadable Kubeconfig".into()
            )]
        );
        assert!(
            diags.0[0]
                .detail
                .ends_with("Fix the provider setting kubernetes.config_path.")
        );
    }

    #[test]
    fn git_settings_debug_redacts_credentials() {
        let settings = GitSettings {
            http: Some(GitHttpSettings {
                username: Some("git".into()),
                password: Some(Secret::new("pat-123")),
                bearer_token: Some(Secret::new("bearer-456")),
                ..GitHttpSettings::default()
            }),
            ssh: Some(GitSshSettings {
                private_key: Some(Secret::new("key-789")),
                password: Some(Secret::new("pass-000")),
                ..GitSshSettings::default()
            }),
            ..GitSettings::default()
        };
        let debug = format!("{settings:?}");
        for secret in ["pat-123", "bearer-456", "key-789", "pass-000"] {
            assert!(!debug.contains(secret), "{secret} leaked: {debug}");
        }
        assert_eq!(settings.author_name(), "Flux");
    }
}
