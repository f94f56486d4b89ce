//! Health of a set of objects, such as a controller's inventory: which are missing, and which
//! exist but are not healthy (being deleted; a Deployment not Available for its current
//! generation). Reads with one request per kind and namespace: a GET when only one object of
//! that kind is asked about, otherwise one LIST filtered here.
//!
//! Generic Kubernetes access: knows nothing of Terraform or Flux, and depends on nothing else in
//! this crate.

use std::collections::BTreeMap;

use kube::api::DynamicObject;
use kube::core::Status;

use super::apply::ApplyError;
use super::objects::{Cluster, ObjectRef};
use super::wait::{WaitOutcome, deployment_available, describe_state};

/// The health of each object asked about, in the order asked; healthy objects are left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthReport {
    /// Objects that do not exist (or whose kind is not served).
    pub missing: Vec<ObjectRef>,
    /// Objects that exist but are not healthy, with the reason.
    pub unhealthy: Vec<(ObjectRef, String)>,
}

impl HealthReport {
    /// True when nothing is missing or unhealthy.
    pub fn is_healthy(&self) -> bool {
        self.missing.is_empty() && self.unhealthy.is_empty()
    }
}

/// Errors of a health check.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// Reading the objects of one kind failed.
    #[error("checking the health of {object}: {source}")]
    Read {
        /// The first object of the kind being read.
        object: ObjectRef,
        /// The read's error.
        #[source]
        source: ApplyError,
    },
}

impl HealthError {
    /// The API server's Status, when the server answered.
    pub fn status(&self) -> Option<&Status> {
        match self {
            Self::Read { source, .. } => source.status(),
        }
    }
}

/// Why an existing object is unhealthy, or `None` when it is healthy.
pub fn unhealthy_reason(object: &DynamicObject) -> Option<String> {
    if object.metadata.deletion_timestamp.is_some() {
        return Some("being deleted".to_owned());
    }
    let types = object.types.as_ref()?;
    if types.api_version == "apps/v1" && types.kind == "Deployment" {
        return match deployment_available(Some(object)) {
            WaitOutcome::Done => None,
            WaitOutcome::Failed(message) => Some(format!("not available: {message}")),
            WaitOutcome::Pending => {
                Some(format!("not available: {}", describe_state(Some(object))))
            }
        };
    }
    None
}

impl Cluster {
    /// [`Cluster::health`] for a refresh: each object is read with [`Cluster::get_shared`], so
    /// the refreshes of one operation share one LIST per kind and namespace.
    pub async fn health_shared(&self, objects: &[ObjectRef]) -> Result<HealthReport, HealthError> {
        // Several objects of one kind and namespace are read from its shared LIST at once.
        let mut per_group: BTreeMap<(&str, &str, Option<&str>), u32> = BTreeMap::new();
        for object in objects {
            *per_group
                .entry((
                    object.api_version.as_str(),
                    object.kind.as_str(),
                    object.namespace.as_deref(),
                ))
                .or_default() += 1;
        }
        let mut found: BTreeMap<&ObjectRef, DynamicObject> = BTreeMap::new();
        for object in objects {
            let members = per_group
                .get(&(
                    object.api_version.as_str(),
                    object.kind.as_str(),
                    object.namespace.as_deref(),
                ))
                .copied()
                .unwrap_or(1);
            let reads = if members > 1 { u32::MAX } else { 1 };
            let read =
                self.read_shared(object, reads)
                    .await
                    .map_err(|source| HealthError::Read {
                        object: object.clone(),
                        source,
                    })?;
            if let Some(live) = read {
                found.insert(object, live);
            }
        }
        Ok(report(objects, &found))
    }

    /// Reports which of `objects` are missing or unhealthy (see [`unhealthy_reason`]).
    pub async fn health(&self, objects: &[ObjectRef]) -> Result<HealthReport, HealthError> {
        // Objects grouped by kind and namespace, keeping each group's members in input order.
        let mut groups: BTreeMap<(&str, &str, Option<&str>), Vec<&ObjectRef>> = BTreeMap::new();
        for object in objects {
            groups
                .entry((
                    object.api_version.as_str(),
                    object.kind.as_str(),
                    object.namespace.as_deref(),
                ))
                .or_default()
                .push(object);
        }
        let mut found: BTreeMap<&ObjectRef, DynamicObject> = BTreeMap::new();
        for ((api_version, kind, namespace), members) in &groups {
            let failed = |source| HealthError::Read {
                object: (*members[0]).clone(),
                source,
            };
            if let [only] = members.as_slice() {
                if let Some(object) = self.get(only).await.map_err(failed)? {
                    found.insert(only, object);
                }
                continue;
            }
            let listed = self
                .list(api_version, kind, *namespace, "")
                .await
                .map_err(failed)?;
            let mut by_name: BTreeMap<(Option<String>, String), DynamicObject> = listed
                .into_iter()
                .map(|o| {
                    (
                        (
                            o.metadata.namespace.clone(),
                            o.metadata.name.clone().unwrap_or_default(),
                        ),
                        o,
                    )
                })
                .collect();
            for member in members {
                // A cluster-scoped kind lists without namespaces; a namespaced one with them.
                let key = (member.namespace.clone(), member.name.clone());
                let object = by_name
                    .remove(&key)
                    .or_else(|| by_name.remove(&(None, member.name.clone())));
                if let Some(object) = object {
                    found.insert(member, object);
                }
            }
        }
        Ok(report(objects, &found))
    }
}

/// The report on `objects`, from those found alive.
fn report(objects: &[ObjectRef], found: &BTreeMap<&ObjectRef, DynamicObject>) -> HealthReport {
    let mut report = HealthReport::default();
    for object in objects {
        match found.get(object) {
            None => {
                if !report.missing.contains(object) {
                    report.missing.push(object.clone());
                }
            }
            Some(live) => {
                if let Some(reason) = unhealthy_reason(live)
                    && !report.unhealthy.iter().any(|(o, _)| o == object)
                {
                    report.unhealthy.push((object.clone(), reason));
                }
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unhealthy_reasons() {
        let object = |value| serde_json::from_value::<DynamicObject>(value).expect("object");
        let cases = [
            (
                "available deployment",
                object(json!({"apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": "d", "generation": 2},
                    "status": {"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1,
                               "availableReplicas": 1,
                               "conditions": [{"type": "Available", "status": "True"}]}})),
                None,
            ),
            (
                "deployment rolling out",
                object(json!({"apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": "d", "generation": 3},
                    "status": {"observedGeneration": 2, "conditions": [{"type": "Available", "status": "True"}]}})),
                Some(
                    "not available: last observed state: generation 3 not yet observed \
                     (observed 2); replicas: 1 wanted, 0 updated, 0 available, 0 in all; \
                     Available=True"
                        .to_owned(),
                ),
            ),
            (
                "service",
                object(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}})),
                None,
            ),
            (
                "being deleted",
                object(json!({"apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": "s", "deletionTimestamp": "2026-01-01T00:00:00Z"}})),
                Some("being deleted".to_owned()),
            ),
        ];
        for (name, object, expected) in cases {
            assert_eq!(unhealthy_reason(&object), expected, "{name}");
        }
    }
}
