//! `make install` and `make release` without release builds: the scripts behind them
//! (`scripts/install.sh`, `scripts/release.sh`) run on the debug binary (or a fake one), and the
//! real `terraform init` installs the result — no `dev_overrides`:
//!
//! - `install.sh` lays the binary out as an unpacked filesystem mirror that Terraform finds both
//!   through an explicit `filesystem_mirror` and as the implied `~/.terraform.d/plugins`;
//! - `release.sh` makes the zip, the manifest and a `SHA256SUMS` that `sha256sum -c` accepts,
//!   reproducibly, with either zip tool; and Terraform installs the zip from a packed mirror.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests panic on setup failures.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::terraform::{Output, Workspace, collapse_whitespace};
use pretty_assertions::assert_eq;

const VERSION: &str = env!("CARGO_PKG_VERSION");
const BINARY: &str = env!("CARGO_BIN_EXE_terraform-provider-flux");

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `<os>_<arch>` of this machine as Terraform names it.
fn platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        other => other,
    };
    format!("{}_{arch}", std::env::consts::OS)
}

/// Runs a script of the repository; panics with its output unless it succeeds.
fn script(name: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut command = Command::new(repo().join("scripts").join(name));
    command.args(args);
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("run the script");
    assert!(
        output.status.success(),
        "scripts/{name} {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A configuration that names the provider the way users do (short source address, which
/// means `registry.terraform.io/fluxrs/flux`) and uses one of its resources.
const USER_CONFIG: &str = r#"terraform {
  required_providers {
    flux = {
      source  = "fluxrs/flux"
      version = "VERSION"
    }
  }
}

provider "flux" {}

resource "flux_operator" "this" {
  version = "v0.58.1"
}
"#;

/// `terraform init` and `validate` with the CLI configuration at `cli_config`; returns the
/// init output after checking the provider came from the mirror, not from `dev_overrides`.
fn init_and_validate(workspace: &mut Workspace, cli_config: &Path) -> Output {
    workspace.set_env("TF_CLI_CONFIG_FILE", &cli_config.to_string_lossy());
    workspace.write_config(&USER_CONFIG.replace("VERSION", VERSION));
    let init = workspace.run(&["init", "-input=false", "-no-color"]);
    init.assert_success().assert_contains(&[&format!(
        "Installed fluxrs/flux v{VERSION} (unauthenticated)"
    )]);
    assert!(
        !init.combined().contains("development overrides"),
        "dev_overrides were in effect:\n{}",
        init.combined()
    );
    let lock = std::fs::read_to_string(workspace.path().join(".terraform.lock.hcl")).unwrap();
    let flat = collapse_whitespace(&lock);
    assert!(
        flat.contains(&format!(
            "provider \"registry.terraform.io/fluxrs/flux\" {{ version = \"{VERSION}\""
        )),
        "lock file:\n{lock}"
    );
    workspace.validate().assert_success();
    init
}

#[test]
fn install_script_lays_out_an_unpacked_mirror_for_terraform_and_opentofu() {
    let plugins = tempfile::tempdir().unwrap();
    let printed = script(
        "install.sh",
        &[BINARY, &plugins.path().to_string_lossy()],
        &[],
    );
    let want: Vec<PathBuf> = ["registry.terraform.io", "registry.opentofu.org"]
        .iter()
        .map(|host| {
            plugins.path().join(format!(
                "{host}/fluxrs/flux/{VERSION}/{}/terraform-provider-flux_v{VERSION}",
                platform()
            ))
        })
        .collect();
    assert_eq!(printed.lines().map(PathBuf::from).collect::<Vec<_>>(), want);
    let original = std::fs::read(BINARY).unwrap();
    for path in &want {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755, "{}", path.display());
        assert!(
            std::fs::read(path).unwrap() == original,
            "{} differs from the binary",
            path.display()
        );
    }
}

#[test]
fn terraform_init_installs_from_an_explicit_filesystem_mirror() {
    let mut workspace = Workspace::new(BINARY);
    let plugins = workspace.path().join("mirror");
    script("install.sh", &[BINARY, &plugins.to_string_lossy()], &[]);
    let cli_config = workspace.write_file(
        "mirror.tfrc",
        &format!(
            "provider_installation {{\n  filesystem_mirror {{\n    path    = \"{}\"\n    include = [\"registry.terraform.io/fluxrs/flux\"]\n  }}\n}}\n",
            plugins.display()
        ),
    );
    init_and_validate(&mut workspace, &cli_config);
    // Terraform unpacked our binary into the working directory's provider cache.
    let cached = workspace.path().join(format!(
        ".terraform/providers/registry.terraform.io/fluxrs/flux/{VERSION}/{}/terraform-provider-flux_v{VERSION}",
        platform()
    ));
    assert!(
        std::fs::read(&cached).unwrap() == std::fs::read(BINARY).unwrap(),
        "{} is not the installed binary",
        cached.display()
    );
}

