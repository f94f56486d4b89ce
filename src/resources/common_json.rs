//! The API-JSON ↔ Terraform value mapping: API field paths as attribute paths, snake_case and
//! camelCase names, JSON to and from raw values, and the subset test (with Kubernetes quantities
//! compared as the API server canonicalises them) that tells server additions from changes.

use crate::framework::path::AttrPath;
use crate::framework::value::{RawValue, Type};

/// Converts an API field path (`spec.sync.interval`, `spec.kustomize.patches[0].patch`,
/// `metadata.name`) into the attribute path of a resource whose attributes are the snake_case
/// forms of the spec's fields, with `metadata.name`/`metadata.namespace` as `name`/`namespace`.
pub fn api_field_to_path(field: &str) -> Option<AttrPath> {
    let rest = if let Some(rest) = field.strip_prefix("spec.") {
        rest
    } else if let Some(rest) = field.strip_prefix("metadata.") {
        return matches!(rest, "name" | "namespace").then(|| AttrPath::attr(rest));
    } else if field == "spec" || field.is_empty() {
        return None;
    } else {
        field
    };
    let mut path = AttrPath::root();
    for segment in rest.split('.') {
        let (name, indexes) = segment.split_once('[').unwrap_or((segment, ""));
        if name.is_empty() {
            return None;
        }
        path = path.then_attr(snake_case(name));
        for index in indexes.split('[') {
            let index = index.trim_end_matches(']');
            if index.is_empty() {
                continue;
            }
            path = path.then_index(index.parse().ok()?);
        }
    }
    Some(path)
}

/// `pullSecret` → `pull_secret`.
pub fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            if !out.is_empty() {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `pull_secret` → `pullSecret`.
pub fn camel_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// An API object's JSON (camelCase field names) as a Terraform value of type `ty`, whose object
/// attributes are the snake_case forms of the API names; map keys are kept as they are. Fields
/// the type does not have are dropped, missing ones are null.
pub fn api_json_to_value(json: &serde_json::Value, ty: &Type) -> RawValue {
    use serde_json::Value as J;
    match (json, ty) {
        (J::Null, _) => RawValue::Null,
        (J::Object(fields), Type::Object(attributes)) => RawValue::Object(
            attributes
                .iter()
                .map(|(name, attr_ty)| {
                    let value = fields
                        .get(&camel_case(name))
                        .map_or(RawValue::Null, |v| api_json_to_value(v, attr_ty));
                    (name.clone(), value)
                })
                .collect(),
        ),
        (J::Object(fields), Type::Map(element)) => RawValue::Map(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), api_json_to_value(v, element)))
                .collect(),
        ),
        (J::Array(items), Type::List(element)) => RawValue::List(
            items
                .iter()
                .map(|v| api_json_to_value(v, element))
                .collect(),
        ),
        (J::Array(items), Type::Set(element)) => RawValue::Set(
            items
                .iter()
                .map(|v| api_json_to_value(v, element))
                .collect(),
        ),
        (other, ty) => RawValue::from_json(other, ty).unwrap_or(RawValue::Null),
    }
}

/// A wholly known Terraform value (snake_case object attributes) as API JSON: object attributes
/// in camelCase, null attributes omitted, map keys kept.
pub fn value_to_api_json(value: &RawValue) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        RawValue::Object(fields) => J::Object(
            fields
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (camel_case(k), value_to_api_json(v)))
                .collect(),
        ),
        RawValue::Map(entries) => J::Object(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), value_to_api_json(v)))
                .collect(),
        ),
        RawValue::List(items) | RawValue::Set(items) | RawValue::Tuple(items) => {
            J::Array(items.iter().map(value_to_api_json).collect())
        }
        RawValue::Bool(b) => J::Bool(*b),
        RawValue::String(text) => J::String(text.clone()),
        RawValue::Number(n) => n
            .as_i64()
            .map(J::from)
            .or_else(|| {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map(J::Number)
            })
            .unwrap_or(J::Null),
        RawValue::Null | RawValue::Unknown(_) => J::Null,
    }
}

