//! Helpers for migrating a classic `flux bootstrap` installation to the Flux Operator:
//! detection from the `gitrepositories.source.toolkit.fluxcd.io` CRD labels, extraction of the
//! settings from the `flux-system` GitRepository and Kustomization and the controller
//! Deployments (all given as parsed JSON), conversion of the patches in
//! `<path>/flux-system/kustomization.yaml` (`patches`, and the legacy `patchesStrategicMerge`
//! and `patchesJson6902`) into `kustomize.patches`, and the equivalent FluxInstance spec.
//!
//! Detection follows the operator's own reporter: a `app.kubernetes.io/managed-by` label on the
//! CRD names the manager (`flux-operator`, `Helm`); otherwise a `kustomize.toolkit.fluxcd.io/name`
//! label means `flux bootstrap`. Pure: no I/O (the caller reads the cluster and the repository),
//! nothing else from this crate.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::flux::instance::{
    Component, DEFAULT_REGISTRY, Distribution, FluxInstanceSpec, Kustomize, KustomizePatch,
    LABEL_KUSTOMIZE_NAME, PatchTarget, SyncKind, SyncSpec,
};
use crate::flux::normalize::canonical_components;
use crate::flux::status::component_of_deployment;

/// The CRD whose labels tell who installed Flux.
pub const GITREPOSITORIES_CRD: &str = "gitrepositories.source.toolkit.fluxcd.io";
/// The files `flux bootstrap` writes under `<path>/flux-system/`.
pub const CLASSIC_FILES: [&str; 2] = ["gotk-components.yaml", "gotk-sync.yaml"];
/// Label with the manager of an installation.
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Label with the Flux version of an installation.
pub const LABEL_VERSION: &str = "app.kubernetes.io/version";
/// Label marking Flux's own objects.
pub const LABEL_PART_OF: &str = "app.kubernetes.io/part-of";

/// Why a classic installation could not be read or converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BootstrapError {
    /// A required field of the `flux-system` GitRepository or Kustomization is missing.
    #[error("reading the {kind} {name:?}: {field} is missing")]
    ReadSyncObject {
        /// `GitRepository` or `Kustomization`.
        kind: &'static str,
        /// The object's name.
        name: String,
        /// The missing field.
        field: &'static str,
    },
    /// The GitRepository's ref cannot be expressed as a FluxInstance `sync.ref`.
    #[error(
        "the GitRepository {name:?} follows {reference}, which a FluxInstance sync cannot express \
         (use a branch, a tag or a ref name)"
    )]
    ConvertRef {
        /// The object's name.
        name: String,
        /// The unsupported ref (`semver: ">=1.0"`, `commit: ...`).
        reference: String,
    },
    /// Neither the CRD nor the controllers carry an `app.kubernetes.io/version` label.
    #[error(
        "cannot tell the installed Flux version: no {LABEL_VERSION} label on the CRD or the controllers"
    )]
    ReadVersion,
    /// `flux-system/kustomization.yaml` does not parse.
    #[error("parsing flux-system/kustomization.yaml: {0}")]
    ParseKustomization(String),
    /// A patch refers to a file that was not provided.
    #[error(
        "flux-system/kustomization.yaml refers to the patch file {0:?}, which is not in the repository"
    )]
    ReadPatchFile(String),
}

/// Who installed Flux, from the `gitrepositories.source.toolkit.fluxcd.io` CRD.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InstallKind {
    /// The CRD does not exist: Flux is not installed.
    NotInstalled,
    /// Installed by `flux bootstrap` (or the official Terraform provider, which runs it).
    FluxBootstrap,
    /// Installed by the named manager (`flux-operator`, `Helm`).
    ManagedBy(String),
    /// Installed some other way (`flux install`, plain `kubectl apply`).
    Unknown,
}

fn label<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object
        .pointer("/metadata/labels")
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
}

fn text<'a>(object: &'a Value, pointer: &str) -> Option<&'a str> {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Tells who installed Flux from the `gitrepositories.source.toolkit.fluxcd.io` CRD (`None` when
/// it does not exist).
pub fn detect_install(gitrepositories_crd: Option<&Value>) -> InstallKind {
    let Some(crd) = gitrepositories_crd else {
        return InstallKind::NotInstalled;
    };
    if let Some(manager) = label(crd, LABEL_MANAGED_BY) {
        return InstallKind::ManagedBy(manager.to_owned());
    }
    if label(crd, LABEL_KUSTOMIZE_NAME).is_some() {
        return InstallKind::FluxBootstrap;
    }
    InstallKind::Unknown
}

