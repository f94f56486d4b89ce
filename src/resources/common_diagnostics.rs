//! Diagnostics for cluster errors: the API server's message quoted at the attribute its Status
//! cause names, failures of the server or connection titled by what happened, and the
//! server-side dry-run at plan that tells a missing namespace apart from a real refusal.

use kube::api::DynamicObject;

use crate::cluster::apply::ApplyError;
use crate::cluster::objects::Cluster;
use crate::framework::diagnostics::Diagnostics;
use crate::resources::common_json::api_field_to_path;

/// The title and advice for a failure that is not about the request's content: the API server
/// failed, was unavailable, refused the credentials, or could not be reached (transient ones
/// were already retried by the cluster layer). `None` for a refusal of the request itself
/// (validation, not found), which the caller's summary describes.
fn failure_kind(error: &ApplyError) -> Option<(&'static str, &'static str)> {
    match error.status() {
        Some(status) => Some(match status.code {
            500 => (
                "Kubernetes API Server Error",
                "The API server failed while handling the request (an internal error, or an \
                 admission webhook failing). The provider retried it with back-off before \
                 giving up; check the API server's health and apply again.",
            ),
            502..=504 => (
                "Kubernetes API Server Unavailable",
                "The API server (or a proxy in front of it) is unavailable or restarting. The \
                 provider retried the request with back-off before giving up; apply again once \
                 it is back.",
            ),
            429 => (
                "Kubernetes API Server Overloaded",
                "The API server throttled the request (429). The provider honoured its \
                 Retry-After before giving up; apply again later.",
            ),
            409 if status.reason != "AlreadyExists" => (
                "Conflicting Change In The Cluster",
                "Another client changed the object at the same time. The provider retried the \
                 request before giving up; apply again.",
            ),
            401 => (
                "Not Authenticated To The Kubernetes API Server",
                "The API server did not accept the credentials; check the provider's kubernetes \
                 settings (token, client certificate, exec plugin or kubeconfig user).",
            ),
            403 => (
                "Forbidden By The Kubernetes API Server",
                "The credentials lack the permission for this request; grant it (RBAC) or use \
                 other credentials.",
            ),
            _ => return None,
        }),
        None => match error {
            ApplyError::Manifest { .. } | ApplyError::NotServed { .. } => None,
            _ => Some((
                "Kubernetes API Server Unreachable",
                "The connection to the API server failed (refused, reset or timed out). The \
                 provider retried the request with back-off before giving up; check that the \
                 cluster is reachable from where Terraform runs (the provider's kubernetes \
                 settings), then apply again.",
            )),
        },
    }
}

/// A diagnostic for a failed request: the server's message quoted, attached to the attribute the
/// Status causes name (one diagnostic per cause with a field), else to no attribute. A failure
/// of the server or the connection rather than of the request is titled by what happened
/// (`Kubernetes API Server Error`, `... Unreachable`), with `summary` as context.
pub fn apply_error(summary: &str, error: &ApplyError) -> Diagnostics {
    if let Some((title, advice)) = failure_kind(error) {
        return Diagnostics::from_error(title, format!("{summary}: {error}. {advice}"));
    }
    let mut out = Diagnostics::new();
    if let Some(status) = error.status()
        && let Some(details) = &status.details
    {
        for cause in &details.causes {
            if let Some(path) = api_field_to_path(&cause.field) {
                out.error_at(
                    path,
                    summary,
                    format!(
                        "The Kubernetes API server rejected {}: {}",
                        cause.field, cause.message
                    ),
                );
            }
        }
    }
    if out.is_empty() {
        out.error(summary, format!("{error}."));
    }
    out
}

/// What a server-side dry-run at plan found, once the answers that only say that something the
/// same apply may create does not exist yet are told apart from real refusals.
#[derive(Debug)]
pub enum PlanDryRun {
    /// The API server accepted the object.
    Accepted,
    /// The API server does not serve the kind (its CRD is installed by the same apply, e.g. by
    /// `flux_operator`): nothing was validated by the server.
    NotServed,
    /// The object's namespace does not exist (yet): the server could not validate the object.
    /// [`PlanDryRun::warning`] says so.
    NamespaceMissing {
        /// The missing namespace.
        namespace: String,
    },
}

