//! `cluster::apply` and `cluster::objects` against the in-process kube-sandbox: server-side
//! apply (creation, idempotence, forced ownership), dry-run, get/list/delete with every form of
//! absence, annotation patches, finalizer removal and pinned discovery.

#![allow(clippy::expect_used)] // Test helpers panic on setup failures.

use std::collections::BTreeMap;
use std::time::Duration;

use kube::api::{DynamicObject, Patch, PatchParams, PropagationPolicy};
use kube_sandbox::Sandbox;
use serde_json::{Value, json};
use terraform_provider_flux::cluster::apply::{ApplyError, Deletion, FIELD_MANAGER};
use terraform_provider_flux::cluster::objects::{Cluster, ObjectRef};
use terraform_provider_flux::cluster::wait::crd_established;
use tokio_util::sync::CancellationToken;

fn object(value: Value) -> DynamicObject {
    serde_json::from_value(value).expect("valid object")
}

fn config_map(name: &str, data: Value) -> DynamicObject {
    object(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"},
        "data": data,
    }))
}

/// A namespaced CRD `widgets.example.com` with a defaulted, enumerated `spec.size`.
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
                "name": "v1",
                "served": true,
                "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {
                            "type": "object",
                            "properties": {
                                "size": {"type": "string", "default": "medium", "enum": ["small", "medium", "large"]},
                                "replicas": {"type": "integer", "minimum": 0}
                            }
                        },
                        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                    }
                }}
            }]
        }
    }))
}

fn widget(name: &str, spec: Value) -> DynamicObject {
    object(json!({
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }))
}

fn reference(object: &DynamicObject) -> ObjectRef {
    ObjectRef::from_object(object).expect("complete object")
}

/// Installs the Widget CRD and waits until it is served.
async fn install_widgets(cluster: &Cluster) {
    let crd = cluster.apply(&widget_crd()).await.expect("CRD applied");
    cluster
        .wait_for(
            &reference(&crd),
            Duration::from_secs(10),
            &CancellationToken::new(),
            crd_established,
        )
        .await
        .expect("CRD established");
}

/// The managers recorded in an object's `managedFields`, as `(manager, operation)`.
fn managers(stored: &Value) -> Vec<(String, String)> {
    let mut managers: Vec<(String, String)> = stored["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|entry| {
            (
                entry["manager"].as_str().unwrap_or_default().to_owned(),
                entry["operation"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    managers.sort();
    managers
}

#[tokio::test]
async fn apply_creates_and_a_second_identical_apply_changes_nothing() {
    let sandbox = Sandbox::builder().build();
    let cluster = Cluster::new(sandbox.client());
    let desired = config_map("settings", json!({"mode": "fast"}));

    let created = cluster.apply(&desired).await.expect("created");
    let first_version = created.metadata.resource_version.clone();
    assert_eq!(created.data["data"], json!({"mode": "fast"}));
    let again = cluster.apply(&desired).await.expect("re-applied");
    assert_eq!(again.metadata.resource_version, first_version);

    let stored = sandbox
        .object("", "configmaps", "default", "settings")
        .expect("stored");
    assert_eq!(
        stored["metadata"]["resourceVersion"].as_str(),
        first_version.as_deref()
    );
    assert_eq!(
        managers(&stored),
        vec![(FIELD_MANAGER.to_owned(), "Apply".to_owned())]
    );
    let writes: Vec<String> = sandbox
        .recorder()
        .writes()
        .into_iter()
        .map(|r| {
            format!(
                "{} {} {:?} fieldManager={:?} force={}",
                r.method, r.path, r.content_type, r.field_manager, r.force
            )
        })
        .collect();
    let apply = "PATCH /api/v1/namespaces/default/configmaps/settings \
                 Some(\"application/apply-patch+yaml\") \
                 fieldManager=Some(\"terraform-provider-flux\") force=true"
        .to_owned();
    assert_eq!(writes, vec![apply.clone(), apply]);
}

#[tokio::test]
async fn forced_apply_takes_ownership_from_another_manager() {
    let sandbox = Sandbox::builder().build();
    let cluster = Cluster::new(sandbox.client());
    let other: kube::Api<DynamicObject> = kube::Api::namespaced_with(
        sandbox.client(),
        "default",
        &kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk("", "v1", "ConfigMap")),
    );
    other
        .patch(
            "settings",
            &PatchParams::apply("kubectl-edit"),
            &Patch::Apply(config_map("settings", json!({"mode": "slow"}))),
        )
        .await
        .expect("other manager's apply");

    let applied = cluster
        .apply(&config_map("settings", json!({"mode": "fast"})))
        .await
        .expect("forced apply");

    assert_eq!(applied.data["data"], json!({"mode": "fast"}));
    let stored = sandbox
        .object("", "configmaps", "default", "settings")
        .expect("stored");
    let owners: Vec<(String, Value)> = stored["metadata"]["managedFields"]
        .as_array()
        .expect("managed fields")
        .iter()
        .map(|e| {
            (
                e["manager"].as_str().unwrap_or_default().to_owned(),
                e["fieldsV1"].clone(),
            )
        })
        .filter(|(_, fields)| fields.pointer("/f:data/f:mode").is_some())
        .map(|(manager, fields)| (manager, fields["f:data"].clone()))
        .collect();
    assert_eq!(
        owners,
        vec![(FIELD_MANAGER.to_owned(), json!({"f:mode": {}}))]
    );
}

#[tokio::test]
async fn dry_run_returns_the_defaulted_object_and_persists_nothing() {
    let sandbox = Sandbox::builder().build();
    let cluster = Cluster::new(sandbox.client());
    let deployment = object(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}
            }
        }
    }));
    let version_before = sandbox.resource_version();

    let preview = cluster
        .dry_run_apply(&deployment)
        .await
        .expect("dry run accepted");

    // Defaults the API server documents for apps/v1 Deployments.
    assert_eq!(
        (
            &preview.data["spec"]["replicas"],
            &preview.data["spec"]["revisionHistoryLimit"],
            &preview.data["spec"]["progressDeadlineSeconds"],
        ),
        (&json!(1), &json!(10), &json!(600))
    );
    assert_eq!(sandbox.resource_version(), version_before);
    assert_eq!(
        sandbox.object("apps", "deployments", "default", "web"),
        None
    );
    sandbox.recorder().assert_no_writes();
    assert_eq!(sandbox.recorder().dry_run_writes().len(), 1);
    assert_eq!(
        cluster.get(&reference(&deployment)).await.expect("read"),
        None
    );
}

