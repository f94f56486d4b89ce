//! The resource types the sandbox serves: built-ins described from `k8s-openapi` metadata, and
//! types derived from stored CustomResourceDefinitions.
//!
//! Depends only on `k8s-openapi` and `serde_json`; it knows nothing of HTTP or storage.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    ConfigMap, Event, Namespace, Pod, ResourceQuota, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::{NamespaceResourceScope, Resource};
use serde_json::Value;
use std::any::TypeId;
use std::sync::Arc;

/// A served resource type (one group/version/resource).
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceType {
    /// API group, "" for core.
    pub group: String,
    /// Version.
    pub version: String,
    /// Kind.
    pub kind: String,
    /// Plural resource name (URL segment).
    pub plural: String,
    /// Singular name.
    pub singular: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Short names for kubectl.
    pub short_names: Vec<String>,
    /// Categories (e.g. `all`).
    pub categories: Vec<String>,
    /// Whether a `status` subresource exists (status is then separated from the main resource).
    pub status_subresource: bool,
    /// Whether `metadata.generation` is maintained.
    pub uses_generation: bool,
    /// True for built-in kinds.
    pub builtin: bool,
    /// The openAPIV3Schema for custom resources.
    pub schema: Option<Arc<Value>>,
    /// `additionalPrinterColumns` of a CRD version (JSON as in the CRD).
    pub printer_columns: Vec<Value>,
    /// The storage version of this resource (objects are stored once per group/resource).
    pub storage_version: String,
}

impl ResourceType {
    /// `apiVersion` string: `v1` or `group/version`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `plural.group` or `plural` for core.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// Storage key of the group/resource.
    pub fn gr(&self) -> (String, String) {
        (self.group.clone(), self.plural.clone())
    }
}

fn builtin<K: Resource + 'static>(
    status: bool,
    generation: bool,
    short: &[&str],
    cats: &[&str],
) -> ResourceType {
    ResourceType {
        group: K::GROUP.to_string(),
        version: K::VERSION.to_string(),
        kind: K::KIND.to_string(),
        plural: K::URL_PATH_SEGMENT.to_string(),
        singular: K::KIND.to_lowercase(),
        namespaced: TypeId::of::<K::Scope>() == TypeId::of::<NamespaceResourceScope>(),
        short_names: short.iter().map(|s| s.to_string()).collect(),
        categories: cats.iter().map(|s| s.to_string()).collect(),
        status_subresource: status,
        uses_generation: generation,
        builtin: true,
        schema: None,
        printer_columns: Vec::new(),
        storage_version: K::VERSION.to_string(),
    }
}

/// The built-in kinds the sandbox serves.
pub fn builtins() -> Vec<ResourceType> {
    vec![
        builtin::<Namespace>(true, false, &["ns"], &[]),
        builtin::<ConfigMap>(false, false, &["cm"], &[]),
        builtin::<Secret>(false, false, &[], &[]),
        builtin::<ServiceAccount>(false, false, &["sa"], &[]),
        builtin::<Service>(true, false, &["svc"], &["all"]),
        builtin::<ResourceQuota>(true, false, &["quota"], &[]),
        builtin::<Event>(false, false, &["ev"], &[]),
        builtin::<k8s_openapi::api::events::v1::Event>(false, false, &["ev"], &[]),
        builtin::<Pod>(true, false, &["po"], &["all"]),
        builtin::<Deployment>(true, true, &["deploy"], &["all"]),
        builtin::<ClusterRole>(false, false, &[], &[]),
        builtin::<ClusterRoleBinding>(false, false, &[], &[]),
        builtin::<Role>(false, false, &[], &[]),
        builtin::<RoleBinding>(false, false, &[], &[]),
        builtin::<NetworkPolicy>(false, true, &["netpol"], &[]),
        builtin::<CustomResourceDefinition>(true, true, &["crd", "crds"], &["api-extensions"]),
    ]
}

