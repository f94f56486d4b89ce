//! Acceptance tests of the sandbox API server through kube-rs 5 (in-process mode): discovery and
//! CRD establishment, server-side apply, dry-run, watch resumption and 410, finalizers,
//! namespace and CRD cascades, defaulting, pruning, schema and CEL validation, generation and
//! the status subresource, optimistic concurrency, garbage collection, Deployments becoming
//! Available, selectors and fault injection.
//!
//! Expected values come from the documented Kubernetes behaviour (API concepts, SSA and CRD
//! pages) and the apiserver's error formats, not from the sandbox's code.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers panic on setup failures.
#![recursion_limit = "512"]

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
    ValidationDirective, WatchEvent, WatchParams,
};
use kube::core::GroupVersionKind;
use kube::discovery::Discovery;
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use kube_sandbox::{FaultAction, FaultRule, Sandbox};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const GROUP: &str = "example.com";

/// A CRD authored for these tests: defaults, enum, pattern, required, a list-map, a root CEL rule
/// and an immutability transition rule, a status subresource and a printer column.
fn widget_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": GROUP, "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
            "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object",
                    "x-kubernetes-validations": [{"rule": "self.metadata.name.startsWith('w')", "message": "widget names must start with 'w'"}],
                    "properties": {
                        "spec": {"type": "object", "required": ["color"], "properties": {
                            "color": {"type": "string", "enum": ["red", "green", "blue"]},
                            "size": {"type": "integer", "default": 3, "minimum": 1},
                            "label": {"type": "string", "pattern": "^[a-z]+$"},
                            "owner": {"type": "string", "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "owner is immutable"}]},
                            "tags": {"type": "array", "items": {"type": "string"}},
                            "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                                "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "port": {"type": "integer"}}}},
                            "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}},
                        "status": {"type": "object", "properties": {
                            "phase": {"type": "string"},
                            "observedGeneration": {"type": "integer"}}}}}}}]}
    })
}

fn widget_ar() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(GROUP, "v1", "Widget"), "widgets")
}

fn widgets(c: &Client, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(c.clone(), ns, &widget_ar())
}

fn widget(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name}, "spec": spec})
}

async fn install_crd(c: &Client, crd: Value) {
    let api: Api<CustomResourceDefinition> = Api::all(c.clone());
    let name = crd["metadata"]["name"].as_str().unwrap().to_string();
    api.patch(&name, &PatchParams::apply("test"), &Patch::Apply(crd))
        .await
        .unwrap();
    tokio::time::timeout(
        Duration::from_secs(5),
        await_condition(api, &name, conditions::is_crd_established()),
    )
    .await
    .expect("CRD established in time")
    .unwrap();
}

async fn ready_sandbox() -> (Sandbox, Client) {
    let sb = Sandbox::builder()
        .crd_established_delay(Duration::from_millis(20))
        .build();
    let c = sb.client();
    install_crd(&c, widget_crd()).await;
    (sb, c)
}

fn api_err(e: kube::Error) -> kube::core::Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn managers(o: &DynamicObject) -> Vec<(String, String)> {
    o.managed_fields()
        .iter()
        .map(|m| {
            (
                m.manager.clone().unwrap_or_default(),
                m.operation.clone().unwrap_or_default(),
            )
        })
        .collect()
}

