//! Operator-simulator tests for ResourceSet: rendering with inputs, apply with owner labels,
//! inventory, pruning, dependsOn, wait, delete (prune versus orphan), the initial status with
//! reconcile disabled, build, apply and health-check failures, and the service account
//! (`serviceAccountName`, `DEFAULT_SERVICE_ACCOUNT`) on delete. In-process sandbox.

// Test helpers panic on failure, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sim_support;

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};
use sim_support::*;

async fn setup() -> (kube_sandbox::Sandbox, kube::Client) {
    setup_with(fast_config()).await
}

async fn setup_with(config: kube_sandbox::sim::SimConfig) -> (kube_sandbox::Sandbox, kube::Client) {
    let (sb, client) = sandbox(config);
    install_operator(&client).await;
    let nss: Api<DynamicObject> =
        Api::all_with(client.clone(), &ar("", "v1", "Namespace", "namespaces"));
    apply(
        &nss,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}}),
    )
    .await;
    (sb, client)
}

fn rset(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "fluxcd.controlplane.io/v1", "kind": "ResourceSet",
           "metadata": {"name": name, "namespace": "apps"}, "spec": spec})
}

fn cm_spec(inputs: Value) -> Value {
    json!({
        "inputs": inputs,
        "resources": [{"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": "cm-<< inputs.name >>"},
                       "data": {"name": "<< inputs.name | quote >>"}}],
        "resourcesTemplate": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: tpl-<< inputs.name >>\n  namespace: apps\ndata:\n  provider: << inputs.provider.kind >>/<< inputs.provider.name >>\n",
    })
}

async fn configmap(client: &kube::Client, name: &str) -> Option<ConfigMap> {
    Api::<ConfigMap>::namespaced(client.clone(), "apps")
        .get_opt(name)
        .await
        .unwrap()
}

#[tokio::test]
async fn renders_applies_and_prunes_with_inputs() {
    let (_sb, client) = setup().await;
    let rs = resourcesets(&client, "apps");
    apply(
        &rs,
        rset("apps", cm_spec(json!([{"name": "a"}, {"name": "b"}]))),
    )
    .await;
    let got = wait_for(&rs, "apps", ready).await;
    assert_eq!(
        got["metadata"]["finalizers"],
        json!(["fluxcd.controlplane.io/finalizer"])
    );
    assert_eq!(
        cond(&got, "Ready").unwrap()["reason"],
        "ReconciliationSucceeded"
    );
    assert_eq!(
        inventory_ids(&got),
        [
            "apps_cm-a__ConfigMap",
            "apps_cm-b__ConfigMap",
            "apps_tpl-a__ConfigMap",
            "apps_tpl-b__ConfigMap"
        ]
    );
    let rev = got["status"]["lastAppliedRevision"].as_str().unwrap();
    assert!(rev.starts_with("sha256:") && rev.len() == 71, "{rev}");

    let a = configmap(&client, "cm-a").await.unwrap();
    let data = a.data.unwrap();
    assert_eq!(
        data,
        std::collections::BTreeMap::from([("name".to_string(), "a".to_string())])
    );
    let labels = a.metadata.labels.unwrap();
    assert_eq!(labels["resourceset.fluxcd.controlplane.io/name"], "apps");
    assert_eq!(
        labels["resourceset.fluxcd.controlplane.io/namespace"],
        "apps"
    );
    let managers: Vec<String> = a
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert_eq!(managers, ["flux-operator"]);
    let tpl = configmap(&client, "tpl-b").await.unwrap();
    assert_eq!(tpl.data.unwrap()["provider"], "ResourceSet/apps");

    // Dropping an input prunes what it generated.
    let updated = apply(&rs, rset("apps", cm_spec(json!([{"name": "a"}])))).await;
    assert_eq!(updated["metadata"]["generation"], 2);
    let got = wait_for(&rs, "apps", ready).await;
    assert_eq!(
        inventory_ids(&got),
        ["apps_cm-a__ConfigMap", "apps_tpl-a__ConfigMap"]
    );
    assert!(configmap(&client, "cm-b").await.is_none());
    assert!(configmap(&client, "tpl-b").await.is_none());
    assert!(configmap(&client, "cm-a").await.is_some());
    assert_ne!(got["status"]["lastAppliedRevision"].as_str().unwrap(), rev);
}

