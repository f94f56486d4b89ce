//! The go-plugin handshake of the built binary, driven the way Terraform's plugin client drives
//! it: magic cookie, `PLUGIN_PROTOCOL_VERSIONS=5,6`, a port range and AutoMTLS with a client
//! certificate in `PLUGIN_CLIENT_CERT`; then the handshake line, an mTLS connection pinned to
//! the announced server certificate, GetProviderSchema, refusal of another client certificate,
//! and Shutdown ending the process.

// A test crate: its helpers panic on failure like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use terraform_provider_flux::protocol::proto::plugin::Empty;
use terraform_provider_flux::protocol::proto::plugin::grpc_controller_client::GrpcControllerClient;
use terraform_provider_flux::protocol::proto::tfplugin6::get_provider_schema;
use terraform_provider_flux::protocol::proto::tfplugin6::provider_client::ProviderClient;
use tonic::transport::{Channel, Endpoint, Uri};

const BINARY: &str = env!("CARGO_BIN_EXE_terraform-provider-flux");
const COOKIE: &str = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";

/// A client certificate shaped like Terraform's (self-signed, `localhost`, client auth).
struct ClientCert {
    pem: String,
    der: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
}

fn client_cert() -> ClientCert {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
    ];
    let cert = params.self_signed(&key).unwrap();
    ClientCert {
        pem: cert.pem(),
        der: cert.der().clone(),
        key: PrivatePkcs8KeyDer::from(key.serialize_der()),
    }
}

/// Trusts exactly one server certificate (what go-plugin's client does with the handshake's).
#[derive(Debug)]
struct PinnedServer {
    der: Vec<u8>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for PinnedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        assert_eq!(server_name.to_str(), "localhost");
        if end_entity.as_ref() == self.der.as_slice() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A gRPC channel over mTLS to `address`, trusting only `server_der`, as `client`.
async fn connect_mtls(
    address: SocketAddr,
    server_der: Vec<u8>,
    client: &ClientCert,
) -> Result<Channel, Box<dyn std::error::Error + Send + Sync>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedServer {
            der: server_der,
            provider,
        }))
        .with_client_auth_cert(
            vec![client.der.clone()],
            PrivateKeyDer::Pkcs8(client.key.clone_key()),
        )?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let channel = Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let connector = connector.clone();
            async move {
                let tcp = tokio::net::TcpStream::connect(address).await?;
                let name = ServerName::try_from("localhost").map_err(std::io::Error::other)?;
                let tls = connector.connect(name, tcp).await?;
                Ok::<_, std::io::Error>(TokioIo::new(tls))
            }
        }))
        .await?;
    Ok(channel)
}

/// A range of `len` consecutive ports, all free right now.
fn free_port_range(len: u16) -> (u16, u16) {
    for attempt in 0..200_u16 {
        let base = 30_000 + (std::process::id() as u16 % 1000) * 20 + attempt * 7;
        let free =
            (base..base + len).all(|port| TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok());
        if free {
            return (base, base + len - 1);
        }
    }
    panic!("no free port range found");
}

fn plugin(min: u16, max: u16, client_cert_pem: Option<&str>) -> Command {
    let mut command = Command::new(BINARY);
    command
        .env("TF_PLUGIN_MAGIC_COOKIE", COOKIE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "5,6")
        .env("PLUGIN_MIN_PORT", min.to_string())
        .env("PLUGIN_MAX_PORT", max.to_string())
        .env("TF_LOG_PROVIDER", "DEBUG")
        .env_remove("TF_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match client_cert_pem {
        Some(pem) => command.env("PLUGIN_CLIENT_CERT", pem),
        None => command.env_remove("PLUGIN_CLIENT_CERT"),
    };
    command
}

/// Reads the handshake line; returns it and the rest of stdout for later inspection.
fn read_handshake(child: &mut Child) -> (String, BufReader<ChildStdout>) {
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(line.ends_with('\n'), "handshake line {line:?}");
    line.pop();
    (line, stdout)
}

/// Waits for the process to exit, at most `limit`.
fn wait_exit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn stderr_of(child: &mut Child) -> String {
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        pipe.read_to_string(&mut stderr).unwrap();
    }
    stderr
}

