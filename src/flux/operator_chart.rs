//! The operator Deployment settings users change through the `flux-operator` Helm chart's values
//! (`replicas`, `affinity`, `priorityClassName`, `image.pullSecrets`, `logLevel`, the
//! `--concurrent` flag, `web.enabled`): written into the Deployment (and the Service, for the web
//! UI) of the release manifests, and read back from a live Deployment so that a change made
//! outside Terraform shows as a difference of the setting itself.
//!
//! Flags are container `args` of the `manager` container (`--log-level=debug`); the web UI is
//! off when the web server port is 0 (`--web-server-port=0`), and then the `http-web` ports are
//! left out of the container and the Service. Pure: JSON in, JSON out; nothing else from this
//! crate.

use k8s_openapi::api::core::v1::Affinity;
use serde_json::{Value, json};

/// The log levels the operator's `--log-level` flag accepts.
pub const LOG_LEVELS: [&str; 4] = ["trace", "debug", "info", "error"];
/// The operator's log level without the flag.
pub const DEFAULT_LOG_LEVEL: &str = "info";
/// The operator's `--concurrent` without the flag.
pub const DEFAULT_CONCURRENT: i64 = 10;
/// The name of the web UI's container and Service port.
pub const WEB_PORT_NAME: &str = "http-web";

const LOG_LEVEL_FLAG: &str = "--log-level";
const CONCURRENT_FLAG: &str = "--concurrent";
const WEB_PORT_FLAG: &str = "--web-server-port";
const WEB_PORT_ENV: &str = "WEB_SERVER_PORT";

/// The chart settings of the operator Deployment; `None` keeps what the manifests say.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ChartSettings {
    /// `spec.replicas` (the operator elects a leader; more replicas are warm standbys).
    pub replicas: Option<i64>,
    /// Pod affinity, replacing the manifests' (a Linux node affinity).
    pub affinity: Option<Affinity>,
    /// Pod priority class.
    pub priority_class_name: Option<String>,
    /// Names of the Secrets the kubelet pulls the operator image with.
    pub image_pull_secrets: Option<Vec<String>>,
    /// `--log-level`.
    pub log_level: Option<String>,
    /// `--concurrent`: how many objects of a kind the operator reconciles at once.
    pub concurrent: Option<i64>,
    /// Whether the web UI server runs (port 9080); `false` sets `--web-server-port=0`.
    pub web_ui: Option<bool>,
}

impl ChartSettings {
    /// Whether any setting is given.
    pub fn any(&self) -> bool {
        *self != Self::default()
    }
}

/// The chart settings as a live Deployment has them, defaults filled in where the Deployment
/// leaves a setting out (`None` only for an absent affinity).
#[derive(Clone, Debug, PartialEq)]
pub struct LiveChartSettings {
    /// `spec.replicas` (1 when absent).
    pub replicas: i64,
    /// The pod affinity as API JSON.
    pub affinity: Option<Value>,
    /// The priority class (empty when absent).
    pub priority_class_name: String,
    /// The image pull Secrets' names.
    pub image_pull_secrets: Vec<String>,
    /// The `--log-level` flag, else `info`.
    pub log_level: String,
    /// The `--concurrent` flag, else 10.
    pub concurrent: i64,
    /// Whether the web server port is other than 0.
    pub web_ui: bool,
}

/// Why a chart setting could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChartError {
    /// The Deployment has no pod template or container to write into.
    #[error("the operator Deployment has no container to apply {0} to")]
    FindContainer(&'static str),
    /// The affinity does not encode.
    #[error("encoding the affinity: {0}")]
    EncodeAffinity(String),
}

fn pod_spec(deployment: &mut Value) -> Option<&mut serde_json::Map<String, Value>> {
    deployment
        .pointer_mut("/spec/template/spec")
        .and_then(Value::as_object_mut)
}

fn manager<'a>(
    pod: &'a mut serde_json::Map<String, Value>,
    container: &str,
) -> Option<&'a mut Value> {
    let containers = pod.get_mut("containers")?.as_array_mut()?;
    let index = containers
        .iter()
        .position(|c| c.get("name").and_then(Value::as_str) == Some(container))
        .unwrap_or(0);
    containers.get_mut(index)
}

fn flag_name(arg: &str) -> &str {
    arg.split_once('=').map_or(arg, |(name, _)| name)
}

/// The value of `--flag=value` or `--flag value` in `args`.
fn flag_value<'a>(args: &'a [Value], flag: &str) -> Option<&'a str> {
    let strings: Vec<&str> = args.iter().filter_map(Value::as_str).collect();
    strings.iter().enumerate().find_map(|(i, arg)| {
        if let Some(value) = arg.strip_prefix(flag).and_then(|r| r.strip_prefix('=')) {
            Some(value)
        } else if *arg == flag {
            strings.get(i + 1).copied()
        } else {
            None
        }
    })
}

/// Sets `--flag=value` in `args`, replacing the flag if present (in either spelling).
fn set_flag(args: &mut Vec<Value>, flag: &str, value: &str) {
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str().unwrap_or_default();
        if arg == flag {
            args.drain(i..(i + 2).min(args.len()));
        } else if flag_name(arg) == flag {
            args.remove(i);
        } else {
            i += 1;
        }
    }
    args.push(json!(format!("{flag}={value}")));
}

