//! The `DynamicValue` codec: msgpack (and, on input only, JSON) ↔ [`RawValue`], directed by the
//! schema's [`Type`], following Terraform's `docs/plugin-protocol/object-wire-format.md` and cty's
//! msgpack encoding.
//!
//! - null is msgpack nil; unknown is any msgpack extension (ext 0 `d4 00 00` for a plain unknown,
//!   ext 12 with a refinement map for a refined one: keys 1 = "is null" bool, 2 = string prefix,
//!   3/4 = number lower/upper bound as `[number, inclusive]`, 5/6 = collection length bounds).
//! - numbers are msgpack integers, floats, or strings holding an exact decimal.
//! - a value of type `dynamic` is a 2-element array `[type JSON as bin, value]` (JSON:
//!   `{"type":…, "value":…}`); a null or unknown of no concrete type is a bare nil / ext.
//!
//! Also: the object [`Type`] of a schema [`Block`], and type JSON ↔ [`Type`].
//! Depends only on `framework::{value, schema}`, `rmpv` and `serde_json`; no tonic or prost.

use std::collections::BTreeMap;
use std::fmt;

use rmpv::Value as Mp;
use serde_json::Value as Json;

use crate::framework::schema::{Attribute, AttributeType, Block, Nesting};
use crate::framework::value::{Number, RawValue, Refinement, Type};

/// Msgpack extension code cty uses for an unknown value carrying refinements.
const EXT_REFINED: i8 = 12;
/// Refinement key: the value is (true) or is not (false) null.
const RFN_IS_NULL: i64 = 1;
/// Refinement key: known string prefix.
const RFN_STRING_PREFIX: i64 = 2;
/// Refinement key: number lower bound `[number, inclusive]`.
const RFN_NUMBER_MIN: i64 = 3;
/// Refinement key: number upper bound `[number, inclusive]`.
const RFN_NUMBER_MAX: i64 = 4;
/// Refinement key: collection length lower bound.
const RFN_LENGTH_MIN: i64 = 5;
/// Refinement key: collection length upper bound.
const RFN_LENGTH_MAX: i64 = 6;

