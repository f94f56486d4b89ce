//! Kubernetes access for the simulator, through `kube::Client` only (so every write goes through
//! the sandbox's HTTP pipeline like a real client's): dynamic server-side apply, get, delete,
//! status and finalizer patches, and watch-based waits.
//!
//! Knows nothing of FluxInstance or ResourceSet semantics.

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PropagationPolicy};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiCapabilities, ApiResource, Scope, pinned_kind};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use super::inventory::{ObjectRef, split_api_version};

/// Errors of the simulator's API calls, named after the call that failed.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The kind is not served (CRD missing or not Established).
    #[error("discover {api_version} {kind}: {source}")]
    Discover {
        /// apiVersion looked up.
        api_version: String,
        /// Kind looked up.
        kind: String,
        /// Cause.
        source: kube::Error,
    },
    /// An object is not a Kubernetes object.
    #[error("object has no apiVersion, kind or metadata.name")]
    NotAnObject,
    /// Server-side apply failed.
    #[error("apply {id}: {source}")]
    Apply {
        /// Inventory id of the object.
        id: String,
        /// Cause.
        source: kube::Error,
    },
    /// A read failed.
    #[error("get {id}: {source}")]
    Get {
        /// Inventory id of the object.
        id: String,
        /// Cause.
        source: kube::Error,
    },
    /// A delete failed.
    #[error("delete {id}: {source}")]
    Delete {
        /// Inventory id of the object.
        id: String,
        /// Cause.
        source: kube::Error,
    },
    /// A patch failed.
    #[error("patch {id}: {source}")]
    Patch {
        /// Inventory id of the object.
        id: String,
        /// Cause.
        source: kube::Error,
    },
    /// A list failed.
    #[error("list {what}: {source}")]
    List {
        /// What was listed.
        what: String,
        /// Cause.
        source: kube::Error,
    },
    /// A wait did not finish in time.
    #[error("timeout waiting for {0}")]
    Timeout(String),
    /// A watch used by a wait failed.
    #[error("wait for {what}: {source}")]
    Wait {
        /// What was waited for.
        what: String,
        /// Cause.
        source: kube::runtime::wait::Error,
    },
}

/// A `kube::Client` with the field manager the simulator writes as.
#[derive(Clone)]
pub struct Kube {
    client: Client,
    manager: String,
}

fn is_not_found(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => s.code == 404,
        _ => false,
    }
}

impl Kube {
    /// Wraps a client; writes use `manager` as field manager.
    pub fn new(client: Client, manager: &str) -> Self {
        Self {
            client,
            manager: manager.to_string(),
        }
    }

    /// The underlying client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Discovers the resource of an apiVersion and kind.
    pub async fn resource(
        &self,
        api_version: &str,
        kind: &str,
    ) -> Result<(ApiResource, ApiCapabilities), OpsError> {
        let (group, version) = split_api_version(api_version);
        let gvk = GroupVersionKind::gvk(group, version, kind);
        pinned_kind(&self.client, &gvk)
            .await
            .map_err(|source| OpsError::Discover {
                api_version: api_version.to_string(),
                kind: kind.to_string(),
                source,
            })
    }

    fn api(&self, ar: &ApiResource, caps: &ApiCapabilities, namespace: &str) -> Api<DynamicObject> {
        match caps.scope {
            Scope::Cluster => Api::all_with(self.client.clone(), ar),
            Scope::Namespaced => Api::namespaced_with(self.client.clone(), namespace, ar),
        }
    }

