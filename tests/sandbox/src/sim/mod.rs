//! Flux Operator simulator: a controller that talks to the sandbox through a `kube::Client`,
//! following the operator's documented behaviour (`flux-operator.md` §1–3, kube-sandbox §4.5).
//!
//! It reconciles only while a Deployment `flux-operator` exists in a namespace, is not being
//! deleted and is `Available`: the FluxInstance `flux` in that namespace ([`instance`]),
//! ResourceSets in every namespace ([`resourceset`]) and ResourceSetInputProviders
//! ([`inputprovider`]), and it writes the FluxReport ([`report`]). A second FluxInstance
//! reconciler ([`artifact`]) requests a reconciliation when the simulated digest of
//! `spec.distribution.artifact` changes ([`SimConfig::artifacts`]). It writes as field manager
//! `flux-operator`, status through `/status`. Watches (kube-runtime) drive it; timers are used
//! only for configured delays, dependency re-checks, retries and the reporting interval.
//!
//! Test hooks, all namespaced under `sandbox.fluxrs.dev`:
//! - annotation `sandbox.fluxrs.dev/fail: BuildFailed:<message>`,
//!   `HealthCheckFailed:<message>` or (FluxInstance only) `ArtifactFailed:<message>` on a
//!   FluxInstance or ResourceSet scripts that failure;
//! - annotation `sandbox.fluxrs.dev/ready-delay: <duration>` delays readiness (slow readiness);
//! - the same three from Rust through [`Script`] (in [`SimConfig::script`]), at runtime.
//!
//! Pure parts: [`version`], [`inventory`], [`template`], [`build`], [`profiles`], [`rbac`],
//! [`shards`], [`status`]; I/O in [`ops`], [`instance`], [`migrate`], [`artifact`],
//! [`resourceset`]. Depends on nothing else in the crate: it only needs a
//! `kube::Client`, so it runs against the in-process sandbox or any API server.

pub mod artifact;
pub mod build;
pub mod fixtures;
pub mod githubapp;
pub mod inputprovider;
pub mod instance;
pub mod inventory;
pub mod migrate;
pub mod ops;
pub mod profiles;
pub mod rbac;
pub mod real_manifests;
pub mod report;
pub mod resourceset;
pub mod shards;
pub mod status;
pub mod sync;
pub mod template;
pub mod version;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

pub use version::Version;

/// Field manager of every write the simulator makes.
pub const FIELD_MANAGER: &str = "flux-operator";
/// The finalizer the operator adds to FluxInstances and ResourceSets.
pub const FINALIZER: &str = "fluxcd.controlplane.io/finalizer";
/// Annotation scripting a failure (`BuildFailed:<msg>`, `HealthCheckFailed:<msg>`).
pub const FAIL_ANNOTATION: &str = "sandbox.fluxrs.dev/fail";
/// Annotation delaying readiness by a Go duration (`2s`).
pub const READY_DELAY_ANNOTATION: &str = "sandbox.fluxrs.dev/ready-delay";

/// A scripted failure or delay for one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The build fails: `Ready=False`, `Stalled=True`, reason `BuildFailed`, this message.
    BuildFailed(String),
    /// The health check fails: `Ready=False`, reason `HealthCheckFailed`, this message; retried.
    HealthCheckFailed(String),
    /// (FluxInstance) The distribution artifact cannot be pulled: `Ready=False`, reason
    /// `ArtifactFailed`, `Reconciling` `ProgressingWithRetry`; retried.
    ArtifactFailed(String),
    /// Readiness is reported only after this delay (after the objects are applied).
    SlowReadiness(Duration),
}

impl Failure {
    /// Parses the value of [`FAIL_ANNOTATION`].
    pub fn parse_annotation(v: &str) -> Option<Failure> {
        let (kind, msg) = v.split_once(':').unwrap_or((v, ""));
        match kind.trim() {
            "BuildFailed" => Some(Failure::BuildFailed(msg.trim().to_string())),
            "HealthCheckFailed" => Some(Failure::HealthCheckFailed(msg.trim().to_string())),
            "ArtifactFailed" => Some(Failure::ArtifactFailed(msg.trim().to_string())),
            _ => None,
        }
    }
}

type ScriptKey = (String, String, String);

/// Runtime scripting of failures, shared between a test and the running simulator. Changing it
/// triggers a reconcile of every object.
#[derive(Clone)]
pub struct Script {
    entries: Arc<Mutex<HashMap<ScriptKey, Failure>>>,
    changed: tokio::sync::watch::Sender<u64>,
}

impl Default for Script {
    fn default() -> Self {
        Self {
            entries: Arc::default(),
            changed: tokio::sync::watch::Sender::new(0),
        }
    }
}

impl std::fmt::Debug for Script {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Script").finish_non_exhaustive()
    }
}

