//! Object references and kind resolution: the [`Cluster`] handle (a `kube::Client` plus its
//! discovery cache), [`ObjectRef`], and the lookup from `apiVersion`/`kind` to the REST resource
//! that serves it.
//!
//! Discovery is pinned: one `GET /apis/{group}/{version}` (or `/api/v1`) per group version the
//! caller actually uses, cached per handle, never the full discovery walk — so one broken
//! aggregated API group elsewhere in the cluster cannot fail us. A kind missing from a cached
//! group version is looked up again once (a CRD may have just been installed or become
//! Established); a group version the server does not serve resolves to `None`.
//!
//! Generic Kubernetes access: knows nothing of Terraform or Flux, and depends on nothing else in
//! this crate.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use kube::api::{Api, ApiResource, DynamicObject};
use kube::core::Status;

use super::shared::SharedReads;
use super::status::{self, describe};

/// A reference to one Kubernetes object: enough to address it through the API.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    /// `apiVersion`, e.g. `apps/v1` or `v1`.
    pub api_version: String,
    /// `kind`, e.g. `Deployment`.
    pub kind: String,
    /// The namespace; `None` for cluster-scoped objects (or "the client's default namespace" for
    /// a namespaced kind).
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: String,
}

impl ObjectRef {
    /// A reference from its four parts.
    pub fn new(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> Self {
        Self {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
            namespace: namespace.map(str::to_owned),
            name: name.to_owned(),
        }
    }

    /// The reference of an object, from its `apiVersion`, `kind`, `metadata.namespace` and
    /// `metadata.name`. Fails when one of the required three is missing or empty.
    pub fn from_object(object: &DynamicObject) -> Result<Self, ObjectsError> {
        let types = object.types.as_ref();
        let api_version = types.map(|t| t.api_version.as_str()).unwrap_or_default();
        let kind = types.map(|t| t.kind.as_str()).unwrap_or_default();
        let name = object.metadata.name.as_deref().unwrap_or_default();
        let missing = [
            ("apiVersion", api_version),
            ("kind", kind),
            ("metadata.name", name),
        ]
        .into_iter()
        .find(|(_, value)| value.is_empty());
        if let Some((field, _)) = missing {
            return Err(ObjectsError::Incomplete {
                field,
                object: format!("{kind} {name} ({api_version})"),
            });
        }
        Ok(Self::new(
            api_version,
            kind,
            object
                .metadata
                .namespace
                .as_deref()
                .filter(|ns| !ns.is_empty()),
            name,
        ))
    }

    /// The API group: `""` for the core group.
    pub fn group(&self) -> &str {
        split_api_version(&self.api_version).0
    }
}

impl fmt::Display for ObjectRef {
    /// `Deployment flux-system/flux-operator (apps/v1)`, or `Namespace flux-system (v1)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{} ({})", self.kind, self.name, self.api_version),
            None => write!(f, "{} {} ({})", self.kind, self.name, self.api_version),
        }
    }
}

/// Splits `group/version` into its parts; the core group's `v1` has an empty group.
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.split_once('/').unwrap_or(("", api_version))
}

/// A kind the API server serves: its REST resource and whether objects live in namespaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedKind {
    /// Group, version, kind and plural resource name.
    pub resource: ApiResource,
    /// True for namespaced kinds, false for cluster-scoped ones.
    pub namespaced: bool,
}

/// Errors of this module: discovery requests and malformed object references.
#[derive(Debug, thiserror::Error)]
pub enum ObjectsError {
    /// The discovery request for a group version failed (anything other than a 404, which means
    /// "not served" and is not an error).
    #[error("discovering the kinds served under {api_version}: {}", describe(.source))]
    Discover {
        /// The group version being discovered.
        api_version: String,
        /// The request's error.
        #[source]
        source: kube::Error,
    },
    /// An object lacks `apiVersion`, `kind` or `metadata.name`.
    #[error("object \"{object}\" has no {field}")]
    Incomplete {
        /// The missing field.
        field: &'static str,
        /// What is known of the object.
        object: String,
    },
}

