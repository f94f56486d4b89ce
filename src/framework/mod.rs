//! Terraform concepts, protocol-agnostic: values, types, attribute paths, diagnostics, schemas,
//! the [`service::ProviderService`] boundary the protocol layer calls, and (to come) typed models,
//! plan helpers and the resource/data-source traits.
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
