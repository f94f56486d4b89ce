//! Shared helpers of the operator-simulator tests: an in-process sandbox with the simulator,
//! the operator installed from the fixture, SSA of test objects, and watch-based waits.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;
use kube::runtime::wait::await_condition;
use kube_sandbox::Sandbox;
use kube_sandbox::sim::{SimConfig, fixtures};
use serde_json::{Value, json};

/// Field manager the tests write as (stands in for the provider).
pub const TEST_MANAGER: &str = "sim-test";
/// Default wait bound.
pub const WAIT: Duration = Duration::from_secs(20);

pub fn fast_config() -> SimConfig {
    SimConfig {
        step_delay: Duration::from_millis(20),
        health_timeout: Duration::from_secs(10),
        dependency_requeue: Duration::from_millis(200),
        retry_interval: Duration::from_millis(300),
        uninstall_timeout: Duration::from_secs(10),
        ..SimConfig::default()
    }
}

/// A sandbox with short CRD/Deployment delays and the simulator running.
pub fn sandbox(config: SimConfig) -> (Sandbox, Client) {
    let sb = Sandbox::builder()
        .crd_established_delay(Duration::from_millis(50))
        .deployment_available_delay(Duration::from_millis(100))
        .operator_sim(config)
        .build();
    let client = sb.client();
    (sb, client)
}

/// Installs the operator fixture and waits until its Deployment is Available.
pub async fn install_operator(client: &Client) {
    fixtures::apply_yaml_staged(
        client,
        fixtures::OPERATOR_INSTALL,
        TEST_MANAGER,
        "flux-system",
    )
    .await
    .unwrap();
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "flux-system");
    tokio::time::timeout(
        WAIT,
        await_condition(deps, "flux-operator", |d: Option<&Deployment>| {
            d.and_then(|d| d.status.as_ref())
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c.type_ == "Available" && c.status == "True")
                })
        }),
    )
    .await
    .unwrap()
    .unwrap();
}

pub fn ar(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

pub fn fluxinstances(client: &Client, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        ns,
        &ar(
            "fluxcd.controlplane.io",
            "v1",
            "FluxInstance",
            "fluxinstances",
        ),
    )
}

pub fn resourcesets(client: &Client, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        ns,
        &ar(
            "fluxcd.controlplane.io",
            "v1",
            "ResourceSet",
            "resourcesets",
        ),
    )
}

/// Server-side applies a JSON object as the test manager (force).
pub async fn apply(api: &Api<DynamicObject>, obj: Value) -> Value {
    let name = obj["metadata"]["name"].as_str().unwrap().to_string();
    let out = api
        .patch(
            &name,
            &PatchParams::apply(TEST_MANAGER).force(),
            &Patch::Apply(&obj),
        )
        .await
        .unwrap();
    serde_json::to_value(out).unwrap()
}

pub async fn merge(api: &Api<DynamicObject>, name: &str, patch: Value) -> Value {
    let pp = PatchParams {
        field_manager: Some(TEST_MANAGER.into()),
        ..Default::default()
    };
    serde_json::to_value(api.patch(name, &pp, &Patch::Merge(&patch)).await.unwrap()).unwrap()
}

pub fn cond<'a>(o: &'a Value, t: &str) -> Option<&'a Value> {
    o["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == t)
}

/// Ready=True for the current generation.
pub fn ready(o: &Value) -> bool {
    cond(o, "Ready").is_some_and(|c| {
        c["status"] == "True" && c["observedGeneration"] == o["metadata"]["generation"]
    })
}

pub fn stalled(o: &Value) -> bool {
    cond(o, "Stalled").is_some_and(|c| {
        c["status"] == "True" && c["observedGeneration"] == o["metadata"]["generation"]
    })
}

