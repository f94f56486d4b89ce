//! The controllers of this crate as standalone processes against ANY API server (used by
//! `scripts/real-cluster.sh` on the real kube-apiserver):
//!
//! ```text
//! kube-sandbox kubelet-sim  --kubeconfig <path> [--node <name>]
//! kube-sandbox operator-sim --kubeconfig <path> [--flux-versions <v1,v2,...>]
//!                           [--flux-manifests <dir>] [--no-sync]
//! ```
//!
//! - `kubelet-sim`: [`crate::kubelet_sim`] (fake Node, Pods bound and Ready).
//! - `operator-sim`: the Flux Operator simulator ([`crate::sim`]). `--flux-manifests` points at
//!   the real Flux install objects extracted at build time (see [`crate::sim::real_manifests`]);
//!   `--no-sync` leaves GitRepositories and Kustomizations to the real Flux controllers.
//!
//! Each prints one line `ready <what>` on stdout once running, nothing else, and exits on
//! SIGTERM or SIGINT.

use std::io::Write;
use std::path::PathBuf;

use kube::config::{KubeConfigOptions, Kubeconfig};

/// Errors of the standalone subcommands.
#[derive(Debug, thiserror::Error)]
pub enum StandaloneError {
    /// Bad command line.
    #[error("{0}")]
    Usage(String),
    /// The kubeconfig could not be read or used.
    #[error("kubeconfig {path}: {message}")]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Local I/O (signals, stdout).
    #[error("{step}: {source}")]
    Io {
        /// What was being done.
        step: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The kubelet stand-in failed.
    #[error(transparent)]
    KubeletSim(#[from] crate::kubelet_sim::KubeletSimError),
    /// The real Flux manifests could not be loaded.
    #[error(transparent)]
    Manifests(#[from] crate::sim::real_manifests::RealManifestsError),
}

const KUBELET_USAGE: &str = "usage: kube-sandbox kubelet-sim --kubeconfig <path> [--node <name>]";
const OPERATOR_USAGE: &str = "usage: kube-sandbox operator-sim --kubeconfig <path> [--flux-versions <list>] [--flux-manifests <dir>] [--no-sync]";

/// The client configuration of the kubeconfig at `path` (its current context).
pub async fn config_from_kubeconfig(path: &PathBuf) -> Result<kube::Config, StandaloneError> {
    let err = |message: String| StandaloneError::Kubeconfig {
        path: path.clone(),
        message,
    };
    let kubeconfig = Kubeconfig::read_from(path).map_err(|e| err(e.to_string()))?;
    kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| err(e.to_string()))
}

/// A client for the kubeconfig at `path` (its current context), with kube's default retries.
pub async fn client_from_kubeconfig(path: &PathBuf) -> Result<kube::Client, StandaloneError> {
    let config = config_from_kubeconfig(path).await?;
    kube::Client::try_from(config).map_err(|e| StandaloneError::Kubeconfig {
        path: path.clone(),
        message: e.to_string(),
    })
}

fn write_ready(out: &mut dyn Write, what: &str) -> Result<(), StandaloneError> {
    writeln!(out, "ready {what}")
        .and_then(|()| out.flush())
        .map_err(|source| StandaloneError::Io {
            step: "writing the ready line",
            source,
        })
}

async fn until_signal<F: std::future::Future>(
    work: F,
) -> Result<Option<F::Output>, StandaloneError> {
    use tokio::signal::unix::{SignalKind, signal};
    let io = |source| StandaloneError::Io {
        step: "installing signal handlers",
        source,
    };
    let mut term = signal(SignalKind::terminate()).map_err(io)?;
    let mut int = signal(SignalKind::interrupt()).map_err(io)?;
    tokio::select! {
        out = work => Ok(Some(out)),
        _ = term.recv() => Ok(None),
        _ = int.recv() => Ok(None),
    }
}

fn value(
    it: &mut impl Iterator<Item = String>,
    name: &str,
    usage: &str,
) -> Result<String, StandaloneError> {
    it.next()
        .ok_or_else(|| StandaloneError::Usage(format!("{name} needs a value\n{usage}")))
}

/// `kube-sandbox kubelet-sim ...` (arguments after the subcommand).
pub async fn run_kubelet_sim(
    args: impl IntoIterator<Item = String>,
    out: &mut dyn Write,
) -> Result<(), StandaloneError> {
    let mut it = args.into_iter();
    let mut kubeconfig = None;
    let mut config = crate::kubelet_sim::KubeletSimConfig::default();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--kubeconfig" => kubeconfig = Some(PathBuf::from(value(&mut it, &a, KUBELET_USAGE)?)),
            "--node" => config.node_name = value(&mut it, &a, KUBELET_USAGE)?,
            other => {
                return Err(StandaloneError::Usage(format!(
                    "unknown argument {other:?}\n{KUBELET_USAGE}"
                )));
            }
        }
    }
    let kubeconfig = kubeconfig.ok_or_else(|| {
        StandaloneError::Usage(format!("--kubeconfig is required\n{KUBELET_USAGE}"))
    })?;
    let client = client_from_kubeconfig(&kubeconfig).await?;
    let node = config.node_name.clone();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(crate::kubelet_sim::run(client, config, move || {
        let _ = ready_tx.send(());
    }));
    let ready = until_signal(ready_rx).await?;
    if ready.is_none() {
        task.abort();
        return Ok(());
    }
    if task.is_finished() {
        return match task.await {
            Ok(r) => r.map_err(Into::into),
            Err(e) => Err(StandaloneError::Usage(e.to_string())),
        };
    }
    write_ready(out, &format!("node/{node}"))?;
    let res = until_signal(task).await?;
    match res {
        None => Ok(()),
        Some(Ok(r)) => r.map_err(Into::into),
        Some(Err(e)) => Err(StandaloneError::Usage(e.to_string())),
    }
}

