//! The `FluxInstance` API (`fluxcd.controlplane.io/v1`) as typed Rust: spec, status and the
//! annotations that control reconciliation. Serde names are exactly the API's (camelCase); closed
//! sets are enums; absent optional fields are omitted on output so that what we send is what the
//! user declared.
//!
//! Field names, enums and defaults follow the Flux Operator v0.58.1 CRD. Defaults are not applied
//! here but in [`crate::flux::normalize`]. Pure: no I/O, nothing else from this crate.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta};
use serde::{Deserialize, Serialize};

use crate::flux::duration::{DurationError, parse_duration};
use crate::flux::object::Inventory;

/// `apiVersion` of FluxInstance and ResourceSet.
pub const API_VERSION: &str = "fluxcd.controlplane.io/v1";
/// API group of the Flux Operator's kinds.
pub const API_GROUP: &str = "fluxcd.controlplane.io";
/// `kind` of a FluxInstance.
pub const KIND: &str = "FluxInstance";
/// Plural resource name of FluxInstance.
pub const PLURAL: &str = "fluxinstances";
/// The only FluxInstance name the operator accepts (CEL on the object).
pub const INSTANCE_NAME: &str = "flux";
/// The operator's default runtime namespace.
pub const DEFAULT_NAMESPACE: &str = "flux-system";
/// The finalizer the operator adds to FluxInstances and ResourceSets.
pub const FINALIZER: &str = "fluxcd.controlplane.io/finalizer";
/// The default container registry of the upstream distribution.
pub const DEFAULT_REGISTRY: &str = "ghcr.io/fluxcd";

/// Annotation enabling or disabling reconciliation (`enabled` | `disabled`).
pub const ANNOTATION_RECONCILE: &str = "fluxcd.controlplane.io/reconcile";
/// Annotation setting the drift-correction interval (default `1h`).
pub const ANNOTATION_RECONCILE_EVERY: &str = "fluxcd.controlplane.io/reconcileEvery";
/// Annotation setting the artifact polling interval (default `10m`).
pub const ANNOTATION_RECONCILE_ARTIFACT_EVERY: &str =
    "fluxcd.controlplane.io/reconcileArtifactEvery";
/// Annotation setting the health-check timeout (default `5m`).
pub const ANNOTATION_RECONCILE_TIMEOUT: &str = "fluxcd.controlplane.io/reconcileTimeout";
/// Annotation requesting an immediate reconcile; the operator writes it itself too.
pub const ANNOTATION_REQUESTED_AT: &str = "reconcile.fluxcd.io/requestedAt";
/// Annotation forcing a reconcile and a storage-version migration.
pub const ANNOTATION_FORCE_AT: &str = "reconcile.fluxcd.io/forceAt";
/// Annotation excluding a generated object from garbage collection and uninstall.
pub const ANNOTATION_PRUNE: &str = "fluxcd.controlplane.io/prune";
/// Label a Flux Kustomization puts on what it applies; on a FluxInstance it means Flux adopted it.
pub const LABEL_KUSTOMIZE_NAME: &str = "kustomize.toolkit.fluxcd.io/name";
/// Label a Flux HelmRelease puts on what it applies.
pub const LABEL_HELM_NAME: &str = "helm.toolkit.fluxcd.io/name";

/// The operator's default `reconcileEvery`.
pub const DEFAULT_RECONCILE_EVERY: Duration = Duration::from_secs(3600);
/// The operator's default `reconcileArtifactEvery`.
pub const DEFAULT_RECONCILE_ARTIFACT_EVERY: Duration = Duration::from_secs(600);
/// The operator's default `reconcileTimeout`.
pub const DEFAULT_RECONCILE_TIMEOUT: Duration = Duration::from_secs(300);

