//! The `flux_instance` data source: reads the FluxInstance of a namespace — whoever installed it
//! — and returns its spec, resolved version, components and readiness. The schema is the
//! resource's, every attribute computed except `namespace`.
//!
//! Lives in `resources/`: may use `framework`, `flux`, `cluster`, never `provider`.

use async_trait::async_trait;

use crate::flux::instance::{DEFAULT_NAMESPACE, INSTANCE_NAME};
use crate::framework::diagnostics::Diagnostics;
use crate::framework::model::Value;
use crate::framework::resource::{Context, DataSource};
use crate::framework::schema::{Attribute, AttributeType, Schema};
use crate::resources::common::{ClusterAccess, apply_error, cluster_for_apply};
use crate::resources::flux_instance::{installation_status, instance_ref};
use crate::resources::flux_instance_convert::live_model;
use crate::resources::flux_instance_model::{InstanceModel, schema};

/// The `flux_instance` data source.
#[derive(Clone, Copy, Debug, Default)]
pub struct FluxInstanceData;

/// `attribute` and everything nested in it as read-only.
fn computed(mut attribute: Attribute) -> Attribute {
    attribute.default = None;
    if let AttributeType::Nested { attributes, .. } = &mut attribute.kind {
        *attributes = std::mem::take(attributes)
            .into_iter()
            .map(computed)
            .collect();
    }
    attribute.computed()
}

/// The data source schema.
pub fn data_schema() -> Schema {
    let resource = schema();
    let attributes =
        resource
            .block
            .attributes
            .into_iter()
            .filter(|a| a.name != "deletion_policy")
            .map(|a| {
                if a.name == "namespace" {
                    Attribute::string("namespace").optional_computed().description(
                    "Namespace of the FluxInstance (the Flux Operator's namespace). Default \
                     `flux-system`.",
                )
                } else {
                    computed(a)
                }
            })
            .collect();
    Schema::new(
        0,
        "Reads the `FluxInstance` named `flux` in a namespace, however it was installed (this \
         provider, the `flux-operator` CLI, Helm or Flux itself): its spec, the resolved Flux \
         version, the component images and readiness. Fails when there is no instance.",
        attributes,
    )
}

#[async_trait]
impl<D: ClusterAccess> DataSource<D> for FluxInstanceData {
    type Model = InstanceModel;

    fn type_name(&self) -> &'static str {
        "flux_instance"
    }

    fn schema(&self) -> Schema {
        data_schema()
    }

    async fn validate(
        &self,
        _ctx: &mut Context<D>,
        config: InstanceModel,
    ) -> Result<(), Diagnostics> {
        let out = crate::resources::validation::instance_data(&config);
        if out.has_errors() { Err(out) } else { Ok(()) }
    }

    async fn read(
        &self,
        ctx: &mut Context<D>,
        config: InstanceModel,
    ) -> Result<InstanceModel, Diagnostics> {
        let cluster = cluster_for_apply(ctx.data()?.as_ref()).await?;
        let namespace = config
            .namespace
            .as_known()
            .cloned()
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
        let reference = instance_ref(&namespace, INSTANCE_NAME);
        let found = cluster
            .get(&reference)
            .await
            .map_err(|e| apply_error("Cannot Read The FluxInstance", &e))?;
        let Some(found) = found else {
            return Err(Diagnostics::from_error(
                "FluxInstance Not Found",
                format!(
                    "There is no FluxInstance \"{INSTANCE_NAME}\" in namespace {namespace:?} (or \
                     the Flux Operator's CRDs are not installed)."
                ),
            ));
        };
        let live = serde_json::to_value(&found)
            .map_err(|e| e.to_string())
            .and_then(|json| {
                crate::flux::instance::FluxInstance::from_json(json).map_err(|e| e.to_string())
            })
            .map_err(|e| Diagnostics::from_error("Unreadable FluxInstance", format!("{e}.")))?;
        let status = installation_status(&cluster, &live).await?;
        let mut model = live_model(&live, &InstanceModel::default(), status)?;
        model.deletion_policy = Value::Null;
        Ok(model)
    }
}
