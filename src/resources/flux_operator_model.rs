//! The Terraform face of the Flux Operator install: the `flux_operator` schema (with the
//! settings shared with `flux_bootstrap_git`), its model, and the conversion of the settings
//! into [`OperatorSettings`].
//!
//! Lives in `resources/`: may use `framework`, `flux`; does no I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::flux::operator::OperatorSettings;
use crate::flux::operator_chart::{self, ChartSettings, LiveChartSettings};
use crate::framework::diagnostics::Diagnostics;
use crate::framework::model::{Value, to_raw};
use crate::framework::path::AttrPath;
use crate::framework::schema::{Attribute, Nesting, Schema};
use crate::framework::value::Type;
use crate::resources::affinity::{self, AffinityModel};
use crate::resources::common::{Timeouts, timeouts_block, value_to_api_json};

/// The Terraform data of `flux_operator`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct OperatorModel {
    pub id: Value<String>,
    pub version: Value<String>,
    pub manifests_url: Value<String>,
    pub manifests: Value<String>,
    pub namespace: Value<String>,
    pub env: Value<BTreeMap<String, String>>,
    pub resources: Value<ResourcesModel>,
    pub tolerations: Value<Vec<TolerationModel>>,
    pub node_selector: Value<BTreeMap<String, String>>,
    pub image_repository: Value<String>,
    pub replicas: Value<i64>,
    pub affinity: Value<AffinityModel>,
    pub priority_class_name: Value<String>,
    pub image_pull_secrets: Value<Vec<String>>,
    pub log_level: Value<String>,
    pub concurrent: Value<i64>,
    pub web_ui: Value<bool>,
    pub delete_crds: Value<bool>,
    pub timeouts: Value<Timeouts>,
    pub operator_version: Value<String>,
    pub installation_status: Value<String>,
}

/// `resources`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct ResourcesModel {
    pub limits: Value<BTreeMap<String, String>>,
    pub requests: Value<BTreeMap<String, String>>,
}

/// One of `tolerations`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
#[allow(missing_docs)]
pub struct TolerationModel {
    pub key: Value<String>,
    pub operator: Value<String>,
    pub value: Value<String>,
    pub effect: Value<String>,
    pub toleration_seconds: Value<i64>,
}

fn s(name: &str, description: &str) -> Attribute {
    Attribute::string(name).optional().description(description)
}

/// The operator settings (everything but the namespace and what `flux_operator` adds around
/// them), shared with `flux_bootstrap_git`'s nested `operator` attribute.
pub(crate) fn settings_attributes() -> Vec<Attribute> {
    let map = |name: &str, d: &str| {
        Attribute::new(name, Type::map(Type::String))
            .optional()
            .description(d)
    };
    vec![
        s(
            "version",
            "Operator release to install, e.g. `v0.58.1`: the release's `install.yaml` is downloaded from GitHub at apply. Exactly one of `version`, `manifests_url` and `manifests` must be set.",
        ),
        s(
            "manifests_url",
            "URL of an operator `install.yaml` (a mirror, or the `flux-operator/install.yaml` of a copied release).",
        ),
        s(
            "manifests",
            "The operator's install manifests as YAML, e.g. `file(\"install.yaml\")`, for air-gapped installs.",
        ),
        map(
            "env",
            "Extra environment variables of the operator, e.g. `DEFAULT_SERVICE_ACCOUNT` for multi-tenancy or `REPORTING_INTERVAL`.",
        ),
        Attribute::nested(
            "resources",
            Nesting::Single,
            vec![
                map(
                    "limits",
                    "Resource limits, e.g. `{ cpu = \"2\", memory = \"1Gi\" }`.",
                ),
                map(
                    "requests",
                    "Resource requests, e.g. `{ cpu = \"100m\", memory = \"64Mi\" }`.",
                ),
            ],
        )
        .optional()
        .description(
            "Resource requests and limits of the operator container, replacing the manifests'.",
        ),
        Attribute::nested(
            "tolerations",
            Nesting::List,
            vec![
                s("key", "Taint key."),
                s("operator", "`Exists` or `Equal`."),
                s("value", "Taint value."),
                s("effect", "`NoSchedule`, `PreferNoSchedule` or `NoExecute`."),
                Attribute::number("toleration_seconds")
                    .optional()
                    .description("How long a `NoExecute` taint is tolerated."),
            ],
        )
        .optional()
        .description("Pod tolerations of the operator, replacing the manifests'."),
        map(
            "node_selector",
            "Node selector of the operator pod, replacing the manifests'.",
        ),
        s(
            "image_repository",
            "Image repository of the operator (a mirror); the manifests' tag or digest is kept.",
        ),
        Attribute::number("replicas").optional().description(
            "Replicas of the operator Deployment (the operator elects a leader; more replicas \
             are warm standbys). Unset: the manifests' (1).",
        ),
        affinity::attribute(
            "Pod affinity of the operator, replacing the manifests' (a required Linux node \
             affinity).",
        ),
        s(
            "priority_class_name",
            "Priority class of the operator pod, e.g. `system-cluster-critical` (the chart's \
             recommendation).",
        ),
        Attribute::string_list("image_pull_secrets")
            .optional()
            .description(
                "Names of `kubernetes.io/dockerconfigjson` Secrets in the operator's namespace to \
             pull its image with (a private mirror).",
            ),
        s(
            "log_level",
            "The operator's `--log-level`: `trace`, `debug`, `info` or `error`. Unset: `info`.",
        ),
        Attribute::number("concurrent").optional().description(
            "The operator's `--concurrent`: how many objects of a kind it reconciles at once. \
             Unset: 10.",
        ),
        Attribute::bool("web_ui").optional().description(
            "Whether the operator serves the Flux Status web UI on port 9080 (the chart's \
             `web.enabled`). `false` sets `--web-server-port=0` and removes the `http-web` \
             ports from the Deployment and Service. Unset: the manifests' (on).",
        ),
    ]
}

