//! Unit tests of the `flux_instance` resource.

use super::*;
use crate::framework::diagnostics::Severity;
use crate::framework::service::ClientCapabilities;
use crate::resources::flux_instance_model::DistributionModel;
use pretty_assertions::assert_eq;
use tokio_util::sync::CancellationToken;

/// Provider data without a cluster: plans must not need one.
struct NoCluster;

#[async_trait]
impl ClusterAccess for NoCluster {
    fn cluster_known(&self) -> bool {
        false
    }
    async fn cluster(&self) -> Result<Cluster, Diagnostics> {
        Err(Diagnostics::from_error("no cluster", "in this test"))
    }
}

fn ctx() -> Context<NoCluster> {
    Context::new(
        CancellationToken::new(),
        Some(std::sync::Arc::new(NoCluster)),
        ClientCapabilities::default(),
    )
}

fn applied() -> InstanceModel {
    InstanceModel {
        id: Value::Known("flux-system/flux".into()),
        name: Value::Known("flux".into()),
        namespace: Value::Known("flux-system".into()),
        distribution: Value::Known(DistributionModel {
            version: Value::Known("2.7.x".into()),
            registry: Value::Known("ghcr.io/fluxcd".into()),
            ..DistributionModel::default()
        }),
        components: Value::Known(vec!["source-controller".into()]),
        wait: Value::Known(true),
        migrate_resources: Value::Known(true),
        suspend: Value::Known(false),
        deletion_policy: Value::Known("uninstall".into()),
        ready: Value::Known(true),
        flux_version: Value::Known("v2.7.5".into()),
        last_applied_revision: Value::Known("v2.7.5@sha256:1".into()),
        component_images: Value::Known(Vec::new()),
        inventory_entries: Value::Known(3),
        installation_status: Value::Known(HEALTHY.into()),
        ..InstanceModel::default()
    }
}

#[test]
fn unchanged_instance_keeps_every_computed_value() {
    let mut ctx = ctx();
    let planned = plan_computed(&mut ctx, applied(), Some(&applied()), None);
    assert_eq!(planned, applied());
    assert!(ctx.diagnostics.is_empty());
}

#[test]
fn spec_change_makes_the_outcome_unknown_but_promises_ready() {
    let mut ctx = ctx();
    let mut proposed = applied();
    proposed.components = Value::Known(vec!["source-controller".into(), "helm-controller".into()]);
    let planned = plan_computed(&mut ctx, proposed.clone(), Some(&applied()), None);
    let mut expected = proposed;
    expected.ready = Value::Known(true);
    expected.flux_version = Value::Unknown;
    expected.last_applied_revision = Value::Unknown;
    expected.component_images = Value::Unknown;
    expected.inventory_entries = Value::Unknown;
    assert_eq!(planned, expected);
}

#[test]
fn installation_drift_is_a_pending_reconcile_with_a_warning() {
    let mut ctx = ctx();
    let mut prior = applied();
    prior.installation_status =
        Value::Known("Drifted: Deployment flux-system/source-controller missing".into());
    let planned = plan_computed(&mut ctx, prior.clone(), Some(&prior), None);
    assert_eq!(planned, applied());
    let warnings: Vec<(Severity, &str)> = ctx
        .diagnostics
        .iter()
        .map(|d| (d.severity, d.summary.as_str()))
        .collect();
    assert_eq!(
        warnings,
        vec![(Severity::Warning, "Flux Installation Will Be Reconciled")]
    );
    // A suspended instance is not reconciled: no pending change.
    let mut ctx = super::tests::ctx();
    let mut suspended = prior;
    suspended.suspend = Value::Known(true);
    let planned = plan_computed(&mut ctx, suspended.clone(), Some(&suspended), None);
    assert_eq!(planned, suspended);
}

/// Not Ready because the operator failed this very spec: nothing is planned (a reconcile request
/// would repeat the failure), and the warning quotes the verdict at `sync` when it names the
/// sync objects. Not Ready without a verdict (a wait cut short) still plans a re-wait.
#[test]
fn a_failed_reconcile_of_the_same_spec_is_reported_not_repeated() {
    let mut prior = applied();
    prior.ready = Value::Known(false);
    prior.sync = Value::Known(Default::default());
    let message = "reconciliation failed: timeout waiting for: [GitRepository/flux-system/\
                   flux-system status: 'Failed']";
    let mut ctx = ctx();
    let failure = Some(message.to_owned());
    let planned = plan_computed(&mut ctx, prior.clone(), Some(&prior), failure);
    assert_eq!(planned, prior);
    let got: Vec<_> = ctx
        .diagnostics
        .iter()
        .map(|d| (d.severity, d.summary.as_str(), d.path.clone()))
        .collect();
    assert_eq!(
        got,
        vec![(
            Severity::Warning,
            "Flux Installation Failing",
            Some(AttrPath::attr("sync"))
        )]
    );
    let detail = &ctx.diagnostics.iter().next().unwrap().detail;
    assert!(
        detail.contains(message) && detail.contains("`sync.path`"),
        "{detail}"
    );

    // The same verdict on an instance without sync points at `ready`.
    let mut no_sync = prior.clone();
    no_sync.sync = Value::Null;
    let mut ctx = super::tests::ctx();
    let failure = Some("Deployment/x/y: gone".to_owned());
    assert_eq!(
        plan_computed(&mut ctx, no_sync.clone(), Some(&no_sync), failure),
        no_sync
    );
    let paths: Vec<_> = ctx.diagnostics.iter().map(|d| d.path.clone()).collect();
    assert_eq!(paths, vec![Some(AttrPath::attr("ready"))]);

    // Without a verdict for this generation: the plan waits again.
    let mut ctx = super::tests::ctx();
    let planned = plan_computed(&mut ctx, prior.clone(), Some(&prior), None);
    assert_eq!(planned.ready, Value::Known(true));
    let summaries: Vec<_> = ctx.diagnostics.iter().map(|d| d.summary.as_str()).collect();
    assert_eq!(summaries, vec!["Flux Installation Will Be Reconciled"]);
}

#[tokio::test]
async fn unknown_provider_configuration_plans_without_the_cluster() {
    let mut ctx = ctx();
    let mut proposed = applied();
    proposed.ready = Value::Unknown;
    proposed.id = Value::Unknown;
    let planned = FluxInstanceResource
        .plan(
            &mut ctx,
            PlanChange {
                prior: None,
                proposed: proposed.clone(),
                config: proposed.clone(),
            },
        )
        .await
        .unwrap();
    assert_eq!(planned.state.id, Value::Known("flux-system/flux".into()));
    assert_eq!(planned.state.ready, Value::Unknown);
    assert!(ctx.diagnostics.is_empty());
}
