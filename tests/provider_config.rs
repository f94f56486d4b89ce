//! The provider configuration through the REAL `terraform` CLI (dev_overrides, no init): the
//! schema Terraform sees, `validate` of a valid provider block and of the example, every
//! malformed setting failing with a diagnostic that names the attribute and says what to do,
//! and a plan with provider settings unknown until apply.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use common::terraform::{REQUIRED_PROVIDERS, Workspace};
use terraform_provider_flux::provider::provider_schema;

const BINARY: &str = env!("CARGO_BIN_EXE_terraform-provider-flux");

const KUBECONFIG: &str = "apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: dev
  cluster:
    server: https://127.0.0.1:6443
users:
- name: dev
  user:
    token: dev-token
contexts:
- name: dev
  context:
    cluster: dev
    user: dev
";

/// Terraform prunes a provider that no resource or data source uses, and then never calls
/// ValidateProviderConfig. This block makes Terraform validate (and report on) the provider
/// configuration; the data source type does not exist, so validate also reports exactly one
/// "Invalid data source" error of its own.
const PROBE: &str = "data \"flux_validation_probe\" \"this\" {}\n";

/// A minimal `flux_instance`: a resource that makes Terraform configure the provider and plan.
const INSTANCE: &str = r#"resource "flux_instance" "this" {
  distribution = {
    version  = "2.x"
    registry = "ghcr.io/fluxcd"
  }
}
"#;

/// The one error the probe itself causes.
const PROBE_ERROR: &str = "Error: Invalid data source";

fn workspace_with(provider_block: &str) -> Workspace {
    let workspace = Workspace::new(BINARY);
    workspace.write_file("kubeconfig", KUBECONFIG);
    workspace.write_config(&format!("{REQUIRED_PROVIDERS}\n{provider_block}\n"));
    workspace
}

/// Every attribute of the provider schema as Terraform reports it: path → (description,
/// sensitive).
fn attributes_from_json(
    prefix: &str,
    attributes: &serde_json::Map<String, serde_json::Value>,
    out: &mut BTreeMap<String, (String, bool)>,
) {
    for (name, attribute) in attributes {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        out.insert(
            path.clone(),
            (
                attribute["description"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                attribute["sensitive"].as_bool().unwrap_or(false),
            ),
        );
        if let Some(nested) = attribute["nested_type"]["attributes"].as_object() {
            assert_eq!(
                attribute["nested_type"]["nesting_mode"], "single",
                "{path} is a single nested attribute"
            );
            assert!(
                attribute.get("type").is_none(),
                "{path}: type and nested_type both set"
            );
            attributes_from_json(&path, nested, out);
        }
    }
}

#[test]
fn providers_schema_shows_kubernetes_and_git_with_descriptions_and_sensitivity() {
    let workspace = workspace_with("provider \"flux\" {}");
    let schema = workspace.providers_schema_json();
    let provider = &schema["provider_schemas"]["registry.terraform.io/fluxrs/flux"]["provider"];
    let attributes = provider["block"]["attributes"]
        .as_object()
        .unwrap_or_else(|| panic!("no provider attributes in {schema:#}"));
    let mut got = BTreeMap::new();
    attributes_from_json("", attributes, &mut got);
    let want: BTreeMap<String, (String, bool)> = provider_schema()
        .walk_attributes()
        .into_iter()
        .map(|(path, a)| (path.to_string(), (a.description.clone(), a.sensitive)))
        .collect();
    assert_eq!(got, want);
    // Spot checks against DESIGN.md §3.1, independent of the provider's own schema code.
    assert!(got.contains_key("kubernetes.exec.command"));
    assert!(got.contains_key("git.ssh.known_hosts"));
    assert!(got["kubernetes.token"].1 && got["kubernetes.client_key"].1);
    assert!(got["git.http.password"].1 && got["git.ssh.private_key"].1);
    assert!(!got["kubernetes.host"].1);
    assert!(got["kubernetes.config_path"].0.contains("KUBE_CONFIG_PATH"));
}

#[test]
fn validate_passes_for_a_valid_provider_block() {
    let workspace = workspace_with(
        r#"provider "flux" {
  kubernetes = {
    config_path    = "${path.module}/kubeconfig"
    config_context = "dev"
  }
  git = {
    http = {
      username = "git"
      password = "token"
    }
    author_name  = "Flux Bot"
    author_email = "flux@example.com"
  }
}"#,
    );
    workspace
        .validate()
        .assert_success()
        .assert_contains(&["Success! The configuration is valid"]);
    workspace.plan().assert_no_changes();
    // With a data source using the provider, Terraform hands the block to the provider, which
    // accepts it: the only error is the probe's own.
    workspace.write_file("probe.tf", PROBE);
    let output = workspace.validate();
    output.assert_failure().assert_contains(&[PROBE_ERROR]);
    assert_eq!(
        output.combined().matches("Error: ").count(),
        1,
        "{}",
        output.combined()
    );
    assert!(
        output
            .provider_log
            .contains("tf_rpc=ValidateProviderConfig"),
        "the provider was not asked to validate:\n{}",
        output.provider_log
    );
}

