//! Semantic equality and field-level diffs of open values: kustomize patch strings, ResourceSet
//! inputs, resources and templates.
//!
//! - JSON values compare equal regardless of map key order; numbers compare by value (`1` equals
//!   `1.0`); in maps a `null` member equals an absent one.
//! - YAML strings compare document by document after parsing, so formatting, quoting of ordinary
//!   scalars, comments, key order and a leading `---` do not matter.
//! - The operator's template delimiters `<< … >>` pass through untouched: a scalar containing
//!   them is compared as text, **and** its quoting is compared too (plain or quoted), because
//!   after rendering `replicas: << inputs.n >>` is a number and `replicas: "<< inputs.n >>"` a
//!   string.
//! - A template that is not valid YAML before rendering (control lines such as
//!   `<<- range $x := inputs.list >>`, or a delimiter in key position that YAML reads
//!   differently) falls back to a whitespace-normalised textual comparison: trailing spaces, blank
//!   lines and the line-ending style do not matter, indentation and everything else does.
//!
//! Pure: no I/O, nothing else from this crate.

use std::fmt;

use serde_json::Value;
use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle};

/// Why a YAML string could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SemanticError {
    /// The string is not valid (multi-document) YAML.
    #[error("parsing YAML: {0}")]
    ParseYaml(String),
}

/// Parses a (multi-document) YAML string into JSON values, skipping empty documents.
///
/// # Errors
///
/// [`SemanticError::ParseYaml`] with the parser's message.
pub fn parse_yaml_documents(text: &str) -> Result<Vec<Value>, SemanticError> {
    serde_saphyr::from_multiple::<Value>(text).map_err(|e| SemanticError::ParseYaml(e.to_string()))
}

/// Semantic equality of JSON values (see the module documentation).
pub fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => numbers_equal(x, y),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(l, r)| values_equal(l, r))
        }
        (Value::Object(x), Value::Object(y)) => {
            let present = |m: &serde_json::Map<String, Value>, k: &str| {
                m.get(k).is_some_and(|v| !v.is_null())
            };
            x.iter()
                .filter(|(_, v)| !v.is_null())
                .all(|(k, v)| y.get(k).is_some_and(|w| values_equal(v, w)))
                && y.iter()
                    .filter(|(_, v)| !v.is_null())
                    .all(|(k, _)| present(x, k))
        }
        _ => a == b,
    }
}

fn numbers_equal(x: &serde_json::Number, y: &serde_json::Number) -> bool {
    if let (Some(l), Some(r)) = (x.as_i64(), y.as_i64()) {
        return l == r;
    }
    if let (Some(l), Some(r)) = (x.as_u64(), y.as_u64()) {
        return l == r;
    }
    match (x.as_f64(), y.as_f64()) {
        (Some(l), Some(r)) => l == r,
        _ => false,
    }
}

/// A YAML template read for comparison: its documents, and the template scalars with their
/// quoting (sorted, so key order does not matter).
#[derive(Debug)]
struct ParsedTemplate {
    documents: Vec<Value>,
    template_scalars: Vec<(String, bool)>,
}

fn is_template(text: &str) -> bool {
    text.find("<<")
        .is_some_and(|start| text[start..].contains(">>"))
}

fn parse_template(text: &str) -> Result<ParsedTemplate, SemanticError> {
    let documents = parse_yaml_documents(text)?;
    let mut template_scalars = Vec::new();
    if is_template(text) {
        for event in Parser::new_from_str(text) {
            let (event, _) = event.map_err(|e| SemanticError::ParseYaml(e.to_string()))?;
            if let Event::Scalar(value, style, _, _) = event
                && is_template(&value)
            {
                template_scalars.push((value.into_owned(), style == ScalarStyle::Plain));
            }
        }
        template_scalars.sort();
    }
    Ok(ParsedTemplate {
        documents,
        template_scalars,
    })
}

/// Whitespace normalisation for the textual fallback: line endings unified, trailing spaces and
/// blank lines dropped, a leading `---` and a trailing `...` marker dropped.
pub fn normalize_text(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect();
    let start = usize::from(lines.first() == Some(&"---"));
    let end = lines.len() - usize::from(lines.len() > start && lines.last() == Some(&"..."));
    lines[start..end].join("\n")
}

/// Semantic equality of two (multi-document) YAML strings, template-aware, with the textual
/// fallback described in the module documentation.
pub fn yaml_equal(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (parse_template(a), parse_template(b)) {
        (Ok(x), Ok(y)) => {
            x.documents.len() == y.documents.len()
                && x.documents
                    .iter()
                    .zip(&y.documents)
                    .all(|(l, r)| values_equal(l, r))
                && x.template_scalars == y.template_scalars
        }
        _ => normalize_text(a) == normalize_text(b),
    }
}

