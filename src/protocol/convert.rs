//! Conversions between generated tfplugin6 messages and framework types: schemas, diagnostics,
//! attribute paths, capabilities and `DynamicValue`s (through [`crate::protocol::codec`]).
//!
//! Pure functions; depends only on `framework`, the codec and the generated messages.

use crate::framework::diagnostics::{Diagnostics, Severity};
use crate::framework::path::{AttrPath, PathStep};
use crate::framework::schema::{Attribute, AttributeType, Block, NestedBlock, Nesting, Schema};
use crate::framework::service::{ClientCapabilities, ServerCapabilities};
use crate::framework::value::{RawValue, Type};
use crate::protocol::codec::{self, CodecError};
use crate::protocol::proto::tfplugin6 as pb;

/// Decodes a request's `DynamicValue` as a value of `ty`: msgpack when present, else JSON; an
/// absent or empty value is null.
pub fn decode_dynamic(value: Option<&pb::DynamicValue>, ty: &Type) -> Result<RawValue, CodecError> {
    match value {
        Some(value) if !value.msgpack.is_empty() => codec::decode_msgpack(&value.msgpack, ty),
        Some(value) if !value.json.is_empty() => codec::decode_json(&value.json, ty),
        _ => Ok(RawValue::Null),
    }
}

/// Encodes a response value of `ty`, always as msgpack.
pub fn encode_dynamic(value: &RawValue, ty: &Type) -> Result<pb::DynamicValue, CodecError> {
    Ok(pb::DynamicValue {
        msgpack: codec::encode_msgpack(value, ty)?,
        json: Vec::new(),
    })
}

/// Framework diagnostics as tfplugin6 diagnostics.
pub fn diagnostics_to_proto(diagnostics: &Diagnostics) -> Vec<pb::Diagnostic> {
    diagnostics
        .iter()
        .map(|diagnostic| pb::Diagnostic {
            severity: match diagnostic.severity {
                Severity::Error => pb::diagnostic::Severity::Error,
                Severity::Warning => pb::diagnostic::Severity::Warning,
            } as i32,
            summary: diagnostic.summary.clone(),
            detail: diagnostic.detail_naming_path(),
            attribute: diagnostic
                .path
                .as_ref()
                .filter(|path| !path.is_root())
                .map(attr_path_to_proto),
        })
        .collect()
}

/// An [`AttrPath`] as a tfplugin6 `AttributePath`.
pub fn attr_path_to_proto(path: &AttrPath) -> pb::AttributePath {
    use pb::attribute_path::step::Selector;
    pb::AttributePath {
        steps: path
            .steps()
            .iter()
            .map(|step| pb::attribute_path::Step {
                selector: Some(match step {
                    PathStep::Attr(name) => Selector::AttributeName(name.clone()),
                    PathStep::Key(key) => Selector::ElementKeyString(key.clone()),
                    PathStep::Index(index) => Selector::ElementKeyInt(*index),
                }),
            })
            .collect(),
    }
}

/// A tfplugin6 `AttributePath` as an [`AttrPath`] (steps without a selector are skipped).
pub fn attr_path_from_proto(path: &pb::AttributePath) -> AttrPath {
    use pb::attribute_path::step::Selector;
    AttrPath(
        path.steps
            .iter()
            .filter_map(|step| {
                step.selector.as_ref().map(|selector| match selector {
                    Selector::AttributeName(name) => PathStep::Attr(name.clone()),
                    Selector::ElementKeyString(key) => PathStep::Key(key.clone()),
                    Selector::ElementKeyInt(index) => PathStep::Index(*index),
                })
            })
            .collect(),
    )
}

/// Client capabilities from a request (absent: none).
pub fn client_capabilities(capabilities: Option<&pb::ClientCapabilities>) -> ClientCapabilities {
    capabilities.map_or_else(ClientCapabilities::default, |c| ClientCapabilities {
        deferral_allowed: c.deferral_allowed,
        write_only_attributes_allowed: c.write_only_attributes_allowed,
    })
}

/// Server capabilities as announced to Terraform.
pub fn server_capabilities(capabilities: &ServerCapabilities) -> pb::ServerCapabilities {
    pb::ServerCapabilities {
        plan_destroy: capabilities.plan_destroy,
        get_provider_schema_optional: capabilities.get_provider_schema_optional,
        move_resource_state: capabilities.move_resource_state,
    }
}

/// A framework schema as a tfplugin6 schema. Nested attributes carry `nested_type` and an empty
/// `type` (Terraform rejects a schema with both); descriptions are Markdown.
pub fn schema_to_proto(schema: &Schema) -> pb::Schema {
    pb::Schema {
        version: schema.version,
        block: Some(block_to_proto(&schema.block)),
    }
}

fn block_to_proto(block: &Block) -> pb::schema::Block {
    pb::schema::Block {
        version: 0,
        attributes: block.attributes.iter().map(attribute_to_proto).collect(),
        block_types: block.blocks.iter().map(nested_block_to_proto).collect(),
        description: block.description.clone(),
        description_kind: pb::StringKind::Markdown as i32,
        deprecated: block.deprecated.is_some(),
    }
}

fn attribute_to_proto(attribute: &Attribute) -> pb::schema::Attribute {
    let (r#type, nested_type) = match &attribute.kind {
        AttributeType::Plain(ty) => (codec::type_to_json_bytes(ty), None),
        AttributeType::Nested {
            nesting,
            attributes,
        } => (
            Vec::new(),
            Some(pb::schema::Object {
                attributes: attributes.iter().map(attribute_to_proto).collect(),
                nesting: object_nesting(*nesting) as i32,
                ..pb::schema::Object::default()
            }),
        ),
    };
    pb::schema::Attribute {
        name: attribute.name.clone(),
        r#type,
        nested_type,
        description: attribute.description.clone(),
        required: attribute.required,
        optional: attribute.optional,
        computed: attribute.computed,
        sensitive: attribute.sensitive,
        description_kind: pb::StringKind::Markdown as i32,
        deprecated: attribute.deprecated.is_some(),
        write_only: attribute.write_only,
    }
}

fn object_nesting(nesting: Nesting) -> pb::schema::object::NestingMode {
    use pb::schema::object::NestingMode;
    match nesting {
        Nesting::Single => NestingMode::Single,
        Nesting::List => NestingMode::List,
        Nesting::Set => NestingMode::Set,
        Nesting::Map => NestingMode::Map,
    }
}

fn nested_block_to_proto(nested: &NestedBlock) -> pb::schema::NestedBlock {
    use pb::schema::nested_block::NestingMode;
    pb::schema::NestedBlock {
        type_name: nested.type_name.clone(),
        block: Some(block_to_proto(&nested.block)),
        nesting: match nested.nesting {
            Nesting::Single => NestingMode::Single,
            Nesting::List => NestingMode::List,
            Nesting::Set => NestingMode::Set,
            Nesting::Map => NestingMode::Map,
        } as i32,
        min_items: nested.min_items,
        max_items: nested.max_items,
    }
}
