//! Typed models: the tri-state [`Value<T>`] (known / null / unknown) and the serde bridge between
//! Rust structs and the untyped [`RawValue`] tree ([`from_raw`], [`to_raw`]).
//!
//! A resource declares its Terraform data as a plain serde struct whose attributes are
//! `Value<T>` (or `Option<T>` where unknown cannot occur) and converts at the border:
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use terraform_provider_flux::framework::model::{Value, from_raw, to_raw};
//! use terraform_provider_flux::framework::value::RawValue;
//!
//! #[derive(Debug, PartialEq, Serialize, Deserialize)]
//! struct Model {
//!     name: Value<String>,
//!     replicas: Option<i64>,
//! }
//!
//! let raw = RawValue::object([("name", RawValue::unknown()), ("replicas", RawValue::Null)]);
//! let model: Model = from_raw(&raw).unwrap();
//! assert_eq!(model, Model { name: Value::Unknown, replicas: None });
//! assert_eq!(to_raw(&model).unwrap(), raw);
//! ```
//!
//! Unknown survives the round trip through a private newtype name that only this module's
//! serializer and deserializer recognise; with any other serde format an unknown `Value` reads and
//! writes as null. Rust collections map to lists and maps; the dispatcher shapes the result after
//! the schema type (sets, objects) with [`RawValue::conform`].
//!
//! Must not depend on tonic, prost, kube, git2, or any other module of this crate.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Visitor};
use serde::ser::{self, Serialize};
use serde::{Deserialize, Deserializer, Serializer};

use crate::framework::path::AttrPath;
use crate::framework::value::{Number, RawValue};

/// The private newtype name that carries "unknown" through serde.
const UNKNOWN_MAGIC: &str = "$__terraform_provider_flux_private_Value";

/// A Terraform attribute value: known, null, or not known until apply.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Value<T> {
    /// A known value.
    Known(T),
    /// Null: not set in configuration, or absent.
    #[default]
    Null,
    /// Not known until apply (e.g. computed from another resource).
    Unknown,
}

impl<T> Value<T> {
    /// Whether the value is known (not null, not unknown).
    pub fn is_known(&self) -> bool {
        matches!(self, Value::Known(_))
    }

    /// Whether the value is null.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Whether the value is unknown.
    pub fn is_unknown(&self) -> bool {
        matches!(self, Value::Unknown)
    }

    /// The known value, by reference.
    pub fn as_known(&self) -> Option<&T> {
        match self {
            Value::Known(value) => Some(value),
            _ => None,
        }
    }

    /// The known value, by mutable reference.
    pub fn as_known_mut(&mut self) -> Option<&mut T> {
        match self {
            Value::Known(value) => Some(value),
            _ => None,
        }
    }

    /// The known value, consuming `self`.
    pub fn known(self) -> Option<T> {
        match self {
            Value::Known(value) => Some(value),
            _ => None,
        }
    }

    /// A `Value` of a reference to the known value.
    pub fn as_ref(&self) -> Value<&T> {
        match self {
            Value::Known(value) => Value::Known(value),
            Value::Null => Value::Null,
            Value::Unknown => Value::Unknown,
        }
    }

    /// Maps the known value.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Value<U> {
        match self {
            Value::Known(value) => Value::Known(f(value)),
            Value::Null => Value::Null,
            Value::Unknown => Value::Unknown,
        }
    }

    /// The known value, or `default` when null or unknown.
    pub fn unwrap_or(self, default: T) -> T {
        self.known().unwrap_or(default)
    }

    /// This value if it is known, `other` otherwise.
    #[must_use]
    pub fn or(self, other: Value<T>) -> Value<T> {
        match self {
            Value::Known(value) => Value::Known(value),
            _ => other,
        }
    }
}

impl<T: Default> Value<T> {
    /// The known value, or `T::default()` when null or unknown.
    pub fn unwrap_or_default(self) -> T {
        self.known().unwrap_or_default()
    }
}

impl<T> From<T> for Value<T> {
    fn from(value: T) -> Self {
        Value::Known(value)
    }
}

