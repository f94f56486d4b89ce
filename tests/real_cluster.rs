//! The real control plane itself (`scripts/real-cluster.sh`, `realcluster/`): it is the
//! Kubernetes release pinned in realcluster/kube, Deployments become Available through the real
//! controllers and the fake node (`kube-sandbox kubelet-sim`), namespaces terminate, the operator
//! simulator installs the REAL Flux install objects taken from the controllers' Go modules, and
//! the script prints its ready line, lists its tools, and stops and cleans up on SIGTERM and when
//! its parent dies.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::real_cluster::{OPERATOR_INSTALL, RealCluster, operator_install_in};
use serde_json::Value;

fn condition(obj: &Value, type_: &str) -> Option<String> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .and_then(|c| c["status"].as_str().map(str::to_owned))
}

fn apply(cluster: &RealCluster, dir: &Path, name: &str, yaml: &str) {
    let file = dir.join(name);
    std::fs::write(&file, yaml).unwrap();
    cluster.kubectl(&["apply", "--server-side", "-f", file.to_str().unwrap()]);
}

#[test]
fn deployments_become_available_and_namespaces_terminate() {
    let cluster = RealCluster::shared();
    let version: Value =
        serde_json::from_str(&cluster.kubectl(&["version", "-o", "json"])).unwrap();
    assert_eq!(version["serverVersion"]["gitVersion"], "v1.37.2");
    let node = cluster
        .get_json(&["node", "fake-node"])
        .expect("the fake node");
    assert_eq!(condition(&node, "Ready").as_deref(), Some("True"), "{node}");
    let lease = cluster
        .get_json(&["lease", "fake-node", "-n", "kube-node-lease"])
        .expect("the node's Lease");
    assert_eq!(lease["spec"]["holderIdentity"], "fake-node");

    let ns = cluster.namespace("rc-deploy");
    let dir = tempfile::tempdir().unwrap();
    apply(
        &cluster,
        dir.path(),
        "deploy.yaml",
        &format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: {}\nspec:\n  replicas: 2\n  selector:\n    matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    spec:\n      containers:\n      - name: web\n        image: example.com/web:v1\n",
            ns.name
        ),
    );
    let deployment = cluster.wait_for("Deployment web Available", Duration::from_secs(60), || {
        cluster
            .get_json(&["deployment", "web", "-n", &ns.name])
            .filter(|d| condition(d, "Available").as_deref() == Some("True"))
    });
    assert_eq!(deployment["status"]["readyReplicas"], 2);
    let pods = cluster.get_json(&["pods", "-n", &ns.name]).unwrap();
    let pods = pods["items"].as_array().unwrap();
    assert_eq!(pods.len(), 2);
    for pod in pods {
        assert_eq!(pod["spec"]["nodeName"], "fake-node");
        assert_eq!(pod["status"]["phase"], "Running");
    }

    // A rolling update replaces the Pods (the old ones are deleted by the stand-in kubelet).
    cluster.kubectl(&[
        "-n",
        &ns.name,
        "set",
        "image",
        "deployment/web",
        "web=example.com/web:v2",
    ]);
    cluster.wait_for("the rollout to v2", Duration::from_secs(60), || {
        let pods = cluster.get_json(&["pods", "-n", &ns.name])?;
        let items = pods["items"].as_array()?.clone();
        (items.len() == 2
            && items.iter().all(|p| {
                p["spec"]["containers"][0]["image"] == "example.com/web:v2"
                    && p["status"]["phase"] == "Running"
            }))
        .then_some(())
    });

    // Namespace deletion completes (Pods included).
    cluster.kubectl(&["delete", "namespace", &ns.name, "--timeout=60s"]);
    assert_eq!(cluster.get_json(&["namespace", &ns.name]), None);
}

