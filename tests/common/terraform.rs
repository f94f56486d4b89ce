//! The real `terraform` CLI (from `TF_ACC_TERRAFORM_PATH`, else `PATH`) driving the provider
//! binary built by cargo. `TF_ACC_TERRAFORM_PATH` may also name an OpenTofu `tofu` binary
//! (`make test` runs the acceptance tests a second time that way): both CLIs honour the same
//! CLI configuration (`dev_overrides`), `TF_*` variables and JSON formats; [`cli`] tells which one
//! runs, for the few messages that name it. A [`Workspace`] is a temporary directory with a CLI configuration whose
//! `dev_overrides` point `registry.terraform.io/fluxrs/flux` at the binary's directory, so no
//! `terraform init` is needed. Every command captures stdout, stderr and the provider's log
//! (`TF_LOG_PROVIDER=trace` into `terraform.log` in the workspace).
//!
//! When `terraform` is missing the helpers panic with install instructions: these tests never
//! skip silently.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The provider source address the workspaces override.
pub const PROVIDER_SOURCE: &str = "registry.terraform.io/fluxrs/flux";

/// The `terraform { required_providers { ... } }` block every configuration needs.
pub const REQUIRED_PROVIDERS: &str = r#"terraform {
  required_providers {
    flux = {
      source = "registry.terraform.io/fluxrs/flux"
    }
  }
}
"#;

/// How long one terraform command may run before it is killed and the test fails.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);

/// The terraform binary, or a panic explaining how to install it.
pub fn terraform_binary() -> PathBuf {
    let candidate = std::env::var_os("TF_ACC_TERRAFORM_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("terraform"));
    match Command::new(&candidate)
        .arg("version")
        .stdin(Stdio::null())
        .output()
    {
        Ok(output) if output.status.success() => candidate,
        _ => panic!(
            "terraform not found (tried {}). These tests run the real Terraform CLI: install \
             Terraform >= 1.11 (https://developer.hashicorp.com/terraform/install, or e.g. \
             `apt-get install terraform` from the HashiCorp apt repository) and put it on PATH, \
             or set TF_ACC_TERRAFORM_PATH to the terraform binary.",
            candidate.display()
        ),
    }
}

/// The provider's source address as OpenTofu resolves `fluxrs/flux`.
pub const OPENTOFU_PROVIDER_SOURCE: &str = "registry.opentofu.org/fluxrs/flux";

/// The OpenTofu binary (v1.12.6) that `realcluster/build.sh tofu` — the tofu part of
/// `scripts/real-cluster.sh --tools` — finds in its cache or builds once per machine from the Go
/// module proxy.
pub fn tofu_binary() -> PathBuf {
    static TOFU: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    TOFU.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let output = Command::new(root.join("realcluster/build.sh"))
            .arg("tofu")
            .current_dir(root)
            .stdin(Stdio::null())
            .output()
            .expect("run realcluster/build.sh tofu");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let path = stdout
            .lines()
            .find_map(|l| l.strip_prefix("tofu "))
            .unwrap_or_else(|| {
                panic!(
                    "realcluster/build.sh tofu printed no tofu path (it builds OpenTofu from \
                     the Go module proxy on first use):\n{stdout}\n{}",
                    String::from_utf8_lossy(&output.stderr)
                )
            });
        PathBuf::from(path.trim())
    })
    .clone()
}

fn terraform_is_tofu(binary: &Path) -> bool {
    Command::new(binary)
        .arg("version")
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.starts_with("OpenTofu v"))
        })
}

/// Which CLI [`terraform_binary`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cli {
    /// HashiCorp Terraform.
    Terraform,
    /// OpenTofu.
    OpenTofu,
}

impl Cli {
    /// The product name the CLI prints in its messages ("Terraform", "OpenTofu").
    pub fn product(self) -> &'static str {
        match self {
            Cli::Terraform => "Terraform",
            Cli::OpenTofu => "OpenTofu",
        }
    }
}

