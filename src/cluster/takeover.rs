//! Taking over fields from other field managers before a server-side apply, so that the apply
//! makes the object equal to what was applied. Server-side apply removes a field only when the
//! applying manager owned it and no other manager does: a field that `kubectl edit`, `kubectl
//! patch` or another applier added stays forever, however often we apply without it. The fix is
//! the one Flux and the Flux Operator use: rewrite `metadata.managedFields` so that the chosen
//! fields move from every other manager's entry into our `Apply` entry, then apply. The API
//! server honours `managedFields` written by an update or patch (it decodes them from the new
//! object and only falls back to the live ones when they are empty or invalid), and the apply
//! that follows removes whatever it no longer lists.
//!
//! `fieldsV1` trees are JSON objects keyed `f:<field>`, `k:<key>`, `v:<value>` or `.` (the node
//! itself); a leaf is `{}`. The paths given here name fields only (`["spec"]`,
//! `["metadata", "annotations", "example.com/key"]`).
//!
//! Generic Kubernetes access: knows nothing of Terraform or Flux, and depends on nothing else in
//! this crate.

use serde_json::{Map, Value, json};

use super::apply::{ApplyError, FIELD_MANAGER};
use super::objects::{Cluster, ObjectRef};

/// Moves the fields at `paths` from every other manager's entry of the main resource (not
/// subresources such as `status`; also this provider's own `Update` entries, which a merge
/// patch of single annotations creates) into [`FIELD_MANAGER`]'s `Apply` entry for
/// `api_version`. Returns the new list, or `None` when no other entry owns any of them.
#[must_use]
pub fn take_over_fields(
    managed_fields: &[Value],
    api_version: &str,
    paths: &[Vec<String>],
) -> Option<Vec<Value>> {
    let is_ours = |e: &Value| {
        e["manager"] == FIELD_MANAGER && e["operation"] == "Apply" && is_main_resource(e)
    };
    let mut taken = Value::Object(Map::new());
    let mut moved = false;
    let mut entries: Vec<Value> = Vec::with_capacity(managed_fields.len() + 1);
    for entry in managed_fields {
        let mut entry = entry.clone();
        if !is_ours(&entry)
            && is_main_resource(&entry)
            && let Some(fields) = entry.get_mut("fieldsV1")
        {
            for path in paths {
                if let Some(subtree) = remove_at(fields, path) {
                    merge_at(&mut taken, path, subtree);
                    moved = true;
                }
            }
            if fields.as_object().is_some_and(Map::is_empty) {
                continue;
            }
        }
        entries.push(entry);
    }
    if !moved {
        return None;
    }
    match entries.iter_mut().find(|e| is_ours(e)) {
        Some(ours) => {
            let fields = ours
                .as_object_mut()
                .map(|o| o.entry("fieldsV1").or_insert_with(|| json!({})));
            if let Some(fields) = fields {
                union(fields, taken);
            }
        }
        None => entries.push(json!({
            "manager": FIELD_MANAGER,
            "operation": "Apply",
            "apiVersion": api_version,
            "fieldsType": "FieldsV1",
            "fieldsV1": taken,
        })),
    }
    Some(entries)
}

fn is_main_resource(entry: &Value) -> bool {
    entry
        .get("subresource")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
}

/// Removes and returns the subtree at `path` (field names), pruning parents left empty (an empty
/// object would read as an owned leaf).
fn remove_at(tree: &mut Value, path: &[String]) -> Option<Value> {
    let (first, rest) = path.split_first()?;
    let map = tree.as_object_mut()?;
    let key = format!("f:{first}");
    if rest.is_empty() {
        return map.remove(&key);
    }
    let child = map.get_mut(&key)?;
    let removed = remove_at(child, rest)?;
    if child.as_object().is_some_and(Map::is_empty) {
        map.remove(&key);
    }
    Some(removed)
}

/// Adds `subtree` at `path` (field names) to `tree`, creating the parents.
fn merge_at(tree: &mut Value, path: &[String], subtree: Value) {
    let mut node = tree;
    for name in path {
        let Some(map) = node.as_object_mut() else {
            return;
        };
        node = map.entry(format!("f:{name}")).or_insert_with(|| json!({}));
    }
    union(node, subtree);
}