impl<T> From<Option<T>> for Value<T> {
    /// `Some` is known, `None` is null.
    fn from(value: Option<T>) -> Self {
        value.map_or(Value::Null, Value::Known)
    }
}

impl<T: Serialize> Serialize for Value<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Known(value) => serializer.serialize_some(value),
            Value::Null => serializer.serialize_none(),
            Value::Unknown => serializer.serialize_newtype_struct(UNKNOWN_MAGIC, &()),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Value<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TriState<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for TriState<T> {
            type Value = Value<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value, null or unknown")
            }

            // Only this module's deserializer calls `visit_unit` for the private name: unknown.
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Value::Unknown)
            }

            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Value::Null)
            }

            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                T::deserialize(d).map(Value::Known)
            }

            // Other formats (serde_json, ...): null or a value.
            fn visit_newtype_struct<D: Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<Self::Value, D::Error> {
                Option::<T>::deserialize(d).map(Value::from)
            }
        }

        deserializer.deserialize_newtype_struct(UNKNOWN_MAGIC, TriState(PhantomData))
    }
}

/// Why a typed model and a [`RawValue`] could not be converted into each other. Outside tests
/// this is a provider bug (the model does not match its schema).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{}{message}", path.as_ref().filter(|p| !p.is_root()).map(|p| format!("at {p}: ")).unwrap_or_default())]
pub struct ModelError {
    /// Where in the value the conversion failed, when known.
    pub path: Option<AttrPath>,
    /// What went wrong.
    pub message: String,
}

impl ModelError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            path: None,
            message: message.into(),
        }
    }

    fn at(mut self, path: &AttrPath) -> Self {
        if self.path.is_none() {
            self.path = Some(path.clone());
        }
        self
    }
}

impl de::Error for ModelError {
    fn custom<M: fmt::Display>(message: M) -> Self {
        Self::new(message.to_string())
    }
}

impl ser::Error for ModelError {
    fn custom<M: fmt::Display>(message: M) -> Self {
        Self::new(message.to_string())
    }
}

/// Converts a [`RawValue`] into a typed model.
///
/// # Errors
///
/// When the value does not fit the model, or an unknown value meets a field that is not a
/// [`Value<T>`]; the error names the path.
pub fn from_raw<'a, T: Deserialize<'a>>(value: &'a RawValue) -> Result<T, ModelError> {
    T::deserialize(RawDeserializer {
        value,
        path: AttrPath::root(),
    })
}

/// The message of the error for an unknown value where the model has no [`Value<T>`].
const UNKNOWN_IN_PLAIN_FIELD: &str =
    "value is unknown but the model cannot hold an unknown value (use Value<T>)";

/// Like [`from_raw`], but an unknown element of a collection the model holds as a plain Rust
/// `Vec` or map (a map of strings with one value from a variable at validate time) makes the
/// nearest enclosing value that can be unknown unknown as a whole, instead of failing.
///
/// # Errors
///
/// As [`from_raw`], for anything but such unknowns.
pub fn from_raw_unknown_upward<T: serde::de::DeserializeOwned>(
    value: &RawValue,
) -> Result<T, ModelError> {
    let mut value = std::borrow::Cow::Borrowed(value);
    loop {
        match from_raw::<T>(&value) {
            Err(e) if e.message == UNKNOWN_IN_PLAIN_FIELD => {
                let Some(parent) = e.path.as_ref().and_then(AttrPath::parent) else {
                    return Err(e);
                };
                match value.to_mut().get_path_mut(&parent) {
                    Some(slot) if !matches!(slot, RawValue::Unknown(_)) && !parent.is_root() => {
                        *slot = RawValue::unknown();
                    }
                    _ => return Err(e),
                }
            }
            other => return other,
        }
    }
}

/// Converts a typed model into a [`RawValue`] (structs become objects, sequences lists, maps maps).
///
/// # Errors
///
/// When the model holds something Terraform values cannot express (bytes, non-finite floats,
/// map keys that are not strings).
pub fn to_raw<T: Serialize + ?Sized>(value: &T) -> Result<RawValue, ModelError> {
    value.serialize(RawSerializer)
}

// ---------------------------------------------------------------------------------------------
// Deserializer
// ---------------------------------------------------------------------------------------------

