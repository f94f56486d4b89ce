//! Transient API failures against the in-process kube-sandbox (whose client has no retry layer
//! of its own, so every retry here is the provider's): one 500 or 409 on the server-side apply,
//! one 500 on a get, list or discovery, a connection reset (in-process: a 500) and a 429 with
//! `Retry-After` are retried and the operation succeeds; a request the server keeps failing is
//! retried a bounded number of times and reported; a rejection (422) is never retried.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use kube::api::{DynamicObject, PropagationPolicy};
use kube_sandbox::{FaultAction, FaultRule, Sandbox};
use serde_json::json;
use terraform_provider_flux::cluster::apply::Deletion;
use terraform_provider_flux::cluster::objects::{Cluster, ObjectRef};
/// Attempts of a request the server keeps failing: the first and `cluster::retry::MAX_RETRIES` (4)
/// retries.
const ATTEMPTS: usize = 5;

fn config_map(name: &str) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"},
        "data": {"k": "v"},
    }))
    .expect("valid object")
}

fn reference(name: &str) -> ObjectRef {
    ObjectRef::new("v1", "ConfigMap", Some("default"), name)
}

/// Requests of `verb` the sandbox answered, by status.
fn statuses(sandbox: &Sandbox, verb: &str) -> Vec<u16> {
    sandbox
        .recorder()
        .requests()
        .iter()
        .filter(|r| r.verb == verb)
        .map(|r| r.status)
        .collect()
}

#[tokio::test]
async fn single_transient_failures_are_retried() {
    let sandbox = Sandbox::builder().build();
    let cluster = Cluster::new(sandbox.client());
    let cases: Vec<(&str, FaultRule)> = vec![
        (
            "500 on the apply PATCH",
            FaultRule::error(500).verb("patch"),
        ),
        (
            "409 on the apply PATCH",
            FaultRule::error(409).verb("patch"),
        ),
        (
            "connection reset on the apply PATCH",
            FaultRule::new(FaultAction::ResetConnection).verb("patch"),
        ),
        (
            "429 with Retry-After on the apply PATCH",
            FaultRule::error(429).verb("patch").retry_after(1),
        ),
        (
            "503 on the apply PATCH",
            FaultRule::error(503).verb("patch"),
        ),
    ];
    for (i, (name, rule)) in cases.into_iter().enumerate() {
        let object = config_map(&format!("apply-{i}"));
        sandbox.recorder().clear();
        sandbox.faults().add(rule.resource("configmaps").times(1));
        let started = Instant::now();
        let applied = cluster.apply(&object).await;
        assert!(applied.is_ok(), "{name}: {applied:?}");
        let patches = statuses(&sandbox, "patch");
        assert_eq!(
            patches.len(),
            2,
            "{name}: one failure, one retry: {patches:?}"
        );
        // A reset is recorded without a status (0).
        assert!(
            (patches[0] == 0 || patches[0] >= 400) && patches[1] < 300,
            "{name}: {patches:?}"
        );
        if name.contains("Retry-After") {
            assert!(
                started.elapsed() >= Duration::from_secs(1),
                "{name}: Retry-After honoured"
            );
        }
    }

    // Reads: get, list and discovery.
    let reads: Vec<(&str, &str)> = vec![("get", "get"), ("list", "list")];
    for (name, verb) in reads {
        sandbox.recorder().clear();
        sandbox.faults().add(
            FaultRule::error(500)
                .verb(verb)
                .resource("configmaps")
                .times(1),
        );
        match verb {
            "get" => {
                let found = cluster.get(&reference("apply-0")).await;
                assert!(matches!(found, Ok(Some(_))), "{name}: {found:?}");
            }
            _ => {
                let listed = cluster.list("v1", "ConfigMap", Some("default"), "").await;
                assert!(listed.is_ok_and(|l| l.len() >= 5), "{name}");
            }
        }
        assert_eq!(statuses(&sandbox, verb), vec![500, 200], "{name}");
    }
    let fresh = Cluster::new(sandbox.client());
    sandbox.recorder().clear();
    sandbox
        .faults()
        .add(FaultRule::error(500).verb("discovery").times(1));
    assert!(fresh.get(&reference("apply-0")).await.unwrap().is_some());

    // Delete: a 500, then the retry deletes it.
    sandbox.recorder().clear();
    sandbox.faults().add(
        FaultRule::error(500)
            .verb("delete")
            .resource("configmaps")
            .times(1),
    );
    let deleted = cluster
        .delete(&reference("apply-1"), PropagationPolicy::Background)
        .await;
    assert!(matches!(deleted, Ok(Deletion::Gone)), "{deleted:?}");
    assert_eq!(statuses(&sandbox, "delete"), vec![500, 200]);
}

#[tokio::test]
async fn persistent_failures_are_bounded_and_rejections_are_not_retried() {
    let sandbox = Sandbox::builder().build();
    let cluster = Cluster::new(sandbox.client());
    sandbox
        .faults()
        .add(FaultRule::error(500).verb("patch").resource("configmaps"));
    let started = Instant::now();
    let error = cluster.apply(&config_map("down")).await.unwrap_err();
    assert_eq!(statuses(&sandbox, "patch").len(), ATTEMPTS, "bounded");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(error.status().map(|s| s.code), Some(500));
    sandbox.faults().clear();

    sandbox.recorder().clear();
    sandbox
        .faults()
        .add(FaultRule::error(422).verb("patch").resource("configmaps"));
    assert!(cluster.apply(&config_map("invalid")).await.is_err());
    assert_eq!(
        statuses(&sandbox, "patch"),
        vec![422],
        "a rejection is final"
    );
}