#[test]
fn the_provider_example_validates_and_is_formatted() {
    let workspace = Workspace::new(BINARY);
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/provider/provider.tf"
    ))
    .unwrap();
    workspace.write_file("provider.tf", &example);
    workspace.validate().assert_success();
    workspace.fmt_check().assert_success();
}

struct Case {
    name: &'static str,
    provider: String,
    /// The diagnostic summary.
    summary: &'static str,
    /// Texts the output must contain: the attribute path and what to do.
    contains: Vec<&'static str>,
}

fn kubernetes(body: &str) -> String {
    format!("provider \"flux\" {{\n  kubernetes = {{\n{body}\n  }}\n}}")
}

fn git(body: &str) -> String {
    format!("provider \"flux\" {{\n  git = {{\n{body}\n  }}\n}}")
}

const NOT_PEM: &str = "NOT-A-PEM-SECRET-MATERIAL";

#[test]
fn each_malformed_setting_fails_validate_naming_the_attribute() {
    let cases = vec![
        Case {
            name: "unreadable config_path",
            provider: kubernetes(r#"    config_path = "/nonexistent/kubeconfig""#),
            summary: "Error: Unreadable Kubeconfig",
            contains: vec![
                "/nonexistent/kubeconfig",
                "Fix the provider setting kubernetes.config_path.",
            ],
        },
        Case {
            name: "context not in the file",
            provider: kubernetes(
                r#"    config_path    = "${path.module}/kubeconfig"
    config_context = "staging""#,
            ),
            summary: "Error: Invalid Kubernetes Context",
            contains: vec![
                "\"staging\"",
                "available contexts: dev",
                "Fix the provider setting kubernetes.config_context.",
            ],
        },
        Case {
            name: "config_path with config_paths",
            provider: kubernetes(
                r#"    config_path  = "${path.module}/kubeconfig"
    config_paths = ["${path.module}/kubeconfig"]"#,
            ),
            summary: "Error: Conflicting Kubeconfig Settings",
            contains: vec![
                "set only one of them",
                "Fix the provider setting kubernetes.config_paths.",
            ],
        },
        Case {
            name: "client_certificate that does not parse",
            provider: kubernetes(&format!(
                "    host               = \"https://127.0.0.1:6443\"\n    client_certificate = \"{NOT_PEM}\"\n    client_key         = \"{NOT_PEM}\""
            )),
            summary: "Error: Invalid PEM",
            contains: vec![
                "Fix the provider setting kubernetes.client_certificate.",
                "Fix the provider setting kubernetes.client_key.",
            ],
        },
        Case {
            name: "cluster_ca_certificate that does not parse",
            provider: kubernetes(
                "    host                   = \"https://127.0.0.1:6443\"\n    cluster_ca_certificate = \"-----BEGIN CERTIFICATE-----\\n!!!\\n-----END CERTIFICATE-----\\n\"",
            ),
            summary: "Error: Invalid PEM",
            contains: vec!["Fix the provider setting kubernetes.cluster_ca_certificate."],
        },
        Case {
            name: "exec without command",
            provider: kubernetes(
                r#"    host = "https://127.0.0.1:6443"
    exec = {
      args = ["eks", "get-token"]
    }"#,
            ),
            summary: "Error: Invalid Exec Plugin",
            contains: vec![
                "kubernetes.exec needs a command",
                "Fix the provider setting kubernetes.exec.command.",
            ],
        },
        Case {
            name: "bad proxy_url",
            provider: kubernetes(
                r#"    host      = "https://127.0.0.1:6443"
    proxy_url = "gopher://proxy.example.com""#,
            ),
            summary: "Error: Invalid Proxy URL",
            contains: vec![
                "use http://, https:// or socks5://",
                "Fix the provider setting kubernetes.proxy_url.",
            ],
        },
        Case {
            name: "bad host",
            provider: kubernetes(r#"    host = "ftp://cluster.example.com""#),
            summary: "Error: Invalid Kubernetes Host",
            contains: vec![
                "https://<host>:<port>",
                "Fix the provider setting kubernetes.host.",
            ],
        },
        Case {
            name: "insecure with a CA certificate",
            provider: kubernetes(
                r#"    host                   = "https://127.0.0.1:6443"
    insecure               = true
    cluster_ca_certificate = "x""#,
            ),
            summary: "Error: Conflicting TLS Settings",
            contains: vec!["Fix the provider setting kubernetes.insecure."],
        },
        Case {
            name: "git http and ssh both set",
            provider: git(r#"    http = {
      username = "git"
      password = "token"
    }
    ssh = {
      private_key = "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n"
    }"#),
            summary: "Error: Conflicting Git Settings",
            contains: vec![
                "git.http and git.ssh are both set",
                "Keep the one that matches",
            ],
        },
        Case {
            name: "git ssh key that is not a key",
            provider: git(&format!(
                "    ssh = {{\n      private_key = \"{NOT_PEM}\"\n    }}"
            )),
            summary: "Error: Invalid SSH Private Key",
            contains: vec!["git.ssh.private_key is not a PEM or OpenSSH private key"],
        },
    ];
    std::thread::scope(|scope| {
        let handles: Vec<_> = cases
            .iter()
            .map(|case| {
                scope.spawn(move || {
                    let workspace = workspace_with(&case.provider);
                    workspace.write_file("probe.tf", PROBE);
                    let output = workspace.validate();
                    output
                        .assert_failure()
                        .assert_contains(&[case.summary])
                        .assert_contains(&case.contains);
                    assert!(
                        !output.combined().contains(NOT_PEM),
                        "{}: a sensitive value was echoed:\n{}",
                        case.name,
                        output.combined()
                    );
                })
            })
            .collect();
        for (case, handle) in cases.iter().zip(handles) {
            if let Err(panic) = handle.join() {
                std::panic::resume_unwind(Box::new(format!(
                    "case {:?} failed: {}",
                    case.name,
                    panic
                        .downcast_ref::<String>()
                        .cloned()
                        .unwrap_or_else(|| "panic".to_string())
                )));
            }
        }
    });
}

#[test]
fn a_kubernetes_host_unknown_until_apply_is_accepted() {
    let workspace = workspace_with(
        r#"resource "terraform_data" "cluster" {
  input = "https://127.0.0.1:6443"
}

provider "flux" {
  kubernetes = {
    host                   = terraform_data.cluster.output
    cluster_ca_certificate = terraform_data.cluster.output
    token                  = "t"
  }
}"#,
    );
    workspace.write_file("probe.tf", PROBE);
    // validate evaluates resource attributes as unknown: the provider receives the unknown
    // host and CA and must not complain (the probe's error is the only one).
    let output = workspace.validate();
    output.assert_failure().assert_contains(&[PROBE_ERROR]);
    assert_eq!(
        output.combined().matches("Error: ").count(),
        1,
        "{}",
        output.combined()
    );
    assert!(
        output
            .provider_log
            .contains("tf_rpc=ValidateProviderConfig"),
        "the provider was not asked to validate:\n{}",
        output.provider_log
    );
    // The same block with a malformed known CA is refused, so the check above is not vacuous.
    workspace.write_config(&format!(
        "{REQUIRED_PROVIDERS}\nprovider \"flux\" {{\n  kubernetes = {{\n    host                   = \"https://127.0.0.1:6443\"\n    cluster_ca_certificate = \"nope\"\n  }}\n}}\n"
    ));
    workspace
        .validate()
        .assert_failure()
        .assert_contains(&["Fix the provider setting kubernetes.cluster_ca_certificate."]);
}

#[test]
fn a_kubernetes_host_unknown_until_apply_plans_without_error() {
    let workspace = workspace_with(&format!(
        r#"resource "terraform_data" "cluster" {{
  input = "https://127.0.0.1:6443"
}}

provider "flux" {{
  kubernetes = {{
    host  = terraform_data.cluster.output
    token = "t"
  }}
}}

{INSTANCE}"#
    ));
    let plan = workspace.plan();
    let output = plan.assert_changes();
    output.assert_contains(&[
        "flux_instance.this will be created",
        "terraform_data.cluster will be created",
        "Plan: 2 to add, 0 to change, 0 to destroy.",
    ]);
    for rpc in ["ConfigureProvider", "PlanResourceChange"] {
        assert!(
            output.provider_log.contains(&format!("tf_rpc={rpc}")),
            "{rpc} was not called:\n{}",
            output.provider_log
        );
    }
}