impl PlanDryRun {
    /// For [`PlanDryRun::NamespaceMissing`]: the warning's summary and detail, naming the
    /// namespace, the object (`kind` `namespace/name`) and what apply will do; `also` is appended
    /// (what was checked instead). `None` otherwise.
    pub fn warning(&self, kind: &str, name: &str, also: &str) -> Option<(String, String)> {
        let PlanDryRun::NamespaceMissing { namespace } = self else {
            return None;
        };
        Some((
            format!("{kind} Not Validated By The API Server"),
            format!(
                "The namespace {namespace:?} does not exist yet, so the API server cannot dry-run \
                 the {kind} {namespace}/{name} at plan{also}. If a resource of this \
                 configuration creates the namespace (flux_operator does), apply creates it \
                 first and the API server validates the {kind} when it is applied; otherwise \
                 the apply fails with `namespaces \"{namespace}\" not found`."
            ),
        ))
    }
}

/// Server-side dry-runs `object` at plan. A kind that is not served and a namespace that does
/// not exist are no errors (see [`PlanDryRun`]): the API server names the missing namespace in
/// its `NotFound` Status (`details.kind = "namespaces"`).
///
/// # Errors
///
/// Every other failure of the dry-run, as the cluster layer reports it.
pub async fn dry_run_at_plan(
    cluster: &Cluster,
    object: &DynamicObject,
) -> Result<PlanDryRun, ApplyError> {
    match cluster.dry_run_apply(object).await {
        Ok(_) => Ok(PlanDryRun::Accepted),
        Err(ApplyError::NotServed { .. }) => Ok(PlanDryRun::NotServed),
        // The plain-text 404 of a kind that stopped being served since discovery.
        Err(e)
            if e.status()
                .is_some_and(|s| s.code == 404 && s.reason != "NotFound") =>
        {
            Ok(PlanDryRun::NotServed)
        }
        Err(e) => {
            let namespace = object.metadata.namespace.as_deref().unwrap_or_default();
            let missing = e.status().is_some_and(|s| {
                s.code == 404
                    && s.details
                        .as_ref()
                        .is_some_and(|d| d.kind == "namespaces" && d.name == namespace)
            });
            if missing && !namespace.is_empty() {
                Ok(PlanDryRun::NamespaceMissing {
                    namespace: namespace.to_owned(),
                })
            } else {
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::objects::ObjectRef;
    use pretty_assertions::assert_eq;

    #[test]
    fn failures_are_titled_by_what_happened() {
        use kube::core::Status;
        let object = ObjectRef::new(
            "fluxcd.controlplane.io/v1",
            "FluxInstance",
            Some("flux-system"),
            "flux",
        );
        let api = |code: u16, reason: &str| ApplyError::DryRun {
            object: object.clone(),
            source: kube::Error::Api(Status::failure("boom", reason).with_code(code).boxed()),
        };
        let cases = [
            (api(500, "InternalError"), "Kubernetes API Server Error"),
            (
                api(503, "ServiceUnavailable"),
                "Kubernetes API Server Unavailable",
            ),
            (
                api(429, "TooManyRequests"),
                "Kubernetes API Server Overloaded",
            ),
            (api(409, "Conflict"), "Conflicting Change In The Cluster"),
            (
                api(401, "Unauthorized"),
                "Not Authenticated To The Kubernetes API Server",
            ),
            (
                api(403, "Forbidden"),
                "Forbidden By The Kubernetes API Server",
            ),
            (
                api(422, "Invalid"),
                "FluxInstance Rejected By The API Server",
            ),
            (
                api(409, "AlreadyExists"),
                "FluxInstance Rejected By The API Server",
            ),
            (
                ApplyError::Get {
                    object: object.clone(),
                    source: kube::Error::Service("connection reset by peer".into()),
                },
                "Kubernetes API Server Unreachable",
            ),
            (
                ApplyError::NotServed {
                    object: object.clone(),
                },
                "FluxInstance Rejected By The API Server",
            ),
        ];
        for (error, title) in cases {
            let diags = apply_error("FluxInstance Rejected By The API Server", &error);
            assert_eq!(diags.0[0].summary, title, "{error}");
            assert!(diags.0[0].detail.contains(&error.to_string()), "{diags:?}");
        }
        let detail =
            &apply_error("FluxInstance Apply Failed", &api(500, "InternalError")).0[0].detail;
        assert!(
            detail.starts_with("FluxInstance Apply Failed: "),
            "{detail}"
        );
        assert!(detail.contains("retried"), "{detail}");
    }
}
