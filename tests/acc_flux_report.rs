//! Acceptance tests of the `flux_report` data source: the real `terraform` reads the FluxReport
//! the simulated operator keeps (`kube-sandbox serve --operator-sim`), in the same apply that
//! installs the operator and Flux, and the state is compared with the report and the
//! Deployments as `kubectl` sees them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "fixtures/flux_instance/sandbox.rs"]
mod sandbox;

use common::terraform::{REQUIRED_PROVIDERS, Workspace};
use sandbox::{OPERATOR_INSTALL, Sandbox};
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_terraform-provider-flux");

fn config(refresh: bool) -> String {
    format!(
        r#"{REQUIRED_PROVIDERS}
provider "flux" {{
  kubernetes = {{ config_path = "kubeconfig" }}
}}

resource "flux_operator" "this" {{
  manifests = file("operator-install.yaml")
}}

resource "flux_instance" "this" {{
  depends_on   = [flux_operator.this]
  distribution = {{ version = "2.7.x" }}
  components   = ["source-controller", "kustomize-controller", "helm-controller", "notification-controller"]
  cluster      = {{ size = "small" }}
}}

data "flux_report" "this" {{
  depends_on = [flux_instance.this]
  refresh    = {refresh}
}}

output "images" {{
  value = {{ for c in coalesce(data.flux_report.this.components, []) : c.name => c.image }}
}}
"#
    )
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
    let sandbox = Sandbox::start();
    let workspace = Workspace::new(BINARY);
    workspace.write_file("kubeconfig", &sandbox.kubeconfig_yaml());
    workspace.write_file("operator-install.yaml", OPERATOR_INSTALL);
    workspace.write_config(&config(true));
    workspace.apply().assert_success();

    let values = data_source(&workspace);
    let report = sandbox
        .get_json(&["fluxreport", "flux", "-n", "flux-system"])
        .unwrap();
    assert_eq!(values["ready"], json!(true));
    assert_eq!(values["namespace"], json!("flux-system"));
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
    assert_eq!(
        values["cluster"],
        json!({"server_version": "v1.33.0-sandbox", "platform": "linux/amd64", "nodes": null})
    );
    // Components: the Deployments' own images, as kubectl reads them.
    let mut expected = Vec::new();
    for name in [
        "helm-controller",
        "kustomize-controller",
        "notification-controller",
        "source-controller",
    ] {
        let deployment = sandbox
            .get_json(&["deployment", name, "-n", "flux-system"])
            .unwrap();
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
    let sandbox = Sandbox::start();
    let workspace = Workspace::new(BINARY);
    workspace.write_file("kubeconfig", &sandbox.kubeconfig_yaml());
    workspace.write_config(&format!(
        r#"{REQUIRED_PROVIDERS}
provider "flux" {{
  kubernetes = {{ config_path = "kubeconfig" }}
}}

data "flux_report" "this" {{
  namespace = "ops"
}}
"#
    ));
    let plan = workspace.plan();
    plan.assert_error().assert_contains(&[
        "FluxReport Not Found",
        "There is no FluxReport \"flux\" in namespace \"ops\"",
    ]);
}