/// CRD name/spec facts extracted from a stored CRD object.
#[derive(Debug, Clone)]
pub struct CrdInfo {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.uid`.
    pub uid: String,
    /// One type per served version, in CRD order.
    pub types: Vec<ResourceType>,
    /// `Established=True` in status.
    pub established: bool,
    /// `deletionTimestamp` set.
    pub terminating: bool,
}

/// Errors turning a CRD object into served types.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CrdError {
    /// A required field was missing.
    #[error("{0}: Required value")]
    Missing(&'static str),
    /// `metadata.name` is not `<plural>.<group>`.
    #[error("metadata.name: Invalid value: {name:?}: must be spec.names.plural+\".\"+spec.group")]
    BadName {
        /// The name.
        name: String,
    },
    /// Not exactly one storage version.
    #[error(
        "spec.versions: Invalid value: must have exactly one version marked as storage version"
    )]
    StorageVersions,
}

/// Parses the served types of a CRD object (any state).
pub fn crd_info(crd: &Value) -> Result<CrdInfo, CrdError> {
    let spec = crd.get("spec").ok_or(CrdError::Missing("spec"))?;
    let group = spec
        .get("group")
        .and_then(Value::as_str)
        .ok_or(CrdError::Missing("spec.group"))?;
    let names = spec.get("names").ok_or(CrdError::Missing("spec.names"))?;
    let plural = names
        .get("plural")
        .and_then(Value::as_str)
        .ok_or(CrdError::Missing("spec.names.plural"))?;
    let kind = names
        .get("kind")
        .and_then(Value::as_str)
        .ok_or(CrdError::Missing("spec.names.kind"))?;
    let singular = names
        .get("singular")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| kind.to_lowercase());
    let name = crd
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if name != format!("{plural}.{group}") {
        return Err(CrdError::BadName { name });
    }
    let scope = spec
        .get("scope")
        .and_then(Value::as_str)
        .ok_or(CrdError::Missing("spec.scope"))?;
    let strs = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .ok_or(CrdError::Missing("spec.versions"))?;
    let storage: Vec<&str> = versions
        .iter()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .filter_map(|v| v.get("name").and_then(Value::as_str))
        .collect();
    if storage.len() != 1 {
        return Err(CrdError::StorageVersions);
    }
    let mut types = Vec::new();
    for v in versions {
        if v.get("served").and_then(Value::as_bool) != Some(true) {
            continue;
        }
        let vname = v
            .get("name")
            .and_then(Value::as_str)
            .ok_or(CrdError::Missing("spec.versions[].name"))?;
        types.push(ResourceType {
            group: group.to_string(),
            version: vname.to_string(),
            kind: kind.to_string(),
            plural: plural.to_string(),
            singular: singular.clone(),
            namespaced: scope == "Namespaced",
            short_names: strs(names.get("shortNames")),
            categories: strs(names.get("categories")),
            status_subresource: v.pointer("/subresources/status").is_some(),
            uses_generation: true,
            builtin: false,
            schema: v.pointer("/schema/openAPIV3Schema").cloned().map(Arc::new),
            printer_columns: v
                .get("additionalPrinterColumns")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            storage_version: storage[0].to_string(),
        });
    }
    let established = crd
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Established" && c["status"] == "True")
        });
    Ok(CrdInfo {
        name,
        uid: crd
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        types,
        established,
        terminating: crd.pointer("/metadata/deletionTimestamp").is_some(),
    })
}

/// Kubernetes version priority ordering (`v1` > `v1beta2` > `v1beta1` > `v1alpha1` > others),
/// as in apimachinery `version.CompareKubeAwareVersionStrings`. Returns a sort key (lower = preferred).
pub fn version_priority(v: &str) -> (u8, i64, i64, String) {
    let re = v.strip_prefix('v').and_then(|rest| {
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let major: i64 = digits.parse().ok()?;
        let tail = &rest[digits.len()..];
        if tail.is_empty() {
            return Some((0u8, -major, 0i64));
        }
        for (i, stage) in ["beta", "alpha"].iter().enumerate() {
            if let Some(n) = tail.strip_prefix(stage) {
                let minor: i64 = n.parse().ok()?;
                return Some((1 + i as u8, -major, -minor));
            }
        }
        None
    });
    match re {
        Some((a, b, c)) => (a, b, c, String::new()),
        None => (9, 0, 0, v.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn builtin_scopes_come_from_k8s_openapi() {
        let b = builtins();
        let ns = b.iter().find(|t| t.plural == "namespaces").unwrap();
        assert!(!ns.namespaced);
        let d = b.iter().find(|t| t.plural == "deployments").unwrap();
        assert_eq!(
            (d.group.as_str(), d.version.as_str(), d.namespaced),
            ("apps", "v1", true)
        );
    }

    #[test]
    fn version_ordering() {
        let mut v = vec!["v1alpha1", "v2", "v1beta1", "v1", "foo", "v1beta2"];
        v.sort_by_key(|s| version_priority(s));
        assert_eq!(v, vec!["v2", "v1", "v1beta2", "v1beta1", "v1alpha1", "foo"]);
    }

    #[test]
    fn crd_name_must_match() {
        let crd = json!({"metadata":{"name":"x.example.com"},"spec":{"group":"example.com","scope":"Namespaced",
            "names":{"plural":"widgets","kind":"Widget"},"versions":[{"name":"v1","served":true,"storage":true}]}});
        assert_eq!(
            crd_info(&crd).unwrap_err(),
            CrdError::BadName {
                name: "x.example.com".into()
            }
        );
    }
}
