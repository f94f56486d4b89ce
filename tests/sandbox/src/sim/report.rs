//! The simulated FluxReport reporter, following the operator's
//! `internal/controller/fluxreport_controller.go` and `internal/reporter/` (v0.58.1):
//!
//! - the report is the FluxReport `flux` in the operator's namespace, created by the operator
//!   (server-side apply as `flux-operator`) with `distribution: {status: Unknown, entitlement:
//!   Unknown}` and the operator info;
//! - `spec.distribution`: `Installed` when the CRD `gitrepositories.source.toolkit.fluxcd.io`
//!   exists (else `Not Installed`), `version` from its `app.kubernetes.io/version` label,
//!   `managedBy` from `app.kubernetes.io/managed-by`, or `flux bootstrap` when it carries
//!   `kustomize.toolkit.fluxcd.io/name`; entitlement `Unknown` (the sandbox has no entitlement);
//! - `spec.cluster`: the API server's `/version` (`gitVersion`, `platform`) and the node count;
//! - `spec.operator`: `fluxcd.controlplane.io/v1`, the operator's version (its image tag) and
//!   platform;
//! - computed only when Flux CRDs (labelled `app.kubernetes.io/part-of: flux`) exist, as the
//!   operator stops at "no Flux CRDs found": `spec.components` (the namespace's Deployments
//!   labelled `app.kubernetes.io/part-of: flux`, kstatus `Current`, first container's image,
//!   sorted by name), `spec.reconcilers` (per Flux CRD at its last stored version, then
//!   FluxInstance, ResourceSet, ResourceSetInputProvider: running, failing — Ready=False but
//!   not DependencyNotReady —, suspended, and the artifacts' total size, sorted by
//!   apiVersion+kind), `spec.sync` (the Kustomization named after the instance's `sync.name` or
//!   the namespace: id, path, readiness and message, the source URL, `Suspended` prefix);
//! - `Ready=True`, `Succeeded`, "Reporting finished in …"; `lastHandledReconcileAt` echoes
//!   `reconcile.fluxcd.io/requestedAt`.
//!
//! It runs when the operator becomes available, when the report's annotations change, after
//! each change of a FluxInstance (the operator requests a report after every instance
//! reconcile) and every reporting interval (`REPORTING_INTERVAL` on the operator, default 5m).
//! The spec is only rewritten when it changed, so the report does not churn.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, DynamicObject};
use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef as KubeRef;
use kube::runtime::watcher;
use serde_json::{Map, Value, json};

use super::instance::{ConstantBackoff, Ctx, REQUESTED_AT_ANNOTATION, SimError};
use super::inventory::ObjectRef;
use super::ops::{OpsError, annotation, condition as get_condition, is_healthy};
use super::status::{self, READY, condition};

const OPERATOR_DEPLOYMENT: &str = "flux-operator";
const PART_OF: &str = "app.kubernetes.io/part-of";

fn gvk_resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("fluxcd.controlplane.io", "v1", kind),
        plural,
    )
}

/// Runs the reporter until the task is aborted.
pub async fn run(ctx: Arc<Ctx>) {
    let client = ctx.kube.client().clone();
    let deployments: Api<Deployment> = Api::all(client.clone());
    let operator = |ns: Option<String>| {
        ns.map(|ns| KubeRef::<Deployment>::new(OPERATOR_DEPLOYMENT).within(&ns))
    };
    Controller::new(
        deployments,
        watcher::Config::default().fields("metadata.name=flux-operator"),
    )
    .trigger_backoff(ConstantBackoff(Duration::from_millis(200)))
    .watches_with(
        Api::<DynamicObject>::all_with(client.clone(), &gvk_resource("FluxReport", "fluxreports")),
        gvk_resource("FluxReport", "fluxreports"),
        watcher::Config::default(),
        move |r: DynamicObject| operator(r.metadata.namespace.clone()),
    )
    .watches_with(
        Api::<DynamicObject>::all_with(client, &gvk_resource("FluxInstance", "fluxinstances")),
        gvk_resource("FluxInstance", "fluxinstances"),
        watcher::Config::default(),
        move |i: DynamicObject| operator(i.metadata.namespace.clone()),
    )
    .run(reconcile, error_policy, ctx)
    .for_each(|res| async move {
        if let Err(e) = res {
            tracing::debug!(error = %e, "report controller");
        }
    })
    .await;
}

