//! From a `flux_resource_set` model to the `ResourceSet` object: the spec (open values checked
//! for the shapes the API needs), the reconcile annotations, the API field paths mapped back to
//! attributes, the rules checked at validate and plan, and where a value is still unknown.
//!
//! Lives in `resources/`: may use `framework`, `flux` and `resources::common`; does no I/O.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use serde_json::{Map, Value as Json};

use crate::flux::instance::{API_VERSION, CommonMetadata, ReconcileAnnotations, ReconcileMode};
use crate::flux::resource_set::{
    self as rset, Dependency, INPUT_PROVIDER_KIND, InputProviderRef, InputStrategy,
    InputStrategyName, ResourceSet, ResourceSetSpec, Step,
};
use crate::framework::diagnostics::Diagnostics;
use crate::framework::model::{Value, from_raw, to_raw};
use crate::framework::path::AttrPath;
use crate::framework::value::RawValue;
use crate::resources::common::{DeletionPolicy, api_field_to_path};

use super::model::*;

/// A shape error at `path`.
pub(crate) fn shape(path: AttrPath, message: impl Into<String>) -> SpecError {
    SpecError::Shape {
        path,
        message: message.into(),
    }
}

/// A `dynamic` list of objects (`inputs`, `resources`) as JSON objects; `None` when null.
pub(crate) fn object_list(
    name: &str,
    value: &Value<Dynamic>,
) -> Result<Option<Vec<Map<String, Json>>>, SpecError> {
    match raw_to_json(&dynamic_raw(value))? {
        Json::Null => Ok(None),
        Json::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                Json::Object(map) => Ok(map),
                _ => Err(shape(
                    AttrPath::attr(name).then_index(index(i)),
                    "must be an object",
                )),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        _ => Err(shape(AttrPath::attr(name), "must be a list of objects")),
    }
}

pub(crate) fn index(i: usize) -> i64 {
    i64::try_from(i).unwrap_or(i64::MAX)
}

/// Keys of a step object, in the Terraform spelling.
const STEP_KEYS: [&str; 4] = ["name", "resources", "resources_template", "timeout"];

pub(crate) fn steps_from_raw(value: &Value<Dynamic>) -> Result<Option<Vec<Step>>, SpecError> {
    let Some(items) = object_list("steps", value)? else {
        return Ok(None);
    };
    let mut steps = Vec::with_capacity(items.len());
    for (i, mut item) in items.into_iter().enumerate() {
        let at = |key: &str| AttrPath::attr("steps").then_index(index(i)).then_attr(key);
        if let Some(key) = item.keys().find(|k| !STEP_KEYS.contains(&k.as_str())) {
            return Err(shape(
                at(key),
                format!("unknown step attribute; use {}", STEP_KEYS.join(", ")),
            ));
        }
        let mut text = |key: &str| match item.remove(key) {
            None | Some(Json::Null) => Ok(None),
            Some(Json::String(s)) => Ok(Some(s)),
            Some(_) => Err(shape(at(key), "must be a string")),
        };
        let name = text("name")?.unwrap_or_default();
        let resources_template = text("resources_template")?;
        let timeout = text("timeout")?;
        let resources = match item.remove("resources") {
            None | Some(Json::Null) => None,
            Some(Json::Array(list)) => Some(list),
            Some(_) => return Err(shape(at("resources"), "must be a list of objects")),
        };
        steps.push(Step {
            name,
            resources,
            resources_template,
            timeout,
        });
    }
    Ok(Some(steps))
}

pub(crate) fn steps_to_json(steps: &[Step]) -> Json {
    Json::Array(
        steps
            .iter()
            .map(|step| {
                let mut map = Map::new();
                map.insert("name".into(), Json::String(step.name.clone()));
                if let Some(r) = &step.resources {
                    map.insert("resources".into(), Json::Array(r.clone()));
                }
                if let Some(t) = &step.resources_template {
                    map.insert("resources_template".into(), Json::String(t.clone()));
                }
                if let Some(t) = &step.timeout {
                    map.insert("timeout".into(), Json::String(t.clone()));
                }
                Json::Object(map)
            })
            .collect(),
    )
}

pub(crate) fn known<T: Clone>(value: &Value<T>) -> Result<Option<T>, SpecError> {
    match value {
        Value::Known(v) => Ok(Some(v.clone())),
        Value::Null => Ok(None),
        Value::Unknown => Err(SpecError::Unknown),
    }
}