/// Drops the web UI port from a list of ports, unless it is the only one (a Service needs one).
fn remove_named_port(ports: Option<&mut Value>) {
    if let Some(Value::Array(ports)) = ports {
        let is_web = |p: &Value| p.get("name").and_then(Value::as_str) == Some(WEB_PORT_NAME);
        if ports.iter().any(|p| !is_web(p)) {
            ports.retain(|p| !is_web(p));
        }
    }
}

/// Writes `settings` into the operator Deployment (`container` is the manager's name) and, with
/// the web UI off, drops the web port from `service` too.
///
/// # Errors
///
/// [`ChartError`].
pub fn apply(
    deployment: &mut Value,
    service: Option<&mut Value>,
    container: &str,
    settings: &ChartSettings,
) -> Result<(), ChartError> {
    if !settings.any() {
        return Ok(());
    }
    if let (Some(replicas), Some(Value::Object(spec))) =
        (settings.replicas, deployment.get_mut("spec"))
    {
        spec.insert("replicas".into(), json!(replicas));
    }
    let affinity = settings
        .affinity
        .as_ref()
        .map(|a| serde_json::to_value(a).map_err(|e| ChartError::EncodeAffinity(e.to_string())))
        .transpose()?;
    let pod = pod_spec(deployment).ok_or(ChartError::FindContainer("the settings"))?;
    if let Some(affinity) = affinity {
        pod.insert("affinity".into(), affinity);
    }
    if let Some(class) = &settings.priority_class_name {
        pod.insert("priorityClassName".into(), json!(class));
    }
    if let Some(secrets) = &settings.image_pull_secrets {
        let refs: Vec<Value> = secrets.iter().map(|name| json!({ "name": name })).collect();
        pod.insert("imagePullSecrets".into(), Value::Array(refs));
    }
    let flags =
        settings.log_level.is_some() || settings.concurrent.is_some() || settings.web_ui.is_some();
    if !flags {
        return Ok(());
    }
    let manager = manager(pod, container)
        .and_then(Value::as_object_mut)
        .ok_or(ChartError::FindContainer("log_level, concurrent or web_ui"))?;
    let mut args = match manager.remove("args") {
        Some(Value::Array(args)) => args,
        _ => Vec::new(),
    };
    if let Some(level) = &settings.log_level {
        set_flag(&mut args, LOG_LEVEL_FLAG, level);
    }
    if let Some(concurrent) = settings.concurrent {
        set_flag(&mut args, CONCURRENT_FLAG, &concurrent.to_string());
    }
    match settings.web_ui {
        Some(false) => {
            set_flag(&mut args, WEB_PORT_FLAG, "0");
            remove_named_port(manager.get_mut("ports"));
            if let Some(service) = service {
                remove_named_port(service.pointer_mut("/spec/ports"));
            }
        }
        Some(true) if flag_value(&args, WEB_PORT_FLAG) == Some("0") => {
            args.retain(|a| a.as_str().map(flag_name) != Some(WEB_PORT_FLAG));
        }
        Some(true) | None => {}
    }
    if !args.is_empty() {
        manager.insert("args".into(), Value::Array(args));
    }
    Ok(())
}

