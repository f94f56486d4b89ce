//! Reliability suite, part 5: concurrency and lost state.
//! - Two configurations bootstrap two clusters (two sandboxes) into ONE repository at the same
//!   moment: both succeed, and neither push is forced (each commit stays in the history).
//! - The state of a bootstrap is lost; a fresh apply of the same configuration adopts the
//!   installation or refuses cleanly, and never rewrites the repository's history.
//! - Destroy succeeds — twice in a row — when the object, the operator, the CRDs or the whole
//!   namespace were deleted behind Terraform's back.
//!
//! Figures go to `target/reliability/concurrency.json` and `lost-state.json`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;
#[path = "fixtures/reliability.rs"]
mod reliability;
#[path = "fixtures/flux_instance/sandbox.rs"]
mod sandbox;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::git_server::{GitHttpServer, GitRepos, HttpServerOptions};
use common::terraform::{Plan, REQUIRED_PROVIDERS, Workspace};
use sandbox::{OPERATOR_INSTALL, Sandbox};
use serde_json::json;

/// The four core controllers, written out: a configuration that leaves `components` to its
/// default plans a spurious update after every apply (reported in RELIABILITY.md).
const CORE: &str =
    r#""source-controller", "kustomize-controller", "helm-controller", "notification-controller""#;
const BINARY: &str = env!("CARGO_BIN_EXE_terraform-provider-flux");

fn bootstrap_config(kubeconfig: &str, url: &str, path: &str) -> String {
    format!(
        r#"{REQUIRED_PROVIDERS}
provider "flux" {{
  kubernetes = {{ config_path = "{kubeconfig}" }}
  git = {{
    http = {{ username = "bot", password = "pw-concurrency", allow_insecure_http = true }}
  }}
}}

resource "flux_bootstrap_git" "this" {{
  url          = "{url}"
  path         = "{path}"
  operator     = {{ manifests = file("operator-install.yaml") }}
  distribution = {{ version = "2.7.x" }}
  timeouts {{
    create = "120s"
    update = "120s"
    delete = "120s"
  }}
}}
"#
    )
}

fn git_server(repos: &Arc<GitRepos>) -> GitHttpServer {
    GitHttpServer::start(
        repos.clone(),
        HttpServerOptions {
            basic: Some(("bot".into(), "pw-concurrency".into())),
            ..HttpServerOptions::default()
        },
    )
}

fn workspace() -> Workspace {
    let ws = Workspace::new(BINARY);
    ws.write_file("operator-install.yaml", OPERATOR_INSTALL);
    ws
}

#[track_caller]
fn assert_plan_empty(ws: &Workspace, context: &str) {
    if let Plan::Changes(o) | Plan::Error(o) = ws.plan() {
        panic!("{context}: the plan is not empty:\n{}", o.combined());
    }
}