impl ObjectsError {
    /// The API server's Status, when the server answered.
    pub fn status(&self) -> Option<&Status> {
        match self {
            Self::Discover { source, .. } => status::api_status(source),
            Self::Incomplete { .. } => None,
        }
    }
}

/// The kinds served under one group version, by kind name.
type Kinds = HashMap<String, ResolvedKind>;

/// A Kubernetes client together with its pinned discovery cache. Cheap to clone; clones share
/// the cache. All operations of this module family (`apply`, `wait`, `health`) are methods on
/// it.
#[derive(Clone)]
pub struct Cluster {
    client: kube::Client,
    kinds: Arc<Mutex<HashMap<String, Arc<Kinds>>>>,
    /// Serialises discovery requests, so that concurrent operations missing the cache at once
    /// (Terraform refreshes resources in parallel) make one request per group version, not one
    /// each.
    discovery_gate: Arc<tokio::sync::Mutex<()>>,
    /// LISTs shared by refreshes ([`Cluster::get_shared`]).
    shared: Arc<SharedReads>,
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("default_namespace", &self.client.default_namespace())
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Wraps a client; nothing is requested until the first operation.
    pub fn new(client: kube::Client) -> Self {
        Self {
            client,
            kinds: Arc::default(),
            discovery_gate: Arc::default(),
            shared: Arc::default(),
        }
    }

    /// The underlying client.
    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    /// Resolves `apiVersion`/`kind` to the resource that serves it; `None` when the server does
    /// not serve it (group version unknown, or kind absent from it even after one refresh).
    pub async fn resolve(
        &self,
        api_version: &str,
        kind: &str,
    ) -> Result<Option<ResolvedKind>, ObjectsError> {
        let seen = self.cached(api_version);
        if let Some(kinds) = &seen
            && let Some(found) = kinds.get(kind)
        {
            return Ok(Some(found.clone()));
        }
        // Not cached, or cached before this kind was served: one fresh look at the group version,
        // unless another operation refreshed it while this one waited for the gate.
        let _gate = self.discovery_gate.lock().await;
        let current = self.cached(api_version);
        let refreshed_meanwhile = match (&seen, &current) {
            (None, Some(_)) => true,
            (Some(before), Some(now)) => !Arc::ptr_eq(before, now),
            _ => false,
        };
        let kinds = if refreshed_meanwhile {
            current
        } else {
            self.discover(api_version).await?
        };
        Ok(kinds.and_then(|kinds| kinds.get(kind).cloned()))
    }

    /// Drops what is cached for a group version, so that the next use looks it up again (after
    /// a CRD of that group was installed, changed or deleted).
    pub fn forget(&self, api_version: &str) {
        self.lock().remove(api_version);
    }

    /// An `Api` for the object's kind, namespace-scoped when the kind is namespaced (the
    /// client's default namespace when the reference has none). `None` when the kind is not
    /// served.
    pub async fn api(
        &self,
        object: &ObjectRef,
    ) -> Result<Option<Api<DynamicObject>>, ObjectsError> {
        let resolved = self.resolve(&object.api_version, &object.kind).await?;
        Ok(resolved.map(|kind| self.api_for(&kind, object.namespace.as_deref())))
    }

    /// An `Api` for a resolved kind: `namespace` (or the client's default namespace) for a
    /// namespaced kind, the cluster scope otherwise.
    pub fn api_for(&self, kind: &ResolvedKind, namespace: Option<&str>) -> Api<DynamicObject> {
        if kind.namespaced {
            let namespace = namespace.unwrap_or(self.client.default_namespace());
            Api::namespaced_with(self.client.clone(), namespace, &kind.resource)
        } else {
            Api::all_with(self.client.clone(), &kind.resource)
        }
    }

    /// Notes that a request for `object` was answered with a 404 for its resource type, so the
    /// cached discovery of its group version is stale.
    pub(crate) fn note_error(&self, object: &ObjectRef, error: &kube::Error) {
        if status::is_type_not_served(error) {
            self.forget(&object.api_version);
        }
    }

    /// The LISTs shared by refreshes through this handle.
    pub(crate) fn shared_reads(&self) -> &SharedReads {
        &self.shared
    }

