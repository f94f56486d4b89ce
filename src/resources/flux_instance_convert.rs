//! `flux_instance`'s model against the API object: the FluxInstance (spec and reconcile
//! annotations) a configuration makes, the model a live object reads back as (server and
//! operator defaults normalised away, status as computed values), and the enum values the API
//! types accept, checked at validate time.
//!
//! Lives in `resources/`: may use `framework`, `flux`, `cluster`, never `provider`.

use std::collections::BTreeMap;

use crate::flux::instance::{
    ClusterSize, ClusterType, Component, FluxInstance, FluxInstanceSpec, ReconcileAnnotations,
    ReconcileMode, ShardingStorage, SyncKind, SyncProvider, Variant,
};
use crate::flux::normalize::normalize;
use crate::flux::semantic::yaml_equal;
use crate::flux::version::FluxVersion;
use crate::framework::diagnostics::Diagnostics;
use crate::framework::model::{Value, from_raw, to_raw};
use crate::framework::path::AttrPath;
use crate::framework::value::{RawValue, Type};
use crate::resources::common::{api_json_to_value, value_to_api_json};
use crate::resources::flux_instance_model::*;

/// The spec part of a model as the API object's JSON `spec`.
///
/// # Errors
///
/// [`ModelError::Unknown`] while any spec value is unknown; [`ModelError::Invalid`] for values
/// the API types do not accept.
pub fn model_spec(model: &InstanceModel) -> Result<FluxInstanceSpec, ModelError> {
    let raw = to_raw(model).map_err(|e| ModelError::Invalid(e.to_string()))?;
    let fields: BTreeMap<String, RawValue> = SPEC_ATTRIBUTES
        .iter()
        .map(|name| {
            let value = raw.get_attr(name).cloned().unwrap_or_default();
            ((*name).to_owned(), value)
        })
        .collect();
    let spec = RawValue::Object(fields);
    if !spec.is_wholly_known() {
        return Err(ModelError::Unknown);
    }
    serde_json::from_value(value_to_api_json(&spec)).map_err(|e| ModelError::Invalid(e.to_string()))
}

/// The reconcile annotations a model asks for.
pub fn model_annotations(model: &InstanceModel) -> ReconcileAnnotations {
    ReconcileAnnotations {
        reconcile: (model.suspend.as_known() == Some(&true)).then_some(ReconcileMode::Disabled),
        reconcile_every: model.reconcile_every.as_known().cloned(),
        reconcile_artifact_every: model.reconcile_artifact_every.as_known().cloned(),
        reconcile_timeout: model.reconcile_timeout.as_known().cloned(),
    }
}

/// The FluxInstance object a (wholly known) model describes.
///
/// # Errors
///
/// See [`model_spec`].
pub fn model_object(model: &InstanceModel) -> Result<FluxInstance, ModelError> {
    let namespace = model.namespace.as_known().cloned().unwrap_or_default();
    let mut object = FluxInstance::new(&namespace, model_spec(model)?);
    object.metadata.name = model.name.as_known().cloned();
    let annotations = model_annotations(model).to_annotations();
    if !annotations.is_empty() {
        object.metadata.annotations = Some(annotations);
    }
    Ok(object)
}

/// The model of a live FluxInstance: spec normalised (server and operator defaults filled in),
/// reconcile annotations, status as computed values, `installation_status` as given. Values
/// only Terraform knows (`deletion_policy`, `timeouts`) and patch texts equivalent to `prior`'s
/// are kept from `prior`.
///
/// # Errors
///
/// A diagnostic when the object's annotations do not parse.
pub fn live_model(
    live: &FluxInstance,
    prior: &InstanceModel,
    installation_status: String,
) -> Result<InstanceModel, Diagnostics> {
    let spec = normalize(&live.spec);
    let json = serde_json::to_value(&spec).unwrap_or_default();
    let ty = schema().type_of();
    let mut fields = BTreeMap::new();
    for name in SPEC_ATTRIBUTES {
        let attr_ty = ty.attribute_type(name).cloned().unwrap_or(Type::Dynamic);
        let value = json
            .get(crate::resources::common::camel_case(name))
            .map_or(RawValue::Null, |v| api_json_to_value(v, &attr_ty));
        fields.insert(name.to_owned(), value);
    }
    let mut model: InstanceModel = from_raw(&RawValue::Object(fields).conform(&ty))
        .map_err(|e| crate::framework::resource::model_error("live FluxInstance", &e))?;
    keep_equivalent_patches(&mut model, prior);
    // As written: a value the operator cannot parse reads back as drift, never as an error.
    let annotations = live.reconcile_annotations();
    let namespace = live.metadata.namespace.clone().unwrap_or_default();
    let name = live.metadata.name.clone().unwrap_or_default();
    model.id = Value::Known(format!("{namespace}/{name}"));
    model.name = Value::Known(name);
    model.namespace = Value::Known(namespace);
    model.reconcile_every = annotations.reconcile_every.into();
    model.reconcile_artifact_every = annotations.reconcile_artifact_every.into();
    model.reconcile_timeout = annotations.reconcile_timeout.into();
    model.suspend = Value::Known(annotations.reconcile == Some(ReconcileMode::Disabled));
    model.deletion_policy = prior
        .deletion_policy
        .clone()
        .or(Value::Known("uninstall".into()));
    model.timeouts = prior.timeouts.clone();
    set_status(&mut model, live, installation_status);
    Ok(model)
}