/// The CLI the tests run (from the first word of `<binary> version`).
pub fn cli() -> Cli {
    static CLI: std::sync::OnceLock<Cli> = std::sync::OnceLock::new();
    *CLI.get_or_init(|| {
        let output = Command::new(terraform_binary())
            .arg("version")
            .stdin(Stdio::null())
            .output()
            .expect("run `version`");
        if String::from_utf8_lossy(&output.stdout).starts_with("OpenTofu") {
            Cli::OpenTofu
        } else {
            Cli::Terraform
        }
    })
}

/// What one terraform command did.
#[derive(Debug, Clone)]
pub struct Output {
    /// The command line, for messages.
    pub command: String,
    /// Exit code (`None` when killed).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// The provider log written during this command.
    pub provider_log: String,
}

impl Output {
    /// Whether the command exited with 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// stdout and stderr together (Terraform prints diagnostics to stderr).
    pub fn combined(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    fn report(&self) -> String {
        let log_tail: String = {
            let lines: Vec<&str> = self.provider_log.lines().collect();
            lines[lines.len().saturating_sub(40)..].join("\n")
        };
        format!(
            "$ {}\nexit code: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}\n--- provider log (tail) ---\n{}",
            self.command, self.code, self.stdout, self.stderr, log_tail
        )
    }

    /// Panics with the whole output unless the command succeeded.
    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        assert!(self.success(), "command failed:\n{}", self.report());
        self
    }

    /// Panics with the whole output unless the command failed (exit code 1).
    #[track_caller]
    pub fn assert_failure(&self) -> &Self {
        assert_eq!(
            self.code,
            Some(1),
            "command was expected to fail:\n{}",
            self.report()
        );
        self
    }

    /// Panics unless stdout or stderr contains every one of `needles`. Whitespace runs compare
    /// as one space on both sides (Terraform wraps long diagnostic lines).
    #[track_caller]
    pub fn assert_contains(&self, needles: &[&str]) -> &Self {
        let combined = collapse_whitespace(&self.combined());
        for needle in needles {
            assert!(
                combined.contains(&collapse_whitespace(needle)),
                "output lacks {needle:?}:\n{}",
                self.report()
            );
        }
        self
    }
}

/// `text` with every whitespace run replaced by one space.
pub fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The result of `terraform plan -detailed-exitcode`.
#[derive(Debug, Clone)]
pub enum Plan {
    /// Exit code 0: no changes.
    NoChanges(Output),
    /// Exit code 2: changes.
    Changes(Output),
    /// Anything else.
    Error(Output),
}

impl Plan {
    /// The command output.
    pub fn output(&self) -> &Output {
        match self {
            Plan::NoChanges(o) | Plan::Changes(o) | Plan::Error(o) => o,
        }
    }

    /// Panics unless the plan has no changes.
    #[track_caller]
    pub fn assert_no_changes(&self) -> &Output {
        match self {
            Plan::NoChanges(o) => o,
            other => panic!("expected no changes:\n{}", other.output().report()),
        }
    }

    /// Panics unless the plan has changes.
    #[track_caller]
    pub fn assert_changes(&self) -> &Output {
        match self {
            Plan::Changes(o) => o,
            other => panic!("expected changes:\n{}", other.output().report()),
        }
    }

    /// Panics unless the plan failed.
    #[track_caller]
    pub fn assert_error(&self) -> &Output {
        match self {
            Plan::Error(o) => o,
            other => panic!("expected the plan to fail:\n{}", other.output().report()),
        }
    }
}

/// A temporary Terraform working directory wired to the provider binary under test.
pub struct Workspace {
    dir: tempfile::TempDir,
    terraform: PathBuf,
    cli_config: PathBuf,
    log_path: PathBuf,
    env: Vec<(String, String)>,
}

