//! Every example under `examples/` is formatted and valid, and none is stale:
//!
//! - every directory holding `.tf` files passes `terraform fmt -check` and `terraform validate`
//!   against the provider binary built by cargo (through `dev_overrides`, no `init`; local
//!   modules are installed with `get`, a folder using `../` modules is copied with its parent);
//!   folders named `opentofu` use OpenTofu (provider `for_each`); folders run in parallel, one
//!   `terraform validate` each;
//! - `examples/resources/<type>/` and `examples/data-sources/<type>/` must name a resource or
//!   data source the provider registers, hold its `resource.tf` / `data-source.tf`, and any
//!   `import.sh` must import that type — so examples never silently go stale when a type is
//!   renamed or removed.
//!
//! The list of folders comes from the filesystem, so a new example is checked without touching
//! this file.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests panic on setup failures.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use common::terraform::{REQUIRED_PROVIDERS, Workspace, tofu_binary};
use terraform_provider_flux::provider;

/// How many folders are validated at once (each runs terraform and a provider process).
const PARALLEL: usize = 4;

/// A kubeconfig like the one on a user's machine, for a server that is never contacted.
const USER_KUBECONFIG: &str = "apiVersion: v1
kind: Config
clusters:
  - name: example
    cluster:
      server: https://127.0.0.1:1
contexts:
  - name: example
    context:
      cluster: example
      user: example
current-context: example
users:
  - name: example
    user:
      token: example
";

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

/// What an example folder documents.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Folder {
    /// `examples/resources/<type>/`.
    Resource(String),
    /// `examples/data-sources/<type>/`.
    DataSource(String),
    /// Anything else: `provider/`, scenario folders such as `quickstart/`.
    Other,
}

impl Folder {
    fn of(relative: &Path) -> Self {
        let parts: Vec<String> = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        match parts.as_slice() {
            [kind, name] if kind == "resources" => Self::Resource(name.clone()),
            [kind, name] if kind == "data-sources" => Self::DataSource(name.clone()),
            _ => Self::Other,
        }
    }
}

/// Every directory under `root` (itself included) that holds `.tf` files directly, plus every
/// `resources/<type>` and `data-sources/<type>` directory whatever it holds, sorted.
fn example_folders(root: &Path) -> Vec<PathBuf> {
    let mut folders = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let mut has_tf = false;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if is_local_state(&path) {
                continue;
            }
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "tf") {
                has_tf = true;
            }
        }
        let relative = dir.strip_prefix(root).unwrap().to_path_buf();
        if has_tf || Folder::of(&relative) != Folder::Other {
            folders.push(relative);
        }
    }
    folders.sort();
    folders
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// What `terraform init`/`apply` leave in a folder when someone runs an example in place
/// (`.terraform/`, the lock file, state): not part of the example.
fn is_local_state(path: &Path) -> bool {
    let name = path.file_name().unwrap().to_string_lossy();
    name.starts_with('.') || name.ends_with(".tfstate") || name.ends_with(".tfstate.backup")
}

