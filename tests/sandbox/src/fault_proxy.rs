//! A fault-injecting reverse proxy in front of ANY Kubernetes API server (the real
//! kube-apiserver of `scripts/real-cluster.sh`): it serves HTTPS on loopback with its own CA and
//! token (a kubeconfig is written for it, as for the sandbox), applies the same fault rules as
//! the sandbox ([`crate::faults`]: error responses, delays, connection resets, watch streams cut
//! after n events) and forwards everything else to the upstream server with the upstream
//! kubeconfig's credentials, streaming responses (watches included) back unchanged.
//!
//! ```text
//! kube-sandbox fault-proxy --upstream-kubeconfig <path> --kubeconfig <path> [--listen 127.0.0.1:0]
//! ```
//!
//! Admin endpoints (not forwarded, not recorded): `GET|PUT|POST|DELETE /sandbox/faults` (the
//! sandbox's JSON shapes) and `GET|DELETE /sandbox/requests` (what was proxied, with the status
//! answered; 0 for a reset). Prints `ready https://127.0.0.1:<port>` once serving.

use crate::errors::ApiError;
use crate::faults::{FaultAction, FaultRule, FaultSettings, Faults, RequestInfo};
use crate::http::{Query, ResetConnection, fault_error, verb_of};
use crate::recorder::{RecordedRequest, Recorder};
use crate::store::now_micro;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt as _;
use serde_json::json;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Errors of the proxy's command line.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// Wrong arguments.
    #[error("{0}")]
    Usage(String),
    /// The upstream kubeconfig could not be used.
    #[error("upstream kubeconfig {path}: {message}")]
    Upstream {
        /// The file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// Serving failed.
    #[error("serving: {0}")]
    Serve(#[from] crate::tls::TlsError),
    /// Writing the kubeconfig or the ready line failed.
    #[error("{step}: {source}")]
    Io {
        /// The step.
        step: &'static str,
        /// The cause.
        source: std::io::Error,
    },
}

const USAGE: &str = "usage: kube-sandbox fault-proxy --upstream-kubeconfig <path> --kubeconfig <path> [--listen 127.0.0.1:0]";

#[derive(Clone)]
struct ProxyState {
    upstream: kube::Client,
    faults: Faults,
    recorder: Recorder,
}

/// A running proxy: its endpoint (with the kubeconfig helpers of [`crate::Served`]), the fault
/// rules and the request log.
#[derive(Debug)]
pub struct FaultProxy {
    /// The HTTPS endpoint.
    pub served: crate::Served,
    /// The fault rules applied to proxied requests.
    pub faults: Faults,
    /// What was proxied.
    pub recorder: Recorder,
}

/// A client for the upstream kubeconfig without kube's own retries (the proxy forwards each
/// request once; retrying is the proxied client's business).
async fn upstream_client(path: &PathBuf) -> Result<kube::Client, ProxyError> {
    let err = |message: String| ProxyError::Upstream {
        path: path.clone(),
        message,
    };
    let kubeconfig = kube::config::Kubeconfig::read_from(path).map_err(|e| err(e.to_string()))?;
    let mut config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .map_err(|e| err(e.to_string()))?;
    config.default_retry = false;
    config.read_timeout = None;
    kube::Client::try_from(config).map_err(|e| err(e.to_string()))
}

/// Starts a proxy to the server of `upstream_kubeconfig` on `listen`.
pub async fn start(
    upstream_kubeconfig: &PathBuf,
    listen: SocketAddr,
) -> Result<FaultProxy, ProxyError> {
    let state = ProxyState {
        upstream: upstream_client(upstream_kubeconfig).await?,
        faults: Faults::default(),
        recorder: Recorder::default(),
    };
    let router = axum::Router::new()
        .fallback(handle)
        .with_state(Arc::new(state.clone()));
    let served = crate::tls::serve(router, listen).await?;
    Ok(FaultProxy {
        served,
        faults: state.faults,
        recorder: state.recorder,
    })
}

/// `kube-sandbox fault-proxy ...`: runs until SIGTERM or SIGINT.
pub async fn run_cli(
    mut args: impl Iterator<Item = String>,
    out: &mut dyn Write,
) -> Result<(), ProxyError> {
    let mut upstream = None;
    let mut kubeconfig = None;
    let mut listen = SocketAddr::from(([127, 0, 0, 1], 0));
    while let Some(a) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| ProxyError::Usage(format!("{a} needs a value\n{USAGE}")))
        };
        match a.as_str() {
            "--upstream-kubeconfig" => upstream = Some(PathBuf::from(value()?)),
            "--kubeconfig" => kubeconfig = Some(PathBuf::from(value()?)),
            "--listen" => {
                listen = value()?
                    .parse()
                    .map_err(|_| ProxyError::Usage(format!("--listen must be ip:port\n{USAGE}")))?
            }
            other => {
                return Err(ProxyError::Usage(format!(
                    "unknown argument {other:?}\n{USAGE}"
                )));
            }
        }
    }
    let upstream = upstream
        .ok_or_else(|| ProxyError::Usage(format!("--upstream-kubeconfig is required\n{USAGE}")))?;
    let kubeconfig = kubeconfig
        .ok_or_else(|| ProxyError::Usage(format!("--kubeconfig is required\n{USAGE}")))?;
    let io = |step| move |source| ProxyError::Io { step, source };
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(io("installing signal handlers"))?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(io("installing signal handlers"))?;
    let proxy = start(&upstream, listen).await?;
    proxy
        .served
        .write_kubeconfig(&kubeconfig)
        .map_err(io("writing the kubeconfig"))?;
    writeln!(out, "ready {}", proxy.served.url)
        .and_then(|()| out.flush())
        .map_err(io("writing the ready line"))?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    proxy.served.shutdown().await;
    Ok(())
}

