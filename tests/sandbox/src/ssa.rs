//! Server-side apply, minimal but honest: field sets (`fieldsV1`), per-manager ownership in
//! `metadata.managedFields`, conflicts, forced ownership transfer, removal of fields a manager
//! stops applying, and ownership tracking for non-apply updates.
//!
//! Rules follow <https://kubernetes.io/docs/reference/using-api/server-side-apply/> and the
//! structured-merge-diff README (field set trie, `f:`/`k:`/`v:`/`.` path elements). Merge types:
//! custom resources take list types from their schema (`x-kubernetes-list-type`, default atomic);
//! built-in kinds use a small table of keyed lists (containers, env, ports, volumes, ...).
//! Pure functions over `serde_json::Value`; depends on nothing else in the crate.

use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

/// One serialized path element: `f:<field>`, `k:<json>` or `v:<json>`.
pub type Path = Vec<String>;

/// A set of owned leaf paths (a field set).
pub type FieldSet = BTreeSet<Path>;

/// How a list merges.
#[derive(Debug, Clone, PartialEq)]
pub enum ListKind {
    /// Replaced as a whole.
    Atomic,
    /// Items are scalars, merged as a set.
    Set,
    /// Items are objects keyed by these fields.
    Map(Vec<String>),
}

/// The merge-relevant schema of an object: a CRD's openAPIV3Schema or a built-in kind.
#[derive(Debug, Clone, Copy)]
pub struct MergeSchema<'a> {
    /// The CRD schema root (None for built-ins).
    pub crd: Option<&'a Value>,
}

fn child_schema<'a>(node: Option<&'a Value>, key: &str) -> Option<&'a Value> {
    let n = node?;
    if let Some(p) = n.get("properties").and_then(|p| p.get(key)) {
        return Some(p);
    }
    n.get("additionalProperties").filter(|a| a.is_object())
}

fn items_schema(node: Option<&Value>) -> Option<&Value> {
    node?.get("items")
}

fn builtin_list_kind(names: &[String]) -> ListKind {
    let last = names.last().map(String::as_str).unwrap_or("");
    let keys = |k: &[&str]| ListKind::Map(k.iter().map(|s| s.to_string()).collect());
    let in_container = names
        .iter()
        .any(|n| n == "containers" || n == "initContainers" || n == "ephemeralContainers");
    match last {
        "finalizers" => ListKind::Set,
        "ownerReferences" => keys(&["uid"]),
        "containers" | "initContainers" | "ephemeralContainers" => keys(&["name"]),
        "env" => keys(&["name"]),
        "ports" if in_container => keys(&["containerPort", "protocol"]),
        "ports" => keys(&["port", "protocol"]),
        "volumes" | "imagePullSecrets" => keys(&["name"]),
        "volumeMounts" => keys(&["mountPath"]),
        "volumeDevices" => keys(&["devicePath"]),
        "conditions" => keys(&["type"]),
        "hostAliases" => keys(&["ip"]),
        "topologySpreadConstraints" => keys(&["topologyKey", "whenUnsatisfiable"]),
        _ => ListKind::Atomic,
    }
}

/// The list kind at a path of field names (used by strategic merge for built-ins).
pub fn list_kind_for(s: MergeSchema<'_>, names: &[String]) -> ListKind {
    s.list_kind(None, names)
}

