//! `Cluster::get_shared` / `health_shared` against the in-process kube-sandbox: the first reads of
//! a kind and namespace are GETs, the rest share one LIST; the answers are the same objects a GET
//! returns; a write through the handle, or a new handle (the next Terraform operation), never
//! sees a stale LIST; a refused LIST falls back to GETs.

#![allow(clippy::expect_used)] // Test helpers panic on setup failures.

use kube::api::DynamicObject;
use kube_sandbox::{FaultRule, Sandbox};
use serde_json::{Value, json};
use terraform_provider_flux::cluster::objects::{Cluster, ObjectRef};
use terraform_provider_flux::cluster::shared::SINGLE_READS;

fn object(value: Value) -> DynamicObject {
    serde_json::from_value(value).expect("valid object")
}

fn config_map(name: &str, value: &str) -> DynamicObject {
    object(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"},
        "data": {"value": value}
    }))
}

fn cm_ref(name: &str) -> ObjectRef {
    ObjectRef::new("v1", "ConfigMap", Some("default"), name)
}

/// (GETs, LISTs) of ConfigMaps in the recorder.
fn config_map_reads(sandbox: &Sandbox) -> (usize, usize) {
    let requests = sandbox.recorder().requests();
    let count = |verb: &str| {
        requests
            .iter()
            .filter(|r| r.verb == verb && r.path.contains("/configmaps"))
            .count()
    };
    (count("get"), count("list"))
}

async fn with_config_maps(n: usize) -> (Sandbox, Cluster) {
    let sandbox = Sandbox::builder().build();
    let setup = Cluster::new(sandbox.client());
    for i in 0..n {
        setup
            .apply(&config_map(&format!("cm-{i}"), "1"))
            .await
            .expect("applied");
    }
    sandbox.recorder().clear();
    let cluster = Cluster::new(sandbox.client());
    (sandbox, cluster)
}

/// The object without what differs between two reads of an unchanged object: nothing.
fn same(a: &DynamicObject, b: &DynamicObject) -> bool {
    serde_json::to_value(a).expect("json") == serde_json::to_value(b).expect("json")
}

#[tokio::test]
async fn later_reads_share_one_list_and_answer_what_a_get_answers() {
    let (sandbox, cluster) = with_config_maps(12).await;
    let mut shared = Vec::new();
    for i in 0..12 {
        shared.push(
            cluster
                .get_shared(&cm_ref(&format!("cm-{i}")))
                .await
                .expect("read")
                .expect("exists"),
        );
    }
    assert_eq!(
        config_map_reads(&sandbox),
        (SINGLE_READS as usize, 1),
        "the first reads are GETs, the rest share one LIST"
    );
    assert_eq!(cluster.shared_lists(), 1);
    let fresh = Cluster::new(sandbox.client());
    for (i, from_shared) in shared.iter().enumerate() {
        let got = fresh
            .get(&cm_ref(&format!("cm-{i}")))
            .await
            .expect("read")
            .expect("exists");
        assert!(
            same(from_shared, &got),
            "cm-{i}: shared {from_shared:?} != GET {got:?}"
        );
    }
    // An object absent from the LIST is absent, without another request.
    sandbox.recorder().clear();
    assert!(
        cluster
            .get_shared(&cm_ref("nope"))
            .await
            .expect("read")
            .is_none()
    );
    assert_eq!(config_map_reads(&sandbox), (0, 0));
}

#[tokio::test]
async fn concurrent_reads_wait_for_the_same_list() {
    let (sandbox, cluster) = with_config_maps(30).await;
    let reads = (0..30).map(|i| {
        let cluster = cluster.clone();
        async move { cluster.get_shared(&cm_ref(&format!("cm-{i}"))).await }
    });
    let results = futures::future::join_all(reads).await;
    for (i, result) in results.into_iter().enumerate() {
        let found = result.expect("read").expect("exists");
        assert_eq!(
            found.metadata.name.as_deref(),
            Some(format!("cm-{i}").as_str())
        );
        assert_eq!(found.data["data"]["value"], "1");
    }
    let (gets, lists) = config_map_reads(&sandbox);
    assert_eq!((gets, lists), (SINGLE_READS as usize, 1));
}

