//! Operator-simulator tests for FluxInstance: install to Ready, updates, downgrade, uninstall
//! versus orphan, adoption of a classic bootstrap install, re-creation after a requested
//! reconcile, operator gating and scripted failures. In-process sandbox.

// Test helpers panic on failure, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sim_support;

use std::time::Duration;

use kube::api::{Api, DeleteParams, DynamicObject};
use kube_sandbox::sim::{Failure, fixtures};
use serde_json::{Value, json};
use sim_support::*;

/// The default install's inventory; the ResourceQuota and RBAC objects follow upstream
/// `internal/builder/build.go` (`roles/rbac.yaml` with the `-<namespace>` suffix).
const DEFAULT_IDS: [&str; 25] = [
    "_buckets.source.toolkit.fluxcd.io_apiextensions.k8s.io_CustomResourceDefinition",
    "_cluster-reconciler-flux-system_rbac.authorization.k8s.io_ClusterRoleBinding",
    "_crd-controller-flux-system_rbac.authorization.k8s.io_ClusterRole",
    "_crd-controller-flux-system_rbac.authorization.k8s.io_ClusterRoleBinding",
    "_flux-edit-flux-system_rbac.authorization.k8s.io_ClusterRole",
    "_flux-system__Namespace",
    "_flux-view-flux-system_rbac.authorization.k8s.io_ClusterRole",
    "_gitrepositories.source.toolkit.fluxcd.io_apiextensions.k8s.io_CustomResourceDefinition",
    "_kustomizations.kustomize.toolkit.fluxcd.io_apiextensions.k8s.io_CustomResourceDefinition",
    "_ocirepositories.source.toolkit.fluxcd.io_apiextensions.k8s.io_CustomResourceDefinition",
    "flux-system_allow-egress_networking.k8s.io_NetworkPolicy",
    "flux-system_allow-scraping_networking.k8s.io_NetworkPolicy",
    "flux-system_allow-webhooks_networking.k8s.io_NetworkPolicy",
    "flux-system_critical-pods-flux-system__ResourceQuota",
    "flux-system_helm-controller__ServiceAccount",
    "flux-system_helm-controller_apps_Deployment",
    "flux-system_kustomize-controller__ServiceAccount",
    "flux-system_kustomize-controller_apps_Deployment",
    "flux-system_notification-controller__Service",
    "flux-system_notification-controller__ServiceAccount",
    "flux-system_notification-controller_apps_Deployment",
    "flux-system_source-controller__Service",
    "flux-system_source-controller__ServiceAccount",
    "flux-system_source-controller_apps_Deployment",
    "flux-system_webhook-receiver__Service",
];

fn image(tag_component: &str, tag: &str) -> String {
    let repo = format!("ghcr.io/fluxcd/{tag_component}");
    format!(
        "{repo}:{tag}@sha256:{}",
        sha256_hex(&format!("{repo}:{tag}"))
    )
}

async fn deployment_image(client: &kube::Client, name: &str) -> String {
    let d = deployments(client, "flux-system").get(name).await.unwrap();
    d.spec.unwrap().template.spec.unwrap().containers[0]
        .image
        .clone()
        .unwrap()
}

