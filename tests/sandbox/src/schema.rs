//! Structural-schema handling for custom resources, in the apiserver's order: pruning of unknown
//! fields, defaulting, structural validation (type, enum, required, pattern, bounds) and the
//! `x-kubernetes-validations` CEL rules (via `kube-cel`, with `oldSelf` on updates).
//!
//! Behaviour follows the CRD docs (<https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/>
//! "Field pruning", "Defaulting", "Validation rules"). Depends only on `errors` for `FieldError`.

use crate::errors::FieldError;
use serde_json::{Map, Value};

thread_local! {
    static VALIDATOR: kube_cel::Validator = kube_cel::Validator::new();
}

fn join(path: &str, k: &str) -> String {
    if path.is_empty() {
        k.to_string()
    } else {
        format!("{path}.{k}")
    }
}

/// Removes fields the schema does not declare (unless `x-kubernetes-preserve-unknown-fields`),
/// returning the dotted paths of what was removed.
pub fn prune(schema: &Value, obj: &mut Value) -> Vec<String> {
    let mut removed = Vec::new();
    if let Value::Object(m) = obj {
        let props = schema.get("properties").and_then(Value::as_object);
        let keys: Vec<String> = m.keys().cloned().collect();
        for k in keys {
            if k == "apiVersion" || k == "kind" || k == "metadata" {
                continue;
            }
            match props.and_then(|p| p.get(&k)) {
                Some(s) => {
                    if let Some(v) = m.get_mut(&k) {
                        prune_at(s, v, &k, &mut removed);
                    }
                }
                None => {
                    if schema
                        .get("x-kubernetes-preserve-unknown-fields")
                        .and_then(Value::as_bool)
                        != Some(true)
                    {
                        m.remove(&k);
                        removed.push(k);
                    }
                }
            }
        }
    }
    removed
}

fn prune_at(schema: &Value, v: &mut Value, path: &str, removed: &mut Vec<String>) {
    let preserve = schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true);
    let embedded = schema
        .get("x-kubernetes-embedded-resource")
        .and_then(Value::as_bool)
        == Some(true);
    match v {
        Value::Object(m) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                let child = props.and_then(|p| p.get(&k)).or(additional);
                match child {
                    Some(s) => {
                        if let Some(cv) = m.get_mut(&k) {
                            prune_at(s, cv, &join(path, &k), removed);
                        }
                    }
                    None => {
                        let keep = preserve
                            || (embedded && (k == "apiVersion" || k == "kind" || k == "metadata"))
                            || schema.get("additionalProperties") == Some(&Value::Bool(true));
                        if !keep {
                            m.remove(&k);
                            removed.push(join(path, &k));
                        }
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (i, it) in items.iter_mut().enumerate() {
                    prune_at(s, it, &format!("{path}[{i}]"), removed);
                }
            }
        }
        _ => {}
    }
}

/// Applies schema `default`s (nulls of non-nullable fields with a default are defaulted too).
pub fn default(schema: &Value, obj: &Value) -> Value {
    let mut v = obj.clone();
    replace_defaulted_nulls(schema, &mut v);
    kube_cel::apply_defaults(schema, &v)
}

