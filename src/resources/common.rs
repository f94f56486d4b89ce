//! What every cluster-backed resource shares: the [`ClusterAccess`] seam to the provider data
//! (known/unknown connection settings, the lazily built [`Cluster`]), the `timeouts` block,
//! diagnostics for cluster and Flux errors (naming the attribute when the API server's Status
//! cause has a field), and the apply → wait → delete machinery for objects the Flux Operator
//! reconciles (FluxInstance here, ResourceSet later): readiness waits by watch, reconcile
//! requests, and deletion with an `uninstall`/`orphan` policy that also works when the operator
//! is gone.
//!
//! Lives in `resources/`: may use `framework`, `flux` and `cluster`, never `provider` or
//! `protocol`.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{DynamicObject, PropagationPolicy};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::cluster::apply::{ApplyError, Deletion};
use crate::cluster::objects::{Cluster, ObjectRef};
use crate::cluster::wait::{self, WaitError, WaitOutcome};
use crate::flux::duration::parse_duration;
use crate::flux::instance::{ANNOTATION_RECONCILE, ANNOTATION_REQUESTED_AT, FINALIZER};
use crate::flux::object::ObjectRef as FluxRef;
use crate::flux::status::{self, Readiness};
use crate::framework::diagnostics::Diagnostics;
use crate::framework::model::Value;
use crate::framework::path::AttrPath;
use crate::framework::schema::{Attribute, Block, NestedBlock, Nesting};
use crate::framework::value::{RawValue, Type};

/// What resources need from the provider data: whether the connection settings are known, and
/// the cluster. The provider's data type implements this; resources are generic over it.
#[async_trait]
pub trait ClusterAccess: Send + Sync + 'static {
    /// False while the `kubernetes` provider settings contain values unknown until apply (the
    /// cluster is created in the same apply): plans then make no request at all.
    fn cluster_known(&self) -> bool;

    /// The cluster handle, with its client built on first use.
    ///
    /// # Errors
    ///
    /// A diagnostic naming the provider setting to fix when the client cannot be built.
    async fn cluster(&self) -> Result<Cluster, Diagnostics>;
}

/// The cluster for a plan or read: `None` when the provider settings are not known yet.
///
/// # Errors
///
/// See [`ClusterAccess::cluster`].
pub async fn cluster_if_known<D: ClusterAccess>(data: &D) -> Result<Option<Cluster>, Diagnostics> {
    if !data.cluster_known() {
        return Ok(None);
    }
    data.cluster().await.map(Some)
}

/// The cluster for apply, which requires known settings.
///
/// # Errors
///
/// A diagnostic when the settings are still unknown, or see [`ClusterAccess::cluster`].
pub async fn cluster_for_apply<D: ClusterAccess>(data: &D) -> Result<Cluster, Diagnostics> {
    if !data.cluster_known() {
        return Err(Diagnostics::from_error(
            "Kubernetes Connection Unknown",
            "The provider's kubernetes settings are still unknown during apply. Make sure the \
             values they depend on are created earlier in the same apply.",
        ));
    }
    data.cluster().await
}

/// `common_metadata` of a FluxInstance or ResourceSet: labels and annotations the operator sets
/// on every object it generates.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
pub struct CommonMetadataModel {
    /// Labels set on every generated object.
    pub labels: Value<BTreeMap<String, String>>,
    /// Annotations set on every generated object.
    pub annotations: Value<BTreeMap<String, String>>,
}

/// The optional `common_metadata` nested attribute (see [`CommonMetadataModel`]).
pub fn common_metadata_attribute(description: &str, annotations_description: &str) -> Attribute {
    Attribute::nested(
        "common_metadata",
        Nesting::Single,
        vec![
            Attribute::string_map("labels")
                .optional()
                .description("Labels set on every generated object."),
            Attribute::string_map("annotations")
                .optional()
                .description(annotations_description),
        ],
    )
    .optional()
    .description(description)
}

/// The `timeouts` block: how long create, update and delete wait.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
pub struct Timeouts {
    /// Create timeout, a Go duration.
    pub create: Value<String>,
    /// Update timeout, a Go duration.
    pub update: Value<String>,
    /// Delete timeout, a Go duration.
    pub delete: Value<String>,
}

/// The operation a timeout is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// Create.
    Create,
    /// Update.
    Update,
    /// Delete.
    Delete,
}

impl Operation {
    fn name(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
        }
    }
}

/// The `timeouts` nested block, documented with its default.
pub fn timeouts_block(default: &str) -> NestedBlock {
    let attr = |name: &str, what: &str| {
        Attribute::string(name).optional().description(format!(
            "How long {what} may wait for the cluster, as a Go duration (`10m`, `1h`). \
             Default `{default}`."
        ))
    };
    NestedBlock::new(
        "timeouts",
        Nesting::Single,
        Block::new(
            "How long each operation may wait before it fails.",
            vec![
                attr("create", "create"),
                attr("update", "update"),
                attr("delete", "destroy"),
            ],
        ),
    )
}