/// Copies `from` into `to` recursively, without local Terraform state.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        if is_local_state(&path) {
            continue;
        }
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_tree(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// Problems with one folder's structure (type registered, expected files present, `import.sh`
/// importing the right type). Empty when fine.
fn structure_problems(relative: &Path, folder: &Folder) -> Vec<String> {
    let service = provider::service();
    let schemas = service.schemas();
    let dir = examples_dir().join(relative);
    let shown = format!("examples/{}", relative.display());
    let mut problems = Vec::new();
    let (registered, usage, kind) = match folder {
        Folder::Resource(t) => (schemas.resources.contains_key(t), "resource.tf", "resource"),
        Folder::DataSource(t) => (
            schemas.data_sources.contains_key(t),
            "data-source.tf",
            "data source",
        ),
        Folder::Other => return problems,
    };
    let (Folder::Resource(type_name) | Folder::DataSource(type_name)) = folder else {
        return problems;
    };
    if !registered {
        problems.push(format!(
            "{shown}: `{type_name}` is not a {kind} the provider registers; remove or rename \
             the example, or register the type"
        ));
        return problems;
    }
    if !dir.join(usage).is_file() {
        problems.push(format!("{shown}: {usage} is missing"));
    }
    let import = dir.join("import.sh");
    if import.is_file() {
        if matches!(folder, Folder::DataSource(_)) {
            problems.push(format!(
                "{shown}: data sources cannot be imported (import.sh)"
            ));
        }
        let script = std::fs::read_to_string(&import).unwrap();
        let commands: Vec<&str> = script
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        let prefix = format!("terraform import {type_name}.");
        if commands.is_empty() || !commands.iter().all(|c| c.starts_with(&prefix)) {
            problems.push(format!(
                "{shown}/import.sh: every command must start with `{prefix}`, got {commands:?}"
            ));
        }
    }
    problems
}

/// `terraform fmt -check` on the folder in place, then `terraform validate` on a copy (with a
/// `required_providers` block added when the folder has none, as resource examples usually
/// don't). Returns the problems found.
fn terraform_problems(relative: &Path) -> Vec<String> {
    let dir = examples_dir().join(relative);
    let shown = format!("examples/{}", relative.display());
    let has_tf = files_in(&dir)
        .iter()
        .any(|p| p.extension().is_some_and(|e| e == "tf"));
    if !has_tf {
        return Vec::new();
    }
    let sources: Vec<String> = files_in(&dir)
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "tf"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    let has_modules = sources.iter().any(|t| t.contains("module \""));
    let parent_modules = sources.iter().flat_map(|t| t.lines()).any(|l| {
        l.trim()
            .strip_prefix("source")
            .is_some_and(|rest| rest.trim_start_matches([' ', '=']).starts_with("\"../"))
    });
    // Provider `for_each` is OpenTofu's (>= 1.9): folders named `opentofu` are its examples.
    let binary = env!("CARGO_BIN_EXE_terraform-provider-flux");
    let workspace = if relative.components().any(|c| c.as_os_str() == "opentofu") {
        Workspace::with_cli(binary, tofu_binary())
    } else {
        Workspace::new(binary)
    };
    let mut problems = Vec::new();
    let dir_arg = dir.to_string_lossy().into_owned();
    let fmt = workspace.run(&["fmt", "-check", "-diff", "-no-color", &dir_arg]);
    if !fmt.success() {
        problems.push(format!(
            "{shown}: not formatted (run `terraform fmt {shown}`):\n{}",
            fmt.combined()
        ));
    }
    // A folder using `../modules/...` is copied with its parent and run with -chdir.
    let chdir = if parent_modules {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        copy_tree(dir.parent().unwrap(), &workspace.path().join("parent"));
        Some(format!("-chdir=parent/{name}"))
    } else {
        copy_tree(&dir, workspace.path());
        None
    };
    let run = |args: &[&str]| {
        let mut all: Vec<&str> = chdir.iter().map(String::as_str).collect();
        all.extend_from_slice(args);
        workspace.run(&all)
    };
    let declares_provider = files_in(&dir).iter().any(|p| {
        p.extension().is_some_and(|e| e == "tf")
            && std::fs::read_to_string(p)
                .unwrap()
                .contains("required_providers")
    });
    if !declares_provider {
        workspace.write_file("zz_required_providers_for_validate.tf", REQUIRED_PROVIDERS);
    }
    // Examples point at `~/.kube/config` as users' machines have one; the provider reads the
    // file when it validates its configuration, so HOME (the workspace) gets one, for a
    // cluster that is never contacted.
    workspace.write_file(".kube/config", USER_KUBECONFIG);
    if has_modules {
        // Local modules are installed by `get` (no providers, no network).
        let get = run(&["get", "-no-color"]);
        if !get.success() {
            problems.push(format!("{shown}: get failed:\n{}", get.combined()));
        }
    }
    let validate = run(&["validate", "-no-color"]);
    if !validate.success() {
        problems.push(format!(
            "{shown}: terraform validate failed:\n{}",
            validate.combined()
        ));
    }
    problems
}

#[test]
fn every_example_is_formatted_valid_and_names_a_registered_type() {
    let root = examples_dir();
    let folders = example_folders(&root);
    assert!(
        folders.contains(&PathBuf::from("provider")),
        "examples/provider is missing: {folders:?}"
    );
    let queue = Mutex::new(folders.clone());
    let problems = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL {
            scope.spawn(|| {
                loop {
                    let Some(relative) = queue.lock().unwrap().pop() else {
                        break;
                    };
                    let folder = Folder::of(&relative);
                    let mut found = structure_problems(&relative, &folder);
                    if found.is_empty() {
                        found.extend(terraform_problems(&relative));
                    }
                    problems.lock().unwrap().extend(found);
                }
            });
        }
    });
    let mut problems = problems.into_inner().unwrap();
    problems.sort();
    assert!(
        problems.is_empty(),
        "{} problems in the {} example folders:\n\n{}",
        problems.len(),
        folders.len(),
        problems.join("\n\n")
    );
}

