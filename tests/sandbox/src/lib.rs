//! kube-sandbox: a Kubernetes-API-compatible test server with a simulated Flux Operator.
//!
//! The generic server (no Flux knowledge) is one axum [`Router`](axum::Router) over an in-memory
//! store, usable in two modes that share the store:
//! - in-process: [`Sandbox::client`] gives a `kube::Client` over the router (no socket, no TLS);
//! - socket: [`Sandbox::serve_tls`] serves HTTPS on loopback with a generated CA, token and
//!   client-certificate auth, and writes kubeconfigs (see [`Served`]).
//!
//! Modules in reading order: [`registry`] (served types), `store` (object lifecycle and the write
//! pipeline), [`ssa`] (server-side apply), [`schema`] (pruning, defaulting, validation, CEL),
//! [`patch`], [`selectors`], `http` (routing, discovery, watch), `controllers` (CRD
//! establishment, namespace termination, garbage collection, deployment status), [`faults`],
//! [`recorder`], [`tls`], [`table`], [`errors`]; and [`sim`], the Flux Operator simulator, which
//! is only a `kube::Client` user of the server.

pub mod errors;
pub mod fault_proxy;
pub mod faults;
pub mod git_http;
pub mod kubelet_sim;
pub mod patch;
pub mod recorder;
pub mod registry;
pub mod schema;
pub mod selectors;
pub mod sim;
pub mod ssa;
pub mod standalone;
pub mod table;
pub mod tls;

mod builtins;
mod controllers;
mod http;
mod store;

pub use faults::{FaultAction, FaultRule, FaultSettings, Faults};
pub use recorder::{RecordedRequest, Recorder};
pub use store::{EventType, StoreEvent};
pub use tls::{Credentials, KubeconfigOptions, Served};

use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// A running sandbox API server. Cheap to clone; all clones share one store.
#[derive(Clone)]
pub struct Sandbox {
    inner: Arc<store::Inner>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("resource_version", &self.resource_version())
            .finish()
    }
}

/// Something started with the sandbox (e.g. a controller using [`Sandbox::client`]).
pub trait Controller: Send + 'static {
    /// Starts the controller; called once by [`SandboxBuilder::build`].
    fn start(self: Box<Self>, sandbox: Sandbox);
}

impl<F: FnOnce(Sandbox) + Send + 'static> Controller for F {
    fn start(self: Box<Self>, sandbox: Sandbox) {
        (*self)(sandbox)
    }
}

/// Configures a [`Sandbox`].
pub struct SandboxBuilder {
    crd_established_delay: Duration,
    deployment_available_delay: Duration,
    watch_log_capacity: usize,
    bookmark_interval: Duration,
    controllers: Vec<Box<dyn Controller>>,
    operator_sim: Option<sim::SimConfig>,
}

impl std::fmt::Debug for SandboxBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxBuilder")
            .field("crd_established_delay", &self.crd_established_delay)
            .field(
                "deployment_available_delay",
                &self.deployment_available_delay,
            )
            .field("watch_log_capacity", &self.watch_log_capacity)
            .finish()
    }
}

impl Default for SandboxBuilder {
    fn default() -> Self {
        SandboxBuilder {
            crd_established_delay: Duration::from_millis(50),
            deployment_available_delay: Duration::from_millis(100),
            watch_log_capacity: 10_000,
            bookmark_interval: Duration::from_secs(1),
            controllers: Vec::new(),
            operator_sim: None,
        }
    }
}

impl SandboxBuilder {
    /// Delay between creating a CRD and it becoming `Established` (served). Default 50 ms;
    /// zero establishes it synchronously on creation.
    pub fn crd_established_delay(mut self, d: Duration) -> Self {
        self.crd_established_delay = d;
        self
    }

    /// Delay before the deployment status controller marks a Deployment generation
    /// `Available`. Default 100 ms.
    pub fn deployment_available_delay(mut self, d: Duration) -> Self {
        self.deployment_available_delay = d;
        self
    }

    /// Number of events kept for watch resumption; older resourceVersions get `410 Expired`.
    /// Default 10 000.
    pub fn watch_log_capacity(mut self, n: usize) -> Self {
        self.watch_log_capacity = n;
        self
    }

    /// Interval of BOOKMARK events on watches that allow them. Default 1 s.
    pub fn bookmark_interval(mut self, d: Duration) -> Self {
        self.bookmark_interval = d;
        self
    }

    /// Adds a controller started after build.
    pub fn controller(mut self, c: Box<dyn Controller>) -> Self {
        self.controllers.push(c);
        self
    }