#[tokio::test]
async fn a_new_handle_sees_every_change_made_after_the_last_list() {
    let (sandbox, cluster) = with_config_maps(6).await;
    for i in 0..6 {
        cluster
            .get_shared(&cm_ref(&format!("cm-{i}")))
            .await
            .expect("read");
    }
    // Another client (Flux, a person with kubectl) changes one object and deletes another.
    let other = Cluster::new(sandbox.client());
    other
        .apply(&config_map("cm-4", "changed"))
        .await
        .expect("applied");
    other
        .delete(&cm_ref("cm-5"), kube::api::PropagationPolicy::Background)
        .await
        .expect("deleted");
    // The next operation configures a new handle: it sees both changes.
    let next = Cluster::new(sandbox.client());
    let mut seen = Vec::new();
    for i in 0..6 {
        seen.push(
            next.get_shared(&cm_ref(&format!("cm-{i}")))
                .await
                .expect("read")
                .map(|o| o.data["data"]["value"].clone()),
        );
    }
    assert_eq!(
        seen,
        vec![
            Some(json!("1")),
            Some(json!("1")),
            Some(json!("1")),
            Some(json!("1")),
            Some(json!("changed")),
            None
        ]
    );
}

#[tokio::test]
async fn a_write_through_the_handle_drops_its_shared_lists() {
    let (_sandbox, cluster) = with_config_maps(6).await;
    for i in 0..6 {
        cluster
            .get_shared(&cm_ref(&format!("cm-{i}")))
            .await
            .expect("read");
    }
    assert_eq!(cluster.shared_lists(), 1);
    cluster
        .apply(&config_map("cm-5", "mine"))
        .await
        .expect("applied");
    assert_eq!(cluster.shared_lists(), 0, "the write dropped the LIST");
    let mut values = Vec::new();
    for i in 0..6 {
        let found = cluster
            .get_shared(&cm_ref(&format!("cm-{i}")))
            .await
            .expect("read")
            .expect("exists");
        values.push(found.data["data"]["value"].clone());
    }
    assert_eq!(values[5], json!("mine"), "reads its own write");
}

#[tokio::test]
async fn a_refused_list_falls_back_to_gets() {
    let (sandbox, cluster) = with_config_maps(6).await;
    sandbox
        .faults()
        .add(FaultRule::error(403).verb("list").resource("configmaps"));
    for i in 0..6 {
        let found = cluster
            .get_shared(&cm_ref(&format!("cm-{i}")))
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(
            found.metadata.name.as_deref(),
            Some(format!("cm-{i}").as_str())
        );
    }
    let (gets, lists) = config_map_reads(&sandbox);
    assert_eq!(lists, 1, "one LIST tried");
    assert_eq!(gets, 6, "every read answered with a GET");
}

#[tokio::test]
async fn shared_health_reports_what_health_reports() {
    let (sandbox, cluster) = with_config_maps(8).await;
    let mut refs: Vec<ObjectRef> = (0..8).map(|i| cm_ref(&format!("cm-{i}"))).collect();
    refs.push(cm_ref("missing"));
    refs.push(ObjectRef::new(
        "example.com/v1",
        "Widget",
        Some("default"),
        "w",
    ));
    let live = Cluster::new(sandbox.client())
        .health(&refs)
        .await
        .expect("checked");
    // One resource refreshing each object, as Terraform's refreshes of N resources do.
    let mut missing = Vec::new();
    for r in &refs {
        let report = cluster
            .health_shared(std::slice::from_ref(r))
            .await
            .expect("checked");
        missing.extend(report.missing);
        assert!(report.unhealthy.is_empty());
    }
    assert_eq!(missing, live.missing);
    assert_eq!(
        missing,
        vec![
            cm_ref("missing"),
            ObjectRef::new("example.com/v1", "Widget", Some("default"), "w")
        ]
    );
}
