//! What every cluster-backed resource shares: the [`ClusterAccess`] seam to the provider data
//! (known/unknown connection settings, the lazily built [`Cluster`]), the `common_metadata`
//! attribute and the documentation paragraphs resource pages share. The rest lives in modules by
//! theme and is re-exported here, so resources import it all from `common`: the `timeouts`
//! block (`common_timeouts`), the API-JSON ↔ Terraform value mapping (`common_json`),
//! diagnostics for cluster errors naming the attribute when the API server's Status cause has a
//! field (`common_diagnostics`), readiness waits by watch and reconcile requests for objects the
//! Flux Operator reconciles (`common_wait`), and deletion with an `uninstall`/`orphan` policy
//! that also works when the operator is gone (`common_delete`).
//!
//! Lives in `resources/`: may use `framework`, `flux` and `cluster`, never `provider` or
//! `protocol`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use kube::api::DynamicObject;

use crate::cluster::objects::Cluster;
use crate::framework::diagnostics::Diagnostics;
use crate::framework::model::Value;
use crate::framework::path::AttrPath;
use crate::framework::resource::Context;
use crate::framework::schema::{Attribute, Nesting};
pub use crate::resources::common_delete::{
    DeletionPolicy, delete_reconciled, delete_reconciled_with_operator, deletion_policy_attribute,
    find_operator_namespace, operator_running,
};
pub use crate::resources::common_diagnostics::{PlanDryRun, apply_error, dry_run_at_plan};
pub use crate::resources::common_json::{
    api_field_to_path, api_json_to_value, camel_case, is_subset, snake_case, value_to_api_json,
};
pub use crate::resources::common_timeouts::{Operation, Timeouts, timeout, timeouts_block};
pub use crate::resources::common_wait::{
    ReconcileWait, WaitFailure, cluster_ref, object_conditions, object_readiness,
    request_reconcile, wait_failure_diagnostics, wait_reconciled, wait_reconciled_through,
};

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

/// The plan's server-side dry-run of `object`, a `kind` (`ResourceSet`) the operator reconciles,
/// when the cluster is known. A kind not served yet passes; a namespace that does not exist
/// yet warns at `namespace` that the dry-run was skipped. Returns the cluster when the API
/// server could judge the object (or did not serve the kind), for checks that need it.
///
/// # Errors
///
/// The API server's refusal, or a failure to ask it.
pub async fn dry_run_for_plan(
    ctx: &mut Context<impl ClusterAccess>,
    object: &DynamicObject,
    kind: &str,
) -> Result<Option<Cluster>, Diagnostics> {
    let Some(cluster) = cluster_if_known(ctx.data()?.as_ref()).await? else {
        return Ok(None);
    };
    match dry_run_at_plan(&cluster, object).await {
        Ok(verdict) => {
            let name = object.metadata.name.clone().unwrap_or_default();
            match verdict.warning(kind, &name, "") {
                Some((summary, detail)) => {
                    ctx.warn_at(AttrPath::attr("namespace"), summary, detail);
                    Ok(None)
                }
                None => Ok(Some(cluster)),
            }
        }
        Err(e) if e.status().is_some() => Err(apply_error(
            &format!("{kind} Rejected By The API Server"),
            &e,
        )),
        Err(e) => Err(apply_error(
            &format!("Cannot Validate The {kind} With The Cluster"),
            &e,
        )),
    }
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
