//! Reads shared by the refreshes of one Terraform operation: [`Cluster::get_shared`] answers
//! the first [`SINGLE_READS`] reads of a kind in a namespace with a GET each, and every later
//! one from a single LIST of that kind and namespace, made once (the readers waiting for it
//! share it) and kept as raw JSON text (one string per object) until the handle is dropped.
//!
//! Why it is safe: a [`Cluster`] lives as long as the provider configuration it was built from,
//! and Terraform configures the provider anew for every operation (validate, plan, apply,
//! import), so a LIST is never older than the operation that uses it: what changed before a plan
//! started is always seen. Any write through the handle (apply, delete, annotate, finalizer
//! removal) drops every shared LIST, so the handle reads its own writes. Refresh paths only:
//! apply paths, which wait for other controllers to act, use [`Cluster::get`].
//!
//! Bounded: a LIST longer than [`MAX_LISTED_OBJECTS`] objects or [`MAX_LISTED_BYTES`] bytes,
//! or one the server refuses (e.g. RBAC grants `get` but not `list`), is given up and that kind
//! and namespace go back to single GETs for the rest of the operation.
//!
//! Generic Kubernetes access: knows nothing of Terraform or Flux.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use kube::api::{DynamicObject, ListParams};
use kube::core::TypeMeta;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::OnceCell;

use super::apply::ApplyError;
use super::objects::{Cluster, ObjectRef};

/// Reads of one kind and namespace answered with single GETs before the rest share a LIST.
pub const SINGLE_READS: u32 = 3;
/// The most objects a shared LIST keeps (over all its pages).
pub const MAX_LISTED_OBJECTS: usize = 5000;
/// The most bytes of JSON a shared LIST keeps (over all its pages).
pub const MAX_LISTED_BYTES: usize = 16 << 20;

/// One kind in one namespace (`None`: cluster-scoped, or the client's default namespace).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct GroupKey {
    api_version: String,
    kind: String,
    namespace: Option<String>,
}

/// The objects of one LIST by name, as the server sent them; `None`: not listable (refused,
/// too large, kind not served), read with GETs.
type Listing = Option<HashMap<String, Box<RawValue>>>;

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
    fn enter(&self, key: &GroupKey, reads: u32) -> Option<Arc<OnceCell<Listing>>> {
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
    fn listed(&self) -> usize {
        self.lock()
            .values()
            .filter(|g| matches!(g, Group::Listed(_)))
            .count()
    }
}

/// A LIST page: items kept as raw JSON text.
#[derive(Deserialize)]
struct RawPage {
    #[serde(default)]
    metadata: PageMeta,
    #[serde(default)]
    items: Vec<Box<RawValue>>,
}

#[derive(Deserialize, Default)]
struct PageMeta {
    #[serde(default, rename = "continue")]
    continue_: Option<String>,
}

/// Only what is needed to index an item.
#[derive(Deserialize)]
struct Named {
    metadata: NameOnly,
}

#[derive(Deserialize)]
struct NameOnly {
    #[serde(default)]
    name: String,
}

impl Cluster {
    /// Reads an object for a refresh, sharing one LIST per kind and namespace among the reads
    /// of this handle (see the module documentation); `None` when it is absent, as
    /// [`Cluster::get`]. Never use it where the object is expected to change during the
    /// operation.
    pub async fn get_shared(
        &self,
        object: &ObjectRef,
    ) -> Result<Option<DynamicObject>, ApplyError> {
        self.read_shared(object, 1).await
    }

    /// [`Cluster::get_shared`] counting as `reads` reads of the kind and namespace (several
    /// objects of one kind are about to be read: list them at once).
    pub(crate) async fn read_shared(
        &self,
        object: &ObjectRef,
        reads: u32,
    ) -> Result<Option<DynamicObject>, ApplyError> {
        let key = GroupKey {
            api_version: object.api_version.clone(),
            kind: object.kind.clone(),
            namespace: object.namespace.clone(),
        };
        let Some(cell) = self.shared_reads().enter(&key, reads) else {
            return self.get(object).await;
        };
        let listing = cell.get_or_init(|| self.list_raw(&key)).await;
        let Some(items) = listing else {
            return self.get(object).await;
        };
        let Some(raw) = items.get(&object.name) else {
            return Ok(None);
        };
        // The server's own JSON for the object: a failure to decode it here would fail a GET
        // the same way, so the GET gives the error.
        let Ok(mut found) = serde_json::from_str::<DynamicObject>(raw.get()) else {
            return self.get(object).await;
        };
        found.types.get_or_insert_with(|| TypeMeta {
            api_version: object.api_version.clone(),
            kind: object.kind.clone(),
        });
        Ok(Some(found))
    }

    /// Lists one kind in one namespace as raw JSON text per object, page by page; `None` when it
    /// cannot be shared (any error, too large, not served).
    async fn list_raw(&self, key: &GroupKey) -> Listing {
        let resolved = self.resolve(&key.api_version, &key.kind).await.ok()??;
        let namespace = resolved.namespaced.then(|| {
            key.namespace
                .clone()
                .unwrap_or_else(|| self.client().default_namespace().to_owned())
        });
        let path =
            <DynamicObject as kube::Resource>::url_path(&resolved.resource, namespace.as_deref());
        let mut params = ListParams::default().limit(500);
        let mut items = HashMap::new();
        let mut bytes = 0;
        loop {
            let request = kube::core::Request::new(&path).list(&params).ok()?;
            let text = match self.client().request_text(request).await {
                Ok(text) => text,
                Err(error) => {
                    tracing::debug!(kind = %key.kind, %error, "shared LIST refused; reading with GETs");
                    return None;
                }
            };
            bytes += text.len();
            let page: RawPage = serde_json::from_str(&text).ok()?;
            for item in page.items {
                let named: Named = serde_json::from_str(item.get()).ok()?;
                items.insert(named.metadata.name, item);
            }
            if items.len() > MAX_LISTED_OBJECTS || bytes > MAX_LISTED_BYTES {
                tracing::debug!(kind = %key.kind, objects = items.len(), bytes, "shared LIST too large; reading with GETs");
                return None;
            }
            match page.metadata.continue_.filter(|token| !token.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => return Some(items),
            }
        }
    }

    /// How many kinds/namespaces currently share a LIST (for tests).
    pub fn shared_lists(&self) -> usize {
        self.shared_reads().listed()
    }
}
