//! The `ResourceSetInputProvider` API (`fluxcd.controlplane.io/v1`, Flux Operator v0.58.1) as
//! Rust types, the rules its CRD enforces (the type enum, the URL and window patterns, the
//! `filter.limit` maximum, the CEL rules tying `url`, `insecure`, `secretRef`,
//! `certSecretRef`, `serviceAccountName` and `selectors` to the type) and the ones the operator
//! checks before it calls anything (a schedule's cron expression and window), each reported
//! with the API fields involved.
//!
//! Open shapes stay open: `defaultValues` and the exported inputs are JSON maps. Pure: no I/O,
//! nothing else from this crate but [`crate::flux::duration`] and the shared rule type.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    Condition, LabelSelectorRequirement, ObjectMeta,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::flux::duration::parse_duration;
use crate::flux::instance::{API_VERSION, ReconcileAnnotations};
use crate::flux::resource_set::RuleViolation;

/// `kind` of a ResourceSetInputProvider.
pub const KIND: &str = "ResourceSetInputProvider";
/// The CRD default of `spec.filter.limit`.
pub const DEFAULT_FILTER_LIMIT: i64 = 100;
/// The CRD maximum of `spec.filter.limit`.
pub const MAX_FILTER_LIMIT: i64 = 10_000;
/// The CRD default of `spec.schedule[].timeZone`.
pub const DEFAULT_TIME_ZONE: &str = "UTC";
/// The CRD default of `spec.schedule[].window`.
pub const DEFAULT_WINDOW: &str = "0s";
/// The operator's reconcile interval when `reconcileEvery` is absent.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(600);
/// The operator's timeout when `reconcileTimeout` is absent.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

string_enum! {
    /// `spec.type`.
    pub enum ProviderType {
        /// The default values are the one input set.
        Static => "Static",
        /// Branches of a GitHub repository.
        GitHubBranch => "GitHubBranch",
        /// Tags of a GitHub repository.
        GitHubTag => "GitHubTag",
        /// Open pull requests of a GitHub repository.
        GitHubPullRequest => "GitHubPullRequest",
        /// Branches of a GitLab project.
        GitLabBranch => "GitLabBranch",
        /// Tags of a GitLab project.
        GitLabTag => "GitLabTag",
        /// Open merge requests of a GitLab project.
        GitLabMergeRequest => "GitLabMergeRequest",
        /// Environments of a GitLab project.
        GitLabEnvironment => "GitLabEnvironment",
        /// Branches of an Azure DevOps repository.
        AzureDevOpsBranch => "AzureDevOpsBranch",
        /// Tags of an Azure DevOps repository.
        AzureDevOpsTag => "AzureDevOpsTag",
        /// Open pull requests of an Azure DevOps repository.
        AzureDevOpsPullRequest => "AzureDevOpsPullRequest",
        /// Branches of an AWS CodeCommit repository.
        AWSCodeCommitBranch => "AWSCodeCommitBranch",
        /// Tags of an AWS CodeCommit repository.
        AWSCodeCommitTag => "AWSCodeCommitTag",
        /// Open pull requests of an AWS CodeCommit repository.
        AWSCodeCommitPullRequest => "AWSCodeCommitPullRequest",
        /// Branches of a Gitea repository.
        GiteaBranch => "GiteaBranch",
        /// Tags of a Gitea repository.
        GiteaTag => "GiteaTag",
        /// Open pull requests of a Gitea repository.
        GiteaPullRequest => "GiteaPullRequest",
        /// Tags of an OCI repository.
        OCIArtifactTag => "OCIArtifactTag",
        /// Tags of an Azure Container Registry repository (workload identity).
        ACRArtifactTag => "ACRArtifactTag",
        /// Tags of an Amazon ECR repository (workload identity).
        ECRArtifactTag => "ECRArtifactTag",
        /// Tags of a Google Artifact Registry repository (workload identity).
        GARArtifactTag => "GARArtifactTag",
        /// A JSON API answering with input sets.
        ExternalService => "ExternalService",
        /// Flux `ExternalArtifact` objects in the cluster.
        ExternalArtifact => "ExternalArtifact",
    }
}

/// Why a provider object could not be read or encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputProviderError {
    /// The object is not valid ResourceSetInputProvider JSON.
    #[error("decoding ResourceSetInputProvider: {0}")]
    Decode(String),
    /// The object could not be encoded.
    #[error("encoding ResourceSetInputProvider: {0}")]
    Encode(String),
}