/// Deserializes from a borrowed [`RawValue`], tracking the path for error messages.
struct RawDeserializer<'a> {
    value: &'a RawValue,
    path: AttrPath,
}

impl<'a> RawDeserializer<'a> {
    fn unknown_error(&self) -> ModelError {
        ModelError::new(UNKNOWN_IN_PLAIN_FIELD).at(&self.path)
    }

    fn any<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, ModelError> {
        match self.value {
            RawValue::Null => visitor.visit_unit(),
            RawValue::Unknown(_) => Err(self.unknown_error()),
            RawValue::Bool(b) => visitor.visit_bool(*b),
            RawValue::Number(n) => match n.normalized() {
                Number::Int(i) => visitor.visit_i64(i),
                Number::Float(f) => visitor.visit_f64(f),
                Number::Decimal(text) => match text.parse::<u64>() {
                    Ok(u) => visitor.visit_u64(u),
                    Err(_) => visitor.visit_string(text),
                },
            },
            RawValue::String(s) => visitor.visit_borrowed_str(s),
            RawValue::List(items) | RawValue::Set(items) | RawValue::Tuple(items) => visitor
                .visit_seq(SeqAccess {
                    items: items.iter().enumerate(),
                    path: self.path,
                }),
            RawValue::Map(entries) => visitor.visit_map(MapAccess {
                entries: entries.iter(),
                pending: None,
                path: self.path,
                object: false,
            }),
            RawValue::Object(entries) => visitor.visit_map(MapAccess {
                entries: entries.iter(),
                pending: None,
                path: self.path,
                object: true,
            }),
        }
    }
}

macro_rules! forward_with_path {
    ($($method:ident)*) => {
        $(
            fn $method<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, ModelError> {
                let path = self.path.clone();
                self.any(visitor).map_err(|e| e.at(&path))
            }
        )*
    };
}

impl<'a> Deserializer<'a> for RawDeserializer<'a> {
    type Error = ModelError;

    forward_with_path! {
        deserialize_any deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32
        deserialize_i64 deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32
        deserialize_u64 deserialize_u128 deserialize_char deserialize_str deserialize_string
        deserialize_bytes deserialize_byte_buf deserialize_seq deserialize_map deserialize_identifier
    }

    fn deserialize_f32<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, ModelError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, ModelError> {
        let path = self.path.clone();
        match self.value {
            RawValue::Number(n) => match n.as_f64() {
                Some(f) => visitor.visit_f64(f),
                None => Err(ModelError::new("number is not a valid float")),
            },
            _ => self.any(visitor),
        }
        .map_err(|e| e.at(&path))
    }

    fn deserialize_option<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, ModelError> {
        let path = self.path.clone();
        match self.value {
            RawValue::Null => visitor.visit_none(),
            RawValue::Unknown(_) => Err(self.unknown_error()),
            _ => visitor.visit_some(self),
        }
        .map_err(|e| e.at(&path))
    }

    fn deserialize_unit<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, ModelError> {
        match self.value {
            RawValue::Null => visitor.visit_unit(),
            _ => Err(ModelError::new("expected null").at(&self.path)),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ModelError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'a>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ModelError> {
        let path = self.path.clone();
        if name == UNKNOWN_MAGIC {
            match self.value {
                RawValue::Unknown(_) => visitor.visit_unit(),
                RawValue::Null => visitor.visit_none(),
                _ => visitor.visit_some(self),
            }
        } else {
            visitor.visit_newtype_struct(self)
        }
        .map_err(|e| e.at(&path))
    }

    fn deserialize_tuple<V: Visitor<'a>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, ModelError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, ModelError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ModelError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'a>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ModelError> {
        let path = self.path.clone();
        match self.value {
            RawValue::String(variant) => visitor.visit_enum(EnumAccess {
                variant,
                value: None,
                path: self.path,
            }),
            RawValue::Object(entries) | RawValue::Map(entries) if entries.len() == 1 => {
                let Some((variant, value)) = entries.iter().next() else {
                    return Err(ModelError::new("expected an enum").at(&path));
                };
                visitor.visit_enum(EnumAccess {
                    variant,
                    value: Some(value),
                    path: self.path.then_attr(variant.clone()),
                })
            }
            RawValue::Unknown(_) => Err(self.unknown_error()),
            _ => Err(ModelError::new(
                "expected a string or an object with one attribute for an enum",
            )),
        }
        .map_err(|e| e.at(&path))
    }

    fn deserialize_ignored_any<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, ModelError> {
        visitor.visit_unit()
    }
}