fn owned(o: &DynamicObject, manager: &str) -> Value {
    o.managed_fields()
        .iter()
        .find(|m| m.manager.as_deref() == Some(manager))
        .map(|m| serde_json::to_value(m.fields_v1.as_ref().unwrap()).unwrap())
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn discovery_serves_a_crd_only_once_established() {
    let sb = Sandbox::builder()
        .crd_established_delay(Duration::from_millis(400))
        .build();
    let c = sb.client();
    let crds: Api<CustomResourceDefinition> = Api::all(c.clone());
    crds.patch(
        "widgets.example.com",
        &PatchParams::apply("test"),
        &Patch::Apply(widget_crd()),
    )
    .await
    .unwrap();

    let before = Discovery::new(c.clone()).run_aggregated().await.unwrap();
    assert!(!before.has_group(GROUP));
    assert!(before.has_group("apps"), "built-in groups are served");
    // Real apiservers answer an unserved resource path with a plain-text 404, which kube 5 does
    // not classify as NotFound.
    let err = api_err(widgets(&c, "default").get("w1").await.unwrap_err());
    assert_eq!(err.code, 404);
    assert!(!err.is_not_found());
    assert_eq!(err.message.trim(), "404 page not found");

    tokio::time::timeout(
        Duration::from_secs(5),
        await_condition(
            crds.clone(),
            "widgets.example.com",
            conditions::is_crd_established(),
        ),
    )
    .await
    .unwrap()
    .unwrap();
    let after = Discovery::new(c.clone()).run_aggregated().await.unwrap();
    let (ar, caps) = after
        .resolve_gvk(&GroupVersionKind::gvk(GROUP, "v1", "Widget"))
        .expect("Widget discovered");
    assert_eq!(
        (ar.plural.as_str(), caps.scope),
        ("widgets", kube::discovery::Scope::Namespaced)
    );
    let legacy = Discovery::new(c.clone()).run().await.unwrap();
    assert!(legacy.has_group(GROUP));
    let pinned =
        kube::discovery::oneshot::pinned_kind(&c, &GroupVersionKind::gvk(GROUP, "v1", "Widget"))
            .await
            .unwrap();
    assert_eq!(pinned.0.plural, "widgets");
    // Now a missing object is a JSON NotFound.
    assert!(
        widgets(&c, "default")
            .get_opt("w1")
            .await
            .unwrap()
            .is_none()
    );
    let crd = crds.get("widgets.example.com").await.unwrap();
    let types: Vec<String> = crd
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .map(|c| format!("{}={}", c.type_, c.status))
        .collect();
    assert_eq!(types, vec!["NamesAccepted=True", "Established=True"]);
}

#[tokio::test]
async fn server_side_apply_ownership_conflict_force_and_removal() {
    let (_sb, c) = ready_sandbox().await;
    let api = widgets(&c, "default");
    let a = PatchParams::apply("alpha");
    let first = api
        .patch(
            "w1",
            &a,
            &Patch::Apply(widget(
                "w1",
                json!({"color": "red", "label": "x", "tags": ["a"]}),
            )),
        )
        .await
        .unwrap();
    assert_eq!(
        first.data["spec"],
        json!({"color": "red", "label": "x", "tags": ["a"], "size": 3})
    );
    assert_eq!(
        managers(&first),
        vec![("alpha".to_string(), "Apply".to_string())]
    );
    assert_eq!(
        owned(&first, "alpha"),
        json!({"f:spec": {"f:color": {}, "f:label": {}, "f:tags": {}}})
    );

    // Same value from another manager: shared ownership, no conflict.
    let shared = api
        .patch(
            "w1",
            &PatchParams::apply("beta"),
            &Patch::Apply(widget("w1", json!({"color": "red"}))),
        )
        .await
        .unwrap();
    assert_eq!(
        managers(&shared),
        vec![
            ("alpha".into(), "Apply".into()),
            ("beta".into(), "Apply".into())
        ]
    );

    // Different value: conflict with the real message format.
    let err = api_err(
        api.patch(
            "w1",
            &PatchParams::apply("beta"),
            &Patch::Apply(widget("w1", json!({"color": "blue"}))),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(err.code, 409);
    assert_eq!(err.reason, "Conflict");
    assert_eq!(
        err.message,
        "Apply failed with 1 conflict: conflict with \"alpha\": .spec.color"
    );
    let causes = err.details.unwrap().causes;
    assert_eq!(causes.len(), 1);
    assert_eq!(
        (causes[0].reason.as_str(), causes[0].field.as_str()),
        ("FieldManagerConflict", ".spec.color")
    );
    assert_eq!(causes[0].message, "conflict with \"alpha\"");

    // force takes ownership.
    let forced = api
        .patch(
            "w1",
            &PatchParams::apply("beta").force(),
            &Patch::Apply(widget("w1", json!({"color": "blue"}))),
        )
        .await
        .unwrap();
    assert_eq!(forced.data["spec"]["color"], "blue");
    assert_eq!(
        owned(&forced, "alpha"),
        json!({"f:spec": {"f:label": {}, "f:tags": {}}})
    );
    assert_eq!(owned(&forced, "beta"), json!({"f:spec": {"f:color": {}}}));

    // alpha stops applying label (sole owner: removed) and color (now beta's: kept).
    let dropped = api
        .patch(
            "w1",
            &a,
            &Patch::Apply(widget("w1", json!({"tags": ["a"]}))),
        )
        .await
        .unwrap();
    assert_eq!(
        dropped.data["spec"],
        json!({"color": "blue", "tags": ["a"], "size": 3})
    );

    // Re-applying the same configuration is a no-op: same resourceVersion.
    let again = api
        .patch(
            "w1",
            &a,
            &Patch::Apply(widget("w1", json!({"tags": ["a"]}))),
        )
        .await
        .unwrap();
    assert_eq!(again.resource_version(), dropped.resource_version());

    // An Update (merge patch) takes the field from an applier without conflict; the applier's
    // next non-forced apply of a different value then conflicts with the Update manager.
    let edited = api
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"tags": ["b"]}})),
        )
        .await
        .unwrap();
    // alpha owned only tags, so its entry disappears; the in-process client sends no User-Agent
    // and no fieldManager, so the Update manager name is empty.
    assert_eq!(
        managers(&edited),
        vec![
            ("beta".into(), "Apply".into()),
            (String::new(), "Update".into())
        ]
    );
    let err = api_err(
        api.patch(
            "w1",
            &a,
            &Patch::Apply(widget("w1", json!({"tags": ["c"]}))),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(err.code, 409);
    assert_eq!(
        err.message,
        "Apply failed with 1 conflict: conflict with \"\" using example.com/v1: .spec.tags"
    );

    // Apply without fieldManager is rejected as invalid PatchOptions.
    let err = api_err(
        api.patch(
            "w1",
            &PatchParams::default(),
            &Patch::Apply(widget("w1", json!({"color": "red"}))),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(err.code, 422);
}

#[tokio::test]
async fn apply_merges_keyed_lists_from_the_schema_and_atomic_lists_otherwise() {
    let (_sb, c) = ready_sandbox().await;
    let api = widgets(&c, "default");
    api.patch(
        "w1",
        &PatchParams::apply("alpha"),
        &Patch::Apply(widget(
            "w1",
            json!({"color": "red", "ports": [{"name": "http", "port": 80}], "tags": ["a", "b"]}),
        )),
    )
    .await
    .unwrap();
    let merged = api
        .patch(
            "w1",
            &PatchParams::apply("beta"),
            &Patch::Apply(widget(
                "w1",
                json!({"color": "red", "ports": [{"name": "metrics", "port": 9090}]}),
            )),
        )
        .await
        .unwrap();
    assert_eq!(
        merged.data["spec"]["ports"],
        json!([{"name": "http", "port": 80}, {"name": "metrics", "port": 9090}])
    );
    // tags is atomic: another manager setting a different list conflicts on the whole list.
    let err = api_err(
        api.patch(
            "w1",
            &PatchParams::apply("beta"),
            &Patch::Apply(widget("w1", json!({"color": "red", "tags": ["c"]}))),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(
        err.message,
        "Apply failed with 1 conflict: conflict with \"alpha\": .spec.tags"
    );
    // Built-in keyed list: Deployment env merges per name across managers.
    let deploys: Api<Deployment> = Api::namespaced(c.clone(), "default");
    let d = |env: Value| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"app": "d"}},
            "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "c", "image": "img:1", "env": env}]}}}})
    };
    deploys
        .patch(
            "d",
            &PatchParams::apply("alpha"),
            &Patch::Apply(d(json!([{"name": "A", "value": "1"}]))),
        )
        .await
        .unwrap();
    let both = deploys
        .patch(
            "d",
            &PatchParams::apply("beta"),
            &Patch::Apply(d(json!([{"name": "B", "value": "2"}]))),
        )
        .await
        .unwrap();
    let env =
        serde_json::to_value(&both.spec.unwrap().template.spec.unwrap().containers[0].env).unwrap();
    assert_eq!(
        env,
        json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])
    );
}

