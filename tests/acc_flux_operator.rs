//! Acceptance tests of `flux_operator`: the real `terraform` (and `tofu`) driving the built
//! provider against the run's real control plane (`tests/common/real_cluster.rs`: kube-apiserver
//! with the operator simulator), in a namespace of the test's own. The manifests come
//! from a loopback `manifests_url` (a one-file HTTP server in the test) and from inline
//! `manifests`, because GitHub is unreachable here; both the state and the cluster are checked.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;

use common::real_cluster::{OPERATOR_INSTALL, RealCluster, operator_install_in};
use common::terraform::{REQUIRED_PROVIDERS, Workspace};
use serde_json::Value;

const BINARY: &str = env!("CARGO_BIN_EXE_terraform-provider-flux");

/// Serves `body` at every path on a loopback port; returns the base URL.
fn serve_once_per_request(body: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buffer = [0_u8; 4096];
            let _ = stream.read(&mut buffer);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/yaml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body.as_bytes());
        }
    });
    url
}

fn config(source: &str, extra: &str) -> String {
    config_in(None, source, extra)
}

fn config_in(namespace: Option<&str>, source: &str, extra: &str) -> String {
    let namespace = namespace
        .map(|ns| format!("namespace = \"{ns}\""))
        .unwrap_or_default();
    format!(
        r#"{REQUIRED_PROVIDERS}
provider "flux" {{
  kubernetes = {{ config_path = "kubeconfig" }}
}}

resource "flux_operator" "this" {{
  {namespace}
  {source}
  env = {{ DEFAULT_SERVICE_ACCOUNT = "flux-tenant" }}
  {extra}
}}
"#
    )
}

fn state_values(ws: &Workspace) -> Value {
    let state = ws.show_json();
    state["values"]["root_module"]["resources"][0]["values"].clone()
}

fn operator_image(sandbox: &RealCluster, ns: &str) -> String {
    let deployment = sandbox
        .get_json(&["deployment", "flux-operator", "-n", ns])
        .expect("operator Deployment");
    deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn operator_install_drift_upgrade_and_destroy() {
    // `delete_crds = true` deletes cluster-scoped CRDs other tests use: the whole cluster.
    let sandbox = RealCluster::exclusive();
    let namespace = sandbox.namespace("acc-operator");
    let ns = namespace.name.as_str();
    let install = operator_install_in(OPERATOR_INSTALL, ns);
    let ws = Workspace::new(BINARY);
    ws.write_file("kubeconfig", &sandbox.kubeconfig_yaml());
    let url = serve_once_per_request(install.clone());

    // Install from a URL: CRDs established, Deployment Available, settings applied.
    ws.write_config(&config_in(
        Some(ns),
        &format!(r#"manifests_url = "{url}/install.yaml""#),
        "",
    ));
    ws.apply().assert_success();
    let values = state_values(&ws);
    assert_eq!(values["operator_version"], "v0.58.1");
    assert_eq!(values["installation_status"], "Healthy");
    let crd = sandbox
        .get_json(&["crd", "fluxinstances.fluxcd.controlplane.io"])
        .unwrap();
    assert!(
        crd["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "Established" && c["status"] == "True")
    );
    let deployment = sandbox
        .get_json(&["deployment", "flux-operator", "-n", ns])
        .unwrap();
    let env = &deployment["spec"]["template"]["spec"]["containers"][0]["env"];
    assert!(
        env.as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "DEFAULT_SERVICE_ACCOUNT" && e["value"] == "flux-tenant"),
        "{env}"
    );
    ws.plan().assert_no_changes();

    // Drift: an owned object deleted, another changed.
    sandbox.kubectl(&["-n", ns, "delete", "serviceaccount", "flux-operator"]);
    sandbox.kubectl(&[
        "-n",
        ns,
        "set",
        "image",
        "deployment/flux-operator",
        "manager=example.com/other:v1",
    ]);
    ws.plan().assert_changes().assert_contains(&[
        "ServiceAccount flux-operator missing",
        "Deployment flux-operator changed",
        "Flux Operator Will Be Re-applied",
    ]);
    ws.apply().assert_success();
    assert!(
        sandbox
            .get_json(&["serviceaccount", "flux-operator", "-n", ns])
            .is_some()
    );
    assert_eq!(
        operator_image(&sandbox, ns),
        "ghcr.io/controlplaneio-fluxcd/flux-operator:v0.58.1"
    );
    ws.plan().assert_no_changes();

    // A version change is one in-place update.
    let upgraded = install.replace("flux-operator:v0.58.1", "flux-operator:v0.59.0");
    ws.write_file("install.yaml", &upgraded);
    ws.write_config(&config_in(
        Some(ns),
        r#"manifests = file("install.yaml")"#,
        "",
    ));
    ws.plan().assert_changes().assert_contains(&[
        "flux_operator.this will be updated in-place",
        "Plan: 0 to add, 1 to change, 0 to destroy.",
    ]);
    ws.apply().assert_success();
    assert_eq!(
        operator_image(&sandbox, ns),
        "ghcr.io/controlplaneio-fluxcd/flux-operator:v0.59.0"
    );
    assert_eq!(state_values(&ws)["operator_version"], "v0.59.0");
    ws.plan().assert_no_changes();

    // Destroy keeps the CRDs and the namespace.
    ws.destroy().assert_success();
    assert_eq!(
        sandbox.get_json(&["deployment", "flux-operator", "-n", ns]),
        None
    );
    assert_eq!(
        sandbox.get_json(&["serviceaccount", "flux-operator", "-n", ns]),
        None
    );
    assert!(
        sandbox
            .get_json(&["crd", "fluxinstances.fluxcd.controlplane.io"])
            .is_some()
    );
    assert!(sandbox.get_json(&["namespace", ns]).is_some());

    // With delete_crds, the CRDs go too.
    ws.write_config(&config_in(
        Some(ns),
        r#"manifests = file("install.yaml")"#,
        "delete_crds = true",
    ));
    ws.apply().assert_success();
    ws.destroy().assert_success();
    // A real API server removes a CRD asynchronously (its finalizer deletes the custom
    // resources first): the deletion was requested, and it completes.
    sandbox.wait_for(
        "the FluxInstance CRD is deleted",
        std::time::Duration::from_secs(60),
        || {
            sandbox
                .get_json(&["crd", "fluxinstances.fluxcd.controlplane.io"])
                .is_none()
                .then_some(())
        },
    );
    assert!(sandbox.get_json(&["namespace", ns]).is_some());
}

#[test]
fn manifest_source_is_validated() {
    let ws = Workspace::new(BINARY);
    ws.write_file(
        "kubeconfig",
        "apiVersion: v1\nkind: Config\ncurrent-context: dev\nclusters:\n- name: dev\n  cluster:\n    server: https://127.0.0.1:6443\nusers:\n- name: dev\n  user:\n    token: t\ncontexts:\n- name: dev\n  context:\n    cluster: dev\n    user: dev\n",
    );
    ws.write_config(&config(
        r#"version = "v0.58.1"
  manifests = "apiVersion: v1""#,
        "",
    ));
    ws.validate()
        .assert_failure()
        .assert_contains(&["Set exactly one of version"]);
    ws.write_config(&config(r#"version = "latest""#, ""));
    ws.validate()
        .assert_failure()
        .assert_contains(&["version = \"latest\" is not an operator release"]);
}