/// Waits until `f` holds for the object (watch-based), returning it.
pub async fn wait_for(api: &Api<DynamicObject>, name: &str, f: impl Fn(&Value) -> bool) -> Value {
    let got = tokio::time::timeout(
        WAIT,
        await_condition(api.clone(), name, move |o: Option<&DynamicObject>| {
            o.map(|o| serde_json::to_value(o).unwrap())
                .is_some_and(|v| f(&v))
        }),
    )
    .await;
    match got {
        Ok(Ok(Some(o))) => serde_json::to_value(o).unwrap(),
        other => {
            let now = api
                .get_opt(name)
                .await
                .ok()
                .flatten()
                .map(|o| serde_json::to_value(o).unwrap());
            panic!(
                "wait for {name} failed ({other:?}); object now: {}",
                serde_json::to_string_pretty(&now).unwrap()
            )
        }
    }
}

/// Waits until the object is gone.
pub async fn wait_gone(api: &Api<DynamicObject>, name: &str) {
    let got = tokio::time::timeout(
        WAIT,
        await_condition(api.clone(), name, |o: Option<&DynamicObject>| o.is_none()),
    )
    .await;
    if !matches!(got, Ok(Ok(_))) {
        let now = api
            .get_opt(name)
            .await
            .ok()
            .flatten()
            .map(|o| serde_json::to_value(o).unwrap());
        panic!(
            "{name} not deleted: {}",
            serde_json::to_string_pretty(&now).unwrap()
        );
    }
}

pub fn deployments(client: &Client, ns: &str) -> Api<Deployment> {
    Api::namespaced(client.clone(), ns)
}

pub async fn deployment_uid(client: &Client, ns: &str, name: &str) -> Option<String> {
    deployments(client, ns)
        .get_opt(name)
        .await
        .unwrap()
        .and_then(|d| d.metadata.uid)
}

pub fn instance(version: &str) -> Value {
    json!({
        "apiVersion": "fluxcd.controlplane.io/v1",
        "kind": "FluxInstance",
        "metadata": {"name": "flux", "namespace": "flux-system"},
        "spec": {"distribution": {"version": version, "registry": "ghcr.io/fluxcd"}},
    })
}

pub fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

pub fn inventory_ids(o: &Value) -> Vec<String> {
    let mut ids: Vec<String> = o["status"]["inventory"]["entries"]
        .as_array()
        .map(|es| {
            es.iter()
                .map(|e| e["id"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

#[path = "../../../common/git_server.rs"]
pub mod fleet_git;

/// A reachable Git repository `fleet` (branch `main`) served over HTTP with basic auth
/// `bot`/`pw`, with a ConfigMap `cm-<path-with-dashes>` under `path` so a Kustomization of that
/// path has something to apply; plus the Secret `flux-system` in `flux-system` holding the
/// credentials. The real operator's health check waits for the sync source and Kustomization,
/// so a sync that must become Ready needs a repository that exists.
pub struct Fleet {
    pub repos: std::sync::Arc<fleet_git::GitRepos>,
    pub server: fleet_git::GitHttpServer,
    pub url: String,
}

pub async fn fleet(client: &Client, paths: &[&str]) -> Fleet {
    let repos = fleet_git::GitRepos::new();
    repos.create_with_history("fleet", "main", 1, 1);
    for path in paths {
        let name = format!("cm-{}", path.trim_start_matches("./").replace('/', "-"));
        repos.push_as_someone_else(
            "fleet",
            "main",
            &format!("{}/cm.yaml", path.trim_start_matches("./")),
            &format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: default\ndata:\n  path: {path}\n"
            ),
            "add path",
        );
    }
    let server = fleet_git::GitHttpServer::start(
        repos.clone(),
        fleet_git::HttpServerOptions {
            basic: Some(("bot".into(), "pw".into())),
            ..fleet_git::HttpServerOptions::default()
        },
    );
    let url = server.url("fleet");
    let secrets: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "flux-system",
        &ar("", "v1", "Secret", "secrets"),
    );
    apply(
        &secrets,
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "flux-system", "namespace": "flux-system"},
               "stringData": {"username": "bot", "password": "pw"}}),
    )
    .await;
    Fleet { repos, server, url }
}
