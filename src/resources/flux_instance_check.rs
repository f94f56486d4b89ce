//! The plan-time checks of `flux_instance`: refusing to create over a FluxInstance it did not
//! create, the hazards of the change (name or namespace the operator ignores, downgrades,
//! `sync` changes), and the server-side dry-run of the object, or the CRD's rules checked
//! locally when the API server cannot be asked. Reads only.
//!
//! Lives in `resources/`: may use `framework`, `flux`, `cluster`, never `provider`.

use crate::flux::hazards::{self, InstanceChange};
use crate::flux::instance::FluxInstance;
use crate::flux::normalize::validate_spec;
use crate::framework::diagnostics::Diagnostics;
use crate::framework::path::AttrPath;
use crate::framework::resource::Context;
use crate::resources::common::{
    ClusterAccess, PlanDryRun, api_field_to_path, apply_error, cluster_if_known, dry_run_at_plan,
};
use crate::resources::flux_instance_convert::model_object;
use crate::resources::flux_instance_live::{
    get_live, instance_ref, operator_namespace, to_dynamic,
};
use crate::resources::flux_instance_model::{InstanceModel, ModelError};
use crate::resources::ownership;

/// The diagnostic of a configuration that does not make a FluxInstance.
pub(crate) fn spec_error(error: &ModelError) -> Diagnostics {
    Diagnostics::from_error("Invalid FluxInstance Spec", format!("{error}."))
}

/// The CRD's rules checked locally, for plans that cannot ask the API server.
fn local_validation(spec: &crate::flux::instance::FluxInstanceSpec) -> Result<(), Diagnostics> {
    let mut out = Diagnostics::new();
    for violation in validate_spec(spec) {
        let detail = format!("{}: {}.", violation.field, violation.message);
        match api_field_to_path(&format!("spec.{}", violation.field)) {
            Some(p) => out.error_at(p, "Invalid FluxInstance Spec", detail),
            None => out.error("Invalid FluxInstance Spec", detail),
        }
    }
    if out.has_errors() { Err(out) } else { Ok(()) }
}

/// Hazards and the server-side dry-run, when the spec and the cluster are known; returns the
/// live object when the cluster could be asked.
pub(crate) async fn check_plan(
    ctx: &mut Context<impl ClusterAccess>,
    planned: &InstanceModel,
    prior: Option<&InstanceModel>,
) -> Result<Option<FluxInstance>, Diagnostics> {
    let desired = match model_object(planned) {
        Ok(object) => object,
        Err(ModelError::Unknown) => return Ok(None),
        Err(e) => return Err(spec_error(&e)),
    };
    let cluster = cluster_if_known(ctx.data()?.as_ref()).await?;
    let namespace = desired.metadata.namespace.clone().unwrap_or_default();
    let name = desired.metadata.name.clone().unwrap_or_default();
    let (live, operator_ns) = match &cluster {
        Some(cluster) => (
            get_live(cluster, &instance_ref(&namespace, &name)).await?,
            operator_namespace(cluster, &namespace).await?,
        ),
        None => (None, None),
    };
    if let Some(cluster) = &cluster
        && prior.is_none()
        && live.is_some()
    {
        ownership::check_existing_at_plan(
            ctx,
            cluster,
            &instance_ref(&namespace, &name),
            "flux_instance",
        )
        .await?;
    }
    // Without a live object (or a cluster), the prior state stands in for it.
    let from_prior = prior.and_then(|p| {
        let mut object = model_object(p).ok()?;
        let revision = p.last_applied_revision.as_known().cloned();
        object.status = Some(crate::flux::instance::FluxInstanceStatus {
            last_applied_revision: revision.filter(|r| !r.is_empty()),
            ..Default::default()
        });
        Some(object)
    });
    let change = InstanceChange {
        name: &name,
        namespace: &namespace,
        operator_namespace: operator_ns.as_deref(),
        desired: &desired.spec,
        live: live.as_ref().or(from_prior.as_ref()),
    };
    let mut errors = Diagnostics::new();
    for hazard in hazards::instance_hazards(&change) {
        let path = api_field_to_path(&hazard.field);
        let detail = format!("{}.", hazard.detail);
        match (hazard.severity, path) {
            (hazards::Severity::Error, Some(p)) => errors.error_at(p, hazard.summary, detail),
            (hazards::Severity::Error, None) => errors.error(hazard.summary, detail),
            (hazards::Severity::Warning, Some(p)) => ctx.warn_at(p, hazard.summary, detail),
            (hazards::Severity::Warning, None) => ctx.warn(hazard.summary, detail),
        }
    }
    if errors.has_errors() {
        return Err(errors);
    }
    // The API server is the authority when it can be asked; otherwise the same rules locally.
    let Some(cluster) = cluster else {
        return local_validation(&desired.spec).map(|()| None);
    };
    match dry_run_at_plan(&cluster, &to_dynamic(&desired)?).await {
        Ok(PlanDryRun::Accepted) => Ok(live),
        Ok(PlanDryRun::NotServed) => local_validation(&desired.spec).map(|()| live),
        Ok(skipped) => {
            let also = ", so the plan checked it against the CRD's rules only";
            if let Some((summary, detail)) = skipped.warning("FluxInstance", &name, also) {
                ctx.warn_at(AttrPath::attr("namespace"), summary, detail);
            }
            local_validation(&desired.spec).map(|()| live)
        }
        Err(e) => Err(apply_error("FluxInstance Rejected By The API Server", &e)),
    }
}
