//! Authenticating as a GitHub App installation: a JWT signed with the app's private key (RS256,
//! `iss` = the app ID, issued 60 s in the past, valid 9 minutes) is exchanged for an
//! installation access token at `POST <api>/app/installations/<id>/access_tokens` (the
//! installation found first by owner, `GET <api>/orgs/<owner>/installation` then
//! `/users/<owner>/installation`, when only the owner is given). Git then authenticates with
//! HTTP basic auth, user `x-access-token` and the token as password, as GitHub documents.
//!
//! The API base URL is configurable for GitHub Enterprise Server (`https://<host>/api/v3`),
//! with an optional private CA. The private key, the JWT and the token are [`Secret`]s: no
//! error, `Debug` output or log line contains them. Knows nothing of Terraform or Kubernetes.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::redact::Secret;

/// The GitHub API of github.com.
pub const DEFAULT_API_URL: &str = "https://api.github.com";
/// The user name GitHub expects with an installation token.
pub const ACCESS_TOKEN_USERNAME: &str = "x-access-token";
/// How long a token request may take.
const TIMEOUT: Duration = Duration::from_secs(30);
/// The largest API answer read.
const MAX_BYTES: usize = 1024 * 1024;

/// A GitHub App and the installation to act as.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GitHubApp {
    /// The app's ID (a number).
    pub app_id: String,
    /// The installation's ID (a number); or give `installation_owner`.
    pub installation_id: Option<String>,
    /// The organisation or user the app is installed for, when the installation ID is not given.
    pub installation_owner: Option<String>,
    /// The app's private key, PEM (PKCS#1 `RSA PRIVATE KEY` as GitHub issues it, or PKCS#8).
    pub private_key: Secret,
    /// The API base URL; [`DEFAULT_API_URL`] when `None`.
    pub api_url: Option<String>,
    /// PEM certificate(s) of a private CA that signs the API server's certificate.
    pub certificate_authority: Option<String>,
    /// Allow a plain `http://` API URL.
    pub allow_insecure_http: bool,
}

/// Why an installation token could not be obtained. Messages never contain the key or a token.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The app or installation ID is not a number.
    #[error("{what} {value:?} is not a number")]
    Id {
        /// `app ID` or `installation ID`.
        what: &'static str,
        /// The value given.
        value: String,
    },
    /// Neither or both of installation ID and owner were given.
    #[error("exactly one of the installation ID and the installation owner must be set")]
    Installation,
    /// The private key is not an RSA key in PEM.
    #[error("the private key is not a PEM-encoded RSA private key: {0}")]
    Key(String),
    /// The API URL is unusable.
    #[error("invalid GitHub API URL {url:?}: {reason}")]
    Url {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The request failed (connection, TLS, timeout).
    #[error("requesting {url}: {message}")]
    Request {
        /// The URL.
        url: String,
        /// Why.
        message: String,
    },
    /// GitHub answered with an error status.
    #[error("{url} answered HTTP {status}: {message}")]
    Status {
        /// The URL.
        url: String,
        /// The status.
        status: u16,
        /// GitHub's `message`, if any.
        message: String,
    },
    /// The answer is not what GitHub documents.
    #[error("unexpected answer from {url}: {message}")]
    Answer {
        /// The URL.
        url: String,
        /// What is missing.
        message: String,
    },
}

/// An installation access token.
#[derive(Clone, Debug)]
pub struct InstallationToken {
    /// The token (Git password for [`ACCESS_TOKEN_USERNAME`]).
    pub token: Secret,
    /// When it expires (RFC 3339), as GitHub says.
    pub expires_at: String,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The app's JWT at `now` (seconds since the epoch): RS256, `iat` = now − 60, `exp` = now +
/// 540, `iss` = the app ID.
///
/// # Errors
///
/// [`AppError::Id`] and [`AppError::Key`].
pub fn app_jwt(app_id: &str, private_key: &Secret, now: u64) -> Result<Secret, AppError> {
    let id: u64 = app_id.trim().parse().map_err(|_| AppError::Id {
        what: "app ID",
        value: app_id.to_owned(),
    })?;
    let pem = private_key.expose().as_bytes();
    let key = match PrivateKeyDer::from_pem_slice(pem).map_err(|e| AppError::Key(e.to_string()))? {
        PrivateKeyDer::Pkcs1(der) => ring::signature::RsaKeyPair::from_der(der.secret_pkcs1_der()),
        PrivateKeyDer::Pkcs8(der) => {
            ring::signature::RsaKeyPair::from_pkcs8(der.secret_pkcs8_der())
        }
        _ => return Err(AppError::Key("an RSA key is required".into())),
    }
    .map_err(|e| AppError::Key(e.to_string()))?;
    let header = b64(br#"{"alg":"RS256","typ":"JWT"}"#);
    let claims = b64(
        serde_json::json!({"iat": now.saturating_sub(60), "exp": now + 540, "iss": id.to_string()})
            .to_string()
            .as_bytes(),
    );
    let signing_input = format!("{header}.{claims}");
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        signing_input.as_bytes(),
        &mut signature,
    )
    .map_err(|_| AppError::Key("signing failed".into()))?;
    Ok(Secret::new(format!("{signing_input}.{}", b64(&signature))))
}

impl GitHubApp {
    /// The API base URL without a trailing slash.
    pub fn api_url(&self) -> String {
        self.api_url
            .as_deref()
            .unwrap_or(DEFAULT_API_URL)
            .trim_end_matches('/')
            .to_owned()
    }