/// A whole ResourceSetInputProvider object.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct InputProvider {
    /// Always [`API_VERSION`].
    pub api_version: String,
    /// Always [`KIND`].
    pub kind: String,
    /// Object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The desired state, as API JSON (the typed view is [`InputProviderSpec`]).
    #[serde(default)]
    pub spec: Map<String, Value>,
    /// The observed state, written by the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<InputProviderStatus>,
}

impl InputProvider {
    /// A provider `namespace/name` with the given spec JSON.
    pub fn new(namespace: &str, name: &str, spec: Map<String, Value>) -> Self {
        Self {
            api_version: API_VERSION.to_owned(),
            kind: KIND.to_owned(),
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some(namespace.to_owned()),
                ..ObjectMeta::default()
            },
            spec,
            status: None,
        }
    }

    /// Decodes an object read from the API server.
    ///
    /// # Errors
    ///
    /// [`InputProviderError::Decode`].
    pub fn from_json(value: Value) -> Result<Self, InputProviderError> {
        serde_json::from_value(value).map_err(|e| InputProviderError::Decode(e.to_string()))
    }

    /// Encodes the object as JSON.
    ///
    /// # Errors
    ///
    /// [`InputProviderError::Encode`]; not expected for these types.
    pub fn to_json(&self) -> Result<Value, InputProviderError> {
        serde_json::to_value(self).map_err(|e| InputProviderError::Encode(e.to_string()))
    }

    /// The reconcile control annotations present on the object.
    pub fn reconcile_annotations(&self) -> ReconcileAnnotations {
        ReconcileAnnotations::from_annotations(
            self.metadata
                .annotations
                .as_ref()
                .unwrap_or(&BTreeMap::new()),
        )
    }
}

/// `spec` of a ResourceSetInputProvider, typed (for validation).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct InputProviderSpec {
    /// `type`, as written (checked against [`ProviderType`] by [`validate`]).
    #[serde(rename = "type", default)]
    pub provider_type: String,
    /// The API, repository or OCI repository address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Service account for cloud workload identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Credentials Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalRef>,
    /// TLS Secret (`ca.crt`, `tls.crt`, `tls.key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_secret_ref: Option<LocalRef>,
    /// Plain HTTP (ExternalService, OCIArtifactTag).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure: Option<bool>,
    /// Values added to every input set that lacks them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_values: Option<Map<String, Value>>,
    /// What to keep of the provider's answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Filter>,
    /// When to keep the previous answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip: Option<Skip>,
    /// When the provider may run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Vec<Schedule>>,
    /// ExternalArtifact selectors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selectors: Option<Vec<ArtifactSelector>>,
}

/// A reference to a Secret in the provider's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct LocalRef {
    /// The Secret's name.
    #[serde(default)]
    pub name: String,
}

/// `spec.filter`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct Filter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_branch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_branch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_environment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_environment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semver: Option<String>,
}

/// `spec.skip`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct Skip {
    /// Labels (a `!` prefix negates) whose presence keeps the previous answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
}

/// One of `spec.schedule`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    /// Cron expression (five fields, or a `@` descriptor).
    #[serde(default)]
    pub cron: String,
    /// IANA time zone (CRD default `UTC`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// How long after each trigger the provider may run (CRD default `0s`: no window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
}

/// One of `spec.selectors`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactSelector {
    /// One ExternalArtifact by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Namespace to look in (`*`: all; empty: the provider's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Labels the ExternalArtifacts must carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_labels: Option<BTreeMap<String, String>>,
    /// Label requirements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_expressions: Option<Vec<LabelSelectorRequirement>>,
}

/// `status` of a ResourceSetInputProvider, written by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct InputProviderStatus {
    /// `Ready`, `Reconciling`, `Stalled`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The exported input sets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exported_inputs: Option<Vec<Map<String, Value>>>,
    /// Digest of the exported inputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_exported_revision: Option<String>,
    /// The next time a schedule lets the provider run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_schedule: Option<NextSchedule>,
    /// Echo of the handled `reconcile.fluxcd.io/requestedAt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}

/// `status.nextSchedule`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct NextSchedule {
    #[serde(default)]
    pub cron: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    #[serde(default)]
    pub when: String,
}

