//! Validation of what users type, per resource, at ValidateResourceConfig time: every known value
//! is checked against the rule the API server, libgit2 or the operator would apply later (the
//! rules are in [`crate::flux::validate`]), and each problem becomes an error at the attribute's
//! path whose message starts with that path and the value, says what is wrong and what a valid
//! value looks like. Unknown values (known only at apply) are skipped; nothing here does I/O, so
//! a bad value fails `terraform validate` and changes nothing.
//!
//! Lives in `resources/`: may use `framework` and `flux`.

use std::collections::BTreeMap;

use crate::flux::duration::parse_duration;
use crate::flux::operator::{DEPLOYMENT_NAME, normalize_version};
use crate::flux::operator_chart::LOG_LEVELS;
use crate::flux::validate as rule;
use crate::framework::diagnostics::Diagnostics;
use crate::framework::model::Value;
use crate::framework::path::AttrPath;
use crate::resources::affinity::{self, AffinityModel};
use crate::resources::common::Timeouts;
use crate::resources::flux_instance_model::{
    DistributionModel, InstanceModel, KustomizeModel, StorageModel,
};
use crate::resources::flux_operator_model::{ResourcesModel, TolerationModel};

/// Collects errors, one per bad value.
#[derive(Debug, Default)]
pub struct Checks {
    out: Diagnostics,
}

impl Checks {
    /// No errors yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The errors found.
    pub fn finish(self) -> Diagnostics {
        self.out
    }

    /// An error at `path`: `<path> = "<value>" <reason>.`
    pub fn fail(&mut self, path: AttrPath, summary: &str, value: &str, reason: &str) {
        self.out.error_at(
            path.clone(),
            summary,
            format!("{path} = {value:?} {reason}."),
        );
    }

    /// Checks a known string with `rule`.
    pub fn string(
        &mut self,
        path: AttrPath,
        value: &Value<String>,
        summary: &str,
        rule: impl Fn(&str) -> Result<(), String>,
    ) {
        if let Some(text) = value.as_known()
            && let Err(reason) = rule(text)
        {
            self.fail(path, summary, text, &reason);
        }
    }

    /// Checks every known value of a map with `rule`, at `path["key"]`.
    pub fn map_values(
        &mut self,
        path: &AttrPath,
        value: &Value<BTreeMap<String, String>>,
        summary: &str,
        rule: impl Fn(&str) -> Result<(), String>,
    ) {
        for (key, text) in value.as_known().into_iter().flatten() {
            if let Err(reason) = rule(text) {
                self.fail(path.clone().then_key(key.clone()), summary, text, &reason);
            }
        }
    }

    /// Checks every key of a known map with `rule`, at `path["key"]`.
    pub fn map_keys(
        &mut self,
        path: &AttrPath,
        value: &Value<BTreeMap<String, String>>,
        summary: &str,
        rule: impl Fn(&str) -> Result<(), String>,
    ) {
        for key in value.as_known().into_iter().flatten().map(|(k, _)| k) {
            if let Err(reason) = rule(key) {
                let path = path.clone().then_key(key.clone());
                self.out.error_at(
                    path.clone(),
                    summary,
                    format!("{path}: the key {key:?} {reason}."),
                );
            }
        }
    }
}

fn attr(steps: &[&str]) -> AttrPath {
    steps
        .iter()
        .fold(AttrPath::root(), |path, step| path.then_attr(*step))
}

fn duration(text: &str) -> Result<(), String> {
    parse_duration(text).map(|_| ()).map_err(|_| {
        "is not a duration; use a number with a unit (ms, s, m, h), e.g. \"10m\" or \"1h30m\""
            .into()
    })
}

/// `timeouts.create/update/delete` under `prefix`.
pub fn timeouts(checks: &mut Checks, timeouts: &Value<Timeouts>) {
    let Some(t) = timeouts.as_known() else {
        return;
    };
    for (name, value) in [
        ("create", &t.create),
        ("update", &t.update),
        ("delete", &t.delete),
    ] {
        checks.string(
            attr(&["timeouts", name]),
            value,
            "Invalid Timeout",
            duration,
        );
    }
}