#[tokio::test]
async fn dry_run_persists_nothing() {
    let (sb, c) = ready_sandbox().await;
    let api = widgets(&c, "default");
    let rv0 = sb.resource_version();
    sb.recorder().clear();
    let mut events = sb.subscribe();
    let dry = api
        .patch(
            "w1",
            &PatchParams::apply("t").dry_run(),
            &Patch::Apply(widget("w1", json!({"color": "red"}))),
        )
        .await
        .unwrap();
    assert_eq!(
        dry.data["spec"],
        json!({"color": "red", "size": 3}),
        "defaults are visible in the dry-run answer"
    );
    let obj: DynamicObject =
        serde_json::from_value(widget("w2", json!({"color": "green"}))).unwrap();
    api.create(
        &PostParams {
            dry_run: true,
            field_manager: None,
        },
        &obj,
    )
    .await
    .unwrap();
    assert!(api.get_opt("w1").await.unwrap().is_none());
    assert!(api.get_opt("w2").await.unwrap().is_none());
    assert_eq!(sb.resource_version(), rv0);

    let real = api
        .patch(
            "w3",
            &PatchParams::apply("t"),
            &Patch::Apply(widget("w3", json!({"color": "red"}))),
        )
        .await
        .unwrap();
    let rv1 = sb.resource_version();
    api.patch(
        "w3",
        &PatchParams::apply("t").dry_run(),
        &Patch::Apply(widget("w3", json!({"color": "blue"}))),
    )
    .await
    .unwrap();
    api.delete(
        "w3",
        &DeleteParams {
            dry_run: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let still = api.get("w3").await.unwrap();
    assert_eq!(
        (
            still.data["spec"]["color"].as_str(),
            still.resource_version()
        ),
        (Some("red"), real.resource_version())
    );
    assert_eq!(sb.resource_version(), rv1);
    let writes: Vec<String> = sb
        .recorder()
        .writes()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        writes,
        vec!["PATCH /apis/example.com/v1/namespaces/default/widgets/w3".to_string()]
    );
    assert_eq!(sb.recorder().dry_run_writes().len(), 4);
    // Exactly one store event: the real apply.
    let mut n = 0;
    while let Ok(ev) = events.try_recv() {
        assert_eq!(ev.object["metadata"]["name"], "w3");
        n += 1;
    }
    assert_eq!(n, 1);
}

#[tokio::test]
async fn watch_resumes_from_a_resource_version_and_reports_expiry() {
    let sb = Sandbox::builder().watch_log_capacity(5).build();
    let c = sb.client();
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    let cm =
        |n: &str| serde_json::from_value::<ConfigMap>(json!({"metadata": {"name": n}})).unwrap();
    let a = api.create(&PostParams::default(), &cm("a")).await.unwrap();
    let rv_a = a.resource_version().unwrap();
    api.create(&PostParams::default(), &cm("b")).await.unwrap();
    api.create(&PostParams::default(), &cm("c")).await.unwrap();
    let stream = api
        .watch(&WatchParams::default().timeout(1), &rv_a)
        .await
        .unwrap();
    let names: Vec<String> = stream
        .take(2)
        .map(|e| match e.unwrap() {
            WatchEvent::Added(o) => format!("ADDED {}", o.name_any()),
            other => format!("{other:?}"),
        })
        .collect()
        .await;
    assert_eq!(names, vec!["ADDED b", "ADDED c"]);

    for i in 0..8 {
        api.create(&PostParams::default(), &cm(&format!("x{i}")))
            .await
            .unwrap();
    }
    let mut stream = api
        .watch(&WatchParams::default().timeout(1), &rv_a)
        .await
        .unwrap()
        .boxed();
    match stream.next().await.unwrap().unwrap() {
        WatchEvent::Error(e) => {
            assert_eq!((e.code, e.reason.as_str()), (410, "Expired"));
            assert!(
                e.message
                    .starts_with(&format!("too old resource version: {rv_a} (")),
                "{}",
                e.message
            );
        }
        other => panic!("expected 410, got {other:?}"),
    }

    // kube-runtime's watcher relists after a 410 (forced here by fault injection).
    sb.faults().add(
        FaultRule::new(FaultAction::WatchExpired)
            .verb("watch")
            .times(1),
    );
    sb.recorder().clear();
    let mut w = watcher(api.clone(), watcher::Config::default()).boxed();
    let mut init_done = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while init_done < 2 && Instant::now() < deadline {
        if let Ok(Some(ev)) = tokio::time::timeout(Duration::from_secs(5), w.next()).await
            && let Ok(watcher::Event::InitDone) = ev
        {
            init_done += 1;
        }
    }
    assert_eq!(init_done, 2, "watcher relisted after 410");
    let verbs: Vec<String> = sb
        .recorder()
        .requests()
        .iter()
        .map(|r| r.verb.clone())
        .filter(|v| v == "list")
        .collect();
    assert_eq!(verbs.len(), 2);
}

#[tokio::test]
async fn watch_cut_fault_ends_the_stream_and_the_watcher_resumes() {
    let sb = Sandbox::builder().build();
    let api: Api<ConfigMap> = Api::namespaced(sb.client(), "default");
    let rv = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    for n in ["a", "b", "c"] {
        api.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": n}})).unwrap(),
        )
        .await
        .unwrap();
    }
    sb.faults().add(
        FaultRule::new(FaultAction::WatchCut { after_events: 1 })
            .verb("watch")
            .times(1),
    );
    let cut: Vec<String> = api
        .watch(&WatchParams::default().timeout(2), &rv)
        .await
        .unwrap()
        .map(|e| format!("{:?}", e.map(|_| ())))
        .collect()
        .await;
    assert_eq!(cut.len(), 1, "{cut:?}");
    let all: Vec<String> = api
        .watch(&WatchParams::default().timeout(1), &rv)
        .await
        .unwrap()
        .filter_map(|e| {
            futures::future::ready(match e.unwrap() {
                WatchEvent::Added(o) => Some(o.name_any()),
                _ => None,
            })
        })
        .collect()
        .await;
    assert_eq!(all, vec!["a", "b", "c"]);
}

