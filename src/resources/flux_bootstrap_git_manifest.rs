//! What `flux_bootstrap_git` writes and reads back in the repository: the FluxInstance (and the
//! operator) its configuration describes, the rendered files and their digests, the cleaned
//! cluster path, reading a committed manifest back into the model, and the state upgrades of
//! older schema versions. Pure code.
//!
//! Lives in `resources/`: may use `framework`, `flux`, `cluster`, never `provider`.

use std::collections::BTreeMap;

use crate::flux::instance::FluxInstance;
use crate::flux::normalize::canonical_components;
use crate::flux::render::{RenderError, clean_repo_path, render_flux_system};
use crate::framework::diagnostics::Diagnostics;
use crate::framework::model::Value;
use crate::framework::path::AttrPath;
use crate::resources::flux_bootstrap_git_model::*;
use crate::resources::flux_instance_convert::{live_model, model_object};
use crate::resources::flux_instance_model::{HEALTHY, InstanceModel, ModelError, SyncModel};
use crate::resources::flux_operator_model::OperatorModel;

/// The cleaned cluster path, or a diagnostic at `path`.
///
/// # Errors
///
/// When the path is absolute or contains `..`.
pub fn clean_path(path: &str) -> Result<String, Diagnostics> {
    clean_repo_path(path).map_err(|e| {
        Diagnostics::from_error_at(
            AttrPath::attr("path"),
            "Invalid Repository Path",
            format!("{e}."),
        )
    })
}

/// The `flux_instance` model the configuration describes (sync pointing at this repository).
/// `pull_secret` is `None` when Flux pulls without credentials.
pub fn instance_model(model: &BootstrapModel, pull_secret: Value<Option<String>>) -> InstanceModel {
    let path = model
        .path
        .as_known()
        .map(|p| match clean_repo_path(p) {
            Ok(p) if p.is_empty() => Value::Known("./".to_owned()),
            Ok(p) => Value::Known(p),
            Err(_) => Value::Unknown,
        })
        .unwrap_or(Value::Unknown);
    let sync = SyncModel {
        kind: Value::Known("GitRepository".into()),
        url: model.url.clone(),
        git_ref: model.branch.clone().map(|b| format!("refs/heads/{b}")),
        path,
        pull_secret: match pull_secret {
            Value::Known(Some(s)) => Value::Known(s),
            Value::Known(None) | Value::Null => Value::Null,
            Value::Unknown => Value::Unknown,
        },
        interval: model.interval.clone(),
        name: model
            .sync
            .as_known()
            .map_or(Value::Null, |s| s.name.clone()),
        provider: model
            .sync
            .as_known()
            .map_or(Value::Null, |s| s.provider.clone()),
    };
    InstanceModel {
        name: Value::Known(crate::flux::instance::INSTANCE_NAME.to_owned()),
        namespace: model.namespace.clone(),
        distribution: model.distribution.clone(),
        components: model.components.clone(),
        cluster: model.cluster.clone(),
        sharding: model.sharding.clone(),
        storage: model.storage.clone(),
        kustomize: model.kustomize.clone(),
        sync: Value::Known(sync),
        common_metadata: model.common_metadata.clone(),
        wait: model.wait.clone(),
        migrate_resources: model.migrate_resources.clone(),
        reconcile_every: model.reconcile_every.clone(),
        reconcile_artifact_every: model.reconcile_artifact_every.clone(),
        reconcile_timeout: model.reconcile_timeout.clone(),
        suspend: model.suspend.clone(),
        deletion_policy: Value::Known("uninstall".into()),
        ..InstanceModel::default()
    }
}

/// The FluxInstance of a wholly known configuration.
///
/// # Errors
///
/// [`ModelError::Unknown`] while values are unknown, [`ModelError::Invalid`].
pub fn desired_instance(
    model: &BootstrapModel,
    pull_secret: Value<Option<String>>,
) -> Result<FluxInstance, ModelError> {
    let mut instance = model_object(&instance_model(model, pull_secret))?;
    // Terraform may hand the `components` set over in any order: commit one canonical order.
    if let Some(components) = instance.spec.components.as_deref() {
        instance.spec.components = Some(canonical_components(Some(components)));
    }
    Ok(instance)
}

/// The files to commit: path → content.
///
/// # Errors
///
/// [`RenderError`] for a bad path.
pub fn render_files(
    path: &str,
    instance: &FluxInstance,
    extra_resources: &[String],
) -> Result<BTreeMap<String, String>, RenderError> {
    Ok(render_flux_system(path, instance, extra_resources)?
        .into_iter()
        .map(|f| (f.path, f.content))
        .collect())
}

/// `sha256:<hex>` of a file's content.
pub fn digest(content: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(content)))
}

/// The digests of rendered files.
pub fn digests(files: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    files
        .iter()
        .map(|(p, c)| (p.clone(), digest(c.as_bytes())))
        .collect()
}

