//! The Terraform face of a FluxInstance: the `flux_instance` schema (typed nested attributes
//! whose descriptions are the documentation), its model, and the conversions between the model
//! and the `FluxInstance` object — the spec through the schema-directed API-JSON mapping of
//! [`crate::resources::common`], the reconcile annotations as typed attributes, and the
//! operator's status as computed attributes.
//!
//! Lives in `resources/`: may use `framework`, `flux`; does no I/O.

use serde::{Deserialize, Serialize};

use crate::flux::instance::{
    ClusterSize, ClusterType, Component, ShardingStorage, SyncKind, SyncProvider, Variant,
};
use crate::framework::model::Value;
use crate::framework::schema::{Attribute, Nesting, Schema};
use crate::framework::value::{RawValue, Type};
use crate::resources::common::{
    Timeouts, common_metadata_attribute, deletion_policy_attribute, timeouts_block,
};

/// Computed `installation_status` of a healthy installation.
pub const HEALTHY: &str = "Healthy";

/// The attributes that make up `spec`, in schema order.
pub const SPEC_ATTRIBUTES: [&str; 10] = [
    "distribution",
    "components",
    "cluster",
    "sharding",
    "storage",
    "kustomize",
    "sync",
    "common_metadata",
    "wait",
    "migrate_resources",
];

/// The Terraform data of `flux_instance`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct InstanceModel {
    pub id: Value<String>,
    pub name: Value<String>,
    pub namespace: Value<String>,
    pub distribution: Value<DistributionModel>,
    pub components: Value<Vec<String>>,
    pub cluster: Value<ClusterModel>,
    pub sharding: Value<ShardingModel>,
    pub storage: Value<StorageModel>,
    pub kustomize: Value<KustomizeModel>,
    pub sync: Value<SyncModel>,
    pub common_metadata: Value<CommonMetadataModel>,
    pub wait: Value<bool>,
    pub migrate_resources: Value<bool>,
    pub reconcile_every: Value<String>,
    pub reconcile_artifact_every: Value<String>,
    pub reconcile_timeout: Value<String>,
    pub suspend: Value<bool>,
    pub deletion_policy: Value<String>,
    pub timeouts: Value<Timeouts>,
    pub ready: Value<bool>,
    pub flux_version: Value<String>,
    pub last_applied_revision: Value<String>,
    pub component_images: Value<Vec<ComponentImageModel>>,
    pub inventory_entries: Value<i64>,
    pub installation_status: Value<String>,
}

/// `distribution`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct DistributionModel {
    pub version: Value<String>,
    pub registry: Value<String>,
    pub variant: Value<String>,
    pub image_pull_secret: Value<String>,
    pub artifact: Value<String>,
    pub artifact_pull_secret: Value<String>,
}

/// `cluster`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct ClusterModel {
    #[serde(rename = "type")]
    pub cluster_type: Value<String>,
    pub size: Value<String>,
    pub multitenant: Value<bool>,
    pub network_policy: Value<bool>,
    pub domain: Value<String>,
    pub tenant_default_service_account: Value<String>,
    pub tenant_default_decryption_service_account: Value<String>,
    pub tenant_default_kube_config_service_account: Value<String>,
    pub object_level_workload_identity: Value<bool>,
    pub multitenant_workload_identity: Value<bool>,
}

/// `sharding`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct ShardingModel {
    pub key: Value<String>,
    pub shards: Value<Vec<String>>,
    pub storage: Value<String>,
}

/// `storage`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct StorageModel {
    pub class: Value<String>,
    pub size: Value<String>,
}

/// `kustomize`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct KustomizeModel {
    pub patches: Value<Vec<PatchModel>>,
}

/// One of `kustomize.patches`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct PatchModel {
    pub patch: Value<String>,
    pub target: Value<TargetModel>,
}

/// `kustomize.patches[*].target`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct TargetModel {
    pub group: Value<String>,
    pub version: Value<String>,
    pub kind: Value<String>,
    pub name: Value<String>,
    pub namespace: Value<String>,
    pub label_selector: Value<String>,
    pub annotation_selector: Value<String>,
}

