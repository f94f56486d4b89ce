//! Import of `flux_bootstrap_git` by namespace. An operator-managed bootstrap is read from the
//! FluxInstance `flux` in that namespace (its `sync` gives the repository, branch, path, Secret
//! and interval), so the next plan is empty when the configuration matches. A classic
//! `flux bootstrap` install (no FluxInstance; the gitrepositories CRD labelled by kustomize) is
//! read from the `<namespace>` GitRepository and Kustomization, the controller Deployments and
//! the patches in `<path>/flux-system/kustomization.yaml`; the next plan shows the migration.
//!
//! Lives in `resources/`: may use `framework`, `flux`, `cluster`, `git`.

use std::collections::BTreeMap;

use kube::api::DynamicObject;

use crate::cluster::objects::{Cluster, ObjectRef};
use crate::flux::bootstrap::{
    GITREPOSITORIES_CRD, InstallKind, detect_install, instance_spec, read_classic,
    read_flux_system_kustomization,
};
use crate::flux::instance::{FluxInstance, INSTANCE_NAME, SyncKind};
use crate::framework::diagnostics::Diagnostics;
use crate::framework::model::Value;
use crate::framework::resource::Context;
use crate::git::{Checkout, RepoPath};
use crate::resources::common::apply_error;
use crate::resources::flux_bootstrap_git_auth::{git_auth, git_error, git_options};
use crate::resources::flux_bootstrap_git_config::GitAccess;
use crate::resources::flux_bootstrap_git_manifest::read_manifest_into;
use crate::resources::flux_bootstrap_git_model::{
    BootstrapModel, DEFAULT_COMMIT_MESSAGE, instance_ref,
};

fn invalid(detail: String) -> Diagnostics {
    Diagnostics::from_error("Cannot Import The Bootstrap", detail)
}

/// The state of the bootstrap in namespace `id` (Terraform reads it next).
///
/// # Errors
///
/// A diagnostic when the ID is not a namespace, the cluster is unreachable, or there is no
/// FluxInstance syncing from a Git branch there.
pub async fn import<D: GitAccess>(
    ctx: &mut Context<D>,
    id: &str,
) -> Result<BootstrapModel, Diagnostics> {
    if id.is_empty() || id.contains('/') {
        return Err(Diagnostics::from_error(
            "Invalid Import ID",
            format!("Expected the namespace Flux runs in, e.g. \"flux-system\"; got {id:?}."),
        ));
    }
    let cluster = ctx.data()?.cluster().await?;
    let live = cluster
        .get(&instance_ref(id, INSTANCE_NAME))
        .await
        .map_err(|e| apply_error("Cannot Read The FluxInstance", &e))?;
    let Some(live) = live else {
        return import_classic(ctx, &cluster, id).await;
    };
    let instance = serde_json::to_value(&live)
        .map_err(|e| e.to_string())
        .and_then(|j| FluxInstance::from_json(j).map_err(|e| e.to_string()))
        .map_err(|e| invalid(format!("The FluxInstance cannot be read: {e}.")))?;
    let Some(sync) = instance
        .spec
        .sync
        .clone()
        .filter(|s| s.kind == SyncKind::GitRepository)
    else {
        return Err(invalid(format!(
            "The FluxInstance in {id:?} does not sync from a GitRepository, so it was not \
             bootstrapped from Git."
        )));
    };
    let Some(branch) = sync.git_ref.strip_prefix("refs/heads/") else {
        return Err(invalid(format!(
            "The FluxInstance syncs from {:?}, not a branch; flux_bootstrap_git commits to a branch.",
            sync.git_ref
        )));
    };
    let mut model = BootstrapModel {
        id: Value::Known(id.to_owned()),
        namespace: Value::Known(id.to_owned()),
        url: Value::Known(sync.url.clone()),
        branch: Value::Known(branch.to_owned()),
        path: Value::Known(sync.path.clone()),
        interval: Value::Known(sync.interval.clone().unwrap_or_else(|| "1m".into())),
        secret_name: Value::Known(
            sync.pull_secret
                .clone()
                .unwrap_or_else(|| "flux-system".into()),
        ),
        manage_secret: Value::Known(true),
        commit_message: Value::Known(DEFAULT_COMMIT_MESSAGE.to_owned()),
        deletion_policy: Value::Known("uninstall".into()),
        ..BootstrapModel::default()
    };
    read_manifest_into(&mut model, &instance)?;
    Ok(model)
}

fn as_json(object: Option<DynamicObject>) -> Option<serde_json::Value> {
    object.and_then(|o| serde_json::to_value(o).ok())
}

