//! The rules the API server enforces on a pod `affinity` ([`super::affinity`]): label selector
//! requirements (operators and values), node selector terms, weights and topology keys, each
//! reported at its attribute path.
//!
//! Lives in `resources/`: may use `framework`, `flux`; does no I/O.

use crate::flux::validate as rule;
use crate::framework::diagnostics::Diagnostics;
use crate::framework::model::Value;
use crate::framework::path::AttrPath;
use crate::resources::affinity::{
    AffinityModel, NodeSelectorTermModel, PREFERRED, PodAffinityTermModel, REQUIRED,
    RequirementModel,
};

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
    use crate::resources::affinity::{from_api, to_api};
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
