//! The RBAC objects and the ResourceQuota of a Flux install, as the operator's builder writes
//! them (upstream `internal/builder/build.go` `generate`: the distribution's `rbac.yaml` under a
//! `roles` kustomization whose `nameSuffix` is `-<namespace>` (`kustomizationRolesTmpl` in
//! `internal/builder/templates.go`), with the subjects' `flux-system` replaced by the instance's
//! namespace; v0.58.1, distributions `config/data/flux/v2.2.3` … `v2.9.4`).
//!
//! For an instance in namespace `<ns>`:
//! - ResourceQuota `critical-pods-<ns>` (namespaced): 1000 pods of the `system-node-critical`
//!   and `system-cluster-critical` priority classes;
//! - ClusterRole `crd-controller-<ns>`: every verb on the Flux API groups, the core reads, events,
//!   ConfigMaps and leases the controllers need; `source.extensions.fluxcd.io` from Flux 2.7,
//!   the `/livez/ping` rule from 2.3. The distribution's `serviceaccounts/token` rule (from 2.6)
//!   is removed by the operator unless `cluster.objectLevelWorkloadIdentity` is true (upstream
//!   `internal/builder/workload_identity.go`, `RemovePermissionForCreatingServiceAccountTokens`).
//!   With notification-controller installed the operator appends a rule for
//!   `fluxcd.controlplane.io` (upstream `notificationPatchTmpl`, `internal/builder/components.go`);
//! - ClusterRoles `flux-edit-<ns>` and `flux-view-<ns>` (aggregated into admin/edit/view);
//! - ClusterRoleBinding `cluster-reconciler-<ns>` (cluster-admin to kustomize- and
//!   helm-controller) and `crd-controller-<ns>` (to every controller's ServiceAccount, whether
//!   or not the component is installed; source-watcher from 2.7).
//!
//! Not simulated: the workload-identity feature-gate arguments that go with
//! `objectLevelWorkloadIdentity`. Pure code.

use serde_json::{Value, json};

use super::version::Version;

/// The Flux API groups the `flux-edit` and `flux-view` roles cover, in the distribution's order.
const EDIT_VIEW_GROUPS: [&str; 5] = [
    "notification.toolkit.fluxcd.io",
    "source.toolkit.fluxcd.io",
    "helm.toolkit.fluxcd.io",
    "image.toolkit.fluxcd.io",
    "kustomize.toolkit.fluxcd.io",
];

/// The ServiceAccounts bound to `crd-controller` in every distribution, in its order.
const CRD_CONTROLLER_SUBJECTS: [&str; 6] = [
    "kustomize-controller",
    "helm-controller",
    "source-controller",
    "notification-controller",
    "image-reflector-controller",
    "image-automation-controller",
];

fn all_of(group: &str) -> Value {
    json!({"apiGroups": [group], "resources": ["*"], "verbs": ["*"]})
}