impl MergeSchema<'_> {
    fn is_meta(names: &[String]) -> bool {
        names.first().map(String::as_str) == Some("metadata")
    }

    fn list_kind(&self, node: Option<&Value>, names: &[String]) -> ListKind {
        if self.crd.is_none() || Self::is_meta(names) {
            return builtin_list_kind(names);
        }
        let Some(n) = node else {
            return ListKind::Atomic;
        };
        match n.get("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("set") => ListKind::Set,
            Some("map") => ListKind::Map(
                n.get("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|k| k.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
            _ => ListKind::Atomic,
        }
    }

    fn map_atomic(&self, node: Option<&Value>, names: &[String]) -> bool {
        if self.crd.is_none() || Self::is_meta(names) {
            return false;
        }
        node.and_then(|n| n.get("x-kubernetes-map-type"))
            .and_then(Value::as_str)
            == Some("atomic")
    }
}

fn key_json(item: &Value, keys: &[String]) -> Value {
    let mut m = Map::new();
    for k in keys {
        match item.get(k) {
            Some(v) => {
                m.insert(k.clone(), v.clone());
            }
            None if k == "protocol" => {
                m.insert(k.clone(), json!("TCP"));
            }
            None => {}
        }
    }
    Value::Object(m)
}

fn item_matches(item: &Value, key: &Value) -> bool {
    key.as_object().is_some_and(|m| {
        m.iter().all(|(k, v)| match item.get(k) {
            Some(x) => x == v,
            None => k == "protocol" && v == "TCP",
        })
    })
}

/// Collects the leaf field set of an (already restricted) object.
pub fn field_set(obj: &Value, schema: MergeSchema<'_>) -> FieldSet {
    let mut out = FieldSet::new();
    if let Value::Object(m) = obj {
        let mut path = Vec::new();
        let mut names = Vec::new();
        for (k, v) in m {
            path.push(format!("f:{k}"));
            names.push(k.clone());
            collect(
                v,
                &mut path,
                child_schema(schema.crd, k),
                &mut names,
                schema,
                &mut out,
            );
            path.pop();
            names.pop();
        }
    }
    out
}

fn collect(
    v: &Value,
    path: &mut Path,
    node: Option<&Value>,
    names: &mut Vec<String>,
    s: MergeSchema<'_>,
    out: &mut FieldSet,
) {
    match v {
        Value::Object(m) if !m.is_empty() && !s.map_atomic(node, names) => {
            for (k, c) in m {
                path.push(format!("f:{k}"));
                names.push(k.clone());
                collect(c, path, child_schema(node, k), names, s, out);
                path.pop();
                names.pop();
            }
        }
        Value::Array(items) if !items.is_empty() => match s.list_kind(node, names) {
            ListKind::Atomic => {
                out.insert(path.clone());
            }
            ListKind::Set => {
                for it in items {
                    let mut p = path.clone();
                    p.push(format!("v:{it}"));
                    out.insert(p);
                }
            }
            ListKind::Map(keys) => {
                let inode = items_schema(node);
                for it in items {
                    path.push(format!("k:{}", key_json(it, &keys)));
                    out.insert(path.clone());
                    if let Value::Object(m) = it {
                        for (k, c) in m {
                            path.push(format!("f:{k}"));
                            names.push(k.clone());
                            collect(c, path, child_schema(inode, k), names, s, out);
                            path.pop();
                            names.pop();
                        }
                    }
                    path.pop();
                }
            }
        },
        _ => {
            out.insert(path.clone());
        }
    }
}

/// Looks up the value at a field-set path.
pub fn get_path<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = v;
    for el in path {
        cur = step(cur, el)?;
    }
    Some(cur)
}

fn step<'a>(cur: &'a Value, el: &str) -> Option<&'a Value> {
    if let Some(f) = el.strip_prefix("f:") {
        cur.get(f)
    } else if let Some(k) = el.strip_prefix("k:") {
        let key: Value = serde_json::from_str(k).ok()?;
        cur.as_array()?.iter().find(|it| item_matches(it, &key))
    } else if let Some(val) = el.strip_prefix("v:") {
        let val: Value = serde_json::from_str(val).ok()?;
        cur.as_array()?.iter().find(|it| **it == val)
    } else {
        None
    }
}

/// Removes the value at a path; returns whether something was removed.
pub fn remove_path(v: &mut Value, path: &[String]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut cur = v;
    for el in parents {
        let next = if let Some(f) = el.strip_prefix("f:") {
            cur.get_mut(f)
        } else if let Some(k) = el.strip_prefix("k:") {
            let Ok(key) = serde_json::from_str::<Value>(k) else {
                return false;
            };
            cur.as_array_mut()
                .and_then(|a| a.iter_mut().find(|it| item_matches(it, &key)))
        } else {
            None
        };
        match next {
            Some(n) => cur = n,
            None => return false,
        }
    }
    if let Some(f) = last.strip_prefix("f:") {
        cur.as_object_mut().and_then(|m| m.remove(f)).is_some()
    } else if let Some(k) = last.strip_prefix("k:") {
        let Ok(key) = serde_json::from_str::<Value>(k) else {
            return false;
        };
        match cur.as_array_mut() {
            Some(a) => {
                let before = a.len();
                a.retain(|it| !item_matches(it, &key));
                before != a.len()
            }
            None => false,
        }
    } else if let Some(val) = last.strip_prefix("v:") {
        let Ok(val) = serde_json::from_str::<Value>(val) else {
            return false;
        };
        match cur.as_array_mut() {
            Some(a) => {
                let before = a.len();
                a.retain(|it| *it != val);
                before != a.len()
            }
            None => false,
        }
    } else {
        false
    }
}

