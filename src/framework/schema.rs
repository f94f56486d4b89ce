//! Schemas: the shape of provider configuration, resources and data sources. Descriptions are
//! Markdown and are the user documentation (the docs generator reads them), so every attribute
//! has one. Protocol-agnostic: the protocol layer converts these to `tfplugin6.Schema`.

use std::collections::BTreeMap;

use crate::framework::path::AttrPath;
use crate::framework::value::{RawValue, Type};

/// A versioned schema: the root block of a provider configuration, resource or data source.
#[derive(Clone, Debug, PartialEq)]
pub struct Schema {
    /// Schema version stored in state; bumped with an `upgrade_state` step.
    pub version: i64,
    /// The root block.
    pub block: Block,
}

/// A block: attributes and nested blocks, with a Markdown description.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Block {
    /// Attributes, in documentation order.
    pub attributes: Vec<Attribute>,
    /// Nested blocks (used sparingly: `timeouts`). Prefer nested attributes.
    pub blocks: Vec<NestedBlock>,
    /// Markdown description.
    pub description: String,
    /// Deprecation message; `None` when not deprecated.
    pub deprecated: Option<String>,
}

/// How a nested attribute or block repeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nesting {
    /// One object (or null).
    Single,
    /// A list of objects.
    List,
    /// A set of objects.
    Set,
    /// A map of objects keyed by string.
    Map,
}

/// The type of an attribute: a plain Terraform type, or protocol-6 nested attributes.
#[derive(Clone, Debug, PartialEq)]
pub enum AttributeType {
    /// A plain type such as `string` or `list(string)`, or `dynamic`.
    Plain(Type),
    /// Nested attributes (`attr = { ... }`, `attr = [{ ... }]`).
    Nested {
        /// How the nested object repeats.
        nesting: Nesting,
        /// The nested object's attributes.
        attributes: Vec<Attribute>,
    },
}

/// One attribute.
#[derive(Clone, Debug, PartialEq)]
pub struct Attribute {
    /// snake_case name.
    pub name: String,
    /// Its type.
    pub kind: AttributeType,
    /// Markdown description (the documentation).
    pub description: String,
    /// Must be set in configuration.
    pub required: bool,
    /// May be set in configuration.
    pub optional: bool,
    /// Set by the provider (alone: read-only; with `optional`: defaulted or server-filled).
    pub computed: bool,
    /// Hidden in plan output and marked sensitive in state.
    pub sensitive: bool,
    /// Never stored in plan or state (Terraform ≥ 1.11, OpenTofu ≥ 1.11).
    pub write_only: bool,
    /// Deprecation message; `None` when not deprecated.
    pub deprecated: Option<String>,
    /// The value used when the attribute is not configured, shown in the docs.
    pub default: Option<RawValue>,
}

/// A nested block.
#[derive(Clone, Debug, PartialEq)]
pub struct NestedBlock {
    /// Block type name, e.g. `timeouts`.
    pub type_name: String,
    /// How the block repeats.
    pub nesting: Nesting,
    /// The block's content.
    pub block: Block,
    /// Minimum number of blocks (0 = no minimum).
    pub min_items: i64,
    /// Maximum number of blocks (0 = no maximum).
    pub max_items: i64,
}

/// Terraform meta-argument names, which no attribute or block may use.
pub const META_ARGUMENTS: &[&str] = &[
    "count",
    "depends_on",
    "for_each",
    "lifecycle",
    "provider",
    "provisioner",
    "connection",
];

impl Attribute {
    /// An attribute of type `ty`; optional, not computed, with no description yet.
    pub fn new(name: impl Into<String>, ty: Type) -> Self {
        Self {
            name: name.into(),
            kind: AttributeType::Plain(ty),
            description: String::new(),
            required: false,
            optional: true,
            computed: false,
            sensitive: false,
            write_only: false,
            deprecated: None,
            default: None,
        }
    }

    /// A `string` attribute.
    pub fn string(name: impl Into<String>) -> Self {
        Self::new(name, Type::String)
    }

    /// A `bool` attribute.
    pub fn bool(name: impl Into<String>) -> Self {
        Self::new(name, Type::Bool)
    }

    /// A `number` attribute.
    pub fn number(name: impl Into<String>) -> Self {
        Self::new(name, Type::Number)
    }

