//! The Flux Operator's own release manifests (`install.yaml`): parsing a multi-document install
//! into objects, ordering them for apply and delete, applying the settings users change through
//! the operator's Helm values (extra env on the `manager` container, resources, tolerations, node
//! selector, an image repository for mirrors, another namespace), the default manifest URL of a
//! release, and the identity of the operator's objects (Deployment, CRDs) for waits and destroy.
//!
//! Objects stay `serde_json::Value`: the install is an open set of kinds. Pure: no I/O (fetching
//! the URL is the caller's job), nothing else from this crate.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ResourceRequirements, Toleration};
use serde_json::{Value, json};

use crate::flux::object::{ObjectError, ObjectRef};
use crate::flux::operator_chart::{self, ChartError, ChartSettings};

/// Name of the operator's Deployment (and ServiceAccount and Service).
pub const DEPLOYMENT_NAME: &str = "flux-operator";
/// Name of the operator's container in the Deployment.
pub const MANAGER_CONTAINER: &str = "manager";
/// The operator's CustomResourceDefinitions (v0.58.1).
pub const CRD_NAMES: [&str; 4] = [
    "fluxinstances.fluxcd.controlplane.io",
    "fluxreports.fluxcd.controlplane.io",
    "resourcesetinputproviders.fluxcd.controlplane.io",
    "resourcesets.fluxcd.controlplane.io",
];
/// The operator's image repository in its release manifests.
pub const DEFAULT_IMAGE_REPOSITORY: &str = "ghcr.io/controlplaneio-fluxcd/flux-operator";
/// Where the operator's releases are published.
pub const RELEASES_URL: &str = "https://github.com/controlplaneio-fluxcd/flux-operator/releases";

const KIND_CRD: &str = "CustomResourceDefinition";
const KIND_NAMESPACE: &str = "Namespace";

/// Why the operator's manifests could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OperatorError {
    /// An operator version is not `vMAJOR.MINOR.PATCH`.
    #[error("invalid Flux Operator version {0:?}: expected a release such as \"v0.58.1\"")]
    ParseVersion(String),
    /// The install YAML does not parse.
    #[error("parsing the operator manifests: {0}")]
    ParseManifests(String),
    /// A document is not a Kubernetes object.
    #[error("operator manifests, document {index}: {source}")]
    ReadObject {
        /// Zero-based position of the document.
        index: usize,
        /// What is missing.
        #[source]
        source: ObjectError,
    },
    /// The manifests contain no `flux-operator` Deployment to customise or wait for.
    #[error("the operator manifests contain no Deployment named {DEPLOYMENT_NAME:?}")]
    FindDeployment,
    /// A chart setting could not be written into the Deployment.
    #[error(transparent)]
    ApplyChartSetting(#[from] ChartError),
    /// A setting could not be encoded into the Deployment.
    #[error("applying operator setting {setting}: {message}")]
    ApplySetting {
        /// The setting (`resources`, `tolerations`).
        setting: &'static str,
        /// What went wrong.
        message: String,
    },
}

/// The default manifest URL of a release: the `install.yaml` asset published with it.
///
/// # Errors
///
/// [`OperatorError::ParseVersion`] unless `version` is `[v]MAJOR.MINOR.PATCH` (with an optional
/// pre-release).
pub fn manifest_url(version: &str) -> Result<String, OperatorError> {
    let version = normalize_version(version)?;
    Ok(format!("{RELEASES_URL}/download/{version}/install.yaml"))
}

/// `0.58.1` or `v0.58.1` as `v0.58.1`.
///
/// # Errors
///
/// [`OperatorError::ParseVersion`].
pub fn normalize_version(version: &str) -> Result<String, OperatorError> {
    let bare = version.strip_prefix('v').unwrap_or(version);
    let (core, pre) = bare.split_once('-').unwrap_or((bare, ""));
    let numeric = core.split('.').count() == 3
        && core
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let pre_ok = pre
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    if numeric && pre_ok && !(bare.contains('-') && pre.is_empty()) {
        Ok(format!("v{bare}"))
    } else {
        Err(OperatorError::ParseVersion(version.to_owned()))
    }
}

