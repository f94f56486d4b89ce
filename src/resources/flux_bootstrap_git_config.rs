//! The provider's `git` settings as `flux_bootstrap_git` needs them: [`GitConfig`] (read from
//! the provider configuration behind the [`GitAccess`] seam) and the choice of the credentials
//! Flux pulls with — the settings matching the repository URL's scheme, a GitHub App, or none
//! for the workload-identity providers — rendered as the sync Secret's data.
//!
//! Lives in `resources/`: may use `framework`, `flux`, `git` types; does no I/O.

use std::collections::BTreeMap;

use crate::flux::bootstrap::{GitCredentials, sync_secret_data};
use crate::framework::diagnostics::Diagnostics;
use crate::framework::path::AttrPath;
use crate::git::Secret;
use crate::resources::common::ClusterAccess;

/// The provider's `git` settings as this resource uses them.
#[derive(Clone, Debug, Default)]
pub struct GitConfig {
    /// `git.http.username`.
    pub http_username: Option<String>,
    /// `git.http.password`.
    pub http_password: Option<Secret>,
    /// `git.http.bearer_token`.
    pub bearer_token: Option<Secret>,
    /// `git.http.certificate_authority`.
    pub certificate_authority: Option<String>,
    /// `git.http.allow_insecure_http`.
    pub allow_insecure_http: bool,
    /// `git.ssh`, when set.
    pub ssh: Option<SshConfig>,
    /// Commit author name.
    pub author_name: String,
    /// Commit author e-mail.
    pub author_email: Option<String>,
    /// Appended to commit messages.
    pub commit_message_appendix: Option<String>,
    /// `git.github_app`, with the `git.http` TLS settings.
    pub github_app: Option<crate::git::github_app::GitHubApp>,
}

/// `git.ssh`.
#[derive(Clone, Debug, Default)]
pub struct SshConfig {
    /// SSH user.
    pub username: Option<String>,
    /// Private key.
    pub private_key: Option<Secret>,
    /// Key passphrase.
    pub passphrase: Option<Secret>,
    /// Trusted host keys.
    pub known_hosts: Option<String>,
}

/// What `flux_bootstrap_git` needs from the provider data besides the cluster.
pub trait GitAccess: ClusterAccess {
    /// False while the provider's `git` settings have values unknown until apply.
    fn git_known(&self) -> bool;

    /// The `git` settings.
    ///
    /// # Errors
    ///
    /// A diagnostic naming the unknown settings.
    fn git_config(&self) -> Result<GitConfig, Diagnostics>;
}

/// Whether a repository URL is reached over SSH.
pub fn is_ssh_url(url: &str) -> bool {
    url.starts_with("ssh://") || (!url.contains("://") && url.contains('@') && url.contains(':'))
}

impl GitConfig {
    /// The credentials Flux pulls with, if any: the settings matching the URL's scheme, or the
    /// GitHub App for `sync.provider = "github"`; none for the workload-identity providers
    /// (`azure`, `aws`, `gcp`), whose identity comes from the source-controller's service
    /// account.
    ///
    /// # Errors
    ///
    /// A diagnostic when SSH is used without `known_hosts` (source-controller requires them),
    /// when `github` is asked for without `git.github_app`, or when `git.github_app` is set
    /// for another provider (its tokens expire after an hour: Flux must mint its own).
    pub fn pull_credentials(
        &self,
        url: &str,
        provider: Option<&str>,
    ) -> Result<Option<GitCredentials>, Diagnostics> {
        let provider_path = AttrPath::attr("sync").then_attr("provider");
        match provider {
            Some("azure" | "aws" | "gcp") => return Ok(None),
            Some("github") => {
                let Some(app) = &self.github_app else {
                    return Err(Diagnostics::from_error_at(
                        provider_path,
                        "GitHub App Not Configured",
                        "sync.provider = \"github\" makes Flux authenticate as a GitHub App, \
                         but the provider's git.github_app settings are not set. Set them \
                         (app_id, installation_id or installation_owner, private_key), or set \
                         manage_secret = false and create the Secret yourself with the keys \
                         githubAppID, githubAppInstallationID and githubAppPrivateKey.",
                    ));
                };
                return Ok(Some(GitCredentials::GitHubApp {
                    app_id: app.app_id.clone(),
                    installation_id: app.installation_id.clone(),
                    installation_owner: app.installation_owner.clone(),
                    private_key: app.private_key.expose().to_owned(),
                    base_url: app.api_url.clone(),
                }));
            }
            _ => {}
        }
        if self.github_app.is_some() && !is_ssh_url(url) {
            return Err(Diagnostics::from_error_at(
                provider_path,
                "GitHub App Needs sync.provider",
                "The provider authenticates as a GitHub App (git.github_app), whose installation \
                 tokens expire after an hour, so Flux must authenticate as the app too: set \
                 sync.provider = \"github\" (or manage_secret = false and create the sync \
                 Secret yourself).",
            ));
        }
        if is_ssh_url(url) {
            let Some(ssh) = &self.ssh else {
                return Ok(None);
            };
            let Some(key) = &ssh.private_key else {
                return Ok(None);
            };
            let Some(known_hosts) = &ssh.known_hosts else {
                return Err(Diagnostics::from_error_at(
                    AttrPath::attr("url"),
                    "Missing Known Hosts",
                    "Flux verifies the SSH server's host key against the known_hosts in the sync \
                     Secret: set git.ssh.known_hosts in the provider configuration.",
                ));
            };
            return Ok(Some(GitCredentials::Ssh {
                identity: key.expose().to_owned(),
                known_hosts: known_hosts.clone(),
                password: ssh.passphrase.as_ref().map(|p| p.expose().to_owned()),
            }));
        }
        if let Some(token) = &self.bearer_token {
            return Ok(Some(GitCredentials::Bearer {
                token: token.expose().to_owned(),
            }));
        }
        Ok(match (&self.http_username, &self.http_password) {
            (Some(username), Some(password)) => Some(GitCredentials::Basic {
                username: username.clone(),
                password: password.expose().to_owned(),
            }),
            _ => None,
        })
    }

    /// The sync Secret's data (`None`: no credentials, nothing to write).
    ///
    /// # Errors
    ///
    /// See [`GitConfig::pull_credentials`].
    pub fn secret_data(
        &self,
        url: &str,
        provider: Option<&str>,
    ) -> Result<Option<BTreeMap<String, String>>, Diagnostics> {
        let ca = if is_ssh_url(url) {
            None
        } else {
            self.certificate_authority.as_deref()
        };
        Ok(self
            .pull_credentials(url, provider)?
            .map(|c| sync_secret_data(&c, ca)))
    }
}
