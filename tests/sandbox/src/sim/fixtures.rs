//! The project's own fixtures (`tests/sandbox/fixtures/`), embedded with `include_str!`: Flux
//! Operator and Flux CRDs, the operator install manifest (and a templated other version), and a
//! classic `flux bootstrap` install. Plus helpers to parse multi-document YAML and to apply it
//! through a `kube::Client` with server-side apply.
//!
//! Depends on `sim::ops` for the apply; nothing else.

use kube::Client;
use serde_json::Value;

use super::ops::{Kube, OpsError};

/// FluxInstance CRD (`fluxinstances.fluxcd.controlplane.io`).
pub const CRD_FLUXINSTANCES: &str = include_str!("../../fixtures/crds/fluxinstances.yaml");
/// ResourceSet CRD (`resourcesets.fluxcd.controlplane.io`).
pub const CRD_RESOURCESETS: &str = include_str!("../../fixtures/crds/resourcesets.yaml");
/// ResourceSetInputProvider CRD (minimal).
pub const CRD_RESOURCESETINPUTPROVIDERS: &str =
    include_str!("../../fixtures/crds/resourcesetinputproviders.yaml");
/// FluxReport CRD (minimal).
pub const CRD_FLUXREPORTS: &str = include_str!("../../fixtures/crds/fluxreports.yaml");
/// GitRepository CRD (minimal, unlabelled by bootstrap).
pub const CRD_GITREPOSITORIES: &str = include_str!("../../fixtures/crds/gitrepositories.yaml");
/// OCIRepository CRD (minimal; `v1` storage, `v1beta2` served).
pub const CRD_OCIREPOSITORIES: &str = include_str!("../../fixtures/crds/ocirepositories.yaml");
/// Bucket CRD (minimal; `v1` storage, `v1beta2` served).
pub const CRD_BUCKETS: &str = include_str!("../../fixtures/crds/buckets.yaml");
/// Kustomization CRD (minimal).
pub const CRD_KUSTOMIZATIONS: &str = include_str!("../../fixtures/crds/kustomizations.yaml");
/// The Flux Operator install manifest, version [`OPERATOR_VERSION`].
pub const OPERATOR_INSTALL: &str = include_str!("../../fixtures/operator-install.yaml");
/// The operator version of [`OPERATOR_INSTALL`].
pub const OPERATOR_VERSION: &str = "v0.58.1";
/// A second operator version for upgrade tests (see [`operator_install`]).
pub const OPERATOR_NEXT_VERSION: &str = "v0.59.0";
/// A classic `flux bootstrap` install of Flux v2.7.5 in `flux-system`.
pub const CLASSIC_BOOTSTRAP: &str = include_str!("../../fixtures/classic-bootstrap.yaml");
/// The Flux version of [`CLASSIC_BOOTSTRAP`].
pub const CLASSIC_BOOTSTRAP_VERSION: &str = "v2.7.5";

/// Errors parsing or applying fixtures.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    /// The YAML text is not a stream of objects.
    #[error("parse YAML: {0}")]
    Parse(String),
    /// Applying an object failed.
    #[error(transparent)]
    Apply(#[from] OpsError),
}

/// The operator install manifest for another operator version: [`OPERATOR_INSTALL`] with its
/// version (image tag and `app.kubernetes.io/version` labels) replaced by `version` (`v0.59.0`).
pub fn operator_install(version: &str) -> String {
    OPERATOR_INSTALL.replace(OPERATOR_VERSION, version)
}

/// Parses a multi-document YAML stream into objects, skipping empty documents.
pub fn parse_multi(yaml: &str) -> Result<Vec<Value>, FixtureError> {
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(yaml).map_err(|e| FixtureError::Parse(e.to_string()))?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// The Flux CRDs the simulated operator installs for a component (minimal fixtures): the
/// source kinds for `source-controller`, Kustomization for `kustomize-controller`, none for the
/// others (their CRDs are not simulated).
pub fn component_crds(component: &str) -> &'static [&'static str] {
    match component {
        "source-controller" => &[CRD_GITREPOSITORIES, CRD_OCIREPOSITORIES, CRD_BUCKETS],
        "kustomize-controller" => &[CRD_KUSTOMIZATIONS],
        _ => &[],
    }
}

/// Applies every object of a multi-document YAML stream with server-side apply (force) as
/// `field_manager`, in order. Namespaced objects without a namespace go to `default_namespace`.
/// Returns the applied objects as the server answered them. CRDs are not waited for: apply the
/// CRDs first and wait for them to be Established before applying their custom resources (or
/// use [`apply_yaml_staged`]).
pub async fn apply_yaml(
    client: &Client,
    yaml: &str,
    field_manager: &str,
    default_namespace: &str,
) -> Result<Vec<Value>, FixtureError> {
    let kube = Kube::new(client.clone(), field_manager);
    let mut out = Vec::new();
    for obj in parse_multi(yaml)? {
        out.push(kube.apply(&obj, default_namespace).await?);
    }
    Ok(out)
}

