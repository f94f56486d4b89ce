//! The simulated ResourceSet reconciler: finalizer, `dependsOn` readiness (re-checked every
//! [`SimConfig::dependency_requeue`](super::SimConfig)), rendering of `resources`,
//! `resourcesTemplate` and `steps` with the input sets (inline `inputs`, and `inputsFrom`
//! the `status.exportedInputs` of ResourceSetInputProviders, re-rendered when their
//! `lastExportedRevision` changes), server-side apply
//! with the owner labels, inventory and garbage collection, `wait`, and pruning on delete.
//!
//! `dependsOn[].readyExpr` is evaluated with the `cel` crate (through `kube_cel`), the
//! dependency's top-level fields bound as variables (`status.conditions.filter(...)`); a parse
//! error stalls with `InvalidCELExpression`.
//!
//! Failures follow upstream `internal/controller/resourceset_controller.go`: a build or
//! input error stalls (`BuildFailed`); an apply error (a kind that is not served included) or a
//! health-check timeout is `Ready=False`, `ReconciliationFailed`, "reconciliation failed: ...",
//! `Reconciling`/`ProgressingWithRetry`, retried every
//! [`SimConfig::retry_interval`](super::SimConfig). Created with
//! `fluxcd.controlplane.io/reconcile: disabled`, the initial status is `Ready=True`,
//! `ReconciliationDisabled` (upstream `internal/controller/common.go`).
//!
//! `serviceAccountName` (else the operator's `DEFAULT_SERVICE_ACCOUNT`,
//! [`SimConfig::default_service_account`](super::SimConfig)) is impersonated for apply, prune
//! and health checks when the simulator runs with a kubeconfig on a real API server; in-process
//! (kube-sandbox has no RBAC) only its existence is modelled: on delete, without it, pruning is
//! skipped and the finalizer released.
//!
//! Not simulated: the `copyFrom`/`checksumFrom`/`convertKubeConfigFrom` annotations, and the
//! template functions listed in [`super::template`].

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, DynamicObject};
use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef as KubeRef;
use kube::runtime::watcher;
use serde_json::{Map, Value, json};

use super::inputprovider::labels_match;
use super::instance::{
    ConstantBackoff, Ctx, REQUESTED_AT_ANNOTATION, SimError, adopt, generation, prune_disabled,
    reconcile_disabled, reconcile_every, takeover_managers, wait_current,
};
use super::inventory::{ObjectRef, digest_objects, read_inventory};
use super::ops::{Kube, annotation, finalizers, is_deleting, is_healthy};
use super::status::{self, READY, RECONCILING, STALLED, condition};
use super::template::{self, combine_inputs, inline_input_sets, render_resources};
use super::{FINALIZER, Failure};

/// Owner label: the ResourceSet's name.
pub const OWNER_NAME_LABEL: &str = "resourceset.fluxcd.controlplane.io/name";
/// Owner label: the ResourceSet's namespace.
pub const OWNER_NAMESPACE_LABEL: &str = "resourceset.fluxcd.controlplane.io/namespace";

fn resourceset_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("fluxcd.controlplane.io", "v1", "ResourceSet"),
        "resourcesets",
    )
}

fn provider_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("fluxcd.controlplane.io", "v1", "ResourceSetInputProvider"),
        "resourcesetinputproviders",
    )
}

