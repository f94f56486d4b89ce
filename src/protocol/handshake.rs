//! The go-plugin handshake, as Terraform's plugin client expects it, and debug (reattach) mode.
//!
//! Normal mode ([`serve`]): refuse to run unless started by Terraform (magic cookie), require
//! protocol 6 among `PLUGIN_PROTOCOL_VERSIONS`, listen on 127.0.0.1 within
//! `PLUGIN_MIN_PORT`..=`PLUGIN_MAX_PORT`, use AutoMTLS when `PLUGIN_CLIENT_CERT` is set, print
//! the one handshake line `1|6|tcp|127.0.0.1:PORT|grpc|<cert>` on stdout, and serve until
//! go-plugin's Shutdown. Ctrl-C is ignored (Terraform handles it and calls StopProvider).
//!
//! Debug mode ([`serve_debug`]): plaintext on a free loopback port, no cookie; the
//! `TF_REATTACH_PROVIDERS` value is printed on **stderr** (stdout stays reserved for the
//! handshake line), and the server runs until Ctrl-C.
//!
//! Depends on `framework::service` (what to serve) and the rest of `protocol`.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use base64::Engine;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tokio_util::sync::CancellationToken;

use crate::framework::service::ProviderService;
use crate::protocol::server::{ServerError, serve_with_incoming};
use crate::protocol::tls::{TlsError, install_default_provider, server_tls};

/// Environment variable holding go-plugin's magic cookie.
pub const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
/// The magic cookie value Terraform (and OpenTofu) set for provider plugins.
pub const MAGIC_COOKIE_VALUE: &str =
    "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";
/// The provider's source address, as used in `TF_REATTACH_PROVIDERS`.
pub const PROVIDER_ADDRESS: &str = "registry.terraform.io/fluxrs/flux";
/// The only plugin protocol version this provider speaks.
pub const PROTOCOL_VERSION: u32 = 6;

/// Shown when the binary is run by hand.
const NOT_A_PLUGIN: &str = "\
This binary is a plugin for Terraform and OpenTofu: the Flux provider \
(registry.terraform.io/fluxrs/flux). It is not meant to be run directly; Terraform starts it.