#[test]
fn terraform_init_finds_the_implied_home_mirror_that_make_install_fills() {
    // Exactly what `make install` does, with HOME pointing at the workspace (the harness sets
    // HOME for every terraform command) and no provider_installation block at all.
    let mut workspace = Workspace::new(BINARY);
    let plugins = workspace.path().join(".terraform.d/plugins");
    script("install.sh", &[BINARY, &plugins.to_string_lossy()], &[]);
    let cli_config = workspace.write_file("empty.tfrc", "");
    init_and_validate(&mut workspace, &cli_config);
}

/// Names and contents of a zip's entries, with their Unix modes, read by python3's zipfile
/// (independent of the tool that wrote the zip).
fn zip_entries(zip: &Path) -> Vec<(String, u32, Vec<u8>)> {
    let program = "import sys, zipfile, base64\n\
                   z = zipfile.ZipFile(sys.argv[1])\n\
                   for i in z.infolist():\n    \
                   print(i.filename, oct(i.external_attr >> 16), base64.b64encode(z.read(i)).decode())\n";
    let output = Command::new("python3")
        .args(["-c", program])
        .arg(zip)
        .output()
        .expect("python3 is needed to read the zip");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let parts: Vec<&str> = line.split(' ').collect();
            let mode = u32::from_str_radix(parts[1].trim_start_matches("0o"), 8).unwrap();
            let content = base64_decode(parts[2]);
            (parts[0].to_string(), mode, content)
        })
        .collect()
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn release_script_makes_registry_artifacts_with_either_zip_tool() {
    let work = tempfile::tempdir().unwrap();
    let fake = work.path().join("fake-provider");
    let fake_content = b"#!/bin/sh\necho not really a provider\n";
    std::fs::write(&fake, fake_content).unwrap();
    let dist = work.path().join("dist");
    std::fs::create_dir_all(&dist).unwrap();
    // A leftover of an earlier release of the same version for another platform, and an
    // unrelated file: the first goes (SHA256SUMS must match the directory), the second stays.
    let stale = format!("terraform-provider-flux_{VERSION}_freebsd_arm.zip");
    std::fs::write(dist.join(&stale), "old").unwrap();
    std::fs::write(dist.join("notes.txt"), "kept").unwrap();
    let zip = format!("terraform-provider-flux_{VERSION}_{}.zip", platform());
    let sums = format!("terraform-provider-flux_{VERSION}_SHA256SUMS");
    let manifest = format!("terraform-provider-flux_{VERSION}_manifest.json");
    for tool in ["zip", "python"] {
        let args = [
            "--binary",
            fake.to_str().unwrap(),
            "--out",
            dist.to_str().unwrap(),
        ];
        let env = [("RELEASE_ZIP", tool), ("SOURCE_DATE_EPOCH", "1700000000")];
        script("release.sh", &args, &env);
        let mut want = vec![
            zip.clone(),
            manifest.clone(),
            sums.clone(),
            "notes.txt".into(),
        ];
        want.sort();
        assert_eq!(listing(&dist), want, "{tool}");
        // The zip holds exactly the binary under its registry name, executable.
        assert_eq!(
            zip_entries(&dist.join(&zip)),
            vec![(
                format!("terraform-provider-flux_v{VERSION}"),
                0o100755,
                fake_content.to_vec()
            )],
            "{tool}"
        );
        assert_eq!(
            std::fs::read(dist.join(&manifest)).unwrap(),
            std::fs::read(repo().join("terraform-registry-manifest.json")).unwrap()
        );
        // sha256sum -c accepts the sums and they cover the zip and the manifest.
        let check = Command::new("sha256sum")
            .args(["-c", &sums])
            .current_dir(&dist)
            .output()
            .unwrap();
        assert!(check.status.success(), "{check:?}");
        assert_eq!(
            String::from_utf8(check.stdout).unwrap(),
            format!("{zip}: OK\n{manifest}: OK\n"),
            "{tool}"
        );
        // Reproducible: the same input gives the same zip.
        let first = std::fs::read(dist.join(&zip)).unwrap();
        script("release.sh", &args, &env);
        assert!(
            std::fs::read(dist.join(&zip)).unwrap() == first,
            "{tool}: a second run made a different zip"
        );
    }
}

#[test]
fn terraform_init_installs_the_released_zip_from_a_packed_mirror() {
    let mut workspace = Workspace::new(BINARY);
    let dist = workspace.path().join("dist");
    script(
        "release.sh",
        &["--binary", BINARY, "--out", &dist.to_string_lossy()],
        &[],
    );
    // Packed layout: HOST/NAMESPACE/TYPE/terraform-provider-TYPE_VERSION_OS_ARCH.zip.
    let zip = format!("terraform-provider-flux_{VERSION}_{}.zip", platform());
    let mirror = workspace.path().join("packed");
    let provider_dir = mirror.join("registry.terraform.io/fluxrs/flux");
    std::fs::create_dir_all(&provider_dir).unwrap();
    std::fs::copy(dist.join(&zip), provider_dir.join(&zip)).unwrap();
    let cli_config = workspace.write_file(
        "packed.tfrc",
        &format!(
            "provider_installation {{\n  filesystem_mirror {{\n    path    = \"{}\"\n    include = [\"registry.terraform.io/fluxrs/flux\"]\n  }}\n}}\n",
            mirror.display()
        ),
    );
    init_and_validate(&mut workspace, &cli_config);
}
