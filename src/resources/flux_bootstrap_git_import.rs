//! Import of `flux_bootstrap_git` by namespace: the settings of an operator-managed bootstrap
//! are read from the FluxInstance `flux` in that namespace (its `sync` gives the repository,
//! branch, path, Secret and interval), so the next plan is empty when the configuration matches.
//!
//! Lives in `resources/`: may use `framework`, `flux`, `cluster`.

use crate::flux::instance::{FluxInstance, INSTANCE_NAME, SyncKind};
use crate::framework::diagnostics::Diagnostics;
use crate::framework::model::Value;
use crate::framework::resource::Context;
use crate::resources::common::apply_error;
use crate::resources::flux_bootstrap_git_model::{
    BootstrapModel, DEFAULT_COMMIT_MESSAGE, GitAccess, read_manifest_into,
};
use crate::resources::flux_instance::instance_ref;

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
        .map_err(|e| apply_error("Cannot Read The FluxInstance", &e))?
        .ok_or_else(|| {
            invalid(format!(
                "There is no FluxInstance {INSTANCE_NAME:?} in namespace {id:?}. Import the \
                 namespace where the Flux Operator's FluxInstance runs."
            ))
        })?;
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