impl Script {
    /// Scripts `failure` for the object `kind` (`FluxInstance`, `ResourceSet`) `namespace/name`.
    pub fn set(&self, kind: &str, namespace: &str, name: &str, failure: Failure) {
        if let Ok(mut m) = self.entries.lock() {
            m.insert((kind.into(), namespace.into(), name.into()), failure);
        }
        self.changed.send_modify(|n| *n += 1);
    }

    /// Removes the scripted failure of an object.
    pub fn clear(&self, kind: &str, namespace: &str, name: &str) {
        if let Ok(mut m) = self.entries.lock() {
            m.remove(&(kind.into(), namespace.into(), name.into()));
        }
        self.changed.send_modify(|n| *n += 1);
    }

    /// The failures scripted for an object, from [`Script`] and from its annotations.
    pub fn failures_for(&self, kind: &str, obj: &Value) -> Vec<Failure> {
        let ns = obj["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = obj["metadata"]["name"].as_str().unwrap_or_default();
        let mut out = Vec::new();
        if let Ok(m) = self.entries.lock()
            && let Some(f) = m.get(&(kind.to_string(), ns.to_string(), name.to_string()))
        {
            out.push(f.clone());
        }
        if let Some(f) = ops::annotation(obj, FAIL_ANNOTATION).and_then(Failure::parse_annotation) {
            out.push(f);
        }
        if let Some(d) =
            ops::annotation(obj, READY_DELAY_ANNOTATION).and_then(status::parse_duration)
        {
            out.push(Failure::SlowReadiness(d));
        }
        out
    }

    /// Increases on every change.
    pub fn generation(&self) -> u64 {
        *self.changed.borrow()
    }

    pub(crate) fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

/// Configuration of the simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The Flux versions "embedded" in the simulated operator.
    pub flux_versions: Vec<Version>,
    /// Delay between the steps of a reconciliation (progress, apply, ready) and of an uninstall.
    pub step_delay: Duration,
    /// Health-check timeout when the object has no `fluxcd.controlplane.io/reconcileTimeout`.
    pub health_timeout: Duration,
    /// How often a ResourceSet whose dependencies are not ready is re-checked (operator: 5s).
    pub dependency_requeue: Duration,
    /// Retry interval after a failed reconciliation.
    pub retry_interval: Duration,
    /// Timeout of each wait during uninstall (Deployments gone, CRDs gone).
    pub uninstall_timeout: Duration,
    /// Runtime failure scripting.
    pub script: Script,
    /// Whether the simulator also plays source- and kustomize-controller ([`sync`]); off when
    /// the real controllers run (`kube-sandbox operator-sim --no-sync`).
    pub sync: bool,
    /// The real Flux install objects to apply instead of the simulator's own
    /// ([`real_manifests`]; `--flux-manifests`).
    pub real_manifests: Option<Arc<real_manifests::RealManifests>>,
    /// The operator's `OVERRIDE_MANAGERS`: extra field managers it takes ownership from
    /// (exact name, Apply and Update).
    pub override_field_managers: Vec<String>,
    /// The operator's `DEFAULT_SERVICE_ACCOUNT`: the identity of ResourceSets without
    /// `serviceAccountName`.
    pub default_service_account: Option<String>,
    /// The kubeconfig the simulator runs with (standalone), used to build clients that
    /// impersonate a ResourceSet's service account. `None` in-process.
    pub kube_config: Option<kube::Config>,
    /// The simulated registry of distribution artifacts (`spec.distribution.artifact`):
    /// [`artifact::Artifacts::publish`] changes a digest at runtime.
    pub artifacts: artifact::Artifacts,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            flux_versions: version::default_embedded_versions(),
            step_delay: Duration::from_millis(50),
            health_timeout: Duration::from_secs(300),
            dependency_requeue: Duration::from_millis(500),
            retry_interval: Duration::from_secs(1),
            uninstall_timeout: Duration::from_secs(30),
            script: Script::default(),
            sync: true,
            real_manifests: None,
            override_field_managers: Vec::new(),
            default_service_account: None,
            kube_config: None,
            artifacts: artifact::Artifacts::default(),
        }
    }
}

/// Starts the simulator on a client; it runs until the task is aborted.
pub fn spawn(client: kube::Client, config: SimConfig) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let sync = config.sync;
        let ctx = Arc::new(instance::Ctx::new(client, config));
        let sync_task = async {
            if sync {
                sync::run(ctx.clone()).await;
            }
        };
        futures::join!(
            instance::run(ctx.clone()),
            artifact::run(ctx.clone()),
            resourceset::run(ctx.clone()),
            inputprovider::run(ctx.clone()),
            report::run(ctx.clone()),
            sync_task
        );
    })
}
