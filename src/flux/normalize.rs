//! Normalisation of FluxInstance specs, so that "what the user declared" and "what the API
//! server stores" compare equal when they mean the same thing, plus the field-level diff and the
//! CRD's validation rules checked locally.
//!
//! Two levels:
//!
//! - [`with_server_defaults`]: exactly the defaults the v0.58.1 CRD fills in on admission —
//!   `wait: true`, `migrateResources: true`, and *only inside blocks that are present*
//!   `cluster.{type: kubernetes, domain: cluster.local, networkPolicy: true, multitenant: false,
//!   multitenantWorkloadIdentity: false}`, `sharding.key: sharding.fluxcd.io/key`,
//!   `sync.interval: 1m`. This predicts the stored object.
//! - [`normalize`]: the server defaults plus the provider's and operator's: `distribution.registry`
//!   defaults to `ghcr.io/fluxcd`, absent or empty `components` means the four core controllers
//!   (applied by the operator in Go), components are a set (canonical order, no duplicates), and
//!   empty `commonMetadata` maps or an empty `kustomize` block mean "absent". Compare specs in
//!   this form.
//!
//! `sync.name` is deliberately not filled in (the operator defaults it to the namespace at run
//! time); [`crate::flux::hazards`] compares the effective names. Pure: no I/O, nothing else from
//! this crate.

use crate::flux::duration::parse_duration;
use crate::flux::instance::{
    Cluster, ClusterType, Component, DEFAULT_COMPONENTS, DEFAULT_REGISTRY, FluxInstanceSpec,
    ShardingStorage, SyncKind, SyncProvider,
};
use crate::flux::semantic::{DiffOptions, FieldChange, diff_values};

/// CRD default of `cluster.domain`.
pub const DEFAULT_CLUSTER_DOMAIN: &str = "cluster.local";
/// CRD default of `sharding.key`.
pub const DEFAULT_SHARDING_KEY: &str = "sharding.fluxcd.io/key";
/// CRD default of `sync.interval`.
pub const DEFAULT_SYNC_INTERVAL: &str = "1m";

/// The spec as the API server stores it after applying the CRD defaults.
pub fn with_server_defaults(spec: &FluxInstanceSpec) -> FluxInstanceSpec {
    let mut out = spec.clone();
    out.wait.get_or_insert(true);
    out.migrate_resources.get_or_insert(true);
    if let Some(cluster) = out.cluster.as_mut() {
        cluster.cluster_type.get_or_insert(ClusterType::Kubernetes);
        cluster
            .domain
            .get_or_insert_with(|| DEFAULT_CLUSTER_DOMAIN.to_owned());
        cluster.network_policy.get_or_insert(true);
        cluster.multitenant.get_or_insert(false);
        cluster.multitenant_workload_identity.get_or_insert(false);
    }
    if let Some(sharding) = out.sharding.as_mut() {
        sharding
            .key
            .get_or_insert_with(|| DEFAULT_SHARDING_KEY.to_owned());
    }
    if let Some(sync) = out.sync.as_mut() {
        sync.interval
            .get_or_insert_with(|| DEFAULT_SYNC_INTERVAL.to_owned());
    }
    out
}

/// The canonical form for comparisons (see the module documentation).
pub fn normalize(spec: &FluxInstanceSpec) -> FluxInstanceSpec {
    let mut out = with_server_defaults(spec);
    if out.distribution.registry.is_empty() {
        out.distribution.registry = DEFAULT_REGISTRY.to_owned();
    }
    out.components = Some(canonical_components(out.components.as_deref()));
    if let Some(meta) = out.common_metadata.as_mut() {
        if meta.labels.as_ref().is_some_and(|m| m.is_empty()) {
            meta.labels = None;
        }
        if meta.annotations.as_ref().is_some_and(|m| m.is_empty()) {
            meta.annotations = None;
        }
        if meta.labels.is_none() && meta.annotations.is_none() {
            out.common_metadata = None;
        }
    }
    if out.kustomize.as_ref().is_some_and(|k| k.patches.is_empty()) {
        out.kustomize = None;
    }
    out
}