#[tokio::test]
async fn stale_continue_tokens_expire_with_410() {
    let sb = Sandbox::builder().watch_log_capacity(5).build();
    let api: Api<ConfigMap> = Api::namespaced(sb.client(), "default");
    for i in 0..3 {
        api.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": format!("c{i}")}})).unwrap(),
        )
        .await
        .unwrap();
    }
    let first = api.list(&ListParams::default().limit(1)).await.unwrap();
    let token = first.metadata.continue_.clone().unwrap();
    let second = api
        .list(&ListParams::default().limit(1).continue_token(&token))
        .await
        .unwrap();
    assert_eq!(second.items[0].name_any(), "c1");
    for i in 0..8 {
        api.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": format!("x{i}")}})).unwrap(),
        )
        .await
        .unwrap();
    }
    let err = api_err(
        api.list(&ListParams::default().limit(1).continue_token(&token))
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (410, "Expired"));
}

#[tokio::test]
async fn watch_streams_live_events_with_selectors() {
    let sb = Sandbox::builder().build();
    let c = sb.client();
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    let rv = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let stream = api
        .watch(&WatchParams::default().labels("app=web").timeout(2), &rv)
        .await
        .unwrap();
    let pp = PatchParams::apply("t");
    api.patch("x", &pp, &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "labels": {"app": "web"}}}))).await.unwrap();
    api.patch(
        "y",
        &pp,
        &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "y"}})),
    )
    .await
    .unwrap();
    api.patch("x", &pp, &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "labels": {"app": "db"}}}))).await.unwrap();
    let evs: Vec<String> = stream
        .try_filter(|e| futures::future::ready(!matches!(e, WatchEvent::Bookmark(_))))
        .take(2)
        .map(|e| match e.unwrap() {
            WatchEvent::Added(o) => format!("ADDED {}", o.name_any()),
            WatchEvent::Modified(o) => format!("MODIFIED {}", o.name_any()),
            WatchEvent::Deleted(o) => format!("DELETED {}", o.name_any()),
            other => format!("{other:?}"),
        })
        .collect()
        .await;
    // An object that stops matching the selector is reported as DELETED.
    assert_eq!(evs, vec!["ADDED x", "DELETED x"]);
    let names: Vec<String> = api
        .list(&ListParams::default().labels("app in (db,web)"))
        .await
        .unwrap()
        .items
        .iter()
        .map(|o| o.name_any())
        .collect();
    assert_eq!(names, vec!["x"]);
    let names: Vec<String> = api
        .list(&ListParams::default().fields("metadata.name=y"))
        .await
        .unwrap()
        .items
        .iter()
        .map(|o| o.name_any())
        .collect();
    assert_eq!(names, vec!["y"]);
    let err = api_err(
        api.list(&ListParams::default().fields("spec.x=1"))
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 400);
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let (_sb, c) = ready_sandbox().await;
    let api = widgets(&c, "default");
    let mut w = widget("w1", json!({"color": "red"}));
    w["metadata"]["finalizers"] = json!(["example.com/hold"]);
    let created = api
        .create(&PostParams::default(), &serde_json::from_value(w).unwrap())
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    let res = api.delete("w1", &DeleteParams::default()).await.unwrap();
    let deleting = res.left().expect("deferred deletion returns the object");
    assert!(deleting.metadata.deletion_timestamp.is_some());
    assert_eq!(
        deleting.metadata.generation,
        Some(2),
        "markAsDeleting bumps generation"
    );
    let err = api_err(
        api.create(
            &PostParams::default(),
            &serde_json::from_value(widget("w1", json!({"color": "red"}))).unwrap(),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "AlreadyExists"));
    let err = api_err(
        api.patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": ["example.com/hold", "other/new"]}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(err.code, 422);
    assert!(
        err.message
            .contains("no new finalizers can be added if the object is being deleted"),
        "{}",
        err.message
    );
    assert!(api.get_opt("w1").await.unwrap().is_some());
    let uid = deleting.uid().unwrap();
    api.patch(
        "w1",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    tokio::time::timeout(
        Duration::from_secs(2),
        await_condition(api.clone(), "w1", conditions::is_deleted(&uid)),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(api.get_opt("w1").await.unwrap().is_none());
    // Immediate deletion answers a Status with details.kind = the plural resource.
    api.create(
        &PostParams::default(),
        &serde_json::from_value(widget("w2", json!({"color": "red"}))).unwrap(),
    )
    .await
    .unwrap();
    let st = api
        .delete("w2", &DeleteParams::default())
        .await
        .unwrap()
        .right()
        .expect("Status for immediate delete");
    let d = st.details.unwrap();
    assert_eq!(
        (d.name.as_str(), d.group.as_str(), d.kind.as_str()),
        ("w2", GROUP, "widgets")
    );
}

#[tokio::test]
async fn namespace_deletion_cascades_and_forbids_new_content() {
    let (_sb, c) = ready_sandbox().await;
    let nss: Api<Namespace> = Api::all(c.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "team"}})).unwrap(),
    )
    .await
    .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "team");
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "cfg"}})).unwrap(),
    )
    .await
    .unwrap();
    let ws = widgets(&c, "team");
    let mut w = widget("w1", json!({"color": "red"}));
    w["metadata"]["finalizers"] = json!(["example.com/hold"]);
    ws.create(&PostParams::default(), &serde_json::from_value(w).unwrap())
        .await
        .unwrap();

    let ns = nss
        .delete("team", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .expect("namespace deletion is deferred");
    assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Terminating"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        cms.get_opt("cfg").await.unwrap().is_none(),
        "content is deleted"
    );
    assert!(
        ws.get("w1")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some(),
        "finalizers are honoured"
    );
    assert!(
        nss.get_opt("team").await.unwrap().is_some(),
        "namespace waits for its content"
    );
    let err = api_err(
        cms.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "late"}})).unwrap(),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        err.message,
        "configmaps \"late\" is forbidden: unable to create new content in namespace team because it is being terminated"
    );

    ws.patch(
        "w1",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    let uid = ns.metadata.uid.unwrap();
    tokio::time::timeout(
        Duration::from_secs(2),
        await_condition(nss.clone(), "team", conditions::is_deleted(&uid)),
    )
    .await
    .unwrap()
    .unwrap();
    // Creating in a missing namespace: 404 NotFound naming the namespace.
    let err = api_err(
        cms.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "x"}})).unwrap(),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(
        (err.code, err.message.as_str()),
        (404, "namespaces \"team\" not found")
    );
}

