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

/// A workspace holding the cluster's kubeconfig as `kubeconfig`.
fn workspace(sandbox: &RealCluster) -> Workspace {
    let ws = Workspace::new(BINARY);
    ws.write_file("kubeconfig", &sandbox.kubeconfig_yaml());
    ws
}

#[test]
fn operator_install_drift_upgrade_and_destroy() {
    // `delete_crds = true` deletes cluster-scoped CRDs other tests use: the whole cluster.
    let sandbox = RealCluster::exclusive();
    let namespace = sandbox.namespace("acc-operator");
    let ns = namespace.name.as_str();
    let install = operator_install_in(OPERATOR_INSTALL, ns);
    let ws = workspace(&sandbox);
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

/// The lines of a plan that change an attribute of `flux_operator.this` (`~ replicas = 2 -> 3`),
/// with whitespace runs collapsed, without the resource's own header line.
fn changed_attributes(plan: &str) -> Vec<String> {
    let mut inside = false;
    let mut out = Vec::new();
    for line in plan.lines() {
        let trimmed = line.trim();
        if trimmed.contains("resource \"flux_operator\" \"this\"") {
            inside = true;
            continue;
        }
        if inside && line.starts_with("    }") {
            break;
        }
        if inside
            && ["~ ", "+ ", "- "]
                .iter()
                .any(|prefix| trimmed.starts_with(prefix))
        {
            out.push(trimmed.split_whitespace().collect::<Vec<_>>().join(" "));
        }
    }
    out
}

fn chart_config(url: &str, ns: &str, replicas: u32) -> String {
    format!(
        r#"{REQUIRED_PROVIDERS}
provider "flux" {{
  kubernetes = {{ config_path = "kubeconfig" }}
}}

resource "flux_operator" "this" {{
  namespace           = "{ns}"
  manifests_url       = "{url}/install.yaml"
  replicas            = {replicas}
  priority_class_name = "system-cluster-critical"
  image_pull_secrets  = ["ghcr-mirror", "quay-mirror"]
  log_level           = "debug"
  concurrent          = 20
  web_ui              = false
  affinity = {{
    node_affinity = {{
      required_during_scheduling_ignored_during_execution = {{
        node_selector_terms = [{{
          match_expressions = [{{ key = "kubernetes.io/os", operator = "In", values = ["linux"] }}]
        }}]
      }}
    }}
    pod_anti_affinity = {{
      preferred_during_scheduling_ignored_during_execution = [{{
        weight = 100
        pod_affinity_term = {{
          label_selector = {{ match_labels = {{ "app.kubernetes.io/name" = "flux-operator" }} }}
          topology_key   = "kubernetes.io/hostname"
        }}
      }}]
    }}
  }}
}}
"#
    )
}

/// The chart settings as the Deployment and Service carry them.
fn chart_view(sandbox: &RealCluster, ns: &str) -> Value {
    let d = sandbox
        .get_json(&["deployment", "flux-operator", "-n", ns])
        .expect("operator Deployment");
    let pod = &d["spec"]["template"]["spec"];
    let manager = &pod["containers"][0];
    let service = sandbox
        .get_json(&["service", "flux-operator", "-n", ns])
        .expect("operator Service");
    let port_names = |ports: &Value| -> Vec<Value> {
        ports
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].clone())
            .collect()
    };
    serde_json::json!({
        "replicas": d["spec"]["replicas"],
        "affinity": pod["affinity"],
        "priorityClassName": pod["priorityClassName"],
        "imagePullSecrets": pod["imagePullSecrets"],
        "args": manager["args"],
        "containerPorts": port_names(&manager["ports"]),
        "servicePorts": port_names(&service["spec"]["ports"]),
    })
}

fn expected_view(replicas: u32) -> Value {
    serde_json::json!({
        "replicas": replicas,
        "affinity": {
            "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}]}
            ]}},
            "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
                "weight": 100,
                "podAffinityTerm": {
                    "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "flux-operator"}},
                    "topologyKey": "kubernetes.io/hostname"
                }
            }]}
        },
        "priorityClassName": "system-cluster-critical",
        "imagePullSecrets": [{"name": "ghcr-mirror"}, {"name": "quay-mirror"}],
        "args": ["--log-level=debug", "--concurrent=20", "--web-server-port=0"],
        "containerPorts": ["http-metrics", "http"],
        "servicePorts": ["http"],
    })
}

