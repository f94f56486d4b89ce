//! Object references shared by the Flux domain: the operator's inventory entries
//! (`{id: "<namespace>_<name>_<group>_<kind>", v: "<version>"}`) and references to objects read
//! from manifests given as JSON. Pure: no I/O, nothing else from this crate.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Why an object reference could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectError {
    /// An inventory id is not `<namespace>_<name>_<group>_<kind>`.
    #[error("invalid inventory id {0:?}: expected <namespace>_<name>_<group>_<kind>")]
    ParseInventoryId(String),
    /// A manifest object lacks `apiVersion`, `kind` or `metadata.name`.
    #[error("manifest object is missing {field}")]
    ReadManifestObject {
        /// The missing field (`apiVersion`, `kind` or `metadata.name`).
        field: &'static str,
    },
}

/// The inventory of an applier (`status.inventory`), as the operator writes it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct Inventory {
    /// One entry per applied object.
    #[serde(default)]
    pub entries: Vec<InventoryEntry>,
}

/// One applied object: `id` is `<namespace>_<name>_<group>_<kind>` (empty namespace for
/// cluster-scoped objects, empty group for the core group), `v` the API version.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct InventoryEntry {
    /// `<namespace>_<name>_<group>_<kind>`.
    pub id: String,
    /// The version part of the API version (`v1`).
    pub v: String,
}

/// A reference to one Kubernetes object: what the cluster layer needs to get, wait for or delete
/// it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectRef {
    /// `group/version`, or `version` for the core group (`v1`, `apps/v1`).
    pub api_version: String,
    /// The object kind (`Deployment`).
    pub kind: String,
    /// The namespace; `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    /// The object name.
    pub name: String,
}

impl ObjectRef {
    /// The API group (`""` for the core group).
    pub fn group(&self) -> &str {
        self.api_version
            .rsplit_once('/')
            .map_or("", |(group, _)| group)
    }

    /// Reads `apiVersion`, `kind`, `metadata.namespace` and `metadata.name` of a manifest object.
    ///
    /// # Errors
    ///
    /// [`ObjectError::ReadManifestObject`] naming the first missing field.
    pub fn from_manifest(object: &Value) -> Result<Self, ObjectError> {
        let text = |v: Option<&Value>, field| {
            v.and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .ok_or(ObjectError::ReadManifestObject { field })
        };
        Ok(Self {
            api_version: text(object.get("apiVersion"), "apiVersion")?,
            kind: text(object.get("kind"), "kind")?,
            namespace: object
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            name: text(object.pointer("/metadata/name"), "metadata.name")?,
        })
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{}/{}", self.kind, ns, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}

impl InventoryEntry {
    /// Parses the entry into an [`ObjectRef`].
    ///
    /// Kubernetes names, namespaces, groups and kinds cannot contain `_`, so the id splits
    /// unambiguously.
    ///
    /// # Errors
    ///
    /// [`ObjectError::ParseInventoryId`] when the id does not have four parts or lacks a name or
    /// kind.
    pub fn object_ref(&self) -> Result<ObjectRef, ObjectError> {
        let parts: Vec<&str> = self.id.split('_').collect();
        let [namespace, name, group, kind] = parts.as_slice() else {
            return Err(ObjectError::ParseInventoryId(self.id.clone()));
        };
        if name.is_empty() || kind.is_empty() || self.v.is_empty() {
            return Err(ObjectError::ParseInventoryId(self.id.clone()));
        }
        Ok(ObjectRef {
            api_version: if group.is_empty() {
                self.v.clone()
            } else {
                format!("{group}/{}", self.v)
            },
            kind: (*kind).to_owned(),
            namespace: (!namespace.is_empty()).then(|| (*namespace).to_owned()),
            name: (*name).to_owned(),
        })
    }

    /// Builds the entry the operator would write for `object`.
    pub fn from_object_ref(object: &ObjectRef) -> Self {
        let (group, version) = object
            .api_version
            .rsplit_once('/')
            .unwrap_or(("", object.api_version.as_str()));
        Self {
            id: format!(
                "{}_{}_{}_{}",
                object.namespace.as_deref().unwrap_or(""),
                object.name,
                group,
                object.kind
            ),
            v: version.to_owned(),
        }
    }
}

impl Inventory {
    /// Every entry as an [`ObjectRef`], in inventory order.
    ///
    /// # Errors
    ///
    /// The first entry that does not parse.
    pub fn object_refs(&self) -> Result<Vec<ObjectRef>, ObjectError> {
        self.entries
            .iter()
            .map(InventoryEntry::object_ref)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(id: &str, v: &str) -> InventoryEntry {
        InventoryEntry {
            id: id.into(),
            v: v.into(),
        }
    }

    #[test]
    fn inventory_ids_parse_into_references() {
        let cases = [
            (
                "namespaced-apps",
                entry("flux-system_source-controller_apps_Deployment", "v1"),
                Ok(ObjectRef {
                    api_version: "apps/v1".into(),
                    kind: "Deployment".into(),
                    namespace: Some("flux-system".into()),
                    name: "source-controller".into(),
                }),
            ),
            (
                "core-group",
                entry("flux-system_flux-system__Namespace", "v1"),
                Ok(ObjectRef {
                    api_version: "v1".into(),
                    kind: "Namespace".into(),
                    namespace: Some("flux-system".into()),
                    name: "flux-system".into(),
                }),
            ),
            (
                "cluster-scoped",
                entry(
                    "_gitrepositories.source.toolkit.fluxcd.io_apiextensions.k8s.io_CustomResourceDefinition",
                    "v1",
                ),
                Ok(ObjectRef {
                    api_version: "apiextensions.k8s.io/v1".into(),
                    kind: "CustomResourceDefinition".into(),
                    namespace: None,
                    name: "gitrepositories.source.toolkit.fluxcd.io".into(),
                }),
            ),
            (
                "too-few-parts",
                entry("flux-system_x_Deployment", "v1"),
                Err(ObjectError::ParseInventoryId(
                    "flux-system_x_Deployment".into(),
                )),
            ),
            (
                "empty-kind",
                entry("ns_x_apps_", "v1"),
                Err(ObjectError::ParseInventoryId("ns_x_apps_".into())),
            ),
        ];
        for (name, input, want) in cases {
            let got = input.object_ref();
            assert_eq!(got, want, "case {name}");
            if let Ok(object) = got {
                assert_eq!(
                    InventoryEntry::from_object_ref(&object),
                    input,
                    "case {name}"
                );
            }
        }
    }

    #[test]
    fn manifest_references() {
        let cases = [
            (
                "namespaced",
                json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a", "namespace": "b"}}),
                Ok("Service/b/a".to_owned()),
            ),
            (
                "cluster-scoped",
                json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "a"}}),
                Ok("ClusterRole/a".to_owned()),
            ),
            (
                "no-kind",
                json!({"apiVersion": "v1", "metadata": {"name": "a"}}),
                Err(ObjectError::ReadManifestObject { field: "kind" }),
            ),
            (
                "no-name",
                json!({"apiVersion": "v1", "kind": "Service", "metadata": {}}),
                Err(ObjectError::ReadManifestObject {
                    field: "metadata.name",
                }),
            ),
        ];
        for (name, input, want) in cases {
            assert_eq!(
                ObjectRef::from_manifest(&input).map(|o| o.to_string()),
                want,
                "case {name}"
            );
        }
    }
}
