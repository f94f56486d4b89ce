//! How an operator already in the target namespace was installed, told from its Deployments,
//! and what `flux_operator` does about it. Three shapes exist in real clusters: the release
//! `install.yaml` (Deployment `flux-operator`, selector `{app.kubernetes.io/name}`: what this
//! provider applies), `flux-operator install` (same name, selector also on
//! `app.kubernetes.io/instance`: adopted by applying with the live selector, which is immutable)
//! and the Helm chart (Deployment `<release>-flux-operator`, or `<release>` when the release name
//! contains `flux-operator`, labelled `app.kubernetes.io/managed-by: Helm`: refused, since
//! installing next to it would run a second operator and Helm would fight the provider).
//!
//! Pure: decides from objects the caller read; no I/O, nothing else from this crate but
//! [`super::operator`].

use serde_json::{Map, Value, json};

use crate::flux::operator::DEPLOYMENT_NAME;

/// The label every shape puts on the operator's Deployment.
pub const NAME_LABEL: &str = "app.kubernetes.io/name";
/// The label selector that lists the operator Deployments of every shape.
pub const OPERATOR_SELECTOR: &str = "app.kubernetes.io/name=flux-operator";
const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
const HELM_RELEASE_ANNOTATION: &str = "meta.helm.sh/release-name";
const HELM_NAMESPACE_ANNOTATION: &str = "meta.helm.sh/release-namespace";

/// What is already installed in the target namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Existing {
    /// No operator Deployment, or `flux-operator` with the release selector: apply as usual.
    Release,
    /// `flux-operator` with another selector (`flux-operator install`): adopt it, rendering the
    /// Deployment with this live selector.
    OtherSelector(Map<String, Value>),
    /// An operator Deployment this provider must not take over (Helm, or another name).
    Foreign(Foreign),
}

/// An operator Deployment installed by something else.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Foreign {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// The Helm release that manages it, if Helm does.
    pub helm_release: Option<String>,
    /// The namespace of that release (the Deployment's when not annotated).
    pub helm_namespace: String,
}

fn str_at<'a>(object: &'a Value, pointer: &str) -> Option<&'a str> {
    object.pointer(pointer).and_then(Value::as_str)
}

fn label<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object
        .pointer("/metadata/labels")
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
}

fn helm_release(deployment: &Value) -> Option<String> {
    let annotated = deployment
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(HELM_RELEASE_ANNOTATION))
        .and_then(Value::as_str);
    let by_helm = label(deployment, MANAGED_BY_LABEL) == Some("Helm");
    annotated
        .or_else(|| by_helm.then(|| label(deployment, INSTANCE_LABEL)).flatten())
        .map(str::to_owned)
        .or_else(|| by_helm.then(|| deployment_name(deployment).to_owned()))
}

fn deployment_name(deployment: &Value) -> &str {
    str_at(deployment, "/metadata/name").unwrap_or("")
}

fn foreign(namespace: &str, deployment: &Value) -> Foreign {
    let helm_namespace = deployment
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(HELM_NAMESPACE_ANNOTATION))
        .and_then(Value::as_str)
        .unwrap_or(namespace)
        .to_owned();
    Foreign {
        namespace: namespace.to_owned(),
        name: deployment_name(deployment).to_owned(),
        helm_release: helm_release(deployment),
        helm_namespace,
    }
}

/// Classifies the target namespace from its operator Deployments: `ours` is the Deployment
/// named [`DEPLOYMENT_NAME`] (if any), `labelled` those carrying
/// `app.kubernetes.io/name=flux-operator` (which may include `ours`). `release_selector` is the
/// `matchLabels` of the Deployment about to be applied.
pub fn classify(
    namespace: &str,
    ours: Option<&Value>,
    labelled: &[Value],
    release_selector: Option<&Map<String, Value>>,
) -> Existing {
    if let Some(d) = ours
        && helm_release(d).is_some()
    {
        return Existing::Foreign(foreign(namespace, d));
    }
    if let Some(other) = labelled
        .iter()
        .find(|d| deployment_name(d) != DEPLOYMENT_NAME)
    {
        return Existing::Foreign(foreign(namespace, other));
    }
    let live = ours
        .and_then(|d| d.pointer("/spec/selector/matchLabels"))
        .and_then(Value::as_object);
    match (live, release_selector) {
        (Some(live), Some(wanted)) if live != wanted => Existing::OtherSelector(live.clone()),
        _ => Existing::Release,
    }
}