fn crd_controller_rules(version: &Version, spec: &Value, components: &[String]) -> Vec<Value> {
    let mut rules: Vec<Value> = [
        "source.toolkit.fluxcd.io",
        "kustomize.toolkit.fluxcd.io",
        "helm.toolkit.fluxcd.io",
        "notification.toolkit.fluxcd.io",
        "image.toolkit.fluxcd.io",
    ]
    .iter()
    .map(|g| all_of(g))
    .collect();
    if *version >= Version::new(2, 7, 0) {
        rules.push(all_of("source.extensions.fluxcd.io"));
    }
    rules.extend([
        json!({"apiGroups": [""],
               "resources": ["namespaces", "secrets", "configmaps", "serviceaccounts"],
               "verbs": ["get", "list", "watch"]}),
        json!({"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]}),
        json!({"apiGroups": [""], "resources": ["configmaps"],
               "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]}),
        json!({"apiGroups": [""], "resources": ["configmaps/status"],
               "verbs": ["get", "update", "patch"]}),
        json!({"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
               "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]}),
    ]);
    let object_level_identity =
        spec["cluster"]["objectLevelWorkloadIdentity"].as_bool() == Some(true);
    if *version >= Version::new(2, 6, 0) && object_level_identity {
        rules.push(
            json!({"apiGroups": [""], "resources": ["serviceaccounts/token"],
                          "verbs": ["create"]}),
        );
    }
    if *version >= Version::new(2, 3, 0) {
        rules.push(json!({"nonResourceURLs": ["/livez/ping"], "verbs": ["head"]}));
    }
    if components.iter().any(|c| c == "notification-controller") {
        rules.push(all_of("fluxcd.controlplane.io"));
    }
    rules
}

fn subject(name: &str, namespace: &str) -> Value {
    json!({"kind": "ServiceAccount", "name": name, "namespace": namespace})
}

/// The ResourceQuota, ClusterRoles and ClusterRoleBindings of an install in `namespace`
/// (see the module documentation), in the distribution's order. The ClusterRoles and bindings
/// carry no namespace: they are cluster-scoped.
pub fn rbac_objects(
    spec: &Value,
    namespace: &str,
    version: &Version,
    components: &[String],
) -> Vec<Value> {
    let suffixed = |name: &str| format!("{name}-{namespace}");
    let mut edit_view_groups: Vec<&str> = EDIT_VIEW_GROUPS.to_vec();
    if *version >= Version::new(2, 7, 0) {
        edit_view_groups.push("source.extensions.fluxcd.io");
    }
    let mut crd_subjects: Vec<Value> = CRD_CONTROLLER_SUBJECTS
        .iter()
        .map(|s| subject(s, namespace))
        .collect();
    if *version >= Version::new(2, 7, 0) {
        crd_subjects.push(subject("source-watcher", namespace));
    }
    vec![
        json!({"apiVersion": "v1", "kind": "ResourceQuota",
               "metadata": {"name": suffixed("critical-pods"), "namespace": namespace},
               "spec": {"hard": {"pods": "1000"},
                        "scopeSelector": {"matchExpressions": [{
                            "operator": "In", "scopeName": "PriorityClass",
                            "values": ["system-node-critical", "system-cluster-critical"]}]}}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
               "metadata": {"name": suffixed("crd-controller")},
               "rules": crd_controller_rules(version, spec, components)}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
               "metadata": {"name": suffixed("flux-edit"),
                            "labels": {"rbac.authorization.k8s.io/aggregate-to-admin": "true",
                                       "rbac.authorization.k8s.io/aggregate-to-edit": "true"}},
               "rules": [{"apiGroups": edit_view_groups, "resources": ["*"],
                          "verbs": ["create", "delete", "deletecollection", "patch", "update"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
               "metadata": {"name": suffixed("flux-view"),
                            "labels": {"rbac.authorization.k8s.io/aggregate-to-admin": "true",
                                       "rbac.authorization.k8s.io/aggregate-to-edit": "true",
                                       "rbac.authorization.k8s.io/aggregate-to-view": "true"}},
               "rules": [{"apiGroups": edit_view_groups, "resources": ["*"],
                          "verbs": ["get", "list", "watch"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": suffixed("cluster-reconciler")},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                           "name": "cluster-admin"},
               "subjects": [subject("kustomize-controller", namespace),
                            subject("helm-controller", namespace)]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": suffixed("crd-controller")},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                           "name": suffixed("crd-controller")},
               "subjects": crd_subjects}),
    ]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn default_components() -> Vec<String> {
        super::super::build::DEFAULT_COMPONENTS
            .iter()
            .map(|c| c.to_string())
            .collect()
    }

    /// Upstream `config/data/flux/v2.9.4/rbac.yaml` through `kustomizationRolesTmpl`
    /// (`internal/builder/templates.go`), the token rule removed (no object-level workload
    /// identity) and the `fluxcd.controlplane.io` rule of `notificationPatchTmpl` appended.
    #[test]
    fn the_v2_9_crd_controller_role_follows_the_operator_builder() {
        let objs = rbac_objects(
            &json!({}),
            "apps",
            &Version::new(2, 9, 4),
            &default_components(),
        );
        let names: Vec<(&str, &str)> = objs
            .iter()
            .map(|o| {
                (
                    o["kind"].as_str().unwrap(),
                    o["metadata"]["name"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                ("ResourceQuota", "critical-pods-apps"),
                ("ClusterRole", "crd-controller-apps"),
                ("ClusterRole", "flux-edit-apps"),
                ("ClusterRole", "flux-view-apps"),
                ("ClusterRoleBinding", "cluster-reconciler-apps"),
                ("ClusterRoleBinding", "crd-controller-apps"),
            ]
        );
        let groups: Vec<Value> = objs[1]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                r.get("apiGroups")
                    .cloned()
                    .unwrap_or(r["nonResourceURLs"].clone())
            })
            .collect();
        assert_eq!(
            groups,
            [
                json!(["source.toolkit.fluxcd.io"]),
                json!(["kustomize.toolkit.fluxcd.io"]),
                json!(["helm.toolkit.fluxcd.io"]),
                json!(["notification.toolkit.fluxcd.io"]),
                json!(["image.toolkit.fluxcd.io"]),
                json!(["source.extensions.fluxcd.io"]),
                json!([""]),
                json!([""]),
                json!([""]),
                json!([""]),
                json!(["coordination.k8s.io"]),
                json!(["/livez/ping"]),
                json!(["fluxcd.controlplane.io"]),
            ]
        );
        assert_eq!(
            objs[5]["subjects"].as_array().unwrap().last().unwrap(),
            &json!({"kind": "ServiceAccount", "name": "source-watcher", "namespace": "apps"})
        );
        assert_eq!(objs[5]["roleRef"]["name"], "crd-controller-apps");
        assert!(objs[1]["metadata"].get("namespace").is_none());
    }

    /// Upstream `config/data/flux/v2.2.3/rbac.yaml` (no `/livez/ping`, no source-watcher) and
    /// `workload_identity.go` (the token rule is kept from 2.6 with object-level identity).
    #[test]
    fn older_distributions_and_object_level_identity_change_the_rules() {
        let only_source = vec!["source-controller".to_string()];
        let old = rbac_objects(
            &json!({}),
            "flux-system",
            &Version::new(2, 2, 3),
            &only_source,
        );
        assert_eq!(old[1]["rules"].as_array().unwrap().len(), 10);
        assert_eq!(old[5]["subjects"].as_array().unwrap().len(), 6);
        assert_eq!(old[2]["rules"][0]["apiGroups"].as_array().unwrap().len(), 5);
        let spec = json!({"cluster": {"objectLevelWorkloadIdentity": true}});
        let wi = rbac_objects(&spec, "flux-system", &Version::new(2, 6, 4), &only_source);
        let rules = wi[1]["rules"].as_array().unwrap();
        assert_eq!(
            rules[rules.len() - 2],
            json!({"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]})
        );
        assert_eq!(
            rules[rules.len() - 1],
            json!({"nonResourceURLs": ["/livez/ping"], "verbs": ["head"]})
        );
    }
}
