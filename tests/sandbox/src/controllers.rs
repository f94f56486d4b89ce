//! Built-in controllers, generic Kubernetes behaviour only (no Flux knowledge):
//! CRD establishment after a delay and CRD instance cleanup on deletion, namespace termination
//! (deletes the content, then the namespace), garbage collection by `ownerReferences`
//! (Background, Foreground, Orphan) and the deployment status controller (Deployments become
//! `Available` after a delay, as kube-controller-manager plus kubelets would make them).
//!
//! They consume the store's event stream and write through the same pipeline as clients, under
//! their own field managers. Depends on `store`, `builtins` and `faults`.

use crate::store::{EventType, Inner, StoreEvent};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::mpsc;

const CRD_GR: (&str, &str) = ("apiextensions.k8s.io", "customresourcedefinitions");
const APISERVER: &str = "kube-apiserver";
const KCM: &str = "kube-controller-manager";

fn s<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or("")
}

fn deleting(v: &Value) -> bool {
    v.pointer("/metadata/deletionTimestamp")
        .is_some_and(|x| !x.is_null())
}

fn has_finalizer(v: &Value, f: &str) -> bool {
    v.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|x| x == f))
}

fn remove_finalizer(o: &mut Value, f: &str) -> bool {
    match o.pointer_mut("/metadata/finalizers") {
        Some(Value::Array(a)) => {
            let before = a.len();
            a.retain(|x| x != f);
            before != a.len()
        }
        _ => false,
    }
}

/// Runs the controllers until the sandbox is dropped.
pub(crate) fn spawn(
    inner: Weak<Inner>,
    mut rx: mpsc::UnboundedReceiver<Arc<StoreEvent>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut scheduled: HashSet<String> = HashSet::new();
        while let Some(ev) = rx.recv().await {
            let Some(inner) = inner.upgrade() else { return };
            on_event(&inner, &ev, &mut scheduled);
        }
    })
}

fn on_event(inner: &Arc<Inner>, ev: &StoreEvent, scheduled: &mut HashSet<String>) {
    let obj = &ev.object;
    let gr = (ev.gr.0.as_str(), ev.gr.1.as_str());
    if gr == CRD_GR {
        let name = s(obj, "/metadata/name").to_string();
        if ev.kind != EventType::Deleted && !deleting(obj) && !crate::builtins::crd_established(obj)
        {
            let key = format!("crd/{}", s(obj, "/metadata/uid"));
            if scheduled.insert(key) {
                let weak = Arc::downgrade(inner);
                let delay = inner.config.crd_established_delay;
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    if let Some(inner) = weak.upgrade()
                        && let Some(rt) = inner.builtin("customresourcedefinitions")
                    {
                        let _ = inner.mutate(
                            &rt,
                            "",
                            &name,
                            Some("status"),
                            APISERVER,
                            crate::builtins::establish,
                        );
                    }
                });
            }
        }
        if ev.kind != EventType::Deleted && deleting(obj) {
            crd_cleanup(inner, s(obj, "/metadata/name"));
        }
    }
    if gr == ("", "namespaces") && ev.kind != EventType::Deleted && deleting(obj) {
        ns_cleanup(inner, s(obj, "/metadata/name"));
    }
    if gr == ("apps", "deployments") && ev.kind != EventType::Deleted && !deleting(obj) {
        deployment_status(inner, obj, scheduled);
    }
    // Owner-side garbage collection.
    if ev.kind != EventType::Deleted
        && deleting(obj)
        && (has_finalizer(obj, "foregroundDeletion") || has_finalizer(obj, "orphan"))
    {
        owner_finalizers(inner, &ev.gr, obj);
    }
    if ev.kind == EventType::Deleted {
        let uid = s(obj, "/metadata/uid").to_string();
        if !uid.is_empty() {
            for (dgr, d) in dependents(inner, &uid) {
                if let Some(rt) = inner.type_of(&dgr)
                    && !deleting(&d)
                {
                    inner.delete_internal(
                        &rt,
                        s(&d, "/metadata/namespace"),
                        s(&d, "/metadata/name"),
                        None,
                    );
                }
            }
        }
        // A dependent went away: re-check owners waiting in foreground deletion.
        if let Some(refs) = obj
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
        {
            for r in refs {
                if let Some(ouid) = r.get("uid").and_then(Value::as_str)
                    && let Some((ogr, owner)) = find_uid(inner, ouid)
                    && deleting(&owner)
                {
                    owner_finalizers(inner, &ogr, &owner);
                }
            }
        }
    }
    // Content of terminating namespaces and CRDs.
    if ev.kind == EventType::Deleted || deleting(obj) {
        let ns = s(obj, "/metadata/namespace");
        if !ns.is_empty()
            && let Some(nrt) = inner.builtin("namespaces")
            && inner.read(&nrt, "", ns).is_some_and(|n| deleting(&n))
        {
            ns_cleanup(inner, ns);
        }
        if ev.kind == EventType::Deleted && gr != CRD_GR {
            let crd_name = format!("{}.{}", ev.gr.1, ev.gr.0);
            if let Some(crt) = inner.builtin("customresourcedefinitions")
                && inner
                    .read(&crt, "", &crd_name)
                    .is_some_and(|c| deleting(&c))
            {
                crd_cleanup(inner, &crd_name);
            }
        }
    }
}

fn find_uid(inner: &Inner, uid: &str) -> Option<((String, String), Value)> {
    inner
        .objects_where(|o| s(o, "/metadata/uid") == uid)
        .into_iter()
        .next()
}

fn dependents(inner: &Inner, uid: &str) -> Vec<((String, String), Value)> {
    inner.objects_where(|o| {
        o.pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .is_some_and(|a| {
                a.iter()
                    .any(|r| r.get("uid").and_then(Value::as_str) == Some(uid))
            })
    })
}