fn is_revision(rev: &str, version: &str) -> bool {
    let Some(hex) = rev.strip_prefix(&format!("{version}@sha256:")) else {
        return false;
    };
    hex.len() == 64
        && hex
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_to_ready_with_components_inventory_and_sync() {
    let (_sb, client) = sandbox(fast_config());
    install_operator(&client).await;
    let fleet = fleet(&client, &["clusters/dev"]).await;
    let fi = fluxinstances(&client, "flux-system");
    let mut obj = instance("2.7.x");
    obj["spec"]["sync"] = json!({"kind": "GitRepository", "url": fleet.url,
                                 "ref": "refs/heads/main", "path": "clusters/dev", "pullSecret": "flux-system"});
    let created = apply(&fi, obj).await;
    // CRD defaults are applied by the server, not by the simulator.
    assert_eq!(created["spec"]["wait"], true);
    assert_eq!(created["spec"]["migrateResources"], true);
    assert_eq!(created["spec"]["sync"]["interval"], "1m");

    let got = wait_for(&fi, "flux", ready).await;
    assert_eq!(
        got["metadata"]["finalizers"],
        json!(["fluxcd.controlplane.io/finalizer"])
    );
    let r = cond(&got, "Ready").unwrap();
    assert_eq!(r["reason"], "ReconciliationSucceeded");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .starts_with("Reconciliation finished in "),
        "{r}"
    );
    assert!(cond(&got, "Reconciling").is_none());
    let rev = got["status"]["lastAppliedRevision"].as_str().unwrap();
    assert!(is_revision(rev, "v2.7.5"), "{rev}");
    assert_eq!(got["status"]["lastAttemptedRevision"], rev);
    let comps: Vec<Value> = [
        "source-controller",
        "kustomize-controller",
        "helm-controller",
        "notification-controller",
    ]
    .iter()
    .zip(["v1.7.5", "v1.7.5", "v1.4.5", "v1.7.5"])
    .map(|(c, tag)| {
        let repo = format!("ghcr.io/fluxcd/{c}");
        json!({"name": c, "repository": repo, "tag": tag,
                   "digest": format!("sha256:{}", sha256_hex(&format!("{repo}:{tag}")))})
    })
    .collect();
    assert_eq!(got["status"]["components"], json!(comps));
    let mut want: Vec<String> = DEFAULT_IDS.iter().map(|s| s.to_string()).collect();
    want.push("flux-system_flux-system_source.toolkit.fluxcd.io_GitRepository".into());
    want.push("flux-system_flux-system_kustomize.toolkit.fluxcd.io_Kustomization".into());
    want.sort();
    assert_eq!(inventory_ids(&got), want);
    assert_eq!(
        got["status"]["history"][0]["metadata"],
        json!({"flux": "v2.7.5"})
    );
    assert_eq!(
        got["status"]["history"][0]["digest"],
        rev.split_once('@').unwrap().1
    );

    // `wait: true` (the CRD default): Ready only once every controller is Available.
    for n in [
        "source-controller",
        "kustomize-controller",
        "helm-controller",
        "notification-controller",
    ] {
        let d = deployments(&client, "flux-system").get(n).await.unwrap();
        let available = d
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .into_iter()
            .any(|c| c.type_ == "Available" && c.status == "True");
        assert!(available, "{n} not Available when the instance was Ready");
    }
    assert_eq!(
        deployment_image(&client, "helm-controller").await,
        image("helm-controller", "v1.4.5")
    );
    let d = deployments(&client, "flux-system")
        .get("source-controller")
        .await
        .unwrap();
    let labels = d.metadata.labels.unwrap();
    assert_eq!(labels["app.kubernetes.io/managed-by"], "flux-operator");
    assert_eq!(labels["fluxcd.controlplane.io/name"], "flux");
    assert_eq!(labels["app.kubernetes.io/version"], "v2.7.5");
    assert_eq!(
        d.metadata.annotations.unwrap()["kustomize.toolkit.fluxcd.io/ssa"],
        "Ignore"
    );
    let managers: Vec<String> = d
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(
        managers.contains(&"flux-operator".to_string()),
        "{managers:?}"
    );

    let git = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        "flux-system",
        &ar(
            "source.toolkit.fluxcd.io",
            "v1",
            "GitRepository",
            "gitrepositories",
        ),
    );
    let g = serde_json::to_value(git.get("flux-system").await.unwrap()).unwrap();
    assert_eq!(
        g["spec"],
        json!({"interval": "1m", "url": fleet.url,
               "ref": {"name": "refs/heads/main"}, "secretRef": {"name": "flux-system"}})
    );
    let ks = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        "flux-system",
        &ar(
            "kustomize.toolkit.fluxcd.io",
            "v1",
            "Kustomization",
            "kustomizations",
        ),
    );
    let k = serde_json::to_value(ks.get("flux-system").await.unwrap()).unwrap();
    assert_eq!(
        k["spec"],
        json!({"interval": "10m0s", "path": "clusters/dev", "prune": true,
               "sourceRef": {"kind": "GitRepository", "name": "flux-system"}})
    );
}

#[tokio::test]
async fn update_bumps_generation_and_is_observed_then_minor_downgrade_stalls() {
    let (_sb, client) = sandbox(fast_config());
    install_operator(&client).await;
    let fi = fluxinstances(&client, "flux-system");
    apply(&fi, instance("2.6.x")).await;
    let first = wait_for(&fi, "flux", ready).await;
    assert_eq!(first["metadata"]["generation"], 1);
    assert!(is_revision(
        first["status"]["lastAppliedRevision"].as_str().unwrap(),
        "v2.6.4"
    ));
    assert_eq!(
        deployment_image(&client, "source-controller").await,
        image("source-controller", "v1.6.4")
    );

    let updated = apply(&fi, instance("2.7.x")).await;
    assert_eq!(updated["metadata"]["generation"], 2);
    let second = wait_for(&fi, "flux", ready).await;
    assert_eq!(cond(&second, "Ready").unwrap()["observedGeneration"], 2);
    assert!(is_revision(
        second["status"]["lastAppliedRevision"].as_str().unwrap(),
        "v2.7.5"
    ));
    assert_eq!(
        deployment_image(&client, "source-controller").await,
        image("source-controller", "v1.7.5")
    );

    apply(&fi, instance("2.6.x")).await;
    let stalled_obj = wait_for(&fi, "flux", stalled).await;
    let r = cond(&stalled_obj, "Ready").unwrap();
    assert_eq!(
        (
            r["status"].as_str(),
            r["reason"].as_str(),
            r["message"].as_str()
        ),
        (
            Some("False"),
            Some("BuildFailed"),
            Some("downgrading from v2.7.5 to v2.6.4 is not supported, reinstall needed")
        )
    );
    assert_eq!(
        cond(&stalled_obj, "Stalled").unwrap()["reason"],
        "BuildFailed"
    );
    assert_eq!(
        stalled_obj["status"]["lastAppliedRevision"],
        second["status"]["lastAppliedRevision"]
    );
    assert_eq!(
        deployment_image(&client, "source-controller").await,
        image("source-controller", "v1.7.5")
    );

    // A patch downgrade within the minor is allowed.
    apply(&fi, instance("2.7.2")).await;
    let third = wait_for(&fi, "flux", ready).await;
    assert!(is_revision(
        third["status"]["lastAppliedRevision"].as_str().unwrap(),
        "v2.7.2"
    ));
    assert!(cond(&third, "Stalled").is_none());
}

