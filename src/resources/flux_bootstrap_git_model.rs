//! The Terraform face of `flux_bootstrap_git`: the schema (the instance settings come from
//! `flux_instance`'s schema code, the nested `operator` attribute from `flux_operator`'s), the
//! model. The provider's Git settings as this resource needs them are in
//! [`crate::resources::flux_bootstrap_git_config`]; what it renders into the repository and reads
//! back is in [`crate::resources::flux_bootstrap_git_manifest`].
//!
//! Lives in `resources/`: may use `framework`, `flux`, `git` types; does no I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::framework::model::Value;
use crate::framework::schema::{Attribute, Nesting, Schema};
use crate::framework::value::Type;
use crate::resources::common::{Timeouts, deletion_policy_attribute, timeouts_block};
use crate::resources::flux_instance_model::{
    ClusterModel, CommonMetadataModel, DistributionModel, KustomizeModel, ShardingModel,
    StorageModel,
};
use crate::resources::flux_operator_model::{ResourcesModel, TolerationModel};

/// The instance spec attributes `flux_bootstrap_git` shares with `flux_instance` (all but `sync`).
pub const INSTANCE_ATTRIBUTES: [&str; 9] = [
    "distribution",
    "components",
    "cluster",
    "sharding",
    "storage",
    "kustomize",
    "common_metadata",
    "wait",
    "migrate_resources",
];

/// Attributes whose change means a new commit or a cluster change.
pub const INPUT_ATTRIBUTES: [&str; 23] = [
    "url",
    "branch",
    "path",
    "namespace",
    "interval",
    "distribution",
    "components",
    "cluster",
    "sharding",
    "storage",
    "kustomize",
    "common_metadata",
    "wait",
    "migrate_resources",
    "operator",
    "secret_name",
    "manage_secret",
    "commit_message",
    "sync",
    "reconcile_every",
    "reconcile_artifact_every",
    "reconcile_timeout",
    "suspend",
];

/// The FluxInstance `<name>` in `namespace`.
pub fn instance_ref(namespace: &str, name: &str) -> crate::cluster::objects::ObjectRef {
    crate::cluster::objects::ObjectRef::new(
        crate::flux::instance::API_VERSION,
        crate::flux::instance::KIND,
        Some(namespace),
        name,
    )
}

/// The Terraform data of `flux_bootstrap_git`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct BootstrapModel {
    pub id: Value<String>,
    pub url: Value<String>,
    pub branch: Value<String>,
    pub path: Value<String>,
    pub namespace: Value<String>,
    pub interval: Value<String>,
    pub distribution: Value<DistributionModel>,
    pub components: Value<Vec<String>>,
    pub cluster: Value<ClusterModel>,
    pub sharding: Value<ShardingModel>,
    pub storage: Value<StorageModel>,
    pub kustomize: Value<KustomizeModel>,
    pub common_metadata: Value<CommonMetadataModel>,
    pub wait: Value<bool>,
    pub migrate_resources: Value<bool>,
    pub operator: Value<OperatorSettingsModel>,
    pub secret_name: Value<String>,
    pub manage_secret: Value<bool>,
    pub commit_message: Value<String>,
    pub sync: Value<BootstrapSyncModel>,
    pub reconcile_every: Value<String>,
    pub reconcile_artifact_every: Value<String>,
    pub reconcile_timeout: Value<String>,
    pub suspend: Value<bool>,
    pub deletion_policy: Value<String>,
    pub timeouts: Value<Timeouts>,
    pub commit_sha: Value<String>,
    pub files: Value<BTreeMap<String, String>>,
    pub secret_status: Value<String>,
    pub ready: Value<bool>,
    pub flux_version: Value<String>,
}

/// The nested `sync` attribute: what the FluxInstance's sync takes besides the repository.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct BootstrapSyncModel {
    pub name: Value<String>,
    pub provider: Value<String>,
}

impl BootstrapModel {
    /// `sync.provider`, when known.
    pub fn sync_provider(&self) -> Option<&str> {
        self.sync
            .as_known()
            .and_then(|s| s.provider.as_known())
            .map(String::as_str)
    }
}

/// The nested `operator` attribute: `flux_operator`'s settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct OperatorSettingsModel {
    pub version: Value<String>,
    pub manifests_url: Value<String>,
    pub manifests: Value<String>,
    pub env: Value<BTreeMap<String, String>>,
    pub resources: Value<ResourcesModel>,
    pub tolerations: Value<Vec<TolerationModel>>,
    pub node_selector: Value<BTreeMap<String, String>>,
    pub image_repository: Value<String>,
    pub replicas: Value<i64>,
    pub affinity: Value<crate::resources::affinity::AffinityModel>,
    pub priority_class_name: Value<String>,
    pub image_pull_secrets: Value<Vec<String>>,
    pub log_level: Value<String>,
    pub concurrent: Value<i64>,
    pub web_ui: Value<bool>,
}

