//! The simulated FluxInstance reconciler and uninstaller, and the context shared with the
//! ResourceSet reconciler (client, configuration, what each object was last reconciled at).
//!
//! Follows the documented pipeline: finalizer, `Reconciling`, version resolution against the
//! embedded versions (no match or a minor downgrade: `Stalled`/`BuildFailed`), server-side apply
//! of the install (adopting existing objects in place: bootstrap labels stripped, field
//! ownership of `kubectl`, `flux`, `kustomize-controller`, `helm` and `before-first-apply`
//! taken over), inventory garbage collection, health check, then the force request and
//! `migrateResources` ([`super::migrate`]) and the artifact digest, `Ready`. Like the operator
//! it only re-applies on a generation or annotation change (including
//! `reconcile.fluxcd.io/requestedAt`), not when an applied object changes.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef as KubeRef;
use kube::runtime::utils::Backoff;
use kube::runtime::watcher;
use serde_json::{Value, json};

use super::build::{self, Build};
use super::inventory::{ObjectRef, digest_objects, read_inventory, revision};
use super::ops::{
    Kube, OpsError, annotation, condition as get_condition, finalizers, is_deleting, is_healthy,
};
use super::status::{self, READY, RECONCILING, STALLED, condition};
use super::version;
use super::{FIELD_MANAGER, FINALIZER, Failure, SimConfig};
use super::{artifact, migrate};

/// Errors of a reconciliation that are retried (terminal failures are written to status).
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// An API call failed.
    #[error(transparent)]
    Api(#[from] OpsError),
    /// The object could not be read as JSON.
    #[error("decode object: {0}")]
    Decode(String),
    /// (ResourceSet) `inputsFrom` could not be resolved: reported as `Stalled`.
    #[error("{0}")]
    ComputeInputs(String),
}

/// Annotation disabling reconciliation (and orphaning on delete).
pub const RECONCILE_ANNOTATION: &str = "fluxcd.controlplane.io/reconcile";
/// Annotation requesting a reconciliation.
pub const REQUESTED_AT_ANNOTATION: &str = "reconcile.fluxcd.io/requestedAt";
/// Annotation excluding an object from garbage collection and uninstall.
pub const PRUNE_ANNOTATION: &str = "fluxcd.controlplane.io/prune";
/// Annotation overriding the health-check timeout.
pub const TIMEOUT_ANNOTATION: &str = "fluxcd.controlplane.io/reconcileTimeout";

/// The `Reconciling`/`Ready=Unknown` message while a reconciliation runs.
pub(crate) const IN_PROGRESS: &str = "Reconciliation in progress";

/// A field manager whose ownership the operator takes over when adopting objects: its name,
/// the managedFields operation it must have, and whether the name must match exactly (else it
/// is a prefix, so `kubectl` covers `kubectl-client-side-apply`, `kubectl-edit`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakeoverManager {
    /// Manager name (or prefix).
    pub name: String,
    /// `Apply` or `Update`.
    pub operation: &'static str,
    /// Exact name match, else prefix.
    pub exact: bool,
}

impl TakeoverManager {
    fn new(name: &str, operation: &'static str, exact: bool) -> Self {
        Self {
            name: name.to_string(),
            operation,
            exact,
        }
    }

    fn matches(&self, entry: &Value) -> bool {
        let Some(m) = entry["manager"].as_str() else {
            return false;
        };
        let name_ok = if self.exact {
            m == self.name
        } else {
            m.starts_with(&self.name)
        };
        name_ok && entry["operation"] == self.operation
    }
}

/// The managers the operator takes ownership from (`internal/controller/common.go`
/// `takeOwnershipFrom`): `kustomize-controller` (Apply, exact), `helm` (Update, exact),
/// `kubectl*` (Update and Apply, prefix), `before-first-apply*` (Update, prefix), then each of
/// `extra` (Apply and Update, exact). The FluxInstance reconciler passes `flux` plus the
/// operator's `OVERRIDE_MANAGERS`, the ResourceSet reconciler only `OVERRIDE_MANAGERS`.
pub fn takeover_managers(extra: &[String]) -> Vec<TakeoverManager> {
    let mut out = vec![
        TakeoverManager::new("kustomize-controller", "Apply", true),
        TakeoverManager::new("helm", "Update", true),
        TakeoverManager::new("kubectl", "Update", false),
        TakeoverManager::new("before-first-apply", "Update", false),
        TakeoverManager::new("kubectl", "Apply", false),
    ];
    for m in extra {
        out.push(TakeoverManager::new(m, "Apply", true));
        out.push(TakeoverManager::new(m, "Update", true));
    }
    out
}

/// What an object was last reconciled at.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Seen {
    generation: i64,
    annotations: BTreeMap<String, String>,
    /// [`super::Script`] generation: a scripting change re-runs the reconciliation.
    script: u64,
    /// `true` when the result needs no retry (Ready, or a terminal failure).
    settled: bool,
}

/// Shared context of the simulated controllers.
pub struct Ctx {
    pub(crate) kube: Kube,
    pub(crate) config: SimConfig,
    seen: Mutex<HashMap<String, (Seen, Instant)>>,
    /// Per ResourceSet (by UID): the `lastExportedRevision`s of its input providers when it was
    /// last rendered.
    provider_revisions: Mutex<HashMap<String, String>>,
}