/// The timeout configured for `operation`, or `default`.
///
/// # Errors
///
/// A diagnostic at `timeouts.<operation>` when the duration does not parse.
pub fn timeout(
    timeouts: &Value<Timeouts>,
    operation: Operation,
    default: Duration,
) -> Result<Duration, Diagnostics> {
    let Some(t) = timeouts.as_known() else {
        return Ok(default);
    };
    let value = match operation {
        Operation::Create => &t.create,
        Operation::Update => &t.update,
        Operation::Delete => &t.delete,
    };
    match value.as_known() {
        None => Ok(default),
        Some(text) => parse_duration(text).map_err(|e| {
            Diagnostics::from_error_at(
                AttrPath::attr("timeouts").then_attr(operation.name()),
                "Invalid Timeout",
                format!("{e}. Use a Go duration such as \"10m\" or \"1h30m\"."),
            )
        }),
    }
}

/// Converts an API field path (`spec.sync.interval`, `spec.kustomize.patches[0].patch`,
/// `metadata.name`) into the attribute path of a resource whose attributes are the snake_case
/// forms of the spec's fields, with `metadata.name`/`metadata.namespace` as `name`/`namespace`.
pub fn api_field_to_path(field: &str) -> Option<AttrPath> {
    let rest = if let Some(rest) = field.strip_prefix("spec.") {
        rest
    } else if let Some(rest) = field.strip_prefix("metadata.") {
        return matches!(rest, "name" | "namespace").then(|| AttrPath::attr(rest));
    } else if field == "spec" || field.is_empty() {
        return None;
    } else {
        field
    };
    let mut path = AttrPath::root();
    for segment in rest.split('.') {
        let (name, indexes) = segment.split_once('[').unwrap_or((segment, ""));
        if name.is_empty() {
            return None;
        }
        path = path.then_attr(snake_case(name));
        for index in indexes.split('[') {
            let index = index.trim_end_matches(']');
            if index.is_empty() {
                continue;
            }
            path = path.then_index(index.parse().ok()?);
        }
    }
    Some(path)
}

/// `pullSecret` → `pull_secret`.
pub fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            if !out.is_empty() {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `pull_secret` → `pullSecret`.
pub fn camel_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// An API object's JSON (camelCase field names) as a Terraform value of type `ty`, whose object
/// attributes are the snake_case forms of the API names; map keys are kept as they are. Fields
/// the type does not have are dropped, missing ones are null.
pub fn api_json_to_value(json: &serde_json::Value, ty: &Type) -> RawValue {
    use serde_json::Value as J;
    match (json, ty) {
        (J::Null, _) => RawValue::Null,
        (J::Object(fields), Type::Object(attributes)) => RawValue::Object(
            attributes
                .iter()
                .map(|(name, attr_ty)| {
                    let value = fields
                        .get(&camel_case(name))
                        .map_or(RawValue::Null, |v| api_json_to_value(v, attr_ty));
                    (name.clone(), value)
                })
                .collect(),
        ),
        (J::Object(fields), Type::Map(element)) => RawValue::Map(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), api_json_to_value(v, element)))
                .collect(),
        ),
        (J::Array(items), Type::List(element)) => RawValue::List(
            items
                .iter()
                .map(|v| api_json_to_value(v, element))
                .collect(),
        ),
        (J::Array(items), Type::Set(element)) => RawValue::Set(
            items
                .iter()
                .map(|v| api_json_to_value(v, element))
                .collect(),
        ),
        (other, ty) => RawValue::from_json(other, ty).unwrap_or(RawValue::Null),
    }
}

/// A wholly known Terraform value (snake_case object attributes) as API JSON: object attributes
/// in camelCase, null attributes omitted, map keys kept.
pub fn value_to_api_json(value: &RawValue) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        RawValue::Object(fields) => J::Object(
            fields
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (camel_case(k), value_to_api_json(v)))
                .collect(),
        ),
        RawValue::Map(entries) => J::Object(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), value_to_api_json(v)))
                .collect(),
        ),
        RawValue::List(items) | RawValue::Set(items) | RawValue::Tuple(items) => {
            J::Array(items.iter().map(value_to_api_json).collect())
        }
        RawValue::Bool(b) => J::Bool(*b),
        RawValue::String(text) => J::String(text.clone()),
        RawValue::Number(n) => n
            .as_i64()
            .map(J::from)
            .or_else(|| {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map(J::Number)
            })
            .unwrap_or(J::Null),
        RawValue::Null | RawValue::Unknown(_) => J::Null,
    }
}

/// Whether every field of `desired` (an object as we apply it) has the same value in `live`
/// (the object as stored, which also carries server defaults and other managers' fields). Lists
/// must have the same length; elements compare in order, except in lists of objects (ports,
/// containers, env, tolerations: lists the API server merges by key, whose order a server-side
/// apply may change when items come back), where each wanted element must match a distinct live
/// one in any order; numbers compare by value; two strings
/// that are the same resource quantity are equal (the API server stores quantities in canonical
/// form: `cpu: 2000m` reads back as `"2"`, `memory: 1024Mi` as `"1Gi"`).
pub fn is_subset(desired: &serde_json::Value, live: &serde_json::Value) -> bool {
    use serde_json::Value as J;
    match (desired, live) {
        (J::Object(want), J::Object(have)) => want
            .iter()
            .all(|(k, v)| v.is_null() || have.get(k).is_some_and(|h| is_subset(v, h))),
        (J::Array(want), J::Array(have)) if want.len() != have.len() => false,
        (J::Array(want), J::Array(have)) if want.iter().all(J::is_object) => {
            let mut used = vec![false; have.len()];
            want.iter().all(|w| {
                let found = have
                    .iter()
                    .enumerate()
                    .find(|(i, h)| !used[*i] && is_subset(w, h))
                    .map(|(i, _)| i);
                found.map(|i| used[i] = true).is_some()
            })
        }
        (J::Array(want), J::Array(have)) => want.iter().zip(have).all(|(w, h)| is_subset(w, h)),
        (J::Number(a), J::Number(b)) => a.as_f64() == b.as_f64(),
        (J::String(a), J::String(b)) if a != b => {
            quantity_nanos(a).is_some_and(|x| Some(x) == quantity_nanos(b))
        }
        (a, b) => a == b,
    }
}