/// Why a FluxInstance (or its annotations) could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstanceError {
    /// A duration annotation does not parse.
    #[error("annotation {annotation}: {source}")]
    ParseDurationAnnotation {
        /// The annotation key.
        annotation: &'static str,
        /// The parse failure.
        #[source]
        source: DurationError,
    },
    /// The object is not valid FluxInstance JSON.
    #[error("decoding FluxInstance: {0}")]
    Decode(String),
    /// The object could not be encoded as JSON.
    #[error("encoding FluxInstance: {0}")]
    Encode(String),
}

/// A whole FluxInstance object.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct FluxInstance {
    /// Always [`API_VERSION`].
    pub api_version: String,
    /// Always [`KIND`].
    pub kind: String,
    /// Object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The desired state.
    pub spec: FluxInstanceSpec,
    /// The observed state, written by the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<FluxInstanceStatus>,
}

impl FluxInstance {
    /// A FluxInstance named [`INSTANCE_NAME`] in `namespace` with the given spec.
    pub fn new(namespace: &str, spec: FluxInstanceSpec) -> Self {
        Self {
            api_version: API_VERSION.to_owned(),
            kind: KIND.to_owned(),
            metadata: ObjectMeta {
                name: Some(INSTANCE_NAME.to_owned()),
                namespace: Some(namespace.to_owned()),
                ..ObjectMeta::default()
            },
            spec,
            status: None,
        }
    }

    /// Decodes an object read from the API server (e.g. a `DynamicObject` as JSON).
    ///
    /// # Errors
    ///
    /// [`InstanceError::Decode`] when the JSON does not have the FluxInstance shape.
    pub fn from_json(value: serde_json::Value) -> Result<Self, InstanceError> {
        serde_json::from_value(value).map_err(|e| InstanceError::Decode(e.to_string()))
    }

    /// Encodes the object as JSON, omitting absent fields.
    ///
    /// # Errors
    ///
    /// [`InstanceError::Encode`]; not expected for these types.
    pub fn to_json(&self) -> Result<serde_json::Value, InstanceError> {
        serde_json::to_value(self).map_err(|e| InstanceError::Encode(e.to_string()))
    }

    /// The reconcile control annotations present on the object, as written.
    pub fn reconcile_annotations(&self) -> ReconcileAnnotations {
        ReconcileAnnotations::from_annotations(
            self.metadata
                .annotations
                .as_ref()
                .unwrap_or(&BTreeMap::new()),
        )
    }
}

/// `spec` of a FluxInstance.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct FluxInstanceSpec {
    /// Version and registry of the Flux distribution (required).
    pub distribution: Distribution,
    /// Controllers to install; the operator installs the four core controllers when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub components: Option<Vec<Component>>,
    /// Cluster profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<Cluster>,
    /// Horizontal sharding of the controllers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharding: Option<Sharding>,
    /// Persistent storage for source-controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<Storage>,
    /// Kustomize patches applied to the rendered Flux manifests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kustomize: Option<Kustomize>,
    /// The source and Kustomization Flux syncs the cluster from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<SyncSpec>,
    /// Labels and annotations set on every generated object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common_metadata: Option<CommonMetadata>,
    /// Health-check every applied object (CRD default `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<bool>,
    /// Migrate Flux custom resources to the latest storage version (CRD default `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrate_resources: Option<bool>,
}

/// `spec.distribution`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Distribution {
    /// A semver constraint (`2.x`, `2.7.x`, `>=2.6.0`, `2.7.5`), required.
    pub version: String,
    /// The container registry, required by the CRD; the provider defaults it to
    /// [`DEFAULT_REGISTRY`] (see [`crate::flux::normalize`]). Empty means "not given".
    #[serde(default)]
    pub registry: String,
    /// The distribution variant, needed when `registry` is a mirror.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<Variant>,
    /// A `kubernetes.io/dockerconfigjson` Secret for pulling the images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_secret: Option<String>,
    /// An `oci://` URL of the manifests artifact; empty means the embedded manifests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<String>,
    /// A dockerconfigjson Secret used to pull `artifact`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_pull_secret: Option<String>,
}