#[tokio::test]
async fn unknown_version_stalls_with_build_failed() {
    let (_sb, client) = sandbox(fast_config());
    install_operator(&client).await;
    let fi = fluxinstances(&client, "flux-system");
    apply(&fi, instance("3.x")).await;
    let got = wait_for(&fi, "flux", stalled).await;
    let r = cond(&got, "Ready").unwrap();
    assert_eq!(
        (r["status"].as_str(), r["reason"].as_str()),
        (Some("False"), Some("BuildFailed"))
    );
    assert_eq!(r["message"], "no match found for semver: 3.x");
    assert!(
        deployment_uid(&client, "flux-system", "source-controller")
            .await
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_uninstalls_flux_but_keeps_the_namespace_and_foreign_objects() {
    let (_sb, client) = sandbox(fast_config());
    install_operator(&client).await;
    let fleet = fleet(&client, &["clusters/dev"]).await;
    let secrets: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "flux-system",
        &ar("", "v1", "Secret", "secrets"),
    );
    let fi = fluxinstances(&client, "flux-system");
    let mut obj = instance("2.7.x");
    obj["spec"]["sync"] = json!({"kind": "GitRepository", "url": fleet.url,
                                 "ref": "refs/heads/main", "path": "clusters/dev", "pullSecret": "flux-system"});
    apply(&fi, obj).await;
    wait_for(&fi, "flux", ready).await;
    // The Flux controllers' finalizers (set by the simulated controllers) must not block the
    // uninstall: the operator strips them once the controllers are gone.
    let git = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        "flux-system",
        &ar(
            "source.toolkit.fluxcd.io",
            "v1",
            "GitRepository",
            "gitrepositories",
        ),
    );
    let g = wait_for(&git, "flux-system", |g| {
        g["metadata"]["finalizers"] == json!(["finalizers.fluxcd.io"])
    })
    .await;
    assert!(ready(&g), "{g}");
    let cms: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &ar("", "v1", "ConfigMap", "configmaps"),
    );
    wait_for(&cms, "cm-clusters-dev", |_| true).await;

    fi.delete("flux", &DeleteParams::default()).await.unwrap();
    wait_gone(&fi, "flux").await;
    for d in [
        "source-controller",
        "kustomize-controller",
        "helm-controller",
        "notification-controller",
    ] {
        assert_eq!(deployment_uid(&client, "flux-system", d).await, None, "{d}");
    }
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    let left: Vec<String> = crds
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .filter(|n| n.ends_with(".toolkit.fluxcd.io"))
        .collect();
    assert_eq!(left, Vec::<String>::new());
    let nss: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let ns = nss.get("flux-system").await.unwrap();
    assert!(ns.metadata.deletion_timestamp.is_none());
    assert!(secrets.get_opt("flux-system").await.unwrap().is_some());
    // The controllers are deleted before the sync Kustomization, so what it applied stays.
    assert!(cms.get_opt("cm-clusters-dev").await.unwrap().is_some());
    // The operator itself is untouched.
    assert!(
        deployment_uid(&client, "flux-system", "flux-operator")
            .await
            .is_some()
    );
}