#[tokio::test]
async fn dry_run_and_apply_quote_the_servers_validation_error() {
    let sandbox = Sandbox::builder().build();
    let cluster = Cluster::new(sandbox.client());
    install_widgets(&cluster).await;
    let invalid = widget("w", json!({"size": "huge"}));

    let dry_run = cluster.dry_run_apply(&invalid).await;
    let apply = cluster.apply(&invalid).await;

    for (step, result) in [("dry run", dry_run), ("apply", apply)] {
        let error = result.expect_err(step);
        let status = error.status().expect("the server's status");
        assert_eq!(
            (status.code, status.reason.as_str()),
            (422, "Invalid"),
            "{step}"
        );
        let causes: Vec<&str> = status
            .details
            .iter()
            .flat_map(|d| d.causes.iter().map(|c| c.field.as_str()))
            .collect();
        assert_eq!(causes, vec!["spec.size"], "{step}");
        assert_eq!(error.object(), Some(&reference(&invalid)), "{step}");
        assert!(
            error.to_string().contains(&status.message),
            "{step}: {error}"
        );
    }
    assert!(matches!(
        cluster.dry_run_apply(&invalid).await,
        Err(ApplyError::DryRun { .. })
    ));
    assert_eq!(
        sandbox.object("example.com", "widgets", "default", "w"),
        None
    );
}

#[tokio::test]
async fn dry_run_of_a_custom_resource_returns_schema_defaults() {
    let sandbox = Sandbox::builder().build();
    let cluster = Cluster::new(sandbox.client());
    install_widgets(&cluster).await;

    let preview = cluster
        .dry_run_apply(&widget("w", json!({"replicas": 2})))
        .await
        .expect("valid widget");

    assert_eq!(
        preview.data["spec"],
        json!({"replicas": 2, "size": "medium"})
    );
    assert_eq!(
        sandbox.object("example.com", "widgets", "default", "w"),
        None
    );
}

