//! Acceptance tests of `flux_resource_set_input_provider`: the real `terraform` (and `tofu`)
//! CLI drives the provider binary against the run's real control plane
//! (`tests/common/cluster.rs`: kube-apiserver with the operator simulator, whose
//! ResourceSetInputProvider reconciler follows the operator's), with the Flux Operator fixture
//! installed by kubectl into a namespace of the test's own, and every effect is checked in
//! Terraform's state and in the cluster through the real `kubectl`. Nothing here needs
//! kube-sandbox.
//!
//! - A Static provider feeding a `flux_resource_set` created in the same configuration: one
//!   apply renders the ResourceSet's objects from the exported inputs (the provider's `id` is
//!   adler32 of its UID), the second plan is empty, a `kubectl` edit shows as a field-level diff
//!   and apply heals it, an update re-renders, import plans empty, destroy removes everything.
//! - The other types: plan-time errors naming the attribute for what the CRD forbids (nothing
//!   is written), apply quoting the operator when it cannot reach the provider's API (the
//!   object stays in state), a suspended provider that plans empty and imports, and
//!   `deletion_policy = "orphan"`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::cluster::TestCluster;
use common::terraform::{REQUIRED_PROVIDERS, Workspace};
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_terraform-provider-flux");

struct Sandbox {
    inner: TestCluster,
    kubeconfig: PathBuf,
}

/// The real control plane with the operator fixture installed by kubectl into a namespace of
/// the test's. Exclusively, as `acc_flux_resource_set.rs` does: the provider finds the operator
/// by listing Deployments cluster-wide (`find_operator_namespace`) and expects one per cluster,
/// so another test's operator must not be running meanwhile.
fn start() -> Sandbox {
    let inner = TestCluster::flux("acc-rsip");
    let kubeconfig = inner.kubeconfig();
    let sandbox = Sandbox { inner, kubeconfig };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("operator-install.yaml");
    std::fs::write(&file, sandbox.inner.operator_install()).unwrap();
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

    /// The namespace of the operator and of the test's objects (`flux-system` on kube-sandbox).
    fn ns(&self) -> &str {
        self.inner.namespace()
    }

    /// The object in [`Self::ns`] as JSON, or `None`.
    fn get(&self, kind: &str, name: &str) -> Option<Value> {
        self.inner.get_in_ns(kind, name)
    }

    /// Waits until `check` holds for the object (or panics with it).
    #[track_caller]
    fn wait_for(&self, kind: &str, name: &str, check: impl Fn(Option<&Value>) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let now = self.get(kind, name);
            if check(now.as_ref()) {
                return now.unwrap_or(Value::Null);
            }
            assert!(
                Instant::now() < deadline,
                "{kind} {}/{name}: {now:?}",
                self.ns()
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

/// Ready=True for the object's current generation.
fn ready(o: &Value) -> bool {
    o["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| {
            c["type"] == "Ready"
                && c["status"] == "True"
                && c["observedGeneration"] == o["metadata"]["generation"]
        })
}

/// Adler-32 (RFC 1950), as the operator's `inputs.ID`.
fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in bytes {
        a = (a + u32::from(byte)) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
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

/// The planned change of `address`: the attribute paths whose value changes (known after), and
/// those that become unknown.
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
            .any(|u| p == u || p.starts_with(&format!("{u}.")))
    });
    (changed, unknown)
}