/// The default commit message.
pub const DEFAULT_COMMIT_MESSAGE: &str = "Update Flux (terraform-provider-flux)";

/// The `flux_bootstrap_git` schema.
pub fn schema() -> Schema {
    let mut attributes = vec![
        Attribute::string("id").computed().description("The namespace."),
        Attribute::string("url").required().description(
            "URL of the Git repository (`https://...`, `ssh://git@host/...`). Credentials come \
             from the provider's `git` settings, so they never enter state.",
        ),
        Attribute::string("branch").default_value("main").description(
            "Branch to commit to and sync from. Default `main`; created in an empty repository.",
        ),
        Attribute::string("path").required().description(
            "The cluster's directory in the repository, e.g. `clusters/production`. The \
             FluxInstance manifest is committed under `<path>/flux-system/`, and Flux syncs the \
             whole directory. Must stay inside the repository (no `..`).",
        ),
        Attribute::string("namespace").default_value("flux-system").description(
            "Namespace of the Flux Operator and the FluxInstance. Default `flux-system`. Import \
             with this namespace.",
        ),
        Attribute::string("interval").default_value("1m").description(
            "How often Flux fetches the repository (the FluxInstance's `sync.interval`). Default `1m`.",
        ),
    ];
    attributes.extend(
        crate::resources::flux_instance_model::spec_attributes()
            .into_iter()
            .filter(|a| a.name != "sync"),
    );
    attributes.extend([
        Attribute::nested(
            "operator",
            Nesting::Single,
            crate::resources::flux_operator_model::settings_attributes(),
        )
        .optional()
        .description(
            "How to install the Flux Operator when it is not running in `namespace` (the \
             settings of `flux_operator`). Unset: the operator must already be installed.",
        ),
        Attribute::string("secret_name")
            .default_value("flux-system")
            .description("The Secret Flux pulls the repository with. Default `flux-system`."),
        Attribute::bool("manage_secret")
            .default_value(true)
            .description(
                "Write `secret_name` from the provider's git credentials (`username`/`password`, \
             `bearerToken` or `identity`/`known_hosts`, and `ca.crt`). `false`: use an existing \
             Secret. Default `true`.",
            ),
        Attribute::string("commit_message")
            .default_value(DEFAULT_COMMIT_MESSAGE)
            .description(
                "Message of the commits this resource makes (the provider's \
             `git.commit_message_appendix` is appended).",
            ),
        Attribute::nested(
            "sync",
            Nesting::Single,
            vec![
                Attribute::string("name").optional().description(
                    "Name of the GitRepository and Kustomization Flux syncs the repository \
                     with (the FluxInstance's `sync.name`; operator default: the namespace, \
                     as `flux bootstrap` names them). Immutable: changing it is refused at plan.",
                ),
                Attribute::string("provider").optional().description(
                    "How Flux authenticates to the repository (the FluxInstance's \
                     `sync.provider`): `generic` (default: the sync Secret's \
                     `username`/`password`, `bearerToken` or SSH key, written from the \
                     provider's git credentials); `github`: as a GitHub App — the app's ID, \
                     installation and private key from the provider's `git.github_app` are \
                     written to the sync Secret under the keys Flux reads \
                     (`githubAppID`, `githubAppInstallationID`/`githubAppInstallationOwner`, \
                     `githubAppPrivateKey`, `githubAppBaseURL`); `azure` or `aws`: workload \
                     identity of source-controller's service account (no Secret is written; \
                     annotate the service account through `kustomize.patches`; `aws` needs \
                     Flux 2.9 or later). `gcp` is only for OCI and Bucket sources.",
                ),
            ],
        )
        .optional()
        .description("Settings of the FluxInstance's sync beyond the repository, branch and path."),
    ]);
    let instance_schema = crate::resources::flux_instance_model::schema();
    for name in [
        "reconcile_every",
        "reconcile_artifact_every",
        "reconcile_timeout",
        "suspend",
    ] {
        if let Some(attribute) = instance_schema.block.attribute(name) {
            let mut attribute = attribute.clone();
            if name == "suspend" {
                attribute = attribute.description(
                    "Suspend the operator's reconciliation of the FluxInstance \
                     (`fluxcd.controlplane.io/reconcile: disabled`, committed with the manifest \
                     and set in the cluster). Apply then waits neither for readiness nor for \
                     the sync, and `ready` is true while the cluster holds the committed spec. \
                     Default `false`.",
                );
            }
            attributes.push(attribute);
        }
    }
    attributes.extend([
        deletion_policy_attribute(
            "Flux is uninstalled from the cluster (the Flux Operator is kept), then the \
             committed files are removed from Git in one commit.",
        )
        .description(
            "What destroying this resource does. `uninstall` (default): the FluxInstance is \
             deleted, so the operator uninstalls Flux (the operator itself, the namespace and \
             the workloads Flux deployed are kept), then the committed files are removed from \
             Git in one commit. `orphan`: nothing changes in the cluster or the repository.",
        ),
        Attribute::string("commit_sha")
            .computed()
            .description("The last commit this resource made to the owned files."),
        Attribute::new("files", Type::map(Type::String))
            .computed()
            .description(
                "The files this resource owns in the repository, path → `sha256:` digest of the \
             content. A change means a file was edited outside Terraform.",
            ),
        Attribute::string("secret_status").computed().description(
            "Whether the sync Secret holds what the provider's git credentials would write, \
             compared at refresh: `Current`, `Outdated` (credentials rotated, or the Secret \
             changed in the cluster), `Missing`, or `Unmanaged` (`manage_secret = false`, or no \
             credentials). A plan from `Outdated` or `Missing` to `Current` means apply \
             rewrites the Secret. Nothing derived from the credentials is kept in state (no \
             digest), so a state file cannot be used to test guessed passwords.",
        ),
        Attribute::bool("ready")
            .computed()
            .description("Whether the FluxInstance is Ready and Flux applied the last commit (with `suspend = true`: whether the cluster holds the committed spec)."),
        Attribute::string("flux_version")
            .computed()
            .description("The Flux version the operator resolved and applied."),
    ]);
    let mut schema = Schema::new(
        SCHEMA_VERSION,
        "Bootstraps Flux from a Git repository through the Flux Operator: the FluxInstance \
         manifest is committed under `<path>/flux-system/`, the operator is installed if \
         missing, the sync Secret is written from the provider's git credentials, and the \
         FluxInstance is applied with its `sync` pointing at the same repository, branch and \
         path, so Flux manages itself from Git. Plans show edits made to the committed manifest \
         outside Terraform and credential rotations. Import with the namespace; a cluster \
         bootstrapped with `flux bootstrap` is migrated to the operator in place on the next apply.",
        attributes,
    );
    schema.block = schema.block.with_block(timeouts_block("10m"));
    schema
        .block
        .description
        .push_str(&crate::resources::common::failed_wait_doc(
            "the FluxInstance to be Ready and Flux to apply the pushed commit",
            "ready == true",
            "with `deletion_policy = \"uninstall\"` uninstalls Flux, removes the manifests from \
             Git and commits them again",
        ));
    schema.block.description.push_str(
        "\n\n**An existing object.** Bootstrapping a namespace where Flux already runs is not \
         refused: the operator is installed only if it is not running, and the FluxInstance is \
         applied over the existing one (its `spec` taken over from other field managers). To \
         manage an existing installation (bootstrapped by this resource in another state, or by \
         `flux bootstrap`) import it instead: `terraform import <address> <namespace>`; a \
         classic `flux bootstrap` layout is migrated to the operator on the next apply.\
         \n\n**Drift made by other tools.** The plan reads the committed files, the sync \
         Secret and the FluxInstance back: a push that changed the committed manifests, a \
         Secret that no longer matches the provider's credentials, or a FluxInstance edited in \
         the cluster (e.g. with `kubectl`) so that it no longer runs the committed spec shows \
         as a change (`files`, `secret_status`, or `ready` back to `true`). Apply commits and \
         writes them again; the FluxInstance's `spec` and reconcile annotations are first \
         taken over from other field managers, so one apply also removes fields `kubectl` \
         added, and the next plan is empty.\
         \n\n**Checked at plan.** Before anything is written, the plan checks the FluxInstance \
         it would commit as `flux_instance` does: against the CRD's rules and, when the cluster \
         is reachable, with a server-side dry-run; a minor downgrade of the running Flux, a \
         `sync.name` change or a namespace other than the running operator's fail the plan. \
         Dropping kustomize patches the installation applies today (after importing a classic \
         bootstrap, for example) warns, naming each patch and how to keep it. When the \
         bootstrap would install the operator (on create, or when `operator` changes) into a \
         namespace that runs one installed with Helm or under another Deployment name, the plan \
         fails, naming that Deployment and what to do (an operator installed by \
         `flux-operator install` is adopted, keeping its selector).",
    );
    schema
}

/// The schema version: 1 replaced the unsalted `credentials_hash` of version 0 with
/// `secret_status`.
pub const SCHEMA_VERSION: i64 = 1;