impl Ctx {
    /// Builds the context.
    pub fn new(client: kube::Client, config: SimConfig) -> Self {
        Self {
            kube: Kube::new(client, FIELD_MANAGER),
            config,
            seen: Mutex::default(),
            provider_revisions: Mutex::default(),
        }
    }

    fn seen_key(obj: &Value) -> String {
        obj["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn seen_now(&self, obj: &Value, settled: bool) -> Seen {
        Seen {
            generation: generation(obj),
            annotations: annotations(obj),
            script: self.config.script.generation(),
            settled,
        }
    }

    /// Whether the object changed (generation or annotations) since it was last settled, or its
    /// drift-correction interval (`fluxcd.controlplane.io/reconcileEvery`, default 1h) elapsed.
    pub(crate) fn needs_reconcile(&self, obj: &Value) -> bool {
        let now = self.seen_now(obj, true);
        let key = Self::seen_key(obj);
        match self.seen.lock().ok().and_then(|m| m.get(&key).cloned()) {
            Some((seen, at)) => seen != now || at.elapsed() >= reconcile_every(obj),
            None => true,
        }
    }

    /// What to do when [`Self::needs_reconcile`] is false: wait for a change, or for the rest of
    /// the drift-correction interval.
    pub(crate) fn idle_action(&self, obj: &Value) -> Action {
        let key = Self::seen_key(obj);
        match self
            .seen
            .lock()
            .ok()
            .and_then(|m| m.get(&key).map(|(_, at)| at.elapsed()))
        {
            Some(elapsed) => Action::requeue(reconcile_every(obj).saturating_sub(elapsed)),
            None => Action::await_change(),
        }
    }

    /// The input providers' revisions a ResourceSet was last rendered with.
    pub(crate) fn provider_revisions(&self, obj: &Value) -> Option<String> {
        self.provider_revisions
            .lock()
            .ok()
            .and_then(|m| m.get(&Self::seen_key(obj)).cloned())
    }

    /// Records the input providers' revisions a ResourceSet is rendered with.
    pub(crate) fn set_provider_revisions(&self, obj: &Value, fingerprint: String) {
        if let Ok(mut m) = self.provider_revisions.lock() {
            m.insert(Self::seen_key(obj), fingerprint);
        }
    }

    /// Records the outcome of a reconciliation.
    pub(crate) fn record(&self, obj: &Value, settled: bool) {
        let seen = self.seen_now(obj, settled);
        if let Ok(mut m) = self.seen.lock() {
            m.insert(Self::seen_key(obj), (seen, Instant::now()));
        }
    }

    /// Whether Deployment `flux-operator` in `namespace` exists, is not being deleted and is
    /// Available.
    pub(crate) async fn operator_available(&self, namespace: &str) -> Result<bool, SimError> {
        let api: Api<Deployment> = Api::namespaced(self.kube.client().clone(), namespace);
        let dep = api
            .get_opt("flux-operator")
            .await
            .map_err(|source| OpsError::Get {
                id: format!("{namespace}_flux-operator_apps_Deployment"),
                source,
            })?;
        Ok(dep.is_some_and(|d| operator_ready(&d)))
    }

    /// Whether any namespace runs an available `flux-operator` Deployment.
    pub(crate) async fn any_operator_available(&self) -> Result<bool, SimError> {
        let api: Api<Deployment> = Api::all(self.kube.client().clone());
        let lp = ListParams::default().fields("metadata.name=flux-operator");
        let list = api.list(&lp).await.map_err(|source| OpsError::List {
            what: "Deployments flux-operator".into(),
            source,
        })?;
        Ok(list.items.iter().any(operator_ready))
    }

    /// Adds the finalizer when missing; returns the updated object.
    pub(crate) async fn ensure_finalizer(
        &self,
        r: &ObjectRef,
        obj: Value,
    ) -> Result<Value, SimError> {
        let mut fins = finalizers(&obj);
        if fins.iter().any(|f| f == FINALIZER) {
            return Ok(obj);
        }
        fins.push(FINALIZER.to_string());
        let rv = obj["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or_default();
        Ok(self.kube.set_finalizers(r, rv, &fins).await?)
    }

    /// Adds the finalizer and writes the initial status, as the operator does on first sight of
    /// an object (`internal/controller/common.go` `initializeObjectStatus`): `Ready=True`,
    /// reason `ReconciliationDisabled`, "Initialized with reconciliation suspended" when the
    /// reconcile annotation is `disabled`, else `Ready=Unknown` and `Reconciling=True`, both
    /// `Progressing`. The caller requeues at once.
    pub(crate) async fn initialize(&self, r: &ObjectRef, obj: Value) -> Result<Value, SimError> {
        let obj = self.ensure_finalizer(r, obj).await?;
        let gen_ = generation(&obj);
        let initial = if reconcile_disabled(&obj) {
            vec![condition(
                READY,
                "True",
                "ReconciliationDisabled",
                "Initialized with reconciliation suspended",
                gen_,
            )]
        } else {
            vec![
                condition(READY, "Unknown", "Progressing", IN_PROGRESS, gen_),
                condition(RECONCILING, "True", "Progressing", IN_PROGRESS, gen_),
            ]
        };
        let conditions = status::merge_conditions(&obj["status"]["conditions"], &initial, &[]);
        self.patch_status(r, json!({"conditions": conditions}))
            .await
    }

    /// Removes the finalizer.
    pub(crate) async fn release_finalizer(
        &self,
        r: &ObjectRef,
        obj: &Value,
    ) -> Result<(), SimError> {
        let fins: Vec<String> = finalizers(obj)
            .into_iter()
            .filter(|f| f != FINALIZER)
            .collect();
        let rv = obj["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or_default();
        self.kube.set_finalizers(r, rv, &fins).await?;
        if let Ok(mut m) = self.seen.lock() {
            m.remove(&Self::seen_key(obj));
        }
        Ok(())
    }

    /// Merge-patches the status subresource.
    pub(crate) async fn patch_status(
        &self,
        r: &ObjectRef,
        status: Value,
    ) -> Result<Value, SimError> {
        Ok(self
            .kube
            .merge_patch(r, &json!({ "status": status }), true)
            .await?)
    }

    /// The health-check timeout of an object.
    pub(crate) fn health_timeout(&self, obj: &Value) -> Duration {
        annotation(obj, TIMEOUT_ANNOTATION)
            .and_then(status::parse_duration)
            .unwrap_or(self.config.health_timeout)
    }
}

fn operator_ready(d: &Deployment) -> bool {
    d.metadata.deletion_timestamp.is_none()
        && d.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.type_ == "Available" && c.status == "True")
            })
}