/// One step of a [`FieldPath`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathSegment {
    /// A map member, by API name.
    Field(String),
    /// A list element.
    Index(usize),
}

/// Where a difference is, in API field names (`kustomize.patches[0].patch`).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FieldPath(pub Vec<PathSegment>);

impl FieldPath {
    /// A path of fields only (`FieldPath::fields(&["cluster", "size"])`).
    pub fn fields(names: &[&str]) -> Self {
        Self(
            names
                .iter()
                .map(|n| PathSegment::Field((*n).to_owned()))
                .collect(),
        )
    }

    fn child(&self, segment: PathSegment) -> Self {
        let mut segments = self.0.clone();
        segments.push(segment);
        Self(segments)
    }

    /// The path with every index written `[*]`, for matching against patterns.
    pub fn pattern(&self) -> String {
        self.render(true)
    }

    fn render(&self, wildcard: bool) -> String {
        let mut out = String::new();
        for segment in &self.0 {
            match segment {
                PathSegment::Field(name) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(name);
                }
                PathSegment::Index(i) if wildcard => out.push_str("[*]"),
                PathSegment::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(false))
    }
}

/// One difference between a desired and a live value.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldChange {
    /// Where.
    pub path: FieldPath,
    /// The desired value; `None` when the field is absent from the desired value.
    pub desired: Option<Value>,
    /// The live value; `None` when the field is absent from the live value.
    pub live: Option<Value>,
}

/// Which paths [`diff_values`] treats specially, as patterns with `[*]` for indices.
#[derive(Clone, Copy, Debug, Default)]
pub struct DiffOptions<'a> {
    /// String fields holding YAML, compared with [`yaml_equal`].
    pub yaml_strings: &'a [&'a str],
    /// Fields reported as one change when anything inside them differs (sets, lists whose
    /// elements have no identity).
    pub atomic: &'a [&'a str],
}

/// The differences between `desired` and `live`, field by field, in path order. Lists of equal
/// length are compared element by element; lists of different length are one change.
pub fn diff_values(desired: &Value, live: &Value, options: &DiffOptions<'_>) -> Vec<FieldChange> {
    let mut out = Vec::new();
    diff_at(
        &FieldPath::default(),
        Some(desired),
        Some(live),
        options,
        &mut out,
    );
    out
}

