//! The Kubernetes pod `affinity` as a typed nested attribute (node affinity, pod affinity and
//! anti-affinity with their selector terms, snake_case forms of the API names), its model, the
//! rules the API server enforces on it, and the conversions to and from API JSON.
//!
//! Lives in `resources/`: may use `framework`, `flux`; does no I/O.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Affinity;
use serde::{Deserialize, Serialize};

use crate::framework::diagnostics::Diagnostics;
use crate::framework::model::{Value, from_raw, to_raw};
use crate::framework::path::AttrPath;
use crate::framework::schema::{Attribute, Nesting};
use crate::framework::value::Type;
use crate::resources::common::{api_json_to_value, value_to_api_json};

pub(crate) const REQUIRED: &str = "required_during_scheduling_ignored_during_execution";
pub(crate) const PREFERRED: &str = "preferred_during_scheduling_ignored_during_execution";

/// `affinity`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct AffinityModel {
    pub node_affinity: Value<NodeAffinityModel>,
    pub pod_affinity: Value<PodAffinityModel>,
    pub pod_anti_affinity: Value<PodAffinityModel>,
}

/// `affinity.node_affinity`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct NodeAffinityModel {
    pub required_during_scheduling_ignored_during_execution: Value<NodeSelectorModel>,
    pub preferred_during_scheduling_ignored_during_execution: Value<Vec<PreferredNodeTermModel>>,
}

/// A required node selector: terms, any of which must match.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct NodeSelectorModel {
    pub node_selector_terms: Value<Vec<NodeSelectorTermModel>>,
}

/// A node selector term: requirements on labels and fields, all of which must match.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct NodeSelectorTermModel {
    pub match_expressions: Value<Vec<RequirementModel>>,
    pub match_fields: Value<Vec<RequirementModel>>,
}

/// A selector requirement (`key`, `operator`, `values`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct RequirementModel {
    pub key: Value<String>,
    pub operator: Value<String>,
    pub values: Value<Vec<String>>,
}

/// A weighted preferred node term.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct PreferredNodeTermModel {
    pub weight: Value<i64>,
    pub preference: Value<NodeSelectorTermModel>,
}

/// `affinity.pod_affinity` and `affinity.pod_anti_affinity`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct PodAffinityModel {
    pub required_during_scheduling_ignored_during_execution: Value<Vec<PodAffinityTermModel>>,
    pub preferred_during_scheduling_ignored_during_execution: Value<Vec<WeightedPodTermModel>>,
}

/// A pod affinity term.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct PodAffinityTermModel {
    pub label_selector: Value<LabelSelectorModel>,
    pub namespace_selector: Value<LabelSelectorModel>,
    pub namespaces: Value<Vec<String>>,
    pub topology_key: Value<String>,
}

/// A label selector.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct LabelSelectorModel {
    pub match_labels: Value<BTreeMap<String, String>>,
    pub match_expressions: Value<Vec<RequirementModel>>,
}

/// A weighted pod affinity term.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct WeightedPodTermModel {
    pub weight: Value<i64>,
    pub pod_affinity_term: Value<PodAffinityTermModel>,
}

fn requirements(name: &str, what: &str) -> Attribute {
    Attribute::nested(
        name,
        Nesting::List,
        vec![
            Attribute::string("key")
                .required()
                .description("The label or field key."),
            Attribute::string("operator").required().description(
                "`In`, `NotIn`, `Exists` or `DoesNotExist` (node terms also `Gt`, `Lt`).",
            ),
            Attribute::string_list("values")
                .optional()
                .description("Values; none with `Exists` and `DoesNotExist`."),
        ],
    )
    .optional()
    .description(what)
}

fn node_term(name: &str, description: &str) -> Attribute {
    Attribute::nested(
        name,
        Nesting::Single,
        vec![
            requirements("match_expressions", "Requirements on node labels."),
            requirements(
                "match_fields",
                "Requirements on node fields (`metadata.name`).",
            ),
        ],
    )
    .optional()
    .description(description)
}

