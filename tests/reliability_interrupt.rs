//! Reliability suite, part 4: interruption. `terraform apply`/`destroy` gets SIGINT (Ctrl-C)
//! while the provider is
//! - waiting for a FluxInstance to become ready (a component Deployment never becomes
//!   Available),
//! - pushing to Git (the server stalls the push),
//! - destroying (a finalizer of someone else's holds the FluxInstance),
//!
//! and each time: Terraform exits within 2 s of the signal (it calls StopProvider; the provider
//! cancels at once), the state holds what exists — nothing tainted, so the next plan never
//! replaces (uninstalls) Flux — and, with the obstacle gone, one apply (or destroy) converges
//! and the plan after it is empty. The exit times go to `target/reliability/interrupt.json`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;
#[path = "fixtures/fault_target.rs"]
mod fault_target;
#[path = "fixtures/reliability.rs"]
mod reliability;
#[path = "fixtures/flux_instance/sandbox.rs"]
mod sandbox;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::git_server::{GitHttpServer, GitRepos, HttpServerOptions};
use common::terraform::{Plan, REQUIRED_PROVIDERS, Workspace};
use fault_target::FaultTarget;
use sandbox::{OPERATOR_INSTALL, Sandbox};
use serde_json::json;

const BINARY: &str = env!("CARGO_BIN_EXE_terraform-provider-flux");
/// The longest Terraform may take to exit after SIGINT.
const EXIT_LIMIT: Duration = Duration::from_secs(2);

/// A running terraform command whose output is drained as it comes (a full pipe would block
/// terraform).
struct Running {
    child: Child,
    started: Instant,
    stdout: std::thread::JoinHandle<String>,
    stderr: std::thread::JoinHandle<String>,
}