/// Runs the ResourceSet controller until the task is aborted.
pub async fn run(ctx: Arc<Ctx>) {
    let ar = resourceset_resource();
    let client = ctx.kube.client().clone();
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    let deployments: Api<Deployment> = Api::all(client);
    let controller = Controller::new_with(api, watcher::Config::default(), ar.clone());
    let store = controller.store();
    let provider_store = store.clone();
    let ar_map = ar.clone();
    let ar_providers = ar.clone();
    let script =
        tokio_stream::wrappers::WatchStream::new(ctx.config.script.subscribe()).map(|_| ());
    controller
        .trigger_backoff(ConstantBackoff(std::time::Duration::from_millis(200)))
        .watches(
            deployments,
            watcher::Config::default(),
            move |d: Deployment| {
                let labels = d.metadata.labels.clone().unwrap_or_default();
                if d.metadata.name.as_deref() == Some("flux-operator") {
                    // The operator (re)started: every ResourceSet.
                    store
                        .state()
                        .iter()
                        .map(|o| KubeRef::from_obj_with(o.as_ref(), ar_map.clone()))
                        .collect::<Vec<_>>()
                } else if let (Some(n), Some(ns)) = (
                    labels.get(OWNER_NAME_LABEL),
                    labels.get(OWNER_NAMESPACE_LABEL),
                ) {
                    vec![KubeRef::new_with(n, ar_map.clone()).within(ns)]
                } else {
                    Vec::new()
                }
            },
        )
        .watches_with(
            Api::<DynamicObject>::all_with(ctx.kube.client().clone(), &provider_resource()),
            provider_resource(),
            watcher::Config::default(),
            move |p: DynamicObject| {
                // A provider changed: every ResourceSet of its namespace re-checks its inputs.
                let ns = p.metadata.namespace.clone().unwrap_or_default();
                provider_store
                    .state()
                    .iter()
                    .filter(|o| o.metadata.namespace.as_deref() == Some(ns.as_str()))
                    .map(|o| KubeRef::from_obj_with(o.as_ref(), ar_providers.clone()))
                    .collect::<Vec<_>>()
            },
        )
        .reconcile_all_on(script)
        .run(reconcile, error_policy, ctx)
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::debug!(error = %e, "resourceset controller");
            }
        })
        .await;
}

fn error_policy(_obj: Arc<DynamicObject>, err: &SimError, ctx: Arc<Ctx>) -> Action {
    tracing::debug!(error = %err, "resourceset reconcile failed, retrying");
    Action::requeue(ctx.config.retry_interval)
}

async fn reconcile(obj: Arc<DynamicObject>, ctx: Arc<Ctx>) -> Result<Action, SimError> {
    let obj = serde_json::to_value(&*obj).map_err(|e| SimError::Decode(e.to_string()))?;
    let me = ObjectRef::of(&obj).map_err(|e| SimError::Decode(e.to_string()))?;
    if !ctx.any_operator_available().await? {
        return Ok(Action::await_change());
    }
    let Some(obj) = ctx.kube.get(&me).await? else {
        return Ok(Action::await_change());
    };
    if is_deleting(&obj) {
        if finalizers(&obj).iter().any(|f| f == FINALIZER) {
            finalize(&ctx, &me, &obj).await?;
        }
        return Ok(Action::await_change());
    }
    if !finalizers(&obj).iter().any(|f| f == FINALIZER) {
        // First sight: finalizer and initial status (`ReconciliationDisabled` at once when
        // created with reconcile disabled), then reconcile again.
        ctx.initialize(&me, obj).await?;
        return Ok(Action::requeue(std::time::Duration::from_millis(1)));
    }
    if reconcile_disabled(&obj) {
        return Ok(Action::await_change());
    }
    if !ctx.needs_reconcile(&obj) && !providers_changed(&ctx, &me, &obj).await? {
        return Ok(ctx.idle_action(&obj));
    }
    reconcile_set(&ctx, &me, &obj).await
}

