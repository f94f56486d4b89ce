//! Reading a FluxInstance and its installation from the cluster: the object itself, whether the
//! objects in its inventory are present and healthy (installation drift), and where the Flux
//! Operator runs; and the state after apply, with the computed values read back.
//!
//! Lives in `resources/`: may use `framework`, `flux`, `cluster`, never `provider`.

use futures::future::join_all;
use kube::api::DynamicObject;

use crate::cluster::objects::{Cluster, ObjectRef};
use crate::cluster::wait::{WaitOutcome, deployment_available};
use crate::flux::instance::{API_VERSION, FluxInstance, KIND};
use crate::flux::operator::DEPLOYMENT_NAME;
use crate::flux::status::Readiness;
use crate::framework::diagnostics::Diagnostics;
use crate::framework::model::Value;
use crate::resources::common::{apply_error, cluster_ref};
use crate::resources::flux_instance_convert::live_model;
use crate::resources::flux_instance_model::{HEALTHY, InstanceModel};
use crate::resources::ownership::RecordedFailure;

/// The FluxInstance's reference.
pub fn instance_ref(namespace: &str, name: &str) -> ObjectRef {
    ObjectRef::new(API_VERSION, KIND, Some(namespace), name)
}

/// The object as the cluster layer writes it.
pub(crate) fn to_dynamic(object: &FluxInstance) -> Result<DynamicObject, Diagnostics> {
    object
        .to_json()
        .and_then(|json| {
            serde_json::from_value(json)
                .map_err(|e| crate::flux::instance::InstanceError::Decode(e.to_string()))
        })
        .map_err(|e| {
            Diagnostics::from_error("Provider Bug: Cannot Encode FluxInstance", e.to_string())
        })
}

/// An object read from the cluster, typed.
pub(crate) fn from_dynamic(object: &DynamicObject) -> Result<FluxInstance, Diagnostics> {
    serde_json::to_value(object)
        .map_err(|e| e.to_string())
        .and_then(|json| FluxInstance::from_json(json).map_err(|e| e.to_string()))
        .map_err(|e| Diagnostics::from_error("Unreadable FluxInstance", format!("{e}.")))
}

/// Reads the live FluxInstance; `None` when it, its namespace or its CRD is gone.
pub(crate) async fn get_live(
    cluster: &Cluster,
    object: &ObjectRef,
) -> Result<Option<FluxInstance>, Diagnostics> {
    let found = cluster
        .get(object)
        .await
        .map_err(|e| apply_error("Cannot Read The FluxInstance", &e))?;
    found.as_ref().map(from_dynamic).transpose()
}

/// `Healthy`, or which inventory objects are missing or (Deployments) not Available.
pub async fn installation_status(
    cluster: &Cluster,
    live: &FluxInstance,
) -> Result<String, Diagnostics> {
    let suspended = live.reconcile_annotations().is_disabled();
    let Some(inventory) = live.status.as_ref().and_then(|s| s.inventory.as_ref()) else {
        return Ok(HEALTHY.to_owned());
    };
    if suspended {
        return Ok(HEALTHY.to_owned());
    }
    let refs = inventory.object_refs().unwrap_or_default();
    let checks = refs.iter().map(|object| async move {
        let found = cluster.get(&cluster_ref(object)).await?;
        let problem = match found {
            None => Some("missing"),
            Some(d)
                if object.kind == "Deployment"
                    && deployment_available(Some(&d)) != WaitOutcome::Done =>
            {
                Some("not available")
            }
            Some(_) => None,
        };
        Ok::<_, crate::cluster::apply::ApplyError>(
            problem.map(|p| format!("{} {} {p}", object.kind, object_name(object))),
        )
    });
    let mut problems = Vec::new();
    for result in join_all(checks).await {
        if let Some(problem) =
            result.map_err(|e| apply_error("Cannot Check The Flux Installation", &e))?
        {
            problems.push(problem);
        }
    }
    Ok(if problems.is_empty() {
        HEALTHY.to_owned()
    } else {
        format!("Drifted: {}", problems.join(", "))
    })
}

fn object_name(object: &crate::flux::object::ObjectRef) -> String {
    match &object.namespace {
        Some(ns) => format!("{ns}/{}", object.name),
        None => object.name.clone(),
    }
}

/// The namespace the Flux Operator runs in, if it is installed.
pub(crate) async fn operator_namespace(
    cluster: &Cluster,
    namespace: &str,
) -> Result<Option<String>, Diagnostics> {
    let here = ObjectRef::new("apps/v1", "Deployment", Some(namespace), DEPLOYMENT_NAME);
    let read = |e| apply_error("Cannot Find The Flux Operator", &e);
    if cluster.get(&here).await.map_err(read)?.is_some() {
        return Ok(Some(namespace.to_owned()));
    }
    let all = cluster
        .list(
            "apps/v1",
            "Deployment",
            None,
            "app.kubernetes.io/name=flux-operator",
        )
        .await
        .map_err(read)?;
    Ok(all
        .into_iter()
        .find(|d| d.metadata.name.as_deref() == Some(DEPLOYMENT_NAME))
        .and_then(|d| d.metadata.namespace))
}

