//! Unit tests of the `flux_resource_set_input_provider` model: schema, conversions to and from
//! the object, and the plan-time rules with their attribute paths.

use super::*;
use crate::framework::plan::apply_defaults;
use pretty_assertions::assert_eq;
use serde_json::json;

/// A configuration as Terraform sends it (schema-shaped, defaults applied).
fn config(pairs: Vec<(&str, RawValue)>) -> InputProviderModel {
    let ty = schema().type_of();
    let raw = RawValue::object(pairs).conform(&ty);
    from_raw(&apply_defaults(&schema(), &raw, raw.clone())).unwrap()
}

fn s(text: &str) -> RawValue {
    RawValue::string(text)
}

fn github() -> InputProviderModel {
    config(vec![
        ("name", s("prs")),
        ("namespace", s("apps")),
        ("type", s("GitHubPullRequest")),
        ("url", s("https://github.com/org/app")),
        ("secret_ref", RawValue::object([("name", s("github"))])),
        (
            "default_values",
            RawValue::object([("env", s("preview")), ("replicas", RawValue::from(1))]),
        ),
        (
            "filter",
            RawValue::object([
                ("labels", RawValue::List(vec![s("deploy")])),
                ("include_branch", s("^feat-")),
            ]),
        ),
        (
            "skip",
            RawValue::object([("labels", RawValue::List(vec![s("!ready")]))]),
        ),
        (
            "schedule",
            RawValue::List(vec![RawValue::object([("cron", s("0 8 * * mon-fri"))])]),
        ),
        ("reconcile_every", s("5m")),
    ])
}

#[test]
fn schema_follows_the_house_rules() {
    assert_eq!(schema().lint(), Vec::<String>::new());
}

#[test]
fn model_becomes_the_api_object_with_the_crd_defaults_planned() {
    let object = model_object(&github()).unwrap();
    assert_eq!(
        object.to_json().unwrap(),
        json!({
            "apiVersion": "fluxcd.controlplane.io/v1",
            "kind": "ResourceSetInputProvider",
            "metadata": {"name": "prs", "namespace": "apps",
                         "annotations": {"fluxcd.controlplane.io/reconcileEvery": "5m"}},
            "spec": {
                "type": "GitHubPullRequest",
                "url": "https://github.com/org/app",
                "secretRef": {"name": "github"},
                "defaultValues": {"env": "preview", "replicas": 1},
                "filter": {"labels": ["deploy"], "includeBranch": "^feat-", "limit": 100},
                "skip": {"labels": ["!ready"]},
                "schedule": [{"cron": "0 8 * * mon-fri", "timeZone": "UTC", "window": "0s"}]
            }
        })
    );
}

#[test]
fn live_object_reads_back_as_the_configuration() {
    let prior = github();
    let mut live = model_object(&prior).unwrap();
    // The server's JSON: default values re-spelled (float, other key order).
    live.spec.insert(
        "defaultValues".into(),
        json!({"replicas": 1.0, "env": "preview"}),
    );
    live.metadata.generation = Some(1);
    live.status = Some(
        serde_json::from_value(json!({
            "conditions": [{"type": "Ready", "status": "False", "reason": "ReconciliationFailed",
                            "message": "failed to call Git provider", "observedGeneration": 1,
                            "lastTransitionTime": "2026-11-21T10:00:00Z"}]
        }))
        .unwrap(),
    );
    let read = live_model(&live, &prior).unwrap();
    let mut want = prior.clone();
    want.id = Value::Known("apps/prs".into());
    want.ready = Value::Known(false);
    want.exported_inputs = Value::Known(Dynamic(RawValue::Tuple(vec![])));
    want.last_exported_revision = Value::Known(String::new());
    want.next_schedule = Value::Null;
    assert_eq!(read, want);
}

