//! The Terraform face of a ResourceSet: the `flux_resource_set` schema (descriptions are the
//! documentation) and its model: the spec (open values such as `inputs`, `resources` and `steps` as `dynamic`
//! attributes, the rest typed), the reconcile annotations as typed attributes, and the
//! operator's status as computed attributes. Open values compare semantically
//! ([`crate::flux::semantic`]): a live value equivalent to the prior one keeps the prior spelling.
//!
//! `dynamic` attributes travel through the framework's serde bridge as [`Dynamic`]
//! ([`crate::resources::flux_resource_set_dynamic`]). The conversions to the object are in
//! `flux_resource_set::spec`, the reading back of a live object in `flux_resource_set::read`.
//!
//! Lives in `resources/`: may use `framework`, `flux` and `resources::common`; does no I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::framework::model::Value;
use crate::framework::schema::{Attribute, Nesting, Schema};
use crate::framework::value::Type;
use crate::resources::common::{
    CommonMetadataModel, Timeouts, common_metadata_attribute, deletion_policy_attribute,
    timeouts_block,
};

/// Computed `inventory_status` when every generated object exists and is healthy.
pub const HEALTHY: &str = "Healthy";

/// The `dynamic` attributes.
pub const OPEN_ATTRIBUTES: [&str; 3] = ["inputs", "resources", "steps"];

/// The attributes written to the object (spec and annotations): a change means an apply.
pub const DESIRED_ATTRIBUTES: [&str; 14] = [
    "inputs",
    "inputs_from",
    "input_strategy",
    "resources",
    "resources_template",
    "steps",
    "dependencies",
    "common_metadata",
    "service_account_name",
    "wait",
    "reconcile_every",
    "reconcile_timeout",
    "suspend",
    "namespace",
];

/// The Terraform data of `flux_resource_set`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct ResourceSetModel {
    pub id: Value<String>,
    pub name: Value<String>,
    pub namespace: Value<String>,
    pub inputs: Value<Dynamic>,
    pub inputs_from: Value<Vec<InputFromModel>>,
    pub input_strategy: Value<InputStrategyModel>,
    pub resources: Value<Dynamic>,
    pub resources_template: Value<String>,
    pub steps: Value<Dynamic>,
    pub dependencies: Value<Vec<DependencyModel>>,
    pub common_metadata: Value<CommonMetadataModel>,
    pub service_account_name: Value<String>,
    pub wait: Value<bool>,
    pub reconcile_every: Value<String>,
    pub reconcile_timeout: Value<String>,
    pub suspend: Value<bool>,
    pub deletion_policy: Value<String>,
    pub timeouts: Value<Timeouts>,
    pub ready: Value<bool>,
    pub last_applied_revision: Value<String>,
    pub inventory: Value<Vec<InventoryModel>>,
    pub inventory_status: Value<String>,
}

/// One of `inputs_from`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct InputFromModel {
    pub name: Value<String>,
    pub selector: Value<SelectorModel>,
}

/// `inputs_from[*].selector`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct SelectorModel {
    pub match_labels: Value<BTreeMap<String, String>>,
    pub match_expressions: Value<Vec<ExpressionModel>>,
}

/// `inputs_from[*].selector.match_expressions[*]`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct ExpressionModel {
    pub key: Value<String>,
    pub operator: Value<String>,
    pub values: Value<Vec<String>>,
}

/// `input_strategy`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct InputStrategyModel {
    pub name: Value<String>,
    pub include_empty_providers: Value<bool>,
}

/// One of `dependencies` (the API's `dependsOn`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct DependencyModel {
    pub api_version: Value<String>,
    pub kind: Value<String>,
    pub name: Value<String>,
    pub namespace: Value<String>,
    pub ready: Value<bool>,
    pub ready_expr: Value<String>,
}

/// One element of the computed `inventory`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct InventoryModel {
    pub api_version: Value<String>,
    pub kind: Value<String>,
    pub namespace: Value<String>,
    pub name: Value<String>,
}

fn s(name: &str, description: &str) -> Attribute {
    Attribute::string(name).optional().description(description)
}