/// The union of two `fieldsV1` trees, into `into`.
fn union(into: &mut Value, other: Value) {
    let (Some(into), Value::Object(other)) = (into.as_object_mut(), other) else {
        return;
    };
    for (key, value) in other {
        match into.get_mut(&key) {
            Some(existing) => union(existing, value),
            None => {
                into.insert(key, value);
            }
        }
    }
}

impl Cluster {
    /// Rewrites the object's `managedFields` with [`take_over_fields`] (a merge patch carrying
    /// the `resourceVersion` it was computed from, recomputed on a conflict). Returns whether
    /// anything moved; `false` when the object, its namespace or its kind is absent.
    pub async fn take_over(
        &self,
        object: &ObjectRef,
        paths: &[Vec<String>],
    ) -> Result<bool, ApplyError> {
        let failed = |source| ApplyError::TakeOver {
            object: object.clone(),
            source,
        };
        self.patch_metadata(object, failed, |current| {
            let entries: Vec<Value> = current
                .metadata
                .managed_fields
                .as_ref()
                .and_then(|m| serde_json::to_value(m).ok())
                .and_then(|v| serde_json::from_value(v).ok())
                .unwrap_or_default();
            take_over_fields(&entries, &object.api_version, paths)
                .map(|rewritten| ("managedFields", json!(rewritten)))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn path(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn moves_other_managers_spec_fields_into_our_apply_entry() {
        let entries = vec![
            json!({"manager": FIELD_MANAGER, "operation": "Apply", "apiVersion": "x/v1",
                "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:distribution": {"f:version": {}}}}}),
            json!({"manager": "kubectl-patch", "operation": "Update", "apiVersion": "x/v1",
                "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:cluster": {"f:size": {}}}}}),
            json!({"manager": "flux-operator", "operation": "Update", "apiVersion": "x/v1",
                "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:finalizers": {".": {}, "v:\"f\"": {}}}}}),
            json!({"manager": "flux-operator", "operation": "Update", "subresource": "status",
                "apiVersion": "x/v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {".": {}}}}),
            json!({"manager": "kubectl-annotate", "operation": "Update", "apiVersion": "x/v1",
                "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:annotations": {
                    "f:example.com/mine": {}, "f:example.com/theirs": {}}}}}),
        ];
        let paths = [
            path(&["spec"]),
            path(&["metadata", "annotations", "example.com/mine"]),
        ];
        let rewritten = take_over_fields(&entries, "x/v1", &paths).unwrap();
        assert_eq!(
            rewritten,
            vec![
                json!({"manager": FIELD_MANAGER, "operation": "Apply", "apiVersion": "x/v1",
                    "fieldsType": "FieldsV1", "fieldsV1": {
                        "f:spec": {"f:distribution": {"f:version": {}}, "f:cluster": {"f:size": {}}},
                        "f:metadata": {"f:annotations": {"f:example.com/mine": {}}}}}),
                entries[2].clone(),
                entries[3].clone(),
                json!({"manager": "kubectl-annotate", "operation": "Update", "apiVersion": "x/v1",
                    "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:annotations": {
                        "f:example.com/theirs": {}}}}}),
            ]
        );
    }

    #[test]
    fn creates_our_entry_and_reports_nothing_to_move() {
        let entries = vec![
            json!({"manager": "kubectl-client-side-apply", "operation": "Update",
                "apiVersion": "x/v1", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:spec": {".": {}, "f:size": {}}}}),
        ];
        let rewritten = take_over_fields(&entries, "x/v1", &[path(&["spec"])]).unwrap();
        assert_eq!(
            rewritten,
            vec![
                json!({"manager": FIELD_MANAGER, "operation": "Apply", "apiVersion": "x/v1",
                "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {".": {}, "f:size": {}}}})
            ]
        );
        assert_eq!(
            take_over_fields(&rewritten, "x/v1", &[path(&["spec"])]),
            None
        );
        assert_eq!(take_over_fields(&[], "x/v1", &[path(&["spec"])]), None);
    }
}
