//! Downloading a document over HTTP(S) — the Flux Operator's release `install.yaml` — with the
//! system's root certificates, redirects followed (GitHub release assets redirect to their
//! storage), a size limit and a timeout. Errors name the URL and what failed.
//!
//! Lives in `resources/`: knows nothing of Terraform, Kubernetes or Flux.

use std::time::Duration;

use http_body_util::{BodyExt as _, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// The largest document accepted (the operator's install is a few hundred KiB).
const MAX_BYTES: usize = 16 * 1024 * 1024;
/// How many redirects are followed.
const MAX_REDIRECTS: usize = 5;
/// How long one download may take.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Why a download failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URL does not parse or is not http(s).
    #[error("invalid URL {url:?}: {message}")]
    ParseUrl {
        /// The URL.
        url: String,
        /// Why.
        message: String,
    },
    /// The system's root certificates could not be loaded.
    #[error("loading the system's root certificates: {0}")]
    LoadRoots(String),
    /// The request failed (connection, TLS, timeout).
    #[error("downloading {url}: {message}")]
    Request {
        /// The URL.
        url: String,
        /// Why.
        message: String,
    },
    /// The server answered with an error status.
    #[error("downloading {url}: the server answered HTTP {status}")]
    Status {
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// The body is too large or not UTF-8.
    #[error("downloading {url}: {message}")]
    ReadBody {
        /// The URL.
        url: String,
        /// Why.
        message: String,
    },
}

/// Downloads `url` as text.
///
/// # Errors
///
/// [`FetchError`].
pub async fn fetch_text(url: &str) -> Result<String, FetchError> {
    tokio::time::timeout(TIMEOUT, fetch_inner(url))
        .await
        .unwrap_or_else(|_| {
            Err(FetchError::Request {
                url: url.to_owned(),
                message: format!("timed out after {}s", TIMEOUT.as_secs()),
            })
        })
}

async fn fetch_inner(url: &str) -> Result<String, FetchError> {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| FetchError::LoadRoots(e.to_string()))?
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<_, Empty<bytes::Bytes>> =
        Client::builder(TokioExecutor::new()).build(connector);
    let mut current = url.to_owned();
    for _ in 0..=MAX_REDIRECTS {
        let uri: http::Uri =
            current
                .parse()
                .map_err(|e: http::uri::InvalidUri| FetchError::ParseUrl {
                    url: current.clone(),
                    message: e.to_string(),
                })?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) {
            return Err(FetchError::ParseUrl {
                url: current,
                message: "only http:// and https:// URLs are supported".into(),
            });
        }
        let response = client
            .get(uri.clone())
            .await
            .map_err(|e| FetchError::Request {
                url: current.clone(),
                message: error_chain(&e),
            })?;
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(http::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| FetchError::Status {
                    url: current.clone(),
                    status: status.as_u16(),
                })?;
            current = resolve(&uri, location);
            continue;
        }
        if !status.is_success() {
            return Err(FetchError::Status {
                url: current,
                status: status.as_u16(),
            });
        }
        let body = Limited::new(response.into_body(), MAX_BYTES)
            .collect()
            .await
            .map_err(|e| FetchError::ReadBody {
                url: current.clone(),
                message: e.to_string(),
            })?
            .to_bytes();
        return String::from_utf8(body.to_vec()).map_err(|_| FetchError::ReadBody {
            url: current,
            message: "the document is not UTF-8 text".into(),
        });
    }
    Err(FetchError::Request {
        url: url.to_owned(),
        message: format!("more than {MAX_REDIRECTS} redirects"),
    })
}

/// An absolute `Location`, or one relative to `base`.
fn resolve(base: &http::Uri, location: &str) -> String {
    if location.contains("://") {
        return location.to_owned();
    }
    let scheme = base.scheme_str().unwrap_or("https");
    let authority = base.authority().map(|a| a.as_str()).unwrap_or_default();
    format!("{scheme}://{authority}{location}")
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_redirects_resolve_against_the_request() {
        let base: http::Uri = "https://example.com/a/b".parse().unwrap();
        assert_eq!(resolve(&base, "/c"), "https://example.com/c");
        assert_eq!(
            resolve(&base, "https://other.example/d"),
            "https://other.example/d"
        );
    }

    #[tokio::test]
    async fn unsupported_schemes_are_refused() {
        let err = fetch_text("ftp://example.com/x").await.unwrap_err();
        assert!(matches!(err, FetchError::ParseUrl { .. }), "{err}");
    }
}