/// The title and advice for a failure that is not about the request's content: the API server
/// failed, was unavailable, refused the credentials, or could not be reached (transient ones
/// were already retried by the cluster layer). `None` for a refusal of the request itself
/// (validation, not found), which the caller's summary describes.
fn failure_kind(error: &ApplyError) -> Option<(&'static str, &'static str)> {
    match error.status() {
        Some(status) => Some(match status.code {
            500 => (
                "Kubernetes API Server Error",
                "The API server failed while handling the request (an internal error, or an \
                 admission webhook failing). The provider retried it with back-off before \
                 giving up; check the API server's health and apply again.",
            ),
            502..=504 => (
                "Kubernetes API Server Unavailable",
                "The API server (or a proxy in front of it) is unavailable or restarting. The \
                 provider retried the request with back-off before giving up; apply again once \
                 it is back.",
            ),
            429 => (
                "Kubernetes API Server Overloaded",
                "The API server throttled the request (429). The provider honoured its \
                 Retry-After before giving up; apply again later.",
            ),
            409 if status.reason != "AlreadyExists" => (
                "Conflicting Change In The Cluster",
                "Another client changed the object at the same time. The provider retried the \
                 request before giving up; apply again.",
            ),
            401 => (
                "Not Authenticated To The Kubernetes API Server",
                "The API server did not accept the credentials; check the provider's kubernetes \
                 settings (token, client certificate, exec plugin or kubeconfig user).",
            ),
            403 => (
                "Forbidden By The Kubernetes API Server",
                "The credentials lack the permission for this request; grant it (RBAC) or use \
                 other credentials.",
            ),
            _ => return None,
        }),
        None => match error {
            ApplyError::Manifest { .. } | ApplyError::NotServed { .. } => None,
            _ => Some((
                "Kubernetes API Server Unreachable",
                "The connection to the API server failed (refused, reset or timed out). The \
                 provider retried the request with back-off before giving up; check that the \
                 cluster is reachable from where Terraform runs (the provider's kubernetes \
                 settings), then apply again.",
            )),
        },
    }
}

/// A Kubernetes resource quantity (`1.5`, `2000m`, `64Mi`, `1e3`, `2k`) in billionths, exactly;
/// `None` for anything else (or out of range).
fn quantity_nanos(text: &str) -> Option<i128> {
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let end = body
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(body.len());
    let (number, suffix) = body.split_at(end);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
        return None;
    }
    let digits: i128 = format!("{whole}{fraction}").parse().ok()?;
    let scale = i32::try_from(fraction.len()).ok()?;
    let (exp10, binary): (i32, u32) = match suffix {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        other => {
            let e = other.strip_prefix(['e', 'E'])?;
            (e.parse().ok()?, 0)
        }
    };
    let power = 9 + exp10 - scale;
    let mut value = digits.checked_mul(1_i128.checked_shl(binary)?)?;
    if power >= 0 {
        value = value.checked_mul(10_i128.checked_pow(u32::try_from(power).ok()?)?)?;
    } else {
        let divisor = 10_i128.checked_pow(u32::try_from(-power).ok()?)?;
        if value % divisor != 0 {
            return None; // finer than a nano: not something the server rewrites
        }
        value /= divisor;
    }
    Some(if negative { -value } else { value })
}

/// A diagnostic for a failed request: the server's message quoted, attached to the attribute the
/// Status causes name (one diagnostic per cause with a field), else to no attribute. A failure
/// of the server or the connection rather than of the request is titled by what happened
/// (`Kubernetes API Server Error`, `... Unreachable`), with `summary` as context.
pub fn apply_error(summary: &str, error: &ApplyError) -> Diagnostics {
    if let Some((title, advice)) = failure_kind(error) {
        return Diagnostics::from_error(title, format!("{summary}: {error}. {advice}"));
    }
    let mut out = Diagnostics::new();
    if let Some(status) = error.status()
        && let Some(details) = &status.details
    {
        for cause in &details.causes {
            if let Some(path) = api_field_to_path(&cause.field) {
                out.error_at(
                    path,
                    summary,
                    format!(
                        "The Kubernetes API server rejected {}: {}",
                        cause.field, cause.message
                    ),
                );
            }
        }
    }
    if out.is_empty() {
        out.error(summary, format!("{error}."));
    }
    out
}

