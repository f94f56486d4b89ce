//! Waiting for objects the Flux Operator reconciles: their Ready condition read as a
//! [`Readiness`], the watch until the generation applied is reconciled (or a requested reconcile
//! was handled), the diagnostics of a failed wait, and reconcile requests.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::DynamicObject;
use tokio_util::sync::CancellationToken;

use crate::cluster::objects::{Cluster, ObjectRef};
use crate::cluster::wait::{WaitError, WaitOutcome};
use crate::flux::instance::{ANNOTATION_RECONCILE, ANNOTATION_REQUESTED_AT};
use crate::flux::object::ObjectRef as FluxRef;
use crate::flux::status::{self, Readiness};
use crate::framework::diagnostics::Diagnostics;
use crate::resources::common_diagnostics::apply_error;

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
