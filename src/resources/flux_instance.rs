//! The `flux_instance` resource: the FluxInstance `flux` and, through the Flux Operator, the
//! Flux installation. Plan normalises, diffs field by field, turns installation drift into a
//! pending reconcile (or, when the operator has already failed this configuration, into a
//! warning quoting its verdict), refuses or warns about hazards and validates with a
//! server-side dry-run ([`super::flux_instance_check`]); apply is a forced server-side apply
//! followed by a watch until Ready; destroy follows the deletion policy.
//!
//! Lives in `resources/`: may use `framework`, `flux`, `cluster`, never `provider`.

use std::time::Duration;

use async_trait::async_trait;
use kube::api::DynamicObject;

use crate::cluster::objects::{Cluster, ObjectRef};
use crate::framework::diagnostics::Diagnostics;
use crate::framework::model::{Value, to_raw};
use crate::framework::path::AttrPath;
use crate::framework::plan::attributes_changed;
use crate::framework::resource::{ApplyError, Context, PlanChange, Planned, Resource};
use crate::framework::schema::Schema;
use crate::resources::common::{
    self, ClusterAccess, DeletionPolicy, Operation, cluster_for_apply, cluster_if_known,
};
use crate::resources::flux_instance_check::{check_plan, spec_error};
use crate::resources::flux_instance_convert::{live_model, model_object, validate_enums};
use crate::resources::flux_instance_live::{
    get_live, model_ref, reconcile_failure, state_after, to_dynamic,
};
pub use crate::resources::flux_instance_live::{installation_status, instance_ref};
use crate::resources::flux_instance_model::{HEALTHY, InstanceModel, SPEC_ATTRIBUTES, schema};
use crate::resources::ownership;
use crate::resources::reconciled::{self, Reconciled};

/// Default for every `timeouts` value.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// The attributes whose change means a new object generation or annotations to apply.
const DESIRED_EXTRA: [&str; 4] = [
    "reconcile_every",
    "reconcile_artifact_every",
    "reconcile_timeout",
    "suspend",
];

/// The `flux_instance` resource.
#[derive(Clone, Copy, Debug, Default)]
pub struct FluxInstanceResource;

/// Whether what we write to the object differs between two models (spec and annotations).
fn desired_changed(prior: &InstanceModel, planned: &InstanceModel) -> bool {
    let (Ok(a), Ok(b)) = (to_raw(prior), to_raw(planned)) else {
        return true;
    };
    let names: Vec<&str> = SPEC_ATTRIBUTES
        .iter()
        .chain(DESIRED_EXTRA.iter())
        .copied()
        .collect();
    attributes_changed(&schema(), &a, &b, &names)
}

/// The planned state with the computed values it can know, and the drift warning.
fn plan_computed(
    ctx: &mut Context<impl ClusterAccess>,
    mut planned: InstanceModel,
    prior: Option<&InstanceModel>,
    failure: Option<String>,
) -> InstanceModel {
    planned.id = match (planned.namespace.as_known(), planned.name.as_known()) {
        (Some(ns), Some(name)) => Value::Known(format!("{ns}/{name}")),
        _ => Value::Unknown,
    };
    let Some(prior) = prior else {
        return planned;
    };
    let suspended = planned.suspend.as_known() == Some(&true);
    let drifted = prior
        .installation_status
        .as_known()
        .is_some_and(|s| s != HEALTHY);
    let not_ready = prior.ready.as_known() == Some(&false);
    if desired_changed(prior, &planned) {
        planned.ready = if suspended {
            Value::Unknown
        } else {
            Value::Known(true)
        };
        planned.flux_version = Value::Unknown;
        planned.last_applied_revision = Value::Unknown;
        planned.component_images = Value::Unknown;
        planned.inventory_entries = Value::Unknown;
        planned.installation_status = Value::Known(HEALTHY.to_owned());
    } else if !suspended
        && !drifted
        && not_ready
        && let Some(failure) = failure
    {
        // The operator already reconciled this very spec and failed: a reconcile request would
        // only repeat that. Nothing is planned; the warning says what is wrong.
        failing_warning(ctx, &planned, &failure);
    } else if !suspended && (drifted || not_ready) {
        let what = prior
            .installation_status
            .as_known()
            .cloned()
            .unwrap_or_default();
        ctx.warn_at(
            AttrPath::attr("installation_status"),
            "Flux Installation Will Be Reconciled",
            format!(
                "The installation is not healthy ({}). Apply will ask the Flux Operator to \
                 reconcile the FluxInstance and wait until it is Ready again.",
                if drifted {
                    what
                } else {
                    "the FluxInstance is not Ready".to_owned()
                }
            ),
        );
        planned.ready = Value::Known(true);
        // The same spec renders the same revision, images and inventory: they keep their values.
        planned.installation_status = Value::Known(HEALTHY.to_owned());
    }
    planned
}

