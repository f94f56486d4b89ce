//! What the simulated operator installs for a FluxInstance: the Namespace, the Flux CRDs of the
//! selected components, their ServiceAccounts, Deployments and Services, the network policies,
//! and the sync source and Kustomization, with the operator's labels and annotations; plus the
//! `status.components` entries. A much smaller install than the real distribution, with the same
//! names and identities.
//!
//! `kustomize.patches` are applied last, as kustomize does: JSON 6902 patches (a YAML list of
//! operations) to every object matching `target`, strategic-merge patches (a YAML object) to the
//! objects matching `target` or, without one, to the object the patch names. The strategic merge
//! is simulated for what Flux patches touch: maps merge, `null` deletes, lists of objects with a
//! `name` (containers, env, volumes…) merge by name (`$patch: delete` removes an item), other
//! lists are replaced. Target `name`/`namespace` are anchored regular expressions; label and
//! annotation selectors support `k=v`, `k!=v`, `k` and `!k`.
//!
//! The operator's profiles (`cluster.type`, `cluster.size`, `cluster.multitenant`, `storage`)
//! are applied by [`super::profiles`], before `kustomize.patches`. `cluster.domain` (default
//! `cluster.local`) is the domain of the controllers' `--events-addr` (notification-controller's
//! Service FQDN; upstream `internal/builder/`); the simulated source-controller still
//! advertises its artifacts under `cluster.local` ([`super::sync`]).
//!
//! The distribution's ResourceQuota and RBAC objects (`critical-pods-<ns>`, `crd-controller-<ns>`,
//! `flux-edit-<ns>`, `flux-view-<ns>`, `cluster-reconciler-<ns>`) come from [`super::rbac`];
//! `spec.sharding` builds `<controller>-<shard>` objects for every shardable controller, the
//! image controllers included, through [`super::shards`].
//!
//! Not simulated: `distribution.variant` (the images stay `<registry>/<component>`); the content
//! of `distribution.artifact` (the build is the embedded one; the artifact's digest is simulated,
//! see [`super::artifact`]).
//!
//! Pure code: depends on `fixtures` (CRD text), `inventory`, `rbac`, `shards` and `version`.

use serde_json::{Map, Value, json};

use super::fixtures::{component_crds, parse_multi};
use super::inventory::sha256_hex;
use super::profiles::{apply_profiles, storage_claim};
use super::rbac::rbac_objects;
use super::shards::{self, Sharding};
use super::version::{Version, component_tag};

/// The components installed when `spec.components` is unset.
pub const DEFAULT_COMPONENTS: [&str; 4] = [
    "source-controller",
    "kustomize-controller",
    "helm-controller",
    "notification-controller",
];

/// Build errors (reported as `BuildFailed`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// A component does not exist in the resolved Flux version.
    #[error("component {component} is not available in Flux {version}")]
    ComponentUnavailable {
        /// The component.
        component: String,
        /// The resolved Flux version.
        version: String,
    },
    /// An embedded CRD fixture could not be read.
    #[error("embedded manifests: {0}")]
    Manifests(String),
    /// A `kustomize.patches` entry is not a YAML object or operation list, or does not apply.
    #[error("kustomize patch {index}: {message}")]
    Patch {
        /// Index in `spec.kustomize.patches`.
        index: usize,
        /// What went wrong.
        message: String,
    },
}

/// The result of a build: objects in apply order, and the `status.components` entries.
#[derive(Debug, Clone, PartialEq)]
pub struct Build {
    /// Objects to apply, Namespace and CRDs first.
    pub objects: Vec<Value>,
    /// `status.components[]` entries (`name`, `repository`, `tag`, `digest`).
    pub components: Vec<Value>,
}

/// The components a spec selects (the default four when unset).
pub fn components(spec: &Value) -> Vec<String> {
    match spec["components"].as_array() {
        Some(list) => list
            .iter()
            .filter_map(|c| c.as_str().map(String::from))
            .collect(),
        None => DEFAULT_COMPONENTS.iter().map(|c| c.to_string()).collect(),
    }
}

/// The simulated image digest of `<repository>:<tag>` (`sha256:<hex>`).
pub fn image_digest(repository: &str, tag: &str) -> String {
    format!(
        "sha256:{}",
        sha256_hex(format!("{repository}:{tag}").as_bytes())
    )
}

