//! Plan helpers: the rules Terraform enforces on PlanResourceChange, as small functions over
//! [`RawValue`]s directed by a [`Schema`]. The dispatcher applies the generic ones (defaults,
//! computed → unknown on create, write-only → null); resources call the specific ones (keep the
//! prior value for unchanging computed attributes, requires-replace paths, semantic equality of
//! YAML/JSON strings).
//!
//! Terraform's rules (see `terraform-protocol.md` §4): a provider may only change attributes that
//! are null in configuration and computed; a configured value may be replaced only by the exact
//! prior-state value (the semantic-equality escape hatch); write-only attributes are null in
//! every plan and state.
//!
//! Must not depend on tonic, prost, kube, git2, or any other module of this crate.

use crate::framework::path::AttrPath;
use crate::framework::schema::{Attribute, AttributeType, Block, Nesting, Schema};
use crate::framework::value::RawValue;

/// The callback of [`walk_mut`]: path, schema, value (mutable) and the configuration value there.
pub type AttributeVisitor<'f> =
    dyn FnMut(&AttrPath, &Attribute, &mut RawValue, Option<&RawValue>) + 'f;

/// Visits every attribute of `block` present in `value` (depth first, parent before children),
/// with its path, its schema, its value (mutable) and the value at the same place in `config`
/// (`None` when the configuration has nothing there). Nested attributes and nested blocks are
/// entered when their value is a known object or collection of objects; set elements are
/// addressed by index.
pub fn walk_mut(
    block: &Block,
    value: &mut RawValue,
    config: Option<&RawValue>,
    f: &mut AttributeVisitor<'_>,
) {
    walk_block(block, &AttrPath::root(), value, config, f);
}

fn walk_block(
    block: &Block,
    path: &AttrPath,
    value: &mut RawValue,
    config: Option<&RawValue>,
    f: &mut AttributeVisitor<'_>,
) {
    walk_object(&block.attributes, path, value, config, f);
    let RawValue::Object(fields) = value else {
        return;
    };
    for nested in &block.blocks {
        let Some(nested_value) = fields.get_mut(&nested.type_name) else {
            continue;
        };
        let nested_path = path.clone().then_attr(nested.type_name.clone());
        let nested_config = config.and_then(|c| c.get_attr(&nested.type_name));
        walk_nesting(
            nested.nesting,
            &nested_path,
            nested_value,
            nested_config,
            &mut |p, v, c| {
                walk_block(&nested.block, p, v, c, f);
            },
        );
    }
}

fn walk_object(
    attributes: &[Attribute],
    path: &AttrPath,
    value: &mut RawValue,
    config: Option<&RawValue>,
    f: &mut AttributeVisitor<'_>,
) {
    let RawValue::Object(fields) = value else {
        return;
    };
    for attribute in attributes {
        let Some(field) = fields.get_mut(&attribute.name) else {
            continue;
        };
        let attr_path = path.clone().then_attr(attribute.name.clone());
        let attr_config = config.and_then(|c| c.get_attr(&attribute.name));
        f(&attr_path, attribute, field, attr_config);
        if let AttributeType::Nested {
            nesting,
            attributes: nested,
        } = &attribute.kind
        {
            walk_nesting(*nesting, &attr_path, field, attr_config, &mut |p, v, c| {
                walk_object(nested, p, v, c, f);
            });
        }
    }
}

/// Calls `f` on each object of a nested value: the value itself (single), each element
/// (list/set), or each entry (map).
fn walk_nesting(
    nesting: Nesting,
    path: &AttrPath,
    value: &mut RawValue,
    config: Option<&RawValue>,
    f: &mut dyn FnMut(&AttrPath, &mut RawValue, Option<&RawValue>),
) {
    match (nesting, value) {
        (Nesting::Single, value @ RawValue::Object(_)) => f(path, value, config),
        (Nesting::List | Nesting::Set, RawValue::List(items) | RawValue::Set(items)) => {
            let config_items = config.and_then(RawValue::as_elements);
            for (index, item) in items.iter_mut().enumerate() {
                let item_config = config_items.and_then(|c| c.get(index));
                let index = i64::try_from(index).unwrap_or(i64::MAX);
                f(&path.clone().then_index(index), item, item_config);
            }
        }
        (Nesting::Map, RawValue::Map(entries) | RawValue::Object(entries)) => {
            let config_entries = config.and_then(RawValue::as_entries);
            for (key, item) in entries.iter_mut() {
                let item_config = config_entries.and_then(|c| c.get(key));
                f(&path.clone().then_key(key.clone()), item, item_config);
            }
        }
        _ => {}
    }
}

