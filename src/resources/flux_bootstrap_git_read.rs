//! Read of `flux_bootstrap_git`: the committed files (shallow fetch of the branch tip) and the
//! cluster (FluxInstance, sync Kustomization, sync Secret), combined into the state.

use std::collections::BTreeMap;

use kube::api::DynamicObject;

use crate::cluster::objects::ObjectRef;
use crate::flux::bootstrap::{revision_has_commit, secret_status};
use crate::flux::render::parse_instance_manifest;
use crate::framework::diagnostics::Diagnostics;
use crate::framework::model::Value;
use crate::framework::resource::Context;
use crate::resources::common::{self, apply_error};
use crate::resources::flux_bootstrap_git_auth::{git_auth, git_options};
use crate::resources::flux_bootstrap_git_config::GitAccess;
use crate::resources::flux_bootstrap_git_manifest::{clean_path, digest, read_manifest_into};
use crate::resources::flux_bootstrap_git_model::{BootstrapModel, instance_ref};
use crate::resources::flux_bootstrap_git_repo::read_files;
use crate::resources::flux_bootstrap_git_sync::{
    applied_commit, flux_version_of, namespace_of, sync_name, sync_refs,
};

/// Reads the committed files and the cluster into `state`; `None` when both are gone.
pub(super) async fn read_bootstrap(
    ctx: &mut Context<impl GitAccess>,
    state: BootstrapModel,
) -> Result<Option<BootstrapModel>, Diagnostics> {
    let data = ctx.data()?.clone();
    if !data.cluster_known() || !data.git_known() {
        return Ok(Some(state));
    }
    let config = data.git_config()?;
    let (Some(url), Some(branch)) = (
        state.url.as_known().cloned(),
        state.branch.as_known().cloned(),
    ) else {
        return Ok(Some(state));
    };
    let namespace = namespace_of(&state);
    let mut state = state;
    let mut owned: Vec<String> = state
        .files
        .as_known()
        .map(|f| f.keys().cloned().collect())
        .unwrap_or_default();
    if owned.is_empty()
        && let Some(path) = state.path.as_known()
    {
        let dir = clean_path(path)?;
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        owned = vec![
            format!("{prefix}flux-system/flux-instance.yaml"),
            format!("{prefix}flux-system/kustomization.yaml"),
        ];
    }
    let (contents, tip) = read_files(
        url.clone(),
        branch,
        git_auth(&config, &url).await?,
        git_options(ctx),
        owned,
    )
    .await?;
    let mut present = BTreeMap::new();
    let mut committed = None;
    for (p, content) in &contents {
        if let Some(content) = content {
            present.insert(p.clone(), digest(content));
            if (p.ends_with("/flux-instance.yaml") || p == "flux-system/flux-instance.yaml")
                && let Ok(manifest) = parse_instance_manifest(&String::from_utf8_lossy(content))
            {
                read_manifest_into(&mut state, &manifest)?;
                committed = Some(manifest);
            }
        }
    }
    let cluster = data.cluster().await?;
    let live = cluster
        .get(&instance_ref(
            &namespace,
            crate::flux::instance::INSTANCE_NAME,
        ))
        .await
        .map_err(|e| apply_error("Cannot Read The FluxInstance", &e))?;
    if present.is_empty() && live.is_none() {
        return Ok(None);
    }
    state.files = Value::Known(present);
    state.ready = Value::Known(false);
    if let Some(live) = &live {
        let readiness = common::object_readiness(live);
        let (_, kustomization) = sync_refs(&namespace, &sync_name(&state, &namespace));
        let applied = match cluster.get(&kustomization).await {
            Ok(Some(k)) => k.data["status"]["lastAppliedRevision"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            _ => String::new(),
        };
        // After an import, the commit Flux applied is the one this resource stands for.
        if !state.commit_sha.is_known()
            && let Some((_, sha)) = applied.rsplit_once("@sha1:")
        {
            state.commit_sha = Value::Known(sha.to_owned());
        }
        // Flux applied our commit, or the branch's tip that descends from it (someone
        // pushed on top since).
        let synced = state.commit_sha.as_known().is_some_and(|c| {
            revision_has_commit(&applied, c)
                || (!c.is_empty()
                    && applied_commit(&applied).is_some_and(|a| tip.as_deref() == Some(a)))
        });
        // The cluster runs what was committed (an apply that pushed and then failed to
        // write the FluxInstance leaves them apart: not ready, so the next plan applies).
        let matches_commit = committed.as_ref().is_none_or(|manifest| {
            serde_json::from_value::<crate::flux::instance::FluxInstanceSpec>(
                live.data["spec"].clone(),
            )
            .is_ok_and(|l| crate::flux::normalize::diff_specs(&manifest.spec, &l).is_empty())
        });
        // Suspended (`suspend = true`: reconcile disabled), the operator does not reconcile and
        // apply does not wait for the sync: ready means the cluster holds what was committed,
        // as apply reports it (else every plan would propose `ready = false -> true`).
        let reconciled = match readiness {
            crate::flux::status::Readiness::Disabled => true,
            ref other => other.is_ready() && synced,
        };
        state.ready = Value::Known(reconciled && matches_commit);
        state.flux_version = Value::Known(flux_version_of(live));
    }
    if state.manage_secret.as_known() != Some(&false) {
        let name = state
            .secret_name
            .as_known()
            .cloned()
            .unwrap_or_else(|| "flux-system".into());
        let secret = cluster
            .get(&ObjectRef::new("v1", "Secret", Some(&namespace), &name))
            .await
            .map_err(|e| apply_error("Cannot Read The Sync Secret", &e))?;
        // Compared here, with the credentials the provider holds now; only the outcome is
        // kept (no digest of the credentials ever enters state).
        let desired = config.secret_data(&url, state.sync_provider())?;
        let live = secret.as_ref().map(decode_secret);
        state.secret_status =
            Value::Known(secret_status(desired.as_ref(), live.as_ref()).to_owned());
    } else {
        state.secret_status = Value::Known(secret_status(None, None).to_owned());
    }
    state.id = Value::Known(namespace);
    Ok(Some(state))
}

fn decode_secret(secret: &DynamicObject) -> BTreeMap<String, String> {
    use base64::Engine as _;
    secret.data["data"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(v.as_str().unwrap_or_default())
                        .unwrap_or_default();
                    (k.clone(), String::from_utf8_lossy(&bytes).into_owned())
                })
                .collect()
        })
        .unwrap_or_default()
}