/// What a server-side dry-run at plan found, once the answers that only say that something the
/// same apply may create does not exist yet are told apart from real refusals.
#[derive(Debug)]
pub enum PlanDryRun {
    /// The API server accepted the object.
    Accepted,
    /// The API server does not serve the kind (its CRD is installed by the same apply, e.g. by
    /// `flux_operator`): nothing was validated by the server.
    NotServed,
    /// The object's namespace does not exist (yet): the server could not validate the object.
    /// [`PlanDryRun::warning`] says so.
    NamespaceMissing {
        /// The missing namespace.
        namespace: String,
    },
}

impl PlanDryRun {
    /// For [`PlanDryRun::NamespaceMissing`]: the warning's summary and detail, naming the
    /// namespace, the object (`kind` `namespace/name`) and what apply will do; `also` is appended
    /// (what was checked instead). `None` otherwise.
    pub fn warning(&self, kind: &str, name: &str, also: &str) -> Option<(String, String)> {
        let PlanDryRun::NamespaceMissing { namespace } = self else {
            return None;
        };
        Some((
            format!("{kind} Not Validated By The API Server"),
            format!(
                "The namespace {namespace:?} does not exist yet, so the API server cannot dry-run \
                 the {kind} {namespace}/{name} at plan{also}. If a resource of this \
                 configuration creates the namespace (flux_operator does), apply creates it \
                 first and the API server validates the {kind} when it is applied; otherwise \
                 the apply fails with `namespaces \"{namespace}\" not found`."
            ),
        ))
    }
}

/// Server-side dry-runs `object` at plan. A kind that is not served and a namespace that does
/// not exist are no errors (see [`PlanDryRun`]): the API server names the missing namespace in
/// its `NotFound` Status (`details.kind = "namespaces"`).
///
/// # Errors
///
/// Every other failure of the dry-run, as the cluster layer reports it.
pub async fn dry_run_at_plan(
    cluster: &Cluster,
    object: &DynamicObject,
) -> Result<PlanDryRun, ApplyError> {
    match cluster.dry_run_apply(object).await {
        Ok(_) => Ok(PlanDryRun::Accepted),
        Err(ApplyError::NotServed { .. }) => Ok(PlanDryRun::NotServed),
        // The plain-text 404 of a kind that stopped being served since discovery.
        Err(e)
            if e.status()
                .is_some_and(|s| s.code == 404 && s.reason != "NotFound") =>
        {
            Ok(PlanDryRun::NotServed)
        }
        Err(e) => {
            let namespace = object.metadata.namespace.as_deref().unwrap_or_default();
            let missing = e.status().is_some_and(|s| {
                s.code == 404
                    && s.details
                        .as_ref()
                        .is_some_and(|d| d.kind == "namespaces" && d.name == namespace)
            });
            if missing && !namespace.is_empty() {
                Ok(PlanDryRun::NamespaceMissing {
                    namespace: namespace.to_owned(),
                })
            } else {
                Err(e)
            }
        }
    }
}

/// Converts a Flux object reference into the cluster layer's.
pub fn cluster_ref(object: &FluxRef) -> ObjectRef {
    ObjectRef::new(
        &object.api_version,
        &object.kind,
        object.namespace.as_deref(),
        &object.name,
    )
}

/// The conditions of an object (`status.conditions`) in API form; entries that do not decode are
/// skipped.
pub fn object_conditions(object: &DynamicObject) -> Vec<Condition> {
    object.data["status"]["conditions"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|c| serde_json::from_value(c.clone()).ok())
                .collect()
        })
        .unwrap_or_default()
}

fn reconcile_disabled(object: &DynamicObject) -> bool {
    object
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_RECONCILE))
        .is_some_and(|v| v == "disabled")
}

/// The readiness of an object the operator reconciles, for its current generation.
pub fn object_readiness(object: &DynamicObject) -> Readiness {
    status::readiness(
        object.metadata.generation,
        &object_conditions(object),
        reconcile_disabled(object),
    )
}

/// What a reconcile wait is waiting for.
#[derive(Clone, Debug)]
pub struct ReconcileWait<'a> {
    /// The object (`FluxInstance flux-system/flux`).
    pub object: &'a ObjectRef,
    /// The generation written by our apply: older generations are not judged.
    pub min_generation: i64,
    /// The `reconcile.fluxcd.io/requestedAt` value the operator must echo first, if a reconcile
    /// was requested.
    pub requested_at: Option<&'a str>,
    /// How long to wait.
    pub timeout: Duration,
}

/// The outcome of a reconcile wait: the object as last seen, or why it failed.
#[derive(Debug)]
pub enum WaitFailure {
    /// The operator reported a failure for the current generation (Stalled or Ready=False with a
    /// failure reason), quoted in the message.
    Failed(String),
    /// The wait timed out, or the watch failed.
    Wait(WaitError),
    /// Ctrl-C.
    Cancelled,
}

/// Waits, by watching, until the operator reports the object Ready for (at least)
/// `min_generation` — and has handled `requested_at`, if set. Stalled and Ready=False failures
/// for the current generation fail at once with the operator's reason and message and the
/// unhealthy components. A suspended object (reconcile disabled) is done at once.
///
/// # Errors
///
/// [`WaitFailure`].
pub async fn wait_reconciled(
    cluster: &Cluster,
    wait: &ReconcileWait<'_>,
    cancel: &CancellationToken,
) -> Result<DynamicObject, WaitFailure> {
    wait_reconciled_through(cluster, wait, &[], cancel).await
}

