//! The untyped Terraform value tree ([`RawValue`]), Terraform types ([`Type`]), arbitrary-precision
//! numbers ([`Number`]) and unknown-value refinements ([`Refinement`]).
//!
//! This is the currency between the protocol layer (which decodes and encodes msgpack/JSON
//! `DynamicValue`s into and out of it, directed by the schema's [`Type`]) and the framework (which
//! converts it to typed models with serde). It knows nothing of the wire format, of tonic or prost,
//! nor of Kubernetes, Git or Flux.

use std::collections::BTreeMap;

/// A Terraform (cty) type, as written in the schema's compact JSON form
/// (`"string"`, `["list","string"]`, `["object",{"a":"number"}]`, `"dynamic"`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Type {
    /// `bool`
    Bool,
    /// `number` (arbitrary precision)
    Number,
    /// `string`
    String,
    /// `dynamic`: the concrete type travels with the value on the wire.
    Dynamic,
    /// `list(T)`
    List(Box<Type>),
    /// `set(T)`
    Set(Box<Type>),
    /// `map(T)`
    Map(Box<Type>),
    /// `object({...})`
    Object(BTreeMap<String, Type>),
    /// `tuple([...])`
    Tuple(Vec<Type>),
}

/// A Terraform number. Integers that fit `i64` are [`Number::Int`]; other finite binary floats are
/// [`Number::Float`]; anything beyond `i64`/`f64` precision keeps its exact decimal text in
/// [`Number::Decimal`] (Terraform sends such numbers as msgpack strings).
#[derive(Clone, Debug, PartialEq)]
pub enum Number {
    /// An integer within `i64`.
    Int(i64),
    /// A finite binary floating point number that is not an integer within `i64`.
    Float(f64),
    /// An exact decimal representation (e.g. `"18446744073709551616"` or `"0.1000000000000000000001"`).
    Decimal(String),
}

/// What Terraform knows about a value that is not yet known (msgpack extension 12 payload).
/// All fields `None` means a plain unknown (extension 0).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Refinement {
    /// `Some(true)` when the eventual value is known not to be null.
    pub not_null: Option<bool>,
    /// A prefix the eventual string value is known to start with.
    pub string_prefix: Option<String>,
    /// Lower bound of the eventual number and whether it is inclusive.
    pub number_lower: Option<(Number, bool)>,
    /// Upper bound of the eventual number and whether it is inclusive.
    pub number_upper: Option<(Number, bool)>,
    /// Lower bound of the eventual collection length.
    pub length_lower: Option<u64>,
    /// Upper bound of the eventual collection length.
    pub length_upper: Option<u64>,
}

/// An untyped Terraform value. Collections keep their kind (list, set, tuple, map, object) so
/// that a value can be re-encoded exactly as it arrived, including under a `dynamic` type.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum RawValue {
    /// null
    #[default]
    Null,
    /// Not known until apply, with whatever Terraform knows about it.
    Unknown(Refinement),
    /// A boolean.
    Bool(bool),
    /// A number.
    Number(Number),
    /// A string.
    String(String),
    /// A list.
    List(Vec<RawValue>),
    /// A set (element order is not significant).
    Set(Vec<RawValue>),
    /// A tuple.
    Tuple(Vec<RawValue>),
    /// A map with string keys.
    Map(BTreeMap<String, RawValue>),
    /// An object (attribute name → value).
    Object(BTreeMap<String, RawValue>),
}
