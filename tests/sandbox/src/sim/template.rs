//! ResourceSet rendering for the simulated operator: the Go `text/template` subset with `<<` `>>`
//! delimiters that the simulator understands, input sets (`inputs.provider`; `inputs.id` only
//! from providers), the
//! Flatten and Permute input strategies, and de-duplication of generated objects.
//!
//! Simulated: field access `inputs.a.b` (missing keys are errors, as with `missingkey=error`),
//! literals, pipelines `|`, trim markers `<<-`/`->>`, comments, and the functions `quote`,
//! `squote`, `default`, `upper`, `lower`, `title`, `trim`, `replace`, `toYaml`, `toJson`,
//! `indent`, `nindent`, `slugify`. Not simulated (rendering fails with `BuildFailed`): actions
//! (`if`, `range`, `with`, `define`, `template`, `block`), variables, parenthesised calls and
//! every other sprig function.
//!
//! Pure code: no I/O, depends only on `inventory` for checksums.

use serde_json::{Map, Value};

/// Template rendering errors, named after the step that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A `<<` without its closing `>>`.
    #[error("template: unclosed action at offset {0}")]
    Unclosed(usize),
    /// A template construct the simulator does not implement.
    #[error("template: '{0}' is not simulated by kube-sandbox")]
    NotSimulated(String),
    /// A field path that does not exist in the input set (`missingkey=error`).
    #[error("template: map has no entry for key \"{0}\"")]
    MissingKey(String),
    /// A malformed action.
    #[error("template: bad action '{0}'")]
    BadAction(String),
    /// A function called with the wrong arguments.
    #[error("template: wrong arguments for function '{0}'")]
    BadArguments(String),
    /// The rendered text is not YAML.
    #[error("template: rendered YAML is invalid: {0}")]
    ParseYaml(String),
    /// A generated document is not a Kubernetes object.
    #[error(
        "template: generated document is not an object with apiVersion, kind and metadata.name"
    )]
    NotAnObject,
}

