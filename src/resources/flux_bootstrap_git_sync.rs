//! Where the sync objects of `flux_bootstrap_git` are and what Flux applied: the namespace and
//! sync names of a configuration, the commit in a `lastAppliedRevision`, and the wait until the
//! sync Kustomization applied the pushed commit (or a later tip of the branch).

use std::collections::BTreeMap;
use std::time::Duration;

use kube::api::DynamicObject;

use crate::cluster::objects::{Cluster, ObjectRef};
use crate::cluster::wait::{WaitError, WaitOutcome};
use crate::flux::bootstrap::revision_has_commit;
use crate::flux::instance::ANNOTATION_REQUESTED_AT;
use crate::flux::version::FluxVersion;
use crate::framework::diagnostics::Diagnostics;
use crate::resources::common::apply_error;
use crate::resources::flux_bootstrap_git_model::BootstrapModel;
use crate::resources::flux_bootstrap_git_repo::Remote;

pub(super) fn namespace_of(model: &BootstrapModel) -> String {
    model
        .namespace
        .as_known()
        .cloned()
        .unwrap_or_else(|| "flux-system".into())
}

/// The commit that Flux applied (`lastAppliedRevision`, `<ref>@sha1:<commit>`), if any.
pub(super) fn applied_commit(revision: &str) -> Option<&str> {
    revision
        .rsplit_once("@sha1:")
        .map(|(_, sha)| sha)
        .or_else(|| revision.rsplit_once('/').map(|(_, sha)| sha))
        .filter(|sha| !sha.is_empty())
}

/// The sync GitRepository and Kustomization: named `sync.name`, else after the namespace.
pub(super) fn sync_refs(namespace: &str, name: &str) -> (ObjectRef, ObjectRef) {
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
pub(super) fn sync_name(model: &BootstrapModel, namespace: &str) -> String {
    model
        .sync
        .as_known()
        .and_then(|s| s.name.as_known().cloned())
        .unwrap_or_else(|| namespace.to_owned())
}

pub(super) fn condition_of(object: &DynamicObject) -> Option<(String, String, String)> {
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
pub(super) async fn wait_synced(
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
pub(super) async fn later_tip_applied(
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

pub(super) fn flux_version_of(live: &DynamicObject) -> String {
    live.data["status"]["lastAppliedRevision"]
        .as_str()
        .and_then(|r| FluxVersion::from_revision(r).ok())
        .map(|v| v.to_string())
        .unwrap_or_default()
}
