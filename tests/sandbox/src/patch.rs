//! Non-apply patch types: RFC 7386 JSON merge patch and RFC 6902 JSON patch (via `json-patch` 4,
//! the major kube-core 5 uses), and the strategic-merge subset kubectl needs for built-in kinds
//! (keyed lists merged by their patch merge key, `null` deletes, `$patch: delete|replace`,
//! `$retainKeys` honoured, `$setElementOrder/...` accepted and ignored).
//!
//! Pure functions; list keys come from the `ssa` module's built-in table.

use crate::ssa::{ListKind, MergeSchema};
use serde_json::{Map, Value};

/// Errors applying a patch.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// The patch body is not valid JSON of the expected shape.
    #[error("{0}")]
    Decode(String),
    /// A JSON patch operation failed (e.g. `test`).
    #[error("{0}")]
    Apply(String),
}

/// Applies an RFC 7386 merge patch.
pub fn merge_patch(doc: &Value, patch: &[u8]) -> Result<Value, PatchError> {
    let p: Value = serde_json::from_slice(patch).map_err(|e| PatchError::Decode(e.to_string()))?;
    let mut out = doc.clone();
    json_patch::merge(&mut out, &p);
    Ok(out)
}

/// Applies an RFC 6902 JSON patch.
pub fn json_patch(doc: &Value, patch: &[u8]) -> Result<Value, PatchError> {
    let p: json_patch::Patch =
        serde_json::from_slice(patch).map_err(|e| PatchError::Decode(e.to_string()))?;
    let mut out = doc.clone();
    json_patch::patch(&mut out, &p.0).map_err(|e| PatchError::Apply(e.to_string()))?;
    Ok(out)
}

/// Applies a strategic merge patch to a built-in object.
pub fn strategic(doc: &Value, patch: &[u8]) -> Result<Value, PatchError> {
    let p: Value = serde_json::from_slice(patch).map_err(|e| PatchError::Decode(e.to_string()))?;
    let mut names = Vec::new();
    Ok(smp(Some(doc), &p, &mut names).unwrap_or(Value::Null))
}

fn list_kind(names: &[String]) -> ListKind {
    // The strategic patch merge keys of built-ins coincide with their SSA list-map keys.
    crate::ssa::list_kind_for(MergeSchema { crd: None }, names)
}

fn smp(doc: Option<&Value>, patch: &Value, names: &mut Vec<String>) -> Option<Value> {
    match patch {
        Value::Object(pm) => {
            if pm.get("$patch").and_then(Value::as_str) == Some("delete") {
                return None;
            }
            if pm.get("$patch").and_then(Value::as_str) == Some("replace") {
                let mut m = pm.clone();
                m.remove("$patch");
                return Some(Value::Object(m));
            }
            let mut out: Map<String, Value> = match doc {
                Some(Value::Object(d)) => d.clone(),
                _ => Map::new(),
            };
            for (k, pv) in pm {
                if k.starts_with("$setElementOrder/") || k == "$retainKeys" || k == "$patch" {
                    continue;
                }
                if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
                    if let (Some(Value::Array(cur)), Some(del)) =
                        (out.get_mut(field), pv.as_array())
                    {
                        cur.retain(|x| !del.contains(x));
                    }
                    continue;
                }
                if pv.is_null() {
                    out.remove(k);
                    continue;
                }
                names.push(k.clone());
                let merged = smp(out.get(k), pv, names);
                names.pop();
                match merged {
                    Some(v) => {
                        out.insert(k.clone(), v);
                    }
                    None => {
                        out.remove(k);
                    }
                }
            }
            // `$retainKeys`: keys of the live map not listed are cleared (e.g. a Deployment strategy
            // switching to Recreate drops `rollingUpdate`).
            if let Some(keep) = pm.get("$retainKeys").and_then(Value::as_array) {
                out.retain(|k, _| keep.iter().any(|x| x.as_str() == Some(k.as_str())));
            }
            Some(Value::Object(out))
        }
        Value::Array(items) => match (list_kind(names), doc) {
            (ListKind::Map(keys), Some(Value::Array(cur))) => {
                let mut out = cur.clone();
                for it in items {
                    let matches = |x: &Value| {
                        keys.iter().all(|k| {
                            x.get(k) == it.get(k) || (k == "protocol" && it.get(k).is_none())
                        })
                    };
                    let delete = it.get("$patch").and_then(Value::as_str) == Some("delete");
                    match out.iter().position(matches) {
                        Some(i) if delete => {
                            out.remove(i);
                        }
                        Some(i) => {
                            if let Some(v) = smp(Some(&out[i]), it, names) {
                                out[i] = v;
                            }
                        }
                        None if delete => {}
                        None => {
                            if let Some(v) = smp(None, it, names) {
                                out.push(v);
                            }
                        }
                    }
                }
                Some(Value::Array(out))
            }
            (ListKind::Set, Some(Value::Array(cur))) => {
                let mut out = cur.clone();
                for it in items {
                    if !out.contains(it) {
                        out.push(it.clone());
                    }
                }
                Some(Value::Array(out))
            }
            _ => Some(patch.clone()),
        },
        other => Some(other.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merges_containers_by_name() {
        let doc = json!({"spec":{"template":{"spec":{"containers":[{"name":"a","image":"1"},{"name":"b","image":"2"}]}}}});
        let p = br#"{"spec":{"template":{"spec":{"containers":[{"name":"b","image":"3"},{"name":"a","$patch":"delete"}]}}}}"#;
        let out = strategic(&doc, p).unwrap();
        assert_eq!(
            out,
            json!({"spec":{"template":{"spec":{"containers":[{"name":"b","image":"3"}]}}}})
        );
    }

    #[test]
    fn strategic_retain_keys_clears_unlisted_fields() {
        let doc = json!({"spec":{"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxSurge":"25%"}}}});
        let p = br#"{"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate","rollingUpdate":null}}}"#;
        assert_eq!(
            strategic(&doc, p).unwrap(),
            json!({"spec":{"strategy":{"type":"Recreate"}}})
        );
        let p = br#"{"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate"}}}"#;
        assert_eq!(
            strategic(&doc, p).unwrap(),
            json!({"spec":{"strategy":{"type":"Recreate"}}})
        );
    }

    #[test]
    fn merge_patch_null_deletes() {
        let out = merge_patch(&json!({"a":1,"b":{"c":2}}), br#"{"b":{"c":null},"d":3}"#).unwrap();
        assert_eq!(out, json!({"a":1,"b":{},"d":3}));
    }

    #[test]
    fn json_patch_test_failure_is_an_error() {
        assert!(json_patch(&json!({"a":1}), br#"[{"op":"test","path":"/a","value":2}]"#).is_err());
    }
}