/// Sets every write-only attribute to null (Terraform requires it in every plan, apply, read,
/// import and upgrade response).
#[must_use]
pub fn null_write_only(schema: &Schema, mut value: RawValue) -> RawValue {
    walk_mut(
        &schema.block,
        &mut value,
        None,
        &mut |_, attribute, v, _| {
            if attribute.write_only {
                *v = RawValue::Null;
            }
        },
    );
    value
}

/// The paths of write-only attributes that have a non-null value in `config`.
pub fn configured_write_only(schema: &Schema, config: &RawValue) -> Vec<AttrPath> {
    let mut found = Vec::new();
    let mut value = config.clone();
    walk_mut(
        &schema.block,
        &mut value,
        None,
        &mut |path, attribute, v, _| {
            if attribute.write_only && !v.is_null() {
                found.push(path.clone());
            }
        },
    );
    found
}

/// Fills in the schema defaults: every attribute with a default whose configuration is null gets
/// the default in `proposed`.
#[must_use]
pub fn apply_defaults(schema: &Schema, config: &RawValue, mut proposed: RawValue) -> RawValue {
    walk_mut(
        &schema.block,
        &mut proposed,
        Some(config),
        &mut |_, attribute, v, c| {
            if let Some(default) = &attribute.default
                && c.is_none_or(RawValue::is_null)
            {
                *v = default.clone();
            }
        },
    );
    proposed
}

/// Create: every computed attribute that is still null becomes unknown ("known after apply").
/// Leaving it null and filling it at apply would make Terraform report an inconsistent result.
#[must_use]
pub fn unknown_computed(schema: &Schema, mut proposed: RawValue) -> RawValue {
    walk_mut(
        &schema.block,
        &mut proposed,
        None,
        &mut |_, attribute, v, _| {
            if attribute.computed && v.is_null() {
                *v = RawValue::unknown();
            }
        },
    );
    proposed
}

/// Keeps the prior value ("use state for unknown") at each of `paths` where `planned` is
/// unknown and `prior` has a known value: for computed attributes that do not change on update.
#[must_use]
pub fn use_state_for_unknown(
    mut planned: RawValue,
    prior: &RawValue,
    paths: &[AttrPath],
) -> RawValue {
    for path in paths {
        let Some(prior_value) = prior.get_path(path) else {
            continue;
        };
        if let Some(slot) = planned.get_path_mut(path)
            && slot.is_unknown()
            && prior_value.is_wholly_known()
        {
            *slot = prior_value.clone();
        }
    }
    planned
}

/// The subset of `paths` whose value differs between `prior` and `planned` (unknown counts as a
/// difference). Empty on create (`prior` null): Terraform ignores requires-replace then.
pub fn requires_replace(prior: &RawValue, planned: &RawValue, paths: &[AttrPath]) -> Vec<AttrPath> {
    if prior.is_null() {
        return Vec::new();
    }
    paths
        .iter()
        .filter(|path| {
            let before = prior.get_path(path).cloned().unwrap_or_default();
            let after = planned.get_path(path).cloned().unwrap_or_default();
            !after.is_wholly_known() || !before.semantically_eq(&after)
        })
        .cloned()
        .collect()
}