fn error_policy(_obj: Arc<Deployment>, err: &SimError, ctx: Arc<Ctx>) -> Action {
    tracing::debug!(error = %err, "report failed, retrying");
    Action::requeue(ctx.config.retry_interval)
}

fn reporting_interval(operator: &Deployment) -> Duration {
    operator
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|p| p.containers.first())
        .and_then(|c| c.env.as_ref())
        .and_then(|env| env.iter().find(|e| e.name == "REPORTING_INTERVAL"))
        .and_then(|e| e.value.as_deref())
        .and_then(status::parse_duration)
        .unwrap_or(Duration::from_secs(300))
}

fn operator_version(operator: &Deployment) -> String {
    operator
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|p| p.containers.first())
        .and_then(|c| c.image.as_deref())
        .and_then(|image| image.rsplit_once(':').map(|(_, tag)| tag.to_owned()))
        .unwrap_or_default()
}

async fn reconcile(operator: Arc<Deployment>, ctx: Arc<Ctx>) -> Result<Action, SimError> {
    let Some(namespace) = operator.metadata.namespace.clone() else {
        return Ok(Action::await_change());
    };
    if !ctx.operator_available(&namespace).await? {
        return Ok(Action::await_change());
    }
    let started = Instant::now();
    let me = ObjectRef::of(
        &json!({"apiVersion": "fluxcd.controlplane.io/v1", "kind": "FluxReport",
                                   "metadata": {"name": "flux", "namespace": namespace}}),
    )
    .map_err(|e| SimError::Decode(e.to_string()))?;
    let platform = "linux/amd64";
    let operator_info = json!({"apiVersion": "fluxcd.controlplane.io/v1",
                               "version": operator_version(&operator), "platform": platform});
    let existing = match ctx.kube.get(&me).await? {
        Some(r) => r,
        None => {
            let initial = json!({"apiVersion": "fluxcd.controlplane.io/v1", "kind": "FluxReport",
                                 "metadata": {"name": "flux", "namespace": namespace},
                                 "spec": {"distribution": {"status": "Unknown", "entitlement": "Unknown"},
                                          "operator": operator_info}});
            ctx.kube.apply(&initial, &namespace).await?
        }
    };
    if annotation(&existing, super::instance::RECONCILE_ANNOTATION) == Some("disabled") {
        return Ok(Action::await_change());
    }
    let mut spec = compute(&ctx, &namespace).await?;
    spec.insert("operator".into(), operator_info);
    let spec = Value::Object(spec);
    let requested = annotation(&existing, REQUESTED_AT_ANNOTATION).map(str::to_owned);
    let handled = existing["status"]["lastHandledReconcileAt"].as_str();
    let is_ready = get_condition(&existing, READY).is_some_and(|c| c["status"] == "True");
    if existing["spec"] != spec || requested.as_deref() != handled || !is_ready {
        let body = json!({"apiVersion": "fluxcd.controlplane.io/v1", "kind": "FluxReport",
                          "metadata": {"name": "flux", "namespace": namespace}, "spec": spec});
        let applied = ctx.kube.apply(&body, &namespace).await?;
        let message = format!(
            "Reporting finished in {}",
            status::format_duration(started.elapsed())
        );
        let generation = applied["metadata"]["generation"].as_i64().unwrap_or(1);
        let ready = condition(READY, "True", "Succeeded", &message, generation);
        let mut patch = json!({"conditions": status::merge_conditions(&existing["status"]["conditions"], &[ready], &[])});
        if let Some(at) = requested {
            patch["lastHandledReconcileAt"] = json!(at);
        }
        ctx.patch_status(&me, patch).await?;
    }
    Ok(Action::requeue(reporting_interval(&operator)))
}

