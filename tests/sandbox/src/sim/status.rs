//! Status helpers shared by the simulated reconcilers: Kubernetes conditions (keeping
//! `lastTransitionTime` when a condition's status does not change), RFC 3339 timestamps, Go
//! durations (`5m`, `1m30s`, `250ms`) and the `history[]` snapshots.
//!
//! Pure code apart from reading the clock.

use std::time::Duration;

use serde_json::{Value, json};

/// Condition type `Ready`.
pub const READY: &str = "Ready";
/// Condition type `Reconciling`.
pub const RECONCILING: &str = "Reconciling";
/// Condition type `Stalled`.
pub const STALLED: &str = "Stalled";

/// Now as an RFC 3339 timestamp with second precision (`metav1.Time`).
pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Parses a Go duration string (`1h`, `5m`, `1m30s`, `1.5s`, `250ms`).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let mut total = 0f64;
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let (unit, factor) = [("ms", 0.001), ("h", 3600.0), ("m", 60.0), ("s", 1.0)]
            .into_iter()
            .find(|(u, _)| rest.starts_with(u))?;
        rest = &rest[unit.len()..];
        total += n * factor;
    }
    Some(Duration::from_secs_f64(total))
}

/// Formats a duration like Go's `time.Duration.String()` for sub-hour values (`1.204s`, `2m3s`).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        let s = format!("{secs:.3}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        return format!("{s}s");
    }
    let whole = d.as_secs();
    format!("{}m{}s", whole / 60, whole % 60)
}

/// A condition as the operator writes it.
pub fn condition(type_: &str, status: &str, reason: &str, message: &str, generation: i64) -> Value {
    json!({
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": now(),
    })
}

/// The conditions after a failed reconcile, as the operator writes them on FluxInstances and
/// ResourceSets: `Ready=False` with the reason and message, then either `Stalled=True` (not
/// retried; `Reconciling` removed) or `Reconciling=True`, reason `ProgressingWithRetry`
/// (retried with backoff; `Stalled` removed), merged into `existing`.
pub fn failure_conditions(
    existing: &Value,
    reason: &str,
    message: &str,
    stalled: bool,
    generation: i64,
) -> Value {
    failure_conditions_with(existing, reason, message, message, stalled, generation)
}

/// [`failure_conditions`] with `retry_message` as the message of the `Reconciling`
/// `ProgressingWithRetry` condition (the ResourceSetInputProvider reconciler writes
/// "Reconciliation in progress" there, not the error); `Stalled` carries `message`.
pub fn failure_conditions_with(
    existing: &Value,
    reason: &str,
    message: &str,
    retry_message: &str,
    stalled: bool,
    generation: i64,
) -> Value {
    let ready = condition(READY, "False", reason, message, generation);
    if stalled {
        let stall = condition(STALLED, "True", reason, message, generation);
        merge_conditions(existing, &[ready, stall], &[RECONCILING])
    } else {
        let retry = condition(
            RECONCILING,
            "True",
            "ProgressingWithRetry",
            retry_message,
            generation,
        );
        merge_conditions(existing, &[ready, retry], &[STALLED])
    }
}

/// Merges `updates` into the existing conditions and drops the types in `remove`. A condition
/// whose status did not change keeps its `lastTransitionTime`. Order: existing types first.
pub fn merge_conditions(existing: &Value, updates: &[Value], remove: &[&str]) -> Value {
    let mut out: Vec<Value> = existing.as_array().cloned().unwrap_or_default();
    for u in updates {
        match out.iter_mut().find(|c| c["type"] == u["type"]) {
            Some(c) => {
                let mut n = u.clone();
                if c["status"] == u["status"] {
                    n["lastTransitionTime"] = c["lastTransitionTime"].clone();
                }
                *c = n;
            }
            None => out.push(u.clone()),
        }
    }
    out.retain(|c| !remove.iter().any(|r| c["type"] == *r));
    Value::Array(out)
}