#[test]
fn operator_simulator_installs_the_real_flux_objects() {
    // A FluxInstance installs (and its deletion removes) the cluster-scoped Flux CRDs.
    let cluster = RealCluster::exclusive();
    let ns = cluster.namespace("rc-sim");
    let dir = tempfile::tempdir().unwrap();
    apply(
        &cluster,
        dir.path(),
        "operator.yaml",
        &operator_install_in(OPERATOR_INSTALL, &ns.name),
    );
    cluster.wait_for("flux-operator Available", Duration::from_secs(60), || {
        cluster
            .get_json(&["deployment", "flux-operator", "-n", &ns.name])
            .filter(|d| condition(d, "Available").as_deref() == Some("True"))
    });
    apply(
        &cluster,
        dir.path(),
        "instance.yaml",
        &format!(
            "apiVersion: fluxcd.controlplane.io/v1\nkind: FluxInstance\nmetadata:\n  name: flux\n  namespace: {}\nspec:\n  distribution:\n    version: \"2.7.x\"\n    registry: ghcr.io/fluxcd\n  components: [source-controller, kustomize-controller]\n",
            ns.name
        ),
    );
    let instance = cluster.wait_for("FluxInstance Ready", Duration::from_secs(120), || {
        cluster
            .get_json(&["fluxinstance", "flux", "-n", &ns.name])
            .filter(|i| condition(i, "Ready").as_deref() == Some("True"))
    });
    assert!(
        instance["status"]["lastAppliedRevision"]
            .as_str()
            .unwrap()
            .starts_with("v2.7.5@sha256:"),
        "{instance}"
    );

    // The Deployment is the controller module's own config/manager/deployment.yaml (the
    // simulator's stand-in has neither the security context nor the 60 s grace period), at the
    // tag Flux v2.7.5 ships, and Available through the real Deployment controller.
    let d = cluster
        .get_json(&["deployment", "kustomize-controller", "-n", &ns.name])
        .unwrap();
    assert_eq!(condition(&d, "Available").as_deref(), Some("True"));
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["terminationGracePeriodSeconds"], 60);
    assert_eq!(pod["securityContext"]["fsGroup"], 1337);
    assert_eq!(
        pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"],
        true
    );
    let image = pod["containers"][0]["image"].as_str().unwrap();
    assert!(
        image.starts_with("ghcr.io/fluxcd/kustomize-controller:v1.7.3@sha256:"),
        "{image}"
    );
    assert_eq!(
        pod["containers"][0]["args"][0],
        format!(
            "--events-addr=http://notification-controller.{}.svc.cluster.local./",
            ns.name
        )
    );
    assert_eq!(
        d["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "flux-operator"
    );

    // The CRDs are the generated ones of the modules: the full GitRepository schema (the
    // simulator's fixture keeps only a few typed fields).
    let crd = cluster
        .get_json(&["crd", "gitrepositories.source.toolkit.fluxcd.io"])
        .unwrap();
    let v1 = crd["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "v1")
        .unwrap();
    let spec_props = &v1["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
    for field in [
        "verify",
        "ignore",
        "include",
        "recurseSubmodules",
        "sparseCheckout",
    ] {
        assert!(
            spec_props.get(field).is_some(),
            "no spec.{field} in {spec_props}"
        );
    }
    assert!(
        cluster
            .get_json(&["crd", "helmcharts.source.toolkit.fluxcd.io"])
            .is_some()
    );

    // Deleting the instance uninstalls what it installed.
    cluster.kubectl(&[
        "delete",
        "fluxinstance",
        "flux",
        "-n",
        &ns.name,
        "--timeout=120s",
    ]);
    assert_eq!(
        cluster.get_json(&["deployment", "kustomize-controller", "-n", &ns.name]),
        None
    );
    cluster.kubectl(&["delete", "namespace", &ns.name, "--timeout=120s"]);
}

fn script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/real-cluster.sh")
}

/// Whether anything accepts connections on the URL's port.
fn listening(url: &str) -> bool {
    let addr = url.trim_start_matches("https://");
    std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(1)).is_ok()
}

#[test]
fn script_prints_ready_and_cleans_up_on_sigterm_and_parent_death() {
    let dir = tempfile::tempdir().unwrap();

    // SIGTERM: exit status 0, the kubeconfig removed, the API server gone.
    let kubeconfig = dir.path().join("a/kubeconfig");
    let mut child = Command::new(script())
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let url = line
        .strip_prefix("ready ")
        .unwrap_or_else(|| panic!("first line {line:?}"))
        .trim()
        .to_owned();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let config = std::fs::read_to_string(&kubeconfig).unwrap();
    assert!(config.contains(&format!("server: {url}")), "{config}");
    assert!(config.contains("token: "), "{config}");
    assert!(listening(&url));
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert_eq!(exit.code(), Some(0));
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert_eq!(rest, "", "nothing but the ready line on stdout");
    assert!(!kubeconfig.exists(), "the kubeconfig is removed");
    assert!(!listening(&url), "the API server stopped");

    // The parent dies (SIGKILL, no chance to clean up): the script notices and stops.
    let kubeconfig = dir.path().join("b/kubeconfig");
    let mut parent = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "{} --kubeconfig {} & wait",
            script().display(),
            kubeconfig.display()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(parent.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let url = line.strip_prefix("ready ").unwrap().trim().to_owned();
    assert!(listening(&url));
    parent.kill().unwrap();
    parent.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while (kubeconfig.exists() || listening(&url)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        !kubeconfig.exists(),
        "the kubeconfig is removed after the parent died"
    );
    assert!(
        !listening(&url),
        "the API server stopped after the parent died"
    );
}

#[test]
fn tools_lists_every_binary() {
    let out = Command::new(script())
        .arg("--tools")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let names: Vec<&str> = stdout
        .lines()
        .map(|l| {
            let (name, path) = l.split_once(' ').unwrap();
            assert!(Path::new(path).is_absolute(), "{l}");
            assert!(Path::new(path).exists(), "{l}");
            name
        })
        .collect();
    assert_eq!(
        names,
        [
            "kube-apiserver",
            "kube-controller-manager",
            "etcd",
            "source-controller",
            "kustomize-controller",
            "flux-manifests",
            "tofu",
            "kube-sandbox"
        ]
    );
    let tofu = stdout
        .lines()
        .find_map(|l| l.strip_prefix("tofu "))
        .unwrap();
    // OpenTofu prints CLI-configuration warnings before the version (a TF_CLI_CONFIG_FILE that
    // names a missing file is one); the version line itself must be exact.
    let version = Command::new(tofu).arg("version").output().unwrap();
    assert!(version.status.success());
    let version = String::from_utf8_lossy(&version.stdout);
    assert!(
        version.lines().any(|l| l == "OpenTofu v1.12.6"),
        "{version}"
    );
}