/// The plan's warning for an installation the operator fails to reconcile with the current
/// configuration, quoting its verdict, at `sync` when the verdict names the sync objects.
fn failing_warning(ctx: &mut Context<impl ClusterAccess>, planned: &InstanceModel, failure: &str) {
    let names_sync = [
        "GitRepository/",
        "OCIRepository/",
        "Bucket/",
        "Kustomization/",
    ]
    .iter()
    .any(|kind| failure.contains(kind));
    let (path, advice) = if names_sync && !planned.sync.is_null() {
        (
            AttrPath::attr("sync"),
            "The object it names is the sync source or its Kustomization: check `sync.url`, \
             `sync.ref`, `sync.path` and `sync.pull_secret`, and that the repository is \
             reachable from the cluster and has that path",
        )
    } else {
        (
            AttrPath::attr("ready"),
            "Fix what it names (the configuration or the cluster)",
        )
    };
    ctx.warn_at(
        path,
        "Flux Installation Failing",
        format!(
            "The Flux Operator's last reconcile of this configuration failed: {}.\n\n\
             {advice}. Applying the same configuration again would change nothing, \
             so the plan proposes no reconcile; the operator retries on its own, and the next \
             refresh records its recovery.",
            failure.trim_end_matches('.')
        ),
    );
}

#[async_trait]
impl Reconciled for InstanceModel {
    const KIND: &'static str = "FluxInstance";
    const TYPE_NAME: &'static str = "flux_instance";

    fn timeout(&self, operation: Operation) -> Result<Duration, Diagnostics> {
        common::timeout(&self.timeouts, operation, DEFAULT_TIMEOUT)
    }

    fn object(&self) -> Result<DynamicObject, Diagnostics> {
        to_dynamic(&model_object(self).map_err(|e| spec_error(&e))?)
    }

    fn reference(&self) -> ObjectRef {
        model_ref(self)
    }

    /// Nothing to write, but the last read found the installation drifted or not Ready.
    fn wants_reconcile(prior: &Self, planned: &Self) -> bool {
        planned.suspend.as_known() != Some(&true)
            && !desired_changed(prior, planned)
            && (prior
                .installation_status
                .as_known()
                .is_some_and(|s| s != HEALTHY)
                || prior.ready.as_known() == Some(&false))
    }

    async fn state_after(cluster: &Cluster, planned: &Self) -> Self {
        state_after(cluster, planned).await
    }

    fn mark_not_ready(&mut self) {
        self.ready = Value::Known(false);
    }
}

#[async_trait]
impl<D: ClusterAccess> Resource<D> for FluxInstanceResource {
    type Model = InstanceModel;

