//! The Kubernetes pod `affinity` as a typed nested attribute (node affinity, pod affinity and
//! anti-affinity with their selector terms, snake_case forms of the API names), its model, the
//! rules the API server enforces on it, and the conversions to and from API JSON.
//!
//! Lives in `resources/`: may use `framework`, `flux`; does no I/O.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Affinity;
use serde::{Deserialize, Serialize};

use crate::flux::validate as rule;
use crate::framework::diagnostics::Diagnostics;
use crate::framework::model::{Value, from_raw, to_raw};
use crate::framework::path::AttrPath;
use crate::framework::schema::{Attribute, Nesting};
use crate::framework::value::Type;
use crate::resources::common::{api_json_to_value, value_to_api_json};

const REQUIRED: &str = "required_during_scheduling_ignored_during_execution";
const PREFERRED: &str = "preferred_during_scheduling_ignored_during_execution";

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

fn fail(out: &mut Diagnostics, path: AttrPath, message: &str) {
    out.error_at(
        path.clone(),
        "Invalid Affinity",
        format!("{path} {message}."),
    );
}

fn check_requirements(
    out: &mut Diagnostics,
    path: &AttrPath,
    list: &Value<Vec<RequirementModel>>,
    node: bool,
) {
    let allowed: &[&str] = if node {
        &["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"]
    } else {
        &["In", "NotIn", "Exists", "DoesNotExist"]
    };
    for (i, r) in list.as_known().into_iter().flatten().enumerate() {
        let here = path.clone().then_index(i as i64);
        if let Some(key) = r.key.as_known()
            && key.is_empty()
        {
            fail(out, here.clone().then_attr("key"), "must not be empty");
        }
        let Some(op) = r.operator.as_known() else {
            continue;
        };
        if let Err(reason) = rule::one_of(op, allowed) {
            fail(
                out,
                here.then_attr("operator"),
                &format!("= {op:?} {reason}"),
            );
            continue;
        }
        if r.values.is_unknown() {
            continue;
        }
        let values = r.values.as_known().map_or(0, Vec::len);
        let problem = match op.as_str() {
            "In" | "NotIn" if values == 0 => Some("needs at least one value"),
            "Exists" | "DoesNotExist" if values > 0 => Some("takes no values"),
            "Gt" | "Lt" if values != 1 => Some("takes exactly one value"),
            _ => None,
        };
        if let Some(problem) = problem {
            fail(
                out,
                here.then_attr("values"),
                &format!("does not fit: operator {op:?} {problem}"),
            );
        }
    }
}

fn check_node_term(out: &mut Diagnostics, path: &AttrPath, term: &NodeSelectorTermModel) {
    let at = |name: &str| path.clone().then_attr(name);
    check_requirements(out, &at("match_expressions"), &term.match_expressions, true);
    check_requirements(out, &at("match_fields"), &term.match_fields, true);
}

fn check_weight(out: &mut Diagnostics, path: AttrPath, weight: &Value<i64>) {
    if let Some(w) = weight.as_known()
        && !(1..=100).contains(w)
    {
        fail(
            out,
            path,
            &format!("= {w} is out of range: weights are 1-100"),
        );
    }
}

fn check_pod_term(out: &mut Diagnostics, path: &AttrPath, term: &PodAffinityTermModel) {
    if let Some(key) = term.topology_key.as_known()
        && key.is_empty()
    {
        fail(
            out,
            path.clone().then_attr("topology_key"),
            "must not be empty",
        );
    }
    for (name, selector) in [
        ("label_selector", &term.label_selector),
        ("namespace_selector", &term.namespace_selector),
    ] {
        if let Some(selector) = selector.as_known() {
            let here = path.clone().then_attr(name).then_attr("match_expressions");
            check_requirements(out, &here, &selector.match_expressions, false);
        }
    }
}