#[test]
fn chart_settings_are_field_level_diffs_drift_heals_and_import_reads_them() {
    let sandbox = RealCluster::shared();
    let namespace = sandbox.namespace("acc-operator-chart");
    let ns = namespace.name.as_str();
    let url = serve_once_per_request(operator_install_in(OPERATOR_INSTALL, ns));
    let ws = workspace(&sandbox);

    // Create with every chart setting: the Deployment and Service carry them, the pods run.
    ws.write_config(&chart_config(&url, ns, 2));
    ws.apply().assert_success();
    assert_eq!(chart_view(&sandbox, ns), expected_view(2));
    let deployment = sandbox
        .get_json(&["deployment", "flux-operator", "-n", ns])
        .unwrap();
    assert_eq!(deployment["status"]["availableReplicas"], 2);
    let values = state_values(&ws);
    assert_eq!(
        (
            &values["replicas"],
            &values["log_level"],
            &values["concurrent"],
            &values["web_ui"],
            &values["installation_status"],
        ),
        (
            &serde_json::json!(2),
            &serde_json::json!("debug"),
            &serde_json::json!(20),
            &serde_json::json!(false),
            &serde_json::json!("Healthy"),
        )
    );
    ws.plan().assert_no_changes();

    // One setting changed: one field-level diff, one in-place update, the Deployment scaled.
    ws.write_config(&chart_config(&url, ns, 3));
    let plan = ws.plan();
    let out = plan.assert_changes();
    assert_eq!(changed_attributes(&out.stdout), ["~ replicas = 2 -> 3"]);
    out.assert_contains(&["Plan: 0 to add, 1 to change, 0 to destroy."]);
    ws.apply().assert_success();
    assert_eq!(chart_view(&sandbox, ns), expected_view(3));
    ws.plan().assert_no_changes();

    // Changed outside Terraform: each setting shows its own diff, and apply restores it.
    sandbox.kubectl(&[
        "-n",
        ns,
        "scale",
        "deployment/flux-operator",
        "--replicas=1",
    ]);
    sandbox.kubectl(&[
        "-n",
        ns,
        "patch",
        "deployment/flux-operator",
        "--type=json",
        "-p",
        r#"[{"op": "replace", "path": "/spec/template/spec/containers/0/args", "value": ["--log-level=error", "--concurrent=20", "--web-server-port=0"]}]"#,
    ]);
    let plan = ws.plan();
    let out = plan.assert_changes();
    assert_eq!(
        changed_attributes(&out.stdout),
        [
            "~ installation_status = \"Drifted: Deployment flux-operator changed\" -> \"Healthy\"",
            "~ log_level = \"error\" -> \"debug\"",
            "~ replicas = 1 -> 3",
        ]
    );
    ws.apply().assert_success();
    assert_eq!(chart_view(&sandbox, ns), expected_view(3));
    ws.plan().assert_no_changes();

    // Import reads the settings back from the Deployment (the affinity cannot be told from
    // the manifests' own, so it is not imported; the manifests source neither).
    let rm = ws.run(&["state", "rm", "flux_operator.this"]);
    rm.assert_success();
    ws.import("flux_operator.this", ns).assert_success();
    let values = state_values(&ws);
    assert_eq!(
        serde_json::json!({
            "replicas": values["replicas"],
            "priority_class_name": values["priority_class_name"],
            "image_pull_secrets": values["image_pull_secrets"],
            "log_level": values["log_level"],
            "concurrent": values["concurrent"],
            "web_ui": values["web_ui"],
            "affinity": values["affinity"],
            "version": values["version"],
        }),
        serde_json::json!({
            "replicas": 3,
            "priority_class_name": "system-cluster-critical",
            "image_pull_secrets": ["ghcr-mirror", "quay-mirror"],
            "log_level": "debug",
            "concurrent": 20,
            "web_ui": false,
            "affinity": null,
            "version": "v0.58.1",
        })
    );
    let plan = ws.plan();
    let out = plan.assert_changes();
    let changed = changed_attributes(&out.stdout);
    for setting in [
        "replicas",
        "priority_class_name",
        "image_pull_secrets",
        "log_level",
        "concurrent",
        "web_ui",
    ] {
        assert!(
            !changed.iter().any(|l| l[2..].starts_with(setting)),
            "{setting} changes after import: {changed:#?}"
        );
    }
    ws.apply().assert_success();
    assert_eq!(chart_view(&sandbox, ns), expected_view(3));
    ws.plan().assert_no_changes();

    // Every other setting changed at once: each shows as its own field-level diff (nested ones
    // down to the changed field), one in-place update, and the objects follow.
    let other = chart_config(&url, ns, 3)
        .replace(
            r#"priority_class_name = "system-cluster-critical""#,
            r#"priority_class_name = "system-node-critical""#,
        )
        .replace(
            r#"image_pull_secrets  = ["ghcr-mirror", "quay-mirror"]"#,
            r#"image_pull_secrets  = ["ghcr-mirror"]"#,
        )
        .replace(
            r#"log_level           = "debug""#,
            r#"log_level           = "info""#,
        )
        .replace("concurrent          = 20", "concurrent          = 10")
        .replace("web_ui              = false", "web_ui              = true")
        .replace("weight = 100", "weight = 50");
    ws.write_config(&other);
    let plan = ws.plan();
    let out = plan.assert_changes();
    out.assert_contains(&["Plan: 0 to add, 1 to change, 0 to destroy."]);
    let changed = changed_attributes(&out.stdout);
    for line in [
        "~ priority_class_name = \"system-cluster-critical\" -> \"system-node-critical\"",
        "~ log_level = \"debug\" -> \"info\"",
        "~ concurrent = 20 -> 10",
        "~ web_ui = false -> true",
        "~ weight = 100 -> 50",
        "- \"quay-mirror\",",
    ] {
        assert!(
            changed.iter().any(|l| l == line),
            "{line:?} is not in the plan's changes: {changed:#?}"
        );
    }
    for setting in ["image_pull_secrets", "affinity"] {
        assert!(
            changed
                .iter()
                .any(|l| l.starts_with(&format!("~ {setting} ="))),
            "{setting} is not shown as changed: {changed:#?}"
        );
    }
    assert!(
        !changed
            .iter()
            .any(|l| l.contains("replicas") || l.contains("manifests")),
        "unchanged settings in the plan: {changed:#?}"
    );
    ws.apply().assert_success();
    let view = chart_view(&sandbox, ns);
    assert_eq!(view["priorityClassName"], "system-node-critical");
    assert_eq!(
        view["imagePullSecrets"],
        serde_json::json!([{"name": "ghcr-mirror"}])
    );
    let args: Vec<&str> = view["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(args.contains(&"--log-level=info"), "{args:?}");
    assert!(args.contains(&"--concurrent=10"), "{args:?}");
    assert!(!args.contains(&"--web-server-port=0"), "{args:?}");
    assert_eq!(
        view["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["weight"],
        50
    );
    assert_eq!(view["replicas"], 3);
    ws.plan().assert_no_changes();

    ws.destroy().assert_success();
    assert_eq!(
        sandbox.get_json(&["deployment", "flux-operator", "-n", ns]),
        None
    );
}

#[test]
fn chart_settings_are_validated_at_plan_with_their_attribute_paths() {
    let sandbox = RealCluster::shared();
    let namespace = sandbox.namespace("acc-operator-chart-bad");
    let ns = namespace.name.as_str();
    let ws = workspace(&sandbox);
    ws.write_config(&format!(
        r#"{REQUIRED_PROVIDERS}
provider "flux" {{
  kubernetes = {{ config_path = "kubeconfig" }}
}}

resource "flux_operator" "this" {{
  namespace           = "{ns}"
  manifests_url       = "http://127.0.0.1:9/install.yaml"
  replicas            = 0
  concurrent          = -1
  priority_class_name = "Critical_Pods"
  image_pull_secrets  = ["ok", "Not A Name"]
  log_level           = "verbose"
  affinity = {{
    pod_anti_affinity = {{
      preferred_during_scheduling_ignored_during_execution = [{{
        weight            = 500
        pod_affinity_term = {{ topology_key = "kubernetes.io/hostname", label_selector = {{ match_expressions = [{{ key = "app", operator = "Gt", values = ["1"] }}] }} }}
      }}]
    }}
  }}
}}
"#
    ));
    let plan = ws.plan();
    plan.assert_error().assert_contains(&[
        "replicas = 0 is out of range: the replicas of the operator must be at least 1.",
        "concurrent = -1 is out of range: the objects reconciled at once must be at least 1.",
        "priority_class_name = \"Critical_Pods\"",
        "image_pull_secrets[1] = \"Not A Name\"",
        "log_level = \"verbose\" is not allowed; use one of \"trace\", \"debug\", \"info\", \"error\".",
        "affinity.pod_anti_affinity.preferred_during_scheduling_ignored_during_execution[0].weight = 500 is out of range: weights are 1-100.",
        "affinity.pod_anti_affinity.preferred_during_scheduling_ignored_during_execution[0].pod_affinity_term.label_selector.match_expressions[0].operator = \"Gt\" is not allowed",
    ]);
    // Nothing was written.
    assert_eq!(
        sandbox.get_json(&["deployment", "flux-operator", "-n", ns]),
        None
    );
}

// Installation shapes (issue 13; reference/flux-operator-behaviour.md, "The operator's own
// installation"). The release `install.yaml` shape is what every other test here starts from
// (`operator_install_drift_upgrade_and_destroy`, `chart_settings_are_field_level_diffs_...`):
// an empty namespace, then Deployment `flux-operator` with selector `{app.kubernetes.io/name}`.

/// A minimal operator Deployment as another installer leaves it.
fn foreign_deployment(
    ns: &str,
    name: &str,
    selector: &[(&str, &str)],
    labels: &[(&str, &str)],
    annotations: &[(&str, &str)],
) -> String {
    let map = |pairs: &[(&str, &str)]| {
        serde_json::Value::Object(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), serde_json::json!(v)))
                .collect(),
        )
    };
    serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": map(labels), "annotations": map(annotations)},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": map(selector)},
            "template": {
                "metadata": {"labels": map(selector)},
                "spec": {"containers": [{"name": "manager", "image": "ghcr.io/controlplaneio-fluxcd/flux-operator:v0.58.1"}]},
            },
        },
    })
    .to_string()
}

