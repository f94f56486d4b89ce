//! Deterministic rendering of what `flux_bootstrap_git` commits under `<path>/flux-system/`: the
//! FluxInstance manifest (`flux-instance.yaml`) and a `kustomization.yaml`
//! (`kustomize.config.k8s.io/v1beta1`) listing the files, plus reading them back.
//!
//! Same input, same bytes: keys come out in a fixed order (`apiVersion`, `kind`, `metadata`
//! {`name`, `namespace`, `labels`, `annotations`}, then the spec in the order of
//! [`FluxInstanceSpec`]; maps sorted), multi-line strings as literal blocks, two-space indent.
//! Server-written metadata and `status` are never rendered. Pure: no I/O, nothing else from this
//! crate.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::flux::instance::{API_VERSION, FluxInstance, FluxInstanceSpec, KIND};

/// Directory under the cluster path holding the Flux manifests.
pub const FLUX_SYSTEM_DIR: &str = "flux-system";
/// File name of the FluxInstance manifest.
pub const INSTANCE_FILE: &str = "flux-instance.yaml";
/// File name of the kustomize index.
pub const KUSTOMIZATION_FILE: &str = "kustomization.yaml";
/// The first line of every rendered file.
pub const HEADER: &str = "# Managed by Terraform (terraform-provider-flux). Changes made here outside Terraform show\n# as a diff in the next plan.\n";

/// Why rendering or reading a manifest failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The repository path is absolute, empty after cleaning, or climbs out with `..`.
    #[error(
        "invalid repository path {0:?}: use a relative path inside the repository without \"..\""
    )]
    ValidatePath(String),
    /// The manifest could not be serialised.
    #[error("rendering YAML: {0}")]
    SerializeYaml(String),
    /// A committed manifest does not parse as a FluxInstance.
    #[error("reading {file}: {message}")]
    ParseManifest {
        /// The file name.
        file: String,
        /// The parser's message.
        message: String,
    },
}

/// One file to commit, with its repository-relative path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    /// Path relative to the repository root (`clusters/prod/flux-system/flux-instance.yaml`).
    pub path: String,
    /// File content.
    pub content: String,
}

/// Cleans a repository path: drops `./`, duplicate and trailing slashes; refuses absolute
/// paths, `..` and backslashes. `"."` or `""` mean the repository root (returned as `""`).
///
/// # Errors
///
/// [`RenderError::ValidatePath`].
pub fn clean_repo_path(path: &str) -> Result<String, RenderError> {
    let err = || RenderError::ValidatePath(path.to_owned());
    if path.starts_with('/') || path.contains('\\') {
        return Err(err());
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(err()),
            other => parts.push(other),
        }
    }
    Ok(parts.join("/"))
}

