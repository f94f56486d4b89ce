//! A stand-in for a kubelet (and the scheduler) on a real control plane without containers:
//! `kube-sandbox kubelet-sim`. It registers one fake Node, keeps it healthy (its Lease in
//! `kube-node-lease` renewed and its `Ready` condition heartbeat refreshed, as a kubelet does, so
//! the node lifecycle controller never taints it), binds every unscheduled Pod to it through the
//! `pods/binding` subresource (what kube-scheduler does), reports bound Pods `Running` and
//! `Ready` with one running status per container (what a kubelet does once the containers
//! start), and finishes the deletion of terminating Pods with a zero grace period (a kubelet's
//! last step after the containers stopped). With that, the real kube-controller-manager turns
//! Deployments → ReplicaSets → Pods and reports the Deployments `Available`; namespaces with
//! Pods can terminate.
//!
//! Only a `kube::Client` user: it works against any API server. Nothing runs; Pods never fail.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher;
use serde_json::{Value, json};

/// Field manager of the stand-in's writes.
pub const FIELD_MANAGER: &str = "kube-sandbox-kubelet-sim";

/// Errors of the kubelet stand-in.
#[derive(Debug, thiserror::Error)]
pub enum KubeletSimError {
    /// An API call failed.
    #[error("{action}: {source}")]
    Kube {
        /// What was being done.
        action: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// The Pod watch ended.
    #[error("the pod watch ended: {0}")]
    Watch(String),
}

fn kube_err(action: impl Into<String>) -> impl FnOnce(kube::Error) -> KubeletSimError {
    let action = action.into();
    move |source| KubeletSimError::Kube { action, source }
}

/// What the stand-in does.
#[derive(Debug, Clone)]
pub struct KubeletSimConfig {
    /// The fake Node's name.
    pub node_name: String,
    /// How often the Lease is renewed and the `Ready` heartbeat refreshed (a kubelet: 10 s).
    pub heartbeat: Duration,
}

impl Default for KubeletSimConfig {
    fn default() -> Self {
        Self {
            node_name: "fake-node".into(),
            heartbeat: Duration::from_secs(10),
        }
    }
}

fn now_time() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn now_micro() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// The Node object (labels a kubelet sets; no taints).
pub fn node_object(name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/os": "linux",
                "beta.kubernetes.io/arch": "amd64",
                "node.kubernetes.io/instance-type": "kube-sandbox-fake",
            },
            "annotations": { "kube-sandbox.fluxrs.dev/fake": "true" },
        },
        "spec": {},
    })
}

/// The Node status a healthy kubelet reports, heartbeats set to now.
pub fn node_status(name: &str) -> Value {
    let now = now_time();
    let cond = |type_: &str, status: &str, reason: &str, message: &str| {
        json!({
            "type": type_, "status": status, "reason": reason, "message": message,
            "lastHeartbeatTime": now, "lastTransitionTime": now,
        })
    };
    json!({
        "status": {
            "capacity": { "cpu": "32", "memory": "64Gi", "pods": "1000", "ephemeral-storage": "200Gi" },
            "allocatable": { "cpu": "32", "memory": "64Gi", "pods": "1000", "ephemeral-storage": "200Gi" },
            "conditions": [
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                cond("Ready", "True", "KubeletReady", "kube-sandbox kubelet-sim: no containers run"),
            ],
            "addresses": [
                { "type": "InternalIP", "address": "127.0.0.1" },
                { "type": "Hostname", "address": name },
            ],
            "daemonEndpoints": { "kubeletEndpoint": { "Port": 0 } },
            "nodeInfo": {
                "machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": "",
                "osImage": "kube-sandbox", "containerRuntimeVersion": "fake://0",
                "kubeletVersion": "v0.0.0-fake", "kubeProxyVersion": "",
                "operatingSystem": "linux", "architecture": "amd64",
            },
        }
    })
}

/// The status a kubelet reports for a Pod whose containers all run and are ready.
pub fn ready_pod_status(pod: &Pod, pod_ip: &str) -> Value {
    let now = now_time();
    let spec = pod.spec.clone().unwrap_or_default();
    let running = |c: &k8s_openapi::api::core::v1::Container| {
        json!({
            "name": c.name,
            "image": c.image.clone().unwrap_or_default(),
            "imageID": "",
            "containerID": format!("fake://{}", c.name),
            "ready": true,
            "started": true,
            "restartCount": 0,
            "state": { "running": { "startedAt": now } },
        })
    };
    let init: Vec<Value> = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| {
            json!({
                "name": c.name,
                "image": c.image.clone().unwrap_or_default(),
                "imageID": "",
                "containerID": format!("fake://{}", c.name),
                "ready": true,
                "restartCount": 0,
                "state": { "terminated": { "exitCode": 0, "reason": "Completed",
                    "startedAt": now, "finishedAt": now } },
            })
        })
        .collect();
    let cond = |type_: &str| json!({ "type": type_, "status": "True", "lastTransitionTime": now });
    json!({
        "status": {
            "phase": "Running",
            "conditions": [
                cond("PodReadyToStartContainers"), cond("Initialized"), cond("Ready"),
                cond("ContainersReady"), cond("PodScheduled"),
            ],
            "hostIP": "127.0.0.1",
            "hostIPs": [{ "ip": "127.0.0.1" }],
            "podIP": pod_ip,
            "podIPs": [{ "ip": pod_ip }],
            "startTime": now,
            "initContainerStatuses": init,
            "containerStatuses": spec.containers.iter().map(running).collect::<Vec<_>>(),
        }
    })
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Creates (or keeps) the Node and reports it healthy; creates the Lease.
async fn register_node(client: &kube::Client, name: &str) -> Result<(), KubeletSimError> {
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    let pp = PatchParams::apply(FIELD_MANAGER).force();
    nodes
        .patch(name, &pp, &Patch::Apply(node_object(name)))
        .await
        .map_err(kube_err(format!("registering node {name}")))?;
    heartbeat(client, name).await
}

