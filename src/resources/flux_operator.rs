//! The `flux_operator` resource: the Flux Operator installed from its release manifests (by
//! version, URL or inline YAML) with the settings users change through its Helm values. Apply
//! writes the CRDs first and waits until they are Established, then the rest in order, then
//! waits until the Deployment is Available. The applied objects (CRDs by name) are kept in
//! private state, so Read can tell when one was deleted or changed, which plans as a pending
//! re-apply. Destroy keeps the CRDs and the namespace unless `delete_crds = true`. An operator
//! already in the namespace is inspected at plan and before apply's first write
//! ([`super::flux_operator_existing`]): adopted when `flux-operator install` made it, refused
//! when Helm did.
//!
//! Lives in `resources/`: may use `framework`, `flux`, `cluster`, never `provider`.

use std::collections::BTreeSet;
use std::time::Duration;

use async_trait::async_trait;
use kube::api::PropagationPolicy;

use crate::cluster::objects::ObjectRef;
use crate::cluster::wait::{self, WaitOutcome};
use crate::flux::operator as op;
use crate::flux::operator_shape::Installer;
use crate::framework::diagnostics::Diagnostics;
use crate::framework::model::{Value, to_raw};
use crate::framework::path::AttrPath;
use crate::framework::plan::attributes_changed;
use crate::framework::resource::{ApplyError, Context, PlanChange, Planned, Resource};
use crate::framework::schema::Schema;
use crate::resources::common::{
    self, ClusterAccess, Operation, apply_error, cluster_for_apply, cluster_if_known,
};
use crate::resources::flux_operator_existing as existing;
use crate::resources::flux_operator_install::{
    Applied, HEALTHY, check, install_tracked, load, private_applied, reference,
};
pub use crate::resources::flux_operator_model::{
    OperatorModel, ResourcesModel, TolerationModel, schema,
};
use crate::resources::flux_operator_model::{namespace_of, read_chart_settings};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// The attributes whose change means re-applying the manifests.
const INPUTS: [&str; 17] = [
    "version",
    "manifests_url",
    "manifests",
    "namespace",
    "env",
    "resources",
    "tolerations",
    "node_selector",
    "image_repository",
    "replicas",
    "affinity",
    "priority_class_name",
    "image_pull_secrets",
    "log_level",
    "concurrent",
    "web_ui",
    "delete_crds",
];

/// The attributes that decide which operator version is installed.
const SOURCE: [&str; 3] = ["version", "manifests_url", "manifests"];

fn planned_version(model: &OperatorModel) -> Value<String> {
    match model.version.as_known() {
        Some(v) => op::normalize_version(v).map_or(Value::Unknown, Value::Known),
        None => Value::Unknown,
    }
}

async fn apply_op(
    ctx: &mut Context<impl ClusterAccess>,
    planned: OperatorModel,
    operation: Operation,
) -> Result<OperatorModel, ApplyError<OperatorModel>> {
    let cluster = cluster_for_apply(ctx.data()?.as_ref()).await?;
    let timeout = common::timeout(&planned.timeouts, operation, DEFAULT_TIMEOUT)?;
    let previous = private_applied(&ctx.private);
    let mut applied = Applied::default();
    let mut desired = Vec::new();
    let installed = install_tracked(ctx, &cluster, &planned, timeout, &mut applied, &mut desired);
    if let Err(diagnostics) = installed.await {
        if applied.objects.is_empty() && applied.crds.is_empty() {
            return Err(diagnostics.into());
        }
        // Written but not finished (a wait failed or was interrupted, or a later object was
        // refused): the state records it as not healthy, so the next plan re-applies and waits.
        let mut state = planned;
        state.id = Value::Known(namespace_of(&state));
        state.operator_version =
            Value::Known(op::operator_version(&applied.objects).unwrap_or_default());
        let what = diagnostics
            .iter()
            .next()
            .map_or_else(String::new, |d| d.summary.clone());
        state.installation_status = Value::Known(format!("Incomplete: {what}"));
        // What this apply wrote; what it did not get to write yet as the configuration wants
        // it (so that the next check reports it missing or changed, and the next plan applies
        // again even when the failed step's object still holds its old content); and what an
        // earlier apply wrote that the new manifests no longer contain (removed on success).
        let written: BTreeSet<ObjectRef> = applied.objects.iter().filter_map(reference).collect();
        let wanted: BTreeSet<ObjectRef> = desired.iter().filter_map(reference).collect();
        for object in desired {
            if reference(&object).is_some_and(|r| !written.contains(&r)) {
                applied.objects.push(object);
            }
        }
        if let Some(previous) = previous {
            for object in previous.objects {
                if reference(&object).is_some_and(|r| !wanted.contains(&r) && !written.contains(&r))
                {
                    applied.objects.push(object);
                }
            }
        }
        ctx.private = serde_json::to_vec(&applied).unwrap_or_default();
        return Err(ApplyError {
            diagnostics,
            partial_state: Some(state),
        });
    }
    // Objects the new manifests no longer contain are removed (never the namespace or CRDs).
    if let Some(previous) = previous {
        let now: BTreeSet<ObjectRef> = applied.objects.iter().filter_map(reference).collect();
        for old in previous.objects.iter().filter_map(reference) {
            if !now.contains(&old) && old.kind != "Namespace" {
                cluster
                    .delete(&old, PropagationPolicy::Background)
                    .await
                    .map_err(|e| apply_error("Cannot Remove A Stale Operator Object", &e))?;
            }
        }
    }
    let mut state = planned;
    state.id = Value::Known(namespace_of(&state));
    state.operator_version =
        Value::Known(op::operator_version(&applied.objects).unwrap_or_default());
    state.installation_status = Value::Known(HEALTHY.into());
    ctx.private = serde_json::to_vec(&applied).unwrap_or_default();
    Ok(state)
}