/// Renders a template string against an input set (`inputs` in the template).
pub fn render_str(template: &str, inputs: &Value) -> Result<String, TemplateError> {
    let mut out = String::new();
    let mut rest = template;
    let mut offset = 0;
    while let Some(start) = rest.find("<<") {
        let mut before = &rest[..start];
        let after_open = &rest[start + 2..];
        let trim_left =
            after_open.starts_with('-') && after_open[1..].starts_with(|c: char| c.is_whitespace());
        if trim_left {
            before = before.trim_end();
        }
        out.push_str(before);
        let body_start = if trim_left { 1 } else { 0 };
        let Some(end) = after_open.find(">>") else {
            return Err(TemplateError::Unclosed(offset + start));
        };
        let mut body = &after_open[body_start..end];
        let trim_right =
            body.ends_with('-') && body[..body.len() - 1].ends_with(char::is_whitespace);
        if trim_right {
            body = &body[..body.len() - 1];
        }
        out.push_str(&eval_action(body.trim(), inputs)?);
        let consumed = start + 2 + end + 2;
        rest = &rest[consumed..];
        offset += consumed;
        if trim_right {
            let trimmed = rest.trim_start();
            offset += rest.len() - trimmed.len();
            rest = trimmed;
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn eval_action(body: &str, inputs: &Value) -> Result<String, TemplateError> {
    if body.starts_with("/*") {
        return Ok(String::new());
    }
    let first = body.split_whitespace().next().unwrap_or_default();
    if matches!(
        first,
        "if" | "else"
            | "end"
            | "range"
            | "with"
            | "define"
            | "template"
            | "block"
            | "break"
            | "continue"
    ) || body.starts_with('$')
        || body.contains('(')
    {
        return Err(TemplateError::NotSimulated(body.to_string()));
    }
    let mut value: Option<Value> = None;
    for (i, cmd) in split_outside_quotes(body, '|').iter().enumerate() {
        let tokens = tokenize(cmd.trim())?;
        let Some(head) = tokens.first() else {
            return Err(TemplateError::BadAction(body.to_string()));
        };
        let args = tokens[1..]
            .iter()
            .map(|t| operand(t, inputs))
            .collect::<Result<Vec<_>, _>>()?;
        value = Some(match head {
            Token::Ident(name) if is_function(name) => {
                let mut args = args;
                if i > 0 {
                    args.push(value.take().unwrap_or(Value::Null));
                }
                call(name, args)?
            }
            Token::Ident(name)
                if !name.starts_with("inputs")
                    && !name.starts_with(".inputs")
                    && !matches!(name.as_str(), "true" | "false" | "nil") =>
            {
                return Err(TemplateError::NotSimulated(name.clone()));
            }
            other if i == 0 && args.is_empty() => operand(other, inputs)?,
            _ => return Err(TemplateError::BadAction(body.to_string())),
        });
    }
    Ok(print(&value.unwrap_or(Value::Null)))
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Str(String),
    Num(Value),
    Ident(String),
}

fn split_outside_quotes(s: &str, sep: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in s.chars() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' && q == '"' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None if c == '"' || c == '`' => quote = Some(c),
            None if c == sep => {
                parts.push(String::new());
                continue;
            }
            None => {}
        }
        if let Some(last) = parts.last_mut() {
            last.push(c);
        }
    }
    parts
}

fn tokenize(cmd: &str) -> Result<Vec<Token>, TemplateError> {
    let mut tokens = Vec::new();
    let mut chars = cmd.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if c == '"' || c == '`' {
            chars.next();
            let mut s = String::new();
            let mut closed = false;
            while let Some(d) = chars.next() {
                if d == c {
                    closed = true;
                    break;
                }
                if d == '\\' && c == '"' {
                    match chars.next() {
                        Some('n') => s.push('\n'),
                        Some('t') => s.push('\t'),
                        Some(e) => s.push(e),
                        None => break,
                    }
                    continue;
                }
                s.push(d);
            }
            if !closed {
                return Err(TemplateError::BadAction(cmd.to_string()));
            }
            tokens.push(Token::Str(s));
            continue;
        }
        let mut word = String::new();
        while let Some(&d) = chars.peek() {
            if d.is_whitespace() {
                break;
            }
            word.push(d);
            chars.next();
        }
        if let Ok(n) = word.parse::<i64>() {
            tokens.push(Token::Num(Value::from(n)));
        } else if let Ok(f) = word.parse::<f64>() {
            tokens.push(Token::Num(Value::from(f)));
        } else {
            tokens.push(Token::Ident(word));
        }
    }
    Ok(tokens)
}

fn is_function(name: &str) -> bool {
    matches!(
        name,
        "quote"
            | "squote"
            | "default"
            | "upper"
            | "lower"
            | "title"
            | "trim"
            | "replace"
            | "toYaml"
            | "toJson"
            | "indent"
            | "nindent"
            | "slugify"
    )
}

fn operand(tok: &Token, inputs: &Value) -> Result<Value, TemplateError> {
    match tok {
        Token::Str(s) => Ok(Value::String(s.clone())),
        Token::Num(n) => Ok(n.clone()),
        Token::Ident(w) if w == "true" || w == "false" => Ok(Value::Bool(w == "true")),
        Token::Ident(w) if w == "nil" => Ok(Value::Null),
        Token::Ident(w) => {
            let path = w.strip_prefix('.').unwrap_or(w);
            let mut segs = path.split('.');
            if segs.next() != Some("inputs") {
                return Err(TemplateError::NotSimulated(w.clone()));
            }
            let mut cur = inputs;
            for seg in segs {
                cur = cur
                    .as_object()
                    .and_then(|m| m.get(seg))
                    .ok_or_else(|| TemplateError::MissingKey(seg.to_string()))?;
            }
            Ok(cur.clone())
        }
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        Value::Number(n) => n.as_f64() == Some(0.0),
    }
}

fn str_arg(name: &str, v: &Value) -> Result<String, TemplateError> {
    match v {
        Value::Object(_) | Value::Array(_) => Err(TemplateError::BadArguments(name.to_string())),
        other => Ok(print(other)),
    }
}

fn indent_lines(n: usize, s: &str) -> String {
    let pad = " ".repeat(n);
    s.split('\n')
        .map(|l| format!("{pad}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn call(name: &str, args: Vec<Value>) -> Result<Value, TemplateError> {
    let bad = || TemplateError::BadArguments(name.to_string());
    let s = |v: &Value| str_arg(name, v);
    Ok(match (name, args.as_slice()) {
        ("quote", vs) => Value::String(
            vs.iter()
                .filter(|v| !v.is_null())
                .map(|v| s(v).map(|t| Value::String(t).to_string()))
                .collect::<Result<Vec<_>, _>>()?
                .join(" "),
        ),
        ("squote", vs) => Value::String(
            vs.iter()
                .filter(|v| !v.is_null())
                .map(|v| s(v).map(|t| format!("'{t}'")))
                .collect::<Result<Vec<_>, _>>()?
                .join(" "),
        ),
        ("default", [d, v]) => {
            if is_empty(v) {
                d.clone()
            } else {
                v.clone()
            }
        }
        ("default", [d]) => d.clone(),
        ("upper", [v]) => Value::String(s(v)?.to_uppercase()),
        ("lower", [v]) => Value::String(s(v)?.to_lowercase()),
        ("title", [v]) => Value::String(
            s(v)?
                .split(' ')
                .map(|w| {
                    let mut c = w.chars();
                    c.next()
                        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                        .unwrap_or_default()
                })
                .collect::<Vec<_>>()
                .join(" "),
        ),
        ("trim", [v]) => Value::String(s(v)?.trim().to_string()),
        ("replace", [old, new, v]) => Value::String(s(v)?.replace(&s(old)?, &s(new)?)),
        ("toJson", [v]) => Value::String(v.to_string()),
        ("toYaml", [v]) => Value::String(
            serde_saphyr::to_string(v)
                .map_err(|_| bad())?
                .trim_end_matches('\n')
                .to_string(),
        ),
        ("indent", [n, v]) => {
            let n = n.as_u64().ok_or_else(bad)? as usize;
            Value::String(indent_lines(n, &s(v)?))
        }
        ("nindent", [n, v]) => {
            let n = n.as_u64().ok_or_else(bad)? as usize;
            Value::String(format!("\n{}", indent_lines(n, &s(v)?)))
        }
        ("slugify", [v]) => Value::String(slugify(&s(v)?)),
        _ => return Err(bad()),
    })
}

/// Lower-cases and replaces every run of characters outside `[a-z0-9]` with one `-`.
pub fn slugify(s: &str) -> String {
    let mut out = String::new();
    let mut dash = false;
    for c in s.to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            if dash && !out.is_empty() {
                out.push('-');
            }
            dash = false;
            out.push(c);
        } else {
            dash = true;
        }
    }
    out
}

/// Prints a value the way Go's `text/template` does for the types inputs carry.
fn print(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".to_string(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) => format!("[{}]", a.iter().map(print).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let items: Vec<String> = keys
                .iter()
                .map(|k| format!("{k}:{}", print(&m[*k])))
                .collect();
            format!("map[{}]", items.join(" "))
        }
    }
}

