//! `meta.k8s.io/v1` Table output, which kubectl asks for on `get`: Name and Age columns for every
//! kind plus a CRD's `additionalPrinterColumns` (simple JSONPath: dotted fields, `[n]` and
//! `[?(@.f=="v")]` filters), and the columns of the built-in printers for Namespace, ConfigMap,
//! Secret, Service and Deployment (other built-ins get Name and Age only). Depends on `registry` only.

use crate::registry::ResourceType;
use serde_json::{Value, json};

/// Kubernetes `duration.HumanDuration`, roughly.
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86400);
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        if s % 60 == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{}s", s % 60)
        }
    } else if h < 3 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{}m", m % 60)
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        if h % 24 == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{}h", h % 24)
        }
    } else if h < 24 * 365 * 2 {
        format!("{d}d")
    } else {
        format!("{}y", d / 365)
    }
}

fn age(obj: &Value) -> String {
    let Some(ts) = obj
        .pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str)
    else {
        return "<unknown>".into();
    };
    match ts.parse::<jiff::Timestamp>() {
        Ok(t) => human_duration(jiff::Timestamp::now().as_second() - t.as_second()),
        Err(_) => "<unknown>".into(),
    }
}

/// Evaluates the JSONPath subset used by printer columns.
pub fn json_path<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let p = path
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .trim_start_matches('$');
    let mut cur = obj;
    let mut rest = p;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            cur = cur.get(&r[..end])?;
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let inner = &r[..end];
            rest = &r[end + 1..];
            if let Some(filter) = inner.strip_prefix("?(@.").and_then(|f| f.strip_suffix(')')) {
                let (field, want) = filter.split_once("==")?;
                let want = want.trim().trim_matches('"').trim_matches('\'');
                cur = cur
                    .as_array()?
                    .iter()
                    .find(|it| it.get(field.trim()).and_then(Value::as_str) == Some(want))?;
            } else {
                let i: usize = inner.parse().ok()?;
                cur = cur.as_array()?.get(i)?;
            }
        } else {
            return None;
        }
    }
    Some(cur)
}

fn cell(v: Option<&Value>, ty: &str) -> Value {
    match v {
        None => Value::Null,
        Some(Value::String(s)) if ty == "date" => match s.parse::<jiff::Timestamp>() {
            Ok(t) => json!(human_duration(
                jiff::Timestamp::now().as_second() - t.as_second()
            )),
            Err(_) => json!(s),
        },
        Some(x) => x.clone(),
    }
}

fn col(name: &str, ty: &str) -> Value {
    json!({"name": name, "type": ty, "format": "", "description": "", "priority": 0})
}

fn count(o: &Value, fields: &[&str]) -> Value {
    json!(
        fields
            .iter()
            .map(|f| o
                .get(*f)
                .and_then(Value::as_object)
                .map(|m| m.len())
                .unwrap_or(0))
            .sum::<usize>()
    )
}

fn int_at(o: &Value, p: &str) -> i64 {
    o.pointer(p).and_then(Value::as_i64).unwrap_or(0)
}

type Cell = fn(&Value) -> Value;

