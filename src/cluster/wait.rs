//! Waiting for one object to reach a condition, by watching it: one list (by
//! `metadata.name` field selector) for the current state, then a watch from that list's
//! `resourceVersion`, re-established from the last seen version when the server ends it and
//! relisted when the server answers 410 Expired. Nothing here sleeps in a polling loop; the only
//! pauses are the back-off after a failed request, and — while the object's kind is not served
//! at all, so there is nothing to watch — the same back-off between discovery look-ups.
//!
//! The caller supplies the condition as a closure over the current object (`None` while it does
//! not exist); ready-made conditions are here too: [`crd_established`],
//! [`deployment_available`], [`gone`] and the kstatus-like [`ready`]. Every wait has a timeout
//! and ends promptly, with [`WaitError::Cancelled`], when its `CancellationToken` is cancelled.
//!
//! Generic Kubernetes access: knows nothing of Terraform or Flux, and depends on nothing else in
//! this crate.

use std::fmt::Write as _;
use std::time::Duration;

use futures::StreamExt as _;
use kube::api::{DynamicObject, ListParams, WatchEvent, WatchParams};
use kube::core::Status;
use serde_json::Value;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::objects::{Cluster, ObjectRef, ObjectsError};
use super::status::{self, describe};

/// What a wait condition says about the object's current state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitOutcome {
    /// The condition holds: the wait ends successfully.
    Done,
    /// Not yet: keep watching.
    Pending,
    /// The condition can no longer hold (e.g. `Stalled=True`): the wait fails at once with this
    /// message.
    Failed(String),
}

/// Errors of a wait, named after how it ended.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// Discovering which resource serves the object's kind failed for good.
    #[error("waiting for {object}: {source}")]
    Discover {
        /// The object waited for.
        object: ObjectRef,
        /// The discovery error.
        #[source]
        source: ObjectsError,
    },
    /// The API server refused to list or watch the object (400, 401, 403...): retrying cannot
    /// help.
    #[error("watching {object}: {}", describe(.source))]
    Watch {
        /// The object waited for.
        object: ObjectRef,
        /// The request's error.
        #[source]
        source: kube::Error,
    },
    /// The condition reported a failure.
    #[error("{object} failed: {message}")]
    Failed {
        /// The object waited for.
        object: ObjectRef,
        /// The condition's message (e.g. the `Stalled` condition's reason and message).
        message: String,
    },
    /// The timeout elapsed first.
    #[error(
        "timed out after {} waiting for {object}: {last_state}{}",
        format_duration(*.timeout),
        .last_error.as_ref().map(|e| format!(" (last error: {e})")).unwrap_or_default()
    )]
    Timeout {
        /// The object waited for.
        object: ObjectRef,
        /// The timeout that elapsed.
        timeout: Duration,
        /// The object's last observed state, described (see [`describe_state`]).
        last_state: String,
        /// The last request error while watching, when the watch was failing.
        last_error: Option<String>,
    },
    /// The wait was cancelled (the provider is being stopped).
    #[error("waiting for {object}: cancelled")]
    Cancelled {
        /// The object waited for.
        object: ObjectRef,
    },
}

impl WaitError {
    /// The object waited for.
    pub fn object(&self) -> &ObjectRef {
        match self {
            Self::Discover { object, .. }
            | Self::Watch { object, .. }
            | Self::Failed { object, .. }
            | Self::Timeout { object, .. }
            | Self::Cancelled { object } => object,
        }
    }

    /// The API server's Status, when a request failed with one.
    pub fn status(&self) -> Option<&Status> {
        match self {
            Self::Discover { source, .. } => source.status(),
            Self::Watch { source, .. } => status::api_status(source),
            _ => None,
        }
    }
}

/// The first pause after a failed request; doubled on each further failure.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest pause after a failed request.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long the server may hold one watch request open.
const WATCH_TIMEOUT_SECONDS: u32 = 290;