/// Whether any of the top-level attributes `names` differs between `prior` and `planned`
/// (unknown counts as a difference). Both values are first shaped after the schema's type, so
/// that set elements compare without regard to order: Terraform may hand the same set back in
/// another order than the provider wrote it.
pub fn attributes_changed(
    schema: &Schema,
    prior: &RawValue,
    planned: &RawValue,
    names: &[&str],
) -> bool {
    let ty = schema.type_of();
    let prior = prior.clone().conform(&ty);
    let planned = planned.clone().conform(&ty);
    names.iter().any(|name| {
        let after = planned.get_attr(name).cloned().unwrap_or_default();
        !after.is_wholly_known()
            || !prior
                .get_attr(name)
                .cloned()
                .unwrap_or_default()
                .semantically_eq(&after)
    })
}

/// How a string attribute's content is compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StringFormat {
    /// A JSON document: key order and whitespace do not matter.
    Json,
    /// One or more YAML documents: formatting, quoting, key order and comments do not matter.
    Yaml,
}

/// Whether two strings hold the same document in `format`. Text that does not parse is equal
/// only to identical text.
pub fn strings_equivalent(a: &str, b: &str, format: StringFormat) -> bool {
    if a == b {
        return true;
    }
    match format {
        StringFormat::Json => {
            match (
                serde_json::from_str::<serde_json::Value>(a),
                serde_json::from_str::<serde_json::Value>(b),
            ) {
                (Ok(x), Ok(y)) => x == y,
                _ => false,
            }
        }
        StringFormat::Yaml => {
            match (
                serde_saphyr::from_multiple::<serde_json::Value>(a),
                serde_saphyr::from_multiple::<serde_json::Value>(b),
            ) {
                (Ok(x), Ok(y)) => strip_empty_documents(x) == strip_empty_documents(y),
                _ => false,
            }
        }
    }
}

fn strip_empty_documents(documents: Vec<serde_json::Value>) -> Vec<serde_json::Value> {
    documents.into_iter().filter(|d| !d.is_null()).collect()
}

/// `new` unless it is equivalent to `prior`, in which case the exact prior text: the one
/// replacement of a configured value Terraform accepts, and the way Read avoids spurious drift.
pub fn prefer_prior(prior: Option<&str>, new: String, format: StringFormat) -> String {
    match prior {
        Some(prior) if prior != new && strings_equivalent(prior, &new, format) => prior.to_string(),
        _ => new,
    }
}