/// Refuses, when the cluster and namespace are known, a plan that would install next to an
/// operator installed by Helm or under another name. Reads only.
async fn refuse_foreign_at_plan(
    ctx: &Context<impl ClusterAccess>,
    planned: &OperatorModel,
) -> Result<(), Diagnostics> {
    if planned.namespace.is_unknown() {
        return Ok(());
    }
    match cluster_if_known(ctx.data()?.as_ref()).await? {
        Some(cluster) => {
            existing::refuse_foreign(&cluster, &namespace_of(planned), Installer::Operator).await
        }
        None => Ok(()),
    }
}

/// The `flux_operator` resource.
#[derive(Clone, Copy, Debug, Default)]
pub struct FluxOperatorResource;

#[async_trait]
impl<D: ClusterAccess> Resource<D> for FluxOperatorResource {
    type Model = OperatorModel;

    fn type_name(&self) -> &'static str {
        "flux_operator"
    }

    fn schema(&self) -> Schema {
        schema()
    }

    async fn validate(
        &self,
        _ctx: &mut Context<D>,
        config: OperatorModel,
    ) -> Result<(), Diagnostics> {
        let out = crate::resources::validation_operator::operator_resource(&config);
        if out.has_errors() { Err(out) } else { Ok(()) }
    }

    async fn plan(
        &self,
        ctx: &mut Context<D>,
        change: PlanChange<OperatorModel>,
    ) -> Result<Planned<OperatorModel>, Diagnostics> {
        let mut planned = change.proposed;
        planned.id = planned.namespace.clone();
        let Some(prior) = change.prior else {
            planned.operator_version = planned_version(&planned);
            refuse_foreign_at_plan(ctx, &planned).await?;
            return Ok(Planned::new(planned));
        };
        let (Ok(a), Ok(b)) = (to_raw(&prior), to_raw(&planned)) else {
            return Ok(Planned::new(planned));
        };
        let changed = attributes_changed(&schema(), &a, &b, &INPUTS);
        let source_changed = attributes_changed(&schema(), &a, &b, &SOURCE);
        if changed {
            // Settings of the Deployment alone keep the installed version.
            planned.operator_version = if source_changed {
                planned_version(&planned)
            } else {
                prior.operator_version.clone()
            };
            planned.installation_status = Value::Known(HEALTHY.into());
        } else if let Some(status) = prior
            .installation_status
            .as_known()
            .filter(|s| *s != HEALTHY)
        {
            ctx.warn_at(AttrPath::attr("installation_status"), "Flux Operator Will Be Re-applied", format!("{status}. Apply re-applies the operator's manifests and waits until it is Available."));
            planned.installation_status = Value::Known(HEALTHY.into());
            // Re-applying the same manifests installs the version they name.
            planned.operator_version = private_applied(&ctx.private)
                .and_then(|a| op::operator_version(&a.objects))
                .map_or_else(|| planned_version(&planned), Value::Known);
        }
        if planned != prior {
            refuse_foreign_at_plan(ctx, &planned).await?;
        }
        let replace = if prior.namespace != planned.namespace {
            vec![AttrPath::attr("namespace")]
        } else {
            Vec::new()
        };
        Ok(Planned {
            state: planned,
            requires_replace: replace,
        })
    }

    async fn create(
        &self,
        ctx: &mut Context<D>,
        planned: OperatorModel,
        _config: OperatorModel,
    ) -> Result<OperatorModel, ApplyError<OperatorModel>> {
        apply_op(ctx, planned, Operation::Create).await
    }

    async fn read(
        &self,
        ctx: &mut Context<D>,
        state: OperatorModel,
    ) -> Result<Option<OperatorModel>, Diagnostics> {
        let Some(cluster) = cluster_if_known(ctx.data()?.as_ref()).await? else {
            return Ok(Some(state));
        };
        let namespace = namespace_of(&state);
        let mut state = state;
        state.id = Value::Known(namespace.clone());
        let deployment = common::cluster_ref(&op::deployment_ref(&namespace));
        let live = cluster
            .get(&deployment)
            .await
            .map_err(|e| apply_error("Cannot Read The Flux Operator", &e))?;
        let imported = private_applied(&ctx.private).is_none();
        let status = match private_applied(&ctx.private) {
            Some(applied) => match check(&cluster, &applied).await? {
                None => return Ok(None),
                Some(status) => status,
            },
            None => match &live {
                None => return Ok(None),
                Some(d) if wait::deployment_available(Some(d)) == WaitOutcome::Done => {
                    HEALTHY.to_owned()
                }
                Some(_) => format!("Drifted: Deployment {} not available", op::DEPLOYMENT_NAME),
            },
        };
        if let Some(d) = &live {
            let json = serde_json::to_value(d).unwrap_or_default();
            read_chart_settings(&mut state, &json, imported);
            if let Some(version) = op::operator_version(&[json]) {
                if state.version.is_null()
                    && state.manifests.is_null()
                    && state.manifests_url.is_null()
                {
                    state.version = Value::Known(version.clone());
                }
                state.operator_version = Value::Known(version);
            }
        }
        state.operator_version = state.operator_version.or(Value::Known(String::new()));
        state.installation_status = Value::Known(status);
        state.delete_crds = state.delete_crds.or(Value::Known(false));
        Ok(Some(state))
    }

    async fn update(
        &self,
        ctx: &mut Context<D>,
        _prior: OperatorModel,
        planned: OperatorModel,
        _config: OperatorModel,
    ) -> Result<OperatorModel, ApplyError<OperatorModel>> {
        apply_op(ctx, planned, Operation::Update).await
    }

    async fn delete(
        &self,
        ctx: &mut Context<D>,
        prior: OperatorModel,
    ) -> Result<(), ApplyError<OperatorModel>> {
        let cluster = cluster_for_apply(ctx.data()?.as_ref()).await?;
        let applied = match private_applied(&ctx.private) {
            Some(applied) => applied,
            None => Applied::from_manifests(load(&prior).await?),
        };
        let mut order = applied.objects.clone();
        if prior.delete_crds.as_known() == Some(&true) {
            order.extend(applied.crds.iter().map(|name| serde_json::json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": name}})));
        }
        let refs = op::destroy_order(&order, true)
            .map_err(|e| Diagnostics::from_error("Invalid Operator Manifests", format!("{e}.")))?;
        for r in refs {
            cluster
                .delete(&common::cluster_ref(&r), PropagationPolicy::Background)
                .await
                .map_err(|e| apply_error("Flux Operator Delete Failed", &e))?;
        }
        Ok(())
    }

    async fn import(&self, _ctx: &mut Context<D>, id: &str) -> Result<OperatorModel, Diagnostics> {
        if id.is_empty() || id.contains('/') {
            return Err(Diagnostics::from_error(
                "Invalid Import ID",
                format!("Expected the operator's namespace, e.g. \"flux-system\"; got {id:?}."),
            ));
        }
        Ok(OperatorModel {
            id: Value::Known(id.into()),
            namespace: Value::Known(id.into()),
            delete_crds: Value::Known(false),
            ..OperatorModel::default()
        })
    }
}