fn diff_paths(path: &str, before: &Value, after: &Value, out: &mut Vec<String>) {
    let join = |k: &str| {
        if path.is_empty() {
            k.to_owned()
        } else {
            format!("{path}.{k}")
        }
    };
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            let keys: std::collections::BTreeSet<&String> = b.keys().chain(a.keys()).collect();
            for k in keys {
                diff_paths(
                    &join(k),
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
        _ => {}
    }
}

/// A Static provider and a ResourceSet rendering one ConfigMap per input set from it.
fn static_config(sandbox: &Sandbox, tenant: &str) -> String {
    format!(
        r#"{provider}
resource "flux_resource_set_input_provider" "team" {{
  name      = "team"
  namespace = "{ns}"
  type      = "Static"
  default_values = {{
    tenant   = "{tenant}"
    replicas = 2
  }}
  timeouts {{
    create = "60s"
    update = "60s"
    delete = "60s"
  }}
}}

# Naming the provider through its attribute orders the ResourceSet after it: the provider's apply
# waits until the operator exported its inputs, so the ResourceSet renders them in this apply.
resource "flux_resource_set" "tenants" {{
  name      = "tenants"
  namespace = "{ns}"
  inputs_from = [{{
    name = flux_resource_set_input_provider.team.name
  }}]
  resources_template = <<-EOT
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: << inputs.tenant >>-settings
      namespace: {ns}
    data:
      id: "<< inputs.id >>"
      replicas: "<< inputs.replicas >>"
  EOT
  timeouts {{
    create = "60s"
    update = "60s"
    delete = "60s"
  }}
}}

output "exported" {{
  value = flux_resource_set_input_provider.team.exported_inputs
}}
"#,
        provider = sandbox.provider_block(),
        ns = sandbox.ns(),
    )
}

#[test]
fn static_provider_feeds_a_resource_set_in_one_apply_then_drift_update_import_destroy() {
    let sandbox = start();
    let ns = sandbox.ns();
    let workspace = sandbox.workspace();
    workspace.write_config(&static_config(&sandbox, "team-a"));
    workspace.apply().assert_success();

    // The operator's exported inputs, in state and in the cluster; the ResourceSet rendered them.
    let live = sandbox.get("resourcesetinputprovider", "team").unwrap();
    let id = adler32(live["metadata"]["uid"].as_str().unwrap().as_bytes()).to_string();
    let exported = json!([{"id": id, "tenant": "team-a", "replicas": 2}]);
    assert_eq!(live["status"]["exportedInputs"], exported);
    let state = state_resource(&workspace, "flux_resource_set_input_provider.team");
    assert_eq!(state["exported_inputs"], exported);
    assert_eq!(state["ready"], json!(true));
    assert_eq!(state["id"], json!(format!("{ns}/team")));
    assert_eq!(
        state["last_exported_revision"],
        live["status"]["lastExportedRevision"]
    );
    assert_eq!(
        state["default_values"],
        json!({"tenant": "team-a", "replicas": 2})
    );
    let config_map = sandbox.get("configmap", "team-a-settings").unwrap();
    assert_eq!(config_map["data"], json!({"id": id, "replicas": "2"}));
    let rs = state_resource(&workspace, "flux_resource_set.tenants");
    assert_eq!(
        rs["inventory"],
        json!([{"api_version": "v1", "kind": "ConfigMap", "namespace": ns, "name": "team-a-settings"}])
    );
    workspace.plan().assert_no_changes();

    // A kubectl edit of the spec: field-level drift, healed by apply.
    sandbox.ok(&[
        "-n",
        ns,
        "patch",
        "resourcesetinputprovider",
        "team",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"defaultValues":{"tenant":"team-z"}}}"#,
    ]);
    let (changed, unknown) = planned_changes(&workspace, "flux_resource_set_input_provider.team");
    assert_eq!(changed, ["default_values.tenant"]);
    assert_eq!(
        unknown,
        ["exported_inputs", "last_exported_revision", "next_schedule"]
    );
    workspace.apply().assert_success();
    let live = sandbox.get("resourcesetinputprovider", "team").unwrap();
    assert_eq!(
        live["spec"]["defaultValues"],
        json!({"tenant": "team-a", "replicas": 2})
    );
    sandbox.wait_for("configmap", "team-a-settings", |o| o.is_some());
    sandbox.wait_for("resourceset", "tenants", |o| {
        o.is_some_and(|o| {
            o["status"]["inventory"]["entries"]
                .as_array()
                .is_some_and(|e| e.len() == 1)
        })
    });
    workspace.plan().assert_no_changes();

    // An update: the provider exports anew and the ResourceSet follows without being applied.
    workspace.write_config(&static_config(&sandbox, "team-b"));
    let (changed, _) = planned_changes(&workspace, "flux_resource_set_input_provider.team");
    assert_eq!(changed, ["default_values.tenant"]);
    workspace.apply().assert_success();
    let state = state_resource(&workspace, "flux_resource_set_input_provider.team");
    assert_eq!(
        state["exported_inputs"],
        json!([{"id": id, "tenant": "team-b", "replicas": 2}])
    );
    sandbox.wait_for("configmap", "team-b-settings", |o| o.is_some());
    sandbox.wait_for("configmap", "team-a-settings", |o| o.is_none());
    sandbox.wait_for("resourceset", "tenants", |o| o.is_some_and(ready));
    workspace.plan().assert_no_changes();

    // Import by ID plans no change.
    workspace
        .run(&["state", "rm", "flux_resource_set_input_provider.team"])
        .assert_success();
    workspace
        .import(
            "flux_resource_set_input_provider.team",
            &format!("{ns}/team"),
        )
        .assert_success();
    // Only Terraform's own `timeouts` (not in the cluster) is recorded by the next apply.
    let (changed, unknown) = planned_changes(&workspace, "flux_resource_set_input_provider.team");
    assert_eq!(changed, ["timeouts"]);
    assert_eq!(unknown, Vec::<String>::new());
    workspace.apply().assert_success();
    workspace.plan().assert_no_changes();
    let imported = state_resource(&workspace, "flux_resource_set_input_provider.team");
    assert_eq!(
        imported["default_values"],
        json!({"tenant": "team-b", "replicas": 2})
    );
    assert_eq!(imported["deletion_policy"], json!("delete"));

    workspace.destroy().assert_success();
    sandbox.wait_for("resourcesetinputprovider", "team", |o| o.is_none());
    sandbox.wait_for("resourceset", "tenants", |o| o.is_none());
    sandbox.wait_for("configmap", "team-b-settings", |o| o.is_none());
}

