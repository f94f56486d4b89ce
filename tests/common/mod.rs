//! Shared helpers for the integration tests (Rust's convention: `tests/common/mod.rs` is not a
//! test crate of its own). Each test crate includes it with `mod common;` and uses what it needs.
//!
//! - [`terraform`]: runs the real `terraform` CLI against the provider binary built by cargo,
//!   through `dev_overrides`, in a temporary workspace.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

pub mod git_server;
pub mod terraform;