/// Like [`apply_yaml`], but applies Namespaces and CRDs first and waits (up to 30 s) until
/// those CRDs are Established before applying the rest, as `kubectl apply` users do in two steps.
pub async fn apply_yaml_staged(
    client: &Client,
    yaml: &str,
    field_manager: &str,
    default_namespace: &str,
) -> Result<Vec<Value>, FixtureError> {
    let kube = Kube::new(client.clone(), field_manager);
    let objects = parse_multi(yaml)?;
    let (first, rest): (Vec<Value>, Vec<Value>) = objects.into_iter().partition(|o| {
        matches!(
            o["kind"].as_str(),
            Some("Namespace" | "CustomResourceDefinition")
        )
    });
    let mut out = Vec::new();
    for obj in &first {
        out.push(kube.apply(obj, default_namespace).await?);
    }
    for obj in &first {
        if obj["kind"] == "CustomResourceDefinition" {
            let name = obj["metadata"]["name"].as_str().unwrap_or_default();
            kube.wait_crd_established(name, std::time::Duration::from_secs(30))
                .await?;
        }
    }
    for obj in &rest {
        out.push(kube.apply(obj, default_namespace).await?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(yaml: &str) -> Vec<String> {
        parse_multi(yaml)
            .unwrap()
            .iter()
            .map(|o| {
                format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap(),
                    o["metadata"]["name"].as_str().unwrap()
                )
            })
            .collect()
    }

    #[test]
    fn operator_install_has_the_release_shape() {
        assert_eq!(
            kinds(OPERATOR_INSTALL),
            [
                "Namespace/flux-system",
                "CustomResourceDefinition/fluxinstances.fluxcd.controlplane.io",
                "CustomResourceDefinition/fluxreports.fluxcd.controlplane.io",
                "CustomResourceDefinition/resourcesets.fluxcd.controlplane.io",
                "CustomResourceDefinition/resourcesetinputproviders.fluxcd.controlplane.io",
                "ClusterRole/flux-operator-edit",
                "ClusterRole/flux-operator-view",
                "ClusterRoleBinding/flux-operator-cluster-admin",
                "ServiceAccount/flux-operator",
                "Service/flux-operator",
                "Deployment/flux-operator",
            ]
        );
        let objs = parse_multi(OPERATOR_INSTALL).unwrap();
        let dep = objs.iter().find(|o| o["kind"] == "Deployment").unwrap();
        assert_eq!(
            dep["spec"]["template"]["spec"]["containers"][0]["image"],
            "ghcr.io/controlplaneio-fluxcd/flux-operator:v0.58.1"
        );
        let next = parse_multi(&operator_install(OPERATOR_NEXT_VERSION)).unwrap();
        let dep = next.iter().find(|o| o["kind"] == "Deployment").unwrap();
        assert_eq!(
            dep["spec"]["template"]["spec"]["containers"][0]["image"],
            "ghcr.io/controlplaneio-fluxcd/flux-operator:v0.59.0"
        );
        assert!(!operator_install(OPERATOR_NEXT_VERSION).contains(OPERATOR_VERSION));
    }

    #[test]
    fn install_crds_match_the_standalone_crds() {
        let install = parse_multi(OPERATOR_INSTALL).unwrap();
        for crd in [
            CRD_FLUXINSTANCES,
            CRD_FLUXREPORTS,
            CRD_RESOURCESETS,
            CRD_RESOURCESETINPUTPROVIDERS,
        ] {
            let standalone = parse_multi(crd).unwrap().remove(0);
            let name = &standalone["metadata"]["name"];
            let inside = install
                .iter()
                .find(|o| &o["metadata"]["name"] == name)
                .unwrap();
            assert_eq!(inside["spec"], standalone["spec"], "{name}");
        }
        let bootstrap = parse_multi(CLASSIC_BOOTSTRAP).unwrap();
        for crd in [
            CRD_GITREPOSITORIES,
            CRD_OCIREPOSITORIES,
            CRD_BUCKETS,
            CRD_KUSTOMIZATIONS,
        ] {
            let standalone = parse_multi(crd).unwrap().remove(0);
            let name = &standalone["metadata"]["name"];
            let inside = bootstrap
                .iter()
                .find(|o| &o["metadata"]["name"] == name)
                .unwrap();
            assert_eq!(inside["spec"], standalone["spec"], "{name}");
            assert_eq!(
                inside["metadata"]["labels"],
                serde_json::json!({
                    "app.kubernetes.io/component": standalone["metadata"]["labels"]["app.kubernetes.io/component"],
                    "app.kubernetes.io/instance": "flux-system",
                    "app.kubernetes.io/part-of": "flux",
                    "app.kubernetes.io/version": "v2.7.5",
                    "kustomize.toolkit.fluxcd.io/name": "flux-system",
                    "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
                })
            );
        }
    }

    #[test]
    fn classic_bootstrap_has_the_bootstrap_objects() {
        assert_eq!(
            kinds(CLASSIC_BOOTSTRAP),
            [
                "Namespace/flux-system",
                "CustomResourceDefinition/gitrepositories.source.toolkit.fluxcd.io",
                "CustomResourceDefinition/ocirepositories.source.toolkit.fluxcd.io",
                "CustomResourceDefinition/buckets.source.toolkit.fluxcd.io",
                "CustomResourceDefinition/kustomizations.kustomize.toolkit.fluxcd.io",
                "ServiceAccount/source-controller",
                "Deployment/source-controller",
                "ServiceAccount/kustomize-controller",
                "Deployment/kustomize-controller",
                "ServiceAccount/helm-controller",
                "Deployment/helm-controller",
                "ServiceAccount/notification-controller",
                "Deployment/notification-controller",
                "Secret/flux-system",
                "GitRepository/flux-system",
                "Kustomization/flux-system",
            ]
        );
        let objs = parse_multi(CLASSIC_BOOTSTRAP).unwrap();
        let images: Vec<&str> = objs
            .iter()
            .filter(|o| o["kind"] == "Deployment")
            .map(|o| {
                o["spec"]["template"]["spec"]["containers"][0]["image"]
                    .as_str()
                    .unwrap()
            })
            .collect();
        assert_eq!(
            images,
            [
                "ghcr.io/fluxcd/source-controller:v1.7.4",
                "ghcr.io/fluxcd/kustomize-controller:v1.7.3",
                "ghcr.io/fluxcd/helm-controller:v1.4.5",
                "ghcr.io/fluxcd/notification-controller:v1.7.5",
            ]
        );
    }
}
