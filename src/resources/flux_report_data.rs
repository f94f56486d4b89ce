//! The `flux_report` data source: the Flux Operator's `FluxReport` of a namespace — what Flux
//! distribution is installed and who manages it, the cluster, the operator, every controller
//! with its image and readiness, the statistics of every reconciler kind, and the cluster sync —
//! as typed attributes (snake_case forms of the report's fields, read generically).
//!
//! Lives in `resources/`: may use `framework`, `flux`, `cluster`, never `provider`.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::cluster::objects::ObjectRef;
use crate::flux::instance::{API_VERSION, DEFAULT_NAMESPACE};
use crate::flux::report::{FluxReport, KIND, NAME};
use crate::framework::diagnostics::Diagnostics;
use crate::framework::model::{Value, from_raw};
use crate::framework::resource::{Context, DataSource};
use crate::framework::schema::{Attribute, Nesting, Schema};
use crate::framework::value::RawValue;
use crate::resources::common::{ClusterAccess, api_json_to_value, apply_error, cluster_for_apply};

/// The report's attributes read from its `spec`, by their API names' snake_case forms.
const SPEC_ATTRIBUTES: [&str; 6] = [
    "distribution",
    "cluster",
    "operator",
    "components",
    "reconcilers",
    "sync",
];

/// The `flux_report` data source.
#[derive(Clone, Copy, Debug, Default)]
pub struct FluxReportData;

/// The Terraform data of `flux_report`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct ReportModel {
    pub namespace: Value<String>,
    pub refresh: Value<bool>,
    pub ready: Value<bool>,
    pub distribution: Value<DistributionModel>,
    pub cluster: Value<ClusterModel>,
    pub operator: Value<OperatorModel>,
    pub components: Value<Vec<ComponentModel>>,
    pub reconcilers: Value<Vec<ReconcilerModel>>,
    pub sync: Value<SyncModel>,
}

/// `distribution`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct DistributionModel {
    pub status: Value<String>,
    pub version: Value<String>,
    pub managed_by: Value<String>,
    pub entitlement: Value<String>,
}

/// `cluster`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct ClusterModel {
    pub server_version: Value<String>,
    pub platform: Value<String>,
    pub nodes: Value<i64>,
}

/// `operator`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct OperatorModel {
    pub api_version: Value<String>,
    pub version: Value<String>,
    pub platform: Value<String>,
}

/// One of `components`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct ComponentModel {
    pub name: Value<String>,
    pub image: Value<String>,
    pub ready: Value<bool>,
    pub status: Value<String>,
}

/// One of `reconcilers`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct ReconcilerModel {
    pub api_version: Value<String>,
    pub kind: Value<String>,
    pub stats: Value<StatsModel>,
}

/// `reconcilers[*].stats`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct StatsModel {
    pub running: Value<i64>,
    pub failing: Value<i64>,
    pub suspended: Value<i64>,
    pub total_size: Value<String>,
}

/// `sync`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct SyncModel {
    pub id: Value<String>,
    pub source: Value<String>,
    pub path: Value<String>,
    pub ready: Value<bool>,
    pub status: Value<String>,
}

fn s(name: &str, description: &str) -> Attribute {
    Attribute::string(name).computed().description(description)
}

fn n(name: &str, description: &str) -> Attribute {
    Attribute::number(name).computed().description(description)
}

fn b(name: &str, description: &str) -> Attribute {
    Attribute::bool(name).computed().description(description)
}

