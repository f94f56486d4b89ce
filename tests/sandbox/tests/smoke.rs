//! Smoke test of the in-process mode: the basic CRUD path through a real `kube::Client`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers panic on setup failures.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};

#[tokio::test]
async fn configmap_crud_in_process() {
    let sb = kube_sandbox::Sandbox::builder().build();
    let api: Api<ConfigMap> = Api::namespaced(sb.client(), "default");
    let cm: ConfigMap =
        serde_json::from_value(serde_json::json!({"metadata":{"name":"a"},"data":{"k":"v"}}))
            .unwrap();
    let created = api.create(&PostParams::default(), &cm).await.unwrap();
    assert!(created.metadata.uid.is_some());
    let got = api.get("a").await.unwrap();
    assert_eq!(got.data.unwrap()["k"], "v");
    let patched = api
        .patch("a", &PatchParams::apply("tester").force(), &Patch::Apply(serde_json::json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"data":{"k":"w"}})))
        .await
        .unwrap();
    assert_eq!(patched.data.unwrap()["k"], "w");
    let list = api.list(&Default::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    let del = api.delete("a", &DeleteParams::default()).await.unwrap();
    assert!(del.is_right());
    assert!(api.get_opt("a").await.unwrap().is_none());
}
