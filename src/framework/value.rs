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

use crate::framework::path::{AttrPath, PathStep};

impl Type {
    /// `list(element)`.
    pub fn list(element: Type) -> Self {
        Self::List(Box::new(element))
    }

    /// `set(element)`.
    pub fn set(element: Type) -> Self {
        Self::Set(Box::new(element))
    }

    /// `map(element)`.
    pub fn map(element: Type) -> Self {
        Self::Map(Box::new(element))
    }

    /// `object({...})` from `(name, type)` pairs.
    pub fn object<K: Into<String>>(attributes: impl IntoIterator<Item = (K, Type)>) -> Self {
        Self::Object(
            attributes
                .into_iter()
                .map(|(name, ty)| (name.into(), ty))
                .collect(),
        )
    }

    /// Whether this is a primitive type (bool, number, string).
    pub fn is_primitive(&self) -> bool {
        matches!(self, Self::Bool | Self::Number | Self::String)
    }

    /// The element type of a list, set or map.
    pub fn element_type(&self) -> Option<&Type> {
        match self {
            Self::List(element) | Self::Set(element) | Self::Map(element) => Some(element),
            _ => None,
        }
    }

    /// The type of attribute `name` of an object type.
    pub fn attribute_type(&self, name: &str) -> Option<&Type> {
        match self {
            Self::Object(attributes) => attributes.get(name),
            _ => None,
        }
    }

    /// The type found by following `path` from this type (`None` when the path does not fit).
    pub fn type_at(&self, path: &AttrPath) -> Option<&Type> {
        let mut current = self;
        for step in path.steps() {
            current = match (current, step) {
                (Self::Dynamic, _) => return Some(current),
                (Self::Object(attributes), PathStep::Attr(name)) => attributes.get(name)?,
                (Self::Map(element), PathStep::Key(_)) => element,
                (Self::List(element), PathStep::Index(_)) => element,
                (Self::Tuple(elements), PathStep::Index(index)) => {
                    elements.get(usize::try_from(*index).ok()?)?
                }
                _ => return None,
            };
        }
        Some(current)
    }

    /// The compact JSON form used in schemas (`"string"`, `["list","string"]`, ...).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Self::Bool => J::from("bool"),
            Self::Number => J::from("number"),
            Self::String => J::from("string"),
            Self::Dynamic => J::from("dynamic"),
            Self::List(element) => J::Array(vec![J::from("list"), element.to_json()]),
            Self::Set(element) => J::Array(vec![J::from("set"), element.to_json()]),
            Self::Map(element) => J::Array(vec![J::from("map"), element.to_json()]),
            Self::Object(attributes) => J::Array(vec![
                J::from("object"),
                J::Object(
                    attributes
                        .iter()
                        .map(|(name, ty)| (name.clone(), ty.to_json()))
                        .collect(),
                ),
            ]),
            Self::Tuple(elements) => J::Array(vec![
                J::from("tuple"),
                J::Array(elements.iter().map(Type::to_json).collect()),
            ]),
        }
    }

    /// Parses the compact JSON form; `None` when it is not a valid type.
    pub fn from_json(json: &serde_json::Value) -> Option<Self> {
        use serde_json::Value as J;
        match json {
            J::String(name) => match name.as_str() {
                "bool" => Some(Self::Bool),
                "number" => Some(Self::Number),
                "string" => Some(Self::String),
                "dynamic" => Some(Self::Dynamic),
                _ => None,
            },
            J::Array(parts) if parts.len() == 2 => match (parts[0].as_str()?, &parts[1]) {
                ("list", element) => Some(Self::list(Self::from_json(element)?)),
                ("set", element) => Some(Self::set(Self::from_json(element)?)),
                ("map", element) => Some(Self::map(Self::from_json(element)?)),
                ("object", J::Object(attributes)) => Some(Self::Object(
                    attributes
                        .iter()
                        .map(|(name, ty)| Some((name.clone(), Self::from_json(ty)?)))
                        .collect::<Option<_>>()?,
                )),
                ("tuple", J::Array(elements)) => Some(Self::Tuple(
                    elements
                        .iter()
                        .map(Self::from_json)
                        .collect::<Option<_>>()?,
                )),
                _ => None,
            },
            _ => None,
        }
    }
}

