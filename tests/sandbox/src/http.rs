//! The HTTP surface: routing of `/api`, `/apis`, `/version`, health, the resource paths
//! (`[/namespaces/{ns}]/{plural}[/{name}[/{sub}]]`), watch streams (NDJSON with bookmarks and
//! 410 Expired), Table output for kubectl, fault injection, the request recorder, and the
//! `/sandbox/...` admin endpoints.
//!
//! Wire shapes follow kube 5's client code and the Kubernetes API concepts page. Storage
//! semantics live in `store`; this module only translates between HTTP and [`Inner`].

use crate::errors::ApiError;
use crate::faults::{FaultAction, FaultRule, FaultSettings, RequestInfo};
use crate::recorder::RecordedRequest;
use crate::registry::{ResourceType, version_priority};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::store::{DeleteOpts, EventType, Inner, Reply, StoreEvent, Target, WriteOpts, now_micro};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sha2::Digest as _;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Marker extension on a response: the socket server must abort the connection instead of
/// answering.
#[derive(Debug, Clone, Copy)]
pub struct ResetConnection;

const AGG_CT: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    pub(crate) fn parse(q: &str) -> Self {
        Query(
            form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .filter(|(k, _)| !k.is_empty())
                .collect(),
        )
    }
    pub(crate) fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str())
    }
}

fn json_response(code: u16, v: &Value) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    let mut r = (status, v.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn reply_response(r: Reply) -> Response {
    let mut resp = json_response(r.code, &r.body);
    for w in r.warnings {
        if let Ok(h) = HeaderValue::from_str(&format!("299 - {w:?}")) {
            resp.headers_mut().append("warning", h);
        }
    }
    resp
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

pub(crate) fn verb_of(
    method: &Method,
    path: &str,
    q: &Query,
) -> (String, Option<String>, Option<String>) {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let rest: &[&str] = match segs.as_slice() {
        ["api", _v, rest @ ..] => rest,
        ["apis", _g, _v, rest @ ..] => rest,
        _ => &[],
    };
    let (resource, name) = match rest {
        [] => return ("discovery".into(), None, None),
        [p] => (Some(p.to_string()), None),
        ["namespaces", n, "status" | "finalize"] => {
            (Some("namespaces".to_string()), Some(n.to_string()))
        }
        ["namespaces", _, p] => (Some(p.to_string()), None),
        ["namespaces", _, p, n, ..] => (Some(p.to_string()), Some(n.to_string())),
        [p, n, ..] => (Some(p.to_string()), Some(n.to_string())),
    };
    let verb = match *method {
        Method::GET if q.get("watch").is_some_and(|w| w == "true" || w == "1") => "watch",
        Method::GET if name.is_some() => "get",
        Method::GET => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if name.is_some() => "delete",
        Method::DELETE => "deletecollection",
        _ => "other",
    };
    (verb.into(), resource, name)
}

/// The axum handler behind every path.
pub(crate) async fn handle(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or("").to_string();
    let body = axum::body::to_bytes(body, 64 * 1024 * 1024)
        .await
        .unwrap_or_default();
    if path.starts_with("/sandbox/") {
        return admin(&inner, &parts.method, &path, &body);
    }
    let q = Query::parse(&query);
    let (verb, resource, name) = verb_of(&parts.method, &path, &q);
    let body_dry = parts.method == Method::DELETE
        && serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|b| b.get("dryRun").cloned())
            .is_some_and(|d| d.as_array().is_some_and(|a| !a.is_empty()));
    let mut rec = RecordedRequest {
        seq: 0,
        time: now_micro(),
        method: parts.method.to_string(),
        path: path.clone(),
        query: query.clone(),
        verb: verb.clone(),
        content_type: header_str(&parts.headers, header::CONTENT_TYPE),
        field_manager: q.get("fieldManager").map(str::to_string),
        dry_run: q.get("dryRun").is_some_and(|d| d == "All") || body_dry,
        force: q.get("force") == Some("true"),
        body: if body.is_empty() {
            None
        } else {
            Some(String::from_utf8_lossy(&body).into_owned())
        },
        user_agent: header_str(&parts.headers, header::USER_AGENT),
        status: 0,
    };
    let latency = inner.faults.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let actions = inner.faults.evaluate(&RequestInfo {
        method: parts.method.as_str(),
        path: &path,
        verb: &verb,
        resource: resource.as_deref(),
        name: name.as_deref(),
        user_agent: rec.user_agent.as_deref(),
        dry_run: rec.dry_run,
    });
    let mut watch_fault = None;
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
                inner.recorder.push(rec);
                return resp;
            }
            FaultAction::ResetConnection => {
                inner.recorder.push(rec);
                let mut r =
                    ApiError::internal("connection reset (fault injection)").into_response();
                r.extensions_mut().insert(ResetConnection);
                return r;
            }
            FaultAction::WatchCut { after_events } => {
                watch_fault = Some(WatchFault::Cut(after_events))
            }
            FaultAction::WatchExpired => watch_fault = Some(WatchFault::Expired),
        }
    }
    let resp = dispatch(
        &inner,
        &parts.method,
        &path,
        &q,
        &parts.headers,
        body,
        watch_fault,
    );
    rec.status = resp.status().as_u16();
    inner.recorder.push(rec);
    resp
}