    fn cached(&self, api_version: &str) -> Option<Arc<Kinds>> {
        self.lock().get(api_version).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Kinds>>> {
        // The map holds plain data; a panic elsewhere cannot leave it half-updated.
        self.kinds.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Requests the resource list of one group version and caches it; `None` on 404.
    async fn discover(&self, api_version: &str) -> Result<Option<Arc<Kinds>>, ObjectsError> {
        let (group, version) = split_api_version(api_version);
        let listed = super::retry::retrying(super::retry::Safety::Read, "discovery", || async {
            if group.is_empty() {
                self.client.list_core_api_resources(version).await
            } else {
                self.client.list_api_group_resources(api_version).await
            }
        })
        .await;
        let list = match listed {
            Ok(list) => list,
            Err(error) if status::is_not_found(&error) => {
                self.forget(api_version);
                return Ok(None);
            }
            Err(source) => {
                return Err(ObjectsError::Discover {
                    api_version: api_version.to_owned(),
                    source,
                });
            }
        };
        let kinds: Kinds = list
            .resources
            .iter()
            // `plural/subresource` entries describe subresources, not kinds.
            .filter(|resource| !resource.name.contains('/'))
            .map(|resource| {
                let kind = ResolvedKind {
                    resource: ApiResource {
                        group: group.to_owned(),
                        version: version.to_owned(),
                        api_version: api_version.to_owned(),
                        kind: resource.kind.clone(),
                        plural: resource.name.clone(),
                    },
                    namespaced: resource.namespaced,
                };
                (resource.kind.clone(), kind)
            })
            .collect();
        let kinds = Arc::new(kinds);
        self.lock()
            .insert(api_version.to_owned(), Arc::clone(&kinds));
        Ok(Some(kinds))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::TypeMeta;

    fn object(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> DynamicObject {
        let mut object = DynamicObject {
            types: Some(TypeMeta {
                api_version: api_version.into(),
                kind: kind.into(),
            }),
            metadata: Default::default(),
            data: serde_json::Value::Null,
        };
        object.metadata.name = Some(name.into()).filter(|n: &String| !n.is_empty());
        object.metadata.namespace = namespace.map(Into::into);
        object
    }

    #[test]
    fn reference_of_an_object() {
        let reference =
            ObjectRef::from_object(&object("apps/v1", "Deployment", Some("flux-system"), "op"))
                .expect("complete object");
        assert_eq!(
            reference,
            ObjectRef::new("apps/v1", "Deployment", Some("flux-system"), "op")
        );
        assert_eq!(reference.group(), "apps");
        assert_eq!(reference.to_string(), "Deployment flux-system/op (apps/v1)");
        let namespace = ObjectRef::from_object(&object("v1", "Namespace", Some(""), "flux-system"))
            .expect("complete object");
        assert_eq!(namespace.namespace, None);
        assert_eq!(namespace.group(), "");
        assert_eq!(namespace.to_string(), "Namespace flux-system (v1)");
    }

    #[test]
    fn incomplete_objects_are_refused_naming_the_field() {
        let cases = [
            (object("", "Deployment", None, "x"), "apiVersion"),
            (object("apps/v1", "", None, "x"), "kind"),
            (object("apps/v1", "Deployment", None, ""), "metadata.name"),
        ];
        for (object, expected) in cases {
            match ObjectRef::from_object(&object) {
                Err(ObjectsError::Incomplete { field, .. }) => assert_eq!(field, expected),
                other => panic!("{expected}: {other:?}"),
            }
        }
        let untyped = DynamicObject {
            types: None,
            metadata: Default::default(),
            data: serde_json::Value::Null,
        };
        assert_eq!(
            ObjectRef::from_object(&untyped).map_err(|e| e.to_string()),
            Err("object \"  ()\" has no apiVersion".to_owned())
        );
    }

    #[test]
    fn api_versions_split_into_group_and_version() {
        assert_eq!(split_api_version("v1"), ("", "v1"));
        assert_eq!(
            split_api_version("fluxcd.controlplane.io/v1"),
            ("fluxcd.controlplane.io", "v1")
        );
    }
}