    /// Server-side applies an object (force) and returns the server's answer. A namespaced object
    /// without a namespace is applied to `default_namespace`; a cluster-scoped object loses any
    /// namespace.
    pub async fn apply(&self, obj: &Value, default_namespace: &str) -> Result<Value, OpsError> {
        let mut r = ObjectRef::of(obj).map_err(|_| OpsError::NotAnObject)?;
        let (ar, caps) = self.resource(&r.api_version(), &r.kind).await?;
        let mut body = obj.clone();
        match caps.scope {
            Scope::Namespaced if r.namespace.is_empty() => {
                r.namespace = default_namespace.to_string();
                body["metadata"]["namespace"] = Value::String(r.namespace.clone());
            }
            Scope::Cluster => {
                r.namespace.clear();
                if let Some(m) = body["metadata"].as_object_mut() {
                    m.remove("namespace");
                }
            }
            Scope::Namespaced => {}
        }
        let api = self.api(&ar, &caps, &r.namespace);
        let pp = PatchParams::apply(&self.manager).force();
        let out = api
            .patch(&r.name, &pp, &Patch::Apply(&body))
            .await
            .map_err(|source| OpsError::Apply { id: r.id(), source })?;
        serde_json::to_value(out).map_err(|_| OpsError::NotAnObject)
    }

    /// Reads an object; `None` when it (or its kind) does not exist.
    pub async fn get(&self, r: &ObjectRef) -> Result<Option<Value>, OpsError> {
        let (ar, caps) = match self.resource(&r.api_version(), &r.kind).await {
            Ok(x) => x,
            Err(OpsError::Discover { source, .. })
                if is_not_found(&source) || matches!(source, kube::Error::Discovery(_)) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let api = self.api(&ar, &caps, &r.namespace);
        match api.get_opt(&r.name).await {
            Ok(o) => Ok(o.and_then(|o| serde_json::to_value(o).ok())),
            Err(source) if is_not_found(&source) => Ok(None),
            Err(source) => Err(OpsError::Get { id: r.id(), source }),
        }
    }

    /// Deletes an object with background propagation; `false` when it was already gone.
    pub async fn delete(&self, r: &ObjectRef) -> Result<bool, OpsError> {
        let (ar, caps) = match self.resource(&r.api_version(), &r.kind).await {
            Ok(x) => x,
            Err(OpsError::Discover { .. }) => return Ok(false),
            Err(e) => return Err(e),
        };
        let api = self.api(&ar, &caps, &r.namespace);
        let dp = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..Default::default()
        };
        match api.delete(&r.name, &dp).await {
            Ok(_) => Ok(true),
            Err(source) if is_not_found(&source) => Ok(false),
            Err(source) => Err(OpsError::Delete { id: r.id(), source }),
        }
    }

    /// JSON merge patch of an object (or of its status subresource) as the simulator's manager.
    pub async fn merge_patch(
        &self,
        r: &ObjectRef,
        patch: &Value,
        status: bool,
    ) -> Result<Value, OpsError> {
        let (ar, caps) = self.resource(&r.api_version(), &r.kind).await?;
        let api = self.api(&ar, &caps, &r.namespace);
        let pp = PatchParams {
            field_manager: Some(self.manager.clone()),
            ..Default::default()
        };
        let res = if status {
            api.patch_status(&r.name, &pp, &Patch::Merge(patch)).await
        } else {
            api.patch(&r.name, &pp, &Patch::Merge(patch)).await
        };
        let out = res.map_err(|source| OpsError::Patch { id: r.id(), source })?;
        serde_json::to_value(out).map_err(|_| OpsError::NotAnObject)
    }

    /// Sets `metadata.finalizers` with the object's resourceVersion as precondition (a
    /// concurrent change gives a 409 and the caller retries).
    pub async fn set_finalizers(
        &self,
        r: &ObjectRef,
        resource_version: &str,
        finalizers: &[String],
    ) -> Result<Value, OpsError> {
        let patch =
            json!({"metadata": {"finalizers": finalizers, "resourceVersion": resource_version}});
        self.merge_patch(r, &patch, false).await
    }