/// What went wrong decoding or encoding a value. Each is a protocol violation (by Terraform or by
/// the provider's own code), never a user error.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The msgpack bytes are not a msgpack value.
    #[error("reading msgpack: {0}")]
    ReadMsgpack(#[from] rmpv::decode::Error),
    /// Bytes were left after the msgpack value.
    #[error("{0} trailing bytes after the msgpack value")]
    TrailingBytes(usize),
    /// The JSON bytes are not JSON.
    #[error("parsing JSON value: {0}")]
    ParseJson(#[source] serde_json::Error),
    /// A value does not have the shape its type requires.
    #[error("at {path}: expected {expected}, found {found}")]
    Mismatch {
        /// Where in the value (Terraform path syntax, `(root)` for the top).
        path: String,
        /// What the type requires.
        expected: String,
        /// What was there.
        found: String,
    },
    /// A number that is not a finite decimal number.
    #[error("at {path}: invalid number {text:?}")]
    InvalidNumber {
        /// Where in the value.
        path: String,
        /// The offending text.
        text: String,
    },
    /// An object carries an attribute its type does not have.
    #[error("at {path}: unexpected attribute {name:?}")]
    UnexpectedAttribute {
        /// Where in the value.
        path: String,
        /// The attribute name.
        name: String,
    },
    /// A refinement payload (ext 12) that is not a map of small integers to values.
    #[error("at {path}: malformed unknown-value refinement: {reason}")]
    Refinement {
        /// Where in the value.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A type in JSON form that is not a Terraform type.
    #[error("invalid type JSON {json}: {reason}")]
    ParseType {
        /// The offending JSON.
        json: String,
        /// What is wrong.
        reason: String,
    },
    /// Writing msgpack failed (only on allocation failure, in practice).
    #[error("writing msgpack: {0}")]
    WriteMsgpack(#[from] rmpv::encode::Error),
}

// ---------------------------------------------------------------------------------------------
// Locations (rendered only when an error is reported)

/// Where the codec is in a value; a stack-allocated linked list so that descending is free.
#[derive(Clone, Copy)]
enum Loc<'a> {
    Root,
    Attr(&'a Loc<'a>, &'a str),
    Key(&'a Loc<'a>, &'a str),
    Index(&'a Loc<'a>, usize),
    Wrapped(&'a Loc<'a>, &'static str),
}

impl fmt::Display for Loc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Loc::Root => write!(f, "(root)"),
            Loc::Attr(Loc::Root, name) => write!(f, "{name}"),
            Loc::Attr(parent, name) => write!(f, "{parent}.{name}"),
            Loc::Key(parent, key) => write!(f, "{parent}[{key:?}]"),
            Loc::Index(parent, index) => write!(f, "{parent}[{index}]"),
            Loc::Wrapped(parent, what) => write!(f, "{parent} ({what})"),
        }
    }
}

fn mismatch(loc: &Loc<'_>, expected: impl fmt::Display, found: impl Into<String>) -> CodecError {
    CodecError::Mismatch {
        path: loc.to_string(),
        expected: expected.to_string(),
        found: found.into(),
    }
}

// ---------------------------------------------------------------------------------------------
// Schema → Type

/// The object type of a block: its attributes and nested blocks.
pub fn block_type(block: &Block) -> Type {
    let mut attrs: BTreeMap<String, Type> = block
        .attributes
        .iter()
        .map(|attribute| (attribute.name.clone(), attribute_type(attribute)))
        .collect();
    for nested in &block.blocks {
        let object = block_type(&nested.block);
        attrs.insert(nested.type_name.clone(), nest(nested.nesting, object));
    }
    Type::Object(attrs)
}

/// The type of one attribute (nested attributes become objects, lists, sets or maps of objects).
pub fn attribute_type(attribute: &Attribute) -> Type {
    match &attribute.kind {
        AttributeType::Plain(ty) => ty.clone(),
        AttributeType::Nested {
            nesting,
            attributes,
        } => {
            let object = Type::Object(
                attributes
                    .iter()
                    .map(|inner| (inner.name.clone(), attribute_type(inner)))
                    .collect(),
            );
            nest(*nesting, object)
        }
    }
}

fn nest(nesting: Nesting, object: Type) -> Type {
    match nesting {
        Nesting::Single => object,
        Nesting::List => Type::List(Box::new(object)),
        Nesting::Set => Type::Set(Box::new(object)),
        Nesting::Map => Type::Map(Box::new(object)),
    }
}

// ---------------------------------------------------------------------------------------------
// Type ↔ JSON

/// The compact JSON form of a type (`"string"`, `["list","string"]`, `["object",{…}]`).
pub fn type_to_json(ty: &Type) -> Json {
    match ty {
        Type::Bool => Json::from("bool"),
        Type::Number => Json::from("number"),
        Type::String => Json::from("string"),
        Type::Dynamic => Json::from("dynamic"),
        Type::List(element) => Json::Array(vec![Json::from("list"), type_to_json(element)]),
        Type::Set(element) => Json::Array(vec![Json::from("set"), type_to_json(element)]),
        Type::Map(element) => Json::Array(vec![Json::from("map"), type_to_json(element)]),
        Type::Object(attrs) => Json::Array(vec![
            Json::from("object"),
            Json::Object(
                attrs
                    .iter()
                    .map(|(name, ty)| (name.clone(), type_to_json(ty)))
                    .collect(),
            ),
        ]),
        Type::Tuple(elements) => Json::Array(vec![
            Json::from("tuple"),
            Json::Array(elements.iter().map(type_to_json).collect()),
        ]),
    }
}

/// The compact JSON form of a type, as bytes (for `Schema.Attribute.type`).
pub fn type_to_json_bytes(ty: &Type) -> Vec<u8> {
    type_to_json(ty).to_string().into_bytes()
}

/// Parses a type from its JSON form. The optional-attributes list of an object type constraint
/// (`["object",{…},["a"]]`) is tolerated and ignored.
pub fn type_from_json(json: &Json) -> Result<Type, CodecError> {
    let invalid = |reason: &str| CodecError::ParseType {
        json: json.to_string(),
        reason: reason.to_owned(),
    };
    match json {
        Json::String(name) => match name.as_str() {
            "bool" => Ok(Type::Bool),
            "number" => Ok(Type::Number),
            "string" => Ok(Type::String),
            "dynamic" => Ok(Type::Dynamic),
            _ => Err(invalid("unknown primitive type")),
        },
        Json::Array(parts) => {
            let kind = parts
                .first()
                .and_then(Json::as_str)
                .ok_or_else(|| invalid("a compound type starts with its kind"))?;
            let arg = parts
                .get(1)
                .ok_or_else(|| invalid("a compound type needs an argument"))?;
            let max_parts = if kind == "object" { 3 } else { 2 };
            if parts.len() > max_parts {
                return Err(invalid("too many elements"));
            }
            match kind {
                "list" => Ok(Type::List(Box::new(type_from_json(arg)?))),
                "set" => Ok(Type::Set(Box::new(type_from_json(arg)?))),
                "map" => Ok(Type::Map(Box::new(type_from_json(arg)?))),
                "object" => {
                    let attrs = arg
                        .as_object()
                        .ok_or_else(|| invalid("object attributes must be a JSON object"))?;
                    attrs
                        .iter()
                        .map(|(name, ty)| Ok((name.clone(), type_from_json(ty)?)))
                        .collect::<Result<_, _>>()
                        .map(Type::Object)
                }
                "tuple" => {
                    let elements = arg
                        .as_array()
                        .ok_or_else(|| invalid("tuple elements must be a JSON array"))?;
                    elements
                        .iter()
                        .map(type_from_json)
                        .collect::<Result<_, _>>()
                        .map(Type::Tuple)
                }
                _ => Err(invalid("unknown compound type")),
            }
        }
        _ => Err(invalid("a type is a string or an array")),
    }
}

/// Parses a type from JSON bytes.
pub fn type_from_json_bytes(bytes: &[u8]) -> Result<Type, CodecError> {
    let json: Json = serde_json::from_slice(bytes).map_err(CodecError::ParseJson)?;
    type_from_json(&json)
}

// ---------------------------------------------------------------------------------------------
// Type inference (for values under `dynamic`)

/// The concrete type a value has when it travels under `dynamic`: objects give object types,
/// tuples tuple types, lists/sets/maps a collection of their elements' common type (`dynamic` when
/// the elements differ, so that each element travels with its own type); a null, or an unknown
/// whose refinements do not pin a type, gives `dynamic`.
pub fn infer_type(value: &RawValue) -> Type {
    infer_shape(value).into_type()
}

/// A type being inferred: [`Shape::Any`] (a null or unknown, compatible with every type) is kept
/// apart from [`Shape::Mixed`] (elements of differing types, each wrapped on the wire).
#[derive(Clone, PartialEq)]
enum Shape {
    Any,
    Mixed,
    Bool,
    Number,
    String,
    List(Box<Shape>),
    Set(Box<Shape>),
    Map(Box<Shape>),
    Tuple(Vec<Shape>),
    Object(BTreeMap<String, Shape>),
}

impl Shape {
    fn into_type(self) -> Type {
        match self {
            Shape::Any | Shape::Mixed => Type::Dynamic,
            Shape::Bool => Type::Bool,
            Shape::Number => Type::Number,
            Shape::String => Type::String,
            Shape::List(element) => Type::List(Box::new(element.into_type())),
            Shape::Set(element) => Type::Set(Box::new(element.into_type())),
            Shape::Map(element) => Type::Map(Box::new(element.into_type())),
            Shape::Tuple(elements) => {
                Type::Tuple(elements.into_iter().map(Shape::into_type).collect())
            }
            Shape::Object(attrs) => Type::Object(
                attrs
                    .into_iter()
                    .map(|(name, shape)| (name, shape.into_type()))
                    .collect(),
            ),
        }
    }
}

fn infer_shape(value: &RawValue) -> Shape {
    match value {
        RawValue::Null => Shape::Any,
        RawValue::Unknown(refinement) => {
            if refinement.string_prefix.is_some() {
                Shape::String
            } else if refinement.number_lower.is_some() || refinement.number_upper.is_some() {
                Shape::Number
            } else if refinement.length_lower.is_some() || refinement.length_upper.is_some() {
                Shape::List(Box::new(Shape::Any))
            } else {
                Shape::Any
            }
        }
        RawValue::Bool(_) => Shape::Bool,
        RawValue::Number(_) => Shape::Number,
        RawValue::String(_) => Shape::String,
        RawValue::List(elements) => Shape::List(Box::new(common_shape(elements))),
        RawValue::Set(elements) => Shape::Set(Box::new(common_shape(elements))),
        RawValue::Map(entries) => Shape::Map(Box::new(common_shape(entries.values()))),
        RawValue::Tuple(elements) => Shape::Tuple(elements.iter().map(infer_shape).collect()),
        RawValue::Object(attrs) => Shape::Object(
            attrs
                .iter()
                .map(|(name, value)| (name.clone(), infer_shape(value)))
                .collect(),
        ),
    }
}

fn common_shape<'a>(elements: impl IntoIterator<Item = &'a RawValue>) -> Shape {
    elements.into_iter().fold(Shape::Any, |common, element| {
        unify(common, infer_shape(element))
    })
}

/// The most specific shape both `a` and `b` conform to: [`Shape::Any`] is a wildcard, and
/// anything incompatible becomes [`Shape::Mixed`].
fn unify(a: Shape, b: Shape) -> Shape {
    match (a, b) {
        (Shape::Any, other) | (other, Shape::Any) => other,
        (Shape::List(x), Shape::List(y)) => Shape::List(Box::new(unify(*x, *y))),
        (Shape::Set(x), Shape::Set(y)) => Shape::Set(Box::new(unify(*x, *y))),
        (Shape::Map(x), Shape::Map(y)) => Shape::Map(Box::new(unify(*x, *y))),
        (Shape::Tuple(xs), Shape::Tuple(ys)) if xs.len() == ys.len() => {
            Shape::Tuple(xs.into_iter().zip(ys).map(|(x, y)| unify(x, y)).collect())
        }
        (Shape::Object(xs), Shape::Object(ys)) if xs.keys().eq(ys.keys()) => Shape::Object(
            xs.into_iter()
                .zip(ys.into_values())
                .map(|((name, x), y)| (name, unify(x, y)))
                .collect(),
        ),
        (x, y) if x == y => x,
        _ => Shape::Mixed,
    }
}

// ---------------------------------------------------------------------------------------------
// Numbers

/// A number from a binary float: integers within `i64` become [`Number::Int`].
fn number_from_f64(float: f64, loc: &Loc<'_>) -> Result<Number, CodecError> {
    if !float.is_finite() {
        return Err(CodecError::InvalidNumber {
            path: loc.to_string(),
            text: float.to_string(),
        });
    }
    // 2^63 is exactly representable; every integral float in [-2^63, 2^63) fits i64.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if float.fract() == 0.0 && (-LIMIT..LIMIT).contains(&float) {
        #[allow(clippy::cast_possible_truncation)]
        return Ok(Number::Int(float as i64));
    }
    Ok(Number::Float(float))
}