/// Renews the Lease and refreshes the Node's conditions.
async fn heartbeat(client: &kube::Client, name: &str) -> Result<(), KubeletSimError> {
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    nodes
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Strategic(node_status(name)),
        )
        .await
        .map_err(kube_err(format!("updating the status of node {name}")))?;
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client.clone(), "kube-node-lease");
    let lease = json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": { "name": name, "namespace": "kube-node-lease" },
        "spec": { "holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": now_micro() },
    });
    leases
        .patch(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(lease),
        )
        .await
        .map_err(kube_err(format!("renewing the lease of node {name}")))?;
    Ok(())
}

/// Does what a scheduler and a kubelet would do for this Pod now.
async fn handle_pod(
    client: &kube::Client,
    node: &str,
    pod: &Pod,
    ips: &mut BTreeMap<String, String>,
) -> Result<(), KubeletSimError> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let key = format!("{ns}/{name}");
    let spec = pod.spec.clone().unwrap_or_default();
    if pod.metadata.deletion_timestamp.is_some() {
        ips.remove(&key);
        // The containers "stopped": finish the graceful deletion as the kubelet does.
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: pod
                .metadata
                .uid
                .clone()
                .map(|uid| kube::api::Preconditions {
                    uid: Some(uid),
                    resource_version: None,
                }),
            ..DeleteParams::default()
        };
        return match api.delete(&name, &dp).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
            Err(e) => Err(kube_err(format!("deleting terminating pod {key}"))(e)),
        };
    }
    match spec.node_name.as_deref() {
        None | Some("") => {
            let binding = json!({
                "apiVersion": "v1",
                "kind": "Binding",
                "metadata": { "name": name, "namespace": ns },
                "target": { "apiVersion": "v1", "kind": "Node", "name": node },
            });
            match api
                .create_subresource::<Value, Value>(
                    "binding",
                    &name,
                    &PostParams::default(),
                    &binding,
                )
                .await
            {
                Ok(_) => Ok(()),
                // Already bound (a racing event) or gone.
                Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
                Err(e) => Err(kube_err(format!("binding pod {key}"))(e)),
            }
        }
        Some(n) if n == node && !is_ready(pod) => {
            let next = ips.len() + 2;
            let ip = ips
                .entry(key.clone())
                .or_insert_with(|| format!("10.244.{}.{}", (next / 250) % 250, next % 250 + 1))
                .clone();
            match api
                .patch_status(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(ready_pod_status(pod, &ip)),
                )
                .await
            {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
                Err(e) => Err(kube_err(format!("reporting pod {key} ready"))(e)),
            }
        }
        _ => Ok(()),
    }
}

/// Registers the node and runs until the Pod watch fails for good (never, in practice) or the
/// task is aborted. `on_ready` is called once the Node is registered.
pub async fn run(
    client: kube::Client,
    config: KubeletSimConfig,
    on_ready: impl FnOnce(),
) -> Result<(), KubeletSimError> {
    register_node(&client, &config.node_name).await?;
    on_ready();
    let beat_client = client.clone();
    let beat_node = config.node_name.clone();
    let period = config.heartbeat;
    let beats = tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        loop {
            tick.tick().await;
            if let Err(e) = heartbeat(&beat_client, &beat_node).await {
                tracing::warn!(error = %e, "node heartbeat failed");
            }
        }
    });
    let pods: Api<Pod> = Api::all(client.clone());
    let mut stream = watcher(pods, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut ips = BTreeMap::new();
    while let Some(event) = stream.next().await {
        let pods: Vec<Pod> = match event {
            Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => vec![p],
            Ok(_) => continue,
            Err(e) => {
                tracing::debug!(error = %e, "pod watch error (retried)");
                continue;
            }
        };
        for pod in pods {
            // A failure here is retried on the pod's next event; the resync of a relist
            // re-delivers every pod.
            if let Err(e) = handle_pod(&client, &config.node_name, &pod, &mut ips).await {
                tracing::warn!(error = %e, "kubelet-sim");
                let c = client.clone();
                let node = config.node_name.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    let mut ips = BTreeMap::new();
                    if let Err(e) = handle_pod(&c, &node, &pod, &mut ips).await {
                        tracing::warn!(error = %e, "kubelet-sim retry");
                    }
                });
            }
        }
    }
    beats.abort();
    Err(KubeletSimError::Watch("stream closed".into()))
}