    /// A `list(string)` attribute.
    pub fn string_list(name: impl Into<String>) -> Self {
        Self::new(name, Type::list(Type::String))
    }

    /// A `set(string)` attribute.
    pub fn string_set(name: impl Into<String>) -> Self {
        Self::new(name, Type::set(Type::String))
    }

    /// A `map(string)` attribute.
    pub fn string_map(name: impl Into<String>) -> Self {
        Self::new(name, Type::map(Type::String))
    }

    /// A nested attribute (`name = { ... }`, `name = [{ ... }]`, ...).
    pub fn nested(name: impl Into<String>, nesting: Nesting, attributes: Vec<Attribute>) -> Self {
        Self {
            kind: AttributeType::Nested {
                nesting,
                attributes,
            },
            ..Self::new(name, Type::Dynamic)
        }
    }

    /// Must be set in configuration (clears optional and computed).
    #[must_use]
    pub fn required(mut self) -> Self {
        self.required = true;
        self.optional = false;
        self.computed = false;
        self
    }

    /// May be set in configuration.
    #[must_use]
    pub fn optional(mut self) -> Self {
        self.required = false;
        self.optional = true;
        self
    }

    /// Set by the provider only (read-only: clears required and optional).
    #[must_use]
    pub fn computed(mut self) -> Self {
        self.required = false;
        self.optional = false;
        self.computed = true;
        self
    }

    /// May be set in configuration; the provider fills it in when it is not.
    #[must_use]
    pub fn optional_computed(mut self) -> Self {
        self.required = false;
        self.optional = true;
        self.computed = true;
        self
    }

    /// The Markdown description (the documentation).
    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Hidden in plan output and marked sensitive in state.
    #[must_use]
    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }

    /// Never stored in plan or state (Terraform/OpenTofu ≥ 1.11).
    #[must_use]
    pub fn write_only(mut self) -> Self {
        self.write_only = true;
        self
    }

    /// Deprecated, with a message saying what to use instead.
    #[must_use]
    pub fn deprecated(mut self, message: impl Into<String>) -> Self {
        self.deprecated = Some(message.into());
        self
    }

    /// The value used when the attribute is not configured. Makes the attribute optional and
    /// computed (Terraform requires both for a provider-supplied default); the plan helpers fill
    /// it in (see `plan::apply_defaults`).
    #[must_use]
    pub fn default_value(mut self, value: impl Into<RawValue>) -> Self {
        self.default = Some(value.into());
        self.optional_computed()
    }

    /// The Terraform type of this attribute's value (nested attributes become objects,
    /// lists/sets/maps of objects).
    pub fn value_type(&self) -> Type {
        match &self.kind {
            AttributeType::Plain(ty) => ty.clone(),
            AttributeType::Nested {
                nesting,
                attributes,
            } => {
                let object = attributes_object_type(attributes);
                match nesting {
                    Nesting::Single => object,
                    Nesting::List => Type::list(object),
                    Nesting::Set => Type::set(object),
                    Nesting::Map => Type::map(object),
                }
            }
        }
    }

    /// The nested attributes, if this is a nested attribute.
    pub fn nested_attributes(&self) -> Option<(Nesting, &[Attribute])> {
        match &self.kind {
            AttributeType::Nested {
                nesting,
                attributes,
            } => Some((*nesting, attributes)),
            AttributeType::Plain(_) => None,
        }
    }
}

fn attributes_object_type(attributes: &[Attribute]) -> Type {
    Type::Object(
        attributes
            .iter()
            .map(|a| (a.name.clone(), a.value_type()))
            .collect::<BTreeMap<_, _>>(),
    )
}

impl Block {
    /// A block with `attributes` and a Markdown description.
    pub fn new(description: impl Into<String>, attributes: Vec<Attribute>) -> Self {
        Self {
            attributes,
            blocks: Vec::new(),
            description: description.into(),
            deprecated: None,
        }
    }

    /// This block with a nested block added.
    #[must_use]
    pub fn with_block(mut self, block: NestedBlock) -> Self {
        self.blocks.push(block);
        self
    }

