//! `kube-sandbox` binary.
fn main() {}