pub(crate) fn generation(obj: &Value) -> i64 {
    obj["metadata"]["generation"].as_i64().unwrap_or(0)
}

fn annotations(obj: &Value) -> BTreeMap<String, String> {
    obj["metadata"]["annotations"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// Annotation setting the drift-correction interval.
pub const RECONCILE_EVERY_ANNOTATION: &str = "fluxcd.controlplane.io/reconcileEvery";

/// The drift-correction interval of an object (default 1h).
pub(crate) fn reconcile_every(obj: &Value) -> Duration {
    annotation(obj, RECONCILE_EVERY_ANNOTATION)
        .and_then(status::parse_duration)
        .unwrap_or(Duration::from_secs(3600))
}

/// `true` when reconciliation is disabled by annotation.
pub(crate) fn reconcile_disabled(obj: &Value) -> bool {
    annotation(obj, RECONCILE_ANNOTATION) == Some("disabled")
}

/// `true` when the object opts out of garbage collection.
pub(crate) fn prune_disabled(obj: &Value) -> bool {
    annotation(obj, PRUNE_ANNOTATION) == Some("disabled")
}

/// A constant trigger backoff, so a watch on a CRD that is not installed yet retries promptly.
pub(crate) struct ConstantBackoff(pub(crate) Duration);

impl Iterator for ConstantBackoff {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        Some(self.0)
    }
}

impl Backoff for ConstantBackoff {
    fn reset(&mut self) {}
}

pub(crate) fn fluxinstance_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("fluxcd.controlplane.io", "v1", "FluxInstance"),
        "fluxinstances",
    )
}

/// Runs the FluxInstance controller until the task is aborted.
pub async fn run(ctx: Arc<Ctx>) {
    let ar = fluxinstance_resource();
    let client = ctx.kube.client().clone();
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    let deployments: Api<Deployment> = Api::all(client);
    let ar_map = ar.clone();
    let script =
        tokio_stream::wrappers::WatchStream::new(ctx.config.script.subscribe()).map(|_| ());
    Controller::new_with(api, watcher::Config::default(), ar.clone())
        .trigger_backoff(ConstantBackoff(Duration::from_millis(200)))
        .watches(
            deployments,
            watcher::Config::default(),
            move |d: Deployment| {
                let ns = d.metadata.namespace.clone().unwrap_or_default();
                let labels = d.metadata.labels.clone().unwrap_or_default();
                if d.metadata.name.as_deref() == Some("flux-operator") {
                    Some(KubeRef::new_with("flux", ar_map.clone()).within(&ns))
                } else if labels
                    .get("fluxcd.controlplane.io/name")
                    .map(String::as_str)
                    == Some("flux")
                {
                    let owner_ns = labels
                        .get("fluxcd.controlplane.io/namespace")
                        .cloned()
                        .unwrap_or(ns);
                    Some(KubeRef::new_with("flux", ar_map.clone()).within(&owner_ns))
                } else {
                    None
                }
            },
        )
        .reconcile_all_on(script)
        .run(reconcile, error_policy, ctx)
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::debug!(error = %e, "fluxinstance controller");
            }
        })
        .await;
}

fn error_policy(_obj: Arc<DynamicObject>, err: &SimError, ctx: Arc<Ctx>) -> Action {
    tracing::debug!(error = %err, "fluxinstance reconcile failed, retrying");
    Action::requeue(ctx.config.retry_interval)
}

