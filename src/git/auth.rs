//! Credentials for reaching a repository: HTTPS basic or bearer auth with an optional CA
//! certificate, and SSH private keys with `known_hosts` verification. Every secret is a
//! [`Secret`], so `Debug` of these types never shows one. No I/O.

use super::redact::{Redactor, Secret};

/// How to authenticate to the repository. The variant must match the URL's scheme.
#[derive(Clone, Debug, Default)]
pub enum Auth {
    /// No credentials (public repositories over HTTPS).
    #[default]
    None,
    /// HTTP(S) settings.
    Http(HttpAuth),
    /// SSH settings.
    Ssh(SshAuth),
}

/// HTTP(S) authentication and TLS settings.
#[derive(Clone, Debug, Default)]
pub struct HttpAuth {
    /// The credentials sent to the server.
    pub credentials: HttpCredentials,
    /// PEM certificate(s) of the certificate authority that signs the server's certificate.
    /// When set, the server's certificate must chain to one of these (the system store is not
    /// consulted); when unset, the system store decides.
    pub certificate_authority: Option<String>,
    /// Allow plain `http://` URLs. Credentials then travel unencrypted.
    pub allow_insecure_http: bool,
}

/// Credentials for HTTP(S).
#[derive(Clone, Debug, Default)]
pub enum HttpCredentials {
    /// Anonymous access.
    #[default]
    None,
    /// HTTP basic authentication (user name and password or personal access token).
    Basic {
        /// The user name.
        username: String,
        /// The password or token.
        password: Secret,
    },
    /// A bearer token, sent as `Authorization: Bearer <token>` on every request.
    Bearer {
        /// The token.
        token: Secret,
    },
}

/// SSH authentication with a private key, and the host keys to trust.
#[derive(Clone, Debug)]
pub struct SshAuth {
    /// The user to log in as; when `None`, the URL's user, else `git`.
    pub username: Option<String>,
    /// The private key, PEM or OpenSSH format.
    pub private_key: Secret,
    /// The passphrase of the private key, if it is encrypted.
    pub passphrase: Option<Secret>,
    /// `known_hosts` lines; the server's host key must be listed for its host (`[host]:port`
    /// for ports other than 22).
    pub known_hosts: String,
}

impl Auth {
    /// A redactor that knows every secret in these settings.
    pub(crate) fn redactor(&self) -> Redactor {
        let mut r = Redactor::default();
        match self {
            Auth::None => {}
            Auth::Http(http) => match &http.credentials {
                HttpCredentials::None => {}
                HttpCredentials::Basic { password, .. } => r.add(password.expose()),
                HttpCredentials::Bearer { token } => r.add(token.expose()),
            },
            Auth::Ssh(ssh) => {
                r.add(ssh.private_key.expose());
                if let Some(p) = &ssh.passphrase {
                    r.add(p.expose());
                }
            }
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let auths = [
            Auth::Http(HttpAuth {
                credentials: HttpCredentials::Basic {
                    username: "bot".to_owned(),
                    password: Secret::new("pw-hunter2"),
                },
                certificate_authority: None,
                allow_insecure_http: false,
            }),
            Auth::Http(HttpAuth {
                credentials: HttpCredentials::Bearer {
                    token: Secret::new("tok-hunter2"),
                },
                ..HttpAuth::default()
            }),
            Auth::Ssh(SshAuth {
                username: None,
                private_key: Secret::new("-----BEGIN KEY-----\nkey-hunter2\n-----END KEY-----"),
                passphrase: Some(Secret::new("pass-hunter2")),
                known_hosts: String::new(),
            }),
        ];
        for auth in auths {
            let debug = format!("{auth:?}");
            assert!(!debug.contains("hunter2"), "{debug}");
            assert!(debug.contains("Secret(***)"), "{debug}");
        }
    }
}
