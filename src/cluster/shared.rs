//! Reads shared by the refreshes of one Terraform operation: `Cluster::get_shared` (in `shared_read`) answers
//! the first [`SINGLE_READS`] reads of a kind in a namespace with a GET each, and every later
//! one from a single LIST of that kind and namespace, made once (the readers waiting for it
//! share it) and kept as raw JSON text (one string per object) until the handle is dropped.
//!
//! Why it is safe: a [`Cluster`](super::objects::Cluster) lives as long as the provider configuration it was built from,
//! and Terraform configures the provider anew for every operation (validate, plan, apply,
//! import), so a LIST is never older than the operation that uses it: what changed before a plan
//! started is always seen. Any write through the handle (apply, delete, annotate, finalizer
//! removal) drops every shared LIST, so the handle reads its own writes. Refresh paths only:
//! apply paths, which wait for other controllers to act, use [`Cluster::get`](super::objects::Cluster::get).
//!
//! Bounded: a LIST longer than [`MAX_LISTED_OBJECTS`] objects or [`MAX_LISTED_BYTES`] bytes,
//! or one the server refuses (e.g. RBAC grants `get` but not `list`), is given up and that kind
//! and namespace go back to single GETs for the rest of the operation.
//!
//! Generic Kubernetes access: knows nothing of Terraform or Flux.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::value::RawValue;
use tokio::sync::OnceCell;

/// Reads of one kind and namespace answered with single GETs before the rest share a LIST.
pub const SINGLE_READS: u32 = 3;
/// The most objects a shared LIST keeps (over all its pages).
pub const MAX_LISTED_OBJECTS: usize = 5000;
/// The most bytes of JSON a shared LIST keeps (over all its pages).
pub const MAX_LISTED_BYTES: usize = 16 << 20;

/// One kind in one namespace (`None`: cluster-scoped, or the client's default namespace).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct GroupKey {
    pub(super) api_version: String,
    pub(super) kind: String,
    pub(super) namespace: Option<String>,
}

/// The objects of one LIST by name, as the server sent them; `None`: not listable (refused,
/// too large, kind not served), read with GETs.
pub(super) type Listing = Option<HashMap<String, Box<RawValue>>>;

/// What is known about one kind and namespace.
enum Group {
    /// This many reads went out as GETs.
    Single(u32),
    /// Later reads share this LIST (filled by the first of them).
    Listed(Arc<OnceCell<Listing>>),
}

/// The shared reads of a [`Cluster`] handle.
#[derive(Default)]
pub(crate) struct SharedReads {
    groups: Mutex<HashMap<GroupKey, Group>>,
}

impl SharedReads {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<GroupKey, Group>> {
        // Plain data: a panic elsewhere cannot leave it half-updated.
        self.groups.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `None`: make these `reads` with GETs; otherwise the LIST to share.
    pub(super) fn enter(&self, key: &GroupKey, reads: u32) -> Option<Arc<OnceCell<Listing>>> {
        let mut groups = self.lock();
        let group = groups.entry(key.clone()).or_insert(Group::Single(0));
        match group {
            Group::Single(n) if n.saturating_add(reads) <= SINGLE_READS => {
                *n += reads;
                None
            }
            Group::Single(_) => {
                let cell = Arc::new(OnceCell::new());
                *group = Group::Listed(Arc::clone(&cell));
                Some(cell)
            }
            Group::Listed(cell) => Some(Arc::clone(cell)),
        }
    }

    /// Drops every shared LIST (after a write through the handle).
    pub(crate) fn clear(&self) {
        self.lock().clear();
    }

    /// How many kinds/namespaces have a LIST (filled or being filled); for tests.
    pub(super) fn listed(&self) -> usize {
        self.lock()
            .values()
            .filter(|g| matches!(g, Group::Listed(_)))
            .count()
    }
}