#[test]
fn exported_inputs_and_next_schedule_are_read_from_the_status() {
    let prior = config(vec![
        ("name", s("team")),
        ("namespace", s("apps")),
        ("type", s("Static")),
        ("default_values", RawValue::object([("tenant", s("a"))])),
        ("suspend", RawValue::Bool(false)),
    ]);
    let mut live = model_object(&prior).unwrap();
    live.metadata.generation = Some(2);
    live.status = Some(
        serde_json::from_value(json!({
            "conditions": [{"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded",
                            "message": "ok", "observedGeneration": 2,
                            "lastTransitionTime": "2026-11-21T10:00:00Z"}],
            "exportedInputs": [{"id": "123", "tenant": "a"}],
            "lastExportedRevision": "sha256:abc",
            "nextSchedule": {"cron": "@daily", "timeZone": "UTC", "window": "1h", "when": "2026-11-22T00:00:00Z"}
        }))
        .unwrap(),
    );
    let read = live_model(&live, &prior).unwrap();
    assert_eq!(read.ready, Value::Known(true));
    assert_eq!(
        raw_to_json(&dynamic_raw(&read.exported_inputs)).unwrap(),
        json!([{"id": "123", "tenant": "a"}])
    );
    assert_eq!(
        read.last_exported_revision,
        Value::Known("sha256:abc".into())
    );
    assert_eq!(
        read.next_schedule,
        Value::Known(NextScheduleModel {
            cron: Value::Known("@daily".into()),
            time_zone: Value::Known("UTC".into()),
            window: Value::Known("1h".into()),
            when: Value::Known("2026-11-22T00:00:00Z".into()),
        })
    );
}

fn errors(model: &InputProviderModel) -> Vec<(String, String)> {
    validate_config(model)
        .0
        .into_iter()
        .map(|d| (d.path.map(|p| p.to_string()).unwrap_or_default(), d.detail))
        .collect()
}

#[test]
fn rules_name_the_attributes_and_skip_unknown_ones() {
    let mut static_with_url = github();
    static_with_url.provider_type = Value::Known("Static".into());
    static_with_url.secret_ref = Value::Null;
    static_with_url.filter = Value::Null;
    static_with_url.skip = Value::Null;
    let mut unknown_url = static_with_url.clone();
    unknown_url.url = Value::Unknown;
    let mut bad_window = github();
    if let Some(list) = bad_window.schedule.as_known_mut() {
        list[0].window = Value::Known("1m".into());
        list[0].cron = Value::Known("61 * * * *".into());
    }
    let mut bad_policy = github();
    bad_policy.deletion_policy = Value::Known("uninstall".into());
    bad_policy.reconcile_timeout = Value::Known("2 minutes".into());
    let mut not_an_object = github();
    not_an_object.default_values = dynamic_value(RawValue::Tuple(vec![s("a")]));
    type Case = (
        &'static str,
        InputProviderModel,
        Vec<(&'static str, &'static str)>,
    );
    let cases: Vec<Case> = vec![
        ("valid", github(), vec![]),
        (
            "static with url",
            static_with_url,
            vec![(
                "url",
                "spec.url must be empty when spec.type is 'Static' (attributes: `url`, `type`).",
            )],
        ),
        ("unknown url skips the rule", unknown_url, vec![]),
        (
            "schedule",
            bad_window,
            vec![
                (
                    "schedule[0].cron",
                    "invalid minute field \"61\": 61 is outside 0-59 (attributes: `schedule[0].cron`).",
                ),
                (
                    "schedule[0].window",
                    "a non-zero window (1m) must always be at least twice the timeout (120s) (attributes: `schedule[0].window`).",
                ),
            ],
        ),
        (
            "policy and duration",
            bad_policy,
            vec![
                (
                    "deletion_policy",
                    "\"uninstall\" is not allowed; use `delete` or `orphan`.",
                ),
                (
                    "reconcile_timeout",
                    "invalid duration \"2 minutes\": expected a number followed by a unit (ms, s, m, h), e.g. \"1m\" or \"1h30m\".",
                ),
            ],
        ),
        (
            "defaults not an object",
            not_an_object,
            vec![(
                "default_values",
                "must be an object of values, e.g. { env = \"dev\" }.",
            )],
        ),
    ];
    for (name, model, want) in cases {
        let want: Vec<(String, String)> = want
            .into_iter()
            .map(|(p, d)| (p.to_owned(), d.to_owned()))
            .collect();
        assert_eq!(errors(&model), want, "case {name}");
    }
}

#[test]
fn nested_unknowns_in_default_values_are_found() {
    let mut m = github();
    assert_eq!(nested_unknown(&m), None);
    m.default_values = dynamic_value(RawValue::object([("env", RawValue::unknown())]));
    assert_eq!(
        nested_unknown(&m).map(|p| p.to_string()),
        Some("default_values.env".to_owned())
    );
    m.default_values = Value::Unknown;
    assert_eq!(nested_unknown(&m), None);
}