fn provider_config(sandbox: &Sandbox, body: &str) -> String {
    format!(
        "{}\nresource \"flux_resource_set_input_provider\" \"p\" {{\n  name      = \"p\"\n  namespace = \"{}\"\n{body}\n  timeouts {{\n    create = \"30s\"\n    delete = \"30s\"\n  }}\n}}\n",
        sandbox.provider_block(),
        sandbox.ns()
    )
}

#[test]
fn crd_rules_fail_the_plan_at_the_attribute_and_write_nothing() {
    let sandbox = start();
    let workspace = sandbox.workspace();
    let cases = [
        (
            "  type = \"Static\"\n  url  = \"https://example.com\"",
            "spec.url must be empty when spec.type is 'Static'",
            Some("url"),
        ),
        (
            "  type = \"GitHubBranch\"",
            "spec.url must not be empty when spec.type is not 'Static' or 'ExternalArtifact'",
            None,
        ),
        (
            "  type       = \"ECRArtifactTag\"\n  url        = \"oci://123.dkr.ecr.eu-west-1.amazonaws.com/app\"\n  secret_ref = { name = \"creds\" }",
            "cannot specify spec.secretRef when spec.type is one of Static",
            Some("secret_ref"),
        ),
        (
            "  type     = \"GiteaTag\"\n  url      = \"https://gitea.example.com/o/r\"\n  insecure = true",
            "spec.insecure can only be set when spec.type is 'ExternalService' or 'OCIArtifactTag'",
            Some("insecure"),
        ),
        (
            "  type = \"ExternalArtifact\"",
            "spec.selectors must be set when spec.type is 'ExternalArtifact'",
            None,
        ),
        (
            "  type     = \"Static\"\n  schedule = [{ cron = \"0 8 * * mon-fry\" }]",
            "invalid day of week field \"mon-fry\": \"fry\" is not a number (attributes: `schedule[0].cron`)",
            None,
        ),
        (
            "  type   = \"GitLabTag\"\n  url    = \"https://gitlab.com/g/p\"\n  filter = { limit = 20000 }",
            "must be at most 10000, got 20000 (attributes: `filter.limit`)",
            None,
        ),
    ];
    for (body, message, attribute) in cases {
        workspace.write_config(&provider_config(&sandbox, body));
        let out = workspace.plan();
        let output = out.assert_error();
        output.assert_contains(&["Invalid ResourceSetInputProvider", message]);
        // Terraform quotes the configuration line of the attribute the diagnostic names.
        if let Some(attribute) = attribute {
            output.assert_contains(&[&format!(":   {attribute} ")]);
        }
        let validate = workspace.validate();
        assert!(!validate.success(), "validate accepts {body}");
    }
    assert!(sandbox.get("resourcesetinputprovider", "p").is_none());
}