fn str_map(v: &Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

/// Sets the operator's labels and annotations (and `commonMetadata`) on an object.
fn stamp(obj: &mut Value, namespace: &str, version: &Version, common: &Value) {
    let mut labels = str_map(&obj["metadata"]["labels"]);
    for (k, v) in [
        ("app.kubernetes.io/managed-by", "flux-operator"),
        ("app.kubernetes.io/instance", namespace),
        ("app.kubernetes.io/version", &version.to_string()),
        ("app.kubernetes.io/part-of", "flux"),
        ("fluxcd.controlplane.io/name", "flux"),
        ("fluxcd.controlplane.io/namespace", namespace),
    ] {
        labels.insert(k.to_string(), Value::String(v.to_string()));
    }
    labels.extend(str_map(&common["labels"]));
    let mut annotations = str_map(&obj["metadata"]["annotations"]);
    annotations.insert("kustomize.toolkit.fluxcd.io/ssa".into(), "Ignore".into());
    annotations.insert(
        "kustomize.toolkit.fluxcd.io/prune".into(),
        "Disabled".into(),
    );
    annotations.extend(str_map(&common["annotations"]));
    obj["metadata"]["labels"] = Value::Object(labels);
    obj["metadata"]["annotations"] = Value::Object(annotations);
}

/// The cluster domain when `cluster.domain` is unset.
pub const DEFAULT_DOMAIN: &str = "cluster.local";

/// The controllers' `--events-addr`: notification-controller's Service FQDN in the cluster
/// domain (`cluster.domain`, default `cluster.local`).
pub fn events_addr(namespace: &str, domain: &str) -> String {
    format!("--events-addr=http://notification-controller.{namespace}.svc.{domain}./")
}

fn deployment(
    name: &str,
    component: &str,
    namespace: &str,
    image: &str,
    domain: &str,
    extra_args: &[String],
) -> Value {
    let mut args = vec![
        events_addr(namespace, domain),
        "--watch-all-namespaces=true".to_string(),
        "--log-level=info".to_string(),
        "--log-encoding=json".to_string(),
        "--enable-leader-election".to_string(),
    ];
    args.extend(extra_args.iter().cloned());
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/component": component, "control-plane": "controller"},
        },
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {
                    "labels": {"app": name, "app.kubernetes.io/component": component},
                    "annotations": {"prometheus.io/port": "8080", "prometheus.io/scrape": "true"},
                },
                "spec": {
                    "serviceAccountName": component,
                    "terminationGracePeriodSeconds": 10,
                    "containers": [{
                        "name": "manager",
                        "image": image,
                        "imagePullPolicy": "IfNotPresent",
                        "args": args,
                        "env": [{"name": "RUNTIME_NAMESPACE",
                                 "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}],
                        "ports": [
                            {"name": "http-prom", "containerPort": 8080, "protocol": "TCP"},
                            {"name": "healthz", "containerPort": 9440, "protocol": "TCP"},
                        ],
                        "resources": {
                            "limits": {"cpu": "1000m", "memory": "1Gi"},
                            "requests": {"cpu": "100m", "memory": "64Mi"},
                        },
                    }],
                },
            },
        },
    })
}

fn service(name: &str, component: &str, namespace: &str, target: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {"app.kubernetes.io/component": component, "control-plane": "controller"}},
        "spec": {
            "type": "ClusterIP",
            "selector": {"app": component},
            "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": target}],
        },
    })
}

fn network_policies(namespace: &str) -> Vec<Value> {
    vec![
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
               "metadata": {"name": "allow-egress", "namespace": namespace},
               "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"],
                        "egress": [{}], "ingress": [{"from": [{"podSelector": {}}]}]}}),
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
               "metadata": {"name": "allow-scraping", "namespace": namespace},
               "spec": {"podSelector": {}, "policyTypes": ["Ingress"],
                        "ingress": [{"from": [{"namespaceSelector": {}}],
                                     "ports": [{"port": 8080, "protocol": "TCP"}]}]}}),
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
               "metadata": {"name": "allow-webhooks", "namespace": namespace},
               "spec": {"podSelector": {"matchLabels": {"app": "notification-controller"}},
                        "policyTypes": ["Ingress"],
                        "ingress": [{"from": [{"namespaceSelector": {}}]}]}}),
    ]
}

