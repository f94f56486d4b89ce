//! The `flux_resource_set_input_provider` resource: a Flux Operator `ResourceSetInputProvider`.
//! Plan checks the CRD's and the operator's rules with diagnostics naming the attributes, keeps
//! equivalent `default_values` in their prior spelling and validates with a server-side dry-run;
//! apply is a forced server-side apply followed by a watch until the operator reports the
//! provider Ready for the new generation (its input sets exported), failing at once with the
//! operator's message otherwise; destroy deletes the object or, with `deletion_policy =
//! "orphan"`, leaves it in the cluster.
//!
//! Lives in `resources/`: may use `framework`, `flux`, `cluster`, never `provider`.

#[path = "flux_resource_set_input_provider_convert.rs"]
pub mod convert;
#[path = "flux_resource_set_input_provider_live.rs"]
mod live;
#[path = "flux_resource_set_input_provider_model.rs"]
pub mod model;

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
    dry_run_for_plan,
};
use crate::resources::flux_resource_set::model::SpecError;
use crate::resources::flux_resource_set::parse_import_id;
use crate::resources::ownership;
use crate::resources::reconciled::{self, Reconciled};
use convert::{defaults_equal, live_model, model_object, nested_unknown};
pub use live::input_provider_ref;
use live::{get_live, model_ref, state_after, to_dynamic};
use model::{DESIRED_ATTRIBUTES, InputProviderModel};

/// Every rule checked at validate and plan: names, service account and timeouts (the shared
/// rules of `resources::validation`) and the rules of the API and the operator on the spec
/// ([`model::validate_config`]).
fn validate_config(config: &InputProviderModel) -> Diagnostics {
    let mut out = crate::resources::validation_resource_set::input_provider(config);
    out.extend(convert::validate_config(config));
    out
}

/// Default for every `timeouts` value.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// The `flux_resource_set_input_provider` resource.
#[derive(Clone, Copy, Debug, Default)]
pub struct FluxResourceSetInputProviderResource;

fn spec_error(error: &SpecError) -> Diagnostics {
    match error {
        SpecError::Shape { path, message } => Diagnostics::from_error_at(
            path.clone(),
            "Invalid ResourceSetInputProvider",
            format!("{message}."),
        ),
        SpecError::Unknown => {
            Diagnostics::from_error("Invalid ResourceSetInputProvider", format!("{error}."))
        }
    }
}

/// Whether what we write to the object (spec and annotations) differs between two models.
fn desired_changed(prior: &InputProviderModel, planned: &InputProviderModel) -> bool {
    let (Ok(a), Ok(b)) = (to_raw(prior), to_raw(planned)) else {
        return true;
    };
    attributes_changed(&model::schema(), &a, &b, &DESIRED_ATTRIBUTES)
}

/// Whether an unchanged provider is due a reconcile: the last read (or a create whose wait
/// failed) found it not Ready, and it is not suspended.
fn pending_reconcile(prior: &InputProviderModel, planned: &InputProviderModel) -> bool {
    planned.suspend.as_known() != Some(&true)
        && prior.ready.as_known() == Some(&false)
        && !desired_changed(prior, planned)
}

/// The planned computed values: unknown when the object changes (the operator exports anew) or
/// when a not-Ready provider will be reconciled (then `ready` goes to true: apply waits).
fn plan_computed(planned: &mut InputProviderModel, prior: Option<&InputProviderModel>) {
    planned.id = match (planned.namespace.as_known(), planned.name.as_known()) {
        (Some(ns), Some(name)) => format!("{ns}/{name}").into(),
        _ => Value::Unknown,
    };
    if prior.is_some_and(|p| !desired_changed(p, planned) && !pending_reconcile(p, planned)) {
        return;
    }
    let suspended = planned.suspend.as_known() == Some(&true);
    // On create, unknown: a create whose wait fails returns `false` without an error (see the
    // framework's incomplete creates), which must agree with the plan.
    planned.ready = if suspended || prior.is_none() {
        Value::Unknown
    } else {
        true.into()
    };
    planned.exported_inputs = Value::Unknown;
    planned.last_exported_revision = Value::Unknown;
    planned.next_schedule = Value::Unknown;
}

/// The server-side dry-run, when the spec and the cluster are known. A namespace that does not
/// exist yet (created in the same apply) or a CRD not installed yet is no error: the namespace
/// case warns that the dry-run was skipped.
async fn dry_run(
    ctx: &mut Context<impl ClusterAccess>,
    planned: &InputProviderModel,
) -> Result<(), Diagnostics> {
    let object = match model_object(planned) {
        Ok(object) => object,
        Err(SpecError::Unknown) => return Ok(()),
        Err(e) => return Err(spec_error(&e)),
    };
    dry_run_for_plan(ctx, &to_dynamic(&object)?, "ResourceSetInputProvider").await?;
    Ok(())
}

#[async_trait]
impl Reconciled for InputProviderModel {
    const KIND: &'static str = "ResourceSetInputProvider";
    const TYPE_NAME: &'static str = "flux_resource_set_input_provider";

    fn timeout(&self, operation: Operation) -> Result<Duration, Diagnostics> {
        common::timeout(&self.timeouts, operation, DEFAULT_TIMEOUT)
    }

    fn object(&self) -> Result<DynamicObject, Diagnostics> {
        to_dynamic(&model_object(self).map_err(|e| spec_error(&e))?)
    }

    fn reference(&self) -> ObjectRef {
        model_ref(self)
    }