fn distribution(checks: &mut Checks, prefix: &[&str], value: &Value<DistributionModel>) {
    let Some(d) = value.as_known() else {
        return;
    };
    let at = |name: &str| {
        let mut steps = prefix.to_vec();
        steps.push(name);
        attr(&steps)
    };
    checks.string(
        at("version"),
        &d.version,
        "Invalid Flux Version",
        rule::flux_version,
    );
    for name in ["image_pull_secret", "artifact_pull_secret"] {
        let value = if name == "image_pull_secret" {
            &d.image_pull_secret
        } else {
            &d.artifact_pull_secret
        };
        checks.string(at(name), value, "Invalid Secret Name", rule::dns_subdomain);
    }
}

fn storage(checks: &mut Checks, value: &Value<StorageModel>) {
    let Some(s) = value.as_known() else {
        return;
    };
    checks.string(
        attr(&["storage", "size"]),
        &s.size,
        "Invalid Storage Size",
        rule::quantity,
    );
    checks.string(
        attr(&["storage", "class"]),
        &s.class,
        "Invalid Storage Class",
        rule::dns_subdomain,
    );
}

fn kustomize(checks: &mut Checks, value: &Value<KustomizeModel>) {
    let Some(patches) = value.as_known().and_then(|k| k.patches.as_known()) else {
        return;
    };
    for (i, patch) in patches.iter().enumerate() {
        let path = AttrPath::attr("kustomize")
            .then_attr("patches")
            .then_index(i as i64)
            .then_attr("patch");
        checks.string(
            path,
            &patch.patch,
            "Invalid Kustomize Patch",
            rule::kustomize_patch,
        );
    }
}

/// The namespace of a FluxInstance (or a bootstrap): a DNS label.
fn namespace(checks: &mut Checks, value: &Value<String>) {
    checks.string(
        AttrPath::attr("namespace"),
        value,
        "Invalid Namespace Name",
        rule::dns_label,
    );
}

/// The reconcile annotations the operator parses as durations: a value it cannot parse would be
/// written as is (the API server does not check annotations), so it is refused here.
fn reconcile_durations(checks: &mut Checks, fields: &[(&str, &Value<String>)]) {
    for (name, value) in fields {
        checks.string(attr(&[name]), value, "Invalid Duration", duration);
    }
}

/// The settings `flux_instance` shares with `flux_bootstrap_git` (no `sync`, no `name`).
fn instance_settings(checks: &mut Checks, config: &InstanceModel) {
    namespace(checks, &config.namespace);
    reconcile_durations(
        checks,
        &[
            ("reconcile_every", &config.reconcile_every),
            ("reconcile_artifact_every", &config.reconcile_artifact_every),
            ("reconcile_timeout", &config.reconcile_timeout),
        ],
    );
    distribution(checks, &["distribution"], &config.distribution);
    storage(checks, &config.storage);
    kustomize(checks, &config.kustomize);
    timeouts(checks, &config.timeouts);
}

/// `flux_instance`: names, version constraint, patches, sync source, storage, timeouts.
pub fn instance(config: &InstanceModel) -> Diagnostics {
    let mut checks = Checks::new();
    instance_settings(&mut checks, config);
    checks.string(
        AttrPath::attr("name"),
        &config.name,
        "Unsupported FluxInstance Name",
        |name| {
            if name == crate::flux::instance::INSTANCE_NAME {
                Ok(())
            } else {
                Err(
                    "is not supported: the Flux Operator only reconciles a FluxInstance named \
                     \"flux\"; remove name or set it to \"flux\""
                        .into(),
                )
            }
        },
    );
    if let Some(sync) = config.sync.as_known() {
        let kind = sync.kind.as_known().map(String::as_str);
        match sync.url.as_known() {
            // Never echoed: the value holds a credential.
            Some(url) if rule::url_has_password(url) => checks.out.error_at(
                attr(&["sync", "url"]),
                "Credentials In The Sync URL",
                "sync.url carries a password or token in its user info. The URL is stored in \
                 the Terraform state and in the FluxInstance, so it must not hold credentials: \
                 put them in the Secret named by sync.pull_secret.",
            ),
            _ => checks.string(attr(&["sync", "url"]), &sync.url, "Invalid Sync URL", |u| {
                rule::sync_url(kind, u)
            }),
        }
        checks.string(
            attr(&["sync", "ref"]),
            &sync.git_ref,
            "Invalid Sync Reference",
            |r| rule::source_ref(kind, r),
        );
        checks.string(
            attr(&["sync", "path"]),
            &sync.path,
            "Invalid Sync Path",
            rule::source_path,
        );
        checks.string(
            attr(&["sync", "pull_secret"]),
            &sync.pull_secret,
            "Invalid Secret Name",
            rule::dns_subdomain,
        );
        checks.string(
            attr(&["sync", "name"]),
            &sync.name,
            "Invalid Sync Name",
            rule::dns_label,
        );
        checks.string(
            attr(&["sync", "interval"]),
            &sync.interval,
            "Invalid Duration",
            duration,
        );
    }
    checks.finish()
}