    /// Mints an installation access token.
    ///
    /// # Errors
    ///
    /// [`AppError`].
    pub async fn installation_token(&self) -> Result<InstallationToken, AppError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let jwt = app_jwt(&self.app_id, &self.private_key, now)?;
        let api = self.api_url();
        let client = self.client(&api)?;
        let id = match (&self.installation_id, &self.installation_owner) {
            (Some(id), None) => id.trim().parse::<u64>().map_err(|_| AppError::Id {
                what: "installation ID",
                value: id.clone(),
            })?,
            (None, Some(owner)) => {
                let mut found = None;
                let mut last = None;
                for kind in ["orgs", "users"] {
                    let url = format!("{api}/{kind}/{owner}/installation");
                    match call(&client, http::Method::GET, &url, &jwt).await {
                        Ok(body) => {
                            found = body["id"].as_u64();
                            if found.is_some() {
                                break;
                            }
                        }
                        Err(e) => last = Some(e),
                    }
                }
                match (found, last) {
                    (Some(id), _) => id,
                    (None, Some(e)) => return Err(e),
                    (None, None) => return Err(AppError::Installation),
                }
            }
            _ => return Err(AppError::Installation),
        };
        let url = format!("{api}/app/installations/{id}/access_tokens");
        let body = call(&client, http::Method::POST, &url, &jwt).await?;
        let token = body["token"].as_str().ok_or_else(|| AppError::Answer {
            url: url.clone(),
            message: "no token in the answer".into(),
        })?;
        Ok(InstallationToken {
            token: Secret::new(token),
            expires_at: body["expires_at"].as_str().unwrap_or_default().to_owned(),
        })
    }

    fn client(
        &self,
        api: &str,
    ) -> Result<
        Client<
            hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
            Full<bytes::Bytes>,
        >,
        AppError,
    > {
        let bad = |reason: &str| AppError::Url {
            url: api.to_owned(),
            reason: reason.to_owned(),
        };
        let uri: http::Uri = api.parse().map_err(|_| bad("not a URL"))?;
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") if self.allow_insecure_http => {}
            Some("http") => {
                return Err(bad(
                    "plain http:// is refused; use https:// (or allow insecure HTTP in the \
                     provider's git.http settings)",
                ));
            }
            _ => return Err(bad("only http(s):// URLs are supported")),
        }
        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        let builder = match &self.certificate_authority {
            Some(pem) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                    let cert = cert.map_err(|e| bad(&format!("certificate authority: {e}")))?;
                    roots
                        .add(cert)
                        .map_err(|e| bad(&format!("certificate authority: {e}")))?;
                }
                builder.with_tls_config(
                    rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
                        rustls::crypto::ring::default_provider(),
                    ))
                    .with_safe_default_protocol_versions()
                    .map_err(|e| bad(&e.to_string()))?
                    .with_root_certificates(roots)
                    .with_no_client_auth(),
                )
            }
            None => builder
                .with_native_roots()
                .map_err(|e| bad(&format!("system root certificates: {e}")))?,
        };
        let connector = builder.https_or_http().enable_http1().build();
        Ok(Client::builder(TokioExecutor::new()).build(connector))
    }
}