#[test]
fn unreachable_provider_apis_fail_apply_quoting_the_operator_suspended_ones_plan_empty() {
    let sandbox = start();
    let workspace = sandbox.workspace();
    workspace.write_config(&provider_config(
        &sandbox,
        "  type = \"GitHubPullRequest\"\n  url  = \"https://github.com/org/app\"\n  filter = { labels = [\"preview\"] }",
    ));
    let out = workspace.apply();
    // A create: kept in state untainted (a replacement would delete it), reported as a warning.
    out.assert_success();
    out.assert_contains(&[
        "Warning: Create Incomplete: ResourceSetInputProvider Failed",
        "failed to call Git provider",
        "not marked tainted",
    ]);
    // Applied and kept in state, with readiness false.
    let state = state_resource(&workspace, "flux_resource_set_input_provider.p");
    assert_eq!(state["ready"], json!(false));
    let shown = workspace.show_json();
    let entry = shown["values"]["root_module"]["resources"]
        .as_array()
        .and_then(|rs| {
            rs.iter()
                .find(|r| r["address"] == "flux_resource_set_input_provider.p")
        })
        .unwrap()
        .clone();
    assert_ne!(entry["tainted"], json!(true), "tainted: {entry}");
    // The next plan waits again in place; it never replaces the provider.
    let plan = workspace.plan();
    let planned = plan.assert_changes();
    planned.assert_contains(&[
        "flux_resource_set_input_provider.p will be updated in-place",
        "~ ready",
        "false -> true",
        "ResourceSetInputProvider Will Be Reconciled",
        "Plan: 0 to add, 1 to change, 0 to destroy.",
    ]);
    assert!(!planned.combined().contains("must be replaced"));
    let live = sandbox.get("resourcesetinputprovider", "p").unwrap();
    assert_eq!(
        live["spec"]["filter"],
        json!({"labels": ["preview"], "limit": 100})
    );

    // Suspended: apply does not wait; the next plan is empty and import reads it back.
    workspace.write_config(&provider_config(
        &sandbox,
        "  type = \"GitHubPullRequest\"\n  url  = \"https://github.com/org/app\"\n  filter = { labels = [\"preview\"] }\n  suspend = true\n  deletion_policy = \"orphan\"",
    ));
    workspace.apply().assert_success();
    workspace.plan().assert_no_changes();
    let live = sandbox.get("resourcesetinputprovider", "p").unwrap();
    assert_eq!(
        live["metadata"]["annotations"]["fluxcd.controlplane.io/reconcile"],
        json!("disabled")
    );
    workspace
        .run(&["state", "rm", "flux_resource_set_input_provider.p"])
        .assert_success();
    workspace
        .import(
            "flux_resource_set_input_provider.p",
            &format!("{}/p", sandbox.ns()),
        )
        .assert_success();
    let (changed, unknown) = planned_changes(&workspace, "flux_resource_set_input_provider.p");
    assert_eq!(
        changed,
        ["deletion_policy", "timeouts"],
        "only Terraform's own settings"
    );
    assert_eq!(unknown, Vec::<String>::new());
    workspace.apply().assert_success();
    workspace.plan().assert_no_changes();

    // orphan: destroy leaves the provider in the cluster.
    workspace.destroy().assert_success();
    assert!(sandbox.get("resourcesetinputprovider", "p").is_some());
}
