//! Writes and reads of arbitrary objects: server-side apply (forced, as
//! [`FIELD_MANAGER`]), dry-run apply, get, list, delete, annotation patches and finalizer
//! removal — all as methods on [`Cluster`].
//!
//! Absence is never an error here: a 404 of any form (the JSON `NotFound` of a missing object
//! or namespace, or the plain-text 404 of a resource type that is not served) reads as `None`,
//! and deleting something absent succeeds.
//!
//! Field ownership: full objects are written only by server-side apply as [`FIELD_MANAGER`].
//! Single annotations (a reconcile request, `reconcile: disabled` before orphaning) are written
//! with a JSON merge patch instead: a merge patch touches exactly the keys it names and records
//! them under an `Update` entry, so the next full apply — which does not list those keys —
//! neither removes them nor fights over them. Setting them through server-side apply as
//! [`FIELD_MANAGER`] would make the next full apply delete them (a manager that stops applying a
//! field removes it); a second apply manager would delete its own earlier annotations each time
//! it applied a different one.
//!
//! Generic Kubernetes access: knows nothing of Terraform or Flux, and depends on nothing else in
//! this crate.

use std::collections::BTreeMap;

use kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PropagationPolicy};
use kube::core::{Status, TypeMeta};
use serde_json::{Value, json};

use super::objects::{Cluster, ObjectRef, ObjectsError};
use super::retry::{Safety, retrying};
use super::status::{self, describe};

/// The field manager of every server-side apply and patch this provider makes.
pub const FIELD_MANAGER: &str = "terraform-provider-flux";

/// How many times a read-modify-write is retried on a 409 Conflict.
const CONFLICT_RETRIES: usize = 5;

/// Errors of apply, get, list, delete and patch requests, named after the failing step. Each
/// carries the object (or kind) concerned and, where the server answered, its Status.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The object given to apply has no `apiVersion`, `kind` or name.
    #[error("invalid object: {source}")]
    Manifest {
        /// What is missing.
        #[source]
        source: ObjectsError,
    },
    /// Discovering which resource serves the object's kind failed.
    #[error("{object}: {source}")]
    Discover {
        /// The object concerned.
        object: ObjectRef,
        /// The discovery error.
        #[source]
        source: ObjectsError,
    },
    /// The API server does not serve the object's kind (its CRD is not installed, or not yet
    /// Established), so the object cannot be written.
    #[error("{object}: the API server does not serve kind {} in {}", .object.kind, .object.api_version)]
    NotServed {
        /// The object concerned.
        object: ObjectRef,
    },
    /// The server-side apply was refused.
    #[error("applying {object}: {}", describe(.source))]
    Apply {
        /// The object concerned.
        object: ObjectRef,
        /// The request's error.
        #[source]
        source: kube::Error,
    },
    /// The dry-run server-side apply was refused (schema, CEL, admission...).
    #[error("validating {object} with a server-side dry run: {}", describe(.source))]
    DryRun {
        /// The object concerned.
        object: ObjectRef,
        /// The request's error.
        #[source]
        source: kube::Error,
    },
    /// Reading the object failed (other than it being absent).
    #[error("reading {object}: {}", describe(.source))]
    Get {
        /// The object concerned.
        object: ObjectRef,
        /// The request's error.
        #[source]
        source: kube::Error,
    },
    /// Listing objects of a kind failed.
    #[error("listing {kind} ({api_version}){}: {}", in_namespace(.namespace.as_deref()), describe(.source))]
    List {
        /// The listed kind's `apiVersion`.
        api_version: String,
        /// The listed kind.
        kind: String,
        /// The namespace listed, or `None` for all namespaces / cluster scope.
        namespace: Option<String>,
        /// The request's error.
        #[source]
        source: kube::Error,
    },
    /// Deleting the object failed (other than it being absent).
    #[error("deleting {object}: {}", describe(.source))]
    Delete {
        /// The object concerned.
        object: ObjectRef,
        /// The request's error.
        #[source]
        source: kube::Error,
    },
    /// Rewriting the object's `managedFields` to take over fields from other managers failed.
    #[error("taking over fields of {object} from other field managers: {}", describe(.source))]
    TakeOver {
        /// The object concerned.
        object: ObjectRef,
        /// The request's error.
        #[source]
        source: kube::Error,
    },
    /// Patching the object's annotations failed.
    #[error("annotating {object}: {}", describe(.source))]
    Annotate {
        /// The object concerned.
        object: ObjectRef,
        /// The request's error.
        #[source]
        source: kube::Error,
    },
    /// Removing a finalizer from the object failed.
    #[error("removing finalizer {finalizer} from {object}: {}", describe(.source))]
    RemoveFinalizer {
        /// The object concerned.
        object: ObjectRef,
        /// The finalizer.
        finalizer: String,
        /// The request's error.
        #[source]
        source: kube::Error,
    },
}