/// Merges an applied configuration into the live object.
pub fn merge(live: Option<&Value>, applied: &Value, schema: MergeSchema<'_>) -> Value {
    merge_at(live, applied, schema.crd, &mut Vec::new(), schema)
}

fn merge_at(
    live: Option<&Value>,
    a: &Value,
    node: Option<&Value>,
    names: &mut Vec<String>,
    s: MergeSchema<'_>,
) -> Value {
    match (live, a) {
        (Some(Value::Object(l)), Value::Object(am)) if !s.map_atomic(node, names) => {
            let mut r = l.clone();
            for (k, av) in am {
                names.push(k.clone());
                let merged = merge_at(l.get(k), av, child_schema(node, k), names, s);
                names.pop();
                r.insert(k.clone(), merged);
            }
            Value::Object(r)
        }
        (Some(Value::Array(l)), Value::Array(al)) => match s.list_kind(node, names) {
            ListKind::Atomic => a.clone(),
            ListKind::Set => {
                let mut r = l.clone();
                for it in al {
                    if !r.contains(it) {
                        r.push(it.clone());
                    }
                }
                Value::Array(r)
            }
            ListKind::Map(keys) => {
                let inode = items_schema(node);
                let mut r = l.clone();
                for it in al {
                    let key = key_json(it, &keys);
                    match r.iter().position(|x| item_matches(x, &key)) {
                        Some(i) => {
                            let merged = merge_at(Some(&r[i]), it, inode, names, s);
                            r[i] = merged;
                        }
                        None => r.push(it.clone()),
                    }
                }
                Value::Array(r)
            }
        },
        _ => a.clone(),
    }
}

/// One `metadata.managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Manager name.
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    /// apiVersion the entry was written with.
    pub api_version: String,
    /// RFC 3339 time.
    pub time: String,
    /// Subresource ("" for the main resource).
    pub subresource: String,
    /// Owned fields.
    pub fields: FieldSet,
}

impl Entry {
    fn same_identity(&self, manager: &str, op: &str, sub: &str) -> bool {
        self.manager == manager && self.operation == op && self.subresource == sub
    }

    /// How the real server prints a manager in conflict messages (`printManager`).
    pub fn printed(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s = format!("{s} with subresource {:?}", self.subresource);
        }
        if self.operation == "Update" {
            s = format!("{s} using {}", self.api_version);
        }
        s
    }
}

/// Serializes a field set as `fieldsV1`.
pub fn to_fields_v1(fs: &FieldSet) -> Value {
    let mut root = Map::new();
    for p in fs {
        let mut cur = &mut root;
        for (i, el) in p.iter().enumerate() {
            let entry = cur.entry(el.clone()).or_insert_with(|| json!({}));
            let Value::Object(m) = entry else { break };
            if i + 1 == p.len() {
                if !m.is_empty() {
                    m.insert(".".into(), json!({}));
                }
            } else if m.is_empty() && fs.contains(&p[..=i].to_vec()) {
                m.insert(".".into(), json!({}));
            }
            cur = m;
        }
    }
    Value::Object(root)
}

