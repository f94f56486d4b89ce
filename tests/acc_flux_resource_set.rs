//! Acceptance tests of `flux_resource_set`: the real `terraform` (and `tofu`) CLI drives the
//! provider binary against the run's real control plane (`tests/common/cluster.rs`:
//! kube-apiserver with the operator simulator), with the Flux Operator fixture installed by
//! kubectl into a namespace of the test's own, and every effect is checked twice: in the state
//! and in the cluster through the real `kubectl`. One test keeps a private kube-sandbox: it
//! counts the provider's requests with the sandbox's recorder.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::cluster::TestCluster;
use common::terraform::{Output, REQUIRED_PROVIDERS, Workspace};
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_terraform-provider-flux");
const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/flux_resource_set"
);
const OWNER_NAME: &str = "resourceset.fluxcd.controlplane.io/name";
const OWNER_NAMESPACE: &str = "resourceset.fluxcd.controlplane.io/namespace";

// ---------------------------------------------------------------------------------------------
// The test's cluster, with the Flux Operator fixture installed by kubectl into its namespace
// ---------------------------------------------------------------------------------------------

struct Sandbox {
    inner: TestCluster,
    kubeconfig: PathBuf,
}

/// The real control plane (exclusively: one operator per cluster, as the provider expects) with the Flux Operator fixture in a namespace of the test's.
fn start() -> Sandbox {
    install(TestCluster::flux("acc-rset"))
}

/// A private kube-sandbox (namespace `flux-system`), for the test that counts requests.
fn start_sandbox() -> Sandbox {
    install(TestCluster::sandbox())
}

fn install(inner: TestCluster) -> Sandbox {
    let kubeconfig = inner.kubeconfig();
    let sandbox = Sandbox { inner, kubeconfig };
    // Already moved into the namespace (its CRDs keep their labels: other tests applied them).
    let manifest = sandbox.inner.operator_install();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("operator-install.yaml");
    std::fs::write(&file, manifest).unwrap();
    sandbox.ok(&["apply", "--server-side", "-f", file.to_str().unwrap()]);
    sandbox.ok(&[
        "wait",
        "--for=condition=Available",
        "-n",
        sandbox.ns(),
        "deployment/flux-operator",
        "--timeout=60s",
    ]);
    sandbox
}

