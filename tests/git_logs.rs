//! With logging at TRACE level, no password, token, passphrase or private key reaches the
//! logs of the `git` module, over HTTP and SSH, on success and on failure. A test binary of its
//! own, so that the global subscriber sees every event.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/git_server.rs"]
mod git_server;

use std::sync::{Arc, Mutex};

use git_server::{GitHttpServer, GitRepos, HttpServerOptions, SshGitServer, generate_ssh_key};
use terraform_provider_flux::git::{
    Auth, Author, Checkout, FileChange, HttpAuth, HttpCredentials, Options, RepoPath, Secret,
    SshAuth,
};

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn http(credentials: HttpCredentials) -> Auth {
    Auth::Http(HttpAuth {
        credentials,
        certificate_authority: None,
        allow_insecure_http: true,
    })
}

#[test]
fn trace_logs_carry_no_secret() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish(),
    )
    .unwrap();

    let repos = GitRepos::new();
    repos.create_with_history("fleet", "main", 3, 2);
    let http_server = GitHttpServer::start(
        repos.clone(),
        HttpServerOptions {
            basic: Some(("bot".to_owned(), "correct-horse-battery".to_owned())),
            bearer: Some("tok_0123456789abcdef".to_owned()),
            ..HttpServerOptions::default()
        },
    );
    let ssh_server = SshGitServer::start(repos.clone());
    let key = generate_ssh_key("ed25519", Some("the-passphrase-1"));
    ssh_server.authorize(&key);
    let stranger = generate_ssh_key("ed25519", None);

    let basic = |password: &str| {
        http(HttpCredentials::Basic {
            username: "bot".to_owned(),
            password: Secret::new(password),
        })
    };
    let bearer = |token: &str| {
        http(HttpCredentials::Bearer {
            token: Secret::new(token),
        })
    };
    let ssh = |private_key: &str, passphrase: Option<&str>| {
        Auth::Ssh(SshAuth {
            username: None,
            private_key: Secret::new(private_key),
            passphrase: passphrase.map(Secret::new),
            known_hosts: ssh_server.known_hosts_line(),
        })
    };
    let attempts = [
        (
            http_server.url("fleet"),
            basic("correct-horse-battery"),
            true,
        ),
        (
            http_server.url("fleet"),
            bearer("tok_0123456789abcdef"),
            true,
        ),
        (http_server.url("fleet"), basic("wrong-password-42"), false),
        (http_server.url("fleet"), bearer("tok_wrong_999999"), false),
        (
            ssh_server.url("fleet"),
            ssh(&key.private_key, Some("the-passphrase-1")),
            true,
        ),
        (
            ssh_server.url("fleet"),
            ssh(&key.private_key, Some("a-wrong-passphrase")),
            false,
        ),
        (
            ssh_server.url("fleet"),
            ssh(&stranger.private_key, None),
            false,
        ),
    ];
    for (i, (url, auth, ok)) in attempts.iter().enumerate() {
        let result = Checkout::open(url, "main", auth, &Options::default()).and_then(|mut co| {
            co.apply_changes(
                &[FileChange::write(
                    RepoPath::new("x").unwrap(),
                    format!("{i}\n"),
                )],
                "x",
                &Author::new("a", "a@example.com"),
            )
        });
        assert_eq!(result.is_ok(), *ok, "attempt {i}: {result:?}");
    }

    let logs = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert_eq!(logs.matches("pushed").count(), 3, "{logs}");
    assert_eq!(logs.matches("git operation failed").count(), 4, "{logs}");
    let mut secrets = vec![
        "correct-horse-battery".to_owned(),
        "tok_0123456789abcdef".to_owned(),
        "wrong-password-42".to_owned(),
        "tok_wrong_999999".to_owned(),
        "the-passphrase-1".to_owned(),
        "a-wrong-passphrase".to_owned(),
    ];
    for k in [&key, &stranger] {
        secrets.extend(
            k.private_key
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .map(str::to_owned),
        );
    }
    for secret in secrets {
        assert!(!logs.contains(&secret), "{secret} in logs:\n{logs}");
    }
}