/// A number from decimal text: `i64` integers become [`Number::Int`], text that is exactly the
/// shortest rendering of a float becomes [`Number::Float`], anything else keeps its exact text.
fn number_from_str(text: &str, loc: &Loc<'_>) -> Result<Number, CodecError> {
    if let Ok(int) = text.parse::<i64>() {
        return Ok(Number::Int(int));
    }
    let invalid = || CodecError::InvalidNumber {
        path: loc.to_string(),
        text: text.to_owned(),
    };
    let looks_numeric = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'));
    if !looks_numeric {
        return Err(invalid());
    }
    let float: f64 = text.parse().map_err(|_| invalid())?;
    if !float.is_finite() {
        return Err(invalid());
    }
    if float.to_string() == text {
        return number_from_f64(float, loc);
    }
    Ok(Number::Decimal(text.to_owned()))
}

fn encode_number(number: &Number) -> Mp {
    match number {
        Number::Int(int) => Mp::from(*int),
        Number::Float(float) => Mp::F64(*float),
        Number::Decimal(text) => Mp::from(text.as_str()),
    }
}

fn decode_number(value: &Mp, loc: &Loc<'_>) -> Result<Number, CodecError> {
    match value {
        Mp::Integer(int) => {
            if let Some(signed) = int.as_i64() {
                Ok(Number::Int(signed))
            } else if let Some(unsigned) = int.as_u64() {
                // As its decimal text decodes (an integer that is exactly a float's shortest
                // rendering becomes that float), so that it encodes and decodes to itself.
                number_from_str(&unsigned.to_string(), loc)
            } else {
                Err(mismatch(loc, "number", "unrepresentable integer"))
            }
        }
        Mp::F32(float) => number_from_f64(f64::from(*float), loc),
        Mp::F64(float) => number_from_f64(*float, loc),
        Mp::String(text) => match text.as_str() {
            Some(text) => number_from_str(text, loc),
            None => Err(mismatch(loc, "number", "non-UTF-8 string")),
        },
        other => Err(mismatch(loc, "number", mp_kind(other))),
    }
}

