//! The real control plane for cluster-facing tests (DESIGN.md §5): etcd, kube-apiserver and
//! kube-controller-manager built from the upstream Go modules, with the fake node
//! (`kube-sandbox kubelet-sim`), the Flux Operator simulator applying the real Flux install
//! objects, and the real source- and kustomize-controller — all started by
//! `scripts/real-cluster.sh --operator-sim --flux-controllers`.
//!
//! **One control plane per `make test` run**: `scripts/test.sh` starts it and passes its
//! kubeconfig in `FLUX_TEST_KUBECONFIG`; every test process uses that one. Without the variable
//! (a single test run by hand) the first use starts a control plane for this test process; it
//! stops when the process exits (real-cluster.sh watches its parent). Point
//! `FLUX_TEST_KUBECONFIG` at any cluster to run the tests there.
//!
//! **Sharing rules.** nextest runs tests in parallel processes against the one cluster:
//! - namespaced objects: each test uses its own namespace ([`RealCluster::namespace`], deleted
//!   when dropped) — the operator and the FluxInstance too ([`operator_install_in`] moves the
//!   operator's install manifest into it and gives its cluster-scoped RBAC per-namespace names);
//! - cluster-scoped objects that tests create or delete — the Flux CRDs a FluxInstance installs
//!   and its uninstall deletes, `delete_crds = true`, the `flux-system` namespace — only under
//!   [`RealCluster::exclusive`], a cross-process lock (`flock` on `<kubeconfig>.lock`) that waits
//!   for every other cluster test to finish and keeps new ones waiting;
//! - everything else under [`RealCluster::shared`] (many at once). Shared tests never delete
//!   cluster-scoped objects; the operator CRDs they apply are identical, so they do not fight.
//!
//! Include with `mod common;` and use `common::real_cluster::RealCluster`.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The environment variable naming the kubeconfig of the run's control plane.
pub const KUBECONFIG_ENV: &str = "FLUX_TEST_KUBECONFIG";

/// The operator install manifest of the sandbox fixtures (v0.58.1 shape), namespace
/// `flux-system`.
pub const OPERATOR_INSTALL: &str = include_str!("../sandbox/fixtures/operator-install.yaml");

struct Started {
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
    _child: Child,
}

fn started() -> &'static Started {
    static STARTED: OnceLock<Started> = OnceLock::new();
    STARTED.get_or_init(|| {
        // The repository root (this file is also included by the kube-sandbox crate's tests).
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .find(|d| d.join("scripts/real-cluster.sh").is_file())
            .expect("scripts/real-cluster.sh above CARGO_MANIFEST_DIR");
        let dir = tempfile::Builder::new()
            .prefix("real-cluster-")
            .tempdir()
            .unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        let started = Instant::now();
        let mut child = Command::new(root.join("scripts/real-cluster.sh"))
            .args(["--operator-sim", "--flux-controllers", "--kubeconfig"])
            .arg(&kubeconfig)
            .current_dir(root)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start scripts/real-cluster.sh");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("read the ready line of scripts/real-cluster.sh");
        assert!(
            line.starts_with("ready https://127.0.0.1:"),
            "scripts/real-cluster.sh did not start (first line {line:?}); its stderr above says \
             why. It needs Go >= 1.26.6 and the Go module proxy on first use (binaries are then \
             cached in ~/.cache/terraform-provider-flux), kubectl and openssl."
        );
        eprintln!(
            "real control plane for this test process ready in {:.1}s (set {KUBECONFIG_ENV} to \
             share one between tests; make test does)",
            started.elapsed().as_secs_f64()
        );
        Started {
            kubeconfig,
            _dir: dir,
            _child: child,
        }
    })
}

/// The kubeconfig of the run's control plane (started for this process when
/// [`KUBECONFIG_ENV`] is unset).
pub fn kubeconfig_path() -> PathBuf {
    match std::env::var_os(KUBECONFIG_ENV) {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => started().kubeconfig.clone(),
    }
}

/// A lease on the run's control plane; the lock is held until it is dropped.
pub struct RealCluster {
    kubeconfig: PathBuf,
    _lock: File,
}