#[tokio::test]
async fn delete_with_reconcile_disabled_orphans_flux() {
    let (_sb, client) = sandbox(fast_config());
    install_operator(&client).await;
    let fi = fluxinstances(&client, "flux-system");
    apply(&fi, instance("2.7.x")).await;
    wait_for(&fi, "flux", ready).await;
    let before = deployment_uid(&client, "flux-system", "kustomize-controller")
        .await
        .unwrap();
    merge(
        &fi,
        "flux",
        json!({"metadata": {"annotations": {"fluxcd.controlplane.io/reconcile": "disabled"}}}),
    )
    .await;
    fi.delete("flux", &DeleteParams::default()).await.unwrap();
    wait_gone(&fi, "flux").await;
    assert_eq!(
        deployment_uid(&client, "flux-system", "kustomize-controller").await,
        Some(before)
    );
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    assert!(
        crds.get_opt("kustomizations.kustomize.toolkit.fluxcd.io")
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopts_a_classic_bootstrap_install_in_place() {
    let (_sb, client) = sandbox(fast_config());
    fixtures::apply_yaml_staged(
        &client,
        fixtures::CLASSIC_BOOTSTRAP,
        "kustomize-controller",
        "flux-system",
    )
    .await
    .unwrap();
    let names = [
        "source-controller",
        "kustomize-controller",
        "helm-controller",
        "notification-controller",
    ];
    let mut uids = Vec::new();
    for n in names {
        uids.push(deployment_uid(&client, "flux-system", n).await.unwrap());
    }
    let git = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        "flux-system",
        &ar(
            "source.toolkit.fluxcd.io",
            "v1",
            "GitRepository",
            "gitrepositories",
        ),
    );
    let git_uid = git.get("flux-system").await.unwrap().metadata.uid.unwrap();

    install_operator(&client).await;
    let fleet = fleet(&client, &["clusters/my-cluster"]).await;
    let fi = fluxinstances(&client, "flux-system");
    let mut obj = instance("2.7.x");
    obj["spec"]["sync"] = json!({"kind": "GitRepository", "url": fleet.url,
                                 "ref": "refs/heads/main", "path": "./clusters/my-cluster", "pullSecret": "flux-system"});
    apply(&fi, obj).await;
    wait_for(&fi, "flux", ready).await;

    for (n, uid) in names.iter().zip(&uids) {
        let d = deployments(&client, "flux-system").get(n).await.unwrap();
        assert_eq!(d.metadata.uid.as_ref(), Some(uid), "{n} was recreated");
        let labels = d.metadata.labels.unwrap();
        assert!(
            !labels.contains_key("kustomize.toolkit.fluxcd.io/name"),
            "{n}: {labels:?}"
        );
        assert_eq!(labels["app.kubernetes.io/managed-by"], "flux-operator");
    }
    let g = serde_json::to_value(git.get("flux-system").await.unwrap()).unwrap();
    assert_eq!(g["metadata"]["uid"], git_uid);
    // The operator's fields are applied over the bootstrap's.
    assert_eq!(g["spec"]["url"], fleet.url.as_str());
    assert_eq!(g["spec"]["ref"]["name"], "refs/heads/main");
    assert_eq!(g["spec"]["secretRef"], json!({"name": "flux-system"}));
    assert!(
        g["metadata"]["labels"]
            .get("kustomize.toolkit.fluxcd.io/name")
            .is_none()
    );
}

#[tokio::test]
async fn hand_deleted_controller_comes_back_after_a_requested_reconcile() {
    let (_sb, client) = sandbox(fast_config());
    install_operator(&client).await;
    let fi = fluxinstances(&client, "flux-system");
    apply(&fi, instance("2.7.x")).await;
    wait_for(&fi, "flux", ready).await;
    let old = deployment_uid(&client, "flux-system", "helm-controller")
        .await
        .unwrap();
    deployments(&client, "flux-system")
        .delete("helm-controller", &DeleteParams::default())
        .await
        .unwrap();
    // The operator does not watch its controllers: nothing happens until a reconcile.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        deployment_uid(&client, "flux-system", "helm-controller").await,
        None
    );

    merge(&fi, "flux", json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "2026-01-01T00:00:00Z"}}}))
        .await;
    let got = wait_for(&fi, "flux", |o| {
        ready(o) && o["status"]["lastHandledReconcileAt"] == "2026-01-01T00:00:00Z"
    })
    .await;
    assert_eq!(
        cond(&got, "Ready").unwrap()["reason"],
        "ReconciliationSucceeded"
    );
    let new = deployment_uid(&client, "flux-system", "helm-controller")
        .await
        .unwrap();
    assert_ne!(new, old);
}

#[tokio::test]
async fn acts_only_while_the_operator_is_available() {
    let (_sb, client) = sandbox(fast_config());
    // CRDs without the operator Deployment: nothing reconciles.
    fixtures::apply_yaml_staged(
        &client,
        fixtures::CRD_FLUXINSTANCES,
        TEST_MANAGER,
        "flux-system",
    )
    .await
    .unwrap();
    let nss: Api<DynamicObject> =
        Api::all_with(client.clone(), &ar("", "v1", "Namespace", "namespaces"));
    apply(
        &nss,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "flux-system"}}),
    )
    .await;
    let fi = fluxinstances(&client, "flux-system");
    apply(&fi, instance("2.7.x")).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = serde_json::to_value(fi.get("flux").await.unwrap()).unwrap();
    assert_eq!(idle["metadata"].get("finalizers"), None);
    assert_eq!(idle.get("status").and_then(|s| s.get("conditions")), None);

    install_operator(&client).await;
    wait_for(&fi, "flux", ready).await;
}

#[tokio::test]
async fn scripted_failures_from_annotations_and_script() {
    let config = fast_config();
    let script = config.script.clone();
    let (_sb, client) = sandbox(config);
    install_operator(&client).await;
    let fi = fluxinstances(&client, "flux-system");
    let mut obj = instance("2.7.x");
    obj["metadata"]["annotations"] =
        json!({"sandbox.fluxrs.dev/fail": "HealthCheckFailed:controllers crash looping"});
    apply(&fi, obj).await;
    // A scripted health failure is reported as the operator reports every apply or health
    // failure: `ReconciliationFailed`, "reconciliation failed: ...".
    let got = wait_for(&fi, "flux", |o| {
        cond(o, "Ready")
            .is_some_and(|c| c["status"] == "False" && c["reason"] == "ReconciliationFailed")
    })
    .await;
    assert_eq!(
        cond(&got, "Ready").unwrap()["message"],
        "reconciliation failed: controllers crash looping"
    );
    assert_eq!(
        cond(&got, "Reconciling").unwrap()["reason"],
        "ProgressingWithRetry"
    );
    assert!(cond(&got, "Stalled").is_none());

    // Removing the hook lets it become Ready.
    apply(&fi, instance("2.7.x")).await;
    wait_for(&fi, "flux", ready).await;

    script.set(
        "FluxInstance",
        "flux-system",
        "flux",
        Failure::BuildFailed("scripted build failure".into()),
    );
    let got = wait_for(&fi, "flux", |o| {
        cond(o, "Ready").is_some_and(|c| c["status"] == "False" && c["reason"] == "BuildFailed")
    })
    .await;
    assert_eq!(
        cond(&got, "Stalled").unwrap()["message"],
        "scripted build failure"
    );
    script.set(
        "FluxInstance",
        "flux-system",
        "flux",
        Failure::ArtifactFailed("pull denied".into()),
    );
    let got = wait_for(&fi, "flux", |o| {
        cond(o, "Ready").is_some_and(|c| c["status"] == "False" && c["reason"] == "ArtifactFailed")
    })
    .await;
    assert_eq!(cond(&got, "Ready").unwrap()["message"], "pull denied");
    assert_eq!(
        cond(&got, "Reconciling").unwrap()["reason"],
        "ProgressingWithRetry"
    );
    assert!(cond(&got, "Stalled").is_none());
    script.clear("FluxInstance", "flux-system", "flux");
    wait_for(&fi, "flux", ready).await;
}