/// [`wait_reconciled`], except that `Ready=False` with one of `keep_waiting` as its reason (a
/// ResourceSet's `DependencyNotReady`, which the operator re-checks on its own) is not a failure:
/// the wait goes on, and a timeout quotes the last reason and message.
///
/// # Errors
///
/// [`WaitFailure`].
pub async fn wait_reconciled_through(
    cluster: &Cluster,
    wait: &ReconcileWait<'_>,
    keep_waiting: &[&str],
    cancel: &CancellationToken,
) -> Result<DynamicObject, WaitFailure> {
    let kind = wait.object.kind.clone();
    let namespace = wait.object.namespace.clone().unwrap_or_default();
    let name = wait.object.name.clone();
    let condition = |object: Option<&DynamicObject>| {
        let Some(object) = object else {
            return WaitOutcome::Pending;
        };
        if object.metadata.generation.unwrap_or(0) < wait.min_generation {
            return WaitOutcome::Pending;
        }
        if let Some(requested) = wait.requested_at {
            let handled = object.data["status"]["lastHandledReconcileAt"].as_str();
            if !status::request_handled(handled, requested) && !reconcile_disabled(object) {
                return WaitOutcome::Pending;
            }
        }
        let readiness = object_readiness(object);
        match &readiness {
            Readiness::Ready | Readiness::Disabled => WaitOutcome::Done,
            Readiness::Progressing { .. } => WaitOutcome::Pending,
            Readiness::Failed { reason, .. } if keep_waiting.contains(&reason.as_str()) => {
                WaitOutcome::Pending
            }
            Readiness::Stalled { message, .. } | Readiness::Failed { message, .. } => {
                let unhealthy = status::unhealthy_components(message);
                WaitOutcome::Failed(status::summary(
                    &kind, &namespace, &name, &readiness, &unhealthy,
                ))
            }
        }
    };
    match cluster
        .wait_for(wait.object, wait.timeout, cancel, condition)
        .await
    {
        Ok(Some(object)) => Ok(object),
        Ok(None) => Err(WaitFailure::Failed(format!(
            "{} was deleted while waiting for it",
            wait.object
        ))),
        Err(WaitError::Failed { message, .. }) => Err(WaitFailure::Failed(message)),
        Err(WaitError::Cancelled { .. }) => Err(WaitFailure::Cancelled),
        Err(other) => Err(WaitFailure::Wait(other)),
    }
}

/// The diagnostic for a failed reconcile wait during `operation` (`create`, `update`).
pub fn wait_failure_diagnostics(failure: &WaitFailure, what: &str) -> Diagnostics {
    match failure {
        WaitFailure::Failed(message) => Diagnostics::from_error(
            format!("{what} Failed"),
            format!(
                "{message}. The object was applied and is kept in state; fix the configuration \
                 (or the cause the operator reports) and apply again."
            ),
        ),
        WaitFailure::Wait(error) => Diagnostics::from_error(
            format!("{what} Not Ready"),
            format!(
                "{error}. The object was applied and is kept in state; raise the timeouts \
                 block's value or check the operator's logs, then apply again."
            ),
        ),
        WaitFailure::Cancelled => Diagnostics::from_error(
            "Interrupted",
            format!(
                "{what} was interrupted while waiting for readiness; the object was applied and \
                 is kept in state. Apply again to finish waiting."
            ),
        ),
    }
}

/// The documentation paragraph "When a wait fails" of a resource page: `what` is the object
/// waited for, `readiness` the condition in the state that says it is finished (e.g.
/// `ready = true`), `consequence` what a replacement would do.
pub fn failed_wait_doc(what: &str, readiness: &str, consequence: &str) -> String {
    format!(
        "\n\n**When a wait fails.** If the wait for {what} times out, is interrupted (Ctrl-C) or \
         ends in a failure the operator reports after something was written, nothing is ever \
         destroyed because of it. Terraform marks every create that ends in an error as \
         *tainted*, whatever the provider returns, and the next apply would replace it, which \
         {consequence}. So a create that wrote something keeps it in state untainted, reports \
         the failure as a warning whose summary starts with `Create Incomplete:` (the only way \
         to avoid the taint), and records that it is not finished (`{readiness}` does not \
         hold). The next plan shows that as an in-place update back to `{readiness}`, and the \
         next apply applies again and waits again. A failed update \
         is an error (Terraform does not taint on update) with the same state. To make a run \
         fail when a create is incomplete, add `lifecycle {{ postcondition {{ condition = \
         self.{readiness} }} }}`: the run then exits non-zero and the object stays untainted."
    )
}

/// The documentation paragraph "An existing object" of a resource that refuses to create over
/// an object it did not create (see `resources::ownership`): `kind` is the API kind, `id` the
/// import id format.
pub fn existing_object_doc(kind: &str, id: &str) -> String {
    format!(
        "\n\n**An existing object.** Creating this resource when its {kind} already exists in \
         the cluster but is not in this resource's state (made with `kubectl`, Helm, the Flux \
         CLI or another Terraform configuration) is refused, at plan when the cluster can be \
         asked and again at create before any write, with an error naming the object and the \
         command that adopts it instead: `terraform import <address> {id}` (or an `import` \
         block). When the object was written by this provider (a second configuration, or the \
         replacement of a tainted instance), the plan only warns and create refuses if it is \
         still there. `terraform apply -replace=<address>` of this resource's own object is no \
         takeover and works."
    )
}