string_enum! {
    /// `spec.distribution.variant`.
    pub enum Variant {
        /// Upstream images on Alpine.
        UpstreamAlpine => "upstream-alpine",
        /// Enterprise images on Alpine.
        EnterpriseAlpine => "enterprise-alpine",
        /// Enterprise distroless images.
        EnterpriseDistroless => "enterprise-distroless",
        /// Enterprise distroless FIPS images.
        EnterpriseDistrolessFips => "enterprise-distroless-fips",
    }
}

string_enum! {
    /// A Flux controller the operator can install (`spec.components[]`).
    pub enum Component {
        /// source-controller.
        SourceController => "source-controller",
        /// kustomize-controller.
        KustomizeController => "kustomize-controller",
        /// helm-controller.
        HelmController => "helm-controller",
        /// notification-controller.
        NotificationController => "notification-controller",
        /// image-reflector-controller.
        ImageReflectorController => "image-reflector-controller",
        /// image-automation-controller.
        ImageAutomationController => "image-automation-controller",
        /// source-watcher (Flux ≥ 2.7).
        SourceWatcher => "source-watcher",
    }
}

/// The components the operator installs when `spec.components` is absent.
pub const DEFAULT_COMPONENTS: [Component; 4] = [
    Component::SourceController,
    Component::KustomizeController,
    Component::HelmController,
    Component::NotificationController,
];

/// `spec.cluster`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Cluster {
    /// Platform profile (CRD default `kubernetes`).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub cluster_type: Option<ClusterType>,
    /// Size profile for the controllers' concurrency and limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<ClusterSize>,
    /// Multi-tenancy lockdown (CRD default `false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multitenant: Option<bool>,
    /// Install the network policies (CRD default `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_policy: Option<bool>,
    /// The cluster DNS domain (CRD default `cluster.local`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Service account impersonated in tenant namespaces (operator default `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_default_service_account: Option<String>,
    /// Service account used for decryption in tenant namespaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_default_decryption_service_account: Option<String>,
    /// Service account used for remote kubeconfigs in tenant namespaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_default_kube_config_service_account: Option<String>,
    /// Object-level workload identity (Flux ≥ 2.6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_level_workload_identity: Option<bool>,
    /// Multi-tenant workload identity (CRD default `false`; requires
    /// `objectLevelWorkloadIdentity`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multitenant_workload_identity: Option<bool>,
}

string_enum! {
    /// `spec.cluster.type`.
    pub enum ClusterType {
        /// Generic Kubernetes.
        Kubernetes => "kubernetes",
        /// OpenShift.
        Openshift => "openshift",
        /// Amazon EKS.
        Aws => "aws",
        /// Azure AKS.
        Azure => "azure",
        /// Google GKE.
        Gcp => "gcp",
    }
}

string_enum! {
    /// `spec.cluster.size`.
    pub enum ClusterSize {
        /// Small clusters.
        Small => "small",
        /// Medium clusters.
        Medium => "medium",
        /// Large clusters.
        Large => "large",
    }
}

/// `spec.sharding`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Sharding {
    /// The label key objects are sharded by (CRD default `sharding.fluxcd.io/key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Shard names (at least one).
    #[serde(default)]
    pub shards: Vec<String>,
    /// Storage of the shards' source-controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<ShardingStorage>,
}

string_enum! {
    /// `spec.sharding.storage`.
    pub enum ShardingStorage {
        /// emptyDir storage.
        Ephemeral => "ephemeral",
        /// PersistentVolumeClaim storage (requires `spec.storage`).
        Persistent => "persistent",
    }
}

/// `spec.storage`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Storage {
    /// The storage class.
    pub class: String,
    /// The volume size (`10Gi`).
    pub size: String,
}

