//! Flux Operator simulator: a controller that talks to the sandbox through a `kube::Client`,
//! following the operator's documented behaviour.

pub mod inventory;
pub mod template;
pub mod version;