    /// The object type of this block's value: attributes and nested blocks.
    pub fn type_of(&self) -> Type {
        let mut object = match attributes_object_type(&self.attributes) {
            Type::Object(map) => map,
            _ => BTreeMap::new(),
        };
        for nested in &self.blocks {
            let inner = nested.block.type_of();
            let ty = match nested.nesting {
                Nesting::Single => inner,
                Nesting::List => Type::list(inner),
                Nesting::Set => Type::set(inner),
                Nesting::Map => Type::map(inner),
            };
            object.insert(nested.type_name.clone(), ty);
        }
        Type::Object(object)
    }

    /// The attribute named `name`.
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }
}

impl NestedBlock {
    /// A nested block.
    pub fn new(type_name: impl Into<String>, nesting: Nesting, block: Block) -> Self {
        Self {
            type_name: type_name.into(),
            nesting,
            block,
            min_items: 0,
            max_items: 0,
        }
    }
}

impl Schema {
    /// A schema at `version` with a root block described by `description`.
    pub fn new(version: i64, description: impl Into<String>, attributes: Vec<Attribute>) -> Self {
        Self {
            version,
            block: Block::new(description, attributes),
        }
    }

    /// The object type of the root block (attributes, nested attributes and nested blocks).
    pub fn type_of(&self) -> Type {
        self.block.type_of()
    }

    /// Every attribute with its path, depth first, in declaration order (nested attributes of
    /// list/set/map nesting are reported at the path of the collection, without an index).
    pub fn walk_attributes(&self) -> Vec<(AttrPath, &Attribute)> {
        fn walk<'a>(
            prefix: &AttrPath,
            attributes: &'a [Attribute],
            out: &mut Vec<(AttrPath, &'a Attribute)>,
        ) {
            for attribute in attributes {
                let path = prefix.clone().then_attr(attribute.name.clone());
                out.push((path.clone(), attribute));
                if let Some((_, nested)) = attribute.nested_attributes() {
                    walk(&path, nested, out);
                }
            }
        }
        fn walk_block<'a>(
            prefix: &AttrPath,
            block: &'a Block,
            out: &mut Vec<(AttrPath, &'a Attribute)>,
        ) {
            walk(prefix, &block.attributes, out);
            for nested in &block.blocks {
                walk_block(
                    &prefix.clone().then_attr(nested.type_name.clone()),
                    &nested.block,
                    out,
                );
            }
        }
        let mut out = Vec::new();
        walk_block(&AttrPath::root(), &self.block, &mut out);
        out
    }

    /// Checks the rules every schema of this provider follows; returns one message per
    /// violation (empty when the schema is fine):
    ///
    /// - every attribute and nested block has a description;
    /// - no attribute or block is named after a Terraform meta-argument;
    /// - exactly one of required/optional/computed-only makes sense (required excludes the rest;
    ///   at least one is set);
    /// - defaults only on optional+computed attributes;
    /// - write-only attributes are not computed, and set nesting holds no write-only attribute
    ///   (Terraform rejects both).
    pub fn lint(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (path, attribute) in self.walk_attributes() {
            if attribute.description.trim().is_empty() {
                problems.push(format!("{path}: missing description"));
            }
            if path.steps().len() == 1 && META_ARGUMENTS.contains(&attribute.name.as_str()) {
                problems.push(format!("{path}: named after a Terraform meta-argument"));
            }
            if attribute.required && (attribute.optional || attribute.computed) {
                problems.push(format!("{path}: required cannot be optional or computed"));
            }
            if !attribute.required && !attribute.optional && !attribute.computed {
                problems.push(format!("{path}: must be required, optional or computed"));
            }
            if attribute.default.is_some() && !(attribute.optional && attribute.computed) {
                problems.push(format!("{path}: a default needs optional and computed"));
            }
            if attribute.write_only && attribute.computed {
                problems.push(format!("{path}: write-only cannot be computed"));
            }
        }
        fn blocks(prefix: &AttrPath, block: &Block, problems: &mut Vec<String>) {
            for nested in &block.blocks {
                let path = prefix.clone().then_attr(nested.type_name.clone());
                if nested.block.description.trim().is_empty() {
                    problems.push(format!("{path}: missing description"));
                }
                if prefix.is_root() && META_ARGUMENTS.contains(&nested.type_name.as_str()) {
                    problems.push(format!("{path}: named after a Terraform meta-argument"));
                }
                blocks(&path, &nested.block, problems);
            }
        }
        blocks(&AttrPath::root(), &self.block, &mut problems);
        // Write-only under set nesting.
        for (path, attribute) in self.walk_attributes() {
            if let Some((Nesting::Set, nested)) = attribute.nested_attributes()
                && nested.iter().any(|a| a.write_only)
            {
                problems.push(format!(
                    "{path}: set nesting cannot contain write-only attributes"
                ));
            }
        }
        problems
    }

