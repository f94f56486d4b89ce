//! Sync-simulation tests: a FluxInstance with `sync` pointing at a real `git http-backend`
//! server (basic auth); the simulated source-controller fetches with the Secret's credentials,
//! the simulated kustomize-controller applies what is under the path, a new commit is picked up
//! on a requested reconcile, and a credential rotation on the server makes the source fail with
//! git's reason.

mod sim_support;

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};
use sim_support::fleet_git::{GitHttpServer, GitRepos, HttpServerOptions};
use sim_support::*;

fn gitrepositories(client: &kube::Client) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        "flux-system",
        &ar(
            "source.toolkit.fluxcd.io",
            "v1",
            "GitRepository",
            "gitrepositories",
        ),
    )
}

fn kustomizations(client: &kube::Client) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        "flux-system",
        &ar(
            "kustomize.toolkit.fluxcd.io",
            "v1",
            "Kustomization",
            "kustomizations",
        ),
    )
}

fn config_map(value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: synced\n  namespace: default\ndata:\n  value: {value}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetches_with_the_secret_applies_the_path_and_reports_failures() {
    let repos = GitRepos::new();
    repos.create_with_history("fleet", "main", 1, 1);
    repos.push_as_someone_else(
        "fleet",
        "main",
        "clusters/dev/apps/cm.yaml",
        &config_map("one"),
        "add app",
    );
    repos.push_as_someone_else(
        "fleet",
        "main",
        "clusters/prod/other.yaml",
        &config_map("prod"),
        "other cluster",
    );
    let server = GitHttpServer::start(
        repos.clone(),
        HttpServerOptions {
            basic: Some(("bot".into(), "pw-1".into())),
            ..HttpServerOptions::default()
        },
    );
    let url = server.url("fleet");

    let (_sb, client) = sandbox(fast_config());
    install_operator(&client).await;
    let secrets: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "flux-system",
        &ar("", "v1", "Secret", "secrets"),
    );
    apply(&secrets, json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "flux-system", "namespace": "flux-system"},
                           "stringData": {"username": "bot", "password": "pw-1"}})).await;
    let fi = fluxinstances(&client, "flux-system");
    let mut obj = instance("2.7.x");
    obj["spec"]["sync"] = json!({"kind": "GitRepository", "url": url, "ref": "refs/heads/main",
                                 "path": "clusters/dev", "pullSecret": "flux-system", "interval": "1h"});
    apply(&fi, obj).await;
    wait_for(&fi, "flux", ready).await;

    let tip = repos.tip("fleet", "main").unwrap();
    let revision = format!("refs/heads/main@sha1:{tip}");
    let ks = kustomizations(&client);
    let got = wait_for(&ks, "flux-system", |k| {
        k["status"]["lastAppliedRevision"] == revision.as_str()
    })
    .await;
    assert!(ready(&got), "{got}");
    assert_eq!(
        cond(&got, "Ready").unwrap()["message"],
        format!("Applied revision: {revision}")
    );
    assert_eq!(
        got["status"]["inventory"],
        json!({"entries": [{"id": "default_synced__ConfigMap", "v": "v1"}]})
    );
    let git = gitrepositories(&client);
    let source = git.get("flux-system").await.unwrap();
    let source = serde_json::to_value(source).unwrap();
    assert_eq!(source["status"]["artifact"]["revision"], revision.as_str());
    assert_eq!(cond(&source, "Ready").unwrap()["reason"], "Succeeded");

    let cms: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &ar("", "v1", "ConfigMap", "configmaps"),
    );
    let cm = serde_json::to_value(cms.get("synced").await.unwrap()).unwrap();
    assert_eq!(cm["data"], json!({"value": "one"}));
    assert_eq!(
        cm["metadata"]["labels"],
        json!({"kustomize.toolkit.fluxcd.io/name": "flux-system",
                                                 "kustomize.toolkit.fluxcd.io/namespace": "flux-system"})
    );
    let managers: Vec<&str> = cm["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert_eq!(managers, vec!["kustomize-controller"]);

    // A new commit is applied after a requested reconcile of the source.
    repos.push_as_someone_else(
        "fleet",
        "main",
        "clusters/dev/apps/cm.yaml",
        &config_map("two"),
        "change app",
    );
    let tip2 = repos.tip("fleet", "main").unwrap();
    let revision2 = format!("refs/heads/main@sha1:{tip2}");
    let pp = PatchParams::default();
    git.patch(
        "flux-system",
        &pp,
        &Patch::Merge(
            json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "t1"}}}),
        ),
    )
    .await
    .unwrap();
    wait_for(&ks, "flux-system", |k| {
        k["status"]["lastAppliedRevision"] == revision2.as_str()
    })
    .await;
    let cm = serde_json::to_value(cms.get("synced").await.unwrap()).unwrap();
    assert_eq!(cm["data"], json!({"value": "two"}));

    // Objects the next revision no longer has are pruned, unless annotated prune: Disabled.
    repos.push_as_someone_else(
        "fleet",
        "main",
        "clusters/dev/apps/kept.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kept\n  namespace: default\n  annotations:\n    kustomize.toolkit.fluxcd.io/prune: Disabled\n",
        "add kept",
    );
    git.patch(
        "flux-system",
        &pp,
        &Patch::Merge(
            json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "t-kept"}}}),
        ),
    )
    .await
    .unwrap();
    let tip3 = format!(
        "refs/heads/main@sha1:{}",
        repos.tip("fleet", "main").unwrap()
    );
    wait_for(&ks, "flux-system", |k| {
        k["status"]["lastAppliedRevision"] == tip3.as_str()
    })
    .await;
    repos.push_as_someone_else(
        "fleet",
        "main",
        "clusters/dev/apps/cm.yaml",
        "",
        "remove app",
    );
    repos.push_as_someone_else(
        "fleet",
        "main",
        "clusters/dev/apps/kept.yaml",
        "",
        "remove kept",
    );
    git.patch(
        "flux-system",
        &pp,
        &Patch::Merge(
            json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "t-pruned"}}}),
        ),
    )
    .await
    .unwrap();
    let revision2 = format!(
        "refs/heads/main@sha1:{}",
        repos.tip("fleet", "main").unwrap()
    );
    let pruned = wait_for(&ks, "flux-system", |k| {
        k["status"]["lastAppliedRevision"] == revision2.as_str()
    })
    .await;
    assert_eq!(pruned["status"]["inventory"], json!({"entries": []}));
    assert!(cms.get_opt("synced").await.unwrap().is_none());
    assert!(cms.get_opt("kept").await.unwrap().is_some());

    // The server stops accepting the Secret's password: the source fails with git's reason.
    server.set_password("pw-2");
    git.patch(
        "flux-system",
        &pp,
        &Patch::Merge(
            json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "t2"}}}),
        ),
    )
    .await
    .unwrap();
    let failed = wait_for(&git, "flux-system", |g| {
        g["status"]["lastHandledReconcileAt"] == "t2"
            && cond(g, "Ready").is_some_and(|c| c["status"] == "False")
    })
    .await;
    let c = cond(&failed, "Ready").unwrap();
    assert_eq!(c["reason"], "GitOperationFailed");
    let message = c["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "failed to checkout and determine revision: unable to clone '{url}': "
        )),
        "{message}"
    );
    assert!(!message.contains("pw-1"), "{message}");
    // The last good artifact stays published, and the Kustomization keeps its revision.
    assert_eq!(failed["status"]["artifact"]["revision"], revision2.as_str());
    let k: Value = serde_json::to_value(ks.get("flux-system").await.unwrap()).unwrap();
    assert_eq!(k["status"]["lastAppliedRevision"], revision2.as_str());
}
