//! The FluxInstance profiles, as the operator's builder writes them (upstream
//! `internal/builder/profiles.go`, `templates.go` and `internal/controller/
//! fluxinstance_controller.go`, v0.58.1), in the operator's order: `cluster.type`, then
//! `cluster.size`, then `cluster.multitenant`; `storage` besides.
//!
//! - `cluster.type = openshift` removes the pod `securityContext` and the manager container's
//!   `seccompProfile` and `runAsNonRoot` from every Deployment, and the
//!   `pod-security.kubernetes.io/warn` and `warn-version` labels from the Namespace (other
//!   types change nothing).
//! - `cluster.size`: every Deployment's pod template gets the label
//!   `app.kubernetes.io/part-of: flux` and the annotation
//!   `cluster-autoscaler.kubernetes.io/safe-to-evict: "true"` (whatever the size, even unset);
//!   `small`, `medium` and `large` also annotate the Deployment
//!   `fluxcd.controlplane.io/profile: <size>`, replace the manager's `resources` and append
//!   concurrency and cache flags ([`SIZES`]).
//! - `cluster.multitenant` adds `--no-cross-namespace-refs=true` to the kustomize, helm,
//!   notification and image controllers, `--no-remote-bases=true` to kustomize-controller,
//!   `--default-service-account=<cluster.tenantDefaultServiceAccount or default>` to kustomize-
//!   and helm-controller, and `serviceAccountName: kustomize-controller` to the sync
//!   Kustomization.
//! - `storage` adds the PersistentVolumeClaim `source-controller` (ReadWriteOnce,
//!   `storage.class`, `storage.size`) and mounts it at `/data` in source-controller.
//!
//! Pure code.

use serde_json::{Value, json};

use super::shards::original_name;

/// What a `cluster.size` profile writes into one group of Deployments: the `resources` that
/// replace the manager's (when any) and the flags appended to its `args`.
struct SizePatch {
    /// The Deployments it targets (`None`: every one).
    targets: Option<&'static [&'static str]>,
    /// `(cpu request, memory request, cpu limit, memory limit)`.
    resources: Option<(&'static str, &'static str, &'static str, &'static str)>,
    args: &'static [&'static str],
}

const KUSTOMIZE_HELM: &[&str] = &["kustomize-controller", "helm-controller"];
const SOURCE: &[&str] = &["source-controller"];
const KUSTOMIZE_HELM_SOURCE: &[&str] = &[
    "kustomize-controller",
    "helm-controller",
    "source-controller",
];

/// The `small`, `medium` and `large` profiles' patches, in the operator's order.
const SIZES: [(&str, &[SizePatch]); 3] = [
    (
        "small",
        &[
            SizePatch {
                targets: None,
                resources: Some(("100m", "64Mi", "1000m", "512Mi")),
                args: &[],
            },
            SizePatch {
                targets: Some(KUSTOMIZE_HELM),
                resources: None,
                args: &["--concurrent=5", "--requeue-dependency=10s"],
            },
            SizePatch {
                targets: Some(SOURCE),
                resources: None,
                args: &[
                    "--helm-cache-max-size=10",
                    "--helm-cache-ttl=720m",
                    "--helm-cache-purge-interval=60m",
                ],
            },
        ],
    ),
    (
        "medium",
        &[
            SizePatch {
                targets: Some(KUSTOMIZE_HELM_SOURCE),
                resources: Some(("100m", "128Mi", "2000m", "1Gi")),
                args: &[],
            },
            SizePatch {
                targets: Some(KUSTOMIZE_HELM),
                resources: None,
                args: &["--concurrent=10", "--requeue-dependency=5s"],
            },
            SizePatch {
                targets: Some(SOURCE),
                resources: None,
                args: &[
                    "--helm-cache-max-size=50",
                    "--helm-cache-ttl=720m",
                    "--helm-cache-purge-interval=60m",
                    "--concurrent=5",
                ],
            },
        ],
    ),
    (
        "large",
        &[
            SizePatch {
                targets: Some(KUSTOMIZE_HELM),
                resources: Some(("100m", "256Mi", "3000m", "3Gi")),
                args: &["--concurrent=20", "--requeue-dependency=5s"],
            },
            SizePatch {
                targets: Some(SOURCE),
                resources: Some(("100m", "256Mi", "2000m", "2Gi")),
                args: &[
                    "--helm-cache-max-size=100",
                    "--helm-cache-ttl=720m",
                    "--helm-cache-purge-interval=60m",
                    "--concurrent=10",
                ],
            },
        ],
    ),
];

