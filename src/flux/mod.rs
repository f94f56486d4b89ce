//! The Flux Operator domain, pure: FluxInstance and ResourceSet types, rendering, normalisation
//! and status interpretation. No async, no I/O, no Terraform types; never depends on other
//! modules of this crate (only on serde, serde_json, serde-saphyr and the kube/k8s-openapi
//! *types*, never a client).
//!
//! Reading order:
//!
//! - [`instance`]: the `FluxInstance` API types and its reconcile control annotations.
//! - [`normalize`]: the defaults the API server and the operator fill in, and field-level diffs.
//! - [`version`]: Flux version constraints, resolution and downgrade hazards.
//! - [`hazards`]: what a FluxInstance plan must refuse or warn about.
//! - [`status`]: conditions interpreted as a [`status::Readiness`], with diagnostic summaries.
//! - [`resource_set`]: the `ResourceSet` API types and the API's validation rules.
//! - [`input_provider`]: the `ResourceSetInputProvider` API types and the rules its CRD and
//!   the operator enforce.
//! - [`semantic`]: semantic equality and diffs of open values (JSON objects, YAML templates).
//! - [`report`]: the `FluxReport` the operator keeps of the installation.
//! - [`render`]: deterministic manifests committed to Git (`flux-system/`).
//! - [`operator`]: the Flux Operator's release manifests: parse, order, customise, identify.
//! - [`operator_chart`]: the operator Deployment settings of its Helm chart, written and read back.
//! - [`operator_shape`]: how an operator already installed was installed (release, CLI, Helm).
//! - [`bootstrap`]: detection and conversion of classic `flux bootstrap` installations.
//! - [`object`]: object references shared by the above (inventory entries, manifest objects).
//! - [`duration`]: the Go duration strings the API uses (`1m`, `10m0s`).
//! - [`validate`]: rules for values users type (names, quantities, URLs, branches, patches).

/// Defines a closed string enum with its serde names, `as_str`, `Display`, `FromStr` and `ALL`.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash,
            serde::Serialize, serde::Deserialize,
        )]
        $vis enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant, )+
        }

        impl $name {
            /// Every value, in the order the API documents them.
            pub const ALL: &'static [$name] = &[ $( $name::$variant, )+ ];

            /// The API spelling of this value.
            pub fn as_str(self) -> &'static str {
                match self { $( $name::$variant => $text, )+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = crate::flux::UnknownValue;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $( $text => Ok($name::$variant), )+
                    other => Err(crate::flux::UnknownValue {
                        kind: stringify!($name),
                        value: other.to_owned(),
                        allowed: Self::ALL.iter().map(|v| v.as_str()).collect(),
                    }),
                }
            }
        }
    };
}

pub mod bootstrap;
pub mod duration;
#[cfg(test)]
mod golden;
pub mod hazards;
pub mod input_provider;
pub mod instance;
pub mod normalize;
pub mod object;
pub mod operator;
pub mod operator_chart;
pub mod operator_shape;
pub mod render;
pub mod report;
pub mod resource_set;
pub mod semantic;
pub mod status;
pub mod validate;
pub mod version;

/// A string that is not one of the values a closed API enum allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a valid {kind}; expected one of: {}", allowed.join(", "))]
pub struct UnknownValue {
    /// The Rust name of the enum (`Component`, `SyncKind`, ...).
    pub kind: &'static str,
    /// The rejected value.
    pub value: String,
    /// Every value the enum allows, in API spelling.
    pub allowed: Vec<&'static str>,
}