/// Checks `dependsOn` as the operator does (`checkDependencies` in
/// `internal/controller/resourceset_controller.go`): the namespace is used **as given** — a
/// namespaced dependency without one is not found, it is not defaulted to the ResourceSet's;
/// with `ready: true`, a ResourceSet or ResourceSetInputProvider must pass the operator's
/// `HealthCheckExpr` (every Ready condition True for the current generation), any other kind
/// must be kstatus-current ([`is_healthy`]: a Deployment Available, a ConfigMap as soon as it
/// exists), and `readyExpr` replaces both (it is only read with `ready: true`).
async fn check_dependencies(ctx: &Ctx, obj: &Value) -> Result<DepCheck, SimError> {
    for dep in obj["spec"]["dependsOn"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let api_version = dep["apiVersion"].as_str().unwrap_or_default();
        let kind = dep["kind"].as_str().unwrap_or_default();
        let name = dep["name"].as_str().unwrap_or_default();
        let namespace = dep["namespace"].as_str().unwrap_or_default();
        let shown = if namespace.is_empty() {
            format!("{api_version}/{kind}/{name}")
        } else {
            format!("{api_version}/{kind}/{namespace}/{name}")
        };
        let target = ObjectRef::of(&json!({"apiVersion": api_version, "kind": kind,
                                           "metadata": {"name": name, "namespace": namespace}}))
        .map_err(|e| SimError::Decode(e.to_string()))?;
        let namespaced = match ctx.kube.resource(api_version, kind).await {
            Ok((_, caps)) => matches!(caps.scope, kube::discovery::Scope::Namespaced),
            Err(e) => {
                return Ok(DepCheck::NotReady(format!(
                    "dependency {shown} not found: {e}"
                )));
            }
        };
        let live = if namespaced && namespace.is_empty() {
            None
        } else {
            ctx.kube.get(&target).await?
        };
        let Some(mut live) = live else {
            let plural = format!("{}s", kind.to_lowercase());
            return Ok(DepCheck::NotReady(format!(
                "dependency {shown} not found: {plural} \"{name}\" not found"
            )));
        };
        if dep["ready"].as_bool() != Some(true) {
            continue;
        }
        // List items of built-in kinds come without apiVersion/kind.
        live["apiVersion"] = json!(api_version);
        live["kind"] = json!(kind);
        let ready_expr_src = dep["readyExpr"].as_str().filter(|e| !e.is_empty());
        let (ready, detail) = match ready_expr_src {
            Some(expr) => match ready_expr(expr, &live) {
                Ok(r) => (r, format!(": expression '{expr}'")),
                Err(message) => return Ok(DepCheck::InvalidExpr(message)),
            },
            None if matches!(kind, "ResourceSet" | "ResourceSetInputProvider")
                && api_version.starts_with("fluxcd.controlplane.io/") =>
            {
                (is_healthy(&live), String::new())
            }
            None => (is_healthy(&live), ": status InProgress".to_string()),
        };
        if !ready {
            return Ok(DepCheck::NotReady(format!(
                "dependency {shown} not ready{detail}"
            )));
        }
    }
    Ok(DepCheck::Ready)
}

/// Outcome of the `dependsOn` check.
enum DepCheck {
    Ready,
    NotReady(String),
    InvalidExpr(String),
}

