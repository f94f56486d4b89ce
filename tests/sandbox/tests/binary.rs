//! The standalone `kube-sandbox` binary: ready line, kubeconfig, authentication (401 without
//! credentials; token and client certificate accepted), SIGTERM, holding 1,000 objects and the
//! request rate it sustains over TLS. Timings are printed; the only timing bounds are generous.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers panic on setup failures.

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    url: String,
    kubeconfig: PathBuf,
    startup: Duration,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let t0 = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kube-sandbox"))
        .args(["serve", "--kubeconfig"])
        .arg(&kubeconfig)
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let startup = t0.elapsed();
    let url = line
        .trim()
        .strip_prefix("ready ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    Server {
        child,
        url,
        kubeconfig,
        startup,
        _dir: dir,
    }
}

async fn client_from(yaml: &str) -> kube::Client {
    let kc = Kubeconfig::from_yaml(yaml).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    kube::Client::try_from(cfg).unwrap()
}

#[test]
fn prints_ready_line_quickly_and_exits_cleanly_on_sigterm() {
    let mut s = start();
    eprintln!("kube-sandbox ready after {:?} at {}", s.startup, s.url);
    assert!(
        s.startup < Duration::from_secs(10),
        "startup took {:?}",
        s.startup
    );
    let kc = std::fs::read_to_string(&s.kubeconfig).unwrap();
    assert!(kc.contains(&format!("server: {}", s.url)), "{kc}");
    assert!(
        kc.contains("certificate-authority-data: ") && kc.contains("token: "),
        "{kc}"
    );
    let status = Command::new("kill")
        .args(["-TERM", &s.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = s.child.wait().unwrap();
    assert!(exit.success(), "exit status {exit:?}");
}

#[tokio::test]
async fn requires_a_token_or_client_certificate() {
    let s = start();
    let yaml = std::fs::read_to_string(&s.kubeconfig).unwrap();
    let ok = client_from(&yaml).await;
    Api::<ConfigMap>::namespaced(ok, "default")
        .list(&ListParams::default())
        .await
        .unwrap();

    let token_line = yaml
        .lines()
        .find(|l| l.trim_start().starts_with("token:"))
        .unwrap()
        .to_string();
    for user in ["    username: nobody\n", "    token: wrong\n"] {
        let anon = yaml.replace(&format!("{token_line}\n"), user);
        let c = client_from(&anon).await;
        match Api::<ConfigMap>::namespaced(c, "default")
            .list(&ListParams::default())
            .await
            .unwrap_err()
        {
            kube::Error::Api(st) => assert_eq!(
                (st.code, st.reason.as_str(), st.message.as_str()),
                (401, "Unauthorized", "Unauthorized")
            ),
            other => panic!("expected 401, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn library_socket_mode_accepts_client_certificates() {
    let sb = kube_sandbox::Sandbox::builder().build();
    let served = sb.serve_tls("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let c = client_from(&served.kubeconfig_yaml_client_cert()).await;
    let names: Vec<String> = Api::<k8s_openapi::api::core::v1::Namespace>::all(c)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|n| n.metadata.name.unwrap())
        .collect();
    assert_eq!(
        names,
        vec!["default", "kube-node-lease", "kube-public", "kube-system"]
    );
    // The same store is visible in-process.
    assert_eq!(sb.objects("", "namespaces").len(), 4);
    served.shutdown().await;
}

#[tokio::test]
async fn holds_a_thousand_objects_and_serves_hundreds_of_requests_per_second() {
    let s = start();
    let c = client_from(&std::fs::read_to_string(&s.kubeconfig).unwrap()).await;
    let api: Api<ConfigMap> = Api::namespaced(c, "default");
    let t0 = Instant::now();
    let results: Vec<_> = futures::stream::iter(0..1000)
        .map(|i| {
            let api = api.clone();
            async move {
                let cm: ConfigMap = serde_json::from_value(serde_json::json!({"metadata": {"name": format!("cm-{i:04}"), "labels": {"batch": (i % 10).to_string()}}, "data": {"i": i.to_string()}})).unwrap();
                api.create(&PostParams::default(), &cm).await
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let create_time = t0.elapsed();
    assert!(
        results.iter().all(Result::is_ok),
        "{:?}",
        results.iter().find(|r| r.is_err())
    );
    let list = api.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1000);
    let page = api.list(&ListParams::default().limit(300)).await.unwrap();
    assert_eq!(
        (page.items.len(), page.metadata.remaining_item_count),
        (300, Some(700))
    );
    let mut seen = 0;
    let mut token: Option<String> = None;
    loop {
        let mut lp = ListParams::default().limit(300);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = api.list(&lp).await.unwrap();
        seen += page.items.len();
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
    }
    assert_eq!(
        seen, 1000,
        "pages with continue tokens cover every object once"
    );
    let batch = api
        .list(&ListParams::default().labels("batch=3"))
        .await
        .unwrap();
    assert_eq!(batch.items.len(), 100);

    let n = 600;
    let t1 = Instant::now();
    let gets: Vec<_> = futures::stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            async move { api.get(&format!("cm-{:04}", i % 1000)).await }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let get_time = t1.elapsed();
    assert!(gets.iter().all(Result::is_ok));
    let create_rps = 1000.0 / create_time.as_secs_f64();
    let get_rps = n as f64 / get_time.as_secs_f64();
    eprintln!(
        "1000 creates in {create_time:?} ({create_rps:.0}/s); {n} gets in {get_time:?} ({get_rps:.0}/s) over TLS, 8 in flight"
    );
    // Very generous bound: the debug build on 2 cores does far more.
    assert!(get_rps > 50.0, "{get_rps:.0} requests/s");
}

#[tokio::test]
async fn admin_endpoints_expose_the_recorder_and_set_faults() {
    let s = start();
    let c = client_from(&std::fs::read_to_string(&s.kubeconfig).unwrap()).await;
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    let req = |method: &str, path: &str, body: &str| {
        axum::http::Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json")
            .body(body.as_bytes().to_vec())
            .unwrap()
    };
    c.request_text(req("DELETE", "/sandbox/requests", ""))
        .await
        .unwrap();
    let cm: ConfigMap =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "a"}})).unwrap();
    api.create(
        &PostParams {
            dry_run: true,
            field_manager: Some("plan".into()),
        },
        &cm,
    )
    .await
    .unwrap();
    api.create(
        &PostParams {
            dry_run: false,
            field_manager: Some("apply".into()),
        },
        &cm,
    )
    .await
    .unwrap();
    let recorded: Vec<kube_sandbox::RecordedRequest> = serde_json::from_str(
        &c.request_text(req("GET", "/sandbox/requests", ""))
            .await
            .unwrap(),
    )
    .unwrap();
    let summary: Vec<(String, String, bool, Option<String>, u16)> = recorded
        .iter()
        .map(|r| {
            (
                r.method.clone(),
                r.path.clone(),
                r.dry_run,
                r.field_manager.clone(),
                r.status,
            )
        })
        .collect();
    let path = "/api/v1/namespaces/default/configmaps".to_string();
    assert_eq!(
        summary,
        vec![
            ("POST".into(), path.clone(), true, Some("plan".into()), 201),
            ("POST".into(), path, false, Some("apply".into()), 201),
        ]
    );

    c.request_text(req("POST", "/sandbox/faults", r#"{"verb":"get","resource":"configmaps","times":1,"action":{"type":"error","code":503,"retryAfter":1}}"#))
        .await
        .unwrap();
    let settings: kube_sandbox::FaultSettings = serde_json::from_str(
        &c.request_text(req("GET", "/sandbox/faults", ""))
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(settings.rules.len(), 1);
    // kube 5 clients built from a Config retry a 503 transparently (honouring Retry-After).
    let t0 = Instant::now();
    api.get("a").await.unwrap();
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "Retry-After honoured: {:?}",
        t0.elapsed()
    );
    let statuses: Vec<u16> = serde_json::from_str::<Vec<kube_sandbox::RecordedRequest>>(
        &c.request_text(req("GET", "/sandbox/requests", ""))
            .await
            .unwrap(),
    )
    .unwrap()
    .iter()
    .filter(|r| r.verb == "get")
    .map(|r| r.status)
    .collect();
    assert_eq!(statuses, vec![503, 200]);
    c.request_text(req("DELETE", "/sandbox/faults", ""))
        .await
        .unwrap();
    let dump: serde_json::Value = serde_json::from_str(
        &c.request_text(req("GET", "/sandbox/dump", ""))
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(
        dump["objects"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["metadata"]["name"] == "a" && o["kind"] == "ConfigMap")
    );
}

#[tokio::test]
async fn connection_reset_fault_aborts_the_connection_in_socket_mode() {
    let sb = kube_sandbox::Sandbox::builder().build();
    let served = sb.serve_tls("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let c = client_from(&served.kubeconfig_yaml()).await;
    let api: Api<ConfigMap> = Api::namespaced(c, "default");
    sb.faults().add(
        kube_sandbox::FaultRule::new(kube_sandbox::FaultAction::ResetConnection)
            .verb("list")
            .times(1),
    );
    match api.list(&ListParams::default()).await.unwrap_err() {
        kube::Error::Api(st) => panic!("expected a transport error, got an API status {st:?}"),
        other => eprintln!("reset surfaced as: {other}"),
    }
    assert!(
        api.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    served.shutdown().await;
}

#[tokio::test]
async fn kubeconfig_variants_connect_or_fail_as_kubectl_would() {
    use kube_sandbox::{Credentials, KubeconfigOptions};
    let sb = kube_sandbox::Sandbox::builder().build();
    let served = sb.serve_tls("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, &served.token).unwrap();
    let exec = dir.path().join("cred.sh");
    std::fs::write(
        &exec,
        format!(
            "#!/bin/sh\necho '{{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"{}\"}}}}'\n",
            served.token
        ),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&exec)
        .status()
        .unwrap();
    let ok_variants = vec![
        KubeconfigOptions {
            credentials: Credentials::TokenFile(token_file.clone()),
            ..Default::default()
        },
        KubeconfigOptions {
            credentials: Credentials::Exec {
                command: exec.display().to_string(),
                args: vec![],
            },
            ..Default::default()
        },
        KubeconfigOptions {
            tls_server_name: Some("kubernetes.default.svc".into()),
            ..Default::default()
        },
        KubeconfigOptions {
            server: Some(served.url.replace("127.0.0.1", "localhost")),
            ..Default::default()
        },
        KubeconfigOptions {
            insecure_skip_tls_verify: true,
            ..Default::default()
        },
    ];
    for o in ok_variants {
        let c = client_from(&served.kubeconfig(&o)).await;
        let r = Api::<ConfigMap>::namespaced(c, "default")
            .list(&ListParams::default())
            .await;
        assert!(r.is_ok(), "{o:?}: {r:?}");
    }
    let c = client_from(&served.kubeconfig(&KubeconfigOptions {
        credentials: Credentials::None,
        ..Default::default()
    }))
    .await;
    match Api::<ConfigMap>::namespaced(c, "default")
        .list(&ListParams::default())
        .await
        .unwrap_err()
    {
        kube::Error::Api(st) => assert_eq!(st.code, 401),
        other => panic!("expected 401, got {other:?}"),
    }
    // A wrong tls-server-name fails certificate verification.
    let c = client_from(&served.kubeconfig(&KubeconfigOptions {
        tls_server_name: Some("example.org".into()),
        ..Default::default()
    }))
    .await;
    let err = Api::<ConfigMap>::namespaced(c, "default")
        .list(&ListParams::default())
        .await
        .unwrap_err();
    assert!(!matches!(err, kube::Error::Api(_)), "{err:?}");
    served.shutdown().await;
}