struct SeqAccess<'a, I: Iterator<Item = (usize, &'a RawValue)>> {
    items: I,
    path: AttrPath,
}

impl<'a, I: Iterator<Item = (usize, &'a RawValue)>> de::SeqAccess<'a> for SeqAccess<'a, I> {
    type Error = ModelError;

    fn next_element_seed<T: DeserializeSeed<'a>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ModelError> {
        match self.items.next() {
            None => Ok(None),
            Some((index, value)) => {
                let path = self
                    .path
                    .clone()
                    .then_index(i64::try_from(index).unwrap_or(i64::MAX));
                seed.deserialize(RawDeserializer { value, path }).map(Some)
            }
        }
    }
}

struct MapAccess<'a> {
    entries: std::collections::btree_map::Iter<'a, String, RawValue>,
    pending: Option<(&'a String, &'a RawValue)>,
    path: AttrPath,
    object: bool,
}

impl<'a> de::MapAccess<'a> for MapAccess<'a> {
    type Error = ModelError;

    fn next_key_seed<K: DeserializeSeed<'a>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ModelError> {
        match self.entries.next() {
            None => Ok(None),
            Some((key, value)) => {
                self.pending = Some((key, value));
                seed.deserialize(de::value::BorrowedStrDeserializer::new(key))
                    .map(Some)
            }
        }
    }

    fn next_value_seed<V: DeserializeSeed<'a>>(&mut self, seed: V) -> Result<V::Value, ModelError> {
        let Some((key, value)) = self.pending.take() else {
            return Err(ModelError::new("value requested before key"));
        };
        let path = if self.object {
            self.path.clone().then_attr(key.clone())
        } else {
            self.path.clone().then_key(key.clone())
        };
        seed.deserialize(RawDeserializer { value, path })
    }
}

struct EnumAccess<'a> {
    variant: &'a str,
    value: Option<&'a RawValue>,
    path: AttrPath,
}

impl<'a> de::EnumAccess<'a> for EnumAccess<'a> {
    type Error = ModelError;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'a>>(self, seed: V) -> Result<(V::Value, Self), ModelError> {
        let variant = seed.deserialize(de::value::BorrowedStrDeserializer::new(self.variant))?;
        Ok((variant, self))
    }
}

