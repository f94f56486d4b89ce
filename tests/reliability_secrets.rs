//! Reliability suite, part 3: secrets. `flux_bootstrap_git` runs with `TF_LOG=trace` for each
//! way of authenticating to Git — HTTP basic, bearer token, SSH key, SSH key with passphrase —
//! through validate, plan (saved and shown as JSON), apply, a second plan, failures that make
//! libgit2 and libssh2 report errors (wrong password or token, unauthorised key, wrong
//! passphrase) and a URL carrying credentials, then destroy. Every artifact a user or a CI log
//! could keep — the state and its backup, the plan JSON, every command's output and error
//! messages, the whole Terraform log (core and provider) — is scanned for each secret in every
//! form it could leak in: as written, base64 (standard, URL-safe, with and without padding),
//! percent-encoded, and for keys each line of the key body.
//!
//! A second test proves that the state holds nothing derived from a credential: two bootstraps
//! that differ only in the password leave identical states (but for the commit hash), so a
//! state file gives nothing to test a guessed password against.
//!
//! Figures (secret forms × artifacts scanned) go to `target/reliability/secrets.json`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;
#[path = "fixtures/reliability.rs"]
mod reliability;
#[path = "fixtures/flux_instance/sandbox.rs"]
mod sandbox;

use std::collections::BTreeMap;

use base64::Engine as _;
use common::git_server::{
    GitHttpServer, GitRepos, HttpServerOptions, SshGitServer, generate_ssh_key,
};
use common::terraform::{Output, REQUIRED_PROVIDERS, Workspace};
use sandbox::{OPERATOR_INSTALL, Sandbox};
use serde_json::Value;

const BINARY: &str = env!("CARGO_BIN_EXE_terraform-provider-flux");

/// The forms a secret could leak in.
fn forms(label: &str, secret: &str) -> Vec<(String, String)> {
    let b64 = |engine: &base64::engine::GeneralPurpose| engine.encode(secret.as_bytes());
    let mut out = vec![
        (format!("{label} (as written)"), secret.to_owned()),
        (
            format!("{label} (base64)"),
            b64(&base64::engine::general_purpose::STANDARD),
        ),
        (
            format!("{label} (base64, no padding)"),
            b64(&base64::engine::general_purpose::STANDARD_NO_PAD),
        ),
        (
            format!("{label} (base64url)"),
            b64(&base64::engine::general_purpose::URL_SAFE_NO_PAD),
        ),
        (
            format!("{label} (percent-encoded)"),
            secret
                .bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect(),
        ),
    ];
    if secret.contains("PRIVATE KEY") {
        // Each line of the key body (a partial leak is a leak), and the base64 of the whole
        // file as a Secret's `data` carries it (its first 64 characters).
        for (i, line) in secret
            .lines()
            .filter(|l| !l.starts_with("-----") && l.len() > 20)
            .enumerate()
        {
            out.push((format!("{label} (body line {})", i + 1), line.to_owned()));
        }
        let whole = base64::engine::general_purpose::STANDARD.encode(secret.as_bytes());
        out.push((
            format!("{label} (base64 of the file, prefix)"),
            whole[..64].to_owned(),
        ));
    }
    // A base64 form of a short secret can be shorter than what is distinctive: keep forms of
    // at least 8 characters.
    out.retain(|(_, needle)| needle.len() >= 8);
    out.sort();
    out.dedup_by(|a, b| a.1 == b.1);
    out
}

/// Everything a run leaves behind that a user or a CI system could keep.
struct Artifacts {
    texts: BTreeMap<String, String>,
}

impl Artifacts {
    fn new() -> Self {
        Self {
            texts: BTreeMap::new(),
        }
    }

    fn output(&mut self, name: &str, output: &Output) {
        self.texts
            .insert(format!("{name}: output"), output.combined());
    }

    fn file(&mut self, name: &str, ws: &Workspace, file: &str) {
        let content = std::fs::read_to_string(ws.path().join(file)).unwrap_or_default();
        self.texts.insert(name.to_owned(), content);
    }