fn starts(text: Option<&str>, prefix: &str) -> bool {
    text.is_some_and(|t| t.starts_with(prefix))
}

/// Checks the CRD's rules and the operator's schedule checks. `timeout` is the operator's
/// timeout for this provider (`reconcileTimeout`, default [`DEFAULT_TIMEOUT`]).
pub fn validate(spec: &InputProviderSpec, timeout: Duration) -> Vec<RuleViolation> {
    let mut out = Vec::new();
    let mut rule = |fields: &[&str], message: String| {
        out.push(RuleViolation {
            fields: fields.iter().map(|f| (*f).to_owned()).collect(),
            message,
        });
    };
    let kind = spec.provider_type.as_str();
    if kind.parse::<ProviderType>().is_err() {
        rule(
            &["type"],
            format!(
                "{kind:?} is not a provider type; use one of {}",
                ProviderType::ALL
                    .iter()
                    .map(|t| t.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
        return out;
    }
    let url = spec.url.as_deref();
    let has_url = url.is_some();
    let git = kind.starts_with("Git");
    let azure = kind.starts_with("AzureDevOps");
    let aws = kind.starts_with("AWSCodeCommit");
    let oci = kind.ends_with("ArtifactTag");
    let cloud_oci = oci && kind != "OCIArtifactTag";
    if let Some(u) = url
        && !u.is_empty()
        && !["http://", "https://", "oci://"]
            .iter()
            .any(|p| u.starts_with(p))
    {
        rule(
            &["url"],
            "spec.url must be empty or start with 'http://', 'https://' or 'oci://'".into(),
        );
    }
    let t = |m: &str| m.to_owned();
    match kind {
        "Static" if has_url => rule(
            &["url", "type"],
            t("spec.url must be empty when spec.type is 'Static'"),
        ),
        "ExternalArtifact" if has_url => rule(
            &["url", "type"],
            t("spec.url must be empty when spec.type is 'ExternalArtifact'"),
        ),
        "Static" | "ExternalArtifact" => {}
        _ if !has_url => rule(
            &["url", "type"],
            t("spec.url must not be empty when spec.type is not 'Static' or 'ExternalArtifact'"),
        ),
        _ => {}
    }
    if has_url {
        if git && !starts(url, "http") {
            rule(
                &["url", "type"],
                t(
                    "spec.url must start with 'http://' or 'https://' when spec.type is a Git provider",
                ),
            );
        }
        if azure && !starts(url, "http://") && !starts(url, "https://") {
            rule(
                &["url", "type"],
                t(
                    "spec.url must start with 'http://' or 'https://' when spec.type is an AzureDevOps provider",
                ),
            );
        }
        if aws && !starts(url, "https://") {
            rule(
                &["url", "type"],
                t("spec.url must start with 'https://' when spec.type is a AWSCodeCommit provider"),
            );
        }
        if oci && !starts(url, "oci") {
            rule(
                &["url", "type"],
                t("spec.url must start with 'oci://' when spec.type is an OCI provider"),
            );
        }
        if oci
            && let Some(rest) = url.and_then(|u| u.strip_prefix("oci://"))
            && !rest.contains('/')
        {
            rule(
                &["url", "type"],
                t(
                    "spec.url must include the repository path after the registry host when spec.type is an OCI provider",
                ),
            );
        }
        if kind == "ExternalService" && !starts(url, "http") {
            rule(
                &["url", "type"],
                t(
                    "spec.url must start with 'http://' or 'https://' when spec.type is 'ExternalService'",
                ),
            );
        }
    }
    let insecure = spec.insecure == Some(true);
    if insecure && kind != "ExternalService" && kind != "OCIArtifactTag" {
        rule(
            &["insecure", "type"],
            t(
                "spec.insecure can only be set when spec.type is 'ExternalService' or 'OCIArtifactTag'",
            ),
        );
    }
    if kind == "ExternalService" && starts(url, "http://") && !insecure {
        rule(
            &["url", "insecure"],
            t("spec.url must use 'https://' unless spec.insecure is true"),
        );
    }
    if spec.service_account_name.is_some() && !(azure || aws || oci || kind == "ExternalArtifact") {
        rule(
            &["serviceAccountName", "type"],
            t(
                "cannot specify spec.serviceAccountName when spec.type is not one of AzureDevOps*, AWSCodeCommit*, *ArtifactTag or ExternalArtifact",
            ),
        );
    }
    if spec.cert_secret_ref.is_some()
        && (kind == "Static" || kind == "ExternalArtifact" || azure || aws || cloud_oci)
    {
        rule(
            &["certSecretRef", "type"],
            t(
                "cannot specify spec.certSecretRef when spec.type is one of Static, ExternalArtifact, AzureDevOps*, AWSCodeCommit*, ACRArtifactTag, ECRArtifactTag or GARArtifactTag",
            ),
        );
    }
    if spec.secret_ref.is_some()
        && (kind == "Static" || kind == "ExternalArtifact" || aws || cloud_oci)
    {
        rule(
            &["secretRef", "type"],
            t(
                "cannot specify spec.secretRef when spec.type is one of Static, ExternalArtifact, AWSCodeCommit*, ACRArtifactTag, ECRArtifactTag or GARArtifactTag",
            ),
        );
    }
    let selectors = spec.selectors.as_deref();
    if kind == "ExternalArtifact" && selectors.is_none_or(<[_]>::is_empty) {
        rule(
            &["selectors", "type"],
            t("spec.selectors must be set when spec.type is 'ExternalArtifact'"),
        );
    }
    if kind != "ExternalArtifact" && selectors.is_some() {
        rule(
            &["selectors", "type"],
            t("spec.selectors must not be set when spec.type is not 'ExternalArtifact'"),
        );
    }
    for (i, selector) in selectors.unwrap_or_default().iter().enumerate() {
        if selector.name.is_some()
            && (selector.match_labels.is_some() || selector.match_expressions.is_some())
        {
            rule(
                &[&format!("selectors[{i}].name")],
                t("name is mutually exclusive with matchLabels and matchExpressions"),
            );
        }
        for (j, e) in selector
            .match_expressions
            .as_deref()
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let field = format!("selectors[{i}].matchExpressions[{j}].operator");
            let values = e.values.as_deref().unwrap_or_default();
            match e.operator.as_str() {
                "In" | "NotIn" if values.is_empty() => rule(
                    &[&field],
                    format!("the {} operator needs values", e.operator),
                ),
                "Exists" | "DoesNotExist" if !values.is_empty() => rule(
                    &[&field],
                    format!("the {} operator takes no values", e.operator),
                ),
                "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
                other => rule(
                    &[&field],
                    format!(
                        "{other:?} is not a label selector operator; use In, NotIn, Exists or DoesNotExist"
                    ),
                ),
            }
        }
    }
    if let Some(limit) = spec.filter.as_ref().and_then(|f| f.limit)
        && limit > MAX_FILTER_LIMIT
    {
        rule(
            &["filter.limit"],
            format!("must be at most {MAX_FILTER_LIMIT}, got {limit}"),
        );
    }
    for (i, schedule) in spec
        .schedule
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        if let Err(message) = check_cron(&schedule.cron) {
            rule(&[&format!("schedule[{i}].cron")], message);
        }
        if let Some(window) = &schedule.window {
            match parse_duration(window) {
                Err(e) => rule(&[&format!("schedule[{i}].window")], format!("{e}")),
                Ok(w) if !w.is_zero() && w < timeout * 2 => rule(
                    &[&format!("schedule[{i}].window")],
                    format!(
                        "a non-zero window ({window}) must always be at least twice the timeout ({}s)",
                        timeout.as_secs()
                    ),
                ),
                Ok(_) => {}
            }
        }
    }
    out
}

/// Checks a cron expression as the operator's parser (robfig/cron with minute, hour, day of
/// month, month, day of week and descriptors) accepts it.
///
/// # Errors
///
/// What is wrong, naming the field.
pub fn check_cron(expression: &str) -> Result<(), String> {
    let text = expression.trim();
    if let Some(descriptor) = text.strip_prefix('@') {
        return match descriptor {
            "yearly" | "annually" | "monthly" | "weekly" | "daily" | "midnight" | "hourly" => {
                Ok(())
            }
            d if d.starts_with("every ") => parse_duration(d.trim_start_matches("every ").trim())
                .map(|_| ())
                .map_err(|e| format!("@every needs a duration: {e}")),
            other => Err(format!("unrecognized descriptor @{other}")),
        };
    }
    let fields: Vec<&str> = text.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields (minute hour day-of-month month day-of-week), found {}: \
             {expression:?}",
            fields.len()
        ));
    }
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    let specs: [(&str, u32, u32, &[&str]); 5] = [
        ("minute", 0, 59, &[]),
        ("hour", 0, 23, &[]),
        ("day of month", 1, 31, &[]),
        ("month", 1, 12, &MONTHS),
        ("day of week", 0, 6, &DAYS),
    ];
    for (field, (name, min, max, names)) in fields.iter().zip(specs) {
        check_cron_field(field, min, max, names)
            .map_err(|e| format!("invalid {name} field {field:?}: {e}"))?;
    }
    Ok(())
}