    fn type_name(&self) -> &'static str {
        "flux_instance"
    }

    fn schema(&self) -> Schema {
        schema()
    }

    async fn validate(
        &self,
        _ctx: &mut Context<D>,
        config: InstanceModel,
    ) -> Result<(), Diagnostics> {
        let mut out = validate_enums(&config);
        out.extend(crate::resources::validation::instance(&config));
        if out.has_errors() { Err(out) } else { Ok(()) }
    }

    async fn plan(
        &self,
        ctx: &mut Context<D>,
        change: PlanChange<InstanceModel>,
    ) -> Result<Planned<InstanceModel>, Diagnostics> {
        if change.prior.is_some() {
            ownership::mark_managed(ctx);
        }
        let live = check_plan(ctx, &change.proposed, change.prior.as_ref()).await?;
        let failure = reconcile_failure(live.as_ref(), ownership::recorded_failure(ctx));
        let planned = plan_computed(ctx, change.proposed, change.prior.as_ref(), failure);
        let replace = match &change.prior {
            Some(prior) if prior.namespace != planned.namespace || prior.name != planned.name => {
                vec![AttrPath::attr("namespace"), AttrPath::attr("name")]
            }
            _ => Vec::new(),
        };
        Ok(Planned {
            state: planned,
            requires_replace: replace,
        })
    }

    async fn create(
        &self,
        ctx: &mut Context<D>,
        planned: InstanceModel,
        _config: InstanceModel,
    ) -> Result<InstanceModel, ApplyError<InstanceModel>> {
        reconciled::apply_and_wait(ctx, None, planned, Operation::Create).await
    }

    async fn read(
        &self,
        ctx: &mut Context<D>,
        state: InstanceModel,
    ) -> Result<Option<InstanceModel>, Diagnostics> {
        let Some(cluster) = cluster_if_known(ctx.data()?.as_ref()).await? else {
            return Ok(Some(state));
        };
        let Some(live) = get_live(&cluster, &model_ref(&state)).await? else {
            return Ok(None);
        };
        let status = installation_status(&cluster, &live).await?;
        live_model(&live, &state, status).map(Some)
    }

    async fn update(
        &self,
        ctx: &mut Context<D>,
        prior: InstanceModel,
        planned: InstanceModel,
        _config: InstanceModel,
    ) -> Result<InstanceModel, ApplyError<InstanceModel>> {
        reconciled::apply_and_wait(ctx, Some(&prior), planned, Operation::Update).await
    }

    async fn delete(
        &self,
        ctx: &mut Context<D>,
        prior: InstanceModel,
    ) -> Result<(), ApplyError<InstanceModel>> {
        let cluster = cluster_for_apply(ctx.data()?.as_ref()).await?;
        let timeout = common::timeout(&prior.timeouts, Operation::Delete, DEFAULT_TIMEOUT)?;
        let policy = prior
            .deletion_policy
            .as_known()
            .and_then(|p| DeletionPolicy::parse(p))
            .unwrap_or(DeletionPolicy::Uninstall);
        let cancel = ctx.cancellation().clone();
        let mut warnings = Diagnostics::new();
        let result = common::delete_reconciled(
            &cluster,
            &model_ref(&prior),
            policy,
            timeout,
            &cancel,
            &mut warnings,
        )
        .await;
        ctx.diagnostics.extend(warnings);
        result.map_err(ApplyError::from)
    }

    async fn import(&self, _ctx: &mut Context<D>, id: &str) -> Result<InstanceModel, Diagnostics> {
        let Some((namespace, name)) = id
            .split_once('/')
            .filter(|(ns, n)| !ns.is_empty() && !n.is_empty())
        else {
            return Err(Diagnostics::from_error(
                "Invalid Import ID",
                format!("Expected \"<namespace>/flux\", e.g. \"flux-system/flux\"; got {id:?}."),
            ));
        };
        Ok(InstanceModel {
            id: Value::Known(id.to_owned()),
            name: Value::Known(name.to_owned()),
            namespace: Value::Known(namespace.to_owned()),
            deletion_policy: Value::Known("uninstall".to_owned()),
            ..InstanceModel::default()
        })
    }
}

#[cfg(test)]
#[path = "flux_instance_tests.rs"]
mod tests;