fn json_response(code: u16, v: &serde_json::Value) -> Response {
    let mut r = (
        axum::http::StatusCode::from_u16(code).unwrap_or(axum::http::StatusCode::OK),
        v.to_string(),
    )
        .into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn admin(state: &ProxyState, method: &Method, path: &str, body: &Bytes) -> Response {
    match (method.clone(), path) {
        (Method::GET, "/sandbox/requests") => json_response(200, &json!(state.recorder.requests())),
        (Method::DELETE, "/sandbox/requests") => {
            state.recorder.clear();
            json_response(200, &json!({}))
        }
        (Method::GET, "/sandbox/faults") => json_response(200, &json!(state.faults.settings())),
        (Method::PUT, "/sandbox/faults") => match serde_json::from_slice::<FaultSettings>(body) {
            Ok(s) => {
                state.faults.set(s);
                json_response(200, &json!(state.faults.settings()))
            }
            Err(e) => ApiError::bad_request(e.to_string()).into_response(),
        },
        (Method::POST, "/sandbox/faults") => match serde_json::from_slice::<FaultRule>(body) {
            Ok(r) => {
                state.faults.add(r);
                json_response(200, &json!(state.faults.settings()))
            }
            Err(e) => ApiError::bad_request(e.to_string()).into_response(),
        },
        (Method::DELETE, "/sandbox/faults") => {
            state.faults.clear();
            json_response(200, &json!({}))
        }
        _ => ApiError::PlainNotFound.into_response(),
    }
}

async fn handle(State(state): State<Arc<ProxyState>>, req: Request) -> Response {
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or("").to_string();
    let body = axum::body::to_bytes(body, 64 * 1024 * 1024)
        .await
        .unwrap_or_default();
    if path.starts_with("/sandbox/") {
        return admin(&state, &parts.method, &path, &body);
    }
    let q = Query::parse(&query);
    let (verb, resource, name) = verb_of(&parts.method, &path, &q);
    let user_agent = parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut rec = RecordedRequest {
        seq: 0,
        time: now_micro(),
        method: parts.method.to_string(),
        path: path.clone(),
        query: query.clone(),
        verb: verb.clone(),
        content_type: parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        field_manager: q.get("fieldManager").map(str::to_owned),
        dry_run: q.get("dryRun").is_some_and(|d| d == "All"),
        force: q.get("force") == Some("true"),
        body: None,
        user_agent: user_agent.clone(),
        status: 0,
    };
    let actions = state.faults.evaluate(&RequestInfo {
        method: parts.method.as_str(),
        path: &path,
        verb: &verb,
        resource: resource.as_deref(),
        name: name.as_deref(),
        user_agent: user_agent.as_deref(),
        dry_run: rec.dry_run,
    });
    let mut cut_after = None;
    for a in actions {
        match a {
            FaultAction::Delay { ms } => tokio::time::sleep(Duration::from_millis(ms)).await,
            FaultAction::Error {
                code,
                retry_after,
                message,
            } => {
                let resp = fault_error(code, retry_after, message);
                rec.status = resp.status().as_u16();
                state.recorder.push(rec);
                return resp;
            }
            FaultAction::ResetConnection => {
                state.recorder.push(rec);
                let mut r =
                    ApiError::internal("connection reset (fault injection)").into_response();
                r.extensions_mut().insert(ResetConnection);
                return r;
            }
            FaultAction::WatchCut { after_events } => cut_after = Some(after_events),
            // The upstream server decides about expiry; an expired watch is answered as the
            // server would, with a 410 ERROR event.
            FaultAction::WatchExpired => {
                rec.status = 200;
                state.recorder.push(rec);
                let event = json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1",
                    "metadata": {}, "status": "Failure", "message": "too old resource version (fault injection)",
                    "reason": "Expired", "code": 410}});
                return json_response(200, &event);
            }
        }
    }
    // Forward: the path and query as received, the upstream credentials (kube's auth layer).
    parts.headers.remove(header::AUTHORIZATION);
    parts.headers.remove(header::HOST);
    let uri = if query.is_empty() {
        path.clone()
    } else {
        format!("{path}?{query}")
    };
    let Ok(uri) = uri.parse::<axum::http::Uri>() else {
        return ApiError::bad_request("unparsable request URI").into_response();
    };
    parts.uri = uri;
    let forwarded = axum::http::Request::from_parts(parts, kube::client::Body::from(body.to_vec()));
    let upstream = match state.upstream.send(forwarded).await {
        Ok(r) => r,
        Err(e) => {
            rec.status = 502;
            state.recorder.push(rec);
            return fault_error(
                502,
                None,
                Some(format!("fault-proxy: upstream failed: {e}")),
            );
        }
    };
    rec.status = upstream.status().as_u16();
    state.recorder.push(rec);
    let (parts, body) = upstream.into_parts();
    let body = match cut_after {
        None => Body::new(body.map_err(axum::Error::new)),
        Some(n) => cut_stream(body, n),
    };
    Response::from_parts(parts, body)
}

/// A watch body that ends after `events` complete lines (events) have been passed on.
fn cut_stream(body: kube::client::Body, events: usize) -> Body {
    let stream = futures::stream::unfold(
        (body, 0usize, false),
        move |(mut body, mut seen, done)| async move {
            if done || seen >= events {
                return None;
            }
            loop {
                match body.frame().await {
                    None => return None,
                    Some(Err(e)) => return Some((Err(axum::Error::new(e)), (body, seen, true))),
                    Some(Ok(frame)) => {
                        let Ok(data) = frame.into_data() else {
                            continue;
                        };
                        // Pass on whole events only, up to the limit.
                        let mut end = data.len();
                        let mut count = seen;
                        for (i, b) in data.iter().enumerate() {
                            if *b == b'\n' {
                                count += 1;
                                if count >= events {
                                    end = i + 1;
                                    break;
                                }
                            }
                        }
                        seen = count;
                        return Some((
                            Ok::<_, axum::Error>(data.slice(..end)),
                            (body, seen, false),
                        ));
                    }
                }
            }
        },
    );
    Body::from_stream(stream)
}
