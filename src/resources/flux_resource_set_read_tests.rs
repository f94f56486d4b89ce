//! Unit tests of `flux_resource_set`'s model: schema, conversions to the object and back from
//! a live one.

use super::*;
use crate::framework::model::{from_raw, to_raw};
use crate::framework::path::AttrPath;
use crate::framework::value::{Number, RawValue};
use pretty_assertions::assert_eq;
use serde_json::json;
use std::collections::BTreeMap;

fn obj(pairs: &[(&str, RawValue)]) -> RawValue {
    RawValue::object(pairs.iter().map(|(k, v)| (*k, v.clone())))
}

fn num(i: i64) -> RawValue {
    RawValue::Number(Number::Int(i))
}

/// Two inputs of different shapes, as HCL gives them: a tuple of objects.
fn hcl_inputs() -> RawValue {
    RawValue::Tuple(vec![
        obj(&[("tenant", "team-a".into()), ("replicas", num(2))]),
        obj(&[
            ("tenant", "team-b".into()),
            ("replicas", num(3)),
            ("tags", RawValue::Tuple(vec!["x".into()])),
        ]),
    ])
}

const TEMPLATE: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: << inputs.tenant >>-config\n  namespace: << inputs.tenant >>\ndata:\n  replicas: \"<< inputs.replicas >>\"\n";
const TEMPLATE_REFORMATTED: &str = "---\n# the tenant's settings\nkind: ConfigMap\napiVersion: v1\nmetadata: {namespace: << inputs.tenant >>, name: << inputs.tenant >>-config}\ndata:\n  replicas:   \"<< inputs.replicas >>\"\n";

fn model() -> ResourceSetModel {
    ResourceSetModel {
        name: Value::Known("tenants".into()),
        namespace: Value::Known("flux-system".into()),
        inputs: dynamic_value(hcl_inputs()),
        resources: dynamic_value(RawValue::Tuple(vec![obj(&[
            ("apiVersion", "v1".into()),
            ("kind", "Namespace".into()),
            ("metadata", obj(&[("name", "<< inputs.tenant >>".into())])),
        ])])),
        resources_template: Value::Known(TEMPLATE.into()),
        dependencies: Value::Known(vec![DependencyModel {
            api_version: Value::Known("v1".into()),
            kind: Value::Known("ConfigMap".into()),
            name: Value::Known("gate".into()),
            namespace: Value::Known("flux-system".into()),
            ready: Value::Known(true),
            ..DependencyModel::default()
        }]),
        inputs_from: Value::Known(vec![InputFromModel {
            selector: Value::Known(SelectorModel {
                match_labels: Value::Known(BTreeMap::from([("env".into(), "dev".into())])),
                ..SelectorModel::default()
            }),
            ..InputFromModel::default()
        }]),
        wait: Value::Known(false),
        suspend: Value::Known(false),
        reconcile_every: Value::Known("10m".into()),
        deletion_policy: Value::Known("uninstall".into()),
        ..ResourceSetModel::default()
    }
}

#[test]
fn dynamic_values_round_trip_with_their_kinds_and_unknowns() {
    let value = RawValue::Tuple(vec![
        obj(&[
            ("a", num(1)),
            ("b", RawValue::Number(Number::Float(0.5))),
            ("c", RawValue::unknown()),
            ("d", RawValue::Null),
        ]),
        "text".into(),
        RawValue::Bool(true),
        RawValue::Tuple(vec![]),
    ]);
    let raw = obj(&[("inputs", value.clone()), ("name", "x".into())]);
    let model: ResourceSetModel = from_raw(&raw).unwrap();
    assert_eq!(dynamic_raw(&model.inputs), value);
    let back = to_raw(&model).unwrap();
    assert_eq!(back.get_attr("inputs"), Some(&value));
    let unknown: ResourceSetModel = from_raw(&obj(&[("inputs", RawValue::unknown())])).unwrap();
    assert_eq!(unknown.inputs, Value::Unknown);
    assert_eq!(
        to_raw(&unknown).unwrap().get_attr("inputs"),
        Some(&RawValue::unknown())
    );
}

