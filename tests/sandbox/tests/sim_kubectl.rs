//! The operator simulator in the standalone binary, driven by the real `kubectl`: install the
//! operator fixture, create a FluxInstance, `kubectl wait --for=condition=Ready`, read the
//! status, delete through the finalizer. Skipped (with a note on stderr) when `kubectl` is not
//! on PATH.

// Test helpers panic on failure, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(kubeconfig: &Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kube-sandbox"))
        .args(["serve", "--kubeconfig"])
        .arg(kubeconfig)
        .args(["--operator-sim", "--flux-versions", "2.6.3,2.7.1"])
        .args([
            "--crd-established-delay-ms",
            "100",
            "--deployment-available-delay-ms",
            "200",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("ready https://127.0.0.1:"), "{line:?}");
    Server(child)
}

fn kubectl(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let (success, out, err) = kubectl(kubeconfig, args, stdin);
    assert!(success, "kubectl {args:?} failed:\n{out}\n{err}");
    out
}

const INSTANCE: &str = "apiVersion: fluxcd.controlplane.io/v1
kind: FluxInstance
metadata:
  name: flux
  namespace: flux-system
spec:
  distribution:
    version: 2.x
    registry: ghcr.io/fluxcd
  components: [source-controller, kustomize-controller]
";

#[test]
fn kubectl_waits_for_a_ready_fluxinstance() {
    if Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_err()
    {
        eprintln!("kubectl not found; skipping");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    let _server = start(&kc);
    let install = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/operator-install.yaml");
    ok(
        &kc,
        &["apply", "--server-side", "-f", install.to_str().unwrap()],
        None,
    );
    ok(
        &kc,
        &[
            "wait",
            "--for=condition=Established",
            "crd/fluxinstances.fluxcd.controlplane.io",
            "--timeout=30s",
        ],
        None,
    );
    ok(
        &kc,
        &[
            "-n",
            "flux-system",
            "wait",
            "--for=condition=Available",
            "deployment/flux-operator",
            "--timeout=30s",
        ],
        None,
    );

    // The CRD's CEL rule rejects any other name.
    let other = INSTANCE.replace("name: flux\n", "name: other\n");
    let (success, _, err) = kubectl(&kc, &["apply", "--server-side", "-f", "-"], Some(&other));
    assert!(!success);
    assert!(
        err.contains("the only accepted name for a FluxInstance is 'flux'"),
        "{err}"
    );

    let started = Instant::now();
    ok(&kc, &["apply", "--server-side", "-f", "-"], Some(INSTANCE));
    ok(
        &kc,
        &[
            "-n",
            "flux-system",
            "wait",
            "--for=condition=Ready",
            "fluxinstance/flux",
            "--timeout=60s",
        ],
        None,
    );
    assert!(started.elapsed() < Duration::from_secs(60));
    let rev = ok(
        &kc,
        &[
            "-n",
            "flux-system",
            "get",
            "fluxinstance",
            "flux",
            "-o",
            "jsonpath={.status.lastAppliedRevision}",
        ],
        None,
    );
    assert!(
        rev.starts_with("v2.7.1@sha256:") && rev.len() == "v2.7.1@sha256:".len() + 64,
        "{rev}"
    );
    let deps = ok(
        &kc,
        &[
            "-n",
            "flux-system",
            "get",
            "deployments",
            "-l",
            "fluxcd.controlplane.io/name=flux",
            "-o",
            "name",
        ],
        None,
    );
    let mut deps: Vec<&str> = deps.lines().collect();
    deps.sort();
    assert_eq!(
        deps,
        [
            "deployment.apps/kustomize-controller",
            "deployment.apps/source-controller"
        ]
    );

    // Delete waits for the operator's finalizer (uninstall) to finish.
    ok(
        &kc,
        &[
            "-n",
            "flux-system",
            "delete",
            "fluxinstance",
            "flux",
            "--timeout=60s",
        ],
        None,
    );
    let left = ok(
        &kc,
        &[
            "-n",
            "flux-system",
            "get",
            "deployments",
            "-l",
            "fluxcd.controlplane.io/name=flux",
            "-o",
            "name",
        ],
        None,
    );
    assert_eq!(left.trim(), "");
}
