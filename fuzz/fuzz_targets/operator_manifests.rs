//! Fuzz target `operator_manifests`: see `tests/fixtures/fuzz_bodies.rs`.
#![no_main]

#[path = "../../tests/fixtures/fuzz_bodies.rs"]
mod fuzz_bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_bodies::operator_manifests(data));
