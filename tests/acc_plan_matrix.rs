//! The systematic guard of issue 11 ("plan and apply tell the truth"): for `flux_instance`,
//! `flux_resource_set`, `flux_resource_set_input_provider` and `flux_operator`, a matrix of
//! configurations in which the optional attributes are (a) absent, (b) set to their documented
//! defaults and (c) set to other valid values. For each configuration, with the real
//! `terraform` CLI: apply, then `plan -detailed-exitcode` must exit 0. On the configuration
//! without optional attributes, fields the configuration leaves unset are then edited with
//! `kubectl` (another field manager): the plan must show them, one apply must remove them from
//! the cluster, and the next plan must be empty. Finally the configuration without optional
//! attributes is applied again over the one with other values: the values it no longer sets
//! must be gone from the cluster and the plan after it empty.
//!
//! Each resource is its own test (nextest runs them in parallel), in a namespace of its own on
//! the run's real control plane (`tests/common/cluster.rs`; `flux_instance` under the exclusive
//! lease, since a FluxInstance installs the Flux CRDs), or, with `FLUX_MATRIX_SANDBOX=1`, each on
//! a private `kube-sandbox serve --operator-sim`. Every test prints the size of its matrix and
//! the time it took.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::time::Instant;

use common::cluster::TestCluster;
use common::terraform::{REQUIRED_PROVIDERS, Workspace};
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_terraform-provider-flux");

/// The cluster of one matrix: the real control plane (exclusive when `exclusive`), or a private
/// kube-sandbox when `FLUX_MATRIX_SANDBOX=1`.
fn cluster(prefix: &str, exclusive: bool) -> TestCluster {
    if std::env::var("FLUX_MATRIX_SANDBOX").is_ok_and(|v| v == "1") {
        TestCluster::sandbox()
    } else if exclusive {
        TestCluster::flux(prefix)
    } else {
        TestCluster::shared(prefix)
    }
}

/// One configuration of the resource under test: its name in the matrix and the optional
/// attributes it sets (HCL, inside the resource block).
struct Case {
    name: &'static str,
    attributes: String,
}