#[tokio::test]
async fn handshake_mtls_schema_refusal_and_shutdown() {
    let (min, max) = free_port_range(5);
    // Occupy the first port of the range: the plugin must pick another one inside it.
    let occupied = TcpListener::bind((Ipv4Addr::LOCALHOST, min)).unwrap();
    let client = client_cert();
    let mut child = plugin(min, max, Some(&client.pem)).spawn().unwrap();
    let (line, mut rest_of_stdout) = read_handshake(&mut child);

    let fields: Vec<&str> = line.split('|').collect();
    assert_eq!(fields.len(), 6, "{line}");
    assert_eq!(&fields[..3], ["1", "6", "tcp"], "{line}");
    assert_eq!(fields[4], "grpc", "{line}");
    let address: SocketAddr = fields[3].parse().unwrap();
    assert_eq!(address.ip(), Ipv4Addr::LOCALHOST);
    assert!(
        (min + 1..=max).contains(&address.port()),
        "port {} outside {}..={} (or the occupied {min})",
        address.port(),
        min + 1,
        max
    );
    assert!(!fields[5].contains('='), "raw base64 has no padding");
    let server_der = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(fields[5])
        .unwrap();
    assert!(
        fields[5].len() > 50,
        "go-plugin ignores a certificate of 50 characters or less"
    );

    // mTLS with the announced certificate and the client certificate Terraform passed.
    let channel = connect_mtls(address, server_der.clone(), &client)
        .await
        .unwrap();
    let schema = ProviderClient::new(channel.clone())
        .get_provider_schema(get_provider_schema::Request {})
        .await
        .unwrap()
        .into_inner();
    assert!(
        schema.provider.is_some(),
        "a provider schema is always present"
    );
    assert!(schema.server_capabilities.is_some());

    // Another client certificate is refused.
    let stranger = client_cert();
    let refused = async {
        let channel = connect_mtls(address, server_der.clone(), &stranger).await?;
        ProviderClient::new(channel)
            .get_provider_schema(get_provider_schema::Request {})
            .await?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
    }
    .await;
    assert!(
        refused.is_err(),
        "a different client certificate must be refused"
    );

    // Shutdown ends the process promptly.
    GrpcControllerClient::new(channel)
        .shutdown(Empty {})
        .await
        .unwrap();
    let shutdown_at = Instant::now();
    let status = wait_exit(&mut child, Duration::from_secs(1));
    let stderr = stderr_of(&mut child);
    let status = status.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("process still running 1 s after Shutdown; stderr:\n{stderr}")
    });
    assert!(shutdown_at.elapsed() < Duration::from_secs(1));
    assert!(status.success(), "exit status {status}; stderr:\n{stderr}");

    // Nothing but the handshake line was written to stdout.
    let mut rest = String::new();
    rest_of_stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "");
    // The logs on stderr are hclog JSON lines.
    let log_line = stderr
        .lines()
        .find(|line| line.contains("GetProviderSchema"))
        .unwrap_or_else(|| panic!("no log of the GetProviderSchema call in:\n{stderr}"));
    let log: serde_json::Value = serde_json::from_str(log_line).unwrap();
    assert_eq!(log["tf_rpc"], "GetProviderSchema");
    assert_eq!(log["@level"], "debug");
    // ... and the refusal was the TLS handshake rejecting the stranger's certificate.
    let refusal_line = stderr
        .lines()
        .find(|line| line.contains("TLS handshake with a client failed"))
        .unwrap_or_else(|| panic!("no TLS refusal logged in:\n{stderr}"));
    let refusal: serde_json::Value = serde_json::from_str(refusal_line).unwrap();
    assert_eq!(refusal["@level"], "warn");
    assert!(
        refusal["error"].as_str().unwrap().contains("certificate"),
        "{refusal_line}"
    );
    drop(occupied);
}

#[test]
fn without_the_cookie_it_explains_itself_and_exits() {
    let output = Command::new(BINARY)
        .env_remove("TF_PLUGIN_MAGIC_COOKIE")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stdout), "");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("This binary is a plugin for Terraform and OpenTofu"),
        "{stderr}"
    );
    assert!(stderr.contains("--debug"), "{stderr}");
    assert!(stderr.contains("dev_overrides"), "{stderr}");
}

#[test]
fn without_protocol_6_it_refuses_clearly() {
    let (min, max) = free_port_range(2);
    let output = plugin(min, max, None)
        .env("PLUGIN_PROTOCOL_VERSIONS", "5")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stdout), "");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Terraform offered plugin protocol versions \"5\"")
            && stderr.contains("speaks only protocol 6"),
        "{stderr}"
    );
}

#[tokio::test]
async fn without_a_client_certificate_it_serves_plaintext() {
    let (min, max) = free_port_range(3);
    let mut child = plugin(min, max, None).spawn().unwrap();
    let (line, _stdout) = read_handshake(&mut child);
    let address = line
        .strip_prefix("1|6|tcp|")
        .and_then(|rest| rest.strip_suffix("|grpc|"))
        .unwrap_or_else(|| panic!("unexpected handshake line {line:?}"));
    let port: u16 = address.rsplit(':').next().unwrap().parse().unwrap();
    assert!((min..=max).contains(&port));
    let channel = Endpoint::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    GrpcControllerClient::new(channel)
        .shutdown(Empty {})
        .await
        .unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(1));
    if status.is_none() {
        let _ = child.kill();
    }
    assert!(status.unwrap().success());
}
