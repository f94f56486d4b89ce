//! Acceptance tests of issue 11's promises that plan tells the truth: a minimal instance
//! converges (the plan after apply is empty), drift made by another field manager is healed by
//! one apply, an object that exists but was not created by this resource is refused before any
//! write (with the `terraform import` command), and a plan whose FluxInstance dry-run fails only
//! because the operator's namespace is created by the same apply does not fail.
//! Real `terraform` against the standalone `kube-sandbox serve --operator-sim`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;
#[path = "fixtures/flux_instance/sandbox.rs"]
mod sandbox;

use common::terraform::{REQUIRED_PROVIDERS, Workspace};
use sandbox::{OPERATOR_INSTALL, Sandbox};

const BINARY: &str = env!("CARGO_BIN_EXE_terraform-provider-flux");

fn workspace(sandbox: &Sandbox) -> Workspace {
    let ws = Workspace::new(BINARY);
    ws.write_file("kubeconfig", &sandbox.kubeconfig_yaml());
    ws.write_file("operator-install.yaml", OPERATOR_INSTALL);
    ws
}

fn with_provider(body: &str) -> String {
    format!(
        "{REQUIRED_PROVIDERS}\nprovider \"flux\" {{\n  kubernetes = {{ config_path = \"kubeconfig\" }}\n}}\n{body}"
    )
}

const OPERATOR: &str = r#"
resource "flux_operator" "this" {
  manifests = file("operator-install.yaml")
}
"#;

const MINIMAL_INSTANCE: &str = r#"
resource "flux_instance" "this" {
  depends_on   = [flux_operator.this]
  distribution = { version = "2.7.x" }
}
"#;

/// Item 1: the smallest configuration converges, and re-applying changes nothing.
#[test]
fn minimal_instance_converges() {
    let sandbox = Sandbox::start();
    let ws = workspace(&sandbox);
    ws.write_config(&with_provider(&format!("{OPERATOR}{MINIMAL_INSTANCE}")));
    ws.apply().assert_success();
    ws.plan().assert_no_changes();
    let generation = sandbox
        .get_json(&["fluxinstance", "flux", "-n", "flux-system"])
        .unwrap()["metadata"]["generation"]
        .clone();
    ws.apply()
        .assert_success()
        .assert_contains(&["0 added, 0 changed, 0 destroyed"]);
    ws.plan().assert_no_changes();
    assert_eq!(
        sandbox
            .get_json(&["fluxinstance", "flux", "-n", "flux-system"])
            .unwrap()["metadata"]["generation"],
        generation
    );
}

fn instance_json(sandbox: &Sandbox) -> serde_json::Value {
    sandbox
        .get_json(&["fluxinstance", "flux", "-n", "flux-system"])
        .expect("the FluxInstance exists")
}

/// Writes by anyone but the simulated operator, dry-runs excluded.
fn provider_writes(sandbox: &Sandbox) -> Vec<serde_json::Value> {
    sandbox
        .requests()
        .into_iter()
        .filter(sandbox::is_persisted_write)
        .collect()
}

const FOREIGN_INSTANCE: &str = r#"apiVersion: fluxcd.controlplane.io/v1
kind: FluxInstance
metadata:
  name: flux
  namespace: flux-system
spec:
  distribution:
    version: "2.7.x"
    registry: ghcr.io/fluxcd
  components:
    - source-controller
"#;

const FOREIGN_RESOURCE_SET: &str = r#"apiVersion: fluxcd.controlplane.io/v1
kind: ResourceSet
metadata:
  name: team
  namespace: flux-system
spec:
  inputs:
    - name: a
  resources:
    - apiVersion: v1
      kind: ConfigMap
      metadata:
        name: "team-<< inputs.name >>"
        namespace: flux-system
"#;

const RESOURCE_SET: &str = r#"
resource "flux_resource_set" "this" {
  depends_on = [flux_operator.this]
  name       = "team"
  namespace  = "flux-system"
  inputs     = [{ name = "b" }]
  resources = [{
    apiVersion = "v1"
    kind       = "ConfigMap"
    metadata   = { name = "team-<< inputs.name >>", namespace = "flux-system" }
  }]
}
"#;

const INPUT_PROVIDER: &str = r#"
resource "flux_resource_set_input_provider" "this" {
  depends_on     = [flux_operator.this]
  name           = "team"
  namespace      = "flux-system"
  type           = "Static"
  default_values = { tenant = "a" }
}
"#;