#[tokio::test]
async fn slow_readiness_lags_ready() {
    let (_sb, client) = sandbox(fast_config());
    install_operator(&client).await;
    let fi = fluxinstances(&client, "flux-system");
    let mut obj = instance("2.7.x");
    obj["metadata"]["annotations"] = json!({"sandbox.fluxrs.dev/ready-delay": "1s"});
    let started = std::time::Instant::now();
    apply(&fi, obj).await;
    let got = wait_for(&fi, "flux", ready).await;
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(
        cond(&got, "Ready").unwrap()["reason"],
        "ReconciliationSucceeded"
    );
}

#[tokio::test]
async fn ignores_instances_outside_the_operator_namespace() {
    let (_sb, client) = sandbox(fast_config());
    install_operator(&client).await;
    let nss: Api<DynamicObject> =
        Api::all_with(client.clone(), &ar("", "v1", "Namespace", "namespaces"));
    apply(
        &nss,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "elsewhere"}}),
    )
    .await;
    let other = fluxinstances(&client, "elsewhere");
    let mut obj = instance("2.7.x");
    obj["metadata"]["namespace"] = json!("elsewhere");
    apply(&other, obj).await;
    // The one in the operator's namespace is reconciled meanwhile.
    let fi = fluxinstances(&client, "flux-system");
    apply(&fi, instance("2.7.x")).await;
    wait_for(&fi, "flux", ready).await;
    let idle = serde_json::to_value(other.get("flux").await.unwrap()).unwrap();
    assert_eq!(idle["metadata"].get("finalizers"), None);
    assert_eq!(idle.get("status").and_then(|s| s.get("conditions")), None);
    assert_eq!(
        deployment_uid(&client, "elsewhere", "source-controller").await,
        None
    );
}