#[test]
fn model_becomes_the_api_object() {
    let object = model_object(&model()).unwrap();
    let json = object.to_json().unwrap();
    assert_eq!(
        json,
        json!({
            "apiVersion": "fluxcd.controlplane.io/v1",
            "kind": "ResourceSet",
            "metadata": {
                "name": "tenants",
                "namespace": "flux-system",
                "annotations": {"fluxcd.controlplane.io/reconcileEvery": "10m"}
            },
            "spec": {
                "inputs": [
                    {"tenant": "team-a", "replicas": 2},
                    {"tenant": "team-b", "replicas": 3, "tags": ["x"]}
                ],
                "inputsFrom": [{
                    "apiVersion": "fluxcd.controlplane.io/v1",
                    "kind": "ResourceSetInputProvider",
                    "selector": {"matchLabels": {"env": "dev"}}
                }],
                "resources": [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "<< inputs.tenant >>"}}],
                "resourcesTemplate": TEMPLATE,
                "dependsOn": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "gate", "namespace": "flux-system", "ready": true}],
                "wait": false
            }
        })
    );
}

#[test]
fn steps_convert_with_attribute_names_and_reject_unknown_keys() {
    let mut m = model();
    m.resources = Value::Null;
    m.resources_template = Value::Null;
    m.steps = dynamic_value(RawValue::Tuple(vec![
        obj(&[
            ("name", "crds".into()),
            ("resources_template", "kind: A".into()),
            ("timeout", "1m".into()),
        ]),
        obj(&[
            ("name", "apps".into()),
            (
                "resources",
                RawValue::Tuple(vec![obj(&[("kind", "B".into())])]),
            ),
        ]),
    ]));
    let spec = model_spec(&m).unwrap();
    assert_eq!(
        serde_json::to_value(&spec.steps).unwrap(),
        json!([
            {"name": "crds", "resourcesTemplate": "kind: A", "timeout": "1m"},
            {"name": "apps", "resources": [{"kind": "B"}]}
        ])
    );
    m.steps = dynamic_value(RawValue::Tuple(vec![obj(&[
        ("name", "crds".into()),
        ("resourcesTemplate", "kind: A".into()),
    ])]));
    assert_eq!(
        model_spec(&m),
        Err(SpecError::Shape {
            path: AttrPath::attr("steps")
                .then_index(0)
                .then_attr("resourcesTemplate"),
            message: "unknown step attribute; use name, resources, resources_template, timeout"
                .into()
        })
    );
}

fn errors(config: &ResourceSetModel) -> Vec<(String, String)> {
    validate_config(config)
        .0
        .into_iter()
        .map(|d| (d.path.map(|p| p.to_string()).unwrap_or_default(), d.detail))
        .collect()
}

