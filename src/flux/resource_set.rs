//! The `ResourceSet` API (`fluxcd.controlplane.io/v1`) as Rust types, the API's validation rules
//! checked locally (with the offending field names), and the semantic spec diff.
//!
//! Open shapes stay open: `inputs` are JSON objects, `resources` JSON values, templates strings
//! (compared with [`crate::flux::semantic`], so reformatting or key order is no diff and the
//! `<< >>` delimiters pass through untouched). Fields follow the Flux Operator v0.58.1 CRD, which
//! has `steps` (1–20, each `{name, resources, resourcesTemplate, timeout}`) and no defaults.
//! Pure: no I/O, nothing else from this crate.

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, ObjectMeta};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::flux::duration::parse_duration;
use crate::flux::instance::{API_VERSION, CommonMetadata, HistoryEntry, ReconcileAnnotations};
use crate::flux::object::Inventory;
use crate::flux::semantic::{DiffOptions, FieldChange, diff_values};

/// `kind` of a ResourceSet.
pub const KIND: &str = "ResourceSet";
/// Plural resource name of ResourceSet.
pub const PLURAL: &str = "resourcesets";
/// The only kind `inputsFrom` may reference.
pub const INPUT_PROVIDER_KIND: &str = "ResourceSetInputProvider";
/// Label naming the ResourceSet on every generated object.
pub const LABEL_OWNER_NAME: &str = "resourceset.fluxcd.controlplane.io/name";
/// Label naming the ResourceSet's namespace on every generated object.
pub const LABEL_OWNER_NAMESPACE: &str = "resourceset.fluxcd.controlplane.io/namespace";
/// Maximum number of steps.
pub const MAX_STEPS: usize = 20;

/// Why a ResourceSet could not be read or is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceSetError {
    /// The spec breaks one or more of the API's rules.
    #[error("invalid ResourceSet: {}", violations.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Validate {
        /// Every broken rule.
        violations: Vec<RuleViolation>,
    },
    /// The object is not valid ResourceSet JSON.
    #[error("decoding ResourceSet: {0}")]
    Decode(String),
    /// The object could not be encoded.
    #[error("encoding ResourceSet: {0}")]
    Encode(String),
}

/// One broken API rule, naming the fields involved (API names, with indices:
/// `inputsFrom[1].name`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleViolation {
    /// The fields involved (for `steps` vs `resources`, both).
    pub fields: Vec<String>,
    /// The API's message.
    pub message: String,
}

impl std::fmt::Display for RuleViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.fields.join(", "))
    }
}

/// A whole ResourceSet object.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ResourceSet {
    /// Always [`API_VERSION`].
    pub api_version: String,
    /// Always [`KIND`].
    pub kind: String,
    /// Object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The desired state.
    pub spec: ResourceSetSpec,
    /// The observed state, written by the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ResourceSetStatus>,
}

impl ResourceSet {
    /// A ResourceSet `namespace/name` with the given spec.
    pub fn new(namespace: &str, name: &str, spec: ResourceSetSpec) -> Self {
        Self {
            api_version: API_VERSION.to_owned(),
            kind: KIND.to_owned(),
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some(namespace.to_owned()),
                ..ObjectMeta::default()
            },
            spec,
            status: None,
        }
    }

    /// Decodes an object read from the API server.
    ///
    /// # Errors
    ///
    /// [`ResourceSetError::Decode`].
    pub fn from_json(value: Value) -> Result<Self, ResourceSetError> {
        serde_json::from_value(value).map_err(|e| ResourceSetError::Decode(e.to_string()))
    }

    /// Encodes the object as JSON, omitting absent fields.
    ///
    /// # Errors
    ///
    /// [`ResourceSetError::Encode`]; not expected for these types.
    pub fn to_json(&self) -> Result<Value, ResourceSetError> {
        serde_json::to_value(self).map_err(|e| ResourceSetError::Encode(e.to_string()))
    }

    /// The reconcile control annotations present on the object (the same set as FluxInstance;
    /// `reconcileArtifactEvery` does not apply to ResourceSets).
    pub fn reconcile_annotations(&self) -> ReconcileAnnotations {
        ReconcileAnnotations::from_annotations(
            self.metadata
                .annotations
                .as_ref()
                .unwrap_or(&std::collections::BTreeMap::new()),
        )
    }
}

