//! Status interpretation for FluxInstance and ResourceSet: conditions become a [`Readiness`]
//! (Ready only when `Ready=True` was observed for the current `metadata.generation`; `Stalled`
//! is terminal), failure messages name the unhealthy components, and [`summary`] builds the
//! sentence a diagnostic quotes, with the operator's reason and message verbatim.
//!
//! The operator's condition reasons: `Ready` — `ReconciliationSucceeded`, `Progressing`,
//! `ArtifactFailed`, `BuildFailed`, `HealthCheckFailed`, `ReconciliationFailed`,
//! `HealthCheckCanceled`, `ReconciliationDisabled`, `DependencyNotReady`,
//! `InvalidCELExpression`; `Reconciling` — `Progressing`, `ProgressingWithRetry`; `Stalled` —
//! `BuildFailed`, `InvalidCELExpression`. Pure: no I/O, nothing else from this crate.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use crate::flux::instance::Component;
use crate::flux::object::{Inventory, ObjectRef};

/// Condition type `Ready`.
pub const CONDITION_READY: &str = "Ready";
/// Condition type `Reconciling`.
pub const CONDITION_RECONCILING: &str = "Reconciling";
/// Condition type `Stalled`.
pub const CONDITION_STALLED: &str = "Stalled";

/// `Ready=False` reasons that mean "still working, keep waiting" rather than a failure.
const IN_PROGRESS_REASONS: [&str; 3] =
    ["Progressing", "ProgressingWithRetry", "HealthCheckCanceled"];
/// The `Ready` reason the operator sets when reconciliation is disabled at first initialisation.
const REASON_DISABLED: &str = "ReconciliationDisabled";

/// What the conditions say about an object, for its current generation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// `Ready=True` observed for the current generation.
    Ready,
    /// Not (yet) ready and not failed: no current `Ready`, `Ready=Unknown`, or a `Ready=False`
    /// reason that means work in progress. Carries the latest reason and message if any.
    Progressing {
        /// The latest reason (`Progressing`, ...), empty if none was reported.
        reason: String,
        /// The latest message, empty if none was reported.
        message: String,
    },
    /// `Stalled=True` for the current generation: terminal until the spec changes.
    Stalled {
        /// The operator's reason (`BuildFailed`).
        reason: String,
        /// The operator's message.
        message: String,
    },
    /// `Ready=False` for the current generation with a failure reason (`HealthCheckFailed`,
    /// `DependencyNotReady`, ...): the operator retries, so a wait may go on until its timeout.
    Failed {
        /// The operator's reason.
        reason: String,
        /// The operator's message.
        message: String,
    },
    /// Reconciliation is disabled (`fluxcd.controlplane.io/reconcile: disabled`).
    Disabled,
}

impl Readiness {
    /// Whether the object is ready for its current generation.
    pub fn is_ready(&self) -> bool {
        matches!(self, Self::Ready)
    }

    /// Whether waiting longer cannot help (stalled).
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Stalled { .. })
    }

    /// The operator's reason, if the state carries one.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Self::Progressing { reason, .. }
            | Self::Stalled { reason, .. }
            | Self::Failed { reason, .. } => {
                Some(reason).filter(|r| !r.is_empty()).map(String::as_str)
            }
            Self::Ready | Self::Disabled => None,
        }
    }

    /// The operator's message, if the state carries one.
    pub fn message(&self) -> Option<&str> {
        match self {
            Self::Progressing { message, .. }
            | Self::Stalled { message, .. }
            | Self::Failed { message, .. } => {
                Some(message).filter(|m| !m.is_empty()).map(String::as_str)
            }
            Self::Ready | Self::Disabled => None,
        }
    }

    /// A short word for the state, for computed attributes (`Ready`, `Progressing`, `Stalled`,
    /// `Failed`, `Disabled`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Ready => "Ready",
            Self::Progressing { .. } => "Progressing",
            Self::Stalled { .. } => "Stalled",
            Self::Failed { .. } => "Failed",
            Self::Disabled => "Disabled",
        }
    }
}

fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Interprets conditions for an object at `generation` (`metadata.generation`).
///
/// A condition counts only when its `observedGeneration` equals `generation`: a `Ready=True` left
/// over from the previous spec is "progressing", not "ready". `reconcile_disabled` is whether the
/// object carries `fluxcd.controlplane.io/reconcile: disabled`.
pub fn readiness(
    generation: Option<i64>,
    conditions: &[Condition],
    reconcile_disabled: bool,
) -> Readiness {
    if reconcile_disabled {
        return Readiness::Disabled;
    }
    let current = |c: &&Condition| c.observed_generation == generation;
    let ready = find(conditions, CONDITION_READY);
    // `ReconciliationDisabled` without the annotation is the status the operator wrote when the
    // object was created suspended: stale until the operator reconciles after the re-enable.
    if let Some(stale) = ready.filter(|c| c.reason == REASON_DISABLED) {
        return Readiness::Progressing {
            reason: stale.reason.clone(),
            message: format!(
                "reconciliation was re-enabled; waiting for the operator's first reconcile \
                 (last status: {})",
                stale.message
            ),
        };
    }
    if let Some(stalled) = find(conditions, CONDITION_STALLED)
        .filter(current)
        .filter(|c| c.status == "True")
    {
        return Readiness::Stalled {
            reason: stalled.reason.clone(),
            message: stalled.message.clone(),
        };
    }
    match ready.filter(current) {
        Some(c) if c.status == "True" => Readiness::Ready,
        Some(c) if c.status == "False" && !IN_PROGRESS_REASONS.contains(&c.reason.as_str()) => {
            Readiness::Failed {
                reason: c.reason.clone(),
                message: c.message.clone(),
            }
        }
        Some(c) => Readiness::Progressing {
            reason: c.reason.clone(),
            message: c.message.clone(),
        },
        None => {
            let latest = find(conditions, CONDITION_RECONCILING)
                .filter(|c| c.status == "True")
                .or(ready);
            Readiness::Progressing {
                reason: latest.map(|c| c.reason.clone()).unwrap_or_default(),
                message: latest.map(|c| c.message.clone()).unwrap_or_default(),
            }
        }
    }
}

/// Whether the operator handled a reconcile requested with `reconcile.fluxcd.io/requestedAt:
/// <requested_at>` (it echoes the value in `status.lastHandledReconcileAt`).
pub fn request_handled(last_handled_reconcile_at: Option<&str>, requested_at: &str) -> bool {
    last_handled_reconcile_at == Some(requested_at)
}

/// The objects a failure message names as `Kind/namespace/name` (the form the operator's health
/// checks report, e.g. `timeout waiting for: [Deployment/flux-system/source-controller status:
/// 'InProgress']`), in order of appearance, without duplicates.
pub fn objects_named_in(message: &str) -> Vec<ObjectRef> {
    let mut out: Vec<ObjectRef> = Vec::new();
    for token in message
        .split(|c: char| c.is_whitespace() || matches!(c, '[' | ']' | ',' | '\'' | '"' | '(' | ')'))
    {
        let token = token.trim_end_matches([':', '.', ';']);
        let parts: Vec<&str> = token.split('/').collect();
        let [kind, namespace, name] = parts.as_slice() else {
            continue;
        };
        let valid_kind = kind.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            && kind.chars().all(|c| c.is_ascii_alphanumeric());
        let valid_name = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        };
        if !valid_kind || !valid_name(namespace) || !valid_name(name) {
            continue;
        }
        let object = ObjectRef {
            api_version: String::new(),
            kind: (*kind).to_owned(),
            namespace: Some((*namespace).to_owned()),
            name: (*name).to_owned(),
        };
        if !out.contains(&object) {
            out.push(object);
        }
    }
    out
}

/// The component (controller) a Deployment name belongs to: the component itself or one of its
/// shards (`source-controller-shard1`).
pub fn component_of_deployment(name: &str) -> Option<Component> {
    Component::ALL.iter().copied().find(|c| {
        name == c.as_str()
            || name
                .strip_prefix(c.as_str())
                .is_some_and(|rest| rest.starts_with('-'))
    })
}

