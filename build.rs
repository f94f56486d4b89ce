//! Compiles the protocol definitions in `proto/` (placeholder until the protocol layer lands).
fn main() {}