/// The settings of a classic installation, as `terraform import` records them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassicBootstrap {
    /// The namespace (`flux-system`).
    pub namespace: String,
    /// The name of the GitRepository and Kustomization (`flux-system`).
    pub sync_name: String,
    /// The repository URL.
    pub url: String,
    /// The branch, when the GitRepository follows one.
    pub branch: Option<String>,
    /// The ref in FluxInstance form (`refs/heads/main`).
    pub git_ref: String,
    /// The Kustomization path as written (`./clusters/production`).
    pub path: String,
    /// The Secret with the Git credentials.
    pub secret_name: Option<String>,
    /// The GitRepository interval.
    pub interval: Option<String>,
    /// The installed components, from the controller Deployments.
    pub components: Vec<Component>,
    /// The installed Flux version (`v2.7.5`).
    pub version: String,
    /// The image registry of the controllers (`ghcr.io/fluxcd`).
    pub registry: Option<String>,
    /// Settings of the sync objects the FluxInstance cannot carry over (e.g.
    /// `Kustomization spec.decryption`); each needs a `kustomize.patches` entry or is lost.
    pub warnings: Vec<String>,
}

impl ClassicBootstrap {
    /// The cluster directory in the repository, cleaned (`clusters/production`).
    pub fn repo_path(&self) -> String {
        self.path
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// The registry part of a controller image (`ghcr.io/fluxcd/source-controller:v1.7.4` →
/// `ghcr.io/fluxcd`).
pub fn registry_of_image(image: &str) -> Option<String> {
    let name_end = image.find('@').unwrap_or(image.len());
    let last_slash = image[..name_end].rfind('/')?;
    Some(image[..last_slash].to_owned()).filter(|r| !r.is_empty())
}

const GIT_REPOSITORY_KNOWN: [&str; 4] = ["interval", "ref", "secretRef", "url"];
const KUSTOMIZATION_KNOWN: [&str; 4] = ["interval", "path", "prune", "sourceRef"];

/// Reads a classic installation from the `flux-system` GitRepository and Kustomization, the
/// controller Deployments in the namespace, and the gitrepositories CRD.
///
/// # Errors
///
/// [`BootstrapError::ReadSyncObject`], [`BootstrapError::ConvertRef`],
/// [`BootstrapError::ReadVersion`].
pub fn read_classic(
    git_repository: &Value,
    kustomization: &Value,
    deployments: &[Value],
    gitrepositories_crd: Option<&Value>,
) -> Result<ClassicBootstrap, BootstrapError> {
    let name = text(git_repository, "/metadata/name")
        .unwrap_or("flux-system")
        .to_owned();
    let missing = |kind, field| BootstrapError::ReadSyncObject {
        kind,
        name: name.clone(),
        field,
    };
    let namespace = text(git_repository, "/metadata/namespace")
        .unwrap_or("flux-system")
        .to_owned();
    let url = text(git_repository, "/spec/url")
        .ok_or_else(|| missing("GitRepository", "spec.url"))?
        .to_owned();
    let (branch, git_ref) = match git_repository.pointer("/spec/ref") {
        None => (Some("master".to_owned()), "refs/heads/master".to_owned()),
        Some(reference) => {
            if let Some(name) = text(reference, "/name") {
                let branch = name.strip_prefix("refs/heads/").map(str::to_owned);
                (branch, name.to_owned())
            } else if let Some(branch) = text(reference, "/branch") {
                (Some(branch.to_owned()), format!("refs/heads/{branch}"))
            } else if let Some(tag) = text(reference, "/tag") {
                (None, format!("refs/tags/{tag}"))
            } else {
                return Err(BootstrapError::ConvertRef {
                    name: name.clone(),
                    reference: serde_json::to_string(reference).unwrap_or_default(),
                });
            }
        }
    };
    let path = text(kustomization, "/spec/path")
        .ok_or_else(|| missing("Kustomization", "spec.path"))?
        .to_owned();
    let mut warnings = Vec::new();
    for (kind, object, known) in [
        ("GitRepository", git_repository, &GIT_REPOSITORY_KNOWN[..]),
        ("Kustomization", kustomization, &KUSTOMIZATION_KNOWN[..]),
    ] {
        if let Some(Value::Object(spec)) = object.get("spec") {
            for key in spec.keys().filter(|k| !known.contains(&k.as_str())) {
                warnings.push(format!(
                    "{kind} {name:?} sets spec.{key}, which the FluxInstance does not carry over; \
                     add a kustomize patch for it"
                ));
            }
        }
    }
    if kustomization.pointer("/spec/prune") == Some(&Value::Bool(false)) {
        warnings.push(format!(
            "Kustomization {name:?} has prune: false; the FluxInstance's Kustomization prunes \
             unless patched"
        ));
    }
    let flux_deployments: Vec<&Value> = deployments
        .iter()
        .filter(|d| label(d, LABEL_PART_OF) == Some("flux"))
        .collect();
    let mut components = Vec::new();
    for deployment in &flux_deployments {
        let deployment_name = text(deployment, "/metadata/name").unwrap_or_default();
        match component_of_deployment(deployment_name) {
            Some(c) if deployment_name == c.as_str() => components.push(c),
            Some(_) => {}
            None => warnings.push(format!(
                "the Deployment {deployment_name:?} is not a Flux component the operator manages"
            )),
        }
    }
    let version = gitrepositories_crd
        .and_then(|crd| label(crd, LABEL_VERSION))
        .or_else(|| {
            flux_deployments
                .iter()
                .find_map(|d| label(d, LABEL_VERSION))
        })
        .ok_or(BootstrapError::ReadVersion)?
        .to_owned();
    let images: Vec<&str> = flux_deployments
        .iter()
        .filter_map(|d| text(d, "/spec/template/spec/containers/0/image"))
        .collect();
    let registry = images
        .iter()
        .find(|i| i.contains("/source-controller"))
        .or(images.first())
        .and_then(|i| registry_of_image(i));
    Ok(ClassicBootstrap {
        namespace,
        sync_name: name.clone(),
        url,
        branch,
        git_ref,
        path,
        secret_name: text(git_repository, "/spec/secretRef/name").map(str::to_owned),
        interval: text(git_repository, "/spec/interval").map(str::to_owned),
        components: canonical_components(Some(&components)),
        version,
        registry,
        warnings,
    })
}

/// What `<path>/flux-system/kustomization.yaml` of a classic install holds, converted.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct FluxSystemKustomization {
    /// Resources other than the `gotk-*` files, to keep after the migration (pass them to
    /// [`crate::flux::render::render_flux_system`]).
    pub extra_resources: Vec<String>,
    /// Every patch, converted to `kustomize.patches` entries, in this order: `patches`,
    /// `patchesJson6902`, then `patchesStrategicMerge` (one entry per document).
    pub patches: Vec<KustomizePatch>,
    /// Fields that are not carried over (`images`, `namespace`, ...).
    pub warnings: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct KustomizationFile {
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    patches: Vec<PatchEntry>,
    #[serde(default)]
    patches_strategic_merge: Vec<String>,
    #[serde(default)]
    patches_json6902: Vec<PatchEntry>,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
struct PatchEntry {
    #[serde(default)]
    patch: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    target: Option<PatchTarget>,
}

/// Splits a multi-document patch file into one patch per document, keeping each document's text.
fn split_documents(content: &str) -> Vec<String> {
    let mut docs = vec![String::new()];
    for line in content.lines() {
        if line.trim_end() == "---" {
            docs.push(String::new());
        } else if let Some(current) = docs.last_mut() {
            current.push_str(line);
            current.push('\n');
        }
    }
    docs.into_iter()
        .filter(|d| {
            d.lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        })
        .collect()
}

/// Reads `flux-system/kustomization.yaml` of a classic install. `files` holds the other files of
/// the `flux-system/` directory by name (relative to it), for patches given by `path`.
///
/// # Errors
///
/// [`BootstrapError::ParseKustomization`], [`BootstrapError::ReadPatchFile`].
pub fn read_flux_system_kustomization(
    content: &str,
    files: &BTreeMap<String, String>,
) -> Result<FluxSystemKustomization, BootstrapError> {
    let parsed: KustomizationFile = serde_saphyr::from_str(content)
        .map_err(|e| BootstrapError::ParseKustomization(e.to_string()))?;
    let file = |path: &str| -> Result<String, BootstrapError> {
        let clean = path.trim_start_matches("./");
        files
            .get(clean)
            .cloned()
            .ok_or_else(|| BootstrapError::ReadPatchFile(path.to_owned()))
    };
    let mut out = FluxSystemKustomization {
        extra_resources: parsed
            .resources
            .iter()
            .filter(|r| !CLASSIC_FILES.contains(&r.trim_start_matches("./")))
            .cloned()
            .collect(),
        ..FluxSystemKustomization::default()
    };
    for entry in parsed.patches.into_iter().chain(parsed.patches_json6902) {
        let patch = match (entry.patch, entry.path) {
            (Some(patch), _) => patch,
            (None, Some(path)) => file(&path)?,
            (None, None) => {
                return Err(BootstrapError::ParseKustomization(
                    "a patch entry has neither patch nor path".into(),
                ));
            }
        };
        out.patches.push(KustomizePatch {
            patch,
            target: entry.target,
        });
    }
    for entry in parsed.patches_strategic_merge {
        let inline = entry.contains('\n') || entry.contains(": ");
        let content = if inline { entry } else { file(&entry)? };
        for doc in split_documents(&content) {
            out.patches.push(KustomizePatch {
                patch: doc,
                target: None,
            });
        }
    }
    for key in parsed.other.keys() {
        if !matches!(key.as_str(), "apiVersion" | "kind") {
            out.warnings.push(format!(
                "flux-system/kustomization.yaml sets {key}, which is not carried over to the \
                 FluxInstance"
            ));
        }
    }
    Ok(out)
}

/// The FluxInstance spec equivalent to a classic installation: the exact installed version (so
/// the operator adopts the controllers without upgrading them), the same registry and
/// components, a GitRepository sync with the same URL, ref, path, Secret and interval (and the
/// same object names), and the given patches.
pub fn instance_spec(classic: &ClassicBootstrap, patches: Vec<KustomizePatch>) -> FluxInstanceSpec {
    FluxInstanceSpec {
        distribution: Distribution {
            version: classic
                .version
                .strip_prefix('v')
                .unwrap_or(&classic.version)
                .to_owned(),
            registry: classic
                .registry
                .clone()
                .unwrap_or_else(|| DEFAULT_REGISTRY.to_owned()),
            ..Distribution::default()
        },
        components: Some(classic.components.clone()),
        kustomize: (!patches.is_empty()).then_some(Kustomize { patches }),
        sync: Some(SyncSpec {
            kind: SyncKind::GitRepository,
            url: classic.url.clone(),
            git_ref: classic.git_ref.clone(),
            path: classic.path.clone(),
            pull_secret: classic.secret_name.clone(),
            interval: classic.interval.clone(),
            name: (classic.sync_name != classic.namespace).then(|| classic.sync_name.clone()),
            provider: None,
        }),
        ..FluxInstanceSpec::default()
    }
}

/// The credentials Flux pulls the repository with, written into the sync Secret under the keys
/// source-controller reads.
#[derive(Clone, PartialEq, Eq)]
pub enum GitCredentials {
    /// HTTPS basic auth: keys `username`, `password`.
    Basic {
        /// User name.
        username: String,
        /// Password or token.
        password: String,
    },
    /// HTTPS bearer token: key `bearerToken`.
    Bearer {
        /// The token.
        token: String,
    },
    /// A GitHub App (Flux's `provider: github`): keys `githubAppID`, `githubAppInstallationID`
    /// or `githubAppInstallationOwner`, `githubAppPrivateKey`, and `githubAppBaseURL` for
    /// GitHub Enterprise Server.
    GitHubApp {
        /// The app's ID.
        app_id: String,
        /// The installation's ID (or give the owner).
        installation_id: Option<String>,
        /// The installation's owner.
        installation_owner: Option<String>,
        /// The app's private key (PEM).
        private_key: String,
        /// The API base URL, when not github.com's.
        base_url: Option<String>,
    },
    /// SSH: keys `identity`, `known_hosts`, and `password` for an encrypted key.
    Ssh {
        /// The private key (PEM / OpenSSH format).
        identity: String,
        /// `known_hosts` lines for the server.
        known_hosts: String,
        /// The key's passphrase.
        password: Option<String>,
    },
}

impl std::fmt::Debug for GitCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets.
        let kind = match self {
            Self::Basic { .. } => "Basic",
            Self::Bearer { .. } => "Bearer",
            Self::GitHubApp { .. } => "GitHubApp",
            Self::Ssh { .. } => "Ssh",
        };
        write!(f, "GitCredentials::{kind}(<redacted>)")
    }
}

/// The sync Secret's data: the credentials' keys, plus `ca.crt` when a CA is given.
pub fn sync_secret_data(
    credentials: &GitCredentials,
    ca_crt: Option<&str>,
) -> BTreeMap<String, String> {
    let mut data = BTreeMap::new();
    match credentials {
        GitCredentials::Basic { username, password } => {
            data.insert("username".to_owned(), username.clone());
            data.insert("password".to_owned(), password.clone());
        }
        GitCredentials::Bearer { token } => {
            data.insert("bearerToken".to_owned(), token.clone());
        }
        GitCredentials::GitHubApp {
            app_id,
            installation_id,
            installation_owner,
            private_key,
            base_url,
        } => {
            data.insert("githubAppID".to_owned(), app_id.clone());
            if let Some(id) = installation_id {
                data.insert("githubAppInstallationID".to_owned(), id.clone());
            }
            if let Some(owner) = installation_owner {
                data.insert("githubAppInstallationOwner".to_owned(), owner.clone());
            }
            data.insert("githubAppPrivateKey".to_owned(), private_key.clone());
            if let Some(url) = base_url {
                data.insert("githubAppBaseURL".to_owned(), url.clone());
            }
        }
        GitCredentials::Ssh {
            identity,
            known_hosts,
            password,
        } => {
            data.insert("identity".to_owned(), identity.clone());
            data.insert("known_hosts".to_owned(), known_hosts.clone());
            if let Some(password) = password {
                data.insert("password".to_owned(), password.clone());
            }
        }
    }
    if let Some(ca) = ca_crt {
        data.insert("ca.crt".to_owned(), ca.to_owned());
    }
    data
}

/// The sync Secret as a `v1` object, with `data` base64-encoded as the API returns it.
pub fn sync_secret(namespace: &str, name: &str, data: &BTreeMap<String, String>) -> Value {
    use base64::Engine as _;
    let encoded: serde_json::Map<String, Value> = data
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                Value::String(base64::engine::general_purpose::STANDARD.encode(v)),
            )
        })
        .collect();
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "Opaque",
        "data": encoded,
    })
}