fn kubectl_create(sandbox: &RealCluster, ws: &Workspace, file: &str, json: &str) {
    let path = ws.write_file(file, json);
    sandbox.kubectl(&["create", "-f", path.to_str().unwrap()]);
}

/// The operator Deployments in `ns` (every installer labels them `app.kubernetes.io/name`).
fn operator_deployments(sandbox: &RealCluster, ns: &str) -> Vec<String> {
    let list = sandbox
        .get_json(&[
            "deployments",
            "-n",
            ns,
            "-l",
            "app.kubernetes.io/name=flux-operator",
        ])
        .unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["metadata"]["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn cli_installed_operator_is_adopted_with_its_selector() {
    let sandbox = RealCluster::shared();
    let namespace = sandbox.namespace("acc-operator-cli");
    let ns = namespace.name.as_str();
    let ws = workspace(&sandbox);
    let cli_selector = [
        ("app.kubernetes.io/name", "flux-operator"),
        ("app.kubernetes.io/instance", "flux-operator"),
    ];
    // What `flux-operator install` leaves: Deployment flux-operator, selector on both labels.
    kubectl_create(
        &sandbox,
        &ws,
        "cli.json",
        &foreign_deployment(ns, "flux-operator", &cli_selector, &cli_selector, &[]),
    );
    let url = serve_once_per_request(operator_install_in(OPERATOR_INSTALL, ns));
    ws.write_config(&config_in(
        Some(ns),
        &format!(r#"manifests_url = "{url}/install.yaml""#),
        "",
    ));
    ws.plan().assert_changes();
    // No immutable-selector 422: the selector is kept, the pod labels carry it.
    ws.apply().assert_success();
    assert_eq!(operator_deployments(&sandbox, ns), ["flux-operator"]);
    let d = sandbox
        .get_json(&["deployment", "flux-operator", "-n", ns])
        .unwrap();
    let both = serde_json::json!({"app.kubernetes.io/name": "flux-operator", "app.kubernetes.io/instance": "flux-operator"});
    assert_eq!(d["spec"]["selector"]["matchLabels"], both);
    for (k, v) in both.as_object().unwrap() {
        assert_eq!(&d["spec"]["template"]["metadata"]["labels"][k], v, "{k}");
    }
    // The rest is the release manifests' (settings applied, the ServiceAccount created).
    let env = &d["spec"]["template"]["spec"]["containers"][0]["env"];
    assert!(
        env.as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "DEFAULT_SERVICE_ACCOUNT" && e["value"] == "flux-tenant"),
        "{env}"
    );
    assert_eq!(
        d["spec"]["template"]["spec"]["serviceAccountName"],
        "flux-operator"
    );
    assert!(
        sandbox
            .get_json(&["serviceaccount", "flux-operator", "-n", ns])
            .is_some()
    );
    let values = state_values(&ws);
    assert_eq!(values["installation_status"], "Healthy");
    assert_eq!(values["operator_version"], "v0.58.1");
    ws.plan().assert_no_changes();

    ws.destroy().assert_success();
    assert!(operator_deployments(&sandbox, ns).is_empty());
}

/// What of `ns` an install would write, and the Helm Deployment as found: names of the
/// namespace's workloads, Services and ServiceAccounts (not the API server's `default`), and
/// the Deployment's generation and field managers.
fn namespace_snapshot(sandbox: &RealCluster, ns: &str, helm: &str) -> Value {
    let names = sandbox.kubectl(&[
        "get",
        "deployments,services,serviceaccounts,secrets,roles,rolebindings",
        "-n",
        ns,
        "-o",
        "name",
    ]);
    let mut names: Vec<&str> = names
        .lines()
        .filter(|l| *l != "serviceaccount/default")
        .collect();
    names.sort_unstable();
    let d = sandbox
        .get_json(&["deployment", helm, "-n", ns, "--show-managed-fields"])
        .unwrap();
    // Writers of the object itself; the status (kube-controller-manager's, written whenever it
    // gets to the new Deployment, possibly between two snapshots) is not the provider's to keep.
    let managers: Vec<Value> = d["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["subresource"] != "status")
        .map(|m| m["manager"].clone())
        .collect();
    serde_json::json!({
        "names": names,
        "generation": d["metadata"]["generation"],
        "spec": d["spec"],
        "labels": d["metadata"]["labels"],
        "managers": managers,
    })
}

/// Whether the state holds no resource.
fn no_resources(ws: &Workspace) -> bool {
    let state = ws.show_json();
    state["values"]["root_module"]["resources"]
        .as_array()
        .is_none_or(Vec::is_empty)
}

#[test]
fn helm_installed_operator_is_refused_at_plan_and_apply_without_writing() {
    let sandbox = RealCluster::shared();
    let namespace = sandbox.namespace("acc-operator-helm");
    let ns = namespace.name.as_str();
    let ws = workspace(&sandbox);
    // What `helm install ops flux-operator -n <ns>` leaves: Deployment ops-flux-operator.
    let helm = foreign_deployment(
        ns,
        "ops-flux-operator",
        &[
            ("app.kubernetes.io/name", "flux-operator"),
            ("app.kubernetes.io/instance", "ops"),
        ],
        &[
            ("app.kubernetes.io/name", "flux-operator"),
            ("app.kubernetes.io/instance", "ops"),
            ("app.kubernetes.io/managed-by", "Helm"),
        ],
        &[
            ("meta.helm.sh/release-name", "ops"),
            ("meta.helm.sh/release-namespace", ns),
        ],
    );
    kubectl_create(&sandbox, &ws, "helm.json", &helm);
    let before = namespace_snapshot(&sandbox, ns, "ops-flux-operator");
    let url = serve_once_per_request(operator_install_in(OPERATOR_INSTALL, ns));
    ws.write_config(&config_in(
        Some(ns),
        &format!(r#"manifests_url = "{url}/install.yaml""#),
        "",
    ));
    let message = [
        "Flux Operator Installed By Helm",
        &format!("Deployment {ns}/ops-flux-operator"),
        &format!("managed by the Helm release \"ops\" in namespace \"{ns}\""),
        "remove flux_operator from the configuration",
        &format!("`helm uninstall ops -n {ns}`"),
    ];
    let plan = ws.plan();
    plan.assert_error().assert_contains(&message);
    assert_eq!(
        namespace_snapshot(&sandbox, ns, "ops-flux-operator"),
        before
    );
    assert!(no_resources(&ws));

    // Installed by Helm between plan and apply: apply refuses before its first write.
    sandbox.kubectl(&["-n", ns, "delete", "deployment", "ops-flux-operator"]);
    ws.plan_with(&["-out=tfplan"]).assert_changes();
    kubectl_create(&sandbox, &ws, "helm.json", &helm);
    let before = namespace_snapshot(&sandbox, ns, "ops-flux-operator");
    ws.apply_saved("tfplan")
        .assert_failure()
        .assert_contains(&message);
    assert_eq!(
        namespace_snapshot(&sandbox, ns, "ops-flux-operator"),
        before
    );
    assert_eq!(operator_deployments(&sandbox, ns), ["ops-flux-operator"]);
    assert!(no_resources(&ws));
}