/// Parses `fieldsV1` into a field set.
pub fn from_fields_v1(v: &Value) -> FieldSet {
    fn walk(v: &Value, path: &mut Path, out: &mut FieldSet) {
        let Some(m) = v.as_object() else { return };
        if m.is_empty() {
            if !path.is_empty() {
                out.insert(path.clone());
            }
            return;
        }
        for (k, c) in m {
            if k == "." {
                out.insert(path.clone());
                continue;
            }
            path.push(k.clone());
            walk(c, path, out);
            path.pop();
        }
    }
    let mut out = FieldSet::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

/// Reads `metadata.managedFields`.
pub fn entries_of(obj: Option<&Value>) -> Vec<Entry> {
    let Some(list) = obj
        .and_then(|o| o.pointer("/metadata/managedFields"))
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    list.iter()
        .map(|e| Entry {
            manager: e["manager"].as_str().unwrap_or_default().to_string(),
            operation: e["operation"].as_str().unwrap_or_default().to_string(),
            api_version: e["apiVersion"].as_str().unwrap_or_default().to_string(),
            time: e["time"].as_str().unwrap_or_default().to_string(),
            subresource: e["subresource"].as_str().unwrap_or_default().to_string(),
            fields: from_fields_v1(&e["fieldsV1"]),
        })
        .collect()
}

/// Whether a `managedFields` value written by a client decodes into at least one entry (the
/// apiserver's `DecodeManagedFields`: a list of entries with `fieldsType: FieldsV1` and a
/// `fieldsV1` object, an operation of `Apply` or `Update` and a manager).
pub fn decodes_non_empty(v: &Value) -> bool {
    let Some(list) = v.as_array() else {
        return false;
    };
    !list.is_empty()
        && list.iter().all(|e| {
            e["fieldsType"] == "FieldsV1"
                && e["fieldsV1"].is_object()
                && matches!(e["operation"].as_str(), Some("Apply" | "Update"))
                && e["manager"].is_string()
        })
}

/// Writes entries to `metadata.managedFields` (removes the key when empty).
pub fn set_entries(obj: &mut Value, entries: &[Entry]) {
    let list: Vec<Value> = entries
        .iter()
        .map(|e| {
            let mut v = json!({"manager": e.manager, "operation": e.operation, "apiVersion": e.api_version,
                "time": e.time, "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(&e.fields)});
            // `time` is optional (omitempty): an entry a client wrote without one keeps none.
            if e.time.is_empty()
                && let Some(m) = v.as_object_mut()
            {
                m.remove("time");
            }
            if !e.subresource.is_empty() {
                v["subresource"] = json!(e.subresource);
            }
            v
        })
        .collect();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if list.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(list));
        }
    }
}

