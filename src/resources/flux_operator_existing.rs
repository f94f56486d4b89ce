//! What `flux_operator` (and `flux_bootstrap_git`, which installs through it) finds already installed in its namespace, read before plan and before
//! the first write of apply: the operator Deployments there, classified by
//! [`crate::flux::operator_shape`]. An installation made by `flux-operator install` is adopted
//! (its immutable selector is kept); one made by Helm, or under another Deployment name, is
//! refused with a diagnostic naming it and what to do.
//!
//! Lives in `resources/`: may use `framework`, `flux`, `cluster`; only reads the cluster.

use serde_json::Value as Json;

use crate::cluster::objects::Cluster;
use crate::flux::operator as op;
use crate::flux::operator_shape::{self as shape, Existing, Foreign, Installer};
use crate::framework::diagnostics::Diagnostics;
use crate::resources::common::{self, apply_error};

/// Reads the operator Deployments of `namespace` and classifies them against the Deployment
/// about to be applied (`objects`; empty at plan, where only a foreign installation matters).
pub(crate) async fn inspect(
    cluster: &Cluster,
    namespace: &str,
    objects: &[Json],
) -> Result<Existing, Diagnostics> {
    let read = |e| apply_error("Cannot Read The Existing Flux Operator", &e);
    let ours = cluster
        .get(&common::cluster_ref(&op::deployment_ref(namespace)))
        .await
        .map_err(read)?
        .map(|d| serde_json::to_value(d).unwrap_or_default());
    let labelled: Vec<Json> = cluster
        .list(
            "apps/v1",
            "Deployment",
            Some(namespace),
            shape::OPERATOR_SELECTOR,
        )
        .await
        .map_err(read)?
        .iter()
        .map(|d| serde_json::to_value(d).unwrap_or_default())
        .collect();
    Ok(shape::classify(
        namespace,
        ours.as_ref(),
        &labelled,
        shape::release_selector(objects),
    ))
}

/// The diagnostic refusing to install next to `found`.
pub(crate) fn refusal(found: &Foreign, installer: Installer) -> Diagnostics {
    let summary = if found.helm_release.is_some() {
        "Flux Operator Installed By Helm"
    } else {
        "Another Flux Operator Installation"
    };
    Diagnostics::from_error(summary, found.advice_for(installer))
}

/// At plan: refuses a foreign installation in `namespace` that `installer` would install next
/// to; reads only.
pub(crate) async fn refuse_foreign(
    cluster: &Cluster,
    namespace: &str,
    installer: Installer,
) -> Result<(), Diagnostics> {
    match inspect(cluster, namespace, &[]).await? {
        Existing::Foreign(found) => Err(refusal(&found, installer)),
        Existing::Release | Existing::OtherSelector(_) => Ok(()),
    }
}

/// At apply, before the first write: refuses a foreign installation, and renders the operator
/// Deployment in `objects` with the live selector of an installation by `flux-operator install`.
pub(crate) async fn prepare(
    cluster: &Cluster,
    namespace: &str,
    objects: &mut [Json],
) -> Result<(), Diagnostics> {
    match inspect(cluster, namespace, objects).await? {
        Existing::Foreign(found) => Err(refusal(&found, Installer::Operator)),
        Existing::OtherSelector(selector) => {
            shape::adopt_selector(objects, &selector);
            Ok(())
        }
        Existing::Release => Ok(()),
    }
}