fn replace_defaulted_nulls(schema: &Value, v: &mut Value) {
    if let Value::Object(m) = v {
        let props = schema.get("properties").and_then(Value::as_object);
        for (k, cv) in m.iter_mut() {
            if let Some(s) = props.and_then(|p| p.get(k)) {
                if cv.is_null()
                    && s.get("nullable").and_then(Value::as_bool) != Some(true)
                    && let Some(d) = s.get("default")
                {
                    *cv = d.clone();
                    continue;
                }
                replace_defaulted_nulls(s, cv);
            }
        }
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Structural validation; returns field errors in the apiserver's wording.
pub fn validate(schema: &Value, obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Value::Object(m) = obj {
        let props = schema.get("properties").and_then(Value::as_object);
        for (k, v) in m {
            if k == "apiVersion" || k == "kind" || k == "metadata" {
                continue;
            }
            if let Some(s) = props.and_then(|p| p.get(k)) {
                validate_at(s, v, k, &mut errs);
            }
        }
        check_required(schema, m, "", &mut errs);
    }
    errs
}

fn check_required(schema: &Value, m: &Map<String, Value>, path: &str, errs: &mut Vec<FieldError>) {
    if let Some(req) = schema.get("required").and_then(Value::as_array) {
        for r in req.iter().filter_map(Value::as_str) {
            if !m.contains_key(r) {
                errs.push(FieldError::required(join(path, r)));
            }
        }
    }
}

fn validate_at(s: &Value, v: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let nullable = s.get("nullable").and_then(Value::as_bool) == Some(true);
    if v.is_null() && nullable {
        return;
    }
    let int_or_string = s.get("x-kubernetes-int-or-string").and_then(Value::as_bool) == Some(true);
    let actual = type_name(v);
    if int_or_string {
        if actual != "integer" && actual != "string" {
            errs.push(FieldError {
                reason: "FieldValueTypeInvalid",
                field: path.into(),
                body: format!("Invalid value: \"{actual}\": {path} in body must be of type int-or-string: \"{actual}\""),
            });
            return;
        }
    } else if let Some(t) = s.get("type").and_then(Value::as_str) {
        let ok = actual == t || (t == "number" && actual == "integer");
        if !ok {
            errs.push(FieldError {
                reason: "FieldValueTypeInvalid",
                field: path.into(),
                body: format!(
                    "Invalid value: \"{actual}\": {path} in body must be of type {t}: \"{actual}\""
                ),
            });
            return;
        }
    }
    if let Some(allowed) = s.get("enum").and_then(Value::as_array)
        && !allowed.contains(v)
    {
        errs.push(FieldError::not_supported(path, v, allowed));
    }
    match v {
        Value::String(st) => {
            if let Some(p) = s.get("pattern").and_then(Value::as_str) {
                match regex::Regex::new(p) {
                    Ok(re) if !re.is_match(st) => errs.push(FieldError::invalid(
                        path,
                        v,
                        &format!("{path} in body should match '{p}'"),
                    )),
                    _ => {}
                }
            }
            let len = st.chars().count() as u64;
            if let Some(max) = s.get("maxLength").and_then(Value::as_u64)
                && len > max
            {
                errs.push(FieldError {
                    reason: "FieldValueTooLong",
                    field: path.into(),
                    body: format!("Too long: may not be more than {max} bytes"),
                });
            }
            if let Some(min) = s.get("minLength").and_then(Value::as_u64)
                && len < min
            {
                errs.push(FieldError::invalid(
                    path,
                    v,
                    &format!("{path} in body should be at least {min} chars long"),
                ));
            }
        }
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(0.0);
            if let Some(min) = s.get("minimum").and_then(Value::as_f64) {
                let excl = s.get("exclusiveMinimum").and_then(Value::as_bool) == Some(true);
                if x < min || (excl && x == min) {
                    let op = if excl {
                        "greater than"
                    } else {
                        "greater than or equal to"
                    };
                    errs.push(FieldError::invalid(
                        path,
                        v,
                        &format!("{path} in body should be {op} {}", s["minimum"]),
                    ));
                }
            }
            if let Some(max) = s.get("maximum").and_then(Value::as_f64) {
                let excl = s.get("exclusiveMaximum").and_then(Value::as_bool) == Some(true);
                if x > max || (excl && x == max) {
                    let op = if excl {
                        "less than"
                    } else {
                        "less than or equal to"
                    };
                    errs.push(FieldError::invalid(
                        path,
                        v,
                        &format!("{path} in body should be {op} {}", s["maximum"]),
                    ));
                }
            }
        }
        Value::Array(items) => {
            if let Some(min) = s.get("minItems").and_then(Value::as_u64)
                && (items.len() as u64) < min
            {
                errs.push(FieldError::invalid(
                    path,
                    v,
                    &format!("{path} in body should have at least {min} items"),
                ));
            }
            if let Some(max) = s.get("maxItems").and_then(Value::as_u64)
                && items.len() as u64 > max
            {
                errs.push(FieldError {
                    reason: "FieldValueTooMany",
                    field: path.into(),
                    body: format!("Too many: {}: must have at most {max} items", items.len()),
                });
            }
            if let Some(is) = s.get("items") {
                for (i, it) in items.iter().enumerate() {
                    validate_at(is, it, &format!("{path}[{i}]"), errs);
                }
            }
        }
        Value::Object(m) => {
            let props = s.get("properties").and_then(Value::as_object);
            let additional = s.get("additionalProperties").filter(|a| a.is_object());
            for (k, cv) in m {
                if let Some(cs) = props.and_then(|p| p.get(k)).or(additional) {
                    validate_at(cs, cv, &join(path, k), errs);
                }
            }
            check_required(s, m, path, errs);
        }
        _ => {}
    }
}

fn schema_type_at<'a>(schema: &'a Value, path: &str) -> &'a str {
    let mut cur = schema;
    for seg in path.split('.').filter(|s| !s.is_empty()) {
        let name = seg.split('[').next().unwrap_or(seg);
        let next = cur
            .get("properties")
            .and_then(|p| p.get(name))
            .or_else(|| cur.get("additionalProperties").filter(|a| a.is_object()));
        match next {
            Some(n) => cur = n,
            None => return "object",
        }
        if seg.contains('[')
            && let Some(i) = cur.get("items")
        {
            cur = i;
        }
    }
    cur.get("type").and_then(Value::as_str).unwrap_or("object")
}