/// Upstream `checkDependencies` (`internal/controller/resourceset_controller.go`): the
/// dependency's namespace is used as given — without one, a namespaced ResourceSet is never
/// found, even when it exists next to the dependent; ResourceSets must be Ready for their
/// current generation; the message is "Retrying dependency check: ...".
#[tokio::test]
async fn waits_for_dependencies() {
    let (_sb, client) = setup().await;
    let rs = resourcesets(&client, "apps");
    apply(&rs, rset("first", cm_spec(json!([{"name": "f"}])))).await;
    wait_for(&rs, "first", ready).await;
    let mut second = rset("second", cm_spec(json!([{"name": "s"}])));
    second["spec"]["dependsOn"] = json!([{"apiVersion": "fluxcd.controlplane.io/v1", "kind": "ResourceSet",
                                          "name": "first", "ready": true}]);
    apply(&rs, second.clone()).await;
    let got = wait_for(&rs, "second", |o| {
        cond(o, "Ready").is_some_and(|c| c["reason"] == "DependencyNotReady")
    })
    .await;
    assert_eq!(
        cond(&got, "Ready").unwrap()["message"],
        "Retrying dependency check: dependency fluxcd.controlplane.io/v1/ResourceSet/first not found: resourcesets \"first\" not found"
    );
    assert_eq!(cond(&got, "Ready").unwrap()["status"], "False");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let still = serde_json::to_value(rs.get("second").await.unwrap()).unwrap();
    assert_eq!(
        cond(&still, "Ready").unwrap()["reason"],
        "DependencyNotReady"
    );
    assert!(configmap(&client, "cm-s").await.is_none());
    rs.delete("first", &DeleteParams::default()).await.unwrap();
    wait_gone(&rs, "first").await;

    second["spec"]["dependsOn"][0]["namespace"] = json!("apps");
    apply(&rs, second).await;
    let got = wait_for(&rs, "second", |o| {
        cond(o, "Ready").is_some_and(|c| {
            c["reason"] == "DependencyNotReady"
                && c["observedGeneration"] == o["metadata"]["generation"]
        })
    })
    .await;
    assert_eq!(
        cond(&got, "Ready").unwrap()["message"],
        "Retrying dependency check: dependency fluxcd.controlplane.io/v1/ResourceSet/apps/first not found: resourcesets \"first\" not found"
    );

    // A re-check of `second` between the creation of `first` and its first reconcile would find
    // `first` without conditions, which counts as ready (the operator's health check does the
    // same) and would apply `cm-s`: `second` is paused while `first` is created and stalls.
    let paused = |value: Value| json!({"metadata": {"annotations": {"fluxcd.controlplane.io/reconcile": value}}});
    let patch = |value: Value| {
        let rs = rs.clone();
        async move {
            rs.patch(
                "second",
                &PatchParams::default(),
                &Patch::Merge(&paused(value)),
            )
            .await
            .unwrap();
        }
    };
    patch(json!("disabled")).await;
    // Lets a reconcile that read `second` before the pause finish.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut first = rset("first", cm_spec(json!([{"name": "f"}])));
    first["metadata"]["annotations"] = json!({"sandbox.fluxrs.dev/fail": "BuildFailed:not yet"});
    apply(&rs, first).await;
    wait_for(&rs, "first", stalled).await;
    patch(Value::Null).await;
    let got = wait_for(&rs, "second", |o| {
        cond(o, "Ready").is_some_and(|c| {
            c["message"]
                == "Retrying dependency check: dependency fluxcd.controlplane.io/v1/ResourceSet/apps/first not ready"
        })
    })
    .await;
    assert_eq!(cond(&got, "Ready").unwrap()["reason"], "DependencyNotReady");
    assert!(configmap(&client, "cm-s").await.is_none());

    apply(&rs, rset("first", cm_spec(json!([{"name": "f"}])))).await;
    wait_for(&rs, "first", ready).await;
    wait_for(&rs, "second", ready).await;
    assert!(configmap(&client, "cm-s").await.is_some());
}