impl ApplyError {
    /// The object concerned, when the failure is about one object.
    pub fn object(&self) -> Option<&ObjectRef> {
        match self {
            Self::Manifest { .. } | Self::List { .. } => None,
            Self::Discover { object, .. }
            | Self::NotServed { object }
            | Self::Apply { object, .. }
            | Self::DryRun { object, .. }
            | Self::Get { object, .. }
            | Self::Delete { object, .. }
            | Self::Annotate { object, .. }
            | Self::TakeOver { object, .. }
            | Self::RemoveFinalizer { object, .. } => Some(object),
        }
    }

    /// The API server's Status (reason, message, causes), when the server answered.
    pub fn status(&self) -> Option<&Status> {
        match self {
            Self::Manifest { source } | Self::Discover { source, .. } => source.status(),
            Self::NotServed { .. } => None,
            Self::Apply { source, .. }
            | Self::DryRun { source, .. }
            | Self::Get { source, .. }
            | Self::List { source, .. }
            | Self::Delete { source, .. }
            | Self::Annotate { source, .. }
            | Self::TakeOver { source, .. }
            | Self::RemoveFinalizer { source, .. } => status::api_status(source),
        }
    }
}

fn in_namespace(namespace: Option<&str>) -> String {
    namespace
        .map(|ns| format!(" in namespace {ns}"))
        .unwrap_or_default()
}

/// What a delete request achieved.
#[derive(Debug, Clone, PartialEq)]
pub enum Deletion {
    /// The object is gone (deleted now, or it was already absent).
    Gone,
    /// The object is marked for deletion and waits for its finalizers (shown as returned by the
    /// server, with `deletionTimestamp` set).
    Pending(Box<DynamicObject>),
}

impl Cluster {
    /// Server-side applies `object` with `force`, as [`FIELD_MANAGER`], creating it when absent.
    /// Returns the object as stored.
    pub async fn apply(&self, object: &DynamicObject) -> Result<DynamicObject, ApplyError> {
        self.apply_with(object, false).await
    }

    /// Applies `objects` one after another, in the order given, stopping at the first failure.
    /// (Objects of a kind that a CRD earlier in the list defines need that CRD Established
    /// first: apply the CRDs, wait, then the rest.)
    pub async fn apply_all(
        &self,
        objects: &[DynamicObject],
    ) -> Result<Vec<DynamicObject>, ApplyError> {
        let mut applied = Vec::with_capacity(objects.len());
        for object in objects {
            applied.push(self.apply(object).await?);
        }
        Ok(applied)
    }

    /// Server-side applies `object` with `dryRun=All`: nothing is persisted, and the server's
    /// answer is the object as it would be stored — defaulted, validated (schema, CEL,
    /// admission) and merged with what other managers own.
    pub async fn dry_run_apply(&self, object: &DynamicObject) -> Result<DynamicObject, ApplyError> {
        self.apply_with(object, true).await
    }

    async fn apply_with(
        &self,
        object: &DynamicObject,
        dry_run: bool,
    ) -> Result<DynamicObject, ApplyError> {
        let reference =
            ObjectRef::from_object(object).map_err(|source| ApplyError::Manifest { source })?;
        let api = match self.api(&reference).await {
            Ok(Some(api)) => api,
            Ok(None) => return Err(ApplyError::NotServed { object: reference }),
            Err(source) => {
                return Err(ApplyError::Discover {
                    object: reference,
                    source,
                });
            }
        };
        let mut params = PatchParams::apply(FIELD_MANAGER).force();
        params.dry_run = dry_run;
        let body = apply_body(object);
        let patch = Patch::Apply(&body);
        let applied = retrying(Safety::Idempotent, "server-side apply", || {
            api.patch(&reference.name, &params, &patch)
        })
        .await;
        if !dry_run {
            self.shared_reads().clear();
        }
        match applied {
            Ok(stored) => Ok(stored),
            Err(source) => {
                self.note_error(&reference, &source);
                if status::is_type_not_served(&source) {
                    return Err(ApplyError::NotServed { object: reference });
                }
                Err(if dry_run {
                    ApplyError::DryRun {
                        object: reference,
                        source,
                    }
                } else {
                    ApplyError::Apply {
                        object: reference,
                        source,
                    }
                })
            }
        }
    }

