//! Built-in admission for the kinds that need it: defaults the real API server applies
//! (Deployment, Service, Secret, Namespace), validation it enforces (Deployment selector
//! required and immutable), and the server-set status of Namespaces and CRDs.
//!
//! Defaults are those documented in the Kubernetes API reference for each field. Pure functions
//! over `serde_json::Value`; depends on `registry` and `errors` only.

use crate::errors::FieldError;
use crate::registry::{self, ResourceType};
use base64::Engine as _;
use serde_json::{Value, json};

fn is(rt: &ResourceType, group: &str, plural: &str) -> bool {
    rt.builtin && rt.group == group && rt.plural == plural
}

fn set_default(obj: &mut Value, ptr: &str, field: &str, v: Value) {
    if let Some(Value::Object(m)) = obj.pointer_mut(ptr) {
        m.entry(field.to_string()).or_insert(v);
    }
}

fn default_pod_spec(spec: &mut Value) {
    for (f, v) in [
        ("restartPolicy", json!("Always")),
        ("terminationGracePeriodSeconds", json!(30)),
        ("dnsPolicy", json!("ClusterFirst")),
        ("securityContext", json!({})),
        ("schedulerName", json!("default-scheduler")),
    ] {
        set_default(spec, "", f, v);
    }
    for list in ["containers", "initContainers"] {
        if let Some(Value::Array(cs)) = spec.get_mut(list) {
            for c in cs.iter_mut() {
                let image = c
                    .get("image")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let tag_latest = !image.contains('@')
                    && (image
                        .rsplit('/')
                        .next()
                        .is_none_or(|last| !last.contains(':'))
                        || image.ends_with(":latest"));
                set_default(
                    c,
                    "",
                    "imagePullPolicy",
                    json!(if tag_latest { "Always" } else { "IfNotPresent" }),
                );
                set_default(
                    c,
                    "",
                    "terminationMessagePath",
                    json!("/dev/termination-log"),
                );
                set_default(c, "", "terminationMessagePolicy", json!("File"));
                if let Some(Value::Array(ps)) = c.get_mut("ports") {
                    for p in ps.iter_mut() {
                        set_default(p, "", "protocol", json!("TCP"));
                    }
                }
            }
        }
    }
}

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Validates `metadata.name`: an RFC 1123 label for Namespaces, a subdomain otherwise
/// (apimachinery `ValidateObjectMeta` with the kinds' name validators).
pub fn validate_name(rt: &ResourceType, name: &str) -> Vec<FieldError> {
    let v = Value::String(name.to_string());
    if rt.builtin && rt.group.is_empty() && rt.plural == "namespaces" {
        if !is_label(name) {
            return vec![FieldError::invalid("metadata.name", &v, LABEL_MSG)];
        }
        return Vec::new();
    }
    let ok = name.len() <= 253 && name.split('.').all(is_label);
    if ok {
        Vec::new()
    } else {
        vec![FieldError::invalid("metadata.name", &v, SUBDOMAIN_MSG)]
    }
}

/// Applies built-in defaults and validation. `old` is the live object on updates.
pub fn default_and_validate(
    rt: &ResourceType,
    old: Option<&Value>,
    obj: &mut Value,
) -> Result<(), Vec<FieldError>> {
    let mut errs = Vec::new();
    if is(rt, "apps", "deployments") {
        if obj.get("spec").is_none() {
            obj["spec"] = json!({});
        }
        set_default(obj, "/spec", "replicas", json!(1));
        set_default(obj, "/spec", "revisionHistoryLimit", json!(10));
        set_default(obj, "/spec", "progressDeadlineSeconds", json!(600));
        set_default(
            obj,
            "/spec",
            "strategy",
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}),
        );
        if let Some(ps) = obj.pointer_mut("/spec/template/spec") {
            default_pod_spec(ps);
        }
        match obj.pointer("/spec/selector") {
            None => errs.push(FieldError::required("spec.selector")),
            Some(sel) => {
                if let Some(old_sel) = old.and_then(|o| o.pointer("/spec/selector"))
                    && old_sel != sel
                {
                    errs.push(FieldError::invalid(
                        "spec.selector",
                        sel,
                        "field is immutable",
                    ));
                }
            }
        }
        if obj
            .pointer("/spec/template/spec/containers")
            .and_then(Value::as_array)
            .is_none_or(|a| a.is_empty())
        {
            errs.push(FieldError::required("spec.template.spec.containers"));
        }
    } else if is(rt, "", "services") {
        if obj.get("spec").is_none() {
            obj["spec"] = json!({});
        }
        set_default(obj, "/spec", "type", json!("ClusterIP"));
        set_default(obj, "/spec", "sessionAffinity", json!("None"));
        // The allocated address is immutable: keep it across updates that omit it.
        for f in [
            "clusterIP",
            "clusterIPs",
            "ipFamilies",
            "ipFamilyPolicy",
            "internalTrafficPolicy",
        ] {
            if let Some(v) = old.and_then(|o| o.pointer("/spec").and_then(|s| s.get(f))) {
                set_default(obj, "/spec", f, v.clone());
            }
        }
        if old.is_none()
            && obj.pointer("/spec/type") == Some(&json!("ClusterIP"))
            && obj.pointer("/spec/clusterIP").is_none()
        {
            let ip = allocate_cluster_ip(obj);
            set_default(obj, "/spec", "clusterIP", json!(ip));
            set_default(obj, "/spec", "clusterIPs", json!([ip]));
        }
        set_default(obj, "/spec", "ipFamilies", json!(["IPv4"]));
        set_default(obj, "/spec", "ipFamilyPolicy", json!("SingleStack"));
        set_default(obj, "/spec", "internalTrafficPolicy", json!("Cluster"));
        if let Some(Value::Array(ps)) = obj.pointer_mut("/spec/ports") {
            for p in ps.iter_mut() {
                set_default(p, "", "protocol", json!("TCP"));
                if let Some(port) = p.get("port").cloned() {
                    set_default(p, "", "targetPort", port);
                }
            }
        }
    } else if is(rt, "", "secrets") {
        if let Some(Value::Object(sd)) = obj.get("stringData").cloned() {
            if !obj.get("data").is_some_and(Value::is_object) {
                obj["data"] = json!({});
            }
            for (k, v) in sd {
                let s = v.as_str().unwrap_or_default();
                obj["data"][k] = json!(base64::engine::general_purpose::STANDARD.encode(s));
            }
            if let Some(m) = obj.as_object_mut() {
                m.remove("stringData");
            }
        }
        set_default(obj, "", "type", json!("Opaque"));
    } else if is(rt, "apiextensions.k8s.io", "customresourcedefinitions")
        && let Err(e) = registry::crd_info(obj)
    {
        errs.push(FieldError {
            reason: "FieldValueInvalid",
            field: String::new(),
            body: e.to_string(),
        });
    }
    if errs.is_empty() { Ok(()) } else { Err(errs) }
}