#[tokio::test]
async fn absent_objects_namespaces_and_kinds_read_as_none() {
    let sandbox = Sandbox::builder().build();
    let cluster = Cluster::new(sandbox.client());
    let cases = [
        ObjectRef::new("v1", "ConfigMap", Some("default"), "missing"),
        ObjectRef::new("v1", "ConfigMap", Some("no-such-namespace"), "missing"),
        ObjectRef::new("example.com/v1", "Widget", Some("default"), "w"),
        ObjectRef::new("no.such.group/v1", "Thing", None, "x"),
    ];
    for case in &cases {
        assert_eq!(cluster.get(case).await.expect("read"), None, "{case}");
    }
}

#[tokio::test]
async fn a_kind_whose_crd_was_deleted_reads_as_absent_despite_cached_discovery() {
    let sandbox = Sandbox::builder().build();
    let cluster = Cluster::new(sandbox.client());
    install_widgets(&cluster).await;
    let applied = cluster
        .apply(&widget("w", json!({})))
        .await
        .expect("applied");
    let widget_ref = reference(&applied);
    let crd_ref = reference(&widget_crd());
    // The API server holds a deleted CRD with its cleanup finalizer until its objects are gone.
    assert!(matches!(
        cluster
            .delete(&crd_ref, PropagationPolicy::Background)
            .await
            .expect("deleted"),
        Deletion::Pending(_)
    ));
    cluster
        .wait_for(
            &crd_ref,
            Duration::from_secs(10),
            &CancellationToken::new(),
            terraform_provider_flux::cluster::wait::gone,
        )
        .await
        .expect("CRD gone");
    sandbox.recorder().clear();

    // Discovery still lists widgets in this handle's cache: the GET of the object gets the
    // API server's plain-text 404, which must read as absent.
    assert_eq!(cluster.get(&widget_ref).await.expect("read"), None);
    let answers: Vec<(String, u16)> = sandbox
        .recorder()
        .requests()
        .into_iter()
        .map(|r| (r.path, r.status))
        .collect();
    assert_eq!(
        answers,
        vec![(
            "/apis/example.com/v1/namespaces/default/widgets/w".to_owned(),
            404
        )]
    );
    // ... and the stale cache entry was dropped: the next use asks discovery again.
    assert_eq!(
        cluster
            .delete(&widget_ref, PropagationPolicy::Background)
            .await
            .expect("deleted"),
        Deletion::Gone
    );
    assert_eq!(
        sandbox
            .recorder()
            .requests()
            .last()
            .map(|r| (r.path.clone(), r.status)),
        Some(("/apis/example.com/v1".to_owned(), 404))
    );
}

#[tokio::test]
async fn applying_a_kind_that_is_not_served_names_the_kind() {
    let sandbox = Sandbox::builder().build();
    let cluster = Cluster::new(sandbox.client());

    let error = cluster
        .apply(&widget("w", json!({})))
        .await
        .expect_err("no CRD");

    assert_eq!(
        error.to_string(),
        "Widget default/w (example.com/v1): the API server does not serve kind Widget in \
         example.com/v1"
    );
}

#[tokio::test]
async fn a_crd_installed_after_its_group_was_cached_is_found_by_one_refresh() {
    let sandbox = Sandbox::builder().build();
    let cluster = Cluster::new(sandbox.client());
    install_widgets(&cluster).await;
    cluster
        .apply(&widget("w", json!({})))
        .await
        .expect("widget");
    // A second kind in the same group, installed after example.com/v1 was cached.
    let mut gadgets = widget_crd();
    gadgets.metadata.name = Some("gadgets.example.com".into());
    gadgets.data["spec"]["names"] = json!({"kind": "Gadget", "plural": "gadgets", "singular": "gadget", "listKind": "GadgetList"});
    let gadgets = cluster.apply(&gadgets).await.expect("CRD applied");
    cluster
        .wait_for(
            &reference(&gadgets),
            Duration::from_secs(10),
            &CancellationToken::new(),
            crd_established,
        )
        .await
        .expect("established");
    let mut gadget = widget("g", json!({}));
    gadget.types.as_mut().expect("types").kind = "Gadget".into();

    let stored = cluster.apply(&gadget).await.expect("gadget applied");

    assert_eq!(stored.data["spec"]["size"], json!("medium"));
    let discovery: Vec<String> = sandbox
        .recorder()
        .requests()
        .into_iter()
        .filter(|r| r.path == "/apis/example.com/v1")
        .map(|r| format!("{} {}", r.method, r.status))
        .collect();
    // Once for the Widget, once more when Gadget was not in the cached list.
    assert_eq!(discovery, vec!["GET 200", "GET 200"]);
}

