//! The distribution-artifact reconciler, and the simulated artifact digests it compares
//! (upstream `internal/controller/fluxinstance_artifact_controller.go` and
//! `fluxinstance_artifact_manager.go`, v0.58.1).
//!
//! Upstream, a FluxInstance with `spec.distribution.artifact` has its manifests pulled from that
//! OCI artifact; the main reconciler records the pulled digest in `status.lastArtifactRevision`
//! when a reconciliation succeeds. A second reconciler, every
//! `fluxcd.controlplane.io/reconcileArtifactEvery` (Go duration, default 10m; 0 while
//! reconciliation is disabled), fetches the artifact's current digest and, when it differs from
//! `status.lastArtifactRevision`, sets `reconcile.fluxcd.io/requestedAt` to the current time on
//! the instance (as the operator's field manager), which makes the main reconciler run. It skips
//! instances being deleted, with reconciliation disabled, without a `lastArtifactRevision` yet, or
//! not Ready; a failed fetch is an `ArtifactFailed` warning event and a retry, nothing in status
//! (the simulator logs it instead of recording an event).
//! It runs on creation, when reconciliation is re-enabled and when the interval annotation
//! changes, then on its own timer. (The simulator's controller is woken by every change of the
//! instance but checks no earlier than the interval allows.)
//!
//! The simulator pulls nothing. The digest of an artifact URL comes from [`Artifacts`], the
//! simulated registry held in [`super::SimConfig::artifacts`]: `sha256:<sha256 of the URL>` until
//! a test "publishes" another digest with [`Artifacts::publish`] (a runtime handle, like
//! [`super::Script`]). A scripted `ArtifactFailed` failure (annotation `sandbox.fluxrs.dev/fail`
//! or the script) fails this fetch too. The manifests themselves stay the embedded ones.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use serde_json::{Value, json};

use super::Failure;
use super::instance::{
    ConstantBackoff, Ctx, REQUESTED_AT_ANNOTATION, SimError, fluxinstance_resource, is_ready,
    reconcile_disabled,
};
use super::inventory::{ObjectRef, sha256_hex};
use super::ops::{annotation, is_deleting};
use super::status::parse_duration;

/// Annotation setting how often the artifact digest is checked.
pub const ARTIFACT_EVERY_ANNOTATION: &str = "fluxcd.controlplane.io/reconcileArtifactEvery";
/// The check interval without [`ARTIFACT_EVERY_ANNOTATION`] (or with an unparsable value).
pub const DEFAULT_ARTIFACT_INTERVAL: Duration = Duration::from_secs(600);

/// The simulated OCI registry of distribution artifacts: the current digest of each URL.
#[derive(Clone, Default)]
pub struct Artifacts {
    digests: Arc<Mutex<HashMap<String, String>>>,
}

impl std::fmt::Debug for Artifacts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Artifacts").finish_non_exhaustive()
    }
}

impl Artifacts {
    /// Publishes `digest` (`sha256:…`) as the artifact `url`'s current digest.
    pub fn publish(&self, url: &str, digest: &str) {
        if let Ok(mut m) = self.digests.lock() {
            m.insert(url.to_string(), digest.to_string());
        }
    }

    /// The current digest of `url`: the published one, else [`default_digest`].
    pub fn digest(&self, url: &str) -> String {
        self.digests
            .lock()
            .ok()
            .and_then(|m| m.get(url).cloned())
            .unwrap_or_else(|| default_digest(url))
    }
}

/// The digest of an artifact nobody published a digest for: `sha256:<sha256 of the URL>`.
pub fn default_digest(url: &str) -> String {
    format!("sha256:{}", sha256_hex(url.as_bytes()))
}

/// The artifact URL of an instance (`spec.distribution.artifact`), when set.
pub fn artifact_url(obj: &Value) -> Option<&str> {
    obj["spec"]["distribution"]["artifact"]
        .as_str()
        .filter(|u| !u.is_empty())
}

/// The check interval of an instance: zero while reconciliation is disabled.
pub fn artifact_interval(obj: &Value) -> Duration {
    if reconcile_disabled(obj) {
        return Duration::ZERO;
    }
    annotation(obj, ARTIFACT_EVERY_ANNOTATION)
        .and_then(parse_duration)
        .unwrap_or(DEFAULT_ARTIFACT_INTERVAL)
}

/// The scripted `ArtifactFailed` message of an instance, when any.
pub(crate) fn scripted_failure(ctx: &Ctx, obj: &Value) -> Option<String> {
    ctx.config
        .script
        .failures_for("FluxInstance", obj)
        .into_iter()
        .find_map(|f| match f {
            Failure::ArtifactFailed(m) => Some(m),
            _ => None,
        })
}

/// When each instance (by UID) is next due, and the interval that was computed with.
#[derive(Default)]
struct Schedule {
    due: Mutex<HashMap<String, (Instant, Duration)>>,
}