fn drain(mut pipe: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

fn start(ws: &Workspace, args: &[&str]) -> Running {
    let mut child = ws.command(args).spawn().expect("start terraform");
    let stdout = drain(child.stdout.take().unwrap());
    let stderr = drain(child.stderr.take().unwrap());
    Running {
        child,
        started: Instant::now(),
        stdout,
        stderr,
    }
}

impl Running {
    /// Waits until `ready` holds (polling), panicking if the command ends first or after 120 s.
    fn wait_until(&mut self, what: &str, mut ready: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if ready() {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("terraform ended ({status}) before {what}");
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends SIGINT and measures how long terraform takes to exit; returns (time, output).
    fn interrupt(mut self) -> (Duration, String) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-INT", &pid]).status().unwrap();
        assert!(status.success(), "kill -INT {pid}");
        let sent = Instant::now();
        let exited = loop {
            if self.child.try_wait().unwrap().is_some() {
                break sent.elapsed();
            }
            if sent.elapsed() > Duration::from_secs(120) {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "terraform did not exit within 120 s of SIGINT (ran {:?})",
                    self.started.elapsed()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let output = format!(
            "{}\n{}",
            self.stdout.join().unwrap(),
            self.stderr.join().unwrap()
        );
        (exited, output)
    }
}

/// Resource addresses in the state, and whether each is tainted.
fn state(ws: &Workspace) -> Vec<(String, bool)> {
    let state = ws.show_json();
    state["values"]["root_module"]["resources"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    (
                        r["address"].as_str().unwrap().to_owned(),
                        r["tainted"] == true,
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[track_caller]
fn assert_plan_empty(ws: &Workspace, context: &str) {
    if let Plan::Changes(o) | Plan::Error(o) = ws.plan() {
        panic!("{context}: the plan is not empty:\n{}", o.combined());
    }
}

#[track_caller]
fn assert_exit_time(exited: Duration, output: &str, context: &str) {
    println!("{context}: terraform exited {exited:?} after SIGINT");
    assert!(
        exited <= EXIT_LIMIT,
        "{context}: terraform took {exited:?} to exit after SIGINT (limit {EXIT_LIMIT:?}):\n{output}"
    );
    for bad in ["panic", "crashed", "Plugin did not respond"] {
        assert!(!output.contains(bad), "{context}: {bad:?} in:\n{output}");
    }
}

fn instance_config(kubeconfig: &str, with_instance: bool) -> String {
    let instance = if with_instance {
        r#"
resource "flux_instance" "this" {
  depends_on   = [flux_operator.this]
  distribution = { version = "2.7.x" }
  components   = ["source-controller", "kustomize-controller", "helm-controller", "notification-controller"]
  timeouts {
    create = "5m"
    delete = "5m"
  }
}
"#
    } else {
        ""
    };
    format!(
        r#"{REQUIRED_PROVIDERS}
provider "flux" {{
  kubernetes = {{ config_path = "{kubeconfig}" }}
}}

resource "flux_operator" "this" {{
  manifests = file("operator-install.yaml")
}}
{instance}"#
    )
}

/// SIGINT while `flux_instance` waits for readiness: Terraform exits promptly, the interrupted
/// create is kept in state untainted (issue 11 item 4), so the next apply waits again in place
/// instead of replacing (uninstalling) the instance.
#[test]
fn interrupted_readiness_wait() {
    let sandbox = Sandbox::start();
    let kubeconfig = sandbox.kubeconfig();
    let faults = FaultTarget::new(&kubeconfig);
    let ws = Workspace::new(BINARY);
    ws.write_file("operator-install.yaml", OPERATOR_INSTALL);
    let kc = kubeconfig.display().to_string();
    ws.write_config(&instance_config(&kc, false));
    ws.apply().assert_success();

    // A component that never becomes Available keeps the instance from Ready.
    faults.set(&json!({"stuckDeployments": ["flux-system/source-controller"]}));
    ws.write_config(&instance_config(&kc, true));
    let mut running = start(
        &ws,
        &["apply", "-auto-approve", "-input=false", "-no-color"],
    );
    running.wait_until("the FluxInstance is written and waited for", || {
        sandbox
            .get_json(&["deployment", "source-controller", "-n", "flux-system"])
            .is_some()
    });
    std::thread::sleep(Duration::from_millis(500));
    let (wait_exit, output) = running.interrupt();
    assert_exit_time(wait_exit, &output, "readiness wait");
    // What exists is in the state, untainted: the next plan does not replace it.
    let held = state(&ws);
    assert!(
        held.contains(&("flux_instance.this".to_owned(), false)),
        "readiness wait: the written FluxInstance is not (untainted) in the state: {held:?}\n{output}"
    );
    assert!(
        sandbox
            .get_json(&["fluxinstance", "flux", "-n", "flux-system"])
            .is_some()
    );
    if let Plan::Changes(o) = ws.plan() {
        assert!(
            !o.stdout.contains("must be replaced") && o.stdout.contains(" 0 to destroy."),
            "readiness wait: the next plan would uninstall Flux:\n{}",
            o.stdout
        );
    }
    // The obstacle gone, one apply converges.
    faults.set(&json!({}));
    ws.apply().assert_success();
    assert_plan_empty(&ws, "after the interrupted readiness wait");
    ws.destroy().assert_success();
    reliability::write_figures(
        "interrupt-wait",
        &json!({"readiness wait": {"exit_ms": wait_exit.as_millis()}}),
    );
}

/// SIGINT while `flux_instance` is destroyed.
#[test]
fn interrupted_destroy() {
    let sandbox = Sandbox::start();
    let kubeconfig = sandbox.kubeconfig();
    let ws = Workspace::new(BINARY);
    ws.write_file("operator-install.yaml", OPERATOR_INSTALL);
    ws.write_config(&instance_config(&kubeconfig.display().to_string(), true));
    ws.apply().assert_success();

    // Destroy, with a finalizer of someone else's holding the FluxInstance: the provider has
    // deleted it and waits for it to go.
    sandbox.kubectl(&[
        "patch",
        "fluxinstance",
        "flux",
        "-n",
        "flux-system",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/metadata/finalizers/-","value":"example.com/hold"}]"#,
    ]);
    let mut running = start(
        &ws,
        &["destroy", "-auto-approve", "-input=false", "-no-color"],
    );
    running.wait_until("the FluxInstance is deleted and waited for", || {
        sandbox
            .get_json(&["fluxinstance", "flux", "-n", "flux-system"])
            .is_some_and(|o| !o["metadata"]["deletionTimestamp"].is_null())
    });
    std::thread::sleep(Duration::from_millis(500));
    let (destroy_exit, output) = running.interrupt();
    assert_exit_time(destroy_exit, &output, "destroy");
    let held = state(&ws);
    assert!(
        held.iter().all(|(_, tainted)| !tainted),
        "destroy: tainted resources after the interrupt: {held:?}"
    );
    for (address, _) in &held {
        let exists = match address.as_str() {
            "flux_instance.this" => sandbox
                .get_json(&["fluxinstance", "flux", "-n", "flux-system"])
                .is_some(),
            "flux_operator.this" => sandbox
                .get_json(&["deployment", "flux-operator", "-n", "flux-system"])
                .is_some(),
            other => panic!("unexpected {other}"),
        };
        assert!(
            exists,
            "destroy: {address} is in the state but gone from the cluster"
        );
    }
    // The finalizer released, one destroy converges.
    let finalizers = sandbox.kubectl(&[
        "get",
        "fluxinstance",
        "flux",
        "-n",
        "flux-system",
        "-o",
        "jsonpath={.metadata.finalizers}",
    ]);
    let kept: Vec<String> = serde_json::from_str::<Vec<String>>(&finalizers)
        .unwrap_or_default()
        .into_iter()
        .filter(|f| f != "example.com/hold")
        .collect();
    sandbox.kubectl(&[
        "patch",
        "fluxinstance",
        "flux",
        "-n",
        "flux-system",
        "--type=merge",
        "-p",
        &json!({"metadata": {"finalizers": kept}}).to_string(),
    ]);
    ws.destroy().assert_success();
    assert_eq!(state(&ws), Vec::new());
    assert!(
        sandbox
            .get_json(&["fluxinstance", "flux", "-n", "flux-system"])
            .is_none()
    );

    reliability::write_figures(
        "interrupt-destroy",
        &json!({"destroy": {"exit_ms": destroy_exit.as_millis()}}),
    );
}

/// SIGINT while `flux_bootstrap_git` pushes to a server that stalls the push.
#[test]
fn interrupted_git_push() {
    let sandbox = Sandbox::start();
    let kubeconfig = sandbox.kubeconfig();
    let ws = Workspace::new(BINARY);
    ws.write_file("operator-install.yaml", OPERATOR_INSTALL);
    let repos = GitRepos::new();
    repos.create_with_history("fleet", "main", 2, 1);
    let before = repos.tip("fleet", "main");
    let git = GitHttpServer::start(
        repos.clone(),
        HttpServerOptions {
            basic: Some(("bot".into(), "pw-interrupt".into())),
            ..HttpServerOptions::default()
        },
    );
    ws.write_config(&format!(
        r#"{REQUIRED_PROVIDERS}
provider "flux" {{
  kubernetes = {{ config_path = "{kc}" }}
  git = {{
    http = {{ username = "bot", password = "pw-interrupt", allow_insecure_http = true }}
  }}
}}

resource "flux_bootstrap_git" "this" {{
  url          = "{url}"
  path         = "clusters/dev"
  operator     = {{ manifests = file("operator-install.yaml") }}
  distribution = {{ version = "2.7.x" }}
}}
"#,
        kc = kubeconfig.display(),
        url = git.url("fleet"),
    ));
    git.set_push_delay(Duration::from_secs(300));
    let mut running = start(
        &ws,
        &["apply", "-auto-approve", "-input=false", "-no-color"],
    );
    running.wait_until("the push is stalled", || git.stalled_pushes() > 0);
    std::thread::sleep(Duration::from_millis(500));
    let (exited, output) = running.interrupt();
    git.set_push_delay(Duration::ZERO);
    assert_exit_time(exited, &output, "git push");
    // Nothing was pushed, nothing is in the state, nothing is tainted.
    assert_eq!(
        repos.tip("fleet", "main"),
        before,
        "the stalled push landed"
    );
    let held = state(&ws);
    assert!(
        held.iter().all(|(_, tainted)| !tainted),
        "git push: tainted after the interrupt: {held:?}"
    );
    // The obstacle gone, one apply converges.
    ws.apply().assert_success();
    assert_ne!(repos.tip("fleet", "main"), before);
    assert_plan_empty(&ws, "after the interrupted push");
    ws.destroy().assert_success();
    reliability::write_figures(
        "interrupt-git",
        &json!({"git push": {"exit_ms": exited.as_millis()}}),
    );
}