    /// Scans every artifact for every form of every secret; returns the number of checks.
    #[track_caller]
    fn assert_clean(&self, secrets: &[(String, String)]) -> usize {
        let mut leaks = Vec::new();
        let mut checks = 0;
        for (artifact, text) in &self.texts {
            for (label, needle) in secrets {
                checks += 1;
                if text.contains(needle.as_str()) {
                    let at = text.find(needle.as_str()).unwrap();
                    let start = text[..at]
                        .char_indices()
                        .rev()
                        .nth(120)
                        .map_or(0, |(i, _)| i);
                    let context: String = text[start..].chars().take(300).collect();
                    leaks.push(format!("{label} in {artifact}: …{context}…"));
                }
            }
        }
        assert!(leaks.is_empty(), "secrets leaked:\n{}", leaks.join("\n\n"));
        checks
    }
}

/// One Git authentication mode: the provider's `git` block, the repository URL, the secrets it
/// involves, and how to make the server refuse it (for error messages).
struct Mode {
    name: &'static str,
    git_block: String,
    url: String,
    secrets: Vec<(String, String)>,
}

fn config(sandbox: &Sandbox, mode: &Mode) -> String {
    format!(
        r#"{REQUIRED_PROVIDERS}
provider "flux" {{
  kubernetes = {{ config_path = "{kubeconfig}" }}
  git = {git}
}}

resource "flux_bootstrap_git" "this" {{
  url      = "{url}"
  path     = "clusters/dev"
  interval = "1h"
  distribution = {{ version = "2.7.x" }}
  operator = {{ manifests = file("operator-install.yaml") }}
  timeouts {{
    create = "90s"
    update = "90s"
    delete = "90s"
  }}
}}
"#,
        kubeconfig = sandbox.kubeconfig().display(),
        git = mode.git_block,
        url = mode.url,
    )
}

fn workspace() -> Workspace {
    let mut ws = Workspace::new(BINARY);
    ws.write_file("operator-install.yaml", OPERATOR_INSTALL);
    ws.set_env("TF_LOG", "trace");
    ws
}

/// The full lifecycle of one mode, with `break_auth` making the server refuse the credentials
/// (for errors) and `fix_auth` undoing it; returns the number of checks made.
fn lifecycle(
    mode: &Mode,
    sandbox: &Sandbox,
    ws: &Workspace,
    break_auth: &dyn Fn(&Workspace),
    fix_auth: &dyn Fn(&Workspace),
) -> usize {
    let mut artifacts = Artifacts::new();
    ws.write_config(&config(sandbox, mode));
    let validate = ws.validate();
    artifacts.output("validate", validate.assert_success());
    let plan = ws.run(&[
        "plan",
        "-out=tfplan",
        "-input=false",
        "-lock=false",
        "-no-color",
    ]);
    artifacts.output("plan -out", plan.assert_success());
    let shown = ws.run(&["show", "-json", "tfplan"]);
    artifacts.output("show -json tfplan (plan JSON)", shown.assert_success());
    let apply = ws.apply_saved("tfplan");
    artifacts.output("apply", apply.assert_success());
    ws.plan().assert_no_changes();
    // The credentials refused: the refresh fails with libgit2's/libssh2's error, quoted.
    break_auth(ws);
    let refused = ws.plan();
    let refused = refused.assert_error();
    assert!(
        refused.combined().contains("Git Authentication Failed")
            || refused.combined().contains("SSH"),
        "{} refused: {}",
        mode.name,
        refused.combined()
    );
    artifacts.output("plan with refused credentials", refused);
    fix_auth(ws);
    ws.plan().assert_no_changes();
    let state = ws.show_json();
    artifacts
        .texts
        .insert("terraform show -json (state)".into(), state.to_string());
    artifacts.file("terraform.tfstate", ws, "terraform.tfstate");
    let destroy = ws.destroy();
    artifacts.output("destroy", destroy.assert_success());
    artifacts.file("terraform.tfstate.backup", ws, "terraform.tfstate.backup");
    artifacts.file("terraform.log (TF_LOG=trace)", ws, "terraform.log");
    println!(
        "{}: {} artifacts, {} secret forms",
        mode.name,
        artifacts.texts.len(),
        mode.secrets.len()
    );
    artifacts.assert_clean(&mode.secrets)
}