impl std::fmt::Display for Type {
    /// The compact JSON form, e.g. `["list","string"]`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.to_json())
    }
}

impl Number {
    /// The normal form: integral values within `i64` become [`Number::Int`]; decimals exactly
    /// representable as a binary float (by shortest round trip) become [`Number::Float`];
    /// remaining decimals keep a canonical text (no exponent, no redundant zeros or sign).
    #[must_use]
    pub fn normalized(&self) -> Number {
        match self {
            Number::Int(i) => Number::Int(*i),
            Number::Float(f) => Self::from_f64(*f),
            Number::Decimal(text) => {
                let Some(canonical) = canonical_decimal(text) else {
                    return Number::Decimal(text.clone());
                };
                if let Ok(i) = canonical.parse::<i64>() {
                    return Number::Int(i);
                }
                if let Ok(f) = canonical.parse::<f64>()
                    && f.is_finite()
                    && canonical_decimal(&format!("{f}")).as_deref() == Some(canonical.as_str())
                {
                    return Number::Float(f);
                }
                Number::Decimal(canonical)
            }
        }
    }

    /// A number from a float, normalised (`2.0` becomes `Int(2)`).
    pub fn from_f64(f: f64) -> Number {
        // -2^63 and 2^63 are exactly representable; the half-open range keeps the cast exact.
        const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
        if f.is_finite() && f.fract() == 0.0 && (-TWO_POW_63..TWO_POW_63).contains(&f) {
            #[allow(clippy::cast_possible_truncation)]
            return Number::Int(f as i64);
        }
        Number::Float(f)
    }

    /// The exact decimal text of this number (no exponent), `None` for non-finite floats or
    /// malformed decimals.
    pub fn to_decimal_string(&self) -> Option<String> {
        match self {
            Number::Int(i) => Some(i.to_string()),
            Number::Float(f) if f.is_finite() => canonical_decimal(&format!("{f}")),
            Number::Float(_) => None,
            Number::Decimal(text) => canonical_decimal(text),
        }
    }

    /// Whether two numbers denote the same value, whatever their representation
    /// (`Int(1)`, `Float(1.0)` and `Decimal("1.000")` are all equal).
    pub fn semantically_eq(&self, other: &Number) -> bool {
        match (self.to_decimal_string(), other.to_decimal_string()) {
            (Some(a), Some(b)) => a == b,
            _ => self == other,
        }
    }

    /// The value as `i64`, when it is an integer within range.
    pub fn as_i64(&self) -> Option<i64> {
        match self.normalized() {
            Number::Int(i) => Some(i),
            _ => None,
        }
    }

    /// The value as `f64` (possibly rounded).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            #[allow(clippy::cast_precision_loss)]
            Number::Int(i) => Some(*i as f64),
            Number::Float(f) => Some(*f),
            Number::Decimal(text) => text.trim().parse().ok(),
        }
    }
}

impl From<i64> for Number {
    fn from(value: i64) -> Self {
        Number::Int(value)
    }
}

