//! The `flux_resource_set` resource: a Flux Operator `ResourceSet`. Plan keeps equivalent open
//! values (templates, inputs, resources) in their prior spelling, checks the API's rules with
//! diagnostics naming the attributes, turns a not-ready ResourceSet into a pending reconcile and
//! validates with a server-side dry-run; apply is a forced server-side apply followed by a watch
//! until Ready (waiting through `DependencyNotReady` until the timeout); destroy follows the
//! deletion policy. The apply/wait/delete machinery is [`crate::resources::common`]'s, shared
//! with `flux_instance`.
//!
//! Lives in `resources/`: may use `framework`, `flux`, `cluster`, never `provider`.

#[path = "flux_resource_set_model.rs"]
pub mod model;
#[path = "flux_resource_set_read.rs"]
pub mod read;
#[path = "flux_resource_set_spec.rs"]
pub mod spec;

use std::time::Duration;

use async_trait::async_trait;
use kube::api::DynamicObject;

use crate::cluster::objects::{Cluster, ObjectRef};
use crate::framework::diagnostics::Diagnostics;
use crate::framework::path::AttrPath;
use crate::framework::resource::{ApplyError, Context, PlanChange, Planned, Resource};
use crate::framework::schema::Schema;
use crate::resources::common::{
    self, ClusterAccess, DeletionPolicy, Operation, cluster_for_apply, cluster_if_known,
};
use crate::resources::ownership;
use crate::resources::reconciled::{self, Reconciled};
use model::ResourceSetModel;
use read::{keep_equivalent_open_values, live_model};
use spec::{model_object, nested_unknown, validate_config};

/// Default for every `timeouts` value.
use crate::resources::flux_resource_set_live::{
    Reads, desired_changed, dry_run, get_live, inventory_status, model_ref, needs_reconcile,
    plan_computed, refuse_existing_at_plan, renamed, spec_error, state_after, to_dynamic,
};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// `Ready=False` reasons apply waits through: the operator re-checks dependencies by itself.
const KEEP_WAITING: [&str; 1] = ["DependencyNotReady"];

/// The `flux_resource_set` resource.
#[derive(Clone, Copy, Debug, Default)]
pub struct FluxResourceSetResource;
#[async_trait]
impl Reconciled for ResourceSetModel {
    const KIND: &'static str = "ResourceSet";
    const TYPE_NAME: &'static str = "flux_resource_set";
    const KEEP_WAITING: &'static [&'static str] = &KEEP_WAITING;

    fn timeout(&self, operation: Operation) -> Result<Duration, Diagnostics> {
        common::timeout(&self.timeouts, operation, DEFAULT_TIMEOUT)
    }

    fn object(&self) -> Result<DynamicObject, Diagnostics> {
        to_dynamic(&model_object(self).map_err(|e| spec_error(&e))?)
    }

    fn reference(&self) -> ObjectRef {
        model_ref(self)
    }

    fn apply_diagnostics(diagnostics: Diagnostics) -> Diagnostics {
        renamed(diagnostics)
    }

    /// Nothing to write, but the last read found the set not Ready or its objects drifted.
    fn wants_reconcile(prior: &Self, planned: &Self) -> bool {
        planned.suspend.as_known() != Some(&true)
            && !desired_changed(prior, planned)
            && needs_reconcile(prior)
    }

    async fn state_after(cluster: &Cluster, planned: &Self) -> Self {
        state_after(cluster, planned).await
    }

    fn mark_not_ready(&mut self) {
        self.ready = false.into();
    }
}

impl FluxResourceSetResource {
    async fn plan_typed(
        &self,
        ctx: &mut Context<impl ClusterAccess>,
        prior: Option<ResourceSetModel>,
        mut planned: ResourceSetModel,
    ) -> Result<Planned<ResourceSetModel>, Diagnostics> {
        if let Some(prior) = &prior {
            keep_equivalent_open_values(&mut planned, prior);
            ownership::mark_managed(ctx);
        }
        let invalid = validate_config(&planned);
        if invalid.has_errors() {
            return Err(invalid);
        }
        if let Some(path) = nested_unknown(&planned) {
            return Err(Diagnostics::from_error_at(
                path.clone(),
                "Value Not Known Until Apply",
                format!(
                    "{path} is not known until apply. This provider version can plan an `inputs`, \
                     `resources` or `steps` value that is wholly unknown, but not one with unknown \
                     parts: create what it depends on first (`terraform apply -target=...`), or \
                     pass the value through a ResourceSetInputProvider (`inputs_from`)."
                ),
            ));
        }
        plan_computed(ctx, &mut planned, prior.as_ref());
        if prior.is_none() {
            refuse_existing_at_plan(ctx, &planned).await?;
        }
        // A plan that changes nothing applies nothing: only a change needs the API server's
        // verdict (this keeps a no-change plan at one read per object).
        if prior.as_ref() != Some(&planned) {
            dry_run(ctx, &planned).await?;
        }
        let replace = match &prior {
            Some(p) if p.namespace != planned.namespace || p.name != planned.name => {
                vec![AttrPath::attr("namespace"), AttrPath::attr("name")]
            }
            _ => Vec::new(),
        };
        Ok(Planned {
            state: planned,
            requires_replace: replace,
        })
    }

