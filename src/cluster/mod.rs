//! Kubernetes access through kube-rs: client construction, server-side apply, dry-run, waits and
//! discovery. Knows nothing of Terraform; never depends on other modules of this crate.
pub mod apply;
pub mod config;
pub mod health;
pub mod objects;
pub mod retry;
pub mod shared;
pub mod shared_read;
pub mod status;
pub mod takeover;
pub mod wait;
