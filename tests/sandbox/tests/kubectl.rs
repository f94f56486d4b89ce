//! kubectl cross-check: the real `kubectl` drives the standalone `kube-sandbox` binary over
//! HTTPS, unmodified (default validation, aggregated discovery, server-side apply, watch-based
//! wait), and runs the SAME checks against the real kube-apiserver of the test run
//! (`tests/common/real_cluster.rs`, `FLUX_TEST_KUBECONFIG`): both must give kubectl's answers.
//! `kubectl` must be on PATH (`make test` checks for it); the tests fail otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers panic on setup failures.

#[path = "../../common/real_cluster.rs"]
#[allow(missing_docs)]
mod real_cluster;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

struct Server {
    child: Option<Child>,
    kubeconfig: PathBuf,
    dir: tempfile::TempDir,
    _lease: Option<real_cluster::RealCluster>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The run's real control plane (shared lease: these checks use their own names).
fn real() -> Server {
    let lease = real_cluster::RealCluster::shared();
    Server {
        child: None,
        kubeconfig: lease.kubeconfig().to_path_buf(),
        dir: tempfile::tempdir().unwrap(),
        _lease: Some(lease),
    }
}

fn kubectl_available() -> bool {
    Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kube-sandbox"))
        .args(["serve", "--kubeconfig"])
        .arg(&kubeconfig)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("ready https://127.0.0.1:"), "{line:?}");
    Server {
        child: Some(child),
        kubeconfig,
        dir,
        _lease: None,
    }
}

impl Server {
    fn kubectl(&self, args: &[&str]) -> Output {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .env_remove("KUBECONFIG")
            .env("HOME", self.dir.path())
            .output()
            .unwrap()
    }

    /// Runs kubectl and returns stdout, panicking with stderr on failure.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.kubectl(args);
        assert!(
            o.status.success(),
            "kubectl {args:?} failed: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    fn file(&self, name: &str, content: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::File::create(&p)
            .unwrap()
            .write_all(content.as_bytes())
            .unwrap();
        path_str(&p)
    }
}

