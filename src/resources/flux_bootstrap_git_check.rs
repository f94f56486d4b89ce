//! What `flux_bootstrap_git` checks before its first write to Git or the cluster: the
//! FluxInstance it would commit and apply, against the CRD's rules checked locally and, when the
//! cluster is reachable and already serves FluxInstances in an existing namespace, against the
//! API server's server-side dry-run (schema patterns, CEL rules, admission). A bootstrap
//! installs the operator (CRDs) and creates the namespace itself, so their absence is no error:
//! the local rules stand in for the dry-run then. Problems are reported at the bootstrap's own
//! attribute paths (`interval`, `url`, `branch`, ... for the instance's `sync`). The plan-time
//! hazards are `flux_instance`'s (`flux::hazards`): a minor downgrade of the running version, a
//! `sync.name` change, a namespace other than the running operator's fail the plan; removing or
//! re-kinding the sync warn (not the "also managed by Flux" warning: the bootstrap's instance is
//! applied from Git by design). A plan that drops kustomize patches the installation applies
//! today (the patches of a classic `flux bootstrap` that import read, for example) warns, naming
//! each patch and how to keep it. A bootstrap that would install the operator (on create, or
//! when its `operator` settings change) into a namespace that runs one installed by Helm or
//! under another Deployment name fails the plan, naming it (`flux_operator_existing`).
//!
//! Lives in `resources/`: may use `framework`, `flux`, `cluster`.

use crate::cluster::objects::{Cluster, ObjectRef};
use crate::flux::hazards::{self, InstanceChange, Severity};
use crate::flux::instance::{API_VERSION, FluxInstance, KIND};
use crate::flux::normalize::validate_spec;
use crate::flux::operator_shape::Installer;
use crate::framework::diagnostics::Diagnostics;
use crate::framework::model::Value;
use crate::framework::path::AttrPath;
use crate::resources::common::{
    PlanDryRun, api_field_to_path, apply_error, dry_run_at_plan, find_operator_namespace,
};
use crate::resources::flux_bootstrap_git_manifest::operator_model;
use crate::resources::flux_bootstrap_git_model::BootstrapModel;
use crate::resources::flux_instance_live::{from_dynamic, to_dynamic};
use crate::resources::flux_instance_model::TargetModel;
use crate::resources::flux_operator_existing::refuse_foreign;

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

/// The hazards of writing `instance` over what runs in the cluster (when `cluster` is given:
/// the live FluxInstance and the operator's namespace; a read that fails only leaves that part
/// unchecked). Returns the warnings.
///
/// # Errors
///
/// The hazards that must fail the plan, at the bootstrap's attribute paths.
pub async fn check_hazards(
    cluster: Option<&Cluster>,
    instance: &FluxInstance,
) -> Result<Diagnostics, Diagnostics> {
    let name = instance.metadata.name.clone().unwrap_or_default();
    let namespace = instance.metadata.namespace.clone().unwrap_or_default();
    let (live, operator_namespace) = match cluster {
        Some(cluster) => {
            let reference = ObjectRef::new(API_VERSION, KIND, Some(&namespace), &name);
            let live = match cluster.get(&reference).await {
                Ok(Some(object)) => from_dynamic(&object).ok(),
                Ok(None) | Err(_) => None,
            };
            let operator = find_operator_namespace(cluster).await.ok().flatten();
            (live, operator)
        }
        None => (None, None),
    };
    let change = InstanceChange {
        name: &name,
        namespace: &namespace,
        operator_namespace: operator_namespace.as_deref(),
        desired: &instance.spec,
        live: live.as_ref(),
    };
    let mut errors = Diagnostics::new();
    let mut warnings = Diagnostics::new();
    // The bootstrap's FluxInstance is applied from Git by its own sync Kustomization by design:
    // the "also managed by Flux" warning does not apply to it.
    let own = hazards::instance_hazards(&change)
        .into_iter()
        .filter(|h| h.field != "metadata.labels");
    for hazard in own {
        let detail = format!("{}.", hazard.detail);
        let out = match hazard.severity {
            Severity::Error => &mut errors,
            Severity::Warning => &mut warnings,
        };
        let path = if hazard.field.starts_with("metadata.") {
            (hazard.field == "metadata.namespace").then(|| AttrPath::attr("namespace"))
        } else {
            attribute_of(&hazard.field)
        };
        match (hazard.severity, path) {
            (Severity::Error, Some(p)) => out.error_at(p, hazard.summary, detail),
            (Severity::Error, None) => out.error(hazard.summary, detail),
            (Severity::Warning, Some(p)) => out.warning_at(p, hazard.summary, detail),
            (Severity::Warning, None) => out.warning(hazard.summary, detail),
        }
    }
    if errors.has_errors() {
        Err(errors)
    } else {
        Ok(warnings)
    }
}