/// The chart settings of the model (apply sees only known values).
fn chart_settings(model: &OperatorModel) -> Result<ChartSettings, Diagnostics> {
    Ok(ChartSettings {
        replicas: model.replicas.as_known().copied(),
        affinity: match model.affinity.as_known() {
            Some(a) => Some(affinity::to_api(a, AttrPath::attr("affinity"))?),
            None => None,
        },
        priority_class_name: model.priority_class_name.as_known().cloned(),
        image_pull_secrets: model.image_pull_secrets.as_known().cloned(),
        log_level: model.log_level.as_known().cloned(),
        concurrent: model.concurrent.as_known().copied(),
        web_ui: model.web_ui.as_known().copied(),
    })
}

/// Overwrites the chart settings `model` sets with what the live Deployment has (so a change
/// made outside Terraform is a diff of that setting); with `all`, after an import, also those it
/// leaves unset where the live value is not the manifests' default (the affinity is then left
/// alone: the manifests' own cannot be told from a configured one).
pub(crate) fn read_chart_settings(model: &mut OperatorModel, deployment: &Json, all: bool) {
    let live: LiveChartSettings =
        operator_chart::read(deployment, crate::flux::operator::MANAGER_CONTAINER);
    let refresh = |set: bool, differs: bool| set || (all && differs);
    if refresh(model.replicas.is_known(), live.replicas != 1) {
        model.replicas = Value::Known(live.replicas);
    }
    if model.affinity.is_known() {
        model.affinity = live
            .affinity
            .as_ref()
            .and_then(affinity::from_api)
            .map_or(Value::Null, Value::Known);
    }
    if refresh(
        model.priority_class_name.is_known(),
        !live.priority_class_name.is_empty(),
    ) {
        model.priority_class_name = Value::Known(live.priority_class_name);
    }
    if refresh(
        model.image_pull_secrets.is_known(),
        !live.image_pull_secrets.is_empty(),
    ) {
        model.image_pull_secrets = Value::Known(live.image_pull_secrets);
    }
    if refresh(
        model.log_level.is_known(),
        live.log_level != operator_chart::DEFAULT_LOG_LEVEL,
    ) {
        model.log_level = Value::Known(live.log_level);
    }
    if refresh(
        model.concurrent.is_known(),
        live.concurrent != operator_chart::DEFAULT_CONCURRENT,
    ) {
        model.concurrent = Value::Known(live.concurrent);
    }
    if refresh(model.web_ui.is_known(), !live.web_ui) {
        model.web_ui = Value::Known(live.web_ui);
    }
}