#[tokio::test]
async fn discovery_is_pinned_cached_and_blind_to_broken_groups() {
    let sandbox = Sandbox::builder().build();
    sandbox.faults().break_discovery_group("metrics.k8s.io");
    let cluster = Cluster::new(sandbox.client());

    for name in ["a", "b", "c"] {
        cluster
            .apply(&config_map(name, json!({})))
            .await
            .expect("applied");
    }
    let clone = cluster.clone();
    clone
        .get(&ObjectRef::new("v1", "ConfigMap", Some("default"), "a"))
        .await
        .expect("read")
        .expect("present");

    let discovery: Vec<String> = sandbox
        .recorder()
        .requests()
        .into_iter()
        .filter(|r| r.verb == "discovery")
        .map(|r| r.path)
        .collect();
    assert_eq!(discovery, vec!["/api/v1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_uses_share_one_discovery_request() {
    let sandbox = Sandbox::builder().build();
    let cluster = Cluster::new(sandbox.client());
    // Terraform refreshes resources in parallel: ten reads miss the empty cache together.
    let reads = (0..10).map(|i| {
        let cluster = cluster.clone();
        tokio::spawn(async move {
            let name = format!("absent-{i}");
            cluster
                .get(&ObjectRef::new("v1", "ConfigMap", Some("default"), &name))
                .await
        })
    });
    for read in futures::future::join_all(reads).await {
        assert!(read.expect("task").expect("read").is_none());
    }
    let discovery: Vec<String> = sandbox
        .recorder()
        .requests()
        .into_iter()
        .filter(|r| r.verb == "discovery")
        .map(|r| r.path)
        .collect();
    assert_eq!(discovery, vec!["/api/v1"]);
}

#[tokio::test]
async fn delete_is_idempotent_and_reports_finalizers() {
    let sandbox = Sandbox::builder().build();
    let cluster = Cluster::new(sandbox.client());
    let mut held = config_map("held", json!({}));
    held.metadata.finalizers = Some(vec!["example.com/keep".into(), "example.com/other".into()]);
    cluster.apply(&held).await.expect("applied");
    cluster
        .apply(&config_map("free", json!({})))
        .await
        .expect("applied");
    let free = ObjectRef::new("v1", "ConfigMap", Some("default"), "free");
    let held = reference(&held);

    assert_eq!(
        cluster
            .delete(&free, PropagationPolicy::Background)
            .await
            .expect("delete"),
        Deletion::Gone
    );
    assert_eq!(
        cluster
            .delete(&free, PropagationPolicy::Background)
            .await
            .expect("delete again"),
        Deletion::Gone
    );
    assert_eq!(
        cluster
            .delete(
                &ObjectRef::new("example.com/v1", "Widget", Some("default"), "w"),
                PropagationPolicy::Foreground
            )
            .await
            .expect("delete of an unserved kind"),
        Deletion::Gone
    );
    match cluster
        .delete(&held, PropagationPolicy::Background)
        .await
        .expect("delete")
    {
        Deletion::Pending(remaining) => {
            assert!(remaining.metadata.deletion_timestamp.is_some());
            assert_eq!(
                remaining.metadata.finalizers,
                Some(vec!["example.com/keep".into(), "example.com/other".into()])
            );
        }
        Deletion::Gone => panic!("finalizers must hold the object"),
    }

    // The operator is gone: the provider releases the finalizers itself, one at a time.
    assert!(
        cluster
            .remove_finalizer(&held, "example.com/keep")
            .await
            .expect("removed")
    );
    assert!(
        !cluster
            .remove_finalizer(&held, "example.com/keep")
            .await
            .expect("not present")
    );
    let stored = sandbox
        .object("", "configmaps", "default", "held")
        .expect("still held by the other finalizer");
    assert_eq!(
        stored["metadata"]["finalizers"],
        json!(["example.com/other"])
    );
    assert!(
        cluster
            .remove_finalizer(&held, "example.com/other")
            .await
            .expect("removed")
    );
    assert_eq!(sandbox.object("", "configmaps", "default", "held"), None);
    assert!(
        !cluster
            .remove_finalizer(&held, "example.com/other")
            .await
            .expect("object gone")
    );
}

#[tokio::test]
async fn finalizer_removal_retries_when_the_object_changed_underneath() {
    let sandbox = Sandbox::builder().build();
    let cluster = Cluster::new(sandbox.client());
    let mut held = config_map("held", json!({}));
    held.metadata.finalizers = Some(vec!["example.com/keep".into()]);
    cluster.apply(&held).await.expect("applied");
    // The first merge patch meets a 409 Conflict (as when another writer got in first).
    sandbox.faults().add(
        kube_sandbox::FaultRule::error(409)
            .verb("patch")
            .resource("configmaps")
            .times(1),
    );

    assert!(
        cluster
            .remove_finalizer(&reference(&held), "example.com/keep")
            .await
            .expect("removed after a retry")
    );

    let patches: Vec<(String, u16)> = sandbox
        .recorder()
        .requests()
        .into_iter()
        .filter(|r| {
            r.method == "PATCH" && r.content_type.as_deref() == Some("application/merge-patch+json")
        })
        .map(|r| (r.path, r.status))
        .collect();
    let path = "/api/v1/namespaces/default/configmaps/held".to_owned();
    assert_eq!(patches, vec![(path.clone(), 409), (path, 200)]);
    let stored = sandbox
        .object("", "configmaps", "default", "held")
        .expect("stored");
    assert_eq!(stored["metadata"]["finalizers"], Value::Null);
}

#[tokio::test]
async fn annotations_survive_the_next_full_apply() {
    let sandbox = Sandbox::builder().build();
    let cluster = Cluster::new(sandbox.client());
    let mut desired = config_map("settings", json!({"mode": "fast"}));
    desired.metadata.annotations = Some([("owner".to_owned(), "team-a".to_owned())].into());
    cluster.apply(&desired).await.expect("applied");
    let target = reference(&desired);

    let annotated = cluster
        .annotate(
            &target,
            &BTreeMap::from([(
                "reconcile.example.com/requestedAt".to_owned(),
                Some("2026-01-01T00:00:00Z".to_owned()),
            )]),
        )
        .await
        .expect("annotated")
        .expect("present");
    let reapplied = cluster.apply(&desired).await.expect("re-applied");

    let expected = BTreeMap::from([
        ("owner".to_owned(), "team-a".to_owned()),
        (
            "reconcile.example.com/requestedAt".to_owned(),
            "2026-01-01T00:00:00Z".to_owned(),
        ),
    ]);
    assert_eq!(annotated.metadata.annotations.as_ref(), Some(&expected));
    assert_eq!(reapplied.metadata.annotations.as_ref(), Some(&expected));

    let removed = cluster
        .annotate(
            &target,
            &BTreeMap::from([("reconcile.example.com/requestedAt".to_owned(), None)]),
        )
        .await
        .expect("annotated")
        .expect("present");
    assert_eq!(
        removed.metadata.annotations,
        Some([("owner".to_owned(), "team-a".to_owned())].into())
    );
    assert_eq!(
        cluster
            .annotate(
                &ObjectRef::new("v1", "ConfigMap", Some("default"), "missing"),
                &BTreeMap::from([("a".to_owned(), Some("b".to_owned()))]),
            )
            .await
            .expect("absent object"),
        None
    );
}

#[tokio::test]
async fn list_selects_by_label_and_fills_in_the_kind() {
    let sandbox = Sandbox::builder().build();
    let cluster = Cluster::new(sandbox.client());
    for (name, tier) in [("a", "web"), ("b", "db"), ("c", "web")] {
        let mut map = config_map(name, json!({}));
        map.metadata.labels = Some([("tier".to_owned(), tier.to_owned())].into());
        cluster.apply(&map).await.expect("applied");
    }

    let web = cluster
        .list("v1", "ConfigMap", Some("default"), "tier=web")
        .await
        .expect("listed");
    let everything = cluster
        .list("v1", "ConfigMap", None, "tier")
        .await
        .expect("listed");
    let unserved = cluster
        .list("example.com/v1", "Widget", None, "")
        .await
        .expect("listed");

    let names = |items: &[DynamicObject]| -> Vec<String> {
        let mut names: Vec<String> = items
            .iter()
            .map(|o| {
                let types = o.types.clone().unwrap_or_default();
                format!(
                    "{} {} {}",
                    types.api_version,
                    types.kind,
                    o.metadata.name.clone().unwrap_or_default()
                )
            })
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(&web), vec!["v1 ConfigMap a", "v1 ConfigMap c"]);
    assert_eq!(
        names(&everything),
        vec!["v1 ConfigMap a", "v1 ConfigMap b", "v1 ConfigMap c"]
    );
    assert!(unserved.is_empty());
}