/// What a wait has seen so far, for the timeout message.
#[derive(Default)]
struct Seen {
    /// `None` until the object's state was first observed.
    state: Option<Option<DynamicObject>>,
    /// The last request error, cleared by the next success.
    error: Option<String>,
}

/// Exponential back-off between failed requests.
struct Backoff(Duration);

impl Backoff {
    fn new() -> Self {
        Self(FIRST_BACKOFF)
    }

    fn reset(&mut self) {
        self.0 = FIRST_BACKOFF;
    }

    async fn pause(&mut self) {
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 2).min(MAX_BACKOFF);
    }
}

/// Why the watch loop must start over with a fresh list.
enum Restart {
    /// Right away (410 Expired: the version is too old to resume from).
    Now,
    /// After the back-off pause.
    AfterPause,
}

impl Cluster {
    /// Waits until `condition` says [`WaitOutcome::Done`] for the object (given `None` while it
    /// does not exist), watching it; returns the object as last seen (`None` if absent). Fails
    /// at once when the condition says [`WaitOutcome::Failed`], after `timeout` with
    /// [`WaitError::Timeout`] describing the last state seen, and promptly with
    /// [`WaitError::Cancelled`] when `cancel` is cancelled.
    pub async fn wait_for<F>(
        &self,
        object: &ObjectRef,
        timeout: Duration,
        cancel: &CancellationToken,
        condition: F,
    ) -> Result<Option<DynamicObject>, WaitError>
    where
        F: Fn(Option<&DynamicObject>) -> WaitOutcome + Sync,
    {
        let mut seen = Seen::default();
        let deadline = Instant::now() + timeout;
        let finished = {
            let watch = self.watch_until(object, &condition, &mut seen);
            tokio::select! {
                biased;
                () = cancel.cancelled() => None,
                () = tokio::time::sleep_until(deadline) => Some(None),
                result = watch => Some(Some(result)),
            }
        };
        match finished {
            None => Err(WaitError::Cancelled {
                object: object.clone(),
            }),
            Some(Some(result)) => result,
            Some(None) => Err(WaitError::Timeout {
                object: object.clone(),
                timeout,
                last_state: match &seen.state {
                    None => "its state could not be read".to_owned(),
                    Some(state) => describe_state(state.as_ref()),
                },
                last_error: seen.error,
            }),
        }
    }