async fn reconcile(obj: Arc<DynamicObject>, ctx: Arc<Ctx>) -> Result<Action, SimError> {
    let obj = serde_json::to_value(&*obj).map_err(|e| SimError::Decode(e.to_string()))?;
    let me = ObjectRef::of(&obj).map_err(|e| SimError::Decode(e.to_string()))?;
    // The real CRD only admits the name `flux`; anything else is ignored.
    if me.name != "flux" || !ctx.operator_available(&me.namespace).await? {
        return Ok(Action::await_change());
    }
    // Work on the current object, not the cache's copy.
    let Some(obj) = ctx.kube.get(&me).await? else {
        return Ok(Action::await_change());
    };
    if is_deleting(&obj) {
        if finalizers(&obj).iter().any(|f| f == FINALIZER) {
            uninstall(&ctx, &me, &obj).await?;
        }
        return Ok(Action::await_change());
    }
    if !finalizers(&obj).iter().any(|f| f == FINALIZER) {
        // First sight: finalizer and initial status (`ReconciliationDisabled` at once when
        // created with reconcile disabled), then reconcile again.
        ctx.initialize(&me, obj).await?;
        return Ok(Action::requeue(Duration::from_millis(1)));
    }
    if reconcile_disabled(&obj) {
        return Ok(Action::await_change());
    }
    if !ctx.needs_reconcile(&obj) {
        return Ok(ctx.idle_action(&obj));
    }
    reconcile_instance(&ctx, &me, &obj).await
}

/// Outcome of the apply and health steps.
enum Outcome {
    Ready,
    Failed {
        reason: &'static str,
        message: String,
        stalled: bool,
    },
}

/// The operator's reason for an apply or health-check failure
/// (`internal/controller/fluxinstance_controller.go`): `Ready=False`, `ReconciliationFailed`,
/// message `reconciliation failed: <error>`; retried with backoff.
fn reconciliation_failed(message: &str) -> Outcome {
    Outcome::Failed {
        reason: "ReconciliationFailed",
        message: format!("reconciliation failed: {message}"),
        stalled: false,
    }
}

async fn reconcile_instance(ctx: &Ctx, me: &ObjectRef, obj: &Value) -> Result<Action, SimError> {
    let started = Instant::now();
    let gen_ = generation(obj);
    let st = &obj["status"];
    let failures = ctx.config.script.failures_for("FluxInstance", obj);

    // Progressing.
    let progressing = [
        condition(RECONCILING, "True", "Progressing", IN_PROGRESS, gen_),
        condition(READY, "Unknown", "Progressing", IN_PROGRESS, gen_),
    ];
    ctx.patch_status(
        me,
        json!({"conditions": status::merge_conditions(&st["conditions"], &progressing, &[])}),
    )
    .await?;
    tokio::time::sleep(ctx.config.step_delay).await;

    // Resolve and build.
    let spec = &obj["spec"];
    let constraint = spec["distribution"]["version"].as_str().unwrap_or_default();
    let resolved = version::resolve(constraint, &ctx.config.flux_versions).and_then(|v| {
        match st["lastAppliedRevision"].as_str() {
            Some(last) if !last.is_empty() => version::check_upgrade(last, &v).map(|()| v),
            _ => Ok(v),
        }
    });
    // The artifact (when fetched) comes before the build; its digest is simulated
    // ([`super::artifact`]) and recorded once the reconciliation succeeds.
    let artifact_digest = artifact::artifact_url(obj).map(|u| ctx.config.artifacts.digest(u));
    if let Some(message) = failures.iter().find_map(|f| match f {
        Failure::ArtifactFailed(m) => Some(m.clone()),
        _ => None,
    }) {
        let outcome = Outcome::Failed {
            reason: "ArtifactFailed",
            message,
            stalled: false,
        };
        finish(ctx, me, obj, outcome, None, started).await?;
        return Ok(Action::requeue(ctx.config.retry_interval));
    }
    let scripted_build = failures.iter().find_map(|f| match f {
        Failure::BuildFailed(m) => Some(m.clone()),
        _ => None,
    });
    let built = match (resolved, scripted_build) {
        (_, Some(m)) => Err(m),
        (Err(e), None) => Err(e.to_string()),
        (Ok(v), None) => build::build_with(
            spec,
            &me.namespace,
            &v,
            ctx.config.real_manifests.as_deref(),
        )
        .map(|b| (v, b))
        .map_err(|e| e.to_string()),
    };
    let (
        resolved_version,
        Build {
            objects,
            components,
        },
    ) = match built {
        Ok(x) => x,
        Err(message) => {
            finish(
                ctx,
                me,
                obj,
                Outcome::Failed {
                    reason: "BuildFailed",
                    message,
                    stalled: true,
                },
                None,
                started,
            )
            .await?;
            return Ok(Action::await_change());
        }
    };
    let digest = digest_objects(&objects);
    let rev = revision(&resolved_version.to_string(), &digest);
    ctx.patch_status(me, json!({"lastAttemptedRevision": rev}))
        .await?;

    // Apply and garbage-collect. An error is reported (`ReconciliationFailed`), the inventory
    // left as it was, and the reconciliation retried.
    let inventory = match apply_and_collect(ctx, me, obj, &objects).await {
        Ok(inventory) => inventory,
        Err(message) => {
            finish(ctx, me, obj, reconciliation_failed(&message), None, started).await?;
            return Ok(Action::requeue(ctx.config.retry_interval));
        }
    };
    let entries: Vec<Value> = inventory.iter().map(ObjectRef::entry).collect();
    ctx.patch_status(
        me,
        json!({"inventory": {"entries": entries}, "components": components}),
    )
    .await?;
    tokio::time::sleep(ctx.config.step_delay).await;

    // Health, then (on success) the migration and the recorded artifact digest.
    let outcome = health(ctx, obj, &inventory, &failures).await;
    let settled = matches!(outcome, Outcome::Ready);
    if settled {
        after_health(ctx, me, obj, &resolved_version, artifact_digest).await?;
    }
    finish(ctx, me, obj, outcome, Some(rev), started).await?;
    if settled {
        Ok(Action::requeue(reconcile_every(obj)))
    } else {
        Ok(Action::requeue(ctx.config.retry_interval))
    }
}