/// Refuses, when the cluster is known and apply would install the operator (`planned` names a
/// version or manifests, on create or with changed `operator` settings), a namespace that runs
/// an operator installed by Helm or under another Deployment name, at `operator`. Reads only.
///
/// # Errors
///
/// The refusal naming the Deployment found and what to do, or a failed read.
pub async fn check_operator(
    cluster: Option<&Cluster>,
    prior: Option<&BootstrapModel>,
    planned: &BootstrapModel,
) -> Result<(), Diagnostics> {
    let installs = prior.is_none_or(|p| p.operator != planned.operator);
    let (Some(cluster), true, Some(_), Some(namespace)) = (
        cluster,
        installs,
        operator_model(planned),
        planned.namespace.as_known(),
    ) else {
        return Ok(());
    };
    refuse_foreign(cluster, namespace, Installer::Bootstrap)
        .await
        .map_err(|mut diagnostics| {
            for d in &mut diagnostics.0 {
                d.path.get_or_insert_with(|| AttrPath::attr("operator"));
            }
            diagnostics
        })
}

/// `Deployment/kustomize-controller`, `kind=Deployment, label_selector=…`: what a patch targets.
fn describe_target(target: &TargetModel) -> String {
    let kind = target.kind.as_known().map_or("*", String::as_str);
    let mut out = match target.name.as_known() {
        Some(name) => format!("{kind}/{name}"),
        None => format!("every {kind}"),
    };
    if let Some(selector) = target.label_selector.as_known() {
        out.push_str(&format!(" with labels {selector}"));
    }
    out
}

/// Warnings for the kustomize patches of `prior` (what the installation applies today) that
/// `planned` no longer has: dropping one reverts its change in the cluster once the operator
/// reconciles. Nothing while the planned patches are unknown.
pub fn dropped_patches(prior: &BootstrapModel, planned: &BootstrapModel) -> Diagnostics {
    let mut out = Diagnostics::new();
    let before = match &prior.kustomize {
        Value::Known(k) => k.patches.as_known().cloned().unwrap_or_default(),
        _ => Vec::new(),
    };
    let after = match &planned.kustomize {
        Value::Unknown => return out,
        Value::Null => Vec::new(),
        Value::Known(k) => match &k.patches {
            Value::Unknown => return out,
            Value::Null => Vec::new(),
            Value::Known(list) => list.clone(),
        },
    };
    for (index, patch) in before.iter().enumerate() {
        if after.contains(patch) {
            continue;
        }
        let target = patch.target.as_known().map_or_else(
            || "the target its own YAML names".to_owned(),
            describe_target,
        );
        let text = patch.patch.as_known().map_or("", String::as_str).trim_end();
        out.warning_at(
            AttrPath::attr("kustomize").then_attr("patches"),
            "Kustomize Patch Dropped",
            format!(
                "The installation applies kustomize.patches[{index}] (target {target}) today, \
                 and the configuration no longer has it: once applied, the operator reverts its \
                 change. To keep it, add it to kustomize.patches (`terraform plan \
                 -generate-config-out=FILE` after an import writes every patch the installation \
                 has):\n\n{text}"
            ),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::flux_instance_model::{KustomizeModel, PatchModel};
    use pretty_assertions::assert_eq;

    fn with_patches(patches: Value<Vec<PatchModel>>) -> BootstrapModel {
        BootstrapModel {
            kustomize: Value::Known(KustomizeModel { patches }),
            ..BootstrapModel::default()
        }
    }

    fn patch(name: &str, replicas: u8) -> PatchModel {
        PatchModel {
            patch: Value::Known(format!(
                "- op: replace\n  path: /spec/replicas\n  value: {replicas}\n"
            )),
            target: Value::Known(TargetModel {
                kind: Value::Known("Deployment".into()),
                name: Value::Known(name.into()),
                ..TargetModel::default()
            }),
        }
    }

    #[test]
    fn dropped_patches_warn_naming_each_patch_and_its_text() {
        let prior = with_patches(Value::Known(vec![
            patch("kustomize-controller", 2),
            patch("source-controller", 3),
        ]));
        // Kept, changed or dropped: only what the plan no longer has warns.
        let kept_one = with_patches(Value::Known(vec![patch("kustomize-controller", 2)]));
        let warnings = dropped_patches(&prior, &kept_one);
        let details: Vec<(String, String, String)> = warnings
            .iter()
            .map(|d| {
                (
                    d.summary.clone(),
                    d.path.as_ref().map(ToString::to_string).unwrap_or_default(),
                    d.detail.clone(),
                )
            })
            .collect();
        assert_eq!(
            details,
            vec![(
                "Kustomize Patch Dropped".to_owned(),
                "kustomize.patches".to_owned(),
                "The installation applies kustomize.patches[1] (target \
                 Deployment/source-controller) today, and the configuration no longer has it: \
                 once applied, the operator reverts its change. To keep it, add it to \
                 kustomize.patches (`terraform plan -generate-config-out=FILE` after an import \
                 writes every patch the installation has):\n\n- op: replace\n  path: \
                 /spec/replicas\n  value: 3"
                    .to_owned()
            )]
        );
        assert_eq!(
            dropped_patches(&prior, &BootstrapModel::default())
                .iter()
                .count(),
            2
        );
        assert_eq!(
            dropped_patches(&prior, &with_patches(Value::Null))
                .iter()
                .count(),
            2
        );
        assert!(dropped_patches(&prior, &prior).is_empty());
        assert!(dropped_patches(&prior, &with_patches(Value::Unknown)).is_empty());
        let unknown = BootstrapModel {
            kustomize: Value::Unknown,
            ..BootstrapModel::default()
        };
        assert!(dropped_patches(&prior, &unknown).is_empty());
        assert!(dropped_patches(&BootstrapModel::default(), &prior).is_empty());
    }

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