/// Item 3: an instance and a ResourceSet created by someone else are refused at plan, naming
/// the object and the import command, with no write; a saved plan made before the object
/// appeared is refused at create, before any write; after `terraform import` the same
/// configuration manages them; a second configuration is refused in turn; `-replace` of the
/// resource's own object still works.
#[test]
fn existing_objects_are_refused_until_imported() {
    let sandbox = Sandbox::start();
    let ws = workspace(&sandbox);
    ws.write_config(&with_provider(OPERATOR));
    ws.apply().assert_success();
    ws.write_file("foreign-instance.yaml", FOREIGN_INSTANCE);
    ws.write_file("foreign-rs.yaml", FOREIGN_RESOURCE_SET);
    let apply_foreign = |file: &str| {
        let path = ws.path().join(file);
        sandbox.kubectl(&["apply", "-f", path.to_str().unwrap()]);
    };
    apply_foreign("foreign-instance.yaml");
    apply_foreign("foreign-rs.yaml");
    let before_instance = instance_json(&sandbox);
    let before_rs = sandbox
        .get_json(&["resourceset", "team", "-n", "flux-system"])
        .unwrap();

    // At plan: refused, naming both objects and the import commands; nothing written.
    ws.write_config(&with_provider(&format!(
        "{OPERATOR}{MINIMAL_INSTANCE}{RESOURCE_SET}"
    )));
    sandbox.clear_requests();
    ws.plan().assert_error().assert_contains(&[
        "Error: FluxInstance Already Exists",
        "The FluxInstance flux-system/flux already exists in the cluster, but it is not in this resource's Terraform state",
        "terraform import <address> flux-system/flux",
        "with flux_instance.this",
        "Error: ResourceSet Already Exists",
        "terraform import <address> flux-system/team",
        "with flux_resource_set.this",
    ]);
    ws.apply().assert_failure();
    assert_eq!(provider_writes(&sandbox), Vec::<serde_json::Value>::new());
    assert_eq!(instance_json(&sandbox)["spec"], before_instance["spec"]);
    assert_eq!(
        sandbox
            .get_json(&["resourceset", "team", "-n", "flux-system"])
            .unwrap()["spec"],
        before_rs["spec"]
    );

    // Imported, the same configuration manages them: the plan shows the configuration's
    // values over the foreign ones, and apply converges.
    ws.import("flux_instance.this", "flux-system/flux")
        .assert_success();
    ws.import("flux_resource_set.this", "flux-system/team")
        .assert_success();
    ws.plan()
        .assert_changes()
        .assert_contains(&[r#"+ "helm-controller","#, r#"~ name = "a" -> "b""#]);
    ws.apply().assert_success();
    ws.plan().assert_no_changes();

    // A second configuration over the same objects is refused in turn.
    let second = workspace(&sandbox);
    second.write_config(&with_provider(
        &format!("{MINIMAL_INSTANCE}{RESOURCE_SET}")
            .replace("depends_on   = [flux_operator.this]", "")
            .replace("depends_on = [flux_operator.this]", ""),
    ));
    // The objects were written by this provider: the plan cannot tell this from the
    // replacement of a tainted instance (Terraform gives such a plan no state), so it warns, and
    // create refuses before any write.
    second.plan().assert_changes().assert_contains(&[
        "Warning: FluxInstance Already Exists",
        "Warning: ResourceSet Already Exists",
        "was written by this provider, but it is not in this resource's state",
    ]);
    sandbox.clear_requests();
    second.apply().assert_failure().assert_contains(&[
        "Error: FluxInstance Already Exists",
        "Error: ResourceSet Already Exists",
        "terraform import <address> flux-system/flux",
    ]);
    assert_eq!(provider_writes(&sandbox), Vec::<serde_json::Value>::new());
    second.plan().assert_changes();

    // A replacement of the resource's own object is no takeover.
    let uid = sandbox
        .get_json(&["resourceset", "team", "-n", "flux-system"])
        .unwrap()["metadata"]["uid"]
        .clone();
    ws.run(&[
        "apply",
        "-auto-approve",
        "-input=false",
        "-lock=false",
        "-no-color",
        "-replace=flux_resource_set.this",
    ])
    .assert_success()
    .assert_contains(&["1 added, 0 changed, 1 destroyed"]);
    assert_ne!(
        sandbox
            .get_json(&["resourceset", "team", "-n", "flux-system"])
            .unwrap()["metadata"]["uid"],
        uid
    );
    ws.plan().assert_no_changes();
}

/// Item 3, at create: a plan saved before the object existed is refused when applied, before
/// any write.
#[test]
fn saved_plan_is_refused_at_create_when_the_object_appeared() {
    let sandbox = Sandbox::start();
    let ws = workspace(&sandbox);
    ws.write_config(&with_provider(OPERATOR));
    ws.apply().assert_success();
    ws.write_config(&with_provider(&format!("{OPERATOR}{RESOURCE_SET}")));
    ws.run(&[
        "plan",
        "-out=tfplan",
        "-input=false",
        "-lock=false",
        "-no-color",
    ])
    .assert_success();
    ws.write_file("foreign-rs.yaml", FOREIGN_RESOURCE_SET);
    sandbox.kubectl(&[
        "apply",
        "-f",
        ws.path().join("foreign-rs.yaml").to_str().unwrap(),
    ]);
    sandbox.clear_requests();
    ws.apply_saved("tfplan").assert_failure().assert_contains(&[
        "Error: ResourceSet Already Exists",
        "terraform import <address> flux-system/team",
    ]);
    assert_eq!(provider_writes(&sandbox), Vec::<serde_json::Value>::new());
    assert_eq!(
        sandbox
            .get_json(&["resourceset", "team", "-n", "flux-system"])
            .unwrap()["spec"]["inputs"],
        serde_json::json!([{"name": "a"}])
    );
}

/// Item 2: fields another field manager added (kubectl patch, kubectl annotate) and the
/// configuration leaves unset show as removals in the plan; one apply removes them from the
/// cluster, and the next plan is empty. Same for a ResourceSet.
#[test]
fn drift_by_other_field_managers_is_healed_by_one_apply() {
    let sandbox = Sandbox::start();
    let ws = workspace(&sandbox);
    ws.write_config(&with_provider(&format!(
        "{OPERATOR}{MINIMAL_INSTANCE}{RESOURCE_SET}"
    )));
    ws.apply().assert_success();
    ws.plan().assert_no_changes();

    sandbox.kubectl(&[
        "-n",
        "flux-system",
        "patch",
        "fluxinstance",
        "flux",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"cluster":{"size":"large"}}}"#,
    ]);
    sandbox.kubectl(&[
        "-n",
        "flux-system",
        "annotate",
        "fluxinstance",
        "flux",
        "fluxcd.controlplane.io/reconcileEvery=5m",
    ]);
    sandbox.kubectl(&[
        "-n",
        "flux-system",
        "patch",
        "resourceset",
        "team",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"commonMetadata":{"labels":{"team":"x"}}}}"#,
    ]);
    ws.plan().assert_changes().assert_contains(&[
        r#"- size = "large" -> null"#,
        r#"- reconcile_every = "5m" -> null"#,
        r#"- "team" = "x""#,
        "Plan: 0 to add, 2 to change, 0 to destroy.",
    ]);
    ws.apply().assert_success();
    let live = instance_json(&sandbox);
    assert_eq!(live["spec"]["cluster"].get("size"), None, "{live}");
    assert_eq!(
        live["metadata"]["annotations"].get("fluxcd.controlplane.io/reconcileEvery"),
        None,
        "{live}"
    );
    let rs = sandbox
        .get_json(&["resourceset", "team", "-n", "flux-system"])
        .unwrap();
    assert_eq!(rs["spec"].get("commonMetadata"), None, "{rs}");
    ws.plan().assert_no_changes();
    // The operator's finalizer, which it owns, survived the takeover.
    assert_eq!(
        instance_json(&sandbox)["metadata"]["finalizers"],
        serde_json::json!(["fluxcd.controlplane.io/finalizer"])
    );
}

