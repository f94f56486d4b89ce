//! The Terraform face of a ResourceSetInputProvider: the `flux_resource_set_input_provider`
//! schema (descriptions are the documentation), its model, and the pure conversions between the
//! model and the object: every spec field typed (snake_case forms of the API names, converted
//! generically), `default_values` and the exported inputs as `dynamic` values compared
//! semantically, the reconcile annotations as typed attributes, and the operator's status as
//! computed attributes.
//!
//! Lives in `resources/`: may use `framework`, `flux` and `resources::common`; does no I/O.

use serde::{Deserialize, Serialize};

use crate::flux::input_provider::{
    DEFAULT_FILTER_LIMIT, DEFAULT_TIME_ZONE, DEFAULT_WINDOW, ProviderType,
};
use crate::framework::model::Value;
use crate::framework::schema::{Attribute, Nesting, Schema};
use crate::framework::value::{RawValue, Type};
use crate::resources::common::{Timeouts, timeouts_block};
use crate::resources::flux_resource_set::model::Dynamic;

/// The typed spec attributes, converted to and from API JSON by name.
pub const TYPED_SPEC_ATTRIBUTES: [&str; 10] = [
    "type",
    "url",
    "service_account_name",
    "secret_ref",
    "cert_secret_ref",
    "insecure",
    "filter",
    "skip",
    "schedule",
    "selectors",
];

/// The attributes written to the object (spec and annotations): a change means an apply.
pub const DESIRED_ATTRIBUTES: [&str; 15] = [
    "type",
    "url",
    "service_account_name",
    "secret_ref",
    "cert_secret_ref",
    "insecure",
    "default_values",
    "filter",
    "skip",
    "schedule",
    "selectors",
    "reconcile_every",
    "reconcile_timeout",
    "suspend",
    "namespace",
];

/// `deletion_policy` values.
pub const DELETION_POLICIES: [&str; 2] = ["delete", "orphan"];

/// The Terraform data of `flux_resource_set_input_provider`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct InputProviderModel {
    pub id: Value<String>,
    pub name: Value<String>,
    pub namespace: Value<String>,
    #[serde(rename = "type")]
    pub provider_type: Value<String>,
    pub url: Value<String>,
    pub service_account_name: Value<String>,
    pub secret_ref: Value<NameRef>,
    pub cert_secret_ref: Value<NameRef>,
    pub insecure: Value<bool>,
    pub default_values: Value<Dynamic>,
    pub filter: Value<FilterModel>,
    pub skip: Value<SkipModel>,
    pub schedule: Value<Vec<ScheduleModel>>,
    pub selectors: Value<Vec<SelectorModel>>,
    pub reconcile_every: Value<String>,
    pub reconcile_timeout: Value<String>,
    pub suspend: Value<bool>,
    pub deletion_policy: Value<String>,
    pub timeouts: Value<Timeouts>,
    pub ready: Value<bool>,
    pub exported_inputs: Value<Dynamic>,
    pub last_exported_revision: Value<String>,
    pub next_schedule: Value<NextScheduleModel>,
}

/// `secret_ref`, `cert_secret_ref`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct NameRef {
    pub name: Value<String>,
}

/// `filter`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct FilterModel {
    pub include_branch: Value<String>,
    pub exclude_branch: Value<String>,
    pub include_tag: Value<String>,
    pub exclude_tag: Value<String>,
    pub include_environment: Value<String>,
    pub exclude_environment: Value<String>,
    pub labels: Value<Vec<String>>,
    pub limit: Value<i64>,
    pub semver: Value<String>,
}

/// `skip`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct SkipModel {
    pub labels: Value<Vec<String>>,
}

/// One of `schedule`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct ScheduleModel {
    pub cron: Value<String>,
    pub time_zone: Value<String>,
    pub window: Value<String>,
}

/// One of `selectors`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct SelectorModel {
    pub name: Value<String>,
    pub namespace: Value<String>,
    pub match_labels: Value<std::collections::BTreeMap<String, String>>,
    pub match_expressions: Value<Vec<ExpressionModel>>,
}

/// `selectors[*].match_expressions[*]`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct ExpressionModel {
    pub key: Value<String>,
    pub operator: Value<String>,
    pub values: Value<Vec<String>>,
}

/// The computed `next_schedule`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct NextScheduleModel {
    pub cron: Value<String>,
    pub time_zone: Value<String>,
    pub window: Value<String>,
    pub when: Value<String>,
}

fn s(name: &str, description: &str) -> Attribute {
    Attribute::string(name).optional().description(description)
}