/// Which resource would install the operator next to a foreign installation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Installer {
    /// `flux_operator`.
    Operator,
    /// `flux_bootstrap_git` with `operator` settings that name a version or manifests.
    Bootstrap,
}

impl Foreign {
    /// What was found and what to do, for a diagnostic of `flux_operator`.
    pub fn advice(&self) -> String {
        self.advice_for(Installer::Operator)
    }

    /// What was found and what to do, for a diagnostic of `installer`.
    pub fn advice_for(&self, installer: Installer) -> String {
        let found = format!("Deployment {}/{}", self.namespace, self.name);
        let (who, keep) = match installer {
            Installer::Operator => (
                "flux_operator",
                "keep the existing installation and remove flux_operator from the configuration \
                 (flux_instance works with an operator installed any way)",
            ),
            Installer::Bootstrap => (
                "flux_bootstrap_git (its `operator` settings name a version or manifests)",
                "keep the existing installation and use flux_instance instead of \
                 flux_bootstrap_git to manage Flux on it",
            ),
        };
        match &self.helm_release {
            Some(release) => format!(
                "The namespace already runs a Flux Operator installed with Helm: {found}, \
                 managed by the Helm release {release:?} in namespace {:?}. {who} does not take \
                 over a Helm release (installing next to it would run a second operator). \
                 Either {keep}, or run `helm uninstall {release} -n {}` (the CRDs, and so every \
                 FluxInstance, stay) and apply again.",
                self.helm_namespace, self.helm_namespace
            ),
            None => format!(
                "The namespace already runs a Flux Operator Deployment under another name: \
                 {found}. {who} installs the Deployment {DEPLOYMENT_NAME:?} and would run a \
                 second operator next to it. Either {keep}, or delete that installation \
                 (`kubectl -n {} delete deployment {}`; keep the CRDs) and apply again.",
                self.namespace, self.name
            ),
        }
    }
}

/// The `matchLabels` of the operator Deployment in `objects`.
pub fn release_selector(objects: &[Value]) -> Option<&Map<String, Value>> {
    operator_deployment(objects)
        .and_then(|d| d.pointer("/spec/selector/matchLabels"))
        .and_then(Value::as_object)
}

fn operator_deployment(objects: &[Value]) -> Option<&Value> {
    objects
        .iter()
        .find(|o| str_at(o, "/kind") == Some("Deployment") && deployment_name(o) == DEPLOYMENT_NAME)
}

