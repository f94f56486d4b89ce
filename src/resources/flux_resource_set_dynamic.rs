//! The value of a `dynamic` attribute of `flux_resource_set` (and the input provider) as a serde
//! model field ([`Dynamic`]): it rebuilds the value tree (sequences as tuples, maps as objects:
//! the kinds HCL and `yamldecode` produce) and writes it back with the same kinds; and the
//! conversions of wholly known values to and from plain JSON.
//!
//! Lives in `resources/`: may use `framework` and `flux`; does no I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::framework::model::Value;
use crate::framework::path::AttrPath;
use crate::framework::value::{Number, RawValue, Type};

/// The value of a `dynamic` attribute, as a field of a serde model (`Value<Dynamic>`: null and
/// unknown at the top are the `Value`'s). Reading rebuilds sequences as tuples and maps as
/// objects, the kinds HCL expressions and `yamldecode` produce; unknown values inside survive.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Dynamic(pub RawValue);

/// Object attribute names for `serialize_struct`, which wants `&'static str`: each distinct
/// name is allocated once per process.
pub(crate) fn intern(key: &str) -> &'static str {
    use std::collections::BTreeSet;
    use std::sync::{Mutex, OnceLock, PoisonError};
    static KEYS: OnceLock<Mutex<BTreeSet<&'static str>>> = OnceLock::new();
    let mut keys = KEYS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(existing) = keys.get(key) {
        return existing;
    }
    let leaked: &'static str = Box::leak(key.to_owned().into_boxed_str());
    keys.insert(leaked);
    leaked
}

impl Serialize for Dynamic {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq, SerializeStruct, SerializeTuple};
        let element = |v: &RawValue| dynamic_value(v.clone());
        match &self.0 {
            RawValue::Null => serializer.serialize_none(),
            RawValue::Unknown(_) => Value::<Dynamic>::Unknown.serialize(serializer),
            RawValue::Bool(b) => serializer.serialize_bool(*b),
            RawValue::String(text) => serializer.serialize_str(text),
            RawValue::Number(n) => match n.normalized() {
                Number::Int(i) => serializer.serialize_i64(i),
                Number::Float(f) => serializer.serialize_f64(f),
                Number::Decimal(text) => match text.parse::<i128>() {
                    Ok(i) => serializer.serialize_i128(i),
                    Err(_) => serializer.serialize_f64(text.parse::<f64>().unwrap_or(0.0)),
                },
            },
            RawValue::List(items) | RawValue::Set(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&element(item))?;
                }
                seq.end()
            }
            RawValue::Tuple(items) => {
                let mut seq = serializer.serialize_tuple(items.len())?;
                for item in items {
                    seq.serialize_element(&element(item))?;
                }
                seq.end()
            }
            RawValue::Map(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(key, &element(value))?;
                }
                map.end()
            }
            RawValue::Object(entries) => {
                let mut object = serializer.serialize_struct("object", entries.len())?;
                for (key, value) in entries {
                    object.serialize_field(intern(key), &element(value))?;
                }
                object.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Dynamic {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Dynamic;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any value")
            }
            fn visit_unit<E>(self) -> Result<Dynamic, E> {
                Ok(Dynamic(RawValue::Null))
            }
            fn visit_none<E>(self) -> Result<Dynamic, E> {
                Ok(Dynamic(RawValue::Null))
            }
            fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Dynamic, D::Error> {
                Dynamic::deserialize(d)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Dynamic, E> {
                Ok(Dynamic(RawValue::Bool(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Dynamic, E> {
                Ok(Dynamic(RawValue::Number(Number::Int(v))))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Dynamic, E> {
                Ok(Dynamic(RawValue::Number(
                    Number::Decimal(v.to_string()).normalized(),
                )))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Dynamic, E> {
                Ok(Dynamic(RawValue::Number(Number::from_f64(v))))
            }
            fn visit_str<E>(self, v: &str) -> Result<Dynamic, E> {
                Ok(Dynamic(RawValue::String(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Dynamic, E> {
                Ok(Dynamic(RawValue::String(v)))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Dynamic, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Value<Dynamic>>()? {
                    items.push(dynamic_raw(&item));
                }
                Ok(Dynamic(RawValue::Tuple(items)))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Dynamic, A::Error> {
                let mut entries = BTreeMap::new();
                while let Some((key, value)) = map.next_entry::<String, Value<Dynamic>>()? {
                    entries.insert(key, dynamic_raw(&value));
                }
                Ok(Dynamic(RawValue::Object(entries)))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// A `dynamic` attribute as one untyped value (null, unknown, or the value).
pub fn dynamic_raw(value: &Value<Dynamic>) -> RawValue {
    match value {
        Value::Known(d) => d.0.clone(),
        Value::Null => RawValue::Null,
        Value::Unknown => RawValue::unknown(),
    }
}

/// An untyped value as a `dynamic` attribute.
pub fn dynamic_value(raw: RawValue) -> Value<Dynamic> {
    match raw {
        RawValue::Null => Value::Null,
        RawValue::Unknown(_) => Value::Unknown,
        other => Value::Known(Dynamic(other)),
    }
}

/// Why a model does not give a ResourceSet spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// Some value is not known until apply.
    #[error("the configuration has values not known until apply")]
    Unknown,
    /// A value does not have the shape the API needs.
    #[error("{path}: {message}")]
    Shape {
        /// The attribute.
        path: AttrPath,
        /// What is wrong.
        message: String,
    },
}

/// A wholly known Terraform value as plain JSON (object and map keys unchanged).
///
/// # Errors
///
/// [`SpecError::Unknown`] when any part is unknown.
pub fn raw_to_json(value: &RawValue) -> Result<Json, SpecError> {
    Ok(match value {
        RawValue::Null => Json::Null,
        RawValue::Unknown(_) => return Err(SpecError::Unknown),
        RawValue::Bool(b) => Json::Bool(*b),
        RawValue::String(text) => Json::String(text.clone()),
        RawValue::Number(n) => number_to_json(n),
        RawValue::List(items) | RawValue::Set(items) | RawValue::Tuple(items) => {
            Json::Array(items.iter().map(raw_to_json).collect::<Result<_, _>>()?)
        }
        RawValue::Map(entries) | RawValue::Object(entries) => Json::Object(
            entries
                .iter()
                .map(|(k, v)| Ok((k.clone(), raw_to_json(v)?)))
                .collect::<Result<_, SpecError>>()?,
        ),
    })
}

pub(crate) fn number_to_json(n: &Number) -> Json {
    match n.normalized() {
        Number::Int(i) => Json::from(i),
        Number::Float(f) => serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number),
        Number::Decimal(text) => text
            .parse::<u64>()
            .map(Json::from)
            .ok()
            .or_else(|| {
                text.parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map(Json::Number)
            })
            .unwrap_or(Json::String(text)),
    }
}

/// Plain JSON as a `dynamic` Terraform value (arrays become tuples, objects objects).
pub fn json_to_raw(json: &Json) -> RawValue {
    RawValue::from_json(json, &Type::Dynamic).unwrap_or_default()
}