/// `sync`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct SyncModel {
    pub kind: Value<String>,
    pub url: Value<String>,
    #[serde(rename = "ref")]
    pub git_ref: Value<String>,
    pub path: Value<String>,
    pub pull_secret: Value<String>,
    pub interval: Value<String>,
    pub name: Value<String>,
    pub provider: Value<String>,
}

pub use crate::resources::common::CommonMetadataModel;

/// One element of `component_images`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct ComponentImageModel {
    pub name: Value<String>,
    pub repository: Value<String>,
    pub tag: Value<String>,
    pub digest: Value<String>,
}

fn s(name: &str, description: &str) -> Attribute {
    Attribute::string(name).optional().description(description)
}

fn b(name: &str, description: &str) -> Attribute {
    Attribute::bool(name).optional().description(description)
}

pub(crate) fn one_of(values: &[&str]) -> String {
    values
        .iter()
        .map(|v| format!("`{v}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn names<T: Copy>(all: &[T], f: impl Fn(T) -> &'static str) -> Vec<&'static str> {
    all.iter().map(|v| f(*v)).collect()
}

/// The spec attributes (shared with the data source, which makes them computed).
pub fn spec_attributes() -> Vec<Attribute> {
    let components = names(Component::ALL, Component::as_str);
    let default_components = RawValue::Set(
        crate::flux::instance::DEFAULT_COMPONENTS
            .iter()
            .map(|c| RawValue::string(c.as_str()))
            .collect(),
    );
    vec![
        Attribute::nested("distribution", Nesting::Single, vec![
            Attribute::string("version").required().description(
                "Flux version constraint, such as `2.7.x`, `2.7.3` or `>=2.6 <2.8`. The operator \
                 resolves it to the highest version it ships whose minor it embeds. Moving to a \
                 lower minor is refused at plan (the operator cannot downgrade).",
            ),
            Attribute::string("registry").default_value(crate::flux::instance::DEFAULT_REGISTRY)
                .description("Container registry of the Flux images. Default `ghcr.io/fluxcd`; \
                 `ghcr.io/controlplaneio-fluxcd/distroless` for the enterprise distribution, or a mirror."),
            s("variant", &format!("Distribution variant, needed when `registry` is a mirror: {}.",
                one_of(&names(Variant::ALL, Variant::as_str)))),
            s("image_pull_secret", "Name of a `kubernetes.io/dockerconfigjson` Secret in the instance namespace used to pull the images."),
            s("artifact", "OCI artifact (`oci://...`) with the distribution manifests. Unset: the manifests embedded in the operator (recommended for air-gapped clusters)."),
            s("artifact_pull_secret", "Name of a `kubernetes.io/dockerconfigjson` Secret used to pull `artifact`."),
        ]).required().description("Which Flux distribution to install."),
        Attribute::new("components", Type::set(Type::String)).default_value(default_components)
            .description(format!(
                "Flux controllers to install, any of {}. Default: the four core controllers \
                 (`source-controller`, `kustomize-controller`, `helm-controller`, \
                 `notification-controller`). `source-watcher` needs Flux 2.7 or later.",
                one_of(&components))),
        Attribute::nested("cluster", Nesting::Single, vec![
            Attribute::string("type").default_value("kubernetes").description(format!(
                "Platform profile: {}. Default `kubernetes`.",
                one_of(&names(ClusterType::ALL, ClusterType::as_str)))),
            s("size", &format!("Concurrency and resource profile of kustomize-controller and helm-controller: {}.",
                one_of(&names(ClusterSize::ALL, ClusterSize::as_str)))),
            Attribute::bool("multitenant").default_value(false).description("Enable the multi-tenancy lockdown profile. Default `false`."),
            Attribute::bool("network_policy").default_value(true).description("Install the network policies that restrict traffic to the Flux controllers. Default `true`."),
            Attribute::string("domain").default_value("cluster.local").description("Cluster DNS domain. Default `cluster.local`."),
            s("tenant_default_service_account", "Service account impersonated for tenants when multi-tenancy is on (operator default `default`)."),
            s("tenant_default_decryption_service_account", "Default service account for decryption with multi-tenant workload identity."),
            s("tenant_default_kube_config_service_account", "Default service account for remote kubeconfigs with multi-tenant workload identity."),
            b("object_level_workload_identity", "Enable object-level workload identity (Flux 2.6 or later)."),
            Attribute::bool("multitenant_workload_identity").default_value(false).description("Enable multi-tenant workload identity; requires `object_level_workload_identity`. Default `false`."),
        ]).optional().description("Cluster profile. When set, the API server fills in the documented defaults shown on each attribute."),
        Attribute::nested("sharding", Nesting::Single, vec![
            Attribute::string("key").default_value("sharding.fluxcd.io/key").description("Label key that assigns objects to shards. Default `sharding.fluxcd.io/key`."),
            Attribute::new("shards", Type::list(Type::String)).required().description("Shard names; a `<controller>-<shard>` Deployment is created for each sharded controller."),
            s("storage", &format!("Storage of the shards' source-controller: {}. `persistent` requires `storage`.",
                one_of(&names(ShardingStorage::ALL, ShardingStorage::as_str)))),
        ]).optional().description("Horizontal sharding of the controllers."),
        Attribute::nested("storage", Nesting::Single, vec![
            Attribute::string("class").required().description("StorageClass of the source-controller volume."),
            Attribute::string("size").required().description("Size of the volume, e.g. `10Gi`."),
        ]).optional().description("Persistent volume for source-controller artifacts (`/data`)."),
        Attribute::nested("kustomize", Nesting::Single, vec![
            Attribute::nested("patches", Nesting::List, vec![
                Attribute::string("patch").required().description("A strategic-merge or JSON6902 patch, as YAML. Compared semantically: formatting and key order are not a change."),
                Attribute::nested("target", Nesting::Single, vec![
                    s("group", "API group of the objects to patch."),
                    s("version", "API version of the objects to patch."),
                    s("kind", "Kind of the objects to patch."),
                    s("name", "Name (regular expression) of the objects to patch."),
                    s("namespace", "Namespace of the objects to patch."),
                    s("label_selector", "Label selector of the objects to patch."),
                    s("annotation_selector", "Annotation selector of the objects to patch."),
                ]).optional().description("Which rendered objects the patch applies to; unset for a strategic-merge patch that names its target."),
            ]).optional().description("Patches applied to the rendered Flux manifests, including the generated sync objects."),
        ]).optional().description("Kustomize customisation of the Flux manifests."),
        Attribute::nested("sync", Nesting::Single, vec![
            Attribute::string("kind").required().description(format!("Source kind: {}.",
                one_of(&names(SyncKind::ALL, SyncKind::as_str)))),
            Attribute::string("url").required().description("Git URL, `oci://` URL or bucket endpoint."),
            Attribute::string("ref").required().description("Git ref (`refs/heads/main`), OCI tag, or bucket name."),
            Attribute::string("path").required().description("Path inside the source that Flux applies."),
            s("pull_secret", "Name of the Secret with the credentials to pull the source."),
            Attribute::string("interval").default_value("1m").description("How often the source is fetched, a Go duration. Default `1m`."),
            s("name", "Name of the generated source and Kustomization (operator default: the namespace). Immutable: changing it is refused at plan."),
            s("provider", &format!("Authentication provider: {}.",
                one_of(&names(SyncProvider::ALL, SyncProvider::as_str)))),
        ]).optional().description("Make Flux sync the cluster from a source. Removing it, or changing `kind`, makes the operator delete the generated Kustomization, which prunes what it applied: the plan warns."),
        common_metadata_attribute("Labels and annotations set on every object the operator generates.", "Annotations set on every generated object."),
        Attribute::bool("wait").default_value(true).description("Whether the operator health-checks every object it applies. Default `true`."),
        Attribute::bool("migrate_resources").default_value(true).description("Whether the operator migrates Flux custom resources to the latest storage version after an upgrade. Default `true`."),
    ]
}

/// The resource page's paragraph on an installation the operator fails to reconcile.
const FAILING_DOC: &str = "\n\n**When the operator fails the configuration.** When the Flux \
     Operator has reconciled the instance's current configuration and reports a failure (for \
     example a sync repository it cannot reach, or a `sync.path` the repository does not have: \
     its health check waits for the sync source and Kustomization too), the apply fails once the \
     operator gives up, after `reconcile_timeout`, quoting the failing object. Until the \
     configuration changes, the next plans propose no change: applying the same configuration \
     again would only repeat that reconcile. Each plan instead warns `Flux Installation Failing`, \
     quoting the operator's verdict (the one the apply's wait ended on, while the operator is \
     retrying) and, when it names the sync objects, pointing at `sync`. The operator retries on \
     its own; once it succeeds, the next refresh records `ready = true`. Installation drift (a \
     controller deleted or changed) still plans a reconcile.";

/// The `flux_instance` schema.
pub fn schema() -> Schema {
    let mut attributes = vec![
        Attribute::string("id").computed().description("`<namespace>/flux`."),
        Attribute::string("name").default_value("flux").description(
            "Name of the FluxInstance. The operator only reconciles `flux`; anything else is refused at plan.",
        ),
        Attribute::string("namespace").default_value("flux-system").description(
            "Namespace of the FluxInstance: the namespace the Flux Operator runs in (it ignores instances elsewhere). Default `flux-system`. Changing it replaces the instance.",
        ),
    ];
    attributes.extend(spec_attributes());
    attributes.extend([
        s("reconcile_every", "How often the operator re-applies the installation to correct drift (`fluxcd.controlplane.io/reconcileEvery`), a Go duration; operator default `1h`."),
        s("reconcile_artifact_every", "How often the operator checks `distribution.artifact` for a new digest (`fluxcd.controlplane.io/reconcileArtifactEvery`); operator default `10m`."),
        s("reconcile_timeout", "How long the operator health-checks an installation (`fluxcd.controlplane.io/reconcileTimeout`); operator default `5m`."),
        Attribute::bool("suspend").default_value(false).description("Suspend reconciliation (`fluxcd.controlplane.io/reconcile: disabled`). Apply then does not wait for readiness; setting it back to `false` requests a reconcile and waits for the operator's verdict on it (never for the stale `ReconciliationDisabled` status of an instance created suspended). Default `false`."),
        deletion_policy_attribute("the operator uninstalls Flux — controllers, CRDs (and with them every Flux object) — but keeps the namespace and the workloads Flux deployed."),
        Attribute::bool("ready").computed().description("Whether the operator reports the instance Ready for its current generation."),
        Attribute::string("flux_version").computed().description("The Flux version the operator resolved and applied, e.g. `v2.7.3`."),
        Attribute::string("last_applied_revision").computed().description("The operator's last applied revision, `<version>@sha256:<digest>`."),
        Attribute::nested("component_images", Nesting::List, vec![
            Attribute::string("name").computed().description("Component name."),
            Attribute::string("repository").computed().description("Image repository."),
            Attribute::string("tag").computed().description("Image tag."),
            Attribute::string("digest").computed().description("Image digest, when pinned."),
        ]).computed().description("The images the installed components run."),
        Attribute::number("inventory_entries").computed().description("Number of objects in the operator's inventory of this installation."),
        Attribute::string("installation_status").computed().description(
            "`Healthy`, or which inventory objects are missing or unhealthy. A change of this value in a plan means apply will ask the operator to reconcile and wait until the installation is healthy again.",
        ),
    ]);
    let mut schema = Schema::new(
        0,
        "Manages the `FluxInstance` named `flux` and, through the Flux Operator, the Flux \
         installation it describes. Plans are computed against the live object: server defaults \
         never show as changes, edits made with `kubectl` show field by field, and missing or \
         unhealthy Flux controllers show as a pending reconcile. Requires the Flux Operator (see \
         `flux_operator`). Import with `<namespace>/flux`.",
        attributes,
    );
    schema.block = schema.block.with_block(timeouts_block("10m"));
    schema
        .block
        .description
        .push_str(&crate::resources::common::failed_wait_doc(
            "the FluxInstance to be Ready",
            "ready == true",
            "with `deletion_policy = \"uninstall\"` uninstalls Flux and installs it again",
        ));
    schema.block.description.push_str(FAILING_DOC);
    schema
        .block
        .description
        .push_str(&crate::resources::common::existing_object_doc(
            "FluxInstance",
            "<namespace>/flux",
        ));
    schema
        .block
        .description
        .push_str(&crate::resources::common::reconciled_drift_doc(
            "FluxInstance",
        ));
    schema
}

/// A spec attribute value is unknown somewhere.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// Some value is not known yet.
    #[error("the configuration has values not known until apply")]
    Unknown,
    /// The spec does not decode (an invalid enum value, ...).
    #[error("{0}")]
    Invalid(String),
}