/// Renders the operator Deployment with `selector` (the live, immutable one) and pod template
/// labels that include every label of it, so that applying over an installation made by
/// `flux-operator install` is accepted and selects the same pods.
pub fn adopt_selector(objects: &mut [Value], selector: &Map<String, Value>) {
    let Some(deployment) = objects.iter_mut().find(|o| {
        str_at(o, "/kind") == Some("Deployment") && deployment_name(o) == DEPLOYMENT_NAME
    }) else {
        return;
    };
    if let Some(Value::Object(spec)) = deployment.get_mut("spec") {
        spec.insert("selector".into(), json!({"matchLabels": selector}));
        let template = spec
            .entry("template")
            .or_insert_with(|| json!({}))
            .as_object_mut();
        if let Some(template) = template {
            let metadata = template.entry("metadata").or_insert_with(|| json!({}));
            if let Some(metadata) = metadata.as_object_mut() {
                let labels = metadata.entry("labels").or_insert_with(|| json!({}));
                if let Some(labels) = labels.as_object_mut() {
                    for (key, value) in selector {
                        labels.insert(key.clone(), value.clone());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn deployment(name: &str, selector: Value, labels: Value, annotations: Value) -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": "flux-system", "labels": labels, "annotations": annotations},
            "spec": {"selector": {"matchLabels": selector}, "template": {"metadata": {"labels": selector}}},
        })
    }

    fn release() -> Map<String, Value> {
        json!({"app.kubernetes.io/name": "flux-operator"})
            .as_object()
            .cloned()
            .unwrap()
    }

    #[test]
    fn installation_shapes_are_told_apart() {
        let release_shape = deployment(
            "flux-operator",
            json!({"app.kubernetes.io/name": "flux-operator"}),
            json!({"app.kubernetes.io/name": "flux-operator"}),
            json!({}),
        );
        let cli_selector = json!({"app.kubernetes.io/name": "flux-operator", "app.kubernetes.io/instance": "flux-operator"});
        let cli_shape = deployment(
            "flux-operator",
            cli_selector.clone(),
            cli_selector.clone(),
            json!({}),
        );
        let helm = |name: &str, release: &str| {
            deployment(
                name,
                json!({"app.kubernetes.io/name": "flux-operator", "app.kubernetes.io/instance": release}),
                json!({"app.kubernetes.io/name": "flux-operator", "app.kubernetes.io/instance": release, "app.kubernetes.io/managed-by": "Helm"}),
                json!({"meta.helm.sh/release-name": release, "meta.helm.sh/release-namespace": "flux-system"}),
            )
        };
        let helm_found = |name: &str, release: Option<&str>| {
            Existing::Foreign(Foreign {
                namespace: "flux-system".into(),
                name: name.into(),
                helm_release: release.map(str::to_owned),
                helm_namespace: "flux-system".into(),
            })
        };
        let other = deployment(
            "my-operator",
            json!({"app.kubernetes.io/name": "flux-operator"}),
            json!({"app.kubernetes.io/name": "flux-operator"}),
            json!({}),
        );
        let named_helm = helm("flux-operator", "flux-operator");
        let prefixed_helm = helm("ops-flux-operator", "ops");
        let cases: Vec<(&str, Option<&Value>, Vec<Value>, Existing)> = vec![
            ("empty namespace", None, vec![], Existing::Release),
            (
                "release install.yaml",
                Some(&release_shape),
                vec![release_shape.clone()],
                Existing::Release,
            ),
            (
                "flux-operator install (CLI)",
                Some(&cli_shape),
                vec![cli_shape.clone()],
                Existing::OtherSelector(cli_selector.as_object().cloned().unwrap()),
            ),
            (
                "helm release named flux-operator",
                Some(&named_helm),
                vec![named_helm.clone()],
                helm_found("flux-operator", Some("flux-operator")),
            ),
            (
                "helm release ops",
                None,
                vec![prefixed_helm.clone()],
                helm_found("ops-flux-operator", Some("ops")),
            ),
            (
                "helm next to ours",
                Some(&release_shape),
                vec![release_shape.clone(), prefixed_helm.clone()],
                helm_found("ops-flux-operator", Some("ops")),
            ),
            (
                "another name, not helm",
                None,
                vec![other.clone()],
                helm_found("my-operator", None),
            ),
        ];
        for (name, ours, labelled, want) in cases {
            assert_eq!(
                classify("flux-system", ours, &labelled, Some(&release())),
                want,
                "case {name}"
            );
        }
    }

    #[test]
    fn advice_names_what_was_found_and_what_to_do() {
        let helm = Foreign {
            namespace: "flux-system".into(),
            name: "ops-flux-operator".into(),
            helm_release: Some("ops".into()),
            helm_namespace: "flux-system".into(),
        };
        let text = helm.advice();
        for needle in [
            "Deployment flux-system/ops-flux-operator",
            "Helm release \"ops\"",
            "remove flux_operator from the configuration",
            "`helm uninstall ops -n flux-system`",
        ] {
            assert!(text.contains(needle), "{needle} in {text}");
        }
        let other = Foreign {
            helm_release: None,
            name: "my-operator".into(),
            ..helm
        };
        assert!(
            other
                .advice()
                .contains("`kubectl -n flux-system delete deployment my-operator`"),
            "{}",
            other.advice()
        );
    }

    #[test]
    fn adopted_selector_and_template_labels() {
        let install =
            crate::flux::operator::parse_manifests(include_str!("testdata/operator/install.yaml"))
                .unwrap();
        assert_eq!(release_selector(&install), Some(&release()));
        let mut objects = install.clone();
        let cli = json!({"app.kubernetes.io/name": "flux-operator", "app.kubernetes.io/instance": "flux-operator"});
        adopt_selector(&mut objects, cli.as_object().unwrap());
        let d = operator_deployment(&objects).unwrap();
        assert_eq!(d["spec"]["selector"], json!({"matchLabels": cli}));
        let labels = d["spec"]["template"]["metadata"]["labels"]
            .as_object()
            .unwrap();
        for (k, v) in cli.as_object().unwrap() {
            assert_eq!(labels.get(k), Some(v), "template label {k}");
        }
        // Everything else is as the manifests have it.
        let others = |o: &[Value]| {
            o.iter()
                .filter(|x| x["kind"] != "Deployment")
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(others(&objects), others(&install));
    }
}
