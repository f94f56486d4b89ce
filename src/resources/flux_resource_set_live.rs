//! What `flux_resource_set` reads and derives from the cluster: the ResourceSet's reference and
//! live object, the values plan computes, the inventory status, the dry-run and the
//! refusal to create over an existing object at plan, and the state after apply.

#[path = "flux_resource_set_refs.rs"]
mod refs;

use kube::api::DynamicObject;

use crate::cluster::objects::{Cluster, ObjectRef};
use crate::flux::instance::API_VERSION;
use crate::flux::resource_set::{KIND, ResourceSet};
use crate::framework::diagnostics::Diagnostics;
use crate::framework::model::{Value, to_raw};
use crate::framework::path::{AttrPath, PathStep};
use crate::framework::plan::attributes_changed;
use crate::framework::resource::Context;
use crate::resources::common::{
    self, ClusterAccess, apply_error, cluster_if_known, dry_run_for_plan,
};
use crate::resources::flux_resource_set::model::{
    DESIRED_ATTRIBUTES, HEALTHY, ResourceSetModel, SpecError,
};
use crate::resources::flux_resource_set::read::set_status;
use crate::resources::flux_resource_set::spec::model_object;
use crate::resources::ownership;
use refs::reference_warnings;

/// The ResourceSet's reference.
pub(super) fn resource_set_ref(namespace: &str, name: &str) -> ObjectRef {
    ObjectRef::new(API_VERSION, KIND, Some(namespace), name)
}

pub(super) fn model_ref(model: &ResourceSetModel) -> ObjectRef {
    resource_set_ref(
        model.namespace.as_known().map_or("", String::as_str),
        model.name.as_known().map_or("", String::as_str),
    )
}

/// Diagnostics whose paths name API fields (`depends_on`) renamed to our attributes.
pub(super) fn renamed(mut diagnostics: Diagnostics) -> Diagnostics {
    for d in &mut diagnostics.0 {
        if let Some(AttrPath(steps)) = &mut d.path
            && let Some(PathStep::Attr(first)) = steps.first_mut()
            && first == "depends_on"
        {
            *first = "dependencies".to_owned();
        }
    }
    diagnostics
}

pub(super) fn spec_error(error: &SpecError) -> Diagnostics {
    match error {
        SpecError::Shape { path, message } => {
            Diagnostics::from_error_at(path.clone(), "Invalid ResourceSet", format!("{message}."))
        }
        SpecError::Unknown => Diagnostics::from_error("Invalid ResourceSet", format!("{error}.")),
    }
}

/// Whether what we write to the object (spec and annotations) differs between two models.
pub(super) fn desired_changed(prior: &ResourceSetModel, planned: &ResourceSetModel) -> bool {
    let (Ok(a), Ok(b)) = (to_raw(prior), to_raw(planned)) else {
        return true;
    };
    attributes_changed(
        &crate::resources::flux_resource_set::model::schema(),
        &a,
        &b,
        &DESIRED_ATTRIBUTES,
    )
}

pub(super) fn to_dynamic(object: &ResourceSet) -> Result<DynamicObject, Diagnostics> {
    object
        .to_json()
        .map_err(|e| e.to_string())
        .and_then(|json| serde_json::from_value(json).map_err(|e| e.to_string()))
        .map_err(|e| Diagnostics::from_error("Provider Bug: Cannot Encode ResourceSet", e))
}

/// How a read reaches the cluster: `Live` (one GET per object) after an apply, where other
/// controllers are expected to change objects; `Shared` in a refresh, where the refreshes of one
/// Terraform operation share one LIST per kind and namespace ([`Cluster::get_shared`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Reads {
    Live,
    Shared,
}

/// Reads the live ResourceSet; `None` when it, its namespace or its CRD is gone.
pub(super) async fn get_live(
    cluster: &Cluster,
    object: &ObjectRef,
    reads: Reads,
) -> Result<Option<ResourceSet>, Diagnostics> {
    let found = match reads {
        Reads::Live => cluster.get(object).await,
        Reads::Shared => cluster.get_shared(object).await,
    }
    .map_err(|e| apply_error("Cannot Read The ResourceSet", &e))?;
    found
        .map(|o| {
            serde_json::to_value(&o)
                .map_err(|e| e.to_string())
                .and_then(|json| ResourceSet::from_json(json).map_err(|e| e.to_string()))
                .map_err(|e| Diagnostics::from_error("Unreadable ResourceSet", format!("{e}.")))
        })
        .transpose()
}

/// The planned computed values and the pending-reconcile warning.
pub(super) fn plan_computed(
    ctx: &mut Context<impl ClusterAccess>,
    planned: &mut ResourceSetModel,
    prior: Option<&ResourceSetModel>,
) {
    planned.id = match (planned.namespace.as_known(), planned.name.as_known()) {
        (Some(ns), Some(name)) => format!("{ns}/{name}").into(),
        _ => Value::Unknown,
    };
    let Some(prior) = prior else {
        return;
    };
    let suspended = planned.suspend.as_known() == Some(&true);
    let unknown_status = |planned: &mut ResourceSetModel| {
        planned.ready = if suspended {
            Value::Unknown
        } else {
            true.into()
        };
        planned.last_applied_revision = Value::Unknown;
        planned.inventory = Value::Unknown;
    };
    if desired_changed(prior, planned) {
        unknown_status(planned);
        planned.inventory_status = HEALTHY.to_owned().into();
    } else if !suspended && needs_reconcile(prior) {
        let what = match prior.inventory_status.as_known() {
            Some(status) if status != HEALTHY => status.clone(),
            _ => "the ResourceSet is not Ready".to_owned(),
        };
        ctx.warn_at(
            AttrPath::attr("inventory_status"),
            "ResourceSet Will Be Reconciled",
            format!(
                "The generated objects are not healthy ({what}). Apply will ask the Flux \
                 Operator to reconcile the ResourceSet and wait until it is Ready again."
            ),
        );
        unknown_status(planned);
        planned.inventory_status = HEALTHY.to_owned().into();
    }
}

