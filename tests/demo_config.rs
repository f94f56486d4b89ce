//! The `make demo` configuration, `demo/main.tf`: it is formatted and valid, and applied with the
//! provider built by cargo (through `dev_overrides`) to the in-process sandbox with the simulated
//! Flux Operator, in both of its modes — Flux bootstrapped from a local Git server
//! (`flux_bootstrap_git`, what `make demo` shows) and Flux installed without Git
//! (`flux_instance`) — it creates the operator, Flux and both tenants, commits the FluxInstance
//! to Git, and the next plan is empty. `scripts/demo.sh` runs the same configuration with the
//! installed release binary; this test keeps the configuration from going stale in between.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests panic on setup failures.

mod common;

use std::path::Path;

use common::git_server::{GitHttpServer, GitRepos, HttpServerOptions};
use common::terraform::Workspace;
use kube_sandbox::Sandbox;
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_terraform-provider-flux");
const OPERATOR_INSTALL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/sandbox/fixtures/operator-install.yaml"
);

/// A workspace holding a copy of every `.tf` file of `demo/`.
fn demo_workspace() -> Workspace {
    let workspace = Workspace::new(BINARY);
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo");
    let mut copied = 0;
    for entry in std::fs::read_dir(&demo).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "tf") {
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            workspace.write_file(&name, &std::fs::read_to_string(&path).unwrap());
            copied += 1;
        }
    }
    assert!(copied > 0, "no .tf files in {}", demo.display());
    workspace
}

#[test]
fn demo_configuration_is_formatted_and_valid() {
    let workspace = demo_workspace();
    let fmt = workspace.fmt_check();
    fmt.assert_success();
    assert_eq!(fmt.stdout, "", "terraform fmt would change demo/");
    let validate = workspace.run(&["validate", "-json"]);
    validate.assert_success();
    let report: Value = serde_json::from_str(&validate.stdout).unwrap();
    let summaries: Vec<&str> = report["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["summary"].as_str().unwrap())
        .collect();
    // The only diagnostic is Terraform's notice that dev_overrides (the test harness) are on.
    assert_eq!(
        (&report["valid"], &report["error_count"], summaries),
        (
            &json!(true),
            &json!(0),
            vec!["Provider development overrides are in effect"]
        ),
        "{}",
        validate.combined()
    );
}

/// The sandbox API server on a loopback port with the operator simulator, and its kubeconfig.
struct Cluster {
    sandbox: Sandbox,
    kubeconfig: std::path::PathBuf,
    _dir: tempfile::TempDir,
    _runtime: tokio::runtime::Runtime,
}

fn start_cluster() -> Cluster {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let sandbox = runtime.block_on(async {
        let sandbox = Sandbox::builder()
            .operator_sim(kube_sandbox::sim::SimConfig::default())
            .build();
        let served = sandbox
            .serve_tls("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        served.write_kubeconfig(&kubeconfig).unwrap();
        // Served until the runtime is dropped at the end of the test.
        std::mem::forget(served);
        sandbox
    });
    Cluster {
        sandbox,
        kubeconfig,
        _dir: dir,
        _runtime: runtime,
    }
}

/// Applies the demo with `tfvars` and returns the workspace after checking the apply, the empty
/// second plan, the tenants and the outputs.
fn apply_demo(cluster: &Cluster, tfvars: &str, password: Option<&str>) -> Workspace {
    let mut workspace = demo_workspace();
    workspace.write_file(
        "terraform.tfvars",
        &format!(
            "kubeconfig = \"{}\"\noperator_manifests_file = \"{OPERATOR_INSTALL}\"\n{tfvars}",
            cluster.kubeconfig.display()
        ),
    );
    if let Some(password) = password {
        workspace.set_env("TF_VAR_git_password", password);
    }
    workspace.plan().assert_changes();
    workspace.apply().assert_success();
    workspace.plan().assert_no_changes();

    for (tenant, team) in [("team-a", "Team A"), ("team-b", "Team B")] {
        let config_map = cluster
            .sandbox
            .object("", "configmaps", tenant, "tenant-info")
            .unwrap_or_else(|| panic!("ConfigMap {tenant}/tenant-info missing"));
        assert_eq!(config_map["data"], json!({ "team": team }), "{tenant}");
    }
    let instance = cluster
        .sandbox
        .object(
            "fluxcd.controlplane.io",
            "fluxinstances",
            "flux-system",
            "flux",
        )
        .expect("FluxInstance flux-system/flux");
    let ready = instance["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .cloned();
    assert_eq!(ready.map(|c| c["status"].clone()), Some(json!("True")));

    let outputs = workspace.run(&["output", "-json"]);
    outputs.assert_success();
    let outputs: Value = serde_json::from_str(&outputs.stdout).unwrap();
    assert_eq!(outputs["operator_version"]["value"], json!("v0.58.1"));
    assert_eq!(outputs["tenants"]["value"], json!(["team-a", "team-b"]));
    assert_eq!(outputs["flux"]["value"]["ready"], json!(true));
    assert_eq!(outputs["flux"]["value"]["status"], json!("Healthy"));
    assert_eq!(
        outputs["flux"]["value"]["components"],
        json!([
            "helm-controller",
            "kustomize-controller",
            "notification-controller",
            "source-controller"
        ])
    );
    workspace
}

#[test]
fn demo_bootstraps_from_git_and_the_next_plan_is_empty() {
    let cluster = start_cluster();
    let repos = GitRepos::new();
    repos.create_empty("fleet");
    let server = GitHttpServer::start(
        repos.clone(),
        HttpServerOptions {
            basic: Some(("demo".into(), "demo-password".into())),
            ..HttpServerOptions::default()
        },
    );
    let workspace = apply_demo(
        &cluster,
        &format!(
            "git_url = \"{}\"\ngit_username = \"demo\"\ngit_allow_insecure_http = true\n",
            server.url("fleet")
        ),
        Some("demo-password"),
    );

    assert_eq!(
        workspace.state_list(),
        [
            "data.flux_instance.this",
            "flux_bootstrap_git.this[0]",
            "flux_operator.this",
            "flux_resource_set.tenants",
        ]
    );
    assert_eq!(
        repos.files("fleet", "main"),
        [
            "clusters/demo/flux-system/flux-instance.yaml",
            "clusters/demo/flux-system/kustomization.yaml",
        ]
    );
    let log = repos.log("fleet", "main");
    assert_eq!(log.len(), 1, "{log:?}");
    let outputs: Value = serde_json::from_str(&workspace.run(&["output", "-json"]).stdout).unwrap();
    assert_eq!(outputs["git_commit"]["value"], json!(&log[0][..40]));
    // The password is provider configuration: never in the state.
    let state = std::fs::read_to_string(workspace.path().join("terraform.tfstate")).unwrap();
    assert!(!state.contains("demo-password"));
}

#[test]
fn demo_installs_without_git_and_the_next_plan_is_empty() {
    let cluster = start_cluster();
    let workspace = apply_demo(&cluster, "", None);
    assert_eq!(
        workspace.state_list(),
        [
            "data.flux_instance.this",
            "flux_instance.this[0]",
            "flux_operator.this",
            "flux_resource_set.tenants",
        ]
    );
    let outputs: Value = serde_json::from_str(&workspace.run(&["output", "-json"]).stdout).unwrap();
    assert_eq!(outputs["git_commit"]["value"], Value::Null);
}
