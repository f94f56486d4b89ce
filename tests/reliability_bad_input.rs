//! Reliability suite, part 1: bad input. A table of malformed or contradictory configurations
//! across the provider configuration and every resource and data source, each run through the
//! real `terraform validate` and, when that passes, `terraform plan`, against the standalone
//! `kube-sandbox` (operator simulator, operator installed) and a real Git server.
//!
//! Every case asserts:
//! - the phase it fails in (`validate` or `plan`, as listed; never accepted, never at apply);
//! - that the error names the attribute path, both in the message Terraform prints and as the
//!   diagnostic's attribute (the provider logs the path of every diagnostic it returns);
//! - that nothing was written: no persisted write recorded by the API server (dry-runs are not
//!   writes) and no push received by the Git server, whose branch tip is unchanged.
//!
//! The figures (cases tried, per phase) are written to `target/reliability/bad_input-*.json` for
//! `RELIABILITY.md` (`scripts/reliability-report.sh`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;
#[path = "fixtures/reliability.rs"]
mod reliability;
#[path = "fixtures/flux_instance/sandbox.rs"]
mod sandbox;

use std::sync::Arc;

use common::git_server::{GitHttpServer, GitRepos, HttpServerOptions};
use common::terraform::{REQUIRED_PROVIDERS, Workspace, collapse_whitespace};
use sandbox::{OPERATOR_INSTALL, Sandbox, is_persisted_write};

const BINARY: &str = env!("CARGO_BIN_EXE_terraform-provider-flux");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Validate,
    Plan,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Validate => "validate",
            Phase::Plan => "plan",
        }
    }
}

/// One bad input: the configuration (without the `terraform` block), the attribute path the
/// error must name (Terraform's rendering, `a.b[0]["k"]`), and the phase it must fail in.
struct Case {
    name: &'static str,
    hcl: String,
    path: &'static str,
    phase: Phase,
}

/// Where the cases run: a sandbox with the operator installed, a Git repository with one commit.
struct Env {
    sandbox: Sandbox,
    repos: Arc<GitRepos>,
    git: GitHttpServer,
    ws: Workspace,
}

const REPO: &str = "fleet";

fn env() -> Env {
    let sandbox = Sandbox::start();
    let ws = Workspace::new(BINARY);
    ws.write_file("kubeconfig", &sandbox.kubeconfig_yaml());
    let install = ws.write_file("operator-install.yaml", OPERATOR_INSTALL);
    sandbox.kubectl(&["apply", "--server-side", "-f", install.to_str().unwrap()]);
    sandbox.kubectl(&[
        "wait",
        "--for=condition=Available",
        "deployment/flux-operator",
        "-n",
        "flux-system",
        "--timeout=60s",
    ]);
    let repos = GitRepos::new();
    repos.create_with_history(REPO, "main", 1, 1);
    let git = GitHttpServer::start(
        repos.clone(),
        HttpServerOptions {
            basic: Some(("bot".into(), "pw-bad-input".into())),
            ..HttpServerOptions::default()
        },
    );
    Env {
        sandbox,
        repos,
        git,
        ws,
    }
}

impl Env {
    fn url(&self) -> String {
        self.git.url(REPO)
    }

