//! The Terraform face of a ResourceSetInputProvider: the `flux_resource_set_input_provider`
//! schema (descriptions are the documentation), its model, and the pure conversions between the
//! model and the object: every spec field typed (snake_case forms of the API names, converted
//! generically), `default_values` and the exported inputs as `dynamic` values compared
//! semantically, the reconcile annotations as typed attributes, and the operator's status as
//! computed attributes.
//!
//! Lives in `resources/`: may use `framework`, `flux` and `resources::common`; does no I/O.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use crate::flux::duration::parse_duration;
use crate::flux::input_provider::{
    self as rsip, DEFAULT_FILTER_LIMIT, DEFAULT_TIME_ZONE, DEFAULT_WINDOW, InputProvider,
    InputProviderSpec, ProviderType,
};
use crate::flux::instance::{
    ANNOTATION_RECONCILE, ANNOTATION_RECONCILE_EVERY, ANNOTATION_RECONCILE_TIMEOUT,
    ReconcileAnnotations, ReconcileMode,
};
use crate::framework::diagnostics::Diagnostics;
use crate::framework::model::{Value, from_raw, to_raw};
use crate::framework::path::AttrPath;
use crate::framework::schema::{Attribute, Nesting, Schema};
use crate::framework::value::{RawValue, Type};
use crate::resources::common::{
    Timeouts, api_field_to_path, api_json_to_value, camel_case, timeouts_block, value_to_api_json,
};
use crate::resources::flux_resource_set::model::{
    Dynamic, SpecError, dynamic_raw, dynamic_value, json_to_raw, raw_to_json,
};

/// The typed spec attributes, converted to and from API JSON by name.
pub const TYPED_SPEC_ATTRIBUTES: [&str; 10] = [
    "type",
    "url",
    "service_account_name",
    "secret_ref",
    "cert_secret_ref",
    "insecure",
    "filter",
    "skip",
    "schedule",
    "selectors",
];

/// The attributes written to the object (spec and annotations): a change means an apply.
pub const DESIRED_ATTRIBUTES: [&str; 15] = [
    "type",
    "url",
    "service_account_name",
    "secret_ref",
    "cert_secret_ref",
    "insecure",
    "default_values",
    "filter",
    "skip",
    "schedule",
    "selectors",
    "reconcile_every",
    "reconcile_timeout",
    "suspend",
    "namespace",
];

/// `deletion_policy` values.
pub const DELETION_POLICIES: [&str; 2] = ["delete", "orphan"];

/// The Terraform data of `flux_resource_set_input_provider`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct InputProviderModel {
    pub id: Value<String>,
    pub name: Value<String>,
    pub namespace: Value<String>,
    #[serde(rename = "type")]
    pub provider_type: Value<String>,
    pub url: Value<String>,
    pub service_account_name: Value<String>,
    pub secret_ref: Value<NameRef>,
    pub cert_secret_ref: Value<NameRef>,
    pub insecure: Value<bool>,
    pub default_values: Value<Dynamic>,
    pub filter: Value<FilterModel>,
    pub skip: Value<SkipModel>,
    pub schedule: Value<Vec<ScheduleModel>>,
    pub selectors: Value<Vec<SelectorModel>>,
    pub reconcile_every: Value<String>,
    pub reconcile_timeout: Value<String>,
    pub suspend: Value<bool>,
    pub deletion_policy: Value<String>,
    pub timeouts: Value<Timeouts>,
    pub ready: Value<bool>,
    pub exported_inputs: Value<Dynamic>,
    pub last_exported_revision: Value<String>,
    pub next_schedule: Value<NextScheduleModel>,
}

/// `secret_ref`, `cert_secret_ref`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct NameRef {
    pub name: Value<String>,
}

/// `filter`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct FilterModel {
    pub include_branch: Value<String>,
    pub exclude_branch: Value<String>,
    pub include_tag: Value<String>,
    pub exclude_tag: Value<String>,
    pub include_environment: Value<String>,
    pub exclude_environment: Value<String>,
    pub labels: Value<Vec<String>>,
    pub limit: Value<i64>,
    pub semver: Value<String>,
}

/// `skip`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct SkipModel {
    pub labels: Value<Vec<String>>,
}

/// One of `schedule`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct ScheduleModel {
    pub cron: Value<String>,
    pub time_zone: Value<String>,
    pub window: Value<String>,
}

/// One of `selectors`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct SelectorModel {
    pub name: Value<String>,
    pub namespace: Value<String>,
    pub match_labels: Value<std::collections::BTreeMap<String, String>>,
    pub match_expressions: Value<Vec<ExpressionModel>>,
}

/// `selectors[*].match_expressions[*]`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct ExpressionModel {
    pub key: Value<String>,
    pub operator: Value<String>,
    pub values: Value<Vec<String>>,
}