// ---------------------------------------------------------------------------------------------
// Msgpack decoding

fn mp_kind(value: &Mp) -> &'static str {
    match value {
        Mp::Nil => "nil",
        Mp::Boolean(_) => "bool",
        Mp::Integer(_) => "integer",
        Mp::F32(_) | Mp::F64(_) => "float",
        Mp::String(_) => "string",
        Mp::Binary(_) => "binary",
        Mp::Array(_) => "array",
        Mp::Map(_) => "map",
        Mp::Ext(..) => "extension",
    }
}

/// Decodes msgpack bytes as a value of type `ty`.
pub fn decode_msgpack(bytes: &[u8], ty: &Type) -> Result<RawValue, CodecError> {
    let mut reader = bytes;
    let value = rmpv::decode::read_value(&mut reader)?;
    if !reader.is_empty() {
        return Err(CodecError::TrailingBytes(reader.len()));
    }
    decode(&value, ty, &Loc::Root)
}

impl Wire for Mp {
    fn kind(&self) -> &'static str {
        mp_kind(self)
    }

    fn unknown(&self, ty: &Type, loc: &Loc<'_>) -> Option<Result<RawValue, CodecError>> {
        match self {
            Mp::Ext(code, payload) => Some(decode_unknown(*code, payload, ty, loc)),
            _ => None,
        }
    }

    fn is_null(&self) -> bool {
        matches!(self, Mp::Nil)
    }

    fn as_bool(&self) -> Option<bool> {
        self.as_bool()
    }

    fn number(&self, loc: &Loc<'_>) -> Result<Number, CodecError> {
        decode_number(self, loc)
    }

    fn string(&self, loc: &Loc<'_>) -> Result<String, CodecError> {
        match self {
            Mp::String(text) => text
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| mismatch(loc, "string", "non-UTF-8 string")),
            other => Err(mismatch(loc, "string", mp_kind(other))),
        }
    }

    fn items(&self) -> Option<&[Self]> {
        match self {
            Mp::Array(items) => Some(items),
            _ => None,
        }
    }

    fn entries(&self, loc: &Loc<'_>) -> Result<Vec<(&str, &Self)>, CodecError> {
        let Mp::Map(entries) = self else {
            return Err(mismatch(loc, "map", mp_kind(self)));
        };
        entries
            .iter()
            .map(|(key, item)| match key {
                Mp::String(key) => key
                    .as_str()
                    .map(|k| (k, item))
                    .ok_or_else(|| mismatch(loc, "string key", "non-UTF-8 key")),
                other => Err(mismatch(loc, "string key", mp_kind(other))),
            })
            .collect()
    }

    /// A value of type `dynamic` is `[type JSON, value]`.
    fn dynamic(&self, loc: &Loc<'_>) -> Result<(Type, &Self), CodecError> {
        match self {
            Mp::Array(pair) if pair.len() == 2 => {
                let type_json = match &pair[0] {
                    Mp::Binary(bytes) => bytes.as_slice(),
                    Mp::String(text) => text.as_bytes(),
                    other => return Err(mismatch(loc, "dynamic type JSON", mp_kind(other))),
                };
                Ok((type_from_json_bytes(type_json)?, &pair[1]))
            }
            other => Err(mismatch(loc, "dynamic [type, value] pair", mp_kind(other))),
        }
    }
}

