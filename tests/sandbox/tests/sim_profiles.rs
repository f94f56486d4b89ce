//! Operator-simulator tests for the FluxInstance behaviours of the reference page's "Profiles"
//! and "Artifact" rows that had no simulator test: image-controller shards, the distribution's
//! RBAC and ResourceQuota, `migrateResources` with `reconcile.fluxcd.io/forceAt`, and the
//! artifact reconciler. Each test names the upstream file (flux-operator v0.58.1) it follows.
//! In-process sandbox.

// Test helpers panic on failure, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sim_support;

use std::time::Duration;

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube_sandbox::sim::artifact::default_digest;
use serde_json::{Value, json};
use sim_support::*;

fn cluster_api(client: &kube::Client, group: &str, kind: &str, plural: &str) -> Api<DynamicObject> {
    Api::all_with(client.clone(), &ar(group, "v1", kind, plural))
}

async fn get(api: &Api<DynamicObject>, name: &str) -> Value {
    serde_json::to_value(api.get(name).await.unwrap()).unwrap()
}

fn args(d: &Value) -> Value {
    d["spec"]["template"]["spec"]["containers"][0]["args"].clone()
}

/// Upstream `internal/builder/templates.go` (`kustomizationShardTmpl` and the sharding patch of
/// `kustomizationTmpl`) and `internal/builder/build.go` (`roles/rbac.yaml`, suffixed with the
/// namespace, from `config/data/flux/v2.7.5/rbac.yaml`): the image controllers get shard
/// Deployments; the ResourceQuota and cluster RBAC are installed and in the inventory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_controller_shards_and_the_distribution_rbac_are_installed() {
    let (_sb, client) = sandbox(fast_config());
    install_operator(&client).await;
    let fi = fluxinstances(&client, "flux-system");
    let mut obj = instance("2.7.x");
    obj["spec"]["components"] = json!([
        "source-controller",
        "kustomize-controller",
        "notification-controller",
        "image-reflector-controller",
        "image-automation-controller"
    ]);
    obj["spec"]["sharding"] = json!({"shards": ["s1"]});
    apply(&fi, obj).await;
    let got = wait_for(&fi, "flux", ready).await;

    let deps = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        "flux-system",
        &ar("apps", "v1", "Deployment", "deployments"),
    );
    let events = "--events-addr=http://notification-controller.flux-system.svc.cluster.local./";
    let base = [
        events,
        "--watch-all-namespaces=true",
        "--log-level=info",
        "--log-encoding=json",
        "--enable-leader-election",
    ];
    for c in ["image-reflector-controller", "image-automation-controller"] {
        let main = get(&deps, c).await;
        let mut want: Vec<&str> = base.to_vec();
        want.push("--watch-label-selector=!sharding.fluxcd.io/key");
        assert_eq!(args(&main), json!(want), "{c}");
        let shard = get(&deps, &format!("{c}-s1")).await;
        let mut want: Vec<&str> = base.to_vec();
        want.push("--watch-label-selector=sharding.fluxcd.io/key=s1");
        assert_eq!(args(&shard), json!(want), "{c}-s1");
        assert_eq!(
            shard["metadata"]["annotations"],
            json!({"sharding.fluxcd.io/role": "shard",
                   "kustomize.toolkit.fluxcd.io/ssa": "Ignore",
                   "kustomize.toolkit.fluxcd.io/prune": "Disabled"})
        );
        assert_eq!(
            shard["spec"]["selector"],
            json!({"matchLabels": {"app": format!("{c}-s1")}})
        );
        assert_eq!(shard["spec"]["template"]["spec"]["serviceAccountName"], c);
    }
    let svcs = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        "flux-system",
        &ar("", "v1", "Service", "services"),
    );
    let svc = get(&svcs, "source-controller-s1").await;
    assert_eq!(
        svc["spec"]["selector"],
        json!({"app": "source-controller-s1"})
    );

    let quotas = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        "flux-system",
        &ar("", "v1", "ResourceQuota", "resourcequotas"),
    );
    let quota = get(&quotas, "critical-pods-flux-system").await;
    assert_eq!(
        quota["spec"],
        json!({"hard": {"pods": "1000"},
               "scopeSelector": {"matchExpressions": [{"operator": "In",
                   "scopeName": "PriorityClass",
                   "values": ["system-node-critical", "system-cluster-critical"]}]}})
    );
    let roles = cluster_api(
        &client,
        "rbac.authorization.k8s.io",
        "ClusterRole",
        "clusterroles",
    );
    let role = get(&roles, "crd-controller-flux-system").await;
    let all = |g: &str| json!({"apiGroups": [g], "resources": ["*"], "verbs": ["*"]});
    assert_eq!(
        role["rules"],
        json!([
            all("source.toolkit.fluxcd.io"),
            all("kustomize.toolkit.fluxcd.io"),
            all("helm.toolkit.fluxcd.io"),
            all("notification.toolkit.fluxcd.io"),
            all("image.toolkit.fluxcd.io"),
            all("source.extensions.fluxcd.io"),
            {"apiGroups": [""], "resources": ["namespaces", "secrets", "configmaps", "serviceaccounts"],
             "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
            {"apiGroups": [""], "resources": ["configmaps"],
             "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
            {"apiGroups": [""], "resources": ["configmaps/status"], "verbs": ["get", "update", "patch"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
             "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
            {"nonResourceURLs": ["/livez/ping"], "verbs": ["head"]},
            all("fluxcd.controlplane.io"),
        ])
    );
    assert_eq!(
        role["metadata"]["labels"]["app.kubernetes.io/instance"],
        "flux-system"
    );
    let bindings = cluster_api(
        &client,
        "rbac.authorization.k8s.io",
        "ClusterRoleBinding",
        "clusterrolebindings",
    );
    let reconciler = get(&bindings, "cluster-reconciler-flux-system").await;
    assert_eq!(
        reconciler["roleRef"],
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"})
    );
    assert_eq!(
        reconciler["subjects"],
        json!([
            {"kind": "ServiceAccount", "name": "kustomize-controller", "namespace": "flux-system"},
            {"kind": "ServiceAccount", "name": "helm-controller", "namespace": "flux-system"},
        ])
    );
    let ids = inventory_ids(&got);
    for id in [
        "flux-system_critical-pods-flux-system__ResourceQuota",
        "_crd-controller-flux-system_rbac.authorization.k8s.io_ClusterRole",
        "_crd-controller-flux-system_rbac.authorization.k8s.io_ClusterRoleBinding",
        "flux-system_image-automation-controller-s1_apps_Deployment",
        "flux-system_image-reflector-controller-s1_apps_Deployment",
        "flux-system_source-controller-s1__Service",
    ] {
        assert!(ids.contains(&id.to_string()), "{id} not in {ids:?}");
    }
}

async fn request(fi: &Api<DynamicObject>, requested: &str, force: bool) -> Value {
    let mut annotations = json!({"reconcile.fluxcd.io/requestedAt": requested});
    if force {
        annotations["reconcile.fluxcd.io/forceAt"] = json!(requested);
    }
    merge(
        fi,
        "flux",
        json!({"metadata": {"annotations": annotations}}),
    )
    .await;
    let requested = requested.to_string();
    wait_for(fi, "flux", move |o| {
        ready(o) && o["status"]["lastHandledReconcileAt"] == requested.as_str()
    })
    .await
}

/// The apiVersion the managed-field entry of the test's own writes is recorded under.
fn test_manager_version(o: &Value) -> Value {
    o["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["manager"] == TEST_MANAGER)
        .map(|e| e["apiVersion"].clone())
        .unwrap()
}

/// Upstream `internal/controller/fluxinstance_controller.go` (`apply`: the force request, then
/// `migrateResources`) and `internal/controller/fluxinstance_migrator.go`: a CRD whose
/// `storedVersions` lists an older version has its objects rewritten through the storage
/// version and `storedVersions` reset; a CRD already at its storage version is left alone
/// unless `reconcile.fluxcd.io/forceAt` equals `requestedAt`, which is then recorded in
/// `status.lastHandledForceAt`; `migrateResources: false` turns the migration off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_resources_follows_stored_versions_and_force_requests() {
    let (_sb, client) = sandbox(fast_config());
    install_operator(&client).await;
    let fi = fluxinstances(&client, "flux-system");
    apply(&fi, instance("2.7.x")).await;
    wait_for(&fi, "flux", ready).await;

    let crds = cluster_api(
        &client,
        "apiextensions.k8s.io",
        "CustomResourceDefinition",
        "customresourcedefinitions",
    );
    let crd = "ocirepositories.source.toolkit.fluxcd.io";
    let old_repos = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        "flux-system",
        &ar(
            "source.toolkit.fluxcd.io",
            "v1beta2",
            "OCIRepository",
            "ocirepositories",
        ),
    );
    let legacy = |name: &str| {
        json!({"apiVersion": "source.toolkit.fluxcd.io/v1beta2", "kind": "OCIRepository",
               "metadata": {"name": name, "namespace": "flux-system"},
               "spec": {"interval": "10m", "url": "oci://ghcr.io/example/app", "ref": {"tag": "1.0.0"}}})
    };
    let set_stored = |versions: Value| {
        let crds = crds.clone();
        async move {
            let pp = PatchParams {
                field_manager: Some(TEST_MANAGER.into()),
                ..Default::default()
            };
            crds.patch_status(
                crd,
                &pp,
                &Patch::Merge(json!({"status": {"storedVersions": versions}})),
            )
            .await
            .unwrap();
        }
    };

    // An object written as v1beta2, and the CRD recording v1beta2 as stored: migrated.
    apply(&old_repos, legacy("first")).await;
    set_stored(json!(["v1beta2", "v1"])).await;
    request(&fi, "t1", false).await;
    assert_eq!(
        get(&crds, crd).await["status"]["storedVersions"],
        json!(["v1"])
    );
    assert_eq!(
        test_manager_version(&get(&old_repos, "first").await),
        "source.toolkit.fluxcd.io/v1"
    );

    // Stored versions already migrated: a plain request leaves a new v1beta2 object alone.
    apply(&old_repos, legacy("second")).await;
    let got = request(&fi, "t2", false).await;
    assert!(got["status"].get("lastHandledForceAt").is_none(), "{got}");
    assert_eq!(
        test_manager_version(&get(&old_repos, "second").await),
        "source.toolkit.fluxcd.io/v1beta2"
    );

    // A force request (forceAt == requestedAt) migrates every object and is recorded.
    let got = request(&fi, "t3", true).await;
    assert_eq!(got["status"]["lastHandledForceAt"], "t3");
    assert_eq!(
        test_manager_version(&get(&old_repos, "second").await),
        "source.toolkit.fluxcd.io/v1"
    );

    // migrateResources: false leaves storedVersions as the API server recorded them.
    merge(&fi, "flux", json!({"spec": {"migrateResources": false}})).await;
    wait_for(&fi, "flux", ready).await;
    set_stored(json!(["v1beta2", "v1"])).await;
    let got = request(&fi, "t4", true).await;
    assert_eq!(
        get(&crds, crd).await["status"]["storedVersions"],
        json!(["v1beta2", "v1"])
    );
    // The force request is still recorded (upstream reads it before checking migrateResources).
    assert_eq!(got["status"]["lastHandledForceAt"], "t4");
}

/// Upstream `internal/controller/fluxinstance_artifact_controller.go`: with
/// `distribution.artifact`, the main reconciler records the pulled digest in
/// `status.lastArtifactRevision`; the artifact reconciler checks the digest every
/// `fluxcd.controlplane.io/reconcileArtifactEvery` and, only when it changed, writes
/// `reconcile.fluxcd.io/requestedAt` (as the operator), which makes the instance reconcile and
/// record the new digest. The digest source is the simulator's `Artifacts` registry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifact_digest_change_requests_a_reconciliation() {
    let config = fast_config();
    let artifacts = config.artifacts.clone();
    let (_sb, client) = sandbox(config);
    install_operator(&client).await;
    let fi = fluxinstances(&client, "flux-system");
    let url = "oci://ghcr.io/controlplaneio-fluxcd/flux-operator-manifests:latest";
    let mut obj = instance("2.7.x");
    obj["spec"]["distribution"]["artifact"] = json!(url);
    obj["metadata"]["annotations"] =
        json!({"fluxcd.controlplane.io/reconcileArtifactEvery": "200ms"});
    apply(&fi, obj).await;
    let first = wait_for(&fi, "flux", ready).await;
    assert_eq!(first["status"]["lastArtifactRevision"], default_digest(url));

    // Several check intervals without a new digest: no reconciliation is requested.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let unchanged = serde_json::to_value(fi.get("flux").await.unwrap()).unwrap();
    assert!(
        unchanged["metadata"]["annotations"]
            .get("reconcile.fluxcd.io/requestedAt")
            .is_none(),
        "{unchanged}"
    );
    assert!(unchanged["status"].get("lastHandledReconcileAt").is_none());

    let digest = format!("sha256:{}", sha256_hex("manifests v2"));
    artifacts.publish(url, &digest);
    let want = digest.clone();
    let got = wait_for(&fi, "flux", move |o| {
        ready(o) && o["status"]["lastArtifactRevision"] == want.as_str()
    })
    .await;
    let requested = got["metadata"]["annotations"]["reconcile.fluxcd.io/requestedAt"]
        .as_str()
        .unwrap();
    assert!(requested.parse::<jiff::Timestamp>().is_ok(), "{requested}");
    assert_eq!(got["status"]["lastHandledReconcileAt"], requested);
    // The request was written by the operator (its field manager), not by the test.
    let owner = got["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["fieldsV1"]["f:metadata"]["f:annotations"]
                .get("f:reconcile.fluxcd.io/requestedAt")
                .is_some()
        })
        .map(|e| e["manager"].clone());
    assert_eq!(owner, Some(json!("flux-operator")));
}
