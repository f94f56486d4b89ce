//! Acceptance tests of the `flux_report` data source: the real `terraform` (and `tofu`) reads
//! the FluxReport that the operator simulator keeps on the run's real control plane
//! (`tests/common/cluster.rs`: kube-apiserver with the simulator applying the real Flux install
//! objects), in the same apply that installs the operator and Flux into a namespace of the
//! test's own, and the state is compared with the report, the API server's `/version`, its
//! Nodes and the Deployments as `kubectl` sees them. Nothing here needs kube-sandbox.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::cluster::TestCluster;
use common::terraform::{REQUIRED_PROVIDERS, Workspace};
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_terraform-provider-flux");

fn config(refresh: bool) -> String {
    format!(
        r#"{REQUIRED_PROVIDERS}
provider "flux" {{
  kubernetes = {{ config_path = "kubeconfig" }}
}}

resource "flux_operator" "this" {{
  namespace = local.namespace
  manifests = file("operator-install.yaml")
}}

resource "flux_instance" "this" {{
  namespace    = local.namespace
  depends_on   = [flux_operator.this]
  distribution = {{ version = "2.7.x" }}
  components   = ["source-controller", "kustomize-controller", "helm-controller", "notification-controller"]
  cluster      = {{ size = "small" }}
}}

data "flux_report" "this" {{
  namespace  = local.namespace
  depends_on = [flux_instance.this]
  refresh    = {refresh}
}}

output "images" {{
  value = {{ for c in coalesce(data.flux_report.this.components, []) : c.name => c.image }}
}}
"#
    )
}

/// A workspace with the cluster's kubeconfig, the operator install manifest for the test's
/// namespace and `local.namespace` (cluster.tf) naming it.
fn workspace(cluster: &TestCluster) -> Workspace {
    let workspace = Workspace::new(BINARY);
    workspace.write_file("kubeconfig", &cluster.kubeconfig_yaml());
    workspace.write_file("operator-install.yaml", &cluster.operator_install());
    workspace.write_file(
        "cluster.tf",
        &format!("locals {{\n  namespace = \"{}\"\n}}\n", cluster.namespace()),
    );
    workspace
}

fn data_source(workspace: &Workspace) -> Value {
    let state = workspace.show_json();
    state["values"]["root_module"]["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["address"] == "data.flux_report.this")
        .map(|r| r["values"].clone())
        .unwrap_or_else(|| panic!("data.flux_report.this not in state: {state}"))
}

#[test]
fn the_report_reads_in_the_apply_that_installs_flux_and_matches_the_cluster() {
    // Exclusive: the FluxInstance installs (and its cleanup uninstalls) the cluster-scoped Flux
    // CRDs.
    let cluster = TestCluster::flux("acc-report");
    let ns = cluster.namespace();
    let workspace = workspace(&cluster);
    workspace.write_config(&config(true));
    workspace.apply().assert_success();

    let values = data_source(&workspace);
    let report = cluster.get_in_ns("fluxreport", "flux").unwrap();
    assert_eq!(values["ready"], json!(true));
    // The test's own namespace (kube-sandbox's test used `flux-system`).
    assert_eq!(values["namespace"], json!(ns));
    let version = report["spec"]["distribution"]["version"].as_str().unwrap();
    assert!(version.starts_with("v2.7."), "{report}");
    assert_eq!(
        values["distribution"],
        json!({"status": "Installed", "version": version, "managed_by": "flux-operator", "entitlement": "Unknown"})
    );
    assert_eq!(
        values["operator"],
        json!({"api_version": "fluxcd.controlplane.io/v1", "version": "v0.58.1", "platform": "linux/amd64"})
    );
    // The cluster: the real API server's `/version` (kube-sandbox answered `v1.33.0-sandbox`)
    // and its Node count (the fake node of the control plane; `null` when there is none).
    let server: Value = serde_json::from_str(&cluster.kubectl(&["version", "-o", "json"])).unwrap();
    let server = &server["serverVersion"];
    assert!(
        server["gitVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("v1.")),
        "{server}"
    );
    let nodes = cluster.get_json(&["nodes"]).unwrap()["items"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(
        values["cluster"],
        json!({"server_version": server["gitVersion"], "platform": server["platform"],
               "nodes": if nodes == 0 { Value::Null } else { json!(nodes) }})
    );
    // Components: the Deployments' own images, as kubectl reads them.
    let mut expected = Vec::new();
    for name in [
        "helm-controller",
        "kustomize-controller",
        "notification-controller",
        "source-controller",
    ] {
        let deployment = cluster.get_in_ns("deployment", name).unwrap();
        let image = deployment["spec"]["template"]["spec"]["containers"][0]["image"].clone();
        expected.push(json!({"name": name, "image": image, "ready": true,
                             "status": "Current Deployment is available. Replicas: 1"}));
    }
    assert_eq!(values["components"], Value::Array(expected));
    let instance_stats = values["reconcilers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "FluxInstance")
        .unwrap()
        .clone();
    assert_eq!(
        instance_stats,
        json!({"api_version": "fluxcd.controlplane.io/v1", "kind": "FluxInstance",
               "stats": {"running": 1, "failing": 0, "suspended": 0, "total_size": null}})
    );
    assert_eq!(values["sync"], Value::Null, "the instance has no sync");
    let outputs = workspace.show_json()["values"]["outputs"]["images"]["value"].clone();
    assert_eq!(outputs.as_object().unwrap().len(), 4, "{outputs}");
    // The report was requested through its annotation and the request was handled.
    assert_eq!(
        report["status"]["lastHandledReconcileAt"],
        report["metadata"]["annotations"]["reconcile.fluxcd.io/requestedAt"]
    );

    workspace.plan().assert_no_changes();
    workspace.write_config(&config(false));
    workspace.plan().assert_no_changes();
}

#[test]
fn a_namespace_without_the_operator_fails_naming_it() {
    // Shared: nothing is installed. The test's own namespace exists and runs no operator
    // (kube-sandbox's test named a namespace `ops` that did not exist); whether the FluxReport
    // CRD exists depends on earlier tests, and the provider answers the same either way.
    let cluster = TestCluster::shared("acc-report");
    let ns = cluster.namespace();
    let workspace = Workspace::new(BINARY);
    workspace.write_file("kubeconfig", &cluster.kubeconfig_yaml());
    workspace.write_config(&format!(
        r#"{REQUIRED_PROVIDERS}
provider "flux" {{
  kubernetes = {{ config_path = "kubeconfig" }}
}}

data "flux_report" "this" {{
  namespace = "{ns}"
}}
"#
    ));
    let plan = workspace.plan();
    plan.assert_error().assert_contains(&[
        "FluxReport Not Found",
        &format!("There is no FluxReport \"flux\" in namespace \"{ns}\""),
    ]);
}