async fn get(
    ctx: &Ctx,
    api_version: &str,
    kind: &str,
    ns: &str,
    name: &str,
) -> Result<Option<Value>, SimError> {
    let r = ObjectRef::of(&json!({"apiVersion": api_version, "kind": kind,
                                  "metadata": {"name": name, "namespace": ns}}))
    .map_err(|e| SimError::Decode(e.to_string()))?;
    match ctx.kube.get(&r).await {
        Ok(found) => Ok(found),
        Err(OpsError::Discover { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The report's spec but `operator` (`FluxStatusReporter.Compute`).
async fn compute(ctx: &Ctx, namespace: &str) -> Result<Map<String, Value>, SimError> {
    let mut spec = Map::new();
    let crd = get(
        ctx,
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        "",
        "gitrepositories.source.toolkit.fluxcd.io",
    )
    .await?;
    let mut distribution = json!({"entitlement": "Unknown", "status": "Not Installed"});
    if let Some(crd) = &crd {
        distribution["status"] = json!("Installed");
        let labels = &crd["metadata"]["labels"];
        if let Some(v) = labels["app.kubernetes.io/version"].as_str() {
            distribution["version"] = json!(v);
        }
        if let Some(m) = labels["app.kubernetes.io/managed-by"].as_str() {
            distribution["managedBy"] = json!(m);
        } else if labels["kustomize.toolkit.fluxcd.io/name"].is_string() {
            distribution["managedBy"] = json!("flux bootstrap");
        }
    }
    spec.insert("distribution".into(), distribution);
    let version = ctx
        .kube
        .client()
        .apiserver_version()
        .await
        .map_err(|source| OpsError::Get {
            id: "/version".into(),
            source,
        })?;
    let nodes = ctx.kube.list_all("v1", "Node").await?.len();
    let mut cluster = json!({"serverVersion": version.git_version, "platform": version.platform});
    if nodes > 0 {
        cluster["nodes"] = json!(nodes);
    }
    spec.insert("cluster".into(), cluster);

    let crds: Vec<(String, String)> = ctx
        .kube
        .list_all("apiextensions.k8s.io/v1", "CustomResourceDefinition")
        .await?
        .iter()
        .filter(|c| c["metadata"]["labels"][PART_OF] == "flux")
        .filter_map(|c| {
            let group = c["spec"]["group"].as_str()?;
            let version = c["status"]["storedVersions"].as_array()?.last()?.as_str()?;
            Some((
                format!("{group}/{version}"),
                c["spec"]["names"]["kind"].as_str()?.to_owned(),
            ))
        })
        .collect();
    if crds.is_empty() {
        return Ok(spec);
    }

    let mut components: Vec<Value> = ctx
        .kube
        .list_all("apps/v1", "Deployment")
        .await?
        .into_iter()
        .filter(|d| d["metadata"]["namespace"] == namespace && d["metadata"]["labels"][PART_OF] == "flux")
        .map(|d| {
            let ready = is_healthy(&d);
            let replicas = d["status"]["replicas"].as_i64().unwrap_or(0);
            let status = if ready {
                format!("Current Deployment is available. Replicas: {replicas}")
            } else {
                "InProgress Deployment does not have minimum availability.".to_owned()
            };
            json!({"name": d["metadata"]["name"], "ready": ready, "status": status,
                   "image": d["spec"]["template"]["spec"]["containers"][0]["image"].as_str().unwrap_or_default()})
        })
        .collect();
    components.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    spec.insert("components".into(), Value::Array(components));

    let mut reconcilers = Vec::new();
    let operator_kinds = [
        (
            "fluxcd.controlplane.io/v1".to_owned(),
            "FluxInstance".to_owned(),
        ),
        (
            "fluxcd.controlplane.io/v1".to_owned(),
            "ResourceSet".to_owned(),
        ),
        (
            "fluxcd.controlplane.io/v1".to_owned(),
            "ResourceSetInputProvider".to_owned(),
        ),
    ];
    for (i, (api_version, kind)) in crds.iter().chain(&operator_kinds).enumerate() {
        let is_operator_kind = i >= crds.len();
        let items = ctx.kube.list_all(api_version, kind).await?;
        let (mut suspended, mut failing, mut size) = (0, 0, 0i64);
        for item in &items {
            let is_suspended = if is_operator_kind {
                annotation(item, super::instance::RECONCILE_ANNOTATION) == Some("disabled")
            } else {
                item["spec"]["suspend"] == true
            };
            if is_suspended {
                suspended += 1;
            } else if get_condition(item, READY)
                .is_some_and(|c| c["status"] == "False" && c["reason"] != "DependencyNotReady")
            {
                failing += 1;
            }
            size += item["status"]["artifact"]["size"].as_i64().unwrap_or(0);
        }
        let mut stats =
            json!({"running": items.len() - suspended, "failing": failing, "suspended": suspended});
        if !is_operator_kind && size > 0 {
            stats["totalSize"] = json!(format_size(size));
        }
        reconcilers.push(json!({"apiVersion": api_version, "kind": kind, "stats": stats}));
    }
    reconcilers.sort_by_key(|r| {
        format!(
            "{}{}",
            r["apiVersion"].as_str().unwrap_or_default(),
            r["kind"].as_str().unwrap_or_default()
        )
    });
    spec.insert("reconcilers".into(), Value::Array(reconcilers));

    let instance = get(
        ctx,
        "fluxcd.controlplane.io/v1",
        "FluxInstance",
        namespace,
        "flux",
    )
    .await?;
    let sync_name = instance
        .as_ref()
        .and_then(|i| i["spec"]["sync"]["name"].as_str().map(str::to_owned))
        .unwrap_or_else(|| namespace.to_owned());
    if let Some((api_version, _)) = crds.iter().find(|(_, k)| k == "Kustomization")
        && let Some(ks) = get(ctx, api_version, "Kustomization", namespace, &sync_name).await?
    {
        let mut sync = json!({"id": format!("kustomization/{sync_name}"), "ready": false, "status": "not initialized"});
        if let Some(path) = ks["spec"]["path"].as_str() {
            sync["path"] = json!(path);
        }
        if let Some(c) = get_condition(&ks, READY) {
            sync["ready"] = json!(c["status"] != "False");
            sync["status"] = c["message"].clone();
        }
        let source_kind = ks["spec"]["sourceRef"]["kind"].as_str().unwrap_or_default();
        if let Some((api_version, _)) = crds.iter().find(|(_, k)| k == source_kind)
            && let Some(source) = get(ctx, api_version, source_kind, namespace, &sync_name).await?
        {
            let url = if source_kind == "Bucket" {
                format!(
                    "{}/{}",
                    source["spec"]["endpoint"].as_str().unwrap_or_default(),
                    source["spec"]["bucketName"].as_str().unwrap_or_default()
                )
            } else {
                source["spec"]["url"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            };
            sync["source"] = json!(url);
            if let Some(c) = get_condition(&source, READY).filter(|c| c["status"] == "False") {
                sync["ready"] = json!(false);
                sync["status"] = json!(format!(
                    "{}\n{}",
                    sync["status"].as_str().unwrap_or_default(),
                    c["message"].as_str().unwrap_or_default()
                ));
            }
        }
        if ks["spec"]["suspend"] == true {
            sync["status"] = json!(format!(
                "Suspended {}",
                sync["status"].as_str().unwrap_or_default()
            ));
        }
        spec.insert("sync".into(), sync);
    }
    Ok(spec)
}

/// Bytes as the operator prints them (`512 B`, `1.5 KiB`).
pub fn format_size(bytes: i64) -> String {
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let units = ['K', 'M', 'G', 'T', 'P', 'E'];
    let mut div = 1024i64;
    let mut exp = 0;
    let mut n = bytes / 1024;
    while n >= 1024 && exp < units.len() - 1 {
        div *= 1024;
        exp += 1;
        n /= 1024;
    }
    #[allow(clippy::cast_precision_loss)]
    let value = bytes as f64 / div as f64;
    format!("{value:.1} {}iB", units[exp])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_print_as_the_operator_prints_them() {
        // reporter.formatSize.
        assert_eq!(format_size(512), "512 B");
        assert_eq!(format_size(1536), "1.5 KiB");
        assert_eq!(format_size(5 * 1024 * 1024), "5.0 MiB");
    }
}
