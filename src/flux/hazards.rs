//! Plan-time hazards of a FluxInstance change: what the operator would refuse or stall on, and
//! what would silently delete things, found before apply (DESIGN.md §3.2).
//!
//! Errors: a name other than `flux`; a namespace other than the operator's; a version constraint
//! that does not parse or only allows a lower minor than the one applied; a change of the
//! effective `sync.name` (immutable, and a new name garbage-collects the old sync objects).
//! Warnings: removing `sync` or changing `sync.kind` (the generated Kustomization is garbage
//! collected and prunes what it applied); an object adopted by a Flux Kustomization or
//! HelmRelease (two owners). Pure: no I/O, nothing else from this crate.

use crate::flux::instance::{FluxInstance, FluxInstanceSpec, INSTANCE_NAME, adopted_by_flux};
use crate::flux::version::{FluxVersion, VersionConstraint};

/// How serious a hazard is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// The plan must fail.
    Error,
    /// The plan proceeds with a warning.
    Warning,
}

/// One hazard, ready to become a diagnostic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hazard {
    /// Error or warning.
    pub severity: Severity,
    /// The field concerned, in API names (`metadata.name`, `spec.sync.name`).
    pub field: String,
    /// A short title.
    pub summary: String,
    /// What happens and what to do.
    pub detail: String,
}

/// What a plan knows about a FluxInstance change.
#[derive(Clone, Copy, Debug)]
pub struct InstanceChange<'a> {
    /// The desired `metadata.name`.
    pub name: &'a str,
    /// The desired `metadata.namespace`.
    pub namespace: &'a str,
    /// The operator's runtime namespace, when known (the `flux-operator` Deployment's namespace).
    pub operator_namespace: Option<&'a str>,
    /// The desired spec.
    pub desired: &'a FluxInstanceSpec,
    /// The object in the cluster, when it exists.
    pub live: Option<&'a FluxInstance>,
}

/// The effective name of the generated sync objects: `sync.name`, or the namespace.
pub fn effective_sync_name<'a>(spec: &'a FluxInstanceSpec, namespace: &'a str) -> Option<&'a str> {
    spec.sync
        .as_ref()
        .map(|s| s.name.as_deref().unwrap_or(namespace))
}

