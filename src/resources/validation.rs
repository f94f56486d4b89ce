//! Validation of what users type, per resource, at ValidateResourceConfig time: every known value
//! is checked against the rule the API server, libgit2 or the operator would apply later (the
//! rules are in [`crate::flux::validate`]), and each problem becomes an error at the attribute's
//! path whose message starts with that path and the value, says what is wrong and what a valid
//! value looks like. Unknown values (known only at apply) are skipped; nothing here does I/O, so
//! a bad value fails `terraform validate` and changes nothing.
//!
//! Lives in `resources/`: may use `framework` and `flux`.

use crate::flux::validate as rule;
use crate::framework::diagnostics::Diagnostics;
use crate::framework::model::Value;
use crate::framework::path::AttrPath;
use crate::resources::flux_instance_model::{
    DistributionModel, InstanceModel, KustomizeModel, StorageModel,
};
use crate::resources::validation_checks::{
    Checks, attr, duration, namespace, reconcile_durations, timeouts,
};
use crate::resources::validation_operator::{OperatorInputs, operator};

fn distribution(checks: &mut Checks, prefix: &[&str], value: &Value<DistributionModel>) {
    let Some(d) = value.as_known() else {
        return;
    };
    let at = |name: &str| {
        let mut steps = prefix.to_vec();
        steps.push(name);
        attr(&steps)
    };
    checks.string(
        at("version"),
        &d.version,
        "Invalid Flux Version",
        rule::flux_version,
    );
    for name in ["image_pull_secret", "artifact_pull_secret"] {
        let value = if name == "image_pull_secret" {
            &d.image_pull_secret
        } else {
            &d.artifact_pull_secret
        };
        checks.string(at(name), value, "Invalid Secret Name", rule::dns_subdomain);
    }
}

fn storage(checks: &mut Checks, value: &Value<StorageModel>) {
    let Some(s) = value.as_known() else {
        return;
    };
    checks.string(
        attr(&["storage", "size"]),
        &s.size,
        "Invalid Storage Size",
        rule::quantity,
    );
    checks.string(
        attr(&["storage", "class"]),
        &s.class,
        "Invalid Storage Class",
        rule::dns_subdomain,
    );
}

fn kustomize(checks: &mut Checks, value: &Value<KustomizeModel>) {
    let Some(patches) = value.as_known().and_then(|k| k.patches.as_known()) else {
        return;
    };
    for (i, patch) in patches.iter().enumerate() {
        let path = AttrPath::attr("kustomize")
            .then_attr("patches")
            .then_index(i as i64)
            .then_attr("patch");
        checks.string(
            path,
            &patch.patch,
            "Invalid Kustomize Patch",
            rule::kustomize_patch,
        );
    }
}

/// The settings `flux_instance` shares with `flux_bootstrap_git` (no `sync`, no `name`).
fn instance_settings(checks: &mut Checks, config: &InstanceModel) {
    namespace(checks, &config.namespace);
    reconcile_durations(
        checks,
        &[
            ("reconcile_every", &config.reconcile_every),
            ("reconcile_artifact_every", &config.reconcile_artifact_every),
            ("reconcile_timeout", &config.reconcile_timeout),
        ],
    );
    distribution(checks, &["distribution"], &config.distribution);
    storage(checks, &config.storage);
    kustomize(checks, &config.kustomize);
    timeouts(checks, &config.timeouts);
}

/// `flux_instance`: names, version constraint, patches, sync source, storage, timeouts.
pub fn instance(config: &InstanceModel) -> Diagnostics {
    let mut checks = Checks::new();
    instance_settings(&mut checks, config);
    checks.string(
        AttrPath::attr("name"),
        &config.name,
        "Unsupported FluxInstance Name",
        |name| {
            if name == crate::flux::instance::INSTANCE_NAME {
                Ok(())
            } else {
                Err(
                    "is not supported: the Flux Operator only reconciles a FluxInstance named \
                     \"flux\"; remove name or set it to \"flux\""
                        .into(),
                )
            }
        },
    );
    if let Some(sync) = config.sync.as_known() {
        let kind = sync.kind.as_known().map(String::as_str);
        match sync.url.as_known() {
            // Never echoed: the value holds a credential.
            Some(url) if rule::url_has_password(url) => checks.error_at(
                attr(&["sync", "url"]),
                "Credentials In The Sync URL",
                "sync.url carries a password or token in its user info. The URL is stored in \
                 the Terraform state and in the FluxInstance, so it must not hold credentials: \
                 put them in the Secret named by sync.pull_secret.",
            ),
            _ => checks.string(attr(&["sync", "url"]), &sync.url, "Invalid Sync URL", |u| {
                rule::sync_url(kind, u)
            }),
        }
        checks.string(
            attr(&["sync", "ref"]),
            &sync.git_ref,
            "Invalid Sync Reference",
            |r| rule::source_ref(kind, r),
        );
        checks.string(
            attr(&["sync", "path"]),
            &sync.path,
            "Invalid Sync Path",
            rule::source_path,
        );
        checks.string(
            attr(&["sync", "pull_secret"]),
            &sync.pull_secret,
            "Invalid Secret Name",
            rule::dns_subdomain,
        );
        checks.string(
            attr(&["sync", "name"]),
            &sync.name,
            "Invalid Sync Name",
            rule::dns_label,
        );
        checks.string(
            attr(&["sync", "interval"]),
            &sync.interval,
            "Invalid Duration",
            duration,
        );
    }
    checks.finish()
}