/// `spec` of a ResourceSet.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ResourceSetSpec {
    /// Input sets; each is a map of arbitrary JSON values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Vec<Map<String, Value>>>,
    /// ResourceSetInputProviders to take inputs from (same namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs_from: Option<Vec<InputProviderRef>>,
    /// How inputs from several providers combine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_strategy: Option<InputStrategy>,
    /// Object templates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Vec<Value>>,
    /// A multi-document YAML template; merged with `resources` (which wins on duplicates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources_template: Option<String>,
    /// Ordered steps, each applied and health-checked before the next; excludes `resources` and
    /// `resourcesTemplate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<Step>>,
    /// Objects that must exist (and be ready) before reconciling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depends_on: Option<Vec<Dependency>>,
    /// Labels and annotations set on every generated object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common_metadata: Option<CommonMetadata>,
    /// Service account to impersonate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Health-check the generated objects (operator default `false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<bool>,
}

/// One entry of `spec.inputsFrom`: exactly one of `name` and `selector`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct InputProviderRef {
    /// Must be `fluxcd.controlplane.io/v1`.
    pub api_version: String,
    /// Must be `ResourceSetInputProvider`.
    pub kind: String,
    /// The provider's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A label selector over providers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

/// `spec.inputStrategy`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct InputStrategy {
    /// `Flatten` or `Permute`.
    pub name: InputStrategyName,
    /// Permute only: keep empty providers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_empty_providers: Option<bool>,
}

string_enum! {
    /// `spec.inputStrategy.name`.
    pub enum InputStrategyName {
        /// Concatenate the providers' input sets.
        Flatten => "Flatten",
        /// Cartesian product of the providers' input sets.
        Permute => "Permute",
    }
}

/// One entry of `spec.steps`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// A DNS label, unique among the steps.
    pub name: String,
    /// Object templates of this step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Vec<Value>>,
    /// A multi-document YAML template for this step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources_template: Option<String>,
    /// Health-check timeout of this step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// One entry of `spec.dependsOn` (the Terraform attribute is `dependencies`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Dependency {
    /// API version of the dependency.
    pub api_version: String,
    /// Kind of the dependency.
    pub kind: String,
    /// Name of the dependency.
    pub name: String,
    /// Namespace of the dependency, used as given: absent means none (cluster-scoped kinds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Wait until the dependency is ready, not only present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<bool>,
    /// A CEL expression deciding readiness.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_expr: Option<String>,
}

/// `status` of a ResourceSet, written by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ResourceSetStatus {
    /// `Ready`, `Reconciling`, `Stalled`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The generated objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<Inventory>,
    /// sha256 of the rendered objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied_revision: Option<String>,
    /// Echo of the handled `reconcile.fluxcd.io/requestedAt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
    /// ConfigMaps and Secrets whose checksums were computed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external_checksum_refs: Vec<String>,
    /// The last reconciliations, newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryEntry>,
}

fn is_dns_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first() != Some(&b'-')
        && bytes.last() != Some(&b'-')
}

/// Whether a template text reads `inputs.id` inside a `<< >>` action.
fn mentions_inputs_id(text: &str) -> bool {
    text.split("<<").skip(1).any(|action| {
        let action = action.split(">>").next().unwrap_or_default();
        action.match_indices("inputs.id").any(|(at, m)| {
            let before = action[..at].chars().next_back();
            let after = action[at + m.len()..].chars().next();
            before.is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '.'))
                && after.is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
        })
    })
}

