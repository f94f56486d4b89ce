//! `kube-sandbox` binary: serves the sandbox API over HTTPS for out-of-process clients
//! (kubectl, terraform, the provider binary).
//!
//! ```text
//! kube-sandbox serve --kubeconfig <path> [--listen 127.0.0.1:0] [--operator-sim]
//!                    [--flux-versions <v1,v2,...>] [--crd-established-delay-ms <n>]
//!                    [--deployment-available-delay-ms <n>]
//! kube-sandbox git-serve --root <dir> [--listen 127.0.0.1:0]
//!                    [--username <u> --password <p> | --token <t>] [--init <repo-name>...]
//! kube-sandbox kubelet-sim --kubeconfig <path> [--node <name>]
//! kube-sandbox operator-sim --kubeconfig <path> [--flux-versions <list>]
//!                    [--flux-manifests <dir>] [--no-sync]
//! kube-sandbox fault-proxy --upstream-kubeconfig <path> --kubeconfig <path> [--listen 127.0.0.1:0]
//! ```
//!
//! `fault-proxy` puts the sandbox's fault injection in front of ANY API server (see
//! `kube_sandbox::fault_proxy`).
//!
//! `kubelet-sim` and `operator-sim` run this crate's controllers against ANY API server (the real
//! kube-apiserver of `scripts/real-cluster.sh`); see `kube_sandbox::standalone`.
//!
//! `git-serve` is a smart-HTTP Git server (see `kube_sandbox::git_http`); it prints
//! `ready http://127.0.0.1:<port>`.
//!
//! Prints exactly `ready https://127.0.0.1:<port>` on stdout once serving, logs nothing else to
//! stdout, and exits on SIGTERM or SIGINT.

use anyhow::{Context as _, bail};
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug)]
struct Args {
    kubeconfig: PathBuf,
    listen: SocketAddr,
    operator_sim: bool,
    flux_versions: Option<String>,
    crd_delay: Option<Duration>,
    deploy_delay: Option<Duration>,
}

const USAGE: &str = "usage: kube-sandbox serve --kubeconfig <path> [--listen 127.0.0.1:0] [--operator-sim] [--flux-versions <list>] [--crd-established-delay-ms <n>] [--deployment-available-delay-ms <n>]";

fn parse(mut it: impl Iterator<Item = String>) -> anyhow::Result<Args> {
    match it.next().as_deref() {
        Some("serve") => {}
        _ => bail!("{USAGE}"),
    }
    let mut kubeconfig = None;
    let mut listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut operator_sim = false;
    let mut flux_versions = None;
    let mut crd_delay = None;
    let mut deploy_delay = None;
    while let Some(a) = it.next() {
        let mut val = |name: &str| {
            it.next()
                .with_context(|| format!("{name} needs a value\n{USAGE}"))
        };
        match a.as_str() {
            "--kubeconfig" => kubeconfig = Some(PathBuf::from(val("--kubeconfig")?)),
            "--listen" => {
                listen = val("--listen")?
                    .parse()
                    .context("--listen must be ip:port")?
            }
            "--operator-sim" => operator_sim = true,
            "--flux-versions" => flux_versions = Some(val("--flux-versions")?),
            "--crd-established-delay-ms" => {
                crd_delay = Some(Duration::from_millis(
                    val("--crd-established-delay-ms")?.parse()?,
                ))
            }
            "--deployment-available-delay-ms" => {
                deploy_delay = Some(Duration::from_millis(
                    val("--deployment-available-delay-ms")?.parse()?,
                ))
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    Ok(Args {
        kubeconfig: kubeconfig.with_context(|| format!("--kubeconfig is required\n{USAGE}"))?,
        listen,
        operator_sim,
        flux_versions,
        crd_delay,
        deploy_delay,
    })
}

/// Logs of the standalone controllers on stderr; `KUBE_SANDBOX_LOG=debug|info|warn` (default
/// `warn`).
fn init_logging() {
    let level = match std::env::var("KUBE_SANDBOX_LOG").as_deref() {
        Ok("debug") => tracing::Level::DEBUG,
        Ok("info") => tracing::Level::INFO,
        _ => tracing::Level::WARN,
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_ansi(false)
        .init();
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut out = std::io::stdout();
    match std::env::args().nth(1).as_deref() {
        Some("git-serve") => {
            return Ok(kube_sandbox::git_http::run_cli(std::env::args().skip(2), &mut out).await?);
        }
        Some("fault-proxy") => {
            init_logging();
            let args = std::env::args().skip(2);
            return Ok(kube_sandbox::fault_proxy::run_cli(args, &mut out).await?);
        }
        Some("kubelet-sim") => {
            init_logging();
            let args = std::env::args().skip(2);
            return Ok(kube_sandbox::standalone::run_kubelet_sim(args, &mut out).await?);
        }
        Some("operator-sim") => {
            init_logging();
            let args = std::env::args().skip(2);
            return Ok(kube_sandbox::standalone::run_operator_sim(args, &mut out).await?);
        }
        _ => {}
    }
    let args = parse(std::env::args().skip(1))?;
    let mut b = kube_sandbox::Sandbox::builder();
    if let Some(d) = args.crd_delay {
        b = b.crd_established_delay(d);
    }
    if let Some(d) = args.deploy_delay {
        b = b.deployment_available_delay(d);
    }
    if args.operator_sim || args.flux_versions.is_some() {
        let mut cfg = kube_sandbox::sim::SimConfig::default();
        if let Some(list) = &args.flux_versions {
            cfg.flux_versions = kube_sandbox::sim::version::parse_version_list(list)
                .map_err(|e| anyhow::anyhow!("--flux-versions: {e}"))?;
        }
        b = b.operator_sim(cfg);
    }
    // Handlers first, so a signal sent right after the ready line is not missed.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let sandbox = b.build();
    let served = sandbox.serve_tls(args.listen).await?;
    served
        .write_kubeconfig(&args.kubeconfig)
        .with_context(|| format!("writing kubeconfig {}", args.kubeconfig.display()))?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "ready {}", served.url)?;
        out.flush()?;
    }
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    served.shutdown().await;
    Ok(())
}