#[test]
fn api_rules_name_the_attributes() {
    let with_steps = |mut m: ResourceSetModel| {
        m.steps = dynamic_value(RawValue::Tuple(vec![obj(&[
            ("name", "one".into()),
            ("resources_template", "kind: A".into()),
        ])]));
        m
    };
    let mut nothing = model();
    nothing.resources = Value::Null;
    nothing.resources_template = Value::Null;
    let mut unknown_steps = model();
    unknown_steps.steps = Value::Unknown;
    let mut unknown_all = nothing.clone();
    unknown_all.resources_template = Value::Unknown;
    let mut both_refs = model();
    both_refs.inputs_from = Value::Known(vec![
        InputFromModel::default(),
        InputFromModel {
            name: Value::Known("x".into()),
            selector: Value::Known(SelectorModel::default()),
        },
    ]);
    let mut empty_dep = model();
    if let Some(deps) = empty_dep.dependencies.as_known_mut() {
        deps[0].name = Value::Known(String::new());
    }
    let mut policy = model();
    policy.deletion_policy = Value::Known("keep".into());
    let mut not_objects = model();
    not_objects.inputs = dynamic_value("tenants".into());
    type Case<'a> = (&'a str, ResourceSetModel, Vec<(&'a str, &'a str)>);
    let cases: Vec<Case<'_>> = vec![
        ("valid", model(), vec![]),
        (
            "steps-with-resources",
            with_steps(model()),
            vec![(
                "steps",
                "steps is mutually exclusive with resources and resourcesTemplate (attributes: `steps`, `resources`, `resources_template`).",
            )],
        ),
        (
            "nothing",
            nothing,
            vec![(
                "steps",
                "at least one of steps, resources or resourcesTemplate must be set (attributes: `steps`, `resources`, `resources_template`).",
            )],
        ),
        ("unknown-steps-skips-the-rule", unknown_steps, vec![]),
        ("unknown-template-skips-the-rule", unknown_all, vec![]),
        (
            "inputs-from",
            both_refs,
            vec![
                (
                    "inputs_from[0].name",
                    "at least one of name or selector must be set for input provider references (attributes: `inputs_from[0].name`, `inputs_from[0].selector`).",
                ),
                (
                    "inputs_from[1].name",
                    "cannot set both name and selector for input provider references (attributes: `inputs_from[1].name`, `inputs_from[1].selector`).",
                ),
            ],
        ),
        (
            "dependency",
            empty_dep,
            vec![(
                "dependencies[0].name",
                "must not be empty (attributes: `dependencies[0].name`).",
            )],
        ),
        (
            "policy",
            policy,
            vec![(
                "deletion_policy",
                "\"keep\" is not allowed; use `uninstall` or `orphan`.",
            )],
        ),
        (
            "not-objects",
            not_objects,
            vec![("inputs", "must be a list of objects.")],
        ),
    ];
    for (name, config, want) in cases {
        let want: Vec<(String, String)> = want
            .into_iter()
            .map(|(p, d)| (p.to_owned(), d.to_owned()))
            .collect();
        assert_eq!(errors(&config), want, "case {name}");
    }
}

fn live(spec: serde_json::Value, annotations: serde_json::Value) -> ResourceSet {
    ResourceSet::from_json(json!({
        "apiVersion": "fluxcd.controlplane.io/v1",
        "kind": "ResourceSet",
        "metadata": {"name": "tenants", "namespace": "flux-system", "generation": 2,
                     "annotations": annotations},
        "spec": spec,
        "status": {
            "conditions": [{"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded",
                            "message": "ok", "observedGeneration": 2,
                            "lastTransitionTime": "2026-11-21T10:00:00Z"}],
            "lastAppliedRevision": "sha256:abc",
            "inventory": {"entries": [
                {"id": "_team-a__Namespace", "v": "v1"},
                {"id": "team-a_team-a-config__ConfigMap", "v": "v1"}
            ]}
        }
    }))
    .unwrap()
}

#[test]
fn live_object_reads_back_as_the_prior_spelling_when_equivalent() {
    let prior = model();
    // The server's JSON: keys reordered, numbers as floats, template reformatted.
    let spec = json!({
        "resourcesTemplate": TEMPLATE_REFORMATTED,
        "inputs": [{"replicas": 2.0, "tenant": "team-a"}, {"tags": ["x"], "tenant": "team-b", "replicas": 3}],
        "resources": [{"metadata": {"name": "<< inputs.tenant >>"}, "kind": "Namespace", "apiVersion": "v1"}],
        "dependsOn": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "gate", "namespace": "flux-system", "ready": true}],
        "inputsFrom": [{"apiVersion": "fluxcd.controlplane.io/v1", "kind": "ResourceSetInputProvider",
                        "selector": {"matchLabels": {"env": "dev"}}}]
    });
    let read = live_model(
        &live(
            spec,
            json!({"fluxcd.controlplane.io/reconcileEvery": "10m"}),
        ),
        &prior,
    )
    .unwrap();
    let mut expected = prior.clone();
    expected.id = Value::Known("flux-system/tenants".into());
    expected.ready = Value::Known(true);
    expected.last_applied_revision = Value::Known("sha256:abc".into());
    expected.inventory = Value::Known(vec![
        InventoryModel {
            api_version: Value::Known("v1".into()),
            kind: Value::Known("Namespace".into()),
            namespace: Value::Known(String::new()),
            name: Value::Known("team-a".into()),
        },
        InventoryModel {
            api_version: Value::Known("v1".into()),
            kind: Value::Known("ConfigMap".into()),
            namespace: Value::Known("team-a".into()),
            name: Value::Known("team-a-config".into()),
        },
    ]);
    assert_eq!(read, expected);
}

