//! `spec.migrateResources` and the `reconcile.fluxcd.io/forceAt` request, as the real operator
//! handles them after a successful apply and health check (upstream
//! `internal/controller/fluxinstance_controller.go` `apply`, and
//! `internal/controller/fluxinstance_migrator.go`, v0.58.1).
//!
//! - The force request (fluxcd/pkg `meta.ShouldHandleForceRequest`, [`force_request`]): handled
//!   when `reconcile.fluxcd.io/forceAt` equals `reconcile.fluxcd.io/requestedAt`, that request is
//!   not the last handled reconcile (`status.lastHandledReconcileAt`) and the value is not the
//!   last handled force (`status.lastHandledForceAt`). Whenever the annotation is present,
//!   `status.lastHandledForceAt` takes its value, even with `migrateResources: false`.
//! - With `migrateResources` (default true): a minor upgrade (same major, higher minor than
//!   `status.lastAppliedRevision`) forces too; then every CRD labelled
//!   `app.kubernetes.io/part-of: flux` whose `status.storedVersions` is not exactly its storage
//!   version (or every one, when forced) has each of its custom resources rewritten through the
//!   storage version: managed-field entries recorded under another apiVersion are moved to the
//!   storage version (a JSON patch), otherwise an empty merge patch; then its
//!   `status.storedVersions` is set to `[<storage version>]`.
//! - Migration errors are logged, never reported in the instance's status.
//!
//! I/O through [`Kube`]; the decisions ([`force_request`], [`is_minor_upgrade`],
//! [`needs_migration`], [`managed_fields_patch`]) are pure.

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::Scope;
use serde_json::{Value, json};

use super::inventory::ObjectRef;
use super::ops::{Kube, OpsError, annotation};
use super::version::Version;

/// Annotation requesting a forced reconciliation (with an equal `requestedAt`).
pub const FORCE_AT_ANNOTATION: &str = "reconcile.fluxcd.io/forceAt";
/// The label the migrated CRDs carry (`app.kubernetes.io/part-of: <instance name>`).
const PART_OF_LABEL: &str = "app.kubernetes.io/part-of";

/// A failed migration step (logged by the reconciler; upstream joins them).
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The CRDs could not be listed.
    #[error("failed to list CRDs: {0}")]
    ListCrds(#[source] OpsError),
    /// A CRD has no version marked `storage: true`.
    #[error("no storage version found for CRD {0}")]
    NoStorageVersion(String),
    /// The custom resources of a CRD could not be listed or patched.
    #[error("failed to migrate resources for CRD {crd}: {source}")]
    MigrateObjects {
        /// The CRD's name.
        crd: String,
        /// Cause.
        #[source]
        source: OpsError,
    },
    /// A custom resource could not be patched.
    #[error("{id} failed to migrate: {source}")]
    PatchObject {
        /// Inventory id of the object.
        id: String,
        /// Cause.
        #[source]
        source: kube::Error,
    },
    /// `status.storedVersions` could not be written.
    #[error("failed to update CRD {crd} status: {source}")]
    UpdateStatus {
        /// The CRD's name.
        crd: String,
        /// Cause.
        #[source]
        source: OpsError,
    },
}

/// The force request of an instance: whether it is handled now, and the value
/// `status.lastHandledForceAt` takes (`None`: no annotation, the status keeps its value).
pub fn force_request(obj: &Value) -> (bool, Option<String>) {
    let Some(force_at) = annotation(obj, FORCE_AT_ANNOTATION) else {
        return (false, None);
    };
    let status = &obj["status"];
    let requested = annotation(obj, super::instance::REQUESTED_AT_ANNOTATION);
    let handled = requested == Some(force_at)
        && status["lastHandledReconcileAt"].as_str() != Some(force_at)
        && status["lastHandledForceAt"].as_str() != Some(force_at);
    (handled, Some(force_at.to_string()))
}

/// Whether applying `to` after `last_applied_revision` (`vX.Y.Z@sha256:…`) is a minor upgrade
/// (same major, higher minor; upstream `internal/builder/semver.go` `IsMinorUpgrade`).
pub fn is_minor_upgrade(last_applied_revision: &str, to: &Version) -> bool {
    let from = last_applied_revision.split('@').next().unwrap_or_default();
    from.parse::<Version>()
        .is_ok_and(|f| f.major == to.major && to.minor > f.minor)
}