pub(crate) fn fault_error(
    code: u16,
    retry_after: Option<u64>,
    message: Option<String>,
) -> Response {
    let (reason, default_msg) = match code {
        409 => (
            "Conflict",
            "Operation cannot be fulfilled: the object has been modified; please apply your changes to the latest version and try again",
        ),
        429 => (
            "TooManyRequests",
            "Too many requests, please try again later.",
        ),
        503 => (
            "ServiceUnavailable",
            "the server is currently unable to handle the request",
        ),
        504 => (
            "Timeout",
            "the server was unable to return a response in the time allotted",
        ),
        403 => ("Forbidden", "forbidden (fault injection)"),
        401 => ("Unauthorized", "Unauthorized"),
        404 => ("NotFound", "not found (fault injection)"),
        422 => ("Invalid", "invalid (fault injection)"),
        _ => ("InternalError", "Internal error occurred: injected fault"),
    };
    let details = retry_after.map(|s| json!({"retryAfterSeconds": s}));
    let e = ApiError::Status {
        code,
        reason: reason.into(),
        message: message.unwrap_or_else(|| default_msg.into()),
        details,
        retry_after,
    };
    e.into_response()
}

#[derive(Debug, Clone, Copy)]
enum WatchFault {
    Cut(usize),
    Expired,
}