    /// Paths of every write-only attribute, nested ones included (attributes under list or map
    /// nesting are reported at the collection's path, without index or key).
    pub fn write_only_paths(&self) -> Vec<AttrPath> {
        self.walk_attributes()
            .into_iter()
            .filter(|(_, a)| a.write_only)
            .map(|(path, _)| path)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn sample() -> Schema {
        Schema::new(
            1,
            "A sample.",
            vec![
                Attribute::string("name").required().description("Name."),
                Attribute::string("id").computed().description("ID."),
                Attribute::bool("wait")
                    .default_value(true)
                    .description("Wait."),
                Attribute::string("token")
                    .sensitive()
                    .write_only()
                    .description("Token."),
                Attribute::nested(
                    "sync",
                    Nesting::Single,
                    vec![
                        Attribute::string("url").required().description("URL."),
                        Attribute::string_list("paths").description("Paths."),
                    ],
                )
                .description("Sync."),
                Attribute::nested(
                    "patches",
                    Nesting::List,
                    vec![Attribute::string("patch").required().description("Patch.")],
                )
                .description("Patches."),
            ],
        )
    }

    #[test]
    fn type_of_includes_nested_attributes_and_blocks() {
        let schema = Schema {
            block: sample().block.with_block(NestedBlock::new(
                "timeouts",
                Nesting::Single,
                Block::new(
                    "Timeouts.",
                    vec![Attribute::string("create").description("c")],
                ),
            )),
            ..sample()
        };
        assert_eq!(
            schema.type_of(),
            Type::object([
                ("name", Type::String),
                ("id", Type::String),
                ("wait", Type::Bool),
                ("token", Type::String),
                (
                    "sync",
                    Type::object([("url", Type::String), ("paths", Type::list(Type::String))])
                ),
                (
                    "patches",
                    Type::list(Type::object([("patch", Type::String)]))
                ),
                ("timeouts", Type::object([("create", Type::String)])),
            ])
        );
    }

    #[test]
    fn builders_set_flags() {
        let wait = Attribute::bool("wait").default_value(true);
        assert!(wait.optional && wait.computed && !wait.required);
        assert_eq!(wait.default, Some(RawValue::Bool(true)));
        let id = Attribute::string("id").computed();
        assert!(id.computed && !id.optional && !id.required);
        let name = Attribute::string("name").optional_computed().required();
        assert!(name.required && !name.optional && !name.computed);
    }

    #[test]
    fn lint_reports_every_violation() {
        assert_eq!(sample().lint(), Vec::<String>::new());
        let bad = Schema::new(
            0,
            "Bad.",
            vec![
                Attribute::string("count").description("Count."),
                Attribute::string("undocumented"),
                Attribute::string("secret")
                    .optional_computed()
                    .write_only()
                    .description("S."),
                Attribute::nested(
                    "items",
                    Nesting::Set,
                    vec![Attribute::string("key").write_only().description("K.")],
                )
                .description("Items."),
            ],
        );
        assert_eq!(
            bad.lint(),
            vec![
                "count: named after a Terraform meta-argument".to_string(),
                "undocumented: missing description".to_string(),
                "secret: write-only cannot be computed".to_string(),
                "items: set nesting cannot contain write-only attributes".to_string(),
            ]
        );
    }

    #[test]
    fn write_only_paths_lists_nested_ones() {
        let schema = Schema::new(
            0,
            "S.",
            vec![
                Attribute::string("a").write_only().description("A."),
                Attribute::nested(
                    "n",
                    Nesting::Single,
                    vec![Attribute::string("b").write_only().description("B.")],
                )
                .description("N."),
            ],
        );
        assert_eq!(
            schema.write_only_paths(),
            vec![AttrPath::attr("a"), AttrPath::attr("n").then_attr("b")]
        );
    }
}
