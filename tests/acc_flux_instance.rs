//! Acceptance tests of `flux_operator` + `flux_instance` + the `flux_instance` data source: the
//! real `terraform` (and `tofu`) driving the built provider against the run's real control plane
//! (`tests/common/cluster.rs`: kube-apiserver with the operator simulator applying the real Flux
//! install objects), in a namespace of the test's own, asserting both the state (`terraform show
//! -json`) and the cluster (`kubectl`). Two tests keep a private kube-sandbox because they count
//! requests with its recorder: what plan writes and when apply returns, and a plan that must make
//! no request at all.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use common::cluster::TestCluster;
use common::sandbox::is_persisted_write;
use common::terraform::{REQUIRED_PROVIDERS, Workspace};
use serde_json::Value;

const BINARY: &str = env!("CARGO_BIN_EXE_terraform-provider-flux");

/// A public Git repository `fleet` (branch `main`, a ConfigMap under `clusters/prod`) served
/// over HTTP for the whole test process. The operator's health check waits for the sync
/// GitRepository and Kustomization, so a sync that must become Ready needs a repository that
/// exists (the simulated source-controller fetches it with the real `git`).
fn fleet_url() -> &'static str {
    static FLEET: std::sync::OnceLock<(common::git_server::GitHttpServer, String)> =
        std::sync::OnceLock::new();
    &FLEET
        .get_or_init(|| {
            let repos = common::git_server::GitRepos::new();
            repos.create_with_history("fleet", "main", 1, 1);
            repos.push_as_someone_else(
                "fleet",
                "main",
                "clusters/prod/cm.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fleet\n  namespace: default\n",
                "add cluster",
            );
            let server = common::git_server::GitHttpServer::start(
                repos,
                common::git_server::HttpServerOptions::default(),
            );
            let url = server.url("fleet");
            (server, url)
        })
        .1
}

/// The seed example's shape: version 2.7.x, the four core components, a `cluster` block and a
/// GitRepository sync with URL, ref and path (a public repository: no pull secret). `extra`
/// goes inside the instance.
fn config(version: &str, components: &str, size: &str, extra: &str) -> String {
    let url = fleet_url();
    format!(
        r#"{REQUIRED_PROVIDERS}
provider "flux" {{
  kubernetes = {{ config_path = "kubeconfig" }}
}}

resource "flux_operator" "this" {{
  namespace = local.namespace
  manifests = file("operator-install.yaml")
}}

resource "flux_instance" "this" {{
  namespace    = local.namespace
  depends_on   = [flux_operator.this]
  distribution = {{ version = "{version}" }}
  components   = [{components}]
  cluster      = {{ size = "{size}", multitenant = false }}
  sync = {{
    kind        = "GitRepository"
    url         = "{url}"
    ref         = "refs/heads/main"
    path        = "clusters/prod"
  }}
  {extra}
}}
"#
    )
}

const CORE: &str =
    r#""source-controller", "kustomize-controller", "helm-controller", "notification-controller""#;

/// A workspace with the cluster's kubeconfig, the operator install manifest for its namespace
/// and `local.namespace` (cluster.tf) naming that namespace.
fn workspace(sandbox: &TestCluster) -> Workspace {
    let ws = Workspace::new(BINARY);
    ws.write_file("kubeconfig", &sandbox.kubeconfig_yaml());
    ws.write_file("operator-install.yaml", &sandbox.operator_install());
    ws.write_file(
        "cluster.tf",
        &format!("locals {{\n  namespace = \"{}\"\n}}\n", sandbox.namespace()),
    );
    ws
}

fn resource<'a>(state: &'a Value, address: &str) -> &'a Value {
    state["values"]["root_module"]["resources"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["address"] == address))
        .map(|r| &r["values"])
        .unwrap_or_else(|| panic!("{address} not in state: {state}"))
}

fn instance(sandbox: &TestCluster) -> Value {
    sandbox
        .get_in_ns("fluxinstance", "flux")
        .expect("the FluxInstance exists")
}

fn ready_for_generation(object: &Value) -> bool {
    let generation = object["metadata"]["generation"].as_i64();
    object["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter().any(|c| {
            c["type"] == "Ready"
                && c["status"] == "True"
                && c["observedGeneration"].as_i64() == generation
        })
    })
}