/// A stored state of an older schema `version` as the current model.
///
/// # Errors
///
/// A diagnostic when the version is unknown or the stored JSON does not fit.
pub fn upgrade_state(
    version: i64,
    state: serde_json::Value,
) -> Result<BootstrapModel, Diagnostics> {
    let unreadable = |detail: String| {
        Diagnostics::from_error(
            "Unreadable Stored State",
            format!(
                "The stored state of this flux_bootstrap_git (schema version {version}) cannot \
                 be upgraded: {detail}. Remove the resource from state and import it again."
            ),
        )
    };
    let state = match version {
        0 => upgrade_state_v0(state),
        other => return Err(unreadable(format!("version {other} is unknown"))),
    };
    let raw = crate::framework::value::RawValue::from_json(&state, &schema().type_of())
        .map_err(|e| unreadable(e.to_string()))?;
    crate::framework::model::from_raw(&raw).map_err(|e| unreadable(e.to_string()))
}

/// State of schema version 0 in version 1's shape: `credentials_hash` (a SHA-256 of the
/// credentials, which a state file must not hold) is dropped, `secret_status` is left to the
/// next refresh.
pub fn upgrade_state_v0(mut state: serde_json::Value) -> serde_json::Value {
    if let Some(fields) = state.as_object_mut() {
        fields.remove("credentials_hash");
        fields.insert("secret_status".into(), serde_json::Value::Null);
    }
    state
}

/// Copies what a committed manifest says into `model`: the instance settings (normalised as
/// `flux_instance` reads a live object, so formatting is no drift) and the sync's URL, branch,
/// path and interval.
///
/// # Errors
///
/// A diagnostic when the manifest's annotations do not parse.
pub fn read_manifest_into(
    model: &mut BootstrapModel,
    manifest: &FluxInstance,
) -> Result<(), Diagnostics> {
    let prior = instance_model(model, Value::Null);
    let read = live_model(manifest, &prior, HEALTHY.to_owned())?;
    model.distribution = read.distribution;
    model.components = read.components;
    model.cluster = read.cluster;
    model.sharding = read.sharding;
    model.storage = read.storage;
    model.kustomize = read.kustomize;
    model.common_metadata = read.common_metadata;
    model.wait = read.wait;
    model.migrate_resources = read.migrate_resources;
    model.reconcile_every = read.reconcile_every;
    model.reconcile_artifact_every = read.reconcile_artifact_every;
    model.reconcile_timeout = read.reconcile_timeout;
    model.suspend = read.suspend;
    if let Some(sync) = &manifest.spec.sync {
        let name = Value::from(sync.name.clone());
        let provider = Value::from(sync.provider.map(|p| p.as_str().to_owned()));
        model.sync = if name.is_null() && provider.is_null() {
            Value::Null
        } else {
            Value::Known(BootstrapSyncModel { name, provider })
        };
        model.url = Value::Known(sync.url.clone());
        if let Some(branch) = sync.git_ref.strip_prefix("refs/heads/") {
            model.branch = Value::Known(branch.to_owned());
        }
        if let Some(interval) = &sync.interval {
            model.interval = Value::Known(interval.clone());
        }
        let same_path = model
            .path
            .as_known()
            .and_then(|p| clean_repo_path(p).ok())
            .is_some_and(|p| clean_repo_path(&sync.path).ok().as_deref() == Some(p.as_str()));
        if !same_path {
            model.path = Value::Known(sync.path.clone());
        }
    }
    Ok(())
}

/// The `flux_operator` model for installing the operator with the nested settings, if they name
/// a manifest source.
pub fn operator_model(model: &BootstrapModel) -> Option<OperatorModel> {
    let settings = model.operator.as_known()?;
    if settings.version.is_null()
        && settings.manifests_url.is_null()
        && settings.manifests.is_null()
    {
        return None;
    }
    Some(OperatorModel {
        id: Value::Null,
        version: settings.version.clone(),
        manifests_url: settings.manifests_url.clone(),
        manifests: settings.manifests.clone(),
        namespace: model.namespace.clone(),
        env: settings.env.clone(),
        resources: settings.resources.clone(),
        tolerations: settings.tolerations.clone(),
        node_selector: settings.node_selector.clone(),
        image_repository: settings.image_repository.clone(),
        replicas: settings.replicas.clone(),
        affinity: settings.affinity.clone(),
        priority_class_name: settings.priority_class_name.clone(),
        image_pull_secrets: settings.image_pull_secrets.clone(),
        log_level: settings.log_level.clone(),
        concurrent: settings.concurrent.clone(),
        web_ui: settings.web_ui.clone(),
        delete_crds: Value::Known(false),
        timeouts: model.timeouts.clone(),
        operator_version: Value::Null,
        installation_status: Value::Null,
    })
}

#[cfg(test)]
#[path = "flux_bootstrap_git_manifest_tests.rs"]
mod tests;