fn to_cel(v: &Value) -> kube_cel::cel::Value {
    use kube_cel::cel::Value as C;
    match v {
        Value::Null => C::Null,
        Value::Bool(b) => C::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => C::Int(i),
            (None, Some(u)) => C::UInt(u),
            _ => C::Float(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => C::String(Arc::new(s.clone())),
        Value::Array(a) => C::List(Arc::new(a.iter().map(to_cel).collect())),
        Value::Object(m) => {
            let map: std::collections::HashMap<String, C> =
                m.iter().map(|(k, v)| (k.clone(), to_cel(v))).collect();
            map.into()
        }
    }
}

/// Evaluates a `readyExpr` with the dependency's top-level fields (`apiVersion`, `kind`,
/// `metadata`, `spec`, `status`, ...) as variables. A compile error is `Err` (the operator's
/// `InvalidCELExpression`); an evaluation error or a non-boolean result is "not ready".
fn ready_expr(expr: &str, live: &Value) -> Result<bool, String> {
    let program = kube_cel::cel::Program::compile(expr)
        .map_err(|e| format!("failed to parse CEL expression '{expr}': {e}"))?;
    let mut ctx = kube_cel::cel::Context::default();
    if let Some(m) = live.as_object() {
        for (k, v) in m {
            ctx.add_variable_from_value(k.clone(), to_cel(v));
        }
    }
    for k in ["metadata", "spec", "status"] {
        if live.get(k).is_none() {
            ctx.add_variable_from_value(k, to_cel(&json!({})));
        }
    }
    Ok(matches!(
        program.execute(&ctx),
        Ok(kube_cel::cel::Value::Bool(true))
    ))
}

/// The providers `inputsFrom` selects (same namespace, by name or label selector), each with
/// its input sets read from `status.exportedInputs` (a provider that has not exported yet has
/// none), and a fingerprint of their `lastExportedRevision`s.
async fn provider_sets(
    ctx: &Ctx,
    me: &ObjectRef,
    spec: &Value,
) -> Result<(Vec<(String, Vec<Value>)>, String), SimError> {
    let mut providers: Vec<(String, Vec<Value>)> = Vec::new();
    let mut fingerprint = String::new();
    let Some(refs) = spec["inputsFrom"].as_array() else {
        return Ok((providers, fingerprint));
    };
    let all = ctx
        .kube
        .list_all("fluxcd.controlplane.io/v1", "ResourceSetInputProvider")
        .await?;
    for rf in refs {
        if let Some(n) = rf["name"].as_str()
            && !all.iter().any(|p| {
                p["metadata"]["namespace"] == me.namespace.as_str() && p["metadata"]["name"] == n
            })
        {
            return Err(SimError::ComputeInputs(format!(
                "failed to get provider {}/{n}: resourcesetinputproviders.fluxcd.controlplane.io \"{n}\" not found",
                me.namespace
            )));
        }
        for p in all.iter().filter(|p| {
            p["metadata"]["namespace"] == me.namespace.as_str()
                && (rf["name"]
                    .as_str()
                    .is_some_and(|n| p["metadata"]["name"] == n)
                    || (rf["name"].is_null()
                        && rf["selector"].is_object()
                        && labels_match(&p["metadata"]["labels"], &rf["selector"])))
        }) {
            let pname = p["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let prov = json!({"apiVersion": "fluxcd.controlplane.io/v1", "kind": "ResourceSetInputProvider",
                              "name": pname, "namespace": me.namespace});
            let sets = p["status"]["exportedInputs"]
                .as_array()
                .map(|list| {
                    list.iter()
                        .map(|input| {
                            let mut m = input.as_object().cloned().unwrap_or_default();
                            m.insert("provider".into(), prov.clone());
                            Value::Object(m)
                        })
                        .collect()
                })
                .unwrap_or_default();
            fingerprint.push_str(&format!(
                "{pname}={};",
                p["status"]["lastExportedRevision"]
                    .as_str()
                    .unwrap_or_default()
            ));
            if !providers.iter().any(|(n, _)| *n == pname) {
                providers.push((pname, sets));
            }
        }
    }
    // The operator combines its providers sorted by kind, namespace and name.
    providers.sort_by(|a, b| a.0.cmp(&b.0));
    Ok((providers, fingerprint))
}

/// Whether the exported inputs of the providers a ResourceSet takes inputs from changed since
/// its last reconciliation (the operator watches `status.lastExportedRevision`).
async fn providers_changed(ctx: &Ctx, me: &ObjectRef, obj: &Value) -> Result<bool, SimError> {
    if obj["spec"]["inputsFrom"].as_array().is_none() {
        return Ok(false);
    }
    let fingerprint = match provider_sets(ctx, me, &obj["spec"]).await {
        Ok((_, f)) => f,
        Err(SimError::ComputeInputs(m)) => format!("error: {m}"),
        Err(e) => return Err(e),
    };
    Ok(ctx.provider_revisions(obj).as_deref() != Some(fingerprint.as_str()))
}

/// Input sets: inline `inputs` and the `inputsFrom` providers' exported inputs, combined by
/// `inputStrategy`.
async fn input_sets(ctx: &Ctx, me: &ObjectRef, obj: &Value) -> Result<Vec<Value>, SimError> {
    let spec = &obj["spec"];
    let own = json!({"apiVersion": "fluxcd.controlplane.io/v1", "kind": "ResourceSet",
                     "name": me.name, "namespace": me.namespace});
    let mut providers: Vec<(String, Vec<Value>)> = Vec::new();
    if let Some(inline) = spec["inputs"].as_array() {
        providers.push((me.name.clone(), inline_input_sets(inline, &own)));
    }
    let (from, fingerprint) = match provider_sets(ctx, me, spec).await {
        Ok(x) => x,
        Err(SimError::ComputeInputs(m)) => {
            ctx.set_provider_revisions(obj, format!("error: {m}"));
            return Err(SimError::ComputeInputs(m));
        }
        Err(e) => return Err(e),
    };
    ctx.set_provider_revisions(obj, fingerprint);
    providers.extend(from);
    let strategy = spec["inputStrategy"]["name"].as_str().unwrap_or("Flatten");
    let include_empty = spec["inputStrategy"]["includeEmptyProviders"]
        .as_bool()
        .unwrap_or(false);
    Ok(combine_inputs(strategy, &providers, include_empty))
}

