//! Flux Operator simulator: a controller that talks to the sandbox through a `kube::Client`,
//! following the operator's documented behaviour.

pub mod build;
pub mod fixtures;
pub mod inventory;
pub mod ops;
pub mod template;
pub mod version;