#[test]
fn no_secret_in_state_plan_logs_or_errors() {
    let sandbox = Sandbox::start();
    let repos = GitRepos::new();
    let mut figures = serde_json::Map::new();
    let mut total = 0;

    // HTTP basic, then bearer: one server accepting either.
    let password = "pw-Basic-S3cret!value";
    let token = "tok-Bearer-S3cret-value-0123456789";
    let http = GitHttpServer::start(
        repos.clone(),
        HttpServerOptions {
            basic: Some(("bot".into(), password.into())),
            bearer: Some(token.into()),
            ..HttpServerOptions::default()
        },
    );
    for (name, block, secret) in [
        (
            "http basic",
            r#"{ http = { username = "bot", password = file("secret.txt"), allow_insecure_http = true } }"#
                .to_owned(),
            password,
        ),
        (
            "http bearer",
            r#"{ http = { bearer_token = file("secret.txt"), allow_insecure_http = true } }"#
                .to_owned(),
            token,
        ),
    ] {
        let repo = name.replace(' ', "-");
        repos.create_empty(&repo);
        let ws = workspace();
        ws.write_file("secret.txt", secret);
        let mut secrets = forms(name, secret);
        // As an HTTP basic `Authorization` header carries it.
        secrets.extend(forms(&format!("{name}: user:password"), &format!("bot:{secret}")));
        let mode = Mode {
            name,
            git_block: block,
            url: http.url(&repo),
            secrets,
        };
        let checks = lifecycle(
            &mode,
            &sandbox,
            &ws,
            &|_| {
                http.set_password("changed-on-the-server");
                http.set_token("changed-on-the-server-too");
            },
            &|_| {
                http.set_password(password);
                http.set_token(token);
            },
        );
        figures.insert(
            name.into(),
            serde_json::json!({"forms": mode.secrets.len(), "checks": checks}),
        );
        total += checks;
    }

    // SSH key, then SSH key with a passphrase.
    let ssh = SshGitServer::start(repos.clone());
    for (name, passphrase) in [
        ("ssh key", None),
        ("ssh key with passphrase", Some("Passphrase-S3cret-value")),
    ] {
        let repo = name.replace(' ', "-");
        repos.create_empty(&repo);
        let key = generate_ssh_key("ed25519", passphrase);
        let stranger = generate_ssh_key("ed25519", passphrase);
        ssh.authorize(&key);
        let ws = workspace();
        ws.write_file("id_ed25519", &key.private_key);
        ws.write_file("passphrase.txt", passphrase.unwrap_or_default());
        let password = if passphrase.is_some() {
            r#"password = file("passphrase.txt")"#
        } else {
            ""
        };
        let mut secrets = forms(&format!("{name}: private key"), &key.private_key);
        secrets.extend(forms(&format!("{name}: other key"), &stranger.private_key));
        if let Some(p) = passphrase {
            secrets.extend(forms(&format!("{name}: passphrase"), p));
        }
        let mode = Mode {
            name,
            git_block: format!(
                "{{ ssh = {{ private_key = file(\"id_ed25519\"), {password}, known_hosts = \"{}\" }} }}",
                ssh.known_hosts_line()
            )
            .replace(", ,", ","),
            url: ssh.url(&repo),
            secrets,
        };
        // Refused: a key the server does not know (libssh2's authentication error).
        let stranger_key = stranger.private_key.clone();
        let own_key = key.private_key.clone();
        let checks = lifecycle(
            &mode,
            &sandbox,
            &ws,
            &move |ws| {
                ws.write_file("id_ed25519", &stranger_key);
            },
            &move |ws| {
                ws.write_file("id_ed25519", &own_key);
            },
        );
        figures.insert(
            name.into(),
            serde_json::json!({"forms": mode.secrets.len(), "checks": checks}),
        );
        total += checks;
    }

    // A wrong passphrase (libssh2 cannot decrypt the key) and a URL carrying credentials: the
    // errors name the problem without the secret.
    let mut artifacts = Artifacts::new();
    let key = generate_ssh_key("ed25519", Some("Right-Passphrase-value"));
    ssh.authorize(&key);
    repos.create_empty("wrong-passphrase");
    let ws = workspace();
    ws.write_file("id_ed25519", &key.private_key);
    ws.write_file("passphrase.txt", "Wrong-Passphrase-value");
    let mode = Mode {
        name: "wrong passphrase",
        git_block: format!(
            "{{ ssh = {{ private_key = file(\"id_ed25519\"), password = file(\"passphrase.txt\"), known_hosts = \"{}\" }} }}",
            ssh.known_hosts_line()
        ),
        url: ssh.url("wrong-passphrase"),
        secrets: Vec::new(),
    };
    ws.write_config(&config(&sandbox, &mode));
    let failed = ws.apply();
    failed.assert_failure();
    artifacts.output("apply with a wrong passphrase", &failed);
    let url_password = "Url-Embedded-S3cret";
    let mode = Mode {
        name: "credentials in the URL",
        git_block: r#"{ http = { allow_insecure_http = true } }"#.into(),
        url: http
            .url("http-basic")
            .replace("http://", &format!("http://bot:{url_password}@")),
        secrets: Vec::new(),
    };
    let ws_url = workspace();
    // Read from a file: Terraform quotes the configuration's source line in its diagnostics,
    // and that is the user's own text, not the provider's output.
    ws_url.write_file("url.txt", &mode.url);
    let mode = Mode {
        url: "${trimspace(file(\"url.txt\"))}".into(),
        ..mode
    };
    ws_url.write_config(&config(&sandbox, &mode));
    let refused = ws_url.validate();
    refused.assert_failure().assert_contains(&["url"]);
    artifacts.output("validate with credentials in the URL", &refused);
    artifacts.file("terraform.log (wrong passphrase)", &ws, "terraform.log");
    artifacts.file("terraform.log (URL credentials)", &ws_url, "terraform.log");
    let mut secrets = forms("wrong passphrase", "Wrong-Passphrase-value");
    secrets.extend(forms("right passphrase", "Right-Passphrase-value"));
    secrets.extend(forms("private key", &key.private_key));
    secrets.extend(forms("URL password", url_password));
    let checks = artifacts.assert_clean(&secrets);
    figures.insert(
        "errors (wrong passphrase, URL credentials)".into(),
        serde_json::json!({"forms": secrets.len(), "checks": checks}),
    );
    total += checks;

    println!("secret checks: {total}");
    reliability::write_figures(
        "secrets",
        &serde_json::json!({"modes": figures, "checks": total}),
    );
}