    /// The list-then-watch loop; returns when the condition is decided.
    async fn watch_until<F>(
        &self,
        object: &ObjectRef,
        condition: &F,
        seen: &mut Seen,
    ) -> Result<Option<DynamicObject>, WaitError>
    where
        F: Fn(Option<&DynamicObject>) -> WaitOutcome + Sync,
    {
        let decide = |current: Option<DynamicObject>, seen: &mut Seen| {
            let outcome = condition(current.as_ref());
            match outcome {
                WaitOutcome::Done => Some(Ok(current)),
                WaitOutcome::Failed(message) => Some(Err(WaitError::Failed {
                    object: object.clone(),
                    message,
                })),
                WaitOutcome::Pending => {
                    seen.state = Some(current);
                    None
                }
            }
        };
        let watch_error = |source| WaitError::Watch {
            object: object.clone(),
            source,
        };
        let selector = format!("metadata.name={}", object.name);
        let mut backoff = Backoff::new();
        loop {
            // The kind may only become served later (a CRD being installed): there is nothing
            // to watch until then, so discovery is retried after the back-off pause.
            let kind = match self.resolve(&object.api_version, &object.kind).await {
                Ok(Some(kind)) => kind,
                Ok(None) => {
                    if let Some(decided) = decide(None, seen) {
                        return decided;
                    }
                    backoff.pause().await;
                    continue;
                }
                Err(source) => {
                    if source.status().is_some_and(|s| matches!(s.code, 401 | 403)) {
                        return Err(WaitError::Discover {
                            object: object.clone(),
                            source,
                        });
                    }
                    seen.error = Some(source.to_string());
                    backoff.pause().await;
                    continue;
                }
            };
            let api = self.api_for(&kind, object.namespace.as_deref());
            let list = match api.list(&ListParams::default().fields(&selector)).await {
                Ok(list) => list,
                Err(error) if status::is_not_found(&error) => {
                    // The kind went away (CRD deleted) or the namespace is gone: absent.
                    self.note_error(object, &error);
                    if let Some(decided) = decide(None, seen) {
                        return decided;
                    }
                    backoff.pause().await;
                    continue;
                }
                Err(error) if status::is_permanent(&error) => return Err(watch_error(error)),
                Err(error) => {
                    seen.error = Some(describe(&error));
                    backoff.pause().await;
                    continue;
                }
            };
            seen.error = None;
            let mut version = list
                .metadata
                .resource_version
                .clone()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "0".to_owned());
            let current = list.items.into_iter().next();
            if let Some(decided) = decide(current, seen) {
                return decided;
            }
            let restart = loop {
                let params = WatchParams::default()
                    .fields(&selector)
                    .timeout(WATCH_TIMEOUT_SECONDS);
                let stream = match api.watch(&params, &version).await {
                    Ok(stream) => stream,
                    Err(error) if status::is_permanent(&error) => {
                        return Err(watch_error(error));
                    }
                    Err(error) => {
                        seen.error = Some(describe(&error));
                        break Restart::AfterPause;
                    }
                };
                let started = Instant::now();
                let mut events = 0_usize;
                let mut stream = std::pin::pin!(stream);
                let mut failed = None;
                while let Some(event) = stream.next().await {
                    events += 1;
                    match event {
                        Ok(WatchEvent::Added(found) | WatchEvent::Modified(found)) => {
                            if let Some(v) = found.metadata.resource_version.clone() {
                                version = v;
                            }
                            if let Some(decided) = decide(Some(found), seen) {
                                return decided;
                            }
                        }
                        Ok(WatchEvent::Deleted(gone)) => {
                            if let Some(v) = gone.metadata.resource_version.clone() {
                                version = v;
                            }
                            if let Some(decided) = decide(None, seen) {
                                return decided;
                            }
                        }
                        Ok(WatchEvent::Bookmark(bookmark)) => {
                            version = bookmark.metadata.resource_version;
                        }
                        Ok(WatchEvent::Error(status)) if status.code == 410 => {
                            failed = Some(Restart::Now);
                            break;
                        }
                        Ok(WatchEvent::Error(status)) => {
                            seen.error = Some(status::describe_status(&status));
                            failed = Some(Restart::AfterPause);
                            break;
                        }
                        Err(error) => {
                            // A broken stream resumes from the last version seen.
                            seen.error = Some(describe(&error));
                            break;
                        }
                    }
                }
                if let Some(restart) = failed {
                    break restart;
                }
                // The server ended the watch (its timeout, or a dropped connection): resume
                // from the last version seen; pause first if it ended without delivering
                // anything, so that a server closing watches at once cannot make us spin.
                if events == 0 && started.elapsed() < Duration::from_secs(1) {
                    backoff.pause().await;
                } else {
                    backoff.reset();
                }
            };
            if let Restart::AfterPause = restart {
                backoff.pause().await;
            }
        }
    }
}

/// One entry of `status.conditions`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Condition {
    /// `type`, e.g. `Ready`.
    pub type_: String,
    /// `status`: `True`, `False` or `Unknown`.
    pub status: String,
    /// `reason` (may be empty).
    pub reason: String,
    /// `message` (may be empty).
    pub message: String,
    /// The condition's own `observedGeneration`, when set.
    pub observed_generation: Option<i64>,
}

impl Condition {
    /// True when `status` is `True`.
    pub fn is_true(&self) -> bool {
        self.status == "True"
    }