/// Every hazard of the change, errors and warnings, in a stable order.
pub fn instance_hazards(change: &InstanceChange<'_>) -> Vec<Hazard> {
    let mut out = Vec::new();
    let mut push = |severity, field: &str, summary: &str, detail: String| {
        out.push(Hazard {
            severity,
            field: field.to_owned(),
            summary: summary.to_owned(),
            detail,
        });
    };
    if change.name != INSTANCE_NAME {
        push(
            Severity::Error,
            "metadata.name",
            "Unsupported FluxInstance name",
            format!(
                "the only accepted name for a FluxInstance is 'flux', got {:?}",
                change.name
            ),
        );
    }
    if let Some(operator_ns) = change.operator_namespace
        && operator_ns != change.namespace
    {
        push(
            Severity::Error,
            "metadata.namespace",
            "FluxInstance outside the operator's namespace",
            format!(
                "the Flux Operator runs in namespace {operator_ns:?} and only reconciles the \
                 FluxInstance in that namespace; {:?} would be ignored",
                change.namespace
            ),
        );
    }
    match VersionConstraint::parse(&change.desired.distribution.version) {
        Err(e) => push(
            Severity::Error,
            "spec.distribution.version",
            "Invalid Flux version",
            e.to_string(),
        ),
        Ok(constraint) => {
            let applied = change
                .live
                .and_then(|l| l.status.as_ref())
                .and_then(|s| s.last_applied_revision.as_deref())
                .and_then(|r| FluxVersion::from_revision(r).ok());
            if let Some(current) = applied
                && let Err(e) = constraint.check_no_minor_downgrade(&current)
            {
                push(
                    Severity::Error,
                    "spec.distribution.version",
                    "Flux minor version downgrade",
                    e.to_string(),
                );
            }
        }
    }
    if let Some(live) = change.live {
        let live_ns = live
            .metadata
            .namespace
            .as_deref()
            .unwrap_or(change.namespace);
        let before = effective_sync_name(&live.spec, live_ns);
        let after = effective_sync_name(change.desired, change.namespace);
        match (before, after) {
            (Some(b), Some(a)) if a != b => push(
                Severity::Error,
                "spec.sync.name",
                "sync.name cannot change",
                format!(
                    "the sync objects are named {b:?}; renaming them to {a:?} is rejected by the \
                     API (\"Sync name is immutable\") or, when the name was implicit, makes the \
                     operator garbage-collect the old Kustomization, which prunes everything it \
                     applied"
                ),
            ),
            (Some(b), None) => push(
                Severity::Warning,
                "spec.sync",
                "Removing sync",
                format!(
                    "the operator will garbage-collect the generated source and Kustomization \
                     {b:?}; the Kustomization prunes everything it applied"
                ),
            ),
            _ => {}
        }
        if let (Some(b), Some(a)) = (&live.spec.sync, &change.desired.sync)
            && a.kind != b.kind
        {
            push(
                Severity::Warning,
                "spec.sync.kind",
                "Changing sync.kind",
                format!(
                    "the generated {} is replaced by a {}; the operator garbage-collects the old \
                     source and the Kustomization is recreated, which prunes what it applied",
                    b.kind, a.kind
                ),
            );
        }
        if let Some(label) = adopted_by_flux(&live.metadata) {
            push(
                Severity::Warning,
                "metadata.labels",
                "FluxInstance also managed by Flux",
                format!(
                    "the object carries {label}: a Flux applier manages it from Git as well, so \
                     Terraform and Flux will overwrite each other's changes"
                ),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flux::instance::{
        Distribution, FluxInstanceStatus, LABEL_KUSTOMIZE_NAME, SyncKind, SyncSpec,
    };
    use std::collections::BTreeMap;

    fn spec(version: &str, sync_name: Option<&str>, kind: Option<SyncKind>) -> FluxInstanceSpec {
        FluxInstanceSpec {
            distribution: Distribution {
                version: version.into(),
                registry: "ghcr.io/fluxcd".into(),
                ..Distribution::default()
            },
            sync: kind.map(|kind| SyncSpec {
                kind,
                url: "https://git.example/fleet.git".into(),
                git_ref: "refs/heads/main".into(),
                path: "clusters/prod".into(),
                pull_secret: None,
                interval: None,
                name: sync_name.map(str::to_owned),
                provider: None,
            }),
            ..FluxInstanceSpec::default()
        }
    }

    fn live(spec: FluxInstanceSpec, revision: &str, adopted: bool) -> FluxInstance {
        let mut object = FluxInstance::new("flux-system", spec);
        object.status = Some(FluxInstanceStatus {
            last_applied_revision: Some(revision.into()),
            ..FluxInstanceStatus::default()
        });
        if adopted {
            object.metadata.labels = Some(BTreeMap::from([(
                LABEL_KUSTOMIZE_NAME.to_owned(),
                "flux-system".to_owned(),
            )]));
        }
        object
    }

    fn run(
        name: &str,
        namespace: &str,
        desired: &FluxInstanceSpec,
        live: Option<&FluxInstance>,
    ) -> Vec<(Severity, String)> {
        instance_hazards(&InstanceChange {
            name,
            namespace,
            operator_namespace: Some("flux-system"),
            desired,
            live,
        })
        .into_iter()
        .map(|h| (h.severity, h.field))
        .collect()
    }

    #[test]
    fn hazards_are_found_at_plan() {
        let git = Some(SyncKind::GitRepository);
        let current = live(spec("2.7.x", None, git), "v2.7.5@sha256:abc", false);
        type Case<'a> = (
            &'a str,
            &'a str,
            &'a str,
            FluxInstanceSpec,
            Option<&'a FluxInstance>,
            Vec<(Severity, String)>,
        );
        let cases: Vec<Case<'_>> = vec![
            (
                "create-ok",
                "flux",
                "flux-system",
                spec("2.7.x", None, git),
                None,
                vec![],
            ),
            (
                "update-ok",
                "flux",
                "flux-system",
                spec("2.x", Some("flux-system"), git),
                Some(&current),
                vec![],
            ),
            (
                "patch-downgrade-ok",
                "flux",
                "flux-system",
                spec("2.7.0", None, git),
                Some(&current),
                vec![],
            ),
            (
                "bad-name",
                "main",
                "flux-system",
                spec("2.7.x", None, git),
                None,
                vec![(Severity::Error, "metadata.name".into())],
            ),
            (
                "bad-namespace",
                "flux",
                "flux",
                spec("2.7.x", None, git),
                None,
                vec![(Severity::Error, "metadata.namespace".into())],
            ),
            (
                "bad-version",
                "flux",
                "flux-system",
                spec("latest", None, git),
                None,
                vec![(Severity::Error, "spec.distribution.version".into())],
            ),
            (
                "minor-downgrade",
                "flux",
                "flux-system",
                spec("2.6.x", None, git),
                Some(&current),
                vec![(Severity::Error, "spec.distribution.version".into())],
            ),
            (
                "sync-name-change",
                "flux",
                "flux-system",
                spec("2.7.x", Some("fleet"), git),
                Some(&current),
                vec![(Severity::Error, "spec.sync.name".into())],
            ),
            (
                "sync-removed",
                "flux",
                "flux-system",
                spec("2.7.x", None, None),
                Some(&current),
                vec![(Severity::Warning, "spec.sync".into())],
            ),
            (
                "sync-kind-change",
                "flux",
                "flux-system",
                spec("2.7.x", None, Some(SyncKind::OciRepository)),
                Some(&current),
                vec![(Severity::Warning, "spec.sync.kind".into())],
            ),
        ];
        for (case, name, namespace, desired, live_obj, want) in cases {
            assert_eq!(
                run(name, namespace, &desired, live_obj),
                want,
                "case {case}"
            );
        }
        let adopted = live(spec("2.7.x", None, git), "v2.7.5@sha256:abc", true);
        assert_eq!(
            run(
                "flux",
                "flux-system",
                &spec("2.7.x", None, git),
                Some(&adopted)
            ),
            vec![(Severity::Warning, "metadata.labels".to_owned())]
        );
    }

    #[test]
    fn hazard_details_explain_the_problem() {
        let current = live(
            spec("2.7.x", None, Some(SyncKind::GitRepository)),
            "v2.7.5@sha256:abc",
            false,
        );
        let got = instance_hazards(&InstanceChange {
            name: "flux",
            namespace: "flux-system",
            operator_namespace: None,
            desired: &spec("2.6.x", None, Some(SyncKind::GitRepository)),
            live: Some(&current),
        });
        assert_eq!(
            got,
            vec![Hazard {
                severity: Severity::Error,
                field: "spec.distribution.version".into(),
                summary: "Flux minor version downgrade".into(),
                detail:
                    "Flux v2.7.5 is installed and \"2.6.x\" only allows a lower minor version; \
                         the Flux Operator does not support downgrading to a lower minor version \
                         (a reinstall is needed)"
                        .into(),
            }]
        );
    }
}