    /// Lists objects of a kind in all namespaces (or cluster-wide).
    pub async fn list_all(&self, api_version: &str, kind: &str) -> Result<Vec<Value>, OpsError> {
        let (ar, _) = match self.resource(api_version, kind).await {
            Ok(x) => x,
            Err(OpsError::Discover { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &ar);
        let list = api
            .list(&Default::default())
            .await
            .map_err(|source| OpsError::List {
                what: format!("{api_version} {kind}"),
                source,
            })?;
        Ok(list
            .items
            .into_iter()
            .filter_map(|o| serde_json::to_value(o).ok())
            .collect())
    }

    /// Waits (watch-based) until a CRD is Established.
    pub async fn wait_crd_established(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<(), OpsError> {
        let api: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        let what = format!("CustomResourceDefinition {name} to be Established");
        tokio::time::timeout(
            timeout,
            await_condition(api, name, conditions::is_crd_established()),
        )
        .await
        .map_err(|_| OpsError::Timeout(what.clone()))?
        .map_err(|source| OpsError::Wait { what, source })?;
        Ok(())
    }

    /// Waits (watch-based) until an object is gone (or replaced by one with another uid).
    pub async fn wait_deleted(&self, r: &ObjectRef, timeout: Duration) -> Result<(), OpsError> {
        let Some(obj) = self.get(r).await? else {
            return Ok(());
        };
        let uid = obj["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let (ar, caps) = self.resource(&r.api_version(), &r.kind).await?;
        let api = self.api(&ar, &caps, &r.namespace);
        let what = format!("{} to be deleted", r.id());
        tokio::time::timeout(
            timeout,
            await_condition(api, &r.name, conditions::is_deleted(&uid)),
        )
        .await
        .map_err(|_| OpsError::Timeout(what.clone()))?
        .map_err(|source| OpsError::Wait { what, source })?;
        Ok(())
    }

    /// Waits (watch-based) until `ready` holds for an object, returning the object.
    pub async fn wait_for(
        &self,
        r: &ObjectRef,
        timeout: Duration,
        ready: fn(&Value) -> bool,
    ) -> Result<Value, OpsError> {
        let (ar, caps) = self.resource(&r.api_version(), &r.kind).await?;
        let api = self.api(&ar, &caps, &r.namespace);
        let what = format!("{} to become ready", r.id());
        // List items of built-in kinds come without apiVersion/kind: set them from the ref.
        let (api_version, kind) = (r.api_version(), r.kind.clone());
        let typed = move |o: &DynamicObject| {
            serde_json::to_value(o).ok().map(|mut v| {
                v["apiVersion"] = Value::String(api_version.clone());
                v["kind"] = Value::String(kind.clone());
                v
            })
        };
        let typed2 = typed.clone();
        let cond = move |o: Option<&DynamicObject>| o.and_then(&typed).is_some_and(|v| ready(&v));
        let got = tokio::time::timeout(timeout, await_condition(api, &r.name, cond))
            .await
            .map_err(|_| OpsError::Timeout(what.clone()))?
            .map_err(|source| OpsError::Wait {
                what: what.clone(),
                source,
            })?;
        got.as_ref().and_then(typed2).ok_or(OpsError::Timeout(what))
    }
}

/// Reads a condition of an object's status by type.
pub fn condition<'a>(obj: &'a Value, type_: &str) -> Option<&'a Value> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

/// kstatus "current" for an object the simulator applied (the operator waits for every applied
/// object to be current): not being deleted; a Deployment when Available for its current
/// generation; a CRD when Established; otherwise `status.observedGeneration` (when present)
/// must match the generation and neither `Reconciling` nor `Stalled` may be True. An object
/// with a `Ready` condition must have it True (for the current generation when it says which).
/// The operator's own kinds follow its `HealthCheckExpr`. A Flux controller object
/// (`*.toolkit.fluxcd.io`) must have `Ready=True`: kstatus would count one without any
/// status as current until its controller writes one; the simulator always waits for the
/// controller's verdict, so a source that cannot become ready deterministically fails the wait.
pub fn is_healthy(obj: &Value) -> bool {
    if is_deleting(obj) {
        return false;
    }
    let generation = obj["metadata"]["generation"].as_i64();
    if obj["kind"] == "Deployment" && obj["apiVersion"] == "apps/v1" {
        let observed = obj["status"]["observedGeneration"].as_i64();
        let available = condition(obj, "Available").is_some_and(|c| c["status"] == "True");
        return available && observed >= generation;
    }
    // kstatus: a PersistentVolumeClaim is current once Bound (the `storage` profile's claim
    // keeps an instance from Ready on a cluster that provisions no volume).
    if obj["kind"] == "PersistentVolumeClaim" && obj["apiVersion"] == "v1" {
        return obj["status"]["phase"] == "Bound";
    }
    let is_true = |t: &str| condition(obj, t).is_some_and(|c| c["status"] == "True");
    if obj["kind"] == "CustomResourceDefinition" {
        return is_true("Established");
    }
    if let Some(observed) = obj["status"]["observedGeneration"].as_i64()
        && Some(observed) != generation
    {
        return false;
    }
    if is_true("Reconciling") || is_true("Stalled") {
        return false;
    }
    let group = obj["apiVersion"]
        .as_str()
        .and_then(|a| a.rsplit_once('/'))
        .map_or("", |(g, _)| g);
    if group == "fluxcd.controlplane.io" {
        // The operator's own kinds: its custom health check `HealthCheckExpr` (every Ready
        // condition True for the current generation; none at all counts as current).
        return obj["status"]["conditions"].as_array().is_none_or(|cs| {
            cs.iter()
                .filter(|c| c["type"] == "Ready")
                .all(|c| c["status"] == "True" && c["observedGeneration"].as_i64() == generation)
        });
    }
    let flux = group.ends_with(".toolkit.fluxcd.io");
    match condition(obj, "Ready") {
        Some(c) => {
            c["status"] == "True"
                && c["observedGeneration"]
                    .as_i64()
                    .is_none_or(|og| Some(og) >= generation)
        }
        None => !flux,
    }
}

/// Whether an object is being deleted.
pub fn is_deleting(obj: &Value) -> bool {
    obj["metadata"]["deletionTimestamp"].is_string()
}

/// Finalizers of an object.
pub fn finalizers(obj: &Value) -> Vec<String> {
    obj["metadata"]["finalizers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Annotation value of an object.
pub fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj["metadata"]["annotations"][key].as_str()
}

/// Name of a dynamic object (helper for the controllers' store lookups).
pub fn name_of(o: &DynamicObject) -> String {
    o.name_any()
}

#[cfg(test)]
mod tests {
    use super::is_healthy;
    use serde_json::json;

    /// kstatus (`fluxcd/cli-utils`): a PersistentVolumeClaim is current once Bound.
    #[test]
    fn a_claim_is_current_once_bound() {
        let claim = |phase: &str| {
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                   "metadata": {"name": "source-controller"}, "status": {"phase": phase}})
        };
        assert!(!is_healthy(&claim("Pending")));
        assert!(is_healthy(&claim("Bound")));
        let config_map =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
        assert!(is_healthy(&config_map));
    }

    /// Upstream `checkDependencies` (`internal/controller/resourceset_controller.go`): a
    /// ResourceSet or ResourceSetInputProvider dependency is ready only with `Ready=True` for its
    /// current generation — a Ready condition left from an older generation is not enough.
    #[test]
    fn operator_kinds_need_ready_for_the_current_generation() {
        for kind in ["ResourceSet", "ResourceSetInputProvider"] {
            let obj = |generation: i64, status: &str, observed: i64| {
                json!({"apiVersion": "fluxcd.controlplane.io/v1", "kind": kind,
                       "metadata": {"name": "dep", "namespace": "apps", "generation": generation},
                       "status": {"conditions": [{"type": "Ready", "status": status,
                                                  "reason": "ReconciliationSucceeded",
                                                  "observedGeneration": observed}]}})
            };
            assert!(is_healthy(&obj(2, "True", 2)), "{kind}");
            assert!(
                !is_healthy(&obj(2, "True", 1)),
                "{kind}: observedGeneration behind"
            );
            assert!(!is_healthy(&obj(2, "False", 2)), "{kind}: Ready=False");
            assert!(!is_healthy(&obj(2, "Unknown", 2)), "{kind}: Ready=Unknown");
        }
    }
}
