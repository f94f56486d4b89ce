//! Unit tests of `flux_instance`'s model: schema, conversions to the object and back from a
//! live one.

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