/// The data source schema.
pub fn data_schema() -> Schema {
    let attributes = vec![
        Attribute::string("namespace").optional_computed().description("Namespace of the Flux Operator, where it keeps its report. Default `flux-system`."),
        Attribute::bool("refresh").optional().description("Ask the operator for a fresh report before reading it (the annotation `reconcile.fluxcd.io/requestedAt`, as `flux-operator reconcile` sets it) and wait up to 1 minute until the operator handled the request. Writes that annotation to the FluxReport; default `false`: read the report as it is."),
        b("ready", "Whether the operator has computed the report (its `Ready` condition). Until then the distribution reads `Unknown`."),
        Attribute::nested("distribution", Nesting::Single, vec![
            s("status", "`Installed`, `Not Installed` or, before the first report, `Unknown`."),
            s("version", "The installed Flux version (e.g. `v2.7.5`), from the Flux CRDs."),
            s("managed_by", "Who installed Flux: `flux-operator`, `Helm`, `flux bootstrap`, ..."),
            s("entitlement", "The operator's entitlement status (`Unknown`, `Issued by <vendor>`)."),
        ]).computed().description("The Flux distribution installed in the cluster."),
        Attribute::nested("cluster", Nesting::Single, vec![
            s("server_version", "The Kubernetes API server version (e.g. `v1.33.0`)."),
            s("platform", "The API server's platform (e.g. `linux/amd64`)."),
            n("nodes", "How many nodes the cluster has."),
        ]).computed().description("The cluster the operator runs in."),
        Attribute::nested("operator", Nesting::Single, vec![
            s("api_version", "The operator's API version (`fluxcd.controlplane.io/v1`)."),
            s("version", "The operator's version (e.g. `v0.58.1`)."),
            s("platform", "The operator's platform (e.g. `linux/amd64`)."),
        ]).computed().description("The Flux Operator that wrote the report."),
        Attribute::nested("components", Nesting::List, vec![
            s("name", "The controller's Deployment name (e.g. `source-controller`)."),
            s("image", "The controller's image, with tag or digest."),
            b("ready", "Whether the Deployment is current and available."),
            s("status", "The Deployment's status as the operator reads it (e.g. `Current Deployment is available. Replicas: 1`)."),
        ]).computed().description("The Flux controllers in the namespace, sorted by name. Null while Flux is not installed."),
        Attribute::nested("reconcilers", Nesting::List, vec![
            s("api_version", "API version of the kind (e.g. `kustomize.toolkit.fluxcd.io/v1`)."),
            s("kind", "The kind (e.g. `Kustomization`, `HelmRelease`, `ResourceSet`)."),
            Attribute::nested("stats", Nesting::Single, vec![
                n("running", "How many objects of this kind are not suspended."),
                n("failing", "How many are not Ready (waiting for dependencies does not count)."),
                n("suspended", "How many are suspended."),
                s("total_size", "Total size of the artifacts of a source kind (e.g. `1.5 MiB`); null otherwise."),
            ]).computed().description("The kind's statistics across the cluster."),
        ]).computed().description("Every Flux and Flux Operator kind with its statistics, sorted by API version and kind. Null while Flux is not installed."),
        Attribute::nested("sync", Nesting::Single, vec![
            s("id", "The sync Kustomization, `kustomization/<name>`."),
            s("source", "The URL the cluster syncs from."),
            s("path", "The path in the source."),
            b("ready", "Whether the sync Kustomization and its source are ready."),
            s("status", "The sync's status message (and the source's error, if any)."),
        ]).computed().description("The cluster sync of the FluxInstance; null when the instance has none."),
    ];
    Schema::new(
        0,
        "Reads the Flux Operator's `FluxReport`: the installed Flux distribution and who manages \
         it, the cluster and operator versions, every Flux controller with its image and \
         readiness, per-kind statistics of the reconcilers (running, failing, suspended, \
         artifact sizes) and the cluster sync status. The operator refreshes the report after \
         each FluxInstance reconciliation and every reporting interval (`REPORTING_INTERVAL`, \
         default 5m); this data source reads it as it is. Fails when the operator has not \
         written a report in the namespace.",
        attributes,
    )
}

/// The model of a report read from the cluster.
///
/// # Errors
///
/// A diagnostic when the report's fields do not have the API's shape.
pub fn report_model(namespace: &str, report: &FluxReport) -> Result<ReportModel, Diagnostics> {
    let schema = data_schema();
    let mut fields = std::collections::BTreeMap::new();
    for name in SPEC_ATTRIBUTES {
        let ty = schema
            .block
            .attribute(name)
            .map(|a| a.value_type())
            .unwrap_or(crate::framework::value::Type::Dynamic);
        let json = report
            .spec
            .get(&crate::resources::common::camel_case(name))
            .cloned()
            .unwrap_or_default();
        fields.insert(name.to_owned(), api_json_to_value(&json, &ty));
    }
    let mut model: ReportModel = from_raw(&RawValue::Object(fields))
        .map_err(|e| Diagnostics::from_error("Unreadable FluxReport", format!("{e}.")))?;
    model.namespace = Value::Known(namespace.to_owned());
    model.ready = Value::Known(report.is_ready());
    Ok(model)
}

#[async_trait]
impl<D: ClusterAccess> DataSource<D> for FluxReportData {
    type Model = ReportModel;

    fn type_name(&self) -> &'static str {
        "flux_report"
    }

    fn schema(&self) -> Schema {
        data_schema()
    }

    async fn validate(
        &self,
        _ctx: &mut Context<D>,
        config: ReportModel,
    ) -> Result<(), Diagnostics> {
        let out = crate::resources::validation::report_data(&config.namespace);
        if out.has_errors() { Err(out) } else { Ok(()) }
    }

    async fn read(
        &self,
        ctx: &mut Context<D>,
        config: ReportModel,
    ) -> Result<ReportModel, Diagnostics> {
        let cluster = cluster_for_apply(ctx.data()?.as_ref()).await?;
        let namespace = config
            .namespace
            .as_known()
            .cloned()
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
        let reference = ObjectRef::new(API_VERSION, KIND, Some(&namespace), NAME);
        let found = cluster
            .get(&reference)
            .await
            .map_err(|e| apply_error("Cannot Read The FluxReport", &e))?;
        let found = match found {
            Some(_) if config.refresh.as_known() == Some(&true) => {
                refreshed(&cluster, &reference, ctx.cancellation()).await?
            }
            other => other,
        };
        let Some(found) = found else {
            return Err(Diagnostics::from_error(
                "FluxReport Not Found",
                format!(
                    "There is no FluxReport \"{NAME}\" in namespace {namespace:?}. The Flux \
                     Operator writes it in its own namespace when it starts: check that the \
                     operator runs there (see flux_operator) and that `namespace` names it."
                ),
            ));
        };
        let report = serde_json::to_value(&found)
            .map_err(|e| e.to_string())
            .and_then(|json| FluxReport::from_json(json).map_err(|e| e.to_string()))
            .map_err(|e| Diagnostics::from_error("Unreadable FluxReport", format!("{e}.")))?;
        let mut model = report_model(&namespace, &report)?;
        model.refresh = config.refresh;
        Ok(model)
    }
}