#[test]
fn folders_are_found_and_classified_from_the_filesystem() {
    let root = tempfile::tempdir().unwrap();
    for (file, content) in [
        ("provider/provider.tf", "provider \"flux\" {}\n"),
        ("resources/flux_a/resource.tf", ""),
        ("resources/flux_b/import.sh", ""),
        ("data-sources/flux_a/data-source.tf", ""),
        ("quickstart/main.tf", ""),
        ("quickstart/README.md", ""),
        ("notes/README.md", ""),
        ("quickstart/.terraform/modules/m/main.tf", ""),
    ] {
        let path = root.path().join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    let folders = example_folders(root.path());
    let classified: Vec<(String, Folder)> = folders
        .iter()
        .map(|f| (f.display().to_string(), Folder::of(f)))
        .collect();
    assert_eq!(
        classified,
        vec![
            (
                "data-sources/flux_a".to_string(),
                Folder::DataSource("flux_a".to_string())
            ),
            ("provider".to_string(), Folder::Other),
            ("quickstart".to_string(), Folder::Other),
            (
                "resources/flux_a".to_string(),
                Folder::Resource("flux_a".to_string())
            ),
            (
                "resources/flux_b".to_string(),
                Folder::Resource("flux_b".to_string())
            ),
        ]
    );
}

#[test]
fn an_invalid_configuration_fails_validate() {
    // The validate step above can fail: an unknown attribute of a registered resource and a
    // type the provider does not have are both errors.
    let workspace = Workspace::new(env!("CARGO_BIN_EXE_terraform-provider-flux"));
    workspace.write_config(&format!(
        "{REQUIRED_PROVIDERS}\nresource \"flux_instance\" \"x\" {{\n  no_such_attribute = 1\n}}\n\nresource \"flux_no_such_type\" \"y\" {{}}\n"
    ));
    workspace
        .validate()
        .assert_failure()
        .assert_contains(&["no_such_attribute", "flux_no_such_type"]);
}

#[test]
fn examples_of_unregistered_types_are_reported() {
    let problems = structure_problems(
        Path::new("resources/flux_no_such_type"),
        &Folder::Resource("flux_no_such_type".to_string()),
    );
    assert_eq!(
        problems,
        vec![
            "examples/resources/flux_no_such_type: `flux_no_such_type` is not a resource the \
             provider registers; remove or rename the example, or register the type"
                .to_string()
        ]
    );
}

#[test]
fn every_registered_type_has_an_example() {
    // The docs take their "Example Usage" from these files; a type without one gets a page
    // without an example.
    let service = provider::service();
    let schemas = service.schemas();
    let root = examples_dir();
    let mut missing: Vec<String> = schemas
        .resources
        .keys()
        .map(|t| format!("resources/{t}/resource.tf"))
        .chain(
            schemas
                .data_sources
                .keys()
                .map(|t| format!("data-sources/{t}/data-source.tf")),
        )
        .filter(|file| !root.join(file).is_file())
        .map(|file| format!("examples/{file}"))
        .collect();
    missing.sort();
    assert!(missing.is_empty(), "missing examples: {missing:?}");
}
