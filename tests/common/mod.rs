//! Shared helpers for the integration tests (Rust's convention: `tests/common/mod.rs` is not a
//! test crate of its own). Each test crate includes it with `mod common;` and uses what it needs.
//!
//! - [`terraform`]: runs the real `terraform` CLI against the provider binary built by cargo,
//!   through `dev_overrides`, in a temporary workspace.
//! - [`real_cluster`]: the run's real control plane (`scripts/real-cluster.sh`), shared by the
//!   test processes through `FLUX_TEST_KUBECONFIG`, with per-test namespaces and a
//!   shared/exclusive lease for cluster-scoped changes.
//! - [`cluster`]: the cluster of one acceptance test — the real control plane or, where only
//!   it can do the job, a private kube-sandbox ([`sandbox`]) — behind one API.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

pub mod cluster;
pub mod git_server;
pub mod real_cluster;
// Some test crates also include the file themselves (older code): allowed.
#[allow(clippy::duplicate_mod)]
#[path = "../fixtures/flux_instance/sandbox.rs"]
pub mod sandbox;
pub mod terraform;