/// What the operator does after a successful health check (upstream
/// `fluxinstance_controller.go`): the force request and `migrateResources`
/// ([`super::migrate`]; failures only logged), then `status.lastArtifactRevision` (the pulled
/// digest, absent without `distribution.artifact`) and `status.lastHandledForceAt`.
async fn after_health(
    ctx: &Ctx,
    me: &ObjectRef,
    obj: &Value,
    version: &version::Version,
    artifact_digest: Option<String>,
) -> Result<(), SimError> {
    let (mut force, last_force) = migrate::force_request(obj);
    if obj["spec"]["migrateResources"].as_bool() != Some(false) {
        let last = obj["status"]["lastAppliedRevision"]
            .as_str()
            .unwrap_or_default();
        force |= migrate::is_minor_upgrade(last, version);
        for e in migrate::migrate_resources(&ctx.kube, &me.name, force).await {
            tracing::warn!(error = %e, "failed to migrate resources to the latest storage version");
        }
    }
    let mut patch = json!({"lastArtifactRevision": artifact_digest});
    if let Some(at) = last_force {
        patch["lastHandledForceAt"] = json!(at);
    }
    ctx.patch_status(me, patch).await?;
    Ok(())
}

/// Server-side applies the build (Namespace and CRDs first, waiting for the CRDs; adopting
/// existing objects) and deletes what the previous inventory had and this one does not.
/// Returns the new inventory, or the error message.
async fn apply_and_collect(
    ctx: &Ctx,
    me: &ObjectRef,
    obj: &Value,
    objects: &[Value],
) -> Result<Vec<ObjectRef>, String> {
    let mut inventory = Vec::new();
    let managers = takeover_managers(
        &std::iter::once("flux".to_string())
            .chain(ctx.config.override_field_managers.iter().cloned())
            .collect::<Vec<_>>(),
    );
    let (first, rest): (Vec<&Value>, Vec<&Value>) = objects.iter().partition(|o| {
        matches!(
            o["kind"].as_str(),
            Some("Namespace" | "CustomResourceDefinition")
        )
    });
    for o in first.iter().chain(rest.iter()) {
        if o["kind"] != "CustomResourceDefinition" && o["kind"] != "Namespace" {
            // CRDs must be served before their custom resources.
            for crd in first
                .iter()
                .filter(|c| c["kind"] == "CustomResourceDefinition")
            {
                let group = crd["spec"]["group"].as_str().unwrap_or_default();
                if o["apiVersion"]
                    .as_str()
                    .is_some_and(|a| a.starts_with(&format!("{group}/")))
                {
                    let name = crd["metadata"]["name"].as_str().unwrap_or_default();
                    ctx.kube
                        .wait_crd_established(name, ctx.config.uninstall_timeout)
                        .await
                        .map_err(|e| e.to_string())?;
                }
            }
        }
        let r = ObjectRef::of(o).map_err(|e| e.to_string())?;
        adopt(&ctx.kube, &r, &managers)
            .await
            .map_err(|e| e.to_string())?;
        ctx.kube
            .apply(o, &me.namespace)
            .await
            .map_err(|e| e.to_string())?;
        inventory.push(r);
    }
    // Garbage-collect what the previous inventory had and this one does not (the sync
    // Kustomization of a removed or changed `sync` included: its own finalizer then prunes
    // what it applied).
    for stale in read_inventory(obj)
        .into_iter()
        .filter(|p| !inventory.iter().any(|n| n.id() == p.id()))
    {
        if let Some(live) = ctx.kube.get(&stale).await.map_err(|e| e.to_string())?
            && owned_by_instance(&live, &me.namespace)
            && !prune_disabled(&live)
        {
            ctx.kube.delete(&stale).await.map_err(|e| e.to_string())?;
        }
    }
    Ok(inventory)
}