pub(crate) fn selector(model: &SelectorModel) -> Result<LabelSelector, SpecError> {
    let expressions = known(&model.match_expressions)?
        .map(|list| {
            list.iter()
                .map(|e| {
                    Ok(LabelSelectorRequirement {
                        key: known(&e.key)?.unwrap_or_default(),
                        operator: known(&e.operator)?.unwrap_or_default(),
                        values: known(&e.values)?,
                    })
                })
                .collect::<Result<Vec<_>, SpecError>>()
        })
        .transpose()?;
    Ok(LabelSelector {
        match_labels: known(&model.match_labels)?,
        match_expressions: expressions,
    })
}

/// The ResourceSet spec a model describes.
///
/// # Errors
///
/// [`SpecError::Unknown`] while any spec value is unknown; [`SpecError::Shape`] for open values
/// that are not lists of objects, or an unknown `input_strategy.name`.
pub fn model_spec(model: &ResourceSetModel) -> Result<ResourceSetSpec, SpecError> {
    let inputs_from = known(&model.inputs_from)?
        .map(|list| {
            list.iter()
                .map(|entry| {
                    Ok(InputProviderRef {
                        api_version: API_VERSION.to_owned(),
                        kind: INPUT_PROVIDER_KIND.to_owned(),
                        name: known(&entry.name)?,
                        selector: known(&entry.selector)?.map(|s| selector(&s)).transpose()?,
                    })
                })
                .collect::<Result<Vec<_>, SpecError>>()
        })
        .transpose()?;
    let input_strategy = known(&model.input_strategy)?
        .map(|strategy| {
            let name = known(&strategy.name)?.unwrap_or_default();
            let parsed: InputStrategyName = name.parse().map_err(|_| {
                shape(
                    AttrPath::attr("input_strategy").then_attr("name"),
                    format!("{name:?} is not allowed; use `Flatten` or `Permute`"),
                )
            })?;
            Ok(InputStrategy {
                name: parsed,
                include_empty_providers: known(&strategy.include_empty_providers)?,
            })
        })
        .transpose()?;
    let depends_on = known(&model.dependencies)?
        .map(|list| {
            list.iter()
                .map(|d| {
                    Ok(Dependency {
                        api_version: known(&d.api_version)?.unwrap_or_default(),
                        kind: known(&d.kind)?.unwrap_or_default(),
                        name: known(&d.name)?.unwrap_or_default(),
                        namespace: known(&d.namespace)?,
                        ready: known(&d.ready)?,
                        ready_expr: known(&d.ready_expr)?,
                    })
                })
                .collect::<Result<Vec<_>, SpecError>>()
        })
        .transpose()?;
    let common_metadata = known(&model.common_metadata)?
        .map(|m| {
            Ok(CommonMetadata {
                labels: known(&m.labels)?,
                annotations: known(&m.annotations)?,
            })
        })
        .transpose()?;
    let resources = object_list("resources", &model.resources)?
        .map(|list| list.into_iter().map(Json::Object).collect());
    Ok(ResourceSetSpec {
        inputs: object_list("inputs", &model.inputs)?,
        inputs_from,
        input_strategy,
        resources,
        resources_template: known(&model.resources_template)?,
        steps: steps_from_raw(&model.steps)?,
        depends_on,
        common_metadata,
        service_account_name: known(&model.service_account_name)?,
        wait: known(&model.wait)?,
    })
}

/// The reconcile annotations a model asks for.
pub fn model_annotations(model: &ResourceSetModel) -> ReconcileAnnotations {
    ReconcileAnnotations {
        reconcile: (model.suspend.as_known() == Some(&true)).then_some(ReconcileMode::Disabled),
        reconcile_every: model.reconcile_every.as_known().cloned(),
        reconcile_artifact_every: None,
        reconcile_timeout: model.reconcile_timeout.as_known().cloned(),
    }
}

/// The ResourceSet object a (wholly known) model describes.
///
/// # Errors
///
/// See [`model_spec`].
pub fn model_object(model: &ResourceSetModel) -> Result<ResourceSet, SpecError> {
    let namespace = known(&model.namespace)?.unwrap_or_default();
    let name = known(&model.name)?.unwrap_or_default();
    let mut object = ResourceSet::new(&namespace, &name, model_spec(model)?);
    let annotations = model_annotations(model).to_annotations();
    if !annotations.is_empty() {
        object.metadata.annotations = Some(annotations);
    }
    Ok(object)
}