/// `spec.kustomize`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Kustomize {
    /// Strategic-merge or JSON6902 patches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patches: Vec<KustomizePatch>,
}

/// One entry of `spec.kustomize.patches`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct KustomizePatch {
    /// The patch, YAML or JSON (strategic merge or JSON6902).
    pub patch: String,
    /// Which objects the patch applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<PatchTarget>,
}

/// A kustomize patch target selector.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PatchTarget {
    /// API group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// API version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name (a regular expression in kustomize).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Label selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<String>,
    /// Annotation selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotation_selector: Option<String>,
}

/// `spec.sync`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SyncSpec {
    /// Source kind.
    pub kind: SyncKind,
    /// Repository, OCI or bucket URL.
    pub url: String,
    /// Git ref (`refs/heads/main`), OCI tag or bucket name.
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// Path inside the source.
    pub path: String,
    /// Secret with the credentials to pull the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_secret: Option<String>,
    /// Source interval (CRD default `1m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// Name of the generated source and Kustomization (operator default: the namespace);
    /// immutable once set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Authentication provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<SyncProvider>,
}

string_enum! {
    /// `spec.sync.kind`.
    pub enum SyncKind {
        /// An OCIRepository source.
        OciRepository => "OCIRepository",
        /// A GitRepository source.
        GitRepository => "GitRepository",
        /// A Bucket source.
        Bucket => "Bucket",
    }
}

string_enum! {
    /// `spec.sync.provider`.
    pub enum SyncProvider {
        /// Static credentials.
        Generic => "generic",
        /// AWS workload identity.
        Aws => "aws",
        /// Azure workload identity.
        Azure => "azure",
        /// GCP workload identity (OCIRepository and Bucket only).
        Gcp => "gcp",
        /// GitHub App (GitRepository only).
        Github => "github",
    }
}

/// `spec.commonMetadata` (also used by ResourceSet).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct CommonMetadata {
    /// Labels set on every generated object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Annotations set on every generated object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// `status` of a FluxInstance, written by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct FluxInstanceStatus {
    /// `Ready`, `Reconciling`, `Stalled`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The container images of the installed components.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<ComponentImage>,
    /// The objects the operator applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<Inventory>,
    /// `v<version>@sha256:<digest>` of the last successful apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied_revision: Option<String>,
    /// `v<version>@sha256:<digest>` of the last attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempted_revision: Option<String>,
    /// OCI digest of the pulled artifact; absent with the embedded manifests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_artifact_revision: Option<String>,
    /// Echo of the handled `reconcile.fluxcd.io/requestedAt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
    /// Echo of the handled `reconcile.fluxcd.io/forceAt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_force_at: Option<String>,
    /// The last reconciliations, newest first (at most 5).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryEntry>,
}

/// One entry of `status.components`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ComponentImage {
    /// The component name (`source-controller`, or a shard `source-controller-shard1`).
    pub name: String,
    /// The image repository.
    pub repository: String,
    /// The image tag.
    pub tag: String,
    /// The image digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// One entry of `status.history` (FluxInstance and ResourceSet).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    /// Digest of the applied content.
    pub digest: String,
    /// First time this digest was reconciled (RFC 3339).
    pub first_reconciled: String,
    /// Last time this digest was reconciled (RFC 3339).
    pub last_reconciled: String,
    /// Duration of the last reconciliation.
    pub last_reconciled_duration: String,
    /// Outcome of the last reconciliation.
    pub last_reconciled_status: String,
    /// How often this digest was reconciled.
    pub total_reconciliations: i64,
    /// Extra information (`flux: v2.7.5`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

string_enum! {
    /// Value of the `fluxcd.controlplane.io/reconcile` annotation.
    pub enum ReconcileMode {
        /// The operator reconciles the object (the default).
        Enabled => "enabled",
        /// Reconciliation is paused; deleting the object orphans what it applied.
        Disabled => "disabled",
    }
}