/// The components in effect: the four core controllers when none are given, otherwise the given
/// set in the API's documented order without duplicates.
pub fn canonical_components(components: Option<&[Component]>) -> Vec<Component> {
    match components {
        None | Some([]) => DEFAULT_COMPONENTS.to_vec(),
        Some(list) => {
            let mut out = list.to_vec();
            out.sort();
            out.dedup();
            out
        }
    }
}

/// Paths whose value is a YAML string compared with [`crate::flux::semantic::yaml_equal`].
const YAML_STRINGS: &[&str] = &["kustomize.patches[*].patch"];
/// Paths compared as a whole.
const ATOMIC: &[&str] = &["components"];

/// The differences between the desired and the live spec, both normalised, field by field
/// (paths in API names relative to `spec`, e.g. `cluster.size`, `components`,
/// `kustomize.patches[0].patch`). Patch strings compare semantically. Empty when equivalent.
pub fn diff_specs(desired: &FluxInstanceSpec, live: &FluxInstanceSpec) -> Vec<FieldChange> {
    let to_value = |spec: &FluxInstanceSpec| {
        serde_json::to_value(normalize(spec)).unwrap_or(serde_json::Value::Null)
    };
    diff_values(
        &to_value(desired),
        &to_value(live),
        &DiffOptions {
            yaml_strings: YAML_STRINGS,
            atomic: ATOMIC,
        },
    )
}

/// A rule of the FluxInstance CRD that a spec breaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecViolation {
    /// The offending field, in API names relative to `spec` (`sync.provider`).
    pub field: String,
    /// The CRD's message (or an equivalent one for schema rules).
    pub message: String,
}

