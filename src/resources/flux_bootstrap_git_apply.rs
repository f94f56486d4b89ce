//! Create and update of `flux_bootstrap_git`: Git first (clone, push access, one commit), then
//! the cluster (operator, sync Secret, FluxInstance), then the waits; a failure after the push
//! returns the state of what was written with `ready = false`.

use std::collections::BTreeMap;
use std::time::Duration;

use kube::api::DynamicObject;

use crate::flux::bootstrap::{secret_status, sync_secret};
use crate::framework::diagnostics::Diagnostics;
use crate::framework::model::Value;
use crate::framework::path::AttrPath;
use crate::framework::resource::{ApplyError, Context};
use crate::git::{Author, FileChange, RepoPath};
use crate::resources::common::{self, Operation, ReconcileWait, apply_error, cluster_for_apply};
use crate::resources::flux_bootstrap_git_auth::{git_auth, git_error, git_options};
use crate::resources::flux_bootstrap_git_check::check_instance;
use crate::resources::flux_bootstrap_git_config::GitAccess;
use crate::resources::flux_bootstrap_git_manifest::{
    clean_path, desired_instance, digests, operator_model, render_files,
};
use crate::resources::flux_bootstrap_git_model::{
    BootstrapModel, DEFAULT_COMMIT_MESSAGE, instance_ref,
};
use crate::resources::flux_bootstrap_git_repo::{Remote, commit_on, open_checked};
use crate::resources::flux_bootstrap_git_sync::{
    flux_version_of, namespace_of, sync_name, wait_synced,
};
use crate::resources::flux_instance_model::ModelError;

pub(super) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

fn known(value: &Value<String>, name: &str) -> Result<String, Diagnostics> {
    value.as_known().cloned().ok_or_else(|| {
        Diagnostics::from_error_at(
            AttrPath::attr(name),
            "Value Unknown At Apply",
            format!("{name} is still unknown during apply."),
        )
    })
}

fn to_dynamic(value: serde_json::Value, what: &str) -> Result<DynamicObject, Diagnostics> {
    serde_json::from_value(value).map_err(|e| {
        Diagnostics::from_error(format!("Provider Bug: Cannot Encode {what}"), e.to_string())
    })
}

fn spec_error(error: &ModelError) -> Diagnostics {
    Diagnostics::from_error("Invalid FluxInstance Spec", format!("{error}."))
}

/// The pull secret the FluxInstance names: none when Flux pulls without credentials.
pub(super) fn pull_secret(
    model: &BootstrapModel,
    data: Option<&BTreeMap<String, String>>,
) -> Value<Option<String>> {
    if model.manage_secret.as_known() == Some(&true) && data.is_none() {
        return Value::Known(None);
    }
    if matches!(model.sync_provider(), Some("azure" | "aws" | "gcp")) {
        // Workload identity: source-controller's service account, no Secret.
        return Value::Known(None);
    }
    model.secret_name.clone().map(Some)
}