/// The attribute path of an API field of the spec (`dependsOn[0].name` → `dependencies[0].name`,
/// `steps[1].resourcesTemplate` → `steps[1].resources_template`).
pub fn field_path(field: &str) -> Option<AttrPath> {
    let field = if field.starts_with("spec.") || field.starts_with("metadata.") {
        field.to_owned()
    } else {
        format!("spec.{field}")
    };
    let path = api_field_to_path(&field)?;
    let mut steps = path.0;
    if let Some(crate::framework::path::PathStep::Attr(first)) = steps.first_mut()
        && first == "depends_on"
    {
        *first = "dependencies".to_owned();
    }
    Some(AttrPath(steps))
}

/// The attribute name (snake_case, renamed) of an API field, for messages.
pub(crate) fn attribute_name(field: &str) -> String {
    field_path(field).map_or_else(|| field.to_owned(), |p| p.to_string())
}

/// The API's rules checked on a configuration (which may hold unknown values): attributes not
/// wholly known count as unset, and rules about them are skipped. Each broken rule is one error
/// at its first field, naming every attribute involved.
pub fn validate_config(config: &ResourceSetModel) -> Diagnostics {
    let mut out = Diagnostics::new();
    if let Some(policy) = config.deletion_policy.as_known()
        && DeletionPolicy::parse(policy).is_none()
    {
        out.error_at(
            AttrPath::attr("deletion_policy"),
            "Invalid Deletion Policy",
            format!("{policy:?} is not allowed; use `uninstall` or `orphan`."),
        );
    }
    let Ok(raw) = to_raw(config) else {
        return out;
    };
    let mut unknown = Vec::new();
    let mut known_model = config.clone();
    if let RawValue::Object(fields) = &raw {
        let mut kept = fields.clone();
        for (name, value) in fields {
            if !value.is_wholly_known() {
                unknown.push(name.clone());
                kept.insert(name.clone(), RawValue::Null);
            }
        }
        if let Ok(model) = from_raw(&RawValue::Object(kept)) {
            known_model = model;
        }
    }
    let spec = match model_spec(&known_model) {
        Ok(spec) => spec,
        Err(SpecError::Shape { path, message }) => {
            out.error_at(path, "Invalid ResourceSet", format!("{message}."));
            return out;
        }
        Err(SpecError::Unknown) => return out,
    };
    let Err(rset::ResourceSetError::Validate { violations }) = rset::validate(&spec) else {
        return out;
    };
    for violation in violations {
        let attributes: Vec<String> = violation.fields.iter().map(|f| attribute_name(f)).collect();
        let involves_unknown = attributes.iter().any(|a| {
            unknown.iter().any(|u| {
                a == u || a.starts_with(&format!("{u}[")) || a.starts_with(&format!("{u}."))
            })
        });
        if involves_unknown {
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
            Some(path) if !path.is_root() => out.error_at(path, "Invalid ResourceSet", detail),
            _ => out.error("Invalid ResourceSet", detail),
        }
    }
    out
}

/// The first value inside a `dynamic` attribute (below its top level) that is not known until
/// apply, as an attribute path.
///
/// Such values cannot be planned yet: the framework's untyped values do not record the type of
/// an unknown, so the plan would not reproduce the configuration exactly and Terraform would
/// reject it. A wholly unknown attribute is fine.
pub fn nested_unknown(model: &ResourceSetModel) -> Option<AttrPath> {
    fn walk(value: &RawValue, path: AttrPath) -> Option<AttrPath> {
        match value {
            RawValue::Unknown(_) => Some(path),
            RawValue::List(items) | RawValue::Set(items) | RawValue::Tuple(items) => items
                .iter()
                .enumerate()
                .find_map(|(i, v)| walk(v, path.clone().then_index(index(i)))),
            RawValue::Map(entries) | RawValue::Object(entries) => entries
                .iter()
                .find_map(|(k, v)| walk(v, path.clone().then_attr(k.clone()))),
            _ => None,
        }
    }
    [
        ("inputs", &model.inputs),
        ("resources", &model.resources),
        ("steps", &model.steps),
    ]
    .into_iter()
    .find_map(|(name, value)| match value {
        Value::Known(Dynamic(raw)) => walk(raw, AttrPath::attr(name)),
        _ => None,
    })
}