/// The `flux_instance` data source: the namespace.
pub fn instance_data(config: &InstanceModel) -> Diagnostics {
    let mut checks = Checks::new();
    namespace(&mut checks, &config.namespace);
    checks.finish()
}

/// The operator install settings (`flux_operator`, or `flux_bootstrap_git.operator` with
/// `prefix = ["operator"]`).
pub struct OperatorInputs<'a> {
    /// `version`.
    pub version: &'a Value<String>,
    /// `manifests_url`.
    pub manifests_url: &'a Value<String>,
    /// `manifests`.
    pub manifests: &'a Value<String>,
    /// `env`.
    pub env: &'a Value<BTreeMap<String, String>>,
    /// `resources`.
    pub resources: &'a Value<ResourcesModel>,
    /// `tolerations`.
    pub tolerations: &'a Value<Vec<TolerationModel>>,
    /// `replicas`.
    pub replicas: &'a Value<i64>,
    /// `affinity`.
    pub affinity: &'a Value<AffinityModel>,
    /// `priority_class_name`.
    pub priority_class_name: &'a Value<String>,
    /// `image_pull_secrets`.
    pub image_pull_secrets: &'a Value<Vec<String>>,
    /// `log_level`.
    pub log_level: &'a Value<String>,
    /// `concurrent`.
    pub concurrent: &'a Value<i64>,
}

/// The operator install settings: exactly one manifests source, each valid; quantities,
/// tolerations and environment variable names.
pub fn operator(checks: &mut Checks, prefix: &[&str], inputs: &OperatorInputs<'_>) {
    let at = |steps: &[&str]| {
        let mut all = prefix.to_vec();
        all.extend_from_slice(steps);
        attr(&all)
    };
    let sources = [inputs.version, inputs.manifests_url, inputs.manifests];
    if !sources.iter().any(|v| v.is_unknown())
        && sources.iter().filter(|v| v.is_known()).count() != 1
    {
        let path = at(&["version"]);
        let names = ["version", "manifests_url", "manifests"]
            .map(|n| at(&[n]).to_string())
            .join(", ");
        checks.out.error_at(
            path,
            "Operator Manifests Source",
            format!(
                "Set exactly one of {names}: a release such as \"v0.58.1\", the URL of an \
                 install.yaml, or the YAML itself."
            ),
        );
    }
    checks.string(
        at(&["version"]),
        inputs.version,
        "Invalid Operator Version",
        |v| {
            normalize_version(v).map(|_| ()).map_err(|_| {
                "is not an operator release; use a version such as \"v0.58.1\"".to_owned()
            })
        },
    );
    checks.string(
        at(&["manifests_url"]),
        inputs.manifests_url,
        "Invalid Manifests URL",
        |u| rule::url_with_scheme(u, &["https", "http"]),
    );
    if let Some(yaml) = inputs.manifests.as_known() {
        let path = at(&["manifests"]);
        let problem = match rule::object_stream(yaml) {
            Err(reason) => Some(reason),
            Ok(objects) => {
                let has_deployment = objects
                    .iter()
                    .any(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == DEPLOYMENT_NAME);
                (!has_deployment).then(|| {
                    format!(
                        "has no Deployment named {DEPLOYMENT_NAME:?}: these are not the Flux \
                         Operator's install manifests (use the install.yaml of an operator \
                         release)"
                    )
                })
            }
        };
        if let Some(reason) = problem {
            // The value is long YAML: name the attribute, not the value.
            checks.out.error_at(
                path.clone(),
                "Invalid Operator Manifests",
                format!("{path} {reason}."),
            );
        }
    }
    checks.map_keys(
        &at(&["env"]),
        inputs.env,
        "Invalid Environment Variable",
        rule::env_name,
    );
    if let Some(resources) = inputs.resources.as_known() {
        checks.map_values(
            &at(&["resources", "limits"]),
            &resources.limits,
            "Invalid Resource Quantity",
            rule::quantity,
        );
        checks.map_values(
            &at(&["resources", "requests"]),
            &resources.requests,
            "Invalid Resource Quantity",
            rule::quantity,
        );
    }
    for (i, toleration) in inputs
        .tolerations
        .as_known()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let path = |name: &str| {
            let mut all = prefix.to_vec();
            all.push("tolerations");
            attr(&all).then_index(i as i64).then_attr(name)
        };
        checks.string(
            path("operator"),
            &toleration.operator,
            "Invalid Toleration",
            |o| rule::one_of(o, &["Exists", "Equal"]),
        );
        checks.string(
            path("effect"),
            &toleration.effect,
            "Invalid Toleration",
            |e| rule::one_of(e, &["NoSchedule", "PreferNoSchedule", "NoExecute"]),
        );
    }
    operator_chart(checks, &at, inputs);
}