#[tokio::test]
async fn finalizer_hangs_while_the_operator_is_gone() {
    let (_sb, client) = sandbox(fast_config());
    install_operator(&client).await;
    let fi = fluxinstances(&client, "flux-system");
    apply(&fi, instance("2.7.x")).await;
    wait_for(&fi, "flux", ready).await;
    deployments(&client, "flux-system")
        .delete("flux-operator", &DeleteParams::default())
        .await
        .unwrap();
    fi.delete("flux", &DeleteParams::default()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let stuck = serde_json::to_value(fi.get("flux").await.unwrap()).unwrap();
    assert!(stuck["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(
        stuck["metadata"]["finalizers"],
        json!(["fluxcd.controlplane.io/finalizer"])
    );
    assert!(
        deployment_uid(&client, "flux-system", "source-controller")
            .await
            .is_some()
    );

    // Reinstalling the operator lets the uninstall finish.
    install_operator(&client).await;
    wait_gone(&fi, "flux").await;
    assert_eq!(
        deployment_uid(&client, "flux-system", "source-controller").await,
        None
    );
}

#[tokio::test]
async fn wait_false_does_not_wait_for_controllers() {
    let (_sb, client) = {
        let sb = kube_sandbox::Sandbox::builder()
            .crd_established_delay(Duration::from_millis(50))
            .deployment_available_delay(Duration::from_secs(3))
            .operator_sim(fast_config())
            .build();
        let c = sb.client();
        (sb, c)
    };
    install_operator(&client).await;
    let fi = fluxinstances(&client, "flux-system");
    let mut obj = instance("2.7.x");
    obj["spec"]["wait"] = json!(false);
    let started = std::time::Instant::now();
    apply(&fi, obj).await;
    wait_for(&fi, "flux", ready).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let d = deployments(&client, "flux-system")
        .get("source-controller")
        .await
        .unwrap();
    assert!(
        d.status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .all(|c| c.type_ != "Available")
    );
}

#[tokio::test]
async fn drift_is_corrected_every_reconcile_interval() {
    let (_sb, client) = sandbox(fast_config());
    install_operator(&client).await;
    let fi = fluxinstances(&client, "flux-system");
    let mut obj = instance("2.7.x");
    obj["metadata"]["annotations"] = json!({"fluxcd.controlplane.io/reconcileEvery": "1s"});
    apply(&fi, obj).await;
    wait_for(&fi, "flux", ready).await;
    let old = deployment_uid(&client, "flux-system", "kustomize-controller")
        .await
        .unwrap();
    deployments(&client, "flux-system")
        .delete("kustomize-controller", &DeleteParams::default())
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(new) = deployment_uid(&client, "flux-system", "kustomize-controller").await {
            assert_ne!(new, old);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not re-created by the periodic reconcile"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Upstream: removing `sync` garbage-collects the generated GitRepository and Kustomization
/// (inventory GC in `fluxinstance_controller.go`), and kustomize-controller's finalizer then
/// prunes everything the Kustomization applied (`prune: true`) — the data-loss hazard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_sync_and_components_garbage_collects_them() {
    let (_sb, client) = sandbox(fast_config());
    install_operator(&client).await;
    let fleet = fleet(&client, &["clusters/dev"]).await;
    let fi = fluxinstances(&client, "flux-system");
    let mut obj = instance("2.7.x");
    obj["spec"]["sync"] = json!({"kind": "GitRepository", "url": fleet.url,
                                 "ref": "refs/heads/main", "path": "clusters/dev", "pullSecret": "flux-system"});
    apply(&fi, obj).await;
    let first = wait_for(&fi, "flux", ready).await;
    assert!(inventory_ids(&first).contains(
        &"flux-system_flux-system_kustomize.toolkit.fluxcd.io_Kustomization".to_string()
    ));
    let cms: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &ar("", "v1", "ConfigMap", "configmaps"),
    );
    wait_for(&cms, "cm-clusters-dev", |_| true).await;

    // Like `kubectl edit`: drop `sync` and two components.
    merge(
        &fi,
        "flux",
        json!({"spec": {"sync": null, "components": ["source-controller", "kustomize-controller"]}}),
    )
    .await;
    let second = wait_for(&fi, "flux", ready).await;
    let ids = inventory_ids(&second);
    assert!(
        !ids.iter()
            .any(|i| i.contains("Kustomization") || i.contains("GitRepository")),
        "{ids:?}"
    );
    assert!(
        !ids.iter()
            .any(|i| i.contains("helm-controller") || i.contains("notification-controller")),
        "{ids:?}"
    );
    let ks = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        "flux-system",
        &ar(
            "kustomize.toolkit.fluxcd.io",
            "v1",
            "Kustomization",
            "kustomizations",
        ),
    );
    wait_gone(&ks, "flux-system").await;
    // What the Kustomization applied is pruned by its finalizer.
    wait_gone(&cms, "cm-clusters-dev").await;
    assert_eq!(
        deployment_uid(&client, "flux-system", "helm-controller").await,
        None
    );
    assert!(
        deployment_uid(&client, "flux-system", "source-controller")
            .await
            .is_some()
    );
    assert_eq!(second["status"]["components"].as_array().unwrap().len(), 2);
}

/// Upstream inventory GC (`fluxinstance_controller.go`) on a `sync.kind` change: the old sync
/// source (`GitRepository`) leaves the inventory and is deleted; the Kustomization keeps its
/// name (`sync.name`, else the namespace), so it is the same object, updated in place to the
/// new `sourceRef` — not deleted, so its finalizer prunes nothing, and kustomize-controller
/// keeps what it applied while the new source has no artifact. The instance is not Ready while
/// the new source is not (health check over every applied object).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_sync_kind_collects_the_old_source_and_keeps_the_kustomization() {
    let (_sb, client) = sandbox(fast_config());
    install_operator(&client).await;
    let fleet = fleet(&client, &["clusters/dev"]).await;
    let fi = fluxinstances(&client, "flux-system");
    let mut obj = instance("2.7.x");
    obj["spec"]["sync"] = json!({"kind": "GitRepository", "url": fleet.url,
                                 "ref": "refs/heads/main", "path": "clusters/dev", "pullSecret": "flux-system"});
    apply(&fi, obj).await;
    wait_for(&fi, "flux", ready).await;
    let cms: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &ar("", "v1", "ConfigMap", "configmaps"),
    );
    wait_for(&cms, "cm-clusters-dev", |_| true).await;
    let ks = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        "flux-system",
        &ar(
            "kustomize.toolkit.fluxcd.io",
            "v1",
            "Kustomization",
            "kustomizations",
        ),
    );
    let before = serde_json::to_value(ks.get("flux-system").await.unwrap()).unwrap();
    let gits = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        "flux-system",
        &ar(
            "source.toolkit.fluxcd.io",
            "v1",
            "GitRepository",
            "gitrepositories",
        ),
    );
    let ocis = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        "flux-system",
        &ar(
            "source.toolkit.fluxcd.io",
            "v1",
            "OCIRepository",
            "ocirepositories",
        ),
    );

    merge(
        &fi,
        "flux",
        json!({"metadata": {"annotations": {"fluxcd.controlplane.io/reconcileTimeout": "1s"}},
               "spec": {"sync": {"kind": "OCIRepository", "url": "oci://registry.example/fleet",
                                 "ref": "latest", "pullSecret": null}}}),
    )
    .await;
    wait_gone(&gits, "flux-system").await;
    let got = wait_for(&fi, "flux", |o| {
        cond(o, "Ready").is_some_and(|c| {
            c["reason"] == "ReconciliationFailed"
                && c["observedGeneration"] == o["metadata"]["generation"]
        })
    })
    .await;
    let message = cond(&got, "Ready").unwrap()["message"].as_str().unwrap();
    assert!(
        message.contains("OCIRepository/flux-system/flux-system status:"),
        "{message}"
    );
    let ids = inventory_ids(&got);
    assert!(
        ids.contains(&"flux-system_flux-system_source.toolkit.fluxcd.io_OCIRepository".to_string())
            && !ids.iter().any(|i| i.contains("GitRepository")),
        "{ids:?}"
    );
    assert!(ocis.get_opt("flux-system").await.unwrap().is_some());
    let after = serde_json::to_value(ks.get("flux-system").await.unwrap()).unwrap();
    assert_eq!(after["metadata"]["uid"], before["metadata"]["uid"]);
    assert!(after["metadata"]["deletionTimestamp"].is_null(), "{after}");
    assert_eq!(
        after["spec"]["sourceRef"],
        json!({"kind": "OCIRepository", "name": "flux-system"})
    );
    assert_eq!(after["spec"]["prune"], true);
    // Nothing the Kustomization applied was pruned.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(cms.get_opt("cm-clusters-dev").await.unwrap().is_some());
}