#[tokio::test]
async fn wait_true_reports_ready_only_after_deployments_are_available() {
    let (_sb, client) = setup().await;
    let rs = resourcesets(&client, "apps");
    let spec = json!({
        "wait": true,
        "resources": [{"apiVersion": "apps/v1", "kind": "Deployment",
                       "metadata": {"name": "web", "namespace": "apps"},
                       "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                                "template": {"metadata": {"labels": {"app": "web"}},
                                             "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}}],
    });
    apply(&rs, rset("web", spec)).await;
    wait_for(&rs, "web", ready).await;
    let d = deployments(&client, "apps").get("web").await.unwrap();
    let available = d
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .any(|c| c.type_ == "Available" && c.status == "True");
    assert!(available);
}

/// Upstream `uninstall` (`resourceset_controller.go`): the ResourceSet's own
/// `fluxcd.controlplane.io/prune: disabled` is ignored on delete (only annotated objects are
/// kept); `reconcile: disabled` orphans.
#[tokio::test]
async fn delete_prunes_unless_disabled() {
    let (_sb, client) = setup().await;
    let rs = resourcesets(&client, "apps");
    apply(&rs, rset("pruned", cm_spec(json!([{"name": "p"}])))).await;
    let mut kept = rset("kept", cm_spec(json!([{"name": "k"}])));
    kept["metadata"]["annotations"] = json!({"fluxcd.controlplane.io/prune": "disabled"});
    apply(&rs, kept).await;
    let mut orphan = rset("orphan", cm_spec(json!([{"name": "o"}])));
    orphan["metadata"]["annotations"] = json!({"fluxcd.controlplane.io/reconcile": "disabled"});
    apply(&rs, orphan).await;
    wait_for(&rs, "pruned", ready).await;
    wait_for(&rs, "kept", ready).await;
    // Reconcile disabled from the start: nothing applied, no finalizer needed... but the
    // finalizer is added before the annotation is read, as the operator does.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(configmap(&client, "cm-o").await.is_none());

    for n in ["pruned", "kept", "orphan"] {
        rs.delete(n, &DeleteParams::default()).await.unwrap();
    }
    for n in ["pruned", "kept", "orphan"] {
        wait_gone(&rs, n).await;
    }
    assert!(configmap(&client, "cm-p").await.is_none());
    assert!(configmap(&client, "tpl-p").await.is_none());
    // The annotation on the ResourceSet itself does not protect what it generated.
    assert!(configmap(&client, "cm-k").await.is_none());
    assert!(configmap(&client, "tpl-k").await.is_none());
}

#[tokio::test]
async fn template_errors_stall_with_build_failed() {
    let (_sb, client) = setup().await;
    let rs = resourcesets(&client, "apps");
    let spec = json!({"inputs": [{"name": "a"}],
                      "resources": [{"apiVersion": "v1", "kind": "ConfigMap",
                                     "metadata": {"name": "<< inputs.missing >>"}}]});
    apply(&rs, rset("broken", spec)).await;
    let got = wait_for(&rs, "broken", stalled).await;
    let r = cond(&got, "Ready").unwrap();
    assert_eq!(
        (
            r["status"].as_str(),
            r["reason"].as_str(),
            r["message"].as_str()
        ),
        (
            Some("False"),
            Some("BuildFailed"),
            Some("build failed: template: map has no entry for key \"missing\"")
        )
    );
}

#[tokio::test]
async fn static_input_providers_and_permute() {
    let (_sb, client) = setup().await;
    let rsip = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        "apps",
        &ar(
            "fluxcd.controlplane.io",
            "v1",
            "ResourceSetInputProvider",
            "resourcesetinputproviders",
        ),
    );
    apply(
        &rsip,
        json!({"apiVersion": "fluxcd.controlplane.io/v1", "kind": "ResourceSetInputProvider",
                        "metadata": {"name": "env", "namespace": "apps"},
                        "spec": {"type": "Static", "defaultValues": {"env": "dev"}}}),
    )
    .await;
    apply(
        &rsip,
        json!({"apiVersion": "fluxcd.controlplane.io/v1", "kind": "ResourceSetInputProvider",
                        "metadata": {"name": "region", "namespace": "apps"},
                        "spec": {"type": "Static", "defaultValues": {"region": "eu"}}}),
    )
    .await;
    let rs = resourcesets(&client, "apps");
    let spec = json!({
        "inputsFrom": [{"kind": "ResourceSetInputProvider", "name": "env"},
                       {"kind": "ResourceSetInputProvider", "name": "region"}],
        "inputStrategy": {"name": "Permute"},
        "resources": [{"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": "<< inputs.env.env >>-<< inputs.region.region >>"}}],
    });
    apply(&rs, rset("perm", spec)).await;
    let got = wait_for(&rs, "perm", ready).await;
    assert_eq!(inventory_ids(&got), ["apps_dev-eu__ConfigMap"]);
}

