//! How `flux_operator` installs and checks the operator: the manifests loaded from the
//! configured source and customised, the CRDs applied and waited for until Established, then
//! the rest in order (taking over the spec from other field managers), then the Deployment
//! waited for until Available; and the check of what was applied against the cluster (missing,
//! changed or unavailable objects). What was applied is kept in the resource's private state
//! (`Applied`). Used by [`super::flux_operator`] and by `flux_bootstrap_git`'s apply.
//!
//! Lives in `resources/`: may use `framework`, `flux`, `cluster`, never `provider`.

use std::time::Duration;

use kube::api::DynamicObject;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::cluster::objects::{Cluster, ObjectRef};
use crate::cluster::wait::{self, WaitOutcome};
use crate::flux::operator as op;
use crate::framework::diagnostics::Diagnostics;
use crate::framework::path::AttrPath;
use crate::framework::resource::Context;
use crate::resources::common::{self, ClusterAccess, apply_error, is_subset};
use crate::resources::common_fetch::fetch_text;
use crate::resources::flux_operator_existing as existing;
use crate::resources::flux_operator_model::{OperatorModel, namespace_of, settings};

/// `installation_status` of an operator whose applied objects are all present and unchanged.
pub(crate) const HEALTHY: &str = "Healthy";

/// What apply wrote, kept in private state: the non-CRD objects as applied, the CRD names.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub(crate) struct Applied {
    /// The non-CRD objects as applied.
    pub(crate) objects: Vec<Json>,
    /// The names of the CRDs applied.
    pub(crate) crds: Vec<String>,
}

impl Applied {
    /// What applying `manifests` writes (for an operator whose private state is gone).
    pub(crate) fn from_manifests(manifests: Vec<Json>) -> Self {
        let (crds, objects) = op::split_crds(manifests);
        let crds = crds
            .iter()
            .filter_map(|c| {
                c.pointer("/metadata/name")
                    .and_then(Json::as_str)
                    .map(str::to_owned)
            })
            .collect();
        Self { objects, crds }
    }
}

/// The customised objects to apply, from the configured source.
pub(crate) async fn load(model: &OperatorModel) -> Result<Vec<Json>, Diagnostics> {
    let (text, source) = if let Some(yaml) = model.manifests.as_known() {
        (yaml.clone(), "manifests")
    } else {
        let (url, attr) = match (model.manifests_url.as_known(), model.version.as_known()) {
            (Some(url), _) => (url.clone(), "manifests_url"),
            (None, Some(version)) => (
                op::manifest_url(version).map_err(|e| {
                    Diagnostics::from_error_at(
                        AttrPath::attr("version"),
                        "Invalid Operator Version",
                        format!("{e}."),
                    )
                })?,
                "version",
            ),
            (None, None) => {
                return Err(Diagnostics::from_error(
                    "No Operator Manifests",
                    "Set one of version, manifests_url or manifests.",
                ));
            }
        };
        let text = fetch_text(&url).await.map_err(|e| {
            Diagnostics::from_error_at(
                AttrPath::attr(attr),
                "Cannot Download The Operator Manifests",
                format!(
                    "{e}. In an air-gapped cluster, set manifests = file(\"install.yaml\") instead."
                ),
            )
        })?;
        (text, attr)
    };
    let invalid = |e: op::OperatorError| {
        Diagnostics::from_error_at(
            AttrPath::attr(source),
            "Invalid Operator Manifests",
            format!("{e}."),
        )
    };
    let objects = op::parse_manifests(&text).map_err(invalid)?;
    op::customize(objects, &settings(model)?).map_err(invalid)
}

pub(crate) fn to_dynamic(object: &Json) -> Result<DynamicObject, Diagnostics> {
    serde_json::from_value(object.clone())
        .map_err(|e| Diagnostics::from_error("Invalid Operator Manifests", format!("{e}.")))
}

pub(crate) fn reference(object: &Json) -> Option<ObjectRef> {
    let flux = crate::flux::object::ObjectRef::from_manifest(object).ok()?;
    Some(common::cluster_ref(&flux))
}

pub(crate) fn crd_ref(name: &str) -> ObjectRef {
    ObjectRef::new(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        None,
        name,
    )
}