impl Sandbox {
    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        self.inner.kubectl(args)
    }

    /// The namespace of the operator (and of the test's ResourceSets).
    fn ns(&self) -> &str {
        self.inner.namespace()
    }

    /// Applies `text` (with `flux-system` replaced by [`Self::ns`]) with kubectl.
    #[track_caller]
    fn apply_text(&self, name: &str, text: &str, server_side: bool) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(name);
        std::fs::write(&file, text.replace("flux-system", self.ns())).unwrap();
        let mut args = vec!["apply"];
        if server_side {
            args.push("--server-side");
        }
        args.extend(["-f", file.to_str().unwrap()]);
        self.ok(&args);
    }

    /// Applies a file of tests/fixtures/flux_resource_set in [`Self::ns`].
    #[track_caller]
    fn apply_fixture(&self, name: &str, server_side: bool) {
        let text = std::fs::read_to_string(format!("{FIXTURES}/{name}")).unwrap();
        self.apply_text(name, &text, server_side);
    }

    /// The object as JSON, or `None` when kubectl says NotFound.
    fn get(&self, kind: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        let mut args = vec![kind, name];
        if let Some(ns) = namespace {
            args.extend(["-n", ns]);
        }
        self.inner.get_json(&args)
    }

    /// Waits until the object is gone (namespaces terminate asynchronously).
    #[track_caller]
    fn assert_gone(&self, kind: &str, namespace: Option<&str>, name: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.get(kind, namespace, name).is_some() {
            assert!(
                Instant::now() < deadline,
                "{kind} {namespace:?}/{name} still exists"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn workspace(&self) -> Workspace {
        Workspace::new(BINARY)
    }

    fn provider_block(&self) -> String {
        format!(
            "{REQUIRED_PROVIDERS}\nprovider \"flux\" {{\n  kubernetes = {{\n    config_path = \"{}\"\n  }}\n}}\n",
            self.kubeconfig.display()
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Configurations and assertions
// ---------------------------------------------------------------------------------------------

/// A tenant's template: one ConfigMap per input. `replicas` is quoted, so it renders a string.
const TEMPLATE: &str = r#"<<-EOT
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: << inputs.tenant >>-settings
      namespace: << inputs.tenant >>
    data:
      replicas: "<< inputs.replicas >>"
      env: << inputs.env >>
  EOT"#;

/// The same template, reformatted: keys reordered, flow style, a comment, a leading `---`.
const TEMPLATE_REFORMATTED: &str = r#"<<-EOT
    ---
    # settings of one tenant
    kind: ConfigMap
    apiVersion: v1
    metadata: {namespace: << inputs.tenant >>, name: << inputs.tenant >>-settings}
    data:
      env: << inputs.env >>
      replicas:   "<< inputs.replicas >>"
  EOT"#;

fn tenant(name: &str, replicas: i64, env: &str) -> String {
    format!("{{ tenant = \"{name}\", replicas = {replicas}, env = \"{env}\" }}")
}

/// Two object templates in HCL (Namespace, ServiceAccount) plus the template string.
fn tenants_config(sandbox: &Sandbox, inputs: &[String], template: &str) -> String {
    let ns = sandbox.ns();
    format!(
        r#"{provider}
resource "flux_resource_set" "tenants" {{
  name      = "tenants"
  namespace = "{ns}"
  inputs    = [{inputs}]
  resources = [
    {{
      apiVersion = "v1"
      kind       = "Namespace"
      metadata   = {{ name = "<< inputs.tenant >>" }}
    }},
    {{
      apiVersion = "v1"
      kind       = "ServiceAccount"
      metadata = {{
        name      = "flux"
        namespace = "<< inputs.tenant >>"
        labels    = {{ "toolkit.fluxcd.io/tenant" = "<< inputs.tenant >>" }}
      }}
    }},
  ]
  resources_template = {template}
  common_metadata = {{
    labels = {{ "app.kubernetes.io/managed-by" = "terraform" }}
  }}
  timeouts {{
    create = "60s"
    update = "60s"
    delete = "60s"
  }}
}}
"#,
        provider = sandbox.provider_block(),
        inputs = inputs.join(", "),
    )
}

/// The same configuration with every key in a different order and the objects given through
/// `yamldecode` instead of HCL.
fn tenants_config_respelled(sandbox: &Sandbox, inputs: &[&str]) -> String {
    let ns = sandbox.ns();
    format!(
        r#"{provider}
resource "flux_resource_set" "tenants" {{
  namespace = "{ns}"
  name      = "tenants"
  resources_template = {template}
  resources = [
    yamldecode("{{kind: Namespace, metadata: {{name: '<< inputs.tenant >>'}}, apiVersion: v1}}"),
    yamldecode(<<-EOT
      metadata:
        labels:
          toolkit.fluxcd.io/tenant: "<< inputs.tenant >>"
        namespace: "<< inputs.tenant >>"
        name: flux
      kind: ServiceAccount
      apiVersion: v1
    EOT
    ),
  ]
  inputs = [{inputs}]
  common_metadata = {{
    labels = {{ "app.kubernetes.io/managed-by" = "terraform" }}
  }}
  timeouts {{
    delete = "60s"
    update = "60s"
    create = "60s"
  }}
}}
"#,
        provider = sandbox.provider_block(),
        template = TEMPLATE_REFORMATTED,
        inputs = inputs.join(", "),
    )
}

fn state_resource(workspace: &Workspace, address: &str) -> Value {
    let state = workspace.show_json();
    state["values"]["root_module"]["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["address"] == address)
        .map(|r| r["values"].clone())
        .unwrap_or_else(|| panic!("{address} not in state: {state}"))
}

/// `kind namespace/name` of every inventory entry in state, sorted.
fn inventory(values: &Value) -> Vec<String> {
    let mut out: Vec<String> = values["inventory"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            format!(
                "{} {} {}/{}",
                e["api_version"].as_str().unwrap(),
                e["kind"].as_str().unwrap(),
                e["namespace"].as_str().unwrap(),
                e["name"].as_str().unwrap()
            )
        })
        .collect();
    out.sort();
    out
}

fn tenant_objects(tenants: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = tenants
        .iter()
        .flat_map(|t| {
            [
                format!("v1 ConfigMap {t}/{t}-settings"),
                format!("v1 Namespace /{t}"),
                format!("v1 ServiceAccount {t}/flux"),
            ]
        })
        .collect();
    out.sort();
    out
}

/// (uid, resourceVersion) of every generated object of `tenants`, by `kind namespace/name`.
fn versions(sandbox: &Sandbox, tenants: &[&str]) -> BTreeMap<String, (String, String)> {
    let ns_owner = sandbox.ns();
    let mut out = BTreeMap::new();
    for t in tenants {
        for (kind, ns, name) in [
            ("namespace", None, t.to_string()),
            ("serviceaccount", Some(*t), "flux".to_string()),
            ("configmap", Some(*t), format!("{t}-settings")),
        ] {
            let object = sandbox
                .get(kind, ns, &name)
                .unwrap_or_else(|| panic!("{kind} {ns:?}/{name} missing"));
            let meta = &object["metadata"];
            assert_eq!(
                (
                    &meta["labels"][OWNER_NAME],
                    &meta["labels"][OWNER_NAMESPACE]
                ),
                (&json!("tenants"), &json!(ns_owner)),
                "owner labels on {kind} {name}"
            );
            assert_eq!(
                meta["labels"]["app.kubernetes.io/managed-by"],
                json!("terraform"),
                "common_metadata on {kind} {name}"
            );
            out.insert(
                format!("{kind} {}/{name}", ns.unwrap_or_default()),
                (
                    meta["uid"].as_str().unwrap().to_owned(),
                    meta["resourceVersion"].as_str().unwrap().to_owned(),
                ),
            );
        }
    }
    out
}

/// Plans to a file and returns the attribute paths of `address` whose planned value differs
/// from the prior one, and those that become unknown.
fn planned_changes(workspace: &Workspace, address: &str) -> (Vec<String>, Vec<String>) {
    workspace
        .run(&[
            "plan",
            "-input=false",
            "-lock=false",
            "-no-color",
            "-out=tfplan",
        ])
        .assert_success();
    let shown = workspace.run(&["show", "-json", "tfplan"]);
    shown.assert_success();
    let plan: Value = serde_json::from_str(&shown.stdout).unwrap();
    let change = plan["resource_changes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["address"] == address)
        .map(|c| c["change"].clone())
        .unwrap_or_else(|| panic!("no change for {address}: {plan}"));
    let mut changed = Vec::new();
    diff_paths("", &change["before"], &change["after"], &mut changed);
    let mut unknown = Vec::new();
    unknown_paths("", &change["after_unknown"], &mut unknown);
    changed.retain(|p| {
        !unknown
            .iter()
            .any(|u| p == u || p.starts_with(&format!("{u}.")) || p.starts_with(&format!("{u}[")))
    });
    (changed, unknown)
}

fn diff_paths(path: &str, before: &Value, after: &Value, out: &mut Vec<String>) {
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            let keys: std::collections::BTreeSet<&String> = b.keys().chain(a.keys()).collect();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                diff_paths(
                    &p,
                    b.get(k).unwrap_or(&Value::Null),
                    a.get(k).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        (Value::Array(b), Value::Array(a)) if a.len() == b.len() => {
            for (i, (x, y)) in b.iter().zip(a).enumerate() {
                diff_paths(&format!("{path}[{i}]"), x, y, out);
            }
        }
        (b, a) if b != a => out.push(path.to_owned()),
        _ => {}
    }
}

fn unknown_paths(path: &str, marks: &Value, out: &mut Vec<String>) {
    match marks {
        Value::Bool(true) => out.push(path.to_owned()),
        Value::Object(m) => {
            for (k, v) in m {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                unknown_paths(&p, v, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                unknown_paths(&format!("{path}[{i}]"), v, out);
            }
        }
        _ => {}
    }
}

#[track_caller]
fn assert_applied(output: &Output) {
    output.assert_success();
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[test]
fn tenants_apply_update_prune_reformat_drift_and_uninstall() {
    let sandbox = start();
    let ns = sandbox.ns();
    let workspace = sandbox.workspace();
    let address = "flux_resource_set.tenants";

    // Create: two inputs, three templates (one of them a template string).
    let a = tenant("team-a", 1, "dev");
    let b = tenant("team-b", 2, "prod");
    workspace.write_config(&tenants_config(&sandbox, &[a.clone(), b.clone()], TEMPLATE));
    assert_applied(&workspace.apply());
    let values = state_resource(&workspace, address);
    assert_eq!(values["ready"], json!(true));
    assert_eq!(values["id"], json!(format!("{ns}/tenants")));
    assert_eq!(values["inventory_status"], json!("Healthy"));
    assert_eq!(inventory(&values), tenant_objects(&["team-a", "team-b"]));
    assert!(
        values["last_applied_revision"]
            .as_str()
            .is_some_and(|r| !r.is_empty()),
        "{values}"
    );
    let before = versions(&sandbox, &["team-a", "team-b"]);
    let settings = sandbox
        .get("configmap", Some("team-b"), "team-b-settings")
        .unwrap();
    assert_eq!(settings["data"], json!({"replicas": "2", "env": "prod"}));
    let live = sandbox.get("resourceset", Some(ns), "tenants").unwrap();
    assert_eq!(
        live["spec"]["inputs"],
        json!([
            {"tenant": "team-a", "replicas": 1, "env": "dev"},
            {"tenant": "team-b", "replicas": 2, "env": "prod"}
        ])
    );
    workspace.plan().assert_no_changes();

    // One input field changes: exactly that field in the plan, exactly its objects updated.
    let b3 = tenant("team-b", 3, "prod");
    workspace.write_config(&tenants_config(
        &sandbox,
        &[a.clone(), b3.clone()],
        TEMPLATE,
    ));
    let (changed, unknown) = planned_changes(&workspace, address);
    assert_eq!(changed, ["inputs[1].replicas"]);
    assert_eq!(unknown, ["inventory", "last_applied_revision"]);
    let shown = workspace.run(&["show", "-no-color", "tfplan"]);
    eprintln!("{}", shown.stdout);
    shown.assert_contains(&["~ replicas = 2 -> 3", "1 to change"]);
    assert_applied(&workspace.apply());
    let after = versions(&sandbox, &["team-a", "team-b"]);
    let updated: Vec<&String> = before
        .iter()
        .filter(|(k, v)| after.get(*k) != Some(*v))
        .map(|(k, _)| k)
        .collect();
    assert_eq!(updated, ["configmap team-b/team-b-settings"]);
    assert!(
        before.iter().all(|(k, (uid, _))| after[k].0 == *uid),
        "no object was recreated"
    );
    let settings = sandbox
        .get("configmap", Some("team-b"), "team-b-settings")
        .unwrap();
    assert_eq!(settings["data"], json!({"replicas": "3", "env": "prod"}));
    workspace.plan().assert_no_changes();

    // Reformatted template, reordered keys, objects spelled with yamldecode: no changes.
    workspace.write_config(&tenants_config_respelled(&sandbox, &[&a, &b3]));
    workspace.plan().assert_no_changes();

    // Drift made with kubectl on the spec shows in the plan; apply restores it.
    sandbox.ok(&[
        "patch",
        "resourceset",
        "tenants",
        "-n",
        ns,
        "--type=merge",
        "-p",
        r#"{"spec":{"inputs":[{"tenant":"team-a","replicas":1,"env":"dev"},{"tenant":"team-b","replicas":9,"env":"prod"}]}}"#,
    ]);
    let (changed, _) = planned_changes(&workspace, address);
    assert_eq!(changed, ["inputs[1].replicas"]);
    assert_applied(&workspace.apply());
    let live = sandbox.get("resourceset", Some(ns), "tenants").unwrap();
    assert_eq!(live["spec"]["inputs"][1]["replicas"], json!(3));
    workspace.plan().assert_no_changes();

    // A generated object deleted with kubectl is installation drift: the plan shows a pending
    // reconcile, apply asks the operator for one and the object is back.
    sandbox.ok(&["delete", "configmap", "team-b-settings", "-n", "team-b"]);
    let (changed, unknown) = planned_changes(&workspace, address);
    assert_eq!(changed, ["inventory_status"]);
    assert_eq!(unknown, ["inventory", "last_applied_revision"]);
    workspace
        .run(&["show", "-no-color", "tfplan"])
        .assert_contains(&[
            "~ inventory_status      = \"Drifted: ConfigMap team-b/team-b-settings missing\" -> \"Healthy\"",
        ]);
    workspace
        .plan()
        .assert_changes()
        .assert_contains(&["ResourceSet Will Be Reconciled"]);
    assert_applied(&workspace.apply());
    let settings = sandbox
        .get("configmap", Some("team-b"), "team-b-settings")
        .expect("the operator re-created the deleted ConfigMap");
    assert_eq!(settings["data"], json!({"replicas": "3", "env": "prod"}));
    assert_eq!(
        state_resource(&workspace, address)["inventory_status"],
        json!("Healthy")
    );
    workspace.plan().assert_no_changes();

    // Removing an input prunes its objects; the other tenant's stay untouched.
    let kept = versions(&sandbox, &["team-b"]);
    workspace.write_config(&tenants_config(
        &sandbox,
        std::slice::from_ref(&b3),
        TEMPLATE,
    ));
    assert_applied(&workspace.apply());
    sandbox.assert_gone("configmap", Some("team-a"), "team-a-settings");
    sandbox.assert_gone("serviceaccount", Some("team-a"), "flux");
    sandbox.assert_gone("namespace", None, "team-a");
    assert_eq!(versions(&sandbox, &["team-b"]), kept);
    let values = state_resource(&workspace, address);
    assert_eq!(inventory(&values), tenant_objects(&["team-b"]));
    workspace.plan().assert_no_changes();

    // Destroy with the default `uninstall` prunes everything the ResourceSet generated.
    workspace.destroy().assert_success();
    sandbox.assert_gone("resourceset", Some(ns), "tenants");
    sandbox.assert_gone("configmap", Some("team-b"), "team-b-settings");
    sandbox.assert_gone("namespace", None, "team-b");
}

/// A create whose wait times out (the dependency is not ready) keeps the ResourceSet in state
/// untainted, with a warning: the next plan is an in-place update that waits again, never a
/// replacement (which would delete what it generated), and converges once the cause is gone.
#[test]
fn dependency_not_ready_on_create_never_leads_to_a_replacement() {
    let sandbox = start();
    let ns = sandbox.ns();
    sandbox.apply_fixture("gate-provider.yaml", true);
    let workspace = sandbox.workspace();
    let config = format!(
        r#"{provider}
resource "flux_resource_set" "gated" {{
  name      = "gated"
  namespace = "{ns}"
  inputs    = [{{ name = "gated-config" }}]
  resources = [{{
    apiVersion = "v1"
    kind       = "ConfigMap"
    metadata   = {{ name = "<< inputs.name >>", namespace = "{ns}" }}
    data       = {{ ready = "yes" }}
  }}]
  dependencies = [{{
    api_version = "fluxcd.controlplane.io/v1"
    kind        = "ResourceSetInputProvider"
    name        = "gate"
    namespace   = "{ns}"
    ready       = true
  }}]
  timeouts {{
    create = "3s"
  }}
}}
"#,
        provider = sandbox.provider_block()
    );
    workspace.write_config(&config);
    let started = Instant::now();
    let incomplete = workspace.apply();
    incomplete.assert_success();
    incomplete.assert_contains(&[
        "Warning: Create Incomplete: ResourceSet Not Ready",
        "DependencyNotReady",
        "timed out after 3s",
        "not marked tainted",
    ]);
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "apply waited for the timeout"
    );
    assert!(sandbox.get("configmap", Some(ns), "gated-config").is_none());
    let state = workspace.show_json();
    let entry = state["values"]["root_module"]["resources"]
        .as_array()
        .and_then(|rs| {
            rs.iter()
                .find(|r| r["address"] == "flux_resource_set.gated")
        })
        .unwrap()
        .clone();
    assert_ne!(entry["tainted"], json!(true), "tainted: {entry}");
    assert_eq!(entry["values"]["ready"], json!(false));
    let uid = sandbox.get("resourceset", Some(ns), "gated").unwrap()["metadata"]["uid"].clone();
    let plan = workspace.plan();
    let planned = plan.assert_changes();
    planned.assert_contains(&[
        "flux_resource_set.gated will be updated in-place",
        "~ ready = false -> true",
        "Plan: 0 to add, 1 to change, 0 to destroy.",
    ]);
    assert!(!planned.combined().contains("must be replaced"));

    // The dependency becomes ready while the next apply waits (after its refresh found the
    // ResourceSet still not Ready): that apply converges in place.
    let applied = std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(Duration::from_secs(8));
            sandbox.apply_fixture("gate-provider-ready.yaml", true);
        });
        workspace.apply()
    });
    applied
        .assert_success()
        .assert_contains(&["0 added, 1 changed, 0 destroyed"]);
    assert_eq!(
        sandbox.get("resourceset", Some(ns), "gated").unwrap()["metadata"]["uid"],
        uid,
        "the ResourceSet was recreated"
    );
    let values = state_resource(&workspace, "flux_resource_set.gated");
    assert_eq!(values["ready"], json!(true));
    let generated = sandbox.get("configmap", Some(ns), "gated-config").unwrap();
    assert_eq!(generated["data"], json!({"ready": "yes"}));
    workspace.plan().assert_no_changes();

    // steps together with resources fails at plan, naming both attributes.
    workspace.write_config(&config.replace(
        "  dependencies = [{",
        "  steps = [{ name = \"one\", resources_template = \"kind: ConfigMap\" }]\n  dependencies = [{",
    ));
    let plan = workspace.plan();
    let output = plan.assert_error();
    output.assert_contains(&[
        "Invalid ResourceSet",
        "steps is mutually exclusive with resources and resourcesTemplate",
        "`steps`, `resources`",
    ]);

    // What the operator would wait on or stall with is refused at plan, naming the attributes:
    // a namespaced dependency without a namespace (the operator does not default it), a
    // `ready_expr` without `ready = true`, and `inputs.id` with inline inputs.
    for (from, to, message, attributes) in [
        (
            format!("    namespace   = \"{ns}\"\n"),
            String::new(),
            "a namespaced dependency needs its namespace",
            "`dependencies[0].namespace`",
        ),
        (
            "    ready       = true\n".to_owned(),
            "    ready_expr  = \"true\"\n".to_owned(),
            "readyExpr is only evaluated when ready is true",
            "`dependencies[0].ready_expr`, `dependencies[0].ready`",
        ),
        (
            "name = \"<< inputs.name >>\"".to_owned(),
            "name = \"<< inputs.id >>\"".to_owned(),
            "inline inputs have no id",
            "`inputs`, `resources`",
        ),
    ] {
        assert!(config.contains(&from), "{from}");
        workspace.write_config(&config.replace(&from, &to));
        let plan = workspace.plan();
        plan.assert_error()
            .assert_contains(&["Invalid ResourceSet", message, attributes]);
    }
    // Nothing changed in the cluster.
    let live = sandbox.get("resourceset", Some(ns), "gated").unwrap();
    assert_eq!(live["metadata"]["generation"], json!(1), "{live}");
}

#[test]
fn import_by_cli_and_by_import_block_plans_empty_then_orphan_keeps_objects() {
    let sandbox = start();
    let ns = sandbox.ns();
    sandbox.apply_fixture("imported.yaml", true);
    sandbox.ok(&[
        "wait",
        "--for=condition=Ready",
        "-n",
        ns,
        "resourceset/imported",
        "--timeout=30s",
    ]);

    // import {} + -generate-config-out: the generated configuration plans no change.
    let generated = sandbox.workspace();
    generated.write_config(&format!(
        "{}\nimport {{\n  to = flux_resource_set.imported\n  id = \"{ns}/imported\"\n}}\n",
        sandbox.provider_block()
    ));
    let planned = generated.plan_with(&["-generate-config-out=generated.tf"]);
    planned
        .output()
        .assert_contains(&["1 to import, 0 to add, 0 to change, 0 to destroy"]);
    let hcl = std::fs::read_to_string(generated.path().join("generated.tf")).unwrap();
    assert!(hcl.contains("<< inputs.app >>"), "{hcl}");
    assert_applied(&generated.apply());
    generated.plan().assert_no_changes();
    let values = state_resource(&generated, "flux_resource_set.imported");
    assert_eq!(
        inventory(&values),
        [
            format!("v1 ConfigMap {ns}/alpha-config"),
            format!("v1 ConfigMap {ns}/beta-config")
        ]
    );

    // terraform import with a hand-written configuration.
    let cli = sandbox.workspace();
    cli.write_config(&format!(
        r#"{provider}
resource "flux_resource_set" "imported" {{
  name      = "imported"
  namespace = "{ns}"
  inputs    = [{{ app = "alpha", size = 1 }}, {{ app = "beta", size = 2 }}]
  resources_template = <<-EOT
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: << inputs.app >>-config
      namespace: {ns}
    data:
      size: "<< inputs.size >>"
  EOT
  deletion_policy = "orphan"
}}
"#,
        provider = sandbox.provider_block()
    ));
    cli.import("flux_resource_set.imported", &format!("{ns}/imported"))
        .assert_success();
    // deletion_policy is Terraform's own setting: the only change is recording it.
    let (changed, unknown) = planned_changes(&cli, "flux_resource_set.imported");
    assert_eq!(changed, ["deletion_policy"]);
    assert_eq!(unknown, Vec::<String>::new());
    assert_applied(&cli.apply());
    cli.plan().assert_no_changes();

    // Destroy with `orphan`: the ResourceSet goes, what it generated stays.
    cli.destroy().assert_success();
    sandbox.assert_gone("resourceset", Some(ns), "imported");
    for app in ["alpha", "beta"] {
        let object = sandbox
            .get("configmap", Some(ns), &format!("{app}-config"))
            .unwrap_or_else(|| panic!("{app}-config was deleted"));
        assert_eq!(object["metadata"]["labels"][OWNER_NAME], json!("imported"));
    }
}

#[test]
fn five_hundred_inputs_plan_and_apply() {
    let sandbox = start();
    let ns = sandbox.ns();
    let workspace = sandbox.workspace();
    let inputs: Vec<String> = (0..500)
        .map(|i| format!("{{ app = \"app-{i:03}\", index = {i} }}"))
        .collect();
    workspace.write_config(&format!(
        r#"{provider}
resource "flux_resource_set" "many" {{
  name      = "many"
  namespace = "{ns}"
  inputs    = [{inputs}]
  resources_template = <<-EOT
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: << inputs.app >>
      namespace: {ns}
    data:
      index: "<< inputs.index >>"
  EOT
  timeouts {{
    create = "5m"
  }}
}}
"#,
        provider = sandbox.provider_block(),
        inputs = inputs.join(",\n    ")
    ));
    let t0 = Instant::now();
    workspace.plan().assert_changes();
    let plan_time = t0.elapsed();
    let t1 = Instant::now();
    assert_applied(&workspace.apply());
    let apply_time = t1.elapsed();
    let t2 = Instant::now();
    workspace.plan().assert_no_changes();
    let replan_time = t2.elapsed();
    eprintln!(
        "500 inputs: first plan {plan_time:?}, apply {apply_time:?}, plan after apply {replan_time:?}"
    );
    let values = state_resource(&workspace, "flux_resource_set.many");
    assert_eq!(values["inventory"].as_array().map(Vec::len), Some(500));
    let last = sandbox.get("configmap", Some(ns), "app-499").unwrap();
    assert_eq!(last["data"], json!({"index": "499"}));
}

#[test]
fn example_validates_and_plans_against_the_cluster() {
    let sandbox = start();
    let workspace = sandbox.workspace();
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/resources/flux_resource_set/resource.tf"
    ))
    .unwrap();
    // In the test's namespace, where its operator runs.
    let ns = sandbox.ns();
    let example = example.replace("\"flux-system\"", &format!("\"{ns}\""));
    workspace.write_config(&format!(
        "{}\nresource \"flux_instance\" \"this\" {{\n  namespace    = \"{ns}\"\n  distribution = {{ version = \"2.7.x\" }}\n}}\n\n{example}",
        sandbox.provider_block()
    ));
    workspace.validate().assert_success();
    let planned = workspace.plan();
    planned
        .assert_changes()
        .assert_contains(&["flux_resource_set.tenants will be created", "2 to add"]);
}

#[test]
fn steps_inputs_from_selector_and_unknown_inputs() {
    let sandbox = start();
    let ns = sandbox.ns();
    sandbox.apply_fixture("static-provider.yaml", false);
    let workspace = sandbox.workspace();
    workspace.write_config(&format!(
        r#"{provider}
resource "terraform_data" "tenant" {{
  input = "team-d"
}}

resource "flux_resource_set" "staged" {{
  name      = "staged"
  namespace = "{ns}"
  inputs    = [{{ tenant = terraform_data.tenant.output }}]
  inputs_from = [{{
    selector = {{ match_labels = {{ "tenants.example.com/enabled" = "true" }} }}
  }}]
  steps = [
    {{
      name = "namespaces"
      resources = [{{
        apiVersion = "v1"
        kind       = "Namespace"
        metadata   = {{ name = "<< inputs.tenant >>" }}
      }}]
    }},
    {{
      name               = "settings"
      timeout            = "30s"
      resources_template = <<-EOT
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: settings
          namespace: << inputs.tenant >>
        data:
          tenant: << inputs.tenant >>
      EOT
    }},
  ]
}}
"#,
        provider = sandbox.provider_block()
    ));
    // A part of `inputs` unknown until apply (terraform_data's output) is refused at plan with
    // a diagnostic naming it (the framework cannot plan it exactly yet, see the report)...
    workspace.plan().assert_error().assert_contains(&[
        "Value Not Known Until Apply",
        "inputs[0].tenant is not known",
    ]);
    // ...and plans once it is known.
    workspace
        .run(&[
            "apply",
            "-auto-approve",
            "-input=false",
            "-lock=false",
            "-no-color",
            "-target=terraform_data.tenant",
        ])
        .assert_success();
    assert_applied(&workspace.apply());
    let values = state_resource(&workspace, "flux_resource_set.staged");
    assert_eq!(values["ready"], json!(true));
    assert_eq!(
        values["inputs"],
        json!([{"tenant": "team-d"}]),
        "the input as configured, now known"
    );
    assert_eq!(
        inventory(&values),
        [
            "v1 ConfigMap team-c/settings",
            "v1 ConfigMap team-d/settings",
            "v1 Namespace /team-c",
            "v1 Namespace /team-d",
        ]
    );
    for tenant in ["team-c", "team-d"] {
        let settings = sandbox.get("configmap", Some(tenant), "settings").unwrap();
        assert_eq!(settings["data"], json!({"tenant": tenant}));
    }
    let live = sandbox.get("resourceset", Some(ns), "staged").unwrap();
    assert_eq!(
        live["spec"]["inputsFrom"],
        json!([{
            "apiVersion": "fluxcd.controlplane.io/v1",
            "kind": "ResourceSetInputProvider",
            "selector": {"matchLabels": {"tenants.example.com/enabled": "true"}}
        }])
    );
    assert_eq!(live["spec"]["steps"][1]["timeout"], json!("30s"));
    workspace.plan().assert_no_changes();
}

#[test]
fn unknown_provider_configuration_plans_without_the_cluster() {
    // The cluster address is only known after apply and points nowhere: any request during the
    // plan would fail with a connection error.
    let workspace = Workspace::new(BINARY);
    workspace.write_config(&format!(
        r#"{REQUIRED_PROVIDERS}
resource "terraform_data" "cluster" {{
  input = "https://127.0.0.1:1"
}}

provider "flux" {{
  kubernetes = {{
    host     = terraform_data.cluster.output
    token    = "unused"
    insecure = true
  }}
}}

resource "flux_resource_set" "tenants" {{
  name               = "tenants"
  namespace          = "flux-system"
  inputs             = [{{ tenant = "team-a" }}]
  resources_template = "kind: Namespace\napiVersion: v1\nmetadata:\n  name: << inputs.tenant >>\n"
}}
"#
    ));
    let planned = workspace.plan();
    let output = planned.assert_changes();
    output.assert_contains(&[
        "flux_resource_set.tenants will be created",
        "+ ready                 = (known after apply)",
        "2 to add",
    ]);
}

#[test]
fn build_failure_fails_at_once_quoting_the_operator_then_converges() {
    let sandbox = start();
    let ns = sandbox.ns();
    let workspace = sandbox.workspace();
    let config = |replicas: i64| {
        format!(
            r#"{provider}
resource "flux_resource_set" "app" {{
  name               = "app"
  namespace          = "{ns}"
  inputs             = [{{ replicas = {replicas} }}]
  resources_template = <<-EOT
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: app
      namespace: {ns}
    data:
      replicas: "<< inputs.replicas >>"
  EOT
}}
"#,
            provider = sandbox.provider_block()
        )
    };
    workspace.write_config(&config(1));
    assert_applied(&workspace.apply());

    // The simulator's scripted failure: the next reconcile stalls with BuildFailed.
    sandbox.ok(&[
        "annotate",
        "resourceset",
        "app",
        "-n",
        ns,
        "sandbox.fluxrs.dev/fail=BuildFailed:template rendering exploded",
    ]);
    workspace.write_config(&config(2));
    let started = Instant::now();
    let failed = workspace.apply();
    failed.assert_failure();
    failed.assert_contains(&[
        "ResourceSet Failed",
        "is stalled: BuildFailed: template rendering exploded",
    ]);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "a stalled ResourceSet fails at once, not after the 10m default timeout"
    );
    let values = state_resource(&workspace, "flux_resource_set.app");
    assert_eq!(values["ready"], json!(false));
    assert_eq!(values["inputs"], json!([{"replicas": 2}]));

    // The cause goes away (an annotation change makes the operator reconcile by itself): the
    // refreshed state is Ready with the new input applied, and nothing is left to do.
    sandbox.ok(&[
        "annotate",
        "resourceset",
        "app",
        "-n",
        ns,
        "sandbox.fluxrs.dev/fail-",
    ]);
    sandbox.ok(&[
        "wait",
        "--for=condition=Ready",
        "-n",
        ns,
        "resourceset/app",
        "--timeout=30s",
    ]);
    workspace.plan().assert_no_changes();
    assert_applied(&workspace.apply());
    let values = state_resource(&workspace, "flux_resource_set.app");
    assert_eq!(values["ready"], json!(true));
    let generated = sandbox.get("configmap", Some(ns), "app").unwrap();
    assert_eq!(generated["data"], json!({"replicas": "2"}));
}

