//! From a live `ResourceSet` back to the `flux_resource_set` model: open values compared
//! semantically (a live value equivalent to the prior one keeps the prior spelling), the spec
//! read back, and the operator's status as computed attributes.
//!
//! Lives in `resources/`: may use `framework`, `flux` and `resources::common`; does no I/O.

use serde_json::Value as Json;

use crate::flux::resource_set::{self as rset, InputProviderRef, ResourceSet, Step};
use crate::flux::semantic::{values_equal, yaml_equal};
use crate::framework::diagnostics::Diagnostics;
use crate::framework::model::Value;
use crate::resources::common::CommonMetadataModel;

use super::model::*;
use super::spec::*;

/// Whether a `dynamic` value and live JSON hold the same data (null, absent and an empty list
/// are the same).
pub(crate) fn open_equal(value: &Value<Dynamic>, live: Option<&Json>) -> bool {
    let empty = |j: &Json| j.is_null() || j.as_array().is_some_and(Vec::is_empty);
    match (raw_to_json(&dynamic_raw(value)), live) {
        (Ok(mine), None) => empty(&mine),
        (Ok(mine), Some(live)) => (empty(&mine) && empty(live)) || values_equal(&mine, live),
        (Err(_), _) => false,
    }
}

pub(crate) fn steps_equal(a: &[Step], b: &[Step]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.name == y.name
                && x.timeout == y.timeout
                && match (&x.resources_template, &y.resources_template) {
                    (Some(l), Some(r)) => yaml_equal(l, r),
                    (l, r) => l == r,
                }
                && values_equal(
                    &Json::Array(x.resources.clone().unwrap_or_default()),
                    &Json::Array(y.resources.clone().unwrap_or_default()),
                )
        })
}

/// Whether the open attribute `name` of two models means the same (see
/// [`keep_equivalent_open_values`]).
pub fn open_attribute_equal(name: &str, a: &ResourceSetModel, b: &ResourceSetModel) -> bool {
    match name {
        "inputs" => {
            raw_to_json(&dynamic_raw(&a.inputs)).is_ok_and(|j| open_equal(&b.inputs, Some(&j)))
        }
        "resources" => raw_to_json(&dynamic_raw(&a.resources))
            .is_ok_and(|j| open_equal(&b.resources, Some(&j))),
        "steps" => match (steps_from_raw(&a.steps), steps_from_raw(&b.steps)) {
            (Ok(x), Ok(y)) => steps_equal(&x.unwrap_or_default(), &y.unwrap_or_default()),
            _ => false,
        },
        "resources_template" => match (
            a.resources_template.as_known(),
            b.resources_template.as_known(),
        ) {
            (Some(x), Some(y)) => yaml_equal(x, y),
            _ => a.resources_template == b.resources_template,
        },
        _ => false,
    }
}

/// In `model`, the open values (`inputs`, `resources`, `steps`, `resources_template`) that mean
/// the same as `prior`'s take `prior`'s exact spelling: a template reformatted or values
/// re-spelled is no change.
pub fn keep_equivalent_open_values(model: &mut ResourceSetModel, prior: &ResourceSetModel) {
    for name in ["inputs", "resources", "steps", "resources_template"] {
        if !open_attribute_equal(name, model, prior) {
            continue;
        }
        match name {
            "inputs" => model.inputs = prior.inputs.clone(),
            "resources" => model.resources = prior.resources.clone(),
            "steps" => model.steps = prior.steps.clone(),
            _ => model.resources_template = prior.resources_template.clone(),
        }
    }
}

pub(crate) fn inputs_from_model(list: &[InputProviderRef]) -> Vec<InputFromModel> {
    list.iter()
        .map(|r| InputFromModel {
            name: r.name.clone().into(),
            selector: r
                .selector
                .as_ref()
                .map(|s| SelectorModel {
                    match_labels: s.match_labels.clone().into(),
                    match_expressions: s
                        .match_expressions
                        .as_ref()
                        .map(|list| {
                            list.iter()
                                .map(|e| ExpressionModel {
                                    key: Value::Known(e.key.clone()),
                                    operator: Value::Known(e.operator.clone()),
                                    values: e.values.clone().into(),
                                })
                                .collect()
                        })
                        .into(),
                })
                .into(),
        })
        .collect()
}