    /// Runs the Flux Operator simulator with an in-process client after build.
    pub fn operator_sim(mut self, config: sim::SimConfig) -> Self {
        self.operator_sim = Some(config);
        self
    }

    /// Builds and starts the sandbox. Must be called inside a tokio runtime.
    pub fn build(self) -> Sandbox {
        let (events, _) = tokio::sync::broadcast::channel(16_384);
        let (ctrl, ctrl_rx) = tokio::sync::mpsc::unbounded_channel();
        let inner = Arc::new(store::Inner {
            state: std::sync::Mutex::new(store::State {
                rv: store::RV_START,
                objects: Default::default(),
                log: Default::default(),
                compacted: 0,
                crds: Default::default(),
            }),
            builtins: registry::builtins(),
            config: store::Config {
                crd_established_delay: self.crd_established_delay,
                deployment_available_delay: self.deployment_available_delay,
                watch_log_capacity: self.watch_log_capacity,
                bookmark_interval: self.bookmark_interval,
            },
            events,
            ctrl,
            recorder: Recorder::default(),
            faults: Faults::default(),
        });
        controllers::spawn(Arc::downgrade(&inner), ctrl_rx);
        let sb = Sandbox { inner };
        sb.seed();
        for c in self.controllers {
            c.start(sb.clone());
        }
        if let Some(cfg) = self.operator_sim {
            sim::spawn(sb.client(), cfg);
        }
        sb
    }
}

impl Sandbox {
    /// A builder with default settings.
    pub fn builder() -> SandboxBuilder {
        SandboxBuilder::default()
    }

    /// Creates the namespaces every cluster has: default, kube-system, kube-public, kube-node-lease.
    fn seed(&self) {
        let Some(rt) = self.inner.builtin("namespaces") else {
            return;
        };
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let t = store::Target {
                rt: rt.clone(),
                ns: None,
                name: None,
                sub: None,
            };
            let body = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            let o = store::WriteOpts {
                manager: "kube-apiserver".into(),
                ..Default::default()
            };
            let _ = self.inner.create(&t, body, &o);
        }
    }

    /// The HTTP router serving the Kubernetes API (and the `/sandbox/...` admin endpoints).
    pub fn router(&self) -> axum::Router {
        axum::Router::new()
            .fallback(http::handle)
            .with_state(self.inner.clone())
    }

    /// An in-process `kube::Client` (default namespace `default`).
    pub fn client(&self) -> kube::Client {
        kube::Client::new(self.router(), "default")
    }

    /// Serves the sandbox over HTTPS on `listen` (port 0 picks a free port).
    pub async fn serve_tls(&self, listen: std::net::SocketAddr) -> anyhow::Result<Served> {
        Ok(tls::serve(self.router(), listen).await?)
    }

    /// The request recorder.
    pub fn recorder(&self) -> &Recorder {
        &self.inner.recorder
    }

    /// Fault injection settings.
    pub fn faults(&self) -> &Faults {
        &self.inner.faults
    }

    /// The current (latest) resourceVersion of the store.
    pub fn resource_version(&self) -> u64 {
        self.inner.lock().rv
    }

    /// Every stored object (storage form, with managedFields), sorted by group, resource,
    /// namespace and name. Useful to print when a test fails.
    pub fn dump(&self) -> Vec<Value> {
        let mut all = self.inner.all_objects(None);
        all.sort_by(|(a, x), (b, y)| {
            let k = |o: &Value| {
                (
                    o.pointer("/metadata/namespace")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    o.pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                )
            };
            (a, k(x)).cmp(&(b, k(y)))
        });
        all.into_iter().map(|(_, v)| v).collect()
    }

    /// One stored object by group ("" for core), plural, namespace ("" for cluster-scoped) and
    /// name, bypassing HTTP, faults and the recorder.
    pub fn object(&self, group: &str, plural: &str, namespace: &str, name: &str) -> Option<Value> {
        let st = self.inner.lock();
        let key = (namespace.to_string(), name.to_string());
        st.objects
            .get(&(group.to_string(), plural.to_string()))
            .and_then(|m| m.get(&key))
            .cloned()
    }

    /// All stored objects of a group/plural.
    pub fn objects(&self, group: &str, plural: &str) -> Vec<Value> {
        let st = self.inner.lock();
        st.objects
            .get(&(group.to_string(), plural.to_string()))
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Subscribes to committed store events (for tests that want to count writes or events).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<StoreEvent>> {
        self.inner.events.subscribe()
    }
}
