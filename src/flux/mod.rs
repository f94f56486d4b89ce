//! The Flux Operator domain, pure: FluxInstance and ResourceSet types, rendering, normalisation
//! and status interpretation. No async, no I/O, no Terraform types; never depends on other
//! modules of this crate.
