//! What `flux_resource_set_input_provider` reads from and writes to the cluster: the object as
//! the cluster layer writes it, the live provider, and the state after apply with the values
//! the operator computed read back.
//!
//! Lives in `resources/`: may use `framework`, `flux`, `cluster`, never `provider`.

use kube::api::DynamicObject;

use super::convert::set_status;
use super::model::InputProviderModel;
use crate::cluster::objects::{Cluster, ObjectRef};
use crate::flux::input_provider::{InputProvider, KIND};
use crate::flux::instance::API_VERSION;
use crate::framework::diagnostics::Diagnostics;
use crate::framework::model::Value;
use crate::resources::common::apply_error;

/// The provider object's reference.
pub fn input_provider_ref(namespace: &str, name: &str) -> ObjectRef {
    ObjectRef::new(API_VERSION, KIND, Some(namespace), name)
}

/// The provider a model names.
pub(super) fn model_ref(model: &InputProviderModel) -> ObjectRef {
    input_provider_ref(
        model.namespace.as_known().map_or("", String::as_str),
        model.name.as_known().map_or("", String::as_str),
    )
}

pub(super) fn to_dynamic(object: &InputProvider) -> Result<DynamicObject, Diagnostics> {
    object
        .to_json()
        .map_err(|e| e.to_string())
        .and_then(|json| serde_json::from_value(json).map_err(|e| e.to_string()))
        .map_err(|e| {
            Diagnostics::from_error("Provider Bug: Cannot Encode ResourceSetInputProvider", e)
        })
}

/// Reads the live provider; `None` when it, its namespace or its CRD is gone.
pub(super) async fn get_live(
    cluster: &Cluster,
    object: &ObjectRef,
) -> Result<Option<InputProvider>, Diagnostics> {
    let found = cluster
        .get(object)
        .await
        .map_err(|e| apply_error("Cannot Read The ResourceSetInputProvider", &e))?;
    found
        .map(|o| {
            serde_json::to_value(&o)
                .map_err(|e| e.to_string())
                .and_then(|json| InputProvider::from_json(json).map_err(|e| e.to_string()))
                .map_err(|e| {
                    Diagnostics::from_error("Unreadable ResourceSetInputProvider", format!("{e}."))
                })
        })
        .transpose()
}

/// The state after apply: the planned values, with the computed ones read back.
pub(super) async fn state_after(
    cluster: &Cluster,
    planned: &InputProviderModel,
) -> InputProviderModel {
    let mut state = planned.clone();
    let mut fresh = InputProviderModel::default();
    if let Ok(Some(live)) = get_live(cluster, &model_ref(planned)).await {
        set_status(&mut fresh, &live);
    }
    if !state.ready.is_known() {
        state.ready = fresh.ready.or(false.into());
    }
    if !state.exported_inputs.is_known() {
        state.exported_inputs = fresh.exported_inputs.or(Value::Null);
    }
    if !state.last_exported_revision.is_known() {
        state.last_exported_revision = fresh.last_exported_revision.or(String::new().into());
    }
    if state.next_schedule.is_unknown() {
        state.next_schedule = fresh.next_schedule;
    }
    state
}
