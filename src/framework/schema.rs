//! Schemas: the shape of provider configuration, resources and data sources. Descriptions are
//! Markdown and are the user documentation (the docs generator reads them), so every attribute
//! has one. Protocol-agnostic: the protocol layer converts these to `tfplugin6.Schema`.

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