/// Parses a multi-document install YAML into objects: empty documents are skipped, `kind: List`
/// documents are expanded into their items, and every object must have `apiVersion`, `kind` and
/// `metadata.name`.
///
/// # Errors
///
/// [`OperatorError::ParseManifests`], [`OperatorError::ReadObject`].
pub fn parse_manifests(yaml: &str) -> Result<Vec<Value>, OperatorError> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(yaml)
        .map_err(|e| OperatorError::ParseManifests(e.to_string()))?;
    let mut out = Vec::new();
    for doc in docs {
        if doc.get("kind").and_then(Value::as_str) == Some("List") {
            if let Some(Value::Array(items)) = doc.get("items") {
                out.extend(items.iter().cloned());
            }
        } else if !doc.is_null() {
            out.push(doc);
        }
    }
    for (index, object) in out.iter().enumerate() {
        ObjectRef::from_manifest(object)
            .map_err(|source| OperatorError::ReadObject { index, source })?;
    }
    Ok(out)
}

fn kind_of(object: &Value) -> &str {
    object.get("kind").and_then(Value::as_str).unwrap_or("")
}

fn name_of(object: &Value) -> &str {
    object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// The apply order of a kind: CRDs, Namespaces, ServiceAccounts, RBAC, configuration,
/// Deployments, Services, then everything else.
pub fn apply_rank(kind: &str) -> u8 {
    match kind {
        KIND_CRD => 0,
        KIND_NAMESPACE => 1,
        "ServiceAccount" => 2,
        "ClusterRole" => 3,
        "ClusterRoleBinding" => 4,
        "Role" => 5,
        "RoleBinding" => 6,
        "ConfigMap" | "Secret" => 7,
        "Deployment" => 8,
        "Service" => 9,
        _ => 10,
    }
}

/// Sorts objects into apply order (stable: the manifest order is kept within a kind).
pub fn sort_for_apply(objects: &mut [Value]) {
    objects.sort_by_key(|o| apply_rank(kind_of(o)));
}

/// Whether a kind is cluster-scoped (the kinds an operator install can contain).
pub fn is_cluster_scoped(kind: &str) -> bool {
    matches!(
        kind,
        KIND_CRD
            | KIND_NAMESPACE
            | "ClusterRole"
            | "ClusterRoleBinding"
            | "PriorityClass"
            | "StorageClass"
            | "PersistentVolume"
            | "ValidatingWebhookConfiguration"
            | "MutatingWebhookConfiguration"
            | "ValidatingAdmissionPolicy"
            | "ValidatingAdmissionPolicyBinding"
            | "APIService"
            | "IngressClass"
            | "RuntimeClass"
    )
}

/// Whether the object is a CustomResourceDefinition.
pub fn is_crd(object: &Value) -> bool {
    kind_of(object) == KIND_CRD
}

/// Splits objects into the CRDs (applied first, then waited for until Established) and the rest,
/// each in apply order.
pub fn split_crds(mut objects: Vec<Value>) -> (Vec<Value>, Vec<Value>) {
    sort_for_apply(&mut objects);
    objects.into_iter().partition(is_crd)
}

/// The settings users change through the operator's Helm values.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct OperatorSettings {
    /// Install into this namespace instead of the manifests' (`flux-system`).
    pub namespace: Option<String>,
    /// Extra environment variables on the manager container (`DEFAULT_SERVICE_ACCOUNT`), set or
    /// replacing an existing variable of the same name.
    pub env: BTreeMap<String, String>,
    /// Resource requests and limits of the manager container, replacing the manifests'.
    pub resources: Option<ResourceRequirements>,
    /// Pod tolerations, replacing the manifests'.
    pub tolerations: Option<Vec<Toleration>>,
    /// Pod node selector, replacing the manifests'.
    pub node_selector: Option<BTreeMap<String, String>>,
    /// Image repository (a mirror) for the manager container; the tag or digest is kept.
    pub image_repository: Option<String>,
    /// Replicas, affinity, priority class, pull secrets, flags and the web UI switch.
    pub chart: ChartSettings,
}