/// Whether the last read found the ResourceSet not Ready or its generated objects drifted.
pub(super) fn needs_reconcile(prior: &ResourceSetModel) -> bool {
    prior.ready.as_known() == Some(&false)
        || prior
            .inventory_status
            .as_known()
            .is_some_and(|s| s != HEALTHY)
}

/// `Healthy`, or which inventory objects are missing or unhealthy (suspended: not checked).
pub(super) async fn inventory_status(
    cluster: &Cluster,
    live: &ResourceSet,
    reads: Reads,
) -> Result<String, Diagnostics> {
    if live.reconcile_annotations().is_disabled() {
        return Ok(HEALTHY.to_owned());
    }
    let refs: Vec<ObjectRef> = live
        .status
        .as_ref()
        .and_then(|s| s.inventory.as_ref())
        .and_then(|i| i.object_refs().ok())
        .unwrap_or_default()
        .iter()
        .map(common::cluster_ref)
        .collect();
    let report = match reads {
        Reads::Live => cluster.health(&refs).await,
        Reads::Shared => cluster.health_shared(&refs).await,
    }
    .map_err(|e| {
        Diagnostics::from_error(
            "Cannot Check The Generated Objects",
            format!("{e}. Check the provider's access to the generated objects' kinds."),
        )
    })?;
    let name = |o: &ObjectRef| match &o.namespace {
        Some(ns) => format!("{} {ns}/{}", o.kind, o.name),
        None => format!("{} {}", o.kind, o.name),
    };
    let problems: Vec<String> = report
        .missing
        .iter()
        .map(|o| format!("{} missing", name(o)))
        .chain(
            report
                .unhealthy
                .iter()
                .map(|(o, why)| format!("{} {why}", name(o))),
        )
        .collect();
    Ok(if problems.is_empty() {
        HEALTHY.to_owned()
    } else {
        format!("Drifted: {}", problems.join(", "))
    })
}

/// The server-side dry-run, when the spec and the cluster are known. A CRD not installed yet or
/// a namespace that does not exist yet (the operator and its namespace are installed in the same
/// apply) is no error: the namespace case warns that the dry-run was skipped.
pub(super) async fn dry_run(
    ctx: &mut Context<impl ClusterAccess>,
    planned: &ResourceSetModel,
) -> Result<(), Diagnostics> {
    let object = match model_object(planned) {
        Ok(object) => object,
        Err(SpecError::Unknown) => return Ok(()),
        Err(e) => return Err(spec_error(&e)),
    };
    let object = to_dynamic(&object)?;
    if let Some(cluster) = dry_run_for_plan(ctx, &object, "ResourceSet")
        .await
        .map_err(renamed)?
    {
        for (path, summary, detail) in reference_warnings(&cluster, planned).await {
            ctx.warn_at(path, summary, detail);
        }
    }
    Ok(())
}

/// At plan, when the name and the cluster are known: the object must not exist yet.
pub(super) async fn refuse_existing_at_plan(
    ctx: &mut Context<impl ClusterAccess>,
    planned: &ResourceSetModel,
) -> Result<(), Diagnostics> {
    if !(planned.namespace.is_known() && planned.name.is_known()) {
        return Ok(());
    }
    let Some(cluster) = cluster_if_known(ctx.data()?.as_ref()).await? else {
        return Ok(());
    };
    ownership::check_existing_at_plan(ctx, &cluster, &model_ref(planned), "flux_resource_set").await
}

/// The state after apply: the planned values, with the computed ones read back.
pub(super) async fn state_after(cluster: &Cluster, planned: &ResourceSetModel) -> ResourceSetModel {
    let mut state = planned.clone();
    let mut fresh = ResourceSetModel::default();
    if let Ok(Some(live)) = get_live(cluster, &model_ref(planned), Reads::Live).await {
        set_status(&mut fresh, &live);
        if !state.inventory_status.is_known() {
            fresh.inventory_status = inventory_status(cluster, &live, Reads::Live)
                .await
                .ok()
                .into();
        }
    }
    if !state.inventory_status.is_known() {
        state.inventory_status = fresh.inventory_status.clone().or(String::new().into());
    }
    if !state.ready.is_known() {
        state.ready = fresh.ready.or(false.into());
    }
    if !state.last_applied_revision.is_known() {
        state.last_applied_revision = fresh.last_applied_revision.or(String::new().into());
    }
    if !state.inventory.is_known() {
        state.inventory = fresh.inventory.or(Vec::new().into());
    }
    state
}
