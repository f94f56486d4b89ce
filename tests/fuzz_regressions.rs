//! The fuzz targets' bodies (`tests/fixtures/fuzz_bodies.rs`, run for long by `make fuzz`)
//! replayed on every input kept in the repository: each crash the fuzzer found
//! (`fuzz/regressions/<target>/`) and the seed corpus (`fuzz/seeds/<target>/`). A crash that
//! comes back fails here, in `make test`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "fixtures/fuzz_bodies.rs"]
mod fuzz_bodies;

use std::path::Path;

fn inputs(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, Vec<u8>)> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    out.sort();
    out
}

#[test]
fn every_kept_input_passes_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut replayed = 0;
    for (target, body) in fuzz_bodies::TARGETS {
        let seeds = inputs(&root.join("seeds").join(target));
        assert!(!seeds.is_empty(), "no seed inputs for fuzz target {target}");
        for (name, data) in seeds
            .iter()
            .chain(inputs(&root.join("regressions").join(target)).iter())
        {
            let result = std::panic::catch_unwind(|| body(data));
            assert!(result.is_ok(), "fuzz target {target} fails on {name}");
            replayed += 1;
        }
    }
    assert!(replayed >= fuzz_bodies::TARGETS.len());
}