/// The namespace the manifests install into: the operator Deployment's, else the first
/// Namespace object's.
pub fn manifest_namespace(objects: &[Value]) -> Option<String> {
    objects
        .iter()
        .find(|o| kind_of(o) == "Deployment" && name_of(o) == DEPLOYMENT_NAME)
        .and_then(|o| o.pointer("/metadata/namespace"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| {
            objects
                .iter()
                .find(|o| kind_of(o) == KIND_NAMESPACE)
                .map(|o| name_of(o).to_owned())
        })
}

/// Replaces the repository of an image reference, keeping its tag or digest.
pub fn with_repository(image: &str, repository: &str) -> String {
    let name_end = image.find('@').unwrap_or(image.len());
    let last_slash = image[..name_end].rfind('/').map_or(0, |i| i + 1);
    let suffix_start = image[last_slash..name_end]
        .find(':')
        .map_or(name_end, |i| i + last_slash);
    format!("{repository}{}", &image[suffix_start..])
}

/// The tag of an image reference (`v0.58.1`), if it has one.
pub fn image_tag(image: &str) -> Option<&str> {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last_slash = without_digest.rfind('/').map_or(0, |i| i + 1);
    without_digest[last_slash..]
        .split_once(':')
        .map(|(_, tag)| tag)
}

fn manager_container(deployment: &mut Value) -> Option<&mut Value> {
    let containers = deployment
        .pointer_mut("/spec/template/spec/containers")?
        .as_array_mut()?;
    let index = containers
        .iter()
        .position(|c| c.get("name").and_then(Value::as_str) == Some(MANAGER_CONTAINER))
        .unwrap_or(0);
    containers.get_mut(index)
}

fn set_env(container: &mut Value, env: &BTreeMap<String, String>) {
    if env.is_empty() {
        return;
    }
    let Some(object) = container.as_object_mut() else {
        return;
    };
    let list = object.entry("env").or_insert_with(|| json!([]));
    if !list.is_array() {
        *list = json!([]);
    }
    if let Value::Array(entries) = list {
        for (name, value) in env {
            let entry = json!({"name": name, "value": value});
            match entries
                .iter_mut()
                .find(|e| e.get("name").and_then(Value::as_str) == Some(name))
            {
                Some(existing) => *existing = entry,
                None => entries.push(entry),
            }
        }
    }
}

fn encode<T: serde::Serialize>(setting: &'static str, value: &T) -> Result<Value, OperatorError> {
    serde_json::to_value(value).map_err(|e| OperatorError::ApplySetting {
        setting,
        message: e.to_string(),
    })
}

fn set_pod_field(deployment: &mut Value, field: &str, value: Value) {
    if let Some(Value::Object(pod)) = deployment.pointer_mut("/spec/template/spec") {
        pod.insert(field.to_owned(), value);
    }
}

/// Applies `settings` to the manifests' objects (order unchanged).
///
/// The namespace override rewrites every namespaced object, the Namespace object of the original
/// namespace, and `subjects[].namespace` of (Cluster)RoleBindings pointing at the original
/// namespace.
///
/// # Errors
///
/// [`OperatorError::FindDeployment`] when a Deployment setting is given but there is no
/// `flux-operator` Deployment; [`OperatorError::ApplySetting`].
pub fn customize(
    mut objects: Vec<Value>,
    settings: &OperatorSettings,
) -> Result<Vec<Value>, OperatorError> {
    let source_ns = manifest_namespace(&objects);
    if let Some(target) = &settings.namespace {
        for object in &mut objects {
            retarget_namespace(object, source_ns.as_deref(), target);
        }
    }
    let touches_deployment = !settings.env.is_empty()
        || settings.resources.is_some()
        || settings.tolerations.is_some()
        || settings.node_selector.is_some()
        || settings.image_repository.is_some()
        || settings.chart.any();
    if !touches_deployment {
        return Ok(objects);
    }
    let resources = settings
        .resources
        .as_ref()
        .map(|r| encode("resources", r))
        .transpose()?;
    let tolerations = settings
        .tolerations
        .as_ref()
        .map(|t| encode("tolerations", t))
        .transpose()?;
    let node_selector = settings
        .node_selector
        .as_ref()
        .map(|n| encode("node_selector", n))
        .transpose()?;
    let service_index = objects
        .iter()
        .position(|o| kind_of(o) == "Service" && name_of(o) == DEPLOYMENT_NAME);
    let mut service = service_index.and_then(|i| objects.get(i).cloned());
    let deployment = objects
        .iter_mut()
        .find(|o| kind_of(o) == "Deployment" && name_of(o) == DEPLOYMENT_NAME)
        .ok_or(OperatorError::FindDeployment)?;
    operator_chart::apply(
        deployment,
        service.as_mut(),
        MANAGER_CONTAINER,
        &settings.chart,
    )?;
    if let Some(tolerations) = tolerations {
        set_pod_field(deployment, "tolerations", tolerations);
    }
    if let Some(node_selector) = node_selector {
        set_pod_field(deployment, "nodeSelector", node_selector);
    }
    let container = manager_container(deployment).ok_or(OperatorError::ApplySetting {
        setting: "env",
        message: "the Deployment has no containers".into(),
    })?;
    set_env(container, &settings.env);
    if let (Some(resources), Some(map)) = (resources, container.as_object_mut()) {
        map.insert("resources".into(), resources);
    }
    if let Some(repository) = &settings.image_repository {
        let image = container
            .get("image")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if let Some(map) = container.as_object_mut() {
            map.insert("image".into(), json!(with_repository(&image, repository)));
        }
    }
    if let (Some(index), Some(service)) = (service_index, service)
        && let Some(slot) = objects.get_mut(index)
    {
        *slot = service;
    }
    Ok(objects)
}

fn retarget_namespace(object: &mut Value, source: Option<&str>, target: &str) {
    let kind = kind_of(object).to_owned();
    if kind == KIND_NAMESPACE {
        if Some(name_of(object)) == source
            && let Some(Value::Object(meta)) = object.get_mut("metadata")
        {
            meta.insert("name".into(), json!(target));
        }
        return;
    }
    if !is_cluster_scoped(&kind)
        && let Some(Value::Object(meta)) = object.get_mut("metadata")
    {
        meta.insert("namespace".into(), json!(target));
    }
    if matches!(kind.as_str(), "ClusterRoleBinding" | "RoleBinding")
        && let Some(Value::Array(subjects)) = object.get_mut("subjects")
    {
        for subject in subjects {
            let points_at_source = subject
                .get("namespace")
                .and_then(Value::as_str)
                .is_some_and(|ns| Some(ns) == source);
            if points_at_source && let Some(map) = subject.as_object_mut() {
                map.insert("namespace".into(), json!(target));
            }
        }
    }
}

/// References to every object, in the given order.
///
/// # Errors
///
/// [`OperatorError::ReadObject`] for an object without `apiVersion`, `kind` or name.
pub fn object_refs(objects: &[Value]) -> Result<Vec<ObjectRef>, OperatorError> {
    objects
        .iter()
        .enumerate()
        .map(|(index, o)| {
            ObjectRef::from_manifest(o)
                .map_err(|source| OperatorError::ReadObject { index, source })
        })
        .collect()
}

/// The operator Deployment in `namespace`: what apply waits on until Available.
pub fn deployment_ref(namespace: &str) -> ObjectRef {
    ObjectRef {
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        namespace: Some(namespace.to_owned()),
        name: DEPLOYMENT_NAME.into(),
    }
}

/// The operator's CRDs.
pub fn crd_refs() -> Vec<ObjectRef> {
    CRD_NAMES
        .iter()
        .map(|name| ObjectRef {
            api_version: "apiextensions.k8s.io/v1".into(),
            kind: KIND_CRD.into(),
            namespace: None,
            name: (*name).to_owned(),
        })
        .collect()
}

/// What destroy deletes, in delete order (reverse apply order): the workload, Service, RBAC and
/// ServiceAccount; the CRDs only with `delete_crds` (which deletes every FluxInstance and
/// ResourceSet); never the Namespace.
///
/// # Errors
///
/// [`OperatorError::ReadObject`].
pub fn destroy_order(
    objects: &[Value],
    delete_crds: bool,
) -> Result<Vec<ObjectRef>, OperatorError> {
    let mut sorted = objects.to_vec();
    sort_for_apply(&mut sorted);
    sorted.reverse();
    let keep = |o: &Value| match kind_of(o) {
        KIND_NAMESPACE => false,
        KIND_CRD => delete_crds,
        _ => true,
    };
    let kept: Vec<Value> = sorted.into_iter().filter(keep).collect();
    object_refs(&kept)
}

/// The operator version the manifests install: the tag of the manager container's image.
pub fn operator_version(objects: &[Value]) -> Option<String> {
    let mut deployment = objects
        .iter()
        .find(|o| kind_of(o) == "Deployment" && name_of(o) == DEPLOYMENT_NAME)?
        .clone();
    let container = manager_container(&mut deployment)?;
    let image = container.get("image").and_then(Value::as_str)?;
    image_tag(image).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use pretty_assertions::assert_eq;

    const INSTALL: &str = include_str!("testdata/operator/install.yaml");

    fn kinds_and_names(objects: &[Value]) -> Vec<String> {
        objects
            .iter()
            .map(|o| format!("{}/{}", kind_of(o), name_of(o)))
            .collect()
    }

    #[test]
    fn default_manifest_url() {
        let cases: &[(&str, Result<&str, ()>)] = &[
            (
                "v0.58.1",
                Ok(
                    "https://github.com/controlplaneio-fluxcd/flux-operator/releases/download/v0.58.1/install.yaml",
                ),
            ),
            (
                "0.58.1",
                Ok(
                    "https://github.com/controlplaneio-fluxcd/flux-operator/releases/download/v0.58.1/install.yaml",
                ),
            ),
            (
                "v0.59.0-rc.1",
                Ok(
                    "https://github.com/controlplaneio-fluxcd/flux-operator/releases/download/v0.59.0-rc.1/install.yaml",
                ),
            ),
            ("latest", Err(())),
            ("v0.58", Err(())),
            ("v0.58.1/../x", Err(())),
            ("v0.58.1-", Err(())),
        ];
        for (input, want) in cases {
            let got = manifest_url(input).map_err(|_| ());
            assert_eq!(got, want.map(str::to_owned), "input {input:?}");
        }
    }

    #[test]
    fn install_parses_and_sorts_for_apply() {
        let objects = parse_manifests(INSTALL).unwrap();
        assert_eq!(
            kinds_and_names(&objects),
            [
                "Service/flux-operator",
                "Deployment/flux-operator",
                "ClusterRoleBinding/flux-operator-cluster-admin",
                "CustomResourceDefinition/fluxinstances.fluxcd.controlplane.io",
                "ServiceAccount/flux-operator",
                "Namespace/flux-system",
                "ClusterRole/flux-operator-edit",
                "CustomResourceDefinition/resourcesets.fluxcd.controlplane.io",
            ]
        );
        let (crds, rest) = split_crds(objects);
        assert_eq!(
            kinds_and_names(&crds),
            [
                "CustomResourceDefinition/fluxinstances.fluxcd.controlplane.io",
                "CustomResourceDefinition/resourcesets.fluxcd.controlplane.io",
            ]
        );
        assert_eq!(
            kinds_and_names(&rest),
            [
                "Namespace/flux-system",
                "ServiceAccount/flux-operator",
                "ClusterRole/flux-operator-edit",
                "ClusterRoleBinding/flux-operator-cluster-admin",
                "Deployment/flux-operator",
                "Service/flux-operator",
            ]
        );
    }

    #[test]
    fn bad_manifests_are_rejected() {
        let cases = [
            ("not-yaml", "a: [1\n", None),
            (
                "missing-name",
                "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n---\napiVersion: v1\nkind: Service\nmetadata: {}\n",
                Some("operator manifests, document 1: manifest object is missing metadata.name"),
            ),
        ];
        for (name, input, want) in cases {
            let err = parse_manifests(input).unwrap_err();
            match want {
                Some(message) => assert_eq!(err.to_string(), message, "case {name}"),
                None => assert!(
                    matches!(err, OperatorError::ParseManifests(_)),
                    "case {name}: {err}"
                ),
            }
        }
        let list = "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Namespace, metadata: {name: a}}\n- {apiVersion: v1, kind: Namespace, metadata: {name: b}}\n---\n";
        assert_eq!(
            kinds_and_names(&parse_manifests(list).unwrap()),
            ["Namespace/a", "Namespace/b"]
        );
    }

    fn golden(name: &str) -> Vec<Value> {
        serde_saphyr::from_multiple(&crate::flux::golden::read("operator", name)).unwrap()
    }

    #[test]
    fn helm_value_settings_are_applied() {
        let settings = OperatorSettings {
            namespace: Some("flux-operator".into()),
            env: BTreeMap::from([
                (
                    "DEFAULT_SERVICE_ACCOUNT".to_owned(),
                    "flux-operator".to_owned(),
                ),
                ("REPORTING_INTERVAL".to_owned(), "30s".to_owned()),
            ]),
            resources: Some(ResourceRequirements {
                limits: Some(BTreeMap::from([(
                    "memory".to_owned(),
                    Quantity("2Gi".into()),
                )])),
                requests: Some(BTreeMap::from([(
                    "cpu".to_owned(),
                    Quantity("100m".into()),
                )])),
                ..ResourceRequirements::default()
            }),
            tolerations: Some(vec![Toleration {
                key: Some("CriticalAddonsOnly".into()),
                operator: Some("Exists".into()),
                ..Toleration::default()
            }]),
            node_selector: Some(BTreeMap::from([(
                "kubernetes.io/os".to_owned(),
                "linux".to_owned(),
            )])),
            image_repository: Some("registry.internal/mirror/flux-operator".into()),
            chart: ChartSettings {
                replicas: Some(2),
                priority_class_name: Some("system-cluster-critical".into()),
                image_pull_secrets: Some(vec!["regcred".into()]),
                log_level: Some("debug".into()),
                concurrent: Some(20),
                web_ui: Some(false),
                ..ChartSettings::default()
            },
        };
        let mut objects = customize(parse_manifests(INSTALL).unwrap(), &settings).unwrap();
        sort_for_apply(&mut objects);
        if crate::flux::golden::updating() {
            let text = serde_saphyr::to_string_multiple(&objects).unwrap();
            crate::flux::golden::check_text("operator", "customized.yaml", &text);
        }
        assert_eq!(objects, golden("customized.yaml"));
        assert_eq!(manifest_namespace(&objects), Some("flux-operator".into()));
        assert_eq!(operator_version(&objects), Some("v0.58.1".into()));
    }

    #[test]
    fn no_settings_change_nothing() {
        let objects = parse_manifests(INSTALL).unwrap();
        assert_eq!(
            customize(objects.clone(), &OperatorSettings::default()).unwrap(),
            objects
        );
        let without_deployment: Vec<Value> = objects
            .into_iter()
            .filter(|o| kind_of(o) != "Deployment")
            .collect();
        let env = OperatorSettings {
            env: BTreeMap::from([("A".to_owned(), "b".to_owned())]),
            ..OperatorSettings::default()
        };
        assert_eq!(
            customize(without_deployment, &env),
            Err(OperatorError::FindDeployment)
        );
    }

    #[test]
    fn image_references() {
        let cases = [
            (
                "ghcr.io/controlplaneio-fluxcd/flux-operator:v0.58.1",
                "mirror.local:5000/fo",
                "mirror.local:5000/fo:v0.58.1",
                Some("v0.58.1"),
            ),
            (
                "ghcr.io/controlplaneio-fluxcd/flux-operator@sha256:abc",
                "m/fo",
                "m/fo@sha256:abc",
                None,
            ),
            (
                "ghcr.io/x/flux-operator:v1@sha256:abc",
                "m/fo",
                "m/fo:v1@sha256:abc",
                Some("v1"),
            ),
            ("localhost:5000/flux-operator", "m/fo", "m/fo", None),
        ];
        for (image, repository, want, tag) in cases {
            assert_eq!(with_repository(image, repository), want, "image {image}");
            assert_eq!(image_tag(image), tag, "image {image}");
        }
    }

    #[test]
    fn destroy_keeps_namespace_and_crds_unless_asked() {
        let objects = parse_manifests(INSTALL).unwrap();
        let names = |refs: Vec<ObjectRef>| refs.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(
            names(destroy_order(&objects, false).unwrap()),
            [
                "Service/flux-system/flux-operator",
                "Deployment/flux-system/flux-operator",
                "ClusterRoleBinding/flux-operator-cluster-admin",
                "ClusterRole/flux-operator-edit",
                "ServiceAccount/flux-system/flux-operator",
            ]
        );
        assert_eq!(
            names(destroy_order(&objects, true).unwrap())[5..],
            [
                "CustomResourceDefinition/resourcesets.fluxcd.controlplane.io",
                "CustomResourceDefinition/fluxinstances.fluxcd.controlplane.io",
            ]
        );
        assert_eq!(
            deployment_ref("flux-system").to_string(),
            "Deployment/flux-system/flux-operator"
        );
        assert_eq!(crd_refs().len(), 4);
    }
}