/// `secret_status` when the Secret holds every key the provider writes, with the same value.
pub const SECRET_CURRENT: &str = "Current";
/// `secret_status` when a key the provider writes differs (credentials rotated, or the Secret
/// edited in the cluster).
pub const SECRET_OUTDATED: &str = "Outdated";
/// `secret_status` when the Secret does not exist.
pub const SECRET_MISSING: &str = "Missing";
/// `secret_status` when the provider writes no Secret (not managed, or no credentials).
pub const SECRET_UNMANAGED: &str = "Unmanaged";

/// Whether the live sync Secret's data holds what the provider would write (`desired`; `None`
/// when it writes nothing). Only the comparison's outcome is kept in state: nothing derived
/// from a credential, so a state file gives nothing to test a guessed password against.
/// Keys the provider does not write are ignored (another manager may add some).
pub fn secret_status(
    desired: Option<&BTreeMap<String, String>>,
    live: Option<&BTreeMap<String, String>>,
) -> &'static str {
    match (desired, live) {
        (None, _) => SECRET_UNMANAGED,
        (Some(_), None) => SECRET_MISSING,
        (Some(want), Some(have)) if want.iter().all(|(k, v)| have.get(k) == Some(v)) => {
            SECRET_CURRENT
        }
        (Some(_), Some(_)) => SECRET_OUTDATED,
    }
}