fn dispatch(
    inner: &Arc<Inner>,
    method: &Method,
    path: &str,
    q: &Query,
    headers: &HeaderMap,
    body: Bytes,
    wf: Option<WatchFault>,
) -> Response {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let accept = header_str(headers, header::ACCEPT).unwrap_or_default();
    let host = header_str(headers, header::HOST).unwrap_or_else(|| "127.0.0.1".into());
    let aggregated = accept.contains("as=APIGroupDiscoveryList")
        && accept.contains("v=v2")
        && !inner.faults.aggregated_unsupported();
    if *method == Method::GET {
        match segs.as_slice() {
            [] => {
                return json_response(
                    200,
                    &json!({"paths": ["/api", "/api/v1", "/apis", "/healthz", "/livez", "/readyz", "/version"]}),
                );
            }
            ["version"] => return json_response(200, &version()),
            ["healthz" | "livez" | "readyz", ..] => return (StatusCode::OK, "ok").into_response(),
            ["api"] if aggregated => return aggregated_response(inner, true),
            ["api"] => {
                return json_response(
                    200,
                    &json!({"kind": "APIVersions", "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}]}),
                );
            }
            ["apis"] if aggregated => return aggregated_response(inner, false),
            ["apis"] => return json_response(200, &group_list(inner)),
            ["api", "v1"] => return resource_list(inner, "", "v1"),
            ["openapi", "v3"] => return json_response(200, &openapi_root(inner)),
            ["openapi", "v3", gv @ ..] => {
                return match openapi_gv(inner, &gv.join("/")) {
                    Some(doc) => json_response(200, &doc),
                    None => ApiError::PlainNotFound.into_response(),
                };
            }
            ["apis", g] => {
                let groups = group_list(inner);
                return match groups["groups"]
                    .as_array()
                    .and_then(|gs| gs.iter().find(|x| x["name"] == json!(g)))
                {
                    Some(gv) => {
                        let mut gv = gv.clone();
                        gv["kind"] = json!("APIGroup");
                        gv["apiVersion"] = json!("v1");
                        json_response(200, &gv)
                    }
                    None => ApiError::PlainNotFound.into_response(),
                };
            }
            ["apis", g, v] => return resource_list(inner, g, v),
            _ => {}
        }
    }
    let (group, version, rest): (&str, &str, &[&str]) = match segs.as_slice() {
        ["api", v, rest @ ..] if !rest.is_empty() => ("", v, rest),
        ["apis", g, v, rest @ ..] if !rest.is_empty() => (g, v, rest),
        _ => return ApiError::PlainNotFound.into_response(),
    };
    let (ns, plural, name, sub) = match rest {
        [p] => (None, *p, None, None),
        ["namespaces", n, s @ ("status" | "finalize")] => (None, "namespaces", Some(*n), Some(*s)),
        ["namespaces", ns, p] => (Some(*ns), *p, None, None),
        ["namespaces", ns, p, n] => (Some(*ns), *p, Some(*n), None),
        ["namespaces", ns, p, n, s] => (Some(*ns), *p, Some(*n), Some(*s)),
        [p, n] => (None, *p, Some(*n), None),
        [p, n, s] => (None, *p, Some(*n), Some(*s)),
        _ => return ApiError::PlainNotFound.into_response(),
    };
    let rt = {
        let st = inner.lock();
        inner.resolve(&st, group, version, plural)
    };
    let Some(rt) = rt else {
        return ApiError::PlainNotFound.into_response();
    };
    if ns.is_some() && !rt.namespaced {
        return ApiError::PlainNotFound.into_response();
    }
    if name.is_some() && rt.namespaced && ns.is_none() {
        return ApiError::PlainNotFound.into_response();
    }
    match sub {
        None => {}
        Some("status") if rt.status_subresource => {}
        Some("finalize") if rt.plural == "namespaces" && rt.group.is_empty() => {}
        Some("scale") if has_scale(&rt) => {}
        Some(_) => return ApiError::PlainNotFound.into_response(),
    }
    let t = Target {
        rt,
        ns: ns.map(str::to_string),
        name: name.map(str::to_string),
        sub: sub.map(str::to_string),
    };
    let manager = q
        .get("fieldManager")
        .map(str::to_string)
        .unwrap_or_else(|| {
            header_str(headers, header::USER_AGENT)
                .and_then(|ua| ua.split('/').next().map(str::to_string))
                .unwrap_or_default()
        });
    let validation = q.get("fieldValidation").unwrap_or("Warn");
    let wo = WriteOpts {
        manager,
        dry_run: q.get("dryRun") == Some("All"),
        strict: validation == "Strict",
        warn_unknown: validation != "Ignore",
        force: q.get("force") == Some("true"),
    };
    if let Some(d) = q.get("dryRun")
        && d != "All"
    {
        return ApiError::bad_request(format!("Invalid dry run value: {d:?}")).into_response();
    }
    let selectors = || -> Result<(LabelSelector, FieldSelector), ApiError> {
        let l = LabelSelector::parse(q.get("labelSelector").unwrap_or(""))
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let f = FieldSelector::parse(q.get("fieldSelector").unwrap_or(""))
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        Ok((l, f))
    };
    let parse_body = |b: &Bytes| -> Result<Value, ApiError> {
        serde_json::from_slice(b).or_else(|_| {
            serde_saphyr::from_str(&String::from_utf8_lossy(b))
                .map_err(|e| ApiError::bad_request(format!("unable to decode body: {e}")))
        })
    };
    let ct = header_str(headers, header::CONTENT_TYPE).unwrap_or_default();
    if !body.is_empty()
        && (ct.starts_with("application/vnd.kubernetes.protobuf")
            || ct.starts_with("application/cbor"))
    {
        // Only JSON (and YAML for apply) request bodies are supported.
        return ApiError::status(
            415,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got {ct})"),
            None,
        )
        .into_response();
    }
    let result: Result<Response, ApiError> = (|| match *method {
        Method::GET if q.get("watch").is_some_and(|w| w == "true" || w == "1") => {
            let (l, mut f) = selectors()?;
            if let Some(n) = &t.name {
                f = FieldSelector::parse(&format!("metadata.name={n}"))
                    .map_err(|e| ApiError::bad_request(e.to_string()))?;
            }
            Ok(watch(inner.clone(), t, l, f, q, wf))
        }
        Method::GET if t.name.is_some() => {
            let obj = inner.get(&t)?;
            Ok(render(&accept, &t.rt, obj, false))
        }
        Method::GET => {
            let (l, f) = selectors()?;
            let limit = q.get("limit").and_then(|l| l.parse().ok());
            let list = inner.list(&t, &l, &f, limit, q.get("continue"))?;
            Ok(render(&accept, &t.rt, list, true))
        }
        Method::POST if t.name.is_none() => {
            Ok(reply_response(inner.create(&t, parse_body(&body)?, &wo)?))
        }
        _ if t.sub.as_deref() == Some("scale") => {
            scale(inner, &t, method, headers, &body, &wo.manager)
        }
        Method::PUT if t.sub.as_deref() == Some("finalize") => {
            let b = parse_body(&body)?;
            let fins = b.pointer("/spec/finalizers").cloned().unwrap_or(json!([]));
            let name = t.name.clone().unwrap_or_default();
            let out = inner.mutate(&t.rt, "", &name, None, &wo.manager, |o| {
                o["spec"]["finalizers"] = fins;
                true
            })?;
            match out {
                Some(o) => Ok(json_response(200, &o)),
                None => Err(ApiError::not_found(&crate::errors::Target {
                    group: "",
                    plural: "namespaces",
                    name: &name,
                })),
            }
        }
        Method::PUT if t.name.is_some() => {
            Ok(reply_response(inner.update(&t, parse_body(&body)?, &wo)?))
        }
        Method::PATCH if t.name.is_some() => {
            let ct = header_str(headers, header::CONTENT_TYPE).unwrap_or_default();
            Ok(reply_response(inner.patch(&t, &ct, &body, &wo)?))
        }
        Method::DELETE => {
            let opts_body: Value = if body.is_empty() {
                json!({})
            } else {
                parse_body(&body)?
            };
            let dry = wo.dry_run
                || opts_body
                    .get("dryRun")
                    .and_then(Value::as_array)
                    .is_some_and(|a| a.iter().any(|x| x == "All"));
            let opts = DeleteOpts {
                dry_run: dry,
                propagation: opts_body
                    .get("propagationPolicy")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .or_else(|| q.get("propagationPolicy").map(str::to_string))
                    .or_else(
                        || match opts_body.get("orphanDependents").and_then(Value::as_bool) {
                            Some(true) => Some("Orphan".into()),
                            _ => None,
                        },
                    ),
                precondition_uid: opts_body
                    .pointer("/preconditions/uid")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                precondition_rv: opts_body
                    .pointer("/preconditions/resourceVersion")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            };
            if t.name.is_some() {
                Ok(reply_response(inner.delete(&t, &opts)?))
            } else {
                let (l, f) = selectors()?;
                Ok(reply_response(inner.delete_collection(&t, &l, &f, &opts)?))
            }
        }
        _ => Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        )),
    })();
    result.unwrap_or_else(IntoResponse::into_response)
}

