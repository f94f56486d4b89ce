//! The REAL Flux install objects, for the simulator on a real control plane
//! (`kube-sandbox operator-sim --flux-manifests <dir>`): the CRDs, Deployment and Service of each
//! Flux controller as its own Go module ships them in `config/` (`crd/bases/*.yaml`,
//! `manager/deployment.yaml`, `manager/service.yaml`). `realcluster/build.sh flux-manifests` copies them
//! out of the Go module cache at build time into the layout below; nothing of them is committed.
//!
//! ```text
//! <dir>/flux-version                      the Flux release these controllers belong to (v2.7.5)
//! <dir>/<component>/image-tag             the tag that release ships (v1.7.3)
//! <dir>/<component>/module-version        the module the files come from (v1.7.3; may differ
//!                                         from image-tag where the release's module is not served)
//! <dir>/<component>/crd/*.yaml            config/crd/bases
//! <dir>/<component>/manager/*.yaml        config/manager (deployment.yaml, service.yaml)
//! ```
//!
//! [`RealManifests::overlay`] replaces, for the Flux version it holds, the simulator's own
//! objects of each component it has with the real ones, transformed as the Flux distribution's
//! kustomization does (namespace, `app.kubernetes.io/component`/`part-of` labels, the image at
//! the release's tag, `--events-addr` prepended to the controller's own arguments, the
//! component's ServiceAccount). The simulator then stamps and patches them like every other
//! object. Components without real files (their module is not served) keep the simulator's
//! objects. Pure code apart from [`RealManifests::load`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::fixtures::parse_multi;
use super::version::Version;