impl RealCluster {
    fn lease(exclusive: bool) -> Self {
        let kubeconfig = kubeconfig_path();
        assert!(
            kubeconfig.is_file(),
            "{KUBECONFIG_ENV}={} does not exist",
            kubeconfig.display()
        );
        let lock_path = PathBuf::from(format!("{}.lock", kubeconfig.display()));
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .unwrap_or_else(|e| panic!("open {}: {e}", lock_path.display()));
        if exclusive {
            lock.lock().expect("exclusive lock on the control plane");
        } else {
            lock.lock_shared()
                .expect("shared lock on the control plane");
        }
        Self {
            kubeconfig,
            _lock: lock,
        }
    }

    /// A lease shared with other tests: use only your own namespaces, delete no
    /// cluster-scoped object.
    pub fn shared() -> Self {
        Self::lease(false)
    }

    /// The whole control plane for this test (waits until no other cluster test runs): for
    /// tests that install Flux (FluxInstance), delete CRDs or use `flux-system`.
    pub fn exclusive() -> Self {
        Self::lease(true)
    }

    /// The kubeconfig file (CA + admin token).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The kubeconfig's content.
    pub fn kubeconfig_yaml(&self) -> String {
        std::fs::read_to_string(&self.kubeconfig).expect("read the kubeconfig")
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        let yaml = self.kubeconfig_yaml();
        yaml.lines()
            .find_map(|l| l.trim().strip_prefix("server: "))
            .expect("server in the kubeconfig")
            .to_owned()
    }

    /// Runs kubectl; panics unless it succeeds; returns stdout.
    #[track_caller]
    pub fn kubectl(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.kubectl_status(args);
        assert!(ok, "kubectl {args:?} failed: {err}");
        out
    }

    /// Runs kubectl; returns (success, stdout, stderr).
    pub fn kubectl_status(&self, args: &[&str]) -> (bool, String, String) {
        let output = Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .stdin(Stdio::null())
            .output()
            .expect("run kubectl");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// An object as JSON, or `None` when kubectl says it is not found.
    #[track_caller]
    pub fn get_json(&self, args: &[&str]) -> Option<serde_json::Value> {
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-o", "json"]);
        let (ok, out, err) = self.kubectl_status(&all);
        if !ok {
            assert!(
                err.contains("NotFound") || err.contains("not found"),
                "kubectl get {args:?}: {err}"
            );
            return None;
        }
        Some(serde_json::from_str(&out).expect("kubectl JSON"))
    }

    /// Polls `check` every 200 ms until it returns `Some` or `timeout` passes (then panics with
    /// `what`).
    #[track_caller]
    pub fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut() -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = check() {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?}: {what}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A new namespace `<prefix>-<pid>-<n>` for this test, deleted (without waiting) on drop.
    pub fn namespace(&self, prefix: &str) -> TestNamespace {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "{prefix}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        self.kubectl(&["create", "namespace", &name]);
        TestNamespace {
            name,
            kubeconfig: self.kubeconfig.clone(),
        }
    }
}

/// A namespace owned by one test.
pub struct TestNamespace {
    /// Its name.
    pub name: String,
    kubeconfig: PathBuf,
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        let _ = Command::new("kubectl")
            .args(["delete", "namespace", &self.name, "--wait=false"])
            .env("KUBECONFIG", &self.kubeconfig)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The operator install manifest ([`OPERATOR_INSTALL`], or another version's) moved into
/// `namespace`: its Namespace and namespaced objects there, its cluster-scoped RBAC
/// (`flux-operator-edit`, `flux-operator-view`, `flux-operator-cluster-admin`) named
/// `<namespace>-…` so parallel tests do not delete each other's. The CRDs stay as they are (one
/// per cluster; identical in every test).
pub fn operator_install_in(manifest: &str, namespace: &str) -> String {
    manifest
        .replace("namespace: flux-system", &format!("namespace: {namespace}"))
        .replace("name: flux-system", &format!("name: {namespace}"))
        .replace(
            "name: flux-operator-edit",
            &format!("name: {namespace}-flux-operator-edit"),
        )
        .replace(
            "name: flux-operator-view",
            &format!("name: {namespace}-flux-operator-view"),
        )
        .replace(
            "name: flux-operator-cluster-admin",
            &format!("name: {namespace}-flux-operator-cluster-admin"),
        )
}