/// The sync source and Kustomization for `spec.sync` (empty when unset).
pub fn sync_objects(spec: &Value, namespace: &str, version: &Version) -> Vec<Value> {
    let sync = &spec["sync"];
    if !sync.is_object() {
        return Vec::new();
    }
    let kind = sync["kind"].as_str().unwrap_or("GitRepository");
    let name = sync["name"].as_str().unwrap_or(namespace);
    let interval = sync["interval"].as_str().unwrap_or("1m");
    let url = sync["url"].clone();
    let reference = sync["ref"].clone();
    // OCIRepository and Bucket are served as v1 from Flux 2.6, v1beta2 before.
    let source_api = if kind == "GitRepository" || *version >= Version::new(2, 6, 0) {
        "source.toolkit.fluxcd.io/v1"
    } else {
        "source.toolkit.fluxcd.io/v1beta2"
    };
    let mut source_spec = match kind {
        "OCIRepository" => json!({"interval": interval, "url": url, "ref": {"tag": reference}}),
        "Bucket" => json!({"interval": interval, "endpoint": url, "bucketName": reference}),
        _ => json!({"interval": interval, "url": url, "ref": {"name": reference}}),
    };
    if let Some(secret) = sync["pullSecret"].as_str() {
        source_spec["secretRef"] = json!({"name": secret});
    }
    if let Some(provider) = sync["provider"].as_str() {
        source_spec["provider"] = Value::String(provider.to_string());
    }
    vec![
        json!({"apiVersion": source_api, "kind": kind,
               "metadata": {"name": name, "namespace": namespace}, "spec": source_spec}),
        json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
               "metadata": {"name": name, "namespace": namespace},
               "spec": {"interval": "10m0s", "path": sync["path"].clone(), "prune": true,
                        "sourceRef": {"kind": kind, "name": name}}}),
    ]
}

/// Builds the install of a FluxInstance `spec` in `namespace` for the resolved `version`.
pub fn build(spec: &Value, namespace: &str, version: &Version) -> Result<Build, BuildError> {
    build_with(spec, namespace, version, None)
}

/// [`build`], with the real Flux install objects of `real` (on a real control plane) in place
/// of the simulator's own for the components and release it has.
pub fn build_with(
    spec: &Value,
    namespace: &str,
    version: &Version,
    real: Option<&super::real_manifests::RealManifests>,
) -> Result<Build, BuildError> {
    let registry = spec["distribution"]["registry"]
        .as_str()
        .unwrap_or("ghcr.io/fluxcd");
    let common = &spec["commonMetadata"];
    let comps = components(spec);
    let sharding = Sharding::from_spec(spec);
    let domain = spec["cluster"]["domain"]
        .as_str()
        .filter(|d| !d.is_empty())
        .unwrap_or(DEFAULT_DOMAIN);

    let mut objects = vec![json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": namespace,
            "labels": {"pod-security.kubernetes.io/warn": "restricted",
                       "pod-security.kubernetes.io/warn-version": "latest"},
            "annotations": {"fluxcd.controlplane.io/prune": "disabled"},
        },
    })];
    let mut components_status = Vec::new();
    let mut workloads = Vec::new();
    for c in &comps {
        let real_tag = real
            .and_then(|r| r.image_tag(version, c))
            .map(str::to_owned);
        let tag = real_tag
            .or_else(|| component_tag(c, version))
            .ok_or_else(|| BuildError::ComponentUnavailable {
                component: c.clone(),
                version: version.to_string(),
            })?;
        for crd in component_crds(c) {
            let docs = parse_multi(crd).map_err(|e| BuildError::Manifests(e.to_string()))?;
            objects.extend(docs);
        }
        let repository = format!("{registry}/{c}");
        let digest = image_digest(&repository, &tag);
        components_status
            .push(json!({"name": c, "repository": repository, "tag": tag, "digest": digest}));
        let image = format!("{repository}:{tag}@{digest}");
        workloads.push(json!({"apiVersion": "v1", "kind": "ServiceAccount",
                              "metadata": {"name": c, "namespace": namespace,
                                           "labels": {"app.kubernetes.io/component": c}}}));
        let sharded = !sharding.shards.is_empty() && shards::shardable(c, version);
        let base = deployment(c, c, namespace, &image, domain, &[]);
        let main_service = match c.as_str() {
            "source-controller" | "source-watcher" => Some(service(c, c, namespace, "http")),
            _ => None,
        };
        let mut shard_objects = Vec::new();
        if sharded {
            let claim = spec["storage"]
                .is_object()
                .then(|| storage_claim(&spec["storage"], namespace));
            for s in &sharding.shards {
                shard_objects.extend(shards::shard_objects(
                    &base,
                    main_service.as_ref(),
                    claim.as_ref(),
                    &sharding,
                    s,
                    domain,
                ));
            }
        }
        if sharded {
            workloads.push(deployment(
                c,
                c,
                namespace,
                &image,
                domain,
                &[sharding.main_arg()],
            ));
        } else {
            workloads.push(base);
        }
        workloads.extend(shard_objects);
        match c.as_str() {
            "source-controller" | "source-watcher" => {
                workloads.extend(main_service);
            }
            "notification-controller" => {
                workloads.push(service(c, c, namespace, "http"));
                workloads.push(service("webhook-receiver", c, namespace, "http-webhook"));
            }
            _ => {}
        }
    }
    objects.extend(rbac_objects(spec, namespace, version, &comps));
    objects.extend(workloads);
    if let Some(r) = real {
        r.overlay(&mut objects, namespace, version);
    }
    if spec["cluster"]["networkPolicy"].as_bool() != Some(false) {
        objects.extend(network_policies(namespace));
    }
    if spec["storage"].is_object() {
        objects.push(storage_claim(&spec["storage"], namespace));
    }
    objects.extend(sync_objects(spec, namespace, version));
    apply_profiles(spec, &mut objects);
    for o in &mut objects {
        stamp(o, namespace, version, common);
    }
    if let Some(patches) = spec["kustomize"]["patches"].as_array() {
        apply_patches(&mut objects, patches)?;
    }
    Ok(Build {
        objects,
        components: components_status,
    })
}