    /// The default provider block: the sandbox's kubeconfig and basic auth for the Git server.
    fn provider(&self) -> String {
        r#"provider "flux" {
  kubernetes = { config_path = "kubeconfig" }
  git = {
    http = { username = "bot", password = "pw-bad-input", allow_insecure_http = true }
  }
}
"#
        .to_owned()
    }

    /// A provider block with `kubernetes`/`git` replaced, plus a valid instance so that the
    /// provider is used.
    fn provider_case(&self, kubernetes: &str, git: &str) -> String {
        format!(
            "provider \"flux\" {{\n  kubernetes = {kubernetes}\n  git = {git}\n}}\n\n\
             resource \"flux_instance\" \"this\" {{\n  distribution = {{ version = \"2.7.x\" }}\n}}\n"
        )
    }

    /// The default provider plus one resource.
    fn with_provider(&self, resource: &str) -> String {
        format!("{}\n{resource}", self.provider())
    }

    fn operator(&self, body: &str) -> String {
        self.with_provider(&format!(
            "resource \"flux_operator\" \"this\" {{\n{body}\n}}\n"
        ))
    }

    fn instance(&self, body: &str) -> String {
        self.with_provider(&format!(
            "resource \"flux_instance\" \"this\" {{\n  distribution = {{ version = \"2.7.x\" }}\n{body}\n}}\n"
        ))
    }

    fn instance_raw(&self, body: &str) -> String {
        self.with_provider(&format!(
            "resource \"flux_instance\" \"this\" {{\n{body}\n}}\n"
        ))
    }

    fn resource_set(&self, body: &str) -> String {
        self.with_provider(&format!(
            "resource \"flux_resource_set\" \"this\" {{\n{body}\n}}\n"
        ))
    }

    fn bootstrap(&self, body: &str) -> String {
        self.with_provider(&format!(
            "resource \"flux_bootstrap_git\" \"this\" {{\n  url  = \"{}\"\n  path = \"clusters/dev\"\n  distribution = {{ version = \"2.7.x\" }}\n{body}\n}}\n",
            self.url()
        ))
    }

    fn input_provider(&self, body: &str) -> String {
        self.with_provider(&format!(
            "resource \"flux_resource_set_input_provider\" \"this\" {{\n  name      = \"p\"\n  namespace = \"flux-system\"\n{body}\n}}\n"
        ))
    }

    fn bootstrap_raw(&self, body: &str) -> String {
        self.with_provider(&format!(
            "resource \"flux_bootstrap_git\" \"this\" {{\n{body}\n}}\n"
        ))
    }
}

const CM: &str =
    r#"resources = [{ apiVersion = "v1", kind = "ConfigMap", metadata = { name = "x" } }]"#;

fn rs(name: &str, namespace: &str, extra: &str) -> String {
    format!("  name      = \"{name}\"\n  namespace = \"{namespace}\"\n  {extra}")
}

