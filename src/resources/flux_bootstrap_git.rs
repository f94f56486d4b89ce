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
use std::time::Duration;

use async_trait::async_trait;
use kube::api::{DynamicObject, PropagationPolicy};

use crate::cluster::objects::{Cluster, ObjectRef};
use crate::cluster::wait::{WaitError, WaitOutcome};
use crate::flux::bootstrap::secret_status;
use crate::flux::bootstrap::{CLASSIC_FILES, revision_has_commit, sync_secret};
use crate::flux::instance::ANNOTATION_REQUESTED_AT;
use crate::flux::render::parse_instance_manifest;
use crate::flux::version::FluxVersion;
use crate::framework::diagnostics::Diagnostics;
use crate::framework::model::{Value, to_raw};
use crate::framework::path::AttrPath;
use crate::framework::plan::attributes_changed;
use crate::framework::resource::{ApplyError, Context, PlanChange, Planned, Resource};
use crate::framework::schema::Schema;
use crate::git::{Auth, Author, Checkout, Error as GitError, FileChange, Options, RepoPath};
use crate::resources::common::{
    self, DeletionPolicy, Operation, ReconcileWait, apply_error, cluster_for_apply,
};
use crate::resources::flux_bootstrap_git_check::{check_hazards, check_instance, dropped_patches};
use crate::resources::flux_bootstrap_git_model::{
    BootstrapModel, DEFAULT_COMMIT_MESSAGE, GitAccess, INPUT_ATTRIBUTES, clean_path,
    desired_instance, digest, digests, instance_ref, operator_model, read_manifest_into,
    render_files, schema,
};
use crate::resources::flux_instance_model::{ModelError, validate_enums};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// The `flux_bootstrap_git` resource.
#[derive(Clone, Copy, Debug, Default)]
pub struct FluxBootstrapGitResource;

fn namespace_of(model: &BootstrapModel) -> String {
    model
        .namespace
        .as_known()
        .cloned()
        .unwrap_or_else(|| "flux-system".into())
}

fn known(value: &Value<String>, name: &str) -> Result<String, Diagnostics> {
    value.as_known().cloned().ok_or_else(|| {
        Diagnostics::from_error_at(
            AttrPath::attr(name),
            "Value Unknown At Apply",
            format!("{name} is still unknown during apply."),
        )
    })
}

use crate::resources::flux_bootstrap_git_auth::{git_auth, git_error, git_options};

/// What a commit step did: the commit made (if any) and the repository's head afterwards.
struct Pushed {
    commit: Option<String>,
    head: Option<String>,
}

/// Runs a blocking Git operation on the blocking pool and waits for it, but no longer than its
/// options allow: when Terraform cancels (StopProvider) or the operation's time limit passes,
/// the caller gets the error at once and libgit2 is told to stop at its next callback. (A
/// stalled server makes libgit2 call nothing, so only the caller can stop waiting.)
async fn run_git<T: Send + 'static>(
    options: &Options,
    work: impl FnOnce() -> Result<T, GitError> + Send + 'static,
) -> Result<T, Diagnostics> {
    let mut task = tokio::task::spawn_blocking(work);
    loop {
        tokio::select! {
            joined = &mut task => {
                return joined
                    .map_err(|e| Diagnostics::from_error("Git Task Failed", e.to_string()))?
                    .map_err(|e| git_error(&e));
            }
            () = tokio::time::sleep(Duration::from_millis(50)) => {
                if let Some(interrupted) = options.interrupted() {
                    options.stop();
                    return Err(git_error(&interrupted));
                }
            }
        }
    }
}

/// Clones and checks push access; also returns which `flux bootstrap` files (`gotk-*.yaml`)
/// exist in `flux_dir` (a classic install to migrate).
async fn open_checked(
    url: String,
    branch: String,
    auth: Auth,
    options: Options,
    flux_dir: String,
) -> Result<(Checkout, Vec<String>), Diagnostics> {
    let waiting = options.clone();
    run_git(&waiting, move || {
        let checkout = Checkout::open(&url, &branch, &auth, &options)?;
        checkout.check_push_access()?;
        let mut classic = Vec::new();
        for file in CLASSIC_FILES {
            let path = if flux_dir.is_empty() {
                file.to_owned()
            } else {
                format!("{flux_dir}/{file}")
            };
            if checkout.read(&RepoPath::new(&path)?)?.is_some() {
                classic.push(path);
            }
        }
        Ok((checkout, classic))
    })
    .await
}

/// Applies `changes` in one commit on an open checkout (none when nothing changes); `options`
/// are the ones the checkout was opened with.
async fn commit_on(
    mut checkout: Checkout,
    options: &Options,
    changes: Vec<FileChange>,
    message: String,
    author: Author,
) -> Result<Pushed, Diagnostics> {
    run_git(options, move || {
        let commit = checkout.apply_changes(&changes, &message, &author)?;
        Ok(Pushed {
            commit: commit.map(|c| c.to_string()),
            head: checkout.head().map(|c| c.to_string()),
        })
    })
    .await
}