/// Whether every field of `desired` (an object as we apply it) has the same value in `live`
/// (the object as stored, which also carries server defaults and other managers' fields). Lists
/// must have the same length; elements compare in order, except in lists of objects (ports,
/// containers, env, tolerations: lists the API server merges by key, whose order a server-side
/// apply may change when items come back), where each wanted element must match a distinct live
/// one in any order; numbers compare by value; two strings
/// that are the same resource quantity are equal (the API server stores quantities in canonical
/// form: `cpu: 2000m` reads back as `"2"`, `memory: 1024Mi` as `"1Gi"`).
pub fn is_subset(desired: &serde_json::Value, live: &serde_json::Value) -> bool {
    use serde_json::Value as J;
    match (desired, live) {
        (J::Object(want), J::Object(have)) => want
            .iter()
            .all(|(k, v)| v.is_null() || have.get(k).is_some_and(|h| is_subset(v, h))),
        (J::Array(want), J::Array(have)) if want.len() != have.len() => false,
        (J::Array(want), J::Array(have)) if want.iter().all(J::is_object) => {
            let mut used = vec![false; have.len()];
            want.iter().all(|w| {
                let found = have
                    .iter()
                    .enumerate()
                    .find(|(i, h)| !used[*i] && is_subset(w, h))
                    .map(|(i, _)| i);
                found.map(|i| used[i] = true).is_some()
            })
        }
        (J::Array(want), J::Array(have)) => want.iter().zip(have).all(|(w, h)| is_subset(w, h)),
        (J::Number(a), J::Number(b)) => a.as_f64() == b.as_f64(),
        (J::String(a), J::String(b)) if a != b => {
            quantity_nanos(a).is_some_and(|x| Some(x) == quantity_nanos(b))
        }
        (a, b) => a == b,
    }
}