fn path_str(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

const CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: gadgets, singular: gadget, kind: Gadget, shortNames: [gd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Color, type: string, jsonPath: .spec.color}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              color: {type: string}
              size: {type: integer, default: 3}
          status:
            type: object
            properties:
              ready: {type: boolean}
"#;

fn gadget(color: &str) -> String {
    format!(
        "apiVersion: example.com/v1\nkind: Gadget\nmetadata:\n  name: g1\n  namespace: default\nspec:\n  color: {color}\n"
    )
}

#[test]
fn kubectl_server_side_apply_conflicts_get_patch_and_delete() {
    server_side_apply_conflicts_get_patch_and_delete(&start());
}

#[test]
fn real_api_server_kubectl_server_side_apply_conflicts_get_patch_and_delete() {
    let s = real();
    server_side_apply_conflicts_get_patch_and_delete(&s);
    s.ok(&["delete", "crd", "gadgets.example.com"]);
}

fn server_side_apply_conflicts_get_patch_and_delete(s: &Server) {
    assert!(
        kubectl_available(),
        "kubectl 1.32+ is required on PATH for the cross-check suite"
    );
    let crd = s.file("crd.yaml", CRD);
    assert_eq!(
        s.ok(&["apply", "--server-side", "-f", &crd]),
        "customresourcedefinition.apiextensions.k8s.io/gadgets.example.com serverside-applied\n"
    );
    assert_eq!(
        s.ok(&[
            "wait",
            "--for=condition=Established",
            "crd/gadgets.example.com",
            "--timeout=10s"
        ]),
        "customresourcedefinition.apiextensions.k8s.io/gadgets.example.com condition met\n"
    );
    let resources = s.ok(&["api-resources", "--api-group=example.com", "--no-headers"]);
    let cols: Vec<&str> = resources.split_whitespace().collect();
    assert_eq!(
        cols,
        vec!["gadgets", "gd", "example.com/v1", "true", "Gadget"]
    );

    let red = s.file("red.yaml", &gadget("red"));
    assert_eq!(
        s.ok(&["apply", "--server-side", "-f", &red]),
        "gadget.example.com/g1 serverside-applied\n"
    );
    // Re-applying an unchanged manifest changes nothing.
    let rv1 = s.ok(&[
        "get",
        "gadget",
        "g1",
        "-o",
        "jsonpath={.metadata.resourceVersion}",
    ]);
    s.ok(&["apply", "--server-side", "-f", &red]);
    assert_eq!(
        s.ok(&[
            "get",
            "gadget",
            "g1",
            "-o",
            "jsonpath={.metadata.resourceVersion}"
        ]),
        rv1
    );

    let blue = s.file("blue.yaml", &gadget("blue"));
    let o = s.kubectl(&[
        "apply",
        "--server-side",
        "--field-manager",
        "other",
        "-f",
        &blue,
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with(
            "error: Apply failed with 1 conflict: conflict with \"kubectl\": .spec.color\n"
        ),
        "{err}"
    );
    assert_eq!(
        s.ok(&[
            "apply",
            "--server-side",
            "--field-manager",
            "other",
            "--force-conflicts",
            "-f",
            &blue
        ]),
        "gadget.example.com/g1 serverside-applied\n"
    );

    let yaml = s.ok(&["get", "gadget", "g1", "-o", "yaml", "--show-managed-fields"]);
    let obj: serde_json::Value = serde_saphyr::from_str(&yaml).unwrap();
    assert_eq!(obj["spec"], serde_json::json!({"color": "blue", "size": 3}));
    assert_eq!(obj["metadata"]["generation"], 2);
    let mf: Vec<(String, String)> = obj["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["manager"].as_str().unwrap().to_string(),
                serde_json::to_string(&m["fieldsV1"]).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        mf,
        vec![(
            "other".to_string(),
            r#"{"f:spec":{"f:color":{}}}"#.to_string()
        )],
        "kubectl lost .spec.color to the forced apply and owned nothing else"
    );

    assert_eq!(
        s.ok(&[
            "patch",
            "gadget",
            "g1",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"size":5}}"#
        ]),
        "gadget.example.com/g1 patched\n"
    );
    assert_eq!(
        s.ok(&[
            "get",
            "gd",
            "g1",
            "-o",
            "jsonpath={.spec.size} {.metadata.generation}"
        ]),
        "5 3"
    );
    let table = s.ok(&["get", "gadgets"]);
    let lines: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    // Only the CRD's own columns: no AGE added (a real API server adds it only to CRDs that list
    // no additionalPrinterColumns).
    assert_eq!(lines[0], vec!["NAME", "COLOR"]);
    assert_eq!(&lines[1][..2], &["g1", "blue"]);

    // delete with a finalizer: the object stays, with a deletionTimestamp, until it is removed.
    s.ok(&[
        "patch",
        "gadget",
        "g1",
        "--type",
        "merge",
        "-p",
        r#"{"metadata":{"finalizers":["example.com/hold"]}}"#,
    ]);
    assert_eq!(
        s.ok(&["delete", "gadget", "g1", "--wait=false"]),
        "gadget.example.com \"g1\" deleted\n"
    );
    let held = s.ok(&[
        "get",
        "gadget",
        "g1",
        "-o",
        "jsonpath={.metadata.finalizers[0]} {.metadata.deletionTimestamp}",
    ]);
    let (fin, ts) = held.split_once(' ').unwrap();
    assert_eq!(fin, "example.com/hold");
    assert!(ts.parse::<jiff::Timestamp>().is_ok(), "{held}");
    s.ok(&[
        "patch",
        "gadget",
        "g1",
        "--type",
        "json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ]);
    let o = s.kubectl(&["get", "gadget", "g1"]);
    assert!(!o.status.success());
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "Error from server (NotFound): gadgets.example.com \"g1\" not found\n"
    );
}

#[test]
fn kubectl_wait_for_deployment_and_namespace_deletion() {
    wait_for_deployment_and_namespace_deletion(&start());
}

#[test]
fn real_api_server_kubectl_wait_for_deployment_and_namespace_deletion() {
    wait_for_deployment_and_namespace_deletion(&real());
}

fn wait_for_deployment_and_namespace_deletion(s: &Server) {
    assert!(
        kubectl_available(),
        "kubectl 1.32+ is required on PATH for the cross-check suite"
    );
    let manifest = s.file(
        "app.yaml",
        r#"apiVersion: v1
kind: Namespace
metadata: {name: app}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: app}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: web, image: "nginx:1.27", ports: [{containerPort: 80}]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: app}
data: {a: "1"}
"#,
    );
    assert_eq!(
        s.ok(&["apply", "--server-side", "-f", &manifest]),
        "namespace/app serverside-applied\ndeployment.apps/web serverside-applied\nconfigmap/settings serverside-applied\n"
    );
    assert_eq!(
        s.ok(&[
            "-n",
            "app",
            "wait",
            "--for=condition=Available",
            "deployment/web",
            "--timeout=60s"
        ]),
        "deployment.apps/web condition met\n"
    );
    assert_eq!(
        s.ok(&[
            "-n",
            "app",
            "rollout",
            "status",
            "deployment/web",
            "--timeout=60s"
        ]),
        "deployment \"web\" successfully rolled out\n"
    );
    let rows: Vec<Vec<String>> = s
        .ok(&["-n", "app", "get", "deployments"])
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect();
    assert_eq!(
        rows[0],
        vec!["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    );
    assert_eq!(&rows[1][..4], &["web", "1/1", "1", "1"]);
    let ns: Vec<String> = s
        .ok(&["get", "namespace", "app", "--no-headers"])
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(&ns[..2], &["app", "Active"]);
    assert_eq!(
        s.ok(&["-n", "app", "scale", "deployment/web", "--replicas=3"]),
        "deployment.apps/web scaled\n"
    );
    assert_eq!(
        s.ok(&[
            "-n",
            "app",
            "wait",
            "--for=jsonpath={.status.availableReplicas}=3",
            "deployment/web",
            "--timeout=60s"
        ]),
        "deployment.apps/web condition met\n"
    );
    s.ok(&["-n", "app", "scale", "deployment/web", "--replicas=1"]);
    // Server-side defaults are visible, as on a real cluster.
    assert_eq!(
        s.ok(&[
            "-n",
            "app",
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].ports[0].protocol}"
        ]),
        "1 TCP"
    );
    assert_eq!(
        s.ok(&["delete", "namespace", "app", "--timeout=60s"]),
        "namespace \"app\" deleted\n"
    );
    let o = s.kubectl(&["get", "namespace", "app"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "Error from server (NotFound): namespaces \"app\" not found\n"
    );
    // (Not `-A`: a real kube-controller-manager publishes kube-root-ca.crt in every namespace.)
    assert_eq!(s.ok(&["get", "configmaps", "-n", "app", "-o", "name"]), "");
}