/// The documentation paragraph "Drift made by other tools" of a resource whose object the
/// operator reconciles (`kind`): what the plan shows and how one apply heals it.
pub fn reconciled_drift_doc(kind: &str) -> String {
    format!(
        "\n\n**Drift made by other tools.** Plans compare the configuration with the live \
         {kind}: a field changed with `kubectl` (or another tool) shows as a change back to the \
         configured value, and a field the configuration leaves unset shows as its removal. \
         Server-side apply alone would keep fields owned by another field manager, so apply \
         first takes over what this resource writes (the whole `spec` and the \
         `fluxcd.controlplane.io/reconcile*` annotations it models) from every other manager, \
         then applies: one apply makes the object what the plan showed, and the next plan is \
         empty. Other labels and annotations, and the operator's finalizer, are left alone."
    )
}

/// Requests a reconcile by setting `reconcile.fluxcd.io/requestedAt` to the current time (a
/// merge patch: the operator and our server-side apply keep their own fields). Returns the
/// token to wait for.
///
/// # Errors
///
/// A diagnostic quoting the API server.
pub async fn request_reconcile(
    cluster: &Cluster,
    object: &ObjectRef,
) -> Result<String, Diagnostics> {
    let token = k8s_openapi::jiff::Timestamp::now().to_string();
    let annotations = BTreeMap::from([(ANNOTATION_REQUESTED_AT.to_owned(), Some(token.clone()))]);
    cluster
        .annotate(object, &annotations)
        .await
        .map_err(|e| apply_error("Reconcile Request Failed", &e))?;
    Ok(token)
}

/// How a Flux Operator object is deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeletionPolicy {
    /// The operator deletes what the object applied.
    Uninstall,
    /// `fluxcd.controlplane.io/reconcile: disabled` first: the operator releases the object and
    /// deletes nothing.
    Orphan,
}

impl DeletionPolicy {
    /// Parses `uninstall`/`orphan`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "uninstall" => Some(Self::Uninstall),
            "orphan" => Some(Self::Orphan),
            _ => None,
        }
    }
}

/// The `deletion_policy` attribute.
pub fn deletion_policy_attribute(uninstall_effect: &str) -> Attribute {
    Attribute::string("deletion_policy")
        .default_value("uninstall")
        .description(format!(
            "What destroying this resource does. `uninstall` (default): {uninstall_effect} \
             `orphan`: sets `fluxcd.controlplane.io/reconcile: disabled` first, so the operator \
             releases the object without deleting anything and everything keeps running."
        ))
}

/// Whether the Flux Operator is running in `namespace` (its Deployment exists, is not being
/// deleted and is Available).
///
/// # Errors
///
/// A diagnostic quoting the API server.
pub async fn operator_running(cluster: &Cluster, namespace: &str) -> Result<bool, Diagnostics> {
    let deployment = cluster_ref(&crate::flux::operator::deployment_ref(namespace));
    let found = cluster
        .get(&deployment)
        .await
        .map_err(|e| apply_error("Cannot Read The Flux Operator", &e))?;
    Ok(found.is_some_and(|d| {
        d.metadata.deletion_timestamp.is_none()
            && wait::deployment_available(Some(&d)) == WaitOutcome::Done
    }))
}

/// Deletes an object the operator reconciles and waits until it is gone. `Orphan` first disables
/// reconciliation. Idempotent: a missing object, namespace or CRD is success. When the object
/// stays behind the operator's finalizer and the operator is not running, the finalizer is
/// removed, with a warning in `warnings`.
///
/// # Errors
///
/// Diagnostics quoting the API server or the wait.
pub async fn delete_reconciled(
    cluster: &Cluster,
    object: &ObjectRef,
    policy: DeletionPolicy,
    timeout: Duration,
    cancel: &CancellationToken,
    warnings: &mut Diagnostics,
) -> Result<(), Diagnostics> {
    let namespace = object.namespace.clone();
    delete_reconciled_with_operator(
        cluster,
        object,
        namespace.as_deref(),
        policy,
        timeout,
        cancel,
        warnings,
    )
    .await
}

/// The namespace the Flux Operator's Deployment runs in, wherever that is (a ResourceSet may
/// live in any namespace); `None` when it is not installed.
///
/// # Errors
///
/// A diagnostic quoting the API server.
pub async fn find_operator_namespace(cluster: &Cluster) -> Result<Option<String>, Diagnostics> {
    let name = crate::flux::operator::DEPLOYMENT_NAME;
    let all = cluster
        .list(
            "apps/v1",
            "Deployment",
            None,
            &format!("app.kubernetes.io/name={name}"),
        )
        .await
        .map_err(|e| apply_error("Cannot Find The Flux Operator", &e))?;
    Ok(all
        .into_iter()
        .find(|d| d.metadata.name.as_deref() == Some(name))
        .and_then(|d| d.metadata.namespace))
}

