//! The `flux_bootstrap_git` resource: Git-backed self-management of a Flux installation.
//!
//! Apply checks Git first (clone, push access) so nothing changes in the cluster when the
//! repository cannot be written; then commits the FluxInstance manifest and its
//! `kustomization.yaml` under `<path>/flux-system/` (one commit, none when nothing changed),
//! installs the Flux Operator when it is not running, writes the sync Secret, applies the
//! FluxInstance whose `sync` points at the same repository, and waits until the instance is Ready
//! and the sync Kustomization applied the pushed commit. Read fetches the committed files
//! (shallow) and reads the cluster; plan reads nothing from Git and checks the FluxInstance it
//! would write against the CRD's rules and, when the cluster is known, with a server-side
//! dry-run (the same check runs at apply before the first write); unknown provider settings
//! plan without contacting anything. A failure after the push returns the state of what was
//! written with `ready = false`, so that the next apply finishes in place. Destroy
//! (`uninstall`) deletes the FluxInstance first — the operator removes Flux, so nothing is left to prune the FluxInstance — then
//! removes the owned files from Git in one commit; `orphan` changes nothing.
//!
//! Lives in `resources/`: may use `framework`, `flux`, `cluster`, `git`, never `provider`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use kube::api::PropagationPolicy;

use crate::cluster::objects::ObjectRef;
use crate::flux::bootstrap::secret_status;
use crate::framework::diagnostics::Diagnostics;
use crate::framework::model::{Value, to_raw};
use crate::framework::path::AttrPath;
use crate::framework::plan::attributes_changed;
use crate::framework::resource::{ApplyError, Context, PlanChange, Planned, Resource};
use crate::framework::schema::Schema;
use crate::git::{Author, FileChange, RepoPath};
use crate::resources::common::{self, DeletionPolicy, Operation, apply_error, cluster_for_apply};
use crate::resources::flux_bootstrap_git_apply::{DEFAULT_TIMEOUT, apply_bootstrap, pull_secret};
use crate::resources::flux_bootstrap_git_auth::{git_auth, git_error, git_options};
use crate::resources::flux_bootstrap_git_check::{
    check_hazards, check_instance, check_operator, dropped_patches,
};
use crate::resources::flux_bootstrap_git_config::GitAccess;
use crate::resources::flux_bootstrap_git_manifest::{
    clean_path, desired_instance, digests, render_files,
};
use crate::resources::flux_bootstrap_git_model::{
    BootstrapModel, INPUT_ATTRIBUTES, instance_ref, schema,
};
use crate::resources::flux_bootstrap_git_repo::commit_changes;
use crate::resources::flux_bootstrap_git_sync::{namespace_of, sync_name};
use crate::resources::flux_instance_convert::validate_enums;

/// The `flux_bootstrap_git` resource.
#[derive(Clone, Copy, Debug, Default)]
pub struct FluxBootstrapGitResource;

/// The expected file digests and credentials hash of a configuration, when knowable at plan.
fn expected(
    ctx: &Context<impl GitAccess>,
    planned: &BootstrapModel,
) -> (Value<BTreeMap<String, String>>, Value<String>) {
    let Ok(data) = ctx.data() else {
        return (Value::Unknown, Value::Unknown);
    };
    let (Some(url), Some(path)) = (planned.url.as_known(), planned.path.as_known()) else {
        return (Value::Unknown, Value::Unknown);
    };
    if !data.git_known() {
        return (Value::Unknown, Value::Unknown);
    }
    let Ok(config) = data.git_config() else {
        return (Value::Unknown, Value::Unknown);
    };
    let manage = planned.manage_secret.as_known() != Some(&false);
    let secret_data = if manage {
        config
            .secret_data(url, planned.sync_provider())
            .ok()
            .flatten()
    } else {
        None
    };
    // What apply leaves: the Secret holding what the credentials write, or nothing managed.
    let hash = Value::Known(secret_status(secret_data.as_ref(), secret_data.as_ref()).to_owned());
    let files = desired_instance(planned, pull_secret(planned, secret_data.as_ref()))
        .ok()
        .and_then(|i| render_files(path, &i, &[]).ok())
        .map_or(Value::Unknown, |f| Value::Known(digests(&f)));
    (files, hash)
}

fn inputs_changed(prior: &BootstrapModel, planned: &BootstrapModel) -> bool {
    let (Ok(a), Ok(b)) = (to_raw(prior), to_raw(planned)) else {
        return true;
    };
    attributes_changed(&schema(), &a, &b, &INPUT_ATTRIBUTES)
}

#[async_trait]
impl<D: GitAccess> Resource<D> for FluxBootstrapGitResource {
    type Model = BootstrapModel;