/// The reason of the object's `Ready` condition ("" without one).
fn ready_reason(object: &Value) -> &str {
    object["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .and_then(|c| c["reason"].as_str())
        .unwrap_or("")
}

/// Seconds between two recorder timestamps (RFC 3339 with microseconds, same day).
fn seconds_between(a: &str, b: &str) -> f64 {
    let secs = |t: &str| {
        let clock = t.split('T').nth(1).unwrap().trim_end_matches('Z');
        let parts: Vec<f64> = clock.split(':').map(|p| p.parse().unwrap()).collect();
        parts[0] * 3600.0 + parts[1] * 60.0 + parts[2]
    };
    secs(b) - secs(a)
}

/// How long after the simulator's last `Ready=True` status write the provider read the instance
/// back (the end of its wait), from the recorder.
fn ready_to_return_latency(requests: &[Value]) -> Option<f64> {
    let path = "/apis/fluxcd.controlplane.io/v1/namespaces/flux-system/fluxinstances/flux";
    let ready_index = requests.iter().rposition(|r| {
        r["path"] == format!("{path}/status")
            && r["body"]
                .as_str()
                .is_some_and(|b| b.contains("ReconciliationSucceeded"))
    })?;
    let read_back = requests[ready_index..]
        .iter()
        .find(|r| r["path"] == path && r["method"] == "GET")?;
    Some(seconds_between(
        requests[ready_index]["time"].as_str()?,
        read_back["time"].as_str()?,
    ))
}

#[test]
fn seed_install_drift_and_in_place_update() {
    let sandbox = TestCluster::flux("acc-inst");
    let ns = sandbox.namespace();
    let ws = workspace(&sandbox);

    // (1) Operator plus a seed-shaped instance: apply succeeds with the instance Ready.
    ws.write_config(&config("2.7.x", CORE, "medium", ""));
    ws.apply().assert_success();
    let live = instance(&sandbox);
    assert!(ready_for_generation(&live), "{live}");
    assert_eq!(live["spec"]["cluster"]["size"], "medium");
    let state = ws.show_json();
    let values = resource(&state, "flux_instance.this");
    assert_eq!(values["ready"], true);
    assert_eq!(values["installation_status"], "Healthy");
    assert!(
        values["flux_version"]
            .as_str()
            .unwrap()
            .starts_with("v2.7."),
        "{values}"
    );
    assert_eq!(values["component_images"].as_array().unwrap().len(), 4);
    assert_eq!(
        resource(&state, "flux_operator.this")["operator_version"],
        "v0.58.1"
    );
    assert!(
        sandbox
            .get_json(&["deployment", "flux-operator", "-n", ns])
            .is_some()
    );

    // The second plan is empty (that plan writes nothing is counted in
    // `plan_writes_nothing_and_apply_returns_at_ready`, with the sandbox's recorder).
    ws.plan().assert_no_changes();

    // (2) Spec drift made with kubectl shows on exactly that field; apply restores it.
    sandbox.kubectl(&[
        "-n", ns, "patch", "fluxinstance", "flux", "--type", "merge", "-p",
        r#"{"spec":{"cluster":{"size":"large"},"components":["source-controller","kustomize-controller","helm-controller"]}}"#,
    ]);
    let plan = ws.plan();
    let out = plan.assert_changes();
    out.assert_contains(&[
        r#"~ size = "large" -> "medium""#,
        r#"+ "notification-controller","#,
        "Plan: 0 to add, 1 to change, 0 to destroy.",
    ]);
    assert!(!out.combined().contains("~ sync"), "{}", out.combined());
    ws.apply().assert_success();
    assert_eq!(instance(&sandbox)["spec"]["cluster"]["size"], "medium");
    ws.plan().assert_no_changes();

    // (3) A controller Deployment deleted by hand is a pending reconcile; apply brings it back.
    sandbox.kubectl(&["-n", ns, "delete", "deployment", "source-controller"]);
    let plan = ws.plan();
    plan.assert_changes().assert_contains(&[
        &format!(
            r#"~ installation_status = "Drifted: Deployment {ns}/source-controller missing" -> "Healthy""#
        ),
        "Flux Installation Will Be Reconciled",
    ]);
    ws.apply().assert_success();
    assert!(
        sandbox
            .get_json(&["deployment", "source-controller", "-n", ns])
            .is_some()
    );
    ws.plan().assert_no_changes();

    // (4) A version bump within the minor plus a component change: one in-place update that
    // waits for the new generation.
    let before = instance(&sandbox)["metadata"]["generation"]
        .as_i64()
        .unwrap();
    ws.write_config(&config(
        "2.7.x",
        &format!(r#"{CORE}, "image-reflector-controller""#),
        "medium",
        "",
    ));
    ws.plan()
        .assert_changes()
        .assert_contains(&["Plan: 0 to add, 1 to change, 0 to destroy."]);
    ws.apply().assert_success().assert_contains(&["1 changed"]);
    let live = instance(&sandbox);
    assert_eq!(live["metadata"]["generation"].as_i64().unwrap(), before + 1);
    assert!(ready_for_generation(&live), "{live}");
    assert!(
        sandbox
            .get_json(&["deployment", "image-reflector-controller", "-n", ns])
            .is_some()
    );
    ws.plan().assert_no_changes();
}

/// What only the sandbox's recorder can show: apply returns as soon as the simulator sets Ready,
/// and plan makes no persisted write (only dry-runs).
#[test]
fn plan_writes_nothing_and_apply_returns_at_ready() {
    let sandbox = TestCluster::sandbox();
    let ws = workspace(&sandbox);
    ws.write_config(&config("2.7.x", CORE, "medium", ""));
    sandbox.clear_requests();
    ws.apply().assert_success();
    let latency = ready_to_return_latency(&sandbox.requests());
    println!("apply returned {latency:?} s after the simulator set Ready (recorder timestamps)");
    assert!(latency.is_some_and(|s| s < 1.0), "latency {latency:?}");
    assert!(ready_for_generation(&instance(&sandbox)));

    sandbox.clear_requests();
    ws.plan().assert_no_changes();
    let writes: Vec<Value> = sandbox
        .requests()
        .into_iter()
        .filter(is_persisted_write)
        .collect();
    assert_eq!(writes, Vec::<Value>::new());
}

#[test]
fn hazards_and_api_validation_fail_at_plan() {
    let sandbox = TestCluster::flux("acc-inst");
    let ws = workspace(&sandbox);
    ws.write_config(&config("2.7.x", CORE, "medium", ""));
    ws.apply().assert_success();

    // A minor downgrade.
    ws.write_config(&config("2.6.x", CORE, "medium", ""));
    ws.plan()
        .assert_error()
        .assert_contains(&["Flux minor version downgrade"]);
    // A name the operator will not honour.
    ws.write_config(&config("2.7.x", CORE, "medium", r#"name = "other""#));
    ws.plan().assert_error().assert_contains(&[
        "Unsupported FluxInstance Name",
        "the Flux Operator only reconciles",
    ]);
    // A namespace other than the operator's.
    ws.write_config(&config("2.7.x", CORE, "medium", "").replace(
        "namespace    = local.namespace",
        r#"namespace    = "elsewhere""#,
    ));
    ws.plan()
        .assert_error()
        .assert_contains(&["FluxInstance outside the operator's namespace"]);
    // A sync.name change.
    ws.write_config(&config("2.7.x", CORE, "medium", "").replace(
        r#"path        = "clusters/prod""#,
        "path        = \"clusters/prod\"\n    name = \"renamed\"",
    ));
    ws.plan()
        .assert_error()
        .assert_contains(&["sync.name cannot change"]);
    // Removing sync warns.
    let without_sync = config("2.7.x", CORE, "medium", "");
    let start = without_sync.find("  sync = {").unwrap();
    let end = without_sync[start..].find("  }\n").unwrap() + start + 4;
    ws.write_config(&format!(
        "{}{}",
        &without_sync[..start],
        &without_sync[end..]
    ));
    ws.plan()
        .assert_changes()
        .assert_contains(&["Warning: Removing sync"]);
    // A value only the CRD checks (an artifact URL without oci://) fails at plan, quoting the
    // rule (an interval in words is refused earlier, at validate).
    ws.write_config(&config("2.7.x", CORE, "medium", "").replace(
        r#"distribution = { version = "2.7.x" }"#,
        r#"distribution = { version = "2.7.x", artifact = "ghcr.io/example/manifests" }"#,
    ));
    ws.plan().assert_error().assert_contains(&[
        "FluxInstance Rejected By The API Server",
        "The Kubernetes API server rejected spec.distribution.artifact",
        "ghcr.io/example/manifests",
    ]);
    // Nothing of that reached the cluster.
    assert_eq!(
        instance(&sandbox)["spec"]["distribution"]["artifact"],
        Value::Null
    );
}

#[test]
fn unknown_kubernetes_host_plans_without_a_request() {
    // No simulator: a bare API server makes no requests of its own, so any request is ours.
    let sandbox = TestCluster::sandbox_with(&[]);
    let ws = workspace(&sandbox);
    ws.write_config(&format!(
        r#"{REQUIRED_PROVIDERS}
resource "terraform_data" "cluster" {{
  input = "{url}"
}}

provider "flux" {{
  kubernetes = {{
    host     = terraform_data.cluster.output
    insecure = true
    token    = "unused"
  }}
}}

resource "flux_instance" "this" {{
  distribution = {{ version = "2.7.x" }}
}}
"#,
        url = sandbox.url()
    ));
    sandbox.clear_requests();
    let plan = ws.plan();
    plan.assert_changes().assert_contains(&[
        "flux_instance.this will be created",
        "Plan: 2 to add, 0 to change, 0 to destroy.",
    ]);
    assert_eq!(sandbox.requests(), Vec::<Value>::new());
}

fn import_blocks(ns: &str) -> String {
    format!(
        r#"
import {{
  to = flux_operator.this
  id = "{ns}"
}}

import {{
  to = flux_instance.this
  id = "{ns}/flux"
}}
"#
    )
}

#[test]
fn import_with_the_cli_and_with_generated_configuration() {
    let sandbox = TestCluster::flux("acc-inst");
    let ns = sandbox.namespace();
    let installer = workspace(&sandbox);
    installer.write_config(&config("2.7.x", CORE, "medium", ""));
    installer.apply().assert_success();

    // `import {}` blocks plus `plan -generate-config-out`: the generated configuration is valid
    // and, once imported, plans with no changes.
    let generated = workspace(&sandbox);
    generated.write_config(&format!(
        "{REQUIRED_PROVIDERS}\nprovider \"flux\" {{\n  kubernetes = {{ config_path = \"kubeconfig\" }}\n}}\n{}",
        import_blocks(ns)
    ));
    generated
        .run(&[
            "plan",
            "-generate-config-out=generated.tf",
            "-input=false",
            "-lock=false",
            "-no-color",
        ])
        .assert_success()
        .assert_contains(&["Plan: 2 to import, 0 to add, 0 to change, 0 to destroy."]);
    let hcl = std::fs::read_to_string(generated.path().join("generated.tf")).unwrap();
    let url_line = format!(r#"url         = "{}""#, fleet_url());
    for needle in [
        r#"version = "2.7.x""#,
        r#"size                                       = "medium""#,
        url_line.as_str(),
        r#"version          = "v0.58.1""#,
    ] {
        assert!(
            common::terraform::collapse_whitespace(&hcl)
                .contains(&common::terraform::collapse_whitespace(needle)),
            "{needle} not in:\n{hcl}"
        );
    }
    generated.validate().assert_success();
    generated
        .apply()
        .assert_success()
        .assert_contains(&["2 imported, 0 added, 0 changed"]);
    generated.plan().assert_no_changes();
    let state = generated.show_json();
    assert_eq!(resource(&state, "flux_instance.this")["ready"], true);
    assert_eq!(
        resource(&state, "flux_instance.this")["deletion_policy"],
        "uninstall"
    );

    // `terraform import` against a hand-written configuration.
    let cli = workspace(&sandbox);
    cli.write_config(&config("2.7.x", CORE, "medium", "").replace(
        r#"manifests = file("operator-install.yaml")"#,
        r#"version = "v0.58.1""#,
    ));
    cli.import("flux_operator.this", ns).assert_success();
    cli.import("flux_instance.this", &format!("{ns}/flux"))
        .assert_success();
    cli.plan().assert_no_changes();
    cli.import("flux_instance.this", "flux").assert_failure();

    // The data source reads the same installation, whoever installed it.
    let reader = workspace(&sandbox);
    reader.write_config(&format!(
        "{REQUIRED_PROVIDERS}\nprovider \"flux\" {{\n  kubernetes = {{ config_path = \"kubeconfig\" }}\n}}\n\ndata \"flux_instance\" \"this\" {{\n  namespace = local.namespace\n}}\n\noutput \"flux\" {{\n  value = data.flux_instance.this\n}}\n"
    ));
    reader.apply().assert_success();
    let output = reader.run(&["output", "-json", "flux"]);
    let flux: Value = serde_json::from_str(&output.assert_success().stdout).unwrap();
    assert_eq!(flux["namespace"], ns);
    assert_eq!(flux["ready"], true);
    assert_eq!(flux["distribution"]["version"], "2.7.x");
    assert_eq!(flux["cluster"]["size"], "medium");
    assert_eq!(flux["sync"]["url"], fleet_url());
    assert_eq!(flux["components"].as_array().unwrap().len(), 4);
    assert!(
        flux["flux_version"].as_str().unwrap().starts_with("v2.7."),
        "{flux}"
    );
}

#[test]
fn destroy_uninstalls_orphans_and_survives_what_is_already_gone() {
    let sandbox = TestCluster::flux("acc-inst");
    let ns = sandbox.namespace();
    let ws = workspace(&sandbox);
    let target = [
        "destroy",
        "-auto-approve",
        "-input=false",
        "-lock=false",
        "-no-color",
        "-target=flux_instance.this",
    ];

    // uninstall: the instance and the controllers go, the namespace and the operator stay.
    ws.write_config(&config("2.7.x", CORE, "medium", ""));
    ws.apply().assert_success();
    ws.run(&target).assert_success();
    assert_eq!(sandbox.get_json(&["fluxinstance", "flux", "-n", ns]), None);
    assert_eq!(
        sandbox.get_json(&["deployment", "source-controller", "-n", ns]),
        None
    );
    assert!(sandbox.get_json(&["namespace", ns]).is_some());
    assert!(
        sandbox
            .get_json(&["deployment", "flux-operator", "-n", ns])
            .is_some()
    );

    // orphan: the instance goes, Flux keeps running.
    ws.write_config(&config(
        "2.7.x",
        CORE,
        "medium",
        r#"deletion_policy = "orphan""#,
    ));
    ws.apply().assert_success();
    let controller = sandbox
        .get_json(&["deployment", "source-controller", "-n", ns])
        .unwrap();
    ws.run(&target).assert_success();
    assert_eq!(sandbox.get_json(&["fluxinstance", "flux", "-n", ns]), None);
    let after = sandbox
        .get_json(&["deployment", "source-controller", "-n", ns])
        .unwrap();
    assert_eq!(after["metadata"]["uid"], controller["metadata"]["uid"]);

    // The namespace deleted out of band (the operator with it): destroy still succeeds, and
    // releases the finalizer the operator can no longer remove, with a warning.
    ws.write_config(&config("2.7.x", CORE, "medium", ""));
    ws.apply().assert_success();
    // The operator's Deployment goes first: on a real API server the namespace controller
    // deletes its contents in no fixed order, and an operator still running would uninstall.
    sandbox.kubectl(&["-n", ns, "delete", "deployment", "flux-operator"]);
    sandbox.kubectl(&["delete", "namespace", ns, "--wait=false"]);
    let out = ws.destroy();
    out.assert_success().assert_contains(&[
        "Finalizer Removed Without The Flux Operator",
        "Destroy complete!",
    ]);
    assert_eq!(sandbox.get_json(&["fluxinstance", "flux", "-n", ns]), None);
    assert!(ws.state_list().is_empty());
}

#[test]
fn scripted_operator_failure_fails_apply_then_converges() {
    let sandbox = TestCluster::flux("acc-inst");
    let ns = sandbox.namespace();
    let ws = workspace(&sandbox);
    ws.write_config(&config("2.7.x", CORE, "medium", ""));
    ws.apply().assert_success();

    let message =
        "timeout waiting for: [Deployment/flux-system/helm-controller status: 'InProgress']";
    sandbox.kubectl(&[
        "-n",
        ns,
        "annotate",
        "fluxinstance",
        "flux",
        &format!("sandbox.fluxrs.dev/fail=HealthCheckFailed:{message}"),
    ]);
    ws.write_config(&config("2.7.x", CORE, "large", ""));
    ws.apply().assert_failure().assert_contains(&[
        "FluxInstance Failed",
        "ReconciliationFailed",
        message,
        "unhealthy components: helm-controller",
    ]);
    // The state keeps the object, with the new spec.
    let state = ws.show_json();
    let values = resource(&state, "flux_instance.this");
    assert_eq!(values["cluster"]["size"], "large");
    assert_eq!(values["ready"], false);
    // The operator failed this very spec: the next plan quotes its verdict instead of proposing
    // the same reconcile again.
    assert_failing_plan_quotes(&ws, &[message, "unhealthy components: helm-controller"]);

    // Once the cause is gone the operator recovers on its own; apply records it, plan is empty.
    clear_failure_and_await_recovery(&sandbox);
    ws.apply().assert_success();
    assert_eq!(
        resource(&ws.show_json(), "flux_instance.this")["ready"],
        true
    );
    ws.plan().assert_no_changes();
}

/// Removes the scripted failure and waits until the operator, retrying on its own, reports the
/// instance Ready for its generation.
fn clear_failure_and_await_recovery(sandbox: &TestCluster) {
    sandbox.kubectl(&[
        "-n",
        sandbox.namespace(),
        "annotate",
        "fluxinstance",
        "flux",
        "sandbox.fluxrs.dev/fail-",
    ]);
    sandbox.wait_for(
        "the operator's recovery",
        std::time::Duration::from_secs(60),
        || ready_for_generation(&instance(sandbox)).then_some(()),
    );
}

/// The plan of an instance whose current spec the operator failed: no change, and one warning
/// "Flux Installation Failing" quoting `quotes`.
#[track_caller]
fn assert_failing_plan_quotes(ws: &Workspace, quotes: &[&str]) {
    let plan = ws.plan();
    let output = plan.assert_no_changes();
    output.assert_contains(&[
        "Warning: Flux Installation Failing",
        "proposes no reconcile",
    ]);
    output.assert_contains(quotes);
}

/// A sync whose Kustomization cannot become ready (a path the repository does not have), then
/// a source that cannot (a repository nobody serves): each apply fails once the operator's
/// `reconcile_timeout` ends its health check, quoting the failing object; the next plan proposes
/// nothing and says what is wrong, at `sync`; fixing `sync` converges with an empty plan.
#[test]
fn sync_that_cannot_become_ready_fails_apply_and_the_plan_says_why() {
    let sandbox = TestCluster::flux("acc-inst");
    let ns = sandbox.namespace();
    let ws = workspace(&sandbox);
    let timeout = r#"reconcile_timeout = "3s""#;
    let good = config("2.7.x", CORE, "medium", timeout);
    ws.write_config(&good.replace("clusters/prod", "clusters/missing"));
    let kustomization = format!("Kustomization/{ns}/{ns}");
    let failed = ws.apply();
    // A create: reported as a warning, kept in state untainted (a replacement would uninstall).
    failed.assert_success().assert_contains(&[
        "Warning: Create Incomplete: FluxInstance Failed",
        "ReconciliationFailed",
        &kustomization,
        "clusters/missing",
    ]);
    assert_kept_untainted_not_ready(&ws);
    assert_failing_plan_quotes(&ws, &[&kustomization, "`sync.path`"]);
    let live = instance(&sandbox);
    assert_eq!(live["spec"]["sync"]["path"], "clusters/missing");
    assert!(!ready_for_generation(&live), "{live}");

    // A repository nobody serves: the GitRepository is named.
    let nowhere = "http://127.0.0.1:9/nowhere.git";
    ws.write_config(&good.replace(fleet_url(), nowhere));
    let source = format!("GitRepository/{ns}/{ns}");
    ws.apply()
        .assert_failure()
        .assert_contains(&["Error: FluxInstance Failed", &source]);
    let state = ws.show_json();
    let values = resource(&state, "flux_instance.this");
    assert_eq!(
        (
            &values["sync"]["url"],
            &values["sync"]["path"],
            &values["ready"]
        ),
        (
            &serde_json::json!(nowhere),
            &serde_json::json!("clusters/prod"),
            &serde_json::json!(false)
        )
    );
    assert_failing_plan_quotes(&ws, &[&source]);

    // Fixed: one apply converges and the plan is empty. (A Kustomization whose source was not
    // ready re-checks it after kustomize-controller's `--requeue-dependency`, 30 s: the fix gets
    // a longer `reconcile_timeout`.)
    let fixed = config("2.7.x", CORE, "medium", r#"reconcile_timeout = "2m""#);
    ws.write_config(&fixed);
    ws.apply().assert_success();
    let live = instance(&sandbox);
    assert!(ready_for_generation(&live), "{live}");
    assert_eq!(live["spec"]["sync"]["url"], fleet_url());
    assert_eq!(
        resource(&ws.show_json(), "flux_instance.this")["ready"],
        true
    );
    ws.plan().assert_no_changes();
}

/// Created with `suspend = true`, the operator writes `Ready=True`, reason
/// `ReconciliationDisabled`, at once (its behaviour at v0.58.1). Setting `suspend = false`
/// changes only an annotation (the generation stays), so the apply must ask for a reconcile and
/// wait for the operator's verdict on it, never return on that stale condition: here the
/// reconcile fails, and the apply fails quoting it; once the cause is gone the apply converges.
#[test]
fn resuming_a_suspended_instance_waits_for_the_new_reconcile() {
    let sandbox = TestCluster::flux("acc-inst");
    let ns = sandbox.namespace();
    let ws = workspace(&sandbox);
    ws.write_config(&config("2.7.x", CORE, "medium", "suspend = true"));
    ws.apply().assert_success();
    let suspended = instance(&sandbox);
    assert_eq!(
        ready_reason(&suspended),
        "ReconciliationDisabled",
        "{suspended}"
    );
    let generation = suspended["metadata"]["generation"].clone();

    let message =
        "timeout waiting for: [Deployment/flux-system/helm-controller status: 'InProgress']";
    sandbox.kubectl(&[
        "-n",
        ns,
        "annotate",
        "fluxinstance",
        "flux",
        &format!("sandbox.fluxrs.dev/fail=HealthCheckFailed:{message}"),
    ]);
    ws.write_config(&config("2.7.x", CORE, "medium", "suspend = false"));
    ws.apply().assert_failure().assert_contains(&[
        "FluxInstance Failed",
        "ReconciliationFailed",
        message,
    ]);
    let failed = instance(&sandbox);
    assert_eq!(failed["metadata"]["generation"], generation, "{failed}");
    assert_eq!(
        resource(&ws.show_json(), "flux_instance.this")["ready"],
        false
    );
    assert_failing_plan_quotes(&ws, &[message]);

    clear_failure_and_await_recovery(&sandbox);
    ws.apply().assert_success();
    let resumed = instance(&sandbox);
    assert!(ready_for_generation(&resumed), "{resumed}");
    assert_ne!(
        ready_reason(&resumed),
        "ReconciliationDisabled",
        "{resumed}"
    );
    let state = ws.show_json();
    let values = resource(&state, "flux_instance.this");
    assert_eq!(values["ready"], true);
    assert_eq!(values["suspend"], false);
    ws.plan().assert_no_changes();
}

#[test]
fn ctrl_c_interrupts_the_readiness_wait_promptly() {
    let sandbox = TestCluster::flux("acc-inst");
    let ns = sandbox.namespace();
    let ws = workspace(&sandbox);
    ws.write_config(&config("2.7.x", CORE, "medium", ""));
    ws.apply().assert_success();

    // The next reconcile takes a minute to become Ready; terraform gets SIGINT during the wait.
    sandbox.kubectl(&[
        "-n",
        ns,
        "annotate",
        "fluxinstance",
        "flux",
        "sandbox.fluxrs.dev/ready-delay=60s",
    ]);
    ws.write_config(&config("2.7.x", CORE, "large", ""));
    let child = std::process::Command::new(common::terraform::terraform_binary())
        .args([
            "apply",
            "-auto-approve",
            "-input=false",
            "-lock=false",
            "-no-color",
        ])
        .current_dir(ws.path())
        .env("TF_CLI_CONFIG_FILE", ws.path().join(".terraformrc"))
        .env("CHECKPOINT_DISABLE", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once the new spec was written (the wait has begun), not after a fixed delay:
    // on a loaded machine terraform may still be refreshing after a few seconds.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while instance(&sandbox)["spec"]["cluster"]["size"] != "large" {
        assert!(
            std::time::Instant::now() < deadline,
            "the new spec was never applied"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    std::thread::sleep(std::time::Duration::from_secs(1));
    let interrupted = std::time::Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    let elapsed = interrupted.elapsed();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!output.status.success(), "{text}");
    assert!(
        elapsed.as_secs() < 10,
        "terraform took {elapsed:?} to stop:\n{text}"
    );
    assert!(text.contains("Interrupted"), "{text}");
    // What was applied is in state: the new spec, not yet ready.
    let state = ws.show_json();
    let values = resource(&state, "flux_instance.this");
    assert_eq!(values["cluster"]["size"], "large");
    assert_eq!(values["ready"], false);
    assert_eq!(instance(&sandbox)["spec"]["cluster"]["size"], "large");
}

/// An annotation value the operator cannot parse, written by another tool, is drift: refresh,
/// plan and destroy keep working, the plan shows it and apply restores the configured value.
#[test]
fn unparsable_annotation_from_another_tool_is_drift_that_apply_heals() {
    let sandbox = TestCluster::flux("acc-annot");
    let ws = workspace(&sandbox);
    ws.write_config(&config(
        "2.7.x",
        CORE,
        "medium",
        r#"reconcile_every = "30m""#,
    ));
    ws.apply().assert_success();
    ws.plan().assert_no_changes();

    let overwrite = |value: &str| {
        sandbox.kubectl(&[
            "-n",
            sandbox.namespace(),
            "annotate",
            "--overwrite",
            "fluxinstance",
            "flux",
            &format!("fluxcd.controlplane.io/reconcileEvery={value}"),
        ]);
    };
    let annotation = || {
        instance(&sandbox)["metadata"]["annotations"]["fluxcd.controlplane.io/reconcileEvery"]
            .clone()
    };
    overwrite("5 minutes");
    ws.plan().assert_changes().assert_contains(&[
        r#"~ reconcile_every = "5 minutes" -> "30m""#,
        "1 to change, 0 to destroy",
    ]);
    ws.apply()
        .assert_success()
        .assert_contains(&["1 changed, 0 destroyed"]);
    assert_eq!(annotation(), "30m");
    let state = ws.show_json();
    assert_eq!(
        resource(&state, "flux_instance.this")["reconcile_every"],
        "30m"
    );
    // The annotation change makes the operator reconcile once more after the apply returned;
    // a plan during that reconcile rightly shows the instance not ready. Wait until it has been
    // Ready for 2 s in a row.
    let mut ready_since: Option<std::time::Instant> = None;
    sandbox.wait_for(
        "FluxInstance Ready again",
        std::time::Duration::from_secs(60),
        || {
            let ready = instance(&sandbox)["status"]["conditions"]
                .as_array()
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                });
            let since = if ready {
                *ready_since.get_or_insert_with(std::time::Instant::now)
            } else {
                ready_since = None;
                return None;
            };
            (since.elapsed() >= std::time::Duration::from_secs(2)).then_some(())
        },
    );
    ws.plan().assert_no_changes();

    // Destroy works with such a value in place.
    overwrite("1d");
    ws.destroy().assert_success();
    assert_eq!(sandbox.get_in_ns("fluxinstance", "flux"), None);
    assert!(ws.state_list().is_empty());
}

/// The state entry of `address`: its `terraform show -json` resource object (with `tainted`).
fn state_entry<'a>(state: &'a Value, address: &str) -> &'a Value {
    state["values"]["root_module"]["resources"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["address"] == address))
        .unwrap_or_else(|| panic!("{address} not in state: {state}"))
}

/// Asserts that the instance is in state, not tainted, with `ready = false`.
#[track_caller]
fn assert_kept_untainted_not_ready(ws: &Workspace) {
    let state = ws.show_json();
    let entry = state_entry(&state, "flux_instance.this");
    assert_ne!(
        entry["tainted"], true,
        "flux_instance.this is tainted: {entry}"
    );
    assert_eq!(entry["values"]["ready"], false, "{entry}");
}

/// `terraform apply` while the sandbox's faults are cleared a few seconds in: after the refresh
/// that sees the object still not ready, during the wait the plan promised.
fn apply_while_the_cause_goes_away(
    ws: &Workspace,
    sandbox: &TestCluster,
) -> common::terraform::Output {
    std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(std::time::Duration::from_secs(8));
            sandbox.set_faults(&serde_json::json!({}));
        });
        ws.apply()
    })
}

