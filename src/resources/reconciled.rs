//! One apply-and-wait for the objects the Flux Operator reconciles (FluxInstance, ResourceSet,
//! ResourceSetInputProvider): refuse to create over a foreign object (or take over the fields
//! other managers hold), server-side apply, ask for a reconcile when the plan promised one, wait
//! for the operator's verdict, and read the state back — the state with `ready = false` as the
//! partial state of a failed wait, so that the next plan waits again in place; a wait that the
//! operator's failure verdict ended records that verdict in the private state, for the plans
//! that follow to quote. An apply that
//! changes only annotations (`suspend` true → false among them) leaves the generation as it was,
//! so it requests a reconcile and waits for the operator to handle it.
//!
//! Each resource describes its model through [`Reconciled`]; [`apply_and_wait`] is the routine.
//! Lives in `resources/`: may use `framework`, `flux`, `cluster`, never `provider`.

use std::time::Duration;

use async_trait::async_trait;
use kube::api::DynamicObject;

use crate::cluster::objects::{Cluster, ObjectRef};
use crate::flux::instance::ANNOTATION_RECONCILE;
use crate::framework::diagnostics::Diagnostics;
use crate::framework::resource::{ApplyError, Context};
use crate::resources::common::{
    self, ClusterAccess, Operation, ReconcileWait, apply_error, cluster_for_apply,
};
use crate::resources::ownership;

/// A resource model whose object the operator reconciles.
#[async_trait]
pub trait Reconciled: Sized + Send + Sync {
    /// The object's kind as diagnostics name it (`FluxInstance`).
    const KIND: &'static str;
    /// The Terraform type named when creation over an object it did not create is refused (on
    /// update, other managers' fields are taken over instead).
    const TYPE_NAME: &'static str;
    /// `Ready=False` reasons that do not end the wait (the operator re-checks them itself).
    const KEEP_WAITING: &'static [&'static str] = &[];

    /// How long `operation` may wait.
    ///
    /// # Errors
    /// A `timeouts` value that is not a duration.
    fn timeout(&self, operation: Operation) -> Result<Duration, Diagnostics>;

    /// The object to apply.
    ///
    /// # Errors
    /// A configuration that does not make a valid object.
    fn object(&self) -> Result<DynamicObject, Diagnostics>;

    /// The object's reference.
    fn reference(&self) -> ObjectRef;

    /// Adjusts the diagnostics of a failed apply (attribute names, for example).
    fn apply_diagnostics(diagnostics: Diagnostics) -> Diagnostics {
        diagnostics
    }

    /// Whether the apply from `prior` to `planned` asks the operator for a reconcile (the plan
    /// showed one: nothing to write, but the last read found the object not Ready or drifted).
    fn wants_reconcile(prior: &Self, planned: &Self) -> bool;

    /// The state after the apply: `planned` with its computed values read from the cluster.
    async fn state_after(cluster: &Cluster, planned: &Self) -> Self;

    /// Marks a state not Ready (a failed wait).
    fn mark_not_ready(&mut self);
}

/// Whether the apply changes the object's annotations while leaving it reconciled. An
/// annotation change does not bump `metadata.generation`, so a wait judged by generation alone
/// would accept the status of the previous reconcile (or the stale `ReconciliationDisabled` of an
/// object created suspended): such an apply requests a reconcile and waits until the operator has
/// handled it. Not when the object is now suspended — the operator would never answer.
fn annotations_changed<M: Reconciled>(prior: &M, object: &DynamicObject) -> bool {
    let annotations = object.metadata.annotations.as_ref();
    let suspended = annotations
        .and_then(|a| a.get(ANNOTATION_RECONCILE))
        .is_some_and(|v| v == "disabled");
    let before = prior.object().ok().and_then(|o| o.metadata.annotations);
    !suspended && before.as_ref() != annotations
}

/// Apply, reconcile request when planned, wait; returns the new state, or the read-back state
/// marked not Ready with the wait's diagnostics.
///
/// # Errors
/// Diagnostics for a refused create, a failed apply, reconcile request or wait.
pub async fn apply_and_wait<M: Reconciled>(
    ctx: &mut Context<impl ClusterAccess>,
    prior: Option<&M>,
    planned: M,
    operation: Operation,
) -> Result<M, ApplyError<M>> {
    let cluster = cluster_for_apply(ctx.data()?.as_ref()).await?;
    let timeout = planned.timeout(operation)?;
    let object = planned.object()?;
    let reference = planned.reference();
    if prior.is_none() && !ownership::replacing_own(ctx) {
        ownership::refuse_existing(&cluster, &reference, M::TYPE_NAME).await?;
    } else {
        ownership::take_over(&cluster, &reference, &ownership::reconciled_fields()).await?;
    }
    let applied = cluster
        .apply(&object)
        .await
        .map_err(|e| M::apply_diagnostics(apply_error(&format!("{} Apply Failed", M::KIND), &e)))?;
    let requested = if prior
        .is_some_and(|p| M::wants_reconcile(p, &planned) || annotations_changed(p, &object))
    {
        Some(common::request_reconcile(&cluster, &reference).await?)
    } else {
        None
    };
    let wait = ReconcileWait {
        object: &reference,
        min_generation: applied.metadata.generation.unwrap_or(0),
        requested_at: requested.as_deref(),
        timeout,
    };
    let result =
        common::wait_reconciled_through(&cluster, &wait, M::KEEP_WAITING, ctx.cancellation()).await;
    let mut state = M::state_after(&cluster, &planned).await;
    let verdict = match &result {
        Err(common::WaitFailure::Failed(message)) => Some(ownership::RecordedFailure {
            generation: applied.metadata.generation.unwrap_or(0),
            message: message.clone(),
        }),
        _ => None,
    };
    ownership::record_failure(ctx, verdict);
    match result {
        Ok(_) => Ok(state),
        Err(failure) => {
            state.mark_not_ready();
            Err(ApplyError {
                diagnostics: common::wait_failure_diagnostics(&failure, M::KIND),
                partial_state: Some(state),
            })
        }
    }
}
