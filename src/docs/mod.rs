//! The documentation generator behind the hidden `docs` subcommand (`make docs`): turns the
//! provider's schemas (whose Markdown descriptions are the single source of the documentation)
//! and the files under `examples/` into the Terraform Registry layout — `docs/index.md`,
//! `docs/resources/<name>.md`, `docs/data-sources/<name>.md` (names without the `flux_`
//! prefix). Output is deterministic, so a test can compare it byte for byte with `docs/`.
//!
//! [`page`] renders one page (pure); this module reads examples and writes files.
//! Depends on `framework` only (the caller passes the schemas); must not depend on
//! `protocol`, `resources`, `cluster`, `git` or `flux`.

pub mod page;

use std::io;
use std::path::{Path, PathBuf};

use crate::framework::service::ProviderSchemas;

pub use page::{Kind, TypeExamples};

/// The provider type name; resource and data source names start with `flux_`.
pub const PROVIDER_NAME: &str = "flux";

/// What went wrong while generating the documentation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An example file exists but could not be read.
    #[error("reading example {path}: {source}")]
    ReadExample {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// An output directory could not be created.
    #[error("creating directory {path}: {source}")]
    CreateDirectory {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// An output directory could not be listed (to find stale pages).
    #[error("listing {path}: {source}")]
    ListPages {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A page that no longer matches any resource or data source could not be removed.
    #[error("removing stale page {path}: {source}")]
    RemoveStalePage {
        /// The page.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A page could not be written.
    #[error("writing {path}: {source}")]
    WritePage {
        /// The page.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
}

/// One generated page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    /// Path relative to the output directory, e.g. `resources/instance.md`.
    pub path: PathBuf,
    /// The Markdown content.
    pub content: String,
}

/// What [`generate`] changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Pages written because they were new or different (relative paths).
    pub written: Vec<PathBuf>,
    /// Pages left as they were (relative paths).
    pub unchanged: Vec<PathBuf>,
    /// Stale pages removed (relative paths).
    pub removed: Vec<PathBuf>,
}

/// The sub-directories of the output directory this generator owns: every `.md` file in them
/// that it did not generate is removed. Anything else (e.g. `docs/guides/`) is left alone.
pub const MANAGED_DIRECTORIES: [&str; 2] = ["resources", "data-sources"];

/// The page path (relative to the output directory) of a resource or data source.
pub fn page_path(kind: Kind, type_name: &str) -> PathBuf {
    let short = type_name
        .strip_prefix(&format!("{PROVIDER_NAME}_"))
        .unwrap_or(type_name);
    let directory = match kind {
        Kind::Resource => "resources",
        Kind::DataSource => "data-sources",
    };
    Path::new(directory).join(format!("{short}.md"))
}

/// The examples folder of a resource or data source, relative to the examples directory.
pub fn example_directory(kind: Kind, type_name: &str) -> PathBuf {
    match kind {
        Kind::Resource => Path::new("resources").join(type_name),
        Kind::DataSource => Path::new("data-sources").join(type_name),
    }
}

/// Renders every page: the provider page, one per resource and one per data source, in a
/// stable order (index, then resources and data sources by type name).
///
/// # Errors
///
/// [`Error::ReadExample`] when an example file exists but cannot be read.
pub fn render(schemas: &ProviderSchemas, examples: &Path) -> Result<Vec<Page>, Error> {
    let mut pages = vec![Page {
        path: PathBuf::from("index.md"),
        content: page::provider_page(
            PROVIDER_NAME,
            &schemas.provider,
            read_optional(&examples.join("provider").join("provider.tf"))?.as_deref(),
        ),
    }];
    let kinds = [
        (Kind::Resource, &schemas.resources, "resource.tf"),
        (Kind::DataSource, &schemas.data_sources, "data-source.tf"),
    ];
    for (kind, types, usage_file) in kinds {
        for (type_name, schema) in types {
            let folder = examples.join(example_directory(kind, type_name));
            let type_examples = TypeExamples {
                usage: read_optional(&folder.join(usage_file))?,
                import_sh: match kind {
                    Kind::Resource => read_optional(&folder.join("import.sh"))?,
                    Kind::DataSource => None,
                },
                import_block: match kind {
                    Kind::Resource => read_optional(&folder.join("import-by-string-id.tf"))?,
                    Kind::DataSource => None,
                },
            };
            pages.push(Page {
                path: page_path(kind, type_name),
                content: page::type_page(kind, type_name, schema, &type_examples),
            });
        }
    }
    Ok(pages)
}

/// Writes `pages` under `out` (only files whose content changed are rewritten) and removes
/// stale `.md` files from the [`MANAGED_DIRECTORIES`].
///
/// # Errors
///
/// The [`Error`] of the first file operation that failed.
pub fn write(pages: &[Page], out: &Path) -> Result<Summary, Error> {
    let mut summary = Summary::default();
    for directory in MANAGED_DIRECTORIES {
        let path = out.join(directory);
        std::fs::create_dir_all(&path).map_err(|source| Error::CreateDirectory {
            path: path.clone(),
            source,
        })?;
        let mut stale = Vec::new();
        let entries = std::fs::read_dir(&path).map_err(|source| Error::ListPages {
            path: path.clone(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| Error::ListPages {
                path: path.clone(),
                source,
            })?;
            let relative = Path::new(directory).join(entry.file_name());
            let is_page = relative.extension().is_some_and(|e| e == "md");
            if is_page && !pages.iter().any(|p| p.path == relative) {
                stale.push(relative);
            }
        }
        stale.sort();
        for relative in stale {
            let path = out.join(&relative);
            std::fs::remove_file(&path)
                .map_err(|source| Error::RemoveStalePage { path, source })?;
            summary.removed.push(relative);
        }
    }
    for page in pages {
        let path = out.join(&page.path);
        if std::fs::read_to_string(&path).is_ok_and(|existing| existing == page.content) {
            summary.unchanged.push(page.path.clone());
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| Error::CreateDirectory {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        std::fs::write(&path, &page.content).map_err(|source| Error::WritePage {
            path: path.clone(),
            source,
        })?;
        summary.written.push(page.path.clone());
    }
    Ok(summary)
}

/// [`render`] then [`write()`]: regenerates the documentation under `out` from `schemas` and the
/// examples under `examples`.
///
/// # Errors
///
/// See [`render`] and [`write()`].
pub fn generate(schemas: &ProviderSchemas, examples: &Path, out: &Path) -> Result<Summary, Error> {
    let pages = render(schemas, examples)?;
    write(&pages, out)
}

/// The file's content, or `None` when it does not exist.
fn read_optional(path: &Path) -> Result<Option<String>, Error> {
    match std::fs::read_to_string(path) {
        Ok(content) => Ok(Some(content)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::ReadExample {
            path: path.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::framework::schema::{Attribute, Schema};
    use crate::framework::service::ServerCapabilities;
    use pretty_assertions::assert_eq;

    fn schemas() -> ProviderSchemas {
        let schema = |d: &str| {
            Schema::new(
                0,
                d,
                vec![Attribute::string("name").required().description("Name.")],
            )
        };
        ProviderSchemas {
            provider: schema("The provider."),
            resources: BTreeMap::from([
                ("flux_widget".to_string(), schema("A widget.")),
                ("flux_gadget".to_string(), schema("A gadget.")),
            ]),
            data_sources: BTreeMap::from([("flux_widget".to_string(), schema("Reads."))]),
            capabilities: ServerCapabilities::default(),
        }
    }

    fn write_file(path: &Path, content: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    #[test]
    fn render_names_pages_and_reads_each_types_examples() {
        let examples = tempfile::tempdir().unwrap();
        let root = examples.path();
        write_file(&root.join("provider/provider.tf"), "provider \"flux\" {}\n");
        write_file(
            &root.join("resources/flux_widget/resource.tf"),
            "resource \"flux_widget\" \"w\" {}\n",
        );
        write_file(
            &root.join("resources/flux_widget/import.sh"),
            "terraform import flux_widget.w x\n",
        );
        write_file(
            &root.join("data-sources/flux_widget/data-source.tf"),
            "data \"flux_widget\" \"w\" {}\n",
        );
        let pages = render(&schemas(), root).unwrap();
        let want = [
            (
                "index.md",
                page::provider_page("flux", &schemas().provider, Some("provider \"flux\" {}\n")),
            ),
            (
                "resources/gadget.md",
                page::type_page(
                    Kind::Resource,
                    "flux_gadget",
                    &schemas().resources["flux_gadget"],
                    &TypeExamples::default(),
                ),
            ),
            (
                "resources/widget.md",
                page::type_page(
                    Kind::Resource,
                    "flux_widget",
                    &schemas().resources["flux_widget"],
                    &TypeExamples {
                        usage: Some("resource \"flux_widget\" \"w\" {}\n".to_string()),
                        import_sh: Some("terraform import flux_widget.w x\n".to_string()),
                        import_block: None,
                    },
                ),
            ),
            (
                "data-sources/widget.md",
                page::type_page(
                    Kind::DataSource,
                    "flux_widget",
                    &schemas().data_sources["flux_widget"],
                    &TypeExamples {
                        usage: Some("data \"flux_widget\" \"w\" {}\n".to_string()),
                        import_sh: None,
                        import_block: None,
                    },
                ),
            ),
        ]
        .map(|(path, content)| Page {
            path: PathBuf::from(path),
            content,
        });
        assert_eq!(pages, want.to_vec());
    }

    #[test]
    fn write_removes_stale_pages_only_in_managed_directories() {
        let examples = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let out = out.path();
        write_file(&out.join("resources/removed.md"), "old");
        write_file(&out.join("resources/notes.txt"), "kept: not a page");
        write_file(&out.join("guides/migration.md"), "kept: not managed");
        let pages = render(&schemas(), examples.path()).unwrap();
        let first = write(&pages, out).unwrap();
        assert_eq!(
            first,
            Summary {
                written: [
                    "index.md",
                    "resources/gadget.md",
                    "resources/widget.md",
                    "data-sources/widget.md"
                ]
                .map(PathBuf::from)
                .to_vec(),
                unchanged: vec![],
                removed: vec![PathBuf::from("resources/removed.md")],
            }
        );
        let mut files: Vec<String> = walk(out);
        files.sort();
        assert_eq!(
            files,
            [
                "data-sources/widget.md",
                "guides/migration.md",
                "index.md",
                "resources/gadget.md",
                "resources/notes.txt",
                "resources/widget.md",
            ]
        );
        for page in &pages {
            assert_eq!(
                std::fs::read_to_string(out.join(&page.path)).unwrap(),
                page.content
            );
        }
        let second = write(&pages, out).unwrap();
        assert_eq!(second.written, Vec::<PathBuf>::new());
        assert_eq!(second.removed, Vec::<PathBuf>::new());
        assert_eq!(second.unchanged.len(), 4);
    }

    fn walk(root: &Path) -> Vec<String> {
        let mut files = Vec::new();
        let mut dirs = vec![root.to_path_buf()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    let relative = path.strip_prefix(root).unwrap();
                    files.push(relative.to_string_lossy().into_owned());
                }
            }
        }
        files
    }

    #[test]
    fn unreadable_example_is_an_error_naming_the_file() {
        let examples = tempfile::tempdir().unwrap();
        // A directory where a file is expected cannot be read as a string.
        std::fs::create_dir_all(examples.path().join("provider/provider.tf")).unwrap();
        let error = render(&schemas(), examples.path()).unwrap_err();
        assert!(
            matches!(&error, Error::ReadExample { path, .. }
                if path == &examples.path().join("provider/provider.tf")),
            "{error}"
        );
    }
}