/// Stuck helm-controller: the operator cannot finish the health check of a new instance.
fn stick_helm_controller(sandbox: &TestCluster) {
    sandbox.set_faults(&serde_json::json!({
        "stuckDeployments": [format!("{}/helm-controller", sandbox.namespace())]
    }));
}

/// The plan after an incomplete create: an in-place update back to `ready = true`, nothing
/// destroyed or replaced.
#[track_caller]
fn assert_plan_rewaits(ws: &Workspace) {
    let plan = ws.plan();
    let output = plan.assert_changes();
    output.assert_contains(&[
        "flux_instance.this will be updated in-place",
        "~ ready = false -> true",
        "Plan: 0 to add, 1 to change, 0 to destroy.",
    ]);
    let text = output.combined();
    assert!(
        !text.contains("must be replaced") && !text.contains("tainted"),
        "{text}"
    );
}

/// A create whose wait for Ready times out keeps the instance in state untainted: the next plan
/// is an in-place update that waits again, never a replacement (which would uninstall Flux).
/// With a postcondition on `ready` the run still exits non-zero.
#[test]
fn failed_create_wait_never_leads_to_an_uninstall() {
    // A private kube-sandbox: the stuck Deployment is an API-level fault.
    let sandbox = TestCluster::sandbox();
    let ws = workspace(&sandbox);
    stick_helm_controller(&sandbox);
    let postcondition = r#"timeouts { create = "5s" }
  lifecycle {
    postcondition {
      condition     = self.ready
      error_message = "Flux is not ready yet."
    }
  }"#;
    ws.write_config(&config("2.7.x", CORE, "medium", postcondition));
    let failed = ws.apply();
    failed.assert_failure().assert_contains(&[
        "Warning: Create Incomplete: FluxInstance Not Ready",
        "not marked tainted",
        "Flux is not ready yet.",
    ]);
    assert_kept_untainted_not_ready(&ws);
    let uid = instance(&sandbox)["metadata"]["uid"].clone();
    assert_plan_rewaits(&ws);

    // The cause goes away: one apply re-waits in place, then the plan is empty.
    apply_while_the_cause_goes_away(&ws, &sandbox)
        .assert_success()
        .assert_contains(&["0 added, 1 changed, 0 destroyed"]);
    let live = instance(&sandbox);
    assert_eq!(
        live["metadata"]["uid"], uid,
        "the FluxInstance was recreated"
    );
    assert!(ready_for_generation(&live));
    let state = ws.show_json();
    assert_eq!(resource(&state, "flux_instance.this")["ready"], true);
    ws.plan().assert_no_changes();
}

