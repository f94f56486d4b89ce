//! The systematic guard of issue 11 ("plan and apply tell the truth"): for `flux_instance`,
//! `flux_resource_set`, `flux_resource_set_input_provider`, `flux_operator` and
//! `flux_bootstrap_git`, a matrix of configurations in which the optional attributes are (a)
//! absent, (b) set to their documented defaults and (c) set to other valid values. For each
//! configuration, with the real `terraform` CLI: apply, then `plan -detailed-exitcode` must exit
//! 0. On the configuration without optional attributes, fields the configuration leaves unset are
//! then edited with `kubectl` (another field manager): the plan must show them, one apply must
//! remove them from the cluster, and the next plan must be empty. Finally the configuration
//! without optional attributes is applied again over the one with other values: the values it no
//! longer sets must be gone from the cluster and the plan after it empty.
//!
//! `flux_bootstrap_git` ([`matrix_flux_bootstrap_git`]) has its own driver, since what it
//! manages lives in two places: each configuration is also checked in the Git repository it
//! commits to (a `git http-backend` server, `tests/common/git_server.rs`) — the committed
//! FluxInstance manifest holds the configuration's values and loses them when it no longer sets
//! them, an apply makes at most one commit, the state's `commit_sha` is the branch tip and Flux
//! applied it, and neither the drift's apply nor a no-change apply commits.
//!
//! Each resource is its own test (nextest runs them in parallel), in a namespace of its own on
//! the run's real control plane (`tests/common/cluster.rs`; `flux_instance` and
//! `flux_bootstrap_git` under the exclusive lease, since a FluxInstance installs the Flux CRDs),
//! or, with `FLUX_MATRIX_SANDBOX=1`, each on a private `kube-sandbox serve --operator-sim`. Every
//! test prints the size of its matrix and the time it took.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::time::Instant;

use common::cluster::TestCluster;
use common::git_server::{GitHttpServer, GitRepos, HttpServerOptions};
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

// ---------------------------------------------------------------------------------------------
// flux_bootstrap_git
// ---------------------------------------------------------------------------------------------

/// The Git repository the bootstrap commits to, and the password the Git server accepts.
const BOOT_REPO: &str = "matrix";
const BOOT_PASSWORD: &str = "pw-matrix-one";
/// `path` of every configuration, and the files the bootstrap owns under it.
const BOOT_INSTANCE_FILE: &str = "clusters/matrix/flux-system/flux-instance.yaml";
const BOOT_KUSTOMIZATION_FILE: &str = "clusters/matrix/flux-system/kustomization.yaml";
/// The commit message of the configuration with other values.
const BOOT_OTHER_MESSAGE: &str = "Matrix: other values";
/// The field manager of the drift's `kubectl patch`: not `kubectl-patch` (the default), whose
/// fields kustomize-controller takes over and removes itself when it re-applies the committed
/// FluxInstance (its cleanup matches the manager prefix `kubectl`, every `sync.interval`, 1m
/// here), which would race the plan that must show the drift.
const BOOT_DRIFT_MANAGER: &str = "matrix-drift";

/// What a JSON pointer must hold in the committed FluxInstance manifest and in the live one.
#[derive(Clone, Debug)]
enum Want {
    /// Not set.
    Absent,
    /// Exactly this value.
    Is(Value),
    /// Not set, or this value (what the API server or the provider writes by default).
    AbsentOr(Value),
}