/// `kube-sandbox operator-sim ...` (arguments after the subcommand).
pub async fn run_operator_sim(
    args: impl IntoIterator<Item = String>,
    out: &mut dyn Write,
) -> Result<(), StandaloneError> {
    let mut it = args.into_iter();
    let mut kubeconfig = None;
    let mut config = crate::sim::SimConfig::default();
    let mut manifests = None;
    while let Some(a) = it.next() {
        match a.as_str() {
            "--kubeconfig" => kubeconfig = Some(PathBuf::from(value(&mut it, &a, OPERATOR_USAGE)?)),
            "--flux-versions" => {
                let list = value(&mut it, &a, OPERATOR_USAGE)?;
                config.flux_versions = crate::sim::version::parse_version_list(&list)
                    .map_err(|e| StandaloneError::Usage(format!("--flux-versions: {e}")))?;
            }
            "--flux-manifests" => {
                manifests = Some(PathBuf::from(value(&mut it, &a, OPERATOR_USAGE)?))
            }
            "--no-sync" => config.sync = false,
            other => {
                return Err(StandaloneError::Usage(format!(
                    "unknown argument {other:?}\n{OPERATOR_USAGE}"
                )));
            }
        }
    }
    let kubeconfig = kubeconfig.ok_or_else(|| {
        StandaloneError::Usage(format!("--kubeconfig is required\n{OPERATOR_USAGE}"))
    })?;
    if let Some(dir) = manifests {
        let real = crate::sim::real_manifests::RealManifests::load(&dir)?;
        config.flux_versions = real.versions();
        config.real_manifests = Some(std::sync::Arc::new(real));
    }
    // Kept to build clients impersonating ResourceSet service accounts.
    config.kube_config = Some(config_from_kubeconfig(&kubeconfig).await?);
    let client = client_from_kubeconfig(&kubeconfig).await?;
    // The simulator is a set of watches: nothing to wait for before it serves.
    let task = crate::sim::spawn(client, config);
    write_ready(out, "operator-sim")?;
    let _ = until_signal(task).await?;
    Ok(())
}