/// The `flux_operator` schema.
pub fn schema() -> Schema {
    let mut attributes = vec![
        Attribute::string("id")
            .computed()
            .description("The namespace."),
    ];
    let mut settings = settings_attributes();
    let rest = settings.split_off(3);
    attributes.extend(settings);
    attributes.push(Attribute::string("namespace").default_value("flux-system").description("Namespace of the operator (its `RUNTIME_NAMESPACE`); the FluxInstance must live here. Default `flux-system`. Changing it replaces the operator."));
    attributes.extend(rest);
    attributes.extend([
        Attribute::bool("delete_crds").default_value(false).description("Delete the operator's CRDs on destroy. **This deletes every FluxInstance and ResourceSet in the cluster** (and with a FluxInstance, Flux). Default `false`: destroy keeps the CRDs and the namespace."),
        Attribute::string("operator_version").computed().description("The operator version installed (the image tag)."),
        Attribute::string("installation_status").computed().description("`Healthy`, or which operator objects are missing or were changed outside Terraform; a change of this value in a plan means apply re-applies them."),
    ]);
    let mut schema = Schema::new(
        0,
        "Installs and upgrades the [Flux Operator](https://fluxoperator.dev) from its release \
         manifests: CRDs (waited for until Established), namespace, RBAC, ServiceAccount, \
         Deployment (waited for until Available) and Service, all written with server-side apply. \
         A version change is an in-place update; objects changed or deleted outside Terraform \
         show as drift and are re-applied. The Helm chart's Deployment settings (`replicas`, \
         `affinity`, `priority_class_name`, `image_pull_secrets`, `log_level`, `concurrent`, \
         `web_ui`) are read back from the live Deployment, so a change made with `kubectl` shows \
         as a diff of that setting. Import with the namespace: it reads those settings (except \
         the affinity, which cannot be told from the manifests' own) and the operator version.",
        attributes,
    );
    schema.block = schema.block.with_block(timeouts_block("10m"));
    schema
        .block
        .description
        .push_str(&crate::resources::common::failed_wait_doc(
            "the CRDs to be Established and the Deployment to be Available",
            "installation_status == \"Healthy\"",
            "deletes the operator (and, with `delete_crds`, every Flux object)",
        ));
    schema.block.description.push_str(
        "\n\n**An existing object.** Plan (when the cluster is known) and apply (before its \
         first write) look at the operator Deployments already in the namespace. An operator \
         installed from the release `install.yaml` or with `kubectl` is not refused: the \
         manifests are applied over the existing objects with a forced server-side apply, which \
         takes over their fields, and the Deployment's and Service's `spec` fields that the \
         manifests do not set are removed. One installed with `flux-operator install` \
         (Deployment `flux-operator` whose selector also matches `app.kubernetes.io/instance`) \
         is adopted the same way, keeping its selector (which Kubernetes does not let change) \
         and adding its labels to the pod template. One installed with the Helm chart \
         (Deployment `<release>-flux-operator`, or labelled `app.kubernetes.io/managed-by: \
         Helm`), or any other `app.kubernetes.io/name: flux-operator` Deployment under another \
         name, is refused with an error naming the Deployment and the Helm release, since \
         installing next to it would run a second operator: either keep Helm managing the \
         operator and remove `flux_operator` from the configuration (`flux_instance` works with \
         an operator installed any way), or `helm uninstall <release> -n <namespace>` (the \
         CRDs stay) and apply again. To bring an installation under Terraform as it is, \
         import it first: `terraform import <address> <namespace>`.\
         \n\n**Drift made by other tools.** Objects of the manifests that are deleted or \
         changed outside Terraform show in the plan as `installation_status` (`Drifted: ...`) \
         going back to `Healthy`; the settings set as attributes (`replicas`, `log_level`, \
         ...) show as their own diffs. Apply re-applies the manifests after taking the \
         Deployment's and Service's `spec` over from other field managers, so one apply also \
         removes fields `kubectl` added (a node selector, a priority class), and the next plan \
         is empty.",
    );
    schema
}

pub(crate) fn namespace_of(model: &OperatorModel) -> String {
    model
        .namespace
        .as_known()
        .cloned()
        .unwrap_or_else(|| "flux-system".into())
}

fn decode<T: serde::de::DeserializeOwned>(
    what: &'static str,
    value: Result<crate::framework::value::RawValue, crate::framework::model::ModelError>,
) -> Result<T, Diagnostics> {
    value
        .map_err(|e| e.to_string())
        .and_then(|raw| serde_json::from_value(value_to_api_json(&raw)).map_err(|e| e.to_string()))
        .map_err(|e| {
            Diagnostics::from_error_at(
                AttrPath::attr(what),
                "Invalid Operator Setting",
                format!("{e}."),
            )
        })
}

pub(crate) fn settings(model: &OperatorModel) -> Result<OperatorSettings, Diagnostics> {
    Ok(OperatorSettings {
        namespace: Some(namespace_of(model)),
        env: model.env.as_known().cloned().unwrap_or_default(),
        resources: match &model.resources {
            Value::Known(r) => Some(decode("resources", to_raw(r))?),
            _ => None,
        },
        tolerations: match &model.tolerations {
            Value::Known(t) => Some(decode("tolerations", to_raw(t))?),
            _ => None,
        },
        node_selector: model.node_selector.as_known().cloned(),
        image_repository: model.image_repository.as_known().cloned(),
        chart: chart_settings(model)?,
    })
}