To use it, declare it in your configuration and run `terraform init`:

    terraform {
      required_providers {
        flux = { source = \"fluxrs/flux\" }
      }
    }

To use a local build, point a `dev_overrides` block of your Terraform CLI configuration at the \
directory holding this binary.

To debug the provider, run it with `--debug`: it serves without Terraform and prints a \
TF_REATTACH_PROVIDERS value to export before running terraform.";

/// Why the plugin could not start or serve.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The magic cookie is missing or wrong: not started by Terraform.
    #[error("{NOT_A_PLUGIN}")]
    NotStartedByTerraform,
    /// Terraform offered no protocol version this provider speaks.
    #[error(
        "Terraform offered plugin protocol versions {offered:?} (PLUGIN_PROTOCOL_VERSIONS), but \
         this provider speaks only protocol 6, which needs Terraform 1.0 or later (or OpenTofu)"
    )]
    NoCommonProtocol {
        /// The offered versions, as given.
        offered: String,
    },
    /// `PLUGIN_MIN_PORT` / `PLUGIN_MAX_PORT` are not a valid port range.
    #[error("invalid port range PLUGIN_MIN_PORT={min:?} PLUGIN_MAX_PORT={max:?}")]
    PortRange {
        /// The minimum, as given.
        min: String,
        /// The maximum, as given.
        max: String,
    },
    /// No port of the range could be bound.
    #[error("no free port on 127.0.0.1 between {min} and {max}: {source}")]
    Listen {
        /// Lowest port tried.
        min: u16,
        /// Highest port tried.
        max: u16,
        /// The last bind error.
        #[source]
        source: std::io::Error,
    },
    /// Reading the bound address failed.
    #[error("reading the listening address: {0}")]
    LocalAddress(#[source] std::io::Error),
    /// Setting up AutoMTLS failed.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// Writing the handshake line to stdout failed.
    #[error("writing the handshake line to stdout: {0}")]
    WriteHandshake(#[source] std::io::Error),
    /// Listening for Ctrl-C failed (debug mode).
    #[error("listening for Ctrl-C: {0}")]
    Signal(#[source] std::io::Error),
    /// The gRPC server failed.
    #[error(transparent)]
    Serve(#[from] ServerError),
}

/// What Terraform's plugin client told the plugin through the environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginEnv {
    /// Lowest port to listen on.
    pub min_port: u16,
    /// Highest port to listen on.
    pub max_port: u16,
    /// Terraform's client certificate (PEM) when AutoMTLS is on.
    pub client_cert: Option<String>,
}

impl PluginEnv {
    /// Reads and checks the plugin environment through `var` (e.g. `std::env::var(..).ok()`).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, HandshakeError> {
        if var(MAGIC_COOKIE_KEY).as_deref() != Some(MAGIC_COOKIE_VALUE) {
            return Err(HandshakeError::NotStartedByTerraform);
        }
        if let Some(offered) = var("PLUGIN_PROTOCOL_VERSIONS") {
            let speaks_6 = offered
                .split(',')
                .any(|version| version.trim().parse::<u32>() == Ok(PROTOCOL_VERSION));
            if !speaks_6 {
                return Err(HandshakeError::NoCommonProtocol { offered });
            }
        }
        let min = var("PLUGIN_MIN_PORT").unwrap_or_else(|| "10000".to_owned());
        let max = var("PLUGIN_MAX_PORT").unwrap_or_else(|| "25000".to_owned());
        let (Ok(min_port), Ok(max_port)) = (min.trim().parse::<u16>(), max.trim().parse::<u16>())
        else {
            return Err(HandshakeError::PortRange { min, max });
        };
        if min_port == 0 || min_port > max_port {
            return Err(HandshakeError::PortRange { min, max });
        }
        let client_cert = var("PLUGIN_CLIENT_CERT").filter(|pem| !pem.trim().is_empty());
        Ok(Self {
            min_port,
            max_port,
            client_cert,
        })
    }
}

/// The handshake line go-plugin's client reads from stdout (`cert_der` empty: no TLS).
pub fn handshake_line(address: SocketAddr, cert_der: &[u8]) -> String {
    let cert = base64::engine::general_purpose::STANDARD_NO_PAD.encode(cert_der);
    format!("1|{PROTOCOL_VERSION}|tcp|{address}|grpc|{cert}")
}

/// The `TF_REATTACH_PROVIDERS` value for a debug server at `address` in process `pid`.
/// `"Test": true` is required for protocol 6 (without it Terraform assumes protocol 5).
pub fn reattach_json(address: SocketAddr, pid: u32) -> String {
    serde_json::json!({
        PROVIDER_ADDRESS: {
            "Protocol": "grpc",
            "ProtocolVersion": PROTOCOL_VERSION,
            "Pid": pid,
            "Test": true,
            "Addr": { "Network": "tcp", "String": address.to_string() },
        }
    })
    .to_string()
}

/// Serves as a Terraform plugin: checks the environment, listens, prints the handshake line and
/// serves until go-plugin's Shutdown.
pub async fn serve(service: Arc<dyn ProviderService>) -> Result<(), HandshakeError> {
    install_default_provider();
    let env = PluginEnv::from_vars(|key| std::env::var(key).ok())?;
    let listener = listen_in_range(env.min_port, env.max_port).await?;
    let address = listener
        .local_addr()
        .map_err(HandshakeError::LocalAddress)?;
    let tls = env.client_cert.as_deref().map(server_tls).transpose()?;
    let cert_der = tls
        .as_ref()
        .map(|tls| tls.certificate_der.clone())
        .unwrap_or_default();
    tracing::info!(%address, tls = tls.is_some(), "serving plugin protocol 6");

    let shutdown = CancellationToken::new();
    ignore_interrupts();
    let line = handshake_line(address, &cert_der);
    match tls {
        Some(tls) => {
            let incoming = tls_incoming(listener, TlsAcceptor::from(tls.config), shutdown.clone());
            print_handshake(&line)?;
            serve_with_incoming(service, incoming, shutdown).await?;
        }
        None => {
            print_handshake(&line)?;
            serve_with_incoming(service, plain_incoming(listener), shutdown).await?;
        }
    }
    tracing::info!("plugin server stopped");
    Ok(())
}

/// Serves in debug mode: plaintext, no handshake, reattach information on stderr; runs until
/// Ctrl-C (or go-plugin's Shutdown).
pub async fn serve_debug(service: Arc<dyn ProviderService>) -> Result<(), HandshakeError> {
    install_default_provider();
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .map_err(|source| HandshakeError::Listen {
            min: 0,
            max: 0,
            source,
        })?;
    let address = listener
        .local_addr()
        .map_err(HandshakeError::LocalAddress)?;
    let reattach = reattach_json(address, std::process::id());
    eprintln!(
        "Provider {PROVIDER_ADDRESS} started in debug mode on {address}.\n\
         To attach Terraform, set this in the shell you run terraform from:\n\n\
         \texport TF_REATTACH_PROVIDERS='{reattach}'\n\n\
         Stop the provider with Ctrl-C."
    );
    let shutdown = CancellationToken::new();
    let on_interrupt = shutdown.clone();
    let signal = tokio::spawn(async move {
        let result = tokio::signal::ctrl_c().await;
        on_interrupt.cancel();
        result
    });
    let served = serve_with_incoming(service, plain_incoming(listener), shutdown.clone()).await;
    if signal.is_finished() {
        if let Ok(Err(error)) = signal.await {
            return Err(HandshakeError::Signal(error));
        }
    } else {
        signal.abort();
    }
    served?;
    Ok(())
}

/// The first port of `min..=max` that can be bound on 127.0.0.1.
async fn listen_in_range(min: u16, max: u16) -> Result<TcpListener, HandshakeError> {
    let mut last_error = None;
    for port in min..=max {
        match TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await {
            Ok(listener) => return Ok(listener),
            Err(error) => last_error = Some(error),
        }
    }
    Err(HandshakeError::Listen {
        min,
        max,
        source: last_error.unwrap_or_else(|| std::io::Error::other("empty port range")),
    })
}

/// Writes the handshake line: the only thing this program ever writes to stdout.
#[allow(clippy::print_stdout)]
fn print_handshake(line: &str) -> Result<(), HandshakeError> {
    println!("{line}");
    std::io::stdout()
        .flush()
        .map_err(HandshakeError::WriteHandshake)
}

/// Keeps Ctrl-C from killing the plugin: the terminal sends it to Terraform too, which stops
/// the provider gracefully (StopProvider, then Shutdown).
fn ignore_interrupts() {
    tokio::spawn(async {
        while tokio::signal::ctrl_c().await.is_ok() {
            tracing::debug!("interrupt received and ignored; Terraform will stop the provider");
        }
    });
}

/// Accepted plaintext connections, with Nagle's algorithm off: every RPC answer is one small
/// write, and delaying it for a TCP ACK costs ~40 ms per call (tonic's own `tcp_nodelay` setting
/// does not apply to `serve_with_incoming`).
fn plain_incoming(
    listener: TcpListener,
) -> impl tokio_stream::Stream<Item = Result<TcpStream, std::io::Error>> {
    use tokio_stream::StreamExt as _;
    TcpListenerStream::new(listener).map(|accepted| {
        accepted.and_then(|stream| {
            stream.set_nodelay(true)?;
            Ok(stream)
        })
    })
}

/// Accepted connections after their TLS handshake, with Nagle's algorithm off (see
/// [`plain_incoming`]); handshakes run concurrently so that a slow or refused client does not
/// hold up others.
fn tls_incoming(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    shutdown: CancellationToken,
) -> ReceiverStream<Result<TlsStream<TcpStream>, std::io::Error>> {
    let (sender, receiver) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = shutdown.cancelled() => break,
                () = sender.closed() => break,
                accepted = listener.accept() => accepted,
            };
            let (stream, peer) = match accepted.and_then(|(stream, peer)| {
                stream.set_nodelay(true)?;
                Ok((stream, peer))
            }) {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accepting a connection failed");
                    continue;
                }
            };
            let acceptor = acceptor.clone();
            let sender = sender.clone();
            tokio::spawn(async move {
                match acceptor.accept(stream).await {
                    Ok(tls) => {
                        let _closed = sender.send(Ok(tls)).await;
                    }
                    Err(error) => {
                        tracing::warn!(%peer, %error, "TLS handshake with a client failed");
                    }
                }
            });
        }
    });
    ReceiverStream::new(receiver)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |key| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }

    #[test]
    fn environment_is_checked() {
        let cookie = (MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE);
        assert!(matches!(
            PluginEnv::from_vars(vars(&[])),
            Err(HandshakeError::NotStartedByTerraform)
        ));
        assert!(matches!(
            PluginEnv::from_vars(vars(&[(MAGIC_COOKIE_KEY, "nope")])),
            Err(HandshakeError::NotStartedByTerraform)
        ));
        assert!(matches!(
            PluginEnv::from_vars(vars(&[cookie, ("PLUGIN_PROTOCOL_VERSIONS", "4,5")])),
            Err(HandshakeError::NoCommonProtocol { offered }) if offered == "4,5"
        ));
        assert!(matches!(
            PluginEnv::from_vars(vars(&[
                cookie,
                ("PLUGIN_MIN_PORT", "20"),
                ("PLUGIN_MAX_PORT", "10")
            ])),
            Err(HandshakeError::PortRange { .. })
        ));
        assert_eq!(
            PluginEnv::from_vars(vars(&[
                cookie,
                ("PLUGIN_PROTOCOL_VERSIONS", "5,6"),
                ("PLUGIN_MIN_PORT", "12000"),
                ("PLUGIN_MAX_PORT", "12010"),
                ("PLUGIN_CLIENT_CERT", "PEM"),
            ]))
            .unwrap(),
            PluginEnv {
                min_port: 12000,
                max_port: 12010,
                client_cert: Some("PEM".to_owned()),
            }
        );
        assert_eq!(
            PluginEnv::from_vars(vars(&[cookie])).unwrap(),
            PluginEnv {
                min_port: 10000,
                max_port: 25000,
                client_cert: None,
            }
        );
    }

    #[test]
    fn handshake_line_and_reattach_json_have_go_plugin_shape() {
        let address: SocketAddr = "127.0.0.1:12345".parse().unwrap();
        assert_eq!(
            handshake_line(address, &[0xfb, 0xff]),
            "1|6|tcp|127.0.0.1:12345|grpc|+/8"
        );
        assert_eq!(
            handshake_line(address, &[]),
            "1|6|tcp|127.0.0.1:12345|grpc|"
        );
        let json: serde_json::Value = serde_json::from_str(&reattach_json(address, 42)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"registry.terraform.io/fluxrs/flux": {
                "Protocol": "grpc", "ProtocolVersion": 6, "Pid": 42, "Test": true,
                "Addr": {"Network": "tcp", "String": "127.0.0.1:12345"}}})
        );
    }
}