/// Clones, checks push access and commits `changes` (none when nothing changes).
async fn commit_changes(
    url: String,
    branch: String,
    auth: Auth,
    options: Options,
    changes: Vec<FileChange>,
    message: String,
    author: Author,
) -> Result<Pushed, Diagnostics> {
    let (checkout, _) = open_checked(url, branch, auth, options.clone(), String::new()).await?;
    commit_on(checkout, &options, changes, message, author).await
}

/// Where the repository is, for looking up the branch tip while waiting.
struct Remote {
    url: String,
    branch: String,
    auth: Auth,
    options: Options,
}

impl Remote {
    /// The commit at the tip of the branch now (`None` when it cannot be read).
    async fn tip(&self) -> Option<String> {
        let options = self
            .options
            .clone()
            .with_time_limit(Duration::from_secs(30));
        let (url, branch, auth) = (self.url.clone(), self.branch.clone(), self.auth.clone());
        let waiting = options.clone();
        run_git(&waiting, move || {
            Ok(Checkout::open(&url, &branch, &auth, &options)?
                .head()
                .map(|c| c.to_string()))
        })
        .await
        .ok()
        .flatten()
    }
}

/// The commit that Flux applied (`lastAppliedRevision`, `<ref>@sha1:<commit>`), if any.
fn applied_commit(revision: &str) -> Option<&str> {
    revision
        .rsplit_once("@sha1:")
        .map(|(_, sha)| sha)
        .or_else(|| revision.rsplit_once('/').map(|(_, sha)| sha))
        .filter(|sha| !sha.is_empty())
}

