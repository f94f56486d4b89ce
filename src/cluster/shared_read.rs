//! The refresh reads of a [`Cluster`] handle that share one LIST per kind and namespace (the
//! cache and its rules are in [`super::shared`]): [`Cluster::get_shared`] and the raw paged
//! LIST behind it.
//!
//! Generic Kubernetes access: knows nothing of Terraform or Flux.

use std::collections::HashMap;

use kube::api::{DynamicObject, ListParams};
use kube::core::TypeMeta;
use serde::Deserialize;

use super::apply::ApplyError;
use super::objects::{Cluster, ObjectRef};
use super::shared::{GroupKey, Listing, MAX_LISTED_BYTES, MAX_LISTED_OBJECTS};
use serde_json::value::RawValue;

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