/// Errors loading the real manifests.
#[derive(Debug, thiserror::Error)]
pub enum RealManifestsError {
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A file is not what the layout promises.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// One controller's real objects.
#[derive(Debug, Clone, PartialEq)]
pub struct RealComponent {
    /// The image tag the Flux release ships.
    pub image_tag: String,
    /// The version of the Go module the files were taken from.
    pub module_version: String,
    /// `config/crd/bases`, sorted by name.
    pub crds: Vec<Value>,
    /// `config/manager/deployment.yaml`.
    pub deployment: Value,
    /// `config/manager/service.yaml`, when the controller has one.
    pub service: Option<Value>,
}

/// The real install objects of one Flux release, by component.
#[derive(Debug, Clone, PartialEq)]
pub struct RealManifests {
    /// The Flux release.
    pub flux_version: Version,
    /// Components with real files.
    pub components: BTreeMap<String, RealComponent>,
}

fn read(path: &Path) -> Result<String, RealManifestsError> {
    std::fs::read_to_string(path).map_err(|source| RealManifestsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>, RealManifestsError> {
    let entries = std::fs::read_dir(dir).map_err(|source| RealManifestsError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "yaml")
                && p.file_name().is_some_and(|n| n != "kustomization.yaml")
        })
        .collect();
    files.sort();
    Ok(files)
}

fn objects_in(path: &Path) -> Result<Vec<Value>, RealManifestsError> {
    parse_multi(&read(path)?).map_err(|e| RealManifestsError::Invalid {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

impl RealManifests {
    /// Reads the layout described in the module documentation.
    pub fn load(dir: &Path) -> Result<Self, RealManifestsError> {
        let version_file = dir.join("flux-version");
        let flux_version: Version =
            read(&version_file)?
                .trim()
                .parse()
                .map_err(|e| RealManifestsError::Invalid {
                    path: version_file.clone(),
                    message: format!("not a Flux version: {e}"),
                })?;
        let mut components = BTreeMap::new();
        let entries = std::fs::read_dir(dir).map_err(|source| RealManifestsError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let mut crds = Vec::new();
            for f in yaml_files(&path.join("crd"))? {
                crds.extend(objects_in(&f)?);
            }
            crds.sort_by_key(|c| {
                c["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            });
            let manager = path.join("manager");
            let deployment_file = manager.join("deployment.yaml");
            let deployment = objects_in(&deployment_file)?
                .into_iter()
                .find(|o| o["kind"] == "Deployment")
                .ok_or_else(|| RealManifestsError::Invalid {
                    path: deployment_file.clone(),
                    message: "no Deployment".into(),
                })?;
            let service_file = manager.join("service.yaml");
            let service = if service_file.exists() {
                objects_in(&service_file)?
                    .into_iter()
                    .find(|o| o["kind"] == "Service")
            } else {
                None
            };
            components.insert(
                name,
                RealComponent {
                    image_tag: read(&path.join("image-tag"))?.trim().to_owned(),
                    module_version: read(&path.join("module-version"))?.trim().to_owned(),
                    crds,
                    deployment,
                    service,
                },
            );
        }
        if components.is_empty() {
            return Err(RealManifestsError::Invalid {
                path: dir.to_path_buf(),
                message: "no component directories".into(),
            });
        }
        Ok(Self {
            flux_version,
            components,
        })
    }

    /// The simulator's embedded versions with this release among them.
    pub fn versions(&self) -> Vec<Version> {
        let mut v = super::version::default_embedded_versions();
        if !v.contains(&self.flux_version) {
            v.push(self.flux_version);
            v.sort();
        }
        v
    }

    /// The image tag the release ships for `component`, when known.
    pub fn image_tag(&self, version: &Version, component: &str) -> Option<&str> {
        (*version == self.flux_version)
            .then(|| self.components.get(component))
            .flatten()
            .map(|c| c.image_tag.as_str())
    }

    /// Replaces the simulator's objects of every component with real files by the real ones.
    /// The CRDs are replaced for every version (the real controllers on a real API server rely on
    /// their schema defaults, which the simulator's minimal CRDs lack, and a newer release's
    /// CRDs still serve the older API versions); Deployments and Services only when `version` is
    /// this release. `objects` is the simulator's build before its labels, annotations and
    /// patches are stamped on.
    pub fn overlay(&self, objects: &mut Vec<Value>, namespace: &str, version: &Version) {
        let this_release = *version == self.flux_version;
        for (component, real) in &self.components {
            let is_component = |o: &Value| {
                o["metadata"]["labels"]["app.kubernetes.io/component"] == component.as_str()
            };
            let Some(sim_deployment) = objects
                .iter()
                .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == component.as_str())
                .cloned()
            else {
                continue; // the component is not selected
            };
            // CRDs: the simulator's minimal ones out, the real ones in at the same place.
            let first_crd = objects
                .iter()
                .position(|o| o["kind"] == "CustomResourceDefinition" && is_component(o));
            objects.retain(|o| !(o["kind"] == "CustomResourceDefinition" && is_component(o)));
            let at = first_crd.unwrap_or(1).min(objects.len());
            let crds: Vec<Value> = real
                .crds
                .iter()
                .map(|c| with_labels(c.clone(), component))
                .collect();
            objects.splice(at..at, crds);
            if !this_release {
                continue;
            }
            let manager = &sim_deployment["spec"]["template"]["spec"]["containers"][0];
            let image = manager["image"].as_str().unwrap_or_default().to_owned();
            // The simulator's `--events-addr` (with the instance's `cluster.domain`).
            let events_addr = manager["args"][0]
                .as_str()
                .filter(|a| a.starts_with("--events-addr="))
                .map_or_else(
                    || super::build::events_addr(namespace, super::build::DEFAULT_DOMAIN),
                    str::to_owned,
                );
            for o in objects.iter_mut() {
                if o["metadata"]["name"] != component.as_str() {
                    continue;
                }
                if o["kind"] == "Deployment" {
                    *o = real_deployment(
                        &real.deployment,
                        component,
                        namespace,
                        &image,
                        &events_addr,
                    );
                } else if o["kind"] == "Service"
                    && let Some(service) = &real.service
                {
                    let mut s = with_labels(service.clone(), component);
                    s["metadata"]["namespace"] = json!(namespace);
                    *o = s;
                }
            }
        }
    }
}

fn with_labels(mut obj: Value, component: &str) -> Value {
    if !obj["metadata"]["labels"].is_object() {
        obj["metadata"]["labels"] = json!({});
    }
    obj["metadata"]["labels"]["app.kubernetes.io/component"] = json!(component);
    obj["metadata"]["labels"]["app.kubernetes.io/part-of"] = json!("flux");
    if let Some(a) = obj["metadata"]["annotations"].as_object_mut() {
        // controller-gen's marker; the distribution keeps it, nothing reads it.
        a.retain(|_, v| !v.is_null());
    }
    obj
}

/// The real Deployment as the Flux distribution renders it: namespace, labels on the object
/// and the pod template, the release's image, `--events-addr` first, the component's
/// ServiceAccount.
fn real_deployment(
    real: &Value,
    component: &str,
    namespace: &str,
    image: &str,
    events_addr: &str,
) -> Value {
    let mut d = with_labels(real.clone(), component);
    d["metadata"]["namespace"] = json!(namespace);
    let template = &mut d["spec"]["template"];
    if !template["metadata"]["labels"].is_object() {
        template["metadata"]["labels"] = json!({});
    }
    template["metadata"]["labels"]["app.kubernetes.io/component"] = json!(component);
    template["metadata"]["labels"]["app.kubernetes.io/part-of"] = json!("flux");
    template["spec"]["serviceAccountName"] = json!(component);
    if let Some(containers) = template["spec"]["containers"].as_array_mut() {
        for c in containers.iter_mut().filter(|c| c["name"] == "manager") {
            c["image"] = json!(image);
            let mut args = vec![json!(events_addr)];
            args.extend(c["args"].as_array().cloned().unwrap_or_default());
            c["args"] = Value::Array(args);
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifests() -> RealManifests {
        let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "kustomizations.kustomize.toolkit.fluxcd.io",
                         "annotations": {"controller-gen.kubebuilder.io/version": "v0.19.0"}},
            "spec": {"group": "kustomize.toolkit.fluxcd.io"}});
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "kustomize-controller", "labels": {"control-plane": "controller"}},
            "spec": {"selector": {"matchLabels": {"app": "kustomize-controller"}},
                "template": {"metadata": {"labels": {"app": "kustomize-controller"}},
                    "spec": {"terminationGracePeriodSeconds": 60, "containers": [{
                        "name": "manager", "image": "fluxcd/kustomize-controller",
                        "args": ["--watch-all-namespaces", "--log-level=info"]}]}}}});
        RealManifests {
            flux_version: Version::new(2, 7, 5),
            components: BTreeMap::from([(
                "kustomize-controller".to_owned(),
                RealComponent {
                    image_tag: "v1.7.3".into(),
                    module_version: "v1.7.3".into(),
                    crds: vec![crd],
                    deployment,
                    service: None,
                },
            )]),
        }
    }

    #[test]
    fn overlay_replaces_the_component_objects_for_its_release_only() {
        let real = manifests();
        let spec = json!({"components": ["kustomize-controller"]});
        let v = Version::new(2, 7, 5);
        let objects = super::super::build::build_with(&spec, "flux-system", &v, Some(&real))
            .unwrap()
            .objects;
        let names: Vec<String> = objects
            .iter()
            .map(|o| {
                format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap(),
                    o["metadata"]["name"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                "Namespace/flux-system",
                "CustomResourceDefinition/kustomizations.kustomize.toolkit.fluxcd.io",
                "ResourceQuota/critical-pods-flux-system",
                "ClusterRole/crd-controller-flux-system",
                "ClusterRole/flux-edit-flux-system",
                "ClusterRole/flux-view-flux-system",
                "ClusterRoleBinding/cluster-reconciler-flux-system",
                "ClusterRoleBinding/crd-controller-flux-system",
                "ServiceAccount/kustomize-controller",
                "Deployment/kustomize-controller",
                "NetworkPolicy/allow-egress",
                "NetworkPolicy/allow-scraping",
                "NetworkPolicy/allow-webhooks",
            ]
        );
        let d = &objects[9];
        assert_eq!(
            d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"],
            60
        );
        let c = &d["spec"]["template"]["spec"]["containers"][0];
        assert!(
            c["image"]
                .as_str()
                .unwrap()
                .starts_with("ghcr.io/fluxcd/kustomize-controller:v1.7.3@sha256:"),
            "{c}"
        );
        // Stamped like every object of the simulator.
        assert_eq!(
            d["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "flux-operator"
        );
        assert_eq!(
            c["args"],
            json!([
                "--events-addr=http://notification-controller.flux-system.svc.cluster.local./",
                "--watch-all-namespaces",
                "--log-level=info"
            ])
        );
        assert_eq!(d["metadata"]["namespace"], "flux-system");
        assert_eq!(
            d["spec"]["template"]["spec"]["serviceAccountName"],
            "kustomize-controller"
        );
        assert_eq!(
            objects[1]["metadata"]["labels"]["app.kubernetes.io/part-of"],
            "flux"
        );

        // Another release: the simulator's own objects, but the real CRDs.
        let other = Version::new(2, 6, 4);
        let sim = super::super::build::build(&spec, "flux-system", &other)
            .unwrap()
            .objects;
        let overlaid = super::super::build::build_with(&spec, "flux-system", &other, Some(&real))
            .unwrap()
            .objects;
        assert_eq!(sim.len(), overlaid.len());
        for (s, o) in sim.iter().zip(&overlaid) {
            if s["kind"] == "CustomResourceDefinition" {
                assert_eq!(
                    o["metadata"]["annotations"]["controller-gen.kubebuilder.io/version"],
                    "v0.19.0"
                );
                assert_eq!(o["metadata"]["name"], s["metadata"]["name"]);
            } else {
                assert_eq!(s, o);
            }
        }
    }
}