fn version() -> Value {
    json!({"major": "1", "minor": "33", "emulationMajor": "1", "emulationMinor": "33", "gitVersion": "v1.33.0-sandbox",
        "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean", "buildDate": "2025-04-23T00:00:00Z",
        "goVersion": "go1.24.2", "compiler": "gc", "platform": "linux/amd64"})
}

fn storage_hash(rt: &ResourceType) -> String {
    use base64::Engine as _;
    let d = sha2::Sha256::digest(format!("{}/{}/{}", rt.group, rt.version, rt.kind).as_bytes());
    base64::engine::general_purpose::STANDARD.encode(&d[..8])
}

/// Groups and their versions in preference order (built-in groups first, in a fixed order).
/// Served types of one group: `(version, types)` in preference order.
type GroupVersions = Vec<(String, Vec<ResourceType>)>;

fn groups(inner: &Inner) -> Vec<(String, GroupVersions)> {
    let types = {
        let st = inner.lock();
        inner.served_types(&st)
    };
    let mut by: BTreeMap<String, BTreeMap<String, Vec<ResourceType>>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for t in types {
        if !order.contains(&t.group) {
            order.push(t.group.clone());
        }
        by.entry(t.group.clone())
            .or_default()
            .entry(t.version.clone())
            .or_default()
            .push(t);
    }
    order
        .into_iter()
        .map(|g| {
            let mut vs: Vec<(String, Vec<ResourceType>)> =
                by.remove(&g).unwrap_or_default().into_iter().collect();
            vs.sort_by_key(|(v, _)| version_priority(v));
            (g, vs)
        })
        .collect()
}

