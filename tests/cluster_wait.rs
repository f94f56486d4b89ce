//! `cluster::wait` against the in-process kube-sandbox: waits end by watch events (asserted on
//! the request recorder: one list, then a watch, no polling), survive 410 Expired and cut
//! watches, fail at once on `Stalled`, time out with the last observed state, and end promptly
//! when cancelled.

#![allow(clippy::expect_used)] // Test helpers panic on setup failures.

use std::time::{Duration, Instant};

use kube::api::{
    ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PropagationPolicy,
};
use kube_sandbox::{FaultAction, FaultRule, Sandbox};
use serde_json::{Value, json};
use terraform_provider_flux::cluster::apply::Deletion;
use terraform_provider_flux::cluster::objects::{Cluster, ObjectRef};
use terraform_provider_flux::cluster::wait::{
    WaitError, crd_established, deployment_available, gone, ready,
};
use tokio_util::sync::CancellationToken;

const LONG: Duration = Duration::from_secs(20);

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

fn widget_crd() -> DynamicObject {
    object(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                    }
                }}
            }]
        }
    }))
}

fn reference(object: &DynamicObject) -> ObjectRef {
    ObjectRef::from_object(object).expect("complete object")
}

/// `verb` of each recorded request whose path contains `resource`, in order.
fn verbs(sandbox: &Sandbox, resource: &str) -> Vec<String> {
    sandbox
        .recorder()
        .requests()
        .into_iter()
        .filter(|r| r.path.contains(resource))
        .map(|r| r.verb)
        .collect()
}

/// Installs the Widget CRD, waits until it is served, and applies widget `w` (generation 1).
async fn widget_w(cluster: &Cluster) -> ObjectRef {
    let crd = cluster.apply(&widget_crd()).await.expect("CRD applied");
    cluster
        .wait_for(
            &reference(&crd),
            LONG,
            &CancellationToken::new(),
            crd_established,
        )
        .await
        .expect("CRD established");
    let widget = cluster
        .apply(&object(json!({
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "metadata": {"name": "w", "namespace": "default"},
            "spec": {"size": "small"},
        })))
        .await
        .expect("widget applied");
    assert_eq!(widget.metadata.generation, Some(1));
    reference(&widget)
}

/// Writes a Widget's status as its controller would (a different manager, `/status`).
async fn set_widget_status(sandbox: &Sandbox, status: Value) {
    let api: kube::Api<DynamicObject> = kube::Api::namespaced_with(
        sandbox.client(),
        "default",
        &ApiResource::from_gvk(&GroupVersionKind::gvk("example.com", "v1", "Widget")),
    );
    api.patch_status(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status })),
    )
    .await
    .expect("status written");
}

#[tokio::test]
async fn crd_established_is_awaited_with_one_list_and_one_watch() {
    let sandbox = Sandbox::builder()
        .crd_established_delay(Duration::from_millis(300))
        .build();
    let cluster = Cluster::new(sandbox.client());
    let crd = cluster.apply(&widget_crd()).await.expect("applied");

    let established = cluster
        .wait_for(
            &reference(&crd),
            LONG,
            &CancellationToken::new(),
            crd_established,
        )
        .await
        .expect("established")
        .expect("present");

    let conditions = established.data["status"]["conditions"]
        .as_array()
        .expect("conditions")
        .iter()
        .map(|c| {
            format!(
                "{}={}",
                c["type"].as_str().unwrap_or(""),
                c["status"].as_str().unwrap_or("")
            )
        })
        .collect::<Vec<_>>();
    assert!(
        conditions.contains(&"Established=True".to_owned()),
        "{conditions:?}"
    );
    assert_eq!(
        verbs(&sandbox, "customresourcedefinitions"),
        vec!["patch", "list", "watch"]
    );
    let watch = sandbox
        .recorder()
        .requests()
        .into_iter()
        .find(|r| r.verb == "watch")
        .expect("a watch request");
    assert!(
        watch
            .query
            .contains("fieldSelector=metadata.name%3Dwidgets.example.com"),
        "{}",
        watch.query
    );
}

