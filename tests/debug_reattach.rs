//! The built binary against the REAL `terraform` (from `TF_ACC_TERRAFORM_PATH`, else `PATH`):
//! `--debug` reattached through `TF_REATTACH_PROVIDERS` for `terraform plan`, and a normal
//! go-plugin launch through `dev_overrides` for `terraform providers schema -json`.
//! These tests fail (never skip) when terraform is missing.

// A test crate: its helpers panic on failure like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_terraform-provider-flux");
const PROVIDER: &str = "registry.terraform.io/fluxrs/flux";

const CONFIG: &str = r#"terraform {
  required_providers {
    flux = {
      source = "registry.terraform.io/fluxrs/flux"
    }
  }
}

provider "flux" {}
"#;

/// The terraform binary to run, or a failure telling how to install it.
fn terraform() -> PathBuf {
    let candidate = std::env::var_os("TF_ACC_TERRAFORM_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("terraform"));
    match Command::new(&candidate).arg("version").output() {
        Ok(output) if output.status.success() => candidate,
        _ => panic!(
            "terraform not found (tried {}). These tests run the real Terraform CLI: install \
             Terraform >= 1.11 (https://developer.hashicorp.com/terraform/install) and put it on \
             PATH, or set TF_ACC_TERRAFORM_PATH to the terraform binary.",
            candidate.display()
        ),
    }
}

/// A terraform command in `dir`, isolated from the user's CLI configuration and logs.
fn terraform_in(dir: &Path, cli_config: &Path) -> Command {
    let mut command = Command::new(terraform());
    command
        .current_dir(dir)
        .env("TF_CLI_CONFIG_FILE", cli_config)
        .env("TF_IN_AUTOMATION", "1")
        .env("CHECKPOINT_DISABLE", "1")
        .env_remove("TF_LOG")
        .env_remove("TF_LOG_PROVIDER")
        .env_remove("TF_REATTACH_PROVIDERS")
        .stdin(Stdio::null());
    command
}

/// Kills the debug server if a test fails before it is stopped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn terraform_plan_reattaches_to_the_debug_server() {
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("main.tf"), CONFIG).unwrap();
    let cli_config = work.path().join("cli.tfrc");
    std::fs::write(&cli_config, "").unwrap();

    let child = Command::new(BINARY)
        .arg("--debug")
        .env_remove("TF_LOG")
        .env_remove("TF_LOG_PROVIDER")
        .env_remove("TF_PLUGIN_MAGIC_COOKIE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut guard = Guard(child);
    let stderr = guard.0.stderr.take().unwrap();
    let mut reattach = None;
    let mut banner = String::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        banner.push_str(&line);
        banner.push('\n');
        if let Some(value) = line
            .trim()
            .strip_prefix("export TF_REATTACH_PROVIDERS='")
            .and_then(|rest| rest.strip_suffix('\''))
        {
            reattach = Some(value.to_owned());
            break;
        }
    }
    let reattach = reattach.unwrap_or_else(|| panic!("no reattach line in:\n{banner}"));
    let json: serde_json::Value = serde_json::from_str(&reattach).unwrap();
    let entry = &json[PROVIDER];
    assert_eq!(entry["Protocol"], "grpc");
    assert_eq!(entry["ProtocolVersion"], 6);
    assert_eq!(entry["Test"], true);
    assert_eq!(entry["Pid"], guard.0.id());
    assert_eq!(entry["Addr"]["Network"], "tcp");
    assert!(
        entry["Addr"]["String"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:"),
        "{reattach}"
    );

    let output = terraform_in(work.path(), &cli_config)
        .args(["plan", "-input=false", "-no-color"])
        .env("TF_REATTACH_PROVIDERS", &reattach)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "terraform plan failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("No changes."), "{stdout}");

    // The debug server survives terraform (Test: true) and stops on Ctrl-C (SIGINT).
    assert!(guard.0.try_wait().unwrap().is_none(), "still serving");
    let interrupted = Command::new("kill")
        .args(["-INT", &guard.0.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = guard.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "debug server ignored Ctrl-C");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status}");
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut guard.0.stdout.take().unwrap(), &mut stdout).unwrap();
    assert_eq!(stdout, "", "debug mode writes nothing to stdout");
}

#[test]
fn terraform_providers_schema_shows_the_provider_through_dev_overrides() {
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("main.tf"), CONFIG).unwrap();
    let binary_dir = Path::new(BINARY).parent().unwrap();
    let cli_config = work.path().join("cli.tfrc");
    std::fs::write(
        &cli_config,
        format!(
            "provider_installation {{\n  dev_overrides {{\n    \"{PROVIDER}\" = {}\n  }}\n  direct {{}}\n}}\n",
            serde_json::Value::from(binary_dir.to_str().unwrap())
        ),
    )
    .unwrap();

    let output = terraform_in(work.path(), &cli_config)
        .args(["providers", "schema", "-json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "terraform providers schema failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let schema: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let provider = &schema["provider_schemas"][PROVIDER];
    assert!(
        provider["provider"]["block"].is_object(),
        "no provider schema for {PROVIDER} in {stdout}"
    );
}
