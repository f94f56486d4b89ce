//! `flux_resource_set_input_provider`'s model against the API object: the
//! ResourceSetInputProvider a configuration makes, the CRD's and the operator's rules on its
//! fields (checked at validate and plan with their attribute paths), and the model a live object
//! reads back as, with its status as computed values.
//!
//! Lives in `resources/`: may use `framework`, `flux`, `cluster`, never `provider`.

use serde_json::{Map, Value as Json};

use super::model::*;
use crate::flux::duration::parse_duration;
use crate::flux::input_provider::{self as rsip, InputProvider, InputProviderSpec};
use crate::flux::instance::{
    ANNOTATION_RECONCILE, ANNOTATION_RECONCILE_EVERY, ANNOTATION_RECONCILE_TIMEOUT,
    ReconcileAnnotations, ReconcileMode,
};
use crate::framework::diagnostics::Diagnostics;
use crate::framework::model::{Value, from_raw, to_raw};
use crate::framework::path::AttrPath;
use crate::framework::value::{RawValue, Type};
use crate::resources::common::{
    api_field_to_path, api_json_to_value, camel_case, value_to_api_json,
};
use crate::resources::flux_resource_set::model::{
    Dynamic, SpecError, dynamic_raw, dynamic_value, json_to_raw, raw_to_json,
};

fn attribute_type(name: &str) -> Type {
    schema()
        .block
        .attribute(name)
        .map_or(Type::Dynamic, |a| a.value_type())
}

fn shape(path: AttrPath, message: impl Into<String>) -> SpecError {
    SpecError::Shape {
        path,
        message: message.into(),
    }
}

/// The spec JSON a model describes.
///
/// # Errors
///
/// [`SpecError::Unknown`] while a spec value is unknown; [`SpecError::Shape`] when
/// `default_values` is not an object.
pub fn model_spec(model: &InputProviderModel) -> Result<Map<String, Json>, SpecError> {
    let raw = to_raw(model).map_err(|e| shape(AttrPath::root(), e.to_string()))?;
    let mut spec = Map::new();
    for name in TYPED_SPEC_ATTRIBUTES {
        let value = raw.get_attr(name).cloned().unwrap_or_default();
        if !value.is_wholly_known() {
            return Err(SpecError::Unknown);
        }
        if !value.is_null() {
            spec.insert(camel_case(name), value_to_api_json(&value));
        }
    }
    match raw_to_json(&dynamic_raw(&model.default_values))? {
        Json::Null => {}
        Json::Object(map) => {
            spec.insert("defaultValues".into(), Json::Object(map));
        }
        _ => {
            return Err(shape(
                AttrPath::attr("default_values"),
                "must be an object of values, e.g. { env = \"dev\" }",
            ));
        }
    }
    Ok(spec)
}

/// The reconcile annotations a model asks for.
pub fn model_annotations(model: &InputProviderModel) -> ReconcileAnnotations {
    ReconcileAnnotations {
        reconcile: (model.suspend.as_known() == Some(&true)).then_some(ReconcileMode::Disabled),
        reconcile_every: model.reconcile_every.as_known().cloned(),
        reconcile_artifact_every: None,
        reconcile_timeout: model.reconcile_timeout.as_known().cloned(),
    }
}

/// The object a (wholly known) model describes.
///
/// # Errors
///
/// See [`model_spec`].
pub fn model_object(model: &InputProviderModel) -> Result<InputProvider, SpecError> {
    let namespace = model
        .namespace
        .as_known()
        .cloned()
        .ok_or(SpecError::Unknown)?;
    let name = model.name.as_known().cloned().ok_or(SpecError::Unknown)?;
    let mut object = InputProvider::new(&namespace, &name, model_spec(model)?);
    let annotations = model_annotations(model).to_annotations();
    if !annotations.is_empty() {
        object.metadata.annotations = Some(annotations);
    }
    Ok(object)
}

/// The attribute path of an API field (`schedule[0].timeZone` → `schedule[0].time_zone`).
pub fn field_path(field: &str) -> Option<AttrPath> {
    if field.starts_with("spec.") || field.starts_with("metadata.") {
        api_field_to_path(field)
    } else {
        api_field_to_path(&format!("spec.{field}"))
    }
}