/// Import of a classic `flux bootstrap` installation in `namespace`.
async fn import_classic<D: GitAccess>(
    ctx: &mut Context<D>,
    cluster: &Cluster,
    namespace: &str,
) -> Result<BootstrapModel, Diagnostics> {
    let read = |e| apply_error("Cannot Read The Flux Installation", &e);
    let crd = as_json(
        cluster
            .get(&ObjectRef::new(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                None,
                GITREPOSITORIES_CRD,
            ))
            .await
            .map_err(read)?,
    );
    if detect_install(crd.as_ref()) != InstallKind::FluxBootstrap {
        return Err(invalid(format!(
            "There is no FluxInstance {INSTANCE_NAME:?} in namespace {namespace:?}, and Flux there \
             was not installed by `flux bootstrap`. Import the namespace where the Flux \
             Operator's FluxInstance runs."
        )));
    }
    let get = |api_version: &'static str, kind: &'static str| {
        ObjectRef::new(api_version, kind, Some(namespace), namespace)
    };
    let git = as_json(
        cluster
            .get(&get("source.toolkit.fluxcd.io/v1", "GitRepository"))
            .await
            .map_err(read)?,
    );
    let kustomization = as_json(
        cluster
            .get(&get("kustomize.toolkit.fluxcd.io/v1", "Kustomization"))
            .await
            .map_err(read)?,
    );
    let (Some(git), Some(kustomization)) = (git, kustomization) else {
        return Err(invalid(format!(
            "The `flux bootstrap` install has no GitRepository and Kustomization named \
             {namespace:?} in namespace {namespace:?}."
        )));
    };
    let deployments: Vec<serde_json::Value> = cluster
        .list("apps/v1", "Deployment", Some(namespace), "")
        .await
        .map_err(read)?
        .into_iter()
        .filter_map(|d| serde_json::to_value(d).ok())
        .collect();
    let classic = read_classic(&git, &kustomization, &deployments, crd.as_ref())
        .map_err(|e| invalid(format!("{e}.")))?;
    let Some(branch) = classic.branch.clone() else {
        return Err(invalid(format!(
            "The GitRepository follows {:?}, not a branch; flux_bootstrap_git commits to a branch.",
            classic.git_ref
        )));
    };
    let path = classic.repo_path();
    let dir = if path.is_empty() {
        "flux-system".to_owned()
    } else {
        format!("{path}/flux-system")
    };
    let data = ctx.data()?.clone();
    let config = data.git_config()?;
    let contents = read_dir(&config, &classic.url, &branch, &dir, git_options(ctx)).await?;
    let index = contents
        .get("kustomization.yaml")
        .cloned()
        .unwrap_or_default();
    let converted =
        read_flux_system_kustomization(&index, &contents).map_err(|e| invalid(format!("{e}.")))?;
    for warning in classic.warnings.iter().chain(&converted.warnings) {
        ctx.warn("Setting Not Carried Over", format!("{warning}."));
    }
    let spec = instance_spec(&classic, converted.patches);
    let instance = FluxInstance::new(namespace, spec);
    let mut model = BootstrapModel {
        id: Value::Known(namespace.to_owned()),
        namespace: Value::Known(namespace.to_owned()),
        url: Value::Known(classic.url.clone()),
        branch: Value::Known(branch),
        path: Value::Known(path),
        interval: Value::Known(classic.interval.clone().unwrap_or_else(|| "1m".into())),
        secret_name: Value::Known(
            classic
                .secret_name
                .clone()
                .unwrap_or_else(|| "flux-system".into()),
        ),
        manage_secret: Value::Known(true),
        commit_message: Value::Known(DEFAULT_COMMIT_MESSAGE.to_owned()),
        deletion_policy: Value::Known("uninstall".into()),
        ..BootstrapModel::default()
    };
    read_manifest_into(&mut model, &instance)?;
    Ok(model)
}

/// The files of `dir` (names relative to it) at the branch tip.
async fn read_dir(
    config: &crate::resources::flux_bootstrap_git_config::GitConfig,
    url: &str,
    branch: &str,
    dir: &str,
    options: crate::git::Options,
) -> Result<BTreeMap<String, String>, Diagnostics> {
    let (url, branch, dir) = (url.to_owned(), branch.to_owned(), dir.to_owned());
    let auth = git_auth(config, &url).await?;
    tokio::task::spawn_blocking(move || {
        let checkout = Checkout::open(&url, &branch, &auth, &options)?;
        let root = RepoPath::new(&dir)?;
        let mut out = BTreeMap::new();
        for file in checkout.list(&root)? {
            if let Some(content) = checkout.read(&file)? {
                let name = file
                    .as_str()
                    .strip_prefix(&format!("{dir}/"))
                    .unwrap_or(file.as_str());
                out.insert(
                    name.to_owned(),
                    String::from_utf8_lossy(&content).into_owned(),
                );
            }
        }
        Ok::<_, crate::git::Error>(out)
    })
    .await
    .map_err(|e| Diagnostics::from_error("Git Task Failed", e.to_string()))?
    .map_err(|e| git_error(&e))
}