/// The unhealthy components a failure message names (Deployments of known components, shards
/// included, by Deployment name), sorted and without duplicates.
pub fn unhealthy_components(message: &str) -> Vec<String> {
    let mut names: Vec<String> = objects_named_in(message)
        .into_iter()
        .filter(|o| o.kind == "Deployment" && component_of_deployment(&o.name).is_some())
        .map(|o| o.name)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The Deployments in an inventory: the controllers whose presence and health decide whether
/// the installation drifted.
pub fn inventory_deployments(inventory: &Inventory) -> Vec<ObjectRef> {
    inventory
        .object_refs()
        .unwrap_or_default()
        .into_iter()
        .filter(|o| o.kind == "Deployment" && o.api_version.starts_with("apps/"))
        .collect()
}

/// One sentence for a diagnostic: which object, what state, the operator's reason and message
/// quoted verbatim, and the unhealthy components when there are any.
///
/// `kind` is `FluxInstance` or `ResourceSet`; `unhealthy` usually comes from
/// [`unhealthy_components`] and/or the installation-drift check.
pub fn summary(
    kind: &str,
    namespace: &str,
    name: &str,
    readiness: &Readiness,
    unhealthy: &[String],
) -> String {
    let subject = format!("{kind} {namespace}/{name}");
    let detail = |reason: &str, message: &str| match (reason.is_empty(), message.is_empty()) {
        (true, true) => String::new(),
        (false, true) => format!(": {reason}"),
        (true, false) => format!(": {message}"),
        (false, false) => format!(": {reason}: {message}"),
    };
    let mut out = match readiness {
        Readiness::Ready => format!("{subject} is ready"),
        Readiness::Disabled => format!(
            "{subject} has reconciliation disabled (fluxcd.controlplane.io/reconcile: disabled)"
        ),
        Readiness::Progressing { reason, message } => {
            format!("{subject} is still reconciling{}", detail(reason, message))
        }
        Readiness::Stalled { reason, message } => {
            format!("{subject} is stalled{}", detail(reason, message))
        }
        Readiness::Failed { reason, message } => {
            format!("{subject} is not ready{}", detail(reason, message))
        }
    };
    if !unhealthy.is_empty() {
        out.push_str(&format!(
            " (unhealthy components: {})",
            unhealthy.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flux::object::InventoryEntry;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn cond(type_: &str, status: &str, generation: i64, reason: &str, message: &str) -> Condition {
        Condition {
            type_: type_.into(),
            status: status.into(),
            observed_generation: Some(generation),
            last_transition_time: Time("2026-11-20T10:00:00Z".parse().unwrap()),
            reason: reason.into(),
            message: message.into(),
        }
    }

    fn progressing(reason: &str, message: &str) -> Readiness {
        Readiness::Progressing {
            reason: reason.into(),
            message: message.into(),
        }
    }

    #[test]
    fn conditions_are_interpreted_for_the_current_generation() {
        let cases: Vec<(&str, Vec<Condition>, bool, Readiness)> = vec![
            (
                "ready-current",
                vec![cond("Ready", "True", 2, "ReconciliationSucceeded", "done")],
                false,
                Readiness::Ready,
            ),
            (
                "ready-stale-generation",
                vec![cond("Ready", "True", 1, "ReconciliationSucceeded", "done")],
                false,
                progressing("ReconciliationSucceeded", "done"),
            ),
            (
                "stale-ready-while-reconciling",
                vec![
                    cond("Ready", "True", 1, "ReconciliationSucceeded", "done"),
                    cond("Reconciling", "True", 2, "Progressing", "applying revision v2.7.5"),
                ],
                false,
                progressing("Progressing", "applying revision v2.7.5"),
            ),
            ("no-conditions", vec![], false, progressing("", "")),
            (
                "ready-unknown",
                vec![cond("Ready", "Unknown", 2, "Progressing", "reconciliation in progress")],
                false,
                progressing("Progressing", "reconciliation in progress"),
            ),
            (
                "health-check-canceled-keeps-waiting",
                vec![cond("Ready", "False", 2, "HealthCheckCanceled", "new generation")],
                false,
                progressing("HealthCheckCanceled", "new generation"),
            ),
            (
                "stalled-build-failed",
                vec![
                    cond("Ready", "False", 2, "BuildFailed", "no match for 2.99.x"),
                    cond("Stalled", "True", 2, "BuildFailed", "no match for 2.99.x"),
                ],
                false,
                Readiness::Stalled {
                    reason: "BuildFailed".into(),
                    message: "no match for 2.99.x".into(),
                },
            ),
            (
                "stalled-from-old-generation-is-ignored",
                vec![
                    cond("Ready", "False", 1, "BuildFailed", "old"),
                    cond("Stalled", "True", 1, "BuildFailed", "old"),
                ],
                false,
                progressing("BuildFailed", "old"),
            ),
            (
                "health-check-failed",
                vec![cond(
                    "Ready",
                    "False",
                    2,
                    "HealthCheckFailed",
                    "timeout waiting for: [Deployment/flux-system/helm-controller status: 'InProgress']",
                )],
                false,
                Readiness::Failed {
                    reason: "HealthCheckFailed".into(),
                    message: "timeout waiting for: [Deployment/flux-system/helm-controller status: 'InProgress']".into(),
                },
            ),
            (
                "dependency-not-ready",
                vec![cond("Ready", "False", 2, "DependencyNotReady", "dependency not ready")],
                false,
                Readiness::Failed {
                    reason: "DependencyNotReady".into(),
                    message: "dependency not ready".into(),
                },
            ),
            (
                "annotation-disabled",
                vec![cond("Ready", "True", 2, "ReconciliationSucceeded", "done")],
                true,
                Readiness::Disabled,
            ),
            (
                // Created suspended, then re-enabled: the operator has not reconciled yet.
                "reason-disabled-stale-after-re-enable",
                vec![cond(
                    "Ready",
                    "True",
                    2,
                    "ReconciliationDisabled",
                    "Initialized with reconciliation suspended",
                )],
                false,
                Readiness::Progressing {
                    reason: "ReconciliationDisabled".into(),
                    message: "reconciliation was re-enabled; waiting for the operator's first \
                              reconcile (last status: Initialized with reconciliation suspended)"
                        .into(),
                },
            ),
            (
                "reason-disabled-while-disabled",
                vec![cond(
                    "Ready",
                    "True",
                    2,
                    "ReconciliationDisabled",
                    "Initialized with reconciliation suspended",
                )],
                true,
                Readiness::Disabled,
            ),
        ];
        for (name, conditions, disabled, want) in cases {
            assert_eq!(
                readiness(Some(2), &conditions, disabled),
                want,
                "case {name}"
            );
        }
    }

    #[test]
    fn components_are_named_from_health_check_messages() {
        let cases: &[(&str, &str, &[&str])] = &[
            (
                "operator-health-check",
                "timeout waiting for: [Deployment/flux-system/source-controller status: 'InProgress', \
                 Deployment/flux-system/kustomize-controller-shard1 status: 'Failed', \
                 Service/flux-system/webhook-receiver status: 'InProgress']",
                &["kustomize-controller-shard1", "source-controller"],
            ),
            (
                "not-a-component",
                "timeout waiting for: [Deployment/apps/podinfo status: 'Failed']",
                &[],
            ),
            ("no-objects", "failed to build: no match for 2.99.x", &[]),
            (
                "duplicates",
                "Deployment/flux-system/helm-controller not ready; Deployment/flux-system/helm-controller.",
                &["helm-controller"],
            ),
        ];
        for (name, message, want) in cases {
            assert_eq!(unhealthy_components(message), *want, "case {name}");
        }
    }

    #[test]
    fn summaries_quote_the_operator() {
        let unhealthy = vec!["helm-controller".to_owned()];
        let cases: Vec<(&str, Readiness, &[String], &str)> = vec![
            ("ready", Readiness::Ready, &[], "FluxInstance flux-system/flux is ready"),
            (
                "failed",
                Readiness::Failed {
                    reason: "HealthCheckFailed".into(),
                    message: "timeout waiting for: [Deployment/flux-system/helm-controller status: 'InProgress']".into(),
                },
                &unhealthy,
                "FluxInstance flux-system/flux is not ready: HealthCheckFailed: timeout waiting for: \
                 [Deployment/flux-system/helm-controller status: 'InProgress'] (unhealthy components: helm-controller)",
            ),
            (
                "stalled",
                Readiness::Stalled {
                    reason: "BuildFailed".into(),
                    message: "downgrading is not supported".into(),
                },
                &[],
                "FluxInstance flux-system/flux is stalled: BuildFailed: downgrading is not supported",
            ),
            (
                "progressing-without-detail",
                progressing("", ""),
                &[],
                "FluxInstance flux-system/flux is still reconciling",
            ),
            (
                "disabled",
                Readiness::Disabled,
                &[],
                "FluxInstance flux-system/flux has reconciliation disabled (fluxcd.controlplane.io/reconcile: disabled)",
            ),
        ];
        for (name, state, unhealthy, want) in cases {
            assert_eq!(
                summary("FluxInstance", "flux-system", "flux", &state, unhealthy),
                want,
                "case {name}"
            );
        }
    }

    #[test]
    fn inventory_deployments_are_the_controllers() {
        let inventory = Inventory {
            entries: vec![
                InventoryEntry {
                    id: "flux-system_source-controller_apps_Deployment".into(),
                    v: "v1".into(),
                },
                InventoryEntry {
                    id: "flux-system_source-controller__Service".into(),
                    v: "v1".into(),
                },
                InventoryEntry {
                    id: "flux-system_helm-controller_apps_Deployment".into(),
                    v: "v1".into(),
                },
            ],
        };
        let names: Vec<String> = inventory_deployments(&inventory)
            .into_iter()
            .map(|o| o.to_string())
            .collect();
        assert_eq!(
            names,
            [
                "Deployment/flux-system/source-controller",
                "Deployment/flux-system/helm-controller"
            ]
        );
        assert_eq!(
            component_of_deployment("source-controller-shard2"),
            Some(Component::SourceController)
        );
        assert_eq!(component_of_deployment("source-controllers"), None);
        assert!(request_handled(
            Some("2026-11-20T10:00:00Z"),
            "2026-11-20T10:00:00Z"
        ));
        assert!(!request_handled(Some("earlier"), "2026-11-20T10:00:00Z"));
        assert!(!request_handled(None, "2026-11-20T10:00:00Z"));
    }
}