fn group_list(inner: &Inner) -> Value {
    let gs: Vec<Value> = groups(inner)
        .into_iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, vs)| {
            let versions: Vec<Value> = vs.iter().map(|(v, _)| json!({"groupVersion": format!("{g}/{v}"), "version": v})).collect();
            json!({"name": g, "versions": versions, "preferredVersion": versions.first().cloned().unwrap_or(Value::Null)})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": gs})
}

fn resource_entries(types: &[ResourceType]) -> Vec<Value> {
    let mut out = Vec::new();
    for t in types {
        let mut e = json!({"name": t.plural, "singularName": t.singular, "namespaced": t.namespaced, "kind": t.kind,
            "verbs": VERBS, "storageVersionHash": storage_hash(t)});
        if !t.short_names.is_empty() {
            e["shortNames"] = json!(t.short_names);
        }
        if !t.categories.is_empty() {
            e["categories"] = json!(t.categories);
        }
        out.push(e);
        if t.status_subresource {
            out.push(json!({"name": format!("{}/status", t.plural), "singularName": "", "namespaced": t.namespaced, "kind": t.kind, "verbs": ["get", "patch", "update"]}));
        }
        if has_scale(t) {
            out.push(json!({"name": format!("{}/scale", t.plural), "singularName": "", "namespaced": t.namespaced,
                "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}));
        }
        if t.plural == "namespaces" && t.group.is_empty() {
            out.push(json!({"name": "namespaces/finalize", "singularName": "", "namespaced": false, "kind": "Namespace", "verbs": ["update"]}));
        }
    }
    out
}

fn resource_list(inner: &Inner, group: &str, version: &str) -> Response {
    if inner.faults.discovery_broken(group, version) {
        return fault_error(
            503,
            None,
            Some("the server is currently unable to handle the request".into()),
        );
    }
    let gs = groups(inner);
    let Some((_, vs)) = gs.iter().find(|(g, _)| g == group) else {
        return ApiError::PlainNotFound.into_response();
    };
    let Some((_, types)) = vs.iter().find(|(v, _)| v == version) else {
        return ApiError::PlainNotFound.into_response();
    };
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    json_response(
        200,
        &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resource_entries(types)}),
    )
}

fn aggregated_response(inner: &Inner, core: bool) -> Response {
    let items: Vec<Value> = groups(inner)
        .into_iter()
        .filter(|(g, _)| g.is_empty() == core)
        .map(|(g, vs)| {
            let versions: Vec<Value> = vs
                .iter()
                .map(|(v, types)| {
                    let broken = inner.faults.discovery_broken(&g, v);
                    let resources: Vec<Value> = if broken {
                        Vec::new()
                    } else {
                        types
                            .iter()
                            .map(|t| {
                                let rk = json!({"group": t.group, "version": t.version, "kind": t.kind});
                                let mut r = json!({"resource": t.plural, "responseKind": rk, "scope": if t.namespaced { "Namespaced" } else { "Cluster" },
                                    "singularResource": t.singular, "verbs": VERBS});
                                if !t.short_names.is_empty() {
                                    r["shortNames"] = json!(t.short_names);
                                }
                                if !t.categories.is_empty() {
                                    r["categories"] = json!(t.categories);
                                }
                                let mut subs = Vec::new();
                                if t.status_subresource {
                                    subs.push(json!({"subresource": "status", "responseKind": rk, "verbs": ["get", "patch", "update"]}));
                                }
                                if has_scale(t) {
                                    subs.push(json!({"subresource": "scale", "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"}, "verbs": ["get", "patch", "update"]}));
                                }
                                if !subs.is_empty() {
                                    r["subresources"] = json!(subs);
                                }
                                r
                            })
                            .collect()
                    };
                    json!({"version": v, "resources": resources, "freshness": if broken { "Stale" } else { "Current" }})
                })
                .collect();
            let md = if core { json!({"creationTimestamp": null}) } else { json!({"name": g, "creationTimestamp": null}) };
            json!({"metadata": md, "versions": versions})
        })
        .collect();
    let mut r = json_response(
        200,
        &json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items}),
    );
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(AGG_CT));
    r
}

// ---- scale subresource (autoscaling/v1 Scale) for Deployments ----

fn has_scale(rt: &ResourceType) -> bool {
    rt.builtin && rt.group == "apps" && rt.plural == "deployments"
}