/// Whether a Flux source or Kustomization revision (`main@sha1:<sha>`,
/// `refs/heads/main@sha1:<sha>`, or the legacy `main/<sha>`) is the given commit.
pub fn revision_has_commit(revision: &str, commit: &str) -> bool {
    !commit.is_empty()
        && (revision.ends_with(&format!("@sha1:{commit}"))
            || revision
                .rsplit_once('/')
                .is_some_and(|(_, sha)| sha == commit))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flux::golden;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    fn fixture() -> Vec<Value> {
        serde_saphyr::from_multiple(&golden::read("bootstrap", "cluster.yaml")).unwrap()
    }

    fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
        objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap()
    }

    #[test]
    fn installs_are_detected_from_the_crd_labels() {
        let crd =
            |labels: Value| json!({"metadata": {"name": GITREPOSITORIES_CRD, "labels": labels}});
        let cases = [
            ("missing", None, InstallKind::NotInstalled),
            (
                "bootstrap",
                Some(crd(
                    json!({"kustomize.toolkit.fluxcd.io/name": "flux-system", "app.kubernetes.io/version": "v2.7.5"}),
                )),
                InstallKind::FluxBootstrap,
            ),
            (
                "operator",
                Some(crd(
                    json!({"app.kubernetes.io/managed-by": "flux-operator"}),
                )),
                InstallKind::ManagedBy("flux-operator".into()),
            ),
            (
                "helm",
                Some(crd(json!({"app.kubernetes.io/managed-by": "Helm"}))),
                InstallKind::ManagedBy("Helm".into()),
            ),
            (
                "flux-install",
                Some(crd(json!({"app.kubernetes.io/part-of": "flux"}))),
                InstallKind::Unknown,
            ),
        ];
        for (name, input, want) in cases {
            assert_eq!(detect_install(input.as_ref()), want, "case {name}");
        }
    }

    #[test]
    fn classic_settings_are_read_from_the_cluster() {
        let objects = fixture();
        let deployments: Vec<Value> = objects
            .iter()
            .filter(|o| o["kind"] == "Deployment")
            .cloned()
            .collect();
        let classic = read_classic(
            find(&objects, "GitRepository", "flux-system"),
            find(&objects, "Kustomization", "flux-system"),
            &deployments,
            Some(find(
                &objects,
                "CustomResourceDefinition",
                GITREPOSITORIES_CRD,
            )),
        )
        .unwrap();
        assert_eq!(
            classic,
            ClassicBootstrap {
                namespace: "flux-system".into(),
                sync_name: "flux-system".into(),
                url: "ssh://git@git.example.com/platform/fleet.git".into(),
                branch: Some("main".into()),
                git_ref: "refs/heads/main".into(),
                path: "./clusters/production".into(),
                secret_name: Some("flux-system".into()),
                interval: Some("1m0s".into()),
                components: vec![
                    Component::SourceController,
                    Component::KustomizeController,
                    Component::HelmController,
                    Component::NotificationController,
                    Component::ImageReflectorController,
                ],
                version: "v2.7.5".into(),
                registry: Some("ghcr.io/fluxcd".into()),
                warnings: vec![
                    "Kustomization \"flux-system\" sets spec.decryption, which the FluxInstance does not carry over; add a kustomize patch for it".into(),
                    "the Deployment \"flux-web-ui\" is not a Flux component the operator manages".into(),
                ],
            }
        );
        assert_eq!(classic.repo_path(), "clusters/production");
    }

    #[test]
    fn refs_convert_to_sync_refs() {
        let kustomization = json!({"metadata": {"name": "flux-system"}, "spec": {"path": "./c"}});
        let crd = json!({"metadata": {"labels": {"app.kubernetes.io/version": "v2.7.5"}}});
        let cases = [
            (
                "branch",
                json!({"branch": "dev"}),
                Ok("refs/heads/dev".to_owned()),
            ),
            ("tag", json!({"tag": "v1"}), Ok("refs/tags/v1".to_owned())),
            (
                "name",
                json!({"name": "refs/heads/x"}),
                Ok("refs/heads/x".to_owned()),
            ),
            (
                "semver",
                json!({"semver": ">=1.0"}),
                Err(BootstrapError::ConvertRef {
                    name: "flux-system".into(),
                    reference: "{\"semver\":\">=1.0\"}".into(),
                }),
            ),
        ];
        for (name, reference, want) in cases {
            let repo = json!({"metadata": {"name": "flux-system", "namespace": "flux-system"},
                              "spec": {"url": "https://x/y.git", "ref": reference}});
            let got = read_classic(&repo, &kustomization, &[], Some(&crd)).map(|c| c.git_ref);
            assert_eq!(got, want, "case {name}");
        }
        let repo = json!({"metadata": {"name": "flux-system"}, "spec": {"url": "https://x/y.git", "ref": {"branch": "main"}}});
        assert_eq!(
            read_classic(&repo, &kustomization, &[], None),
            Err(BootstrapError::ReadVersion)
        );
    }

    #[test]
    fn kustomization_patches_are_converted() {
        let content = golden::read("bootstrap", "kustomization.yaml");
        let files = BTreeMap::from([
            ("sc-patch.yaml".to_owned(), "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: source-controller\n  namespace: flux-system\nspec:\n  replicas: 1\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: helm-controller\n  namespace: flux-system\nspec:\n  replicas: 1\n".to_owned()),
            ("json-patch.yaml".to_owned(), "- op: replace\n  path: /spec/replicas\n  value: 2\n".to_owned()),
        ]);
        let got = read_flux_system_kustomization(&content, &files).unwrap();
        assert_eq!(
            got,
            FluxSystemKustomization {
                extra_resources: vec!["tenants.yaml".into()],
                patches: vec![
                    KustomizePatch {
                        patch: "- op: add\n  path: /spec/template/spec/containers/0/args/-\n  value: --concurrent=20\n".into(),
                        target: Some(PatchTarget {
                            kind: Some("Deployment".into()),
                            name: Some("kustomize-controller".into()),
                            ..PatchTarget::default()
                        }),
                    },
                    KustomizePatch {
                        patch: "- op: replace\n  path: /spec/replicas\n  value: 2\n".into(),
                        target: Some(PatchTarget {
                            group: Some("apps".into()),
                            version: Some("v1".into()),
                            kind: Some("Deployment".into()),
                            name: Some("notification-controller".into()),
                            ..PatchTarget::default()
                        }),
                    },
                    KustomizePatch {
                        patch: "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: source-controller\n  namespace: flux-system\nspec:\n  replicas: 1\n".into(),
                        target: None,
                    },
                    KustomizePatch {
                        patch: "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: helm-controller\n  namespace: flux-system\nspec:\n  replicas: 1\n".into(),
                        target: None,
                    },
                    KustomizePatch {
                        patch: "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: image-reflector-controller\nspec:\n  replicas: 0\n".into(),
                        target: None,
                    },
                ],
                warnings: vec![
                    "flux-system/kustomization.yaml sets images, which is not carried over to the FluxInstance".into(),
                ],
            }
        );
        assert_eq!(
            read_flux_system_kustomization(
                "resources: [gotk-components.yaml]\npatches:\n- path: missing.yaml\n",
                &BTreeMap::new()
            ),
            Err(BootstrapError::ReadPatchFile("missing.yaml".into()))
        );
    }

    #[test]
    fn equivalent_instance_spec() {
        let classic = ClassicBootstrap {
            namespace: "flux-system".into(),
            sync_name: "flux-system".into(),
            url: "ssh://git@git.example.com/platform/fleet.git".into(),
            branch: Some("main".into()),
            git_ref: "refs/heads/main".into(),
            path: "./clusters/production".into(),
            secret_name: Some("flux-system".into()),
            interval: Some("1m0s".into()),
            components: crate::flux::instance::DEFAULT_COMPONENTS.to_vec(),
            version: "v2.7.5".into(),
            registry: Some("ghcr.io/fluxcd".into()),
            warnings: vec![],
        };
        let patch = KustomizePatch {
            patch: "- op: replace\n  path: /spec/replicas\n  value: 2\n".into(),
            target: None,
        };
        let spec = instance_spec(&classic, vec![patch]);
        assert_eq!(
            serde_json::to_value(&spec).unwrap(),
            json!({
                "distribution": {"version": "2.7.5", "registry": "ghcr.io/fluxcd"},
                "components": ["source-controller", "kustomize-controller", "helm-controller", "notification-controller"],
                "kustomize": {"patches": [{"patch": "- op: replace\n  path: /spec/replicas\n  value: 2\n"}]},
                "sync": {"kind": "GitRepository", "url": "ssh://git@git.example.com/platform/fleet.git",
                         "ref": "refs/heads/main", "path": "./clusters/production",
                         "pullSecret": "flux-system", "interval": "1m0s"},
            })
        );
        let renamed = ClassicBootstrap {
            sync_name: "fleet".into(),
            registry: None,
            ..classic
        };
        let spec = instance_spec(&renamed, vec![]);
        assert_eq!(spec.sync.and_then(|s| s.name), Some("fleet".into()));
        assert_eq!(spec.distribution.registry, "ghcr.io/fluxcd");
        assert_eq!(spec.kustomize, None);
        assert_eq!(
            registry_of_image("registry.local:5000/mirror/fluxcd/source-controller:v1.7.4"),
            Some("registry.local:5000/mirror/fluxcd".into())
        );
        assert_eq!(registry_of_image("source-controller:v1"), None);
    }

    #[test]
    fn sync_secrets_carry_the_keys_source_controller_reads() {
        let cases = [
            (
                "basic-with-ca",
                GitCredentials::Basic {
                    username: "git".into(),
                    password: "s3cret".into(),
                },
                Some("CA"),
                vec![
                    ("ca.crt", "CA"),
                    ("password", "s3cret"),
                    ("username", "git"),
                ],
            ),
            (
                "bearer",
                GitCredentials::Bearer {
                    token: "tok".into(),
                },
                None,
                vec![("bearerToken", "tok")],
            ),
            (
                "ssh-with-passphrase",
                GitCredentials::Ssh {
                    identity: "KEY".into(),
                    known_hosts: "host ssh-ed25519 AAAA".into(),
                    password: Some("pp".into()),
                },
                None,
                vec![
                    ("identity", "KEY"),
                    ("known_hosts", "host ssh-ed25519 AAAA"),
                    ("password", "pp"),
                ],
            ),
        ];
        for (name, credentials, ca, want) in cases {
            let want: BTreeMap<String, String> = want
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            assert_eq!(sync_secret_data(&credentials, ca), want, "case {name}");
            assert!(
                !format!("{credentials:?}").contains("s3cret")
                    && !format!("{credentials:?}").contains("KEY"),
                "case {name}: Debug redacts"
            );
        }
        let data = sync_secret_data(
            &GitCredentials::Bearer {
                token: "tok".into(),
            },
            None,
        );
        assert_eq!(
            sync_secret("flux-system", "flux-system", &data),
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "flux-system", "namespace": "flux-system"},
                   "type": "Opaque", "data": {"bearerToken": "dG9r"}})
        );
    }

    #[test]
    fn secret_status_compares_what_the_provider_writes() {
        let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let want = map(&[("username", "git"), ("password", "a")]);
        let cases = [
            (None, None, SECRET_UNMANAGED),
            (None, Some(map(&[("x", "y")])), SECRET_UNMANAGED),
            (Some(want.clone()), None, SECRET_MISSING),
            (Some(want.clone()), Some(want.clone()), SECRET_CURRENT),
            (
                Some(want.clone()),
                Some(map(&[
                    ("username", "git"),
                    ("password", "a"),
                    ("extra", "kept"),
                ])),
                SECRET_CURRENT,
            ),
            (
                Some(want.clone()),
                Some(map(&[("username", "git"), ("password", "b")])),
                SECRET_OUTDATED,
            ),
            (
                Some(want.clone()),
                Some(map(&[("username", "git")])),
                SECRET_OUTDATED,
            ),
        ];
        for (desired, live, expected) in cases {
            assert_eq!(
                secret_status(desired.as_ref(), live.as_ref()),
                expected,
                "{desired:?} {live:?}"
            );
        }
    }

    #[test]
    fn revisions_name_commits() {
        let sha = "1f3c9a0b2d4e6f8091a2b3c4d5e6f708192a3b4c";
        let cases = [
            (format!("main@sha1:{sha}"), true),
            (format!("refs/heads/main@sha1:{sha}"), true),
            (format!("main/{sha}"), true),
            ("main@sha1:0000".to_owned(), false),
            (String::new(), false),
        ];
        for (revision, want) in cases {
            assert_eq!(revision_has_commit(&revision, sha), want, "{revision}");
        }
        assert!(!revision_has_commit("main@sha1:", ""));
    }
}
