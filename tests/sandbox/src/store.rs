//! The object store and the write pipeline every request and built-in controller goes through:
//! validation of the request, defaulting, pruning and schema/CEL admission, managedFields,
//! generation, optimistic concurrency, no-op detection, finalizers and deletion, the global
//! resourceVersion, and the bounded event log watches replay from.
//!
//! Semantics follow the Kubernetes API concepts page
//! (<https://kubernetes.io/docs/reference/using-api/api-concepts/>), apiserver
//! `registry/generic/registry/store.go` (deletion, finalizers) and the SSA page. No HTTP here:
//! the `http` module turns requests into calls of [`Inner`]'s methods.

use crate::errors::{ApiError, FieldError, Target as ErrTarget};
use crate::faults::Faults;
use crate::recorder::Recorder;
use crate::registry::{self, CrdInfo, ResourceType};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::ssa::{self, MergeSchema};
use crate::{patch, schema};
use base64::Engine as _;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

/// Storage key of a group/resource.
pub(crate) type Gr = (String, String);
/// Object key: (namespace, name).
pub(crate) type Key = (String, String);

/// resourceVersions start high and advance by a non-unit step, so no client can mistake them for
/// a counter of objects.
pub(crate) const RV_START: u64 = 100_000;
const RV_STEP: u64 = 3;

/// A watch event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Object created.
    Added,
    /// Object changed.
    Modified,
    /// Object removed.
    Deleted,
}

impl EventType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One committed change.
#[derive(Debug, Clone)]
pub struct StoreEvent {
    /// resourceVersion of the change.
    pub rv: u64,
    /// Group and plural resource.
    pub gr: Gr,
    /// Event type.
    pub kind: EventType,
    /// The object after the change (last state for deletions), in storage form.
    pub object: Value,
    /// The object before the change.
    pub prev: Option<Value>,
}

pub(crate) struct State {
    pub rv: u64,
    pub objects: HashMap<Gr, BTreeMap<Key, Value>>,
    pub log: VecDeque<Arc<StoreEvent>>,
    /// Highest resourceVersion no longer in the log.
    pub compacted: u64,
    pub crds: BTreeMap<String, CrdInfo>,
}

/// Tunables fixed at build time.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub crd_established_delay: Duration,
    pub deployment_available_delay: Duration,
    pub watch_log_capacity: usize,
    pub bookmark_interval: Duration,
}

pub(crate) struct Inner {
    pub state: Mutex<State>,
    pub builtins: Vec<ResourceType>,
    pub config: Config,
    pub events: broadcast::Sender<Arc<StoreEvent>>,
    pub ctrl: mpsc::UnboundedSender<Arc<StoreEvent>>,
    pub recorder: Recorder,
    pub faults: Faults,
}

/// Where a request points.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub rt: ResourceType,
    pub ns: Option<String>,
    pub name: Option<String>,
    pub sub: Option<String>,
}

/// Options shared by writes.
#[derive(Debug, Clone, Default)]
pub(crate) struct WriteOpts {
    pub manager: String,
    pub dry_run: bool,
    pub strict: bool,
    pub warn_unknown: bool,
    pub force: bool,
}

/// Options of a delete.
#[derive(Debug, Clone, Default)]
pub(crate) struct DeleteOpts {
    pub dry_run: bool,
    pub propagation: Option<String>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
}

/// A successful answer.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub code: u16,
    pub body: Value,
    pub warnings: Vec<String>,
}

fn reply(code: u16, body: Value) -> Reply {
    Reply {
        code,
        body,
        warnings: Vec::new(),
    }
}

/// Current time as RFC 3339 seconds (`metav1.Time`).
pub(crate) fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Current time with microseconds (`metav1.MicroTime`).
pub(crate) fn now_micro() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

fn meta(v: &Value, f: &str) -> Option<String> {
    v.get("metadata")
        .and_then(|m| m.get(f))
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn meta_mut(v: &mut Value) -> &mut Map<String, Value> {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    let Value::Object(o) = v else {
        unreachable!("made an object above")
    };
    let m = o.entry("metadata").or_insert_with(|| json!({}));
    if !m.is_object() {
        *m = json!({});
    }
    match m {
        Value::Object(mm) => mm,
        _ => unreachable!("made an object above"),
    }
}

fn finalizers(v: &Value) -> Vec<String> {
    v.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn is_deleting(v: &Value) -> bool {
    v.pointer("/metadata/deletionTimestamp")
        .is_some_and(|x| !x.is_null())
}

/// Everything whose change bumps `metadata.generation`: all but metadata, and but status when
/// the type has a status subresource (apiextensions `customresource` strategy).
fn spec_part(v: &Value, status_sub: bool) -> Value {
    let mut c = v.clone();
    if let Some(m) = c.as_object_mut() {
        for k in ["metadata", "apiVersion", "kind"] {
            m.remove(k);
        }
        if status_sub {
            m.remove("status");
        }
    }
    c
}

fn without_mf_time(v: &Value) -> Value {
    let mut c = v.clone();
    if let Some(Value::Array(list)) = c.pointer_mut("/metadata/managedFields") {
        for e in list {
            if let Some(m) = e.as_object_mut() {
                m.remove("time");
            }
        }
    }
    c
}

fn err_target<'a>(rt: &'a ResourceType, name: &'a str) -> ErrTarget<'a> {
    ErrTarget {
        group: &rt.group,
        plural: &rt.plural,
        name,
    }
}

fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let u = uuid::Uuid::new_v4();
    u.as_bytes()
        .iter()
        .take(5)
        .map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char)
        .collect()
}

