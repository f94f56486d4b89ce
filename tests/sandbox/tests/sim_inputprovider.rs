//! Operator-simulator tests for ResourceSetInputProvider, each following the behaviour of the
//! operator's `internal/controller/resourcesetinputprovider_controller.go` (v0.58.1) named in
//! its comment, and the CRD's own rules (enforced by the sandbox's CEL validation). In-process
//! sandbox.

// Test helpers panic on failure, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sim_support;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube_sandbox::sim::inventory::adler32;
use serde_json::{Value, json};
use sim_support::*;

async fn setup() -> (kube_sandbox::Sandbox, kube::Client) {
    let (sb, client) = sandbox(fast_config());
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

fn providers(client: &kube::Client) -> Api<DynamicObject> {
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

fn provider(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "fluxcd.controlplane.io/v1", "kind": "ResourceSetInputProvider",
           "metadata": {"name": name, "namespace": "apps"}, "spec": spec})
}

fn failed(o: &Value) -> bool {
    cond(o, "Ready").is_some_and(|c| {
        c["status"] == "False" && c["observedGeneration"] == o["metadata"]["generation"]
    })
}

#[tokio::test]
async fn static_exports_its_defaults_with_the_uid_id_and_feeds_resourcesets() {
    // Static: NewResourceSetInput(defaults, {"id": inputs.ID(uid)}), revision digest of the
    // exported inputs, Ready/ReconciliationSucceeded; a ResourceSet re-renders when the
    // provider's lastExportedRevision changes.
    let (_sb, client) = setup().await;
    let api = providers(&client);
    apply(
        &api,
        provider(
            "team",
            json!({"type": "Static", "defaultValues": {"tenant": "a", "replicas": 2}}),
        ),
    )
    .await;
    let got = wait_for(&api, "team", ready).await;
    let uid = got["metadata"]["uid"].as_str().unwrap();
    let id = adler32(uid.as_bytes()).to_string();
    assert_eq!(
        got["status"]["exportedInputs"],
        json!([{"id": id, "tenant": "a", "replicas": 2}])
    );
    let first = got["status"]["lastExportedRevision"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(first.starts_with("sha256:"), "{first}");
    assert_eq!(
        cond(&got, "Ready").unwrap()["reason"],
        "ReconciliationSucceeded"
    );
    assert!(cond(&got, "Reconciling").is_none());
    assert_eq!(
        got["metadata"]["finalizers"],
        json!(["fluxcd.controlplane.io/finalizer"])
    );

    let rs = resourcesets(&client, "apps");
    apply(
        &rs,
        json!({"apiVersion": "fluxcd.controlplane.io/v1", "kind": "ResourceSet",
               "metadata": {"name": "tenants", "namespace": "apps"},
               "spec": {"inputsFrom": [{"apiVersion": "fluxcd.controlplane.io/v1",
                                        "kind": "ResourceSetInputProvider", "name": "team"}],
                        "resources": [{"apiVersion": "v1", "kind": "ConfigMap",
                                       "metadata": {"name": "<< inputs.tenant >>"},
                                       "data": {"id": "<< inputs.id | quote >>"}}]}}),
    )
    .await;
    let rendered = wait_for(&rs, "tenants", ready).await;
    assert_eq!(
        inventory_ids(&rendered),
        ["apps_a__ConfigMap"],
        "{rendered}"
    );
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "apps");
    assert_eq!(
        cms.get("a").await.unwrap().data.unwrap()["id"],
        id,
        "the template reads the provider's id"
    );

    // New defaults: a new export and a new revision; the ResourceSet follows on its own.
    apply(
        &api,
        provider(
            "team",
            json!({"type": "Static", "defaultValues": {"tenant": "b"}}),
        ),
    )
    .await;
    let got = wait_for(&api, "team", |o| {
        ready(o) && o["status"]["exportedInputs"][0]["tenant"] == "b"
    })
    .await;
    assert_ne!(got["status"]["lastExportedRevision"], json!(first));
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while cms.get_opt("b").await.unwrap().is_none() || cms.get_opt("a").await.unwrap().is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "ConfigMap b did not replace a"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn external_apis_are_reported_unreachable_and_retried() {
    // callExternalProvider: Ready=Unknown/Progressing first, then Ready=False
    // ReconciliationFailed with the caller's prefix; a missing secretRef Secret is read first.
    let (_sb, client) = setup().await;
    let api = providers(&client);
    apply(
        &api,
        provider(
            "prs",
            json!({"type": "GitHubPullRequest", "url": "https://github.com/org/repo"}),
        ),
    )
    .await;
    let got = wait_for(&api, "prs", failed).await;
    let ready_cond = cond(&got, "Ready").unwrap();
    assert_eq!(ready_cond["reason"], "ReconciliationFailed");
    assert!(
        ready_cond["message"]
            .as_str()
            .unwrap()
            .starts_with("failed to call Git provider: "),
        "{ready_cond}"
    );
    assert_eq!(
        cond(&got, "Reconciling").unwrap()["reason"],
        "ProgressingWithRetry"
    );
    assert!(cond(&got, "Stalled").is_none(), "not terminal");
    assert!(got["status"]["exportedInputs"].is_null());

    apply(
        &api,
        provider(
            "tags",
            json!({"type": "OCIArtifactTag", "url": "oci://ghcr.io/org/app",
                   "secretRef": {"name": "registry"}}),
        ),
    )
    .await;
    let got = wait_for(&api, "tags", failed).await;
    assert_eq!(
        cond(&got, "Ready").unwrap()["message"],
        "failed to read secret 'apps/registry': secrets \"registry\" not found"
    );

    apply(
        &api,
        provider(
            "artifacts",
            json!({"type": "ExternalArtifact", "selectors": [{"matchLabels": {"app": "web"}}]}),
        ),
    )
    .await;
    let got = wait_for(&api, "artifacts", failed).await;
    assert!(
        cond(&got, "Ready").unwrap()["message"]
            .as_str()
            .unwrap()
            .contains("no matches for kind \"ExternalArtifactList\""),
        "{got}"
    );
}

#[tokio::test]
async fn created_suspended_reports_reconciliation_disabled_and_delete_releases_the_finalizer() {
    // initializeObjectStatus with reconcile disabled; on delete the finalizer is removed.
    let (_sb, client) = setup().await;
    let api = providers(&client);
    let mut obj = provider(
        "paused",
        json!({"type": "Static", "defaultValues": {"a": 1}}),
    );
    obj["metadata"]["annotations"] = json!({"fluxcd.controlplane.io/reconcile": "disabled"});
    apply(&api, obj).await;
    let got = wait_for(&api, "paused", |o| {
        cond(o, "Ready").is_some_and(|c| c["reason"] == "ReconciliationDisabled")
    })
    .await;
    assert_eq!(cond(&got, "Ready").unwrap()["status"], "True");
    assert_eq!(
        cond(&got, "Ready").unwrap()["message"],
        "Initialized with reconciliation suspended"
    );
    assert!(
        got["status"]["exportedInputs"].is_null(),
        "nothing exported"
    );
    api.delete("paused", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&api, "paused").await;
}

#[tokio::test]
async fn schedule_window_shorter_than_twice_the_timeout_stalls() {
    // internal/schedule NewScheduler → InvalidSchedule, terminal.
    let (_sb, client) = setup().await;
    let api = providers(&client);
    apply(
        &api,
        provider(
            "nightly",
            json!({"type": "Static", "schedule": [{"cron": "0 2 * * *", "window": "3m"}]}),
        ),
    )
    .await;
    let got = wait_for(&api, "nightly", stalled).await;
    assert_eq!(cond(&got, "Ready").unwrap()["reason"], "InvalidSchedule");
    assert_eq!(
        cond(&got, "Ready").unwrap()["message"],
        "Reconciliation failed terminally due to configuration error: failed to validate \
         schedule[0]: a non-zero window (3m0s) must always be at least twice the timeout (2m0s)"
    );
    // The CRD defaults the time zone and the window of each schedule entry.
    assert_eq!(got["spec"]["schedule"][0]["timeZone"], "UTC");
}

#[tokio::test]
async fn the_crd_enforces_its_rules() {
    // The CEL rules of the v0.58.1 CRD, and the filter.limit default.
    let (_sb, client) = setup().await;
    let api = providers(&client);
    let reject = |spec: Value| {
        let api = api.clone();
        async move {
            let err = api
                .patch(
                    "bad",
                    &PatchParams::apply("test").force(),
                    &Patch::Apply(&provider("bad", spec)),
                )
                .await
                .unwrap_err();
            err.to_string()
        }
    };
    assert!(
        reject(json!({"type": "Static", "url": "https://x"}))
            .await
            .contains("spec.url must be empty when spec.type is 'Static'")
    );
    assert!(
        reject(json!({"type": "GitHubBranch"}))
            .await
            .contains("spec.url must not be empty")
    );
    assert!(
        reject(json!({"type": "ECRArtifactTag", "url": "oci://registry"}))
            .await
            .contains("must include the repository path")
    );
    let got = apply(
        &api,
        provider(
            "ok",
            json!({"type": "GitLabBranch", "url": "https://gitlab.com/g/p",
                   "filter": {"includeBranch": "^feat-"}}),
        ),
    )
    .await;
    assert_eq!(got["spec"]["filter"]["limit"], 100);
}
