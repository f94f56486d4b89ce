//! The generated documentation in `docs/` is current and complete:
//!
//! - regenerating it from the provider schema and `examples/` gives the committed files byte
//!   for byte (otherwise: run `make docs`);
//! - every resource and data source that the real `terraform providers schema -json` reports
//!   (provider binary through `dev_overrides`) has a page, and the page lists exactly the
//!   schema's attributes and blocks, nested ones included, each in the Required / Optional /
//!   Read-Only group its flags call for and with the Sensitive and Write-only markers it must
//!   carry.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests panic on setup failures.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::terraform::{PROVIDER_SOURCE, REQUIRED_PROVIDERS, Workspace};
use pretty_assertions::assert_eq;
use serde_json::Value;
use terraform_provider_flux::docs;
use terraform_provider_flux::provider;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The pages the generator owns under `root`, relative path → content.
fn managed_pages(root: &Path) -> BTreeMap<String, String> {
    let mut pages = BTreeMap::new();
    let index = root.join("index.md");
    if index.is_file() {
        pages.insert(
            "index.md".to_string(),
            std::fs::read_to_string(index).unwrap(),
        );
    }
    for directory in docs::MANAGED_DIRECTORIES {
        let Ok(entries) = std::fs::read_dir(root.join(directory)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "md") {
                let name = format!(
                    "{directory}/{}",
                    path.file_name().unwrap().to_string_lossy()
                );
                pages.insert(name, std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    pages
}

#[test]
fn docs_match_the_schema_and_examples() {
    let out = tempfile::tempdir().unwrap();
    docs::generate(
        provider::service().schemas(),
        &repo().join("examples"),
        out.path(),
    )
    .unwrap();
    let fresh = managed_pages(out.path());
    let committed = managed_pages(&repo().join("docs"));
    let mut problems = Vec::new();
    for (name, content) in &fresh {
        match committed.get(name) {
            None => problems.push(format!("docs/{name} is missing")),
            Some(old) if old != content => problems.push(format!("docs/{name} is out of date")),
            Some(_) => {}
        }
    }
    for name in committed.keys() {
        if !fresh.contains_key(name) {
            problems.push(format!(
                "docs/{name} is stale (no such resource or data source)"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "docs/ does not match the provider schema and examples/; run `make docs` and commit \
         the result:\n  {}",
        problems.join("\n  ")
    );
    // The comparison above covers every page: the provider page plus one per type.
    let service = provider::service();
    let schemas = service.schemas();
    assert_eq!(
        fresh.len(),
        1 + schemas.resources.len() + schemas.data_sources.len()
    );
}

/// One schema entry as documented: `path` (dotted), group, markers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Documented {
    path: String,
    group: String,
    sensitive: bool,
    write_only: bool,
}

impl Documented {
    /// One line, for readable diffs: `path [Group] Sensitive Write-only`.
    fn line(&self) -> String {
        let mut line = format!("{} [{}]", self.path, self.group);
        if self.sensitive {
            line.push_str(" Sensitive");
        }
        if self.write_only {
            line.push_str(" Write-only");
        }
        line
    }
}

/// The entries a `terraform providers schema -json` block calls for, depth first.
fn expected_entries(
    block: &Value,
    prefix: &str,
    parent_read_only: bool,
    out: &mut Vec<Documented>,
) {
    let join = |name: &str| {
        if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}.{name}")
        }
    };
    let flag = |v: &Value, name: &str| v.get(name).and_then(Value::as_bool).unwrap_or(false);
    if let Some(attributes) = block.get("attributes").and_then(Value::as_object) {
        for (name, attribute) in attributes {
            let group = if parent_read_only {
                "Read-Only"
            } else if flag(attribute, "required") {
                "Required"
            } else if flag(attribute, "optional") {
                "Optional"
            } else {
                "Read-Only"
            };
            let path = join(name);
            out.push(Documented {
                path: path.clone(),
                group: group.to_string(),
                sensitive: flag(attribute, "sensitive"),
                write_only: flag(attribute, "write_only"),
            });
            if let Some(nested) = attribute.get("nested_type") {
                expected_entries(nested, &path, group == "Read-Only", out);
            }
        }
    }
    if let Some(blocks) = block.get("block_types").and_then(Value::as_object) {
        for (name, nested) in blocks {
            let path = join(name);
            // Blocks are listed too; their group depends on their content, so only the name
            // and the absence of attribute markers are checked.
            out.push(Documented {
                path: path.clone(),
                group: "(block)".to_string(),
                sensitive: false,
                write_only: false,
            });
            expected_entries(&nested["block"], &path, parent_read_only, out);
        }
    }
}

/// The entries a generated page lists: every `- \`name\` (...)` bullet of the schema section,
/// under the path of the nested-schema anchor it follows (object-type field lists, anchored
/// `nestedobjatt--`, describe a type rather than attributes and are skipped).
fn documented_entries(page: &str, block_paths: &[String]) -> Vec<Documented> {
    let mut entries = Vec::new();
    let mut in_schema = false;
    let mut prefix: Option<String> = Some(String::new());
    let mut group = String::new();
    for line in page.lines() {
        if line == "## Schema" {
            in_schema = true;
            continue;
        }
        if line.starts_with("## ") {
            in_schema = false;
        }
        if !in_schema {
            continue;
        }
        if let Some(anchor) = line
            .strip_prefix("<a id=\"")
            .and_then(|rest| rest.strip_suffix("\"></a>"))
        {
            let (kind, path) = anchor.split_once("--").unwrap();
            prefix = match kind {
                "nestedatt" | "nestedblock" => Some(path.replace("--", ".")),
                _ => None,
            };
            continue;
        }
        if let Some(title) = line
            .strip_prefix("### ")
            .or_else(|| line.strip_suffix(':'))
            .filter(|t| ["Required", "Optional", "Read-Only"].contains(t))
        {
            group = title.to_string();
            continue;
        }
        let Some(prefix) = &prefix else { continue };
        let Some(rest) = line.strip_prefix("- `") else {
            continue;
        };
        let (name, rest) = rest.split_once('`').unwrap();
        let markers = parenthesised(rest.trim_start());
        let path = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}.{name}")
        };
        let is_block = block_paths.contains(&path);
        entries.push(Documented {
            group: if is_block {
                "(block)".to_string()
            } else {
                group.clone()
            },
            sensitive: markers.split(", ").any(|m| m == "Sensitive"),
            write_only: markers.contains("Write-only"),
            path,
        });
    }
    entries.sort();
    entries
}

/// The text inside the parentheses `text` starts with (nested parentheses included).
fn parenthesised(text: &str) -> String {
    assert!(text.starts_with('('), "no markers in {text:?}");
    let mut depth = 0;
    for (index, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return text[1..index].to_string();
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced markers in {text:?}")
}

fn check_page(page_path: &Path, block: &Value) -> Option<String> {
    let Ok(page) = std::fs::read_to_string(page_path) else {
        return Some(format!("{} is missing", page_path.display()));
    };
    let mut want = Vec::new();
    expected_entries(block, "", false, &mut want);
    want.sort();
    let block_paths: Vec<String> = want
        .iter()
        .filter(|d| d.group == "(block)")
        .map(|d| d.path.clone())
        .collect();
    let got: Vec<String> = documented_entries(&page, &block_paths)
        .iter()
        .map(Documented::line)
        .collect();
    let want: Vec<String> = want.iter().map(Documented::line).collect();
    (got != want).then(|| {
        format!(
            "{} does not list the schema's attributes:\n{}",
            page_path.display(),
            pretty_assertions::Comparison::new(&got, &want)
        )
    })
}

#[test]
fn every_type_has_a_page_listing_exactly_its_schema() {
    let workspace = Workspace::new(env!("CARGO_BIN_EXE_terraform-provider-flux"));
    workspace.write_config(REQUIRED_PROVIDERS);
    let json = workspace.providers_schema_json();
    let schema = &json["provider_schemas"][PROVIDER_SOURCE];
    assert!(
        schema.is_object(),
        "no schema for {PROVIDER_SOURCE} in {json}"
    );
    let docs_dir = repo().join("docs");
    let mut problems = Vec::new();
    problems.extend(check_page(
        &docs_dir.join("index.md"),
        &schema["provider"]["block"],
    ));
    let mut checked = Vec::new();
    for (key, kind) in [
        ("resource_schemas", docs::Kind::Resource),
        ("data_source_schemas", docs::Kind::DataSource),
    ] {
        let types = schema[key].as_object().cloned().unwrap_or_default();
        for (type_name, type_schema) in types {
            let page = docs_dir.join(docs::page_path(kind, &type_name));
            problems.extend(check_page(&page, &type_schema["block"]));
            checked.push(format!("{key}/{type_name}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    // Terraform reports the same types as the library (so the loop above saw all of them).
    let service = provider::service();
    let schemas = service.schemas();
    let mut library: Vec<String> = schemas
        .resources
        .keys()
        .map(|t| format!("resource_schemas/{t}"))
        .chain(
            schemas
                .data_sources
                .keys()
                .map(|t| format!("data_source_schemas/{t}")),
        )
        .collect();
    library.sort();
    checked.sort();
    assert_eq!(checked, library);
}

#[test]
fn page_parser_reads_groups_markers_and_nested_paths() {
    // The parser used above, on a hand-written page in the generator's format.
    let page = "\
# x

## Schema

### Required

- `a` (String) A.

### Optional

- `n` (Attributes) N. (see [below for nested schema](#nestedatt--n))
- `t` (String, Sensitive, [Write-only](https://example.com/w)) T.
- `timeouts` (Block, Optional) (see [below for nested schema](#nestedblock--timeouts))

### Read-Only

- `o` (List of Object) (see [below for nested schema](#nestedobjatt--o))

<a id=\"nestedatt--n\"></a>
### Nested Schema for `n`

Optional:

- `b` (Boolean) B.

<a id=\"nestedblock--timeouts\"></a>
### Nested Schema for `timeouts`

Optional:

- `create` (String) C.

<a id=\"nestedobjatt--o\"></a>
### Nested Schema for `o`

Read-Only:

- `field` (String)

## Import

- `not` (String) an attribute
";
    let entry = |path: &str, group: &str, sensitive, write_only| Documented {
        path: path.to_string(),
        group: group.to_string(),
        sensitive,
        write_only,
    };
    assert_eq!(
        documented_entries(page, &["timeouts".to_string()]),
        vec![
            entry("a", "Required", false, false),
            entry("n", "Optional", false, false),
            entry("n.b", "Optional", false, false),
            entry("o", "Read-Only", false, false),
            entry("t", "Optional", true, true),
            entry("timeouts", "(block)", false, false),
            entry("timeouts.create", "Optional", false, false),
        ]
    );
}