    /// `Reason: message`, or whichever of the two is set.
    pub fn explanation(&self) -> String {
        match (self.reason.is_empty(), self.message.is_empty()) {
            (false, false) => format!("{}: {}", self.reason, self.message),
            (false, true) => self.reason.clone(),
            (true, false) => self.message.clone(),
            (true, true) => format!("{}={}", self.type_, self.status),
        }
    }
}

/// The object's `status.conditions`, in order (entries without a `type` are skipped).
pub fn conditions(object: &DynamicObject) -> Vec<Condition> {
    let Some(entries) = object.data["status"]["conditions"].as_array() else {
        return Vec::new();
    };
    let text = |entry: &Value, key: &str| entry[key].as_str().unwrap_or_default().to_owned();
    entries
        .iter()
        .filter(|entry| entry["type"].is_string())
        .map(|entry| Condition {
            type_: text(entry, "type"),
            status: text(entry, "status"),
            reason: text(entry, "reason"),
            message: text(entry, "message"),
            observed_generation: entry["observedGeneration"].as_i64(),
        })
        .collect()
}

/// The condition of the given type, if the object reports it.
pub fn condition(object: &DynamicObject, type_: &str) -> Option<Condition> {
    conditions(object).into_iter().find(|c| c.type_ == type_)
}

/// `status.observedGeneration`, when set.
pub fn observed_generation(object: &DynamicObject) -> Option<i64> {
    object.data["status"]["observedGeneration"].as_i64()
}

/// Condition: a CustomResourceDefinition is `Established` (its kind is served). Fails when the
/// API server refused its names (`NamesAccepted=False`).
pub fn crd_established(object: Option<&DynamicObject>) -> WaitOutcome {
    let Some(crd) = object else {
        return WaitOutcome::Pending;
    };
    if condition(crd, "Established").is_some_and(|c| c.is_true()) {
        return WaitOutcome::Done;
    }
    match condition(crd, "NamesAccepted") {
        Some(names) if names.status == "False" => {
            WaitOutcome::Failed(format!("names not accepted: {}", names.explanation()))
        }
        _ => WaitOutcome::Pending,
    }
}

/// Condition: a Deployment is Available for its current spec and its rollout is complete (the
/// kstatus rules) — `status.observedGeneration` has caught up with `metadata.generation`, every
/// wanted replica (`spec.replicas`, 1 when unset) is updated and available, no old replica is
/// left, and `Available=True`. `Available` alone is not enough: a rolling update keeps the old
/// Pod available, so it stays `True` while the new Pods start. Fails when the rollout exceeded
/// its progress deadline (`Progressing=False`, reason `ProgressDeadlineExceeded`).
pub fn deployment_available(object: Option<&DynamicObject>) -> WaitOutcome {
    let Some(deployment) = object else {
        return WaitOutcome::Pending;
    };
    let generation = deployment.metadata.generation.unwrap_or(0);
    if observed_generation(deployment).is_none_or(|observed| observed < generation) {
        return WaitOutcome::Pending;
    }
    if let Some(progressing) = condition(deployment, "Progressing")
        && progressing.status == "False"
        && progressing.reason == "ProgressDeadlineExceeded"
    {
        return WaitOutcome::Failed(progressing.explanation());
    }
    let wanted = deployment.data["spec"]["replicas"].as_i64().unwrap_or(1);
    let count = |field: &str| deployment.data["status"][field].as_i64().unwrap_or(0);
    let updated = count("updatedReplicas");
    if updated < wanted || count("availableReplicas") < wanted || count("replicas") > updated {
        return WaitOutcome::Pending;
    }
    if condition(deployment, "Available").is_some_and(|c| c.is_true()) {
        WaitOutcome::Done
    } else {
        WaitOutcome::Pending
    }
}

/// Condition: the object no longer exists.
pub fn gone(object: Option<&DynamicObject>) -> WaitOutcome {
    match object {
        None => WaitOutcome::Done,
        Some(_) => WaitOutcome::Pending,
    }
}

