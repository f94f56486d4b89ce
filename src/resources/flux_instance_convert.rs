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
mod tests {
    use super::*;
    use crate::flux::instance::FluxInstanceStatus;
    use crate::flux::normalize::with_server_defaults;
    use crate::framework::plan::apply_defaults;
    use pretty_assertions::assert_eq;

    fn s(text: &str) -> RawValue {
        RawValue::string(text)
    }

    /// A configuration shaped like the seed migration example, as Terraform sends it (unset
    /// attributes null), with the schema defaults applied as the dispatcher does.
    fn seed_config() -> RawValue {
        let ty = schema().type_of();
        let config = RawValue::object([
            ("distribution", RawValue::object([("version", s("2.7.x"))])),
            (
                "components",
                RawValue::Set(vec![
                    s("source-controller"),
                    s("kustomize-controller"),
                    s("helm-controller"),
                    s("notification-controller"),
                ]),
            ),
            (
                "cluster",
                RawValue::object([
                    ("size", s("medium")),
                    ("multitenant", RawValue::Bool(false)),
                ]),
            ),
            (
                "sync",
                RawValue::object([
                    ("kind", s("GitRepository")),
                    ("url", s("https://git.example/fleet.git")),
                    ("ref", s("refs/heads/main")),
                    ("path", s("clusters/prod")),
                    ("pull_secret", s("flux-system")),
                ]),
            ),
            (
                "kustomize",
                RawValue::object([(
                    "patches",
                    RawValue::List(vec![RawValue::object([
                        (
                            "patch",
                            s("- op: add\n  path: /spec/prune\n  value: false\n"),
                        ),
                        ("target", RawValue::object([("kind", s("Kustomization"))])),
                    ])]),
                )]),
            ),
        ])
        .conform(&ty);
        apply_defaults(&schema(), &config, config.clone())
    }

    fn planned() -> InstanceModel {
        from_raw(&seed_config()).unwrap()
    }

    #[test]
    fn schema_passes_the_lint() {
        assert_eq!(schema().lint(), Vec::<String>::new());
    }

    #[test]
    fn model_becomes_the_documented_spec() {
        let object = model_object(&planned()).unwrap();
        let json = object.to_json().unwrap();
        assert_eq!(
            json["spec"],
            serde_json::json!({
                "distribution": {"version": "2.7.x", "registry": "ghcr.io/fluxcd"},
                "components": ["source-controller", "kustomize-controller", "helm-controller", "notification-controller"],
                "cluster": {"type": "kubernetes", "size": "medium", "multitenant": false, "networkPolicy": true, "domain": "cluster.local", "multitenantWorkloadIdentity": false},
                "kustomize": {"patches": [{"patch": "- op: add\n  path: /spec/prune\n  value: false\n", "target": {"kind": "Kustomization"}}]},
                "sync": {"kind": "GitRepository", "url": "https://git.example/fleet.git", "ref": "refs/heads/main", "path": "clusters/prod", "pullSecret": "flux-system", "interval": "1m"},
                "wait": true,
                "migrateResources": true
            })
        );
        assert_eq!(json["metadata"]["name"], "flux");
        assert_eq!(json["metadata"]["namespace"], "flux-system");
        assert!(json["metadata"].get("annotations").is_none());
    }

    /// The heart of "a fresh apply is followed by an empty plan": what the server stores (the
    /// CRD defaults applied, the operator's status and finalizer added, the components in
    /// another order, the patch reformatted) reads back as exactly the planned configuration.
    #[test]
    fn live_object_reads_back_as_the_plan() {
        let planned = planned();
        let mut live = model_object(&planned).unwrap();
        live.spec = with_server_defaults(&live.spec);
        if let Some(components) = live.spec.components.as_mut() {
            components.reverse();
        }
        if let Some(k) = live.spec.kustomize.as_mut() {
            k.patches[0].patch = "- {op: add, path: /spec/prune, value: false}".into();
        }
        live.metadata.finalizers = Some(vec![crate::flux::instance::FINALIZER.into()]);
        live.metadata.annotations = Some(BTreeMap::from([(
            crate::flux::instance::ANNOTATION_REQUESTED_AT.to_owned(),
            "2026-11-21T10:00:00Z".to_owned(),
        )]));
        live.status = Some(FluxInstanceStatus {
            last_applied_revision: Some("v2.7.3@sha256:abc".into()),
            ..FluxInstanceStatus::default()
        });
        let read = live_model(&live, &planned, HEALTHY.into()).unwrap();
        let mut expected = planned.clone();
        expected.id = Value::Known("flux-system/flux".into());
        expected.suspend = Value::Known(false);
        expected.ready = Value::Known(false);
        expected.flux_version = Value::Known("v2.7.3".into());
        expected.last_applied_revision = Value::Known("v2.7.3@sha256:abc".into());
        expected.component_images = Value::Known(Vec::new());
        expected.inventory_entries = Value::Known(0);
        expected.installation_status = Value::Known(HEALTHY.into());
        let ty = schema().type_of();
        assert_eq!(
            to_raw(&read).unwrap().conform(&ty),
            to_raw(&expected).unwrap().conform(&ty)
        );
    }

    #[test]
    fn kubectl_edits_show_on_exactly_their_field() {
        let planned = planned();
        let mut live = model_object(&planned).unwrap();
        live.spec = with_server_defaults(&live.spec);
        if let Some(c) = live.spec.cluster.as_mut() {
            c.size = Some(ClusterSize::Large);
        }
        let read = live_model(&live, &planned, HEALTHY.into()).unwrap();
        assert_eq!(
            read.cluster.as_known().unwrap().size,
            Value::Known("large".to_owned())
        );
        let (a, b) = (to_raw(&read).unwrap(), to_raw(&planned).unwrap());
        let differing: Vec<&str> = SPEC_ATTRIBUTES
            .iter()
            .copied()
            .filter(|n| {
                !a.get_attr(n)
                    .unwrap()
                    .semantically_eq(b.get_attr(n).unwrap())
            })
            .collect();
        assert_eq!(differing, vec!["cluster"]);
    }

    #[test]
    fn unknown_values_and_invalid_enums() {
        let mut model = planned();
        model.sync = Value::Unknown;
        assert_eq!(model_spec(&model), Err(ModelError::Unknown));
        let mut model = planned();
        if let Some(c) = model.cluster.as_known_mut() {
            c.size = Value::Known("huge".into());
        }
        let diags = validate_enums(&model);
        assert_eq!(
            diags.0.iter().map(|d| d.path.clone()).collect::<Vec<_>>(),
            vec![Some(AttrPath::attr("cluster").then_attr("size"))]
        );
    }

    #[test]
    fn suspend_and_reconcile_settings_become_annotations() {
        let mut model = planned();
        model.suspend = Value::Known(true);
        model.reconcile_every = Value::Known("30m".into());
        let object = model_object(&model).unwrap();
        assert_eq!(
            object.metadata.annotations,
            Some(BTreeMap::from([
                (
                    "fluxcd.controlplane.io/reconcile".to_owned(),
                    "disabled".to_owned()
                ),
                (
                    "fluxcd.controlplane.io/reconcileEvery".to_owned(),
                    "30m".to_owned()
                ),
            ]))
        );
    }
}