/// The health check: every applied object must become current within the timeout
/// (`fluxcd.controlplane.io/reconcileTimeout`, default 5m) — the Deployments, and the sync
/// source and Kustomization as well (upstream `apply`: `WaitForSetWithContext` over the whole
/// change set). A failure names every object that is not current, followed by the `Ready`
/// message of each Flux object that is not Ready (upstream `aggregateNotReadyStatus`).
async fn health(ctx: &Ctx, obj: &Value, inventory: &[ObjectRef], failures: &[Failure]) -> Outcome {
    for f in failures {
        match f {
            Failure::SlowReadiness(d) => tokio::time::sleep(*d).await,
            Failure::HealthCheckFailed(m) => return reconciliation_failed(m),
            Failure::BuildFailed(_) | Failure::ArtifactFailed(_) => {}
        }
    }
    if obj["spec"]["wait"].as_bool() == Some(false) {
        return Outcome::Ready;
    }
    let timeout = ctx.health_timeout(obj);
    match wait_current(&ctx.kube, inventory, timeout).await {
        Ok(()) => Outcome::Ready,
        Err(message) => reconciliation_failed(&message),
    }
}

/// Waits until every object is current (kstatus, [`is_healthy`]); `Err` is the operator's
/// message: `timeout waiting for: [<Kind>/<ns>/<name> status: '<InProgress|Failed|NotFound>',
/// ...]`, then one line `<Kind>/<ns>/<name> status: <Ready message>` per Flux object that is not
/// Ready.
pub(crate) async fn wait_current(
    kube: &Kube,
    objects: &[ObjectRef],
    timeout: Duration,
) -> Result<(), String> {
    let waits = objects.iter().map(|r| async move {
        kube.wait_for(r, timeout, is_healthy)
            .await
            .map_err(|_| r.clone())
    });
    let failed: Vec<ObjectRef> = futures::future::join_all(waits)
        .await
        .into_iter()
        .filter_map(Result::err)
        .collect();
    if failed.is_empty() {
        return Ok(());
    }
    let mut names = Vec::new();
    let mut not_ready = Vec::new();
    for r in &failed {
        let live = kube.get(r).await.ok().flatten();
        let state = match &live {
            None => "NotFound",
            Some(l) if get_condition(l, STALLED).is_some_and(|c| c["status"] == "True") => "Failed",
            Some(_) => "InProgress",
        };
        names.push(format!("{} status: '{state}'", fmt_ref(r)));
        if r.group.ends_with(".fluxcd.io")
            && let Some(c) = live.as_ref().and_then(|l| get_condition(l, READY))
            && c["status"] != "True"
        {
            not_ready.push(format!(
                "{} status: {}",
                fmt_ref(r),
                c["message"].as_str().unwrap_or_default()
            ));
        }
    }
    let mut message = format!("timeout waiting for: [{}]", names.join(", "));
    for line in not_ready {
        message.push('\n');
        message.push_str(&line);
    }
    Err(message)
}

/// `Kind/namespace/name` (or `Kind/name` when cluster-scoped), as fluxcd/pkg `ssa` prints
/// objects.
pub(crate) fn fmt_ref(r: &ObjectRef) -> String {
    if r.namespace.is_empty() {
        format!("{}/{}", r.kind, r.name)
    } else {
        format!("{}/{}/{}", r.kind, r.namespace, r.name)
    }
}

/// Writes the final status of a reconciliation and records it.
async fn finish(
    ctx: &Ctx,
    me: &ObjectRef,
    obj: &Value,
    outcome: Outcome,
    rev: Option<String>,
    started: Instant,
) -> Result<(), SimError> {
    let gen_ = generation(obj);
    // Re-read: earlier patches in this reconciliation changed the status.
    let current = ctx.kube.get(me).await?.unwrap_or_else(|| obj.clone());
    let st = &current["status"];
    let mut patch = json!({});
    if let Some(at) = annotation(obj, REQUESTED_AT_ANNOTATION) {
        patch["lastHandledReconcileAt"] = json!(at);
    }
    let took = started.elapsed();
    let settled = match outcome {
        Outcome::Ready => {
            let ready = condition(
                READY,
                "True",
                "ReconciliationSucceeded",
                &format!(
                    "Reconciliation finished in {}",
                    status::format_duration(took)
                ),
                gen_,
            );
            patch["conditions"] =
                status::merge_conditions(&st["conditions"], &[ready], &[RECONCILING, STALLED]);
            if let Some(rev) = &rev {
                patch["lastAppliedRevision"] = json!(rev);
                let (ver, digest) = rev.split_once('@').unwrap_or((rev.as_str(), ""));
                patch["history"] = status::push_history(
                    &st["history"],
                    digest,
                    "ReconciliationSucceeded",
                    took,
                    json!({"flux": ver}),
                );
            }
            true
        }
        Outcome::Failed {
            reason,
            message,
            stalled,
        } => {
            patch["conditions"] =
                status::failure_conditions(&st["conditions"], reason, &message, stalled, gen_);
            stalled
        }
    };
    ctx.patch_status(me, patch).await?;
    ctx.record(obj, settled);
    Ok(())
}

fn owned_by_instance(live: &Value, namespace: &str) -> bool {
    let labels = &live["metadata"]["labels"];
    labels["fluxcd.controlplane.io/name"] == "flux"
        && labels["fluxcd.controlplane.io/namespace"] == namespace
}

/// Deep-merges `fieldsV1` sets.
fn merge_fields(into: &mut Value, from: &Value) {
    if let (Some(a), Some(b)) = (into.as_object_mut(), from.as_object()) {
        for (k, v) in b {
            match a.get_mut(k) {
                Some(existing) => merge_fields(existing, v),
                None => {
                    a.insert(k.clone(), v.clone());
                }
            }
        }
    }
}

