//! The cluster an acceptance test runs against, with one API whichever it is: a kubeconfig, a
//! namespace for the Flux Operator and Flux, kubectl helpers and the operator install manifest
//! for that namespace.
//!
//! - [`TestCluster::flux`]: the run's **real control plane** (`real_cluster.rs`) under an
//!   exclusive lease — for tests that install Flux (a FluxInstance installs and uninstalls the
//!   cluster-scoped Flux CRDs) — with a fresh namespace of the test's own;
//! - [`TestCluster::shared`]: the real control plane under a shared lease (many tests at once),
//!   for tests that only install the operator and namespaced objects;
//! - [`TestCluster::sandbox`] / [`TestCluster::sandbox_with`]: a private `kube-sandbox serve`
//!   (namespace `flux-system`), only where the real API server cannot do the job: fault
//!   injection at the API level, request counting ([`TestCluster::requests`]), fast
//!   protocol-level tests.
//!
//! A test written against this API switches target by changing its constructor; everything it
//! creates lives in [`TestCluster::namespace`].

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::real_cluster::{OPERATOR_INSTALL, RealCluster, TestNamespace, operator_install_in};
use super::sandbox::Sandbox;

enum Backend {
    // Field order matters: the namespace goes before the lease is released.
    Real {
        namespace: TestNamespace,
        cluster: RealCluster,
    },
    Sandbox(Sandbox),
}

/// A cluster for one test (see the module docs).
pub struct TestCluster {
    backend: Backend,
    namespace: String,
}

impl TestCluster {
    /// The real control plane, exclusively, with a fresh namespace `<prefix>-<pid>-<n>`.
    pub fn flux(prefix: &str) -> Self {
        Self::real(RealCluster::exclusive(), prefix)
    }

    /// The real control plane, shared with other tests, with a fresh namespace.
    pub fn shared(prefix: &str) -> Self {
        Self::real(RealCluster::shared(), prefix)
    }

    fn real(cluster: RealCluster, prefix: &str) -> Self {
        let namespace = cluster.namespace(prefix);
        Self {
            namespace: namespace.name.clone(),
            backend: Backend::Real { namespace, cluster },
        }
    }

    /// A private kube-sandbox with the operator simulator (namespace `flux-system`).
    pub fn sandbox() -> Self {
        Self::sandbox_with(&["--operator-sim"])
    }

    /// A private kube-sandbox started with `serve` flags (none: a bare API server).
    pub fn sandbox_with(flags: &[&str]) -> Self {
        Self {
            backend: Backend::Sandbox(Sandbox::start_with(flags)),
            namespace: "flux-system".to_owned(),
        }
    }

    /// Whether this is the real control plane.
    pub fn is_real(&self) -> bool {
        matches!(self.backend, Backend::Real { .. })
    }

    /// The namespace of the test's operator and Flux installation.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The kubeconfig file (token auth, CA).
    pub fn kubeconfig(&self) -> PathBuf {
        match &self.backend {
            Backend::Real { cluster, .. } => cluster.kubeconfig().to_path_buf(),
            Backend::Sandbox(sandbox) => sandbox.kubeconfig(),
        }
    }

    /// The kubeconfig's content.
    pub fn kubeconfig_yaml(&self) -> String {
        std::fs::read_to_string(self.kubeconfig()).expect("read the kubeconfig")
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        match &self.backend {
            Backend::Real { cluster, .. } => cluster.url(),
            Backend::Sandbox(sandbox) => sandbox.url.clone(),
        }
    }

    /// The operator install manifest (v0.58.1 fixture) moved into [`Self::namespace`].
    pub fn operator_install(&self) -> String {
        operator_install_in(OPERATOR_INSTALL, &self.namespace)
    }

    /// Replaces the fault settings of a private kube-sandbox (`PUT /sandbox/faults`, e.g.
    /// `{"stuckDeployments": ["flux-system/helm-controller"]}`; `{}` clears them). Panics on
    /// the real control plane, which has no fault injection.
    #[track_caller]
    pub fn set_faults(&self, settings: &serde_json::Value) {
        match &self.backend {
            Backend::Sandbox(sandbox) => sandbox.set_faults(settings),
            Backend::Real { .. } => panic!("fault injection needs TestCluster::sandbox()"),
        }
    }

    /// Adds one fault rule to a private kube-sandbox (`POST /sandbox/faults`). Panics on the
    /// real control plane.
    #[track_caller]
    pub fn add_fault(&self, rule: &serde_json::Value) {
        match &self.backend {
            Backend::Sandbox(sandbox) => sandbox.add_fault(rule),
            Backend::Real { .. } => panic!("fault injection needs TestCluster::sandbox()"),
        }
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
        match &self.backend {
            Backend::Real { cluster, .. } => cluster.kubectl_status(args),
            Backend::Sandbox(sandbox) => sandbox.kubectl_status(args),
        }
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

    /// `kind/name` in [`Self::namespace`] as JSON, or `None`.
    #[track_caller]
    pub fn get_in_ns(&self, kind: &str, name: &str) -> Option<serde_json::Value> {
        let ns = self.namespace.clone();
        self.get_json(&[kind, name, "-n", &ns])
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

    fn sandbox_only(&self, what: &str) -> &Sandbox {
        match &self.backend {
            Backend::Sandbox(sandbox) => sandbox,
            Backend::Real { .. } => panic!(
                "{what} needs kube-sandbox's request recorder: construct this test's cluster \
                 with TestCluster::sandbox()"
            ),
        }
    }

    /// Deletes the test's namespace and waits until it is gone (so the next test finds no
    /// operator of this one), while still holding the lease.
    fn delete_namespace(&self) {
        if let Backend::Real { namespace, cluster } = &self.backend {
            // The operator's objects first, while the operator runs (a namespace deletion
            // takes the operator with it, and then nothing removes their finalizers); what
            // still carries one after that gets it stripped.
            let kinds = "fluxinstances.fluxcd.controlplane.io,resourcesets.fluxcd.controlplane.io,\
                         resourcesetinputproviders.fluxcd.controlplane.io";
            let ns = namespace.name.as_str();
            let _ = cluster.kubectl_status(&[
                "delete",
                kinds,
                "--all",
                "-n",
                ns,
                "--ignore-not-found",
                "--timeout=60s",
            ]);
            let (_, left, _) = cluster.kubectl_status(&["get", kinds, "-n", ns, "-o", "name"]);
            for object in left.lines().filter(|l| !l.trim().is_empty()) {
                let _ = cluster.kubectl_status(&[
                    "patch",
                    object,
                    "-n",
                    ns,
                    "--type=merge",
                    "-p",
                    r#"{"metadata":{"finalizers":null}}"#,
                ]);
            }
            let (ok, _, err) = cluster.kubectl_status(&[
                "delete",
                "namespace",
                &namespace.name,
                "--ignore-not-found",
                "--timeout=120s",
            ]);
            if !ok && !std::thread::panicking() {
                panic!("deleting namespace {}: {err}", namespace.name);
            }
        }
    }

    /// Every request the sandbox recorded (sandbox only).
    pub fn requests(&self) -> Vec<serde_json::Value> {
        self.sandbox_only("requests()").requests()
    }

    /// Clears the sandbox's recorder (sandbox only).
    pub fn clear_requests(&self) {
        self.sandbox_only("clear_requests()").clear_requests();
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        self.delete_namespace();
    }
}