/// An extension value: unknown, with the refinements of an ext-12 payload applicable to `ty`.
fn decode_unknown(
    code: i8,
    payload: &[u8],
    ty: &Type,
    loc: &Loc<'_>,
) -> Result<RawValue, CodecError> {
    // cty: a payload of 0 or 1 byte is a plain unknown whatever the code; refinements on
    // `dynamic` are ignored.
    if payload.len() <= 1 || code != EXT_REFINED || *ty == Type::Dynamic {
        return Ok(RawValue::Unknown(Refinement::default()));
    }
    let bad = |reason: &str| CodecError::Refinement {
        path: loc.to_string(),
        reason: reason.to_owned(),
    };
    let mut reader = payload;
    let map = rmpv::decode::read_value(&mut reader)?;
    let Mp::Map(entries) = map else {
        return Err(bad("payload is not a map"));
    };
    let mut refinement = Refinement::default();
    for (key, item) in &entries {
        let key = key.as_i64().ok_or_else(|| bad("non-integer key"))?;
        match key {
            RFN_IS_NULL => {
                let is_null = item
                    .as_bool()
                    .ok_or_else(|| bad("nullness is not a bool"))?;
                refinement.not_null = Some(!is_null);
            }
            RFN_STRING_PREFIX if *ty == Type::String => {
                let prefix = item.as_str().ok_or_else(|| bad("prefix is not a string"))?;
                refinement.string_prefix = Some(prefix.to_owned()).filter(|p| !p.is_empty());
            }
            RFN_NUMBER_MIN | RFN_NUMBER_MAX if *ty == Type::Number => {
                let bound = match item {
                    Mp::Array(pair) if pair.len() == 2 => {
                        let number = decode_number(&pair[0], loc)?;
                        let inclusive = pair[1]
                            .as_bool()
                            .ok_or_else(|| bad("bound flag is not a bool"))?;
                        (number, inclusive)
                    }
                    _ => return Err(bad("number bound is not [number, bool]")),
                };
                if key == RFN_NUMBER_MIN {
                    refinement.number_lower = Some(bound);
                } else {
                    refinement.number_upper = Some(bound);
                }
            }
            RFN_LENGTH_MIN | RFN_LENGTH_MAX
                if matches!(ty, Type::List(_) | Type::Set(_) | Type::Map(_)) =>
            {
                let bound = item
                    .as_u64()
                    .ok_or_else(|| bad("length bound is not an integer"))?;
                if key == RFN_LENGTH_MIN {
                    // A lower bound of 0 says nothing (every collection has it); cty does not
                    // encode it, so it is not kept either (found by the codec fuzz target).
                    refinement.length_lower = Some(bound).filter(|b| *b != 0);
                } else {
                    refinement.length_upper = Some(bound);
                }
            }
            // Keys from the future, or not applicable to this type: ignored.
            _ => {}
        }
    }
    Ok(RawValue::Unknown(refinement))
}