    /// Reads an object; `None` when it is absent, including when its namespace or its kind (an
    /// uninstalled CRD) is absent.
    pub async fn get(&self, object: &ObjectRef) -> Result<Option<DynamicObject>, ApplyError> {
        let api = match self.api(object).await {
            Ok(Some(api)) => api,
            Ok(None) => return Ok(None),
            Err(source) => {
                return Err(ApplyError::Discover {
                    object: object.clone(),
                    source,
                });
            }
        };
        match retrying(Safety::Read, "get", || api.get(&object.name)).await {
            Ok(found) => Ok(Some(found)),
            Err(error) if status::is_not_found(&error) => {
                self.note_error(object, &error);
                Ok(None)
            }
            Err(source) => Err(ApplyError::Get {
                object: object.clone(),
                source,
            }),
        }
    }

    /// Lists the objects of a kind matching a label selector (`""` for all), in `namespace` or
    /// across all namespaces (`None`; ignored for cluster-scoped kinds). An unserved kind lists
    /// as empty. Each item carries its `apiVersion` and `kind` (servers omit them on items of
    /// built-in lists). Pages through large lists.
    pub async fn list(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        label_selector: &str,
    ) -> Result<Vec<DynamicObject>, ApplyError> {
        let list_error = |source| ApplyError::List {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
            namespace: namespace.map(str::to_owned),
            source,
        };
        let resolved = match self.resolve(api_version, kind).await {
            Ok(Some(resolved)) => resolved,
            Ok(None) => return Ok(Vec::new()),
            Err(source) => {
                return Err(ApplyError::Discover {
                    object: ObjectRef::new(api_version, kind, namespace, ""),
                    source,
                });
            }
        };
        let api = match (resolved.namespaced, namespace) {
            (true, Some(namespace)) => self.api_for(&resolved, Some(namespace)),
            _ => kube::Api::all_with(self.client().clone(), &resolved.resource),
        };
        let mut params = ListParams::default().limit(500);
        if !label_selector.is_empty() {
            params = params.labels(label_selector);
        }
        let types = TypeMeta {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
        };
        let mut items = Vec::new();
        loop {
            let page = match retrying(Safety::Read, "list", || api.list(&params)).await {
                Ok(page) => page,
                Err(error) if status::is_type_not_served(&error) => {
                    self.forget(api_version);
                    return Ok(Vec::new());
                }
                Err(error) => return Err(list_error(error)),
            };
            items.extend(page.items.into_iter().map(|mut item| {
                item.types.get_or_insert_with(|| types.clone());
                item
            }));
            match page.metadata.continue_.filter(|token| !token.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => return Ok(items),
            }
        }
    }

    /// Deletes an object with the given propagation policy. Idempotent: an absent object (or
    /// namespace, or kind) is [`Deletion::Gone`]. An object held by finalizers is
    /// [`Deletion::Pending`]; wait for it with [`super::wait::gone`].
    pub async fn delete(
        &self,
        object: &ObjectRef,
        propagation: PropagationPolicy,
    ) -> Result<Deletion, ApplyError> {
        let api = match self.api(object).await {
            Ok(Some(api)) => api,
            Ok(None) => return Ok(Deletion::Gone),
            Err(source) => {
                return Err(ApplyError::Discover {
                    object: object.clone(),
                    source,
                });
            }
        };
        let params = DeleteParams {
            propagation_policy: Some(propagation),
            ..DeleteParams::default()
        };
        let deleted = retrying(Safety::Idempotent, "delete", || {
            api.delete(&object.name, &params)
        })
        .await;
        self.shared_reads().clear();
        match deleted {
            // The server returns the object while it waits for finalizers (some built-in stores
            // return the deleted object itself), or a Status when the object is gone.
            Ok(outcome) => Ok(match outcome.left() {
                Some(remaining)
                    if remaining.metadata.deletion_timestamp.is_some()
                        && remaining
                            .metadata
                            .finalizers
                            .as_ref()
                            .is_some_and(|finalizers| !finalizers.is_empty()) =>
                {
                    Deletion::Pending(Box::new(remaining))
                }
                _ => Deletion::Gone,
            }),
            Err(error) if status::is_not_found(&error) => {
                self.note_error(object, &error);
                Ok(Deletion::Gone)
            }
            Err(source) => Err(ApplyError::Delete {
                object: object.clone(),
                source,
            }),
        }
    }

