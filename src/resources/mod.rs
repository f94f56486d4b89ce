//! One file per Terraform resource and data source type: the only place where the Flux domain
//! meets cluster and Git I/O, and where leaf errors become diagnostics.
//!
//! - [`common`]: the provider-data seam ([`common::ClusterAccess`]), timeouts, error
//!   diagnostics, and the apply/wait/delete machinery for objects the Flux Operator reconciles.

pub mod common;
pub mod flux_bootstrap_git;
pub mod flux_bootstrap_git_import;
pub mod flux_bootstrap_git_model;
pub mod flux_instance;
pub mod flux_instance_model;
pub mod common_fetch;
pub mod flux_instance_data;
pub mod flux_operator;
pub mod flux_resource_set;