/// Renders every string (keys and values) of a JSON tree. The operator renders the YAML form of
/// each resource (`JSONToYAML`, where such strings are plain scalars) and reads the result back,
/// so a rendered value is re-read as a YAML scalar: `3` becomes a number, `"a"` the string `a`,
/// an empty result null.
pub fn render_value(v: &Value, inputs: &Value) -> Result<Value, TemplateError> {
    Ok(match v {
        Value::String(s) if s.contains("<<") => {
            let r = render_str(s, inputs)?;
            match serde_saphyr::from_str::<Value>(&r) {
                Ok(
                    scalar @ (Value::Number(_) | Value::Bool(_) | Value::String(_) | Value::Null),
                ) => scalar,
                _ => Value::String(r),
            }
        }
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| render_value(x, inputs))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, x) in m {
                let key = if k.contains("<<") {
                    render_str(k, inputs)?
                } else {
                    k.clone()
                };
                out.insert(key, render_value(x, inputs)?);
            }
            Value::Object(out)
        }
        other => other.clone(),
    })
}

/// Builds the input sets of inline `spec.inputs`: each map gets `provider` (the ResourceSet
/// itself) and, unlike a provider's exported inputs, **no** `id` (upstream
/// `ResourceSet.GetInputs` in `api/v1/resourceset_types.go`), so a template reading
/// `inputs.id` fails with `missingkey=error`.
pub fn inline_input_sets(inputs: &[Value], provider: &Value) -> Vec<Value> {
    inputs
        .iter()
        .map(|i| {
            let mut m = i.as_object().cloned().unwrap_or_default();
            m.insert("provider".into(), provider.clone());
            Value::Object(m)
        })
        .collect()
}

