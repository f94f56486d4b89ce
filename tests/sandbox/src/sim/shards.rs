//! Sharded controllers, as the operator's builder writes them (upstream
//! `internal/builder/templates.go`, v0.58.1: the sharding patch of `kustomizationTmpl` and
//! `kustomizationShardTmpl`, one shard kustomization per `spec.sharding.shards` entry, generated
//! in `internal/builder/build.go`).
//!
//! - Shardable controllers: source-, kustomize-, helm-, image-reflector- and
//!   image-automation-controller, and source-watcher from Flux 2.9 ([`shardable`]).
//! - The main Deployment of each gets `--watch-label-selector=!<key>` appended.
//! - Each shard `<s>` gets a Deployment `<controller>-<s>` annotated (and its pod template
//!   annotated) `sharding.fluxcd.io/role: shard`, with selector and pod label `app:
//!   <controller>-<s>` and `--watch-label-selector=<key>=<s>` appended; source-controller (and
//!   source-watcher from 2.9) first get `--storage-adv-addr=<controller>-<s>.$(RUNTIME_NAMESPACE)
//!   .svc.<domain>.` and a Service `<controller>-<s>` selecting the shard's pods. The shard
//!   kustomization deletes the ServiceAccounts, so shards run as the main controller's account.
//! - With `storage` and `sharding.storage: persistent`, each shard gets its own claim
//!   `source-controller-<s>`, mounted at `/data` as `persistent-data-<s>`.
//!
//! kustomize selects patch targets by original **or** current name, so patches naming a
//! controller (the profiles, `kustomize.patches`) also reach its shards unless they exclude the
//! shard role by annotation ([`original_name`]). Pure code.

use serde_json::{Value, json};

use super::version::Version;

/// The annotation the operator puts on every object of a shard.
pub const SHARD_ROLE_ANNOTATION: &str = "sharding.fluxcd.io/role";
/// The sharding label key when `spec.sharding.key` is unset.
pub const DEFAULT_SHARD_KEY: &str = "sharding.fluxcd.io/key";

/// Whether `component` gets shard Deployments in Flux `version`.
pub fn shardable(component: &str, version: &Version) -> bool {
    match component {
        "source-controller"
        | "kustomize-controller"
        | "helm-controller"
        | "image-reflector-controller"
        | "image-automation-controller" => true,
        "source-watcher" => version.minor >= 9,
        _ => false,
    }
}

/// `spec.sharding`, read once.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sharding {
    /// The label key (`spec.sharding.key`).
    pub key: String,
    /// The shard names (`spec.sharding.shards`).
    pub shards: Vec<String>,
    /// `spec.sharding.storage: persistent`.
    pub persistent: bool,
}