/// Ctrl-C during create's wait: terraform stops, the instance stays in state untainted, and the
/// next plan waits again in place.
#[test]
fn interrupted_create_wait_never_leads_to_an_uninstall() {
    // A private kube-sandbox: the stuck Deployment is an API-level fault.
    let sandbox = TestCluster::sandbox();
    let ws = workspace(&sandbox);
    stick_helm_controller(&sandbox);
    ws.write_config(&config("2.7.x", CORE, "medium", ""));
    let child = std::process::Command::new(common::terraform::terraform_binary())
        .args([
            "apply",
            "-auto-approve",
            "-input=false",
            "-lock=false",
            "-no-color",
        ])
        .current_dir(ws.path())
        .env("TF_CLI_CONFIG_FILE", ws.path().join(".terraformrc"))
        .env("CHECKPOINT_DISABLE", "1")
        .env("HOME", ws.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once the instance was written (the wait has begun).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    // (The CRD may not exist yet either: any failure means "not yet".)
    while !sandbox
        .kubectl_status(&["get", "fluxinstance", "flux", "-n", sandbox.namespace()])
        .0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no FluxInstance written"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    std::thread::sleep(std::time::Duration::from_secs(2));
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !output.status.success(),
        "an interrupted run must fail:\n{text}"
    );
    assert!(
        text.contains("Create Incomplete: Interrupted"),
        "the interruption is reported:\n{text}"
    );
    assert_kept_untainted_not_ready(&ws);
    let uid = instance(&sandbox)["metadata"]["uid"].clone();
    assert_plan_rewaits(&ws);

    apply_while_the_cause_goes_away(&ws, &sandbox)
        .assert_success()
        .assert_contains(&["0 added, 1 changed, 0 destroyed"]);
    let live = instance(&sandbox);
    assert_eq!(
        live["metadata"]["uid"], uid,
        "the FluxInstance was recreated"
    );
    assert!(ready_for_generation(&live));
    ws.plan().assert_no_changes();
}