fn weight() -> Attribute {
    Attribute::number("weight")
        .required()
        .description("Weight of the preference, 1-100.")
}

fn pod_term_attributes() -> Vec<Attribute> {
    let selector = |name: &str, description: &str| {
        Attribute::nested(
            name,
            Nesting::Single,
            vec![
                Attribute::string_map("match_labels")
                    .optional()
                    .description("Labels the pods must carry."),
                requirements("match_expressions", "Requirements on pod labels."),
            ],
        )
        .optional()
        .description(description)
    };
    vec![
        selector("label_selector", "The pods this term is about."),
        selector(
            "namespace_selector",
            "The namespaces of those pods (with `namespaces`; neither: the pod's own).",
        ),
        Attribute::string_list("namespaces")
            .optional()
            .description("Namespaces of those pods by name."),
        Attribute::string("topology_key").required().description(
            "Node label whose equal values make one topology domain, e.g. \
             `kubernetes.io/hostname`.",
        ),
    ]
}

fn pod_affinity(name: &str, description: &str) -> Attribute {
    Attribute::nested(
        name,
        Nesting::Single,
        vec![
            Attribute::nested(REQUIRED, Nesting::List, pod_term_attributes())
                .optional()
                .description("Terms that must all hold for the pod to be scheduled."),
            Attribute::nested(
                PREFERRED,
                Nesting::List,
                vec![
                    weight(),
                    Attribute::nested("pod_affinity_term", Nesting::Single, pod_term_attributes())
                        .required()
                        .description("The term."),
                ],
            )
            .optional()
            .description("Terms the scheduler prefers, by weight."),
        ],
    )
    .optional()
    .description(description)
}

/// The `affinity` attribute.
pub fn attribute(description: &str) -> Attribute {
    Attribute::nested(
        "affinity",
        Nesting::Single,
        vec![
            Attribute::nested(
                "node_affinity",
                Nesting::Single,
                vec![
                    Attribute::nested(
                        REQUIRED,
                        Nesting::Single,
                        vec![
                            Attribute::nested(
                                "node_selector_terms",
                                Nesting::List,
                                vec![
                                    requirements(
                                        "match_expressions",
                                        "Requirements on node labels.",
                                    ),
                                    requirements(
                                        "match_fields",
                                        "Requirements on node fields (`metadata.name`).",
                                    ),
                                ],
                            )
                            .required()
                            .description("Node selector terms; a node matching any one fits."),
                        ],
                    )
                    .optional()
                    .description("Nodes the pod may only be scheduled on."),
                    Attribute::nested(
                        PREFERRED,
                        Nesting::List,
                        vec![
                            weight(),
                            node_term("preference", "The preferred nodes.").required(),
                        ],
                    )
                    .optional()
                    .description("Nodes the scheduler prefers, by weight."),
                ],
            )
            .optional()
            .description("Which nodes the pod runs on."),
            pod_affinity("pod_affinity", "Pods this pod is placed near."),
            pod_affinity("pod_anti_affinity", "Pods this pod is kept away from."),
        ],
    )
    .optional()
    .description(description)
}

/// The model as the Kubernetes type.
///
/// # Errors
///
/// A diagnostic at `path` when the value does not encode (unknown parts are the caller's).
pub fn to_api(model: &AffinityModel, path: AttrPath) -> Result<Affinity, Diagnostics> {
    to_raw(model)
        .map_err(|e| e.to_string())
        .and_then(|raw| serde_json::from_value(value_to_api_json(&raw)).map_err(|e| e.to_string()))
        .map_err(|e| Diagnostics::from_error_at(path, "Invalid Affinity", format!("{e}.")))
}

/// A live affinity (API JSON) as the model; `None` when it does not fit.
pub fn from_api(json: &serde_json::Value) -> Option<AffinityModel> {
    let raw = api_json_to_value(json, &attribute("").value_type());
    if matches!(raw, crate::framework::value::RawValue::Null) {
        return None;
    }
    from_raw(&raw).ok()
}

/// The type of the attribute (for tests and conversions).
pub fn value_type() -> Type {
    attribute("").value_type()
}