/// The chart settings of the operator Deployment: counts, names, the log level, the affinity.
fn operator_chart(
    checks: &mut Checks,
    at: &dyn Fn(&[&str]) -> AttrPath,
    inputs: &OperatorInputs<'_>,
) {
    for (name, value, what) in [
        ("replicas", inputs.replicas, "replicas of the operator"),
        (
            "concurrent",
            inputs.concurrent,
            "objects reconciled at once",
        ),
    ] {
        if let Some(n) = value.as_known()
            && *n < 1
        {
            let path = at(&[name]);
            checks.out.error_at(
                path.clone(),
                "Invalid Operator Setting",
                format!("{path} = {n} is out of range: the {what} must be at least 1."),
            );
        }
    }
    checks.string(
        at(&["priority_class_name"]),
        inputs.priority_class_name,
        "Invalid Priority Class Name",
        rule::dns_subdomain,
    );
    for (i, name) in inputs
        .image_pull_secrets
        .as_known()
        .into_iter()
        .flatten()
        .enumerate()
    {
        if let Err(reason) = rule::dns_subdomain(name) {
            checks.fail(
                at(&["image_pull_secrets"]).then_index(i as i64),
                "Invalid Secret Name",
                name,
                &reason,
            );
        }
    }
    checks.string(
        at(&["log_level"]),
        inputs.log_level,
        "Invalid Log Level",
        |l| rule::one_of(l, &LOG_LEVELS),
    );
    if let Some(model) = inputs.affinity.as_known() {
        affinity::validate(model, &at(&["affinity"]), &mut checks.out);
    }
}

/// `flux_operator`.
pub fn operator_resource(
    config: &crate::resources::flux_operator_model::OperatorModel,
) -> Diagnostics {
    let mut checks = Checks::new();
    operator(
        &mut checks,
        &[],
        &OperatorInputs {
            version: &config.version,
            manifests_url: &config.manifests_url,
            manifests: &config.manifests,
            env: &config.env,
            resources: &config.resources,
            tolerations: &config.tolerations,
            replicas: &config.replicas,
            affinity: &config.affinity,
            priority_class_name: &config.priority_class_name,
            image_pull_secrets: &config.image_pull_secrets,
            log_level: &config.log_level,
            concurrent: &config.concurrent,
        },
    );
    namespace(&mut checks, &config.namespace);
    timeouts(&mut checks, &config.timeouts);
    checks.finish()
}

