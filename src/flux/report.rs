//! The `FluxReport` API (`fluxcd.controlplane.io/v1`, Flux Operator v0.58.1): the report the
//! operator keeps of the Flux installation in its namespace, always named `flux` — the
//! distribution, the cluster, the operator, the controllers with their images, the statistics
//! of every reconciler kind and the cluster sync. Pure: types and their readiness only.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `kind` of a FluxReport.
pub const KIND: &str = "FluxReport";
/// The only name a FluxReport may have (a CEL rule of the CRD).
pub const NAME: &str = "flux";

/// Why a report could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// The object is not valid FluxReport JSON.
    #[error("decoding FluxReport: {0}")]
    Decode(String),
}

/// A whole FluxReport object; the spec stays API JSON (its shape is read attribute by
/// attribute), the status is typed.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct FluxReport {
    /// Object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The report (`distribution`, `cluster`, `operator`, `components`, `reconcilers`, `sync`).
    #[serde(default)]
    pub spec: serde_json::Map<String, Value>,
    /// Conditions and the handled reconcile request.
    #[serde(default)]
    pub status: ReportStatus,
}

/// `status` of a FluxReport.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ReportStatus {
    /// `Ready` (reason `Succeeded` once a report was computed).
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Echo of the handled `reconcile.fluxcd.io/requestedAt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}

impl FluxReport {
    /// Decodes an object read from the API server.
    ///
    /// # Errors
    ///
    /// [`ReportError::Decode`].
    pub fn from_json(value: Value) -> Result<Self, ReportError> {
        serde_json::from_value(value).map_err(|e| ReportError::Decode(e.to_string()))
    }

    /// The `Ready` condition, if the operator has written one.
    pub fn ready_condition(&self) -> Option<&Condition> {
        self.status.conditions.iter().find(|c| c.type_ == "Ready")
    }

    /// Whether the operator computed the report (Ready=True).
    pub fn is_ready(&self) -> bool {
        self.ready_condition().is_some_and(|c| c.status == "True")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn reports_decode_with_their_readiness() {
        let report = FluxReport::from_json(serde_json::json!({
            "apiVersion": "fluxcd.controlplane.io/v1", "kind": "FluxReport",
            "metadata": {"name": "flux", "namespace": "flux-system"},
            "spec": {"distribution": {"status": "Installed", "entitlement": "Unknown"}},
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded",
                       "message": "Reporting finished in 12ms", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
        }))
        .unwrap();
        assert!(report.is_ready());
        assert_eq!(report.spec["distribution"]["status"], "Installed");
        assert!(!FluxReport::default().is_ready());
        assert!(FluxReport::from_json(serde_json::json!({"spec": 1})).is_err());
    }
}