/// The computed `next_schedule`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct NextScheduleModel {
    pub cron: Value<String>,
    pub time_zone: Value<String>,
    pub window: Value<String>,
    pub when: Value<String>,
}

fn s(name: &str, description: &str) -> Attribute {
    Attribute::string(name).optional().description(description)
}

fn secret(name: &str, description: &str) -> Attribute {
    Attribute::nested(
        name,
        Nesting::Single,
        vec![
            Attribute::string("name")
                .required()
                .description("Name of the Secret, in the provider's namespace."),
        ],
    )
    .optional()
    .description(description)
}

/// The `flux_resource_set_input_provider` schema.
pub fn schema() -> Schema {
    let types = ProviderType::ALL
        .iter()
        .map(|t| format!("`{t}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let attributes = vec![
        Attribute::string("id").computed().description("`<namespace>/<name>`."),
        Attribute::string("name").required().description("Name of the ResourceSetInputProvider; `flux_resource_set.inputs_from` refers to it by this name. Changing it replaces the provider."),
        Attribute::string("namespace").required().description("Namespace of the provider: a ResourceSet takes inputs only from providers in its own namespace. Changing it replaces the provider."),
        Attribute::string("type").required().description(format!("Where the input sets come from: {types}. `Static` exports `default_values` as one input set; the Git types export one input set per branch, tag, pull or merge request or environment; the `*ArtifactTag` types one per OCI tag; `ExternalService` what a JSON API returns; `ExternalArtifact` one per matching Flux `ExternalArtifact`.")),
        s("url", "Address of the API: the repository's `https://` URL for the Git types (`http(s)://` for Azure DevOps, `https://` for AWS CodeCommit), `oci://<registry>/<repository>` for the `*ArtifactTag` types, the endpoint for `ExternalService` (`https://`, or `http://` with `insecure = true`). Must be unset for `Static` and `ExternalArtifact`, required otherwise."),
        s("service_account_name", "Kubernetes ServiceAccount (in the provider's namespace) used for cloud workload identity. Only for the `AzureDevOps*`, `AWSCodeCommit*`, `*ArtifactTag` and `ExternalArtifact` types."),
        secret("secret_ref", "Secret with the credentials: `username`/`password` (a read-only token) for the Git types, an image pull Secret (`.dockerconfigjson`) for `OCIArtifactTag`, `token` or `username`/`password` for `ExternalService`. Not for `Static`, `ExternalArtifact`, `AWSCodeCommit*`, `ACRArtifactTag`, `ECRArtifactTag` or `GARArtifactTag`."),
        secret("cert_secret_ref", "Secret with a CA certificate (`ca.crt`) for a private certificate authority and/or a client certificate (`tls.crt`, `tls.key`) for mTLS. Only for the Git (but not `AzureDevOps*`/`AWSCodeCommit*`), `OCIArtifactTag` and `ExternalService` types."),
        Attribute::bool("insecure").optional().description("Allow plain HTTP. Only for `ExternalService` and `OCIArtifactTag`."),
        Attribute::new("default_values", Type::Dynamic).optional().description("Values added to every input set that lacks them, as an HCL object of arbitrary values (`{ env = \"dev\", replicas = 2 }`) or `yamldecode(...)`. For `Static`, the one input set. Compared semantically: key order and spelling are not a change."),
        Attribute::nested("filter", Nesting::Single, vec![
            s("include_branch", "Regular expression the branches must match."),
            s("exclude_branch", "Regular expression of branches to leave out."),
            s("include_tag", "Regular expression the tags must match."),
            s("exclude_tag", "Regular expression of tags to leave out."),
            s("include_environment", "Regular expression the GitLab environments must match."),
            s("exclude_environment", "Regular expression of GitLab environments to leave out."),
            Attribute::string_list("labels").optional().description("Labels the pull or merge requests must carry."),
            Attribute::number("limit").default_value(RawValue::from(DEFAULT_FILTER_LIMIT)).description("Maximum number of input sets, at most 10000. Default `100` (the CRD's)."),
            s("semver", "A semantic version range the tags must satisfy (e.g. `>=1.0.0`); matching tags are sorted by version, newest first."),
        ]).optional().description("Which of the provider's answers become input sets."),
        Attribute::nested("skip", Nesting::Single, vec![
            Attribute::string_list("labels").optional().description("Keep the previous input sets while a pull or merge request carries one of these labels (or, written `!label`, lacks it)."),
        ]).optional().description("When to keep the previous answer instead of a new one."),
        Attribute::nested("schedule", Nesting::List, vec![
            Attribute::string("cron").required().description("Cron expression: five fields (minute hour day-of-month month day-of-week, names such as `mon-fri` allowed) or a descriptor (`@hourly`, `@daily`, `@every 2h`)."),
            Attribute::string("time_zone").default_value(DEFAULT_TIME_ZONE).description("IANA time zone of `cron`. Default `UTC` (the CRD's)."),
            Attribute::string("window").default_value(DEFAULT_WINDOW).description("How long after each trigger the provider may run, a Go duration. `0s` (default, the CRD's): no window, the schedule only adds runs. A non-zero window must be at least twice the timeout (`reconcile_timeout`, operator default 2m)."),
        ]).optional().description("When the provider may run: outside every window it keeps its last input sets."),
        Attribute::nested("selectors", Nesting::List, vec![
            s("name", "One ExternalArtifact by name; excludes `match_labels` and `match_expressions`."),
            s("namespace", "Namespace to look in: the provider's when unset, `*` for every namespace."),
            Attribute::string_map("match_labels").optional().description("Labels the ExternalArtifacts must carry."),
            Attribute::nested("match_expressions", Nesting::List, vec![
                Attribute::string("key").required().description("Label key."),
                Attribute::string("operator").required().description("`In`, `NotIn`, `Exists` or `DoesNotExist`."),
                Attribute::string_list("values").optional().description("Values for `In` and `NotIn`."),
            ]).optional().description("Label requirements."),
        ]).optional().description("Which Flux `ExternalArtifact`s to export. Required for `ExternalArtifact`, not allowed otherwise."),
        s("reconcile_every", "How often the operator asks the provider again (`fluxcd.controlplane.io/reconcileEvery`), a Go duration; operator default `10m`."),
        s("reconcile_timeout", "How long one call to the provider may take (`fluxcd.controlplane.io/reconcileTimeout`); operator default `2m`."),
        Attribute::bool("suspend").default_value(false).description("Suspend the provider (`fluxcd.controlplane.io/reconcile: disabled`): it keeps its last input sets. Apply then does not wait for new ones. Default `false`."),
        Attribute::string("deletion_policy").default_value("delete").description("What destroying this resource does. `delete` (default): the provider is deleted; a ResourceSet that names it in `inputs_from` stalls, one that selects providers by label re-renders without its input sets (their objects are garbage collected). `orphan`: the provider is left in the cluster as it is, still exporting its input sets."),
        Attribute::bool("ready").computed().description("Whether the operator reports the provider Ready for its current generation (its input sets are exported)."),
        Attribute::new("exported_inputs", Type::Dynamic).computed().description("The input sets the provider exports, as the operator wrote them (`status.exportedInputs`): a list of objects, each with its `id` (for `Static`, the Adler-32 checksum of the object's UID). Read them with `jsonencode` or index them directly."),
        Attribute::string("last_exported_revision").computed().description("Digest of the exported input sets (`status.lastExportedRevision`); ResourceSets re-render when it changes."),
        Attribute::nested("next_schedule", Nesting::Single, vec![
            Attribute::string("cron").computed().description("The schedule's cron expression."),
            Attribute::string("time_zone").computed().description("The schedule's time zone."),
            Attribute::string("window").computed().description("The schedule's window."),
            Attribute::string("when").computed().description("When it next lets the provider run (RFC 3339)."),
        ]).computed().description("The next scheduled run, when `schedule` is set and the provider is outside its window (`status.nextSchedule`)."),
    ];
    let mut schema = Schema::new(
        0,
        "Manages a Flux Operator `ResourceSetInputProvider`: a source of input sets for \
         `flux_resource_set.inputs_from` (static values, Git branches, tags, pull or merge \
         requests, OCI tags, an external service or Flux `ExternalArtifact`s). Plans check the \
         CRD's rules (which fields each `type` allows) before anything is sent; apply waits \
         until the operator has exported the input sets, which `exported_inputs` then shows. \
         A `flux_resource_set` that names this provider's `name` in `inputs_from` is applied \
         after it by Terraform and renders its objects from these input sets in the same apply. \
         Requires the Flux Operator (see `flux_operator`). Import with `<namespace>/<name>`.",
        attributes,
    );
    schema.block = schema.block.with_block(timeouts_block("5m"));
    schema
        .block
        .description
        .push_str(&crate::resources::common::failed_wait_doc(
            "the ResourceSetInputProvider to be Ready",
            "ready == true",
            "deletes it, so that the ResourceSets reading it lose their inputs and \
             garbage-collect what they generated from them",
        ));
    schema
        .block
        .description
        .push_str(&crate::resources::common::existing_object_doc(
            "ResourceSetInputProvider",
            "<namespace>/<name>",
        ));
    schema
        .block
        .description
        .push_str(&crate::resources::common::reconciled_drift_doc(
            "ResourceSetInputProvider",
        ));
    schema
}

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