/// A deterministic address in the default service range 10.96.0.0/12 derived from the name.
fn allocate_cluster_ip(obj: &Value) -> String {
    use sha2::Digest as _;
    let key = format!(
        "{}/{}",
        obj.pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or(""),
        obj.pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
    );
    let h = sha2::Sha256::digest(key.as_bytes());
    format!("10.{}.{}.{}", 96 + (h[0] % 16), h[1], 1 + (h[2] % 254))
}

fn condition(t: &str, status: &str, reason: &str, message: &str, now: &str) -> Value {
    json!({"type": t, "status": status, "reason": reason, "message": message, "lastTransitionTime": now})
}

/// Server-set fields on creation: Namespace phase and finalizer, CRD status and cleanup finalizer.
pub fn on_create(rt: &ResourceType, obj: &mut Value, establish_now: bool) {
    let now = crate::store::now();
    if is(rt, "", "namespaces") {
        if obj.get("spec").is_none() {
            obj["spec"] = json!({});
        }
        set_default(obj, "/spec", "finalizers", json!(["kubernetes"]));
        obj["status"] = json!({"phase": "Active"});
        let name = obj
            .pointer("/metadata/name")
            .cloned()
            .unwrap_or(Value::Null);
        if obj.pointer("/metadata/labels").is_none() {
            obj["metadata"]["labels"] = json!({});
        }
        obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = name;
    } else if is(rt, "apiextensions.k8s.io", "customresourcedefinitions") {
        let names = obj.pointer("/spec/names").cloned().unwrap_or(json!({}));
        let mut accepted = names.clone();
        if accepted.get("singular").is_none() {
            let k = names
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_lowercase();
            accepted["singular"] = json!(k);
        }
        if accepted.get("listKind").is_none() {
            let k = names
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or_default();
            accepted["listKind"] = json!(format!("{k}List"));
        }
        let storage: Vec<Value> = obj
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .map(|vs| {
                vs.iter()
                    .filter(|v| v["storage"] == json!(true))
                    .map(|v| v["name"].clone())
                    .collect()
            })
            .unwrap_or_default();
        let mut conds = vec![condition(
            "NamesAccepted",
            "True",
            "NoConflicts",
            "no conflicts found",
            &now,
        )];
        if establish_now {
            conds.push(condition(
                "Established",
                "True",
                "InitialNamesAccepted",
                "the initial names have been accepted",
                &now,
            ));
        }
        obj["status"] =
            json!({"acceptedNames": accepted, "conditions": conds, "storedVersions": storage});
        let fins = obj
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let f = json!("customresourcecleanup.apiextensions.k8s.io");
        if !fins.contains(&f) {
            let mut fins = fins;
            fins.push(f);
            obj["metadata"]["finalizers"] = Value::Array(fins);
        }
    }
}

/// Server-set fields when deletion starts: Namespace `Terminating`, CRD `Terminating` condition.
pub fn on_delete(rt: &ResourceType, obj: &mut Value) {
    if is(rt, "", "namespaces") {
        obj["status"]["phase"] = json!("Terminating");
    } else if is(rt, "apiextensions.k8s.io", "customresourcedefinitions") {
        let now = crate::store::now();
        if let Some(Value::Array(cs)) = obj.pointer_mut("/status/conditions") {
            cs.retain(|c| c["type"] != "Terminating");
            cs.push(condition(
                "Terminating",
                "True",
                "InstanceDeletionPending",
                "CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon",
                &now,
            ));
        }
    }
}

/// Whether a CRD object is Established.
pub fn crd_established(obj: &Value) -> bool {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Established" && c["status"] == "True")
        })
}

/// Sets the Established condition.
pub fn establish(obj: &mut Value) -> bool {
    if crd_established(obj) {
        return false;
    }
    let now = crate::store::now();
    match obj.pointer_mut("/status/conditions") {
        Some(Value::Array(cs)) => {
            cs.push(condition(
                "Established",
                "True",
                "InitialNamesAccepted",
                "the initial names have been accepted",
                &now,
            ));
        }
        _ => {
            obj["status"]["conditions"] = json!([condition(
                "Established",
                "True",
                "InitialNamesAccepted",
                "the initial names have been accepted",
                &now
            )]);
        }
    }
    true
}
