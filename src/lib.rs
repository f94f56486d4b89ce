//! terraform-provider-flux: a Terraform / OpenTofu provider, written in Rust, that installs and
//! manages Flux CD through the Flux Operator.
//!
//! Architecture, in reading order (dependencies point one way, see `make layering`):
//!
//! - [`framework`]: Terraform concepts, protocol-agnostic (values, schemas, diagnostics, plans).
//! - [`protocol`]: the only module naming tonic/prost/generated types; tfplugin6 ↔ framework.
//! - [`flux`]: the Flux Operator domain, pure (no I/O).
//! - [`cluster`]: Kubernetes access through kube-rs; knows nothing of Terraform.
//! - [`git`]: Git access through git2; knows nothing of Terraform or Kubernetes.
//! - [`resources`]: one file per Terraform type; the only place domain meets I/O.
//! - [`provider`]: the provider schema, configuration and the list of resources.

pub mod cluster;
pub mod docs;
pub mod flux;
pub mod framework;
pub mod git;
pub mod logging;
pub mod protocol;
pub mod provider;
pub mod resources;
