//! Operator-simulator tests for the FluxReport, each following the operator's
//! `internal/controller/fluxreport_controller.go` and `internal/reporter/` (v0.58.1) as named in
//! its comment. In-process sandbox.

// Test helpers panic on failure, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sim_support;

use kube::api::{Api, DynamicObject};
use serde_json::{Value, json};
use sim_support::*;

fn reports(client: &kube::Client) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        "flux-system",
        &ar("fluxcd.controlplane.io", "v1", "FluxReport", "fluxreports"),
    )
}

#[tokio::test]
async fn without_flux_the_report_has_distribution_cluster_and_operator_only() {
    // initReport + Compute stopping at "no Flux CRDs found".
    let (_sb, client) = sandbox(fast_config());
    install_operator(&client).await;
    let report = wait_for(&reports(&client), "flux", ready).await;
    assert_eq!(
        report["spec"],
        json!({
            "distribution": {"entitlement": "Unknown", "status": "Not Installed"},
            "cluster": {"serverVersion": "v1.33.0-sandbox", "platform": "linux/amd64"},
            "operator": {"apiVersion": "fluxcd.controlplane.io/v1", "version": "v0.58.1", "platform": "linux/amd64"}
        })
    );
    let ready_cond = cond(&report, "Ready").unwrap();
    assert_eq!(ready_cond["reason"], "Succeeded");
    assert!(
        ready_cond["message"]
            .as_str()
            .unwrap()
            .starts_with("Reporting finished in "),
        "{ready_cond}"
    );
}

fn installed(report: &Value) -> bool {
    report["spec"]["distribution"]["status"] == "Installed"
        && report["spec"]["components"]
            .as_array()
            .is_some_and(|c| c.len() == 4 && c.iter().all(|c| c["ready"] == true))
}

#[tokio::test]
async fn with_an_instance_the_report_lists_components_reconcilers_and_follows_requests() {
    // getDistributionStatus, getComponentsStatus, getReconcilersStatus; the instance
    // controller requests a report after each reconcile; requestedAt is echoed.
    let (_sb, client) = sandbox(fast_config());
    install_operator(&client).await;
    let instances = fluxinstances(&client, "flux-system");
    apply(&instances, instance("2.7.x")).await;
    wait_for(&instances, "flux", ready).await;
    let api = reports(&client);
    let report = wait_for(&api, "flux", installed).await;
    let spec = &report["spec"];
    assert_eq!(spec["distribution"]["managedBy"], "flux-operator");
    assert!(
        spec["distribution"]["version"]
            .as_str()
            .unwrap()
            .starts_with("v2.7.")
    );
    let names: Vec<&str> = spec["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "helm-controller",
            "kustomize-controller",
            "notification-controller",
            "source-controller"
        ]
    );
    let source = &spec["components"][3];
    assert!(
        source["image"]
            .as_str()
            .unwrap()
            .starts_with("ghcr.io/fluxcd/source-controller:"),
        "{source}"
    );
    assert!(
        source["status"].as_str().unwrap().starts_with("Current "),
        "{source}"
    );
    let kinds: Vec<String> = spec["reconcilers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r["apiVersion"].as_str().unwrap(),
                r["kind"].as_str().unwrap()
            )
        })
        .collect();
    let mut sorted = kinds.clone();
    sorted.sort();
    assert_eq!(kinds, sorted, "sorted by apiVersion+kind");
    let instance_stats = spec["reconcilers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "FluxInstance")
        .unwrap();
    assert_eq!(
        instance_stats["stats"],
        json!({"running": 1, "failing": 0, "suspended": 0})
    );
    assert!(spec["sync"].is_null(), "no sync configured");

    merge(
        &api,
        "flux",
        json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "now-1"}}}),
    )
    .await;
    wait_for(&api, "flux", |r| {
        r["status"]["lastHandledReconcileAt"] == "now-1"
    })
    .await;
}
