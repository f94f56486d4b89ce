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
    /// A digest of every setting here (credentials, CA, `known_hosts`), for detecting a
    /// credential rotation without storing the credentials: hex HMAC-SHA-256 keyed with `salt`
    /// over an unambiguous (length-prefixed) encoding. Use a random salt kept next to the digest,
    /// so that equal passwords do not give equal digests across installations and a weak
    /// password cannot be looked up in a precomputed table.
    pub fn digest(&self, salt: &[u8]) -> String {
        let mut enc = Vec::new();
        let mut field = |tag: u8, value: &[u8]| {
            enc.push(tag);
            enc.extend_from_slice(&u64::try_from(value.len()).unwrap_or(u64::MAX).to_be_bytes());
            enc.extend_from_slice(value);
        };
        match self {
            Auth::None => field(0, b"none"),
            Auth::Http(http) => {
                field(0, b"http");
                match &http.credentials {
                    HttpCredentials::None => field(1, b"none"),
                    HttpCredentials::Basic { username, password } => {
                        field(1, b"basic");
                        field(2, username.as_bytes());
                        field(3, password.expose().as_bytes());
                    }
                    HttpCredentials::Bearer { token } => {
                        field(1, b"bearer");
                        field(3, token.expose().as_bytes());
                    }
                }
                field(
                    4,
                    http.certificate_authority
                        .as_deref()
                        .unwrap_or("")
                        .as_bytes(),
                );
                field(5, &[u8::from(http.allow_insecure_http)]);
            }
            Auth::Ssh(ssh) => {
                field(0, b"ssh");
                field(2, ssh.username.as_deref().unwrap_or("").as_bytes());
                field(3, ssh.private_key.expose().as_bytes());
                field(
                    6,
                    ssh.passphrase
                        .as_ref()
                        .map_or("", |p| p.expose())
                        .as_bytes(),
                );
                field(7, ssh.known_hosts.as_bytes());
            }
        }
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, salt);
        hex::encode(ring::hmac::sign(&key, &enc).as_ref())
    }

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

    fn basic(user: &str, password: &str) -> Auth {
        Auth::Http(HttpAuth {
            credentials: HttpCredentials::Basic {
                username: user.to_owned(),
                password: Secret::new(password),
            },
            ..HttpAuth::default()
        })
    }

    #[test]
    fn digest_changes_with_any_setting_and_salt() {
        let salt = b"salt-1";
        let base = basic("bot", "pw1").digest(salt);
        assert_eq!(base.len(), 64);
        assert_eq!(basic("bot", "pw1").digest(salt), base);
        let bearer = |t: &str| {
            Auth::Http(HttpAuth {
                credentials: HttpCredentials::Bearer {
                    token: Secret::new(t),
                },
                ..HttpAuth::default()
            })
        };
        let mut with_ca = basic("bot", "pw1");
        if let Auth::Http(h) = &mut with_ca {
            h.certificate_authority = Some("-----BEGIN CERTIFICATE-----".to_owned());
        }
        let others = [
            basic("bot", "pw2").digest(salt),
            basic("bot2", "pw1").digest(salt),
            // Field boundaries are unambiguous: "bo"+"tpw1" differs from "bot"+"pw1".
            basic("bo", "tpw1").digest(salt),
            basic("bot", "pw1").digest(b"salt-2"),
            bearer("pw1").digest(salt),
            with_ca.digest(salt),
            Auth::None.digest(salt),
        ];
        for (i, other) in others.iter().enumerate() {
            assert_ne!(other, &base, "case {i}");
        }
        assert!(!base.contains("pw1"));
    }

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