#[tokio::test]
async fn kustomize_patches_reach_the_controllers() {
    let (_sb, client) = sandbox(fast_config());
    install_operator(&client).await;
    let fi = fluxinstances(&client, "flux-system");
    let mut obj = instance("2.7.x");
    obj["spec"]["kustomize"] = json!({"patches": [{
        "target": {"kind": "Deployment", "name": "kustomize-controller"},
        "patch": "- op: add\n  path: /spec/template/spec/containers/0/args/-\n  value: --concurrent=20\n",
    }]});
    apply(&fi, obj).await;
    wait_for(&fi, "flux", ready).await;
    let d = deployments(&client, "flux-system")
        .get("kustomize-controller")
        .await
        .unwrap();
    let args = d.spec.unwrap().template.spec.unwrap().containers[0]
        .args
        .clone()
        .unwrap();
    assert_eq!(args.last().map(String::as_str), Some("--concurrent=20"));

    let mut bad = instance("2.7.x");
    bad["spec"]["kustomize"] = json!({"patches": [{"patch": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: nope\n"}]});
    apply(&fi, bad).await;
    let got = wait_for(&fi, "flux", stalled).await;
    assert_eq!(
        cond(&got, "Ready").unwrap()["message"],
        "kustomize patch 0: no matches for ConfigMap/nope"
    );
}

/// Upstream `initializeObjectStatus` (`internal/controller/common.go`): an instance created
/// with `fluxcd.controlplane.io/reconcile: disabled` gets `Ready=True`, reason
/// `ReconciliationDisabled`, "Initialized with reconciliation suspended" at once, and nothing is
/// installed. Re-enabling leaves that condition until the operator has reconciled, which then
/// replaces it with `ReconciliationSucceeded` for the same generation.
#[tokio::test]
async fn created_with_reconcile_disabled_is_ready_with_reconciliation_disabled() {
    let (_sb, client) = sandbox(fast_config());
    install_operator(&client).await;
    let fi = fluxinstances(&client, "flux-system");
    let mut obj = instance("2.7.x");
    obj["metadata"]["annotations"] = json!({"fluxcd.controlplane.io/reconcile": "disabled"});
    apply(&fi, obj).await;
    let got = wait_for(&fi, "flux", |o| cond(o, "Ready").is_some()).await;
    let r = cond(&got, "Ready").unwrap();
    assert_eq!(
        (
            &r["status"],
            &r["reason"],
            &r["message"],
            &r["observedGeneration"]
        ),
        (
            &json!("True"),
            &json!("ReconciliationDisabled"),
            &json!("Initialized with reconciliation suspended"),
            &got["metadata"]["generation"]
        )
    );
    assert!(cond(&got, "Reconciling").is_none(), "{got}");
    assert_eq!(
        got["metadata"]["finalizers"],
        json!(["fluxcd.controlplane.io/finalizer"])
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        deployment_uid(&client, "flux-system", "source-controller").await,
        None
    );

    // Re-enabled: the generation does not change; readiness must be judged by the reason.
    merge(
        &fi,
        "flux",
        json!({"metadata": {"annotations": {"fluxcd.controlplane.io/reconcile": null}}}),
    )
    .await;
    let got = wait_for(&fi, "flux", |o| {
        cond(o, "Ready").is_some_and(|c| c["reason"] == "ReconciliationSucceeded")
    })
    .await;
    assert!(ready(&got), "{got}");
    assert!(
        deployment_uid(&client, "flux-system", "source-controller")
            .await
            .is_some()
    );
}

/// Upstream `apply` (`internal/controller/fluxinstance_controller.go`): the health check waits
/// for every applied object, the sync GitRepository and Kustomization included; a source that
/// cannot become ready fails the reconciliation within `reconcileTimeout` with `Ready=False`,
/// reason `ReconciliationFailed`, the message naming the object and quoting its Ready message
/// (`aggregateNotReadyStatus`). The inventory is still recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_sync_source_fails_the_health_check_naming_it() {
    let (_sb, client) = sandbox(fast_config());
    install_operator(&client).await;
    let fleet = fleet(&client, &["clusters/dev"]).await;
    let fi = fluxinstances(&client, "flux-system");
    let mut obj = instance("2.7.x");
    obj["metadata"]["annotations"] = json!({"fluxcd.controlplane.io/reconcileTimeout": "2s"});
    // A path the repository does not have: the source is Ready, the Kustomization is not.
    obj["spec"]["sync"] = json!({"kind": "GitRepository", "url": fleet.url, "ref": "refs/heads/main",
                                 "path": "clusters/missing", "pullSecret": "flux-system"});
    apply(&fi, obj).await;
    let got = wait_for(&fi, "flux", |o| {
        cond(o, "Ready")
            .is_some_and(|c| c["status"] == "False" && c["reason"] == "ReconciliationFailed")
    })
    .await;
    let message = cond(&got, "Ready").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    let (head, detail) = message.split_once('\n').expect("two lines");
    assert_eq!(
        head,
        "reconciliation failed: timeout waiting for: [Kustomization/flux-system/flux-system status: 'InProgress']"
    );
    assert!(
        detail.starts_with("Kustomization/flux-system/flux-system status: ")
            && detail.contains("clusters/missing"),
        "{detail}"
    );
    assert_eq!(
        cond(&got, "Reconciling").unwrap()["reason"],
        "ProgressingWithRetry"
    );
    assert!(cond(&got, "Stalled").is_none());
    assert!(inventory_ids(&got).contains(
        &"flux-system_flux-system_kustomize.toolkit.fluxcd.io_Kustomization".to_string()
    ));

    // An unreachable repository: the GitRepository is named.
    let mut obj = instance("2.7.x");
    obj["metadata"]["annotations"] = json!({"fluxcd.controlplane.io/reconcileTimeout": "2s"});
    obj["spec"]["sync"] = json!({"kind": "GitRepository", "url": "http://127.0.0.1:9/nowhere.git",
                                 "ref": "refs/heads/main", "path": "clusters/dev", "pullSecret": "flux-system"});
    apply(&fi, obj).await;
    let got = wait_for(&fi, "flux", |o| {
        cond(o, "Ready").is_some_and(|c| {
            c["reason"] == "ReconciliationFailed"
                && c["observedGeneration"] == o["metadata"]["generation"]
                && c["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("GitRepository/flux-system/flux-system status: '"))
        })
    })
    .await;
    let message = cond(&got, "Ready").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("\nGitRepository/flux-system/flux-system status: "),
        "{message}"
    );
}

/// Upstream: an apply error is reported (`Ready=False`, `ReconciliationFailed`,
/// "reconciliation failed: ..."), not retried silently, and the retry converges once the
/// cause is gone.
#[tokio::test]
async fn apply_error_is_reported_as_reconciliation_failed() {
    let (sb, client) = sandbox(fast_config());
    install_operator(&client).await;
    sb.faults().add(
        kube_sandbox::faults::FaultRule::new(kube_sandbox::faults::FaultAction::Error {
            code: 500,
            retry_after: None,
            message: Some("injected apply failure".into()),
        })
        .verb("patch")
        .resource("deployments")
        .name("helm-controller")
        .times(3),
    );
    let fi = fluxinstances(&client, "flux-system");
    apply(&fi, instance("2.7.x")).await;
    let got = wait_for(&fi, "flux", |o| {
        cond(o, "Ready").is_some_and(|c| c["reason"] == "ReconciliationFailed")
    })
    .await;
    let message = cond(&got, "Ready").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.starts_with(
            "reconciliation failed: apply flux-system_helm-controller_apps_Deployment: "
        ) && message.contains("injected apply failure"),
        "{message}"
    );
    // Nothing was recorded for the failed apply.
    assert!(got["status"]["inventory"].is_null(), "{got}");
    wait_for(&fi, "flux", ready).await;
}

/// Upstream `fluxinstance_uninstaller.go`: errors are logged, each wait is bounded (5m), and the
/// finalizer is released anyway — a controller Deployment held by a foreign finalizer does not
/// keep the FluxInstance from going.
#[tokio::test]
async fn uninstall_is_bounded_and_releases_the_finalizer() {
    let mut config = fast_config();
    config.uninstall_timeout = Duration::from_secs(2);
    let (_sb, client) = sandbox(config);
    install_operator(&client).await;
    let fi = fluxinstances(&client, "flux-system");
    apply(&fi, instance("2.7.x")).await;
    wait_for(&fi, "flux", ready).await;
    let deps: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "flux-system",
        &ar("apps", "v1", "Deployment", "deployments"),
    );
    merge(
        &deps,
        "helm-controller",
        json!({"metadata": {"finalizers": ["example.com/hold"]}}),
    )
    .await;
    fi.delete("flux", &DeleteParams::default()).await.unwrap();
    wait_gone(&fi, "flux").await;
    // The held Deployment is still terminating; the others and the CRDs are gone.
    let held = deps.get("helm-controller").await.unwrap();
    assert!(held.metadata.deletion_timestamp.is_some());
    assert_eq!(
        deployment_uid(&client, "flux-system", "source-controller").await,
        None
    );
    merge(
        &deps,
        "helm-controller",
        json!({"metadata": {"finalizers": null}}),
    )
    .await;
}