#[test]
fn live_drift_replaces_the_changed_values() {
    let prior = model();
    let spec = json!({
        "resourcesTemplate": "kind: Secret\n",
        "inputs": [{"tenant": "team-a", "replicas": 5}],
        "wait": true
    });
    let read = live_model(
        &live(
            spec,
            json!({"fluxcd.controlplane.io/reconcile": "disabled"}),
        ),
        &prior,
    )
    .unwrap();
    assert_eq!(
        dynamic_raw(&read.inputs),
        RawValue::Tuple(vec![obj(&[
            ("replicas", num(5)),
            ("tenant", "team-a".into())
        ])])
    );
    assert_eq!(
        read.resources_template,
        Value::Known("kind: Secret\n".into())
    );
    assert_eq!(read.resources, Value::Null);
    assert_eq!(read.dependencies, Value::Null);
    assert_eq!(read.wait, Value::Known(true));
    assert_eq!(read.suspend, Value::Known(true));
    assert_eq!(read.reconcile_every, Value::Null);
    assert_eq!(read.ready, Value::Known(false), "suspended is not ready");
}

#[test]
fn plan_keeps_prior_spelling_only_for_equivalent_values() {
    let prior = model();
    let mut config = model();
    config.resources_template = Value::Known(TEMPLATE_REFORMATTED.into());
    config.inputs = dynamic_value(RawValue::Tuple(vec![
        obj(&[
            ("replicas", RawValue::Number(Number::Float(2.0))),
            ("tenant", "team-a".into()),
        ]),
        obj(&[
            ("tags", RawValue::Tuple(vec!["x".into()])),
            ("tenant", "team-b".into()),
            ("replicas", num(3)),
        ]),
    ]));
    let mut planned = config.clone();
    keep_equivalent_open_values(&mut planned, &prior);
    assert_eq!(planned, prior);

    let mut changed = config;
    changed.inputs = dynamic_value(RawValue::Tuple(vec![obj(&[("tenant", "team-a".into())])]));
    changed.resources_template = Value::Known(TEMPLATE.replace("-config", "-settings"));
    let mut planned = changed.clone();
    keep_equivalent_open_values(&mut planned, &prior);
    assert_eq!(planned, changed);
}

#[test]
fn template_delimiters_quoting_is_significant() {
    let mut a = model();
    a.resources_template = Value::Known("data:\n  replicas: << inputs.replicas >>\n".into());
    let mut b = model();
    b.resources_template = Value::Known("data:\n  replicas: \"<< inputs.replicas >>\"\n".into());
    assert!(!open_attribute_equal("resources_template", &a, &b));
}

#[test]
fn api_fields_map_to_attributes() {
    let cases = [
        ("dependsOn[0].name", "dependencies[0].name"),
        ("steps[1].resourcesTemplate", "steps[1].resources_template"),
        (
            "inputStrategy.includeEmptyProviders",
            "input_strategy.include_empty_providers",
        ),
        ("spec.resourcesTemplate", "resources_template"),
        ("metadata.name", "name"),
    ];
    for (field, want) in cases {
        assert_eq!(
            field_path(field).map(|p| p.to_string()),
            Some(want.to_owned()),
            "{field}"
        );
    }
}

#[test]
fn nested_unknowns_are_found_but_a_wholly_unknown_value_is_fine() {
    let mut m = model();
    assert_eq!(nested_unknown(&m), None);
    m.inputs = Value::Unknown;
    assert_eq!(nested_unknown(&m), None);
    m.steps = dynamic_value(RawValue::Tuple(vec![obj(&[
        ("name", "one".into()),
        ("timeout", RawValue::unknown()),
    ])]));
    assert_eq!(
        nested_unknown(&m).map(|p| p.to_string()),
        Some("steps[0].timeout".to_owned())
    );
}

#[test]
fn schema_follows_the_house_rules() {
    assert_eq!(schema().lint(), Vec::<String>::new());
}