fn scale_view(obj: &Value) -> Value {
    let selector: Vec<String> = obj
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    let md = obj.get("metadata").cloned().unwrap_or(json!({}));
    json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": md["name"], "namespace": md["namespace"], "uid": md["uid"],
            "resourceVersion": md["resourceVersion"], "creationTimestamp": md["creationTimestamp"]},
        "spec": {"replicas": obj.pointer("/spec/replicas").cloned().unwrap_or(json!(1))},
        "status": {"replicas": obj.pointer("/status/replicas").cloned().unwrap_or(json!(0)), "selector": selector.join(",")}})
}

fn scale(
    inner: &Inner,
    t: &Target,
    method: &Method,
    headers: &HeaderMap,
    body: &Bytes,
    manager: &str,
) -> Result<Response, ApiError> {
    let main = Target {
        sub: None,
        ..t.clone()
    };
    let live = inner.get(&main)?;
    let view = scale_view(&live);
    if *method == Method::GET {
        return Ok(json_response(200, &view));
    }
    let ct = header_str(headers, header::CONTENT_TYPE).unwrap_or_default();
    let new_view = match *method {
        Method::PUT => serde_json::from_slice::<Value>(body)
            .map_err(|e| ApiError::bad_request(e.to_string()))?,
        Method::PATCH if ct.starts_with("application/json-patch+json") => {
            crate::patch::json_patch(&view, body)
                .map_err(|e| ApiError::status(422, "Invalid", e.to_string(), None))?
        }
        Method::PATCH => crate::patch::merge_patch(&view, body)
            .map_err(|e| ApiError::bad_request(e.to_string()))?,
        _ => {
            return Err(ApiError::method_not_allowed(
                "the server does not allow this method on the requested resource",
            ));
        }
    };
    let rv = new_view
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty());
    if rv.is_some_and(|r| {
        Some(r)
            != live
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
    }) {
        let name = t.name.clone().unwrap_or_default();
        return Err(ApiError::stale(&crate::errors::Target {
            group: &t.rt.group,
            plural: &t.rt.plural,
            name: &name,
        }));
    }
    let replicas = new_view
        .pointer("/spec/replicas")
        .cloned()
        .unwrap_or(json!(0));
    let ns = t.ns.clone().unwrap_or_default();
    let name = t.name.clone().unwrap_or_default();
    // Recorded in managedFields with `subresource: scale`, as the apiserver does.
    let updated = inner.mutate(&t.rt, &ns, &name, Some("scale"), manager, |o| {
        o["spec"]["replicas"] = replicas;
        true
    })?;
    Ok(json_response(200, &scale_view(&updated.unwrap_or(live))))
}

// ---- OpenAPI v3 (just enough for kubectl's fieldValidation support check and explain) ----

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn openapi_root(inner: &Inner) -> Value {
    let mut paths = serde_json::Map::new();
    for (g, vs) in groups(inner) {
        for (v, types) in vs {
            let p = gv_path(&g, &v);
            let hash = {
                let names: Vec<String> = types
                    .iter()
                    .map(|t| format!("{}{}", t.plural, storage_hash(t)))
                    .collect();
                hex::encode(&sha2::Sha256::digest(names.join(",").as_bytes())[..16])
            };
            paths.insert(
                p.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={hash}")}),
            );
        }
    }
    json!({"paths": paths})
}

fn openapi_gv(inner: &Inner, gv: &str) -> Option<Value> {
    let (g, v) = match gv.split('/').collect::<Vec<_>>().as_slice() {
        ["api", v] => (String::new(), v.to_string()),
        ["apis", g, v] => (g.to_string(), v.to_string()),
        _ => return None,
    };
    let gs = groups(inner);
    let types = gs
        .into_iter()
        .find(|(x, _)| *x == g)?
        .1
        .into_iter()
        .find(|(x, _)| *x == v)?
        .1;
    let q = |n: &str| json!({"name": n, "in": "query", "schema": {"type": "string", "uniqueItems": true}});
    let mut paths = serde_json::Map::new();
    let mut schemas = serde_json::Map::new();
    for t in &types {
        let gvk = json!({"group": t.group, "version": t.version, "kind": t.kind});
        let schema_name = format!(
            "{}.{}.{}",
            if t.group.is_empty() { "core" } else { &t.group },
            t.version,
            t.kind
        );
        let mut sch = t.schema.as_deref().cloned().unwrap_or_else(
            || json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
        );
        sch["x-kubernetes-group-version-kind"] = json!([gvk.clone()]);
        schemas.insert(schema_name.clone(), sch);
        let item = if t.namespaced {
            format!(
                "/{}/namespaces/{{namespace}}/{}/{{name}}",
                gv_path(&t.group, &t.version),
                t.plural
            )
        } else {
            format!("/{}/{}/{{name}}", gv_path(&t.group, &t.version), t.plural)
        };
        let resp = json!({"200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema_name}")}}}}});
        let op = |action: &str| {
            json!({"operationId": format!("{action}{}", t.kind), "x-kubernetes-action": action, "x-kubernetes-group-version-kind": gvk,
                "parameters": [q("dryRun"), q("fieldManager"), q("fieldValidation"), q("force")], "responses": resp})
        };
        paths.insert(item, json!({"get": {"operationId": format!("read{}", t.kind), "x-kubernetes-action": "get", "x-kubernetes-group-version-kind": gvk, "responses": resp},
            "put": op("put"), "patch": op("patch"), "delete": op("delete")}));
    }
    Some(
        json!({"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.33.0-sandbox"}, "paths": paths, "components": {"schemas": schemas}}),
    )
}