/// Kind-specific columns of the built-in printers (between Name and Age).
fn builtin_columns(rt: &ResourceType) -> Vec<(Value, Cell)> {
    if !rt.builtin {
        return Vec::new();
    }
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "namespaces") => vec![(col("Status", "string"), |o| {
            o.pointer("/status/phase").cloned().unwrap_or(json!(""))
        })],
        ("", "configmaps") => vec![(col("Data", "integer"), |o| {
            count(o, &["data", "binaryData"])
        })],
        ("", "secrets") => vec![
            (col("Type", "string"), |o| {
                o.get("type").cloned().unwrap_or(json!(""))
            }),
            (col("Data", "integer"), |o| count(o, &["data"])),
        ],
        ("", "services") => vec![
            (col("Type", "string"), |o| {
                o.pointer("/spec/type").cloned().unwrap_or(json!(""))
            }),
            (col("Cluster-IP", "string"), |o| {
                o.pointer("/spec/clusterIP")
                    .cloned()
                    .unwrap_or(json!("<none>"))
            }),
            (col("External-IP", "string"), |_| json!("<none>")),
            (col("Port(s)", "string"), |o| {
                let ports: Vec<String> = o
                    .pointer("/spec/ports")
                    .and_then(Value::as_array)
                    .map(|ps| {
                        ps.iter()
                            .map(|p| {
                                format!(
                                    "{}/{}",
                                    p["port"],
                                    p.get("protocol").and_then(Value::as_str).unwrap_or("TCP")
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                json!(if ports.is_empty() {
                    "<none>".to_string()
                } else {
                    ports.join(",")
                })
            }),
        ],
        ("apps", "deployments") => vec![
            (col("Ready", "string"), |o| {
                json!(format!(
                    "{}/{}",
                    int_at(o, "/status/readyReplicas"),
                    o.pointer("/spec/replicas")
                        .and_then(Value::as_i64)
                        .unwrap_or(1)
                ))
            }),
            (col("Up-to-date", "integer"), |o| {
                json!(int_at(o, "/status/updatedReplicas"))
            }),
            (col("Available", "integer"), |o| {
                json!(int_at(o, "/status/availableReplicas"))
            }),
        ],
        _ => Vec::new(),
    }
}

/// Builds a Table for a single object or a list.
pub fn table(rt: &ResourceType, v: &Value, is_list: bool) -> Value {
    let mut cols = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0}),
    ];
    let builtin = builtin_columns(rt);
    cols.extend(builtin.iter().map(|(c, _)| c.clone()));
    let custom: Vec<&Value> = rt.printer_columns.iter().collect();
    for c in &custom {
        cols.push(json!({"name": c["name"], "type": c.get("type").cloned().unwrap_or(json!("string")),
            "format": c.get("format").cloned().unwrap_or(json!("")), "description": c.get("description").cloned().unwrap_or(json!("")),
            "priority": c.get("priority").cloned().unwrap_or(json!(0))}));
    }
    // As the real API server: built-in kinds and CRDs without additionalPrinterColumns get an
    // Age column; a CRD that lists its columns gets exactly those (the defaulting that adds Age
    // runs only when the list is empty).
    let has_age = !custom.is_empty();
    if !has_age {
        cols.push(json!({"name": "Age", "type": "date", "format": "", "description": "CreationTimestamp is a timestamp representing the server time when this object was created.", "priority": 0}));
    }
    let row = |o: &Value| {
        let mut cells = vec![o.pointer("/metadata/name").cloned().unwrap_or(Value::Null)];
        cells.extend(builtin.iter().map(|(_, f)| f(o)));
        for c in &custom {
            let ty = c.get("type").and_then(Value::as_str).unwrap_or("string");
            cells.push(cell(
                c.get("jsonPath")
                    .and_then(Value::as_str)
                    .and_then(|p| json_path(o, p)),
                ty,
            ));
        }
        if !has_age {
            cells.push(json!(age(o)));
        }
        json!({"cells": cells, "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o.get("metadata").cloned().unwrap_or(json!({}))}})
    };
    let (rows, md) = if is_list {
        (
            v["items"]
                .as_array()
                .map(|a| a.iter().map(row).collect())
                .unwrap_or_default(),
            v["metadata"].clone(),
        )
    } else {
        (
            vec![row(v)],
            json!({"resourceVersion": v.pointer("/metadata/resourceVersion").cloned().unwrap_or(json!(""))}),
        )
    };
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": md, "columnDefinitions": cols, "rows": rows})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_path_subset() {
        let o = json!({"status":{"conditions":[{"type":"A","status":"False"},{"type":"Ready","status":"True"}]}});
        assert_eq!(
            json_path(&o, ".status.conditions[?(@.type==\"Ready\")].status"),
            Some(&json!("True"))
        );
        assert_eq!(
            json_path(&o, ".status.conditions[0].type"),
            Some(&json!("A"))
        );
        assert_eq!(json_path(&o, ".spec.x"), None);
    }

    #[test]
    fn durations() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(125), "2m5s");
        assert_eq!(human_duration(3600 * 5 + 60), "5h1m");
        assert_eq!(human_duration(86400 * 3), "3d");
    }
}