/// The CustomResourceDefinitions of the operator install manifest, as one YAML stream.
fn operator_crds() -> String {
    OPERATOR_INSTALL
        .split("\n---")
        .filter(|doc| doc.contains("\nkind: CustomResourceDefinition"))
        .map(|doc| format!("---{}\n", doc.trim_start_matches('-')))
        .collect()
}

/// Item 7: with the Flux CRDs left by an earlier installation but no `flux-system` namespace,
/// a configuration whose `flux_operator` creates the namespace plans (the dry-runs of the
/// FluxInstance, the ResourceSet and the input provider are skipped with a warning naming the
/// namespace), applies, and the next plan is empty.
#[test]
fn plan_does_not_fail_on_a_namespace_the_same_apply_creates() {
    let sandbox = Sandbox::start();
    let ws = workspace(&sandbox);
    let crds = ws.write_file("crds.yaml", &operator_crds());
    sandbox.kubectl(&["apply", "-f", crds.to_str().unwrap()]);
    assert!(
        sandbox
            .get_json(&["crd", "fluxinstances.fluxcd.controlplane.io"])
            .is_some()
    );
    assert_eq!(sandbox.get_json(&["namespace", "flux-system"]), None);
    ws.write_config(&with_provider(&format!(
        "{OPERATOR}{MINIMAL_INSTANCE}{RESOURCE_SET}{INPUT_PROVIDER}"
    )));
    let plan = ws.plan();
    let out = plan.assert_changes();
    out.assert_contains(&[
        "Warning: FluxInstance Not Validated By The API Server",
        "The namespace \"flux-system\" does not exist yet, so the API server cannot dry-run the FluxInstance flux-system/flux",
        "with flux_instance.this",
        "Warning: ResourceSet Not Validated By The API Server",
        "with flux_resource_set.this",
        "Warning: ResourceSetInputProvider Not Validated By The API Server",
        "with flux_resource_set_input_provider.this",
        "Plan: 4 to add, 0 to change, 0 to destroy.",
    ]);
    ws.apply().assert_success();
    assert_eq!(
        instance_json(&sandbox)["spec"]["distribution"]["version"],
        "2.7.x"
    );
    assert!(
        sandbox
            .get_json(&["resourceset", "team", "-n", "flux-system"])
            .is_some()
    );
    ws.plan().assert_no_changes();
}