/// Reads files (relative paths) at the branch tip; `None` for missing ones; and the tip.
async fn read_files(
    url: String,
    branch: String,
    auth: Auth,
    options: Options,
    paths: Vec<String>,
) -> Result<(BTreeMap<String, Option<Vec<u8>>>, Option<String>), Diagnostics> {
    let waiting = options.clone();
    run_git(&waiting, move || {
        let checkout = Checkout::open(&url, &branch, &auth, &options)?;
        let mut out = BTreeMap::new();
        for p in paths {
            let content = checkout.read(&RepoPath::new(&p)?)?;
            out.insert(p, content);
        }
        Ok((out, checkout.head().map(|c| c.to_string())))
    })
    .await
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
fn pull_secret(
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

/// The sync GitRepository and Kustomization: named `sync.name`, else after the namespace.
fn sync_refs(namespace: &str, name: &str) -> (ObjectRef, ObjectRef) {
    (
        ObjectRef::new(
            "source.toolkit.fluxcd.io/v1",
            "GitRepository",
            Some(namespace),
            name,
        ),
        ObjectRef::new(
            "kustomize.toolkit.fluxcd.io/v1",
            "Kustomization",
            Some(namespace),
            name,
        ),
    )
}

/// The name of the sync objects of a configuration.
fn sync_name(model: &BootstrapModel, namespace: &str) -> String {
    model
        .sync
        .as_known()
        .and_then(|s| s.name.as_known().cloned())
        .unwrap_or_else(|| namespace.to_owned())
}

fn condition_of(object: &DynamicObject) -> Option<(String, String, String)> {
    let generation = object.metadata.generation;
    object.data["status"]["conditions"]
        .as_array()?
        .iter()
        .find_map(|c| {
            (c["type"] == "Ready"
                && (c["observedGeneration"].as_i64().is_none()
                    || c["observedGeneration"].as_i64() == generation))
                .then(|| {
                    let s = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
                    (s("status"), s("reason"), s("message"))
                })
        })
}

/// Asks source-controller to fetch now and waits until the sync Kustomization applied `commit`.
/// Fails early when the fetch requested here fails (the cluster cannot pull the repository).
/// Waits until Flux applied `commit` — or a later commit of the branch: when another
/// configuration (another cluster bootstrapped into the same repository, or anyone) pushed on
/// top, Flux applies the newer tip, which contains `commit` (pushes are never forced, so the tip
/// descends from it).
async fn wait_synced(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
    commit: &str,
    remote: &Remote,
    timeout: Duration,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<(), Diagnostics> {
    let (source, kustomization) = sync_refs(namespace, name);
    let token = k8s_openapi::jiff::Timestamp::now().to_string();
    let annotations = BTreeMap::from([(ANNOTATION_REQUESTED_AT.to_owned(), Some(token.clone()))]);
    cluster
        .annotate(&source, &annotations)
        .await
        .map_err(|e| apply_error("Cannot Request A Git Fetch", &e))?;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let slice = Duration::from_secs(2)
            .min(deadline.saturating_duration_since(tokio::time::Instant::now()));
        let done = |object: Option<&DynamicObject>| {
            let Some(object) = object else {
                return WaitOutcome::Pending;
            };
            let applied = object.data["status"]["lastAppliedRevision"]
                .as_str()
                .unwrap_or_default();
            match condition_of(object) {
                Some((status, _, _))
                    if status == "True" && revision_has_commit(applied, commit) =>
                {
                    WaitOutcome::Done
                }
                _ => WaitOutcome::Pending,
            }
        };
        match cluster.wait_for(&kustomization, slice, cancel, done).await {
            Ok(_) => return Ok(()),
            Err(WaitError::Cancelled { .. }) => {
                return Err(Diagnostics::from_error(
                    "Interrupted",
                    "Apply was interrupted while waiting for Flux to sync the commit; apply again.",
                ));
            }
            Err(WaitError::Timeout { last_state, .. }) => {
                if later_tip_applied(cluster, &kustomization, commit, remote).await {
                    return Ok(());
                }
                let live = cluster
                    .get(&source)
                    .await
                    .map_err(|e| apply_error("Cannot Read The GitRepository", &e))?;
                if let Some(live) = &live
                    && live.data["status"]["lastHandledReconcileAt"] == token.as_str()
                    && let Some((status, reason, message)) = condition_of(live)
                    && status == "False"
                {
                    return Err(Diagnostics::from_error(
                        "Flux Cannot Fetch The Repository",
                        format!(
                            "The GitRepository {namespace}/{name} failed ({reason}): {message}. \
                             The commit was pushed; check that the cluster can reach the \
                             repository with the sync Secret's credentials, then apply again."
                        ),
                    ));
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(Diagnostics::from_error(
                        "Flux Did Not Sync The Commit",
                        format!(
                            "Timed out waiting for the Kustomization {namespace}/{name} to \
                             apply commit {commit}: {last_state}. Raise timeouts or check the \
                             Flux controllers' logs."
                        ),
                    ));
                }
            }
            Err(e) => {
                return Err(Diagnostics::from_error(
                    "Flux Did Not Sync The Commit",
                    format!("{e}."),
                ));
            }
        }
    }
}

/// Whether the Kustomization is Ready at a commit other than `commit` that is the branch's
/// current tip (so a descendant of `commit`, which was the tip when it was pushed).
async fn later_tip_applied(
    cluster: &Cluster,
    kustomization: &ObjectRef,
    commit: &str,
    remote: &Remote,
) -> bool {
    let Ok(Some(object)) = cluster.get(kustomization).await else {
        return false;
    };
    let revision = object.data["status"]["lastAppliedRevision"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let ready = condition_of(&object).is_some_and(|(status, _, _)| status == "True");
    match applied_commit(&revision) {
        Some(applied) if ready && applied != commit => {
            remote.tip().await.as_deref() == Some(applied)
        }
        _ => false,
    }
}

/// Create and update: Git first, then the cluster, then the waits.
async fn apply_bootstrap(
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
                    crate::resources::flux_operator::install(ctx, &cluster, &model, timeout)
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
    // A suspended instance is not reconciled, so Flux does not sync: nothing to wait for.
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

fn flux_version_of(live: &DynamicObject) -> String {
    live.data["status"]["lastAppliedRevision"]
        .as_str()
        .and_then(|r| FluxVersion::from_revision(r).ok())
        .map(|v| v.to_string())
        .unwrap_or_default()
}

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
            crate::resources::flux_bootstrap_git_model::instance_model(&config, Value::Null);
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
            state.ready = Value::Known(readiness.is_ready() && synced && matches_commit);
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
        crate::resources::flux_bootstrap_git_model::upgrade_state(version, state)
    }
}

pub(crate) fn decode_secret(secret: &DynamicObject) -> BTreeMap<String, String> {
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

/// Refuses a change of the effective `sync.name` against the prior state, at `sync.name`.
fn sync_name_unchanged(
    prior: &BootstrapModel,
    planned: &BootstrapModel,
) -> Result<(), Diagnostics> {
    let name_of = |m: &BootstrapModel| m.sync.as_known().and_then(|s| s.name.as_known().cloned());
    if planned.sync.is_known() && name_of(prior) != name_of(planned) {
        return Err(Diagnostics::from_error_at(
            AttrPath::attr("sync").then_attr("name"),
            "Immutable Sync Name",
            format!(
                "sync.name cannot change ({} → {}): the API refuses it, and renaming the sync \
                 objects would make the operator garbage-collect the Kustomization, which prunes \
                 everything Flux applied. Keep the current name, or bootstrap a new installation.",
                name_of(prior).as_deref().unwrap_or("(the namespace)"),
                name_of(planned).as_deref().unwrap_or("(the namespace)")
            ),
        ));
    }
    Ok(())
}