/// Restricts an object to the fields SSA tracks for a (sub)resource: no apiVersion/kind, only
/// labels/annotations/finalizers/ownerReferences of metadata, and either everything but `status`
/// (main resource with a status subresource) or only `status` (status subresource).
pub fn tracked(obj: &Value, status_sub: bool, subresource: &str) -> Value {
    let mut out = Map::new();
    let Some(m) = obj.as_object() else {
        return Value::Object(out);
    };
    for (k, v) in m {
        match k.as_str() {
            "apiVersion" | "kind" => {}
            "metadata" if subresource.is_empty() => {
                let mut meta = Map::new();
                for f in ["labels", "annotations", "finalizers", "ownerReferences"] {
                    if let Some(x) = v.get(f) {
                        meta.insert(f.into(), x.clone());
                    }
                }
                if !meta.is_empty() {
                    out.insert(k.clone(), Value::Object(meta));
                }
            }
            "metadata" => {}
            "status" if subresource == "status" || !status_sub => {
                out.insert(k.clone(), v.clone());
            }
            _ if subresource == "status" => {}
            "status" => {}
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// A field owned by another manager with a different value.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    /// The other manager, printed as the real server prints it.
    pub manager: String,
    /// The field path, printed as `.spec.x[name="a"].y`.
    pub path: String,
}

/// Renders a field-set path as structured-merge-diff prints it.
pub fn path_string(p: &[String]) -> String {
    let mut s = String::new();
    for el in p {
        if let Some(f) = el.strip_prefix("f:") {
            s.push('.');
            s.push_str(f);
        } else if let Some(k) = el.strip_prefix("k:") {
            let key: Value = serde_json::from_str(k).unwrap_or(Value::Null);
            let parts: Vec<String> = key
                .as_object()
                .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect())
                .unwrap_or_default();
            s.push_str(&format!("[{}]", parts.join(",")));
        } else if let Some(v) = el.strip_prefix("v:") {
            s.push_str(&format!("[={v}]"));
        }
    }
    s
}

/// The message the apiserver gives for apply conflicts (`getConflictMessage`).
pub fn conflict_message(conflicts: &[Conflict]) -> String {
    if conflicts.len() == 1 {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            conflicts[0].manager, conflicts[0].path
        );
    }
    let mut managers: Vec<&str> = conflicts.iter().map(|c| c.manager.as_str()).collect();
    managers.sort();
    managers.dedup();
    let mut lines = Vec::new();
    for m in managers {
        lines.push(format!("conflicts with {m}:"));
        for c in conflicts.iter().filter(|c| c.manager == m) {
            lines.push(format!("- {}", c.path));
        }
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

fn is_node_path(p: &[String]) -> bool {
    p.last()
        .is_some_and(|l| l.starts_with("k:") || l.starts_with("v:"))
}

fn same_at(a: &Value, b: &Value, p: &[String]) -> bool {
    if is_node_path(p) {
        get_path(a, p).is_some() == get_path(b, p).is_some()
    } else {
        get_path(a, p) == get_path(b, p)
    }
}

/// Parameters of one apply.
#[derive(Debug, Clone)]
pub struct ApplyRequest<'a> {
    /// Field manager.
    pub manager: &'a str,
    /// "" or "status".
    pub subresource: &'a str,
    /// `force=true`.
    pub force: bool,
    /// apiVersion of the request.
    pub api_version: &'a str,
    /// Whether the type has a status subresource.
    pub status_sub: bool,
    /// Current time (RFC 3339).
    pub now: &'a str,
}

/// Applies `applied` onto `live`: returns the merged object (with managedFields) or conflicts.
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    req: &ApplyRequest<'_>,
    schema: MergeSchema<'_>,
) -> Result<Value, Vec<Conflict>> {
    let mut entries = entries_of(live);
    let a = tracked(applied, req.status_sub, req.subresource);
    let f = field_set(&a, schema);
    let empty = json!({});
    let live_v = live.unwrap_or(&empty);
    let mut conflicts = Vec::new();
    let mut forced: Vec<(usize, Path)> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if e.same_identity(req.manager, "Apply", req.subresource) {
            continue;
        }
        for p in f.intersection(&e.fields) {
            if !same_at(&a, live_v, p) {
                conflicts.push(Conflict {
                    manager: e.printed(),
                    path: path_string(p),
                });
                forced.push((i, p.clone()));
            }
        }
    }
    if !conflicts.is_empty() && !req.force {
        return Err(conflicts);
    }
    for (i, p) in forced {
        entries[i].fields.remove(&p);
    }
    let mut merged = merge(live, &a, schema);
    let prev = entries
        .iter()
        .find(|e| e.same_identity(req.manager, "Apply", req.subresource))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let others: Vec<&Entry> = entries
        .iter()
        .filter(|e| !e.same_identity(req.manager, "Apply", req.subresource))
        .collect();
    for p in prev.difference(&f) {
        let owned_elsewhere = others
            .iter()
            .any(|e| e.fields.iter().any(|q| q.starts_with(p)));
        if owned_elsewhere || f.iter().any(|q| q.starts_with(p)) {
            continue;
        }
        remove_path(&mut merged, p);
        // Drop parents left empty that nobody owns.
        let mut parent = p.clone();
        while parent.len() > 1 {
            parent.pop();
            let empty_now = match get_path(&merged, &parent) {
                Some(Value::Object(m)) => m.is_empty(),
                Some(Value::Array(a)) => a.is_empty(),
                _ => false,
            };
            let owned = f.contains(&parent) || others.iter().any(|e| e.fields.contains(&parent));
            if empty_now && !owned {
                remove_path(&mut merged, &parent);
            } else {
                break;
            }
        }
    }
    // Restore the non-tracked parts of the live object.
    if let (Some(Value::Object(l)), Value::Object(m)) = (live, &mut merged) {
        for (k, v) in l {
            if k == "metadata" {
                continue;
            }
            if !m.contains_key(k)
                && tracked(
                    &json!({k.clone(): v.clone()}),
                    req.status_sub,
                    req.subresource,
                )
                .as_object()
                .is_some_and(|o| o.is_empty())
            {
                m.insert(k.clone(), v.clone());
            }
        }
    }
    let mut meta = live
        .and_then(|l| l.get("metadata"))
        .cloned()
        .unwrap_or_else(|| applied.get("metadata").cloned().unwrap_or(json!({})));
    if let (Some(mm), Some(merged_meta)) = (
        meta.as_object_mut(),
        merged.get("metadata").and_then(Value::as_object),
    ) {
        for f in ["labels", "annotations", "finalizers", "ownerReferences"] {
            mm.remove(f);
        }
        for (k, v) in merged_meta {
            mm.insert(k.clone(), v.clone());
        }
    } else if let Some(mm) = meta.as_object_mut() {
        for f in ["labels", "annotations", "finalizers", "ownerReferences"] {
            mm.remove(f);
        }
    }
    if let Value::Object(m) = &mut merged {
        m.insert("metadata".into(), meta);
        if let Some(av) = applied.get("apiVersion") {
            m.insert("apiVersion".into(), av.clone());
        }
        if let Some(k) = applied.get("kind") {
            m.insert("kind".into(), k.clone());
        }
    }
    // Update this manager's entry.
    match entries
        .iter_mut()
        .find(|e| e.same_identity(req.manager, "Apply", req.subresource))
    {
        Some(e) => {
            if e.fields != f {
                e.fields = f;
                e.time = req.now.to_string();
            }
            e.api_version = req.api_version.to_string();
        }
        None => entries.push(Entry {
            manager: req.manager.to_string(),
            operation: "Apply".into(),
            api_version: req.api_version.to_string(),
            time: req.now.to_string(),
            subresource: req.subresource.to_string(),
            fields: f,
        }),
    }
    entries.retain(|e| !e.fields.is_empty());
    set_entries(&mut merged, &entries);
    Ok(merged)
}

