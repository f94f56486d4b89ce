//! Inventory entries, object identities and digests as the Flux Operator writes them in status:
//! `<namespace>_<name>_<group>_<kind>` ids, `sha256:<hex>` digests of rendered object sets,
//! `v<version>@sha256:<hex>` revisions, and the adler32 input-set ids of ResourceSets.
//!
//! Pure code: no I/O, nothing from the rest of the simulator.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Errors reading object identities.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InventoryError {
    /// An inventory id does not have the four `_`-separated parts.
    #[error("invalid inventory id '{0}'")]
    ParseId(String),
    /// An object lacks `apiVersion`, `kind` or `metadata.name`.
    #[error("object is missing {0}")]
    MissingField(&'static str),
}

/// Identity of a Kubernetes object: the parts of an inventory entry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectRef {
    /// Namespace, empty for cluster-scoped objects.
    pub namespace: String,
    /// Object name.
    pub name: String,
    /// API group, empty for the core group.
    pub group: String,
    /// Kind.
    pub kind: String,
    /// API version (without the group), the inventory entry's `v`.
    pub version: String,
}

impl ObjectRef {
    /// Reads the identity of an object (`apiVersion`, `kind`, `metadata.{name,namespace}`).
    pub fn of(obj: &Value) -> Result<ObjectRef, InventoryError> {
        let api_version = obj["apiVersion"]
            .as_str()
            .ok_or(InventoryError::MissingField("apiVersion"))?;
        let kind = obj["kind"]
            .as_str()
            .ok_or(InventoryError::MissingField("kind"))?;
        let name = obj["metadata"]["name"]
            .as_str()
            .ok_or(InventoryError::MissingField("metadata.name"))?;
        let (group, version) = split_api_version(api_version);
        Ok(ObjectRef {
            namespace: obj["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            name: name.to_string(),
            group: group.to_string(),
            kind: kind.to_string(),
            version: version.to_string(),
        })
    }

    /// The inventory id `<namespace>_<name>_<group>_<kind>`.
    pub fn id(&self) -> String {
        format!(
            "{}_{}_{}_{}",
            self.namespace, self.name, self.group, self.kind
        )
    }

    /// `apiVersion` of the object (`group/version`, or `version` for the core group).
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The status entry `{"id": ..., "v": ...}`.
    pub fn entry(&self) -> Value {
        serde_json::json!({"id": self.id(), "v": self.version})
    }

    /// Parses a status entry back into an identity.
    pub fn from_entry(entry: &Value) -> Result<ObjectRef, InventoryError> {
        let id = entry["id"].as_str().unwrap_or_default();
        let parts: Vec<&str> = id.split('_').collect();
        let [namespace, name, group, kind] = parts.as_slice() else {
            return Err(InventoryError::ParseId(id.to_string()));
        };
        if name.is_empty() || kind.is_empty() {
            return Err(InventoryError::ParseId(id.to_string()));
        }
        Ok(ObjectRef {
            namespace: namespace.to_string(),
            name: name.to_string(),
            group: group.to_string(),
            kind: kind.to_string(),
            version: entry["v"].as_str().unwrap_or_default().to_string(),
        })
    }
}

/// Splits `group/version` (or a bare core `version`).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.rsplit_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

/// Reads the inventory entries of a FluxInstance or ResourceSet status.
pub fn read_inventory(obj: &Value) -> Vec<ObjectRef> {
    obj["status"]["inventory"]["entries"]
        .as_array()
        .map(|es| {
            es.iter()
                .filter_map(|e| ObjectRef::from_entry(e).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Serialises a value with object keys sorted, so equal values digest equally.
pub fn canonical_json(v: &Value) -> String {
    fn sort(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                let mut out = Map::new();
                for k in keys {
                    out.insert(k.clone(), sort(&m[k]));
                }
                Value::Object(out)
            }
            Value::Array(a) => Value::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    sort(v).to_string()
}

/// Lower-case hex SHA-256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `sha256:<hex>` digest of a set of rendered objects (order-sensitive, key-order-insensitive).
pub fn digest_objects(objects: &[Value]) -> String {
    let mut text = String::new();
    for o in objects {
        text.push_str(&canonical_json(o));
        text.push('\n');
    }
    format!("sha256:{}", sha256_hex(text.as_bytes()))
}

/// The FluxInstance revision `v<version>@sha256:<hex>`.
pub fn revision(version: &str, digest: &str) -> String {
    format!("{version}@{digest}")
}

/// Adler-32 checksum (RFC 1950), used for the ResourceSet `inputs.id`.
pub fn adler32(bytes: &[u8]) -> u32 {
    const MOD: u32 = 65521;
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in bytes {
        a = (a + u32::from(byte)) % MOD;
        b = (b + a) % MOD;
    }
    (b << 16) | a
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_round_trip() {
        let dep = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "source-controller", "namespace": "flux-system"}});
        let r = ObjectRef::of(&dep).unwrap();
        assert_eq!(
            r.entry(),
            json!({"id": "flux-system_source-controller_apps_Deployment", "v": "v1"})
        );
        assert_eq!(ObjectRef::from_entry(&r.entry()).unwrap(), r);
        assert_eq!(r.api_version(), "apps/v1");

        let ns =
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "flux-system"}});
        let r = ObjectRef::of(&ns).unwrap();
        assert_eq!(
            r.entry(),
            json!({"id": "_flux-system__Namespace", "v": "v1"})
        );
        assert_eq!(ObjectRef::from_entry(&r.entry()).unwrap(), r);
        assert_eq!(r.api_version(), "v1");

        assert_eq!(
            ObjectRef::from_entry(&json!({"id": "a_b_c", "v": "v1"})),
            Err(InventoryError::ParseId("a_b_c".into()))
        );
        assert_eq!(
            ObjectRef::of(&json!({"kind": "X"})),
            Err(InventoryError::MissingField("apiVersion"))
        );
    }

    #[test]
    fn digests_ignore_key_order() {
        let a = json!({"b": 1, "a": {"y": [1, 2], "x": null}});
        let b = json!({"a": {"x": null, "y": [1, 2]}, "b": 1});
        assert_eq!(canonical_json(&a), r#"{"a":{"x":null,"y":[1,2]},"b":1}"#);
        assert_eq!(
            digest_objects(std::slice::from_ref(&a)),
            digest_objects(&[b])
        );
        assert_ne!(
            digest_objects(std::slice::from_ref(&a)),
            digest_objects(&[a.clone(), a])
        );
        let d = digest_objects(&[]);
        assert_eq!(
            d,
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(revision("v2.7.5", &d).len(), "v2.7.5@sha256:".len() + 64);
    }

    #[test]
    fn adler32_matches_rfc1950_examples() {
        assert_eq!(adler32(b""), 1);
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
    }
}