/// The operator's managers take-over (fluxcd/pkg `ssa` `PatchReplaceFieldsManagers`): the
/// main-resource entries matching one of `managers` ([`takeover_managers`]) are merged into one `flux-operator` Apply
/// entry (together with an existing one); other entries are kept. `None` when no entry needs it.
pub fn take_over_managed_fields(
    managed: &[Value],
    managers: &[TakeoverManager],
    api_version: &str,
    time: &str,
) -> Option<Vec<Value>> {
    let main = |e: &Value| e["subresource"].as_str().unwrap_or_default().is_empty();
    let takeover = |e: &Value| main(e) && managers.iter().any(|m| m.matches(e));
    if !managed.iter().any(takeover) {
        return None;
    }
    let mut fields = json!({});
    let mut kept = Vec::new();
    for e in managed {
        let ours = e["manager"] == FIELD_MANAGER && e["operation"] == "Apply" && main(e);
        if takeover(e) || ours {
            merge_fields(&mut fields, &e["fieldsV1"]);
        } else {
            kept.push(e.clone());
        }
    }
    kept.push(
        json!({"manager": FIELD_MANAGER, "operation": "Apply", "apiVersion": api_version,
                     "time": time, "fieldsType": "FieldsV1", "fieldsV1": fields}),
    );
    Some(kept)
}

/// Prepares an existing object for adoption, as the operator does before applying: strips the
/// bootstrap labels and the last-applied/Helm annotations, and moves the field ownership of the
/// take-over managers to `flux-operator` (so fields they set that the operator does not render
/// are dropped by the following apply).
pub(crate) async fn adopt(
    kube: &Kube,
    r: &ObjectRef,
    managers: &[TakeoverManager],
) -> Result<(), OpsError> {
    let Some(live) = kube.get(r).await? else {
        return Ok(());
    };
    let meta = &live["metadata"];
    let mut patch = json!({"metadata": {}});
    for l in [
        "kustomize.toolkit.fluxcd.io/name",
        "kustomize.toolkit.fluxcd.io/namespace",
    ] {
        if meta["labels"].get(l).is_some() {
            patch["metadata"]["labels"][l] = Value::Null;
        }
    }
    for a in [
        "kubectl.kubernetes.io/last-applied-configuration",
        "meta.helm.sh/release-name",
        "meta.helm.sh/release-namespace",
    ] {
        if meta["annotations"].get(a).is_some() {
            patch["metadata"]["annotations"][a] = Value::Null;
        }
    }
    let managed: Vec<Value> = meta["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if let Some(entries) =
        take_over_managed_fields(&managed, managers, &r.api_version(), &status::now())
    {
        patch["metadata"]["managedFields"] = Value::Array(entries);
    }
    if patch["metadata"].as_object().is_some_and(|m| !m.is_empty())
        && let Err(e) = kube.merge_patch(r, &patch, false).await
    {
        // A server that refuses managedFields writes still gets the label clean-up.
        tracing::debug!(error = %e, "adoption patch failed; retrying without managedFields");
        if let Some(m) = patch["metadata"].as_object_mut() {
            m.remove("managedFields");
            if !m.is_empty() {
                kube.merge_patch(r, &patch, false).await?;
            }
        }
    }
    Ok(())
}

/// The uninstaller (`internal/controller/fluxinstance_uninstaller.go`): orphan (reconcile
/// disabled, or empty inventory), else delete the controllers and wait for them (bounded),
/// strip Flux finalizers cluster-wide, delete the inventory (CRDs included, prune-disabled
/// objects and foreign ones kept), wait for the CRDs (bounded), and release the finalizer. Like
/// the operator, every error is logged and the next step runs anyway; each wait is bounded by
/// [`SimConfig::uninstall_timeout`] (the operator's 5m), so the finalizer is always released.
async fn uninstall(ctx: &Ctx, me: &ObjectRef, obj: &Value) -> Result<(), SimError> {
    let inventory = read_inventory(obj);
    if reconcile_disabled(obj) || inventory.is_empty() {
        return ctx.release_finalizer(me, obj).await;
    }
    let timeout = ctx.config.uninstall_timeout;
    let deletable = |live: &Value| owned_by_instance(live, &me.namespace) && !prune_disabled(live);
    tokio::time::sleep(ctx.config.step_delay).await;
    let mut deployments = Vec::new();
    for r in inventory.iter().filter(|r| r.kind == "Deployment") {
        match ctx.kube.get(r).await {
            Ok(Some(live)) if deletable(&live) => match ctx.kube.delete(r).await {
                Ok(true) => deployments.push(r.clone()),
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "uninstall: deleting deployments failed"),
            },
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "uninstall: reading deployments failed"),
        }
    }
    for r in &deployments {
        if let Err(e) = ctx.kube.wait_deleted(r, timeout).await {
            tracing::warn!(error = %e, "uninstall: waiting for deployments to be deleted failed");
        }
    }
    tokio::time::sleep(ctx.config.step_delay).await;
    if let Err(e) = strip_flux_finalizers(&ctx.kube).await {
        tracing::warn!(error = %e, "uninstall: removing finalizers failed");
    }
    let mut crds = Vec::new();
    for r in &inventory {
        let live = match ctx.kube.get(r).await {
            Ok(Some(live)) => live,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "uninstall: pruning failed");
                continue;
            }
        };
        if !deletable(&live) {
            continue;
        }
        match ctx.kube.delete(r).await {
            Ok(true) if r.kind == "CustomResourceDefinition" => crds.push(r.clone()),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "uninstall: pruning failed"),
        }
    }
    for r in &crds {
        if let Err(e) = ctx.kube.wait_deleted(r, timeout).await {
            tracing::warn!(error = %e, "uninstall: waiting for CRDs to be deleted failed");
        }
    }
    tokio::time::sleep(ctx.config.step_delay).await;
    // The object changed meanwhile (resourceVersion); release on the current one.
    let current = ctx.kube.get(me).await?.unwrap_or_else(|| obj.clone());
    ctx.release_finalizer(me, &current).await
}

