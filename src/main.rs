//! The `terraform-provider-flux` binary: logging to stderr, build the provider, serve.
fn main() {}
