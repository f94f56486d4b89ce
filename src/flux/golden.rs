//! Test-only helpers for golden files under `src/flux/testdata/`: compare, or rewrite with
//! `UPDATE_GOLDEN=1`.

use std::path::{Path, PathBuf};

/// `src/flux/testdata/<sub>`, wherever the crate is built from.
pub(crate) fn testdata_dir(sub: &str) -> PathBuf {
    // `file!()` is relative to the workspace root (absolute when built from elsewhere).
    let source = Path::new(file!());
    let here = if source.is_absolute() {
        source.to_path_buf()
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(source)
    };
    here.parent()
        .map(|dir| dir.join("testdata").join(sub))
        .unwrap_or_default()
}

/// Whether golden files should be rewritten (`UPDATE_GOLDEN=1`).
pub(crate) fn updating() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1")
}

/// Compares `content` with `testdata/<sub>/<name>` byte for byte, or rewrites it.
pub(crate) fn check_text(sub: &str, name: &str, content: &str) {
    let file = testdata_dir(sub).join(name);
    if updating() {
        std::fs::create_dir_all(testdata_dir(sub)).unwrap();
        std::fs::write(&file, content).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", file.display()));
    pretty_assertions::assert_eq!(content, want, "golden file {}", file.display());
}

/// Reads `testdata/<sub>/<name>`.
pub(crate) fn read(sub: &str, name: &str) -> String {
    let file = testdata_dir(sub).join(name);
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}