/// Combines the input sets of several providers. Flatten concatenates them. Permute builds the
/// Cartesian product, each set nested under its provider's normalised name (lower case, `-`
/// and `.` replaced by `_`); providers without inputs are skipped unless
/// `include_empty_providers`, in which case the product is empty.
pub fn combine_inputs(
    strategy: &str,
    providers: &[(String, Vec<Value>)],
    include_empty_providers: bool,
) -> Vec<Value> {
    if strategy != "Permute" {
        return providers
            .iter()
            .flat_map(|(_, sets)| sets.iter().cloned())
            .collect();
    }
    let mut product: Vec<Map<String, Value>> = vec![Map::new()];
    for (name, sets) in providers {
        if sets.is_empty() {
            if include_empty_providers {
                return Vec::new();
            }
            continue;
        }
        let key = name.to_lowercase().replace(['-', '.'], "_");
        let mut next = Vec::new();
        for partial in &product {
            for set in sets {
                let mut m = partial.clone();
                m.insert(key.clone(), set.clone());
                next.push(m);
            }
        }
        product = next;
    }
    product
        .into_iter()
        .filter(|m| !m.is_empty())
        .map(Value::Object)
        .collect()
}

fn identity(o: &Value) -> Result<(String, String, String, String), TemplateError> {
    let s = |v: &Value| v.as_str().map(String::from);
    match (
        s(&o["apiVersion"]),
        s(&o["kind"]),
        s(&o["metadata"]["name"]),
    ) {
        (Some(a), Some(k), Some(n)) => Ok((
            a,
            k,
            o["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            n,
        )),
        _ => Err(TemplateError::NotAnObject),
    }
}

/// Renders `resources` and `resourcesTemplate` for every input set (once with empty inputs when
/// there are none), and de-duplicates by apiVersion, kind, namespace and name: an object from
/// `resources` wins over one from `resourcesTemplate`, otherwise the first one wins.
pub fn render_resources(
    resources: &[Value],
    resources_template: Option<&str>,
    input_sets: &[Value],
) -> Result<Vec<Value>, TemplateError> {
    let empty = [Value::Object(Map::new())];
    let sets: &[Value] = if input_sets.is_empty() {
        &empty
    } else {
        input_sets
    };
    let mut from_resources = Vec::new();
    let mut from_template = Vec::new();
    for set in sets {
        for r in resources {
            from_resources.push(render_value(r, set)?);
        }
        if let Some(t) = resources_template {
            let text = render_str(t, set)?;
            let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
                .map_err(|e| TemplateError::ParseYaml(e.to_string()))?;
            from_template.extend(docs.into_iter().filter(|d| !d.is_null()));
        }
    }
    let mut out: Vec<Value> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for o in from_resources.into_iter().chain(from_template) {
        if seen.insert(identity(&o)?) {
            out.push(o);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn inputs() -> Value {
        json!({"name": "app1", "replicas": 3, "enabled": true, "tags": {"team": "a"},
               "list": ["x", "y"], "empty": "", "id": "42",
               "provider": {"kind": "ResourceSet", "name": "apps"}})
    }

    #[test]
    fn renders_the_simulated_subset() {
        let cases: &[(&str, Result<&str, TemplateError>)] = &[
            ("plain", Ok("plain")),
            ("name: << inputs.name >>", Ok("name: app1")),
            ("<<inputs.name>>-<< inputs.id >>", Ok("app1-42")),
            ("<< .inputs.provider.kind >>", Ok("ResourceSet")),
            ("<< inputs.name | quote >>", Ok("\"app1\"")),
            ("<< quote inputs.replicas >>", Ok("\"3\"")),
            ("<< inputs.name | squote >>", Ok("'app1'")),
            ("<< inputs.empty | default \"dflt\" >>", Ok("dflt")),
            ("<< default \"dflt\" inputs.name >>", Ok("app1")),
            ("<< inputs.name | upper >>", Ok("APP1")),
            (
                "<< \"Hello World\" | lower | replace \" \" \"-\" >>",
                Ok("hello-world"),
            ),
            ("<< inputs.tags | toYaml >>", Ok("team: a")),
            ("<< inputs.tags | toJson >>", Ok("{\"team\":\"a\"}")),
            (
                "x:<< inputs.tags | toYaml | nindent 2 >>",
                Ok("x:\n  team: a"),
            ),
            ("<< inputs.list >>", Ok("[x y]")),
            ("<< inputs.enabled >>", Ok("true")),
            ("<< \"My App_1\" | slugify >>", Ok("my-app-1")),
            ("a  <<- inputs.name ->>  b", Ok("aapp1b")),
            ("<</* comment */>>x", Ok("x")),
            (
                "<< inputs.nope >>",
                Err(TemplateError::MissingKey("nope".into())),
            ),
            (
                "<< inputs.tags.nope | default \"x\" >>",
                Err(TemplateError::MissingKey("nope".into())),
            ),
            (
                "<< if inputs.enabled >>y<< end >>",
                Err(TemplateError::NotSimulated("if inputs.enabled".into())),
            ),
            (
                "<< printf \"%s\" inputs.name >>",
                Err(TemplateError::NotSimulated("printf".into())),
            ),
            (
                "<< inputs.name | sha256sum >>",
                Err(TemplateError::NotSimulated("sha256sum".into())),
            ),
            (
                "<< inputs.name inputs.id >>",
                Err(TemplateError::BadAction("inputs.name inputs.id".into())),
            ),
            ("<< inputs.name", Err(TemplateError::Unclosed(0))),
        ];
        for (tpl, want) in cases {
            let got = render_str(tpl, &inputs());
            assert_eq!(
                got.as_deref().map_err(Clone::clone),
                want.clone(),
                "template {tpl:?}"
            );
        }
    }

    #[test]
    fn renders_values_with_yaml_scalars() {
        let v = json!({"metadata": {"name": "<< inputs.name >>-cm", "labels": {"<< inputs.name >>": "x"}},
                       "spec": {"replicas": "<< inputs.replicas >>", "on": "<< inputs.enabled >>",
                                "s": "<< inputs.replicas | quote >>", "e": "<< inputs.empty >>",
                                "m": "<< inputs.tags | toJson >>"}});
        assert_eq!(
            render_value(&v, &inputs()).unwrap(),
            json!({"metadata": {"name": "app1-cm", "labels": {"app1": "x"}},
                   "spec": {"replicas": 3, "on": true, "s": "3", "e": null,
                            "m": "{\"team\":\"a\"}"}})
        );
    }

    /// Upstream `ResourceSet.GetInputs`: inline inputs carry `provider` but no `id`; with
    /// `missingkey=error`, `<< inputs.id >>` fails on them.
    #[test]
    fn inline_inputs_get_provider_but_no_id() {
        let provider = json!({"apiVersion": "fluxcd.controlplane.io/v1", "kind": "ResourceSet", "name": "apps", "namespace": "default"});
        let sets = inline_input_sets(&[json!({"name": "a"}), json!({"name": "b"})], &provider);
        assert_eq!(
            sets,
            vec![
                json!({"name": "a", "provider": provider}),
                json!({"name": "b", "provider": provider})
            ]
        );
        assert_eq!(
            render_str("app-<< inputs.id >>", &sets[0]),
            Err(TemplateError::MissingKey("id".into()))
        );
    }

    #[test]
    fn combines_inputs() {
        let p = vec![
            (
                "env-list".to_string(),
                vec![json!({"e": "dev"}), json!({"e": "prod"})],
            ),
            ("regions".to_string(), vec![json!({"r": "eu"})]),
            ("none".to_string(), vec![]),
        ];
        assert_eq!(
            combine_inputs("Flatten", &p, false),
            vec![
                json!({"e": "dev"}),
                json!({"e": "prod"}),
                json!({"r": "eu"})
            ]
        );
        assert_eq!(
            combine_inputs("Permute", &p, false),
            vec![
                json!({"env_list": {"e": "dev"}, "regions": {"r": "eu"}}),
                json!({"env_list": {"e": "prod"}, "regions": {"r": "eu"}}),
            ]
        );
        assert_eq!(combine_inputs("Permute", &p, true), Vec::<Value>::new());
    }

    #[test]
    fn renders_and_dedupes_resources() {
        let sets = vec![json!({"name": "a"}), json!({"name": "b"})];
        let resources = vec![json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cm-<< inputs.name >>"}, "data": {"from": "resources"}})];
        let tpl = "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-<< inputs.name >>\ndata:\n  from: template\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shared\n  namespace: apps\n";
        let got = render_resources(&resources, Some(tpl), &sets).unwrap();
        assert_eq!(
            got,
            vec![
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm-a"}, "data": {"from": "resources"}}),
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm-b"}, "data": {"from": "resources"}}),
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shared", "namespace": "apps"}}),
            ]
        );
        assert_eq!(
            render_resources(&[json!({"kind": "x"})], None, &[]),
            Err(TemplateError::NotAnObject)
        );
        let static_only = render_resources(
            &[json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}})],
            None,
            &[],
        )
        .unwrap();
        assert_eq!(static_only.len(), 1);
    }
}