#[test]
fn two_bootstraps_into_one_repository_at_once() {
    let repos = GitRepos::new();
    repos.create_with_history("fleet", "main", 3, 2);
    let base = repos.tip("fleet", "main").unwrap();
    let git = git_server(&repos);
    let url = git.url("fleet");
    let clusters: Vec<(Sandbox, Workspace, &str)> = ["clusters/a", "clusters/b"]
        .into_iter()
        .map(|path| {
            let sandbox = Sandbox::start();
            let ws = workspace();
            ws.write_config(&bootstrap_config(
                &sandbox.kubeconfig().display().to_string(),
                &url,
                path,
            ));
            (sandbox, ws, path)
        })
        .collect();
    // Both applies at the same moment.
    let outputs: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = clusters
            .iter()
            .map(|(_, ws, _)| scope.spawn(move || ws.apply()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for output in &outputs {
        output.assert_success();
    }
    // Both committed; no history was rewritten (the base and each bootstrap's commit are in the
    // history of the tip).
    let files = repos.files("fleet", "main");
    for (_, ws, path) in &clusters {
        let manifest = format!("{path}/flux-system/flux-instance.yaml");
        assert!(files.contains(&manifest), "{manifest} missing: {files:?}");
        let state = ws.show_json();
        let commit = state["values"]["root_module"]["resources"][0]["values"]["commit_sha"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            repos.is_ancestor("fleet", &commit, "main"),
            "{path}'s commit {commit} is not in the history: a push was forced"
        );
        assert_plan_empty(ws, path);
    }
    assert!(repos.is_ancestor("fleet", &base, "main"));
    let log = repos.log("fleet", "main");
    println!(
        "history after two concurrent bootstraps:\n{}",
        log.join("\n")
    );
    for (_, ws, _) in &clusters {
        ws.destroy().assert_success();
    }
    reliability::write_figures(
        "concurrency",
        &json!({"concurrent bootstraps": 2, "succeeded": outputs.iter().filter(|o| o.success()).count(), "forced pushes": 0}),
    );
}

#[test]
fn lost_state_after_bootstrap_never_clobbers_git() {
    let sandbox = Sandbox::start();
    let repos = GitRepos::new();
    repos.create_with_history("fleet", "main", 3, 2);
    let git = git_server(&repos);
    let config = bootstrap_config(
        &sandbox.kubeconfig().display().to_string(),
        &git.url("fleet"),
        "clusters/dev",
    );
    let first = workspace();
    first.write_config(&config);
    first.apply().assert_success();
    let tip = repos.tip("fleet", "main").unwrap();
    let manifest = repos
        .read_file(
            "fleet",
            "main",
            "clusters/dev/flux-system/flux-instance.yaml",
        )
        .unwrap();
    // Someone else commits on top, too.
    repos.push_as_someone_else("fleet", "main", "apps/app.yaml", "kind: ConfigMap\n", "app");
    let theirs = repos.tip("fleet", "main").unwrap();

    // The state is lost: a new workspace with the same configuration.
    let fresh = workspace();
    fresh.write_config(&config);
    let output = fresh.apply();
    let outcome = if output.success() {
        // Adopted: same content, nothing rewritten, empty plan.
        assert_plan_empty(&fresh, "after adopting");
        "adopted"
    } else {
        output.assert_contains(&["import"]);
        "refused"
    };
    println!(
        "lost state: the fresh apply {outcome}:\n{}",
        output.combined()
    );
    assert!(
        repos.is_ancestor("fleet", &tip, "main") && repos.is_ancestor("fleet", &theirs, "main"),
        "the fresh apply rewrote the repository's history"
    );
    assert_eq!(
        repos
            .read_file(
                "fleet",
                "main",
                "clusters/dev/flux-system/flux-instance.yaml"
            )
            .unwrap(),
        manifest,
        "the fresh apply changed the committed manifest"
    );
    assert_eq!(
        repos.read_file("fleet", "main", "apps/app.yaml").as_deref(),
        Some("kind: ConfigMap\n"),
        "someone else's commit was clobbered"
    );
    assert!(
        sandbox
            .get_json(&["fluxinstance", "flux", "-n", "flux-system"])
            .is_some(),
        "the installation is gone"
    );
    reliability::write_figures(
        "lost-state",
        &json!({"fresh apply": outcome, "history rewritten": false}),
    );
}

// ---------------------------------------------------------------------------------------------
// Destroy when things are already gone
// ---------------------------------------------------------------------------------------------

fn stack_config(kubeconfig: &str) -> String {
    format!(
        r#"{REQUIRED_PROVIDERS}
provider "flux" {{
  kubernetes = {{ config_path = "{kubeconfig}" }}
}}

resource "flux_operator" "this" {{
  manifests = file("operator-install.yaml")
}}

resource "flux_instance" "this" {{
  depends_on   = [flux_operator.this]
  distribution = {{ version = "2.7.x" }}
  components   = [{CORE}]
  timeouts {{
    delete = "60s"
  }}
}}

resource "flux_resource_set" "this" {{
  depends_on = [flux_operator.this]
  name       = "apps"
  namespace  = "flux-system"
  resources = [{{
    apiVersion = "v1"
    kind       = "ConfigMap"
    metadata   = {{ name = "apps", namespace = "flux-system" }}
  }}]
}}

resource "flux_resource_set_input_provider" "this" {{
  depends_on     = [flux_operator.this]
  name           = "inputs"
  namespace      = "flux-system"
  type           = "Static"
  default_values = {{ a = "b" }}
}}
"#
    )
}

/// Deletes an object behind Terraform's back, its finalizers removed (nobody is left to do it),
/// and waits until it is gone.
fn delete_behind_the_back(sandbox: &Sandbox, kind: &str, name: &str, namespace: Option<&str>) {
    let mut args = vec!["delete", kind, name, "--wait=false"];
    if let Some(ns) = namespace {
        args.extend(["-n", ns]);
    }
    sandbox.kubectl(&args);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // Finalizers of whatever still terminates (the object, or the namespace's content).
        for (k, ns) in [
            ("fluxinstances", Some("flux-system")),
            ("resourcesets", Some("flux-system")),
            ("resourcesetinputproviders", Some("flux-system")),
        ] {
            let mut list = vec!["get", k, "-o", "name"];
            if let Some(ns) = ns {
                list.extend(["-n", ns]);
            }
            let (ok, out, _) = sandbox.kubectl_status(&list);
            if !ok {
                continue;
            }
            for object in out.lines() {
                let mut patch = vec![
                    "patch",
                    object,
                    "--type=merge",
                    "-p",
                    r#"{"metadata":{"finalizers":null}}"#,
                ];
                if let Some(ns) = ns {
                    patch.extend(["-n", ns]);
                }
                let _ = sandbox.kubectl_status(&patch);
            }
        }
        let mut get = vec!["get", kind, name];
        if let Some(ns) = namespace {
            get.extend(["-n", ns]);
        }
        let (exists, _, _) = sandbox.kubectl_status(&get);
        if !exists {
            return;
        }
        assert!(Instant::now() < deadline, "{kind} {name} was not deleted");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn destroy_succeeds_twice_when_things_are_already_gone() {
    let mut figures = serde_json::Map::new();
    type Removal = fn(&Sandbox);
    let cases: [(&str, Removal); 4] = [
        ("the objects", |s| {
            delete_behind_the_back(s, "fluxinstance", "flux", Some("flux-system"));
            delete_behind_the_back(s, "resourceset", "apps", Some("flux-system"));
            delete_behind_the_back(s, "resourcesetinputprovider", "inputs", Some("flux-system"));
        }),
        ("the operator", |s| {
            delete_behind_the_back(s, "deployment", "flux-operator", Some("flux-system"));
        }),
        ("the CRDs", |s| {
            for crd in [
                "fluxinstances.fluxcd.controlplane.io",
                "resourcesets.fluxcd.controlplane.io",
                "resourcesetinputproviders.fluxcd.controlplane.io",
            ] {
                delete_behind_the_back(s, "crd", crd, None);
            }
        }),
        ("the namespace", |s| {
            delete_behind_the_back(s, "namespace", "flux-system", None);
        }),
    ];
    for (what, remove) in cases {
        let sandbox = Sandbox::start();
        let ws = workspace();
        ws.write_config(&stack_config(&sandbox.kubeconfig().display().to_string()));
        ws.apply().assert_success();
        remove(&sandbox);
        // A plain destroy in every case, the namespace's included: Terraform's pre-destroy
        // refresh finds the objects gone and its plan no longer fails on the missing namespace
        // (a dry-run that fails only on it is a warning at plan, issue 11 item 7).
        let args: &[&str] = &[
            "destroy",
            "-auto-approve",
            "-input=false",
            "-lock=false",
            "-no-color",
        ];
        let first = ws.run(args);
        first.assert_success();
        let state = ws.show_json();
        assert!(
            state["values"]["root_module"]["resources"].is_null(),
            "{what} gone: resources left in the state: {state}"
        );
        let second = ws.run(args);
        second.assert_success();
        println!(
            "destroy with {what} already gone: ok twice ({})",
            args.join(" ")
        );
        figures.insert(
            what.to_owned(),
            json!("destroyed twice (plain terraform destroy)"),
        );
    }
    reliability::write_figures("destroy-gone", &serde_json::Value::Object(figures));
}