fn selector_matches(selector: &str, map: &Value) -> bool {
    selector
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .all(|term| {
            if let Some((k, v)) = term.split_once("!=") {
                map[k.trim()].as_str() != Some(v.trim())
            } else if let Some((k, v)) = term.split_once('=') {
                map[k.trim().trim_end_matches('=')].as_str() == Some(v.trim())
            } else if let Some(k) = term.strip_prefix('!') {
                map.get(k.trim()).is_none()
            } else {
                map.get(term).is_some()
            }
        })
}

fn anchored(pattern: &str, value: &str) -> bool {
    regex::Regex::new(&format!("^(?:{pattern})$")).is_ok_and(|r| r.is_match(value))
}

/// Whether an object matches a kustomize patch `target` (a name matches the object's current or
/// original name, as in kustomize: a patch naming a controller reaches its shards).
fn target_matches(target: &Value, o: &Value) -> bool {
    let api_version = o["apiVersion"].as_str().unwrap_or_default();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let field = |k: &str| target[k].as_str().filter(|s| !s.is_empty());
    field("group").is_none_or(|g| g == group)
        && field("version").is_none_or(|v| v == version)
        && field("kind").is_none_or(|k| o["kind"] == k)
        && field("name").is_none_or(|n| {
            anchored(n, o["metadata"]["name"].as_str().unwrap_or_default())
                || anchored(n, shards::original_name(o))
        })
        && field("namespace")
            .is_none_or(|n| anchored(n, o["metadata"]["namespace"].as_str().unwrap_or_default()))
        && field("labelSelector").is_none_or(|s| selector_matches(s, &o["metadata"]["labels"]))
        && field("annotationSelector")
            .is_none_or(|s| selector_matches(s, &o["metadata"]["annotations"]))
}

/// The simulated strategic merge (see the module documentation).
pub fn strategic_merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, pv) in p {
                if k == "$patch" {
                    continue;
                }
                if pv.is_null() {
                    t.remove(k);
                    continue;
                }
                match t.get_mut(k) {
                    Some(tv) => strategic_merge(tv, pv),
                    None => {
                        let mut v = pv.clone();
                        strip_directives(&mut v);
                        t.insert(k.clone(), v);
                    }
                }
            }
        }
        (Value::Array(t), Value::Array(p))
            if p.iter().all(|i| i["name"].is_string()) && !p.is_empty() =>
        {
            for item in p {
                let pos = t.iter().position(|x| x["name"] == item["name"]);
                match (pos, item["$patch"].as_str()) {
                    (Some(i), Some("delete")) => {
                        t.remove(i);
                    }
                    (None, Some("delete")) => {}
                    (Some(i), _) => strategic_merge(&mut t[i], item),
                    (None, _) => {
                        let mut v = item.clone();
                        strip_directives(&mut v);
                        t.push(v);
                    }
                }
            }
        }
        (t, p) => {
            let mut v = p.clone();
            strip_directives(&mut v);
            *t = v;
        }
    }
}

fn strip_directives(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.remove("$patch");
            m.values_mut().for_each(strip_directives);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_directives),
        _ => {}
    }
}