/// The resources whose planned action is not a no-op, after `plan -out=tfplan`.
fn changed_addresses(workspace: &Workspace) -> Vec<String> {
    workspace
        .run(&[
            "plan",
            "-input=false",
            "-lock=false",
            "-no-color",
            "-out=tfplan",
        ])
        .assert_success();
    let shown = workspace.run(&["show", "-json", "tfplan"]);
    shown.assert_success();
    let plan: Value = serde_json::from_str(&shown.stdout).unwrap();
    plan["resource_changes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["change"]["actions"] != json!(["no-op"]))
        .map(|c| c["address"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// (GETs, LISTs) of one resource type our provider made, from the sandbox recorder.
fn provider_reads(sandbox: &Sandbox, plural: &str) -> (usize, usize) {
    let requests = sandbox.inner.requests();
    let ours: Vec<&Value> = requests
        .iter()
        .filter(|r| {
            r["userAgent"]
                .as_str()
                .is_some_and(|a| a.starts_with("terraform-provider-flux/"))
                && r["path"]
                    .as_str()
                    .is_some_and(|p| p.contains(&format!("/{plural}")))
        })
        .collect();
    let count = |verb: &str| ours.iter().filter(|r| r["verb"] == verb).count();
    (count("get"), count("list"))
}

#[test]
fn many_resource_sets_share_one_list_per_kind_and_still_show_drift() {
    let sandbox = start_sandbox();
    let ns = sandbox.ns();
    let workspace = sandbox.workspace();
    workspace.write_config(&format!(
        r#"{provider}
resource "flux_resource_set" "many" {{
  count     = 8
  name      = "many-${{count.index}}"
  namespace = "{ns}"
  inputs    = [{{ value = "v${{count.index}}" }}]
  resources = [{{
    apiVersion = "v1"
    kind       = "ConfigMap"
    metadata   = {{ name = "many-${{count.index}}", namespace = "{ns}" }}
    data       = {{ value = "<< inputs.value >>" }}
  }}]
}}
"#,
        provider = sandbox.provider_block()
    ));
    assert_applied(&workspace.apply());

    // A no-change plan: the eight refreshes read each kind with a few GETs and one shared LIST.
    sandbox.inner.clear_requests();
    workspace.plan().assert_no_changes();
    assert_eq!(provider_reads(&sandbox, "resourcesets"), (3, 1));
    assert_eq!(provider_reads(&sandbox, "configmaps"), (3, 1));

    // Drift made with kubectl after the previous plan, on objects read from the shared LISTs
    // (the last two of eight): a generated object deleted, a spec changed. Exactly those two
    // resources plan a change, and apply repairs both.
    sandbox.ok(&["delete", "configmap", "many-6", "-n", ns]);
    sandbox.ok(&[
        "patch",
        "resourceset",
        "many-7",
        "-n",
        ns,
        "--type=merge",
        "-p",
        r#"{"spec":{"inputs":[{"value":"drifted"}]}}"#,
    ]);
    assert_eq!(
        changed_addresses(&workspace),
        ["flux_resource_set.many[6]", "flux_resource_set.many[7]"]
    );
    let (changed, _) = planned_changes(&workspace, "flux_resource_set.many[6]");
    assert_eq!(changed, ["inventory_status"]);
    let (changed, _) = planned_changes(&workspace, "flux_resource_set.many[7]");
    assert_eq!(changed, ["inputs[0].value"]);
    assert_applied(&workspace.apply());
    let restored = sandbox
        .get("configmap", Some(ns), "many-6")
        .expect("the operator re-created the deleted ConfigMap");
    assert_eq!(restored["data"], json!({"value": "v6"}));
    let live = sandbox.get("resourceset", Some(ns), "many-7").unwrap();
    assert_eq!(live["spec"]["inputs"], json!([{"value": "v7"}]));
    workspace.plan().assert_no_changes();
}

/// `reconcileEvery: 1d` written by another tool (the operator cannot parse it) is drift:
/// refresh, plan and destroy keep working, the plan shows it and apply restores the value.
#[test]
fn unparsable_annotation_from_another_tool_is_drift_that_apply_heals() {
    let sandbox = start();
    let ns = sandbox.ns();
    let workspace = sandbox.workspace();
    workspace.write_config(&format!(
        r#"{provider}
resource "flux_resource_set" "settings" {{
  name            = "settings"
  namespace       = "{ns}"
  reconcile_every = "10m"
  resources = [{{
    apiVersion = "v1"
    kind       = "ConfigMap"
    metadata   = {{ name = "settings", namespace = "{ns}" }}
  }}]
}}
"#,
        provider = sandbox.provider_block()
    ));
    assert_applied(&workspace.apply());
    workspace.plan().assert_no_changes();
    let overwrite = |value: &str| {
        sandbox.ok(&[
            "-n",
            ns,
            "annotate",
            "--overwrite",
            "resourceset",
            "settings",
            &format!("fluxcd.controlplane.io/reconcileEvery={value}"),
        ]);
    };
    overwrite("1d");
    workspace.plan().assert_changes().assert_contains(&[
        r#"~ reconcile_every = "1d" -> "10m""#,
        "1 to change, 0 to destroy",
    ]);
    workspace
        .apply()
        .assert_success()
        .assert_contains(&["1 changed, 0 destroyed"]);
    let live = sandbox.get("resourceset", Some(ns), "settings").unwrap();
    assert_eq!(
        live["metadata"]["annotations"]["fluxcd.controlplane.io/reconcileEvery"],
        "10m"
    );
    assert_eq!(
        state_resource(&workspace, "flux_resource_set.settings")["reconcile_every"],
        "10m"
    );
    workspace.plan().assert_no_changes();

    overwrite("5 minutes");
    workspace.destroy().assert_success();
    sandbox.assert_gone("resourceset", Some(ns), "settings");
    sandbox.assert_gone("configmap", Some(ns), "settings");
}

/// The real operator (v0.58.1) reports a ResourceSet whose `inputs_from` provider is missing
/// Stalled, and one whose `service_account_name` it cannot impersonate fails to apply and, on
/// delete, leaves its objects behind. Plan warns about both, naming the object and the fix, and
/// stops warning once they exist; the plan writes nothing.
#[test]
fn plan_warns_about_a_missing_input_provider_and_service_account() {
    let sandbox = start();
    let ns = sandbox.ns();
    let workspace = sandbox.workspace();
    workspace.write_config(&format!(
        r#"{provider}
resource "flux_resource_set" "refs" {{
  name                 = "refs"
  namespace            = "{ns}"
  service_account_name = "deployer"
  inputs_from          = [{{ name = "later" }}]
  resources = [{{
    apiVersion = "v1"
    kind       = "ConfigMap"
    metadata   = {{ name = "refs-<< inputs.id >>", namespace = "{ns}" }}
  }}]
}}
"#,
        provider = sandbox.provider_block()
    ));
    let plan = workspace.plan();
    let output = plan.assert_changes();
    output.assert_contains(&[
        "Warning: Input Provider Not Found",
        &format!("ResourceSetInputProvider {ns}/later does not exist yet"),
        "Warning: Service Account Not Found",
        &format!("ServiceAccount {ns}/deployer does not exist yet"),
        "leaves the generated objects behind",
        "Plan: 1 to add, 0 to change, 0 to destroy.",
    ]);
    // Warnings, and nothing written: the ResourceSet does not exist.
    assert!(sandbox.get("resourceset", Some(ns), "refs").is_none());

    // Once both exist, the plan is quiet.
    sandbox.ok(&["-n", ns, "create", "serviceaccount", "deployer"]);
    sandbox.apply_text(
        "later.yaml",
        "apiVersion: fluxcd.controlplane.io/v1\nkind: ResourceSetInputProvider\nmetadata:\n  \
         name: later\n  namespace: flux-system\nspec:\n  type: Static\n",
        true,
    );
    let plan = workspace.plan();
    let text = plan.assert_changes().combined();
    for summary in ["Input Provider Not Found", "Service Account Not Found"] {
        assert!(!text.contains(summary), "{text}");
    }
}