/// The `flux_instance` data source: the namespace.
pub fn instance_data(config: &InstanceModel) -> Diagnostics {
    let mut checks = Checks::new();
    namespace(&mut checks, &config.namespace);
    checks.finish()
}

/// Data `flux_report`: `namespace`, the namespace it reads the report from.
pub fn report_data(report_namespace: &Value<String>) -> Diagnostics {
    let mut checks = Checks::new();
    namespace(&mut checks, report_namespace);
    checks.finish()
}

/// `flux_bootstrap_git`: the repository (URL, branch), the instance settings, the sync interval,
/// the Secret name and the operator settings.
pub fn bootstrap(
    config: &crate::resources::flux_bootstrap_git_model::BootstrapModel,
    instance: &InstanceModel,
) -> Diagnostics {
    let mut checks = Checks::new();
    instance_settings(&mut checks, instance);
    timeouts(&mut checks, &config.timeouts);
    match config.url.as_known() {
        // Never echoed: the value holds a credential, and would end up in state.
        Some(url) if rule::url_has_password(url) => checks.error_at(
            AttrPath::attr("url"),
            "Credentials In The Repository URL",
            "url carries a password or token in its user info (https://user:secret@host/...). \
             The URL is stored in the Terraform state and committed to the repository, so it \
             must not hold credentials: remove them from the URL and set them in the \
             provider's git.http settings (username and password, or bearer_token), which \
             never enter state.",
        ),
        _ => checks.string(
            AttrPath::attr("url"),
            &config.url,
            "Invalid Repository URL",
            rule::git_url,
        ),
    }
    checks.string(
        AttrPath::attr("branch"),
        &config.branch,
        "Invalid Branch Name",
        rule::git_branch,
    );
    checks.string(
        AttrPath::attr("interval"),
        &config.interval,
        "Invalid Interval",
        duration,
    );
    checks.string(
        AttrPath::attr("secret_name"),
        &config.secret_name,
        "Invalid Secret Name",
        rule::dns_subdomain,
    );
    if let Some(op) = config.operator.as_known() {
        operator(
            &mut checks,
            &["operator"],
            &OperatorInputs {
                version: &op.version,
                manifests_url: &op.manifests_url,
                manifests: &op.manifests,
                env: &op.env,
                resources: &op.resources,
                tolerations: &op.tolerations,
                replicas: &op.replicas,
                affinity: &op.affinity,
                priority_class_name: &op.priority_class_name,
                image_pull_secrets: &op.image_pull_secrets,
                log_level: &op.log_level,
                concurrent: &op.concurrent,
            },
        );
    }
    checks.finish()
}

/// The provider's `git` settings against the repository URL of `flux_bootstrap_git` (checked at
/// plan, when the provider settings are known): SSH URLs need `git.ssh` with a key, HTTP(S) URLs
/// must not come with only `git.ssh`, and `http://` needs `git.http.allow_insecure_http`.
pub fn git_settings_match_url(
    url: &str,
    config: &crate::resources::flux_bootstrap_git_config::GitConfig,
) -> Diagnostics {
    let mut out = Diagnostics::new();
    let mut fail = |reason: &str| {
        out.error_at(
            AttrPath::attr("url"),
            "Git Settings Do Not Match The URL",
            format!("url = {url:?} {reason}."),
        );
    };
    let has_http = config.http_username.is_some()
        || config.http_password.is_some()
        || config.bearer_token.is_some()
        || config.certificate_authority.is_some();
    if crate::resources::flux_bootstrap_git_config::is_ssh_url(url) {
        if config.ssh.as_ref().is_none_or(|s| s.private_key.is_none()) {
            fail(if has_http {
                "is an SSH URL, but the provider's git settings configure git.http, not git.ssh; \
                 use the repository's https:// URL, or set git.ssh with a private_key"
            } else {
                "is an SSH URL, but the provider's git settings have no git.ssh.private_key; set \
                 git.ssh in the provider configuration"
            });
        }
    } else {
        if config.ssh.is_some() && !has_http {
            fail(
                "is an HTTP(S) URL, but the provider's git settings configure git.ssh; use the \
                 repository's ssh:// URL, or set git.http",
            );
        }
        if url.starts_with("http://") && !config.allow_insecure_http {
            fail(
                "is a plain http:// URL, which sends credentials unencrypted; use https://, or \
                 set git.http.allow_insecure_http = true in the provider configuration",
            );
        }
    }
    out
}
