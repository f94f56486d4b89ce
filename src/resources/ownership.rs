//! Who owns an object: creating a FluxInstance, ResourceSet or ResourceSetInputProvider that
//! already exists but is not in this resource's state is refused (at plan when the cluster can
//! be asked, and again at create before any write), with the `terraform import` command that
//! adopts it instead. A replacement of the resource's own object (`terraform apply -replace=...`)
//! is told apart through a marker that every plan with a prior state writes into the private
//! state: Terraform hands the first plan's private bytes to the second, null-prior plan of a
//! replacement.
//!
//! Drift made by other field managers: before an update applies, the fields this provider
//! writes are taken over from every other manager ([`take_over`]), so that the apply removes
//! what the configuration leaves unset.
//!
//! Lives in `resources/`: may use `framework`, `flux` and `cluster`, never `provider` or
//! `protocol`.

use serde::{Deserialize, Serialize};

use crate::cluster::apply::FIELD_MANAGER;
use crate::cluster::objects::{Cluster, ObjectRef};
use crate::flux::instance::{
    ANNOTATION_RECONCILE, ANNOTATION_RECONCILE_ARTIFACT_EVERY, ANNOTATION_RECONCILE_EVERY,
    ANNOTATION_RECONCILE_TIMEOUT,
};
use crate::framework::diagnostics::Diagnostics;
use crate::framework::resource::Context;
use crate::resources::common::apply_error;

/// The private-state bytes that say "this state manages its object" (and nothing else).
const MANAGED: &[u8] = b"managed";

/// The private state of a reconciled object: the marker, and the operator's verdict when the
/// last apply's wait ended on a failure (JSON; just [`MANAGED`] when there is no failure).
#[derive(Serialize, Deserialize, Default, Debug, PartialEq)]
struct Private {
    #[serde(default)]
    managed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    failed: Option<RecordedFailure>,
}

/// The operator's failure verdict that ended an apply's wait, for the generation it judged.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct RecordedFailure {
    /// `metadata.generation` of the object the operator failed.
    pub generation: i64,
    /// What the wait reported (the object, the operator's reason and message).
    pub message: String,
}

fn private<D>(ctx: &Context<D>) -> Private {
    if ctx.private == MANAGED {
        return Private {
            managed: true,
            failed: None,
        };
    }
    serde_json::from_slice(&ctx.private).unwrap_or_default()
}

fn set_private<D>(ctx: &mut Context<D>, private: &Private) {
    ctx.private = match private {
        Private {
            failed: None,
            managed: true,
        } => MANAGED.to_vec(),
        Private {
            failed: None,
            managed: false,
        } => Vec::new(),
        _ => serde_json::to_vec(private).unwrap_or_default(),
    };
}

/// Records in the private state that this resource manages its object; call in every plan that
/// has a prior state.
pub fn mark_managed<D>(ctx: &mut Context<D>) {
    let mut current = private(ctx);
    current.managed = true;
    set_private(ctx, &current);
}

/// Whether the plan or create at hand replaces this resource's own object.
pub fn replacing_own<D>(ctx: &Context<D>) -> bool {
    private(ctx).managed
}

/// Records (or, with `None`, forgets) the failure verdict that ended the apply's wait, so that
/// later plans can quote it while the operator retries (its status then says only "in
/// progress").
pub fn record_failure<D>(ctx: &mut Context<D>, failure: Option<RecordedFailure>) {
    let mut current = private(ctx);
    current.failed = failure;
    set_private(ctx, &current);
}

/// The failure verdict recorded by the last apply, if its wait ended on one.
pub fn recorded_failure<D>(ctx: &Context<D>) -> Option<RecordedFailure> {
    private(ctx).failed
}

/// Fails when `object` exists: it was not created by this resource, so creating it would take
/// over another tool's or another configuration's object without a word.
///
/// # Errors
///
/// The refusal, naming the object and the import command; or a read failure.
pub async fn refuse_existing(
    cluster: &Cluster,
    object: &ObjectRef,
    type_name: &str,
) -> Result<(), Diagnostics> {
    let found = cluster
        .get(object)
        .await
        .map_err(|e| apply_error(&format!("Cannot Read The {}", object.kind), &e))?;
    if found.is_none() {
        return Ok(());
    }
    Err(already_exists(object, type_name))
}

/// The check at plan of a create: fails when `object` exists and no manager of its fields is
/// this provider (another tool created it). When this provider did write it, the plan may be the
/// replacement of a tainted instance of this very resource (Terraform hands such a plan neither
/// the prior state nor the private state): a warning then, and create refuses before any write
/// if the object is still there, i.e. when it was not this resource's.
///
/// # Errors
///
/// The refusal, naming the object and the import command; or a read failure.
pub async fn check_existing_at_plan<D>(
    ctx: &mut Context<D>,
    cluster: &Cluster,
    object: &ObjectRef,
    type_name: &str,
) -> Result<(), Diagnostics> {
    if replacing_own(ctx) {
        return Ok(());
    }
    let found = cluster
        .get(object)
        .await
        .map_err(|e| apply_error(&format!("Cannot Read The {}", object.kind), &e))?;
    let Some(found) = found else {
        return Ok(());
    };
    let ours = found
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .any(|e| e.manager.as_deref() == Some(FIELD_MANAGER));
    if !ours {
        return Err(already_exists(object, type_name));
    }
    let id = import_id(object);
    ctx.warn(
        format!("{} Already Exists", object.kind),
        format!(
            "The {kind} {id} already exists and was written by this provider, but it is not in \
             this resource's state. When this plan replaces a tainted instance of this resource, \
             that is expected: the old object is deleted first. Otherwise apply will refuse to \
             create it; to manage it with this configuration, import it: terraform import \
             <address> {id}.",
            kind = object.kind,
        ),
    );
    Ok(())
}

