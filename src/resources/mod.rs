//! One file per Terraform resource and data source type: the only place where the Flux domain
//! meets cluster and Git I/O, and where leaf errors become diagnostics. May use `framework`,
//! `flux`, `cluster` and `git`; never `provider` or `protocol`.
//!
//! Reading order:
//!
//! - [`common`]: the provider-data seam ([`common::ClusterAccess`]), timeouts, error
//!   diagnostics naming attributes, the API-JSON ↔ Terraform value mapping, and the
//!   apply/wait/delete machinery for objects the Flux Operator reconciles (FluxInstance,
//!   ResourceSet), re-exported from `common_timeouts`, `common_json`, `common_diagnostics`,
//!   `common_wait` and `common_delete`; [`common_fetch`]: downloading release manifests.
//! - [`flux_operator_model`], [`flux_operator`]: the Flux Operator install;
//!   [`flux_operator_install`]: applying its manifests and checking them against the cluster;
//!   [`flux_operator_existing`]: what is already installed in its namespace; [`affinity`]: the
//!   typed pod affinity attribute its settings use, [`affinity_check`] its rules.
//! - [`flux_instance_model`], [`flux_instance_convert`] (model ↔ API object),
//!   [`flux_instance_live`], [`flux_instance_check`] (plan-time checks), [`flux_instance`],
//!   [`flux_instance_data`]: the FluxInstance resource and data source.
//! - `flux_resource_set`: ResourceSets (its model, the object it makes in `spec`, the model a
//!   live object reads back as in `read`, its cluster reads and plan helpers in
//!   `flux_resource_set_live`, its `dynamic` values in [`flux_resource_set_dynamic`]);
//!   `flux_resource_set_input_provider`: their input providers (model, `convert`, `live`).
//! - [`flux_report_data`]: the operator's FluxReport.
//! - `flux_bootstrap_git*`: Git-backed self-management and classic-bootstrap migration (the
//!   resource in `flux_bootstrap_git`, its model and schema in `flux_bootstrap_git_model`, the
//!   provider's Git settings it uses in `flux_bootstrap_git_config`, what
//!   it renders and reads back in `flux_bootstrap_git_manifest`, create/update in
//!   `flux_bootstrap_git_apply`, read in `flux_bootstrap_git_read`, the Git steps in
//!   `flux_bootstrap_git_repo`, the sync wait in `flux_bootstrap_git_sync`).
//! - [`ownership`]: refusing to create over an object this resource does not manage;
//!   [`reconciled`]: the one apply-and-wait of the objects the operator reconciles.
//! - [`validation`]: what users type, checked per resource at validate time (`flux_instance`,
//!   `flux_bootstrap_git`); [`validation_operator`] and [`validation_resource_set`] for the
//!   operator settings and ResourceSets, over [`validation_checks`].

pub mod affinity;
pub mod affinity_check;
pub mod common;
mod common_delete;
mod common_diagnostics;
pub mod common_fetch;
mod common_json;
mod common_timeouts;
mod common_wait;
pub mod flux_bootstrap_git;
mod flux_bootstrap_git_apply;
pub mod flux_bootstrap_git_auth;
pub mod flux_bootstrap_git_check;
pub mod flux_bootstrap_git_config;
pub mod flux_bootstrap_git_import;
pub mod flux_bootstrap_git_manifest;
pub mod flux_bootstrap_git_model;
mod flux_bootstrap_git_read;
mod flux_bootstrap_git_repo;
mod flux_bootstrap_git_sync;
pub mod flux_instance;
pub mod flux_instance_check;
pub mod flux_instance_convert;
pub mod flux_instance_data;
pub mod flux_instance_live;
pub mod flux_instance_model;
pub mod flux_operator;
pub mod flux_operator_existing;
pub mod flux_operator_install;
pub mod flux_operator_model;
pub mod flux_report_data;
pub mod flux_resource_set;
pub mod flux_resource_set_dynamic;
pub mod flux_resource_set_input_provider;
mod flux_resource_set_live;
pub mod ownership;
pub mod reconciled;
pub mod validation;
pub mod validation_checks;
pub mod validation_operator;
pub mod validation_resource_set;