#[tokio::test]
async fn crd_deletion_removes_its_instances_and_its_api() {
    let (_sb, c) = ready_sandbox().await;
    let ws = widgets(&c, "default");
    for n in ["w1", "w2"] {
        ws.create(
            &PostParams::default(),
            &serde_json::from_value(widget(n, json!({"color": "red"}))).unwrap(),
        )
        .await
        .unwrap();
    }
    let crds: Api<CustomResourceDefinition> = Api::all(c.clone());
    let uid = crds
        .get("widgets.example.com")
        .await
        .unwrap()
        .uid()
        .unwrap();
    crds.delete("widgets.example.com", &DeleteParams::default())
        .await
        .unwrap();
    tokio::time::timeout(
        Duration::from_secs(2),
        await_condition(
            crds.clone(),
            "widgets.example.com",
            conditions::is_deleted(&uid),
        ),
    )
    .await
    .unwrap()
    .unwrap();
    let err = api_err(ws.list(&ListParams::default()).await.unwrap_err());
    assert_eq!(err.code, 404);
    assert!(
        !Discovery::new(c.clone())
            .run_aggregated()
            .await
            .unwrap()
            .has_group(GROUP)
    );
    // Re-installing serves an empty collection: the instances were deleted with the CRD.
    install_crd(&c, widget_crd()).await;
    assert!(
        ws.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn defaulting_and_pruning_follow_the_structural_schema() {
    let (_sb, c) = ready_sandbox().await;
    let api = widgets(&c, "default");
    let mut w = widget(
        "w1",
        json!({"color": "red", "junk": 1, "extra": {"free": {"form": true}}}),
    );
    w["status"] = json!({"phase": "ignored-on-create"});
    w["topLevelJunk"] = json!("x");
    let created = api
        .create(&PostParams::default(), &serde_json::from_value(w).unwrap())
        .await
        .unwrap();
    assert_eq!(
        created.data["spec"],
        json!({"color": "red", "size": 3, "extra": {"free": {"form": true}}})
    );
    assert!(created.data.get("topLevelJunk").is_none());
    assert!(
        created.data.get("status").is_none(),
        "status is reset on create with a status subresource"
    );
    let strict = PatchParams {
        field_validation: Some(ValidationDirective::Strict),
        ..PatchParams::apply("t")
    };
    let err = api_err(
        api.patch(
            "w2",
            &strict,
            &Patch::Apply(widget("w2", json!({"color": "red", "junk": 1}))),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(
        (err.code, err.message.as_str()),
        (400, "strict decoding error: unknown field \"spec.junk\"")
    );
}

#[tokio::test]
async fn schema_and_cel_violations_are_422_with_causes() {
    let (_sb, c) = ready_sandbox().await;
    let api = widgets(&c, "default");
    let create = |name: &str, spec: Value| {
        let api = api.clone();
        let obj: DynamicObject = serde_json::from_value(widget(name, spec)).unwrap();
        async move { api.create(&PostParams::default(), &obj).await }
    };
    let err = api_err(create("bad", json!({"color": "red"})).await.unwrap_err());
    assert_eq!(err.code, 422);
    assert_eq!(err.reason, "Invalid");
    assert_eq!(
        err.message,
        "Widget.example.com \"bad\" is invalid: <nil>: Invalid value: \"object\": widget names must start with 'w'"
    );
    let d = err.details.unwrap();
    assert_eq!(
        (d.kind.as_str(), d.group.as_str(), d.name.as_str()),
        ("Widget", GROUP, "bad")
    );
    assert_eq!(d.causes[0].reason, "FieldValueInvalid");

    let err = api_err(
        create("w1", json!({"color": "pink", "label": "UP"}))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        err.message,
        "Widget.example.com \"w1\" is invalid: [spec.color: Unsupported value: \"pink\": supported values: \"red\", \"green\", \"blue\", spec.label: Invalid value: \"UP\": spec.label in body should match '^[a-z]+$']"
    );
    let err = api_err(create("w1", json!({"size": 2})).await.unwrap_err());
    assert_eq!(
        err.message,
        "Widget.example.com \"w1\" is invalid: spec.color: Required value"
    );
    let err = api_err(
        create("w1", json!({"color": "red", "size": "big"}))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        err.message,
        "Widget.example.com \"w1\" is invalid: spec.size: Invalid value: \"string\": spec.size in body must be of type integer: \"string\""
    );

    create("w1", json!({"color": "red", "owner": "ann"}))
        .await
        .unwrap();
    let err = api_err(
        api.patch(
            "w1",
            &PatchParams::apply("t").force(),
            &Patch::Apply(widget("w1", json!({"color": "red", "owner": "bob"}))),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(
        err.message,
        "Widget.example.com \"w1\" is invalid: spec.owner: Invalid value: \"string\": owner is immutable"
    );
    // The same value passes the transition rule.
    api.patch(
        "w1",
        &PatchParams::apply("t").force(),
        &Patch::Apply(widget("w1", json!({"color": "blue", "owner": "ann"}))),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn generation_status_subresource_and_optimistic_concurrency() {
    let (_sb, c) = ready_sandbox().await;
    let api = widgets(&c, "default");
    let o = api
        .create(
            &PostParams::default(),
            &serde_json::from_value(widget("w1", json!({"color": "red"}))).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(o.metadata.generation, Some(1));
    let labeled = api
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .unwrap();
    assert_eq!(
        labeled.metadata.generation,
        Some(1),
        "metadata changes do not bump generation"
    );
    let st = api
        .patch_status(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Ready"}, "spec": {"color": "blue"}})),
        )
        .await
        .unwrap();
    assert_eq!(
        (
            st.metadata.generation,
            st.data["status"]["phase"].as_str(),
            st.data["spec"]["color"].as_str()
        ),
        (Some(1), Some("Ready"), Some("red"))
    );
    let spec = api
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"color": "green"}, "status": {"phase": "Hacked"}})),
        )
        .await
        .unwrap();
    assert_eq!(
        (
            spec.metadata.generation,
            spec.data["status"]["phase"].as_str()
        ),
        (Some(2), Some("Ready"))
    );
    // A write that changes nothing keeps the resourceVersion.
    let same = api
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"color": "green"}})),
        )
        .await
        .unwrap();
    assert_eq!(same.resource_version(), spec.resource_version());
    // Stale resourceVersion on replace: 409 Conflict.
    let mut stale = o.clone();
    stale.data["spec"]["color"] = json!("blue");
    let err = api_err(
        api.replace("w1", &PostParams::default(), &stale)
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        err.message,
        "Operation cannot be fulfilled on widgets.example.com \"w1\": the object has been modified; please apply your changes to the latest version and try again"
    );
    let mut fresh = api.get("w1").await.unwrap();
    fresh.data["spec"]["color"] = json!("blue");
    let replaced = api
        .replace("w1", &PostParams::default(), &fresh)
        .await
        .unwrap();
    assert_eq!(replaced.metadata.generation, Some(3));
    // Strategic merge patch is not supported for custom resources.
    let err = api_err(
        api.patch(
            "w1",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"color": "red"}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(err.code, 415);
}