    async fn delete_typed(
        &self,
        ctx: &mut Context<impl ClusterAccess>,
        prior: ResourceSetModel,
    ) -> Result<(), Diagnostics> {
        let cluster = cluster_for_apply(ctx.data()?.as_ref()).await?;
        let timeout = common::timeout(&prior.timeouts, Operation::Delete, DEFAULT_TIMEOUT)?;
        let policy = prior
            .deletion_policy
            .as_known()
            .and_then(|p| DeletionPolicy::parse(p))
            .unwrap_or(DeletionPolicy::Uninstall);
        let operator_namespace = common::find_operator_namespace(&cluster).await?;
        let cancel = ctx.cancellation().clone();
        let mut warnings = Diagnostics::new();
        let result = common::delete_reconciled_with_operator(
            &cluster,
            &model_ref(&prior),
            operator_namespace.as_deref(),
            policy,
            timeout,
            &cancel,
            &mut warnings,
        )
        .await;
        ctx.diagnostics.extend(warnings);
        result
    }
}

/// Parses the import ID `<namespace>/<name>`.
///
/// # Errors
///
/// A diagnostic showing the expected form.
pub fn parse_import_id(id: &str) -> Result<(String, String), Diagnostics> {
    id.split_once('/')
        .filter(|(ns, name)| !ns.is_empty() && !name.is_empty() && !name.contains('/'))
        .map(|(ns, name)| (ns.to_owned(), name.to_owned()))
        .ok_or_else(|| {
            Diagnostics::from_error(
                "Invalid Import ID",
                format!("Expected \"<namespace>/<name>\", e.g. \"tenants/team-a\"; got {id:?}."),
            )
        })
}

#[async_trait]
impl<D: ClusterAccess> Resource<D> for FluxResourceSetResource {
    type Model = ResourceSetModel;

    fn type_name(&self) -> &'static str {
        "flux_resource_set"
    }

    fn schema(&self) -> Schema {
        model::schema()
    }

    async fn validate(
        &self,
        _ctx: &mut Context<D>,
        config: ResourceSetModel,
    ) -> Result<(), Diagnostics> {
        let mut out = validate_config(&config);
        out.extend(crate::resources::validation_resource_set::resource_set(
            &config,
        ));
        if out.has_errors() { Err(out) } else { Ok(()) }
    }

    async fn plan(
        &self,
        ctx: &mut Context<D>,
        change: PlanChange<ResourceSetModel>,
    ) -> Result<Planned<ResourceSetModel>, Diagnostics> {
        self.plan_typed(ctx, change.prior, change.proposed).await
    }

    async fn create(
        &self,
        ctx: &mut Context<D>,
        planned: ResourceSetModel,
        _config: ResourceSetModel,
    ) -> Result<ResourceSetModel, ApplyError<ResourceSetModel>> {
        reconciled::apply_and_wait(ctx, None, planned, Operation::Create).await
    }

    async fn read(
        &self,
        ctx: &mut Context<D>,
        state: ResourceSetModel,
    ) -> Result<Option<ResourceSetModel>, Diagnostics> {
        let Some(cluster) = cluster_if_known(ctx.data()?.as_ref()).await? else {
            return Ok(Some(state));
        };
        match get_live(&cluster, &model_ref(&state), Reads::Shared).await? {
            None => Ok(None),
            Some(live) => {
                let mut model = live_model(&live, &state)?;
                model.inventory_status = inventory_status(&cluster, &live, Reads::Shared)
                    .await?
                    .into();
                Ok(Some(model))
            }
        }
    }

    async fn update(
        &self,
        ctx: &mut Context<D>,
        prior: ResourceSetModel,
        planned: ResourceSetModel,
        _config: ResourceSetModel,
    ) -> Result<ResourceSetModel, ApplyError<ResourceSetModel>> {
        reconciled::apply_and_wait(ctx, Some(&prior), planned, Operation::Update).await
    }

    async fn delete(
        &self,
        ctx: &mut Context<D>,
        prior: ResourceSetModel,
    ) -> Result<(), ApplyError<ResourceSetModel>> {
        self.delete_typed(ctx, prior)
            .await
            .map_err(ApplyError::from)
    }

    async fn import(
        &self,
        _ctx: &mut Context<D>,
        id: &str,
    ) -> Result<ResourceSetModel, Diagnostics> {
        let (namespace, name) = parse_import_id(id)?;
        Ok(ResourceSetModel {
            id: id.to_owned().into(),
            name: name.into(),
            namespace: namespace.into(),
            deletion_policy: "uninstall".to_owned().into(),
            ..ResourceSetModel::default()
        })
    }
}

#[cfg(test)]
#[path = "flux_resource_set_tests.rs"]
mod tests;