/// Applies `spec.kustomize.patches` to the rendered objects.
pub fn apply_patches(objects: &mut [Value], patches: &[Value]) -> Result<(), BuildError> {
    for (index, p) in patches.iter().enumerate() {
        let err = |message: String| BuildError::Patch { index, message };
        let text = p["patch"].as_str().unwrap_or_default();
        let parsed: Value = serde_saphyr::from_str(text).map_err(|e| err(e.to_string()))?;
        let target = &p["target"];
        match &parsed {
            Value::Array(_) => {
                let ops: json_patch::Patch =
                    serde_json::from_value(parsed.clone()).map_err(|e| err(e.to_string()))?;
                for o in objects.iter_mut().filter(|o| target_matches(target, o)) {
                    json_patch::patch(o, &ops.0).map_err(|e| err(e.to_string()))?;
                }
            }
            Value::Object(_) => {
                let mut matched = 0;
                for o in objects.iter_mut() {
                    let hit = if target.is_object() {
                        target_matches(target, o)
                    } else {
                        o["kind"] == parsed["kind"]
                            && o["metadata"]["name"] == parsed["metadata"]["name"]
                            && (parsed["metadata"]["namespace"].is_null()
                                || o["metadata"]["namespace"] == parsed["metadata"]["namespace"])
                    };
                    if hit {
                        let mut body = parsed.clone();
                        if let Some(m) = body.as_object_mut() {
                            // The patch's own identity does not rename the target.
                            m.remove("apiVersion");
                            m.remove("kind");
                            if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut)
                            {
                                meta.remove("name");
                                meta.remove("namespace");
                            }
                        }
                        strategic_merge(o, &body);
                        matched += 1;
                    }
                }
                if matched == 0 && !target.is_object() {
                    return Err(err(format!(
                        "no matches for {}/{}",
                        parsed["kind"].as_str().unwrap_or_default(),
                        parsed["metadata"]["name"].as_str().unwrap_or_default()
                    )));
                }
            }
            _ => {
                return Err(err(
                    "patch is neither a YAML object nor a list of operations".into(),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::inventory::ObjectRef;

    fn ids(b: &Build) -> Vec<String> {
        b.objects
            .iter()
            .map(|o| ObjectRef::of(o).unwrap().id())
            .collect()
    }

    /// The operator's `cluster.domain` (reference: Profiles, `internal/builder/`): the
    /// controllers reach notification-controller by its Service FQDN in that domain; unset or
    /// empty means `cluster.local`.
    #[test]
    fn cluster_domain_sets_the_events_address() {
        let events = |b: &Build| -> Vec<String> {
            b.objects
                .iter()
                .filter(|o| o["kind"] == "Deployment")
                .map(|o| {
                    o["spec"]["template"]["spec"]["containers"][0]["args"][0]
                        .as_str()
                        .unwrap()
                        .to_string()
                })
                .collect()
        };
        let v = Version::new(2, 7, 5);
        let custom = json!({"distribution": {"version": "2.7.x", "registry": "ghcr.io/fluxcd"},
                            "cluster": {"domain": "k8s.example.internal"},
                            "sharding": {"shards": ["s1"]}});
        let b = build(&custom, "flux-system", &v).unwrap();
        let got = events(&b);
        // The four default controllers and the three shards.
        assert_eq!(got.len(), 7, "{got:?}");
        assert!(
            got.iter().all(|a| a
                == "--events-addr=http://notification-controller.flux-system.svc.k8s.example.internal./"),
            "{got:?}"
        );
        for spec in [
            json!({"distribution": {"version": "2.7.x", "registry": "ghcr.io/fluxcd"}}),
            json!({"distribution": {"version": "2.7.x", "registry": "ghcr.io/fluxcd"},
                   "cluster": {"domain": ""}}),
        ] {
            let got = events(&build(&spec, "apps", &v).unwrap());
            assert!(
                got.iter().all(|a| a
                    == "--events-addr=http://notification-controller.apps.svc.cluster.local./"),
                "{got:?}"
            );
        }
    }

    #[test]
    fn builds_the_default_install() {
        let spec = json!({"distribution": {"version": "2.7.x", "registry": "ghcr.io/fluxcd"}});
        let b = build(&spec, "flux-system", &Version::new(2, 7, 5)).unwrap();
        assert_eq!(
            ids(&b),
            [
                "_flux-system__Namespace",
                "_gitrepositories.source.toolkit.fluxcd.io_apiextensions.k8s.io_CustomResourceDefinition",
                "_ocirepositories.source.toolkit.fluxcd.io_apiextensions.k8s.io_CustomResourceDefinition",
                "_buckets.source.toolkit.fluxcd.io_apiextensions.k8s.io_CustomResourceDefinition",
                "_kustomizations.kustomize.toolkit.fluxcd.io_apiextensions.k8s.io_CustomResourceDefinition",
                // Upstream `config/data/flux/<v>/rbac.yaml` with the `-<namespace>` suffix
                // (`kustomizationRolesTmpl`, `internal/builder/templates.go`).
                "flux-system_critical-pods-flux-system__ResourceQuota",
                "_crd-controller-flux-system_rbac.authorization.k8s.io_ClusterRole",
                "_flux-edit-flux-system_rbac.authorization.k8s.io_ClusterRole",
                "_flux-view-flux-system_rbac.authorization.k8s.io_ClusterRole",
                "_cluster-reconciler-flux-system_rbac.authorization.k8s.io_ClusterRoleBinding",
                "_crd-controller-flux-system_rbac.authorization.k8s.io_ClusterRoleBinding",
                "flux-system_source-controller__ServiceAccount",
                "flux-system_source-controller_apps_Deployment",
                "flux-system_source-controller__Service",
                "flux-system_kustomize-controller__ServiceAccount",
                "flux-system_kustomize-controller_apps_Deployment",
                "flux-system_helm-controller__ServiceAccount",
                "flux-system_helm-controller_apps_Deployment",
                "flux-system_notification-controller__ServiceAccount",
                "flux-system_notification-controller_apps_Deployment",
                "flux-system_notification-controller__Service",
                "flux-system_webhook-receiver__Service",
                "flux-system_allow-egress_networking.k8s.io_NetworkPolicy",
                "flux-system_allow-scraping_networking.k8s.io_NetworkPolicy",
                "flux-system_allow-webhooks_networking.k8s.io_NetworkPolicy",
            ]
        );
        let digest = image_digest("ghcr.io/fluxcd/source-controller", "v1.7.5");
        assert_eq!(
            b.components[0],
            json!({"name": "source-controller", "repository": "ghcr.io/fluxcd/source-controller",
                   "tag": "v1.7.5", "digest": digest})
        );
        let dep = &b.objects[12];
        assert_eq!(
            dep["spec"]["template"]["spec"]["containers"][0]["image"],
            format!("ghcr.io/fluxcd/source-controller:v1.7.5@{digest}")
        );
        assert_eq!(
            dep["metadata"]["labels"],
            json!({"app.kubernetes.io/component": "source-controller", "control-plane": "controller",
                   "app.kubernetes.io/managed-by": "flux-operator", "app.kubernetes.io/instance": "flux-system",
                   "app.kubernetes.io/version": "v2.7.5", "app.kubernetes.io/part-of": "flux",
                   "fluxcd.controlplane.io/name": "flux", "fluxcd.controlplane.io/namespace": "flux-system"})
        );
        assert_eq!(
            dep["metadata"]["annotations"],
            json!({"kustomize.toolkit.fluxcd.io/ssa": "Ignore", "kustomize.toolkit.fluxcd.io/prune": "Disabled"})
        );
        assert_eq!(
            b.objects[0]["metadata"]["annotations"]["fluxcd.controlplane.io/prune"],
            "disabled"
        );
    }

    /// Upstream `internal/builder/profiles.go` (multitenant) and `templates.go` (pvc.yaml and the
    /// source-controller volume patch), v0.58.1.
    #[test]
    fn multitenant_and_storage_profiles_follow_the_operator_builder() {
        let deployment = |b: &Build, name: &str| {
            b.objects
                .iter()
                .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == name)
                .cloned()
                .unwrap()
        };
        let args = |d: &Value| d["spec"]["template"]["spec"]["containers"][0]["args"].clone();
        let spec = json!({
            "distribution": {"version": "2.7.x"},
            "components": ["source-controller", "kustomize-controller", "helm-controller",
                           "notification-controller"],
            "cluster": {"multitenant": true, "tenantDefaultServiceAccount": "tenant"},
            "storage": {"class": "standard", "size": "10Gi"},
            "sync": {"kind": "GitRepository", "url": "https://example.com/fleet.git",
                     "ref": "refs/heads/main", "path": "clusters/dev"},
        });
        let b = build(&spec, "flux-system", &Version::new(2, 7, 5)).unwrap();
        let base = |extra: &[&str]| {
            let mut out = vec![
                json!(
                    "--events-addr=http://notification-controller.flux-system.svc.cluster.local./"
                ),
                json!("--watch-all-namespaces=true"),
                json!("--log-level=info"),
                json!("--log-encoding=json"),
                json!("--enable-leader-election"),
            ];
            out.extend(extra.iter().map(|a| json!(a)));
            Value::Array(out)
        };
        assert_eq!(
            args(&deployment(&b, "kustomize-controller")),
            base(&[
                "--no-cross-namespace-refs=true",
                "--no-remote-bases=true",
                "--default-service-account=tenant",
            ])
        );
        assert_eq!(
            args(&deployment(&b, "helm-controller")),
            base(&[
                "--no-cross-namespace-refs=true",
                "--default-service-account=tenant",
            ])
        );
        assert_eq!(
            args(&deployment(&b, "notification-controller")),
            base(&["--no-cross-namespace-refs=true"])
        );
        let source = deployment(&b, "source-controller");
        assert_eq!(args(&source), base(&[]));
        assert_eq!(
            source["spec"]["template"]["spec"]["volumes"],
            json!([{"name": "persistent-data",
                    "persistentVolumeClaim": {"claimName": "source-controller"}}])
        );
        assert_eq!(
            source["spec"]["template"]["spec"]["containers"][0]["volumeMounts"],
            json!([{"name": "persistent-data", "mountPath": "/data"}])
        );
        let pvc = b
            .objects
            .iter()
            .find(|o| o["kind"] == "PersistentVolumeClaim")
            .unwrap();
        assert_eq!(pvc["metadata"]["name"], "source-controller");
        assert_eq!(pvc["metadata"]["namespace"], "flux-system");
        assert_eq!(
            pvc["spec"],
            json!({"accessModes": ["ReadWriteOnce"], "storageClassName": "standard",
                   "resources": {"requests": {"storage": "10Gi"}}})
        );
        let ks = b
            .objects
            .iter()
            .find(|o| o["kind"] == "Kustomization")
            .unwrap();
        assert_eq!(ks["spec"]["serviceAccountName"], "kustomize-controller");

        // Without a tenant account the default is `default`; without the profiles nothing
        // changes.
        let spec = json!({"distribution": {"version": "2.7.x"}, "cluster": {"multitenant": true}});
        let b = build(&spec, "flux-system", &Version::new(2, 7, 5)).unwrap();
        assert!(
            args(&deployment(&b, "kustomize-controller"))
                .as_array()
                .unwrap()
                .contains(&json!("--default-service-account=default"))
        );
        let plain = build(
            &json!({"distribution": {"version": "2.7.x"}}),
            "flux-system",
            &Version::new(2, 7, 5),
        )
        .unwrap();
        assert_eq!(args(&deployment(&plain, "kustomize-controller")), base(&[]));
        assert!(
            !plain
                .objects
                .iter()
                .any(|o| o["kind"] == "PersistentVolumeClaim")
        );
    }

    #[test]
    fn builds_sync_sharding_and_common_metadata() {
        let spec = json!({
            "distribution": {"version": "2.5.x", "registry": "registry.example/flux"},
            "components": ["source-controller", "kustomize-controller"],
            "cluster": {"networkPolicy": false},
            "commonMetadata": {"labels": {"team": "platform"}, "annotations": {"a": "b"}},
            "sharding": {"key": "sharding.fluxcd.io/key", "shards": ["s1"]},
            "sync": {"kind": "OCIRepository", "url": "oci://registry.example/fleet", "ref": "latest",
                     "path": "clusters/dev", "interval": "5m", "pullSecret": "creds"},
        });
        let b = build(&spec, "flux-system", &Version::new(2, 5, 1)).unwrap();
        let ids = ids(&b);
        assert!(ids.contains(&"flux-system_source-controller-s1_apps_Deployment".to_string()));
        assert!(ids.contains(&"flux-system_kustomize-controller-s1_apps_Deployment".to_string()));
        assert!(!ids.iter().any(|i| i.contains("NetworkPolicy")));
        let n = b.objects.len();
        let mut source = b.objects[n - 2].clone();
        let mut ks = b.objects[n - 1].clone();
        assert_eq!(source["metadata"]["labels"]["team"], "platform");
        assert_eq!(source["metadata"]["annotations"]["a"], "b");
        source["metadata"]
            .as_object_mut()
            .unwrap()
            .retain(|k, _| k == "name" || k == "namespace");
        ks["metadata"]
            .as_object_mut()
            .unwrap()
            .retain(|k, _| k == "name" || k == "namespace");
        assert_eq!(
            source,
            json!({"apiVersion": "source.toolkit.fluxcd.io/v1beta2", "kind": "OCIRepository",
                   "metadata": {"name": "flux-system", "namespace": "flux-system"},
                   "spec": {"interval": "5m", "url": "oci://registry.example/fleet",
                            "ref": {"tag": "latest"}, "secretRef": {"name": "creds"}}})
        );
        assert_eq!(
            ks,
            json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                   "metadata": {"name": "flux-system", "namespace": "flux-system"},
                   "spec": {"interval": "10m0s", "path": "clusters/dev", "prune": true,
                            "sourceRef": {"kind": "OCIRepository", "name": "flux-system"}}})
        );
        assert_eq!(
            b.components[0]["repository"],
            "registry.example/flux/source-controller"
        );
    }

    #[test]
    fn applies_kustomize_patches() {
        let spec = json!({
            "distribution": {"version": "2.7.x", "registry": "ghcr.io/fluxcd"},
            "components": ["source-controller", "kustomize-controller"],
            "cluster": {"networkPolicy": false},
            "kustomize": {"patches": [
                {"target": {"kind": "Deployment", "name": "(kustomize|source)-controller"},
                 "patch": "- op: add\n  path: /spec/template/spec/containers/0/args/-\n  value: --concurrent=10\n"},
                {"patch": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: source-controller\nspec:\n  template:\n    spec:\n      containers:\n        - name: manager\n          env:\n            - name: HTTPS_PROXY\n              value: http://proxy:3128\n      nodeSelector:\n        role: flux\n"},
                {"target": {"kind": "Kustomization"},
                 "patch": "- op: replace\n  path: /spec/prune\n  value: false\n"},
                {"target": {"kind": "Deployment", "labelSelector": "app.kubernetes.io/component=kustomize-controller"},
                 "patch": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: any\n  labels:\n    patched: \"yes\"\n"},
            ]},
            "sync": {"kind": "GitRepository", "url": "https://git.example.com/x.git", "ref": "refs/heads/main", "path": "p"},
        });
        let b = build(&spec, "flux-system", &Version::new(2, 7, 5)).unwrap();
        let find = |kind: &str, name: &str| {
            b.objects
                .iter()
                .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
                .unwrap()
                .clone()
        };
        let src = find("Deployment", "source-controller");
        let c = &src["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(
            c["args"].as_array().unwrap().last().unwrap(),
            "--concurrent=10"
        );
        assert_eq!(
            c["env"],
            json!([{"name": "RUNTIME_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                   {"name": "HTTPS_PROXY", "value": "http://proxy:3128"}])
        );
        assert_eq!(
            c["image"].as_str().unwrap().split('@').next().unwrap(),
            "ghcr.io/fluxcd/source-controller:v1.7.5"
        );
        assert_eq!(
            src["spec"]["template"]["spec"]["nodeSelector"],
            json!({"role": "flux"})
        );
        assert_eq!(src["metadata"]["name"], "source-controller");
        let ks = find("Deployment", "kustomize-controller");
        assert_eq!(ks["metadata"]["labels"]["patched"], "yes");
        assert!(src["metadata"]["labels"].get("patched").is_none());
        assert_eq!(find("Kustomization", "flux-system")["spec"]["prune"], false);

        let bad = json!({"distribution": {"version": "2.7.x", "registry": "r"},
                         "kustomize": {"patches": [{"patch": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: nope\n"}]}});
        assert_eq!(
            build(&bad, "flux-system", &Version::new(2, 7, 5)),
            Err(BuildError::Patch {
                index: 0,
                message: "no matches for ConfigMap/nope".into()
            })
        );
    }

    #[test]
    fn strategic_merge_deletes() {
        let mut t =
            json!({"a": 1, "list": [{"name": "x", "v": 1}, {"name": "y"}], "plain": [1, 2]});
        strategic_merge(
            &mut t,
            &json!({"a": null, "list": [{"name": "x", "$patch": "delete"}], "plain": [3]}),
        );
        assert_eq!(t, json!({"list": [{"name": "y"}], "plain": [3]}));
    }

    #[test]
    fn refuses_components_missing_from_the_version() {
        let spec = json!({"distribution": {"version": "2.6.x", "registry": "ghcr.io/fluxcd"},
                          "components": ["source-watcher"]});
        assert_eq!(
            build(&spec, "flux-system", &Version::new(2, 6, 4)),
            Err(BuildError::ComponentUnavailable {
                component: "source-watcher".into(),
                version: "v2.6.4".into()
            })
        );
    }
}