impl Workspace {
    /// A workspace using the provider binary at `provider_binary` (pass
    /// `env!("CARGO_BIN_EXE_terraform-provider-flux")` from the test crate).
    pub fn new(provider_binary: &str) -> Self {
        Self::with_cli(provider_binary, terraform_binary())
    }

    /// A workspace run by the CLI at `terraform` (e.g. [`tofu_binary`] for what only OpenTofu
    /// supports), whatever `TF_ACC_TERRAFORM_PATH` says. The provider is overridden under both
    /// registry hosts, so `source = "fluxrs/flux"` resolves to it under either CLI.
    pub fn with_cli(provider_binary: &str, terraform: PathBuf) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("tf-flux-")
            .tempdir()
            .expect("create a temporary workspace");
        let binary = Path::new(provider_binary);
        assert!(
            binary.is_file(),
            "provider binary {provider_binary} does not exist"
        );
        let plugin_dir = binary
            .parent()
            .expect("the provider binary has a parent directory");
        let cli_config = dir.path().join(".terraformrc");
        std::fs::write(
            &cli_config,
            format!(
                "provider_installation {{\n  dev_overrides {{\n    \"{PROVIDER_SOURCE}\" = \"{}\"\n{}  }}\n  direct {{}}\n}}\n",
                plugin_dir.display(),
                if terraform_is_tofu(&terraform) {
                    format!(
                        "    \"{OPENTOFU_PROVIDER_SOURCE}\" = \"{}\"\n",
                        plugin_dir.display()
                    )
                } else {
                    String::new()
                }
            ),
        )
        .expect("write the CLI configuration");
        let log_path = dir.path().join("terraform.log");
        Self {
            dir,
            terraform,
            cli_config,
            log_path,
            env: Vec::new(),
        }
    }

    /// The workspace directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Sets an environment variable for every later command (e.g. `KUBECONFIG`).
    pub fn set_env(&mut self, name: &str, value: &str) {
        self.env.push((name.to_string(), value.to_string()));
    }

    /// Writes `main.tf`.
    pub fn write_config(&self, hcl: &str) {
        self.write_file("main.tf", hcl);
    }

    /// Writes a file in the workspace and returns its path.
    pub fn write_file(&self, name: &str, content: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create the file's directory");
        }
        std::fs::write(&path, content).expect("write a workspace file");
        path
    }

    /// The provider log so far (all commands).
    pub fn provider_log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The `terraform <args>` command of [`Workspace::run`], not started: for tests that
    /// control the process themselves (e.g. interrupt it). Output is piped.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.terraform);
        command
            .args(args)
            .current_dir(self.dir.path())
            .env("TF_CLI_CONFIG_FILE", &self.cli_config)
            .env("TF_IN_AUTOMATION", "1")
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_LOG_PROVIDER", "trace")
            .env("TF_LOG_PATH", &self.log_path)
            .env_remove("TF_LOG")
            .env_remove("TF_REATTACH_PROVIDERS")
            .env_remove("TF_CLI_ARGS")
            .env_remove("TF_WORKSPACE")
            .env_remove("KUBE_CONFIG_PATH")
            .env_remove("KUBE_CONFIG_PATHS")
            .env_remove("KUBECONFIG")
            // No ~/.kube/config or in-cluster fallback from the machine running the tests.
            .env("HOME", self.dir.path())
            .env_remove("KUBERNETES_SERVICE_HOST")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in &self.env {
            command.env(name, value);
        }
        command
    }

    /// Runs `terraform <args>` in the workspace, capturing everything.
    pub fn run(&self, args: &[&str]) -> Output {
        let log_before = self.provider_log().len();
        let mut command = self.command(args);
        let child = command.spawn().expect("start terraform");
        let output = wait_with_timeout(child, COMMAND_TIMEOUT);
        let log = self.provider_log();
        let name = self
            .terraform
            .file_name()
            .map_or_else(|| "terraform".into(), |n| n.to_string_lossy().into_owned());
        Output {
            command: format!("{name} {}", args.join(" ")),
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            provider_log: log.get(log_before..).unwrap_or_default().to_string(),
        }
    }

    /// `terraform validate`.
    pub fn validate(&self) -> Output {
        self.run(&["validate", "-no-color"])
    }

    /// `terraform plan -detailed-exitcode`.
    pub fn plan(&self) -> Plan {
        self.plan_with(&[])
    }

    /// `terraform plan -detailed-exitcode <extra>`.
    pub fn plan_with(&self, extra: &[&str]) -> Plan {
        let mut args = vec![
            "plan",
            "-detailed-exitcode",
            "-input=false",
            "-lock=false",
            "-no-color",
        ];
        args.extend_from_slice(extra);
        let output = self.run(&args);
        match output.code {
            Some(0) => Plan::NoChanges(output),
            Some(2) => Plan::Changes(output),
            _ => Plan::Error(output),
        }
    }

    /// `terraform apply -auto-approve`.
    pub fn apply(&self) -> Output {
        self.run(&[
            "apply",
            "-auto-approve",
            "-input=false",
            "-lock=false",
            "-no-color",
        ])
    }

    /// `terraform apply <plan>`: applies a plan saved with `plan -out=<plan>` (no approval:
    /// Terraform does not ask for a saved plan).
    pub fn apply_saved(&self, plan: &str) -> Output {
        self.run(&["apply", "-input=false", "-lock=false", "-no-color", plan])
    }

    /// `terraform destroy -auto-approve`.
    pub fn destroy(&self) -> Output {
        self.run(&[
            "destroy",
            "-auto-approve",
            "-input=false",
            "-lock=false",
            "-no-color",
        ])
    }

    /// `terraform import <address> <id>`.
    pub fn import(&self, address: &str, id: &str) -> Output {
        self.run(&[
            "import",
            "-input=false",
            "-lock=false",
            "-no-color",
            address,
            id,
        ])
    }

    /// `terraform show -json` of the current state, parsed.
    pub fn show_json(&self) -> serde_json::Value {
        let output = self.run(&["show", "-json", "-no-color"]);
        output.assert_success();
        serde_json::from_str(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "terraform show -json printed invalid JSON ({e}):\n{}",
                output.stdout
            )
        })
    }

    /// `terraform state list`, one address per element.
    pub fn state_list(&self) -> Vec<String> {
        let output = self.run(&["state", "list"]);
        output.assert_success();
        output.stdout.lines().map(str::to_string).collect()
    }

    /// `terraform state show <address>`.
    pub fn state_show(&self, address: &str) -> Output {
        self.run(&["state", "show", "-no-color", address])
    }

    /// `terraform providers schema -json`, parsed.
    pub fn providers_schema_json(&self) -> serde_json::Value {
        let output = self.run(&["providers", "schema", "-json"]);
        output.assert_success();
        serde_json::from_str(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "terraform providers schema -json printed invalid JSON ({e}):\n{}",
                output.stdout
            )
        })
    }

    /// `terraform fmt -check -diff` on the workspace.
    pub fn fmt_check(&self) -> Output {
        self.run(&["fmt", "-check", "-diff", "-no-color"])
    }
}

/// Waits for `child`, killing it after `timeout` (the test then fails with what was captured).
fn wait_with_timeout(mut child: std::process::Child, timeout: Duration) -> std::process::Output {
    use std::io::Read;
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut buffer = Vec::new();
        let _ = stdout.read_to_end(&mut buffer);
        buffer
    });
    let err_reader = std::thread::spawn(move || {
        let mut buffer = Vec::new();
        let _ = stderr.read_to_end(&mut buffer);
        buffer
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll terraform") {
            break status;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            let stdout = out_reader.join().unwrap_or_default();
            let stderr = err_reader.join().unwrap_or_default();
            panic!(
                "terraform did not finish within {timeout:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                String::from_utf8_lossy(&stdout),
                String::from_utf8_lossy(&stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    std::process::Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}