fn import_id(object: &ObjectRef) -> String {
    match &object.namespace {
        Some(ns) => format!("{ns}/{}", object.name),
        None => object.name.clone(),
    }
}

/// The refusal diagnostic for an existing `object`.
pub fn already_exists(object: &ObjectRef, type_name: &str) -> Diagnostics {
    let id = import_id(object);
    Diagnostics::from_error(
        format!("{} Already Exists", object.kind),
        format!(
            "The {kind} {id} already exists in the cluster, but it is not in this resource's \
             Terraform state: it was created by another tool or another configuration. Creating \
             it here would silently take it over. To manage it with this configuration, import \
             it first: terraform import <address> {id} (e.g. terraform import \
             {type_name}.this {id}), or add an import block with id = \"{id}\". If this resource \
             is tainted, `terraform untaint <address>` keeps the existing object instead.",
            kind = object.kind,
        ),
    )
}

/// The fields this provider writes on a FluxInstance, ResourceSet or ResourceSetInputProvider: the whole `spec` and the
/// reconcile annotations it models (`reconcile`, `reconcileEvery`, `reconcileArtifactEvery`,
/// `reconcileTimeout`). Not the reconcile request (`reconcile.fluxcd.io/requestedAt`), which
/// anyone may write, nor the operator's finalizer.
pub fn reconciled_fields() -> Vec<Vec<String>> {
    let annotation = |key: &str| {
        vec![
            "metadata".to_owned(),
            "annotations".to_owned(),
            key.to_owned(),
        ]
    };
    vec![
        vec!["spec".to_owned()],
        annotation(ANNOTATION_RECONCILE),
        annotation(ANNOTATION_RECONCILE_EVERY),
        annotation(ANNOTATION_RECONCILE_ARTIFACT_EVERY),
        annotation(ANNOTATION_RECONCILE_TIMEOUT),
    ]
}

/// Moves `fields` of `object` from other field managers to this provider before it applies, so
/// that the apply removes what the configuration leaves unset even when another tool (kubectl,
/// another applier) added it: after apply the object is what the plan showed.
///
/// # Errors
///
/// A diagnostic when the `managedFields` rewrite fails.
pub async fn take_over(
    cluster: &Cluster,
    object: &ObjectRef,
    fields: &[Vec<String>],
) -> Result<(), Diagnostics> {
    cluster
        .take_over(object, fields)
        .await
        .map(|_| ())
        .map_err(|e| apply_error("Cannot Take Over Fields From Other Field Managers", &e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::service::ClientCapabilities;
    use tokio_util::sync::CancellationToken;

    fn ctx(private: &[u8]) -> Context<()> {
        let mut ctx = Context::new(
            CancellationToken::new(),
            None,
            ClientCapabilities::default(),
        );
        ctx.private = private.to_vec();
        ctx
    }

    /// The marker stays the bytes older states hold; a recorded failure keeps it, and
    /// forgetting the failure gives the marker back unchanged.
    #[test]
    fn the_marker_and_a_recorded_failure_live_side_by_side() {
        let mut fresh = ctx(b"");
        assert!(!replacing_own(&fresh));
        assert_eq!(recorded_failure(&fresh), None);
        mark_managed(&mut fresh);
        assert_eq!(fresh.private, MANAGED);
        assert!(replacing_own(&fresh));

        let failure = RecordedFailure {
            generation: 3,
            message: "FluxInstance ns/flux is not ready: ReconciliationFailed: x".into(),
        };
        record_failure(&mut fresh, Some(failure.clone()));
        assert!(replacing_own(&fresh));
        assert_eq!(recorded_failure(&fresh), Some(failure.clone()));
        mark_managed(&mut fresh);
        assert_eq!(recorded_failure(&fresh), Some(failure.clone()));
        record_failure(&mut fresh, None);
        assert_eq!(fresh.private, MANAGED);

        // A create (no marker) that failed: the failure alone; forgetting it leaves nothing.
        let mut created = ctx(b"");
        record_failure(&mut created, Some(failure.clone()));
        assert!(!replacing_own(&created));
        assert_eq!(recorded_failure(&created), Some(failure));
        record_failure(&mut created, None);
        assert!(created.private.is_empty());
        // Bytes from elsewhere are neither a marker nor a failure.
        let other = ctx(b"{not json");
        assert!(!replacing_own(&other));
        assert_eq!(recorded_failure(&other), None);
    }
}