/// Canonical decimal text: optional `-`, integer digits without leading zeros, and a fraction
/// without trailing zeros; exponents are expanded. `None` when `text` is not a decimal number.
fn canonical_decimal(text: &str) -> Option<String> {
    let text = text.trim();
    let (negative, rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(at) => (&rest[..at], rest[at + 1..].parse::<i64>().ok()?),
        None => (rest, 0),
    };
    let (int_part, frac_part) = match mantissa.find('.') {
        Some(at) => (&mantissa[..at], &mantissa[at + 1..]),
        None => (mantissa, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if !int_part
        .bytes()
        .chain(frac_part.bytes())
        .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    if exponent.unsigned_abs() > 10_000 {
        return None;
    }
    let digits: String = format!("{int_part}{frac_part}");
    // Position of the decimal point within `digits` after applying the exponent.
    let point = i64::try_from(int_part.len()).ok()? + exponent;
    let (int_digits, frac_digits) = if point <= 0 {
        (
            String::new(),
            format!("{}{digits}", "0".repeat(usize::try_from(-point).ok()?)),
        )
    } else {
        let point = usize::try_from(point).ok()?;
        if point >= digits.len() {
            (
                format!("{digits}{}", "0".repeat(point - digits.len())),
                String::new(),
            )
        } else {
            (digits[..point].to_string(), digits[point..].to_string())
        }
    };
    let int_digits = int_digits.trim_start_matches('0');
    let frac_digits = frac_digits.trim_end_matches('0');
    let int_digits = if int_digits.is_empty() {
        "0"
    } else {
        int_digits
    };
    let zero = int_digits == "0" && frac_digits.is_empty();
    let sign = if negative && !zero { "-" } else { "" };
    Some(if frac_digits.is_empty() {
        format!("{sign}{int_digits}")
    } else {
        format!("{sign}{int_digits}.{frac_digits}")
    })
}

impl RawValue {
    /// A plain unknown (no refinements).
    pub fn unknown() -> Self {
        RawValue::Unknown(Refinement::default())
    }

    /// A string value.
    pub fn string(value: impl Into<String>) -> Self {
        RawValue::String(value.into())
    }

    /// An object value from `(name, value)` pairs.
    pub fn object<K: Into<String>>(attributes: impl IntoIterator<Item = (K, RawValue)>) -> Self {
        RawValue::Object(
            attributes
                .into_iter()
                .map(|(name, value)| (name.into(), value))
                .collect(),
        )
    }

    /// Whether this is null.
    pub fn is_null(&self) -> bool {
        matches!(self, RawValue::Null)
    }

    /// Whether this value itself is unknown.
    pub fn is_unknown(&self) -> bool {
        matches!(self, RawValue::Unknown(_))
    }

    /// Whether this value itself is known (it may still contain unknowns).
    pub fn is_known(&self) -> bool {
        !self.is_unknown()
    }

    /// Whether this value contains no unknown at any depth.
    pub fn is_wholly_known(&self) -> bool {
        match self {
            RawValue::Unknown(_) => false,
            RawValue::List(items) | RawValue::Set(items) | RawValue::Tuple(items) => {
                items.iter().all(RawValue::is_wholly_known)
            }
            RawValue::Map(items) | RawValue::Object(items) => {
                items.values().all(RawValue::is_wholly_known)
            }
            _ => true,
        }
    }

    /// The string, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            RawValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// The boolean, if this is a boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            RawValue::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The number, if this is a number.
    pub fn as_number(&self) -> Option<&Number> {
        match self {
            RawValue::Number(n) => Some(n),
            _ => None,
        }
    }

    /// The number as `i64`, if this is an integral number within range.
    pub fn as_i64(&self) -> Option<i64> {
        self.as_number().and_then(Number::as_i64)
    }

    /// The elements, if this is a list, set or tuple.
    pub fn as_elements(&self) -> Option<&[RawValue]> {
        match self {
            RawValue::List(items) | RawValue::Set(items) | RawValue::Tuple(items) => Some(items),
            _ => None,
        }
    }

    /// The entries, if this is a map or an object.
    pub fn as_entries(&self) -> Option<&BTreeMap<String, RawValue>> {
        match self {
            RawValue::Map(items) | RawValue::Object(items) => Some(items),
            _ => None,
        }
    }

    /// Attribute `name` of an object (`None` if this is not an object or has no such attribute).
    pub fn get_attr(&self, name: &str) -> Option<&RawValue> {
        match self {
            RawValue::Object(attributes) => attributes.get(name),
            _ => None,
        }
    }

    /// The value at `path` (`None` when the path does not exist in this value; a null or unknown
    /// value on the way stops the walk with `None`).
    pub fn get_path(&self, path: &AttrPath) -> Option<&RawValue> {
        let mut current = self;
        for step in path.steps() {
            current = match (current, step) {
                (RawValue::Object(attributes), PathStep::Attr(name)) => attributes.get(name)?,
                (RawValue::Map(entries), PathStep::Key(key)) => entries.get(key)?,
                (RawValue::List(items) | RawValue::Tuple(items), PathStep::Index(index)) => {
                    items.get(usize::try_from(*index).ok()?)?
                }
                _ => return None,
            };
        }
        Some(current)
    }

    /// A mutable reference to the value at `path` (same rules as [`RawValue::get_path`]).
    pub fn get_path_mut(&mut self, path: &AttrPath) -> Option<&mut RawValue> {
        let mut current = self;
        for step in path.steps() {
            current = match (current, step) {
                (RawValue::Object(attributes), PathStep::Attr(name)) => attributes.get_mut(name)?,
                (RawValue::Map(entries), PathStep::Key(key)) => entries.get_mut(key)?,
                (RawValue::List(items) | RawValue::Tuple(items), PathStep::Index(index)) => {
                    items.get_mut(usize::try_from(*index).ok()?)?
                }
                _ => return None,
            };
        }
        Some(current)
    }

    /// The type this value would have on its own: objects, tuples and collections with their
    /// element types; unknown and null values are `dynamic`. A list, set or map whose elements
    /// disagree has element type `dynamic`.
    pub fn infer_type(&self) -> Type {
        fn common(types: impl Iterator<Item = Type>) -> Type {
            let mut found: Option<Type> = None;
            for ty in types {
                match &found {
                    None => found = Some(ty),
                    Some(existing) if *existing == ty => {}
                    Some(_) => return Type::Dynamic,
                }
            }
            found.unwrap_or(Type::Dynamic)
        }
        match self {
            RawValue::Null | RawValue::Unknown(_) => Type::Dynamic,
            RawValue::Bool(_) => Type::Bool,
            RawValue::Number(_) => Type::Number,
            RawValue::String(_) => Type::String,
            RawValue::List(items) => Type::list(common(items.iter().map(RawValue::infer_type))),
            RawValue::Set(items) => Type::set(common(items.iter().map(RawValue::infer_type))),
            RawValue::Map(items) => Type::map(common(items.values().map(RawValue::infer_type))),
            RawValue::Tuple(items) => Type::Tuple(items.iter().map(RawValue::infer_type).collect()),
            RawValue::Object(items) => Type::Object(
                items
                    .iter()
                    .map(|(name, value)| (name.clone(), value.infer_type()))
                    .collect(),
            ),
        }
    }

    /// Semantic equality: like `==`, but numbers compare by value and set elements without
    /// regard to order.
    pub fn semantically_eq(&self, other: &RawValue) -> bool {
        match (self, other) {
            (RawValue::Number(a), RawValue::Number(b)) => a.semantically_eq(b),
            (RawValue::List(a), RawValue::List(b)) | (RawValue::Tuple(a), RawValue::Tuple(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.semantically_eq(y))
            }
            (RawValue::Set(a), RawValue::Set(b)) => {
                a.len() == b.len()
                    && a.iter().all(|x| b.iter().any(|y| x.semantically_eq(y)))
                    && b.iter().all(|y| a.iter().any(|x| x.semantically_eq(y)))
            }
            (RawValue::Map(a), RawValue::Map(b)) | (RawValue::Object(a), RawValue::Object(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .all(|(key, x)| b.get(key).is_some_and(|y| x.semantically_eq(y)))
            }
            _ => self == other,
        }
    }

    /// This value shaped after `ty`: lists become sets where the type says set (and back), maps
    /// become objects (and back), missing object attributes are added as null, attributes not in
    /// the type are dropped, and numbers are normalised. Null and unknown stay as they are;
    /// primitives that do not fit are left untouched (the protocol layer reports them).
    #[must_use]
    pub fn conform(self, ty: &Type) -> RawValue {
        match (self, ty) {
            (value @ (RawValue::Null | RawValue::Unknown(_)), _) => value,
            (value, Type::Dynamic) => value,
            (RawValue::Number(n), Type::Number) => RawValue::Number(n.normalized()),
            (
                RawValue::List(items) | RawValue::Set(items) | RawValue::Tuple(items),
                Type::List(element),
            ) => RawValue::List(items.into_iter().map(|v| v.conform(element)).collect()),
            (
                RawValue::List(items) | RawValue::Set(items) | RawValue::Tuple(items),
                Type::Set(element),
            ) => RawValue::Set(items.into_iter().map(|v| v.conform(element)).collect()),
            (
                RawValue::List(items) | RawValue::Set(items) | RawValue::Tuple(items),
                Type::Tuple(elements),
            ) => RawValue::Tuple(
                items
                    .into_iter()
                    .zip(elements)
                    .map(|(v, t)| v.conform(t))
                    .collect(),
            ),
            (RawValue::Map(items) | RawValue::Object(items), Type::Map(element)) => RawValue::Map(
                items
                    .into_iter()
                    .map(|(k, v)| (k, v.conform(element)))
                    .collect(),
            ),
            (RawValue::Map(mut items) | RawValue::Object(mut items), Type::Object(attributes)) => {
                RawValue::Object(
                    attributes
                        .iter()
                        .map(|(name, attr_ty)| {
                            let value = items.remove(name).unwrap_or_default();
                            (name.clone(), value.conform(attr_ty))
                        })
                        .collect(),
                )
            }
            (value, _) => value,
        }
    }

    /// This value, or a plain unknown if it is null.
    #[must_use]
    pub fn null_to_unknown(self) -> RawValue {
        match self {
            RawValue::Null => RawValue::unknown(),
            other => other,
        }
    }
}

impl From<&str> for RawValue {
    fn from(value: &str) -> Self {
        RawValue::String(value.to_string())
    }
}

impl From<String> for RawValue {
    fn from(value: String) -> Self {
        RawValue::String(value)
    }
}

impl From<bool> for RawValue {
    fn from(value: bool) -> Self {
        RawValue::Bool(value)
    }
}

impl From<i64> for RawValue {
    fn from(value: i64) -> Self {
        RawValue::Number(Number::Int(value))
    }
}

/// Why a JSON document does not fit a [`Type`] (see [`RawValue::from_json`]).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("at {path}: expected {expected}")]
pub struct JsonTypeError {
    /// Where the mismatch is.
    pub path: AttrPath,
    /// The type expected there.
    pub expected: String,
}

impl RawValue {
    /// Reads Terraform's JSON form of a value of type `ty` (as stored in state): objects may
    /// lack attributes (they become null) and attributes not in the type are dropped; a
    /// `dynamic` value is `{"value": ..., "type": ...}` or, failing that, inferred from the JSON.
    ///
    /// # Errors
    ///
    /// When the JSON does not fit the type; the error names the path.
    pub fn from_json(json: &serde_json::Value, ty: &Type) -> Result<RawValue, JsonTypeError> {
        from_json_at(json, ty, &AttrPath::root())
    }
}

fn from_json_at(
    json: &serde_json::Value,
    ty: &Type,
    path: &AttrPath,
) -> Result<RawValue, JsonTypeError> {
    use serde_json::Value as J;
    let mismatch = || JsonTypeError {
        path: path.clone(),
        expected: ty.to_string(),
    };
    let index_path = |i: usize| {
        path.clone()
            .then_index(i64::try_from(i).unwrap_or(i64::MAX))
    };
    Ok(match (json, ty) {
        (J::Null, _) => RawValue::Null,
        (json, Type::Dynamic) => {
            if let J::Object(wrapper) = json
                && wrapper.len() == 2
                && let (Some(value), Some(inner)) = (wrapper.get("value"), wrapper.get("type"))
                && let Some(inner) = Type::from_json(inner)
            {
                return from_json_at(value, &inner, path);
            }
            infer_from_json(json)
        }
        (J::Bool(b), Type::Bool) => RawValue::Bool(*b),
        (J::Number(n), Type::Number) => RawValue::Number(json_number(n)),
        (J::String(text), Type::Number) => {
            RawValue::Number(Number::Decimal(text.clone()).normalized())
        }
        (J::String(text), Type::String) => RawValue::String(text.clone()),
        (J::Array(items), Type::List(element)) => RawValue::List(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| from_json_at(item, element, &index_path(i)))
                .collect::<Result<_, _>>()?,
        ),
        (J::Array(items), Type::Set(element)) => RawValue::Set(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| from_json_at(item, element, &index_path(i)))
                .collect::<Result<_, _>>()?,
        ),
        (J::Array(items), Type::Tuple(elements)) if items.len() == elements.len() => {
            RawValue::Tuple(
                items
                    .iter()
                    .zip(elements)
                    .enumerate()
                    .map(|(i, (item, element))| from_json_at(item, element, &index_path(i)))
                    .collect::<Result<_, _>>()?,
            )
        }
        (J::Object(entries), Type::Map(element)) => RawValue::Map(
            entries
                .iter()
                .map(|(key, item)| {
                    Ok((
                        key.clone(),
                        from_json_at(item, element, &path.clone().then_key(key.clone()))?,
                    ))
                })
                .collect::<Result<_, _>>()?,
        ),
        (J::Object(entries), Type::Object(attributes)) => RawValue::Object(
            attributes
                .iter()
                .map(|(name, attr_ty)| {
                    let value = match entries.get(name) {
                        Some(item) => {
                            from_json_at(item, attr_ty, &path.clone().then_attr(name.clone()))?
                        }
                        None => RawValue::Null,
                    };
                    Ok((name.clone(), value))
                })
                .collect::<Result<_, _>>()?,
        ),
        _ => return Err(mismatch()),
    })
}

fn json_number(n: &serde_json::Number) -> Number {
    if let Some(i) = n.as_i64() {
        Number::Int(i)
    } else if let Some(u) = n.as_u64() {
        Number::Decimal(u.to_string())
    } else {
        Number::from_f64(n.as_f64().unwrap_or(f64::NAN))
    }
}

fn infer_from_json(json: &serde_json::Value) -> RawValue {
    use serde_json::Value as J;
    match json {
        J::Null => RawValue::Null,
        J::Bool(b) => RawValue::Bool(*b),
        J::Number(n) => RawValue::Number(json_number(n)),
        J::String(s) => RawValue::String(s.clone()),
        J::Array(items) => RawValue::Tuple(items.iter().map(infer_from_json).collect()),
        J::Object(entries) => RawValue::Object(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), infer_from_json(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn number_normalisation() {
        let cases: Vec<(&str, Number, Number)> = vec![
            ("int stays", Number::Int(7), Number::Int(7)),
            ("integral float", Number::Float(2.0), Number::Int(2)),
            ("fractional float", Number::Float(0.5), Number::Float(0.5)),
            ("float beyond i64", Number::Float(1e20), Number::Float(1e20)),
            ("decimal int", Number::Decimal("42".into()), Number::Int(42)),
            (
                "decimal zeros",
                Number::Decimal("+042.500".into()),
                Number::Float(42.5),
            ),
            (
                "decimal exponent",
                Number::Decimal("1.5e3".into()),
                Number::Int(1500),
            ),
            (
                "beyond u64",
                Number::Decimal("18446744073709551616".into()),
                Number::Decimal("18446744073709551616".into()),
            ),
            (
                "beyond f64 precision",
                Number::Decimal("0.10000000000000000000001".into()),
                Number::Decimal("0.10000000000000000000001".into()),
            ),
            (
                "negative zero",
                Number::Decimal("-0.0".into()),
                Number::Int(0),
            ),
        ];
        for (name, input, want) in cases {
            assert_eq!(input.normalized(), want, "{name}");
        }
    }

    #[test]
    fn number_semantic_equality() {
        assert!(Number::Int(1).semantically_eq(&Number::Float(1.0)));
        assert!(Number::Int(1).semantically_eq(&Number::Decimal("1.000".into())));
        assert!(Number::Float(0.1).semantically_eq(&Number::Decimal("0.1".into())));
        assert!(
            !Number::Float(0.1).semantically_eq(&Number::Decimal("0.1000000000000000001".into()))
        );
        assert!(!Number::Int(1).semantically_eq(&Number::Int(2)));
    }

    #[test]
    fn type_json_round_trip() {
        let ty = Type::object([
            ("a", Type::list(Type::String)),
            ("b", Type::Tuple(vec![Type::Bool, Type::Dynamic])),
            ("c", Type::map(Type::set(Type::Number))),
        ]);
        let json = ty.to_json();
        assert_eq!(
            json.to_string(),
            r#"["object",{"a":["list","string"],"b":["tuple",["bool","dynamic"]],"c":["map",["set","number"]]}]"#
        );
        assert_eq!(Type::from_json(&json), Some(ty));
        assert_eq!(Type::from_json(&serde_json::json!("strin")), None);
    }

    #[test]
    fn paths_and_knownness() {
        let value = RawValue::object([
            (
                "sync",
                RawValue::object([
                    ("url", RawValue::unknown()),
                    ("kind", RawValue::from("Git")),
                ]),
            ),
            (
                "patches",
                RawValue::List(vec![RawValue::object([("patch", RawValue::from("p0"))])]),
            ),
            (
                "labels",
                RawValue::Map(BTreeMap::from([("a".into(), RawValue::from("b"))])),
            ),
        ]);
        let p = |s: &[&str]| {
            let mut path = AttrPath::root();
            for step in s {
                path = path.then_attr(*step);
            }
            path
        };
        assert_eq!(
            value.get_path(&p(&["sync", "kind"])),
            Some(&RawValue::from("Git"))
        );
        assert_eq!(
            value.get_path(&AttrPath::attr("patches").then_index(0).then_attr("patch")),
            Some(&RawValue::from("p0"))
        );
        assert_eq!(
            value.get_path(&AttrPath::attr("patches").then_index(1)),
            None
        );
        assert_eq!(
            value.get_path(&AttrPath::attr("labels").then_key("a")),
            Some(&RawValue::from("b"))
        );
        assert_eq!(value.get_path(&p(&["sync", "url", "deeper"])), None);
        assert!(value.is_known());
        assert!(!value.is_wholly_known());
        assert!(value.get_path(&p(&["patches"])).unwrap().is_wholly_known());
        assert_eq!(
            value.infer_type(),
            Type::object([
                (
                    "sync",
                    Type::object([("url", Type::Dynamic), ("kind", Type::String)])
                ),
                (
                    "patches",
                    Type::list(Type::object([("patch", Type::String)]))
                ),
                ("labels", Type::map(Type::String)),
            ])
        );
    }

    #[test]
    fn conform_shapes_after_type() {
        let ty = Type::object([
            ("tags", Type::set(Type::String)),
            (
                "meta",
                Type::object([("x", Type::Number), ("y", Type::String)]),
            ),
            ("extra", Type::map(Type::String)),
        ]);
        let input = RawValue::object([
            ("tags", RawValue::List(vec![RawValue::from("a")])),
            (
                "meta",
                RawValue::Map(BTreeMap::from([
                    ("x".into(), RawValue::Number(Number::Float(3.0))),
                    ("dropped".into(), RawValue::from("z")),
                ])),
            ),
            ("extra", RawValue::object([("k", RawValue::from("v"))])),
        ]);
        let want = RawValue::object([
            ("tags", RawValue::Set(vec![RawValue::from("a")])),
            (
                "meta",
                RawValue::object([("x", RawValue::from(3)), ("y", RawValue::Null)]),
            ),
            (
                "extra",
                RawValue::Map(BTreeMap::from([("k".into(), RawValue::from("v"))])),
            ),
        ]);
        assert_eq!(input.conform(&ty), want);
    }

    #[test]
    fn set_semantic_equality_ignores_order() {
        let a = RawValue::Set(vec![RawValue::from("x"), RawValue::from("y")]);
        let b = RawValue::Set(vec![RawValue::from("y"), RawValue::from("x")]);
        assert!(a.semantically_eq(&b));
        assert!(!a.semantically_eq(&RawValue::Set(vec![RawValue::from("x")])));
    }

    #[test]
    fn from_json_follows_the_type() {
        let ty = Type::object([
            ("name", Type::String),
            ("tags", Type::set(Type::String)),
            ("n", Type::Number),
            ("any", Type::Dynamic),
            ("missing", Type::Bool),
        ]);
        let json = serde_json::json!({
            "name": "x",
            "tags": ["a"],
            "n": 12,
            "any": {"value": ["a", 1], "type": ["tuple", ["string", "number"]]},
            "dropped": true
        });
        assert_eq!(
            RawValue::from_json(&json, &ty).unwrap(),
            RawValue::object([
                ("name", RawValue::from("x")),
                ("tags", RawValue::Set(vec![RawValue::from("a")])),
                ("n", RawValue::from(12)),
                (
                    "any",
                    RawValue::Tuple(vec![RawValue::from("a"), RawValue::from(1)])
                ),
                ("missing", RawValue::Null),
            ])
        );
        let bad = serde_json::json!({"name": 1});
        assert_eq!(
            RawValue::from_json(&bad, &ty).unwrap_err().to_string(),
            "at name: expected \"string\""
        );
    }
}
