//! Deleting objects the Flux Operator reconciles: the `deletion_policy` (`uninstall` or
//! `orphan`), whether the operator runs, and a deletion that releases the finalizer itself when
//! the operator is gone.

use std::collections::BTreeMap;
use std::time::Duration;

use kube::api::PropagationPolicy;
use tokio_util::sync::CancellationToken;

use crate::cluster::apply::Deletion;
use crate::cluster::objects::{Cluster, ObjectRef};
use crate::cluster::wait::{self, WaitError, WaitOutcome};
use crate::flux::instance::{ANNOTATION_RECONCILE, FINALIZER};
use crate::framework::diagnostics::Diagnostics;
use crate::framework::schema::Attribute;
use crate::resources::common_diagnostics::apply_error;
use crate::resources::common_wait::cluster_ref;

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