/// Whether a dependency kind is namespaced (the core kinds, the Flux and Flux Operator kinds);
/// `false` for cluster-scoped and unknown kinds.
fn is_namespaced_kind(api_version: &str, kind: &str) -> bool {
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    group.ends_with(".toolkit.fluxcd.io")
        || (group == "fluxcd.controlplane.io"
            && matches!(
                kind,
                "ResourceSet" | "ResourceSetInputProvider" | "FluxInstance"
            ))
        || matches!(
            (group, kind),
            (
                "",
                "ConfigMap" | "Secret" | "Service" | "ServiceAccount" | "PersistentVolumeClaim"
            ) | ("apps", "Deployment" | "StatefulSet" | "DaemonSet")
                | ("batch", "Job" | "CronJob")
        )
}

/// Checks the API's rules (the CRD's CEL rules, enums, patterns and required fields) and the
/// rules the Flux Operator applies when it reconciles (a namespaced dependency needs its
/// namespace, `readyExpr` only with `ready`, no `inputs.id` with inline inputs), which would
/// otherwise leave the ResourceSet waiting or stalled.
///
/// # Errors
///
/// [`ResourceSetError::Validate`] listing every broken rule with its fields.
pub fn validate(spec: &ResourceSetSpec) -> Result<(), ResourceSetError> {
    let mut violations = Vec::new();
    let mut violation = |fields: Vec<String>, message: &str| {
        violations.push(RuleViolation {
            fields,
            message: message.to_owned(),
        });
    };
    let has_resources = spec.resources.is_some();
    let has_template = spec.resources_template.is_some();
    if spec.steps.is_some() && (has_resources || has_template) {
        let mut fields = vec!["steps".to_owned()];
        if has_resources {
            fields.push("resources".to_owned());
        }
        if has_template {
            fields.push("resourcesTemplate".to_owned());
        }
        violation(
            fields,
            "steps is mutually exclusive with resources and resourcesTemplate",
        );
    }
    if spec.steps.is_none() && !has_resources && !has_template {
        violation(
            vec![
                "steps".into(),
                "resources".into(),
                "resourcesTemplate".into(),
            ],
            "at least one of steps, resources or resourcesTemplate must be set",
        );
    }
    for (i, source) in spec.inputs_from.iter().flatten().enumerate() {
        let field = |name: &str| format!("inputsFrom[{i}].{name}");
        if source.api_version != API_VERSION {
            violation(
                vec![field("apiVersion")],
                "apiVersion must be fluxcd.controlplane.io/v1",
            );
        }
        if source.kind != INPUT_PROVIDER_KIND {
            violation(vec![field("kind")], "kind must be ResourceSetInputProvider");
        }
        match (&source.name, &source.selector) {
            (None, None) => violation(
                vec![field("name"), field("selector")],
                "at least one of name or selector must be set for input provider references",
            ),
            (Some(_), Some(_)) => violation(
                vec![field("name"), field("selector")],
                "cannot set both name and selector for input provider references",
            ),
            _ => {}
        }
    }
    if let Some(strategy) = &spec.input_strategy
        && strategy.include_empty_providers.is_some()
        && strategy.name != InputStrategyName::Permute
    {
        violation(
            vec!["inputStrategy.includeEmptyProviders".into()],
            "includeEmptyProviders only applies when name is Permute",
        );
    }
    if let Some(steps) = &spec.steps {
        if steps.is_empty() || steps.len() > MAX_STEPS {
            violation(
                vec!["steps".into()],
                "steps must have between 1 and 20 items",
            );
        }
        let mut seen = BTreeSet::new();
        let mut duplicate = false;
        for (i, step) in steps.iter().enumerate() {
            let field = |name: &str| format!("steps[{i}].{name}");
            if !is_dns_label(&step.name) {
                violation(
                    vec![field("name")],
                    "step name must be a DNS label (lowercase letters, digits and '-', at most 63 characters)",
                );
            }
            duplicate |= !seen.insert(step.name.as_str());
            if step.resources.is_none() && step.resources_template.is_none() {
                violation(
                    vec![field("resources"), field("resourcesTemplate")],
                    "at least one of resources or resourcesTemplate must be set",
                );
            }
            if let Some(timeout) = &step.timeout
                && parse_duration(timeout).is_err()
            {
                violation(
                    vec![field("timeout")],
                    "timeout must match ^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$",
                );
            }
        }
        if duplicate {
            violation(vec!["steps".into()], "step names must be unique");
        }
    }
    for (i, dep) in spec.depends_on.iter().flatten().enumerate() {
        for (name, value) in [
            ("apiVersion", &dep.api_version),
            ("kind", &dep.kind),
            ("name", &dep.name),
        ] {
            if value.is_empty() {
                violation(vec![format!("dependsOn[{i}].{name}")], "must not be empty");
            }
        }
        // The operator reads the namespace as given: a namespaced dependency without one is
        // never found, and the ResourceSet waits (DependencyNotReady) forever.
        if dep.namespace.as_deref().is_none_or(str::is_empty)
            && is_namespaced_kind(&dep.api_version, &dep.kind)
        {
            violation(
                vec![format!("dependsOn[{i}].namespace")],
                "a namespaced dependency needs its namespace: the Flux Operator looks it up in the \
                 namespace given, not the ResourceSet's, so without one it is never found",
            );
        }
        // The operator evaluates readyExpr only with ready: true.
        if dep.ready_expr.as_deref().is_some_and(|e| !e.is_empty()) && dep.ready != Some(true) {
            violation(
                vec![
                    format!("dependsOn[{i}].readyExpr"),
                    format!("dependsOn[{i}].ready"),
                ],
                "readyExpr is only evaluated when ready is true; set ready = true or remove readyExpr",
            );
        }
    }
    // Inline inputs carry no `id` (only a provider's exported inputs do); the operator renders
    // with missingkey=error, so `<< inputs.id >>` stalls the ResourceSet.
    if spec.inputs.as_ref().is_some_and(|i| !i.is_empty()) {
        let mut uses_id = Vec::new();
        let resources = |r: &Option<Vec<Value>>| {
            r.as_ref()
                .is_some_and(|list| list.iter().any(|v| mentions_inputs_id(&v.to_string())))
        };
        let template = |t: &Option<String>| t.as_deref().is_some_and(mentions_inputs_id);
        if resources(&spec.resources) {
            uses_id.push("resources".to_owned());
        }
        if template(&spec.resources_template) {
            uses_id.push("resourcesTemplate".to_owned());
        }
        for (i, step) in spec.steps.iter().flatten().enumerate() {
            if resources(&step.resources) {
                uses_id.push(format!("steps[{i}].resources"));
            }
            if template(&step.resources_template) {
                uses_id.push(format!("steps[{i}].resourcesTemplate"));
            }
        }
        if !uses_id.is_empty() {
            let mut fields = vec!["inputs".to_owned()];
            fields.extend(uses_id);
            violation(
                fields,
                "inline inputs have no id (only inputs exported by a ResourceSetInputProvider \
                 do): the Flux Operator fails to render << inputs.id >> and stalls; use one of the \
                 input's own fields instead",
            );
        }
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(ResourceSetError::Validate { violations })
    }
}