    /// Sets (`Some`) or removes (`None`) annotations with a JSON merge patch, recorded under
    /// [`FIELD_MANAGER`] as an `Update` (see the module documentation for why not server-side
    /// apply). Other annotations are untouched. Returns the patched object, or `None` when the
    /// object is absent.
    pub async fn annotate(
        &self,
        object: &ObjectRef,
        annotations: &BTreeMap<String, Option<String>>,
    ) -> Result<Option<DynamicObject>, ApplyError> {
        let api = match self.api(object).await {
            Ok(Some(api)) => api,
            Ok(None) => return Ok(None),
            Err(source) => {
                return Err(ApplyError::Discover {
                    object: object.clone(),
                    source,
                });
            }
        };
        let patch = json!({ "metadata": { "annotations": annotations } });
        let patch = Patch::Merge(&patch);
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        };
        let patched = retrying(Safety::Idempotent, "annotate", || {
            api.patch(&object.name, &params, &patch)
        })
        .await;
        self.shared_reads().clear();
        match patched {
            Ok(patched) => Ok(Some(patched)),
            Err(error) if status::is_not_found(&error) => {
                self.note_error(object, &error);
                Ok(None)
            }
            Err(source) => Err(ApplyError::Annotate {
                object: object.clone(),
                source,
            }),
        }
    }

    /// Removes one finalizer from an object — the escape hatch when the controller that owns
    /// the finalizer is gone. Race-free: the merge patch carries the `resourceVersion` it was
    /// computed from, so a concurrent change makes the server answer 409 and the removal is
    /// recomputed from a fresh read (a few times at most). Returns whether the finalizer was
    /// removed by this call (`false` when the object or the finalizer was already gone).
    pub async fn remove_finalizer(
        &self,
        object: &ObjectRef,
        finalizer: &str,
    ) -> Result<bool, ApplyError> {
        let failed = |source| ApplyError::RemoveFinalizer {
            object: object.clone(),
            finalizer: finalizer.to_owned(),
            source,
        };
        self.patch_metadata(object, failed, |current| {
            let finalizers = current.metadata.finalizers.clone().unwrap_or_default();
            if !finalizers.iter().any(|f| f == finalizer) {
                return None;
            }
            let remaining: Vec<&String> = finalizers.iter().filter(|f| *f != finalizer).collect();
            // `null` deletes the key: the API server omits an empty list anyway.
            Some((
                "finalizers",
                if remaining.is_empty() {
                    Value::Null
                } else {
                    json!(remaining)
                },
            ))
        })
        .await
    }

    /// A read-modify-write of one `metadata` field: `edit` computes its new value from a fresh
    /// read (`None`: nothing to change), written by a merge patch that carries the
    /// `resourceVersion` it was computed from, so a concurrent change makes the server answer
    /// 409 and the value is recomputed (as is a transient failure), a few times at most.
    /// Returns whether it wrote; `false` when the object, its namespace or its kind is absent
    /// or there was nothing to change. `failed` maps an API error to the caller's.
    pub(crate) async fn patch_metadata(
        &self,
        object: &ObjectRef,
        failed: impl Fn(kube::Error) -> ApplyError,
        edit: impl Fn(&DynamicObject) -> Option<(&'static str, Value)>,
    ) -> Result<bool, ApplyError> {
        let Some(api) = self
            .api(object)
            .await
            .map_err(|source| ApplyError::Discover {
                object: object.clone(),
                source,
            })?
        else {
            return Ok(false);
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let current = match retrying(Safety::Read, "get", || api.get(&object.name)).await {
                Ok(current) => current,
                Err(error) if status::is_not_found(&error) => return Ok(false),
                Err(error) => return Err(failed(error)),
            };
            let Some((field, value)) = edit(&current) else {
                return Ok(false);
            };
            let patch = json!({
                "metadata": {
                    "resourceVersion": current.metadata.resource_version,
                    field: value,
                }
            });
            let params = PatchParams {
                field_manager: Some(FIELD_MANAGER.to_owned()),
                ..PatchParams::default()
            };
            let patched = api
                .patch(&object.name, &params, &Patch::Merge(&patch))
                .await;
            self.shared_reads().clear();
            match patched {
                Ok(_) => return Ok(true),
                Err(error) if status::is_not_found(&error) => return Ok(false),
                // A conflict or a transient failure: recompute from a fresh read.
                Err(error)
                    if attempt < CONFLICT_RETRIES
                        && (status::is_conflict(&error)
                            || super::retry::transient(&error, Safety::Read).is_some()) => {}
                Err(error) => return Err(failed(error)),
            }
        }
    }
}