#[tokio::test]
async fn deployments_become_available_and_garbage_collection_follows_owners() {
    let sb = Sandbox::builder()
        .deployment_available_delay(Duration::from_millis(50))
        .build();
    let c = sb.client();
    let deploys: Api<Deployment> = Api::namespaced(c.clone(), "default");
    let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}});
    let created = deploys
        .patch("web", &PatchParams::apply("t"), &Patch::Apply(d))
        .await
        .unwrap();
    let avail = |d: Option<&Deployment>| {
        d.and_then(|d| d.status.as_ref()).is_some_and(|s| {
            s.conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Available" && c.status == "True")
        })
    };
    let ready = tokio::time::timeout(
        Duration::from_secs(3),
        await_condition(deploys.clone(), "web", avail),
    )
    .await
    .unwrap()
    .unwrap()
    .unwrap();
    let status = ready.status.unwrap();
    assert_eq!(
        (
            status.observed_generation,
            status.available_replicas,
            status.ready_replicas
        ),
        (created.metadata.generation, Some(2), Some(2))
    );

    // Foreground deletion: dependents go first, the owner keeps a foregroundDeletion finalizer meanwhile.
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    let owner_ref = json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": created.uid().unwrap(), "blockOwnerDeletion": true}]);
    for n in ["dep1", "dep2"] {
        cms.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": n, "ownerReferences": owner_ref}}))
                .unwrap(),
        )
        .await
        .unwrap();
    }
    let res = deploys
        .delete("web", &DeleteParams::foreground())
        .await
        .unwrap()
        .left()
        .unwrap();
    assert!(
        res.metadata
            .finalizers
            .unwrap()
            .contains(&"foregroundDeletion".to_string())
    );
    tokio::time::timeout(
        Duration::from_secs(2),
        await_condition(
            deploys.clone(),
            "web",
            conditions::is_deleted(&created.uid().unwrap()),
        ),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(
        cms.get_opt("dep1").await.unwrap().is_none()
            && cms.get_opt("dep2").await.unwrap().is_none()
    );

    // Orphan: dependents stay, with the owner reference removed.
    let owner = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "owner"}})).unwrap(),
        )
        .await
        .unwrap();
    let oref = json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.uid().unwrap()}]);
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "child", "ownerReferences": oref}}))
            .unwrap(),
    )
    .await
    .unwrap();
    cms.delete("owner", &DeleteParams::orphan()).await.unwrap();
    tokio::time::timeout(
        Duration::from_secs(2),
        await_condition(
            cms.clone(),
            "owner",
            conditions::is_deleted(&owner.uid().unwrap()),
        ),
    )
    .await
    .unwrap()
    .unwrap();
    let child = cms.get("child").await.unwrap();
    assert!(
        child
            .metadata
            .owner_references
            .unwrap_or_default()
            .is_empty()
    );
}