/// Applies everything in order and waits; returns what was applied.
pub(crate) async fn install(
    ctx: &Context<impl ClusterAccess>,
    cluster: &Cluster,
    model: &OperatorModel,
    timeout: Duration,
) -> Result<Applied, Diagnostics> {
    let mut applied = Applied::default();
    install_tracked(ctx, cluster, model, timeout, &mut applied, &mut Vec::new()).await?;
    Ok(applied)
}

/// [`install`], recording in `applied` each object as it is written, so that a failure half way
/// still knows what exists, and in `desired` every non-CRD object it is about to write.
pub(crate) async fn install_tracked(
    ctx: &Context<impl ClusterAccess>,
    cluster: &Cluster,
    model: &OperatorModel,
    timeout: Duration,
    applied: &mut Applied,
    desired: &mut Vec<Json>,
) -> Result<(), Diagnostics> {
    let (crds, mut rest) = op::split_crds(load(model).await?);
    existing::prepare(cluster, &namespace_of(model), &mut rest).await?;
    desired.clone_from(&rest);
    let cancel = ctx.cancellation();
    let failed = |e| apply_error("Flux Operator Apply Failed", &e);
    let wait_failed =
        |e: wait::WaitError| Diagnostics::from_error("Flux Operator Not Ready", format!("{e}."));
    for crd in &crds {
        let written = cluster.apply(&to_dynamic(crd)?).await.map_err(failed)?;
        applied.crds.push(written.metadata.name.unwrap_or_default());
    }
    for name in applied.crds.clone() {
        cluster
            .wait_for(&crd_ref(&name), timeout, cancel, wait::crd_established)
            .await
            .map_err(wait_failed)?;
    }
    for object in &rest {
        // The spec (Deployment, Service) is taken over from other field managers first, so that
        // what kubectl added and the manifests leave unset is removed: drift is healed.
        if object.get("spec").is_some()
            && let Some(r) = reference(object)
        {
            cluster
                .take_over(&r, &[vec!["spec".to_owned()]])
                .await
                .map_err(|e| {
                    apply_error("Cannot Take Over Fields From Other Field Managers", &e)
                })?;
        }
        cluster.apply(&to_dynamic(object)?).await.map_err(failed)?;
        applied.objects.push(object.clone());
    }
    let deployment = common::cluster_ref(&op::deployment_ref(&namespace_of(model)));
    cluster
        .wait_for(&deployment, timeout, cancel, wait::deployment_available)
        .await
        .map_err(wait_failed)?;
    Ok(())
}

/// `Healthy`, or what is missing, changed or unavailable; `None` when nothing is left at all.
pub(crate) async fn check(
    cluster: &Cluster,
    applied: &Applied,
) -> Result<Option<String>, Diagnostics> {
    let mut problems = Vec::new();
    let mut present = 0;
    let read = |e| apply_error("Cannot Read The Flux Operator", &e);
    for object in &applied.objects {
        let Some(r) = reference(object) else { continue };
        match cluster.get(&r).await.map_err(read)? {
            None => problems.push(format!("{} {} missing", r.kind, r.name)),
            Some(live) => {
                present += 1;
                let live_json = serde_json::to_value(&live).unwrap_or_default();
                // The namespace is shared: the FluxInstance relabels it, which is not drift.
                if r.kind != "Namespace" && !is_subset(object, &live_json) {
                    problems.push(format!("{} {} changed", r.kind, r.name));
                } else if r.kind == "Deployment"
                    && wait::deployment_available(Some(&live)) != WaitOutcome::Done
                {
                    problems.push(format!("{} {} not available", r.kind, r.name));
                }
            }
        }
    }
    for name in &applied.crds {
        match cluster.get(&crd_ref(name)).await.map_err(read)? {
            None => problems.push(format!("CustomResourceDefinition {name} missing")),
            Some(_) => present += 1,
        }
    }
    if present == 0 {
        return Ok(None);
    }
    Ok(Some(if problems.is_empty() {
        HEALTHY.to_owned()
    } else {
        format!("Drifted: {}", problems.join(", "))
    }))
}

pub(crate) fn private_applied(bytes: &[u8]) -> Option<Applied> {
    serde_json::from_slice(bytes).ok()
}