/// The body of a server-side apply: the object without the server-owned metadata
/// (`managedFields` in an apply body is refused; `resourceVersion` would turn the apply into a
/// conditional write; `uid`, `generation`, timestamps and `status` are the server's).
fn apply_body(object: &DynamicObject) -> DynamicObject {
    let mut body = object.clone();
    let metadata = &mut body.metadata;
    metadata.managed_fields = None;
    metadata.resource_version = None;
    metadata.uid = None;
    metadata.generation = None;
    metadata.creation_timestamp = None;
    metadata.deletion_timestamp = None;
    metadata.deletion_grace_period_seconds = None;
    if let Value::Object(fields) = &mut body.data {
        fields.remove("status");
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_body_drops_server_owned_fields_only() {
        let stored: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "settings",
                "namespace": "flux-system",
                "labels": {"app": "x"},
                "annotations": {"a": "b"},
                "uid": "1234",
                "resourceVersion": "100007",
                "generation": 3,
                "creationTimestamp": "2026-01-01T00:00:00Z",
                "managedFields": [{"manager": "kubectl", "operation": "Update"}],
                "finalizers": ["example.com/keep"]
            },
            "data": {"key": "value"},
            "status": {"phase": "whatever"}
        }))
        .expect("valid object");
        let body = serde_json::to_value(apply_body(&stored)).expect("serializable");
        assert_eq!(
            body,
            json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": "settings",
                    "namespace": "flux-system",
                    "labels": {"app": "x"},
                    "annotations": {"a": "b"},
                    "finalizers": ["example.com/keep"]
                },
                "data": {"key": "value"}
            })
        );
    }

    #[test]
    fn errors_quote_the_object_and_the_server() {
        let object = ObjectRef::new(
            "apps/v1",
            "Deployment",
            Some("flux-system"),
            "flux-operator",
        );
        let error = ApplyError::Apply {
            object: object.clone(),
            source: kube::Error::Api(
                Status::failure(
                    "Deployment.apps \"flux-operator\" is invalid: spec.replicas: Invalid value: -1",
                    "Invalid",
                )
                .with_code(422)
                .boxed(),
            ),
        };
        assert_eq!(
            error.to_string(),
            "applying Deployment flux-system/flux-operator (apps/v1): Deployment.apps \
             \"flux-operator\" is invalid: spec.replicas: Invalid value: -1 (reason Invalid, HTTP 422)"
        );
        assert_eq!(error.object(), Some(&object));
        assert_eq!(error.status().map(|s| s.reason.as_str()), Some("Invalid"));
        let not_served = ApplyError::NotServed {
            object: ObjectRef::new(
                "fluxcd.controlplane.io/v1",
                "FluxInstance",
                Some("flux-system"),
                "flux",
            ),
        };
        assert_eq!(
            not_served.to_string(),
            "FluxInstance flux-system/flux (fluxcd.controlplane.io/v1): the API server does not \
             serve kind FluxInstance in fluxcd.controlplane.io/v1"
        );
        let list = ApplyError::List {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            namespace: Some("flux-system".into()),
            source: kube::Error::Api(
                Status::failure("forbidden", "Forbidden")
                    .with_code(403)
                    .boxed(),
            ),
        };
        assert_eq!(
            list.to_string(),
            "listing Deployment (apps/v1) in namespace flux-system: forbidden (reason Forbidden, HTTP 403)"
        );
    }
}