/// The rules of the API and the operator checked on a configuration (which may hold unknown
/// values: rules involving an unknown attribute are skipped), one error per broken rule at its
/// first field, naming every attribute involved.
pub fn validate_config(config: &InputProviderModel) -> Diagnostics {
    let mut out = Diagnostics::default();
    if let Some(policy) = config.deletion_policy.as_known()
        && !DELETION_POLICIES.contains(&policy.as_str())
    {
        out.error_at(
            AttrPath::attr("deletion_policy"),
            "Invalid Deletion Policy",
            format!("{policy:?} is not allowed; use `delete` or `orphan`."),
        );
    }
    for (name, value) in [
        ("reconcile_every", &config.reconcile_every),
        ("reconcile_timeout", &config.reconcile_timeout),
    ] {
        if let Some(text) = value.as_known()
            && let Err(e) = parse_duration(text)
        {
            out.error_at(AttrPath::attr(name), "Invalid Duration", format!("{e}."));
        }
    }
    let Ok(raw) = to_raw(config) else {
        return out;
    };
    let mut spec = Map::new();
    let mut unknown = Vec::new();
    for name in TYPED_SPEC_ATTRIBUTES.iter().chain(&["default_values"]) {
        let value = raw.get_attr(name).cloned().unwrap_or_default();
        if !value.is_wholly_known() {
            unknown.push((*name).to_owned());
        } else if !value.is_null() && *name != "default_values" {
            spec.insert(camel_case(name), value_to_api_json(&value));
        }
    }
    if !unknown.contains(&"default_values".to_owned())
        && let Err(SpecError::Shape { path, message }) =
            raw_to_json(&dynamic_raw(&config.default_values)).and_then(|j| match j {
                Json::Null | Json::Object(_) => Ok(()),
                _ => Err(shape(
                    AttrPath::attr("default_values"),
                    "must be an object of values, e.g. { env = \"dev\" }",
                )),
            })
    {
        out.error_at(
            path,
            "Invalid ResourceSetInputProvider",
            format!("{message}."),
        );
    }
    if unknown.contains(&"type".to_owned()) {
        return out;
    }
    let Ok(typed) = serde_json::from_value::<InputProviderSpec>(Json::Object(spec)) else {
        return out;
    };
    let timeout = config
        .reconcile_timeout
        .as_known()
        .and_then(|t| parse_duration(t).ok())
        .unwrap_or(rsip::DEFAULT_TIMEOUT);
    for violation in rsip::validate(&typed, timeout) {
        let attributes: Vec<String> = violation
            .fields
            .iter()
            .map(|f| field_path(f).map_or_else(|| f.clone(), |p| p.to_string()))
            .collect();
        if attributes.iter().any(|a| {
            unknown.iter().any(|u| {
                a == u || a.starts_with(&format!("{u}[")) || a.starts_with(&format!("{u}."))
            })
        }) {
            continue;
        }
        let detail = format!(
            "{} (attributes: {}).",
            violation.message,
            attributes
                .iter()
                .map(|a| format!("`{a}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        match violation.fields.first().and_then(|f| field_path(f)) {
            Some(path) if !path.is_root() => {
                out.error_at(path, "Invalid ResourceSetInputProvider", detail);
            }
            _ => out.error("Invalid ResourceSetInputProvider", detail),
        }
    }
    out
}

/// The first value inside `default_values` (below its top level) not known until apply.
pub fn nested_unknown(model: &InputProviderModel) -> Option<AttrPath> {
    fn walk(value: &RawValue, path: AttrPath) -> Option<AttrPath> {
        match value {
            RawValue::Unknown(_) => Some(path),
            RawValue::List(items) | RawValue::Set(items) | RawValue::Tuple(items) => items
                .iter()
                .enumerate()
                .find_map(|(i, v)| walk(v, path.clone().then_index(i64::try_from(i).unwrap_or(0)))),
            RawValue::Map(entries) | RawValue::Object(entries) => entries
                .iter()
                .find_map(|(k, v)| walk(v, path.clone().then_attr(k.clone()))),
            _ => None,
        }
    }
    match &model.default_values {
        Value::Known(Dynamic(raw)) => walk(raw, AttrPath::attr("default_values")),
        _ => None,
    }
}

/// Whether two `default_values` hold the same data (null and an empty object are the same).
pub fn defaults_equal(a: &Value<Dynamic>, b: &Value<Dynamic>) -> bool {
    let empty = |j: &Json| j.is_null() || j.as_object().is_some_and(Map::is_empty);
    match (raw_to_json(&dynamic_raw(a)), raw_to_json(&dynamic_raw(b))) {
        (Ok(x), Ok(y)) => (empty(&x) && empty(&y)) || crate::flux::semantic::values_equal(&x, &y),
        _ => false,
    }
}

/// The model of a live provider: the spec (`default_values` keeps `prior`'s spelling when it
/// means the same), the reconcile annotations, and the status as computed values. Values only
/// Terraform knows (`deletion_policy`, `timeouts`) are kept from `prior`.
///
/// # Errors
///
/// A diagnostic when the object's spec does not read back.
pub fn live_model(
    live: &InputProvider,
    prior: &InputProviderModel,
) -> Result<InputProviderModel, Diagnostics> {
    // Annotations are read as written: a value the operator cannot parse shows as drift.
    let annotation = |key: &str| {
        live.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(key))
            .cloned()
    };
    let mut fields = std::collections::BTreeMap::new();
    for name in TYPED_SPEC_ATTRIBUTES {
        let json = live
            .spec
            .get(&camel_case(name))
            .cloned()
            .unwrap_or(Json::Null);
        fields.insert(
            name.to_owned(),
            api_json_to_value(&json, &attribute_type(name)),
        );
    }
    let mut model: InputProviderModel = from_raw(&RawValue::Object(fields)).map_err(|e| {
        Diagnostics::from_error("Unreadable ResourceSetInputProvider", format!("{e}."))
    })?;
    let namespace = live.metadata.namespace.clone().unwrap_or_default();
    let name = live.metadata.name.clone().unwrap_or_default();
    model.id = Value::Known(format!("{namespace}/{name}"));
    model.name = Value::Known(name);
    model.namespace = Value::Known(namespace);
    let defaults = dynamic_value(
        live.spec
            .get("defaultValues")
            .map(json_to_raw)
            .unwrap_or_default(),
    );
    model.default_values = if defaults_equal(&defaults, &prior.default_values) {
        prior.default_values.clone()
    } else {
        defaults
    };
    model.reconcile_every = annotation(ANNOTATION_RECONCILE_EVERY).into();
    model.reconcile_timeout = annotation(ANNOTATION_RECONCILE_TIMEOUT).into();
    model.suspend = Value::Known(annotation(ANNOTATION_RECONCILE).as_deref() == Some("disabled"));
    model.deletion_policy = prior
        .deletion_policy
        .clone()
        .or(Value::Known("delete".into()));
    model.timeouts = prior.timeouts.clone();
    set_status(&mut model, live);
    Ok(model)
}

/// The computed values from the live object's status.
pub fn set_status(model: &mut InputProviderModel, live: &InputProvider) {
    let status = live.status.clone().unwrap_or_default();
    let disabled = live.reconcile_annotations().is_disabled();
    let readiness =
        crate::flux::status::readiness(live.metadata.generation, &status.conditions, disabled);
    model.ready = Value::Known(readiness.is_ready());
    let exported: Vec<Json> = status
        .exported_inputs
        .unwrap_or_default()
        .into_iter()
        .map(Json::Object)
        .collect();
    model.exported_inputs = Value::Known(Dynamic(json_to_raw(&Json::Array(exported))));
    model.last_exported_revision = Value::Known(status.last_exported_revision.unwrap_or_default());
    model.next_schedule = status
        .next_schedule
        .map(|n| NextScheduleModel {
            cron: Value::Known(n.cron),
            time_zone: n.time_zone.into(),
            window: n.window.into(),
            when: Value::Known(n.when),
        })
        .into();
}

#[cfg(test)]
#[path = "flux_resource_set_input_provider_model_tests.rs"]
mod tests;