/// Item 7, the other side: a dry-run skipped at plan still validates at apply — a namespace
/// nothing creates fails the apply with the API server's answer, and nothing is in state.
#[test]
fn a_skipped_dry_run_still_fails_the_apply_on_a_missing_namespace() {
    let sandbox = Sandbox::start();
    let ws = workspace(&sandbox);
    let crds = ws.write_file("crds.yaml", &operator_crds());
    sandbox.kubectl(&["apply", "-f", crds.to_str().unwrap()]);
    ws.write_config(&with_provider(
        r#"
resource "flux_resource_set" "this" {
  name      = "team"
  namespace = "nowhere"
  inputs    = [{ name = "b" }]
  resources = [{
    apiVersion = "v1"
    kind       = "ConfigMap"
    metadata   = { name = "team-<< inputs.name >>", namespace = "nowhere" }
  }]
}
"#,
    ));
    ws.plan().assert_changes().assert_contains(&[
        "Warning: ResourceSet Not Validated By The API Server",
        "The namespace \"nowhere\" does not exist yet",
    ]);
    ws.apply()
        .assert_failure()
        .assert_contains(&["namespaces \"nowhere\" not found"]);
    assert_eq!(ws.state_list(), Vec::<String>::new());
}

const FOREIGN_INPUT_PROVIDER: &str = r#"apiVersion: fluxcd.controlplane.io/v1
kind: ResourceSetInputProvider
metadata:
  name: team
  namespace: flux-system
spec:
  type: Static
  defaultValues:
    tenant: foreign
"#;

/// Item 3 for `flux_resource_set_input_provider`: a provider created by someone else is
/// refused at plan with the import command and no write; imported, the configuration manages
/// it and the next plan is empty.
#[test]
fn an_existing_input_provider_is_refused_until_imported() {
    let sandbox = Sandbox::start();
    let ws = workspace(&sandbox);
    ws.write_config(&with_provider(OPERATOR));
    ws.apply().assert_success();
    let file = ws.write_file("foreign-rsip.yaml", FOREIGN_INPUT_PROVIDER);
    sandbox.kubectl(&["apply", "-f", file.to_str().unwrap()]);
    ws.write_config(&with_provider(&format!("{OPERATOR}{INPUT_PROVIDER}")));
    sandbox.clear_requests();
    ws.plan().assert_error().assert_contains(&[
        "Error: ResourceSetInputProvider Already Exists",
        "The ResourceSetInputProvider flux-system/team already exists in the cluster, but it is not in this resource's Terraform state",
        "terraform import <address> flux-system/team",
        "with flux_resource_set_input_provider.this",
    ]);
    ws.apply().assert_failure();
    assert_eq!(provider_writes(&sandbox), Vec::<serde_json::Value>::new());
    let spec = |sandbox: &Sandbox| {
        sandbox
            .get_json(&["resourcesetinputprovider", "team", "-n", "flux-system"])
            .unwrap()["spec"]["defaultValues"]
            .clone()
    };
    assert_eq!(spec(&sandbox), serde_json::json!({"tenant": "foreign"}));
    ws.import("flux_resource_set_input_provider.this", "flux-system/team")
        .assert_success();
    ws.apply().assert_success();
    assert_eq!(spec(&sandbox), serde_json::json!({"tenant": "a"}));
    ws.plan().assert_no_changes();
}