/// The model of a live ResourceSet: the spec (open values keep `prior`'s spelling when they mean
/// the same), the reconcile annotations, and the status as computed values. Values only
/// Terraform knows (`deletion_policy`, `timeouts`) are kept from `prior`.
///
/// # Errors
///
/// A diagnostic when the object's annotations do not parse.
pub fn live_model(
    live: &ResourceSet,
    prior: &ResourceSetModel,
) -> Result<ResourceSetModel, Diagnostics> {
    let spec = rset::normalize(&live.spec);
    let namespace = live.metadata.namespace.clone().unwrap_or_default();
    let name = live.metadata.name.clone().unwrap_or_default();
    // As written: a value the operator cannot parse reads back as drift, never as an error.
    let annotations = live.reconcile_annotations();
    let json_list = |list: &Option<Vec<Json>>| list.as_ref().map(|l| Json::Array(l.clone()));
    let inputs = spec
        .inputs
        .as_ref()
        .map(|l| Json::Array(l.iter().cloned().map(Json::Object).collect()));
    let resources = json_list(&spec.resources);
    let mut model = ResourceSetModel {
        id: Value::Known(format!("{namespace}/{name}")),
        name: Value::Known(name),
        namespace: Value::Known(namespace),
        inputs: if open_equal(&prior.inputs, inputs.as_ref()) {
            prior.inputs.clone()
        } else {
            dynamic_value(inputs.as_ref().map(json_to_raw).unwrap_or_default())
        },
        inputs_from: spec.inputs_from.as_deref().map(inputs_from_model).into(),
        input_strategy: spec
            .input_strategy
            .as_ref()
            .map(|s| InputStrategyModel {
                name: Value::Known(s.name.as_str().to_owned()),
                include_empty_providers: s.include_empty_providers.into(),
            })
            .into(),
        resources: if open_equal(&prior.resources, resources.as_ref()) {
            prior.resources.clone()
        } else {
            dynamic_value(resources.as_ref().map(json_to_raw).unwrap_or_default())
        },
        resources_template: spec.resources_template.clone().into(),
        steps: dynamic_value(
            spec.steps
                .as_deref()
                .map(|s| json_to_raw(&steps_to_json(s)))
                .unwrap_or_default(),
        ),
        dependencies: spec
            .depends_on
            .as_ref()
            .map(|list| {
                list.iter()
                    .map(|d| DependencyModel {
                        api_version: Value::Known(d.api_version.clone()),
                        kind: Value::Known(d.kind.clone()),
                        name: Value::Known(d.name.clone()),
                        namespace: d.namespace.clone().into(),
                        ready: d.ready.into(),
                        ready_expr: d.ready_expr.clone().into(),
                    })
                    .collect()
            })
            .into(),
        common_metadata: spec
            .common_metadata
            .as_ref()
            .map(|m| CommonMetadataModel {
                labels: m.labels.clone().into(),
                annotations: m.annotations.clone().into(),
            })
            .into(),
        service_account_name: spec.service_account_name.clone().into(),
        wait: Value::Known(spec.wait.unwrap_or(false)),
        reconcile_every: annotations.reconcile_every.clone().into(),
        reconcile_timeout: annotations.reconcile_timeout.clone().into(),
        suspend: Value::Known(annotations.is_disabled()),
        deletion_policy: prior
            .deletion_policy
            .clone()
            .or(Value::Known("uninstall".into())),
        timeouts: prior.timeouts.clone(),
        ..ResourceSetModel::default()
    };
    // Templates and steps: the prior spelling when equivalent.
    if open_attribute_equal("resources_template", &model, prior) {
        model.resources_template = prior.resources_template.clone();
    }
    if open_attribute_equal("steps", &model, prior) {
        model.steps = prior.steps.clone();
    }
    set_status(&mut model, live);
    Ok(model)
}

/// The computed values from the live object's status.
pub fn set_status(model: &mut ResourceSetModel, live: &ResourceSet) {
    let status = live.status.clone().unwrap_or_default();
    let disabled = live.reconcile_annotations().is_disabled();
    let readiness =
        crate::flux::status::readiness(live.metadata.generation, &status.conditions, disabled);
    model.ready = Value::Known(readiness.is_ready());
    model.last_applied_revision =
        Value::Known(status.last_applied_revision.clone().unwrap_or_default());
    let refs = status
        .inventory
        .as_ref()
        .and_then(|i| i.object_refs().ok())
        .unwrap_or_default();
    model.inventory = Value::Known(
        refs.into_iter()
            .map(|r| InventoryModel {
                api_version: Value::Known(r.api_version),
                kind: Value::Known(r.kind),
                namespace: Value::Known(r.namespace.unwrap_or_default()),
                name: Value::Known(r.name),
            })
            .collect(),
    );
}

#[cfg(test)]
#[path = "flux_resource_set_read_tests.rs"]
mod tests;