/// [`prefer_prior`] at each of `paths` of an untyped value (string attributes only; other
/// values are left alone).
#[must_use]
pub fn keep_prior_if_equivalent(
    mut value: RawValue,
    prior: &RawValue,
    paths: &[AttrPath],
    format: StringFormat,
) -> RawValue {
    for path in paths {
        let Some(RawValue::String(prior_text)) = prior.get_path(path) else {
            continue;
        };
        if let Some(slot @ RawValue::String(_)) = value.get_path_mut(path)
            && let RawValue::String(new_text) = std::mem::take(slot)
        {
            *slot = RawValue::String(prefer_prior(Some(prior_text), new_text, format));
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::schema::{Attribute, NestedBlock};
    use pretty_assertions::assert_eq;

    fn schema() -> Schema {
        Schema {
            version: 0,
            block: Block::new(
                "Test.",
                vec![
                    Attribute::string("name").required().description("n"),
                    Attribute::string("id").computed().description("i"),
                    Attribute::bool("wait").default_value(true).description("w"),
                    Attribute::string("token").write_only().description("t"),
                    Attribute::nested(
                        "sync",
                        Nesting::Single,
                        vec![
                            Attribute::string("url").required().description("u"),
                            Attribute::string("interval")
                                .default_value("1m")
                                .description("iv"),
                            Attribute::string("secret").write_only().description("s"),
                            Attribute::string("ref").computed().description("r"),
                        ],
                    )
                    .optional()
                    .description("s"),
                    Attribute::nested(
                        "patches",
                        Nesting::List,
                        vec![
                            Attribute::string("patch").required().description("p"),
                            Attribute::string("digest").computed().description("d"),
                        ],
                    )
                    .description("p"),
                ],
            )
            .with_block(NestedBlock::new(
                "timeouts",
                Nesting::Single,
                Block::new(
                    "T.",
                    vec![
                        Attribute::string("create")
                            .default_value("5m")
                            .description("c"),
                    ],
                ),
            )),
        }
    }

    fn obj(pairs: Vec<(&str, RawValue)>) -> RawValue {
        RawValue::object(pairs)
    }

    fn s(text: &str) -> RawValue {
        RawValue::from(text)
    }

    fn config() -> RawValue {
        obj(vec![
            ("name", s("flux")),
            ("id", RawValue::Null),
            ("wait", RawValue::Null),
            ("token", s("secret-token")),
            (
                "sync",
                obj(vec![
                    ("url", s("https://example.com/repo")),
                    ("interval", RawValue::Null),
                    ("secret", s("hunter2")),
                    ("ref", RawValue::Null),
                ]),
            ),
            (
                "patches",
                RawValue::List(vec![obj(vec![
                    ("patch", s("p0")),
                    ("digest", RawValue::Null),
                ])]),
            ),
            ("timeouts", obj(vec![("create", RawValue::Null)])),
        ])
    }

    #[test]
    fn attributes_changed_compares_sets_without_order() {
        let schema = Schema {
            version: 0,
            block: Block::new(
                "Test.",
                vec![
                    Attribute::string_set("components")
                        .optional()
                        .description("c"),
                    Attribute::string_list("order").optional().description("o"),
                ],
            ),
        };
        let value = |components: &[&str], order: &[&str]| {
            let list = |items: &[&str]| RawValue::List(items.iter().map(|i| s(i)).collect());
            obj(vec![
                ("components", list(components)),
                ("order", list(order)),
            ])
        };
        let prior = value(&["a", "b"], &["x", "y"]);
        let cases = [
            (
                "set in another order",
                value(&["b", "a"], &["x", "y"]),
                false,
            ),
            (
                "set with another element",
                value(&["a", "c"], &["x", "y"]),
                true,
            ),
            (
                "list in another order",
                value(&["a", "b"], &["y", "x"]),
                true,
            ),
        ];
        for (name, planned, expected) in cases {
            assert_eq!(
                attributes_changed(&schema, &prior, &planned, &["components", "order"]),
                expected,
                "{name}"
            );
        }
        let unknown = obj(vec![
            ("components", RawValue::unknown()),
            ("order", RawValue::Null),
        ]);
        assert!(attributes_changed(
            &schema,
            &prior,
            &unknown,
            &["components"]
        ));
    }

    #[test]
    fn generic_create_rules() {
        struct Case {
            name: &'static str,
            run: fn(&Schema, RawValue) -> RawValue,
            want: RawValue,
        }
        let cases = vec![
            Case {
                name: "defaults fill null configuration, nested and in blocks",
                run: |schema, config| apply_defaults(schema, &config, config.clone()),
                want: obj(vec![
                    ("name", s("flux")),
                    ("id", RawValue::Null),
                    ("wait", RawValue::Bool(true)),
                    ("token", s("secret-token")),
                    (
                        "sync",
                        obj(vec![
                            ("url", s("https://example.com/repo")),
                            ("interval", s("1m")),
                            ("secret", s("hunter2")),
                            ("ref", RawValue::Null),
                        ]),
                    ),
                    (
                        "patches",
                        RawValue::List(vec![obj(vec![
                            ("patch", s("p0")),
                            ("digest", RawValue::Null),
                        ])]),
                    ),
                    ("timeouts", obj(vec![("create", s("5m"))])),
                ]),
            },
            Case {
                name: "computed nulls become unknown at every level",
                run: |schema, config| unknown_computed(schema, config),
                want: obj(vec![
                    ("name", s("flux")),
                    ("id", RawValue::unknown()),
                    ("wait", RawValue::unknown()),
                    ("token", s("secret-token")),
                    (
                        "sync",
                        obj(vec![
                            ("url", s("https://example.com/repo")),
                            ("interval", RawValue::unknown()),
                            ("secret", s("hunter2")),
                            ("ref", RawValue::unknown()),
                        ]),
                    ),
                    (
                        "patches",
                        RawValue::List(vec![obj(vec![
                            ("patch", s("p0")),
                            ("digest", RawValue::unknown()),
                        ])]),
                    ),
                    ("timeouts", obj(vec![("create", RawValue::unknown())])),
                ]),
            },
            Case {
                name: "write-only attributes become null",
                run: |schema, config| null_write_only(schema, config),
                want: obj(vec![
                    ("name", s("flux")),
                    ("id", RawValue::Null),
                    ("wait", RawValue::Null),
                    ("token", RawValue::Null),
                    (
                        "sync",
                        obj(vec![
                            ("url", s("https://example.com/repo")),
                            ("interval", RawValue::Null),
                            ("secret", RawValue::Null),
                            ("ref", RawValue::Null),
                        ]),
                    ),
                    (
                        "patches",
                        RawValue::List(vec![obj(vec![
                            ("patch", s("p0")),
                            ("digest", RawValue::Null),
                        ])]),
                    ),
                    ("timeouts", obj(vec![("create", RawValue::Null)])),
                ]),
            },
        ];
        let schema = schema();
        for case in cases {
            assert_eq!((case.run)(&schema, config()), case.want, "{}", case.name);
        }
    }

    #[test]
    fn configured_write_only_lists_paths() {
        assert_eq!(
            configured_write_only(&schema(), &config()),
            vec![
                AttrPath::attr("token"),
                AttrPath::attr("sync").then_attr("secret")
            ]
        );
        let mut without = config();
        if let RawValue::Object(fields) = &mut without {
            fields.insert("token".into(), RawValue::Null);
            fields.insert("sync".into(), RawValue::Null);
        }
        assert_eq!(
            configured_write_only(&schema(), &without),
            Vec::<AttrPath>::new()
        );
    }

    #[test]
    fn use_state_for_unknown_cases() {
        let prior = obj(vec![("id", s("abc")), ("status", s("ready"))]);
        struct Case {
            name: &'static str,
            planned: RawValue,
            paths: Vec<AttrPath>,
            want: RawValue,
        }
        let cases = vec![
            Case {
                name: "unknown takes prior",
                planned: obj(vec![
                    ("id", RawValue::unknown()),
                    ("status", RawValue::unknown()),
                ]),
                paths: vec![AttrPath::attr("id")],
                want: obj(vec![("id", s("abc")), ("status", RawValue::unknown())]),
            },
            Case {
                name: "known planned value is kept",
                planned: obj(vec![("id", s("new")), ("status", s("ready"))]),
                paths: vec![AttrPath::attr("id")],
                want: obj(vec![("id", s("new")), ("status", s("ready"))]),
            },
            Case {
                name: "missing prior path is ignored",
                planned: obj(vec![("id", RawValue::unknown()), ("status", s("x"))]),
                paths: vec![AttrPath::attr("nope")],
                want: obj(vec![("id", RawValue::unknown()), ("status", s("x"))]),
            },
        ];
        for case in cases {
            assert_eq!(
                use_state_for_unknown(case.planned, &prior, &case.paths),
                case.want,
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn requires_replace_cases() {
        let prior = obj(vec![("namespace", s("flux-system")), ("name", s("flux"))]);
        let paths = vec![AttrPath::attr("namespace"), AttrPath::attr("name")];
        struct Case {
            name: &'static str,
            prior: RawValue,
            planned: RawValue,
            want: Vec<AttrPath>,
        }
        let cases = vec![
            Case {
                name: "no change",
                prior: prior.clone(),
                planned: prior.clone(),
                want: vec![],
            },
            Case {
                name: "namespace changed",
                prior: prior.clone(),
                planned: obj(vec![("namespace", s("flux")), ("name", s("flux"))]),
                want: vec![AttrPath::attr("namespace")],
            },
            Case {
                name: "unknown counts as change",
                prior: prior.clone(),
                planned: obj(vec![
                    ("namespace", s("flux-system")),
                    ("name", RawValue::unknown()),
                ]),
                want: vec![AttrPath::attr("name")],
            },
            Case {
                name: "create never requires replace",
                prior: RawValue::Null,
                planned: prior.clone(),
                want: vec![],
            },
        ];
        for case in cases {
            assert_eq!(
                requires_replace(&case.prior, &case.planned, &paths),
                case.want,
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn semantic_equality_of_documents() {
        struct Case {
            name: &'static str,
            a: &'static str,
            b: &'static str,
            format: StringFormat,
            want: bool,
        }
        let cases = vec![
            Case {
                name: "json key order and whitespace",
                a: r#"{"a":1,"b":[1,2]}"#,
                b: "{ \"b\": [1, 2],\n  \"a\": 1 }",
                format: StringFormat::Json,
                want: true,
            },
            Case {
                name: "json different value",
                a: r#"{"a":1}"#,
                b: r#"{"a":2}"#,
                format: StringFormat::Json,
                want: false,
            },
            Case {
                name: "yaml formatting, quoting, comments and key order",
                a: "kind: Deployment\nmetadata:\n  name: x\n",
                b: "# comment\nmetadata: {name: \"x\"}\nkind: 'Deployment'",
                format: StringFormat::Yaml,
                want: true,
            },
            Case {
                name: "yaml multi-document with separators",
                a: "---\na: 1\n---\nb: 2\n",
                b: "a: 1\n---\nb: 2",
                format: StringFormat::Yaml,
                want: true,
            },
            Case {
                name: "yaml document order matters",
                a: "a: 1\n---\nb: 2\n",
                b: "b: 2\n---\na: 1\n",
                format: StringFormat::Yaml,
                want: false,
            },
            Case {
                name: "unparseable text equals only itself",
                a: "a: [",
                b: "a: [ ",
                format: StringFormat::Yaml,
                want: false,
            },
        ];
        for case in cases {
            assert_eq!(
                strings_equivalent(case.a, case.b, case.format),
                case.want,
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn keep_prior_if_equivalent_replaces_only_with_exact_prior() {
        let prior = obj(vec![("values", s("a: 1\nb: 2\n")), ("other", s("x: 1"))]);
        let planned = obj(vec![("values", s("b: 2\na: 1")), ("other", s("x: 2"))]);
        let paths = vec![AttrPath::attr("values"), AttrPath::attr("other")];
        assert_eq!(
            keep_prior_if_equivalent(planned, &prior, &paths, StringFormat::Yaml),
            obj(vec![("values", s("a: 1\nb: 2\n")), ("other", s("x: 2"))])
        );
        assert_eq!(
            prefer_prior(None, "a: 1".into(), StringFormat::Yaml),
            "a: 1".to_string()
        );
    }

    #[test]
    fn write_only_under_list_and_map_nesting() {
        let schema = Schema::new(
            0,
            "S.",
            vec![
                Attribute::nested(
                    "users",
                    Nesting::List,
                    vec![
                        Attribute::string("name").description("n"),
                        Attribute::string("password").write_only().description("p"),
                    ],
                )
                .description("u"),
                Attribute::nested(
                    "keys",
                    Nesting::Map,
                    vec![Attribute::string("secret").write_only().description("s")],
                )
                .description("k"),
            ],
        );
        let value = obj(vec![
            (
                "users",
                RawValue::List(vec![
                    obj(vec![("name", s("a")), ("password", s("pa"))]),
                    obj(vec![("name", s("b")), ("password", RawValue::Null)]),
                ]),
            ),
            (
                "keys",
                RawValue::Map(
                    [("k1".to_string(), obj(vec![("secret", s("x"))]))]
                        .into_iter()
                        .collect(),
                ),
            ),
        ]);
        assert_eq!(
            configured_write_only(&schema, &value),
            vec![
                AttrPath::attr("users").then_index(0).then_attr("password"),
                AttrPath::attr("keys").then_key("k1").then_attr("secret"),
            ]
        );
        assert_eq!(
            null_write_only(&schema, value),
            obj(vec![
                (
                    "users",
                    RawValue::List(vec![
                        obj(vec![("name", s("a")), ("password", RawValue::Null)]),
                        obj(vec![("name", s("b")), ("password", RawValue::Null)]),
                    ]),
                ),
                (
                    "keys",
                    RawValue::Map(
                        [("k1".to_string(), obj(vec![("secret", RawValue::Null)]))]
                            .into_iter()
                            .collect(),
                    ),
                ),
            ])
        );
    }
}