fn has_rules(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.contains_key("x-kubernetes-validations") || m.values().any(has_rules),
        Value::Array(a) => a.iter().any(has_rules),
        _ => false,
    }
}

/// Runs the `x-kubernetes-validations` CEL rules (transition rules only when `old` is given).
pub fn cel(
    schema: &Value,
    obj: &Value,
    old: Option<&Value>,
    api_version: &str,
    group: &str,
    kind: &str,
) -> Vec<FieldError> {
    if !has_rules(schema) {
        return Vec::new();
    }
    let ctx = kube_cel::RootContext {
        api_version: api_version.into(),
        api_group: group.into(),
        kind: kind.into(),
    };
    let res = VALIDATOR.with(|v| v.validate_with_context(schema, obj, old, Some(&ctx)));
    match res {
        Ok(()) => Vec::new(),
        Err(errs) => errs
            .iter()
            .map(|e| {
                let ty = schema_type_at(schema, &e.field_path);
                FieldError {
                    reason: "FieldValueInvalid",
                    field: e.field_path.clone(),
                    body: format!("Invalid value: \"{ty}\": {}", e.message),
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type":"object","properties":{"spec":{"type":"object","required":["size"],"properties":{
            "size":{"type":"integer","minimum":1},
            "mode":{"type":"string","enum":["a","b"],"default":"a"},
            "name":{"type":"string","pattern":"^[a-z]+$"},
            "free":{"type":"object","x-kubernetes-preserve-unknown-fields":true}}}}})
    }

    #[test]
    fn prune_default_validate() {
        let mut o = json!({"apiVersion":"x/v1","kind":"K","metadata":{"name":"n"},
            "spec":{"size":0,"junk":1,"name":"A1","free":{"any":{"thing":1}}},"extra":true});
        let removed = prune(&schema(), &mut o);
        assert_eq!(removed, vec!["extra".to_string(), "spec.junk".to_string()]);
        let o = default(&schema(), &o);
        assert_eq!(
            o["spec"],
            json!({"size":0,"mode":"a","name":"A1","free":{"any":{"thing":1}}})
        );
        let errs: Vec<String> = validate(&schema(), &o)
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(
            errs,
            vec![
                "spec.name: Invalid value: \"A1\": spec.name in body should match '^[a-z]+$'".to_string(),
                "spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1".to_string(),
            ]
        );
    }

    #[test]
    fn cel_rules_with_old_self() {
        let s = json!({"type":"object","x-kubernetes-validations":[{"rule":"self.metadata.name == 'flux'","message":"only flux"}],
            "properties":{"spec":{"type":"object","properties":{"n":{"type":"string","x-kubernetes-validations":[{"rule":"self == oldSelf","message":"immutable"}]}}}}});
        let o = json!({"metadata":{"name":"x"},"spec":{"n":"a"}});
        let e: Vec<String> = cel(&s, &o, None, "g/v1", "g", "K")
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(
            e,
            vec!["<nil>: Invalid value: \"object\": only flux".to_string()]
        );
        let old = json!({"metadata":{"name":"flux"},"spec":{"n":"a"}});
        let new = json!({"metadata":{"name":"flux"},"spec":{"n":"b"}});
        let e: Vec<String> = cel(&s, &new, Some(&old), "g/v1", "g", "K")
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(
            e,
            vec!["spec.n: Invalid value: \"string\": immutable".to_string()]
        );
    }
}