/// The reconcile control annotations of a FluxInstance or ResourceSet, typed. `None` means the
/// annotation is absent and the operator's default applies.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ReconcileAnnotations {
    /// `fluxcd.controlplane.io/reconcile`.
    pub reconcile: Option<ReconcileMode>,
    /// `fluxcd.controlplane.io/reconcileEvery`, as written.
    pub reconcile_every: Option<String>,
    /// `fluxcd.controlplane.io/reconcileArtifactEvery`, as written (FluxInstance only).
    pub reconcile_artifact_every: Option<String>,
    /// `fluxcd.controlplane.io/reconcileTimeout`, as written.
    pub reconcile_timeout: Option<String>,
}

impl ReconcileAnnotations {
    /// The annotation keys this type manages; [`Self::apply_to`] owns exactly these.
    pub const KEYS: [&'static str; 4] = [
        ANNOTATION_RECONCILE,
        ANNOTATION_RECONCILE_EVERY,
        ANNOTATION_RECONCILE_ARTIFACT_EVERY,
        ANNOTATION_RECONCILE_TIMEOUT,
    ];

    /// Reads the managed annotations from an object's annotations, as written; other keys are
    /// ignored. Never fails: a value the operator cannot parse (written by another tool) is kept
    /// as it is, so that it reads back as drift from the configuration instead of making the
    /// object unreadable. A `reconcile` value other than `enabled`/`disabled` reads as absent
    /// (the operator only stops reconciling on `disabled`).
    pub fn from_annotations(annotations: &BTreeMap<String, String>) -> Self {
        let text = |key: &str| annotations.get(key).cloned();
        Self {
            reconcile: annotations
                .get(ANNOTATION_RECONCILE)
                .and_then(|v| v.parse::<ReconcileMode>().ok()),
            reconcile_every: text(ANNOTATION_RECONCILE_EVERY),
            reconcile_artifact_every: text(ANNOTATION_RECONCILE_ARTIFACT_EVERY),
            reconcile_timeout: text(ANNOTATION_RECONCILE_TIMEOUT),
        }
    }

    /// The managed annotations as key/value pairs (absent ones omitted).
    pub fn to_annotations(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        self.apply_to(&mut out);
        out
    }

    /// Writes the managed annotations into `annotations`: present values are set, absent ones are
    /// removed; other keys are left alone.
    pub fn apply_to(&self, annotations: &mut BTreeMap<String, String>) {
        let pairs = [
            (
                ANNOTATION_RECONCILE,
                self.reconcile.map(|m| m.as_str().to_owned()),
            ),
            (ANNOTATION_RECONCILE_EVERY, self.reconcile_every.clone()),
            (
                ANNOTATION_RECONCILE_ARTIFACT_EVERY,
                self.reconcile_artifact_every.clone(),
            ),
            (ANNOTATION_RECONCILE_TIMEOUT, self.reconcile_timeout.clone()),
        ];
        for (key, value) in pairs {
            match value {
                Some(v) => {
                    annotations.insert(key.to_owned(), v);
                }
                None => {
                    annotations.remove(key);
                }
            }
        }
    }

    /// Whether reconciliation is disabled (suspended).
    pub fn is_disabled(&self) -> bool {
        self.reconcile == Some(ReconcileMode::Disabled)
    }

    /// The health-check timeout in effect (`reconcileTimeout`, default 5m).
    ///
    /// # Errors
    ///
    /// [`InstanceError::ParseDurationAnnotation`] if the stored value does not parse.
    pub fn effective_timeout(&self) -> Result<Duration, InstanceError> {
        match &self.reconcile_timeout {
            None => Ok(DEFAULT_RECONCILE_TIMEOUT),
            Some(v) => parse_duration(v).map_err(|source| InstanceError::ParseDurationAnnotation {
                annotation: ANNOTATION_RECONCILE_TIMEOUT,
                source,
            }),
        }
    }
}