/// The chart settings of a live operator Deployment.
pub fn read(deployment: &Value, container: &str) -> LiveChartSettings {
    let pod = deployment.pointer("/spec/template/spec");
    let containers = pod
        .and_then(|p| p.get("containers"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let manager = containers
        .iter()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(container))
        .or_else(|| containers.first());
    let args = manager
        .and_then(|c| c.get("args"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let env_port = manager
        .and_then(|c| c.get("env"))
        .and_then(Value::as_array)
        .and_then(|env| {
            env.iter()
                .find(|e| e.get("name").and_then(Value::as_str) == Some(WEB_PORT_ENV))
        })
        .and_then(|e| e.get("value"))
        .and_then(Value::as_str);
    let web_port = flag_value(args, WEB_PORT_FLAG).or(env_port);
    LiveChartSettings {
        replicas: deployment
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(1),
        affinity: pod
            .and_then(|p| p.get("affinity"))
            .filter(|a| !a.is_null())
            .cloned(),
        priority_class_name: pod
            .and_then(|p| p.get("priorityClassName"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        image_pull_secrets: pod
            .and_then(|p| p.get("imagePullSecrets"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|s| s.get("name").and_then(Value::as_str).map(str::to_owned))
            .collect(),
        log_level: flag_value(args, LOG_LEVEL_FLAG)
            .unwrap_or(DEFAULT_LOG_LEVEL)
            .to_owned(),
        concurrent: flag_value(args, CONCURRENT_FLAG)
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_CONCURRENT),
        web_ui: web_port.is_none_or(|p| p.trim() != "0"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm,
    };
    use pretty_assertions::assert_eq;

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "flux-operator"},
            "spec": {
                "replicas": 1,
                "template": {"spec": {
                    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [{"matchExpressions": [
                            {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}
                        ]}]
                    }}},
                    "containers": [{
                        "name": "manager",
                        "image": "ghcr.io/controlplaneio-fluxcd/flux-operator:v0.58.1",
                        "ports": [
                            {"name": "http-web", "containerPort": 9080},
                            {"name": "http-metrics", "containerPort": 8080}
                        ]
                    }]
                }}
            }
        })
    }

    fn service() -> Value {
        json!({"spec": {"ports": [
            {"name": "http-web", "port": 9080},
            {"name": "http", "port": 8080}
        ]}})
    }

    #[test]
    fn nothing_set_changes_nothing_and_reads_the_defaults() {
        let mut d = deployment();
        let mut s = service();
        apply(&mut d, Some(&mut s), "manager", &ChartSettings::default()).unwrap();
        assert_eq!(d, deployment());
        assert_eq!(s, service());
        assert_eq!(
            read(&d, "manager"),
            LiveChartSettings {
                replicas: 1,
                affinity: deployment()
                    .pointer("/spec/template/spec/affinity")
                    .cloned(),
                priority_class_name: String::new(),
                image_pull_secrets: vec![],
                log_level: "info".into(),
                concurrent: 10,
                web_ui: true,
            }
        );
    }

    #[test]
    fn every_setting_is_written_and_read_back() {
        let affinity = Affinity {
            node_affinity: Some(NodeAffinity {
                required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                    node_selector_terms: vec![NodeSelectorTerm {
                        match_expressions: Some(vec![NodeSelectorRequirement {
                            key: "node-role.kubernetes.io/infra".into(),
                            operator: "Exists".into(),
                            values: None,
                        }]),
                        match_fields: None,
                    }],
                }),
                preferred_during_scheduling_ignored_during_execution: None,
            }),
            ..Affinity::default()
        };
        let settings = ChartSettings {
            replicas: Some(2),
            affinity: Some(affinity),
            priority_class_name: Some("system-cluster-critical".into()),
            image_pull_secrets: Some(vec!["regcred".into(), "mirror".into()]),
            log_level: Some("debug".into()),
            concurrent: Some(20),
            web_ui: Some(false),
        };
        let mut d = deployment();
        let mut s = service();
        apply(&mut d, Some(&mut s), "manager", &settings).unwrap();
        assert_eq!(
            d["spec"],
            json!({
                "replicas": 2,
                "template": {"spec": {
                    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [{"matchExpressions": [
                            {"key": "node-role.kubernetes.io/infra", "operator": "Exists"}
                        ]}]
                    }}},
                    "priorityClassName": "system-cluster-critical",
                    "imagePullSecrets": [{"name": "regcred"}, {"name": "mirror"}],
                    "containers": [{
                        "name": "manager",
                        "image": "ghcr.io/controlplaneio-fluxcd/flux-operator:v0.58.1",
                        "ports": [{"name": "http-metrics", "containerPort": 8080}],
                        "args": ["--log-level=debug", "--concurrent=20", "--web-server-port=0"]
                    }]
                }}
            })
        );
        assert_eq!(
            s,
            json!({"spec": {"ports": [{"name": "http", "port": 8080}]}})
        );
        let live = read(&d, "manager");
        assert_eq!(
            (
                live.replicas,
                live.priority_class_name.as_str(),
                live.image_pull_secrets,
                live.log_level.as_str(),
                live.concurrent,
                live.web_ui,
            ),
            (
                2,
                "system-cluster-critical",
                vec!["regcred".to_owned(), "mirror".to_owned()],
                "debug",
                20,
                false
            )
        );
        assert_eq!(
            live.affinity,
            d.pointer("/spec/template/spec/affinity").cloned()
        );
    }

    #[test]
    fn flags_replace_either_spelling_and_the_web_ui_comes_back() {
        let mut d = deployment();
        d["spec"]["template"]["spec"]["containers"][0]["args"] = json!([
            "--log-level",
            "error",
            "--web-server-port=0",
            "--leader-elect"
        ]);
        assert_eq!(read(&d, "manager").log_level, "error");
        assert!(!read(&d, "manager").web_ui);
        let settings = ChartSettings {
            log_level: Some("debug".into()),
            web_ui: Some(true),
            ..ChartSettings::default()
        };
        apply(&mut d, None, "manager", &settings).unwrap();
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["args"],
            json!(["--leader-elect", "--log-level=debug"])
        );
        let live = read(&d, "manager");
        assert_eq!((live.log_level.as_str(), live.web_ui), ("debug", true));
        let mut env_off = deployment();
        env_off["spec"]["template"]["spec"]["containers"][0]["env"] =
            json!([{"name": "WEB_SERVER_PORT", "value": "0"}]);
        assert!(!read(&env_off, "manager").web_ui);
    }

    #[test]
    fn a_deployment_without_containers_is_refused() {
        let mut d = json!({"spec": {"template": {"spec": {}}}});
        let settings = ChartSettings {
            concurrent: Some(4),
            ..ChartSettings::default()
        };
        assert_eq!(
            apply(&mut d, None, "manager", &settings),
            Err(ChartError::FindContainer("log_level, concurrent or web_ui"))
        );
    }
}