/// A Kubernetes resource quantity (`1.5`, `2000m`, `64Mi`, `1e3`, `2k`) in billionths, exactly;
/// `None` for anything else (or out of range).
fn quantity_nanos(text: &str) -> Option<i128> {
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let end = body
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(body.len());
    let (number, suffix) = body.split_at(end);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
        return None;
    }
    let digits: i128 = format!("{whole}{fraction}").parse().ok()?;
    let scale = i32::try_from(fraction.len()).ok()?;
    let (exp10, binary): (i32, u32) = match suffix {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        other => {
            let e = other.strip_prefix(['e', 'E'])?;
            (e.parse().ok()?, 0)
        }
    };
    let power = 9 + exp10 - scale;
    let mut value = digits.checked_mul(1_i128.checked_shl(binary)?)?;
    if power >= 0 {
        value = value.checked_mul(10_i128.checked_pow(u32::try_from(power).ok()?)?)?;
    } else {
        let divisor = 10_i128.checked_pow(u32::try_from(-power).ok()?)?;
        if value % divisor != 0 {
            return None; // finer than a nano: not something the server rewrites
        }
        value /= divisor;
    }
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use std::collections::BTreeMap;

    #[test]
    fn quantities_compare_as_the_api_server_canonicalises_them() {
        use serde_json::json;
        // (as applied, as a real kube-apiserver stores it, equal?)
        let cases = [
            ("2000m", "2", true),
            ("1024Mi", "1Gi", true),
            ("0.5", "500m", true),
            ("1e3", "1k", true),
            ("64Mi", "64Mi", true),
            ("100m", "0.1", true),
            ("2000m", "3", false),
            ("1Gi", "1G", false),
            ("2000m", "2000", false),
            ("v2", "2", false),
            ("flux-system", "flux", false),
        ];
        for (applied, stored, equal) in cases {
            let desired = json!({"resources": {"limits": {"cpu": applied}}});
            let live = json!({"resources": {"limits": {"cpu": stored}}, "other": 1});
            assert_eq!(is_subset(&desired, &live), equal, "{applied} vs {stored}");
        }
    }

    #[test]
    fn api_fields_become_attribute_paths() {
        let cases = [
            (
                "spec.sync.interval",
                Some(AttrPath::attr("sync").then_attr("interval")),
            ),
            (
                "spec.distribution.imagePullSecret",
                Some(AttrPath::attr("distribution").then_attr("image_pull_secret")),
            ),
            (
                "spec.kustomize.patches[1].patch",
                Some(
                    AttrPath::attr("kustomize")
                        .then_attr("patches")
                        .then_index(1)
                        .then_attr("patch"),
                ),
            ),
            ("metadata.name", Some(AttrPath::attr("name"))),
            ("metadata.labels", None),
            ("spec", None),
            ("", None),
        ];
        for (field, expected) in cases {
            assert_eq!(api_field_to_path(field), expected, "{field}");
        }
    }

    #[test]
    fn api_json_round_trips_through_snake_case_values() {
        let ty = Type::object([
            ("pull_secret", Type::String),
            ("labels", Type::map(Type::String)),
            ("shards", Type::list(Type::String)),
            ("missing", Type::Bool),
        ]);
        let json = serde_json::json!({
            "pullSecret": "creds",
            "labels": {"app.kubernetes.io/part_of": "x"},
            "shards": ["a", "b"],
            "extra": 1
        });
        let value = api_json_to_value(&json, &ty);
        assert_eq!(
            value,
            RawValue::object([
                ("pull_secret", RawValue::string("creds")),
                (
                    "labels",
                    RawValue::Map(BTreeMap::from([(
                        "app.kubernetes.io/part_of".to_owned(),
                        RawValue::string("x")
                    )]))
                ),
                (
                    "shards",
                    RawValue::List(vec![RawValue::string("a"), RawValue::string("b")])
                ),
                ("missing", RawValue::Null),
            ])
        );
        let mut expected = json;
        if let Some(map) = expected.as_object_mut() {
            map.remove("extra");
        }
        assert_eq!(value_to_api_json(&value), expected);
    }

    #[test]
    fn subset_ignores_server_additions_but_not_changes() {
        let desired = serde_json::json!({"spec": {"replicas": 1, "containers": [{"name": "m", "env": [{"name": "A", "value": "1"}]}]}});
        let live = serde_json::json!({"spec": {"replicas": 1.0, "strategy": {}, "containers": [{"name": "m", "imagePullPolicy": "IfNotPresent", "env": [{"name": "A", "value": "1"}]}]}});
        assert!(is_subset(&desired, &live));
        let changed = serde_json::json!({"spec": {"replicas": 1, "containers": [{"name": "m", "env": [{"name": "A", "value": "2"}]}]}});
        assert!(!is_subset(&desired, &changed));
        let removed =
            serde_json::json!({"spec": {"replicas": 1, "containers": [{"name": "m", "env": []}]}});
        assert!(!is_subset(&desired, &removed));
        // Keyed lists (ports) may come back in another order; plain lists (args) may not.
        let ports = serde_json::json!({"ports": [{"name": "web", "port": 9080}, {"name": "http", "port": 8080}]});
        let reordered = serde_json::json!({"ports": [{"name": "http", "port": 8080, "protocol": "TCP"}, {"name": "web", "port": 9080, "protocol": "TCP"}]});
        assert!(is_subset(&ports, &reordered));
        let twice = serde_json::json!({"ports": [{"name": "http", "port": 8080}, {"name": "http", "port": 8080}]});
        assert!(!is_subset(&ports, &twice));
        let args = serde_json::json!({"args": ["--a", "--b"]});
        assert!(!is_subset(
            &args,
            &serde_json::json!({"args": ["--b", "--a"]})
        ));
    }
}