impl<'a> de::VariantAccess<'a> for EnumAccess<'a> {
    type Error = ModelError;

    fn unit_variant(self) -> Result<(), ModelError> {
        match self.value {
            None | Some(RawValue::Null) => Ok(()),
            Some(_) => Err(ModelError::new("expected a unit variant").at(&self.path)),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'a>>(self, seed: T) -> Result<T::Value, ModelError> {
        match self.value {
            Some(value) => seed.deserialize(RawDeserializer {
                value,
                path: self.path,
            }),
            None => Err(ModelError::new("expected a newtype variant").at(&self.path)),
        }
    }

    fn tuple_variant<V: Visitor<'a>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, ModelError> {
        match self.value {
            Some(value) => RawDeserializer {
                value,
                path: self.path,
            }
            .deserialize_seq(visitor),
            None => Err(ModelError::new("expected a tuple variant").at(&self.path)),
        }
    }

    fn struct_variant<V: Visitor<'a>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ModelError> {
        match self.value {
            Some(value) => RawDeserializer {
                value,
                path: self.path,
            }
            .deserialize_map(visitor),
            None => Err(ModelError::new("expected a struct variant").at(&self.path)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Serializer
// ---------------------------------------------------------------------------------------------

/// Serializes into a [`RawValue`].
struct RawSerializer;

fn int_or_decimal<N: TryInto<i64> + ToString + Copy>(n: N) -> RawValue {
    match n.try_into() {
        Ok(i) => RawValue::Number(Number::Int(i)),
        Err(_) => RawValue::Number(Number::Decimal(n.to_string())),
    }
}

impl Serializer for RawSerializer {
    type Ok = RawValue;
    type Error = ModelError;
    type SerializeSeq = SeqSerializer;
    type SerializeTuple = SeqSerializer;
    type SerializeTupleStruct = SeqSerializer;
    type SerializeTupleVariant = VariantSerializer<SeqSerializer>;
    type SerializeMap = MapSerializer;
    type SerializeStruct = MapSerializer;
    type SerializeStructVariant = VariantSerializer<MapSerializer>;

    fn serialize_bool(self, v: bool) -> Result<RawValue, ModelError> {
        Ok(RawValue::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<RawValue, ModelError> {
        Ok(RawValue::from(i64::from(v)))
    }
    fn serialize_i16(self, v: i16) -> Result<RawValue, ModelError> {
        Ok(RawValue::from(i64::from(v)))
    }
    fn serialize_i32(self, v: i32) -> Result<RawValue, ModelError> {
        Ok(RawValue::from(i64::from(v)))
    }
    fn serialize_i64(self, v: i64) -> Result<RawValue, ModelError> {
        Ok(RawValue::from(v))
    }
    fn serialize_i128(self, v: i128) -> Result<RawValue, ModelError> {
        Ok(int_or_decimal(v))
    }
    fn serialize_u8(self, v: u8) -> Result<RawValue, ModelError> {
        Ok(RawValue::from(i64::from(v)))
    }
    fn serialize_u16(self, v: u16) -> Result<RawValue, ModelError> {
        Ok(RawValue::from(i64::from(v)))
    }
    fn serialize_u32(self, v: u32) -> Result<RawValue, ModelError> {
        Ok(RawValue::from(i64::from(v)))
    }
    fn serialize_u64(self, v: u64) -> Result<RawValue, ModelError> {
        Ok(int_or_decimal(v))
    }
    fn serialize_u128(self, v: u128) -> Result<RawValue, ModelError> {
        Ok(int_or_decimal(v))
    }
    fn serialize_f32(self, v: f32) -> Result<RawValue, ModelError> {
        self.serialize_f64(f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<RawValue, ModelError> {
        if v.is_finite() {
            Ok(RawValue::Number(Number::from_f64(v)))
        } else {
            Err(ModelError::new(format!(
                "{v} cannot be represented as a Terraform number"
            )))
        }
    }
    fn serialize_char(self, v: char) -> Result<RawValue, ModelError> {
        Ok(RawValue::String(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<RawValue, ModelError> {
        Ok(RawValue::String(v.to_string()))
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<RawValue, ModelError> {
        Err(ModelError::new(
            "bytes cannot be represented as a Terraform value; encode them as a string",
        ))
    }
    fn serialize_none(self) -> Result<RawValue, ModelError> {
        Ok(RawValue::Null)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<RawValue, ModelError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<RawValue, ModelError> {
        Ok(RawValue::Null)
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<RawValue, ModelError> {
        Ok(RawValue::Null)
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<RawValue, ModelError> {
        Ok(RawValue::String(variant.to_string()))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<RawValue, ModelError> {
        if name == UNKNOWN_MAGIC {
            Ok(RawValue::unknown())
        } else {
            value.serialize(self)
        }
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<RawValue, ModelError> {
        Ok(RawValue::object([(variant, value.serialize(self)?)]))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqSerializer, ModelError> {
        Ok(SeqSerializer {
            items: Vec::with_capacity(len.unwrap_or(0)),
            tuple: false,
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqSerializer, ModelError> {
        Ok(SeqSerializer {
            items: Vec::with_capacity(len),
            tuple: true,
        })
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<SeqSerializer, ModelError> {
        self.serialize_tuple(len)
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<VariantSerializer<SeqSerializer>, ModelError> {
        Ok(VariantSerializer {
            variant,
            inner: self.serialize_tuple(len)?,
        })
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<MapSerializer, ModelError> {
        Ok(MapSerializer {
            entries: BTreeMap::new(),
            key: None,
            object: false,
        })
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<MapSerializer, ModelError> {
        Ok(MapSerializer {
            entries: BTreeMap::new(),
            key: None,
            object: true,
        })
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<VariantSerializer<MapSerializer>, ModelError> {
        Ok(VariantSerializer {
            variant,
            inner: self.serialize_struct(variant, len)?,
        })
    }
}

/// Collects sequence elements.
struct SeqSerializer {
    items: Vec<RawValue>,
    tuple: bool,
}

impl SeqSerializer {
    fn finish(self) -> RawValue {
        if self.tuple {
            RawValue::Tuple(self.items)
        } else {
            RawValue::List(self.items)
        }
    }
}

impl ser::SerializeSeq for SeqSerializer {
    type Ok = RawValue;
    type Error = ModelError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ModelError> {
        self.items.push(value.serialize(RawSerializer)?);
        Ok(())
    }
    fn end(self) -> Result<RawValue, ModelError> {
        Ok(self.finish())
    }
}

impl ser::SerializeTuple for SeqSerializer {
    type Ok = RawValue;
    type Error = ModelError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ModelError> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<RawValue, ModelError> {
        Ok(self.finish())
    }
}

impl ser::SerializeTupleStruct for SeqSerializer {
    type Ok = RawValue;
    type Error = ModelError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ModelError> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<RawValue, ModelError> {
        Ok(self.finish())
    }
}

/// Collects map entries or struct fields.
struct MapSerializer {
    entries: BTreeMap<String, RawValue>,
    key: Option<String>,
    object: bool,
}

impl MapSerializer {
    fn finish(self) -> RawValue {
        if self.object {
            RawValue::Object(self.entries)
        } else {
            RawValue::Map(self.entries)
        }
    }
}

impl ser::SerializeMap for MapSerializer {
    type Ok = RawValue;
    type Error = ModelError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), ModelError> {
        match key.serialize(RawSerializer)? {
            RawValue::String(key) => {
                self.key = Some(key);
                Ok(())
            }
            RawValue::Number(n) => {
                self.key = n.to_decimal_string();
                Ok(())
            }
            _ => Err(ModelError::new("map keys must be strings")),
        }
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ModelError> {
        let Some(key) = self.key.take() else {
            return Err(ModelError::new("map value serialized before its key"));
        };
        self.entries.insert(key, value.serialize(RawSerializer)?);
        Ok(())
    }
    fn end(self) -> Result<RawValue, ModelError> {
        Ok(self.finish())
    }
}

impl ser::SerializeStruct for MapSerializer {
    type Ok = RawValue;
    type Error = ModelError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), ModelError> {
        self.entries
            .insert(key.to_string(), value.serialize(RawSerializer)?);
        Ok(())
    }
    fn end(self) -> Result<RawValue, ModelError> {
        Ok(self.finish())
    }
}

/// Wraps a tuple or struct variant as `{ variant = ... }`.
struct VariantSerializer<S> {
    variant: &'static str,
    inner: S,
}

impl ser::SerializeTupleVariant for VariantSerializer<SeqSerializer> {
    type Ok = RawValue;
    type Error = ModelError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ModelError> {
        ser::SerializeSeq::serialize_element(&mut self.inner, value)
    }
    fn end(self) -> Result<RawValue, ModelError> {
        Ok(RawValue::object([(self.variant, self.inner.finish())]))
    }
}

impl ser::SerializeStructVariant for VariantSerializer<MapSerializer> {
    type Ok = RawValue;
    type Error = ModelError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), ModelError> {
        ser::SerializeStruct::serialize_field(&mut self.inner, key, value)
    }
    fn end(self) -> Result<RawValue, ModelError> {
        Ok(RawValue::object([(self.variant, self.inner.finish())]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::value::Refinement;
    use pretty_assertions::assert_eq;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Kind {
        GitRepository,
        OciRepository,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Sync {
        kind: Value<Kind>,
        url: Value<String>,
        interval: Option<String>,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Model {
        name: Value<String>,
        replicas: Value<i64>,
        ratio: Value<f64>,
        enabled: Option<bool>,
        components: Value<Vec<String>>,
        labels: Value<BTreeMap<String, String>>,
        sync: Value<Sync>,
    }

    fn obj(pairs: Vec<(&str, RawValue)>) -> RawValue {
        RawValue::object(pairs)
    }

    #[test]
    fn round_trips() {
        struct Case {
            name: &'static str,
            raw: RawValue,
            model: Model,
        }
        let all_null = Model {
            name: Value::Null,
            replicas: Value::Null,
            ratio: Value::Null,
            enabled: None,
            components: Value::Null,
            labels: Value::Null,
            sync: Value::Null,
        };
        let cases = vec![
            Case {
                name: "all null",
                raw: obj(vec![
                    ("name", RawValue::Null),
                    ("replicas", RawValue::Null),
                    ("ratio", RawValue::Null),
                    ("enabled", RawValue::Null),
                    ("components", RawValue::Null),
                    ("labels", RawValue::Null),
                    ("sync", RawValue::Null),
                ]),
                model: all_null.clone(),
            },
            Case {
                name: "unknown at every Value level",
                raw: obj(vec![
                    ("name", RawValue::unknown()),
                    ("replicas", RawValue::unknown()),
                    ("ratio", RawValue::unknown()),
                    ("enabled", RawValue::Bool(false)),
                    ("components", RawValue::unknown()),
                    ("labels", RawValue::unknown()),
                    (
                        "sync",
                        obj(vec![
                            ("kind", RawValue::unknown()),
                            ("url", RawValue::unknown()),
                            ("interval", RawValue::Null),
                        ]),
                    ),
                ]),
                model: Model {
                    name: Value::Unknown,
                    replicas: Value::Unknown,
                    ratio: Value::Unknown,
                    enabled: Some(false),
                    components: Value::Unknown,
                    labels: Value::Unknown,
                    sync: Value::Known(Sync {
                        kind: Value::Unknown,
                        url: Value::Unknown,
                        interval: None,
                    }),
                },
            },
            Case {
                name: "known values",
                raw: obj(vec![
                    ("name", RawValue::string("flux")),
                    ("replicas", RawValue::from(3)),
                    ("ratio", RawValue::Number(Number::Float(0.5))),
                    ("enabled", RawValue::Bool(true)),
                    (
                        "components",
                        RawValue::List(vec![
                            RawValue::string("source-controller"),
                            RawValue::string("kustomize-controller"),
                        ]),
                    ),
                    (
                        "labels",
                        RawValue::Map(BTreeMap::from([(
                            "team".to_string(),
                            RawValue::string("platform"),
                        )])),
                    ),
                    (
                        "sync",
                        obj(vec![
                            ("kind", RawValue::string("oci_repository")),
                            ("url", RawValue::string("oci://ghcr.io/x")),
                            ("interval", RawValue::string("1m")),
                        ]),
                    ),
                ]),
                model: Model {
                    name: Value::Known("flux".into()),
                    replicas: Value::Known(3),
                    ratio: Value::Known(0.5),
                    enabled: Some(true),
                    components: Value::Known(vec![
                        "source-controller".into(),
                        "kustomize-controller".into(),
                    ]),
                    labels: Value::Known(BTreeMap::from([(
                        "team".to_string(),
                        "platform".to_string(),
                    )])),
                    sync: Value::Known(Sync {
                        kind: Value::Known(Kind::OciRepository),
                        url: Value::Known("oci://ghcr.io/x".into()),
                        interval: Some("1m".into()),
                    }),
                },
            },
        ];
        for case in cases {
            let model: Model = from_raw(&case.raw).unwrap_or_else(|e| panic!("{}: {e}", case.name));
            assert_eq!(model, case.model, "{}: from_raw", case.name);
            assert_eq!(to_raw(&model).unwrap(), case.raw, "{}: to_raw", case.name);
        }
    }

    #[test]
    fn unknown_collection_elements_make_the_enclosing_value_unknown() {
        #[derive(Debug, PartialEq, Deserialize)]
        struct Inner {
            labels: Value<BTreeMap<String, String>>,
        }
        #[derive(Debug, PartialEq, Deserialize)]
        struct Outer {
            name: Value<String>,
            meta: Value<Inner>,
            plain: Vec<String>,
        }
        let raw = |plain: RawValue| {
            RawValue::object([
                ("name", RawValue::string("flux")),
                (
                    "meta",
                    RawValue::object([(
                        "labels",
                        RawValue::Map(BTreeMap::from([
                            ("a".to_owned(), RawValue::string("1")),
                            ("b".to_owned(), RawValue::unknown()),
                        ])),
                    )]),
                ),
                ("plain", plain),
            ])
        };
        let ok = raw(RawValue::List(vec![RawValue::string("x")]));
        assert!(from_raw::<Outer>(&ok).is_err(), "from_raw stays strict");
        assert_eq!(
            from_raw_unknown_upward::<Outer>(&ok).unwrap(),
            Outer {
                name: Value::Known("flux".into()),
                meta: Value::Known(Inner {
                    labels: Value::Unknown
                }),
                plain: vec!["x".into()],
            }
        );
        // Nothing above an unknown element of a plain top-level field can be unknown.
        let bad = raw(RawValue::List(vec![RawValue::unknown()]));
        assert_eq!(
            from_raw_unknown_upward::<Outer>(&bad)
                .unwrap_err()
                .to_string(),
            "at plain: value is unknown but the model cannot hold an unknown value (use Value<T>)"
        );
    }

    #[test]
    fn refined_unknown_reads_as_unknown() {
        let raw = RawValue::Unknown(Refinement {
            not_null: Some(true),
            string_prefix: Some("oci://".into()),
            ..Refinement::default()
        });
        let value: Value<String> = from_raw(&raw).unwrap();
        assert_eq!(value, Value::Unknown);
    }

    #[test]
    fn set_and_number_forms_are_accepted() {
        let raw = RawValue::Set(vec![
            RawValue::Number(Number::Float(2.0)),
            RawValue::Number(Number::Decimal("3.000".into())),
        ]);
        let value: Vec<i64> = from_raw(&raw).unwrap();
        assert_eq!(value, vec![2, 3]);
        let big = RawValue::Number(Number::Decimal("18446744073709551615".into()));
        assert_eq!(from_raw::<u64>(&big).unwrap(), u64::MAX);
        assert_eq!(
            to_raw(&u64::MAX).unwrap(),
            RawValue::Number(Number::Decimal("18446744073709551615".into()))
        );
    }

    #[test]
    fn errors_name_the_path() {
        struct Case {
            name: &'static str,
            raw: RawValue,
            want: &'static str,
        }
        let cases = vec![
            Case {
                name: "unknown in an Option",
                raw: obj(vec![
                    ("kind", RawValue::Null),
                    ("url", RawValue::Null),
                    ("interval", RawValue::unknown()),
                ]),
                want: "at interval: value is unknown but the model cannot hold an unknown value (use Value<T>)",
            },
            Case {
                name: "bad enum variant",
                raw: obj(vec![
                    ("kind", RawValue::string("bucket")),
                    ("url", RawValue::Null),
                    ("interval", RawValue::Null),
                ]),
                want: "at kind: unknown variant `bucket`, expected `git_repository` or `oci_repository`",
            },
            Case {
                name: "wrong type",
                raw: obj(vec![
                    ("kind", RawValue::Null),
                    ("url", RawValue::Bool(true)),
                    ("interval", RawValue::Null),
                ]),
                want: "at url: invalid type: boolean `true`, expected a string",
            },
        ];
        for case in cases {
            let err = from_raw::<Sync>(&case.raw).unwrap_err();
            assert_eq!(err.to_string(), case.want, "{}", case.name);
        }
    }

    #[test]
    fn unknown_value_is_null_in_other_formats() {
        let json = serde_json::to_string(&Value::<String>::Unknown).unwrap();
        assert_eq!(json, "null");
        let back: Value<String> = serde_json::from_str("\"x\"").unwrap();
        assert_eq!(back, Value::Known("x".to_string()));
        let null: Value<String> = serde_json::from_str("null").unwrap();
        assert_eq!(null, Value::Null);
    }
}
