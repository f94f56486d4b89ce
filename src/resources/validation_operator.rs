//! Validation of the Flux Operator install settings, for `flux_operator` and for the
//! `operator` block of `flux_bootstrap_git`: exactly one manifests source, each valid, and the
//! chart settings of the operator Deployment (quantities, tolerations, affinity, environment,
//! log level, concurrency). Nothing here does I/O.
//!
//! Lives in `resources/`: may use `framework` and `flux`.

use std::collections::BTreeMap;

use crate::flux::operator::{DEPLOYMENT_NAME, normalize_version};
use crate::flux::operator_chart::LOG_LEVELS;
use crate::flux::validate as rule;
use crate::framework::diagnostics::Diagnostics;
use crate::framework::model::Value;
use crate::framework::path::AttrPath;
use crate::resources::affinity::AffinityModel;
use crate::resources::affinity_check;
use crate::resources::flux_operator_model::{ResourcesModel, TolerationModel};
use crate::resources::validation_checks::{Checks, attr, namespace, timeouts};

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
        checks.error_at(
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
            checks.error_at(
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
            checks.error_at(
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
        affinity_check::validate(model, &at(&["affinity"]), checks.diagnostics());
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