#[tokio::test]
async fn ready_expr_replaces_the_ready_check() {
    let (_sb, client) = setup().await;
    let rs = resourcesets(&client, "apps");
    let crd_dep = |expr: &str| {
        json!([{"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                "name": "fluxinstances.fluxcd.controlplane.io", "ready": true, "readyExpr": expr}])
    };
    let mut ok_rs = rset("expr-ok", cm_spec(json!([{"name": "x"}])));
    ok_rs["spec"]["dependsOn"] = crd_dep(
        "status.conditions.filter(e, e.type == 'Established').all(e, e.status == 'True') && status.storedVersions.exists(e, e == 'v1')",
    );
    apply(&rs, ok_rs).await;
    wait_for(&rs, "expr-ok", ready).await;

    let mut never = rset("expr-never", cm_spec(json!([{"name": "y"}])));
    never["spec"]["dependsOn"] = crd_dep("status.storedVersions.exists(e, e == 'v2')");
    apply(&rs, never).await;
    let got = wait_for(&rs, "expr-never", |o| {
        cond(o, "Ready").is_some_and(|c| c["reason"] == "DependencyNotReady")
    })
    .await;
    assert_eq!(
        cond(&got, "Ready").unwrap()["message"],
        "Retrying dependency check: dependency apiextensions.k8s.io/v1/CustomResourceDefinition/fluxinstances.fluxcd.controlplane.io not ready: expression 'status.storedVersions.exists(e, e == 'v2')'"
    );

    let mut invalid = rset("expr-invalid", cm_spec(json!([{"name": "z"}])));
    invalid["spec"]["dependsOn"] = crd_dep("status.conditions.filter(");
    apply(&rs, invalid).await;
    let got = wait_for(&rs, "expr-invalid", stalled).await;
    assert_eq!(
        cond(&got, "Ready").unwrap()["reason"],
        "InvalidCELExpression"
    );
}

/// Upstream `ResourceSet.GetInputs`: inline inputs carry no `id`; `<< inputs.id >>` with
/// inline inputs fails the build (`missingkey=error`): Stalled, BuildFailed.
#[tokio::test]
async fn inputs_id_with_inline_inputs_stalls() {
    let (_sb, client) = setup().await;
    let rs = resourcesets(&client, "apps");
    let spec = json!({"inputs": [{"name": "a"}],
                      "resources": [{"apiVersion": "v1", "kind": "ConfigMap",
                                     "metadata": {"name": "cm-<< inputs.id >>"}}]});
    apply(&rs, rset("ids", spec)).await;
    let got = wait_for(&rs, "ids", stalled).await;
    assert_eq!(
        cond(&got, "Ready").unwrap()["message"],
        "build failed: template: map has no entry for key \"id\""
    );
}

/// Upstream `getInputs`/`reconcile`: `inputsFrom` naming a provider that does not exist stalls
/// ("failed to compute inputs: ..."); a provider that has not exported yet gives an empty
/// input set: Ready, and everything generated before is garbage-collected.
#[tokio::test]
async fn inputs_from_missing_provider_stalls_and_empty_exports_collect() {
    let (_sb, client) = setup().await;
    let rsip = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        "apps",
        &ar(
            "fluxcd.controlplane.io",
            "v1",
            "ResourceSetInputProvider",
            "resourcesetinputproviders",
        ),
    );
    let rs = resourcesets(&client, "apps");
    let spec = json!({
        "inputsFrom": [{"kind": "ResourceSetInputProvider", "name": "envs"}],
        "resources": [{"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": "cm-<< inputs.env >>"}}],
    });
    apply(&rs, rset("from", spec)).await;
    let got = wait_for(&rs, "from", stalled).await;
    assert_eq!(
        cond(&got, "Ready").unwrap()["message"],
        "failed to compute inputs: failed to get provider apps/envs: resourcesetinputproviders.fluxcd.controlplane.io \"envs\" not found"
    );
    assert_eq!(cond(&got, "Ready").unwrap()["reason"], "BuildFailed");

    // The provider appears: inputs flow.
    apply(
        &rsip,
        json!({"apiVersion": "fluxcd.controlplane.io/v1", "kind": "ResourceSetInputProvider",
               "metadata": {"name": "envs", "namespace": "apps"},
               "spec": {"type": "Static", "defaultValues": {"env": "dev"}}}),
    )
    .await;
    let got = wait_for(&rs, "from", |o| ready(o) && !inventory_ids(o).is_empty()).await;
    assert_eq!(inventory_ids(&got), ["apps_cm-dev__ConfigMap"]);

    // The provider's exported inputs are gone (not exported yet, e.g. after re-creation):
    // an empty set, Ready, and the generated ConfigMap is collected.
    let prov_status: Api<DynamicObject> = rsip.clone();
    prov_status
        .patch_status(
            "envs",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(
                json!({"status": {"exportedInputs": null, "lastExportedRevision": "none"}}),
            ),
        )
        .await
        .unwrap();
    let got = wait_for(&rs, "from", |o| ready(o) && inventory_ids(o).is_empty()).await;
    assert!(ready(&got));
    assert!(configmap(&client, "cm-dev").await.is_none());
}

/// Upstream `uninstall` with `serviceAccountName`: the operator first checks that it can
/// impersonate the account (the ServiceAccount exists); when it cannot, pruning is skipped and
/// the finalizer released — the generated objects are left behind.
#[tokio::test]
async fn delete_without_its_service_account_orphans_the_objects() {
    let (_sb, client) = setup().await;
    let sas: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "apps",
        &ar("", "v1", "ServiceAccount", "serviceaccounts"),
    );
    apply(
        &sas,
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "deployer", "namespace": "apps"}}),
    )
    .await;
    let rs = resourcesets(&client, "apps");
    let mut with_sa = cm_spec(json!([{"name": "sa"}]));
    with_sa["serviceAccountName"] = json!("deployer");
    apply(&rs, rset("as-sa", with_sa.clone())).await;
    wait_for(&rs, "as-sa", ready).await;
    let mut gone_sa = cm_spec(json!([{"name": "gone"}]));
    gone_sa["serviceAccountName"] = json!("deployer");
    apply(&rs, rset("sa-gone", gone_sa)).await;
    wait_for(&rs, "sa-gone", ready).await;

    // With its account present, delete prunes.
    rs.delete("as-sa", &DeleteParams::default()).await.unwrap();
    wait_gone(&rs, "as-sa").await;
    assert!(configmap(&client, "cm-sa").await.is_none());

    // The account deleted first: the ResourceSet goes, its objects stay.
    sas.delete("deployer", &DeleteParams::default())
        .await
        .unwrap();
    rs.delete("sa-gone", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&rs, "sa-gone").await;
    assert!(configmap(&client, "cm-gone").await.is_some());
    assert!(configmap(&client, "tpl-gone").await.is_some());
}

