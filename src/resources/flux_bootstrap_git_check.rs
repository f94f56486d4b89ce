//! What `flux_bootstrap_git` checks before its first write to Git or the cluster: the
//! FluxInstance it would commit and apply, against the CRD's rules checked locally and, when the
//! cluster is reachable and already serves FluxInstances in an existing namespace, against the
//! API server's server-side dry-run (schema patterns, CEL rules, admission). A bootstrap
//! installs the operator (CRDs) and creates the namespace itself, so their absence is no error:
//! the local rules stand in for the dry-run then. Problems are reported at the bootstrap's own
//! attribute paths (`interval`, `url`, `branch`, ... for the instance's `sync`).
//!
//! Lives in `resources/`: may use `framework`, `flux`, `cluster`.

use crate::cluster::objects::Cluster;
use crate::flux::instance::FluxInstance;
use crate::flux::normalize::validate_spec;
use crate::framework::diagnostics::Diagnostics;
use crate::framework::path::AttrPath;
use crate::resources::common::{PlanDryRun, api_field_to_path, apply_error, dry_run_at_plan};
use crate::resources::flux_instance_live::to_dynamic;

/// The attribute of `flux_bootstrap_git` that sets a FluxInstance field (`spec.`-relative, as
/// the CRD names it).
pub fn attribute_of(field: &str) -> Option<AttrPath> {
    let field = field.strip_prefix("spec.").unwrap_or(field);
    let own = match field {
        "sync.url" => Some("url"),
        "sync.ref" => Some("branch"),
        "sync.path" => Some("path"),
        "sync.interval" => Some("interval"),
        "sync.pullSecret" => Some("secret_name"),
        _ => None,
    };
    match own {
        Some(name) => Some(AttrPath::attr(name)),
        None => api_field_to_path(&format!("spec.{field}")),
    }
}

/// The CRD's rules that hold without the API server.
///
/// # Errors
///
/// One error per broken rule, at the attribute that sets the field.
pub fn local_rules(instance: &FluxInstance) -> Result<(), Diagnostics> {
    let mut out = Diagnostics::new();
    for violation in validate_spec(&instance.spec) {
        let detail = format!("{}: {}.", violation.field, violation.message);
        match attribute_of(&violation.field) {
            Some(path) => out.error_at(path, "Invalid FluxInstance Spec", detail),
            None => out.error("Invalid FluxInstance Spec", detail),
        }
    }
    if out.has_errors() { Err(out) } else { Ok(()) }
}

/// The local rules, then the server-side dry-run when `cluster` is given and can answer it.
/// Returns the namespace when the dry-run could not run because the namespace does not exist
/// yet (the bootstrap creates it with the operator), for the caller to warn about.
///
/// # Errors
///
/// The broken rules, or the API server's refusal quoted.
pub async fn check_instance(
    cluster: Option<&Cluster>,
    instance: &FluxInstance,
) -> Result<Option<String>, Diagnostics> {
    local_rules(instance)?;
    let Some(cluster) = cluster else {
        return Ok(None);
    };
    match dry_run_at_plan(cluster, &to_dynamic(instance)?).await {
        Ok(PlanDryRun::NamespaceMissing { namespace }) => Ok(Some(namespace)),
        Ok(PlanDryRun::Accepted | PlanDryRun::NotServed) => Ok(None),
        Err(e) => {
            let summary = if e.status().is_some() {
                "FluxInstance Rejected By The API Server"
            } else {
                "Cannot Validate The FluxInstance With The Cluster"
            };
            let mut out = apply_error(summary, &e);
            for d in &mut out.0 {
                d.detail = format!(
                    "{} Nothing was written to Git or the cluster.",
                    d.detail.trim_end()
                );
            }
            Err(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn sync_fields_map_to_the_bootstrap_attributes() {
        let cases = [
            ("sync.interval", "interval"),
            ("spec.sync.url", "url"),
            ("sync.ref", "branch"),
            ("sync.path", "path"),
            ("sync.pullSecret", "secret_name"),
            ("distribution.artifact", "distribution.artifact"),
            ("sync.name", "sync.name"),
        ];
        for (field, want) in cases {
            assert_eq!(
                attribute_of(field).map(|p| p.to_string()),
                Some(want.to_owned()),
                "{field}"
            );
        }
    }

    #[test]
    fn local_rules_name_the_bootstrap_attribute() {
        let mut instance = FluxInstance::new(
            "flux-system",
            serde_json::from_value(serde_json::json!({
                "distribution": {"version": "2.7.x", "artifact": "ghcr.io/x/manifests"},
                "sync": {"kind": "GitRepository", "url": "https://git.example/x.git",
                         "ref": "refs/heads/main", "path": "clusters/dev", "interval": "1 minute"}
            }))
            .unwrap(),
        );
        let errors = local_rules(&instance).unwrap_err();
        let paths: Vec<String> = errors
            .iter()
            .map(|d| d.path.as_ref().map(ToString::to_string).unwrap_or_default())
            .collect();
        assert_eq!(paths, vec!["distribution.artifact", "interval"]);
        instance.spec.distribution.artifact = None;
        instance.spec.sync.as_mut().unwrap().interval = Some("1m".into());
        assert_eq!(local_rules(&instance), Ok(()));
    }
}