/// `metadata.managedFields` written by a client's patch replace the server's when they decode
/// and are not empty (apiserver `FieldManager.Update`); a later server-side apply then removes
/// what the new owner no longer applies. An empty list is ignored. This is how Flux and the Flux
/// Operator take fields over from other managers.
#[test]
fn kubectl_patch_of_managed_fields_transfers_ownership() {
    managed_fields_transfer_ownership(&start());
}

/// The same on the real kube-apiserver (exclusively: the other real-server check uses the same
/// CRD and object).
#[test]
fn real_api_server_kubectl_patch_of_managed_fields_transfers_ownership() {
    let lease = real_cluster::RealCluster::exclusive();
    let s = Server {
        child: None,
        kubeconfig: lease.kubeconfig().to_path_buf(),
        dir: tempfile::tempdir().unwrap(),
        _lease: Some(lease),
    };
    managed_fields_transfer_ownership(&s);
    s.ok(&["delete", "gadget", "g1"]);
    s.ok(&["delete", "crd", "gadgets.example.com"]);
}

fn managed_fields_transfer_ownership(s: &Server) {
    assert!(
        kubectl_available(),
        "kubectl 1.32+ is required on PATH for the cross-check suite"
    );
    let crd = s.file("crd.yaml", CRD);
    s.ok(&["apply", "--server-side", "-f", &crd]);
    s.ok(&[
        "wait",
        "--for=condition=Established",
        "crd/gadgets.example.com",
        "--timeout=10s",
    ]);
    let red = s.file("red.yaml", &gadget("red"));
    s.ok(&[
        "apply",
        "--server-side",
        "--field-manager",
        "owner",
        "-f",
        &red,
    ]);
    s.ok(&[
        "patch",
        "gadget",
        "g1",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"size":5}}"#,
    ]);
    let managers = |s: &Server| -> Vec<(String, String, String)> {
        let json = s.ok(&["get", "gadget", "g1", "-o", "json", "--show-managed-fields"]);
        let obj: serde_json::Value = serde_json::from_str(&json).unwrap();
        obj["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["manager"].as_str().unwrap().to_string(),
                    m["operation"].as_str().unwrap().to_string(),
                    serde_json::to_string(&m["fieldsV1"]).unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(
        managers(s),
        vec![
            (
                "owner".to_string(),
                "Apply".to_string(),
                r#"{"f:spec":{"f:color":{}}}"#.to_string()
            ),
            (
                "kubectl-patch".to_string(),
                "Update".to_string(),
                r#"{"f:spec":{"f:size":{}}}"#.to_string()
            ),
        ]
    );
    // An empty list changes nothing.
    s.ok(&[
        "patch",
        "gadget",
        "g1",
        "--type",
        "merge",
        "-p",
        r#"{"metadata":{"managedFields":[]}}"#,
    ]);
    assert_eq!(managers(s).len(), 2);
    // The owner takes `.spec.size` over.
    s.ok(&[
        "patch",
        "gadget",
        "g1",
        "--type",
        "merge",
        "-p",
        r#"{"metadata":{"managedFields":[{"manager":"owner","operation":"Apply","apiVersion":"example.com/v1","fieldsType":"FieldsV1","fieldsV1":{"f:spec":{"f:color":{},"f:size":{}}}}]}}"#,
    ]);
    assert_eq!(
        managers(s),
        vec![(
            "owner".to_string(),
            "Apply".to_string(),
            r#"{"f:spec":{"f:color":{},"f:size":{}}}"#.to_string()
        )]
    );
    // Applying without `.spec.size` now removes the 5; the CRD default (3) fills it in again.
    s.ok(&[
        "apply",
        "--server-side",
        "--field-manager",
        "owner",
        "-f",
        &red,
    ]);
    assert_eq!(
        s.ok(&["get", "gadget", "g1", "-o", "jsonpath={.spec}"]),
        r#"{"color":"red","size":3}"#
    );
}
