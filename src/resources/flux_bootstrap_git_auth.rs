//! How `flux_bootstrap_git` authenticates to the repository: the provider's `git.http` or
//! `git.ssh` credentials, or — with `git.github_app` — an installation access token minted from
//! the GitHub App's private key just before each clone or push (never stored anywhere). Errors
//! of the token exchange become diagnostics at the provider setting to fix; they never contain
//! the key or a token.
//!
//! Also the Git options of every clone and push (cancelled with the Terraform operation) and the
//! diagnostic of a Git failure, at the attribute to fix — shared by the resource and its import.
//!
//! Lives in `resources/`: may use `framework` and `git`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::framework::diagnostics::Diagnostics;
use crate::framework::path::AttrPath;
use crate::framework::resource::Context;
use crate::git::github_app::{ACCESS_TOKEN_USERNAME, AppError};
use crate::git::{Auth, HttpAuth, HttpCredentials, SshAuth};
use crate::git::{Error as GitError, Options};
use crate::resources::flux_bootstrap_git_config::{GitAccess, GitConfig, is_ssh_url};

/// The git2 authentication for `url` from the provider settings; with a GitHub App, an
/// installation token is minted first.
///
/// # Errors
///
/// A diagnostic at `git.github_app` when no installation token can be obtained.
pub async fn git_auth(config: &GitConfig, url: &str) -> Result<Auth, Diagnostics> {
    if is_ssh_url(url) {
        return Ok(match &config.ssh {
            Some(ssh) => match &ssh.private_key {
                Some(key) => Auth::Ssh(SshAuth {
                    username: ssh.username.clone(),
                    private_key: key.clone(),
                    passphrase: ssh.passphrase.clone(),
                    known_hosts: ssh.known_hosts.clone().unwrap_or_default(),
                }),
                None => Auth::None,
            },
            None => Auth::None,
        });
    }
    let credentials = if let Some(app) = &config.github_app {
        let token = app
            .installation_token()
            .await
            .map_err(|e| github_app_error(&e))?;
        HttpCredentials::Basic {
            username: ACCESS_TOKEN_USERNAME.to_owned(),
            password: token.token,
        }
    } else {
        match (
            &config.bearer_token,
            &config.http_username,
            &config.http_password,
        ) {
            (Some(token), _, _) => HttpCredentials::Bearer {
                token: token.clone(),
            },
            (None, Some(username), Some(password)) => HttpCredentials::Basic {
                username: username.clone(),
                password: password.clone(),
            },
            _ => HttpCredentials::None,
        }
    };
    Ok(Auth::Http(HttpAuth {
        credentials,
        certificate_authority: config.certificate_authority.clone(),
        allow_insecure_http: config.allow_insecure_http,
    }))
}

/// A diagnostic for a failed token exchange, at the `git.github_app` setting to fix.
pub fn github_app_error(error: &AppError) -> Diagnostics {
    let (setting, hint) = match error {
        AppError::Id { what, .. } if *what == "app ID" => {
            ("app_id", "Use the app's numeric ID from its settings page.")
        }
        AppError::Id { .. } => (
            "installation_id",
            "Use the numeric ID of the app's installation.",
        ),
        AppError::Installation => ("installation_id", ""),
        AppError::Key(_) => (
            "private_key",
            "Use the PEM private key generated on the app's settings page.",
        ),
        AppError::Url { .. } => ("base_url", ""),
        AppError::Request { .. } => (
            "base_url",
            "Check that the GitHub API is reachable from where Terraform runs.",
        ),
        AppError::Status { status: 401, .. } => (
            "private_key",
            "GitHub rejected the app's token: check the app ID and that the private key is \
             current (not revoked).",
        ),
        AppError::Status { status: 404, .. } => (
            "installation_id",
            "Check that the app is installed on the repository's owner and the installation ID \
             (or owner) is right.",
        ),
        AppError::Status { .. } | AppError::Answer { .. } => ("base_url", ""),
    };
    let path = AttrPath::attr("git")
        .then_attr("github_app")
        .then_attr(setting);
    Diagnostics::from_error(
        "GitHub App Authentication Failed",
        format!(
            "Minting a GitHub App installation token failed: {error}. {hint} Fix the provider \
             setting {path}. Nothing was changed."
        )
        .replace(". . ", ". ")
        .replace(".  Fix", ". Fix"),
    )
}

/// A diagnostic for a Git failure, at the attribute to fix.
pub(crate) fn git_error(error: &GitError) -> Diagnostics {
    let (path, summary, hint) = match error {
        GitError::Auth { .. } => (
            "url",
            "Git Authentication Failed",
            "Check the provider's git.http or git.ssh credentials and that they may push.",
        ),
        GitError::HostKey { .. } => (
            "url",
            "Unknown SSH Host Key",
            "Add the server's host key to the provider's git.ssh.known_hosts.",
        ),
        GitError::Certificate { .. } => (
            "url",
            "Untrusted Git Server Certificate",
            "Set the provider's git.http.certificate_authority to the CA that signs it.",
        ),
        GitError::Connect { .. } => (
            "url",
            "Git Server Unreachable",
            "Check the URL and that the server is reachable from where Terraform runs.",
        ),
        GitError::BranchNotFound { .. } => (
            "branch",
            "Branch Not Found",
            "Use an existing branch; a new branch is only created in an empty repository.",
        ),
        GitError::Path { .. } => ("path", "Invalid Repository Path", ""),
        GitError::Url { .. } | GitError::Config(_) => ("url", "Invalid Git Settings", ""),
        _ => ("url", "Git Operation Failed", ""),
    };
    Diagnostics::from_error_at(
        AttrPath::attr(path),
        summary,
        format!("{error}. {hint} Nothing was changed in the cluster by this step.")
            .replace(". .", "."),
    )
}

/// Git options whose cancel flag follows the context's cancellation.
pub(crate) fn git_options(ctx: &Context<impl GitAccess>) -> Options {
    let flag = Arc::new(AtomicBool::new(false));
    let token = ctx.cancellation().clone();
    let set = flag.clone();
    // Forwards a cancellation while the Git operation holds the flag; ends with it.
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = token.cancelled() => {
                    set.store(true, Ordering::SeqCst);
                    return;
                }
                () = tokio::time::sleep(Duration::from_millis(500)) => {
                    if Arc::strong_count(&set) == 1 {
                        return;
                    }
                }
            }
        }
    });
    Options {
        cancel: Some(flag),
        ..Options::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_errors_name_the_setting_to_fix() {
        let cases = [
            (
                AppError::Status {
                    url: "https://api.github.com/app/installations/1/access_tokens".into(),
                    status: 404,
                    message: "Not Found".into(),
                },
                "git.github_app.installation_id",
            ),
            (AppError::Key("bad".into()), "git.github_app.private_key"),
            (
                AppError::Request {
                    url: "https://ghe.example/api/v3".into(),
                    message: "connection refused".into(),
                },
                "git.github_app.base_url",
            ),
        ];
        for (error, setting) in cases {
            let d = github_app_error(&error);
            assert_eq!(d.0[0].summary, "GitHub App Authentication Failed");
            assert!(
                d.0[0]
                    .detail
                    .contains(&format!("Fix the provider setting {setting}.")),
                "{}",
                d.0[0].detail
            );
        }
    }
}