// ---------------------------------------------------------------------------------------------
// JSON decoding (input only)

/// Decodes a JSON `DynamicValue` as a value of type `ty`. JSON cannot express unknowns.
pub fn decode_json(bytes: &[u8], ty: &Type) -> Result<RawValue, CodecError> {
    let json: Json = serde_json::from_slice(bytes).map_err(CodecError::ParseJson)?;
    decode(&json, ty, &Loc::Root)
}

fn json_kind(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "bool",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

impl Wire for Json {
    fn kind(&self) -> &'static str {
        json_kind(self)
    }

    fn unknown(&self, _ty: &Type, _loc: &Loc<'_>) -> Option<Result<RawValue, CodecError>> {
        None
    }

    fn is_null(&self) -> bool {
        self.is_null()
    }

    fn as_bool(&self) -> Option<bool> {
        self.as_bool()
    }

    fn number(&self, loc: &Loc<'_>) -> Result<Number, CodecError> {
        match self {
            Json::Number(number) => {
                if let Some(int) = number.as_i64() {
                    Ok(Number::Int(int))
                } else if let Some(unsigned) = number.as_u64() {
                    Ok(Number::Decimal(unsigned.to_string()))
                } else {
                    number_from_str(&number.to_string(), loc)
                }
            }
            Json::String(text) => number_from_str(text, loc),
            other => Err(mismatch(loc, "number", json_kind(other))),
        }
    }

    fn string(&self, loc: &Loc<'_>) -> Result<String, CodecError> {
        match self {
            Json::String(text) => Ok(text.clone()),
            other => Err(mismatch(loc, "string", json_kind(other))),
        }
    }

    fn items(&self) -> Option<&[Self]> {
        self.as_array().map(Vec::as_slice)
    }

    fn entries(&self, loc: &Loc<'_>) -> Result<Vec<(&str, &Self)>, CodecError> {
        let Json::Object(entries) = self else {
            return Err(mismatch(loc, "object", json_kind(self)));
        };
        Ok(entries.iter().map(|(k, v)| (k.as_str(), v)).collect())
    }

    /// A value of type `dynamic` is `{"type": …, "value": …}`.
    fn dynamic(&self, loc: &Loc<'_>) -> Result<(Type, &Self), CodecError> {
        let Json::Object(wrapper) = self else {
            return Err(mismatch(
                loc,
                "{\"type\", \"value\"} object",
                json_kind(self),
            ));
        };
        let (Some(type_json), Some(inner), 2) =
            (wrapper.get("type"), wrapper.get("value"), wrapper.len())
        else {
            return Err(mismatch(loc, "{\"type\", \"value\"} object", "other keys"));
        };
        Ok((type_from_json(type_json)?, inner))
    }
}

// ---------------------------------------------------------------------------------------------
// The type-directed walk, shared by both wire formats