/// Upstream `checkDependencies` readiness: a ResourceSet without any `Ready` condition passes
/// the operator's `HealthCheckExpr`; any other kind is kstatus (a ConfigMap is ready once it
/// exists); `readyExpr` is ignored without `ready: true`.
#[tokio::test]
async fn dependency_readiness_follows_the_operator_rules() {
    let (_sb, client) = setup().await;
    let rs = resourcesets(&client, "apps");
    let cms: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "apps",
        &ar("", "v1", "ConfigMap", "configmaps"),
    );
    let mut dependent = rset("dependent", cm_spec(json!([{"name": "d"}])));
    dependent["spec"]["dependsOn"] = json!([
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "settings", "namespace": "apps", "ready": true},
        // Not read without `ready: true`, even though it could never hold.
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "settings", "namespace": "apps",
         "readyExpr": "false"},
    ]);
    apply(&rs, dependent).await;
    let got = wait_for(&rs, "dependent", |o| {
        cond(o, "Ready").is_some_and(|c| c["reason"] == "DependencyNotReady")
    })
    .await;
    assert_eq!(
        cond(&got, "Ready").unwrap()["message"],
        "Retrying dependency check: dependency v1/ConfigMap/apps/settings not found: configmaps \"settings\" not found"
    );
    apply(
        &cms,
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "apps"}}),
    )
    .await;
    wait_for(&rs, "dependent", ready).await;
}

fn rsip(client: &kube::Client) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        "apps",
        &ar(
            "fluxcd.controlplane.io",
            "v1",
            "ResourceSetInputProvider",
            "resourcesetinputproviders",
        ),
    )
}

