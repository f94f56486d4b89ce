//! The Terraform face of a ResourceSet: the `flux_resource_set` schema (descriptions are the
//! documentation), its model, and the pure conversions between the model and the `ResourceSet`
//! object: the spec (open values such as `inputs`, `resources` and `steps` as `dynamic`
//! attributes, the rest typed), the reconcile annotations as typed attributes, and the
//! operator's status as computed attributes. Open values compare semantically
//! ([`crate::flux::semantic`]): a live value equivalent to the prior one keeps the prior spelling.
//!
//! `dynamic` attributes travel through the framework's serde bridge as [`Dynamic`], which
//! rebuilds the value tree (sequences as tuples, maps as objects: the kinds HCL and `yamldecode`
//! produce) and writes it back with the same kinds.
//!
//! Lives in `resources/`: may use `framework`, `flux` and `resources::common`; does no I/O.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use crate::flux::instance::{API_VERSION, CommonMetadata, ReconcileAnnotations, ReconcileMode};
use crate::flux::resource_set::{
    self as rset, Dependency, INPUT_PROVIDER_KIND, InputProviderRef, InputStrategy,
    InputStrategyName, ResourceSet, ResourceSetSpec, Step,
};
use crate::flux::semantic::{values_equal, yaml_equal};
use crate::framework::diagnostics::Diagnostics;
use crate::framework::model::{Value, from_raw, to_raw};
use crate::framework::path::AttrPath;
use crate::framework::schema::{Attribute, Nesting, Schema};
use crate::framework::value::{Number, RawValue, Type};
use crate::resources::common::{
    CommonMetadataModel, DeletionPolicy, Timeouts, api_field_to_path, common_metadata_attribute,
    deletion_policy_attribute, timeouts_block,
};

/// Computed `inventory_status` when every generated object exists and is healthy.
pub const HEALTHY: &str = "Healthy";

/// The `dynamic` attributes.
pub const OPEN_ATTRIBUTES: [&str; 3] = ["inputs", "resources", "steps"];

/// The attributes written to the object (spec and annotations): a change means an apply.
pub const DESIRED_ATTRIBUTES: [&str; 14] = [
    "inputs",
    "inputs_from",
    "input_strategy",
    "resources",
    "resources_template",
    "steps",
    "dependencies",
    "common_metadata",
    "service_account_name",
    "wait",
    "reconcile_every",
    "reconcile_timeout",
    "suspend",
    "namespace",
];

/// The Terraform data of `flux_resource_set`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct ResourceSetModel {
    pub id: Value<String>,
    pub name: Value<String>,
    pub namespace: Value<String>,
    pub inputs: Value<Dynamic>,
    pub inputs_from: Value<Vec<InputFromModel>>,
    pub input_strategy: Value<InputStrategyModel>,
    pub resources: Value<Dynamic>,
    pub resources_template: Value<String>,
    pub steps: Value<Dynamic>,
    pub dependencies: Value<Vec<DependencyModel>>,
    pub common_metadata: Value<CommonMetadataModel>,
    pub service_account_name: Value<String>,
    pub wait: Value<bool>,
    pub reconcile_every: Value<String>,
    pub reconcile_timeout: Value<String>,
    pub suspend: Value<bool>,
    pub deletion_policy: Value<String>,
    pub timeouts: Value<Timeouts>,
    pub ready: Value<bool>,
    pub last_applied_revision: Value<String>,
    pub inventory: Value<Vec<InventoryModel>>,
    pub inventory_status: Value<String>,
}

/// One of `inputs_from`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct InputFromModel {
    pub name: Value<String>,
    pub selector: Value<SelectorModel>,
}

/// `inputs_from[*].selector`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct SelectorModel {
    pub match_labels: Value<BTreeMap<String, String>>,
    pub match_expressions: Value<Vec<ExpressionModel>>,
}

/// `inputs_from[*].selector.match_expressions[*]`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct ExpressionModel {
    pub key: Value<String>,
    pub operator: Value<String>,
    pub values: Value<Vec<String>>,
}

/// `input_strategy`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct InputStrategyModel {
    pub name: Value<String>,
    pub include_empty_providers: Value<bool>,
}