/// Applies every profile of `spec` to the built objects, in the operator's order.
pub(crate) fn apply_profiles(spec: &Value, objects: &mut [Value]) {
    if spec["cluster"]["type"].as_str() == Some("openshift") {
        openshift(objects);
    }
    size(
        spec["cluster"]["size"].as_str().unwrap_or_default(),
        objects,
    );
    multitenant_and_storage(spec, objects);
}

/// The `openshift` cluster type.
fn openshift(objects: &mut [Value]) {
    for o in objects.iter_mut() {
        match o["kind"].as_str() {
            Some("Deployment") => {
                remove(&mut o["spec"]["template"]["spec"], "securityContext");
                let context = &mut manager(o)["securityContext"];
                remove(context, "seccompProfile");
                remove(context, "runAsNonRoot");
            }
            Some("Namespace") => {
                let labels = &mut o["metadata"]["labels"];
                remove(labels, "pod-security.kubernetes.io/warn");
                remove(labels, "pod-security.kubernetes.io/warn-version");
            }
            _ => {}
        }
    }
}

/// The `cluster.size` profile (`""` or any other value: the default one).
fn size(size: &str, objects: &mut [Value]) {
    let patches = SIZES
        .iter()
        .find(|(name, _)| *name == size)
        .map(|(_, patches)| *patches);
    for o in objects.iter_mut() {
        if o["kind"] != "Deployment" {
            continue;
        }
        // kustomize matches the original name too: the size patches reach the shards.
        let name = original_name(o).to_owned();
        let template = &mut o["spec"]["template"]["metadata"];
        template["labels"]["app.kubernetes.io/part-of"] = json!("flux");
        template["annotations"]["cluster-autoscaler.kubernetes.io/safe-to-evict"] = json!("true");
        let Some(patches) = patches else { continue };
        o["metadata"]["annotations"]["fluxcd.controlplane.io/profile"] = json!(size);
        for patch in patches {
            if patch.targets.is_some_and(|t| !t.contains(&name.as_str())) {
                continue;
            }
            if let Some((cpu, memory, cpu_limit, memory_limit)) = patch.resources {
                manager(o)["resources"] = json!({
                    "requests": {"cpu": cpu, "memory": memory},
                    "limits": {"cpu": cpu_limit, "memory": memory_limit},
                });
            }
            for arg in patch.args {
                push_to(&mut manager(o)["args"], json!(arg));
            }
        }
    }
}

/// Removes `key` from an object value (nothing when absent).
fn remove(object: &mut Value, key: &str) {
    if let Some(map) = object.as_object_mut() {
        map.remove(key);
    }
}

/// The controllers `cluster.multitenant` forbids cross-namespace references to.
const NO_CROSS_NAMESPACE_REFS: [&str; 6] = [
    "kustomize-controller",
    "helm-controller",
    "notification-controller",
    "image-reflector-controller",
    "image-automation-controller",
    "source-watcher",
];

/// The first container of a Deployment's pod template.
fn manager(deployment: &mut Value) -> &mut Value {
    &mut deployment["spec"]["template"]["spec"]["containers"][0]
}

/// Appends to a list field, creating it when absent.
fn push_to(list: &mut Value, item: Value) {
    if !list.is_array() {
        *list = json!([]);
    }
    if let Some(items) = list.as_array_mut() {
        items.push(item);
    }
}

/// The `storage` PersistentVolumeClaim.
pub(crate) fn storage_claim(storage: &Value, namespace: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "source-controller", "namespace": namespace},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": storage["class"].clone(),
            "resources": {"requests": {"storage": storage["size"].clone()}},
        },
    })
}