/// Checks the CRD's schema patterns and CEL rules that can be checked without the API server,
/// so that a plan without cluster access still catches them. A server-side dry-run remains the
/// authority; this is a subset of it with the same messages where the CRD has one.
pub fn validate_spec(spec: &FluxInstanceSpec) -> Vec<SpecViolation> {
    let mut out = Vec::new();
    let mut violation = |field: &str, message: String| {
        out.push(SpecViolation {
            field: field.to_owned(),
            message,
        });
    };
    if spec.distribution.version.trim().is_empty() {
        violation("distribution.version", "must not be empty".into());
    }
    if let Some(artifact) = &spec.distribution.artifact
        && !artifact.starts_with("oci://")
    {
        violation(
            "distribution.artifact",
            format!("{artifact:?} must match ^oci://.*$"),
        );
    }
    if let Some(Cluster {
        object_level_workload_identity,
        multitenant_workload_identity: Some(true),
        ..
    }) = &spec.cluster
        && *object_level_workload_identity != Some(true)
    {
        violation(
            "cluster.multitenantWorkloadIdentity",
            ".objectLevelWorkloadIdentity must be set to true when .multitenantWorkloadIdentity \
             is set to true"
                .into(),
        );
    }
    if let Some(sharding) = &spec.sharding {
        if sharding.shards.is_empty() {
            violation("sharding.shards", "must have at least 1 item".into());
        }
        if sharding.storage == Some(ShardingStorage::Persistent) && spec.storage.is_none() {
            violation(
                "storage",
                ".spec.storage must be set when .spec.sharding.storage is 'persistent'".into(),
            );
        }
    }
    if let Some(sync) = &spec.sync {
        if let Some(interval) = &sync.interval
            && let Err(e) = parse_duration(interval)
        {
            violation("sync.interval", e.to_string());
        }
        if let Some(name) = &sync.name
            && name.chars().count() > 63
        {
            violation("sync.name", "may not be longer than 63 characters".into());
        }
        match sync.provider {
            Some(SyncProvider::Gcp)
                if !matches!(sync.kind, SyncKind::OciRepository | SyncKind::Bucket) =>
            {
                violation(
                    "sync.provider",
                    "sync.provider 'gcp' is only supported for OCIRepository and Bucket".into(),
                );
            }
            Some(SyncProvider::Github) if sync.kind != SyncKind::GitRepository => violation(
                "sync.provider",
                "sync.provider 'github' is only supported for GitRepository".into(),
            ),
            _ => {}
        }
        for (field, value) in [
            ("sync.url", &sync.url),
            ("sync.ref", &sync.git_ref),
            ("sync.path", &sync.path),
        ] {
            if value.is_empty() {
                violation(field, "must not be empty".into());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flux::instance::{
        ClusterSize, CommonMetadata, Distribution, Kustomize, KustomizePatch, Sharding, Storage,
        SyncSpec,
    };
    use pretty_assertions::assert_eq;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn spec(value: serde_json::Value) -> FluxInstanceSpec {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn server_defaults_fill_only_present_blocks() {
        let cases = [
            (
                "minimal",
                json!({"distribution": {"version": "2.7.x", "registry": "ghcr.io/fluxcd"}}),
                json!({"distribution": {"version": "2.7.x", "registry": "ghcr.io/fluxcd"},
                       "wait": true, "migrateResources": true}),
            ),
            (
                "blocks-present",
                json!({"distribution": {"version": "2.x", "registry": "r"},
                       "cluster": {"size": "small"},
                       "sharding": {"shards": ["a"]},
                       "sync": {"kind": "GitRepository", "url": "u", "ref": "refs/heads/main", "path": "p"},
                       "wait": false}),
                json!({"distribution": {"version": "2.x", "registry": "r"},
                       "cluster": {"type": "kubernetes", "size": "small", "multitenant": false,
                                   "networkPolicy": true, "domain": "cluster.local",
                                   "multitenantWorkloadIdentity": false},
                       "sharding": {"key": "sharding.fluxcd.io/key", "shards": ["a"]},
                       "sync": {"kind": "GitRepository", "url": "u", "ref": "refs/heads/main", "path": "p", "interval": "1m"},
                       "wait": false, "migrateResources": true}),
            ),
            (
                "explicit-values-kept",
                json!({"distribution": {"version": "2.x", "registry": "r"},
                       "cluster": {"networkPolicy": false, "domain": "corp.local", "type": "openshift"}}),
                json!({"distribution": {"version": "2.x", "registry": "r"},
                       "cluster": {"type": "openshift", "multitenant": false, "networkPolicy": false,
                                   "domain": "corp.local", "multitenantWorkloadIdentity": false},
                       "wait": true, "migrateResources": true}),
            ),
        ];
        for (name, input, want) in cases {
            let got = serde_json::to_value(with_server_defaults(&spec(input))).unwrap();
            assert_eq!(got, want, "case {name}");
        }
    }

    #[test]
    fn normalisation_adds_provider_and_operator_defaults() {
        let input = FluxInstanceSpec {
            distribution: Distribution {
                version: "2.7.x".into(),
                ..Distribution::default()
            },
            components: Some(vec![
                Component::HelmController,
                Component::SourceController,
                Component::HelmController,
            ]),
            common_metadata: Some(CommonMetadata {
                labels: Some(BTreeMap::new()),
                annotations: None,
            }),
            kustomize: Some(Kustomize { patches: vec![] }),
            ..FluxInstanceSpec::default()
        };
        assert_eq!(
            serde_json::to_value(normalize(&input)).unwrap(),
            json!({"distribution": {"version": "2.7.x", "registry": "ghcr.io/fluxcd"},
                   "components": ["source-controller", "helm-controller"],
                   "wait": true, "migrateResources": true})
        );
        let absent = FluxInstanceSpec {
            components: None,
            ..input.clone()
        };
        assert_eq!(
            normalize(&absent).components,
            Some(DEFAULT_COMPONENTS.to_vec())
        );
    }

    fn seed() -> FluxInstanceSpec {
        FluxInstanceSpec {
            distribution: Distribution {
                version: "2.7.x".into(),
                registry: "ghcr.io/fluxcd".into(),
                ..Distribution::default()
            },
            components: Some(DEFAULT_COMPONENTS.to_vec()),
            cluster: Some(Cluster {
                size: Some(ClusterSize::Medium),
                ..Cluster::default()
            }),
            kustomize: Some(Kustomize {
                patches: vec![KustomizePatch {
                    patch: "- op: add\n  path: /spec/x\n  value: 1\n".into(),
                    target: None,
                }],
            }),
            sync: Some(SyncSpec {
                kind: SyncKind::GitRepository,
                url: "https://git.example/fleet.git".into(),
                git_ref: "refs/heads/main".into(),
                path: "clusters/prod".into(),
                pull_secret: Some("flux-system".into()),
                interval: None,
                name: None,
                provider: None,
            }),
            ..FluxInstanceSpec::default()
        }
    }

    #[test]
    fn diffs_after_normalisation() {
        let desired = seed();
        let mut server_stored = with_server_defaults(&desired);
        server_stored.components = None;
        server_stored.kustomize = Some(Kustomize {
            patches: vec![KustomizePatch {
                patch: "[{\"op\": \"add\", \"path\": \"/spec/x\", \"value\": 1}]".into(),
                target: None,
            }],
        });
        assert_eq!(diff_specs(&desired, &server_stored), vec![], "fresh apply");

        let mut drifted = server_stored.clone();
        if let Some(c) = drifted.cluster.as_mut() {
            c.size = Some(ClusterSize::Large);
        }
        drifted.components = Some(vec![
            Component::SourceController,
            Component::KustomizeController,
            Component::NotificationController,
        ]);
        let got: Vec<(String, Option<serde_json::Value>, Option<serde_json::Value>)> =
            diff_specs(&desired, &drifted)
                .into_iter()
                .map(|c| (c.path.to_string(), c.desired, c.live))
                .collect();
        assert_eq!(
            got,
            vec![
                (
                    "cluster.size".into(),
                    Some(json!("medium")),
                    Some(json!("large"))
                ),
                (
                    "components".into(),
                    Some(json!([
                        "source-controller",
                        "kustomize-controller",
                        "helm-controller",
                        "notification-controller"
                    ])),
                    Some(json!([
                        "source-controller",
                        "kustomize-controller",
                        "notification-controller"
                    ]))
                ),
            ]
        );
    }

    #[test]
    fn crd_rules_are_checked_locally() {
        let mut bad = seed();
        bad.distribution.artifact = Some("https://example/manifests".into());
        bad.cluster = Some(Cluster {
            multitenant_workload_identity: Some(true),
            ..Cluster::default()
        });
        bad.sharding = Some(Sharding {
            key: None,
            shards: vec![],
            storage: Some(ShardingStorage::Persistent),
        });
        if let Some(sync) = bad.sync.as_mut() {
            sync.interval = Some("1 minute".into());
            sync.provider = Some(SyncProvider::Gcp);
            sync.name = Some("x".repeat(64));
            sync.path = String::new();
        }
        let got: Vec<(String, String)> = validate_spec(&bad)
            .into_iter()
            .map(|v| (v.field, v.message))
            .collect();
        assert_eq!(
            got,
            vec![
                ("distribution.artifact".into(), "\"https://example/manifests\" must match ^oci://.*$".into()),
                ("cluster.multitenantWorkloadIdentity".into(), ".objectLevelWorkloadIdentity must be set to true when .multitenantWorkloadIdentity is set to true".into()),
                ("sharding.shards".into(), "must have at least 1 item".into()),
                ("storage".into(), ".spec.storage must be set when .spec.sharding.storage is 'persistent'".into()),
                ("sync.interval".into(), "invalid duration \"1 minute\": expected a number followed by a unit (ms, s, m, h), e.g. \"1m\" or \"1h30m\"".into()),
                ("sync.name".into(), "may not be longer than 63 characters".into()),
                ("sync.provider".into(), "sync.provider 'gcp' is only supported for OCIRepository and Bucket".into()),
                ("sync.path".into(), "must not be empty".into()),
            ]
        );
        let mut good = seed();
        good.storage = Some(Storage {
            class: "standard".into(),
            size: "1Gi".into(),
        });
        assert_eq!(validate_spec(&good), vec![]);
    }
}