/// The matrix of one resource.
struct Matrix {
    /// The resource type, e.g. `flux_instance`; the resource is always named `this`.
    resource: &'static str,
    /// `kubectl get` arguments of the object it manages (in the test's namespace).
    object: Vec<&'static str>,
    /// The required attributes (HCL), `NS` standing for the test's namespace.
    required: &'static str,
    /// Whether the configuration also holds a `flux_operator` (the resource needs it).
    with_operator: bool,
    /// The configurations; the first sets no optional attribute.
    cases: Vec<Case>,
    /// `kubectl patch --type merge` bodies editing fields that the first configuration leaves
    /// unset, each with `kubectl` arguments of the object it patches (`NS` as above).
    drift: Vec<(Vec<&'static str>, Value)>,
    /// What the plan must show after the drift.
    drift_shown: Vec<&'static str>,
    /// JSON pointers into the object ([`Matrix::object`]) that must be absent after the
    /// first configuration is applied (the drift's fields and the other values' fields).
    absent: Vec<&'static str>,
    /// JSON pointers that must be absent or hold the given value (the default the provider
    /// writes) after the first configuration is applied.
    defaulted: Vec<(&'static str, Value)>,
    /// JSON pointers and values the drift must leave after its apply (other fields than the
    /// drift's keep their values).
    kept: Vec<(&'static str, Value)>,
}

impl Matrix {
    fn config(&self, cluster: &TestCluster, case: &Case) -> String {
        let ns = cluster.namespace();
        let operator = if self.with_operator {
            format!(
                "resource \"flux_operator\" \"this\" {{\n  namespace = \"{ns}\"\n  manifests = file(\"operator-install.yaml\")\n}}\n\n"
            )
        } else {
            String::new()
        };
        let depends = if self.with_operator {
            "  depends_on = [flux_operator.this]\n"
        } else {
            ""
        };
        format!(
            "{REQUIRED_PROVIDERS}\nprovider \"flux\" {{\n  kubernetes = {{ config_path = \"kubeconfig\" }}\n}}\n\n{operator}resource \"{resource}\" \"this\" {{\n{depends}{required}\n{attributes}\n}}\n",
            resource = self.resource,
            required = self.required.replace("NS", ns),
            attributes = case.attributes.replace("NS", ns),
        )
    }

    fn live(&self, cluster: &TestCluster) -> Value {
        let ns = cluster.namespace().to_owned();
        let mut args = self.object.clone();
        args.extend_from_slice(&["-n", &ns]);
        cluster
            .get_json(&args)
            .unwrap_or_else(|| panic!("{:?} exists", self.object))
    }

    fn assert_absent(&self, cluster: &TestCluster, when: &str) {
        let live = self.live(cluster);
        for pointer in &self.absent {
            assert_eq!(
                live.pointer(pointer),
                None,
                "{} {when}: {pointer} is still set: {live}",
                self.resource
            );
        }
        for (pointer, default) in &self.defaulted {
            let value = live.pointer(pointer);
            assert!(
                value.is_none() || value == Some(default),
                "{} {when}: {pointer} is {value:?}, not absent or {default}: {live}",
                self.resource
            );
        }
    }

    /// Runs the matrix; prints its size and time.
    fn run(&self, cluster: &TestCluster) {
        let started = Instant::now();
        let ws = Workspace::new(BINARY);
        ws.write_file("kubeconfig", &cluster.kubeconfig_yaml());
        ws.write_file("operator-install.yaml", &cluster.operator_install());
        let ns = cluster.namespace().to_owned();
        let mut applies = 0;
        for case in &self.cases {
            ws.write_config(&self.config(cluster, case));
            ws.apply().assert_success();
            applies += 1;
            let plan = ws.plan();
            assert!(
                matches!(plan, common::terraform::Plan::NoChanges(_)),
                "{} / {}: the plan after apply is not empty",
                self.resource,
                case.name
            );
            plan.assert_no_changes();
            if case.name == self.cases[0].name && applies == 1 {
                // Drift by another field manager on fields the configuration leaves unset.
                for (target, patch) in &self.drift {
                    let mut args = vec!["-n", &ns, "patch"];
                    args.extend(target.iter().copied());
                    let body = patch.to_string();
                    args.extend_from_slice(&["--type", "merge", "-p", &body]);
                    cluster.kubectl(&args);
                }
                ws.plan()
                    .assert_changes()
                    .assert_contains(&self.drift_shown);
                ws.apply().assert_success();
                applies += 1;
                ws.plan().assert_no_changes();
                self.assert_absent(cluster, "after the drift's apply");
                let live = self.live(cluster);
                for (pointer, want) in &self.kept {
                    assert_eq!(live.pointer(pointer), Some(want), "{pointer}: {live}");
                }
            }
        }
        // Back to no optional attribute: what the other values set is removed.
        ws.write_config(&self.config(cluster, &self.cases[0]));
        ws.apply().assert_success();
        applies += 1;
        ws.plan().assert_no_changes();
        self.assert_absent(cluster, "after going back to no optional attribute");
        println!(
            "matrix {}: {} configurations x 1 resource ({} applies, drift healed once) in {:.1}s",
            self.resource,
            self.cases.len(),
            applies,
            started.elapsed().as_secs_f64()
        );
    }
}

fn case(name: &'static str, attributes: &str) -> Case {
    Case {
        name,
        attributes: attributes.to_owned(),
    }
}

#[test]
fn matrix_flux_instance() {
    let cluster = cluster("mx-inst", true);
    Matrix {
        resource: "flux_instance",
        object: vec!["fluxinstance", "flux"],
        required: "  namespace    = \"NS\"\n  distribution = { version = \"2.7.x\" }",
        with_operator: true,
        cases: vec![
            case("absent", ""),
            case(
                "defaults",
                r#"
  name                     = "flux"
  components               = ["source-controller", "kustomize-controller", "helm-controller", "notification-controller"]
  cluster                  = { type = "kubernetes", domain = "cluster.local", multitenant = false, network_policy = true }
  migrate_resources        = true
  wait                     = true
  suspend                  = false
  deletion_policy          = "uninstall"
  reconcile_every          = "1h"
  reconcile_timeout        = "5m"
  reconcile_artifact_every = "10m"
"#,
            ),
            case(
                "other values",
                r#"
  components               = ["source-controller", "kustomize-controller"]
  cluster                  = { size = "large", multitenant = true, network_policy = false, tenant_default_service_account = "flux-tenant" }
  common_metadata          = { labels = { team = "platform" }, annotations = { owner = "ops" } }
  kustomize = {
    patches = [{
      target = { kind = "Deployment", name = "source-controller" }
      patch  = "- op: add\n  path: /metadata/labels/matrix\n  value: other\n"
    }]
  }
  migrate_resources        = false
  wait                     = false
  deletion_policy          = "orphan"
  reconcile_every          = "30m"
  reconcile_timeout        = "3m"
  reconcile_artifact_every = "5m"
"#,
            ),
            case("suspended", "  suspend = true"),
        ],
        drift: vec![(
            vec!["fluxinstance", "flux"],
            json!({
                "metadata": {"annotations": {"fluxcd.controlplane.io/reconcileEvery": "5m"}},
                "spec": {
                    "cluster": {"size": "large"},
                    "commonMetadata": {"labels": {"drift": "kubectl"}},
                    "kustomize": {"patches": [{
                        "target": {"kind": "Deployment", "name": "helm-controller"},
                        "patch": "- op: add\n  path: /metadata/labels/drift\n  value: kubectl\n"
                    }]},
                    "migrateResources": false
                }
            }),
        )],
        drift_shown: vec![
            r#"- size = "large" -> null"#,
            r#"- reconcile_every = "5m" -> null"#,
            "- common_metadata",
            "- kustomize",
            "migrate_resources",
            "Plan: 0 to add, 1 to change, 0 to destroy.",
        ],
        absent: vec![
            "/spec/cluster/size",
            "/spec/cluster/tenantDefaultServiceAccount",
            "/spec/commonMetadata",
            "/spec/kustomize",
            "/metadata/annotations/fluxcd.controlplane.io~1reconcileEvery",
            "/metadata/annotations/fluxcd.controlplane.io~1reconcileTimeout",
            "/metadata/annotations/fluxcd.controlplane.io~1reconcileArtifactEvery",
            "/metadata/annotations/fluxcd.controlplane.io~1reconcile",
        ],
        defaulted: vec![],
        kept: vec![("/spec/distribution/version", json!("2.7.x"))],
    }
    .run(&cluster);
}

#[test]
fn matrix_flux_resource_set() {
    let cluster = cluster("mx-rset", false);
    Matrix {
        resource: "flux_resource_set",
        object: vec!["resourceset", "matrix"],
        required: r#"  name      = "matrix"
  namespace = "NS"
  inputs    = [{ name = "a" }]
  resources = [{
    apiVersion = "v1"
    kind       = "ConfigMap"
    metadata   = { name = "matrix-<< inputs.name >>", namespace = "NS" }
  }]"#,
        with_operator: true,
        cases: vec![
            case("absent", ""),
            case(
                "defaults",
                r#"
  wait              = false
  suspend           = false
  deletion_policy   = "uninstall"
  input_strategy    = { name = "Flatten" }
  reconcile_every   = "1h"
  reconcile_timeout = "5m"
"#,
            ),
            case(
                "other values",
                r#"
  wait              = true
  deletion_policy   = "orphan"
  common_metadata   = { labels = { team = "platform" }, annotations = { owner = "ops" } }
  dependencies      = [{ api_version = "apps/v1", kind = "Deployment", name = "flux-operator", namespace = "NS" }]
  reconcile_every   = "30m"
  reconcile_timeout = "3m"
"#,
            ),
            case("suspended", "  suspend = true"),
        ],
        drift: vec![(
            vec!["resourceset", "matrix"],
            json!({
                "metadata": {"annotations": {"fluxcd.controlplane.io/reconcileTimeout": "1m"}},
                "spec": {
                    "wait": true,
                    "commonMetadata": {"labels": {"drift": "kubectl"}},
                    "inputStrategy": {"name": "Permute"}
                }
            }),
        )],
        drift_shown: vec![
            r#"- reconcile_timeout = "1m" -> null"#,
            "- common_metadata",
            "input_strategy",
            "wait",
            "Plan: 0 to add, 1 to change, 0 to destroy.",
        ],
        absent: vec![
            "/spec/commonMetadata",
            "/spec/inputStrategy",
            "/spec/dependsOn",
            "/metadata/annotations/fluxcd.controlplane.io~1reconcileEvery",
            "/metadata/annotations/fluxcd.controlplane.io~1reconcileTimeout",
            "/metadata/annotations/fluxcd.controlplane.io~1reconcile",
        ],
        defaulted: vec![("/spec/wait", json!(false))],
        kept: vec![("/spec/inputs", json!([{"name": "a"}]))],
    }
    .run(&cluster);
}

#[test]
fn matrix_flux_resource_set_input_provider() {
    let cluster = cluster("mx-rsip", false);
    Matrix {
        resource: "flux_resource_set_input_provider",
        object: vec!["resourcesetinputprovider", "matrix"],
        required: r#"  name           = "matrix"
  namespace      = "NS"
  type           = "Static"
  default_values = { tenant = "a" }"#,
        with_operator: true,
        cases: vec![
            case("absent", ""),
            case(
                "defaults",
                r#"
  suspend           = false
  deletion_policy   = "delete"
  reconcile_every   = "10m"
  reconcile_timeout = "2m"
"#,
            ),
            case(
                "other values",
                r#"
  deletion_policy   = "orphan"
  schedule          = [{ cron = "@hourly", time_zone = "Europe/Paris", window = "5m" }]
  reconcile_every   = "5m"
  reconcile_timeout = "1m"
"#,
            ),
            case("suspended", "  suspend = true"),
        ],
        drift: vec![(
            vec!["resourcesetinputprovider", "matrix"],
            json!({
                "metadata": {"annotations": {"fluxcd.controlplane.io/reconcileEvery": "1m"}},
                "spec": {"schedule": [{"cron": "@daily"}]}
            }),
        )],
        drift_shown: vec![
            r#"- reconcile_every = "1m" -> null"#,
            "- schedule",
            "Plan: 0 to add, 1 to change, 0 to destroy.",
        ],
        absent: vec![
            "/spec/schedule",
            "/metadata/annotations/fluxcd.controlplane.io~1reconcileEvery",
            "/metadata/annotations/fluxcd.controlplane.io~1reconcileTimeout",
            "/metadata/annotations/fluxcd.controlplane.io~1reconcile",
        ],
        defaulted: vec![],
        kept: vec![("/spec/defaultValues", json!({"tenant": "a"}))],
    }
    .run(&cluster);
}

#[test]
fn matrix_flux_operator() {
    let cluster = cluster("mx-oper", false);
    Matrix {
        resource: "flux_operator",
        object: vec!["deployment", "flux-operator"],
        required: "  namespace = \"NS\"\n  manifests = file(\"operator-install.yaml\")",
        with_operator: false,
        cases: vec![
            case("absent", ""),
            case(
                "defaults",
                r#"
  delete_crds = false
  replicas    = 1
  log_level   = "info"
  concurrent  = 10
  web_ui      = true
"#,
            ),
            case(
                "other values",
                r#"
  replicas      = 2
  log_level     = "debug"
  concurrent    = 5
  web_ui        = false
  env           = { REPORTING_INTERVAL = "30s" }
  node_selector = { "kubernetes.io/os" = "linux", "matrix" = "other" }
  tolerations   = [{ key = "matrix", operator = "Exists", effect = "NoSchedule" }]
"#,
            ),
            case(
                "pod settings",
                r#"
  delete_crds        = true
  image_repository   = "registry.example.com/mirror/flux-operator"
  image_pull_secrets = ["matrix-pull"]
  resources          = { requests = { cpu = "50m", memory = "96Mi" }, limits = { memory = "512Mi" } }
"#,
            ),
        ],
        drift: vec![(
            vec!["deployment", "flux-operator"],
            json!({
                "spec": {
                    "replicas": 3,
                    "template": {"spec": {
                        "nodeSelector": {"drift": "kubectl"},
                        "priorityClassName": "system-cluster-critical"
                    }}
                }
            }),
        )],
        // Unset settings are the manifests': the Deployment's drift shows as a whole.
        drift_shown: vec![
            r#"~ installation_status = "Drifted: Deployment flux-operator changed" -> "Healthy""#,
            "Plan: 0 to add, 1 to change, 0 to destroy.",
        ],
        absent: vec![
            "/spec/template/spec/nodeSelector/drift",
            "/spec/template/spec/nodeSelector/matrix",
            "/spec/template/spec/priorityClassName",
            "/spec/template/spec/tolerations",
            "/spec/template/spec/imagePullSecrets",
        ],
        defaulted: vec![],
        kept: vec![("/spec/replicas", json!(1))],
    }
    .run(&cluster);
}
