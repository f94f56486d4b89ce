//! Repository-relative paths: validation and normalisation of the paths callers read and write.
//! Pure; depends on nothing but `std` and this module's error type.

use std::fmt;

use super::Error;

/// A validated, normalised path inside a repository's working tree, with `/` separators.
///
/// It is never empty, never absolute, has no `.` or `..` components, no empty components and
/// never names the `.git` directory. Build one with [`RepoPath::new`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RepoPath(String);

impl RepoPath {
    /// Validates and normalises `raw`: `./a//b/` becomes `a/b`; `..`, absolute paths, backslashes,
    /// NUL bytes and `.git` components are rejected with [`Error::Path`].
    pub fn new(raw: &str) -> Result<Self, Error> {
        let invalid = |reason: &'static str| Error::Path {
            path: raw.to_owned(),
            reason,
        };
        if raw.starts_with('/') {
            return Err(invalid(
                "must be relative to the repository root, not absolute",
            ));
        }
        if raw.contains('\\') {
            return Err(invalid("must use '/' as separator (no backslashes)"));
        }
        if raw.contains('\0') {
            return Err(invalid("must not contain NUL bytes"));
        }
        let mut parts = Vec::new();
        for part in raw.split('/') {
            match part {
                "" | "." => {}
                ".." => return Err(invalid("must not contain '..' components")),
                p if p.eq_ignore_ascii_case(".git") => {
                    return Err(invalid("must not name the .git directory"));
                }
                p => parts.push(p),
            }
        }
        if parts.is_empty() {
            return Err(invalid(
                "must name a file or directory below the repository root",
            ));
        }
        Ok(Self(parts.join("/")))
    }

    /// The normalised path, `/`-separated.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `self` is `dir` or lies below it.
    pub fn is_within(&self, dir: &RepoPath) -> bool {
        self.0 == dir.0
            || (self.0.starts_with(&dir.0) && self.0.as_bytes().get(dir.0.len()) == Some(&b'/'))
    }
}

impl fmt::Display for RepoPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for RepoPath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_valid_paths() {
        let cases = [
            ("clusters/prod", "clusters/prod"),
            ("./clusters//prod/", "clusters/prod"),
            ("a/./b/c.yaml", "a/b/c.yaml"),
            ("file", "file"),
        ];
        for (raw, want) in cases {
            let got = RepoPath::new(raw).map(|p| p.0).map_err(|e| e.to_string());
            assert_eq!(got, Ok(want.to_owned()), "{raw}");
        }
    }

    #[test]
    fn rejects_invalid_paths_with_reason() {
        let cases = [
            (
                "../etc",
                "invalid path \"../etc\": must not contain '..' components",
            ),
            (
                "a/../../b",
                "invalid path \"a/../../b\": must not contain '..' components",
            ),
            (
                "/abs",
                "invalid path \"/abs\": must be relative to the repository root, not absolute",
            ),
            (
                "",
                "invalid path \"\": must name a file or directory below the repository root",
            ),
            (
                "./",
                "invalid path \"./\": must name a file or directory below the repository root",
            ),
            (
                ".git/config",
                "invalid path \".git/config\": must not name the .git directory",
            ),
            (
                "a\\b",
                "invalid path \"a\\\\b\": must use '/' as separator (no backslashes)",
            ),
        ];
        for (raw, want) in cases {
            let got = RepoPath::new(raw).map(|p| p.0).map_err(|e| e.to_string());
            assert_eq!(got, Err(want.to_owned()), "{raw}");
        }
    }

    #[test]
    fn within() {
        let dir = RepoPath::new("clusters/prod").unwrap();
        assert!(
            RepoPath::new("clusters/prod/x.yaml")
                .unwrap()
                .is_within(&dir)
        );
        assert!(RepoPath::new("clusters/prod").unwrap().is_within(&dir));
        assert!(
            !RepoPath::new("clusters/production/x")
                .unwrap()
                .is_within(&dir)
        );
        assert!(!RepoPath::new("clusters").unwrap().is_within(&dir));
    }
}