/// Condition, kstatus-like: `Ready=True` for the current generation (the condition's
/// `observedGeneration`, else `status.observedGeneration`, equals `metadata.generation`; an
/// object reporting neither is taken as current). `Stalled=True` for the current generation
/// fails at once, quoting its reason and message; a stale `Ready` or `Stalled` from an earlier
/// generation is pending.
pub fn ready(object: Option<&DynamicObject>) -> WaitOutcome {
    let Some(object) = object else {
        return WaitOutcome::Pending;
    };
    let generation = object.metadata.generation;
    let status_generation = observed_generation(object);
    let current = |c: &Condition| match (generation, c.observed_generation.or(status_generation)) {
        (Some(generation), Some(observed)) => observed == generation,
        _ => true,
    };
    if let Some(stalled) = condition(object, "Stalled")
        && stalled.is_true()
        && current(&stalled)
    {
        return WaitOutcome::Failed(format!("stalled: {}", stalled.explanation()));
    }
    match condition(object, "Ready") {
        Some(ready) if ready.is_true() && current(&ready) => WaitOutcome::Done,
        _ => WaitOutcome::Pending,
    }
}

/// Describes an object's state for a timeout message: absent, being deleted, generations, and
/// each condition with its reason and message.
pub fn describe_state(object: Option<&DynamicObject>) -> String {
    let Some(object) = object else {
        return "the object does not exist".to_owned();
    };
    let mut parts = Vec::new();
    if object.metadata.deletion_timestamp.is_some() {
        let finalizers = object.metadata.finalizers.clone().unwrap_or_default();
        parts.push(format!(
            "being deleted, held by finalizers [{}]",
            finalizers.join(", ")
        ));
    }
    if let (Some(generation), Some(observed)) =
        (object.metadata.generation, observed_generation(object))
        && observed != generation
    {
        parts.push(format!(
            "generation {generation} not yet observed (observed {observed})"
        ));
    }
    if object
        .types
        .as_ref()
        .is_some_and(|t| t.kind == "Deployment")
    {
        let count = |field: &str| object.data["status"][field].as_i64().unwrap_or(0);
        parts.push(format!(
            "replicas: {} wanted, {} updated, {} available, {} in all",
            object.data["spec"]["replicas"].as_i64().unwrap_or(1),
            count("updatedReplicas"),
            count("availableReplicas"),
            count("replicas")
        ));
    }
    let conditions = conditions(object);
    if conditions.is_empty() {
        parts.push("no conditions reported".to_owned());
    }
    for c in conditions {
        let mut text = format!("{}={}", c.type_, c.status);
        if !c.reason.is_empty() || !c.message.is_empty() {
            let _ = write!(text, " ({})", c.explanation());
        }
        parts.push(text);
    }
    format!("last observed state: {}", parts.join("; "))
}