/// `flux_operator` whose Deployment does not become Available before the create timeout: kept in
/// state untainted as incomplete; the next plan re-applies in place (never a replacement, which
/// would delete the operator) and converges once the Deployment becomes Available.
#[test]
fn operator_create_timeout_never_leads_to_a_replacement() {
    // A private kube-sandbox: the stuck Deployment is an API-level fault.
    let sandbox = TestCluster::sandbox();
    let ws = workspace(&sandbox);
    sandbox.set_faults(&serde_json::json!({
        "stuckDeployments": [format!("{}/flux-operator", sandbox.namespace())]
    }));
    ws.write_config(&format!(
        r#"{REQUIRED_PROVIDERS}
provider "flux" {{
  kubernetes = {{ config_path = "kubeconfig" }}
}}

resource "flux_operator" "this" {{
  manifests = file("operator-install.yaml")
  timeouts {{ create = "4s" }}
}}
"#
    ));
    ws.apply().assert_success().assert_contains(&[
        "Warning: Create Incomplete: Flux Operator Not Ready",
        "not marked tainted",
    ]);
    let state = ws.show_json();
    let entry = state_entry(&state, "flux_operator.this");
    assert_ne!(entry["tainted"], true, "tainted: {entry}");
    assert_eq!(
        entry["values"]["installation_status"],
        "Incomplete: Flux Operator Not Ready"
    );
    let uid = sandbox
        .get_in_ns("deployment", "flux-operator")
        .expect("the operator Deployment was written")["metadata"]["uid"]
        .clone();
    let plan = ws.plan();
    let output = plan.assert_changes();
    output.assert_contains(&[
        "flux_operator.this will be updated in-place",
        r#"-> "Healthy""#,
        "Plan: 0 to add, 1 to change, 0 to destroy.",
    ]);
    assert!(!output.combined().contains("must be replaced"));

    apply_while_the_cause_goes_away(&ws, &sandbox)
        .assert_success()
        .assert_contains(&["0 added, 1 changed, 0 destroyed"]);
    let deployment = sandbox.get_in_ns("deployment", "flux-operator").unwrap();
    assert_eq!(
        deployment["metadata"]["uid"], uid,
        "the operator was recreated"
    );
    let state = ws.show_json();
    assert_eq!(
        resource(&state, "flux_operator.this")["installation_status"],
        "Healthy"
    );
    ws.plan().assert_no_changes();
}