fn check_cron_field(field: &str, min: u32, max: u32, names: &[&str]) -> Result<(), String> {
    let value = |text: &str, offset: u32| -> Result<u32, String> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
            return Ok(u32::try_from(i).unwrap_or(0) + offset);
        }
        let v: u32 = text
            .parse()
            .map_err(|_| format!("{text:?} is not a number"))?;
        if v < min || v > max {
            return Err(format!("{v} is outside {min}-{max}"));
        }
        Ok(v)
    };
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (part, None),
        };
        if let Some(step) = step {
            let s: u32 = step
                .parse()
                .map_err(|_| format!("step {step:?} is not a number"))?;
            if s == 0 {
                return Err("a step must be positive".to_owned());
            }
        }
        if range == "*" || range == "?" {
            continue;
        }
        let (low, high) = match range.split_once('-') {
            Some((l, h)) => (value(l, min)?, value(h, min)?),
            None => {
                let v = value(range, min)?;
                (v, v)
            }
        };
        if low > high {
            return Err(format!("range {range:?} runs backwards"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn spec(json: Value) -> InputProviderSpec {
        serde_json::from_value(json).unwrap()
    }

    fn problems(json: Value) -> Vec<(Vec<String>, String)> {
        validate(&spec(json), DEFAULT_TIMEOUT)
            .into_iter()
            .map(|v| (v.fields, v.message))
            .collect()
    }

    fn fields(json: Value) -> Vec<String> {
        problems(json)
            .into_iter()
            .flat_map(|(f, _)| f.into_iter().take(1))
            .collect()
    }

    #[test]
    fn valid_specs_of_each_family_pass() {
        let ok = [
            json_spec(r#"{"type": "Static", "defaultValues": {"a": 1}}"#),
            json_spec(
                r#"{"type": "GitHubPullRequest", "url": "https://github.com/o/r", "secretRef": {"name": "gh"}, "filter": {"labels": ["deploy"], "limit": 10}}"#,
            ),
            json_spec(
                r#"{"type": "GitLabEnvironment", "url": "https://gitlab.com/g/p", "certSecretRef": {"name": "ca"}}"#,
            ),
            json_spec(
                r#"{"type": "AzureDevOpsBranch", "url": "https://dev.azure.com/o/p/_git/r", "serviceAccountName": "wi"}"#,
            ),
            json_spec(
                r#"{"type": "AWSCodeCommitTag", "url": "https://git-codecommit.eu-west-1.amazonaws.com/v1/repos/r"}"#,
            ),
            json_spec(
                r#"{"type": "OCIArtifactTag", "url": "oci://ghcr.io/o/app", "insecure": true, "filter": {"semver": ">=1.0"}}"#,
            ),
            json_spec(
                r#"{"type": "GARArtifactTag", "url": "oci://europe-docker.pkg.dev/p/r/app", "serviceAccountName": "wi"}"#,
            ),
            json_spec(
                r#"{"type": "ExternalService", "url": "http://svc.ns/inputs", "insecure": true}"#,
            ),
            json_spec(
                r#"{"type": "ExternalArtifact", "selectors": [{"matchLabels": {"app": "x"}}, {"name": "y", "namespace": "*"}]}"#,
            ),
            json_spec(
                r#"{"type": "Static", "schedule": [{"cron": "*/15 8-18 * JAN-DEC mon-fri", "window": "4m"}, {"cron": "@daily"}]}"#,
            ),
        ];
        for s in ok {
            assert_eq!(validate(&s, DEFAULT_TIMEOUT), vec![], "{s:?}");
        }
    }

    fn json_spec(text: &str) -> InputProviderSpec {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn each_crd_rule_names_its_fields() {
        use serde_json::json;
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (json!({"type": "Nope"}), vec!["type"]),
            (json!({"type": "Static", "url": "https://x"}), vec!["url"]),
            (json!({"type": "GitHubTag"}), vec!["url"]),
            (
                json!({"type": "GitHubTag", "url": "ftp://x"}),
                vec!["url", "url"],
            ),
            (
                json!({"type": "AWSCodeCommitBranch", "url": "http://x/r"}),
                vec!["url"],
            ),
            (
                json!({"type": "ECRArtifactTag", "url": "https://x/r"}),
                vec!["url"],
            ),
            (
                json!({"type": "ACRArtifactTag", "url": "oci://registry.azurecr.io"}),
                vec!["url"],
            ),
            (
                json!({"type": "GiteaTag", "url": "https://x", "insecure": true}),
                vec!["insecure"],
            ),
            (
                json!({"type": "ExternalService", "url": "http://x"}),
                vec!["url"],
            ),
            (
                json!({"type": "GitHubTag", "url": "https://x", "serviceAccountName": "s"}),
                vec!["serviceAccountName"],
            ),
            (
                json!({"type": "Static", "certSecretRef": {"name": "c"}}),
                vec!["certSecretRef"],
            ),
            (
                json!({"type": "ECRArtifactTag", "url": "oci://a/b", "secretRef": {"name": "c"}}),
                vec!["secretRef"],
            ),
            (json!({"type": "ExternalArtifact"}), vec!["selectors"]),
            (
                json!({"type": "Static", "selectors": []}),
                vec!["selectors"],
            ),
            (
                json!({"type": "ExternalArtifact", "selectors": [{"name": "a", "matchLabels": {"x": "y"}}]}),
                vec!["selectors[0].name"],
            ),
            (
                json!({"type": "ExternalArtifact", "selectors": [{"matchExpressions": [{"key": "a", "operator": "In"}, {"key": "b", "operator": "Matches"}]}]}),
                vec![
                    "selectors[0].matchExpressions[0].operator",
                    "selectors[0].matchExpressions[1].operator",
                ],
            ),
            (
                json!({"type": "GitHubBranch", "url": "https://x", "filter": {"limit": 10001}}),
                vec!["filter.limit"],
            ),
            (
                json!({"type": "Static", "schedule": [{"cron": "0 25 * * *"}, {"cron": "* * *"}, {"cron": "0 * * * *", "window": "1m"}, {"cron": "@sometimes"}]}),
                vec![
                    "schedule[0].cron",
                    "schedule[1].cron",
                    "schedule[2].window",
                    "schedule[3].cron",
                ],
            ),
        ];
        for (json, want) in cases {
            assert_eq!(fields(json.clone()), want, "{json}");
        }
    }

    #[test]
    fn messages_are_the_apis() {
        assert_eq!(
            problems(serde_json::json!({"type": "Static", "url": "https://x"})),
            vec![(
                vec!["url".to_owned(), "type".to_owned()],
                "spec.url must be empty when spec.type is 'Static'".to_owned()
            )]
        );
        assert_eq!(
            check_cron("0 2 * * 8"),
            Err("invalid day of week field \"8\": 8 is outside 0-6".to_owned())
        );
        assert_eq!(check_cron("@every 1h30m"), Ok(()));
    }

    #[test]
    fn window_rule_follows_the_timeout() {
        let s = spec(
            serde_json::json!({"type": "Static", "schedule": [{"cron": "@hourly", "window": "10m"}]}),
        );
        assert_eq!(validate(&s, Duration::from_secs(120)), vec![]);
        assert_eq!(validate(&s, Duration::from_secs(600)).len(), 1);
    }

    #[test]
    fn objects_round_trip() {
        let json = serde_json::json!({
            "apiVersion": "fluxcd.controlplane.io/v1", "kind": "ResourceSetInputProvider",
            "metadata": {"name": "p", "namespace": "n"},
            "spec": {"type": "Static", "defaultValues": {"a": [1, {"b": true}]}},
            "status": {"exportedInputs": [{"id": "1", "a": 2}], "lastExportedRevision": "sha256:x",
                       "nextSchedule": {"cron": "@daily", "when": "2026-01-01T00:00:00Z"}}
        });
        let object = InputProvider::from_json(json.clone()).unwrap();
        assert_eq!(object.to_json().unwrap(), json);
        assert_eq!(
            object.status.unwrap().exported_inputs.unwrap()[0]["a"],
            serde_json::json!(2)
        );
    }
}