/// Renders a duration the way Go and Terraform do: `5m0s`, `30s`, `1h2m3s`, `250ms`.
pub fn format_duration(duration: Duration) -> String {
    let total = duration.as_secs();
    if total == 0 {
        return format!("{}ms", duration.as_millis());
    }
    let (hours, minutes, seconds) = (total / 3600, (total % 3600) / 60, total % 60);
    match (hours, minutes) {
        (0, 0) => format!("{seconds}s"),
        (0, _) => format!("{minutes}m{seconds}s"),
        _ => format!("{hours}h{minutes}m{seconds}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> DynamicObject {
        serde_json::from_value(value).expect("valid object")
    }

    fn instance(generation: i64, status: Value) -> DynamicObject {
        object(json!({
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "metadata": {"name": "w", "namespace": "ns", "generation": generation},
            "status": status,
        }))
    }

    #[test]
    fn ready_evaluation_table() {
        let cases = [
            ("absent", None, WaitOutcome::Pending),
            (
                "no status",
                Some(instance(1, json!({}))),
                WaitOutcome::Pending,
            ),
            (
                "ready for this generation",
                Some(instance(
                    2,
                    json!({"conditions": [
                        {"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded", "observedGeneration": 2}
                    ]}),
                )),
                WaitOutcome::Done,
            ),
            (
                "ready for the previous generation",
                Some(instance(
                    3,
                    json!({"conditions": [
                        {"type": "Ready", "status": "True", "observedGeneration": 2}
                    ]}),
                )),
                WaitOutcome::Pending,
            ),
            (
                "status.observedGeneration stands in for the condition's",
                Some(instance(
                    3,
                    json!({"observedGeneration": 2, "conditions": [
                        {"type": "Ready", "status": "True"}
                    ]}),
                )),
                WaitOutcome::Pending,
            ),
            (
                "no observed generation anywhere counts as current",
                Some(instance(
                    3,
                    json!({"conditions": [{"type": "Ready", "status": "True"}]}),
                )),
                WaitOutcome::Done,
            ),
            (
                "not ready",
                Some(instance(
                    1,
                    json!({"conditions": [
                        {"type": "Ready", "status": "False", "reason": "Progressing", "observedGeneration": 1}
                    ]}),
                )),
                WaitOutcome::Pending,
            ),
            (
                "stalled fails at once",
                Some(instance(
                    1,
                    json!({"conditions": [
                        {"type": "Ready", "status": "False", "reason": "BuildFailed", "observedGeneration": 1},
                        {"type": "Stalled", "status": "True", "reason": "BuildFailed",
                         "message": "unknown version 9.9", "observedGeneration": 1}
                    ]}),
                )),
                WaitOutcome::Failed("stalled: BuildFailed: unknown version 9.9".into()),
            ),
            (
                "stale stalled is pending",
                Some(instance(
                    2,
                    json!({"conditions": [
                        {"type": "Stalled", "status": "True", "reason": "BuildFailed", "observedGeneration": 1}
                    ]}),
                )),
                WaitOutcome::Pending,
            ),
        ];
        for (name, object, expected) in cases {
            assert_eq!(ready(object.as_ref()), expected, "{name}");
        }
    }

    fn deployment(generation: i64, status: Value) -> DynamicObject {
        object(json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "d", "namespace": "ns", "generation": generation},
            "spec": {},
            "status": status,
        }))
    }

    #[test]
    fn deployment_available_table() {
        let available =
            json!({"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"});
        let cases = [
            ("absent", None, WaitOutcome::Pending),
            (
                "no status",
                Some(deployment(1, json!({}))),
                WaitOutcome::Pending,
            ),
            (
                "available and observed",
                Some(deployment(
                    2,
                    json!({"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1,
                           "availableReplicas": 1, "conditions": [available.clone()]}),
                )),
                WaitOutcome::Done,
            ),
            (
                "rolling out: the old replica keeps it Available",
                Some(deployment(
                    2,
                    json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 1,
                           "availableReplicas": 1, "conditions": [available.clone()]}),
                )),
                WaitOutcome::Pending,
            ),
            (
                "new replica not available yet",
                Some(deployment(
                    2,
                    json!({"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1,
                           "availableReplicas": 0, "conditions": [available.clone()]}),
                )),
                WaitOutcome::Pending,
            ),
            (
                "available for an older generation",
                Some(deployment(
                    3,
                    json!({"observedGeneration": 2, "conditions": [available.clone()]}),
                )),
                WaitOutcome::Pending,
            ),
            (
                "unavailable",
                Some(deployment(
                    1,
                    json!({"observedGeneration": 1, "conditions": [
                        {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable"}
                    ]}),
                )),
                WaitOutcome::Pending,
            ),
            (
                "progress deadline exceeded",
                Some(deployment(
                    1,
                    json!({"observedGeneration": 1, "conditions": [
                        {"type": "Available", "status": "False"},
                        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                         "message": "ReplicaSet \"d-1\" has timed out progressing."}
                    ]}),
                )),
                WaitOutcome::Failed(
                    "ProgressDeadlineExceeded: ReplicaSet \"d-1\" has timed out progressing."
                        .into(),
                ),
            ),
        ];
        for (name, object, expected) in cases {
            assert_eq!(deployment_available(object.as_ref()), expected, "{name}");
        }
    }

    #[test]
    fn crd_established_table() {
        let crd = |conditions: Value| {
            object(json!({
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {"name": "widgets.example.com"},
                "status": {"conditions": conditions},
            }))
        };
        let cases = [
            ("absent", None, WaitOutcome::Pending),
            (
                "names accepted only",
                Some(crd(json!([{"type": "NamesAccepted", "status": "True"}]))),
                WaitOutcome::Pending,
            ),
            (
                "established",
                Some(crd(json!([
                    {"type": "NamesAccepted", "status": "True"},
                    {"type": "Established", "status": "True", "reason": "InitialNamesAccepted"}
                ]))),
                WaitOutcome::Done,
            ),
            (
                "names refused",
                Some(crd(json!([{"type": "NamesAccepted", "status": "False",
                    "reason": "MultipleNameConflict", "message": "plural \"widgets\" is already in use"}]))),
                WaitOutcome::Failed(
                    "names not accepted: MultipleNameConflict: plural \"widgets\" is already in use"
                        .into(),
                ),
            ),
        ];
        for (name, object, expected) in cases {
            assert_eq!(crd_established(object.as_ref()), expected, "{name}");
        }
    }

    #[test]
    fn gone_is_done_only_when_absent() {
        assert_eq!(gone(None), WaitOutcome::Done);
        assert_eq!(gone(Some(&instance(1, json!({})))), WaitOutcome::Pending);
    }

    #[test]
    fn state_descriptions() {
        assert_eq!(describe_state(None), "the object does not exist");
        let mut deleting = instance(
            4,
            json!({"observedGeneration": 3, "conditions": [
                {"type": "Ready", "status": "False", "reason": "Progressing", "message": "Reconciliation in progress"},
                {"type": "Reconciling", "status": "True"}
            ]}),
        );
        deleting.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                "2026-01-01T00:00:00Z".parse().expect("timestamp"),
            ));
        deleting.metadata.finalizers = Some(vec!["example.com/finalizer".into()]);
        assert_eq!(
            describe_state(Some(&deleting)),
            "last observed state: being deleted, held by finalizers [example.com/finalizer]; \
             generation 4 not yet observed (observed 3); \
             Ready=False (Progressing: Reconciliation in progress); Reconciling=True"
        );
        assert_eq!(
            describe_state(Some(&instance(1, json!({})))),
            "last observed state: no conditions reported"
        );
    }

    #[test]
    fn durations_render_like_go() {
        let cases = [
            (Duration::from_millis(250), "250ms"),
            (Duration::from_secs(30), "30s"),
            (Duration::from_secs(300), "5m0s"),
            (Duration::from_secs(3723), "1h2m3s"),
        ];
        for (duration, expected) in cases {
            assert_eq!(format_duration(duration), expected);
        }
    }

    #[test]
    fn timeout_message_names_object_duration_and_state() {
        let error = WaitError::Timeout {
            object: ObjectRef::new(
                "apps/v1",
                "Deployment",
                Some("flux-system"),
                "flux-operator",
            ),
            timeout: Duration::from_secs(120),
            last_state: describe_state(None),
            last_error: Some("connection refused".into()),
        };
        assert_eq!(
            error.to_string(),
            "timed out after 2m0s waiting for Deployment flux-system/flux-operator (apps/v1): \
             the object does not exist (last error: connection refused)"
        );
    }

    /// Resources are served from `async_trait` methods, whose futures must be `Send`: this
    /// only has to compile.
    #[allow(dead_code)]
    fn wait_future_is_send(cluster: &Cluster, object: &ObjectRef, cancel: &CancellationToken) {
        fn assert_send<T: Send>(_: T) {}
        assert_send(cluster.wait_for(object, Duration::from_secs(1), cancel, gone));
        assert_send(cluster.wait_for(object, Duration::from_secs(1), cancel, ready));
    }
}