/// How long a refresh waits for the operator.
const REFRESH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Requests a new report and waits until the operator handled the request.
async fn refreshed(
    cluster: &crate::cluster::objects::Cluster,
    reference: &ObjectRef,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<Option<kube::api::DynamicObject>, Diagnostics> {
    use crate::cluster::wait::WaitOutcome;
    let token = crate::resources::common::request_reconcile(cluster, reference).await?;
    let handled = |object: Option<&kube::api::DynamicObject>| match object {
        None => WaitOutcome::Done,
        Some(o) => {
            let at = o.data["status"]["lastHandledReconcileAt"].as_str();
            if crate::flux::status::request_handled(at, &token) {
                WaitOutcome::Done
            } else {
                WaitOutcome::Pending
            }
        }
    };
    cluster
        .wait_for(reference, REFRESH_TIMEOUT, cancel, handled)
        .await
        .map_err(|e| {
            Diagnostics::from_error_at(
                crate::framework::path::AttrPath::attr("refresh"),
                "FluxReport Not Refreshed",
                format!(
                    "{e}. The Flux Operator did not answer the report request within \
                     {}s; check that it runs, or read the report as it is (refresh = false).",
                    REFRESH_TIMEOUT.as_secs()
                ),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::model::to_raw;
    use pretty_assertions::assert_eq;

    #[test]
    fn schema_follows_the_house_rules() {
        assert_eq!(data_schema().lint(), Vec::<String>::new());
    }

    #[test]
    fn the_report_reads_as_typed_attributes() {
        let report = FluxReport::from_json(serde_json::json!({
            "metadata": {"name": "flux", "namespace": "flux-system"},
            "spec": {
                "distribution": {"entitlement": "Unknown", "status": "Installed", "version": "v2.7.5", "managedBy": "flux-operator"},
                "cluster": {"serverVersion": "v1.33.0", "platform": "linux/amd64", "nodes": 3},
                "operator": {"apiVersion": "fluxcd.controlplane.io/v1", "version": "v0.58.1", "platform": "linux/amd64"},
                "components": [{"name": "source-controller", "ready": true, "status": "Current Deployment is available. Replicas: 1",
                                "image": "ghcr.io/fluxcd/source-controller:v1.7.4"}],
                "reconcilers": [{"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                                 "stats": {"running": 2, "failing": 1, "suspended": 0, "totalSize": "1.5 KiB"}}],
                "sync": {"id": "kustomization/flux-system", "path": "clusters/prod", "ready": true,
                         "status": "Applied revision: main@sha1:abc", "source": "https://git.example/fleet.git"}
            },
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded", "message": "ok",
                                       "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
        }))
        .unwrap();
        let model = report_model("flux-system", &report).unwrap();
        let raw = to_raw(&model).unwrap();
        let json = crate::resources::common::value_to_api_json(&raw);
        assert_eq!(
            json,
            serde_json::json!({
                "namespace": "flux-system",
                "ready": true,
                "distribution": {"entitlement": "Unknown", "status": "Installed", "version": "v2.7.5", "managedBy": "flux-operator"},
                "cluster": {"serverVersion": "v1.33.0", "platform": "linux/amd64", "nodes": 3},
                "operator": {"apiVersion": "fluxcd.controlplane.io/v1", "version": "v0.58.1", "platform": "linux/amd64"},
                "components": [{"name": "source-controller", "ready": true, "status": "Current Deployment is available. Replicas: 1",
                                "image": "ghcr.io/fluxcd/source-controller:v1.7.4"}],
                "reconcilers": [{"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                                 "stats": {"running": 2, "failing": 1, "suspended": 0, "totalSize": "1.5 KiB"}}],
                "sync": {"id": "kustomization/flux-system", "path": "clusters/prod", "ready": true,
                         "status": "Applied revision: main@sha1:abc", "source": "https://git.example/fleet.git"}
            })
        );
        // Before Flux is installed, the lists and the sync are null.
        let empty = FluxReport::from_json(serde_json::json!({
            "spec": {"distribution": {"entitlement": "Unknown", "status": "Unknown"}}
        }))
        .unwrap();
        let model = report_model("ops", &empty).unwrap();
        assert_eq!(model.components, Value::Null);
        assert_eq!(model.sync, Value::Null);
        assert_eq!(model.ready, Value::Known(false));
    }
}