    fn type_name(&self) -> &'static str {
        "flux_bootstrap_git"
    }

    fn schema(&self) -> Schema {
        schema()
    }

    async fn validate(
        &self,
        _ctx: &mut Context<D>,
        config: BootstrapModel,
    ) -> Result<(), Diagnostics> {
        let instance =
            crate::resources::flux_bootstrap_git_manifest::instance_model(&config, Value::Null);
        let mut out = validate_enums(&instance);
        out.extend(crate::resources::validation::bootstrap(&config, &instance));
        if let Some(path) = config.path.as_known()
            && let Err(d) = clean_path(path)
        {
            out.extend(d);
        }
        if let Some(policy) = config.deletion_policy.as_known()
            && DeletionPolicy::parse(policy).is_none()
        {
            out.error_at(
                AttrPath::attr("deletion_policy"),
                "Invalid Deletion Policy",
                format!("{policy:?} is not allowed; use `uninstall` or `orphan`."),
            );
        }
        if out.has_errors() { Err(out) } else { Ok(()) }
    }

    async fn plan(
        &self,
        ctx: &mut Context<D>,
        change: PlanChange<BootstrapModel>,
    ) -> Result<Planned<BootstrapModel>, Diagnostics> {
        let mut planned = change.proposed;
        planned.id = planned.namespace.clone();
        let data = ctx.data()?;
        if let (true, Some(url)) = (data.git_known(), planned.url.as_known()) {
            let mismatch =
                crate::resources::validation::git_settings_match_url(url, &data.git_config()?);
            if mismatch.has_errors() {
                return Err(mismatch);
            }
            if planned.manage_secret.as_known() != Some(&false) {
                data.git_config()?
                    .secret_data(url, planned.sync_provider())?;
            }
        }
        // sync.name is immutable: checked against the prior state first, so that the change
        // gets one error naming the attribute (the hazards below check it against the cluster).
        if let Some(prior) = change.prior.as_ref() {
            sync_name_unchanged(prior, &planned)?;
        }
        // The FluxInstance it would commit and apply: the CRD's rules, and the API server's
        // dry-run when the cluster is known (nothing is written before this passes at apply).
        if let Ok(instance) = desired_instance(&planned, Value::Known(None)) {
            let cluster = common::cluster_if_known(ctx.data()?.as_ref()).await?;
            // The same hazards as flux_instance's (a minor downgrade, a sync.name change, ...).
            let hazards = check_hazards(cluster.as_ref(), &instance).await?;
            ctx.diagnostics.extend(hazards);
            // An operator installed by Helm or under another name: no second one next to it.
            check_operator(cluster.as_ref(), change.prior.as_ref(), &planned).await?;
            if let Some(namespace) = check_instance(cluster.as_ref(), &instance).await? {
                ctx.warn_at(
                    AttrPath::attr("namespace"),
                    "FluxInstance Not Validated By The API Server",
                    format!(
                        "The namespace {namespace:?} does not exist yet, so the API server \
                         cannot dry-run the FluxInstance {namespace}/flux at plan; the plan \
                         checked it against the CRD's rules only. The bootstrap creates the \
                         namespace with the operator, and the API server validates the \
                         FluxInstance when it is applied, after the commit is pushed (a refusal \
                         then fails the apply with the pushed commit recorded in state)."
                    ),
                );
            }
        }
        let (files, hash) = expected(ctx, &planned);
        let Some(prior) = change.prior else {
            planned.files = files;
            // Unknown on create: a create that fails after its first write returns what it
            // wrote (Secret not written, not ready) without an error, in agreement with the plan.
            planned.secret_status = Value::Unknown;
            planned.commit_sha = Value::Unknown;
            planned.ready = Value::Unknown;
            planned.flux_version = Value::Unknown;
            return Ok(Planned::new(planned));
        };
        // Patches the installation applies today (an imported classic bootstrap's, say) that
        // the configuration drops.
        ctx.diagnostics.extend(dropped_patches(&prior, &planned));
        let files_differ = files.is_unknown() || files != prior.files;
        let hash_differs = hash.is_unknown() || hash != prior.secret_status;
        let not_ready = prior.ready.as_known() != Some(&true);
        if inputs_changed(&prior, &planned) || files_differ || hash_differs || not_ready {
            if files_differ {
                planned.commit_sha = Value::Unknown;
            }
            planned.files = files;
            planned.secret_status = hash;
            planned.ready = Value::Known(true);
            if prior.distribution != planned.distribution
                || !prior.flux_version.is_known()
                || not_ready
            {
                planned.flux_version = Value::Unknown;
            }
            if not_ready && !files_differ {
                ctx.warn("Flux Will Be Reconciled", "The FluxInstance is missing or not Ready, or Flux did not apply the last commit: apply re-applies it and waits.");
            }
        }
        let replace = if prior.namespace != planned.namespace {
            vec![AttrPath::attr("namespace")]
        } else {
            Vec::new()
        };
        Ok(Planned {
            state: planned,
            requires_replace: replace,
        })
    }

    async fn create(
        &self,
        ctx: &mut Context<D>,
        planned: BootstrapModel,
        _config: BootstrapModel,
    ) -> Result<BootstrapModel, ApplyError<BootstrapModel>> {
        apply_bootstrap(ctx, None, planned, Operation::Create).await
    }

    async fn read(
        &self,
        ctx: &mut Context<D>,
        state: BootstrapModel,
    ) -> Result<Option<BootstrapModel>, Diagnostics> {
        crate::resources::flux_bootstrap_git_read::read_bootstrap(ctx, state).await
    }

    async fn update(
        &self,
        ctx: &mut Context<D>,
        prior: BootstrapModel,
        planned: BootstrapModel,
        _config: BootstrapModel,
    ) -> Result<BootstrapModel, ApplyError<BootstrapModel>> {
        apply_bootstrap(ctx, Some(&prior), planned, Operation::Update).await
    }

    async fn delete(
        &self,
        ctx: &mut Context<D>,
        prior: BootstrapModel,
    ) -> Result<(), ApplyError<BootstrapModel>> {
        let policy = prior
            .deletion_policy
            .as_known()
            .and_then(|p| DeletionPolicy::parse(p))
            .unwrap_or(DeletionPolicy::Uninstall);
        if policy == DeletionPolicy::Orphan {
            return Ok(());
        }
        let data = ctx.data()?.clone();
        let config = data.git_config()?;
        let cluster = cluster_for_apply(data.as_ref()).await?;
        let namespace = namespace_of(&prior);
        let timeout = common::timeout(&prior.timeouts, Operation::Delete, DEFAULT_TIMEOUT)?;
        let cancel = ctx.cancellation().clone();
        // The cluster first: once the operator removed Flux, nothing can prune the FluxInstance
        // (or anything else) when the files leave the repository.
        let mut warnings = Diagnostics::new();
        let result = common::delete_reconciled(
            &cluster,
            &instance_ref(&namespace, crate::flux::instance::INSTANCE_NAME),
            DeletionPolicy::Uninstall,
            timeout,
            &cancel,
            &mut warnings,
        )
        .await;
        ctx.diagnostics.extend(warnings);
        result?;
        if prior.manage_secret.as_known() != Some(&false) {
            let name = prior
                .secret_name
                .as_known()
                .cloned()
                .unwrap_or_else(|| "flux-system".into());
            cluster
                .delete(
                    &ObjectRef::new("v1", "Secret", Some(&namespace), &name),
                    PropagationPolicy::Background,
                )
                .await
                .map_err(|e| apply_error("Cannot Delete The Sync Secret", &e))?;
        }
        let (Some(url), Some(branch)) = (
            prior.url.as_known().cloned(),
            prior.branch.as_known().cloned(),
        ) else {
            return Ok(());
        };
        let mut changes = Vec::new();
        for p in prior
            .files
            .as_known()
            .map(|f| f.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
        {
            changes.push(FileChange::delete(
                RepoPath::new(&p).map_err(|e| git_error(&e))?,
            ));
        }
        if changes.is_empty() {
            return Ok(());
        }
        let mut message = "Remove Flux (terraform-provider-flux)".to_owned();
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
        commit_changes(
            url.clone(),
            branch,
            git_auth(&config, &url).await?,
            git_options(ctx).with_time_limit(timeout),
            changes,
            message,
            author,
        )
        .await?;
        Ok(())
    }

    async fn import(&self, ctx: &mut Context<D>, id: &str) -> Result<BootstrapModel, Diagnostics> {
        crate::resources::flux_bootstrap_git_import::import(ctx, id).await
    }

    async fn upgrade_state(
        &self,
        _ctx: &mut Context<D>,
        version: i64,
        state: serde_json::Value,
    ) -> Result<BootstrapModel, Diagnostics> {
        crate::resources::flux_bootstrap_git_manifest::upgrade_state(version, state)
    }
}
/// Refuses a change of the effective `sync.name` (the namespace when unset or when `sync` is
/// left out) against the prior state, at `sync.name`. Writing the default out (`sync = { name =
/// "<namespace>" }` where there was no `sync`) is no change. A name unknown until apply is
/// checked then.
fn sync_name_unchanged(
    prior: &BootstrapModel,
    planned: &BootstrapModel,
) -> Result<(), Diagnostics> {
    if planned.sync.is_unknown() || planned.sync.as_known().is_some_and(|s| s.name.is_unknown()) {
        return Ok(());
    }
    let before = sync_name(prior, &namespace_of(prior));
    let after = sync_name(planned, &namespace_of(planned));
    if before != after {
        return Err(Diagnostics::from_error_at(
            AttrPath::attr("sync").then_attr("name"),
            "Immutable Sync Name",
            format!(
                "sync.name cannot change ({before} → {after}): the API refuses it, and renaming \
                 the sync objects would make the operator garbage-collect the Kustomization, \
                 which prunes everything Flux applied. Keep the current name (leaving `sync` or \
                 `sync.name` out means the namespace), or bootstrap a new installation."
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
#[path = "flux_bootstrap_git_tests.rs"]
mod tests;