#[tokio::test]
async fn deployment_available_is_awaited_by_watch() {
    let sandbox = Sandbox::builder()
        .deployment_available_delay(Duration::from_millis(300))
        .build();
    let cluster = Cluster::new(sandbox.client());
    let applied = cluster.apply(&deployment("web")).await.expect("applied");

    let available = cluster
        .wait_for(
            &reference(&applied),
            LONG,
            &CancellationToken::new(),
            deployment_available,
        )
        .await
        .expect("available")
        .expect("present");

    assert_eq!(available.data["status"]["observedGeneration"], json!(1));
    assert_eq!(
        verbs(&sandbox, "deployments"),
        vec!["patch", "list", "watch"]
    );
}

#[tokio::test]
async fn a_410_expired_watch_relists_and_the_wait_still_succeeds() {
    let sandbox = Sandbox::builder()
        .deployment_available_delay(Duration::from_millis(300))
        .build();
    sandbox.faults().add(
        FaultRule::new(FaultAction::WatchExpired)
            .verb("watch")
            .resource("deployments")
            .times(1),
    );
    let cluster = Cluster::new(sandbox.client());
    let applied = cluster.apply(&deployment("web")).await.expect("applied");

    cluster
        .wait_for(
            &reference(&applied),
            LONG,
            &CancellationToken::new(),
            deployment_available,
        )
        .await
        .expect("available");

    assert_eq!(
        verbs(&sandbox, "deployments"),
        vec!["patch", "list", "watch", "list", "watch"]
    );
}

#[tokio::test]
async fn a_cut_watch_resumes_without_relisting() {
    let sandbox = Sandbox::builder()
        .deployment_available_delay(Duration::from_millis(500))
        .build();
    sandbox.faults().add(
        FaultRule::new(FaultAction::WatchCut { after_events: 0 })
            .verb("watch")
            .resource("deployments")
            .times(1),
    );
    let cluster = Cluster::new(sandbox.client());
    let applied = cluster.apply(&deployment("web")).await.expect("applied");

    cluster
        .wait_for(
            &reference(&applied),
            LONG,
            &CancellationToken::new(),
            deployment_available,
        )
        .await
        .expect("available");

    assert_eq!(
        verbs(&sandbox, "deployments"),
        vec!["patch", "list", "watch", "watch"]
    );
}

#[tokio::test]
async fn ready_waits_for_the_current_generation() {
    let sandbox = Sandbox::builder().build();
    let cluster = Cluster::new(sandbox.client());
    let widget = widget_w(&cluster).await;
    let waiting = {
        let cluster = cluster.clone();
        let widget = widget.clone();
        tokio::spawn(async move {
            cluster
                .wait_for(&widget, LONG, &CancellationToken::new(), ready)
                .await
        })
    };
    // A Ready=True left over from an earlier generation must not end the wait.
    set_widget_status(
        &sandbox,
        json!({"conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded", "observedGeneration": 0}]}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "a stale Ready ended the wait");

    set_widget_status(
        &sandbox,
        json!({"conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded", "observedGeneration": 1}]}),
    )
    .await;
    let done = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("ended promptly")
        .expect("task")
        .expect("ready")
        .expect("present");

    assert_eq!(
        done.data["status"]["conditions"][0]["observedGeneration"],
        json!(1)
    );
    assert_eq!(
        verbs(&sandbox, "widgets/w").first().map(String::as_str),
        Some("patch")
    );
    assert_eq!(
        verbs(&sandbox, "/widgets")
            .into_iter()
            .filter(|v| v == "list" || v == "watch")
            .collect::<Vec<_>>(),
        vec!["list", "watch"]
    );
}

#[tokio::test]
async fn stalled_fails_the_wait_at_once_quoting_the_condition() {
    let sandbox = Sandbox::builder().build();
    let cluster = Cluster::new(sandbox.client());
    let widget = widget_w(&cluster).await;
    set_widget_status(
        &sandbox,
        json!({"conditions": [
            {"type": "Ready", "status": "False", "reason": "BuildFailed", "message": "build failed", "observedGeneration": 1},
            {"type": "Stalled", "status": "True", "reason": "BuildFailed", "message": "unknown version 9.9", "observedGeneration": 1}
        ]}),
    )
    .await;
    let started = Instant::now();

    let error = cluster
        .wait_for(&widget, LONG, &CancellationToken::new(), ready)
        .await
        .expect_err("stalled");

    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(
        error.to_string(),
        "Widget default/w (example.com/v1) failed: stalled: BuildFailed: unknown version 9.9"
    );
}