/// The `flux_resource_set` schema.
pub fn schema() -> Schema {
    let attributes = vec![
        Attribute::string("id").computed().description("`<namespace>/<name>`."),
        Attribute::string("name").required().description("Name of the ResourceSet. Changing it replaces the ResourceSet (and, with `deletion_policy = \"uninstall\"`, what it generated)."),
        Attribute::string("namespace").required().description("Namespace of the ResourceSet; `inputs_from` providers are looked up here. Changing it replaces the ResourceSet."),
        Attribute::new("inputs", Type::Dynamic).optional().description(
            "Input sets: a list of objects of arbitrary values, written in HCL (`[{ tenant = \"team-a\", replicas = 2 }]`) or with `yamldecode`. The templates are rendered once per input set and read a value as `<< inputs.tenant >>`. Compared semantically: key order and the spelling (HCL or decoded YAML) are not a change; a plan shows the changed fields."),
        Attribute::nested("inputs_from", Nesting::List, vec![
            s("name", "Name of a `ResourceSetInputProvider` in the ResourceSet's namespace. Exactly one of `name` and `selector`. Plan warns when it does not exist: the operator reports the ResourceSet Stalled (\"failed to compute inputs\"). A provider created in the same apply must come first: refer to its `name` attribute (`flux_resource_set_input_provider.x.name`) or add `depends_on`."),
            Attribute::nested("selector", Nesting::Single, vec![
                Attribute::string_map("match_labels").optional().description("Labels the providers must carry."),
                Attribute::nested("match_expressions", Nesting::List, vec![
                    Attribute::string("key").required().description("Label key."),
                    Attribute::string("operator").required().description("`In`, `NotIn`, `Exists` or `DoesNotExist`."),
                    Attribute::string_list("values").optional().description("Values for `In` and `NotIn`."),
                ]).optional().description("Label selector requirements."),
            ]).optional().description("Select `ResourceSetInputProvider`s in the ResourceSet's namespace by label. Exactly one of `name` and `selector`."),
        ]).optional().description("Take input sets from `ResourceSetInputProvider`s (same namespace), by name or by label selector."),
        Attribute::nested("input_strategy", Nesting::Single, vec![
            Attribute::string("name").required().description("`Flatten` (the providers' input sets one after the other) or `Permute` (every combination; each provider's inputs nested under its normalised name)."),
            Attribute::bool("include_empty_providers").optional().description("`Permute` only: keep combinations with providers that export no inputs."),
        ]).optional().description("How input sets from several providers combine. Operator default: `Flatten`."),
        Attribute::new("resources", Type::Dynamic).optional().description(
            "Object templates: a list of Kubernetes objects, typically written as HCL objects or with `yamldecode`; objects of different shapes may be mixed. String values may use the operator's `<< >>` template delimiters, which pass through untouched. Compared semantically. Mutually exclusive with `steps`."),
        s("resources_template", "A multi-document YAML template of objects (Go `text/template` with `<< >>` delimiters, e.g. a heredoc). Merged with `resources`, which wins on duplicates. Compared semantically: reformatting, key order and comments are not a change. Mutually exclusive with `steps`."),
        Attribute::new("steps", Type::Dynamic).optional().description(
            "Ordered steps, each applied and health-checked before the next: a list of objects `{ name, resources, resources_template, timeout }` (`name` a DNS label, unique; at least one of `resources` and `resources_template`; `timeout` a Go duration). 1 to 20 steps. Mutually exclusive with `resources` and `resources_template`."),
        Attribute::nested("dependencies", Nesting::List, vec![
            Attribute::string("api_version").required().description("API version of the dependency, e.g. `apiextensions.k8s.io/v1`."),
            Attribute::string("kind").required().description("Kind of the dependency."),
            Attribute::string("name").required().description("Name of the dependency."),
            s("namespace", "Namespace of the dependency, used as given: the operator does not default it to the ResourceSet's, so a namespaced dependency needs it (refused at plan for the core, Flux and Flux Operator kinds); leave it unset only for cluster-scoped kinds."),
            Attribute::bool("ready").optional().description("Also wait until the dependency is ready, not only present: a ResourceSet or ResourceSetInputProvider when `Ready` for its current generation, any other kind when kstatus reports it current (a Deployment Available, a ConfigMap as soon as it exists)."),
            s("ready_expr", "A CEL expression deciding readiness in place of the default check; only evaluated with `ready = true` (refused at plan otherwise)."),
        ]).optional().description("Objects that must exist (and be ready) before the operator reconciles the ResourceSet (the API's `dependsOn`; renamed because `depends_on` is a Terraform meta-argument). While one is missing or not ready, the operator reports `DependencyNotReady` and apply keeps waiting until its timeout."),
        common_metadata_attribute("Labels and annotations set on every generated object.", "Annotations set on every generated object; `fluxcd.controlplane.io/prune: disabled` disables garbage collection."),
        s("service_account_name", "Service account (in the ResourceSet's namespace) the operator impersonates to apply and prune the generated objects. Plan warns when it does not exist. Create it before the ResourceSet and destroy it after: if the operator cannot impersonate it on delete, it skips pruning and leaves the generated objects behind."),
        Attribute::bool("wait").default_value(false).description("Whether the operator health-checks the generated objects before reporting Ready. Default `false` (the operator's default)."),
        s("reconcile_every", "How often the operator re-applies the generated objects to correct drift (`fluxcd.controlplane.io/reconcileEvery`), a Go duration; operator default `1h`."),
        s("reconcile_timeout", "How long the operator health-checks the generated objects (`fluxcd.controlplane.io/reconcileTimeout`); operator default `5m`."),
        Attribute::bool("suspend").default_value(false).description("Suspend reconciliation (`fluxcd.controlplane.io/reconcile: disabled`). Apply then does not wait for readiness. Default `false`."),
        deletion_policy_attribute("the operator deletes every object the ResourceSet generated (except those annotated `fluxcd.controlplane.io/prune: disabled`)."),
        Attribute::bool("ready").computed().description("Whether the operator reports the ResourceSet Ready for its current generation."),
        Attribute::string("last_applied_revision").computed().description("The operator's last applied revision (a digest of the rendered objects)."),
        Attribute::nested("inventory", Nesting::List, vec![
            Attribute::string("api_version").computed().description("API version of the generated object."),
            Attribute::string("kind").computed().description("Kind of the generated object."),
            Attribute::string("namespace").computed().description("Namespace of the generated object; empty for cluster-scoped objects."),
            Attribute::string("name").computed().description("Name of the generated object."),
        ]).computed().description("Every object the ResourceSet generated, from the operator's inventory."),
        Attribute::string("inventory_status").computed().description("`Healthy`, or which generated objects are missing or unhealthy (deleted by hand, for instance). A change of this value in a plan means apply will ask the operator to reconcile the ResourceSet and wait until it is Ready again."),
    ];
    let mut schema = Schema::new(
        0,
        "Manages a Flux Operator `ResourceSet`: Kubernetes objects generated from templates for \
         each input set (a tenant, a preview environment, a per-cluster add-on). Plans diff the \
         spec field by field against the live object; templates and open values compare \
         semantically, and the operator's `<< >>` delimiters pass through untouched. Apply \
         waits until the operator reports the ResourceSet Ready. Requires the Flux Operator \
         (see `flux_operator`). Import with `<namespace>/<name>`.",
        attributes,
    );
    schema.block = schema.block.with_block(timeouts_block("10m"));
    schema
        .block
        .description
        .push_str(&crate::resources::common::failed_wait_doc(
            "the ResourceSet to be Ready",
            "ready == true",
            "with `deletion_policy = \"uninstall\"` deletes every object it generated and \
             creates them again",
        ));
    schema
        .block
        .description
        .push_str(&crate::resources::common::existing_object_doc(
            "ResourceSet",
            "<namespace>/<name>",
        ));
    schema
        .block
        .description
        .push_str(&crate::resources::common::reconciled_drift_doc(
            "ResourceSet",
        ));
    schema
}

pub use crate::resources::flux_resource_set_dynamic::{
    Dynamic, SpecError, dynamic_raw, dynamic_value, json_to_raw, raw_to_json,
};
