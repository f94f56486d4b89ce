//! Fleet acceptance tests: one configuration manages many clusters with the module of
//! `examples/fleet/modules/cluster` — under Terraform as one provider block and one module block
//! per cluster, under OpenTofu (>= 1.9) as `examples/fleet/opentofu` verbatim, with provider
//! `for_each`. The clusters are [`FLEET_SIZE`] kube-sandbox API servers with the operator
//! simulator, on loopback in this test process (each its own store: cheap, unlike real control
//! planes). Every cluster must get its operator and its FluxInstance, Ready and labelled with its
//! own name, and the second plan must be empty.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use common::real_cluster::OPERATOR_INSTALL;
use common::terraform::{Workspace, tofu_binary};
use kube_sandbox::Sandbox;
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_terraform-provider-flux");
/// How many clusters the fleet has.
const FLEET_SIZE: usize = 20;

/// `FLEET_SIZE` sandbox clusters served on loopback, with their kubeconfig files.
struct Fleet {
    clusters: Vec<(String, Sandbox, PathBuf)>,
    _dir: tempfile::TempDir,
    _runtime: tokio::runtime::Runtime,
}

fn start_fleet(size: usize) -> Fleet {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let clusters = (1..=size)
        .map(|i| {
            let name = format!("c{i:02}");
            let kubeconfig = dir.path().join(format!("{name}.kubeconfig"));
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
            (name, sandbox, kubeconfig)
        })
        .collect();
    Fleet {
        clusters,
        _dir: dir,
        _runtime: runtime,
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with('.') || name.ends_with(".tfstate") {
            continue;
        }
        if path.is_dir() {
            copy_tree(&path, &to.join(&name));
        } else {
            std::fs::copy(&path, to.join(&name)).unwrap();
        }
    }
}

fn fleet_example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/fleet")
}

/// Every cluster has the operator Deployment and its own FluxInstance, Ready, labelled with the
/// cluster's name; the state holds one operator and one instance per cluster.
fn assert_every_cluster_has_its_instance(
    fleet: &Fleet,
    state: &Value,
    module_address: &dyn Fn(&str) -> String,
) {
    let modules = state["values"]["root_module"]["child_modules"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut seen = Vec::new();
    for (name, sandbox, _) in &fleet.clusters {
        let operator = sandbox.object("apps", "deployments", "flux-system", "flux-operator");
        assert!(operator.is_some(), "{name}: no operator Deployment");
        let instance = sandbox
            .object(
                "fluxcd.controlplane.io",
                "fluxinstances",
                "flux-system",
                "flux",
            )
            .unwrap_or_else(|| panic!("{name}: no FluxInstance"));
        let ready = instance["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        assert_eq!(
            (&instance["spec"]["commonMetadata"]["labels"], ready),
            (&json!({"fleet.example.com/cluster": name}), true),
            "{name}"
        );
        let address = module_address(name);
        let module = modules
            .iter()
            .find(|m| m["address"] == address.as_str())
            .unwrap_or_else(|| panic!("{address} not in state"));
        let mut types: Vec<&str> = module["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["type"].as_str().unwrap())
            .collect();
        types.sort_unstable();
        assert_eq!(types, ["flux_instance", "flux_operator"], "{address}");
        let instance_values = module["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["type"] == "flux_instance")
            .map(|r| r["values"].clone())
            .unwrap();
        assert_eq!(instance_values["ready"], Value::Bool(true), "{address}");
        seen.push(address);
    }
    assert_eq!(seen.len(), FLEET_SIZE);
    assert_eq!(modules.len(), FLEET_SIZE, "one module instance per cluster");
}

#[test]
fn terraform_fleet_one_provider_block_and_module_per_cluster() {
    let fleet = start_fleet(FLEET_SIZE);
    let ws = Workspace::new(BINARY);
    copy_tree(
        &fleet_example().join("modules/cluster"),
        &ws.path().join("modules/cluster"),
    );
    ws.write_file("install.yaml", OPERATOR_INSTALL);
    // The root names the provider as the module does (`fluxrs/flux`): with an explicit
    // `registry.terraform.io` host the two differ under OpenTofu, whose default registry is
    // `registry.opentofu.org`, and passing the provider to the module fails.
    let mut config = String::from(
        "terraform {\n  required_providers {\n    flux = {\n      source = \"fluxrs/flux\"\n    }\n  }\n}\n",
    );
    for (name, _, kubeconfig) in &fleet.clusters {
        config.push_str(&format!(
            r#"
provider "flux" {{
  alias      = "{name}"
  kubernetes = {{ config_path = "{}" }}
}}

module "{name}" {{
  source             = "./modules/cluster"
  providers          = {{ flux = flux.{name} }}
  name               = "{name}"
  operator_manifests = file("install.yaml")
}}
"#,
            kubeconfig.display()
        ));
    }
    ws.write_config(&config);
    ws.run(&["get", "-no-color"]).assert_success();
    ws.apply().assert_success();
    assert_every_cluster_has_its_instance(&fleet, &ws.show_json(), &|name| {
        format!("module.{name}")
    });
    ws.plan().assert_no_changes();
}

#[test]
fn opentofu_fleet_provider_for_each_over_the_clusters() {
    let fleet = start_fleet(FLEET_SIZE);
    let ws = Workspace::with_cli(BINARY, tofu_binary());
    copy_tree(&fleet_example(), &ws.path().join("fleet"));
    let clusters: Vec<String> = fleet
        .clusters
        .iter()
        .map(|(name, _, kubeconfig)| {
            format!("  {name} = {{ kubeconfig = \"{}\" }}", kubeconfig.display())
        })
        .collect();
    ws.write_file(
        "fleet/opentofu/terraform.tfvars",
        &format!(
            "clusters = {{\n{}\n}}\noperator_manifests = <<-EOT\n{}EOT\n",
            clusters.join("\n"),
            OPERATOR_INSTALL
        ),
    );
    let tofu = |args: &[&str]| {
        let mut all = vec!["-chdir=fleet/opentofu"];
        all.extend_from_slice(args);
        ws.run(&all)
    };
    tofu(&["get", "-no-color"]).assert_success();
    tofu(&[
        "apply",
        "-auto-approve",
        "-input=false",
        "-lock=false",
        "-no-color",
    ])
    .assert_success();
    let show = tofu(&["show", "-json", "-no-color"]);
    show.assert_success();
    let state: Value = serde_json::from_str(&show.stdout).unwrap();
    assert_every_cluster_has_its_instance(&fleet, &state, &|name| {
        format!("module.cluster[\"{name}\"]")
    });
    let plan = tofu(&[
        "plan",
        "-detailed-exitcode",
        "-input=false",
        "-lock=false",
        "-no-color",
    ]);
    assert_eq!(
        plan.code,
        Some(0),
        "second plan not empty:\n{}",
        plan.combined()
    );
}