fn owner_finalizers(inner: &Arc<Inner>, gr: &(String, String), owner: &Value) {
    let Some(rt) = inner.type_of(gr) else { return };
    let uid = s(owner, "/metadata/uid").to_string();
    let (ns, name) = (
        s(owner, "/metadata/namespace").to_string(),
        s(owner, "/metadata/name").to_string(),
    );
    let deps = dependents(inner, &uid);
    if has_finalizer(owner, "orphan") {
        for (dgr, d) in &deps {
            if let Some(drt) = inner.type_of(dgr) {
                let _ = inner.mutate(
                    &drt,
                    s(d, "/metadata/namespace"),
                    s(d, "/metadata/name"),
                    None,
                    "kube-controller-manager",
                    |o| {
                        if let Some(Value::Array(refs)) = o.pointer_mut("/metadata/ownerReferences")
                        {
                            refs.retain(|r| r["uid"] != json!(uid));
                        }
                        true
                    },
                );
            }
        }
        let _ = inner.mutate(&rt, &ns, &name, None, KCM, |o| {
            remove_finalizer(o, "orphan")
        });
        return;
    }
    if has_finalizer(owner, "foregroundDeletion") {
        if deps.is_empty() {
            let _ = inner.mutate(&rt, &ns, &name, None, KCM, |o| {
                remove_finalizer(o, "foregroundDeletion")
            });
        } else {
            for (dgr, d) in deps {
                if let Some(drt) = inner.type_of(&dgr)
                    && !deleting(&d)
                {
                    inner.delete_internal(
                        &drt,
                        s(&d, "/metadata/namespace"),
                        s(&d, "/metadata/name"),
                        Some("Foreground"),
                    );
                }
            }
        }
    }
}

fn crd_cleanup(inner: &Arc<Inner>, crd_name: &str) {
    let types = inner.crd_types(crd_name);
    let Some(t) = types
        .iter()
        .find(|t| t.version == t.storage_version)
        .or(types.first())
        .cloned()
    else {
        return;
    };
    let remaining = inner.read_all(&t);
    for o in &remaining {
        if !deleting(o) {
            inner.delete_internal(
                &t,
                s(o, "/metadata/namespace"),
                s(o, "/metadata/name"),
                None,
            );
        }
    }
    if inner.read_all(&t).is_empty()
        && let Some(crt) = inner.builtin("customresourcedefinitions")
    {
        let _ = inner.mutate(&crt, "", crd_name, None, APISERVER, |o| {
            remove_finalizer(o, "customresourcecleanup.apiextensions.k8s.io")
        });
    }
}

fn ns_cleanup(inner: &Arc<Inner>, ns: &str) {
    let content: Vec<((String, String), Value)> = inner.all_objects(Some(ns));
    for (gr, o) in &content {
        if !deleting(o)
            && let Some(rt) = inner.type_of(gr)
        {
            inner.delete_internal(&rt, ns, s(o, "/metadata/name"), None);
        }
    }
    if inner.all_objects(Some(ns)).is_empty()
        && let Some(nrt) = inner.builtin("namespaces")
    {
        let _ = inner.mutate(&nrt, "", ns, None, KCM, |o| {
            if o.pointer("/spec/finalizers")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty())
            {
                o["spec"]["finalizers"] = json!([]);
                true
            } else {
                false
            }
        });
    }
}

fn deployment_available(d: &Value) -> bool {
    let generation = d.pointer("/metadata/generation").and_then(Value::as_i64);
    let observed = d
        .pointer("/status/observedGeneration")
        .and_then(Value::as_i64);
    generation == observed
        && d.pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Available" && c["status"] == "True")
            })
}

fn deployment_status(inner: &Arc<Inner>, d: &Value, scheduled: &mut HashSet<String>) {
    if deployment_available(d) {
        return;
    }
    let key = format!(
        "deploy/{}/{}",
        s(d, "/metadata/uid"),
        d.pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0)
    );
    if !scheduled.insert(key) {
        return;
    }
    let weak = Arc::downgrade(inner);
    let delay = inner.config.deployment_available_delay;
    let (ns, name) = (
        s(d, "/metadata/namespace").to_string(),
        s(d, "/metadata/name").to_string(),
    );
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        loop {
            let Some(inner) = weak.upgrade() else { return };
            if !inner.faults.deployment_stuck(&ns, &name) {
                if let Some(rt) = inner.builtin("deployments") {
                    let _ = inner.mutate(&rt, &ns, &name, Some("status"), KCM, set_available);
                }
                return;
            }
            drop(inner);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}

fn set_available(d: &mut Value) -> bool {
    if deployment_available(d) || deleting(d) {
        return false;
    }
    let now = crate::store::now();
    let replicas = d
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let generation = d
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let name = s(d, "/metadata/name").to_string();
    let hash = {
        use sha2::Digest as _;
        let h = sha2::Sha256::digest(
            d.pointer("/spec/template")
                .map(Value::to_string)
                .unwrap_or_default()
                .as_bytes(),
        );
        hex::encode(&h[..5])
    };
    let mut status = json!({"observedGeneration": generation, "conditions": [
        {"type": "Available", "status": "True", "lastUpdateTime": now, "lastTransitionTime": now,
         "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability."},
        {"type": "Progressing", "status": "True", "lastUpdateTime": now, "lastTransitionTime": now,
         "reason": "NewReplicaSetAvailable", "message": format!("ReplicaSet \"{name}-{hash}\" has successfully progressed.")}]});
    if replicas > 0 {
        for f in [
            "replicas",
            "updatedReplicas",
            "readyReplicas",
            "availableReplicas",
        ] {
            status[f] = json!(replicas);
        }
    }
    d["status"] = status;
    true
}