#[tokio::test]
async fn background_deletion_collections_and_metadata_only_reads() {
    let sb = Sandbox::builder().build();
    let cms: Api<ConfigMap> = Api::namespaced(sb.client(), "default");
    let owner = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "owner", "labels": {"set": "x"}}}))
                .unwrap(),
        )
        .await
        .unwrap();
    let oref = json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.uid().unwrap()}]);
    let child = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": "child", "ownerReferences": oref}}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    // Background (the default): the owner goes at once, the garbage collector removes dependents.
    assert!(
        cms.delete("owner", &DeleteParams::background())
            .await
            .unwrap()
            .is_right()
    );
    tokio::time::timeout(
        Duration::from_secs(2),
        await_condition(
            cms.clone(),
            "child",
            conditions::is_deleted(&child.uid().unwrap()),
        ),
    )
    .await
    .unwrap()
    .unwrap();

    for n in ["a", "b", "c"] {
        let set = if n == "c" { "y" } else { "x" };
        cms.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": n, "labels": {"set": set}}}))
                .unwrap(),
        )
        .await
        .unwrap();
    }
    let meta = cms
        .list_metadata(&ListParams::default().labels("set=x"))
        .await
        .unwrap();
    let names: Vec<String> = meta.items.iter().map(|m| m.name_any()).collect();
    assert_eq!(names, vec!["a", "b"]);
    assert_eq!(
        cms.get_metadata("c")
            .await
            .unwrap()
            .labels()
            .get("set")
            .map(String::as_str),
        Some("y")
    );
    let deleted = cms
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("set=x"),
        )
        .await
        .unwrap();
    let gone: Vec<String> = deleted
        .left()
        .unwrap()
        .items
        .iter()
        .map(|o| o.name_any())
        .collect();
    assert_eq!(gone, vec!["a", "b"]);
    let left: Vec<String> = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|o| o.name_any())
        .collect();
    assert_eq!(left, vec!["c"]);
}

