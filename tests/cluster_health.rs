//! `cluster::health` against the in-process kube-sandbox: missing and unhealthy inventory
//! objects, read with one request per kind and namespace.

#![allow(clippy::expect_used)] // Test helpers panic on setup failures.

use std::time::Duration;

use kube::api::DynamicObject;
use kube_sandbox::Sandbox;
use serde_json::{Value, json};
use terraform_provider_flux::cluster::health::HealthReport;
use terraform_provider_flux::cluster::objects::{Cluster, ObjectRef};
use terraform_provider_flux::cluster::wait::deployment_available;
use tokio_util::sync::CancellationToken;

fn object(value: Value) -> DynamicObject {
    serde_json::from_value(value).expect("valid object")
}

fn deployment(name: &str) -> DynamicObject {
    object(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": "nginx:1.27"}]}
            }
        }
    }))
}

#[tokio::test]
async fn missing_and_unavailable_objects_are_reported_in_order() {
    let sandbox = Sandbox::builder()
        .deployment_available_delay(Duration::from_millis(10))
        .build();
    sandbox
        .faults()
        .set_deployment_stuck("default", "stuck", true);
    let cluster = Cluster::new(sandbox.client());
    for name in ["ready", "stuck"] {
        cluster.apply(&deployment(name)).await.expect("applied");
    }
    cluster
        .apply(&object(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"ports": [{"port": 80}]}
        })))
        .await
        .expect("applied");
    let ready = ObjectRef::new("apps/v1", "Deployment", Some("default"), "ready");
    cluster
        .wait_for(
            &ready,
            Duration::from_secs(10),
            &CancellationToken::new(),
            deployment_available,
        )
        .await
        .expect("available");
    let stuck = ObjectRef::new("apps/v1", "Deployment", Some("default"), "stuck");
    let deleted = ObjectRef::new("apps/v1", "Deployment", Some("default"), "deleted");
    let service = ObjectRef::new("v1", "Service", Some("default"), "web");
    let widget = ObjectRef::new("example.com/v1", "Widget", Some("default"), "w");
    sandbox.recorder().clear();

    let report = cluster
        .health(&[
            widget.clone(),
            ready,
            stuck.clone(),
            service,
            deleted.clone(),
        ])
        .await
        .expect("checked");

    assert_eq!(
        report,
        HealthReport {
            missing: vec![widget, deleted],
            unhealthy: vec![(
                stuck,
                "not available: last observed state: replicas: 1 wanted, 0 updated, 0 \
                 available, 0 in all; no conditions reported"
                    .to_owned()
            )],
        }
    );
    assert!(!report.is_healthy());
    let mut requests: Vec<String> = sandbox
        .recorder()
        .requests()
        .into_iter()
        .map(|r| format!("{} {}", r.verb, r.path))
        .collect();
    requests.sort();
    assert_eq!(
        requests,
        vec![
            "discovery /apis/example.com/v1",
            "get /api/v1/namespaces/default/services/web",
            "list /apis/apps/v1/namespaces/default/deployments",
        ]
    );
}

#[tokio::test]
async fn an_empty_or_complete_inventory_is_healthy() {
    let sandbox = Sandbox::builder().build();
    let cluster = Cluster::new(sandbox.client());
    cluster
        .apply(&object(json!({
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "flux-system"}
        })))
        .await
        .expect("applied");

    let empty = cluster.health(&[]).await.expect("checked");
    let namespace = cluster
        .health(&[ObjectRef::new("v1", "Namespace", None, "flux-system")])
        .await
        .expect("checked");

    assert!(empty.is_healthy());
    assert_eq!(namespace, HealthReport::default());
}