/// [`delete_reconciled`] for an object outside the operator's namespace: whether the operator
/// still runs is checked in `operator_namespace` (`None`: not installed, so the finalizer is
/// released by the provider).
///
/// # Errors
///
/// Diagnostics quoting the API server or the wait.
pub async fn delete_reconciled_with_operator(
    cluster: &Cluster,
    object: &ObjectRef,
    operator_namespace: Option<&str>,
    policy: DeletionPolicy,
    timeout: Duration,
    cancel: &CancellationToken,
    warnings: &mut Diagnostics,
) -> Result<(), Diagnostics> {
    if policy == DeletionPolicy::Orphan {
        let annotations =
            BTreeMap::from([(ANNOTATION_RECONCILE.to_owned(), Some("disabled".to_owned()))]);
        let found = cluster
            .annotate(object, &annotations)
            .await
            .map_err(|e| apply_error("Cannot Orphan The Object", &e))?;
        if found.is_none() {
            return Ok(());
        }
    }
    let deletion = cluster
        .delete(object, PropagationPolicy::Background)
        .await
        .map_err(|e| apply_error("Delete Failed", &e))?;
    if deletion == Deletion::Gone {
        return Ok(());
    }
    if !operator_alive(cluster, operator_namespace).await? {
        release_finalizer(cluster, object, warnings).await?;
    }
    match cluster.wait_for(object, timeout, cancel, wait::gone).await {
        Ok(_) => Ok(()),
        Err(WaitError::Cancelled { .. }) => Err(Diagnostics::from_error(
            "Interrupted",
            format!("Destroy was interrupted while {object} was being deleted; run destroy again."),
        )),
        Err(error) => {
            // The operator may have gone away while we waited.
            if !operator_alive(cluster, operator_namespace).await? {
                release_finalizer(cluster, object, warnings).await?;
                return Ok(());
            }
            Err(Diagnostics::from_error(
                "Delete Not Finished",
                format!(
                    "{error}. The Flux Operator is still working on the deletion; check its \
                     logs, or raise timeouts.delete."
                ),
            ))
        }
    }
}

async fn operator_alive(
    cluster: &Cluster,
    operator_namespace: Option<&str>,
) -> Result<bool, Diagnostics> {
    match operator_namespace {
        Some(namespace) => operator_running(cluster, namespace).await,
        None => Ok(false),
    }
}