#[tokio::test]
async fn faults_errors_latency_and_discovery() {
    let sb = Sandbox::builder().build();
    let c = sb.client();
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    sb.faults().add(
        FaultRule::error(500)
            .verb("create")
            .resource("configmaps")
            .times(1),
    );
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "a"}})).unwrap();
    let err = api_err(cms.create(&PostParams::default(), &cm).await.unwrap_err());
    assert_eq!((err.code, err.reason.as_str()), (500, "InternalError"));
    cms.create(&PostParams::default(), &cm).await.unwrap();
    let statuses: Vec<u16> = sb
        .recorder()
        .matching("POST", "/configmaps")
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, vec![500, 201]);

    sb.faults().add(
        FaultRule::error(429)
            .retry_after(7)
            .verb("get")
            .name("a")
            .times(1),
    );
    let err = api_err(cms.get("a").await.unwrap_err());
    assert_eq!(
        (err.code, err.details.unwrap().retry_after_seconds),
        (429, 7)
    );

    sb.faults().set_latency(Duration::from_millis(150));
    let t0 = Instant::now();
    cms.get("a").await.unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(150));
    sb.faults().set_latency(Duration::ZERO);

    sb.faults().break_discovery_group("apps/v1");
    assert!(
        Discovery::new(c.clone()).run().await.is_err(),
        "one failing group fails legacy discovery"
    );
    sb.faults().clear();
    sb.faults().set_aggregated_discovery_unsupported(true);
    // kube 5 pitfall: a legacy answer to the aggregated request parses as zero groups.
    let d = Discovery::new(c.clone()).run_aggregated().await.unwrap();
    assert_eq!(d.groups().count(), 0);
}

#[tokio::test]
async fn requests_are_validated_like_the_apiserver() {
    let sb = Sandbox::builder().build();
    let c = sb.client();
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    let err = api_err(
        cms.patch(
            "a",
            &PatchParams::apply("t"),
            &Patch::Apply(
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}}),
            ),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(
        (err.code, err.message.as_str()),
        (
            400,
            "the name of the object (b) does not match the name on the URL (a)"
        )
    );
    let err = api_err(
        cms.patch(
            "a",
            &PatchParams::apply("t"),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "a"}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(err.code, 400);
    let err = api_err(
        cms.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "Bad_Name"}})).unwrap(),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(err.code, 422);
    assert!(
        err.message.starts_with("ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of"),
        "{}",
        err.message
    );
    let err = api_err(cms.get("missing").await.unwrap_err());
    assert!(err.is_not_found());
    assert_eq!(err.message, "configmaps \"missing\" not found");
    // JSON patch with a failing test operation.
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "a"}, "data": {"k": "v"}})).unwrap(),
    )
    .await
    .unwrap();
    let (code, body) = raw(
        &sb,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/a",
        "application/json-patch+json",
        r#"[{"op":"test","path":"/data/k","value":"other"}]"#,
    )
    .await;
    assert_eq!(code, 422, "{body}");
    let (code, body) = raw(&sb, "PATCH", "/api/v1/namespaces/default/configmaps/a", "application/json-patch+json",
        r#"[{"op":"test","path":"/data/k","value":"v"},{"op":"replace","path":"/data/k","value":"w"}]"#).await;
    assert_eq!((code, body["data"]["k"].as_str()), (200, Some("w")));
    // Unknown resource types answer the plain-text 404 of the apiserver's not-found handler.
    let (code, body) = raw(&sb, "GET", "/apis/nope.example.com/v1/things", "", "").await;
    assert_eq!((code, body), (404, json!("404 page not found\n")));
}

/// Sends a raw request through the router; the body is parsed as JSON when possible.
async fn raw(sb: &Sandbox, method: &str, path: &str, ct: &str, body: &str) -> (u16, Value) {
    use tower::ServiceExt as _;
    let mut req = axum::http::Request::builder().method(method).uri(path);
    if !ct.is_empty() {
        req = req.header("content-type", ct);
    }
    let resp = sb
        .router()
        .oneshot(req.body(axum::body::Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let code = resp.status().as_u16();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (code, v)
}