fn secret(name: &str, description: &str) -> Attribute {
    Attribute::nested(
        name,
        Nesting::Single,
        vec![
            Attribute::string("name")
                .required()
                .description("Name of the Secret, in the provider's namespace."),
        ],
    )
    .optional()
    .description(description)
}

/// The `flux_resource_set_input_provider` schema.
pub fn schema() -> Schema {
    let types = ProviderType::ALL
        .iter()
        .map(|t| format!("`{t}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let attributes = vec![
        Attribute::string("id").computed().description("`<namespace>/<name>`."),
        Attribute::string("name").required().description("Name of the ResourceSetInputProvider; `flux_resource_set.inputs_from` refers to it by this name. Changing it replaces the provider."),
        Attribute::string("namespace").required().description("Namespace of the provider: a ResourceSet takes inputs only from providers in its own namespace. Changing it replaces the provider."),
        Attribute::string("type").required().description(format!("Where the input sets come from: {types}. `Static` exports `default_values` as one input set; the Git types export one input set per branch, tag, pull or merge request or environment; the `*ArtifactTag` types one per OCI tag; `ExternalService` what a JSON API returns; `ExternalArtifact` one per matching Flux `ExternalArtifact`.")),
        s("url", "Address of the API: the repository's `https://` URL for the Git types (`http(s)://` for Azure DevOps, `https://` for AWS CodeCommit), `oci://<registry>/<repository>` for the `*ArtifactTag` types, the endpoint for `ExternalService` (`https://`, or `http://` with `insecure = true`). Must be unset for `Static` and `ExternalArtifact`, required otherwise."),
        s("service_account_name", "Kubernetes ServiceAccount (in the provider's namespace) used for cloud workload identity. Only for the `AzureDevOps*`, `AWSCodeCommit*`, `*ArtifactTag` and `ExternalArtifact` types."),
        secret("secret_ref", "Secret with the credentials: `username`/`password` (a read-only token) for the Git types, an image pull Secret (`.dockerconfigjson`) for `OCIArtifactTag`, `token` or `username`/`password` for `ExternalService`. Not for `Static`, `ExternalArtifact`, `AWSCodeCommit*`, `ACRArtifactTag`, `ECRArtifactTag` or `GARArtifactTag`."),
        secret("cert_secret_ref", "Secret with a CA certificate (`ca.crt`) for a private certificate authority and/or a client certificate (`tls.crt`, `tls.key`) for mTLS. Only for the Git (but not `AzureDevOps*`/`AWSCodeCommit*`), `OCIArtifactTag` and `ExternalService` types."),
        Attribute::bool("insecure").optional().description("Allow plain HTTP. Only for `ExternalService` and `OCIArtifactTag`."),
        Attribute::new("default_values", Type::Dynamic).optional().description("Values added to every input set that lacks them, as an HCL object of arbitrary values (`{ env = \"dev\", replicas = 2 }`) or `yamldecode(...)`. For `Static`, the one input set. Compared semantically: key order and spelling are not a change."),
        Attribute::nested("filter", Nesting::Single, vec![
            s("include_branch", "Regular expression the branches must match."),
            s("exclude_branch", "Regular expression of branches to leave out."),
            s("include_tag", "Regular expression the tags must match."),
            s("exclude_tag", "Regular expression of tags to leave out."),
            s("include_environment", "Regular expression the GitLab environments must match."),
            s("exclude_environment", "Regular expression of GitLab environments to leave out."),
            Attribute::string_list("labels").optional().description("Labels the pull or merge requests must carry."),
            Attribute::number("limit").default_value(RawValue::from(DEFAULT_FILTER_LIMIT)).description("Maximum number of input sets, at most 10000. Default `100` (the CRD's)."),
            s("semver", "A semantic version range the tags must satisfy (e.g. `>=1.0.0`); matching tags are sorted by version, newest first."),
        ]).optional().description("Which of the provider's answers become input sets."),
        Attribute::nested("skip", Nesting::Single, vec![
            Attribute::string_list("labels").optional().description("Keep the previous input sets while a pull or merge request carries one of these labels (or, written `!label`, lacks it)."),
        ]).optional().description("When to keep the previous answer instead of a new one."),
        Attribute::nested("schedule", Nesting::List, vec![
            Attribute::string("cron").required().description("Cron expression: five fields (minute hour day-of-month month day-of-week, names such as `mon-fri` allowed) or a descriptor (`@hourly`, `@daily`, `@every 2h`)."),
            Attribute::string("time_zone").default_value(DEFAULT_TIME_ZONE).description("IANA time zone of `cron`. Default `UTC` (the CRD's)."),
            Attribute::string("window").default_value(DEFAULT_WINDOW).description("How long after each trigger the provider may run, a Go duration. `0s` (default, the CRD's): no window, the schedule only adds runs. A non-zero window must be at least twice the timeout (`reconcile_timeout`, operator default 2m)."),
        ]).optional().description("When the provider may run: outside every window it keeps its last input sets."),
        Attribute::nested("selectors", Nesting::List, vec![
            s("name", "One ExternalArtifact by name; excludes `match_labels` and `match_expressions`."),
            s("namespace", "Namespace to look in: the provider's when unset, `*` for every namespace."),
            Attribute::string_map("match_labels").optional().description("Labels the ExternalArtifacts must carry."),
            Attribute::nested("match_expressions", Nesting::List, vec![
                Attribute::string("key").required().description("Label key."),
                Attribute::string("operator").required().description("`In`, `NotIn`, `Exists` or `DoesNotExist`."),
                Attribute::string_list("values").optional().description("Values for `In` and `NotIn`."),
            ]).optional().description("Label requirements."),
        ]).optional().description("Which Flux `ExternalArtifact`s to export. Required for `ExternalArtifact`, not allowed otherwise."),
        s("reconcile_every", "How often the operator asks the provider again (`fluxcd.controlplane.io/reconcileEvery`), a Go duration; operator default `10m`."),
        s("reconcile_timeout", "How long one call to the provider may take (`fluxcd.controlplane.io/reconcileTimeout`); operator default `2m`."),
        Attribute::bool("suspend").default_value(false).description("Suspend the provider (`fluxcd.controlplane.io/reconcile: disabled`): it keeps its last input sets. Apply then does not wait for new ones. Default `false`."),
        Attribute::string("deletion_policy").default_value("delete").description("What destroying this resource does. `delete` (default): the provider is deleted; a ResourceSet that names it in `inputs_from` stalls, one that selects providers by label re-renders without its input sets (their objects are garbage collected). `orphan`: the provider is left in the cluster as it is, still exporting its input sets."),
        Attribute::bool("ready").computed().description("Whether the operator reports the provider Ready for its current generation (its input sets are exported)."),
        Attribute::new("exported_inputs", Type::Dynamic).computed().description("The input sets the provider exports, as the operator wrote them (`status.exportedInputs`): a list of objects, each with its `id` (for `Static`, the Adler-32 checksum of the object's UID). Read them with `jsonencode` or index them directly."),
        Attribute::string("last_exported_revision").computed().description("Digest of the exported input sets (`status.lastExportedRevision`); ResourceSets re-render when it changes."),
        Attribute::nested("next_schedule", Nesting::Single, vec![
            Attribute::string("cron").computed().description("The schedule's cron expression."),
            Attribute::string("time_zone").computed().description("The schedule's time zone."),
            Attribute::string("window").computed().description("The schedule's window."),
            Attribute::string("when").computed().description("When it next lets the provider run (RFC 3339)."),
        ]).computed().description("The next scheduled run, when `schedule` is set and the provider is outside its window (`status.nextSchedule`)."),
    ];
    let mut schema = Schema::new(
        0,
        "Manages a Flux Operator `ResourceSetInputProvider`: a source of input sets for \
         `flux_resource_set.inputs_from` (static values, Git branches, tags, pull or merge \
         requests, OCI tags, an external service or Flux `ExternalArtifact`s). Plans check the \
         CRD's rules (which fields each `type` allows) before anything is sent; apply waits \
         until the operator has exported the input sets, which `exported_inputs` then shows. \
         A `flux_resource_set` that names this provider's `name` in `inputs_from` is applied \
         after it by Terraform and renders its objects from these input sets in the same apply. \
         Requires the Flux Operator (see `flux_operator`). Import with `<namespace>/<name>`.",
        attributes,
    );
    schema.block = schema.block.with_block(timeouts_block("5m"));
    schema
        .block
        .description
        .push_str(&crate::resources::common::failed_wait_doc(
            "the ResourceSetInputProvider to be Ready",
            "ready == true",
            "deletes it, so that the ResourceSets reading it lose their inputs and \
             garbage-collect what they generated from them",
        ));
    schema
        .block
        .description
        .push_str(&crate::resources::common::existing_object_doc(
            "ResourceSetInputProvider",
            "<namespace>/<name>",
        ));
    schema
        .block
        .description
        .push_str(&crate::resources::common::reconciled_drift_doc(
            "ResourceSetInputProvider",
        ));
    schema
}