async fn release_finalizer(
    cluster: &Cluster,
    object: &ObjectRef,
    warnings: &mut Diagnostics,
) -> Result<(), Diagnostics> {
    let removed = cluster
        .remove_finalizer(object, FINALIZER)
        .await
        .map_err(|e| apply_error("Cannot Release The Finalizer", &e))?;
    if removed {
        warnings.warning(
            "Finalizer Removed Without The Flux Operator",
            format!(
                "The Flux Operator is not running in namespace {}, so nothing would ever remove \
                 its finalizer from {object}. The provider removed {FINALIZER} itself; objects \
                 the operator applied were not deleted.",
                object.namespace.as_deref().unwrap_or_default()
            ),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn quantities_compare_as_the_api_server_canonicalises_them() {
        use serde_json::json;
        // (as applied, as a real kube-apiserver stores it, equal?)
        let cases = [
            ("2000m", "2", true),
            ("1024Mi", "1Gi", true),
            ("0.5", "500m", true),
            ("1e3", "1k", true),
            ("64Mi", "64Mi", true),
            ("100m", "0.1", true),
            ("2000m", "3", false),
            ("1Gi", "1G", false),
            ("2000m", "2000", false),
            ("v2", "2", false),
            ("flux-system", "flux", false),
        ];
        for (applied, stored, equal) in cases {
            let desired = json!({"resources": {"limits": {"cpu": applied}}});
            let live = json!({"resources": {"limits": {"cpu": stored}}, "other": 1});
            assert_eq!(is_subset(&desired, &live), equal, "{applied} vs {stored}");
        }
    }

    #[test]
    fn api_fields_become_attribute_paths() {
        let cases = [
            (
                "spec.sync.interval",
                Some(AttrPath::attr("sync").then_attr("interval")),
            ),
            (
                "spec.distribution.imagePullSecret",
                Some(AttrPath::attr("distribution").then_attr("image_pull_secret")),
            ),
            (
                "spec.kustomize.patches[1].patch",
                Some(
                    AttrPath::attr("kustomize")
                        .then_attr("patches")
                        .then_index(1)
                        .then_attr("patch"),
                ),
            ),
            ("metadata.name", Some(AttrPath::attr("name"))),
            ("metadata.labels", None),
            ("spec", None),
            ("", None),
        ];
        for (field, expected) in cases {
            assert_eq!(api_field_to_path(field), expected, "{field}");
        }
    }

    #[test]
    fn api_json_round_trips_through_snake_case_values() {
        let ty = Type::object([
            ("pull_secret", Type::String),
            ("labels", Type::map(Type::String)),
            ("shards", Type::list(Type::String)),
            ("missing", Type::Bool),
        ]);
        let json = serde_json::json!({
            "pullSecret": "creds",
            "labels": {"app.kubernetes.io/part_of": "x"},
            "shards": ["a", "b"],
            "extra": 1
        });
        let value = api_json_to_value(&json, &ty);
        assert_eq!(
            value,
            RawValue::object([
                ("pull_secret", RawValue::string("creds")),
                (
                    "labels",
                    RawValue::Map(BTreeMap::from([(
                        "app.kubernetes.io/part_of".to_owned(),
                        RawValue::string("x")
                    )]))
                ),
                (
                    "shards",
                    RawValue::List(vec![RawValue::string("a"), RawValue::string("b")])
                ),
                ("missing", RawValue::Null),
            ])
        );
        let mut expected = json;
        if let Some(map) = expected.as_object_mut() {
            map.remove("extra");
        }
        assert_eq!(value_to_api_json(&value), expected);
    }

    #[test]
    fn subset_ignores_server_additions_but_not_changes() {
        let desired = serde_json::json!({"spec": {"replicas": 1, "containers": [{"name": "m", "env": [{"name": "A", "value": "1"}]}]}});
        let live = serde_json::json!({"spec": {"replicas": 1.0, "strategy": {}, "containers": [{"name": "m", "imagePullPolicy": "IfNotPresent", "env": [{"name": "A", "value": "1"}]}]}});
        assert!(is_subset(&desired, &live));
        let changed = serde_json::json!({"spec": {"replicas": 1, "containers": [{"name": "m", "env": [{"name": "A", "value": "2"}]}]}});
        assert!(!is_subset(&desired, &changed));
        let removed =
            serde_json::json!({"spec": {"replicas": 1, "containers": [{"name": "m", "env": []}]}});
        assert!(!is_subset(&desired, &removed));
        // Keyed lists (ports) may come back in another order; plain lists (args) may not.
        let ports = serde_json::json!({"ports": [{"name": "web", "port": 9080}, {"name": "http", "port": 8080}]});
        let reordered = serde_json::json!({"ports": [{"name": "http", "port": 8080, "protocol": "TCP"}, {"name": "web", "port": 9080, "protocol": "TCP"}]});
        assert!(is_subset(&ports, &reordered));
        let twice = serde_json::json!({"ports": [{"name": "http", "port": 8080}, {"name": "http", "port": 8080}]});
        assert!(!is_subset(&ports, &twice));
        let args = serde_json::json!({"args": ["--a", "--b"]});
        assert!(!is_subset(
            &args,
            &serde_json::json!({"args": ["--b", "--a"]})
        ));
    }

    #[test]
    fn timeouts_parse_or_default() {
        let default = Duration::from_secs(600);
        let t = Value::Known(Timeouts {
            create: Value::Known("90s".into()),
            update: Value::Null,
            delete: Value::Known("soon".into()),
        });
        assert_eq!(
            timeout(&t, Operation::Create, default),
            Ok(Duration::from_secs(90))
        );
        assert_eq!(timeout(&t, Operation::Update, default), Ok(default));
        assert_eq!(
            timeout(&Value::Null, Operation::Delete, default),
            Ok(default)
        );
        let err = timeout(&t, Operation::Delete, default).unwrap_err();
        assert_eq!(
            err.0[0].path,
            Some(AttrPath::attr("timeouts").then_attr("delete"))
        );
    }

    #[test]
    fn failures_are_titled_by_what_happened() {
        use kube::core::Status;
        let object = ObjectRef::new(
            "fluxcd.controlplane.io/v1",
            "FluxInstance",
            Some("flux-system"),
            "flux",
        );
        let api = |code: u16, reason: &str| ApplyError::DryRun {
            object: object.clone(),
            source: kube::Error::Api(Status::failure("boom", reason).with_code(code).boxed()),
        };
        let cases = [
            (api(500, "InternalError"), "Kubernetes API Server Error"),
            (
                api(503, "ServiceUnavailable"),
                "Kubernetes API Server Unavailable",
            ),
            (
                api(429, "TooManyRequests"),
                "Kubernetes API Server Overloaded",
            ),
            (api(409, "Conflict"), "Conflicting Change In The Cluster"),
            (
                api(401, "Unauthorized"),
                "Not Authenticated To The Kubernetes API Server",
            ),
            (
                api(403, "Forbidden"),
                "Forbidden By The Kubernetes API Server",
            ),
            (
                api(422, "Invalid"),
                "FluxInstance Rejected By The API Server",
            ),
            (
                api(409, "AlreadyExists"),
                "FluxInstance Rejected By The API Server",
            ),
            (
                ApplyError::Get {
                    object: object.clone(),
                    source: kube::Error::Service("connection reset by peer".into()),
                },
                "Kubernetes API Server Unreachable",
            ),
            (
                ApplyError::NotServed {
                    object: object.clone(),
                },
                "FluxInstance Rejected By The API Server",
            ),
        ];
        for (error, title) in cases {
            let diags = apply_error("FluxInstance Rejected By The API Server", &error);
            assert_eq!(diags.0[0].summary, title, "{error}");
            assert!(diags.0[0].detail.contains(&error.to_string()), "{diags:?}");
        }
        let detail =
            &apply_error("FluxInstance Apply Failed", &api(500, "InternalError")).0[0].detail;
        assert!(
            detail.starts_with("FluxInstance Apply Failed: "),
            "{detail}"
        );
        assert!(detail.contains("retried"), "{detail}");
    }

    #[test]
    fn deletion_policy_parses_the_two_values() {
        assert_eq!(
            DeletionPolicy::parse("uninstall"),
            Some(DeletionPolicy::Uninstall)
        );
        assert_eq!(
            DeletionPolicy::parse("orphan"),
            Some(DeletionPolicy::Orphan)
        );
        assert_eq!(DeletionPolicy::parse("keep"), None);
    }
}