/// The `cluster.multitenant` and `storage` profiles.
fn multitenant_and_storage(spec: &Value, objects: &mut [Value]) {
    let multitenant = spec["cluster"]["multitenant"].as_bool() == Some(true);
    let tenant_account = spec["cluster"]["tenantDefaultServiceAccount"]
        .as_str()
        .filter(|a| !a.is_empty())
        .unwrap_or("default");
    let storage = spec["storage"].is_object();
    for o in objects.iter_mut() {
        let kind = o["kind"].as_str().unwrap_or_default().to_owned();
        let name = o["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        // The multitenant patches reach the shards (kustomize matches the original name); the
        // storage patch excludes them by annotation upstream, so it uses the current name.
        let original = original_name(o).to_owned();
        match kind.as_str() {
            "Deployment" if multitenant => {
                let mut args = Vec::new();
                if NO_CROSS_NAMESPACE_REFS.contains(&original.as_str()) {
                    args.push("--no-cross-namespace-refs=true".to_owned());
                }
                if original == "kustomize-controller" {
                    args.push("--no-remote-bases=true".to_owned());
                }
                if original == "kustomize-controller" || original == "helm-controller" {
                    args.push(format!("--default-service-account={tenant_account}"));
                }
                for arg in args {
                    push_to(&mut manager(o)["args"], Value::String(arg));
                }
            }
            "Kustomization" if multitenant => {
                o["spec"]["serviceAccountName"] = json!("kustomize-controller");
            }
            _ => {}
        }
        if storage && kind == "Deployment" && name == "source-controller" {
            push_to(
                &mut o["spec"]["template"]["spec"]["volumes"],
                json!({"name": "persistent-data",
                       "persistentVolumeClaim": {"claimName": "source-controller"}}),
            );
            let mount = json!({"name": "persistent-data", "mountPath": "/data"});
            let mounts = &mut manager(o)["volumeMounts"];
            match mounts.as_array_mut() {
                Some(list) if !list.is_empty() => list[0] = mount,
                _ => *mounts = json!([mount]),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(name: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": name, "namespace": "flux-system"},
               "spec": {"template": {"metadata": {"labels": {"app": name}},
                        "spec": {"securityContext": {"fsGroup": 1337},
                                 "containers": [{"name": "manager", "args": ["--log-level=info"],
                                                 "resources": {"limits": {"cpu": "1"}},
                                                 "securityContext": {"runAsNonRoot": true,
                                                     "seccompProfile": {"type": "RuntimeDefault"},
                                                     "readOnlyRootFilesystem": true}}]}}}})
    }

    fn namespace() -> Value {
        json!({"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": "flux-system", "labels": {
                   "pod-security.kubernetes.io/warn": "restricted",
                   "pod-security.kubernetes.io/warn-version": "latest",
                   "app.kubernetes.io/instance": "flux-system"}}})
    }

    fn built(cluster: Value) -> Vec<Value> {
        let mut objects = vec![
            namespace(),
            deployment("source-controller"),
            deployment("kustomize-controller"),
            deployment("notification-controller"),
        ];
        apply_profiles(&json!({"cluster": cluster}), &mut objects);
        objects
    }

    /// `profiles.go` `profileClusterSizeLarge`, in the order `fluxinstance_controller.go`
    /// appends the profiles (type, size, multitenant): the size's flags come before the
    /// multitenant ones; controllers the size does not target keep their resources.
    #[test]
    fn large_multitenant_follows_the_operator_order() {
        let objects = built(json!({"size": "large", "multitenant": true}));
        let kustomize = &objects[2];
        assert_eq!(
            kustomize["metadata"]["annotations"],
            json!({"fluxcd.controlplane.io/profile": "large"})
        );
        assert_eq!(
            kustomize["spec"]["template"]["metadata"],
            json!({"labels": {"app": "kustomize-controller", "app.kubernetes.io/part-of": "flux"},
                   "annotations": {"cluster-autoscaler.kubernetes.io/safe-to-evict": "true"}})
        );
        let manager = &kustomize["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(
            manager["args"],
            json!([
                "--log-level=info",
                "--concurrent=20",
                "--requeue-dependency=5s",
                "--no-cross-namespace-refs=true",
                "--no-remote-bases=true",
                "--default-service-account=default"
            ])
        );
        assert_eq!(
            manager["resources"],
            json!({"requests": {"cpu": "100m", "memory": "256Mi"},
                   "limits": {"cpu": "3000m", "memory": "3Gi"}})
        );
        let source = &objects[1]["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(
            source["args"],
            json!([
                "--log-level=info",
                "--helm-cache-max-size=100",
                "--helm-cache-ttl=720m",
                "--helm-cache-purge-interval=60m",
                "--concurrent=10"
            ])
        );
        assert_eq!(
            source["resources"]["limits"],
            json!({"cpu": "2000m", "memory": "2Gi"})
        );
        let notification = &objects[3]["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(notification["resources"], json!({"limits": {"cpu": "1"}}));
        assert_eq!(
            notification["args"],
            json!(["--log-level=info", "--no-cross-namespace-refs=true"])
        );
    }

    /// `profileClusterSizeSmall` sets the resources of every Deployment;
    /// `profileClusterSizeMedium` only of source, kustomize and helm.
    #[test]
    fn small_and_medium_target_the_controllers_upstream_names() {
        let limits = |objects: &[Value], i: usize| {
            objects[i]["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"].clone()
        };
        let small = built(json!({"size": "small"}));
        assert_eq!(
            limits(&small, 3),
            json!({"cpu": "1000m", "memory": "512Mi"})
        );
        assert_eq!(
            small[2]["spec"]["template"]["spec"]["containers"][0]["args"],
            json!([
                "--log-level=info",
                "--concurrent=5",
                "--requeue-dependency=10s"
            ])
        );
        let medium = built(json!({"size": "medium"}));
        assert_eq!(limits(&medium, 3), json!({"cpu": "1"}));
        assert_eq!(limits(&medium, 1), json!({"cpu": "2000m", "memory": "1Gi"}));
        assert_eq!(
            medium[1]["spec"]["template"]["spec"]["containers"][0]["args"]
                .as_array()
                .map(Vec::len),
            Some(5)
        );
    }

    /// `profileClusterSizeDefault`: unset (or unknown) sizes only label and annotate the pod
    /// template; no profile annotation, args or resources.
    #[test]
    fn the_default_size_only_labels_the_pod_template() {
        let mut expected = deployment("source-controller");
        expected["spec"]["template"]["metadata"] = json!({
            "labels": {"app": "source-controller", "app.kubernetes.io/part-of": "flux"},
            "annotations": {"cluster-autoscaler.kubernetes.io/safe-to-evict": "true"}});
        assert_eq!(built(json!({}))[1], expected);
        assert_eq!(built(json!({"size": "huge"}))[1], expected);
        assert_eq!(built(json!({}))[0], namespace());
    }

    /// `profileClusterTypeOpenShift`: the security settings OpenShift assigns itself are
    /// removed; other types (`kubernetes`, `aws`, `azure`, `gcp`) change nothing.
    #[test]
    fn openshift_removes_what_the_platform_assigns() {
        let objects = built(json!({"type": "openshift"}));
        let pod = &objects[1]["spec"]["template"]["spec"];
        assert_eq!(pod.get("securityContext"), None);
        assert_eq!(
            pod["containers"][0]["securityContext"],
            json!({"readOnlyRootFilesystem": true})
        );
        assert_eq!(
            objects[0]["metadata"]["labels"],
            json!({"app.kubernetes.io/instance": "flux-system"})
        );
        for other in ["kubernetes", "aws", "azure", "gcp"] {
            let objects = built(json!({"type": other}));
            assert_eq!(objects[0], namespace());
            assert_eq!(
                objects[1]["spec"]["template"]["spec"]["securityContext"],
                json!({"fsGroup": 1337}),
                "{other}"
            );
        }
    }
}