/// Renders the objects, grouped by step (one group without `steps`).
fn render(obj: &Value, sets: &[Value]) -> Result<Vec<Vec<Value>>, template::TemplateError> {
    let spec = &obj["spec"];
    let empty = Vec::new();
    match spec["steps"].as_array() {
        Some(steps) => steps
            .iter()
            .map(|s| {
                render_resources(
                    s["resources"].as_array().unwrap_or(&empty),
                    s["resourcesTemplate"].as_str(),
                    sets,
                )
            })
            .collect(),
        None => Ok(vec![render_resources(
            spec["resources"].as_array().unwrap_or(&empty),
            spec["resourcesTemplate"].as_str(),
            sets,
        )?]),
    }
}

/// Adds the owner labels and `commonMetadata`.
fn stamp(o: &mut Value, me: &ObjectRef, common: &Value) {
    let mut labels: Map<String, Value> = o["metadata"]["labels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    labels.extend(common["labels"].as_object().cloned().unwrap_or_default());
    labels.insert(OWNER_NAME_LABEL.into(), json!(me.name));
    labels.insert(OWNER_NAMESPACE_LABEL.into(), json!(me.namespace));
    o["metadata"]["labels"] = Value::Object(labels);
    if let Some(ann) = common["annotations"].as_object() {
        let mut a: Map<String, Value> = o["metadata"]["annotations"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        a.extend(ann.clone());
        o["metadata"]["annotations"] = Value::Object(a);
    }
}

fn owned_by(live: &Value, me: &ObjectRef) -> bool {
    let l = &live["metadata"]["labels"];
    l[OWNER_NAME_LABEL] == me.name.as_str() && l[OWNER_NAMESPACE_LABEL] == me.namespace.as_str()
}

async fn reconcile_set(ctx: &Ctx, me: &ObjectRef, obj: &Value) -> Result<Action, SimError> {
    let started = Instant::now();
    let gen_ = generation(obj);
    let failures = ctx.config.script.failures_for("ResourceSet", obj);

    let dep_check = check_dependencies(ctx, obj).await?;
    if let DepCheck::InvalidExpr(message) = dep_check {
        finish(
            ctx,
            me,
            obj,
            Err(("InvalidCELExpression", message, true)),
            None,
            started,
        )
        .await?;
        return Ok(Action::await_change());
    }
    if let DepCheck::NotReady(message) = dep_check {
        let message = format!("Retrying dependency check: {message}");
        let conds = [
            condition(
                RECONCILING,
                "True",
                "Progressing",
                "Reconciliation in progress",
                gen_,
            ),
            condition(READY, "False", "DependencyNotReady", &message, gen_),
        ];
        let st = &obj["status"];
        ctx.patch_status(
            me,
            json!({"conditions": status::merge_conditions(&st["conditions"], &conds, &[STALLED])}),
        )
        .await?;
        ctx.record(obj, false);
        return Ok(Action::requeue(ctx.config.dependency_requeue));
    }
    let progressing = [
        condition(
            RECONCILING,
            "True",
            "Progressing",
            "Reconciliation in progress",
            gen_,
        ),
        condition(
            READY,
            "Unknown",
            "Progressing",
            "Reconciliation in progress",
            gen_,
        ),
    ];
    ctx.patch_status(me, json!({"conditions": status::merge_conditions(&obj["status"]["conditions"], &progressing, &[])}))
        .await?;
    tokio::time::sleep(ctx.config.step_delay).await;

    let scripted = failures.iter().find_map(|f| match f {
        Failure::BuildFailed(m) => Some(m.clone()),
        _ => None,
    });
    // `inputsFrom` naming a provider that does not exist stalls (upstream `getInputs` error:
    // "failed to compute inputs: ...", terminal until the spec changes or a provider appears).
    let sets = match input_sets(ctx, me, obj).await {
        Ok(sets) => sets,
        Err(SimError::ComputeInputs(m)) => {
            let message = format!("failed to compute inputs: {m}");
            finish(
                ctx,
                me,
                obj,
                Err(("BuildFailed", message, true)),
                None,
                started,
            )
            .await?;
            return Ok(Action::await_change());
        }
        Err(e) => return Err(e),
    };
    let from_providers = obj["spec"]["inputsFrom"]
        .as_array()
        .is_some_and(|a| !a.is_empty());
    let rendered = match scripted {
        Some(m) => Err(m),
        // Providers that exported nothing (yet): an empty set is reconciled, so everything
        // generated before is garbage-collected, and the ResourceSet is Ready.
        None if from_providers && sets.is_empty() => Ok(Vec::new()),
        None => render(obj, &sets).map_err(|e| format!("build failed: {e}")),
    };
    let groups = match rendered {
        Ok(g) => g,
        Err(message) => {
            finish(
                ctx,
                me,
                obj,
                Err(("BuildFailed", message, true)),
                None,
                started,
            )
            .await?;
            return Ok(Action::await_change());
        }
    };
    let all: Vec<Value> = groups.iter().flatten().cloned().collect();
    let digest = digest_objects(&all);
    let common = obj["spec"]["commonMetadata"].clone();
    let wait = obj["spec"]["wait"].as_bool() == Some(true);
    let timeout = ctx.health_timeout(obj);
    // Apply, prune and health-check as the ResourceSet's service account.
    let kube = kube_for(ctx, me, obj)?;
    let managers = takeover_managers(&ctx.config.override_field_managers);
    let mut inventory: Vec<ObjectRef> = Vec::new();
    let n_groups = groups.len();
    for (i, group) in groups.into_iter().enumerate() {
        let mut applied = Vec::new();
        let (first, rest): (Vec<Value>, Vec<Value>) = group
            .into_iter()
            .filter(|o| annotation(o, "fluxcd.controlplane.io/reconcile") != Some("disabled"))
            .partition(|o| {
                matches!(
                    o["kind"].as_str(),
                    Some("Namespace" | "CustomResourceDefinition")
                )
            });
        for mut o in first.into_iter().chain(rest) {
            stamp(&mut o, me, &common);
            // A kind that is not served is an apply error like any other: reported as
            // `ReconciliationFailed` and retried (upstream `resourceset_controller.go`).
            if o["kind"] != "CustomResourceDefinition"
                && let Err(e) = wait_for_kind(ctx, &o).await
            {
                return reconciliation_failed(ctx, me, obj, &e, started).await;
            }
            let adopted = match ObjectRef::of(&o) {
                Ok(r) => adopt(&kube, &r, &managers).await,
                Err(_) => Ok(()),
            };
            let applied_now = match adopted {
                Ok(()) => kube.apply(&o, &me.namespace).await,
                Err(e) => Err(e),
            };
            let live = match applied_now {
                Ok(l) => l,
                Err(e) => {
                    return reconciliation_failed(ctx, me, obj, &e, started).await;
                }
            };
            let r = ObjectRef::of(&live).map_err(|e| SimError::Decode(e.to_string()))?;
            applied.push(r);
        }
        // Steps are health-checked before the next; the last one only with `wait`.
        if (i + 1 < n_groups || wait)
            && let Err(message) = wait_current(&kube, &applied, timeout).await
        {
            inventory.extend(applied);
            write_inventory(ctx, me, &inventory).await?;
            return reconciliation_failed(ctx, me, obj, &message, started).await;
        }
        inventory.extend(applied);
    }
    // Garbage collection.
    for stale in read_inventory(obj)
        .into_iter()
        .filter(|p| !inventory.iter().any(|n| n.id() == p.id()))
    {
        if let Some(live) = kube.get(&stale).await?
            && owned_by(&live, me)
            && !prune_disabled(&live)
        {
            kube.delete(&stale).await?;
        }
    }
    write_inventory(ctx, me, &inventory).await?;
    for f in &failures {
        match f {
            Failure::SlowReadiness(d) => tokio::time::sleep(*d).await,
            Failure::HealthCheckFailed(m) => {
                return reconciliation_failed(ctx, me, obj, &m, started).await;
            }
            Failure::BuildFailed(_) | Failure::ArtifactFailed(_) => {}
        }
    }
    finish(ctx, me, obj, Ok(()), Some(digest), started).await?;
    Ok(Action::requeue(reconcile_every(obj)))
}

/// The operator's answer to an apply or health-check error (`Ready=False`,
/// `ReconciliationFailed`, message `reconciliation failed: <error>`): reported, then retried.
async fn reconciliation_failed(
    ctx: &Ctx,
    me: &ObjectRef,
    obj: &Value,
    error: &(dyn std::fmt::Display + Sync),
    started: Instant,
) -> Result<Action, SimError> {
    let failed = (
        "ReconciliationFailed",
        format!("reconciliation failed: {error}"),
        false,
    );
    finish(ctx, me, obj, Err(failed), None, started).await?;
    Ok(Action::requeue(ctx.config.retry_interval))
}

/// Waits (bounded by [`SimConfig::uninstall_timeout`](super::SimConfig)) for a kind to be
/// served, when a CRD applied just before is not Established; the error names the kind.
async fn wait_for_kind(ctx: &Ctx, o: &Value) -> Result<(), SimError> {
    let api_version = o["apiVersion"].as_str().unwrap_or_default();
    let kind = o["kind"].as_str().unwrap_or_default();
    let deadline = Instant::now() + ctx.config.uninstall_timeout;
    loop {
        match ctx.kube.resource(api_version, kind).await {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() >= deadline => return Err(e.into()),
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
}

async fn write_inventory(
    ctx: &Ctx,
    me: &ObjectRef,
    inventory: &[ObjectRef],
) -> Result<(), SimError> {
    let entries: Vec<Value> = inventory.iter().map(ObjectRef::entry).collect();
    ctx.patch_status(me, json!({"inventory": {"entries": entries}}))
        .await?;
    Ok(())
}

async fn finish(
    ctx: &Ctx,
    me: &ObjectRef,
    obj: &Value,
    outcome: Result<(), (&str, String, bool)>,
    digest: Option<String>,
    started: Instant,
) -> Result<(), SimError> {
    let gen_ = generation(obj);
    let current = ctx.kube.get(me).await?.unwrap_or_else(|| obj.clone());
    let st = &current["status"];
    let mut patch = json!({});
    if let Some(at) = annotation(obj, REQUESTED_AT_ANNOTATION) {
        patch["lastHandledReconcileAt"] = json!(at);
    }
    let took = started.elapsed();
    let settled = match outcome {
        Ok(()) => {
            let msg = format!(
                "Reconciliation finished in {}",
                status::format_duration(took)
            );
            let ready = condition(READY, "True", "ReconciliationSucceeded", &msg, gen_);
            patch["conditions"] =
                status::merge_conditions(&st["conditions"], &[ready], &[RECONCILING, STALLED]);
            if let Some(d) = &digest {
                patch["lastAppliedRevision"] = json!(d);
                let n = st["inventory"]["entries"].as_array().map_or(0, Vec::len);
                patch["history"] = status::push_history(
                    &st["history"],
                    d,
                    "ReconciliationSucceeded",
                    took,
                    json!({"resources": n.to_string()}),
                );
            }
            true
        }
        Err((reason, message, stalled)) => {
            patch["conditions"] =
                status::failure_conditions(&st["conditions"], reason, &message, stalled, gen_);
            stalled
        }
    };
    ctx.patch_status(me, patch).await?;
    ctx.record(obj, settled);
    Ok(())
}

/// The identity a ResourceSet applies and prunes as: `spec.serviceAccountName`, else the
/// operator's `DEFAULT_SERVICE_ACCOUNT`, in the ResourceSet's namespace (`None`: the operator's
/// own).
fn service_account(ctx: &Ctx, obj: &Value) -> Option<String> {
    obj["spec"]["serviceAccountName"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .or_else(|| ctx.config.default_service_account.clone())
}

/// A client acting as the ResourceSet's service account (upstream `makeImpersonator`): with a
/// kubeconfig ([`super::SimConfig::kube_config`], the standalone simulator on a real API server)
/// it impersonates `system:serviceaccount:<namespace>:<name>`, so the API server's RBAC
/// decides; in-process (kube-sandbox has no RBAC) it is the operator's own client.
fn kube_for(ctx: &Ctx, me: &ObjectRef, obj: &Value) -> Result<Kube, SimError> {
    match (service_account(ctx, obj), &ctx.config.kube_config) {
        (Some(sa), Some(config)) => {
            let mut config = config.clone();
            config.auth_info.impersonate =
                Some(format!("system:serviceaccount:{}:{sa}", me.namespace));
            let client = kube::Client::try_from(config)
                .map_err(|e| SimError::Decode(format!("impersonating client: {e}")))?;
            Ok(Kube::new(client, super::FIELD_MANAGER))
        }
        _ => Ok(ctx.kube.clone()),
    }
}

/// Delete (upstream `uninstall` in `resourceset_controller.go`): orphan when reconcile is
/// disabled on the ResourceSet or nothing was applied. The ResourceSet's own
/// `fluxcd.controlplane.io/prune: disabled` annotation is **not** read here: only objects
/// annotated so are kept. When it has a service account that does not exist (anymore), pruning
/// is skipped and the finalizer released: the objects are left behind. Otherwise the inventory
/// is deleted as that account — Kustomizations and HelmReleases first (their controllers
/// finalize them, a bounded wait), then the rest.
async fn finalize(ctx: &Ctx, me: &ObjectRef, obj: &Value) -> Result<(), SimError> {
    let inventory = read_inventory(obj);
    let can_impersonate = match service_account(ctx, obj) {
        None => true,
        Some(sa) => {
            let r = ObjectRef {
                namespace: me.namespace.clone(),
                name: sa,
                group: String::new(),
                kind: "ServiceAccount".into(),
                version: "v1".into(),
            };
            ctx.kube.get(&r).await.ok().flatten().is_some()
        }
    };
    if !can_impersonate {
        tracing::warn!(resourceset = %me.id(), "service account not found: skip pruning");
    }
    if !(reconcile_disabled(obj) || inventory.is_empty()) && can_impersonate {
        let kube = kube_for(ctx, me, obj)?;
        let flux_group = |r: &ObjectRef| {
            r.group == "kustomize.toolkit.fluxcd.io" || r.group == "helm.toolkit.fluxcd.io"
        };
        let (flux, rest): (Vec<ObjectRef>, Vec<ObjectRef>) =
            inventory.into_iter().partition(flux_group);
        for batch in [flux, rest] {
            let mut deleted = Vec::new();
            for r in batch {
                let live = match kube.get(&r).await {
                    Ok(Some(l)) => l,
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, "pruning for deleted resource failed");
                        continue;
                    }
                };
                if owned_by(&live, me) && !prune_disabled(&live) {
                    match kube.delete(&r).await {
                        Ok(true) => deleted.push(r),
                        Ok(false) => {}
                        Err(e) => tracing::warn!(error = %e, "pruning for deleted resource failed"),
                    }
                }
            }
            for r in deleted.iter().filter(|r| flux_group(r)) {
                // Flux controllers finalize their objects; bounded like the operator's wait.
                let _ = kube.wait_deleted(r, ctx.config.uninstall_timeout).await;
            }
        }
    }
    let current = ctx.kube.get(me).await?.unwrap_or_else(|| obj.clone());
    ctx.release_finalizer(me, &current).await
}