/// Upstream `internal/controller/common.go` (initial status, shared by the FluxInstance and
/// ResourceSet reconcilers): a ResourceSet created with `fluxcd.controlplane.io/reconcile:
/// disabled` gets `Ready=True`, reason `ReconciliationDisabled`, "Initialized with
/// reconciliation suspended" at once, and nothing is applied; re-enabled, it reconciles and the
/// reason becomes `ReconciliationSucceeded`.
#[tokio::test]
async fn created_with_reconcile_disabled_is_ready_with_reconciliation_disabled() {
    let (_sb, client) = setup().await;
    let rs = resourcesets(&client, "apps");
    let mut paused = rset("paused", cm_spec(json!([{"name": "paused"}])));
    paused["metadata"]["annotations"] = json!({"fluxcd.controlplane.io/reconcile": "disabled"});
    apply(&rs, paused).await;
    let got = wait_for(&rs, "paused", |o| cond(o, "Ready").is_some()).await;
    let r = cond(&got, "Ready").unwrap();
    assert_eq!(
        (
            r["status"].as_str(),
            r["reason"].as_str(),
            r["message"].as_str(),
            r["observedGeneration"].as_i64()
        ),
        (
            Some("True"),
            Some("ReconciliationDisabled"),
            Some("Initialized with reconciliation suspended"),
            Some(1)
        )
    );
    assert!(cond(&got, "Reconciling").is_none(), "{got}");
    assert_eq!(
        got["metadata"]["finalizers"],
        json!(["fluxcd.controlplane.io/finalizer"])
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let still = serde_json::to_value(rs.get("paused").await.unwrap()).unwrap();
    assert_eq!(
        cond(&still, "Ready").unwrap()["reason"],
        "ReconciliationDisabled"
    );
    assert!(still["status"]["inventory"].is_null(), "{still}");
    assert!(configmap(&client, "cm-paused").await.is_none());

    // Re-enabled: the same generation, now reconciled.
    merge(
        &rs,
        "paused",
        json!({"metadata": {"annotations": {"fluxcd.controlplane.io/reconcile": null}}}),
    )
    .await;
    let got = wait_for(&rs, "paused", |o| {
        cond(o, "Ready").is_some_and(|c| c["reason"] == "ReconciliationSucceeded")
    })
    .await;
    assert!(ready(&got));
    assert!(configmap(&client, "cm-paused").await.is_some());
}

/// Upstream `resourceset_controller.go` (apply): an apply error is reported — `Ready=False`,
/// `ReconciliationFailed`, "reconciliation failed: <error>", `Reconciling` with
/// `ProgressingWithRetry`, not `Stalled` — and retried until it converges.
#[tokio::test]
async fn apply_error_is_reported_as_reconciliation_failed_and_retried() {
    let (sb, client) = setup().await;
    sb.faults().add(
        kube_sandbox::faults::FaultRule::new(kube_sandbox::faults::FaultAction::Error {
            code: 500,
            retry_after: None,
            message: Some("injected apply failure".into()),
        })
        .verb("patch")
        .resource("configmaps")
        .name("cm-flaky")
        .times(3),
    );
    let rs = resourcesets(&client, "apps");
    apply(&rs, rset("flaky", cm_spec(json!([{"name": "flaky"}])))).await;
    let got = wait_for(&rs, "flaky", |o| {
        cond(o, "Ready").is_some_and(|c| c["reason"] == "ReconciliationFailed")
    })
    .await;
    let r = cond(&got, "Ready").unwrap();
    assert_eq!(r["status"], "False");
    let message = r["message"].as_str().unwrap();
    assert!(
        message.starts_with("reconciliation failed: apply apps_cm-flaky__ConfigMap: ")
            && message.contains("injected apply failure"),
        "{message}"
    );
    assert_eq!(
        cond(&got, "Reconciling").unwrap()["reason"],
        "ProgressingWithRetry"
    );
    assert!(cond(&got, "Stalled").is_none(), "{got}");
    // Retried: once the API server accepts the apply, the ResourceSet converges.
    let got = wait_for(&rs, "flaky", ready).await;
    assert_eq!(
        inventory_ids(&got),
        ["apps_cm-flaky__ConfigMap", "apps_tpl-flaky__ConfigMap"]
    );
    assert!(configmap(&client, "cm-flaky").await.is_some());
}

/// Upstream `resourceset_controller.go` (apply): a kind the API server does not serve fails the
/// apply ("no matches for kind"); the error is reported as `ReconciliationFailed` and retried,
/// not left in the controller's error log.
#[tokio::test]
async fn unserved_kind_is_reported_as_reconciliation_failed() {
    let (_sb, client) = setup_with(kube_sandbox::sim::SimConfig {
        // The bounded wait for a CRD applied just before.
        uninstall_timeout: Duration::from_millis(300),
        ..fast_config()
    })
    .await;
    let rs = resourcesets(&client, "apps");
    let spec = json!({"resources": [{"apiVersion": "widgets.example.com/v1", "kind": "Widget",
                                     "metadata": {"name": "w", "namespace": "apps"}}]});
    apply(&rs, rset("widgets", spec)).await;
    let got = wait_for(&rs, "widgets", |o| {
        cond(o, "Ready").is_some_and(|c| c["reason"] == "ReconciliationFailed")
    })
    .await;
    let message = cond(&got, "Ready").unwrap()["message"].as_str().unwrap();
    assert!(
        message.starts_with("reconciliation failed: discover widgets.example.com/v1 Widget: "),
        "{message}"
    );
    assert_eq!(cond(&got, "Ready").unwrap()["status"], "False");
    assert_eq!(
        cond(&got, "Reconciling").unwrap()["reason"],
        "ProgressingWithRetry"
    );
    assert!(!stalled(&got));
}

/// Upstream `resourceset_controller.go` (`wait: true`, health check): an applied object that
/// does not become current within `fluxcd.controlplane.io/reconcileTimeout` is reported as
/// `Ready=False`, `ReconciliationFailed`, "reconciliation failed: timeout waiting for: [...]",
/// and retried: once the object is current, the ResourceSet becomes Ready.
#[tokio::test]
async fn health_check_failure_is_reported_as_reconciliation_failed() {
    let (sb, client) = setup().await;
    // The Deployment `outer` generates never becomes Available while stuck.
    sb.faults().set_deployment_stuck("apps", "web", true);
    let rs = resourcesets(&client, "apps");
    let spec = json!({
        "wait": true,
        "resources": [{"apiVersion": "apps/v1", "kind": "Deployment",
                       "metadata": {"name": "web", "namespace": "apps"},
                       "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                                "template": {"metadata": {"labels": {"app": "web"}},
                                             "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}}],
    });
    let mut outer = rset("outer", spec);
    outer["metadata"]["annotations"] = json!({"fluxcd.controlplane.io/reconcileTimeout": "1s"});
    apply(&rs, outer).await;
    let got = wait_for(&rs, "outer", |o| {
        cond(o, "Ready").is_some_and(|c| c["reason"] == "ReconciliationFailed")
    })
    .await;
    let r = cond(&got, "Ready").unwrap();
    assert_eq!(r["status"], "False");
    assert_eq!(
        r["message"],
        "reconciliation failed: timeout waiting for: [Deployment/apps/web status: 'InProgress']"
    );
    assert_eq!(
        cond(&got, "Reconciling").unwrap()["reason"],
        "ProgressingWithRetry"
    );
    assert!(cond(&got, "Stalled").is_none(), "{got}");
    // What was applied is in the inventory even though the health check failed.
    assert_eq!(inventory_ids(&got), ["apps_web_apps_Deployment"]);

    // Retried: once the Deployment is Available, the ResourceSet is Ready.
    sb.faults().set_deployment_stuck("apps", "web", false);
    let got = wait_for(&rs, "outer", ready).await;
    assert_eq!(
        cond(&got, "Ready").unwrap()["reason"],
        "ReconciliationSucceeded"
    );
}

/// Upstream `checkDependencies` (`resourceset_controller.go`): a ResourceSetInputProvider
/// dependency with `ready: true` must be `Ready=True` for its current generation — a provider
/// that fails to fetch (`Ready=False`) holds the dependent back, a Static one that exported
/// lets it through.
#[tokio::test]
async fn depends_on_an_input_provider_waits_for_it_to_be_ready() {
    let (_sb, client) = setup().await;
    let providers = rsip(&client);
    apply(
        &providers,
        json!({"apiVersion": "fluxcd.controlplane.io/v1", "kind": "ResourceSetInputProvider",
               "metadata": {"name": "branches", "namespace": "apps"},
               "spec": {"type": "GitHubBranch", "url": "https://github.com/org/repo"}}),
    )
    .await;
    apply(
        &providers,
        json!({"apiVersion": "fluxcd.controlplane.io/v1", "kind": "ResourceSetInputProvider",
               "metadata": {"name": "static", "namespace": "apps"},
               "spec": {"type": "Static", "defaultValues": {"env": "dev"}}}),
    )
    .await;
    let on = |provider: &str| {
        json!([{"apiVersion": "fluxcd.controlplane.io/v1", "kind": "ResourceSetInputProvider",
                "name": provider, "namespace": "apps", "ready": true}])
    };
    let rs = resourcesets(&client, "apps");
    let mut blocked = rset("on-branches", cm_spec(json!([{"name": "blocked"}])));
    blocked["spec"]["dependsOn"] = on("branches");
    apply(&rs, blocked).await;
    let mut passes = rset("on-static", cm_spec(json!([{"name": "passes"}])));
    passes["spec"]["dependsOn"] = on("static");
    apply(&rs, passes).await;

    wait_for(&providers, "branches", |o| {
        cond(o, "Ready").is_some_and(|c| c["reason"] == "ReconciliationFailed")
    })
    .await;
    let got = wait_for(&rs, "on-branches", |o| {
        cond(o, "Ready").is_some_and(|c| c["reason"] == "DependencyNotReady")
    })
    .await;
    assert_eq!(
        cond(&got, "Ready").unwrap()["message"],
        "Retrying dependency check: dependency fluxcd.controlplane.io/v1/ResourceSetInputProvider/apps/branches not ready"
    );
    wait_for(&rs, "on-static", ready).await;
    assert!(configmap(&client, "cm-passes").await.is_some());
    tokio::time::sleep(Duration::from_millis(400)).await;
    let still = serde_json::to_value(rs.get("on-branches").await.unwrap()).unwrap();
    assert_eq!(
        cond(&still, "Ready").unwrap()["reason"],
        "DependencyNotReady"
    );
    assert!(configmap(&client, "cm-blocked").await.is_none());
}

/// Upstream `checkDependencies` (`resourceset_controller.go`): a ResourceSet dependency whose
/// `Ready=True` was written for an older generation (here: its spec changed while reconcile is
/// disabled, so `observedGeneration` stays behind) is not ready; once it reconciles the new
/// generation, the dependent proceeds.
#[tokio::test]
async fn depends_on_a_dependency_ready_for_an_older_generation_waits() {
    let (_sb, client) = setup().await;
    let rs = resourcesets(&client, "apps");
    let mut dep = rset("dep", cm_spec(json!([{"name": "dep1"}])));
    dep["metadata"]["annotations"] = json!({"fluxcd.controlplane.io/reconcile": "disabled"});
    apply(&rs, dep.clone()).await;
    wait_for(&rs, "dep", |o| {
        cond(o, "Ready").is_some_and(|c| c["reason"] == "ReconciliationDisabled")
    })
    .await;
    // A new generation that the operator does not reconcile while disabled.
    dep["spec"] = cm_spec(json!([{"name": "dep2"}]));
    let changed = apply(&rs, dep).await;
    assert_eq!(changed["metadata"]["generation"], 2);
    let stale = serde_json::to_value(rs.get("dep").await.unwrap()).unwrap();
    let r = cond(&stale, "Ready").unwrap();
    assert_eq!(
        (&r["status"], &r["observedGeneration"]),
        (&json!("True"), &json!(1))
    );

    let mut dependent = rset("dependent", cm_spec(json!([{"name": "after"}])));
    dependent["spec"]["dependsOn"] = json!([{"apiVersion": "fluxcd.controlplane.io/v1",
                                             "kind": "ResourceSet", "name": "dep",
                                             "namespace": "apps", "ready": true}]);
    apply(&rs, dependent).await;
    let got = wait_for(&rs, "dependent", |o| {
        cond(o, "Ready").is_some_and(|c| c["reason"] == "DependencyNotReady")
    })
    .await;
    assert_eq!(
        cond(&got, "Ready").unwrap()["message"],
        "Retrying dependency check: dependency fluxcd.controlplane.io/v1/ResourceSet/apps/dep not ready"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(configmap(&client, "cm-after").await.is_none());

    merge(
        &rs,
        "dep",
        json!({"metadata": {"annotations": {"fluxcd.controlplane.io/reconcile": null}}}),
    )
    .await;
    let dep = wait_for(&rs, "dep", ready).await;
    assert_eq!(cond(&dep, "Ready").unwrap()["observedGeneration"], 2);
    wait_for(&rs, "dependent", ready).await;
    assert!(configmap(&client, "cm-after").await.is_some());
    assert!(configmap(&client, "cm-dep2").await.is_some());
}

/// Upstream `resourceset_controller.go` with the operator's `DEFAULT_SERVICE_ACCOUNT`: a
/// ResourceSet without `serviceAccountName` acts as that account in its own namespace. Without
/// RBAC in the sandbox only the delete path shows it: when the account does not exist, the
/// operator cannot impersonate it, skips pruning and releases the finalizer (objects are left
/// behind); an explicit `serviceAccountName` takes precedence over the default.
#[tokio::test]
async fn default_service_account_is_the_identity_of_resourcesets_without_one() {
    let (_sb, client) = setup_with(kube_sandbox::sim::SimConfig {
        default_service_account: Some("tenant".into()),
        ..fast_config()
    })
    .await;
    let sas: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "apps",
        &ar("", "v1", "ServiceAccount", "serviceaccounts"),
    );
    apply(
        &sas,
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "deployer", "namespace": "apps"}}),
    )
    .await;
    let rs = resourcesets(&client, "apps");
    // No `serviceAccountName`: the default `tenant`, which does not exist in `apps`.
    apply(
        &rs,
        rset("defaulted", cm_spec(json!([{"name": "defaulted"}]))),
    )
    .await;
    let mut explicit = cm_spec(json!([{"name": "explicit"}]));
    explicit["serviceAccountName"] = json!("deployer");
    apply(&rs, rset("explicit", explicit)).await;
    // Apply works in-process (no RBAC decides).
    wait_for(&rs, "defaulted", ready).await;
    wait_for(&rs, "explicit", ready).await;
    assert!(configmap(&client, "cm-defaulted").await.is_some());

    for n in ["defaulted", "explicit"] {
        rs.delete(n, &DeleteParams::default()).await.unwrap();
    }
    for n in ["defaulted", "explicit"] {
        wait_gone(&rs, n).await;
    }
    // The default account is missing: nothing pruned.
    assert!(configmap(&client, "cm-defaulted").await.is_some());
    assert!(configmap(&client, "tpl-defaulted").await.is_some());
    // The explicit account exists: pruned as it.
    assert!(configmap(&client, "cm-explicit").await.is_none());
    assert!(configmap(&client, "tpl-explicit").await.is_none());

    // Once the default account exists, a ResourceSet without one prunes on delete.
    apply(
        &sas,
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "tenant", "namespace": "apps"}}),
    )
    .await;
    apply(&rs, rset("later", cm_spec(json!([{"name": "later"}])))).await;
    wait_for(&rs, "later", ready).await;
    rs.delete("later", &DeleteParams::default()).await.unwrap();
    wait_gone(&rs, "later").await;
    assert!(configmap(&client, "cm-later").await.is_none());
}