// ---- output forms: Table, PartialObjectMetadata ----

fn render(accept: &str, rt: &ResourceType, v: Value, is_list: bool) -> Response {
    let first = accept.split(',').next().unwrap_or("");
    if first.contains("as=Table") {
        return json_response(200, &crate::table::table(rt, &v, is_list));
    }
    if first.contains("as=PartialObjectMetadata") {
        let pom = |o: &Value| json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o.get("metadata").cloned().unwrap_or(json!({}))});
        let out = if is_list {
            let items: Vec<Value> = v["items"]
                .as_array()
                .map(|a| a.iter().map(pom).collect())
                .unwrap_or_default();
            json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": v["metadata"].clone(), "items": items})
        } else {
            pom(&v)
        };
        return json_response(200, &out);
    }
    json_response(200, &v)
}

// ---- watch ----

fn event_for(
    t: &Target,
    labels: &LabelSelector,
    fields: &FieldSelector,
    ev: &StoreEvent,
) -> Option<(EventType, Value)> {
    if ev.gr != t.rt.gr() {
        return None;
    }
    if t.rt.namespaced
        && let Some(ns) = &t.ns
        && ev
            .object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            != Some(ns.as_str())
    {
        return None;
    }
    let m = |o: &Value| labels.matches(o) && fields.matches(o);
    let now = m(&ev.object);
    let before = ev.prev.as_ref().is_some_and(m);
    let kind = match ev.kind {
        EventType::Added if now => EventType::Added,
        EventType::Modified if now && before => EventType::Modified,
        EventType::Modified if now => EventType::Added,
        EventType::Modified if before => EventType::Deleted,
        EventType::Deleted if now || before => EventType::Deleted,
        _ => return None,
    };
    Some((kind, Inner::output(&t.rt, &ev.object)))
}

fn line(kind: &str, obj: &Value) -> Bytes {
    let mut s = json!({"type": kind, "object": obj}).to_string();
    s.push('\n');
    Bytes::from(s)
}

fn expired(rv: &str, oldest: u64) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("too old resource version: {rv} ({oldest})"), "reason": "Expired", "code": 410})
}