/// Sets `finalizers: []` on every custom resource of every Flux kind (`*.toolkit.fluxcd.io`).
async fn strip_flux_finalizers(kube: &Kube) -> Result<(), OpsError> {
    let crds = kube
        .list_all("apiextensions.k8s.io/v1", "CustomResourceDefinition")
        .await?;
    for crd in crds {
        let group = crd["spec"]["group"].as_str().unwrap_or_default();
        if !group.ends_with(".toolkit.fluxcd.io") {
            continue;
        }
        let kind = crd["spec"]["names"]["kind"].as_str().unwrap_or_default();
        let Some(version) = crd["spec"]["versions"]
            .as_array()
            .and_then(|vs| vs.iter().find(|v| v["storage"] == true))
            .and_then(|v| v["name"].as_str())
        else {
            continue;
        };
        let api_version = format!("{group}/{version}");
        for o in kube.list_all(&api_version, kind).await? {
            if finalizers(&o).is_empty() {
                continue;
            }
            let mut r = ObjectRef::of(&o).map_err(|_| OpsError::NotAnObject)?;
            r.version = version.to_string();
            match kube
                .merge_patch(&r, &json!({"metadata": {"finalizers": null}}), false)
                .await
            {
                Ok(_) => {}
                Err(OpsError::Patch {
                    source: kube::Error::Api(s),
                    ..
                }) if s.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Whether `Ready` is True for the object's current generation.
pub fn is_ready(obj: &Value) -> bool {
    get_condition(obj, READY).is_some_and(|c| {
        c["status"] == "True" && c["observedGeneration"].as_i64() == Some(generation(obj))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Upstream `takeOwnershipFrom` (`internal/controller/common.go`): exact
    /// `kustomize-controller` Apply and `helm` Update, prefix `kubectl` Update/Apply and
    /// `before-first-apply` Update, then `flux` (and `OVERRIDE_MANAGERS`) Apply/Update.
    #[test]
    fn takes_over_the_managers_the_operator_matches() {
        let entry = |manager: &str, operation: &str, field: &str| {
            json!({"manager": manager, "operation": operation, "apiVersion": "apps/v1",
                   "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {format!("f:{field}"): {}}}})
        };
        let managed = vec![
            entry("kustomize-controller", "Apply", "replicas"),
            entry("kubectl-client-side-apply", "Update", "paused"),
            entry("kubectl", "Apply", "minReadySeconds"),
            entry("before-first-apply", "Update", "strategy"),
            entry("helm", "Update", "revisionHistoryLimit"),
            entry("flux", "Update", "progressDeadlineSeconds"),
            entry("corp-tool", "Apply", "selector"),
            // Not taken over: wrong operation, or not one of the managers.
            entry("helm", "Apply", "template"),
            entry("kustomize-controller", "Update", "template"),
            entry("kustomize-controller-x", "Apply", "replicas"),
            entry("terraform-provider-flux", "Apply", "template"),
            json!({"manager": "kube-controller-manager", "operation": "Update", "subresource": "status",
                   "apiVersion": "apps/v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {}}}),
            entry("flux-operator", "Apply", "replicas"),
        ];
        let managers = takeover_managers(&["flux".into(), "corp-tool".into()]);
        let got = take_over_managed_fields(&managed, &managers, "apps/v1", "T").unwrap();
        let mut want: Vec<Value> = managed[7..12].to_vec();
        want.push(
            json!({"manager": "flux-operator", "operation": "Apply", "apiVersion": "apps/v1",
            "time": "T", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {
                "f:replicas": {}, "f:paused": {}, "f:minReadySeconds": {}, "f:strategy": {},
                "f:revisionHistoryLimit": {}, "f:progressDeadlineSeconds": {}, "f:selector": {}}}}),
        );
        assert_eq!(got, want);
        // Without OVERRIDE_MANAGERS the ResourceSet reconciler leaves `flux` and `corp-tool`.
        let rset = takeover_managers(&[]);
        let kept = take_over_managed_fields(&managed[5..7], &rset, "apps/v1", "T");
        assert_eq!(kept, None);
        assert_eq!(
            take_over_managed_fields(&managed[7..], &managers, "apps/v1", "T"),
            None
        );
    }
}