/// The `values` of the bootstrap resource in `terraform show -json`.
fn resource_values(ws: &Workspace) -> Value {
    let state = ws.show_json();
    state["values"]["root_module"]["resources"][0]["values"].clone()
}

#[test]
fn state_holds_nothing_derived_from_the_credentials() {
    // One repository and server (the same URL in both runs), two fresh clusters; only the
    // password differs.
    let repos = GitRepos::new();
    repos.create_empty("fleet");
    let http = GitHttpServer::start(
        repos.clone(),
        HttpServerOptions {
            basic: Some(("bot".into(), "unused".into())),
            ..HttpServerOptions::default()
        },
    );
    let mut states = Vec::new();
    for password in ["first-Password-1", "second-Password-2"] {
        http.set_password(password);
        let sandbox = Sandbox::start();
        let ws = workspace();
        ws.write_file("secret.txt", password);
        let mode = Mode {
            name: "http basic",
            git_block: r#"{ http = { username = "bot", password = file("secret.txt"), allow_insecure_http = true } }"#.into(),
            url: http.url("fleet"),
            secrets: Vec::new(),
        };
        ws.write_config(&config(&sandbox, &mode));
        ws.apply().assert_success();
        let mut values = resource_values(&ws);
        // The commit hash covers the commit's time.
        values.as_object_mut().unwrap().remove("commit_sha");
        states.push(values);
        ws.destroy().assert_success();
    }
    let differing: Vec<String> = states[0]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, v)| states[1].get(k.as_str()) != Some(*v))
        .map(|(k, v)| format!("{k}: {v} vs {}", states[1][k.as_str()]))
        .collect();
    assert_eq!(
        differing,
        Vec::<String>::new(),
        "the state differs when only the password does: something in it is derived from the \
         credentials"
    );
    assert_eq!(states[0], states[1]);
}