fn watch(
    inner: Arc<Inner>,
    t: Target,
    labels: LabelSelector,
    fields: FieldSelector,
    q: &Query,
    wf: Option<WatchFault>,
) -> Response {
    let rv = q.get("resourceVersion").map(str::to_string);
    let send_initial = q.get("sendInitialEvents") == Some("true");
    let bookmarks = q.get("allowWatchBookmarks") == Some("true");
    let timeout = Duration::from_secs(
        q.get("timeoutSeconds")
            .and_then(|s| s.parse().ok())
            .unwrap_or(1800),
    );
    let mut initial: Vec<Bytes> = Vec::new();
    let (mut rx, start_rv, ended) = {
        let st = inner.lock();
        let rx = inner.events.subscribe();
        let mut ended = false;
        let from_state = matches!(rv.as_deref(), None | Some("") | Some("0")) || send_initial;
        if matches!(wf, Some(WatchFault::Expired)) {
            initial.push(line(
                "ERROR",
                &expired(rv.as_deref().unwrap_or("0"), st.compacted + 1),
            ));
            ended = true;
        } else if from_state {
            if let Some(m) = st.objects.get(&t.rt.gr()) {
                for (k, v) in m {
                    if t.rt.namespaced && t.ns.as_ref().is_some_and(|ns| &k.0 != ns) {
                        continue;
                    }
                    if labels.matches(v) && fields.matches(v) {
                        initial.push(line("ADDED", &Inner::output(&t.rt, v)));
                    }
                }
            }
            if send_initial && bookmarks {
                initial.push(line(
                    "BOOKMARK",
                    &json!({"kind": t.rt.kind, "apiVersion": t.rt.api_version(),
                        "metadata": {"resourceVersion": st.rv.to_string(), "annotations": {"k8s.io/initial-events-end": "true"}}}),
                ));
            }
        } else {
            let n: u64 = rv.as_deref().and_then(|r| r.parse().ok()).unwrap_or(0);
            if n < st.compacted {
                initial.push(line(
                    "ERROR",
                    &expired(rv.as_deref().unwrap_or("0"), st.compacted + 1),
                ));
                ended = true;
            } else {
                for ev in st.log.iter().filter(|e| e.rv > n) {
                    if let Some((k, o)) = event_for(&t, &labels, &fields, ev) {
                        initial.push(line(k.as_str(), &o));
                    }
                }
            }
        }
        (rx, st.rv, ended)
    };
    let (tx, out_rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(256);
    let cut_after = match wf {
        Some(WatchFault::Cut(n)) => Some(n),
        _ => None,
    };
    let bookmark_every = inner.config.bookmark_interval;
    let kind = t.rt.kind.clone();
    let api_version = t.rt.api_version();
    drop(inner);
    tokio::spawn(async move {
        let mut sent = 0usize;
        for l in initial {
            if cut_after.is_some_and(|c| sent >= c) || tx.send(Ok(l)).await.is_err() {
                return;
            }
            sent += 1;
        }
        if ended {
            return;
        }
        let mut last_rv = start_rv;
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut tick = tokio::time::interval(bookmark_every);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = tx.closed() => return,
                _ = tick.tick(), if bookmarks => {
                    let b = line("BOOKMARK", &json!({"kind": kind, "apiVersion": api_version, "metadata": {"resourceVersion": last_rv.to_string()}}));
                    if tx.send(Ok(b)).await.is_err() { return; }
                }
                ev = rx.recv() => match ev {
                    Ok(ev) => {
                        if ev.rv <= last_rv { continue; }
                        last_rv = ev.rv;
                        if let Some((k, o)) = event_for(&t, &labels, &fields, &ev) {
                            if cut_after.is_some_and(|c| sent >= c) { return; }
                            if tx.send(Ok(line(k.as_str(), &o))).await.is_err() { return; }
                            sent += 1;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        let _ = tx.send(Ok(line("ERROR", &expired(&last_rv.to_string(), last_rv)))).await;
                        return;
                    }
                    Err(_) => return,
                },
            }
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(out_rx);
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

// ---- admin ----

fn admin(inner: &Arc<Inner>, method: &Method, path: &str, body: &Bytes) -> Response {
    match (method.clone(), path) {
        (Method::GET, "/sandbox/requests") => json_response(200, &json!(inner.recorder.requests())),
        (Method::DELETE, "/sandbox/requests") => {
            inner.recorder.clear();
            json_response(200, &json!({}))
        }
        (Method::GET, "/sandbox/faults") => json_response(200, &json!(inner.faults.settings())),
        (Method::PUT, "/sandbox/faults") => match serde_json::from_slice::<FaultSettings>(body) {
            Ok(s) => {
                inner.faults.set(s);
                json_response(200, &json!(inner.faults.settings()))
            }
            Err(e) => ApiError::bad_request(e.to_string()).into_response(),
        },
        (Method::POST, "/sandbox/faults") => match serde_json::from_slice::<FaultRule>(body) {
            Ok(r) => {
                inner.faults.add(r);
                json_response(200, &json!(inner.faults.settings()))
            }
            Err(e) => ApiError::bad_request(e.to_string()).into_response(),
        },
        (Method::DELETE, "/sandbox/faults") => {
            inner.faults.clear();
            json_response(200, &json!({}))
        }
        (Method::GET, "/sandbox/dump") => {
            let objs: Vec<Value> = inner
                .all_objects(None)
                .into_iter()
                .map(|(_, v)| v)
                .collect();
            json_response(
                200,
                &json!({"resourceVersion": inner.lock().rv.to_string(), "objects": objs}),
            )
        }
        _ => ApiError::PlainNotFound.into_response(),
    }
}