fn status_success(rt: &ResourceType, name: &str, uid: Option<String>) -> Value {
    let mut details = json!({"name": name, "kind": rt.plural});
    if !rt.group.is_empty() {
        details["group"] = json!(rt.group);
    }
    if let Some(u) = uid {
        details["uid"] = json!(u);
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}

impl Inner {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A built-in type by plural.
    pub(crate) fn builtin(&self, plural: &str) -> Option<ResourceType> {
        self.builtins.iter().find(|t| t.plural == plural).cloned()
    }

    /// Resolves a served type (CRD types only once Established).
    pub(crate) fn resolve(
        &self,
        st: &State,
        group: &str,
        version: &str,
        plural: &str,
    ) -> Option<ResourceType> {
        if let Some(t) = self
            .builtins
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
        {
            return Some(t.clone());
        }
        st.crds
            .values()
            .filter(|c| c.established)
            .flat_map(|c| c.types.iter())
            .find(|t| t.group == group && t.version == version && t.plural == plural)
            .cloned()
    }

    /// All served types: built-ins then established CRD types.
    pub(crate) fn served_types(&self, st: &State) -> Vec<ResourceType> {
        let mut v = self.builtins.clone();
        for c in st.crds.values().filter(|c| c.established) {
            v.extend(c.types.iter().cloned());
        }
        v
    }

    fn schema_of<'a>(rt: &'a ResourceType) -> MergeSchema<'a> {
        MergeSchema {
            crd: rt.schema.as_deref(),
        }
    }

    /// The object as answered for `rt`'s version.
    pub(crate) fn output(rt: &ResourceType, obj: &Value) -> Value {
        let mut o = obj.clone();
        o["apiVersion"] = json!(rt.api_version());
        o["kind"] = json!(rt.kind);
        o
    }

    fn key(t: &Target, name: &str) -> Key {
        (
            if t.rt.namespaced {
                t.ns.clone().unwrap_or_default()
            } else {
                String::new()
            },
            name.to_string(),
        )
    }

    fn get_obj<'a>(st: &'a State, rt: &ResourceType, key: &Key) -> Option<&'a Value> {
        st.objects.get(&rt.gr()).and_then(|m| m.get(key))
    }

    // ---- commit and events ----

    fn emit(&self, st: &mut State, ev: StoreEvent) {
        let ev = Arc::new(ev);
        st.log.push_back(ev.clone());
        while st.log.len() > self.config.watch_log_capacity.max(1) {
            if let Some(old) = st.log.pop_front() {
                st.compacted = old.rv;
            }
        }
        let _ = self.events.send(ev.clone());
        let _ = self.ctrl.send(ev);
    }

    fn refresh_crd(&self, st: &mut State, obj: &Value, removed: bool) {
        let Some(name) = meta(obj, "name") else {
            return;
        };
        if removed {
            if let Some(info) = st.crds.remove(&name)
                && let Some(t) = info.types.first()
            {
                st.objects.remove(&t.gr());
            }
            return;
        }
        if let Ok(info) = registry::crd_info(obj) {
            st.crds.insert(name, info);
        }
    }

    /// Persists `obj` (insert or replace); removes it instead when it is being deleted and has no
    /// finalizers left.
    fn commit(
        &self,
        st: &mut State,
        rt: &ResourceType,
        key: Key,
        prev: Option<Value>,
        mut obj: Value,
    ) -> Value {
        let ns_pending = rt.plural == "namespaces"
            && rt.group.is_empty()
            && obj
                .pointer("/spec/finalizers")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty());
        if is_deleting(&obj) && finalizers(&obj).is_empty() && !ns_pending {
            return self.remove(st, rt, key, obj);
        }
        st.rv += RV_STEP;
        meta_mut(&mut obj).insert("resourceVersion".into(), json!(st.rv.to_string()));
        let gr = rt.gr();
        st.objects
            .entry(gr.clone())
            .or_default()
            .insert(key, obj.clone());
        let is_crd = rt.group == "apiextensions.k8s.io" && rt.plural == "customresourcedefinitions";
        if is_crd {
            self.refresh_crd(st, &obj, false);
        }
        let kind = if prev.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        let rv = st.rv;
        self.emit(
            st,
            StoreEvent {
                rv,
                gr,
                kind,
                object: obj.clone(),
                prev,
            },
        );
        obj
    }

    fn remove(&self, st: &mut State, rt: &ResourceType, key: Key, mut last: Value) -> Value {
        let gr = rt.gr();
        let prev = st.objects.get_mut(&gr).and_then(|m| m.remove(&key));
        st.rv += RV_STEP;
        meta_mut(&mut last).insert("resourceVersion".into(), json!(st.rv.to_string()));
        if rt.group == "apiextensions.k8s.io" && rt.plural == "customresourcedefinitions" {
            self.refresh_crd(st, &last, true);
        }
        let rv = st.rv;
        self.emit(
            st,
            StoreEvent {
                rv,
                gr,
                kind: EventType::Deleted,
                object: last.clone(),
                prev,
            },
        );
        last
    }

    // ---- request validation ----

    fn normalize(t: &Target, body: &mut Value) -> Result<(), ApiError> {
        if !body.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request must be a JSON object",
            ));
        }
        let rt = &t.rt;
        let want = rt.api_version();
        if let Some(av) = body.get("apiVersion").and_then(Value::as_str)
            && av != want
        {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({av}) does not match the expected API version ({want})"
            )));
        }
        if let Some(k) = body.get("kind").and_then(Value::as_str)
            && k != rt.kind
        {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                rt.kind
            )));
        }
        body["apiVersion"] = json!(want);
        body["kind"] = json!(rt.kind);
        let m = meta_mut(body);
        if rt.namespaced {
            let ns = t.ns.clone().unwrap_or_default();
            match m.get("namespace").and_then(Value::as_str) {
                Some(b) if !b.is_empty() && b != ns => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                _ => {
                    m.insert("namespace".into(), json!(ns));
                }
            }
        } else {
            m.remove("namespace");
        }
        if let Some(n) = &t.name {
            match m.get("name").and_then(Value::as_str) {
                Some(b) if !b.is_empty() && b != n => {
                    return Err(ApiError::bad_request(format!(
                        "the name of the object ({b}) does not match the name on the URL ({n})"
                    )));
                }
                _ => {
                    m.insert("name".into(), json!(n));
                }
            }
        }
        Ok(())
    }

    fn check_namespace(&self, st: &State, t: &Target, name: &str) -> Result<(), ApiError> {
        if !t.rt.namespaced {
            return Ok(());
        }
        let ns = t.ns.clone().unwrap_or_default();
        let key = (String::new(), ns.clone());
        match st
            .objects
            .get(&(String::new(), "namespaces".to_string()))
            .and_then(|m| m.get(&key))
        {
            None => Err(ApiError::status(
                404,
                "NotFound",
                format!("namespaces \"{ns}\" not found"),
                Some(json!({"name": ns, "kind": "namespaces"})),
            )),
            Some(n) if is_deleting(n) => Err(ApiError::namespace_terminating(
                &err_target(&t.rt, name),
                &ns,
            )),
            Some(_) => Ok(()),
        }
    }

    fn check_crd_live(&self, st: &State, rt: &ResourceType) -> Result<(), ApiError> {
        if rt.builtin {
            return Ok(());
        }
        let terminating = st.crds.get(&rt.qualified()).is_some_and(|c| c.terminating);
        if terminating {
            return Err(ApiError::method_not_allowed(
                "create not allowed while custom resource definition is terminating",
            ));
        }
        Ok(())
    }

    /// Defaulting, pruning, structural validation and CEL for custom resources; built-in
    /// defaults and validation for built-ins. Returns warnings.
    fn admit(
        &self,
        t: &Target,
        old: Option<&Value>,
        obj: &mut Value,
        o: &WriteOpts,
    ) -> Result<Vec<String>, ApiError> {
        let rt = &t.rt;
        let name = meta(obj, "name").unwrap_or_default();
        let mut warnings = Vec::new();
        if let Some(schema) = rt.schema.as_deref() {
            let removed = schema::prune(schema, obj);
            if !removed.is_empty() {
                if o.strict {
                    let list: Vec<String> = removed
                        .iter()
                        .map(|p| format!("unknown field \"{p}\""))
                        .collect();
                    return Err(ApiError::bad_request(format!(
                        "strict decoding error: {}",
                        list.join(", ")
                    )));
                }
                if o.warn_unknown {
                    warnings.extend(removed.iter().map(|p| format!("unknown field \"{p}\"")));
                }
            }
            *obj = schema::default(schema, obj);
            let mut errs = schema::validate(schema, obj);
            if errs.is_empty() {
                errs = schema::cel(schema, obj, old, &rt.api_version(), &rt.group, &rt.kind);
            }
            if !errs.is_empty() {
                return Err(ApiError::invalid(&rt.group, &rt.kind, &name, errs));
            }
        }
        crate::builtins::default_and_validate(rt, old, obj)
            .map_err(|errs| ApiError::invalid(&rt.group, &rt.kind, &name, errs))?;
        Ok(warnings)
    }

    // ---- reads ----

    pub(crate) fn get(&self, t: &Target) -> Result<Value, ApiError> {
        let st = self.lock();
        let name = t.name.clone().unwrap_or_default();
        Self::get_obj(&st, &t.rt, &Self::key(t, &name))
            .map(|o| Self::output(&t.rt, o))
            .ok_or_else(|| ApiError::not_found(&err_target(&t.rt, &name)))
    }

    pub(crate) fn list(
        &self,
        t: &Target,
        labels: &LabelSelector,
        fields: &FieldSelector,
        limit: Option<usize>,
        cont: Option<&str>,
    ) -> Result<Value, ApiError> {
        let st = self.lock();
        let mut list_rv = st.rv;
        let start: Option<Key> = match cont {
            Some(c) if !c.is_empty() => {
                let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(c)
                    .map_err(|_| ApiError::bad_request("continue key is not valid"))?;
                let (rv, ns, name): (u64, String, String) = serde_json::from_slice(&raw)
                    .map_err(|_| ApiError::bad_request("continue key is not valid"))?;
                // The token pins the list's resourceVersion; once the event log no longer
                // reaches back to it the apiserver answers 410 (etcd compaction).
                if rv < st.compacted {
                    return Err(ApiError::status(
                        410,
                        "Expired",
                        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
                        None,
                    ));
                }
                list_rv = rv;
                Some((ns, name))
            }
            _ => None,
        };
        let mut items = Vec::new();
        let mut cont_out = None;
        let mut remaining = 0usize;
        if let Some(m) = st.objects.get(&t.rt.gr()) {
            let mut matched = m
                .iter()
                .filter(|(k, _)| {
                    t.ns.as_ref()
                        .is_none_or(|ns| !t.rt.namespaced || &k.0 == ns)
                })
                .filter(|(k, _)| start.as_ref().is_none_or(|s| *k > s))
                .filter(|(_, v)| labels.matches(v) && fields.matches(v));
            for (k, v) in matched.by_ref() {
                if limit.is_some_and(|l| l > 0 && items.len() >= l) {
                    remaining = 1;
                    let prev: Key = items
                        .last()
                        .and_then(|o: &Value| {
                            Some((meta(o, "namespace").unwrap_or_default(), meta(o, "name")?))
                        })
                        .unwrap_or_else(|| k.clone());
                    let prev = if t.rt.namespaced {
                        prev
                    } else {
                        (String::new(), prev.1)
                    };
                    cont_out = serde_json::to_vec(&(list_rv, &prev.0, &prev.1))
                        .ok()
                        .map(|b| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b));
                    break;
                }
                let mut o = Self::output(&t.rt, v);
                if t.rt.builtin
                    && let Some(m) = o.as_object_mut()
                {
                    m.remove("apiVersion");
                    m.remove("kind");
                }
                items.push(o);
            }
            remaining += matched.count();
        }
        let mut md = json!({"resourceVersion": st.rv.to_string()});
        if let Some(c) = cont_out {
            md["continue"] = json!(c);
            md["remainingItemCount"] = json!(remaining);
        }
        Ok(
            json!({"apiVersion": t.rt.api_version(), "kind": format!("{}List", t.rt.kind), "metadata": md, "items": items}),
        )
    }

    // ---- writes ----

    pub(crate) fn create(&self, t: &Target, body: Value, o: &WriteOpts) -> Result<Reply, ApiError> {
        let mut st = self.lock();
        self.create_locked(&mut st, t, body, o, false)
    }

    fn create_locked(
        &self,
        st: &mut State,
        t: &Target,
        mut body: Value,
        o: &WriteOpts,
        tracked: bool,
    ) -> Result<Reply, ApiError> {
        if t.rt.namespaced && t.ns.is_none() {
            return Err(ApiError::method_not_allowed(
                "the server does not allow this method on the requested resource".to_string(),
            ));
        }
        if t.sub.is_some() {
            return Err(ApiError::method_not_allowed(
                "the server does not allow this method on the requested resource",
            ));
        }
        Self::normalize(t, &mut body)?;
        let rt = &t.rt;
        let mut name = meta(&body, "name").unwrap_or_default();
        if name.is_empty() {
            match meta(&body, "generateName") {
                Some(g) if !g.is_empty() => {
                    name = format!("{g}{}", random_suffix());
                    meta_mut(&mut body).insert("name".into(), json!(name));
                }
                _ => {
                    return Err(ApiError::invalid(
                        &rt.group,
                        &rt.kind,
                        "",
                        vec![FieldError {
                            reason: "FieldValueRequired",
                            field: "metadata.name".into(),
                            body: "Required value: name or generateName is required".into(),
                        }],
                    ));
                }
            }
        }
        let name_errs = crate::builtins::validate_name(rt, &name);
        if !name_errs.is_empty() {
            return Err(ApiError::invalid(&rt.group, &rt.kind, &name, name_errs));
        }
        let key = Self::key(t, &name);
        self.check_namespace(st, t, &name)?;
        self.check_crd_live(st, rt)?;
        if let Some(live) = Self::get_obj(st, rt, &key) {
            if is_deleting(live) {
                let tg = err_target(rt, &name);
                return Err(ApiError::status(
                    409,
                    "AlreadyExists",
                    format!(
                        "object is being deleted: {} \"{name}\" already exists",
                        rt.qualified()
                    ),
                    ApiError::already_exists(&tg)
                        .body()
                        .and_then(|b| b.get("details").cloned()),
                ));
            }
            return Err(ApiError::already_exists(&err_target(rt, &name)));
        }
        {
            let m = meta_mut(&mut body);
            for f in [
                "uid",
                "resourceVersion",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "selfLink",
            ] {
                m.remove(f);
            }
            if !tracked {
                m.remove("managedFields");
            }
        }
        if rt.status_subresource
            && let Some(m) = body.as_object_mut()
        {
            m.remove("status");
        }
        let mut warnings = self.admit(t, None, &mut body, o)?;
        if !tracked {
            ssa::track_update(
                None,
                &mut body,
                &o.manager,
                "",
                &rt.api_version(),
                rt.status_subresource,
                &now(),
                Self::schema_of(rt),
            );
        }
        {
            let m = meta_mut(&mut body);
            m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
            m.insert("creationTimestamp".into(), json!(now()));
            if rt.uses_generation {
                m.insert("generation".into(), json!(1));
            }
        }
        crate::builtins::on_create(rt, &mut body, self.config.crd_established_delay.is_zero());
        if o.dry_run {
            warnings.dedup();
            return Ok(Reply {
                code: 201,
                body: Self::output(rt, &body),
                warnings,
            });
        }
        let stored = self.commit(st, rt, key, None, body);
        Ok(Reply {
            code: 201,
            body: Self::output(rt, &stored),
            warnings,
        })
    }

    pub(crate) fn update(
        &self,
        t: &Target,
        mut body: Value,
        o: &WriteOpts,
    ) -> Result<Reply, ApiError> {
        let mut st = self.lock();
        Self::normalize(t, &mut body)?;
        let name = t.name.clone().unwrap_or_default();
        let key = Self::key(t, &name);
        let live = Self::get_obj(&st, &t.rt, &key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&err_target(&t.rt, &name)))?;
        if let Some(rv) = meta(&body, "resourceVersion").filter(|r| !r.is_empty())
            && Some(rv) != meta(&live, "resourceVersion")
        {
            return Err(ApiError::stale(&err_target(&t.rt, &name)));
        }
        let cand = self.candidate(t, &live, body);
        self.finish_update(&mut st, t, key, live, cand, o, false)
    }

    /// Separates status from the rest: main-resource writes keep the live status, status writes
    /// keep everything but status.
    fn candidate(&self, t: &Target, live: &Value, body: Value) -> Value {
        match t.sub.as_deref() {
            Some("status") => {
                let mut c = live.clone();
                match body.get("status") {
                    Some(s) => c["status"] = s.clone(),
                    None => {
                        if let Some(m) = c.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
                c
            }
            _ => {
                let mut c = body;
                if t.rt.status_subresource {
                    match live.get("status") {
                        Some(s) => c["status"] = s.clone(),
                        None => {
                            if let Some(m) = c.as_object_mut() {
                                m.remove("status");
                            }
                        }
                    }
                }
                c
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn finish_update(
        &self,
        st: &mut State,
        t: &Target,
        key: Key,
        live: Value,
        mut cand: Value,
        o: &WriteOpts,
        applied: bool,
    ) -> Result<Reply, ApiError> {
        let rt = &t.rt;
        let name = key.1.clone();
        {
            let lm = live.get("metadata").cloned().unwrap_or(json!({}));
            let m = meta_mut(&mut cand);
            for f in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "resourceVersion",
                "namespace",
                "name",
            ] {
                match lm.get(f) {
                    Some(v) => {
                        m.insert(f.into(), v.clone());
                    }
                    None => {
                        m.remove(f);
                    }
                }
            }
            // managedFields written by the client replace the live ones when they decode and are
            // not empty, except on subresources (apiserver `FieldManager.Update`: "First try to
            // decode the managed fields provided in the update, this is necessary to allow
            // directly updating managed fields"); otherwise the live ones stay.
            let written = (!applied && t.sub.is_none())
                .then(|| m.get("managedFields"))
                .flatten()
                .filter(|v| ssa::decodes_non_empty(v))
                .cloned();
            if !applied {
                match written.as_ref().or(lm.get("managedFields")) {
                    Some(v) => {
                        m.insert("managedFields".into(), v.clone());
                    }
                    None => {
                        m.remove("managedFields");
                    }
                }
            }
        }
        cand["apiVersion"] = json!(rt.api_version());
        if is_deleting(&live) {
            let old: Vec<String> = finalizers(&live);
            let new: Vec<String> = finalizers(&cand);
            if new.iter().any(|f| !old.contains(f)) {
                return Err(ApiError::invalid(
                    &rt.group,
                    &rt.kind,
                    &name,
                    vec![FieldError::forbidden(
                        "metadata.finalizers",
                        "no new finalizers can be added if the object is being deleted",
                    )],
                ));
            }
        }
        let warnings = self.admit(t, Some(&live), &mut cand, o)?;
        if !applied {
            let sub = t.sub.clone().unwrap_or_default();
            // Ownership of what this update changes is recorded on top of the managedFields it
            // carries (the client's, when it wrote them).
            let mut base = live.clone();
            if let Some(written) = cand.pointer("/metadata/managedFields").cloned() {
                meta_mut(&mut base).insert("managedFields".into(), written);
            }
            ssa::track_update(
                Some(&base),
                &mut cand,
                &o.manager,
                &sub,
                &rt.api_version(),
                rt.status_subresource,
                &now(),
                Self::schema_of(rt),
            );
        }
        if rt.uses_generation
            && spec_part(&cand, rt.status_subresource) != spec_part(&live, rt.status_subresource)
        {
            let g = live
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            meta_mut(&mut cand).insert("generation".into(), json!(g + 1));
        }
        let live_cmp = Self::output(rt, &live);
        if without_mf_time(&cand) == without_mf_time(&live_cmp) {
            return Ok(Reply {
                code: 200,
                body: live_cmp,
                warnings,
            });
        }
        if o.dry_run {
            return Ok(Reply {
                code: 200,
                body: Self::output(rt, &cand),
                warnings,
            });
        }
        let stored = self.commit(st, rt, key, Some(live), cand);
        Ok(Reply {
            code: 200,
            body: Self::output(rt, &stored),
            warnings,
        })
    }

    pub(crate) fn patch(
        &self,
        t: &Target,
        content_type: &str,
        body: &[u8],
        o: &WriteOpts,
    ) -> Result<Reply, ApiError> {
        let ct = content_type.split(';').next().unwrap_or("").trim();
        if ct == "application/apply-patch+yaml" {
            return self.apply(t, body, o);
        }
        let mut st = self.lock();
        let name = t.name.clone().unwrap_or_default();
        let key = Self::key(t, &name);
        let live = Self::get_obj(&st, &t.rt, &key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&err_target(&t.rt, &name)))?;
        let base = Self::output(&t.rt, &live);
        let patched = match ct {
            "application/merge-patch+json" => patch::merge_patch(&base, body),
            "application/json-patch+json" => patch::json_patch(&base, body),
            "application/strategic-merge-patch+json" if t.rt.builtin => {
                patch::strategic(&base, body)
            }
            _ => return Err(ApiError::unsupported_media_type(ct)),
        };
        let mut patched = patched.map_err(|e| match e {
            patch::PatchError::Decode(m) => ApiError::bad_request(m),
            patch::PatchError::Apply(m) => ApiError::status(422, "Invalid", m, None),
        })?;
        Self::normalize(t, &mut patched)?;
        if meta(&patched, "resourceVersion") != meta(&live, "resourceVersion") {
            return Err(ApiError::stale(&err_target(&t.rt, &name)));
        }
        let cand = self.candidate(t, &live, patched);
        self.finish_update(&mut st, t, key, live, cand, o, false)
    }

    fn apply(&self, t: &Target, body: &[u8], o: &WriteOpts) -> Result<Reply, ApiError> {
        if o.manager.is_empty() {
            return Err(ApiError::invalid(
                "meta.k8s.io",
                "PatchOptions",
                "",
                vec![FieldError::required("fieldManager")],
            )
            .with_message("PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"));
        }
        let mut applied: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(_) => {
                let s = String::from_utf8_lossy(body);
                serde_saphyr::from_str(&s)
                    .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?
            }
        };
        if applied.get("apiVersion").is_none() || applied.get("kind").is_none() {
            return Err(ApiError::bad_request(
                "invalid object type: apiVersion and kind must be set",
            ));
        }
        Self::normalize(t, &mut applied)?;
        if applied
            .pointer("/metadata/managedFields")
            .is_some_and(|m| !m.is_null() && m.as_array().is_none_or(|a| !a.is_empty()))
        {
            return Err(ApiError::bad_request("metadata.managedFields must be nil"));
        }
        let mut st = self.lock();
        let name = t.name.clone().unwrap_or_default();
        let key = Self::key(t, &name);
        let live = Self::get_obj(&st, &t.rt, &key).cloned();
        let rt = &t.rt;
        let sub = t.sub.clone().unwrap_or_default();
        let n = now();
        let req = ssa::ApplyRequest {
            manager: &o.manager,
            subresource: &sub,
            force: o.force,
            api_version: &rt.api_version(),
            status_sub: rt.status_subresource,
            now: &n,
        };
        let conflict = |c: Vec<ssa::Conflict>| {
            let mut details = json!({"name": name, "kind": rt.plural, "causes": c.iter().map(|x| json!({
                "reason": "FieldManagerConflict", "message": format!("conflict with {}", x.manager), "field": x.path})).collect::<Vec<_>>()});
            if !rt.group.is_empty() {
                details["group"] = json!(rt.group);
            }
            ApiError::status(409, "Conflict", ssa::conflict_message(&c), Some(details))
        };
        match live {
            None => {
                if !sub.is_empty() {
                    return Err(ApiError::not_found(&err_target(rt, &name)));
                }
                let merged =
                    ssa::apply(None, &applied, &req, Self::schema_of(rt)).map_err(conflict)?;
                let mut t2 = t.clone();
                t2.name = None;
                self.create_locked(&mut st, &t2, merged, o, true)
            }
            Some(live) => {
                if let Some(rv) = meta(&applied, "resourceVersion").filter(|r| !r.is_empty())
                    && Some(rv) != meta(&live, "resourceVersion")
                {
                    return Err(ApiError::stale(&err_target(rt, &name)));
                }
                let merged = ssa::apply(Some(&live), &applied, &req, Self::schema_of(rt))
                    .map_err(conflict)?;
                self.finish_update(&mut st, t, key, live, merged, o, true)
            }
        }
    }

    pub(crate) fn delete(&self, t: &Target, opts: &DeleteOpts) -> Result<Reply, ApiError> {
        let mut st = self.lock();
        let name = t.name.clone().unwrap_or_default();
        let key = Self::key(t, &name);
        let live = Self::get_obj(&st, &t.rt, &key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&err_target(&t.rt, &name)))?;
        if let Some(uid) = &opts.precondition_uid {
            let actual = meta(&live, "uid").unwrap_or_default();
            if &actual != uid {
                return Err(ApiError::conflict(
                    &err_target(&t.rt, &name),
                    &format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"
                    ),
                ));
            }
        }
        if let Some(rv) = &opts.precondition_rv {
            let actual = meta(&live, "resourceVersion").unwrap_or_default();
            if &actual != rv {
                return Err(ApiError::conflict(
                    &err_target(&t.rt, &name),
                    &format!(
                        "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {actual}"
                    ),
                ));
            }
        }
        self.delete_locked(&mut st, &t.rt, key, live, opts)
    }

    fn delete_locked(
        &self,
        st: &mut State,
        rt: &ResourceType,
        key: Key,
        live: Value,
        opts: &DeleteOpts,
    ) -> Result<Reply, ApiError> {
        if is_deleting(&live) {
            return Ok(reply(200, Self::output(rt, &live)));
        }
        let mut fin = finalizers(&live);
        match opts.propagation.as_deref() {
            Some("Foreground") if !fin.iter().any(|f| f == "foregroundDeletion") => {
                fin.push("foregroundDeletion".into())
            }
            Some("Orphan") if !fin.iter().any(|f| f == "orphan") => fin.push("orphan".into()),
            _ => {}
        }
        let is_ns = rt.group.is_empty() && rt.plural == "namespaces";
        if !fin.is_empty() || is_ns {
            let mut new = live.clone();
            {
                let m = meta_mut(&mut new);
                m.insert("deletionTimestamp".into(), json!(now()));
                m.insert("deletionGracePeriodSeconds".into(), json!(0));
                if !fin.is_empty() {
                    m.insert("finalizers".into(), json!(fin));
                }
                if let Some(g) = m.get("generation").and_then(Value::as_i64) {
                    m.insert("generation".into(), json!(g + 1));
                }
            }
            crate::builtins::on_delete(rt, &mut new);
            if opts.dry_run {
                return Ok(reply(200, Self::output(rt, &new)));
            }
            let stored = self.commit(st, rt, key, Some(live), new);
            return Ok(reply(200, Self::output(rt, &stored)));
        }
        let uid = meta(&live, "uid");
        if !opts.dry_run {
            self.remove(st, rt, key.clone(), live);
        }
        Ok(reply(200, status_success(rt, &key.1, uid)))
    }

    pub(crate) fn delete_collection(
        &self,
        t: &Target,
        labels: &LabelSelector,
        fields: &FieldSelector,
        opts: &DeleteOpts,
    ) -> Result<Reply, ApiError> {
        let mut st = self.lock();
        let targets: Vec<(Key, Value)> = st
            .objects
            .get(&t.rt.gr())
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| {
                        t.ns.as_ref()
                            .is_none_or(|ns| !t.rt.namespaced || &k.0 == ns)
                    })
                    .filter(|(_, v)| labels.matches(v) && fields.matches(v))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let mut items = Vec::new();
        for (k, v) in targets {
            let r = self.delete_locked(&mut st, &t.rt, k, v.clone(), opts)?;
            items.push(if r.body["kind"] == "Status" {
                Self::output(&t.rt, &v)
            } else {
                r.body
            });
        }
        Ok(reply(
            200,
            json!({"apiVersion": t.rt.api_version(), "kind": format!("{}List", t.rt.kind), "metadata": {"resourceVersion": st.rv.to_string()}, "items": items}),
        ))
    }

    // ---- helpers for built-in controllers ----

    /// Reads an object in storage form.
    pub(crate) fn read(&self, rt: &ResourceType, ns: &str, name: &str) -> Option<Value> {
        let st = self.lock();
        Self::get_obj(
            &st,
            rt,
            &(
                if rt.namespaced {
                    ns.to_string()
                } else {
                    String::new()
                },
                name.to_string(),
            ),
        )
        .cloned()
    }

    /// Reads every object of a type.
    pub(crate) fn read_all(&self, rt: &ResourceType) -> Vec<Value> {
        let st = self.lock();
        st.objects
            .get(&rt.gr())
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Changes an object through the update pipeline as `manager` (an Update operation).
    /// `f` returns false to leave the object alone.
    pub(crate) fn mutate(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        sub: Option<&str>,
        manager: &str,
        f: impl FnOnce(&mut Value) -> bool,
    ) -> Result<Option<Value>, ApiError> {
        let mut st = self.lock();
        let t = Target {
            rt: rt.clone(),
            ns: if rt.namespaced {
                Some(ns.to_string())
            } else {
                None
            },
            name: Some(name.to_string()),
            sub: sub.map(str::to_string),
        };
        let key = Self::key(&t, name);
        let Some(live) = Self::get_obj(&st, rt, &key).cloned() else {
            return Ok(None);
        };
        let mut cand = Self::output(rt, &live);
        if !f(&mut cand) {
            return Ok(None);
        }
        let cand = self.candidate(&t, &live, cand);
        let o = WriteOpts {
            manager: manager.to_string(),
            ..Default::default()
        };
        self.finish_update(&mut st, &t, key, live, cand, &o, false)
            .map(|r| Some(r.body))
    }

    /// Deletes an object (background propagation) on behalf of a controller.
    pub(crate) fn delete_internal(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        propagation: Option<&str>,
    ) {
        let mut st = self.lock();
        let key = (
            if rt.namespaced {
                ns.to_string()
            } else {
                String::new()
            },
            name.to_string(),
        );
        if let Some(live) = Self::get_obj(&st, rt, &key).cloned() {
            let opts = DeleteOpts {
                propagation: propagation.map(str::to_string),
                ..Default::default()
            };
            let _ = self.delete_locked(&mut st, rt, key, live, &opts);
        }
    }

    /// Every stored object with its type's storage key, optionally in one namespace.
    pub(crate) fn all_objects(&self, namespace: Option<&str>) -> Vec<(Gr, Value)> {
        let st = self.lock();
        let mut out = Vec::new();
        for (gr, m) in &st.objects {
            for (k, v) in m {
                if namespace.is_none_or(|ns| k.0 == ns) {
                    out.push((gr.clone(), v.clone()));
                }
            }
        }
        out
    }

    /// Stored objects matching `f` (evaluated under the lock; only matches are cloned).
    pub(crate) fn objects_where(&self, f: impl Fn(&Value) -> bool) -> Vec<(Gr, Value)> {
        let st = self.lock();
        let mut out = Vec::new();
        for (gr, m) in &st.objects {
            for v in m.values() {
                if f(v) {
                    out.push((gr.clone(), v.clone()));
                }
            }
        }
        out
    }

    /// The served type of a stored group/resource (storage version).
    pub(crate) fn type_of(&self, gr: &Gr) -> Option<ResourceType> {
        if let Some(t) = self
            .builtins
            .iter()
            .find(|t| t.group == gr.0 && t.plural == gr.1)
        {
            return Some(t.clone());
        }
        let st = self.lock();
        st.crds
            .values()
            .flat_map(|c| c.types.iter())
            .find(|t| t.group == gr.0 && t.plural == gr.1 && t.version == t.storage_version)
            .cloned()
    }

    /// Makes a CRD's version types known even before establishment (for cleanup).
    pub(crate) fn crd_types(&self, crd_name: &str) -> Vec<ResourceType> {
        self.lock()
            .crds
            .get(crd_name)
            .map(|c| c.types.clone())
            .unwrap_or_default()
    }
}

impl ApiError {
    /// Replaces the message of a Status error.
    pub(crate) fn with_message(self, m: &str) -> Self {
        match self {
            ApiError::Status {
                code,
                reason,
                details,
                retry_after,
                ..
            } => ApiError::Status {
                code,
                reason,
                message: m.to_string(),
                details,
                retry_after,
            },
            other => other,
        }
    }
}