/// `flux_bootstrap_git`: the repository (URL, branch), the instance settings, the sync interval,
/// the Secret name and the operator settings.
pub fn bootstrap(
    config: &crate::resources::flux_bootstrap_git_model::BootstrapModel,
    instance: &InstanceModel,
) -> Diagnostics {
    let mut checks = Checks::new();
    instance_settings(&mut checks, instance);
    timeouts(&mut checks, &config.timeouts);
    match config.url.as_known() {
        // Never echoed: the value holds a credential, and would end up in state.
        Some(url) if rule::url_has_password(url) => checks.out.error_at(
            AttrPath::attr("url"),
            "Credentials In The Repository URL",
            "url carries a password or token in its user info (https://user:secret@host/...). \
             The URL is stored in the Terraform state and committed to the repository, so it \
             must not hold credentials: remove them from the URL and set them in the \
             provider's git.http settings (username and password, or bearer_token), which \
             never enter state.",
        ),
        _ => checks.string(
            AttrPath::attr("url"),
            &config.url,
            "Invalid Repository URL",
            rule::git_url,
        ),
    }
    checks.string(
        AttrPath::attr("branch"),
        &config.branch,
        "Invalid Branch Name",
        rule::git_branch,
    );
    checks.string(
        AttrPath::attr("interval"),
        &config.interval,
        "Invalid Interval",
        duration,
    );
    checks.string(
        AttrPath::attr("secret_name"),
        &config.secret_name,
        "Invalid Secret Name",
        rule::dns_subdomain,
    );
    if let Some(op) = config.operator.as_known() {
        operator(
            &mut checks,
            &["operator"],
            &OperatorInputs {
                version: &op.version,
                manifests_url: &op.manifests_url,
                manifests: &op.manifests,
                env: &op.env,
                resources: &op.resources,
                tolerations: &op.tolerations,
                replicas: &op.replicas,
                affinity: &op.affinity,
                priority_class_name: &op.priority_class_name,
                image_pull_secrets: &op.image_pull_secrets,
                log_level: &op.log_level,
                concurrent: &op.concurrent,
            },
        );
    }
    checks.finish()
}

/// `flux_resource_set`: names, the YAML template, timeouts.
pub fn resource_set(
    config: &crate::resources::flux_resource_set::model::ResourceSetModel,
) -> Diagnostics {
    let mut checks = Checks::new();
    checks.string(
        AttrPath::attr("name"),
        &config.name,
        "Invalid ResourceSet Name",
        rule::dns_subdomain,
    );
    checks.string(
        AttrPath::attr("namespace"),
        &config.namespace,
        "Invalid Namespace Name",
        rule::dns_label,
    );
    checks.string(
        AttrPath::attr("service_account_name"),
        &config.service_account_name,
        "Invalid Service Account Name",
        rule::dns_subdomain,
    );
    if let Some(template) = config.resources_template.as_known()
        && let Err(reason) = rule::resources_template(template)
    {
        checks.out.error_at(
            AttrPath::attr("resources_template"),
            "Invalid Resources Template",
            format!("resources_template {reason}."),
        );
    }
    for (i, dependency) in config
        .dependencies
        .as_known()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let path = AttrPath::attr("dependencies")
            .then_index(i as i64)
            .then_attr("name");
        checks.string(path, &dependency.name, "Invalid Dependency", |name| {
            if name.is_empty() {
                Err("must not be empty; name the object the ResourceSet depends on".into())
            } else {
                Ok(())
            }
        });
    }
    resource_set_objects(&mut checks, &config.resources);
    reconcile_durations(
        &mut checks,
        &[
            ("reconcile_every", &config.reconcile_every),
            ("reconcile_timeout", &config.reconcile_timeout),
        ],
    );
    for (i, source) in config
        .inputs_from
        .as_known()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let selector = source.selector.as_known();
        let expressions = selector.and_then(|s| s.match_expressions.as_known());
        for (j, expression) in expressions.into_iter().flatten().enumerate() {
            let path = AttrPath::attr("inputs_from")
                .then_index(i as i64)
                .then_attr("selector")
                .then_attr("match_expressions")
                .then_index(j as i64)
                .then_attr("operator");
            checks.string(path, &expression.operator, "Invalid Label Selector", |o| {
                rule::one_of(o, &["In", "NotIn", "Exists", "DoesNotExist"])
            });
        }
    }
    timeouts(&mut checks, &config.timeouts);
    checks.finish()
}