/// A wire value as the decoder sees it: msgpack and JSON differ in how they spell unknowns,
/// numbers, maps and `dynamic` values, and in nothing else.
trait Wire: Sized {
    /// What the value is, for messages.
    fn kind(&self) -> &'static str;
    /// `Some` when the value is an unknown (with its refinements for `ty`).
    fn unknown(&self, ty: &Type, loc: &Loc<'_>) -> Option<Result<RawValue, CodecError>>;
    /// Whether the value is null.
    fn is_null(&self) -> bool;
    /// The value as a bool, if it is one.
    fn as_bool(&self) -> Option<bool>;
    /// The value as a number.
    fn number(&self, loc: &Loc<'_>) -> Result<Number, CodecError>;
    /// The value as a string.
    fn string(&self, loc: &Loc<'_>) -> Result<String, CodecError>;
    /// The elements, if the value is an array.
    fn items(&self) -> Option<&[Self]>;
    /// The entries of a map or object, keyed by string.
    fn entries(&self, loc: &Loc<'_>) -> Result<Vec<(&str, &Self)>, CodecError>;
    /// The concrete type and the wrapped value of a non-null `dynamic` value.
    fn dynamic(&self, loc: &Loc<'_>) -> Result<(Type, &Self), CodecError>;
}

fn decode<W: Wire>(value: &W, ty: &Type, loc: &Loc<'_>) -> Result<RawValue, CodecError> {
    if let Some(unknown) = value.unknown(ty, loc) {
        return unknown;
    }
    if value.is_null() {
        return Ok(RawValue::Null);
    }
    match ty {
        Type::Bool => value
            .as_bool()
            .map(RawValue::Bool)
            .ok_or_else(|| mismatch(loc, "bool", value.kind())),
        Type::Number => value.number(loc).map(RawValue::Number),
        Type::String => value.string(loc).map(RawValue::String),
        Type::List(element) | Type::Set(element) => {
            let items = value
                .items()
                .ok_or_else(|| mismatch(loc, "array", value.kind()))?
                .iter()
                .enumerate()
                .map(|(i, item)| decode(item, element, &Loc::Index(loc, i)))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(match ty {
                Type::Set(_) => RawValue::Set(items),
                _ => RawValue::List(items),
            })
        }
        Type::Tuple(elements) => {
            let items = value
                .items()
                .ok_or_else(|| mismatch(loc, "array", value.kind()))?;
            if items.len() != elements.len() {
                return Err(mismatch(
                    loc,
                    format_args!("tuple of {} elements", elements.len()),
                    format!("{} elements", items.len()),
                ));
            }
            items
                .iter()
                .zip(elements)
                .enumerate()
                .map(|(i, (item, ty))| decode(item, ty, &Loc::Index(loc, i)))
                .collect::<Result<_, _>>()
                .map(RawValue::Tuple)
        }
        Type::Map(element) => value
            .entries(loc)?
            .into_iter()
            .map(|(key, item)| Ok((key.to_owned(), decode(item, element, &Loc::Key(loc, key))?)))
            .collect::<Result<_, _>>()
            .map(RawValue::Map),
        Type::Object(attrs) => {
            let mut object = BTreeMap::new();
            for (name, item) in value.entries(loc)? {
                let Some(attr_ty) = attrs.get(name) else {
                    return Err(CodecError::UnexpectedAttribute {
                        path: loc.to_string(),
                        name: name.to_owned(),
                    });
                };
                object.insert(
                    name.to_owned(),
                    decode(item, attr_ty, &Loc::Attr(loc, name))?,
                );
            }
            for name in attrs.keys() {
                object.entry(name.clone()).or_insert(RawValue::Null);
            }
            Ok(RawValue::Object(object))
        }
        Type::Dynamic => {
            let (ty, inner) = value.dynamic(loc)?;
            decode(inner, &ty, &Loc::Wrapped(loc, "dynamic value"))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Msgpack encoding

/// Encodes a value of type `ty` as msgpack.
pub fn encode_msgpack(value: &RawValue, ty: &Type) -> Result<Vec<u8>, CodecError> {
    let encoded = to_mp(value, ty, &Loc::Root)?;
    let mut bytes = Vec::new();
    rmpv::encode::write_value(&mut bytes, &encoded)?;
    Ok(bytes)
}

fn raw_kind(value: &RawValue) -> &'static str {
    match value {
        RawValue::Null => "null",
        RawValue::Unknown(_) => "unknown",
        RawValue::Bool(_) => "bool",
        RawValue::Number(_) => "number",
        RawValue::String(_) => "string",
        RawValue::List(_) => "list",
        RawValue::Set(_) => "set",
        RawValue::Tuple(_) => "tuple",
        RawValue::Map(_) => "map",
        RawValue::Object(_) => "object",
    }
}

fn to_mp(value: &RawValue, ty: &Type, loc: &Loc<'_>) -> Result<Mp, CodecError> {
    if *ty == Type::Dynamic {
        return to_mp_dynamic(value, loc);
    }
    match (value, ty) {
        (RawValue::Null, _) => Ok(Mp::Nil),
        (RawValue::Unknown(refinement), _) => encode_unknown(refinement, ty),
        (RawValue::Bool(b), Type::Bool) => Ok(Mp::Boolean(*b)),
        (RawValue::Number(number), Type::Number) => Ok(encode_number(number)),
        (RawValue::String(text), Type::String) => Ok(Mp::from(text.as_str())),
        (
            RawValue::List(items) | RawValue::Set(items) | RawValue::Tuple(items),
            Type::List(element) | Type::Set(element),
        ) => items
            .iter()
            .enumerate()
            .map(|(i, item)| to_mp(item, element, &Loc::Index(loc, i)))
            .collect::<Result<_, _>>()
            .map(Mp::Array),
        (
            RawValue::List(items) | RawValue::Set(items) | RawValue::Tuple(items),
            Type::Tuple(elements),
        ) => {
            if items.len() != elements.len() {
                return Err(mismatch(
                    loc,
                    format_args!("tuple of {} elements", elements.len()),
                    format!("{} elements", items.len()),
                ));
            }
            items
                .iter()
                .zip(elements)
                .enumerate()
                .map(|(i, (item, ty))| to_mp(item, ty, &Loc::Index(loc, i)))
                .collect::<Result<_, _>>()
                .map(Mp::Array)
        }
        (RawValue::Map(entries) | RawValue::Object(entries), Type::Map(element)) => entries
            .iter()
            .map(|(key, item)| {
                Ok((
                    Mp::from(key.as_str()),
                    to_mp(item, element, &Loc::Key(loc, key))?,
                ))
            })
            .collect::<Result<_, _>>()
            .map(Mp::Map),
        (RawValue::Map(entries) | RawValue::Object(entries), Type::Object(attrs)) => {
            if let Some(name) = entries.keys().find(|name| !attrs.contains_key(*name)) {
                return Err(CodecError::UnexpectedAttribute {
                    path: loc.to_string(),
                    name: name.clone(),
                });
            }
            attrs
                .iter()
                .map(|(name, attr_ty)| {
                    let item = entries.get(name).unwrap_or(&RawValue::Null);
                    Ok((
                        Mp::from(name.as_str()),
                        to_mp(item, attr_ty, &Loc::Attr(loc, name))?,
                    ))
                })
                .collect::<Result<_, _>>()
                .map(Mp::Map)
        }
        (other, ty) => Err(mismatch(loc, type_to_json(ty), raw_kind(other))),
    }
}

/// A value under `dynamic`: a bare nil or plain unknown when no concrete type is known, else
/// `[type JSON as bin, value]` with the type inferred from the value.
fn to_mp_dynamic(value: &RawValue, loc: &Loc<'_>) -> Result<Mp, CodecError> {
    let ty = infer_type(value);
    if ty == Type::Dynamic {
        return match value {
            RawValue::Unknown(_) => encode_unknown(&Refinement::default(), &Type::Dynamic),
            _ => Ok(Mp::Nil),
        };
    }
    let inner = to_mp(value, &ty, &Loc::Wrapped(loc, "dynamic value"))?;
    Ok(Mp::Array(vec![Mp::Binary(type_to_json_bytes(&ty)), inner]))
}

/// An unknown: ext 0 (`d4 00 00`) without refinements, else ext 12 with the refinements that
/// apply to `ty` (cty writes them in key order).
fn encode_unknown(refinement: &Refinement, ty: &Type) -> Result<Mp, CodecError> {
    let mut entries: Vec<(Mp, Mp)> = Vec::new();
    if *ty != Type::Dynamic {
        if let Some(not_null) = refinement.not_null {
            entries.push((Mp::from(RFN_IS_NULL), Mp::Boolean(!not_null)));
        }
        match ty {
            Type::String => {
                if let Some(prefix) = refinement
                    .string_prefix
                    .as_deref()
                    .filter(|p| !p.is_empty())
                {
                    entries.push((Mp::from(RFN_STRING_PREFIX), Mp::from(prefix)));
                }
            }
            Type::Number => {
                for (key, bound) in [
                    (RFN_NUMBER_MIN, &refinement.number_lower),
                    (RFN_NUMBER_MAX, &refinement.number_upper),
                ] {
                    if let Some((number, inclusive)) = bound {
                        entries.push((
                            Mp::from(key),
                            Mp::Array(vec![encode_number(number), Mp::Boolean(*inclusive)]),
                        ));
                    }
                }
            }
            Type::List(_) | Type::Set(_) | Type::Map(_) => {
                if let Some(lower) = refinement.length_lower.filter(|l| *l != 0) {
                    entries.push((Mp::from(RFN_LENGTH_MIN), Mp::from(lower)));
                }
                if let Some(upper) = refinement.length_upper {
                    entries.push((Mp::from(RFN_LENGTH_MAX), Mp::from(upper)));
                }
            }
            _ => {}
        }
    }
    if entries.is_empty() {
        return Ok(Mp::Ext(0, vec![0]));
    }
    let mut payload = Vec::new();
    rmpv::encode::write_value(&mut payload, &Mp::Map(entries))?;
    Ok(Mp::Ext(EXT_REFINED, payload))
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