    fn wants_reconcile(prior: &Self, planned: &Self) -> bool {
        pending_reconcile(prior, planned)
    }

    async fn state_after(cluster: &Cluster, planned: &Self) -> Self {
        state_after(cluster, planned).await
    }

    fn mark_not_ready(&mut self) {
        self.ready = false.into();
    }
}

impl FluxResourceSetInputProviderResource {
    async fn plan_typed(
        &self,
        ctx: &mut Context<impl ClusterAccess>,
        prior: Option<InputProviderModel>,
        mut planned: InputProviderModel,
    ) -> Result<Planned<InputProviderModel>, Diagnostics> {
        if let Some(prior) = &prior {
            ownership::mark_managed(ctx);
            if defaults_equal(&planned.default_values, &prior.default_values) {
                planned.default_values = prior.default_values.clone();
            }
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
                    "{path} is not known until apply. This provider version can plan a \
                     `default_values` that is wholly unknown, but not one with unknown parts: \
                     create what it depends on first (`terraform apply -target=...`)."
                ),
            ));
        }
        plan_computed(&mut planned, prior.as_ref());
        if prior
            .as_ref()
            .is_some_and(|p| pending_reconcile(p, &planned))
        {
            ctx.warn_at(
                AttrPath::attr("ready"),
                "ResourceSetInputProvider Will Be Reconciled",
                "The ResourceSetInputProvider is not Ready (its last wait failed, or the operator \
                 reports it not Ready). Apply will ask the Flux Operator to reconcile it and wait \
                 until it is Ready.",
            );
        }
        if prior.is_none()
            && planned.namespace.is_known()
            && planned.name.is_known()
            && let Some(cluster) = cluster_if_known(ctx.data()?.as_ref()).await?
        {
            let kind = "flux_resource_set_input_provider";
            ownership::check_existing_at_plan(ctx, &cluster, &model_ref(&planned), kind).await?;
        }
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
        prior: InputProviderModel,
    ) -> Result<(), Diagnostics> {
        if prior.deletion_policy.as_known().map(String::as_str) == Some("orphan") {
            return Ok(());
        }
        let cluster = cluster_for_apply(ctx.data()?.as_ref()).await?;
        let timeout = common::timeout(&prior.timeouts, Operation::Delete, DEFAULT_TIMEOUT)?;
        let operator_namespace = common::find_operator_namespace(&cluster).await?;
        let cancel = ctx.cancellation().clone();
        let mut warnings = Diagnostics::new();
        let result = common::delete_reconciled_with_operator(
            &cluster,
            &model_ref(&prior),
            operator_namespace.as_deref(),
            DeletionPolicy::Uninstall,
            timeout,
            &cancel,
            &mut warnings,
        )
        .await;
        ctx.diagnostics.extend(warnings);
        result
    }
}

#[async_trait]
impl<D: ClusterAccess> Resource<D> for FluxResourceSetInputProviderResource {
    type Model = InputProviderModel;

    fn type_name(&self) -> &'static str {
        "flux_resource_set_input_provider"
    }

    fn schema(&self) -> Schema {
        model::schema()
    }

    async fn validate(
        &self,
        _ctx: &mut Context<D>,
        config: InputProviderModel,
    ) -> Result<(), Diagnostics> {
        let out = validate_config(&config);
        if out.has_errors() { Err(out) } else { Ok(()) }
    }

    async fn plan(
        &self,
        ctx: &mut Context<D>,
        change: PlanChange<InputProviderModel>,
    ) -> Result<Planned<InputProviderModel>, Diagnostics> {
        self.plan_typed(ctx, change.prior, change.proposed).await
    }

    async fn create(
        &self,
        ctx: &mut Context<D>,
        planned: InputProviderModel,
        _config: InputProviderModel,
    ) -> Result<InputProviderModel, ApplyError<InputProviderModel>> {
        reconciled::apply_and_wait(ctx, None, planned, Operation::Create).await
    }

    async fn read(
        &self,
        ctx: &mut Context<D>,
        state: InputProviderModel,
    ) -> Result<Option<InputProviderModel>, Diagnostics> {
        let Some(cluster) = cluster_if_known(ctx.data()?.as_ref()).await? else {
            return Ok(Some(state));
        };
        match get_live(&cluster, &model_ref(&state)).await? {
            None => Ok(None),
            Some(live) => live_model(&live, &state).map(Some),
        }
    }

    async fn update(
        &self,
        ctx: &mut Context<D>,
        prior: InputProviderModel,
        planned: InputProviderModel,
        _config: InputProviderModel,
    ) -> Result<InputProviderModel, ApplyError<InputProviderModel>> {
        reconciled::apply_and_wait(ctx, Some(&prior), planned, Operation::Update).await
    }

    async fn delete(
        &self,
        ctx: &mut Context<D>,
        prior: InputProviderModel,
    ) -> Result<(), ApplyError<InputProviderModel>> {
        self.delete_typed(ctx, prior)
            .await
            .map_err(ApplyError::from)
    }

    async fn import(
        &self,
        _ctx: &mut Context<D>,
        id: &str,
    ) -> Result<InputProviderModel, Diagnostics> {
        let (namespace, name) = parse_import_id(id)?;
        Ok(InputProviderModel {
            id: id.to_owned().into(),
            name: name.into(),
            namespace: namespace.into(),
            deletion_policy: "delete".to_owned().into(),
            ..InputProviderModel::default()
        })
    }
}

#[cfg(test)]
#[path = "flux_resource_set_input_provider_tests.rs"]
mod tests;