/// Records a reconciliation in `history[]` (newest first, at most 5 entries): the same digest
/// as the newest entry updates it, another digest adds an entry.
pub fn push_history(
    existing: &Value,
    digest: &str,
    status: &str,
    took: Duration,
    metadata: Value,
) -> Value {
    let now = now();
    let mut list: Vec<Value> = existing.as_array().cloned().unwrap_or_default();
    match list.first_mut() {
        Some(first) if first["digest"] == digest && first["lastReconciledStatus"] == status => {
            let total = first["totalReconciliations"].as_i64().unwrap_or(0) + 1;
            first["totalReconciliations"] = json!(total);
            first["lastReconciled"] = json!(now);
            first["lastReconciledDuration"] = json!(format_duration(took));
        }
        _ => {
            list.insert(
                0,
                json!({
                    "digest": digest,
                    "firstReconciled": now,
                    "lastReconciled": now,
                    "lastReconciledDuration": format_duration(took),
                    "lastReconciledStatus": status,
                    "totalReconciliations": 1,
                    "metadata": metadata,
                }),
            );
            list.truncate(5);
        }
    }
    Value::Array(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats_durations() {
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration(""), None);
        assert_eq!(parse_duration("5d"), None);
        assert_eq!(format_duration(Duration::from_millis(12)), "12ms");
        assert_eq!(format_duration(Duration::from_millis(1204)), "1.204s");
        assert_eq!(format_duration(Duration::from_millis(2000)), "2s");
        assert_eq!(format_duration(Duration::from_secs(123)), "2m3s");
    }

    #[test]
    fn merges_conditions_keeping_transition_times() {
        let old = json!([
            {"type": "Ready", "status": "True", "reason": "A", "message": "", "observedGeneration": 1, "lastTransitionTime": "T0"},
            {"type": "Reconciling", "status": "True", "reason": "P", "message": "", "observedGeneration": 1, "lastTransitionTime": "T0"},
        ]);
        let mut ready = condition("Ready", "True", "B", "m", 2);
        let got = merge_conditions(&old, &[ready.clone()], &["Reconciling"]);
        ready["lastTransitionTime"] = json!("T0");
        assert_eq!(got, json!([ready]));
        let stalled = condition("Stalled", "True", "BuildFailed", "x", 2);
        let got = merge_conditions(&json!(null), std::slice::from_ref(&stalled), &[]);
        assert_eq!(got, json!([stalled]));
    }

    /// The failure conditions of `fluxinstance_controller.go`, `resourceset_controller.go` and
    /// `resourcesetinputprovider_controller.go`: Ready=False with the reason, then Stalled (no
    /// Reconciling) or Reconciling `ProgressingWithRetry` (no Stalled).
    #[test]
    fn failure_conditions_stall_or_retry() {
        let old = json!([
            {"type": "Ready", "status": "Unknown", "reason": "Progressing", "message": "", "observedGeneration": 1, "lastTransitionTime": "T0"},
            {"type": "Reconciling", "status": "True", "reason": "Progressing", "message": "", "observedGeneration": 1, "lastTransitionTime": "T0"},
        ]);
        let stalled = failure_conditions(&old, "BuildFailed", "bad", true, 2);
        let list = stalled.as_array().unwrap();
        let types: Vec<&str> = list.iter().filter_map(|c| c["type"].as_str()).collect();
        assert_eq!(types, ["Ready", "Stalled"]);
        assert_eq!(
            (&list[0]["status"], &list[0]["reason"], &list[0]["message"]),
            (&json!("False"), &json!("BuildFailed"), &json!("bad"))
        );
        assert_eq!(list[1]["reason"], "BuildFailed");
        assert_eq!(list[1]["observedGeneration"], 2);

        let retried = failure_conditions_with(
            &stalled,
            "ReconciliationFailed",
            "e",
            "in progress",
            false,
            3,
        );
        let list = retried.as_array().unwrap();
        let types: Vec<&str> = list.iter().filter_map(|c| c["type"].as_str()).collect();
        assert_eq!(types, ["Ready", "Reconciling"]);
        assert_eq!(list[0]["reason"], "ReconciliationFailed");
        assert_eq!(list[0]["message"], "e");
        assert_eq!(list[1]["reason"], "ProgressingWithRetry");
        assert_eq!(list[1]["message"], "in progress");
        // `failure_conditions` retries with the error as the Reconciling message.
        let plain = failure_conditions(&json!(null), "ReconciliationFailed", "e", false, 1);
        assert_eq!(plain[1]["message"], "e");
    }

    #[test]
    fn keeps_five_history_entries() {
        let mut h = Value::Null;
        for i in 0..7 {
            h = push_history(
                &h,
                &format!("sha256:{i}"),
                "ReconciliationSucceeded",
                Duration::from_secs(1),
                json!({}),
            );
        }
        let h = push_history(
            &h,
            "sha256:6",
            "ReconciliationSucceeded",
            Duration::from_secs(1),
            json!({}),
        );
        let list = h.as_array().unwrap();
        assert_eq!(list.len(), 5);
        assert_eq!(list[0]["digest"], "sha256:6");
        assert_eq!(list[0]["totalReconciliations"], 2);
        assert_eq!(list[4]["digest"], "sha256:2");
    }
}