/// Errors at the offending paths under `at` (the attribute's path): operators and their values,
/// weights, empty keys and topology keys, as the API server checks them.
pub fn validate(model: &AffinityModel, at: &AttrPath, out: &mut Diagnostics) {
    if let Some(node) = model.node_affinity.as_known() {
        let base = at.clone().then_attr("node_affinity");
        if let Some(required) = node
            .required_during_scheduling_ignored_during_execution
            .as_known()
        {
            let terms = base
                .clone()
                .then_attr(REQUIRED)
                .then_attr("node_selector_terms");
            for (i, term) in required
                .node_selector_terms
                .as_known()
                .into_iter()
                .flatten()
                .enumerate()
            {
                check_node_term(out, &terms.clone().then_index(i as i64), term);
            }
        }
        for (i, p) in node
            .preferred_during_scheduling_ignored_during_execution
            .as_known()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let here = base.clone().then_attr(PREFERRED).then_index(i as i64);
            check_weight(out, here.clone().then_attr("weight"), &p.weight);
            if let Some(term) = p.preference.as_known() {
                check_node_term(out, &here.then_attr("preference"), term);
            }
        }
    }
    for (name, pod) in [
        ("pod_affinity", &model.pod_affinity),
        ("pod_anti_affinity", &model.pod_anti_affinity),
    ] {
        let Some(pod) = pod.as_known() else { continue };
        let base = at.clone().then_attr(name);
        for (i, term) in pod
            .required_during_scheduling_ignored_during_execution
            .as_known()
            .into_iter()
            .flatten()
            .enumerate()
        {
            check_pod_term(
                out,
                &base.clone().then_attr(REQUIRED).then_index(i as i64),
                term,
            );
        }
        for (i, w) in pod
            .preferred_during_scheduling_ignored_during_execution
            .as_known()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let here = base.clone().then_attr(PREFERRED).then_index(i as i64);
            check_weight(out, here.clone().then_attr("weight"), &w.weight);
            if let Some(term) = w.pod_affinity_term.as_known() {
                check_pod_term(out, &here.then_attr("pod_affinity_term"), term);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    #[test]
    fn round_trips_through_api_json() {
        let live = json!({
            "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}]}
            ]}},
            "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
                "weight": 50,
                "podAffinityTerm": {
                    "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "flux-operator"}},
                    "topologyKey": "kubernetes.io/hostname"
                }
            }]}
        });
        let model = from_api(&live).unwrap();
        let api = to_api(&model, AttrPath::attr("affinity")).unwrap();
        assert_eq!(serde_json::to_value(api).unwrap(), live);
        let mut out = Diagnostics::default();
        validate(&model, &AttrPath::attr("affinity"), &mut out);
        assert!(!out.has_errors(), "{out:?}");
        assert_eq!(from_api(&serde_json::Value::Null), None);
    }

    #[test]
    fn bad_values_name_their_path() {
        let live = json!({
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "a", "operator": "Within", "values": ["x"]},
                                          {"key": "b", "operator": "Exists", "values": ["x"]}]}
                ]},
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 0, "preference": {"matchFields": [{"key": "metadata.name", "operator": "In"}]}}
                ]
            },
            "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"topologyKey": "", "labelSelector": {"matchExpressions": [{"key": "k", "operator": "Gt", "values": ["1"]}]}}
            ]}
        });
        let model = from_api(&live).unwrap();
        let mut out = Diagnostics::default();
        validate(&model, &AttrPath::attr("affinity"), &mut out);
        let details: Vec<String> = out.iter().map(|d| d.detail.clone()).collect();
        assert_eq!(
            details,
            [
                "affinity.node_affinity.required_during_scheduling_ignored_during_execution.node_selector_terms[0].match_expressions[0].operator = \"Within\" is not allowed; use one of \"In\", \"NotIn\", \"Exists\", \"DoesNotExist\", \"Gt\", \"Lt\".",
                "affinity.node_affinity.required_during_scheduling_ignored_during_execution.node_selector_terms[0].match_expressions[1].values does not fit: operator \"Exists\" takes no values.",
                "affinity.node_affinity.preferred_during_scheduling_ignored_during_execution[0].weight = 0 is out of range: weights are 1-100.",
                "affinity.node_affinity.preferred_during_scheduling_ignored_during_execution[0].preference.match_fields[0].values does not fit: operator \"In\" needs at least one value.",
                "affinity.pod_affinity.required_during_scheduling_ignored_during_execution[0].topology_key must not be empty.",
                "affinity.pod_affinity.required_during_scheduling_ignored_during_execution[0].label_selector.match_expressions[0].operator = \"Gt\" is not allowed; use one of \"In\", \"NotIn\", \"Exists\", \"DoesNotExist\".",
            ]
        );
    }
}