/// One of `dependencies` (the API's `dependsOn`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct DependencyModel {
    pub api_version: Value<String>,
    pub kind: Value<String>,
    pub name: Value<String>,
    pub namespace: Value<String>,
    pub ready: Value<bool>,
    pub ready_expr: Value<String>,
}

/// One element of the computed `inventory`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct InventoryModel {
    pub api_version: Value<String>,
    pub kind: Value<String>,
    pub namespace: Value<String>,
    pub name: Value<String>,
}

fn s(name: &str, description: &str) -> Attribute {
    Attribute::string(name).optional().description(description)
}

/// The `flux_resource_set` schema.
pub fn schema() -> Schema {
    let attributes = vec![
        Attribute::string("id").computed().description("`<namespace>/<name>`."),
        Attribute::string("name").required().description("Name of the ResourceSet. Changing it replaces the ResourceSet (and, with `deletion_policy = \"uninstall\"`, what it generated)."),
        Attribute::string("namespace").required().description("Namespace of the ResourceSet; `inputs_from` providers are looked up here. Changing it replaces the ResourceSet."),
        Attribute::new("inputs", Type::Dynamic).optional().description(
            "Input sets: a list of objects of arbitrary values, written in HCL (`[{ tenant = \"team-a\", replicas = 2 }]`) or with `yamldecode`. The templates are rendered once per input set and read a value as `<< inputs.tenant >>`. Compared semantically: key order and the spelling (HCL or decoded YAML) are not a change; a plan shows the changed fields."),
        Attribute::nested("inputs_from", Nesting::List, vec![
            s("name", "Name of a `ResourceSetInputProvider` in the ResourceSet's namespace. Exactly one of `name` and `selector`. Plan warns when it does not exist: the operator reports the ResourceSet Stalled (\"failed to compute inputs\"). A provider created in the same apply must come first: refer to its `name` attribute (`flux_resource_set_input_provider.x.name`) or add `depends_on`."),
            Attribute::nested("selector", Nesting::Single, vec![
                Attribute::string_map("match_labels").optional().description("Labels the providers must carry."),
                Attribute::nested("match_expressions", Nesting::List, vec![
                    Attribute::string("key").required().description("Label key."),
                    Attribute::string("operator").required().description("`In`, `NotIn`, `Exists` or `DoesNotExist`."),
                    Attribute::string_list("values").optional().description("Values for `In` and `NotIn`."),
                ]).optional().description("Label selector requirements."),
            ]).optional().description("Select `ResourceSetInputProvider`s in the ResourceSet's namespace by label. Exactly one of `name` and `selector`."),
        ]).optional().description("Take input sets from `ResourceSetInputProvider`s (same namespace), by name or by label selector."),
        Attribute::nested("input_strategy", Nesting::Single, vec![
            Attribute::string("name").required().description("`Flatten` (the providers' input sets one after the other) or `Permute` (every combination; each provider's inputs nested under its normalised name)."),
            Attribute::bool("include_empty_providers").optional().description("`Permute` only: keep combinations with providers that export no inputs."),
        ]).optional().description("How input sets from several providers combine. Operator default: `Flatten`."),
        Attribute::new("resources", Type::Dynamic).optional().description(
            "Object templates: a list of Kubernetes objects, typically written as HCL objects or with `yamldecode`; objects of different shapes may be mixed. String values may use the operator's `<< >>` template delimiters, which pass through untouched. Compared semantically. Mutually exclusive with `steps`."),
        s("resources_template", "A multi-document YAML template of objects (Go `text/template` with `<< >>` delimiters, e.g. a heredoc). Merged with `resources`, which wins on duplicates. Compared semantically: reformatting, key order and comments are not a change. Mutually exclusive with `steps`."),
        Attribute::new("steps", Type::Dynamic).optional().description(
            "Ordered steps, each applied and health-checked before the next: a list of objects `{ name, resources, resources_template, timeout }` (`name` a DNS label, unique; at least one of `resources` and `resources_template`; `timeout` a Go duration). 1 to 20 steps. Mutually exclusive with `resources` and `resources_template`."),
        Attribute::nested("dependencies", Nesting::List, vec![
            Attribute::string("api_version").required().description("API version of the dependency, e.g. `apiextensions.k8s.io/v1`."),
            Attribute::string("kind").required().description("Kind of the dependency."),
            Attribute::string("name").required().description("Name of the dependency."),
            s("namespace", "Namespace of the dependency, used as given: the operator does not default it to the ResourceSet's, so a namespaced dependency needs it (refused at plan for the core, Flux and Flux Operator kinds); leave it unset only for cluster-scoped kinds."),
            Attribute::bool("ready").optional().description("Also wait until the dependency is ready, not only present: a ResourceSet or ResourceSetInputProvider when `Ready` for its current generation, any other kind when kstatus reports it current (a Deployment Available, a ConfigMap as soon as it exists)."),
            s("ready_expr", "A CEL expression deciding readiness in place of the default check; only evaluated with `ready = true` (refused at plan otherwise)."),
        ]).optional().description("Objects that must exist (and be ready) before the operator reconciles the ResourceSet (the API's `dependsOn`; renamed because `depends_on` is a Terraform meta-argument). While one is missing or not ready, the operator reports `DependencyNotReady` and apply keeps waiting until its timeout."),
        common_metadata_attribute("Labels and annotations set on every generated object.", "Annotations set on every generated object; `fluxcd.controlplane.io/prune: disabled` disables garbage collection."),
        s("service_account_name", "Service account (in the ResourceSet's namespace) the operator impersonates to apply and prune the generated objects. Plan warns when it does not exist. Create it before the ResourceSet and destroy it after: if the operator cannot impersonate it on delete, it skips pruning and leaves the generated objects behind."),
        Attribute::bool("wait").default_value(false).description("Whether the operator health-checks the generated objects before reporting Ready. Default `false` (the operator's default)."),
        s("reconcile_every", "How often the operator re-applies the generated objects to correct drift (`fluxcd.controlplane.io/reconcileEvery`), a Go duration; operator default `1h`."),
        s("reconcile_timeout", "How long the operator health-checks the generated objects (`fluxcd.controlplane.io/reconcileTimeout`); operator default `5m`."),
        Attribute::bool("suspend").default_value(false).description("Suspend reconciliation (`fluxcd.controlplane.io/reconcile: disabled`). Apply then does not wait for readiness. Default `false`."),
        deletion_policy_attribute("the operator deletes every object the ResourceSet generated (except those annotated `fluxcd.controlplane.io/prune: disabled`)."),
        Attribute::bool("ready").computed().description("Whether the operator reports the ResourceSet Ready for its current generation."),
        Attribute::string("last_applied_revision").computed().description("The operator's last applied revision (a digest of the rendered objects)."),
        Attribute::nested("inventory", Nesting::List, vec![
            Attribute::string("api_version").computed().description("API version of the generated object."),
            Attribute::string("kind").computed().description("Kind of the generated object."),
            Attribute::string("namespace").computed().description("Namespace of the generated object; empty for cluster-scoped objects."),
            Attribute::string("name").computed().description("Name of the generated object."),
        ]).computed().description("Every object the ResourceSet generated, from the operator's inventory."),
        Attribute::string("inventory_status").computed().description("`Healthy`, or which generated objects are missing or unhealthy (deleted by hand, for instance). A change of this value in a plan means apply will ask the operator to reconcile the ResourceSet and wait until it is Ready again."),
    ];
    let mut schema = Schema::new(
        0,
        "Manages a Flux Operator `ResourceSet`: Kubernetes objects generated from templates for \
         each input set (a tenant, a preview environment, a per-cluster add-on). Plans diff the \
         spec field by field against the live object; templates and open values compare \
         semantically, and the operator's `<< >>` delimiters pass through untouched. Apply \
         waits until the operator reports the ResourceSet Ready. Requires the Flux Operator \
         (see `flux_operator`). Import with `<namespace>/<name>`.",
        attributes,
    );
    schema.block = schema.block.with_block(timeouts_block("10m"));
    schema
        .block
        .description
        .push_str(&crate::resources::common::failed_wait_doc(
            "the ResourceSet to be Ready",
            "ready == true",
            "with `deletion_policy = \"uninstall\"` deletes every object it generated and \
             creates them again",
        ));
    schema
        .block
        .description
        .push_str(&crate::resources::common::existing_object_doc(
            "ResourceSet",
            "<namespace>/<name>",
        ));
    schema
        .block
        .description
        .push_str(&crate::resources::common::reconciled_drift_doc(
            "ResourceSet",
        ));
    schema
}

