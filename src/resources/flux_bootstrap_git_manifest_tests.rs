//! Unit tests of what `flux_bootstrap_git` renders into the repository and reads back.

use super::*;
use crate::framework::model::{from_raw, to_raw};
use crate::framework::plan::apply_defaults;
use crate::framework::value::RawValue;
use crate::git::Secret;
use crate::resources::flux_bootstrap_git_config::{GitConfig, SshConfig};
use pretty_assertions::assert_eq;

fn planned() -> BootstrapModel {
    let ty = schema().type_of();
    let config = RawValue::object([
        ("url", RawValue::string("https://git.example/fleet.git")),
        ("path", RawValue::string("./clusters/prod/")),
        (
            "distribution",
            RawValue::object([("version", RawValue::string("2.7.x"))]),
        ),
    ])
    .conform(&ty);
    from_raw(&apply_defaults(&schema(), &config, config.clone())).unwrap()
}

#[test]
fn schema_passes_the_lint_and_shares_the_instance_and_operator_attributes() {
    let s = schema();
    assert_eq!(s.lint(), Vec::<String>::new());
    // `sync` holds only what the bootstrap does not decide itself (name, provider).
    let (_, sync) = s
        .block
        .attribute("sync")
        .unwrap()
        .nested_attributes()
        .unwrap();
    let names: Vec<&str> = sync.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, vec!["name", "provider"]);
    for name in [
        "reconcile_every",
        "reconcile_artifact_every",
        "reconcile_timeout",
        "suspend",
    ] {
        assert!(s.block.attribute(name).is_some(), "{name}");
    }
    for name in INSTANCE_ATTRIBUTES {
        assert!(s.block.attribute(name).is_some(), "{name}");
    }
    let operator = s.block.attribute("operator").unwrap();
    let (_, nested) = operator.nested_attributes().unwrap();
    let names: Vec<&str> = nested.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "version",
            "manifests_url",
            "manifests",
            "env",
            "resources",
            "tolerations",
            "node_selector",
            "image_repository",
            "replicas",
            "affinity",
            "priority_class_name",
            "image_pull_secrets",
            "log_level",
            "concurrent",
            "web_ui",
        ]
    );
}

#[test]
fn the_committed_manifest_syncs_this_repository_and_reads_back_as_the_config() {
    let model = planned();
    let instance = desired_instance(&model, Value::Known(Some("flux-system".into()))).unwrap();
    let json = instance.to_json().unwrap();
    assert_eq!(
        json["spec"]["sync"],
        serde_json::json!({"kind": "GitRepository", "url": "https://git.example/fleet.git",
            "ref": "refs/heads/main", "path": "clusters/prod", "pullSecret": "flux-system", "interval": "1m"})
    );
    let files = render_files("./clusters/prod/", &instance, &[]).unwrap();
    assert_eq!(
        files.keys().cloned().collect::<Vec<_>>(),
        vec![
            "clusters/prod/flux-system/flux-instance.yaml",
            "clusters/prod/flux-system/kustomization.yaml"
        ]
    );
    let parsed = crate::flux::render::parse_instance_manifest(
        &files["clusters/prod/flux-system/flux-instance.yaml"],
    )
    .unwrap();
    let mut read = model.clone();
    read_manifest_into(&mut read, &parsed).unwrap();
    let ty = schema().type_of();
    assert_eq!(
        to_raw(&read).unwrap().conform(&ty),
        to_raw(&model).unwrap().conform(&ty)
    );
}

#[test]
fn pull_credentials_follow_the_url_scheme() {
    let config = GitConfig {
        http_username: Some("bot".into()),
        http_password: Some(Secret::new("pw")),
        certificate_authority: Some("CA".into()),
        ssh: Some(SshConfig {
            private_key: Some(Secret::new("KEY")),
            known_hosts: Some("host ssh-ed25519 AAAA".into()),
            ..SshConfig::default()
        }),
        ..GitConfig::default()
    };
    let http = config
        .secret_data("https://h/r.git", None)
        .unwrap()
        .unwrap();
    assert_eq!(
        http.keys().cloned().collect::<Vec<_>>(),
        vec!["ca.crt", "password", "username"]
    );
    let ssh = config
        .secret_data("ssh://git@h/r.git", None)
        .unwrap()
        .unwrap();
    assert_eq!(
        ssh.keys().cloned().collect::<Vec<_>>(),
        vec!["identity", "known_hosts"]
    );
    assert_ne!(http, ssh);
}

#[test]
fn version_0_state_loses_the_credentials_hash() {
    let old =
        serde_json::json!({"id": "flux-system", "credentials_hash": "sha256:abc", "ready": true});
    assert_eq!(
        upgrade_state_v0(old),
        serde_json::json!({"id": "flux-system", "secret_status": null, "ready": true})
    );
    let model = upgrade_state(
        0,
        serde_json::json!({"id": "flux-system", "url": "https://h/r.git", "credentials_hash": "sha256:abc"}),
    )
    .unwrap();
    assert_eq!(model.id, Value::Known("flux-system".to_owned()));
    assert_eq!(model.secret_status, Value::Null);
    assert!(upgrade_state(7, serde_json::json!({})).is_err());
}

#[test]
fn sync_providers_choose_what_the_secret_holds() {
    let app = crate::git::GitHubApp {
        app_id: "1".into(),
        installation_id: Some("2".into()),
        private_key: Secret::new("KEY"),
        api_url: Some("https://ghe.example/api/v3".into()),
        ..crate::git::GitHubApp::default()
    };
    let with_app = GitConfig {
        github_app: Some(app),
        certificate_authority: Some("CA".into()),
        ..GitConfig::default()
    };
    let github = with_app
        .secret_data("https://ghe.example/o/r.git", Some("github"))
        .unwrap()
        .unwrap();
    assert_eq!(
        github,
        BTreeMap::from([
            ("ca.crt".to_owned(), "CA".to_owned()),
            (
                "githubAppBaseURL".to_owned(),
                "https://ghe.example/api/v3".to_owned()
            ),
            ("githubAppID".to_owned(), "1".to_owned()),
            ("githubAppInstallationID".to_owned(), "2".to_owned()),
            ("githubAppPrivateKey".to_owned(), "KEY".to_owned()),
        ])
    );
    // Workload identity: no Secret at all.
    for provider in ["azure", "aws"] {
        assert_eq!(
            with_app
                .secret_data("https://h/r.git", Some(provider))
                .unwrap(),
            None
        );
    }
    // An app's hour-long tokens are never handed to Flux as a password.
    let err = with_app.secret_data("https://h/r.git", None).unwrap_err();
    assert_eq!(err.0[0].summary, "GitHub App Needs sync.provider");
    assert_eq!(
        err.0[0].path,
        Some(AttrPath::attr("sync").then_attr("provider"))
    );
    let err = GitConfig::default()
        .secret_data("https://h/r.git", Some("github"))
        .unwrap_err();
    assert_eq!(err.0[0].summary, "GitHub App Not Configured");
}