/// `flux_resource_set_input_provider`: names and timeouts (the rules of the spec are checked by
/// its model, [`crate::resources::flux_resource_set_input_provider::model::validate_config`]).
pub fn input_provider(
    config: &crate::resources::flux_resource_set_input_provider::model::InputProviderModel,
) -> Diagnostics {
    let mut checks = Checks::new();
    checks.string(
        AttrPath::attr("name"),
        &config.name,
        "Invalid ResourceSetInputProvider Name",
        rule::dns_subdomain,
    );
    checks.string(
        AttrPath::attr("namespace"),
        &config.namespace,
        "Invalid Namespace Name",
        rule::dns_label,
    );
    checks.string(
        AttrPath::attr("service_account_name"),
        &config.service_account_name,
        "Invalid Service Account Name",
        rule::dns_subdomain,
    );
    timeouts(&mut checks, &config.timeouts);
    checks.finish()
}

/// The provider's `git` settings against the repository URL of `flux_bootstrap_git` (checked at
/// plan, when the provider settings are known): SSH URLs need `git.ssh` with a key, HTTP(S) URLs
/// must not come with only `git.ssh`, and `http://` needs `git.http.allow_insecure_http`.
pub fn git_settings_match_url(
    url: &str,
    config: &crate::resources::flux_bootstrap_git_model::GitConfig,
) -> Diagnostics {
    let mut out = Diagnostics::new();
    let mut fail = |reason: &str| {
        out.error_at(
            AttrPath::attr("url"),
            "Git Settings Do Not Match The URL",
            format!("url = {url:?} {reason}."),
        );
    };
    let has_http = config.http_username.is_some()
        || config.http_password.is_some()
        || config.bearer_token.is_some()
        || config.certificate_authority.is_some();
    if crate::resources::flux_bootstrap_git_model::is_ssh_url(url) {
        if config.ssh.as_ref().is_none_or(|s| s.private_key.is_none()) {
            fail(if has_http {
                "is an SSH URL, but the provider's git settings configure git.http, not git.ssh; \
                 use the repository's https:// URL, or set git.ssh with a private_key"
            } else {
                "is an SSH URL, but the provider's git settings have no git.ssh.private_key; set \
                 git.ssh in the provider configuration"
            });
        }
    } else {
        if config.ssh.is_some() && !has_http {
            fail(
                "is an HTTP(S) URL, but the provider's git settings configure git.ssh; use the \
                 repository's ssh:// URL, or set git.http",
            );
        }
        if url.starts_with("http://") && !config.allow_insecure_http {
            fail(
                "is a plain http:// URL, which sends credentials unencrypted; use https://, or \
                 set git.http.allow_insecure_http = true in the provider configuration",
            );
        }
    }
    out
}

/// Each element of `resources` (an object template) has a non-empty `apiVersion` and `kind`.
fn resource_set_objects(
    checks: &mut Checks,
    resources: &Value<crate::resources::flux_resource_set::model::Dynamic>,
) {
    use crate::framework::value::RawValue;
    let Some(crate::resources::flux_resource_set::model::Dynamic(raw)) = resources.as_known()
    else {
        return;
    };
    let (RawValue::List(items) | RawValue::Tuple(items) | RawValue::Set(items)) = raw else {
        return;
    };
    for (i, item) in items.iter().enumerate() {
        let (RawValue::Object(fields) | RawValue::Map(fields)) = item else {
            continue;
        };
        for field in ["apiVersion", "kind"] {
            let present = match fields.get(field) {
                Some(RawValue::String(text)) => !text.is_empty(),
                Some(RawValue::Unknown(_)) => true,
                _ => false,
            };
            if !present {
                let path = AttrPath::attr("resources").then_index(i as i64);
                checks.out.error_at(
                    path.clone(),
                    "Invalid ResourceSet Object",
                    format!(
                        "{path} has no {field}: every object template needs apiVersion, kind \
                         and metadata (e.g. {{ apiVersion = \"v1\", kind = \"ConfigMap\", \
                         metadata = {{ name = \"...\" }} }})."
                    ),
                );
                break;
            }
        }
    }
}