fn set_status(model: &mut InstanceModel, live: &FluxInstance, installation_status: String) {
    let status = live.status.clone().unwrap_or_default();
    let readiness =
        crate::flux::status::readiness(live.metadata.generation, &status.conditions, false);
    model.ready = Value::Known(readiness.is_ready());
    let revision = status.last_applied_revision.clone().unwrap_or_default();
    model.flux_version = Value::Known(
        FluxVersion::from_revision(&revision)
            .map(|v| v.to_string())
            .unwrap_or_default(),
    );
    model.last_applied_revision = Value::Known(revision);
    model.component_images = Value::Known(
        status
            .components
            .iter()
            .map(|c| ComponentImageModel {
                name: Value::Known(c.name.clone()),
                repository: Value::Known(c.repository.clone()),
                tag: Value::Known(c.tag.clone()),
                digest: c.digest.clone().into(),
            })
            .collect(),
    );
    let entries = status.inventory.map_or(0, |i| i.entries.len());
    model.inventory_entries = Value::Known(i64::try_from(entries).unwrap_or(i64::MAX));
    model.installation_status = Value::Known(installation_status);
}

/// Keeps the prior text of each patch that means the same YAML, so that formatting is no drift.
fn keep_equivalent_patches(model: &mut InstanceModel, prior: &InstanceModel) {
    let prior_patches = prior
        .kustomize
        .as_known()
        .and_then(|k| k.patches.as_known())
        .cloned()
        .unwrap_or_default();
    let Some(patches) = model
        .kustomize
        .as_known_mut()
        .and_then(|k| k.patches.as_known_mut())
    else {
        return;
    };
    for (live, prior) in patches.iter_mut().zip(&prior_patches) {
        if let (Some(text), Some(prior_text)) = (live.patch.as_known(), prior.patch.as_known())
            && text != prior_text
            && yaml_equal(text, prior_text)
        {
            live.patch = Value::Known(prior_text.clone());
        }
    }
}

/// Checks the enumerated string attributes of a configuration against the values the API
/// allows, naming the attribute.
pub fn validate_enums(config: &InstanceModel) -> Diagnostics {
    let mut out = Diagnostics::new();
    let Ok(raw) = to_raw(config) else {
        return out;
    };
    let checks: [(&[&str], Vec<&'static str>); 6] = [
        (
            &["distribution", "variant"],
            names(Variant::ALL, Variant::as_str),
        ),
        (
            &["cluster", "type"],
            names(ClusterType::ALL, ClusterType::as_str),
        ),
        (
            &["cluster", "size"],
            names(ClusterSize::ALL, ClusterSize::as_str),
        ),
        (
            &["sharding", "storage"],
            names(ShardingStorage::ALL, ShardingStorage::as_str),
        ),
        (&["sync", "kind"], names(SyncKind::ALL, SyncKind::as_str)),
        (
            &["sync", "provider"],
            names(SyncProvider::ALL, SyncProvider::as_str),
        ),
    ];
    for (steps, allowed) in checks {
        let path = steps
            .iter()
            .fold(AttrPath::root(), |p, step| p.then_attr(*step));
        if let Some(RawValue::String(value)) = raw.get_path(&path)
            && !allowed.contains(&value.as_str())
        {
            out.error_at(
                path,
                "Invalid Value",
                format!("{value:?} is not allowed; use one of {}.", one_of(&allowed)),
            );
        }
    }
    if let Some(components) = config.components.as_known() {
        let allowed = names(Component::ALL, Component::as_str);
        for component in components {
            if !allowed.contains(&component.as_str()) {
                out.error_at(
                    AttrPath::attr("components"),
                    "Unknown Flux Component",
                    format!(
                        "{component:?} is not a Flux component; use any of {}.",
                        one_of(&allowed)
                    ),
                );
            }
        }
    }
    if let Some(policy) = config.deletion_policy.as_known()
        && crate::resources::common::DeletionPolicy::parse(policy).is_none()
    {
        out.error_at(
            AttrPath::attr("deletion_policy"),
            "Invalid Deletion Policy",
            format!("{policy:?} is not allowed; use `uninstall` or `orphan`."),
        );
    }
    out
}

#[cfg(test)]
#[path = "flux_instance_convert_tests.rs"]
mod tests;