#[tokio::test]
async fn a_timeout_reports_the_last_observed_state() {
    let sandbox = Sandbox::builder().build();
    let cluster = Cluster::new(sandbox.client());
    let widget = widget_w(&cluster).await;
    set_widget_status(
        &sandbox,
        json!({"conditions": [
            {"type": "Ready", "status": "False", "reason": "Progressing", "message": "Reconciliation in progress", "observedGeneration": 1}
        ]}),
    )
    .await;

    let error = cluster
        .wait_for(
            &widget,
            Duration::from_millis(300),
            &CancellationToken::new(),
            ready,
        )
        .await
        .expect_err("never ready");

    assert!(matches!(error, WaitError::Timeout { .. }));
    assert_eq!(
        error.to_string(),
        "timed out after 300ms waiting for Widget default/w (example.com/v1): last observed \
         state: Ready=False (Progressing: Reconciliation in progress)"
    );
}

#[tokio::test]
async fn cancellation_ends_a_wait_promptly() {
    let sandbox = Sandbox::builder().build();
    sandbox
        .faults()
        .set_deployment_stuck("default", "web", true);
    let cluster = Cluster::new(sandbox.client());
    let applied = cluster.apply(&deployment("web")).await.expect("applied");
    let cancel = CancellationToken::new();
    let waiting = {
        let cluster = cluster.clone();
        let cancel = cancel.clone();
        let target = reference(&applied);
        tokio::spawn(async move {
            cluster
                .wait_for(
                    &target,
                    Duration::from_secs(60),
                    &cancel,
                    deployment_available,
                )
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished());

    let cancelled_at = Instant::now();
    cancel.cancel();
    let result = waiting.await.expect("task");

    // Without cancellation the wait would sit in its watch for up to a minute.
    assert!(
        cancelled_at.elapsed() < Duration::from_millis(500),
        "took {:?}",
        cancelled_at.elapsed()
    );
    let error = result.expect_err("cancelled");
    assert!(matches!(error, WaitError::Cancelled { .. }));
    assert_eq!(
        error.to_string(),
        "waiting for Deployment default/web (apps/v1): cancelled"
    );
}

#[tokio::test]
async fn gone_waits_until_the_last_finalizer_is_released() {
    let sandbox = Sandbox::builder().build();
    let cluster = Cluster::new(sandbox.client());
    let mut held = object(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "held", "namespace": "default", "finalizers": ["example.com/keep"]},
    }));
    held = cluster.apply(&held).await.expect("applied");
    let target = reference(&held);
    assert!(matches!(
        cluster
            .delete(&target, PropagationPolicy::Background)
            .await
            .expect("delete"),
        Deletion::Pending(_)
    ));
    let waiting = {
        let cluster = cluster.clone();
        let target = target.clone();
        tokio::spawn(async move {
            cluster
                .wait_for(&target, LONG, &CancellationToken::new(), gone)
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished(), "the object is still there");

    assert!(
        cluster
            .remove_finalizer(&target, "example.com/keep")
            .await
            .expect("released")
    );
    let result = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("ended promptly")
        .expect("task");

    assert_eq!(result.expect("gone"), None);
    assert_eq!(sandbox.object("", "configmaps", "default", "held"), None);
}

#[tokio::test]
async fn waiting_for_an_absent_object_of_an_unserved_kind_to_be_gone_is_immediate() {
    let sandbox = Sandbox::builder().build();
    let cluster = Cluster::new(sandbox.client());

    let result = cluster
        .wait_for(
            &ObjectRef::new("example.com/v1", "Widget", Some("default"), "w"),
            LONG,
            &CancellationToken::new(),
            gone,
        )
        .await;

    assert_eq!(result.expect("gone"), None);
}