/// One configuration of `flux_bootstrap_git`: the optional attributes it sets (HCL inside the
/// resource block; `NS` stands for the test's namespace) and what it must leave in the
/// committed manifest and in the cluster.
struct BootCase {
    name: &'static str,
    attributes: String,
    want: Vec<(&'static str, Want)>,
    /// Whether apply waits for Flux to apply the pushed commit (not when suspended).
    synced: bool,
    /// The state's `secret_status` after apply.
    secret_status: &'static str,
}

fn boot_config(ns: &str, url: &str, attributes: &str) -> String {
    format!(
        r#"{REQUIRED_PROVIDERS}
provider "flux" {{
  kubernetes = {{ config_path = "kubeconfig" }}
  git = {{
    http = {{
      username            = "bot"
      password            = "{BOOT_PASSWORD}"
      allow_insecure_http = true
    }}
    author_name  = "Terraform"
    author_email = "terraform@example.com"
  }}
}}

resource "flux_bootstrap_git" "this" {{
  url          = "{url}"
  path         = "clusters/matrix"
  distribution = {{ version = "2.7.x" }}
  namespace    = "{ns}"
  operator     = {{ manifests = file("operator-install.yaml") }}
{attributes}
  timeouts {{
    create = "3m"
    update = "3m"
    delete = "3m"
  }}
}}
"#,
        attributes = attributes.replace("NS", ns),
    )
}

/// The `flux_bootstrap_git.this` values in the state.
fn boot_state(ws: &Workspace) -> Value {
    let state = ws.show_json();
    state["values"]["root_module"]["resources"]
        .as_array()
        .expect("resources in the state")
        .iter()
        .find(|r| r["address"] == "flux_bootstrap_git.this")
        .map(|r| r["values"].clone())
        .expect("flux_bootstrap_git.this in the state")
}

/// The FluxInstance manifest committed at the tip of `main`, as JSON.
fn committed_instance(repos: &GitRepos) -> Value {
    let yaml = repos
        .read_file(BOOT_REPO, "main", BOOT_INSTANCE_FILE)
        .expect("the FluxInstance manifest is committed");
    serde_saphyr::from_str(&yaml)
        .unwrap_or_else(|e| panic!("the committed manifest is not YAML ({e}):\n{yaml}"))
}

/// `plan -detailed-exitcode` must be empty; when it is not, the FluxInstance's and the sync
/// Kustomization's status go with the plan into the failure message.
#[track_caller]
fn boot_plan_empty(ws: &Workspace, cluster: &TestCluster, when: &str) {
    let plan = ws.plan();
    if !matches!(plan, common::terraform::Plan::NoChanges(_)) {
        let ns = cluster.namespace().to_owned();
        let instance = cluster.get_in_ns("fluxinstance", "flux");
        let kustomization = cluster.get_in_ns("kustomizations.kustomize.toolkit.fluxcd.io", &ns);
        eprintln!(
            "flux_bootstrap_git / {when}: the plan is not empty; FluxInstance: {:#}\nKustomization status: {:#}",
            instance.unwrap_or_default(),
            kustomization
                .map(|k| k["status"].clone())
                .unwrap_or_default()
        );
    }
    plan.assert_no_changes();
}

#[track_caller]
fn check_wants(what: &str, object: &Value, wants: &[(&str, Want)]) {
    for (pointer, want) in wants {
        let got = object.pointer(pointer);
        let ok = match want {
            Want::Absent => got.is_none(),
            Want::Is(value) => got == Some(value),
            Want::AbsentOr(value) => got.is_none() || got == Some(value),
        };
        assert!(
            ok,
            "{what}: {pointer} is {got:?}, want {want:?}:\n{object:#}"
        );
    }
}

/// The fields of the FluxInstance that the other configurations set and the configuration
/// without optional attributes must not leave behind (in Git and in the cluster), with the
/// values it writes itself.
fn boot_unset() -> Vec<(&'static str, Want)> {
    vec![
        ("/spec/sync/interval", Want::Is(json!("1m"))),
        ("/spec/sync/ref", Want::Is(json!("refs/heads/main"))),
        ("/spec/sync/pullSecret", Want::Is(json!("flux-system"))),
        ("/spec/sync/path", Want::Is(json!("clusters/matrix"))),
        ("/spec/cluster/size", Want::Absent),
        ("/spec/cluster/networkPolicy", Want::AbsentOr(json!(true))),
        ("/spec/commonMetadata", Want::Absent),
        ("/spec/kustomize", Want::Absent),
        ("/spec/migrateResources", Want::AbsentOr(json!(true))),
        ("/spec/wait", Want::AbsentOr(json!(true))),
        (
            "/spec/components",
            Want::AbsentOr(json!([
                "source-controller",
                "kustomize-controller",
                "helm-controller",
                "notification-controller"
            ])),
        ),
        (
            "/metadata/annotations/fluxcd.controlplane.io~1reconcileEvery",
            Want::Absent,
        ),
        (
            "/metadata/annotations/fluxcd.controlplane.io~1reconcileTimeout",
            Want::Absent,
        ),
        (
            "/metadata/annotations/fluxcd.controlplane.io~1reconcileArtifactEvery",
            Want::Absent,
        ),
        (
            "/metadata/annotations/fluxcd.controlplane.io~1reconcile",
            Want::Absent,
        ),
    ]
}

/// `flux_bootstrap_git`: the matrix over a Git repository of its own (see the module docs). The
/// first configuration sets no optional attribute but `namespace` (the test's namespace on the
/// shared control plane; the default `flux-system` in a private sandbox) and `operator` (the
/// operator install manifests of the test's namespace; their settings are `flux_operator`'s and
/// covered by [`matrix_flux_operator`]). Left out: `branch` other than `main` (a move to another
/// branch, not a setting of the same bootstrap), `sync.name` other than the default (immutable,
/// refused at plan), `sync.provider` other than `generic` (cloud identities), `sharding` and
/// `storage` (like [`matrix_flux_instance`]: extra controllers and a volume the control plane's
/// fake node does not run).
#[test]
fn matrix_flux_bootstrap_git() {
    let cluster = cluster("mx-boot", true);
    let ns = cluster.namespace().to_owned();
    let started = Instant::now();
    let repos = GitRepos::new();
    repos.create_empty(BOOT_REPO);
    let server = GitHttpServer::start(
        repos.clone(),
        HttpServerOptions {
            basic: Some(("bot".into(), BOOT_PASSWORD.into())),
            ..HttpServerOptions::default()
        },
    );
    let url = server.url(BOOT_REPO);
    let ws = Workspace::new(BINARY);
    ws.write_file("kubeconfig", &cluster.kubeconfig_yaml());
    ws.write_file("operator-install.yaml", &cluster.operator_install());

    let cases = [
        BootCase {
            name: "absent",
            attributes: String::new(),
            want: boot_unset(),
            synced: true,
            secret_status: "Current",
        },
        BootCase {
            name: "defaults",
            attributes: r#"
  branch                   = "main"
  interval                 = "1m"
  components               = ["source-controller", "kustomize-controller", "helm-controller", "notification-controller"]
  cluster                  = { type = "kubernetes", domain = "cluster.local", multitenant = false, network_policy = true }
  migrate_resources        = true
  wait                     = true
  suspend                  = false
  deletion_policy          = "uninstall"
  secret_name              = "flux-system"
  manage_secret            = true
  commit_message           = "Update Flux (terraform-provider-flux)"
  sync                     = { name = "NS", provider = "generic" }
  reconcile_every          = "1h"
  reconcile_timeout        = "5m"
  reconcile_artifact_every = "10m"
"#
            .to_owned(),
            want: vec![
                ("/spec/sync/interval", Want::Is(json!("1m"))),
                ("/spec/sync/pullSecret", Want::Is(json!("flux-system"))),
                ("/spec/sync/name", Want::AbsentOr(json!(ns))),
                ("/spec/cluster/networkPolicy", Want::Is(json!(true))),
                ("/spec/cluster/size", Want::Absent),
                ("/spec/migrateResources", Want::AbsentOr(json!(true))),
                ("/spec/commonMetadata", Want::Absent),
                ("/spec/kustomize", Want::Absent),
            ],
            synced: true,
            secret_status: "Current",
        },
        BootCase {
            name: "suspended, unmanaged secret",
            attributes: "  suspend       = true\n  manage_secret = false\n".to_owned(),
            want: vec![
                (
                    "/metadata/annotations/fluxcd.controlplane.io~1reconcile",
                    Want::Is(json!("disabled")),
                ),
                ("/spec/sync/pullSecret", Want::Is(json!("flux-system"))),
            ],
            synced: false,
            secret_status: "Unmanaged",
        },
        BootCase {
            name: "other values",
            attributes: format!(
                r#"
  interval                 = "10m"
  components               = ["source-controller", "kustomize-controller"]
  cluster                  = {{ size = "large", network_policy = false }}
  common_metadata          = {{ labels = {{ team = "platform" }}, annotations = {{ owner = "ops" }} }}
  kustomize = {{
    patches = [{{
      target = {{ kind = "Deployment", name = "source-controller" }}
      patch  = "- op: add\n  path: /metadata/labels/matrix\n  value: other\n"
    }}]
  }}
  migrate_resources        = false
  wait                     = false
  deletion_policy          = "orphan"
  secret_name              = "flux-matrix"
  commit_message           = "{BOOT_OTHER_MESSAGE}"
  reconcile_every          = "30m"
  reconcile_timeout        = "3m"
  reconcile_artifact_every = "5m"
"#
            ),
            want: vec![
                ("/spec/sync/interval", Want::Is(json!("10m"))),
                ("/spec/sync/pullSecret", Want::Is(json!("flux-matrix"))),
                (
                    "/spec/components",
                    Want::Is(json!(["source-controller", "kustomize-controller"])),
                ),
                ("/spec/cluster/size", Want::Is(json!("large"))),
                ("/spec/cluster/networkPolicy", Want::Is(json!(false))),
                (
                    "/spec/commonMetadata",
                    Want::Is(json!({"labels": {"team": "platform"}, "annotations": {"owner": "ops"}})),
                ),
                (
                    "/spec/kustomize/patches/0/target",
                    Want::Is(json!({"kind": "Deployment", "name": "source-controller"})),
                ),
                ("/spec/migrateResources", Want::Is(json!(false))),
                ("/spec/wait", Want::Is(json!(false))),
                (
                    "/metadata/annotations/fluxcd.controlplane.io~1reconcileEvery",
                    Want::Is(json!("30m")),
                ),
                (
                    "/metadata/annotations/fluxcd.controlplane.io~1reconcileTimeout",
                    Want::Is(json!("3m")),
                ),
                (
                    "/metadata/annotations/fluxcd.controlplane.io~1reconcileArtifactEvery",
                    Want::Is(json!("5m")),
                ),
                (
                    "/metadata/annotations/fluxcd.controlplane.io~1reconcile",
                    Want::Absent,
                ),
            ],
            synced: true,
            secret_status: "Current",
        },
    ];

    let live = || {
        cluster
            .get_in_ns("fluxinstance", "flux")
            .expect("the FluxInstance exists")
    };
    let commits = || repos.log(BOOT_REPO, "main").len();
    // After an apply: the state's commit is the tip, the files are the bootstrap's, Flux
    // applied the tip (when the apply waits for it), and the manifest and the cluster hold
    // what the configuration says.
    let check = |case: &BootCase, when: &str, wants: &[(&str, Want)]| {
        let state = boot_state(&ws);
        let tip = repos.tip(BOOT_REPO, "main").expect("main has commits");
        assert_eq!(
            state["commit_sha"],
            tip.as_str(),
            "{} {when}: {state}",
            case.name
        );
        assert_eq!(
            state["files"]
                .as_object()
                .expect("files in the state")
                .keys()
                .cloned()
                .collect::<Vec<_>>(),
            vec![BOOT_INSTANCE_FILE, BOOT_KUSTOMIZATION_FILE],
            "{} {when}",
            case.name
        );
        assert_eq!(
            state["secret_status"], case.secret_status,
            "{} {when}: {state}",
            case.name
        );
        if case.synced {
            assert_eq!(state["ready"], true, "{} {when}: {state}", case.name);
            let k = cluster
                .get_in_ns("kustomizations.kustomize.toolkit.fluxcd.io", &ns)
                .expect("the sync Kustomization exists");
            assert_eq!(
                k["status"]["lastAppliedRevision"],
                format!("refs/heads/main@sha1:{tip}"),
                "{} {when}: Flux did not apply the tip: {k}",
                case.name
            );
        }
        check_wants(
            &format!("{} {when}: the committed manifest", case.name),
            &committed_instance(&repos),
            wants,
        );
        check_wants(
            &format!("{} {when}: the live FluxInstance", case.name),
            &live(),
            wants,
        );
    };

    let mut applies = 0;
    for (index, case) in cases.iter().enumerate() {
        ws.write_config(&boot_config(&ns, &url, &case.attributes));
        let before = commits();
        ws.apply().assert_success();
        applies += 1;
        assert!(
            commits() <= before + 1,
            "{}: one apply made {} commits",
            case.name,
            commits() - before
        );
        eprintln!(
            "matrix flux_bootstrap_git / {}: applied at {:.1}s",
            case.name,
            started.elapsed().as_secs_f64()
        );
        boot_plan_empty(&ws, &cluster, case.name);
        check(case, "after its apply", &case.want);
        if case.name == "other values" {
            assert_eq!(
                &repos.log(BOOT_REPO, "main")[0][41..],
                BOOT_OTHER_MESSAGE,
                "the commit of the configuration with other values"
            );
        }
        if index == 0 {
            // A no-change apply commits nothing.
            let before = commits();
            ws.apply().assert_success();
            applies += 1;
            assert_eq!(commits(), before, "a no-change apply committed");

            // Drift by another tool on fields the configuration leaves unset: the plan shows
            // that the instance no longer runs the committed spec, one apply heals it without
            // a commit, and the next plan is empty.
            let body = json!({
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
            })
            .to_string();
            cluster.kubectl(&[
                "-n",
                &ns,
                "patch",
                "fluxinstance",
                "flux",
                "--type",
                "merge",
                "--field-manager",
                BOOT_DRIFT_MANAGER,
                "-p",
                &body,
            ]);
            let drifted = live();
            assert_eq!(
                drifted.pointer("/spec/cluster/size"),
                Some(&json!("large")),
                "the drift is in the cluster: {drifted}"
            );
            ws.plan().assert_changes().assert_contains(&[
                "~ ready",
                "false -> true",
                "Plan: 0 to add, 1 to change, 0 to destroy.",
            ]);
            let before = commits();
            ws.apply().assert_success();
            applies += 1;
            assert_eq!(commits(), before, "the drift's apply committed");
            boot_plan_empty(&ws, &cluster, "after the drift's apply");
            check(case, "after the drift's apply", &boot_unset());
        }
    }

    // Back to no optional attribute: what the other configurations set is gone from the
    // committed manifest and from the cluster, with the default commit message.
    let back = &cases[0];
    ws.write_config(&boot_config(&ns, &url, &back.attributes));
    let before = commits();
    ws.apply().assert_success();
    applies += 1;
    assert_eq!(
        commits(),
        before + 1,
        "going back to no optional attribute commits the manifest once"
    );
    assert_eq!(
        &repos.log(BOOT_REPO, "main")[0][41..],
        "Update Flux (terraform-provider-flux)"
    );
    boot_plan_empty(&ws, &cluster, "back to no optional attribute");
    check(
        back,
        "after going back to no optional attribute",
        &boot_unset(),
    );
    println!(
        "matrix flux_bootstrap_git: {} configurations x 1 resource ({} applies, drift healed \
         once, {} commits) in {:.1}s",
        cases.len(),
        applies,
        commits(),
        started.elapsed().as_secs_f64()
    );
}