/// The value of a `dynamic` attribute, as a field of a serde model (`Value<Dynamic>`: null and
/// unknown at the top are the `Value`'s). Reading rebuilds sequences as tuples and maps as
/// objects, the kinds HCL expressions and `yamldecode` produce; unknown values inside survive.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Dynamic(pub RawValue);

/// Object attribute names for `serialize_struct`, which wants `&'static str`: each distinct
/// name is allocated once per process.
fn intern(key: &str) -> &'static str {
    use std::collections::BTreeSet;
    use std::sync::{Mutex, OnceLock, PoisonError};
    static KEYS: OnceLock<Mutex<BTreeSet<&'static str>>> = OnceLock::new();
    let mut keys = KEYS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(existing) = keys.get(key) {
        return existing;
    }
    let leaked: &'static str = Box::leak(key.to_owned().into_boxed_str());
    keys.insert(leaked);
    leaked
}

impl Serialize for Dynamic {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq, SerializeStruct, SerializeTuple};
        let element = |v: &RawValue| dynamic_value(v.clone());
        match &self.0 {
            RawValue::Null => serializer.serialize_none(),
            RawValue::Unknown(_) => Value::<Dynamic>::Unknown.serialize(serializer),
            RawValue::Bool(b) => serializer.serialize_bool(*b),
            RawValue::String(text) => serializer.serialize_str(text),
            RawValue::Number(n) => match n.normalized() {
                Number::Int(i) => serializer.serialize_i64(i),
                Number::Float(f) => serializer.serialize_f64(f),
                Number::Decimal(text) => match text.parse::<i128>() {
                    Ok(i) => serializer.serialize_i128(i),
                    Err(_) => serializer.serialize_f64(text.parse::<f64>().unwrap_or(0.0)),
                },
            },
            RawValue::List(items) | RawValue::Set(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&element(item))?;
                }
                seq.end()
            }
            RawValue::Tuple(items) => {
                let mut seq = serializer.serialize_tuple(items.len())?;
                for item in items {
                    seq.serialize_element(&element(item))?;
                }
                seq.end()
            }
            RawValue::Map(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(key, &element(value))?;
                }
                map.end()
            }
            RawValue::Object(entries) => {
                let mut object = serializer.serialize_struct("object", entries.len())?;
                for (key, value) in entries {
                    object.serialize_field(intern(key), &element(value))?;
                }
                object.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Dynamic {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Dynamic;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any value")
            }
            fn visit_unit<E>(self) -> Result<Dynamic, E> {
                Ok(Dynamic(RawValue::Null))
            }
            fn visit_none<E>(self) -> Result<Dynamic, E> {
                Ok(Dynamic(RawValue::Null))
            }
            fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Dynamic, D::Error> {
                Dynamic::deserialize(d)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Dynamic, E> {
                Ok(Dynamic(RawValue::Bool(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Dynamic, E> {
                Ok(Dynamic(RawValue::Number(Number::Int(v))))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Dynamic, E> {
                Ok(Dynamic(RawValue::Number(
                    Number::Decimal(v.to_string()).normalized(),
                )))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Dynamic, E> {
                Ok(Dynamic(RawValue::Number(Number::from_f64(v))))
            }
            fn visit_str<E>(self, v: &str) -> Result<Dynamic, E> {
                Ok(Dynamic(RawValue::String(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Dynamic, E> {
                Ok(Dynamic(RawValue::String(v)))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Dynamic, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Value<Dynamic>>()? {
                    items.push(dynamic_raw(&item));
                }
                Ok(Dynamic(RawValue::Tuple(items)))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Dynamic, A::Error> {
                let mut entries = BTreeMap::new();
                while let Some((key, value)) = map.next_entry::<String, Value<Dynamic>>()? {
                    entries.insert(key, dynamic_raw(&value));
                }
                Ok(Dynamic(RawValue::Object(entries)))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// A `dynamic` attribute as one untyped value (null, unknown, or the value).
pub fn dynamic_raw(value: &Value<Dynamic>) -> RawValue {
    match value {
        Value::Known(d) => d.0.clone(),
        Value::Null => RawValue::Null,
        Value::Unknown => RawValue::unknown(),
    }
}

/// An untyped value as a `dynamic` attribute.
pub fn dynamic_value(raw: RawValue) -> Value<Dynamic> {
    match raw {
        RawValue::Null => Value::Null,
        RawValue::Unknown(_) => Value::Unknown,
        other => Value::Known(Dynamic(other)),
    }
}

/// Why a model does not give a ResourceSet spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// Some value is not known until apply.
    #[error("the configuration has values not known until apply")]
    Unknown,
    /// A value does not have the shape the API needs.
    #[error("{path}: {message}")]
    Shape {
        /// The attribute.
        path: AttrPath,
        /// What is wrong.
        message: String,
    },
}

/// A wholly known Terraform value as plain JSON (object and map keys unchanged).
///
/// # Errors
///
/// [`SpecError::Unknown`] when any part is unknown.
pub fn raw_to_json(value: &RawValue) -> Result<Json, SpecError> {
    Ok(match value {
        RawValue::Null => Json::Null,
        RawValue::Unknown(_) => return Err(SpecError::Unknown),
        RawValue::Bool(b) => Json::Bool(*b),
        RawValue::String(text) => Json::String(text.clone()),
        RawValue::Number(n) => number_to_json(n),
        RawValue::List(items) | RawValue::Set(items) | RawValue::Tuple(items) => {
            Json::Array(items.iter().map(raw_to_json).collect::<Result<_, _>>()?)
        }
        RawValue::Map(entries) | RawValue::Object(entries) => Json::Object(
            entries
                .iter()
                .map(|(k, v)| Ok((k.clone(), raw_to_json(v)?)))
                .collect::<Result<_, SpecError>>()?,
        ),
    })
}

fn number_to_json(n: &Number) -> Json {
    match n.normalized() {
        Number::Int(i) => Json::from(i),
        Number::Float(f) => serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number),
        Number::Decimal(text) => text
            .parse::<u64>()
            .map(Json::from)
            .ok()
            .or_else(|| {
                text.parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map(Json::Number)
            })
            .unwrap_or(Json::String(text)),
    }
}

/// Plain JSON as a `dynamic` Terraform value (arrays become tuples, objects objects).
pub fn json_to_raw(json: &Json) -> RawValue {
    RawValue::from_json(json, &Type::Dynamic).unwrap_or_default()
}

fn shape(path: AttrPath, message: impl Into<String>) -> SpecError {
    SpecError::Shape {
        path,
        message: message.into(),
    }
}

/// A `dynamic` list of objects (`inputs`, `resources`) as JSON objects; `None` when null.
fn object_list(
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

fn index(i: usize) -> i64 {
    i64::try_from(i).unwrap_or(i64::MAX)
}

/// Keys of a step object, in the Terraform spelling.
const STEP_KEYS: [&str; 4] = ["name", "resources", "resources_template", "timeout"];

fn steps_from_raw(value: &Value<Dynamic>) -> Result<Option<Vec<Step>>, SpecError> {
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

fn steps_to_json(steps: &[Step]) -> Json {
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

fn known<T: Clone>(value: &Value<T>) -> Result<Option<T>, SpecError> {
    match value {
        Value::Known(v) => Ok(Some(v.clone())),
        Value::Null => Ok(None),
        Value::Unknown => Err(SpecError::Unknown),
    }
}

fn selector(model: &SelectorModel) -> Result<LabelSelector, SpecError> {
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
fn attribute_name(field: &str) -> String {
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

/// Whether a `dynamic` value and live JSON hold the same data (null, absent and an empty list
/// are the same).
fn open_equal(value: &Value<Dynamic>, live: Option<&Json>) -> bool {
    let empty = |j: &Json| j.is_null() || j.as_array().is_some_and(Vec::is_empty);
    match (raw_to_json(&dynamic_raw(value)), live) {
        (Ok(mine), None) => empty(&mine),
        (Ok(mine), Some(live)) => (empty(&mine) && empty(live)) || values_equal(&mine, live),
        (Err(_), _) => false,
    }
}

fn steps_equal(a: &[Step], b: &[Step]) -> bool {
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

fn inputs_from_model(list: &[InputProviderRef]) -> Vec<InputFromModel> {
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
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

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
        b.resources_template =
            Value::Known("data:\n  replicas: \"<< inputs.replicas >>\"\n".into());
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
}