/// Create and update: Git first, then the cluster, then the waits.
pub(super) async fn apply_bootstrap(
    ctx: &mut Context<impl GitAccess>,
    prior: Option<&BootstrapModel>,
    planned: BootstrapModel,
    operation: Operation,
) -> Result<BootstrapModel, ApplyError<BootstrapModel>> {
    let data = ctx.data()?.clone();
    let config = data.git_config()?;
    let url = known(&planned.url, "url")?;
    let branch = known(&planned.branch, "branch")?;
    let path = clean_path(&known(&planned.path, "path")?)?;
    let namespace = namespace_of(&planned);
    let timeout = common::timeout(&planned.timeouts, operation, DEFAULT_TIMEOUT)?;
    let manage_secret = planned.manage_secret.as_known() != Some(&false);
    let secret_data = if manage_secret {
        config.secret_data(&url, planned.sync_provider())?
    } else {
        None
    };
    let instance = desired_instance(&planned, pull_secret(&planned, secret_data.as_ref()))
        .map_err(|e| spec_error(&e))?;
    let files = render_files(&path, &instance, &[]).map_err(|e| {
        Diagnostics::from_error_at(
            AttrPath::attr("path"),
            "Invalid Repository Path",
            format!("{e}."),
        )
    })?;
    let cluster = cluster_for_apply(data.as_ref()).await?;
    // Everything is checked before the first write (Git or cluster).
    check_instance(Some(&cluster), &instance).await?;

    // Git: clone, check push access, one commit (files moved away from are deleted).
    let mut changes = Vec::new();
    for (p, content) in &files {
        let path = RepoPath::new(p).map_err(|e| git_error(&e))?;
        changes.push(FileChange::write(path, content.clone()));
    }
    if let Some(old) = prior.and_then(|p| p.files.as_known()) {
        for p in old.keys().filter(|p| !files.contains_key(*p)) {
            changes.push(FileChange::delete(
                RepoPath::new(p).map_err(|e| git_error(&e))?,
            ));
        }
    }
    let mut message = planned
        .commit_message
        .as_known()
        .cloned()
        .unwrap_or_else(|| DEFAULT_COMMIT_MESSAGE.into());
    if let Some(appendix) = &config.commit_message_appendix {
        message = format!("{message}\n\n{appendix}");
    }
    let author = Author::new(
        config.author_name.clone(),
        config
            .author_email
            .clone()
            .unwrap_or_else(|| "flux@users.noreply.localhost".into()),
    );
    let flux_dir = files
        .keys()
        .next()
        .and_then(|f| f.rsplit_once('/'))
        .map(|(dir, _)| dir.to_owned())
        .unwrap_or_default();
    let auth = git_auth(&config, &url).await?;
    let remote = Remote {
        url: url.clone(),
        branch: branch.clone(),
        auth: auth.clone(),
        options: git_options(ctx),
    };
    let options = git_options(ctx).with_time_limit(timeout);
    let (checkout, classic) =
        open_checked(url.clone(), branch, auth, options.clone(), flux_dir).await?;
    // A classic `flux bootstrap` layout is replaced only once the operator has adopted the
    // controllers: until then Flux would prune what the gotk-* files applied.
    for p in &classic {
        changes.push(FileChange::delete(
            RepoPath::new(p).map_err(|e| git_error(&e))?,
        ));
    }
    let migrating = !classic.is_empty();
    let mut pending = Some((checkout, changes, message, author));
    let mut pushed = None;
    if !migrating && let Some((checkout, changes, message, author)) = pending.take() {
        pushed = Some(commit_on(checkout, &options, changes, message, author).await?);
    }

    let secret_name = planned
        .secret_name
        .as_known()
        .cloned()
        .unwrap_or_else(|| "flux-system".into());
    // Cluster: operator, Secret, FluxInstance. A failure here leaves Git ahead of the cluster:
    // the state then records the push (not ready), so that the next plan applies the cluster
    // side again instead of finding Git, and so the configuration, already up to date.
    let pushed_commit = pushed.as_ref().and_then(|p| p.commit.clone());
    let record_push = |diagnostics: Diagnostics| -> ApplyError<BootstrapModel> {
        let Some(commit) = pushed_commit.clone() else {
            return diagnostics.into();
        };
        let mut state = prior.cloned().unwrap_or_else(|| planned.clone());
        state.id = Value::Known(namespace.clone());
        state.commit_sha = Value::Known(commit);
        state.files = Value::Known(digests(&files));
        state.ready = Value::Known(false);
        if !state.flux_version.is_known() {
            state.flux_version = Value::Known(String::new());
        }
        if !state.secret_status.is_known() {
            state.secret_status = Value::Known(String::new());
        }
        ApplyError {
            diagnostics,
            partial_state: Some(state),
        }
    };
    let written: Result<DynamicObject, Diagnostics> = async {
        let operator_changed = prior.is_some_and(|p| p.operator != planned.operator);
        if !common::operator_running(&cluster, &namespace).await? || operator_changed {
            match operator_model(&planned) {
                Some(model) => {
                    crate::resources::flux_operator_install::install(
                        ctx, &cluster, &model, timeout,
                    )
                    .await?;
                }
                None if operator_changed => {}
                None => {
                    return Err(Diagnostics::from_error_at(
                        AttrPath::attr("operator"),
                        "Flux Operator Not Installed",
                        format!(
                            "The Flux Operator is not running in namespace {namespace:?} and \
                             the operator attribute names no manifests to install it from. The \
                             commit was pushed; set operator.version (or manifests) and apply \
                             again."
                        ),
                    ));
                }
            }
        }
        if let Some(data) = &secret_data {
            let secret = to_dynamic(sync_secret(&namespace, &secret_name, data), "Secret")?;
            cluster
                .apply(&secret)
                .await
                .map_err(|e| apply_error("Sync Secret Apply Failed", &e))?;
        }
        let json = instance.to_json().map_err(|e| {
            Diagnostics::from_error("Provider Bug: Cannot Encode FluxInstance", e.to_string())
        })?;
        // Fields that kubectl (or any other manager) added and the manifest leaves unset are
        // removed by this apply: the spec and reconcile annotations are taken over first.
        crate::resources::ownership::take_over(
            &cluster,
            &instance_ref(&namespace, crate::flux::instance::INSTANCE_NAME),
            &crate::resources::ownership::reconciled_fields(),
        )
        .await?;
        cluster
            .apply(&to_dynamic(json, "FluxInstance")?)
            .await
            .map_err(|e| apply_error("FluxInstance Apply Failed", &e))
    }
    .await;
    let applied = written.map_err(record_push)?;
    let reference = instance_ref(&namespace, crate::flux::instance::INSTANCE_NAME);

    let mut state = planned.clone();
    state.id = Value::Known(namespace.clone());
    // What Git holds now: the commit just pushed, else the one recorded before.
    state.commit_sha = match pushed.as_ref().and_then(|p| p.commit.clone()) {
        Some(commit) => Value::Known(commit),
        None => prior
            .map_or(Value::Known(String::new()), |p| p.commit_sha.clone())
            .or(Value::Known(String::new())),
    };
    state.files = Value::Known(digests(&files));
    // The Secret now holds what was written (or nothing is managed).
    state.secret_status =
        Value::Known(secret_status(secret_data.as_ref(), secret_data.as_ref()).to_owned());
    state.ready = Value::Known(false);
    state.flux_version = state.flux_version.clone().or(Value::Known(String::new()));
    if state.flux_version.is_unknown() {
        state.flux_version = Value::Known(String::new());
    }
    let partial = |state: &BootstrapModel, diagnostics: Diagnostics| ApplyError {
        diagnostics,
        partial_state: Some(state.clone()),
    };
    let wait = ReconcileWait {
        object: &reference,
        min_generation: applied.metadata.generation.unwrap_or(0),
        requested_at: None,
        timeout,
    };
    let cancel = ctx.cancellation().clone();
    let live = match common::wait_reconciled(&cluster, &wait, &cancel).await {
        Ok(live) => live,
        Err(failure) => {
            return Err(partial(
                &state,
                common::wait_failure_diagnostics(&failure, "FluxInstance"),
            ));
        }
    };
    state.flux_version = Value::Known(flux_version_of(&live));
    if let Some((checkout, changes, message, author)) = pending.take() {
        pushed = Some(
            // A fresh time limit: the wait for the migration used the first one.
            commit_on(
                checkout,
                &options.clone().with_time_limit(timeout),
                changes,
                message,
                author,
            )
            .await
            .map_err(|d| partial(&state, d))?,
        );
    }
    let commit = match (
        pushed.as_ref().and_then(|p| p.commit.clone()),
        prior.and_then(|p| p.commit_sha.as_known()),
    ) {
        (Some(c), _) => c,
        (None, Some(previous)) if !previous.is_empty() => previous.clone(),
        (None, _) => pushed.and_then(|p| p.head).unwrap_or_default(),
    };
    state.commit_sha = Value::Known(commit.clone());
    // Suspended, the operator does not reconcile the instance: whether Flux's sync objects
    // exist and when they apply the commit is not this apply's to wait for (refresh reads a
    // suspended instance as ready when it holds what was committed).
    let suspended = planned.suspend.as_known() == Some(&true);
    let name = sync_name(&planned, &namespace);
    if !suspended
        && let Err(diagnostics) = wait_synced(
            &cluster, &namespace, &name, &commit, &remote, timeout, &cancel,
        )
        .await
    {
        return Err(partial(&state, diagnostics));
    }
    state.ready = Value::Known(true);
    Ok(state)
}