impl Sharding {
    /// Reads `spec.sharding` (no shards when unset).
    pub fn from_spec(spec: &Value) -> Self {
        let sharding = &spec["sharding"];
        Self {
            key: sharding["key"]
                .as_str()
                .filter(|k| !k.is_empty())
                .unwrap_or(DEFAULT_SHARD_KEY)
                .to_string(),
            shards: sharding["shards"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
            persistent: sharding["storage"].as_str() == Some("persistent"),
        }
    }

    /// The argument appended to a sharded controller's main Deployment.
    pub fn main_arg(&self) -> String {
        format!("--watch-label-selector=!{}", self.key)
    }
}

fn push_arg(deployment: &mut Value, arg: String) {
    if let Some(args) =
        deployment["spec"]["template"]["spec"]["containers"][0]["args"].as_array_mut()
    {
        args.push(Value::String(arg));
    }
}

fn mark_shard(obj: &mut Value) {
    obj["metadata"]["annotations"][SHARD_ROLE_ANNOTATION] = json!("shard");
}

/// The objects of shard `shard` of one controller: built from its main Deployment (before the
/// main selector argument is appended), its Service (source-controller, source-watcher) and
/// the `storage` claim when the shards have persistent storage.
pub fn shard_objects(
    deployment: &Value,
    service: Option<&Value>,
    claim: Option<&Value>,
    sharding: &Sharding,
    shard: &str,
    domain: &str,
) -> Vec<Value> {
    let component = deployment["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let name = format!("{component}-{shard}");
    let mut out = Vec::new();
    let mut d = deployment.clone();
    d["metadata"]["name"] = json!(name);
    mark_shard(&mut d);
    d["spec"]["template"]["metadata"]["annotations"][SHARD_ROLE_ANNOTATION] = json!("shard");
    d["spec"]["selector"]["matchLabels"]["app"] = json!(name);
    d["spec"]["template"]["metadata"]["labels"]["app"] = json!(name);
    if let Some(svc) = service {
        push_arg(
            &mut d,
            format!("--storage-adv-addr={name}.$(RUNTIME_NAMESPACE).svc.{domain}."),
        );
        let mut s = svc.clone();
        s["metadata"]["name"] = json!(name);
        mark_shard(&mut s);
        s["spec"]["selector"]["app"] = json!(name);
        out.push(s);
    }
    if let Some(claim) = claim.filter(|_| sharding.persistent && component == "source-controller") {
        let claim_name = format!("source-controller-{shard}");
        let volume = format!("persistent-data-{shard}");
        let mut c = claim.clone();
        c["metadata"]["name"] = json!(claim_name);
        mark_shard(&mut c);
        out.push(c);
        d["spec"]["template"]["spec"]["volumes"] =
            json!([{"name": volume, "persistentVolumeClaim": {"claimName": claim_name}}]);
        d["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] =
            json!([{"name": volume, "mountPath": "/data"}]);
    }
    push_arg(
        &mut d,
        format!("--watch-label-selector={}={shard}", sharding.key),
    );
    out.insert(0, d);
    out
}

/// The name kustomize matches a patch target against besides the current one: for an object of
/// a shard, the controller's name (its `app.kubernetes.io/component` label, which the shard
/// name extends); otherwise the current name.
pub fn original_name(obj: &Value) -> &str {
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    if obj["metadata"]["annotations"][SHARD_ROLE_ANNOTATION] != "shard" {
        return name;
    }
    match obj["metadata"]["labels"]["app.kubernetes.io/component"].as_str() {
        Some(c)
            if name
                .strip_prefix(c)
                .is_some_and(|rest| rest.starts_with('-')) =>
        {
            c
        }
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Upstream `kustomizationShardTmpl` (`internal/builder/templates.go`): source-watcher is
    /// sharded only from Flux 2.9 (`ge .VersionInfo.Minor 9`); the image controllers always.
    #[test]
    fn image_controllers_shard_and_source_watcher_from_2_9() {
        let v28 = Version::new(2, 8, 8);
        let v29 = Version::new(2, 9, 0);
        for c in [
            "source-controller",
            "kustomize-controller",
            "helm-controller",
            "image-reflector-controller",
            "image-automation-controller",
        ] {
            assert!(shardable(c, &v28), "{c}");
        }
        assert!(!shardable("source-watcher", &v28));
        assert!(shardable("source-watcher", &v29));
        assert!(!shardable("notification-controller", &v29));
    }

    fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
        objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name}"))
    }

    fn args(d: &Value) -> &Value {
        &d["spec"]["template"]["spec"]["containers"][0]["args"]
    }

    /// Upstream `internal/builder/templates.go` (`kustomizationTmpl` sharding patch and
    /// `kustomizationShardTmpl`): image-reflector- and image-automation-controller are sharded
    /// like the others, the shard selector is `<key>=<shard>`, the main one `!<key>`, and the
    /// profile patches naming a controller reach its shards (kustomize matches original names).
    #[test]
    fn builds_image_controller_shards_like_the_operator() {
        let spec = json!({
            "distribution": {"version": "2.7.x", "registry": "ghcr.io/fluxcd"},
            "components": ["source-controller", "kustomize-controller",
                           "image-reflector-controller", "image-automation-controller"],
            "cluster": {"domain": "example.internal", "multitenant": true},
            "sharding": {"key": "shard.example.com/name", "shards": ["s1", "s2"]},
        });
        let b = super::super::build::build(&spec, "flux-system", &Version::new(2, 7, 5)).unwrap();
        let events =
            "--events-addr=http://notification-controller.flux-system.svc.example.internal./";
        let base = [
            events,
            "--watch-all-namespaces=true",
            "--log-level=info",
            "--log-encoding=json",
            "--enable-leader-election",
        ];
        let with = |extra: &[&str]| -> Value {
            json!(base.iter().chain(extra.iter()).collect::<Vec<_>>())
        };
        let deployments: Vec<&str> = b
            .objects
            .iter()
            .filter(|o| o["kind"] == "Deployment")
            .map(|o| o["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            deployments,
            [
                "source-controller",
                "source-controller-s1",
                "source-controller-s2",
                "kustomize-controller",
                "kustomize-controller-s1",
                "kustomize-controller-s2",
                "image-reflector-controller",
                "image-reflector-controller-s1",
                "image-reflector-controller-s2",
                "image-automation-controller",
                "image-automation-controller-s1",
                "image-automation-controller-s2",
            ]
        );
        let main = find(&b.objects, "Deployment", "image-reflector-controller");
        assert_eq!(
            args(main),
            &with(&[
                "--watch-label-selector=!shard.example.com/name",
                "--no-cross-namespace-refs=true"
            ])
        );
        let shard = find(&b.objects, "Deployment", "image-reflector-controller-s2");
        assert_eq!(
            args(shard),
            &with(&[
                "--watch-label-selector=shard.example.com/name=s2",
                "--no-cross-namespace-refs=true"
            ])
        );
        assert_eq!(
            shard["metadata"]["annotations"],
            json!({"sharding.fluxcd.io/role": "shard",
                   "kustomize.toolkit.fluxcd.io/ssa": "Ignore",
                   "kustomize.toolkit.fluxcd.io/prune": "Disabled"})
        );
        assert_eq!(
            shard["spec"]["selector"],
            json!({"matchLabels": {"app": "image-reflector-controller-s2"}})
        );
        assert_eq!(
            shard["spec"]["template"]["metadata"],
            json!({"labels": {"app": "image-reflector-controller-s2",
                              "app.kubernetes.io/component": "image-reflector-controller",
                              "app.kubernetes.io/part-of": "flux"},
                   "annotations": {"prometheus.io/port": "8080", "prometheus.io/scrape": "true",
                                   "sharding.fluxcd.io/role": "shard",
                                   "cluster-autoscaler.kubernetes.io/safe-to-evict": "true"}})
        );
        assert_eq!(
            shard["spec"]["template"]["spec"]["serviceAccountName"],
            "image-reflector-controller"
        );
        let kc = find(&b.objects, "Deployment", "kustomize-controller-s1");
        assert_eq!(
            args(kc),
            &with(&[
                "--watch-label-selector=shard.example.com/name=s1",
                "--no-cross-namespace-refs=true",
                "--no-remote-bases=true",
                "--default-service-account=default",
            ])
        );
        let sc = find(&b.objects, "Deployment", "source-controller-s1");
        assert_eq!(
            args(sc),
            &with(&[
                "--storage-adv-addr=source-controller-s1.$(RUNTIME_NAMESPACE).svc.example.internal.",
                "--watch-label-selector=shard.example.com/name=s1",
            ])
        );
        let svc = find(&b.objects, "Service", "source-controller-s1");
        assert_eq!(
            svc["spec"]["selector"],
            json!({"app": "source-controller-s1"})
        );
        assert_eq!(
            svc["metadata"]["annotations"]["sharding.fluxcd.io/role"],
            "shard"
        );
        // No ServiceAccount per shard: the shard kustomization deletes them.
        assert!(!b.objects.iter().any(|o| o["kind"] == "ServiceAccount"
            && o["metadata"]["name"].as_str().unwrap().ends_with("-s1")));
    }

    /// Upstream `kustomizationShardTmpl`: with `storage` and `sharding.storage: persistent`
    /// every shard has its own claim; the main claim's mount excludes shards.
    #[test]
    fn persistent_shard_storage_gets_a_claim_per_shard() {
        let spec = json!({
            "distribution": {"version": "2.7.x", "registry": "ghcr.io/fluxcd"},
            "components": ["source-controller"],
            "storage": {"class": "standard", "size": "10Gi"},
            "sharding": {"shards": ["s1"], "storage": "persistent"},
        });
        let b = super::super::build::build(&spec, "flux-system", &Version::new(2, 7, 5)).unwrap();
        let claim = find(&b.objects, "PersistentVolumeClaim", "source-controller-s1");
        assert_eq!(
            claim["spec"],
            json!({"accessModes": ["ReadWriteOnce"], "storageClassName": "standard",
                   "resources": {"requests": {"storage": "10Gi"}}})
        );
        let sc = find(&b.objects, "Deployment", "source-controller-s1");
        assert_eq!(
            sc["spec"]["template"]["spec"]["volumes"],
            json!([{"name": "persistent-data-s1",
                    "persistentVolumeClaim": {"claimName": "source-controller-s1"}}])
        );
        assert_eq!(
            sc["spec"]["template"]["spec"]["containers"][0]["volumeMounts"],
            json!([{"name": "persistent-data-s1", "mountPath": "/data"}])
        );
        let main = find(&b.objects, "Deployment", "source-controller");
        assert_eq!(
            main["spec"]["template"]["spec"]["volumes"],
            json!([{"name": "persistent-data",
                    "persistentVolumeClaim": {"claimName": "source-controller"}}])
        );
    }

    #[test]
    fn original_name_is_the_controller_of_a_shard_object() {
        let shard = json!({"metadata": {"name": "helm-controller-s1",
            "labels": {"app.kubernetes.io/component": "helm-controller"},
            "annotations": {"sharding.fluxcd.io/role": "shard"}}});
        assert_eq!(original_name(&shard), "helm-controller");
        let main = json!({"metadata": {"name": "webhook-receiver",
            "labels": {"app.kubernetes.io/component": "notification-controller"}}});
        assert_eq!(original_name(&main), "webhook-receiver");
    }
}