impl Schedule {
    /// The time left before `uid` is due, when it is not due yet and its interval is unchanged.
    fn remaining(&self, uid: &str, interval: Duration) -> Option<Duration> {
        let m = self.due.lock().ok()?;
        let (due, was) = m.get(uid)?;
        (*was == interval)
            .then(|| due.checked_duration_since(Instant::now()))
            .flatten()
            .filter(|d| !d.is_zero())
    }

    fn checked(&self, uid: &str, interval: Duration) {
        if let Ok(mut m) = self.due.lock() {
            m.insert(uid.to_string(), (Instant::now() + interval, interval));
        }
    }

    fn forget(&self, uid: &str) {
        if let Ok(mut m) = self.due.lock() {
            m.remove(uid);
        }
    }
}

fn requeue(interval: Duration) -> Action {
    if interval.is_zero() {
        Action::await_change()
    } else {
        Action::requeue(interval)
    }
}

/// Runs the artifact reconciler until the task is aborted.
pub async fn run(ctx: Arc<Ctx>) {
    let ar = fluxinstance_resource();
    let api: Api<DynamicObject> = Api::all_with(ctx.kube.client().clone(), &ar);
    let schedule = Arc::new(Schedule::default());
    Controller::new_with(api, watcher::Config::default(), ar)
        .trigger_backoff(ConstantBackoff(Duration::from_millis(200)))
        .run(
            move |obj, ctx| reconcile(obj, ctx, schedule.clone()),
            |_obj, err: &SimError, ctx| {
                tracing::debug!(error = %err, "fluxinstance artifact reconcile failed, retrying");
                Action::requeue(ctx.config.retry_interval)
            },
            ctx,
        )
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::debug!(error = %e, "fluxinstance artifact controller");
            }
        })
        .await;
}

async fn reconcile(
    obj: Arc<DynamicObject>,
    ctx: Arc<Ctx>,
    schedule: Arc<Schedule>,
) -> Result<Action, SimError> {
    let obj = serde_json::to_value(&*obj).map_err(|e| SimError::Decode(e.to_string()))?;
    let me = ObjectRef::of(&obj).map_err(|e| SimError::Decode(e.to_string()))?;
    if me.name != "flux" || !ctx.operator_available(&me.namespace).await? {
        return Ok(Action::await_change());
    }
    let Some(obj) = ctx.kube.get(&me).await? else {
        return Ok(Action::await_change());
    };
    let uid = obj["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if is_deleting(&obj) || reconcile_disabled(&obj) {
        // Re-enabling starts a check at once.
        schedule.forget(&uid);
        return Ok(Action::await_change());
    }
    let interval = artifact_interval(&obj);
    // Other changes of the instance do not trigger a check before it is due.
    if let Some(left) = schedule.remaining(&uid, interval) {
        return Ok(Action::requeue(left));
    }
    schedule.checked(&uid, interval);
    let last = obj["status"]["lastArtifactRevision"]
        .as_str()
        .unwrap_or_default();
    if last.is_empty() || !is_ready(&obj) {
        return Ok(requeue(interval));
    }
    let Some(url) = artifact_url(&obj) else {
        return Ok(requeue(interval));
    };
    if let Some(message) = scripted_failure(&ctx, &obj) {
        tracing::warn!(instance = %me.id(), "ArtifactFailed: fetch failed: {message}");
        schedule.forget(&uid);
        return Ok(Action::requeue(ctx.config.retry_interval));
    }
    let digest = ctx.config.artifacts.digest(url);
    if digest == last {
        return Ok(requeue(interval));
    }
    tracing::info!(old = last, new = %digest, "artifact revision changed, requesting a reconciliation");
    let now = jiff::Timestamp::now().to_string();
    ctx.kube
        .merge_patch(
            &me,
            &json!({"metadata": {"annotations": {REQUESTED_AT_ANNOTATION: now}}}),
            false,
        )
        .await?;
    Ok(requeue(interval))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Upstream `api/v1/fluxinstance_types.go` `GetArtifactInterval`.
    #[test]
    fn the_interval_follows_the_annotation() {
        let with = |a: Value| json!({"metadata": {"annotations": a}});
        assert_eq!(
            artifact_interval(&with(json!({}))),
            DEFAULT_ARTIFACT_INTERVAL
        );
        assert_eq!(
            artifact_interval(&with(
                json!({"fluxcd.controlplane.io/reconcileArtifactEvery": "30s"})
            )),
            Duration::from_secs(30)
        );
        assert_eq!(
            artifact_interval(&with(
                json!({"fluxcd.controlplane.io/reconcileArtifactEvery": "soon"})
            )),
            DEFAULT_ARTIFACT_INTERVAL
        );
        assert_eq!(
            artifact_interval(&with(
                json!({"fluxcd.controlplane.io/reconcile": "disabled"})
            )),
            Duration::ZERO
        );
    }

    #[test]
    fn published_digests_replace_the_default() {
        let a = Artifacts::default();
        let url = "oci://ghcr.io/controlplaneio-fluxcd/flux-operator-manifests:latest";
        assert_eq!(a.digest(url), default_digest(url));
        a.publish(url, "sha256:0123");
        assert_eq!(a.digest(url), "sha256:0123");
    }
}
