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

use std::time::Duration;

use async_trait::async_trait;
use kube::api::DynamicObject;

use crate::cluster::objects::{Cluster, ObjectRef};
use crate::flux::instance::API_VERSION;
use crate::flux::resource_set::{KIND, ResourceSet};
use crate::framework::diagnostics::Diagnostics;
use crate::framework::model::{Value, to_raw};
use crate::framework::path::{AttrPath, PathStep};
use crate::framework::plan::attributes_changed;
use crate::framework::resource::{ApplyError, Context, PlanChange, Planned, Resource};
use crate::framework::schema::Schema;
use crate::resources::common::{
    self, ClusterAccess, DeletionPolicy, Operation, apply_error, cluster_for_apply,
    cluster_if_known, dry_run_at_plan,
};
use crate::resources::ownership;
use crate::resources::reconciled::{self, Reconciled};
use model::{
    DESIRED_ATTRIBUTES, HEALTHY, ResourceSetModel, SpecError, keep_equivalent_open_values,
    live_model, model_object, nested_unknown, set_status, validate_config,
};

/// Default for every `timeouts` value.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// `Ready=False` reasons apply waits through: the operator re-checks dependencies by itself.
const KEEP_WAITING: [&str; 1] = ["DependencyNotReady"];

/// The `flux_resource_set` resource.
#[derive(Clone, Copy, Debug, Default)]
pub struct FluxResourceSetResource;

/// The ResourceSet's reference.
pub fn resource_set_ref(namespace: &str, name: &str) -> ObjectRef {
    ObjectRef::new(API_VERSION, KIND, Some(namespace), name)
}

fn model_ref(model: &ResourceSetModel) -> ObjectRef {
    resource_set_ref(
        model.namespace.as_known().map_or("", String::as_str),
        model.name.as_known().map_or("", String::as_str),
    )
}

/// Diagnostics whose paths name API fields (`depends_on`) renamed to our attributes.
fn renamed(mut diagnostics: Diagnostics) -> Diagnostics {
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

fn spec_error(error: &SpecError) -> Diagnostics {
    match error {
        SpecError::Shape { path, message } => {
            Diagnostics::from_error_at(path.clone(), "Invalid ResourceSet", format!("{message}."))
        }
        SpecError::Unknown => Diagnostics::from_error("Invalid ResourceSet", format!("{error}.")),
    }
}

/// Whether what we write to the object (spec and annotations) differs between two models.
fn desired_changed(prior: &ResourceSetModel, planned: &ResourceSetModel) -> bool {
    let (Ok(a), Ok(b)) = (to_raw(prior), to_raw(planned)) else {
        return true;
    };
    attributes_changed(&model::schema(), &a, &b, &DESIRED_ATTRIBUTES)
}

fn to_dynamic(object: &ResourceSet) -> Result<DynamicObject, Diagnostics> {
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
enum Reads {
    Live,
    Shared,
}

/// Reads the live ResourceSet; `None` when it, its namespace or its CRD is gone.
async fn get_live(
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
fn plan_computed(
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
fn needs_reconcile(prior: &ResourceSetModel) -> bool {
    prior.ready.as_known() == Some(&false)
        || prior
            .inventory_status
            .as_known()
            .is_some_and(|s| s != HEALTHY)
}

/// `Healthy`, or which inventory objects are missing or unhealthy (suspended: not checked).
async fn inventory_status(
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
async fn dry_run(
    ctx: &mut Context<impl ClusterAccess>,
    planned: &ResourceSetModel,
) -> Result<(), Diagnostics> {
    let object = match model_object(planned) {
        Ok(object) => object,
        Err(SpecError::Unknown) => return Ok(()),
        Err(e) => return Err(spec_error(&e)),
    };
    let Some(cluster) = cluster_if_known(ctx.data()?.as_ref()).await? else {
        return Ok(());
    };
    match dry_run_at_plan(&cluster, &to_dynamic(&object)?).await {
        Ok(verdict) => {
            let name = planned.name.as_known().cloned().unwrap_or_default();
            if let Some((summary, detail)) = verdict.warning("ResourceSet", &name, "") {
                ctx.warn_at(AttrPath::attr("namespace"), summary, detail);
            }
            Ok(())
        }
        Err(e) if e.status().is_some() => Err(renamed(apply_error(
            "ResourceSet Rejected By The API Server",
            &e,
        ))),
        Err(e) => Err(apply_error(
            "Cannot Validate The ResourceSet With The Cluster",
            &e,
        )),
    }
}

/// At plan, when the name and the cluster are known: the object must not exist yet.
async fn refuse_existing_at_plan(
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
async fn state_after(cluster: &Cluster, planned: &ResourceSetModel) -> ResourceSetModel {
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
        out.extend(crate::resources::validation::resource_set(&config));
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