/// The canonical form for comparisons: absent `wait` is `false` (the operator's default), empty
/// `commonMetadata` maps are absent.
pub fn normalize(spec: &ResourceSetSpec) -> ResourceSetSpec {
    let mut out = spec.clone();
    out.wait.get_or_insert(false);
    if let Some(meta) = out.common_metadata.as_mut() {
        if meta.labels.as_ref().is_some_and(|m| m.is_empty()) {
            meta.labels = None;
        }
        if meta.annotations.as_ref().is_some_and(|m| m.is_empty()) {
            meta.annotations = None;
        }
        if meta.labels.is_none() && meta.annotations.is_none() {
            out.common_metadata = None;
        }
    }
    out
}

/// Paths whose value is a YAML template compared with
/// [`crate::flux::semantic::yaml_equal`].
const YAML_STRINGS: &[&str] = &["resourcesTemplate", "steps[*].resourcesTemplate"];

/// The differences between the desired and the live spec, both normalised, field by field
/// (`inputs[0].replicas`, `resourcesTemplate`). Empty when equivalent.
pub fn diff_specs(desired: &ResourceSetSpec, live: &ResourceSetSpec) -> Vec<FieldChange> {
    let to_value =
        |spec: &ResourceSetSpec| serde_json::to_value(normalize(spec)).unwrap_or(Value::Null);
    diff_values(
        &to_value(desired),
        &to_value(live),
        &DiffOptions {
            yaml_strings: YAML_STRINGS,
            atomic: &[],
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flux::object::{InventoryEntry, ObjectRef};
    use pretty_assertions::assert_eq;
    use serde_json::json;

    const SAMPLE: &str = include_str!("testdata/resource_set/tenants.yaml");

    #[test]
    fn realistic_resource_set_round_trips() {
        let decoded: ResourceSet = serde_saphyr::from_str(SAMPLE).unwrap();
        let as_value: Value = serde_saphyr::from_str(SAMPLE).unwrap();
        assert_eq!(
            decoded.reconcile_annotations(),
            ReconcileAnnotations {
                reconcile_every: Some("10m".into()),
                ..ReconcileAnnotations::default()
            }
        );
        assert_eq!(decoded.to_json().unwrap(), as_value);
        assert_eq!(ResourceSet::from_json(as_value).unwrap(), decoded);
        assert_eq!(validate(&decoded.spec), Ok(()));

        let spec = &decoded.spec;
        assert_eq!(
            spec.inputs.as_ref().map(|i| i.len()),
            Some(2),
            "two input sets"
        );
        assert_eq!(
            spec.inputs.as_ref().and_then(|i| i[1].get("replicas")),
            Some(&json!(3))
        );
        let template = spec.resources_template.as_deref().unwrap_or_default();
        assert!(
            template.contains("name: << inputs.tenant >>"),
            "delimiters untouched: {template}"
        );
        assert_eq!(
            spec.depends_on,
            Some(vec![Dependency {
                api_version: "apiextensions.k8s.io/v1".into(),
                kind: "CustomResourceDefinition".into(),
                name: "helmreleases.helm.toolkit.fluxcd.io".into(),
                namespace: None,
                ready: Some(true),
                ready_expr: None,
            }])
        );
        let inventory: Vec<String> = decoded
            .status
            .and_then(|s| s.inventory)
            .map(|i| i.object_refs().unwrap())
            .unwrap_or_default()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            inventory,
            [
                "Namespace/team-a",
                "ServiceAccount/team-a/flux",
                "Namespace/team-b",
            ]
        );
    }

    fn spec(value: Value) -> ResourceSetSpec {
        serde_json::from_value(value).unwrap()
    }

    fn violations(value: Value) -> Vec<(Vec<String>, String)> {
        match validate(&spec(value)) {
            Ok(()) => vec![],
            Err(ResourceSetError::Validate { violations }) => violations
                .into_iter()
                .map(|v| (v.fields, v.message))
                .collect(),
            Err(other) => panic!("unexpected {other}"),
        }
    }

    fn fields(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    /// The Flux Operator's own rules (`internal/controller/resourceset_controller.go`
    /// `checkDependencies`, `api/v1/resourceset_types.go` `GetInputs`).
    #[test]
    fn operator_rules_are_enforced_with_field_names() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "<< inputs.name >>-<< inputs.id | quote >>"}});
        let got = violations(json!({
            "inputs": [{"name": "a"}],
            "resources": [cm],
            "resourcesTemplate": "kind: A\nname: << inputs.identity >>",
            "dependsOn": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "gate", "ready": true},
                {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "name": "x", "ready": true},
                {"apiVersion": "fluxcd.controlplane.io/v1", "kind": "ResourceSet", "name": "rs", "namespace": "apps",
                 "readyExpr": "true"},
                {"apiVersion": "fluxcd.controlplane.io/v1", "kind": "ResourceSet", "name": "rs", "namespace": "apps",
                 "ready": true, "readyExpr": "true"},
            ],
        }));
        assert_eq!(
            got,
            vec![
                (
                    fields(&["dependsOn[0].namespace"]),
                    "a namespaced dependency needs its namespace: the Flux Operator looks it up in the namespace given, not the ResourceSet's, so without one it is never found".to_owned()
                ),
                (
                    fields(&["dependsOn[2].readyExpr", "dependsOn[2].ready"]),
                    "readyExpr is only evaluated when ready is true; set ready = true or remove readyExpr".to_owned()
                ),
                (
                    fields(&["inputs", "resources"]),
                    "inline inputs have no id (only inputs exported by a ResourceSetInputProvider do): the Flux Operator fails to render << inputs.id >> and stalls; use one of the input's own fields instead".to_owned()
                ),
            ]
        );
        // Providers' inputs carry an id: no finding without inline inputs.
        assert_eq!(
            violations(
                json!({"inputsFrom": [{"apiVersion": "fluxcd.controlplane.io/v1",
                "kind": "ResourceSetInputProvider", "name": "p"}],
                "resourcesTemplate": "name: << inputs.id >>"})
            ),
            vec![]
        );
        assert!(mentions_inputs_id("a: <<- inputs.id ->>"));
        assert!(!mentions_inputs_id(
            "a: inputs.id << inputs.ids >> << x.inputs.id >>"
        ));
    }

    #[test]
    fn api_rules_are_enforced_with_field_names() {
        let resource = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}});
        type Violations = Vec<(Vec<String>, String)>;
        let cases: Vec<(&str, Value, Violations)> = vec![
            ("resources-only", json!({"resources": [resource]}), vec![]),
            ("template-only", json!({"resourcesTemplate": "kind: A"}), vec![]),
            (
                "steps-with-resources",
                json!({"steps": [{"name": "crds", "resources": [resource]}], "resources": [resource]}),
                vec![(
                    fields(&["steps", "resources"]),
                    "steps is mutually exclusive with resources and resourcesTemplate".into(),
                )],
            ),
            (
                "steps-with-both",
                json!({"steps": [{"name": "a", "resourcesTemplate": "x: 1"}], "resources": [], "resourcesTemplate": "y: 1"}),
                vec![(
                    fields(&["steps", "resources", "resourcesTemplate"]),
                    "steps is mutually exclusive with resources and resourcesTemplate".into(),
                )],
            ),
            (
                "nothing-to-apply",
                json!({"inputs": [{"a": 1}]}),
                vec![(
                    fields(&["steps", "resources", "resourcesTemplate"]),
                    "at least one of steps, resources or resourcesTemplate must be set".into(),
                )],
            ),
            (
                "inputs-from-neither-and-both",
                json!({"resourcesTemplate": "x: 1", "inputsFrom": [
                    {"apiVersion": "fluxcd.controlplane.io/v1", "kind": "ResourceSetInputProvider", "name": "ok"},
                    {"apiVersion": "fluxcd.controlplane.io/v1", "kind": "ResourceSetInputProvider"},
                    {"apiVersion": "fluxcd.controlplane.io/v1", "kind": "ResourceSetInputProvider", "name": "x", "selector": {"matchLabels": {"a": "b"}}},
                    {"apiVersion": "v1", "kind": "ConfigMap", "name": "x"},
                ]}),
                vec![
                    (
                        fields(&["inputsFrom[1].name", "inputsFrom[1].selector"]),
                        "at least one of name or selector must be set for input provider references".into(),
                    ),
                    (
                        fields(&["inputsFrom[2].name", "inputsFrom[2].selector"]),
                        "cannot set both name and selector for input provider references".into(),
                    ),
                    (fields(&["inputsFrom[3].apiVersion"]), "apiVersion must be fluxcd.controlplane.io/v1".into()),
                    (fields(&["inputsFrom[3].kind"]), "kind must be ResourceSetInputProvider".into()),
                ],
            ),
            (
                "include-empty-providers-needs-permute",
                json!({"resourcesTemplate": "x: 1", "inputStrategy": {"name": "Flatten", "includeEmptyProviders": false}}),
                vec![(
                    fields(&["inputStrategy.includeEmptyProviders"]),
                    "includeEmptyProviders only applies when name is Permute".into(),
                )],
            ),
            (
                "bad-steps",
                json!({"steps": [
                    {"name": "Crds", "resourcesTemplate": "x: 1"},
                    {"name": "apps"},
                    {"name": "apps", "resources": [], "timeout": "5 minutes"},
                ]}),
                vec![
                    (
                        fields(&["steps[0].name"]),
                        "step name must be a DNS label (lowercase letters, digits and '-', at most 63 characters)".into(),
                    ),
                    (
                        fields(&["steps[1].resources", "steps[1].resourcesTemplate"]),
                        "at least one of resources or resourcesTemplate must be set".into(),
                    ),
                    (
                        fields(&["steps[2].timeout"]),
                        "timeout must match ^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$".into(),
                    ),
                    (fields(&["steps"]), "step names must be unique".into()),
                ],
            ),
            (
                "empty-steps",
                json!({"steps": []}),
                vec![(fields(&["steps"]), "steps must have between 1 and 20 items".into())],
            ),
            (
                "dependency-without-name",
                json!({"resourcesTemplate": "x: 1", "dependsOn": [{"apiVersion": "v1", "kind": "Secret", "name": "", "namespace": "x"}]}),
                vec![(fields(&["dependsOn[0].name"]), "must not be empty".into())],
            ),
        ];
        for (name, input, want) in cases {
            assert_eq!(violations(input), want, "case {name}");
        }
    }

    #[test]
    fn validation_error_message_names_the_fields() {
        let err = validate(&spec(
            json!({"steps": [{"name": "a", "resourcesTemplate": "x"}], "resources": []}),
        ))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid ResourceSet: steps is mutually exclusive with resources and resourcesTemplate (steps, resources)"
        );
    }

    #[test]
    fn spec_diffs_are_semantic_and_field_level() {
        let desired = spec(json!({
            "inputs": [{"tenant": "team-a", "replicas": 2}, {"tenant": "team-b", "replicas": 3}],
            "resourcesTemplate": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: << inputs.tenant >>\n",
            "resources": [{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "flux", "namespace": "<< inputs.tenant >>"}}],
        }));
        let reformatted = spec(json!({
            "inputs": [{"replicas": 2.0, "tenant": "team-a"}, {"replicas": 3, "tenant": "team-b"}],
            "resourcesTemplate": "---\nkind: Namespace\napiVersion: v1\nmetadata: {name: << inputs.tenant >>}\n",
            "resources": [{"kind": "ServiceAccount", "apiVersion": "v1", "metadata": {"namespace": "<< inputs.tenant >>", "name": "flux"}}],
            "wait": false,
        }));
        assert_eq!(diff_specs(&desired, &reformatted), vec![]);

        let mut changed = reformatted.clone();
        if let Some(inputs) = changed.inputs.as_mut() {
            inputs[1].insert("replicas".into(), json!(5));
        }
        let got: Vec<String> = diff_specs(&desired, &changed)
            .iter()
            .map(|c| format!("{}: {:?} -> {:?}", c.path, c.live, c.desired))
            .collect();
        assert_eq!(
            got,
            ["inputs[1].replicas: Some(Number(5)) -> Some(Number(3))"]
        );
    }

    #[test]
    fn inventory_references_for_state() {
        let inventory = Inventory {
            entries: vec![InventoryEntry {
                id: "team-a_flux__ServiceAccount".into(),
                v: "v1".into(),
            }],
        };
        assert_eq!(
            inventory.object_refs().unwrap(),
            vec![ObjectRef {
                api_version: "v1".into(),
                kind: "ServiceAccount".into(),
                namespace: Some("team-a".into()),
                name: "flux".into(),
            }]
        );
    }
}