/// The storage version of a CRD.
pub fn storage_version(crd: &Value) -> Option<&str> {
    crd["spec"]["versions"]
        .as_array()?
        .iter()
        .find(|v| v["storage"] == true)
        .and_then(|v| v["name"].as_str())
}

/// Whether a CRD's objects are migrated: forced, or `status.storedVersions` is not exactly the
/// storage version.
pub fn needs_migration(crd: &Value, storage: &str, force: bool) -> bool {
    force || crd["status"]["storedVersions"] != json!([storage])
}

/// The JSON patch moving an object's managed-field entries recorded under another apiVersion
/// to `api_version` (empty when none is).
pub fn managed_fields_patch(obj: &Value, api_version: &str) -> Vec<Value> {
    obj["metadata"]["managedFields"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .enumerate()
                .filter(|(_, e)| e["apiVersion"].as_str() != Some(api_version))
                .map(|(i, _)| {
                    json!({"op": "replace", "path": format!("/metadata/managedFields/{i}/apiVersion"),
                           "value": api_version})
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Migrates the custom resources of every Flux CRD that needs it (see the module
/// documentation); returns the failures (the reconciler logs them).
pub async fn migrate_resources(kube: &Kube, instance_name: &str, force: bool) -> Vec<MigrateError> {
    let crds = match kube
        .list_all("apiextensions.k8s.io/v1", "CustomResourceDefinition")
        .await
    {
        Ok(crds) => crds,
        Err(e) => return vec![MigrateError::ListCrds(e)],
    };
    let mut errors = Vec::new();
    for crd in crds
        .iter()
        .filter(|c| c["metadata"]["labels"][PART_OF_LABEL] == instance_name)
    {
        if let Err(e) = migrate_crd(kube, crd, force).await {
            errors.push(e);
        }
    }
    errors
}

async fn migrate_crd(kube: &Kube, crd: &Value, force: bool) -> Result<(), MigrateError> {
    let name = crd["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let storage =
        storage_version(crd).ok_or_else(|| MigrateError::NoStorageVersion(name.clone()))?;
    if !needs_migration(crd, storage, force) {
        return Ok(());
    }
    let group = crd["spec"]["group"].as_str().unwrap_or_default();
    let kind = crd["spec"]["names"]["kind"].as_str().unwrap_or_default();
    let api_version = format!("{group}/{storage}");
    let objects =
        kube.list_all(&api_version, kind)
            .await
            .map_err(|source| MigrateError::MigrateObjects {
                crd: name.clone(),
                source,
            })?;
    if !objects.is_empty() {
        let (ar, caps) = kube.resource(&api_version, kind).await.map_err(|source| {
            MigrateError::MigrateObjects {
                crd: name.clone(),
                source,
            }
        })?;
        let pp = PatchParams {
            field_manager: Some(super::FIELD_MANAGER.to_string()),
            ..Default::default()
        };
        for obj in &objects {
            // List items of built-in lists may lack apiVersion and kind: name them here.
            let r = ObjectRef {
                namespace: obj["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                name: obj["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                group: group.to_string(),
                kind: kind.to_string(),
                version: storage.to_string(),
            };
            let api: Api<DynamicObject> = match caps.scope {
                Scope::Cluster => Api::all_with(kube.client().clone(), &ar),
                Scope::Namespaced => Api::namespaced_with(kube.client().clone(), &r.namespace, &ar),
            };
            let ops = managed_fields_patch(obj, &api_version);
            let result = if ops.is_empty() {
                api.patch(&r.name, &pp, &Patch::Merge(json!({})))
                    .await
                    .map(|_| ())
            } else {
                json_patch_request(kube, &ar, caps.scope == Scope::Namespaced, &r, &ops).await
            };
            match result {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(source) => {
                    return Err(MigrateError::PatchObject { id: r.id(), source });
                }
            }
        }
    }
    let crd_ref = ObjectRef {
        namespace: String::new(),
        name: name.clone(),
        group: "apiextensions.k8s.io".to_string(),
        kind: "CustomResourceDefinition".to_string(),
        version: "v1".to_string(),
    };
    kube.merge_patch(
        &crd_ref,
        &json!({"status": {"storedVersions": [storage]}}),
        true,
    )
    .await
    .map_err(|source| MigrateError::UpdateStatus { crd: name, source })?;
    Ok(())
}

/// Sends a JSON patch (`application/json-patch+json`) as the operator's field manager; the
/// client is built without kube's `jsonpatch` feature, so the request is written here.
async fn json_patch_request(
    kube: &Kube,
    ar: &kube::discovery::ApiResource,
    namespaced: bool,
    r: &ObjectRef,
    ops: &[Value],
) -> Result<(), kube::Error> {
    let prefix = if ar.group.is_empty() {
        format!("/api/{}", ar.version)
    } else {
        format!("/apis/{}/{}", ar.group, ar.version)
    };
    let path = if namespaced {
        format!(
            "{prefix}/namespaces/{}/{}/{}",
            r.namespace, ar.plural, r.name
        )
    } else {
        format!("{prefix}/{}/{}", ar.plural, r.name)
    };
    let body = serde_json::to_vec(ops).map_err(kube::Error::SerdeError)?;
    let request = axum::http::Request::builder()
        .method("PATCH")
        .uri(format!("{path}?fieldManager={}", super::FIELD_MANAGER))
        .header("content-type", "application/json-patch+json")
        .body(body)
        .map_err(kube::Error::HttpError)?;
    kube.client()
        .request::<DynamicObject>(request)
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(annotations: Value, status: Value) -> Value {
        json!({"metadata": {"annotations": annotations}, "status": status})
    }

    /// fluxcd/pkg `meta.HandleAnnotationRequest` as used by upstream
    /// `fluxinstance_controller.go` (`meta.ShouldHandleForceRequest`).
    #[test]
    fn force_requests_follow_the_runtime_rules() {
        let both = json!({"reconcile.fluxcd.io/requestedAt": "t1",
                          "reconcile.fluxcd.io/forceAt": "t1"});
        assert_eq!(
            force_request(&instance(both.clone(), json!({}))),
            (true, Some("t1".into()))
        );
        // Already handled as a force, or as a reconcile request: recorded, not handled.
        assert_eq!(
            force_request(&instance(both.clone(), json!({"lastHandledForceAt": "t1"}))),
            (false, Some("t1".into()))
        );
        assert_eq!(
            force_request(&instance(both, json!({"lastHandledReconcileAt": "t1"}))),
            (false, Some("t1".into()))
        );
        // A force request that does not match requestedAt is recorded, not handled.
        let mismatch = json!({"reconcile.fluxcd.io/requestedAt": "t2",
                              "reconcile.fluxcd.io/forceAt": "t1"});
        assert_eq!(
            force_request(&instance(mismatch, json!({}))),
            (false, Some("t1".into()))
        );
        let none = json!({"reconcile.fluxcd.io/requestedAt": "t2"});
        assert_eq!(force_request(&instance(none, json!({}))), (false, None));
    }

    /// Upstream `internal/builder/semver.go` `IsMinorUpgrade`.
    #[test]
    fn minor_upgrades_force_the_migration() {
        let to = Version::new(2, 7, 5);
        assert!(is_minor_upgrade("v2.6.4@sha256:ab", &to));
        assert!(!is_minor_upgrade("v2.7.0@sha256:ab", &to));
        assert!(!is_minor_upgrade("v2.8.0@sha256:ab", &to));
        assert!(!is_minor_upgrade("", &to));
    }

    #[test]
    fn managed_fields_move_to_the_storage_version() {
        let obj = json!({"metadata": {"managedFields": [
            {"manager": "a", "apiVersion": "source.toolkit.fluxcd.io/v1"},
            {"manager": "b", "apiVersion": "source.toolkit.fluxcd.io/v1beta2"},
        ]}});
        assert_eq!(
            managed_fields_patch(&obj, "source.toolkit.fluxcd.io/v1"),
            vec![
                json!({"op": "replace", "path": "/metadata/managedFields/1/apiVersion",
                        "value": "source.toolkit.fluxcd.io/v1"})
            ]
        );
        let crd = json!({"spec": {"versions": [{"name": "v1beta2", "storage": false},
                                                {"name": "v1", "storage": true}]},
                         "status": {"storedVersions": ["v1beta2", "v1"]}});
        assert_eq!(storage_version(&crd), Some("v1"));
        assert!(needs_migration(&crd, "v1", false));
        let migrated = json!({"status": {"storedVersions": ["v1"]}});
        assert!(!needs_migration(&migrated, "v1", false));
        assert!(needs_migration(&migrated, "v1", true));
    }
}