/// Records ownership for a non-apply write (create, update, patch): changed fields move to
/// `manager` with operation `Update`; removed fields leave every set. Sets `managedFields` on `new`.
#[allow(clippy::too_many_arguments)]
pub fn track_update(
    live: Option<&Value>,
    new: &mut Value,
    manager: &str,
    subresource: &str,
    api_version: &str,
    status_sub: bool,
    now: &str,
    schema: MergeSchema<'_>,
) {
    let mut entries = entries_of(live);
    let empty = json!({});
    let old_t = live
        .map(|l| tracked(l, status_sub, subresource))
        .unwrap_or(empty);
    let new_t = tracked(new, status_sub, subresource);
    let old_fs = field_set(&old_t, schema);
    let new_fs = field_set(&new_t, schema);
    let changed: FieldSet = new_fs
        .iter()
        .filter(|p| !old_fs.contains(*p) || !same_at(&old_t, &new_t, p))
        .cloned()
        .collect();
    let removed: FieldSet = old_fs.difference(&new_fs).cloned().collect();
    for e in entries.iter_mut() {
        let before = e.fields.len();
        let own = e.same_identity(manager, "Update", subresource);
        e.fields
            .retain(|p| !removed.contains(p) && (own || !changed.contains(p)));
        // A field that turned into a subtree is no longer a leaf.
        e.fields.retain(|p| {
            !new_fs.iter().any(|q| q.len() > p.len() && q.starts_with(p)) || is_node_path(p)
        });
        if e.fields.len() != before {
            e.time = now.to_string();
        }
    }
    if !changed.is_empty() {
        match entries
            .iter_mut()
            .find(|e| e.same_identity(manager, "Update", subresource))
        {
            Some(e) => {
                e.fields.extend(changed);
                e.time = now.to_string();
                e.api_version = api_version.to_string();
            }
            None => entries.push(Entry {
                manager: manager.to_string(),
                operation: "Update".into(),
                api_version: api_version.to_string(),
                time: now.to_string(),
                subresource: subresource.to_string(),
                fields: changed,
            }),
        }
    }
    entries.retain(|e| !e.fields.is_empty());
    set_entries(new, &entries);
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUILTIN: MergeSchema<'static> = MergeSchema { crd: None };

    fn req<'a>(manager: &'a str, force: bool) -> ApplyRequest<'a> {
        ApplyRequest {
            manager,
            subresource: "",
            force,
            api_version: "apps/v1",
            status_sub: true,
            now: "2024-01-01T00:00:00Z",
        }
    }

    #[test]
    fn fields_v1_round_trip_with_keyed_items() {
        let obj = json!({"metadata":{"labels":{"a":"1"},"finalizers":["x"]},
            "spec":{"template":{"spec":{"containers":[{"name":"c","image":"i"}]}}}});
        let fs = field_set(&obj, BUILTIN);
        let v1 = to_fields_v1(&fs);
        assert_eq!(
            v1,
            json!({"f:metadata":{"f:finalizers":{"v:\"x\"":{}},"f:labels":{"f:a":{}}},
                "f:spec":{"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"c\"}":{".":{},"f:image":{},"f:name":{}}}}}}})
        );
        assert_eq!(from_fields_v1(&v1), fs);
    }

    #[test]
    fn conflict_only_when_values_differ_and_force_takes_ownership() {
        let a1 = json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"replicas":1,"paused":false}});
        let live = apply(None, &a1, &req("one", false), BUILTIN).unwrap();
        // Same value from another manager: shared ownership, no conflict.
        let same = json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"replicas":1}});
        let live2 = apply(Some(&live), &same, &req("two", false), BUILTIN).unwrap();
        assert_eq!(entries_of(Some(&live2)).len(), 2);
        let diff = json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"replicas":3}});
        let err = apply(Some(&live), &diff, &req("two", false), BUILTIN).unwrap_err();
        assert_eq!(
            conflict_message(&err),
            "Apply failed with 1 conflict: conflict with \"one\": .spec.replicas"
        );
        let forced = apply(Some(&live), &diff, &req("two", true), BUILTIN).unwrap();
        assert_eq!(forced["spec"], json!({"replicas":3,"paused":false}));
        let e = entries_of(Some(&forced));
        assert_eq!(
            e[0].fields,
            [vec!["f:spec".to_string(), "f:paused".to_string()]]
                .into_iter()
                .collect()
        );
    }

    #[test]
    fn fields_no_longer_applied_are_removed_unless_owned_elsewhere() {
        let a1 = json!({"metadata":{"name":"d"},"spec":{"a":1,"b":2}});
        let live = apply(None, &a1, &req("one", false), BUILTIN).unwrap();
        let live = apply(
            Some(&live),
            &json!({"metadata":{"name":"d"},"spec":{"b":2}}),
            &req("two", false),
            BUILTIN,
        )
        .unwrap();
        let live = apply(
            Some(&live),
            &json!({"metadata":{"name":"d"},"spec":{}}),
            &req("one", false),
            BUILTIN,
        )
        .unwrap();
        assert_eq!(live["spec"], json!({"b":2}));
    }

    #[test]
    fn keyed_env_merges_per_item() {
        let a1 = json!({"metadata":{"name":"d"},"spec":{"template":{"spec":{"containers":[{"name":"c","env":[{"name":"A","value":"1"},{"name":"B","value":"2"}]}]}}}});
        let live = apply(None, &a1, &req("one", false), BUILTIN).unwrap();
        let a2 = json!({"metadata":{"name":"d"},"spec":{"template":{"spec":{"containers":[{"name":"c","env":[{"name":"A","value":"1"}]}]}}}});
        let live = apply(Some(&live), &a2, &req("one", false), BUILTIN).unwrap();
        assert_eq!(
            live["spec"]["template"]["spec"]["containers"][0]["env"],
            json!([{"name":"A","value":"1"}])
        );
    }

    #[test]
    fn update_moves_changed_fields() {
        let a1 = json!({"metadata":{"name":"d"},"spec":{"a":1,"b":2}});
        let live = apply(None, &a1, &req("one", false), BUILTIN).unwrap();
        let mut new = live.clone();
        new["spec"]["a"] = json!(5);
        track_update(
            Some(&live),
            &mut new,
            "editor",
            "",
            "v1",
            true,
            "t",
            BUILTIN,
        );
        let e = entries_of(Some(&new));
        assert_eq!(e.len(), 2);
        assert_eq!(e[1].manager, "editor");
        assert_eq!(e[1].operation, "Update");
        assert_eq!(path_string(e[1].fields.iter().next().unwrap()), ".spec.a");
        assert!(!e[0].fields.iter().any(|p| path_string(p) == ".spec.a"));
    }
}