fn cases(env: &Env) -> Vec<Case> {
    use Phase::{Plan, Validate};
    let long_name = "a".repeat(64);
    let key = "-----BEGIN OPENSSH PRIVATE KEY-----\\nAAAA\\n-----END OPENSSH PRIVATE KEY-----";
    let valid_http =
        r#"{ http = { username = "bot", password = "pw", allow_insecure_http = true } }"#;
    let kube = r#"{ config_path = "kubeconfig" }"#;
    let c = |name: &'static str, hcl: String, path: &'static str, phase: Phase| Case {
        name,
        hcl,
        path,
        phase,
    };
    let mut out = vec![
        // ---- provider configuration ----
        c(
            "kubernetes: config_path and config_paths",
            env.provider_case(
                r#"{ config_path = "kubeconfig", config_paths = ["kubeconfig"] }"#,
                valid_http,
            ),
            "kubernetes.config_paths",
            Validate,
        ),
        c(
            "kubernetes: missing config file",
            env.provider_case(r#"{ config_path = "nope/kubeconfig" }"#, valid_http),
            "kubernetes.config_path",
            Validate,
        ),
        c(
            "kubernetes: unknown context",
            env.provider_case(
                r#"{ config_path = "kubeconfig", config_context = "prod" }"#,
                valid_http,
            ),
            "kubernetes.config_context",
            Validate,
        ),
        c(
            "kubernetes: host with an ftp scheme",
            env.provider_case(r#"{ host = "ftp://example", token = "t" }"#, valid_http),
            "kubernetes.host",
            Validate,
        ),
        c(
            "kubernetes: proxy_url not a URL",
            env.provider_case(r#"{ config_path = "kubeconfig", proxy_url = "nope" }"#, valid_http),
            "kubernetes.proxy_url",
            Validate,
        ),
        c(
            "kubernetes: insecure with a CA",
            env.provider_case(
                r#"{ host = "https://127.0.0.1:1", token = "t", insecure = true, cluster_ca_certificate = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----" }"#,
                valid_http,
            ),
            "kubernetes.insecure",
            Validate,
        ),
        c(
            "kubernetes: client certificate without key",
            env.provider_case(
                r#"{ host = "https://127.0.0.1:1", client_certificate = "x" }"#,
                valid_http,
            ),
            "kubernetes.client_certificate",
            Validate,
        ),
        c(
            "kubernetes: CA that is not PEM",
            env.provider_case(
                r#"{ host = "https://127.0.0.1:1", token = "t", cluster_ca_certificate = "not pem" }"#,
                valid_http,
            ),
            "kubernetes.cluster_ca_certificate",
            Validate,
        ),
        c(
            "kubernetes: exec without command",
            env.provider_case(
                r#"{ host = "https://127.0.0.1:1", exec = { args = ["token"] } }"#,
                valid_http,
            ),
            "kubernetes.exec.command",
            Validate,
        ),
        c(
            "kubernetes: exec api_version",
            env.provider_case(
                r#"{ host = "https://127.0.0.1:1", exec = { command = "x", api_version = "v1" } }"#,
                valid_http,
            ),
            "kubernetes.exec.api_version",
            Validate,
        ),
        c(
            "kubernetes: tls_server_name not a host name",
            env.provider_case(
                r#"{ config_path = "kubeconfig", tls_server_name = "not a host" }"#,
                valid_http,
            ),
            "kubernetes.tls_server_name",
            Validate,
        ),
        c(
            "git: http and ssh",
            env.provider_case(
                kube,
                &format!(
                    r#"{{ http = {{ username = "u", password = "p" }}, ssh = {{ private_key = "{key}" }} }}"#
                ),
            ),
            "git.ssh",
            Validate,
        ),
        c(
            "git: password without username",
            env.provider_case(kube, r#"{ http = { password = "p" } }"#),
            "git.http.username",
            Validate,
        ),
        c(
            "git: bearer token with basic auth",
            env.provider_case(
                kube,
                r#"{ http = { username = "u", password = "p", bearer_token = "t" } }"#,
            ),
            "git.http.bearer_token",
            Validate,
        ),
        c(
            "git: CA that is not PEM",
            env.provider_case(kube, r#"{ http = { certificate_authority = "nope" } }"#),
            "git.http.certificate_authority",
            Validate,
        ),
        c(
            "git: ssh without key",
            env.provider_case(kube, r#"{ ssh = { username = "git" } }"#),
            "git.ssh.private_key",
            Validate,
        ),
        c(
            "git: ssh key that is not a key",
            env.provider_case(kube, r#"{ ssh = { private_key = "hunter2" } }"#),
            "git.ssh.private_key",
            Validate,
        ),
        c(
            "git: malformed known_hosts",
            env.provider_case(
                kube,
                &format!(
                    r#"{{ ssh = {{ private_key = "{key}", known_hosts = "github.com ssh-ed25519" }} }}"#
                ),
            ),
            "git.ssh.known_hosts",
            Validate,
        ),
        c(
            "git: author_email",
            env.provider_case(kube, r#"{ author_email = "nobody" }"#),
            "git.author_email",
            Validate,
        ),
        // ---- flux_operator ----
        c(
            "operator: manifests not YAML",
            env.operator(r#"  manifests = "kind: [Deployment""#),
            "manifests",
            Validate,
        ),
        c(
            "operator: manifests a plain string",
            env.operator(r#"  manifests = "just some text""#),
            "manifests",
            Validate,
        ),
        c(
            "operator: manifests without the operator Deployment",
            env.operator(
                r#"  manifests = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n""#,
            ),
            "manifests",
            Validate,
        ),
        c(
            "operator: manifests_url not a URL",
            env.operator(r#"  manifests_url = "ht!tp://exa mple""#),
            "manifests_url",
            Validate,
        ),
        c(
            "operator: manifests_url ftp",
            env.operator(r#"  manifests_url = "ftp://example.com/install.yaml""#),
            "manifests_url",
            Validate,
        ),
        c(
            "operator: version and manifests",
            env.operator(
                r#"  version = "v0.58.1"
  manifests = file("operator-install.yaml")"#,
            ),
            "version",
            Validate,
        ),
        c(
            "operator: no source",
            env.operator(r#"  namespace = "flux-system""#),
            "version",
            Validate,
        ),
        c(
            "operator: version not a release",
            env.operator(r#"  version = "latest-ish""#),
            "version",
            Validate,
        ),
        c(
            "operator: cpu limit in words",
            env.operator(
                r#"  manifests = file("operator-install.yaml")
  resources = { limits = { cpu = "two cores" } }"#,
            ),
            r#"resources.limits["cpu"]"#,
            Validate,
        ),
        c(
            "operator: memory request in words",
            env.operator(
                r#"  manifests = file("operator-install.yaml")
  resources = { requests = { memory = "lots" } }"#,
            ),
            r#"resources.requests["memory"]"#,
            Validate,
        ),
        c(
            "operator: namespace with capitals",
            env.operator(
                r#"  manifests = file("operator-install.yaml")
  namespace = "Flux-System""#,
            ),
            "namespace",
            Validate,
        ),
        c(
            "operator: toleration operator",
            env.operator(
                r#"  manifests = file("operator-install.yaml")
  tolerations = [{ key = "k", operator = "Maybe" }]"#,
            ),
            "tolerations[0].operator",
            Validate,
        ),
        c(
            "operator: toleration effect",
            env.operator(
                r#"  manifests = file("operator-install.yaml")
  tolerations = [{ key = "k", operator = "Exists", effect = "Sometimes" }]"#,
            ),
            "tolerations[0].effect",
            Validate,
        ),
        c(
            "operator: timeouts.create forever",
            env.operator(
                r#"  manifests = file("operator-install.yaml")
  timeouts { create = "forever" }"#,
            ),
            "timeouts.create",
            Validate,
        ),
        c(
            "operator: env name",
            env.operator(
                r#"  manifests = file("operator-install.yaml")
  env = { "1 BAD" = "x" }"#,
            ),
            r#"env["1 BAD"]"#,
            Validate,
        ),
        // ---- flux_instance ----
        c(
            "instance: version 1.0",
            env.instance_raw(r#"  distribution = { version = "1.0" }"#),
            "distribution.version",
            Validate,
        ),
        c(
            "instance: empty version range",
            env.instance_raw(r#"  distribution = { version = ">=2.8 <2.6" }"#),
            "distribution.version",
            Validate,
        ),
        c(
            "instance: patch not YAML",
            env.instance(r#"  kustomize = { patches = [{ patch = "spec: [replicas" }] }"#),
            "kustomize.patches[0].patch",
            Validate,
        ),
        c(
            "instance: patch a plain string",
            env.instance(r#"  kustomize = { patches = [{ patch = "make it faster" }] }"#),
            "kustomize.patches[0].patch",
            Validate,
        ),
        c(
            "instance: timeouts.create forever",
            env.instance(r#"  timeouts { create = "forever" }"#),
            "timeouts.create",
            Validate,
        ),
        c(
            "instance: sync.url not a URL",
            env.instance(
                r#"  sync = { kind = "GitRepository", url = "not a url", ref = "refs/heads/main", path = "clusters/dev" }"#,
            ),
            "sync.url",
            Validate,
        ),
        c(
            "instance: sync.ref empty",
            env.instance(
                r#"  sync = { kind = "GitRepository", url = "https://example.com/x.git", ref = "", path = "clusters/dev" }"#,
            ),
            "sync.ref",
            Validate,
        ),
        c(
            "instance: sync.path escapes",
            env.instance(
                r#"  sync = { kind = "GitRepository", url = "https://example.com/x.git", ref = "refs/heads/main", path = "../../etc" }"#,
            ),
            "sync.path",
            Validate,
        ),
        c(
            "instance: sync.kind",
            env.instance(
                r#"  sync = { kind = "HelmChart", url = "https://example.com/x.git", ref = "refs/heads/main", path = "." }"#,
            ),
            "sync.kind",
            Validate,
        ),
        c(
            "instance: storage.size in words",
            env.instance(r#"  storage = { class = "standard", size = "ten gigs" }"#),
            "storage.size",
            Validate,
        ),
        c(
            "instance: namespace with capitals",
            env.instance(r#"  namespace = "Flux-System""#),
            "namespace",
            Validate,
        ),
        c(
            "instance: namespace of 64 characters",
            env.instance(&format!("  namespace = \"{long_name}\"")),
            "namespace",
            Validate,
        ),
        c(
            "instance: name other than flux",
            env.instance(r#"  name = "other""#),
            "name",
            Validate,
        ),
        c(
            "instance: unknown component",
            env.instance(r#"  components = ["source-controller", "nope-controller"]"#),
            "components",
            Validate,
        ),
        c(
            "instance: cluster.size",
            env.instance(r#"  cluster = { size = "huge" }"#),
            "cluster.size",
            Validate,
        ),
        c(
            "instance: cluster.type",
            env.instance(r#"  cluster = { type = "mars" }"#),
            "cluster.type",
            Validate,
        ),
        c(
            "instance: deletion_policy",
            env.instance(r#"  deletion_policy = "keep""#),
            "deletion_policy",
            Validate,
        ),
        c(
            "instance: distribution.variant",
            env.instance_raw(r#"  distribution = { version = "2.7.x", variant = "bogus" }"#),
            "distribution.variant",
            Validate,
        ),
        c(
            "instance: sync.interval in words",
            env.instance(
                r#"  sync = { kind = "GitRepository", url = "https://example.com/x.git", ref = "refs/heads/main", path = "clusters/dev", interval = "1 minute" }"#,
            ),
            "sync.interval",
            Validate,
        ),
        // Annotations the operator parses as durations: the API server does not check them.
        c(
            "instance: reconcile_every in words",
            env.instance(r#"  reconcile_every = "5 minutes""#),
            "reconcile_every",
            Validate,
        ),
        c(
            "instance: reconcile_artifact_every in days",
            env.instance(r#"  reconcile_artifact_every = "1d""#),
            "reconcile_artifact_every",
            Validate,
        ),
        c(
            "instance: reconcile_timeout without a unit",
            env.instance(r#"  reconcile_timeout = "300""#),
            "reconcile_timeout",
            Validate,
        ),
        c(
            "instance: namespace without the operator",
            env.instance(r#"  namespace = "elsewhere""#),
            "namespace",
            Plan,
        ),
        // ---- flux_resource_set ----
        c(
            "resource set: reconcile_every in days",
            env.resource_set(&rs("tenants", "default", &format!("{CM}\n  reconcile_every = \"1d\""))),
            "reconcile_every",
            Validate,
        ),
        c(
            "resource set: reconcile_timeout in words",
            env.resource_set(&rs("tenants", "default", &format!("{CM}\n  reconcile_timeout = \"5 minutes\""))),
            "reconcile_timeout",
            Validate,
        ),
        c(
            "resource set: resources_template not YAML",
            env.resource_set(&rs(
                "tenants",
                "default",
                "resources_template = \"kind: [ConfigMap\"",
            )),
            "resources_template",
            Validate,
        ),
        c(
            "resource set: resources_template a plain string",
            env.resource_set(&rs(
                "tenants",
                "default",
                "resources_template = \"hello world\"",
            )),
            "resources_template",
            Validate,
        ),
        // A namespace that does not exist is no plan error (another resource of the same apply
        // may create it, issue 11 item 7): the plan warns and the apply fails on it — see
        // acc_plan_truth a_skipped_dry_run_still_fails_the_apply_on_a_missing_namespace.
        c(
            "resource set: empty name",
            env.resource_set(&rs("", "default", CM)),
            "name",
            Validate,
        ),
        c(
            "resource set: name with an underscore",
            env.resource_set(&rs("bad_name", "default", CM)),
            "name",
            Validate,
        ),
        c(
            "resource set: namespace with capitals",
            env.resource_set(&rs("tenants", "Default", CM)),
            "namespace",
            Validate,
        ),
        c(
            "resource set: object without kind",
            env.resource_set(&rs(
                "tenants",
                "default",
                r#"resources = [{ apiVersion = "v1", metadata = { name = "x" } }]"#,
            )),
            "resources[0]",
            Validate,
        ),
        c(
            "resource set: inputs not a list",
            env.resource_set(&rs(
                "tenants",
                "default",
                &format!("inputs = \"tenant-a\"\n  {CM}"),
            )),
            "inputs",
            Validate,
        ),
        c(
            "resource set: inputs_from name and selector",
            env.resource_set(&rs(
                "tenants",
                "default",
                &format!(
                    "inputs_from = [{{ name = \"a\", selector = {{ match_labels = {{ a = \"b\" }} }} }}]\n  {CM}"
                ),
            )),
            "inputs_from[0].name",
            Validate,
        ),
        c(
            "resource set: input_strategy",
            env.resource_set(&rs(
                "tenants",
                "default",
                &format!("input_strategy = {{ name = \"Zip\" }}\n  {CM}"),
            )),
            "input_strategy.name",
            Validate,
        ),
        c(
            "resource set: selector operator",
            env.resource_set(&rs(
                "tenants",
                "default",
                &format!(
                    "inputs_from = [{{ selector = {{ match_expressions = [{{ key = \"a\", operator = \"Maybe\" }}] }} }}]\n  {CM}"
                ),
            )),
            "inputs_from[0].selector.match_expressions[0].operator",
            Validate,
        ),
        c(
            "resource set: dependency with an empty name",
            env.resource_set(&rs(
                "tenants",
                "default",
                &format!(
                    "dependencies = [{{ api_version = \"v1\", kind = \"ConfigMap\", name = \"\" }}]\n  {CM}"
                ),
            )),
            "dependencies[0].name",
            Validate,
        ),
        c(
            "resource set: timeouts.delete never",
            env.resource_set(&rs(
                "tenants",
                "default",
                &format!("timeouts {{ delete = \"never\" }}\n  {CM}"),
            )),
            "timeouts.delete",
            Validate,
        ),
        c(
            "resource set: deletion_policy",
            env.resource_set(&rs(
                "tenants",
                "default",
                &format!("deletion_policy = \"keep\"\n  {CM}"),
            )),
            "deletion_policy",
            Validate,
        ),
        c(
            "resource set: patch-like garbage in resources",
            env.resource_set(&rs("tenants", "default", r#"resources = ["not an object"]"#)),
            "resources[0]",
            Validate,
        ),
        // ---- flux_bootstrap_git ----
        c(
            "bootstrap: url not a URL",
            env.bootstrap_raw(
                r#"  url = "not a url"
  path = "clusters/dev"
  distribution = { version = "2.7.x" }"#,
            ),
            "url",
            Validate,
        ),
        c(
            "bootstrap: branch empty",
            env.bootstrap(r#"  branch = """#),
            "branch",
            Validate,
        ),
        c(
            "bootstrap: branch not a ref name",
            env.bootstrap(r#"  branch = "feat..x~^:""#),
            "branch",
            Validate,
        ),
        c(
            "bootstrap: path escapes",
            env.bootstrap_raw(&format!(
                "  url = \"{}\"\n  path = \"../../etc\"\n  distribution = {{ version = \"2.7.x\" }}",
                env.url()
            )),
            "path",
            Validate,
        ),
        c(
            "bootstrap: version 1.0",
            env.bootstrap_raw(&format!(
                "  url = \"{}\"\n  path = \"clusters/dev\"\n  distribution = {{ version = \"1.0\" }}",
                env.url()
            )),
            "distribution.version",
            Validate,
        ),
        c(
            "bootstrap: interval",
            env.bootstrap(r#"  interval = "soon""#),
            "interval",
            Validate,
        ),
        c(
            "bootstrap: interval in words",
            env.bootstrap(r#"  interval = "1 minute""#),
            "interval",
            Validate,
        ),
        // The FluxInstance a bootstrap writes is checked before its first push.
        c(
            "bootstrap: distribution.artifact without oci://",
            env.bootstrap_raw(&format!(
                "  url = \"{}\"\n  path = \"clusters/dev\"\n  distribution = {{ version = \"2.7.x\", artifact = \"ghcr.io/x/manifests\" }}",
                env.url()
            )),
            "distribution.artifact",
            Plan,
        ),
        c(
            "bootstrap: reconcile_every in words",
            env.bootstrap(r#"  reconcile_every = "5 minutes""#),
            "reconcile_every",
            Validate,
        ),
        c(
            "bootstrap: reconcile_timeout in days",
            env.bootstrap(r#"  reconcile_timeout = "1d""#),
            "reconcile_timeout",
            Validate,
        ),
        c(
            "bootstrap: secret_name",
            env.bootstrap(r#"  secret_name = "Bad_Name""#),
            "secret_name",
            Validate,
        ),
        c(
            "bootstrap: namespace with capitals",
            env.bootstrap(r#"  namespace = "Flux-System""#),
            "namespace",
            Validate,
        ),
        c(
            "bootstrap: operator manifests_url",
            env.bootstrap(r#"  operator = { manifests_url = "ht!tp://exa mple" }"#),
            "operator.manifests_url",
            Validate,
        ),
        c(
            "bootstrap: operator cpu limit",
            env.bootstrap(
                r#"  operator = { manifests = file("operator-install.yaml"), resources = { limits = { cpu = "two cores" } } }"#,
            ),
            r#"operator.resources.limits["cpu"]"#,
            Validate,
        ),
        c(
            "bootstrap: operator manifests not YAML",
            env.bootstrap(r#"  operator = { manifests = "kind: [x" }"#),
            "operator.manifests",
            Validate,
        ),
        c(
            "bootstrap: timeouts.create forever",
            env.bootstrap(r#"  timeouts { create = "forever" }"#),
            "timeouts.create",
            Validate,
        ),
        c(
            "bootstrap: patch a plain string",
            env.bootstrap(r#"  kustomize = { patches = [{ patch = "make it faster" }] }"#),
            "kustomize.patches[0].patch",
            Validate,
        ),
        c(
            "bootstrap: storage.size in words",
            env.bootstrap(r#"  storage = { class = "standard", size = "ten gigs" }"#),
            "storage.size",
            Validate,
        ),
        c(
            "bootstrap: ssh URL with http credentials",
            env.bootstrap_raw(
                r#"  url = "ssh://git@127.0.0.1:1/fleet.git"
  path = "clusters/dev"
  distribution = { version = "2.7.x" }"#,
            ),
            // The provider's git settings are only known from plan on.
            "url",
            Plan,
        ),
        // ---- data source ----
        c(
            "data flux_instance: namespace with capitals",
            env.with_provider("data \"flux_instance\" \"this\" {\n  namespace = \"Flux-System\"\n}\n"),
            "namespace",
            Validate,
        ),
        // ---- input provider ----
        c(
            "input provider: url on a Static provider",
            env.input_provider("  type = \"Static\"\n  url  = \"https://example.com\""),
            "url",
            Validate,
        ),
        c(
            "input provider: secret_ref on an ECR provider",
            env.input_provider(
                "  type       = \"ECRArtifactTag\"\n  url        = \"oci://123.dkr.ecr.eu-west-1.amazonaws.com/app\"\n  secret_ref = { name = \"creds\" }",
            ),
            "secret_ref",
            Validate,
        ),
        c(
            "input provider: insecure on a Gitea provider",
            env.input_provider(
                "  type     = \"GiteaTag\"\n  url      = \"https://gitea.example.com/o/r\"\n  insecure = true",
            ),
            "insecure",
            Validate,
        ),
        c(
            "input provider: cron with a misspelt day",
            env.input_provider(
                "  type     = \"Static\"\n  schedule = [{ cron = \"0 8 * * mon-fry\" }]",
            ),
            "schedule[0].cron",
            Validate,
        ),
        c(
            "input provider: filter limit over 10000",
            env.input_provider(
                "  type   = \"GitLabTag\"\n  url    = \"https://gitlab.com/g/p\"\n  filter = { limit = 20000 }",
            ),
            "filter.limit",
            Validate,
        ),
        c(
            "input provider: unknown type",
            env.input_provider("  type = \"GitHub\""),
            "type",
            Validate,
        ),
        c(
            "input provider: reconcile_every in words",
            env.input_provider("  type = \"Static\"\n  reconcile_every = \"5 minutes\""),
            "reconcile_every",
            Validate,
        ),
        c(
            "input provider: namespace with capitals",
            env.with_provider(
                "resource \"flux_resource_set_input_provider\" \"this\" {\n  name      = \"p\"\n  namespace = \"Flux-System\"\n  type      = \"Static\"\n}\n",
            ),
            "namespace",
            Validate,
        ),
        // ---- data flux_report ----
        c(
            "data flux_report: namespace with capitals",
            env.with_provider("data \"flux_report\" \"this\" {\n  namespace = \"Flux-System\"\n}\n"),
            "namespace",
            Validate,
        ),
    ];
    out.shrink_to_fit();
    out
}

/// Runs one case; returns the phase it failed in, or a description of what went wrong.
fn run_case(env: &Env, case: &Case) -> Result<Phase, String> {
    env.ws
        .write_config(&format!("{REQUIRED_PROVIDERS}\n{}", case.hcl));
    env.sandbox.clear_requests();
    let git_before = env.git.requests().len();
    let tip_before = env.repos.tip(REPO, "main");

    let validate = env.ws.validate();
    let (phase, output) = if validate.success() {
        let plan = env.ws.plan();
        let output = plan.output().clone();
        if output.code != Some(1) {
            return Err(format!(
                "accepted by validate and plan (exit {:?})",
                output.code
            ));
        }
        (Phase::Plan, output)
    } else {
        (Phase::Validate, validate)
    };
    let text = collapse_whitespace(&output.combined());
    let mut problems = Vec::new();
    if phase != case.phase {
        problems.push(format!(
            "failed at {} instead of {}",
            phase.name(),
            case.phase.name()
        ));
    }
    if !text.contains(case.path) {
        problems.push(format!("the message does not name {}", case.path));
    }
    // The diagnostic itself carries the path (logged by the provider for every diagnostic).
    // Terraform re-logs the provider's fields as `key=value`, quoting values with quotes inside.
    let plain = format!("attribute={} ", case.path);
    let quoted = format!("attribute=\"{}\"", case.path.replace('"', "\\\""));
    let log = &output.provider_log;
    if !log.lines().any(|l| {
        l.contains("diagnostic")
            && (l.contains(&plain) || l.ends_with(plain.trim_end()) || l.contains(&quoted))
    }) {
        problems.push(format!("no diagnostic at attribute {}", case.path));
    }
    let writes: Vec<serde_json::Value> = env
        .sandbox
        .requests()
        .into_iter()
        .filter(is_persisted_write)
        .collect();
    if !writes.is_empty() {
        problems.push(format!("API server writes: {writes:?}"));
    }
    let pushes: Vec<_> = env.git.requests()[git_before..]
        .iter()
        .filter(|r| r.uri.contains("git-receive-pack"))
        .cloned()
        .collect();
    if !pushes.is_empty() {
        problems.push(format!("Git pushes: {pushes:?}"));
    }
    if env.repos.tip(REPO, "main") != tip_before {
        problems.push("the branch tip moved".to_owned());
    }
    if problems.is_empty() {
        Ok(phase)
    } else {
        let stderr: String = output.stderr.chars().take(2000).collect();
        Err(format!("{}\n--- stderr ---\n{stderr}", problems.join("; ")))
    }
}

fn run_table(part: &str, filter: impl Fn(&Case) -> bool) {
    let env = env();
    let all = cases(&env);
    let cases: Vec<&Case> = all.iter().filter(|c| filter(c)).collect();
    let mut failures = Vec::new();
    let mut by_phase = std::collections::BTreeMap::<&str, usize>::new();
    for case in &cases {
        match run_case(&env, case) {
            Ok(phase) => *by_phase.entry(phase.name()).or_default() += 1,
            Err(problem) => failures.push(format!("[{}] {problem}", case.name)),
        }
    }
    println!(
        "bad input ({part}): {} cases, {} failed",
        cases.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} bad-input cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
    reliability::write_figures(
        &format!("bad_input-{part}"),
        &serde_json::json!({
            "cases": cases.len(),
            "by_phase": by_phase,
            "resources": cases.iter().map(|c| c.name.split(':').next().unwrap_or_default()).collect::<std::collections::BTreeSet<_>>(),
        }),
    );
}

#[test]
fn bad_input_provider_and_operator() {
    run_table("provider-operator", |c| {
        c.name.starts_with("kubernetes")
            || c.name.starts_with("git")
            || c.name.starts_with("operator")
    });
}

#[test]
fn bad_input_instance_and_data_source() {
    run_table("instance", |c| {
        c.name.starts_with("instance") || c.name.starts_with("data flux_instance")
    });
}

#[test]
fn bad_input_input_provider_and_report() {
    run_table("input-provider-report", |c| {
        c.name.starts_with("input provider") || c.name.starts_with("data flux_report")
    });
}

#[test]
fn bad_input_resource_set_and_bootstrap() {
    run_table("resource-set-bootstrap", |c| {
        c.name.starts_with("resource set") || c.name.starts_with("bootstrap")
    });
}