async fn call(
    client: &Client<
        hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
        Full<bytes::Bytes>,
    >,
    method: http::Method,
    url: &str,
    jwt: &Secret,
) -> Result<serde_json::Value, AppError> {
    let request = http::Request::builder()
        .method(method)
        .uri(url)
        .header(http::header::ACCEPT, "application/vnd.github+json")
        .header(http::header::USER_AGENT, "terraform-provider-flux")
        .header("X-GitHub-Api-Version", "2022-11-28")
        .header(
            http::header::AUTHORIZATION,
            format!("Bearer {}", jwt.expose()),
        )
        .body(Full::new(bytes::Bytes::new()))
        .map_err(|e| AppError::Request {
            url: url.to_owned(),
            message: e.to_string(),
        })?;
    let exchange = async {
        let response = client
            .request(request)
            .await
            .map_err(|e| AppError::Request {
                url: url.to_owned(),
                message: error_chain(&e),
            })?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_BYTES)
            .collect()
            .await
            .map_err(|e| AppError::Request {
                url: url.to_owned(),
                message: e.to_string(),
            })?
            .to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        if !status.is_success() {
            return Err(AppError::Status {
                url: url.to_owned(),
                status: status.as_u16(),
                message: json["message"].as_str().unwrap_or_default().to_owned(),
            });
        }
        Ok(json)
    };
    tokio::time::timeout(TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| {
            Err(AppError::Request {
                url: url.to_owned(),
                message: format!("timed out after {}s", TIMEOUT.as_secs()),
            })
        })
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A throwaway 2048-bit RSA key generated for this test (PKCS#1, as GitHub issues them).
    fn test_key() -> Option<String> {
        let dir = tempfile::tempdir().ok()?;
        let path = dir.path().join("key");
        let status = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "rsa", "-b", "2048", "-m", "PEM", "-N", "", "-f"])
            .arg(&path)
            .status()
            .ok()?;
        status
            .success()
            .then(|| std::fs::read_to_string(&path).ok())?
    }

    #[test]
    fn jwts_are_rs256_with_the_app_id_as_issuer_and_verify_with_the_public_key() {
        let pem = test_key().expect("ssh-keygen (openssh-client) is needed to generate a key");
        let jwt = app_jwt("12345", &Secret::new(pem.clone()), 1_700_000_000).unwrap();
        let parts: Vec<&str> = jwt.expose().split('.').collect();
        assert_eq!(parts.len(), 3);
        let decode = |p: &str| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .unwrap()
        };
        let header: serde_json::Value = serde_json::from_slice(&decode(parts[0])).unwrap();
        assert_eq!(header, serde_json::json!({"alg": "RS256", "typ": "JWT"}));
        let claims: serde_json::Value = serde_json::from_slice(&decode(parts[1])).unwrap();
        assert_eq!(
            claims,
            serde_json::json!({"iat": 1_699_999_940u64, "exp": 1_700_000_540u64, "iss": "12345"})
        );
        let der = match PrivateKeyDer::from_pem_slice(pem.as_bytes()).unwrap() {
            PrivateKeyDer::Pkcs1(d) => d.secret_pkcs1_der().to_vec(),
            _ => panic!("ssh-keygen -m PEM writes PKCS#1"),
        };
        let pair = ring::signature::RsaKeyPair::from_der(&der).unwrap();
        let public = ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            pair.public().as_ref().to_vec(),
        );
        public
            .verify(
                format!("{}.{}", parts[0], parts[1]).as_bytes(),
                &decode(parts[2]),
            )
            .unwrap();
        let debug = format!("{jwt:?}");
        assert!(!debug.contains(parts[2]), "{debug}");
    }

    #[test]
    fn bad_inputs_name_the_problem_without_the_key() {
        let key = Secret::new(
            "-----BEGIN RSA PRIVATE KEY-----\nnot base64 !!\n-----END RSA PRIVATE KEY-----\n",
        );
        let err = app_jwt("x1", &key, 0).unwrap_err();
        assert_eq!(err.to_string(), "app ID \"x1\" is not a number");
        let err = app_jwt("1", &key, 0).unwrap_err();
        assert!(matches!(err, AppError::Key(_)), "{err:?}");
        assert!(!err.to_string().contains("not base64"), "{err}");
        let app = GitHubApp {
            app_id: "1".into(),
            api_url: Some("http://127.0.0.1:1".into()),
            ..GitHubApp::default()
        };
        assert!(matches!(
            app.client(&app.api_url()),
            Err(AppError::Url { .. })
        ));
        assert_eq!(
            GitHubApp {
                api_url: Some("https://ghe.example/api/v3/".into()),
                ..GitHubApp::default()
            }
            .api_url(),
            "https://ghe.example/api/v3"
        );
    }
}