fn diff_at(
    path: &FieldPath,
    desired: Option<&Value>,
    live: Option<&Value>,
    options: &DiffOptions<'_>,
    out: &mut Vec<FieldChange>,
) {
    let desired = desired.filter(|v| !v.is_null());
    let live = live.filter(|v| !v.is_null());
    let change = || FieldChange {
        path: path.clone(),
        desired: desired.cloned(),
        live: live.cloned(),
    };
    let pattern = path.pattern();
    let (Some(d), Some(l)) = (desired, live) else {
        if desired.is_some() || live.is_some() {
            out.push(change());
        }
        return;
    };
    if options.atomic.contains(&pattern.as_str()) {
        if !values_equal(d, l) {
            out.push(change());
        }
        return;
    }
    if options.yaml_strings.contains(&pattern.as_str())
        && let (Value::String(x), Value::String(y)) = (d, l)
    {
        if !yaml_equal(x, y) {
            out.push(change());
        }
        return;
    }
    match (d, l) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                diff_at(
                    &path.child(PathSegment::Field(key.clone())),
                    x.get(key),
                    y.get(key),
                    options,
                    out,
                );
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (a, b)) in x.iter().zip(y).enumerate() {
                diff_at(
                    &path.child(PathSegment::Index(i)),
                    Some(a),
                    Some(b),
                    options,
                    out,
                );
            }
        }
        _ => {
            if !values_equal(d, l) {
                out.push(change());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_values_compare_semantically() {
        let cases = [
            (
                "key-order",
                json!({"a": 1, "b": {"c": [1, 2]}}),
                json!({"b": {"c": [1, 2]}, "a": 1}),
                true,
            ),
            (
                "int-float",
                json!({"replicas": 1}),
                json!({"replicas": 1.0}),
                true,
            ),
            (
                "null-is-absent",
                json!({"a": 1, "b": null}),
                json!({"a": 1}),
                true,
            ),
            ("list-order-matters", json!([1, 2]), json!([2, 1]), false),
            (
                "string-vs-number",
                json!({"a": "1"}),
                json!({"a": 1}),
                false,
            ),
            ("extra-key", json!({"a": 1}), json!({"a": 1, "b": 2}), false),
            ("different-number", json!(1.5), json!(1), false),
        ];
        for (name, a, b, want) in cases {
            assert_eq!(values_equal(&a, &b), want, "case {name}");
            assert_eq!(values_equal(&b, &a), want, "case {name} (swapped)");
        }
    }

    #[test]
    fn yaml_strings_compare_semantically() {
        let cases: &[(&str, &str, &str, bool)] = &[
            (
                "reformatted-patch",
                "- op: add\n  path: /spec/x\n  value: 1\n",
                "-   {op: add, path: \"/spec/x\", value: 1}   # comment\n",
                true,
            ),
            (
                "key-order-multi-doc",
                "apiVersion: v1\nkind: ConfigMap\n---\nkind: Secret\napiVersion: v1\n",
                "---\nkind: ConfigMap\napiVersion: v1\n---\napiVersion: v1\nkind: Secret\n",
                true,
            ),
            (
                "document-order-matters",
                "kind: A\n---\nkind: B\n",
                "kind: B\n---\nkind: A\n",
                false,
            ),
            (
                "value-change",
                "spec:\n  replicas: 2\n",
                "spec:\n  replicas: 3\n",
                false,
            ),
            (
                "template-scalars-reordered",
                "metadata:\n  name: << inputs.tenant >>\n  namespace: << inputs.ns >>\n",
                "metadata:\n    namespace: << inputs.ns >>\n    name: << inputs.tenant >>\n",
                true,
            ),
            (
                "template-quoting-matters",
                "spec:\n  replicas: << inputs.replicas >>\n",
                "spec:\n  replicas: \"<< inputs.replicas >>\"\n",
                false,
            ),
            (
                "template-single-vs-double-quotes",
                "name: '<< inputs.name >>'\n",
                "name: \"<< inputs.name >>\"\n",
                true,
            ),
            (
                "template-expression-changed",
                "name: << inputs.tenant >>\n",
                "name: << inputs.tenant | lower >>\n",
                false,
            ),
            (
                "control-lines-whitespace-only",
                "<<- range $t := inputs.tenants >>\nkind: Namespace   \n\n<<- end >>\n",
                "<<- range $t := inputs.tenants >>\r\nkind: Namespace\r\n<<- end >>",
                true,
            ),
            (
                "control-lines-indentation-matters",
                "<<- range $t := inputs.tenants >>\nmetadata:\n  name: x\n<<- end >>\n",
                "<<- range $t := inputs.tenants >>\nmetadata:\n    name: x\n<<- end >>\n",
                false,
            ),
            (
                "unparseable-vs-parseable",
                "a: [1, 2\n",
                "a: [1, 2]\n",
                false,
            ),
        ];
        for (name, a, b, want) in cases {
            assert_eq!(yaml_equal(a, b), *want, "case {name}");
            assert_eq!(yaml_equal(b, a), *want, "case {name} (swapped)");
        }
    }

    #[test]
    fn diffs_name_the_changed_fields() {
        let options = DiffOptions {
            yaml_strings: &["patches[*].patch"],
            atomic: &["components"],
        };
        let desired = json!({
            "cluster": {"size": "medium", "type": "kubernetes"},
            "components": ["a", "b", "c"],
            "patches": [{"patch": "a: 1\nb: 2\n"}, {"patch": "x: 1"}],
            "wait": true,
            "gone": null,
        });
        let live = json!({
            "cluster": {"size": "large", "type": "kubernetes"},
            "components": ["a", "c", "d"],
            "patches": [{"patch": "b: 2\na: 1\n"}, {"patch": "x: 2"}],
            "extra": "x",
        });
        let got: Vec<(String, Option<Value>, Option<Value>)> =
            diff_values(&desired, &live, &options)
                .into_iter()
                .map(|c| (c.path.to_string(), c.desired, c.live))
                .collect();
        assert_eq!(
            got,
            vec![
                (
                    "cluster.size".into(),
                    Some(json!("medium")),
                    Some(json!("large"))
                ),
                (
                    "components".into(),
                    Some(json!(["a", "b", "c"])),
                    Some(json!(["a", "c", "d"]))
                ),
                ("extra".into(), None, Some(json!("x"))),
                (
                    "patches[1].patch".into(),
                    Some(json!("x: 1")),
                    Some(json!("x: 2"))
                ),
                ("wait".into(), Some(json!(true)), None),
            ]
        );
        assert_eq!(diff_values(&desired, &desired, &options), vec![]);
    }

    #[test]
    fn lists_of_different_length_are_one_change() {
        let got = diff_values(
            &json!({"l": [1]}),
            &json!({"l": [1, 2]}),
            &DiffOptions::default(),
        );
        assert_eq!(
            got,
            vec![FieldChange {
                path: FieldPath::fields(&["l"]),
                desired: Some(json!([1])),
                live: Some(json!([1, 2])),
            }]
        );
    }

    #[test]
    fn text_normalisation() {
        assert_eq!(
            normalize_text("---\na: 1  \r\n\n\nb: 2\n...\n"),
            "a: 1\nb: 2"
        );
        assert_eq!(normalize_text(""), "");
        assert_eq!(normalize_text("---\n"), "");
    }
}