/// Why the operator fails the live object's current generation, quoted from its status
/// (`Ready=False` with a failure reason, or `Stalled`), or while it retries (its status then
/// says only "in progress") the verdict `recorded` by the apply whose wait it ended, when that
/// was for the same generation. `None` while Ready or suspended, or without a live object.
pub(crate) fn reconcile_failure(
    live: Option<&FluxInstance>,
    recorded: Option<RecordedFailure>,
) -> Option<String> {
    let live = live?;
    let conditions = live.status.as_ref().map_or(&[][..], |s| &s.conditions[..]);
    let readiness = crate::flux::status::readiness(live.metadata.generation, conditions, false);
    match &readiness {
        Readiness::Failed { message, .. } | Readiness::Stalled { message, .. } => {
            let namespace = live.metadata.namespace.as_deref().unwrap_or_default();
            let name = live.metadata.name.as_deref().unwrap_or_default();
            let unhealthy = crate::flux::status::unhealthy_components(message);
            Some(crate::flux::status::summary(
                KIND, namespace, name, &readiness, &unhealthy,
            ))
        }
        Readiness::Progressing { .. } => recorded
            .filter(|r| Some(r.generation) == live.metadata.generation)
            .map(|r| r.message),
        Readiness::Ready | Readiness::Disabled => None,
    }
}

/// The FluxInstance a model names (`flux-system/flux` for the parts still unknown).
pub(crate) fn model_ref(model: &InstanceModel) -> ObjectRef {
    instance_ref(
        model
            .namespace
            .as_known()
            .map_or("flux-system", String::as_str),
        model.name.as_known().map_or("flux", String::as_str),
    )
}

/// The planned value when known, else the fresh one, else `fallback`.
fn pick<T: Clone>(planned: &Value<T>, fresh: Value<T>, fallback: T) -> Value<T> {
    match planned {
        Value::Known(v) => Value::Known(v.clone()),
        _ => fresh.or(Value::Known(fallback)),
    }
}

/// The state after apply: the planned configuration with the computed values read back.
pub(crate) async fn state_after(cluster: &Cluster, planned: &InstanceModel) -> InstanceModel {
    let mut state = planned.clone();
    let live = get_live(cluster, &model_ref(planned)).await.ok().flatten();
    let fresh = match &live {
        Some(live) => live_model(live, planned, HEALTHY.to_owned()).ok(),
        None => None,
    };
    let fresh = fresh.unwrap_or_default();
    let reference = model_ref(planned);
    state.id = Value::Known(format!(
        "{}/{}",
        reference.namespace.unwrap_or_default(),
        reference.name
    ));
    state.ready = pick(&planned.ready, fresh.ready, false);
    state.flux_version = pick(&planned.flux_version, fresh.flux_version, String::new());
    state.last_applied_revision = pick(
        &planned.last_applied_revision,
        fresh.last_applied_revision,
        String::new(),
    );
    state.installation_status = pick(
        &planned.installation_status,
        fresh.installation_status,
        String::new(),
    );
    state.component_images = pick(
        &planned.component_images,
        fresh.component_images,
        Vec::new(),
    );
    state.inventory_entries = pick(&planned.inventory_entries, fresh.inventory_entries, 0);
    state
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    fn live(generation: i64, ready: serde_json::Value) -> FluxInstance {
        FluxInstance::from_json(json!({
            "apiVersion": API_VERSION, "kind": KIND,
            "metadata": {"name": "flux", "namespace": "ns", "generation": generation},
            "spec": {"distribution": {"version": "2.7.x", "registry": "ghcr.io/fluxcd"}},
            "status": {"conditions": [ready]},
        }))
        .unwrap()
    }

    fn ready(status: &str, reason: &str, message: &str, observed: i64) -> serde_json::Value {
        json!({"type": "Ready", "status": status, "reason": reason, "message": message,
               "observedGeneration": observed, "lastTransitionTime": "2026-01-01T00:00:00Z"})
    }

    #[test]
    fn a_failure_comes_from_the_status_or_while_retrying_from_the_record() {
        let recorded = |generation| {
            Some(RecordedFailure {
                generation,
                message: "FluxInstance ns/flux is not ready: recorded".into(),
            })
        };
        let failed = live(
            2,
            ready(
                "False",
                "ReconciliationFailed",
                "GitRepository/ns/ns: gone",
                2,
            ),
        );
        assert_eq!(
            reconcile_failure(Some(&failed), None).as_deref(),
            Some(
                "FluxInstance ns/flux is not ready: ReconciliationFailed: GitRepository/ns/ns: gone"
            )
        );
        // Retrying: the status says only "in progress"; the record for this generation speaks.
        let retrying = live(
            2,
            ready("Unknown", "Progressing", "Reconciliation in progress", 2),
        );
        assert_eq!(
            reconcile_failure(Some(&retrying), recorded(2)).as_deref(),
            Some("FluxInstance ns/flux is not ready: recorded")
        );
        // A record for another generation, no record, Ready, or no object: nothing to report.
        assert_eq!(reconcile_failure(Some(&retrying), recorded(1)), None);
        assert_eq!(reconcile_failure(Some(&retrying), None), None);
        let healthy = live(2, ready("True", "ReconciliationSucceeded", "ok", 2));
        assert_eq!(reconcile_failure(Some(&healthy), recorded(2)), None);
        assert_eq!(reconcile_failure(None, recorded(2)), None);
        // A failure of an older generation is not a verdict on this one.
        let stale = live(3, ready("False", "ReconciliationFailed", "old", 2));
        assert_eq!(reconcile_failure(Some(&stale), None), None);
    }
}
