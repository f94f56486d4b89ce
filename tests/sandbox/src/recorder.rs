//! The request recorder: every API request the sandbox answers (method, path, query, content type,
//! field manager, dryRun, force, body, status, timestamps), with helpers for assertions such as
//! "plan made no writes". Admin requests under `/sandbox/` are not recorded.
//!
//! Depends on nothing else in the crate.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

/// One recorded request and its response status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedRequest {
    /// Sequence number (starts at 1).
    pub seq: u64,
    /// Arrival time, RFC 3339 with microseconds.
    pub time: String,
    /// HTTP method.
    pub method: String,
    /// URL path.
    pub path: String,
    /// Raw query string ("" when absent).
    pub query: String,
    /// Kubernetes verb: get, list, watch, create, update, patch, delete, deletecollection, or
    /// `discovery`/`other` for non-resource paths.
    pub verb: String,
    /// Request `Content-Type`.
    pub content_type: Option<String>,
    /// `fieldManager` query parameter.
    pub field_manager: Option<String>,
    /// `dryRun=All` in the query or the DeleteOptions body.
    pub dry_run: bool,
    /// `force=true`.
    pub force: bool,
    /// Request body as UTF-8 (lossy), if any.
    pub body: Option<String>,
    /// `User-Agent`.
    pub user_agent: Option<String>,
    /// HTTP status of the response (0 when the connection was reset).
    pub status: u16,
}

impl RecordedRequest {
    /// Whether this is a mutating request (create/update/patch/delete/deletecollection).
    pub fn is_write(&self) -> bool {
        matches!(self.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE")
    }
}

/// Shared, cheap-to-clone request log (keeps the latest 200 000 requests).
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    inner: Arc<Mutex<VecDeque<RecordedRequest>>>,
}

impl Recorder {
    fn lock(&self) -> MutexGuard<'_, VecDeque<RecordedRequest>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn push(&self, mut r: RecordedRequest) {
        let mut g = self.lock();
        r.seq = g.back().map(|l| l.seq + 1).unwrap_or(1);
        if g.len() >= 200_000 {
            g.pop_front();
        }
        g.push_back(r);
    }

    /// All recorded requests, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().iter().cloned().collect()
    }

    /// Forgets everything recorded so far.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Mutating requests that were not dry-runs (i.e. could have persisted something).
    pub fn writes(&self) -> Vec<RecordedRequest> {
        self.lock()
            .iter()
            .filter(|r| r.is_write() && !r.dry_run)
            .cloned()
            .collect()
    }

    /// Mutating requests made with `dryRun=All`.
    pub fn dry_run_writes(&self) -> Vec<RecordedRequest> {
        self.lock()
            .iter()
            .filter(|r| r.is_write() && r.dry_run)
            .cloned()
            .collect()
    }

    /// Requests with this method whose path contains `path_part`.
    pub fn matching(&self, method: &str, path_part: &str) -> Vec<RecordedRequest> {
        self.lock()
            .iter()
            .filter(|r| r.method == method && r.path.contains(path_part))
            .cloned()
            .collect()
    }

    /// Panics with the offending requests if any persisted write was recorded.
    pub fn assert_no_writes(&self) {
        let w = self.writes();
        assert!(w.is_empty(), "expected no persisted writes, got: {:#?}", w);
    }

    /// Panics unless every persisted write was a server-side apply by `manager`.
    pub fn assert_only_ssa_writes(&self, manager: &str) {
        let bad: Vec<RecordedRequest> = self
            .writes()
            .into_iter()
            .filter(|r| {
                !(r.method == "PATCH"
                    && r.content_type.as_deref() == Some("application/apply-patch+yaml")
                    && r.field_manager.as_deref() == Some(manager))
            })
            .collect();
        assert!(
            bad.is_empty(),
            "expected only apply writes by {manager}, got: {:#?}",
            bad
        );
    }
}
