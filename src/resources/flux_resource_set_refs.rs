//! Plan-time warnings about what a ResourceSet refers to in its namespace, following the real
//! operator's behaviour (v0.58.1): an `inputs_from` provider that does not exist makes the
//! operator report the ResourceSet Stalled ("failed to compute inputs"), and a
//! `service_account_name` it cannot impersonate fails the apply — and, on delete, makes it skip
//! pruning and release the finalizer, leaving the generated objects behind. Both are warnings,
//! not errors: the provider or the ServiceAccount may be created in the same apply.
//!
//! Lives in `resources/`: may use `framework`, `flux`, `cluster`, never `provider`.

use crate::cluster::objects::{Cluster, ObjectRef};
use crate::framework::path::AttrPath;
use crate::resources::flux_resource_set::model::ResourceSetModel;

/// One warning: the attribute it is about, its summary and detail.
pub(super) type Warning = (AttrPath, String, String);

/// Whether the object exists; `None` when that cannot be told (the kind is not served yet, the
/// request failed): no warning then.
async fn exists(cluster: &Cluster, object: &ObjectRef) -> Option<bool> {
    cluster.get(object).await.ok().map(|found| found.is_some())
}

/// The warnings for a planned ResourceSet whose namespace exists, in attribute order.
pub(super) async fn reference_warnings(
    cluster: &Cluster,
    planned: &ResourceSetModel,
) -> Vec<Warning> {
    let Some(namespace) = planned.namespace.as_known() else {
        return Vec::new();
    };
    let name = planned.name.as_known().cloned().unwrap_or_default();
    let mut warnings = Vec::new();
    if let Some(inputs_from) = planned.inputs_from.as_known() {
        for (index, input) in inputs_from.iter().enumerate() {
            let Some(provider) = input.name.as_known() else {
                continue;
            };
            let object = ObjectRef::new(
                "fluxcd.controlplane.io/v1",
                "ResourceSetInputProvider",
                Some(namespace),
                provider,
            );
            if exists(cluster, &object).await == Some(false) {
                let index = i64::try_from(index).unwrap_or(i64::MAX);
                warnings.push((
                    AttrPath::attr("inputs_from")
                        .then_index(index)
                        .then_attr("name"),
                    "Input Provider Not Found".to_owned(),
                    format!(
                        "ResourceSetInputProvider {namespace}/{provider} does not exist yet. If \
                         this apply creates it (flux_resource_set_input_provider), make the \
                         ResourceSet depend on it — refer to its `name` attribute or add \
                         `depends_on` — so that it exists and has exported its inputs first; \
                         otherwise the operator reports ResourceSet {namespace}/{name} Stalled \
                         (\"failed to compute inputs\") and the apply fails."
                    ),
                ));
            }
        }
    }
    if let Some(account) = planned.service_account_name.as_known() {
        let object = ObjectRef::new("v1", "ServiceAccount", Some(namespace), account);
        if exists(cluster, &object).await == Some(false) {
            warnings.push((
                AttrPath::attr("service_account_name"),
                "Service Account Not Found".to_owned(),
                format!(
                    "ServiceAccount {namespace}/{account} does not exist yet. The operator \
                     impersonates it to apply and prune the objects of ResourceSet \
                     {namespace}/{name}: without it the apply fails, and on destroy the operator \
                     skips pruning and leaves the generated objects behind. Create it before the \
                     ResourceSet and destroy it after (for example through `depends_on` on the \
                     resource that manages it)."
                ),
            ));
        }
    }
    warnings
}
