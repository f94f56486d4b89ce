//! Terraform concepts, protocol-agnostic. In reading order:
//!
//! - [`value`]: the untyped value tree ([`value::RawValue`]), types, numbers.
//! - [`model`]: the tri-state [`model::Value<T>`] and the serde bridge to typed models.
//! - [`path`] and [`diagnostics`]: where and what went wrong, for the user.
//! - [`schema`]: schema builders (descriptions are the docs) and the schema lint.
//! - [`plan`]: the plan rules Terraform enforces, as helpers.
//! - [`resource`]: the `Provider`, `Resource` and `DataSource` traits and their `Context`.
//! - [`server`]: the dispatcher implementing [`service::ProviderService`] over a provider.
//! - [`service`]: the boundary the protocol layer calls.
//!
//! Must not depend on tonic, prost, kube, git2, or any other module of this crate.

pub mod diagnostics;
pub mod model;
pub mod path;
pub mod plan;
pub mod resource;
pub mod schema;
pub mod server;
pub mod service;
pub mod value;