/// `<path>/flux-system/<file>` for a cleaned path.
fn join(path: &str, file: &str) -> String {
    if path.is_empty() {
        format!("{FLUX_SYSTEM_DIR}/{file}")
    } else {
        format!("{path}/{FLUX_SYSTEM_DIR}/{file}")
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ManifestMeta {
    name: String,
    namespace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    annotations: Option<BTreeMap<String, String>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Manifest<'a> {
    api_version: &'a str,
    kind: &'a str,
    metadata: ManifestMeta,
    spec: &'a FluxInstanceSpec,
}

fn to_yaml<T: Serialize>(value: &T) -> Result<String, RenderError> {
    serde_saphyr::to_string(value).map_err(|e| RenderError::SerializeYaml(e.to_string()))
}

/// The FluxInstance manifest as committed: the header, then the object without server-written
/// metadata or status. Empty label and annotation maps are omitted.
///
/// # Errors
///
/// [`RenderError::SerializeYaml`]; not expected for these types.
pub fn render_instance_manifest(instance: &FluxInstance) -> Result<String, RenderError> {
    let non_empty = |m: &Option<BTreeMap<String, String>>| m.clone().filter(|m| !m.is_empty());
    let manifest = Manifest {
        api_version: API_VERSION,
        kind: KIND,
        metadata: ManifestMeta {
            name: instance.metadata.name.clone().unwrap_or_default(),
            namespace: instance.metadata.namespace.clone().unwrap_or_default(),
            labels: non_empty(&instance.metadata.labels),
            annotations: non_empty(&instance.metadata.annotations),
        },
        spec: &instance.spec,
    };
    Ok(format!("{HEADER}---\n{}", to_yaml(&manifest)?))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct KustomizationIndex<'a> {
    api_version: &'a str,
    kind: &'a str,
    resources: &'a [&'a str],
}

/// A `kustomization.yaml` listing `resources` in the given order.
///
/// # Errors
///
/// [`RenderError::SerializeYaml`]; not expected.
pub fn render_kustomization(resources: &[&str]) -> Result<String, RenderError> {
    let index = KustomizationIndex {
        api_version: "kustomize.config.k8s.io/v1beta1",
        kind: "Kustomization",
        resources,
    };
    Ok(format!("{HEADER}---\n{}", to_yaml(&index)?))
}

/// Every file `flux_bootstrap_git` owns under `<path>/flux-system/`, sorted by path: the
/// FluxInstance manifest and the `kustomization.yaml` listing it, followed by
/// `extra_resources` (files of the directory Terraform does not own but kustomize must keep
/// building, e.g. those a classic bootstrap listed besides the `gotk-*` files).
///
/// # Errors
///
/// [`RenderError::ValidatePath`] for a bad `path`, [`RenderError::SerializeYaml`].
pub fn render_flux_system(
    path: &str,
    instance: &FluxInstance,
    extra_resources: &[String],
) -> Result<Vec<RenderedFile>, RenderError> {
    let path = clean_repo_path(path)?;
    let mut resources = vec![INSTANCE_FILE];
    resources.extend(
        extra_resources
            .iter()
            .map(String::as_str)
            .filter(|r| *r != INSTANCE_FILE),
    );
    Ok(vec![
        RenderedFile {
            path: join(&path, INSTANCE_FILE),
            content: render_instance_manifest(instance)?,
        },
        RenderedFile {
            path: join(&path, KUSTOMIZATION_FILE),
            content: render_kustomization(&resources)?,
        },
    ])
}

/// Reads a committed FluxInstance manifest back (e.g. to diff what is in Git). Comments and
/// formatting are irrelevant; the file must hold exactly one FluxInstance document.
///
/// # Errors
///
/// [`RenderError::ParseManifest`] when the YAML does not parse, holds not exactly one document,
/// or is not a FluxInstance.
pub fn parse_instance_manifest(content: &str) -> Result<FluxInstance, RenderError> {
    let fail = |message: String| RenderError::ParseManifest {
        file: INSTANCE_FILE.to_owned(),
        message,
    };
    let docs: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(content).map_err(|e| fail(e.to_string()))?;
    let [doc] = docs.as_slice() else {
        return Err(fail(format!(
            "expected one YAML document, found {}",
            docs.len()
        )));
    };
    if doc.get("kind").and_then(|k| k.as_str()) != Some(KIND) {
        return Err(fail("the document is not a FluxInstance".into()));
    }
    FluxInstance::from_json(doc.clone()).map_err(|e| fail(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flux::instance::{
        ANNOTATION_REQUESTED_AT, Cluster, ClusterSize, ClusterType, CommonMetadata, Component,
        DEFAULT_COMPONENTS, Distribution, FluxInstanceStatus, Kustomize, KustomizePatch,
        PatchTarget, SyncKind, SyncSpec,
    };
    use pretty_assertions::assert_eq;

    fn check_golden(name: &str, content: &str) {
        crate::flux::golden::check_text("render", name, content);
    }

    fn seed_instance() -> FluxInstance {
        FluxInstance::new(
            "flux-system",
            FluxInstanceSpec {
                distribution: Distribution {
                    version: "2.7.x".into(),
                    registry: "ghcr.io/fluxcd".into(),
                    ..Distribution::default()
                },
                components: Some(DEFAULT_COMPONENTS.to_vec()),
                cluster: Some(Cluster {
                    cluster_type: Some(ClusterType::Kubernetes),
                    size: Some(ClusterSize::Medium),
                    multitenant: Some(false),
                    network_policy: Some(true),
                    domain: Some("cluster.local".into()),
                    ..Cluster::default()
                }),
                sync: Some(SyncSpec {
                    kind: SyncKind::GitRepository,
                    url: "https://git.example.com/platform/fleet.git".into(),
                    git_ref: "refs/heads/main".into(),
                    path: "clusters/production".into(),
                    pull_secret: Some("flux-system".into()),
                    interval: None,
                    name: None,
                    provider: None,
                }),
                ..FluxInstanceSpec::default()
            },
        )
    }

    fn patched_instance() -> FluxInstance {
        let mut instance = seed_instance();
        instance.metadata.annotations = Some(BTreeMap::from([
            (
                "fluxcd.controlplane.io/reconcileTimeout".to_owned(),
                "5m".to_owned(),
            ),
            (
                "fluxcd.controlplane.io/reconcileEvery".to_owned(),
                "1h".to_owned(),
            ),
        ]));
        instance.metadata.labels = Some(BTreeMap::new());
        instance.metadata.uid = Some("0c9f".into());
        instance.metadata.resource_version = Some("42".into());
        instance.status = Some(FluxInstanceStatus {
            last_applied_revision: Some("v2.7.5@sha256:abc".into()),
            ..FluxInstanceStatus::default()
        });
        instance.spec.components = Some(vec![
            Component::SourceController,
            Component::KustomizeController,
            Component::HelmController,
            Component::NotificationController,
            Component::ImageReflectorController,
            Component::ImageAutomationController,
        ]);
        instance.spec.common_metadata = Some(CommonMetadata {
            labels: Some(BTreeMap::from([
                ("team".to_owned(), "platform".to_owned()),
                ("env".to_owned(), "production".to_owned()),
            ])),
            annotations: None,
        });
        instance.spec.kustomize = Some(Kustomize {
            patches: vec![
                KustomizePatch {
                    patch: "- op: add\n  path: /spec/template/spec/containers/0/args/-\n  value: --concurrent=10\n".into(),
                    target: Some(PatchTarget {
                        kind: Some("Deployment".into()),
                        name: Some("kustomize-controller".into()),
                        ..PatchTarget::default()
                    }),
                },
                KustomizePatch {
                    patch: "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: flux-system\nspec:\n  prune: false\n".into(),
                    target: None,
                },
            ],
        });
        instance.spec.wait = Some(true);
        instance
    }

    /// Strings that would read back as numbers, booleans or null unless quoted.
    fn quoting_instance() -> FluxInstance {
        let mut instance = seed_instance();
        instance.spec.distribution.version = "2.7".into();
        instance.spec.common_metadata = Some(CommonMetadata {
            labels: Some(BTreeMap::from([
                ("enabled".to_owned(), "true".to_owned()),
                ("ratio".to_owned(), "1.0".to_owned()),
                ("nothing".to_owned(), "null".to_owned()),
                ("octal".to_owned(), "0755".to_owned()),
                ("empty".to_owned(), String::new()),
                ("template".to_owned(), "<< inputs.x >>".to_owned()),
            ])),
            annotations: None,
        });
        instance
    }

    #[test]
    fn instance_manifests_match_golden_files() {
        let cases = [
            ("seed", seed_instance(), "flux-instance-seed.yaml"),
            ("patched", patched_instance(), "flux-instance-patched.yaml"),
            (
                "scalars-that-need-quotes",
                quoting_instance(),
                "flux-instance-quoting.yaml",
            ),
        ];
        for (name, instance, golden) in cases {
            let rendered = render_instance_manifest(&instance).unwrap();
            check_golden(golden, &rendered);
            // Reading the file back gives the same spec and the rendered metadata only.
            let parsed = parse_instance_manifest(&rendered).unwrap();
            assert_eq!(parsed.spec, instance.spec, "case {name}");
            assert_eq!(parsed.status, None, "case {name}");
            assert_eq!(parsed.metadata.uid, None, "case {name}");
            // Rendering is stable.
            assert_eq!(
                render_instance_manifest(&parsed).unwrap(),
                rendered,
                "case {name}"
            );
        }
    }

    #[test]
    fn flux_system_files_have_stable_paths() {
        let files = render_flux_system("./clusters//production/", &seed_instance(), &[]).unwrap();
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "clusters/production/flux-system/flux-instance.yaml",
                "clusters/production/flux-system/kustomization.yaml"
            ]
        );
        check_golden("kustomization.yaml", &files[1].content);
        let root = render_flux_system(".", &seed_instance(), &[]).unwrap();
        assert_eq!(root[0].path, "flux-system/flux-instance.yaml");
        let migrated = render_flux_system(
            "clusters/production",
            &seed_instance(),
            &["tenants.yaml".to_owned(), "flux-instance.yaml".to_owned()],
        )
        .unwrap();
        check_golden(
            "kustomization-with-extra-resources.yaml",
            &migrated[1].content,
        );
    }

    #[test]
    fn repository_paths_are_validated() {
        let cases: &[(&str, Result<&str, ()>)] = &[
            ("clusters/prod", Ok("clusters/prod")),
            ("./clusters/prod/", Ok("clusters/prod")),
            ("", Ok("")),
            (".", Ok("")),
            ("../other", Err(())),
            ("clusters/../../x", Err(())),
            ("/etc", Err(())),
            ("clusters\\prod", Err(())),
        ];
        for (input, want) in cases {
            let got = clean_repo_path(input).map_err(|_| ());
            assert_eq!(got, want.map(str::to_owned), "input {input:?}");
        }
        assert_eq!(
            clean_repo_path("../x").unwrap_err().to_string(),
            "invalid repository path \"../x\": use a relative path inside the repository without \"..\""
        );
    }

    #[test]
    fn committed_manifests_are_read_back() {
        let edited = "apiVersion: fluxcd.controlplane.io/v1\nkind: FluxInstance\nmetadata: {name: flux, namespace: flux-system, annotations: {reconcile.fluxcd.io/requestedAt: now}}\nspec:\n  distribution: {version: 2.6.x, registry: ghcr.io/fluxcd}\n";
        let parsed = parse_instance_manifest(edited).unwrap();
        assert_eq!(parsed.spec.distribution.version, "2.6.x");
        assert_eq!(
            parsed
                .metadata
                .annotations
                .and_then(|a| a.get(ANNOTATION_REQUESTED_AT).cloned()),
            Some("now".to_owned())
        );
        let errors = [
            (
                "kind: A\n---\nkind: B\n",
                "reading flux-instance.yaml: expected one YAML document, found 2",
            ),
            (
                "apiVersion: v1\nkind: ConfigMap\n",
                "reading flux-instance.yaml: the document is not a FluxInstance",
            ),
        ];
        for (input, want) in errors {
            assert_eq!(
                parse_instance_manifest(input).unwrap_err().to_string(),
                want
            );
        }
    }
}