/// Whether a Flux applier adopted the object: it carries a `kustomize.toolkit.fluxcd.io/name` or
/// `helm.toolkit.fluxcd.io/name` label (two owners if Terraform manages it as well).
pub fn adopted_by_flux(metadata: &ObjectMeta) -> Option<String> {
    let labels = metadata.labels.as_ref()?;
    [LABEL_KUSTOMIZE_NAME, LABEL_HELM_NAME]
        .iter()
        .find_map(|key| labels.get(*key).map(|v| format!("{key}={v}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flux::object::InventoryEntry;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;
    use pretty_assertions::assert_eq;

    const SAMPLE: &str = include_str!("testdata/instance/full.yaml");

    fn time(s: &str) -> Time {
        Time(s.parse::<Timestamp>().unwrap())
    }

    fn sample_expected() -> FluxInstance {
        FluxInstance {
            api_version: API_VERSION.into(),
            kind: KIND.into(),
            metadata: ObjectMeta {
                name: Some("flux".into()),
                namespace: Some("flux-system".into()),
                generation: Some(3),
                finalizers: Some(vec![FINALIZER.into()]),
                annotations: Some(BTreeMap::from([
                    (ANNOTATION_RECONCILE_EVERY.into(), "30m".into()),
                    (ANNOTATION_RECONCILE_TIMEOUT.into(), "3m".into()),
                ])),
                ..ObjectMeta::default()
            },
            spec: FluxInstanceSpec {
                distribution: Distribution {
                    version: "2.7.x".into(),
                    registry: "ghcr.io/fluxcd".into(),
                    variant: Some(Variant::UpstreamAlpine),
                    image_pull_secret: Some("registry-auth".into()),
                    artifact: Some(
                        "oci://ghcr.io/controlplaneio-fluxcd/flux-operator-manifests:latest".into(),
                    ),
                    artifact_pull_secret: None,
                },
                components: Some(vec![
                    Component::SourceController,
                    Component::KustomizeController,
                    Component::HelmController,
                    Component::NotificationController,
                    Component::ImageReflectorController,
                    Component::ImageAutomationController,
                ]),
                cluster: Some(Cluster {
                    cluster_type: Some(ClusterType::Kubernetes),
                    size: Some(ClusterSize::Medium),
                    multitenant: Some(false),
                    network_policy: Some(true),
                    domain: Some("cluster.local".into()),
                    tenant_default_service_account: Some("flux".into()),
                    ..Cluster::default()
                }),
                sharding: Some(Sharding {
                    key: Some("sharding.fluxcd.io/key".into()),
                    shards: vec!["shard1".into(), "shard2".into()],
                    storage: Some(ShardingStorage::Persistent),
                }),
                storage: Some(Storage {
                    class: "standard".into(),
                    size: "10Gi".into(),
                }),
                kustomize: Some(Kustomize {
                    patches: vec![KustomizePatch {
                        patch: "- op: add\n  path: /spec/template/spec/containers/0/args/-\n  value: --requeue-dependency=5s\n".into(),
                        target: Some(PatchTarget {
                            kind: Some("Deployment".into()),
                            name: Some("(kustomize-controller|helm-controller)".into()),
                            ..PatchTarget::default()
                        }),
                    }],
                }),
                sync: Some(SyncSpec {
                    kind: SyncKind::GitRepository,
                    url: "https://github.com/example/fleet.git".into(),
                    git_ref: "refs/heads/main".into(),
                    path: "clusters/production".into(),
                    pull_secret: Some("flux-system".into()),
                    interval: Some("1m".into()),
                    name: None,
                    provider: None,
                }),
                common_metadata: Some(CommonMetadata {
                    labels: Some(BTreeMap::from([("team".into(), "platform".into())])),
                    annotations: None,
                }),
                wait: Some(true),
                migrate_resources: Some(true),
            },
            status: Some(FluxInstanceStatus {
                conditions: vec![Condition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    observed_generation: Some(3),
                    last_transition_time: time("2026-11-20T10:00:00Z"),
                    reason: "ReconciliationSucceeded".into(),
                    message: "Reconciliation finished in 12s".into(),
                }],
                components: vec![ComponentImage {
                    name: "source-controller".into(),
                    repository: "ghcr.io/fluxcd/source-controller".into(),
                    tag: "v1.7.4".into(),
                    digest: Some("sha256:0123456789abcdef".into()),
                }],
                inventory: Some(Inventory {
                    entries: vec![InventoryEntry {
                        id: "flux-system_source-controller_apps_Deployment".into(),
                        v: "v1".into(),
                    }],
                }),
                last_applied_revision: Some("v2.7.5@sha256:abc".into()),
                last_attempted_revision: Some("v2.7.5@sha256:abc".into()),
                last_artifact_revision: None,
                last_handled_reconcile_at: Some("2026-11-20T09:59:00Z".into()),
                last_handled_force_at: None,
                history: vec![HistoryEntry {
                    digest: "sha256:abc".into(),
                    first_reconciled: "2026-11-20T09:00:00Z".into(),
                    last_reconciled: "2026-11-20T10:00:00Z".into(),
                    last_reconciled_duration: "12.1s".into(),
                    last_reconciled_status: "ReconciliationSucceeded".into(),
                    total_reconciliations: 2,
                    metadata: BTreeMap::from([("flux".into(), "v2.7.5".into())]),
                }],
            }),
        }
    }

    #[test]
    fn realistic_instance_decodes_field_by_field() {
        let decoded: FluxInstance = serde_saphyr::from_str(SAMPLE).unwrap();
        assert_eq!(decoded, sample_expected());
    }

    #[test]
    fn realistic_instance_round_trips_through_json() {
        let decoded: FluxInstance = serde_saphyr::from_str(SAMPLE).unwrap();
        let as_value: serde_json::Value = serde_saphyr::from_str(SAMPLE).unwrap();
        // Every field of the sample survives encoding, with the API's names.
        assert_eq!(decoded.to_json().unwrap(), as_value);
        assert_eq!(FluxInstance::from_json(as_value).unwrap(), decoded);
    }

    #[test]
    fn absent_fields_are_not_sent() {
        let instance = FluxInstance::new(
            "flux-system",
            FluxInstanceSpec {
                distribution: Distribution {
                    version: "2.7.x".into(),
                    registry: DEFAULT_REGISTRY.into(),
                    ..Distribution::default()
                },
                ..FluxInstanceSpec::default()
            },
        );
        assert_eq!(
            instance.to_json().unwrap(),
            serde_json::json!({
                "apiVersion": "fluxcd.controlplane.io/v1",
                "kind": "FluxInstance",
                "metadata": {"name": "flux", "namespace": "flux-system"},
                "spec": {"distribution": {"version": "2.7.x", "registry": "ghcr.io/fluxcd"}},
            })
        );
    }

    #[test]
    fn unknown_enum_values_are_rejected_with_the_allowed_list() {
        let err = "flux-controller".parse::<Component>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "\"flux-controller\" is not a valid Component; expected one of: source-controller, \
             kustomize-controller, helm-controller, notification-controller, \
             image-reflector-controller, image-automation-controller, source-watcher"
        );
        let decoded = FluxInstance::from_json(serde_json::json!({
            "apiVersion": API_VERSION, "kind": KIND, "metadata": {},
            "spec": {"distribution": {"version": "2.x", "registry": "r"}, "cluster": {"size": "huge"}},
        }));
        assert!(matches!(decoded, Err(InstanceError::Decode(m)) if m.contains("huge")));
    }

    #[test]
    fn reconcile_annotations_parse_and_render() {
        let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        type Case = (&'static str, BTreeMap<String, String>, ReconcileAnnotations);
        let cases: Vec<Case> = vec![
            (
                "none",
                map(&[("other", "x")]),
                ReconcileAnnotations::default(),
            ),
            (
                "all",
                map(&[
                    (ANNOTATION_RECONCILE, "disabled"),
                    (ANNOTATION_RECONCILE_EVERY, "30m"),
                    (ANNOTATION_RECONCILE_ARTIFACT_EVERY, "5m"),
                    (ANNOTATION_RECONCILE_TIMEOUT, "1h30m"),
                ]),
                ReconcileAnnotations {
                    reconcile: Some(ReconcileMode::Disabled),
                    reconcile_every: Some("30m".into()),
                    reconcile_artifact_every: Some("5m".into()),
                    reconcile_timeout: Some("1h30m".into()),
                },
            ),
            (
                "a mode the operator ignores reads as absent",
                map(&[(ANNOTATION_RECONCILE, "off")]),
                ReconcileAnnotations::default(),
            ),
            (
                "an unparsable duration reads as written",
                map(&[
                    (ANNOTATION_RECONCILE_EVERY, "5 minutes"),
                    (ANNOTATION_RECONCILE_TIMEOUT, "1d"),
                ]),
                ReconcileAnnotations {
                    reconcile_every: Some("5 minutes".into()),
                    reconcile_timeout: Some("1d".into()),
                    ..ReconcileAnnotations::default()
                },
            ),
        ];
        for (name, input, want) in cases {
            let got = ReconcileAnnotations::from_annotations(&input);
            assert_eq!(got, want, "case {name}");
            if name != "a mode the operator ignores reads as absent" {
                let mut rendered = input.clone();
                rendered.retain(|k, _| !ReconcileAnnotations::KEYS.contains(&k.as_str()));
                rendered.extend(got.to_annotations());
                assert_eq!(rendered, input, "case {name} renders back");
            }
        }
    }

    #[test]
    fn apply_to_removes_absent_annotations_and_keeps_others() {
        let mut annotations = BTreeMap::from([
            (ANNOTATION_RECONCILE.to_owned(), "disabled".to_owned()),
            (ANNOTATION_REQUESTED_AT.to_owned(), "now".to_owned()),
        ]);
        ReconcileAnnotations {
            reconcile_timeout: Some("10m".into()),
            ..ReconcileAnnotations::default()
        }
        .apply_to(&mut annotations);
        assert_eq!(
            annotations,
            BTreeMap::from([
                (ANNOTATION_RECONCILE_TIMEOUT.to_owned(), "10m".to_owned()),
                (ANNOTATION_REQUESTED_AT.to_owned(), "now".to_owned()),
            ])
        );
    }

    #[test]
    fn effective_timeout_defaults_to_five_minutes() {
        assert_eq!(
            ReconcileAnnotations::default().effective_timeout(),
            Ok(Duration::from_secs(300))
        );
        let set = ReconcileAnnotations {
            reconcile_timeout: Some("90s".into()),
            ..ReconcileAnnotations::default()
        };
        assert_eq!(set.effective_timeout(), Ok(Duration::from_secs(90)));
    }

    #[test]
    fn adoption_is_read_from_the_flux_labels() {
        let meta = |labels: &[(&str, &str)]| ObjectMeta {
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            ..ObjectMeta::default()
        };
        assert_eq!(adopted_by_flux(&ObjectMeta::default()), None);
        assert_eq!(adopted_by_flux(&meta(&[("app", "x")])), None);
        assert_eq!(
            adopted_by_flux(&meta(&[(LABEL_KUSTOMIZE_NAME, "flux-system")])),
            Some("kustomize.toolkit.fluxcd.io/name=flux-system".into())
        );
        assert_eq!(
            adopted_by_flux(&meta(&[(LABEL_HELM_NAME, "flux")])),
            Some("helm.toolkit.fluxcd.io/name=flux".into())
        );
    }
}
