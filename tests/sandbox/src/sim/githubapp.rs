//! GitHub App authentication of the simulated source-controller, as Flux's
//! `fluxcd/pkg/auth/githubapp` does for a GitRepository with `spec.provider: github`: the
//! Secret's `githubAppID`, `githubAppInstallationID` (or `githubAppInstallationOwner`),
//! `githubAppPrivateKey` and `githubAppBaseURL` (default `https://api.github.com`) give a JWT
//! (RS256, `iss` = the app ID) exchanged for an installation token at
//! `POST <base>/app/installations/<id>/access_tokens`; Git then uses basic auth
//! `x-access-token:<token>`.
//!
//! Only plain-HTTP API endpoints are reachable from the sandbox (local stand-ins of the GitHub
//! API); an `https://` base URL fails as an unreachable API would.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;

/// The user name GitHub expects with an installation token.
pub const ACCESS_TOKEN_USERNAME: &str = "x-access-token";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The app's JWT.
pub fn jwt(app_id: u64, pem: &str, now: u64) -> Result<String, String> {
    let key = match PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| format!("could not parse private key: {e}"))?
    {
        PrivateKeyDer::Pkcs1(d) => ring::signature::RsaKeyPair::from_der(d.secret_pkcs1_der()),
        PrivateKeyDer::Pkcs8(d) => ring::signature::RsaKeyPair::from_pkcs8(d.secret_pkcs8_der()),
        _ => return Err("could not parse private key: not an RSA key".into()),
    }
    .map_err(|e| format!("could not parse private key: {e}"))?;
    let input = format!(
        "{}.{}",
        b64(br#"{"alg":"RS256","typ":"JWT"}"#),
        b64(serde_json::json!({"iat": now.saturating_sub(30), "exp": now + 90, "iss": app_id.to_string()})
            .to_string()
            .as_bytes())
    );
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut signature,
    )
    .map_err(|_| "signing the app token failed".to_owned())?;
    Ok(format!("{input}.{}", b64(&signature)))
}

/// Mints an installation token with the Secret's GitHub App keys.
pub async fn installation_token(data: &BTreeMap<String, String>) -> Result<String, String> {
    let number = |key: &str| data.get(key).and_then(|v| v.trim().parse::<u64>().ok());
    let app_id =
        number("githubAppID").ok_or("app ID must be provided to use github app authentication")?;
    let key = data
        .get("githubAppPrivateKey")
        .ok_or("private key must be provided to use github app authentication")?;
    let base = data
        .get("githubAppBaseURL")
        .map_or("https://api.github.com", String::as_str)
        .trim_end_matches('/')
        .to_owned();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let token = jwt(app_id, key, now)?;
    let client: Client<_, Full<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let call = |method: &'static str, url: String| {
        let request = hyper::Request::builder()
            .method(method)
            .uri(&url)
            .header("Authorization", format!("Bearer {token}"))
            .header("Accept", "application/vnd.github+json")
            .body(Full::new(bytes::Bytes::new()));
        let client = client.clone();
        async move {
            if !url.starts_with("http://") {
                return Err(format!("Post \"{url}\": the sandbox cannot reach this API"));
            }
            let response = client
                .request(request.map_err(|e| e.to_string())?)
                .await
                .map_err(|e| format!("Post \"{url}\": {e}"))?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            if !status.is_success() {
                return Err(format!("{method} {url}: {}", status.as_u16()));
            }
            serde_json::from_slice::<serde_json::Value>(&body).map_err(|e| e.to_string())
        }
    };
    let installation = match number("githubAppInstallationID") {
        Some(id) => id,
        None => {
            let owner = data.get("githubAppInstallationOwner").ok_or(
                "app installation owner or ID must be provided to use github app authentication",
            )?;
            let found = match call("GET", format!("{base}/orgs/{owner}/installation")).await {
                Ok(v) => v,
                Err(_) => call("GET", format!("{base}/users/{owner}/installation")).await?,
            };
            found["id"]
                .as_u64()
                .ok_or("no installation id in the answer")?
        }
    };
    let answer = call(
        "POST",
        format!("{base}/app/installations/{installation}/access_tokens"),
    )
    .await?;
    answer["token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "no token in the answer".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn missing_keys_fail_as_flux_reports_them() {
        let empty = BTreeMap::new();
        assert_eq!(
            installation_token(&empty).await,
            Err("app ID must be provided to use github app authentication".into())
        );
        let data = BTreeMap::from([
            ("githubAppID".to_owned(), "1".to_owned()),
            ("githubAppPrivateKey".to_owned(), "nope".to_owned()),
        ]);
        assert!(
            installation_token(&data)
                .await
                .unwrap_err()
                .starts_with("could not parse private key")
        );
    }
}
