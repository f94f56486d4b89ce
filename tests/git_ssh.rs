//! `git` module against a real `sshd` on loopback: key types, passphrases, host-key
//! verification and authentication failures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/git_server.rs"]
mod git_server;

use git_server::{GitRepos, SshGitServer, SshKey, generate_ssh_key, git};
use terraform_provider_flux::git::{
    Auth, Author, Checkout, Error, FileChange, Options, RepoPath, Secret, SshAuth,
};

fn ssh_auth(key: &SshKey, known_hosts: &str) -> Auth {
    Auth::Ssh(SshAuth {
        username: None,
        private_key: Secret::new(key.private_key.clone()),
        passphrase: key.passphrase.as_deref().map(Secret::new),
        known_hosts: known_hosts.to_owned(),
    })
}

fn p(path: &str) -> RepoPath {
    RepoPath::new(path).unwrap()
}

fn author() -> Author {
    Author::new("Flux Bot", "flux@example.com")
}

fn round_trip(server: &SshGitServer, key: &SshKey, name: &str) {
    let repos = server.repos().clone();
    let auth = ssh_auth(key, &server.known_hosts_line());
    let mut co = Checkout::open(&server.url(name), "main", &auth, &Options::default())
        .unwrap_or_else(|e| panic!("{e}\nsshd log:\n{}", server.log()));
    let before = repos.tip(name, "main");
    let commit = co
        .apply_changes(
            &[FileChange::write(
                p("clusters/prod/flux.yaml"),
                format!("{name}\n"),
            )],
            "Add Flux",
            &author(),
        )
        .unwrap()
        .unwrap();
    let log = repos.log(name, "main");
    assert_eq!(log[0], format!("{commit} Add Flux"));
    assert_eq!(log.get(1).map(|l| l[..40].to_owned()), before);
    assert_eq!(
        repos.read_file(name, "main", "clusters/prod/flux.yaml"),
        Some(format!("{name}\n"))
    );
}

#[test]
fn ed25519_key_clones_and_pushes_empty_and_shallow() {
    let repos = GitRepos::new();
    repos.create_empty("empty");
    repos.create_with_history("history", "main", 20, 3);
    let server = SshGitServer::start(repos.clone());
    let key = generate_ssh_key("ed25519", None);
    server.authorize(&key);
    round_trip(&server, &key, "empty");
    round_trip(&server, &key, "history");

    let co = Checkout::open(
        &server.url("history"),
        "main",
        &ssh_auth(&key, &server.known_hosts_line()),
        &Options::default(),
    )
    .unwrap();
    assert_eq!(
        git(co.local_path(), &["rev-parse", "--is-shallow-repository"]).trim(),
        "true"
    );
    assert_eq!(
        git(co.local_path(), &["rev-list", "--count", "--all"]).trim(),
        "1"
    );
}

#[test]
fn passphrase_protected_and_rsa_keys_work() {
    let repos = GitRepos::new();
    let server = SshGitServer::start(repos.clone());
    for (i, key) in [
        generate_ssh_key("ed25519", Some("open sesame 1")),
        generate_ssh_key("rsa", None),
        generate_ssh_key("rsa", Some("open sesame 2")),
        generate_ssh_key("ecdsa", None),
    ]
    .into_iter()
    .enumerate()
    {
        server.authorize(&key);
        let name = format!("repo{i}");
        repos.create_empty(&name);
        round_trip(&server, &key, &name);
    }
}

#[test]
fn push_race_over_ssh_is_retried() {
    let repos = GitRepos::new();
    repos.create_with_history("fleet", "main", 3, 2);
    let server = SshGitServer::start(repos.clone());
    let key = generate_ssh_key("ed25519", None);
    server.authorize(&key);
    let mut co = Checkout::open(
        &server.url("fleet"),
        "main",
        &ssh_auth(&key, &server.known_hosts_line()),
        &Options::default(),
    )
    .unwrap();
    let theirs = repos.push_as_someone_else("fleet", "main", "theirs.yaml", "t\n", "Theirs");
    let ours = co
        .apply_changes(
            &[FileChange::write(p("ours.yaml"), "o\n")],
            "Ours",
            &author(),
        )
        .unwrap()
        .unwrap();
    let log = repos.log("fleet", "main");
    assert_eq!(
        log[..2],
        [format!("{ours} Ours"), format!("{theirs} Theirs")]
    );
}

#[test]
fn unknown_or_changed_host_key_is_a_host_key_error() {
    let repos = GitRepos::new();
    repos.create_empty("fleet");
    let server = SshGitServer::start(repos.clone());
    let key = generate_ssh_key("ed25519", None);
    server.authorize(&key);
    let name = format!("[127.0.0.1]:{}", server.port());
    let fp = server.host_key_fingerprint();
    let line = server.known_hosts_line();

    // No entry for this host (only one for the default port).
    let other_port = line.replacen(&name, "127.0.0.1", 1);
    let err = Checkout::open(
        &server.url("fleet"),
        "main",
        &ssh_auth(&key, &other_port),
        &Options::default(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "SSH host key verification for {name} failed: the server offered ssh-ed25519 key {fp}, and known_hosts has no \
             entry for {name}. If that fingerprint is the server's (check it out of band, e.g. `ssh-keyscan -p {port} \
             127.0.0.1 | ssh-keygen -lf -`), add this line to known_hosts: {line}",
            port = server.port()
        )
    );
    assert!(matches!(err, Error::HostKey { .. }));

    // A different key for this host.
    let impostor = generate_ssh_key("ed25519", None);
    let mut fields = impostor.public_key.split_whitespace();
    let changed = format!(
        "{name} {} {}",
        fields.next().unwrap(),
        fields.next().unwrap()
    );
    let err = Checkout::open(
        &server.url("fleet"),
        "main",
        &ssh_auth(&key, &changed),
        &Options::default(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::HostKey { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("known_hosts lists different key(s) for this host (ssh-ed25519)"),
        "{err}"
    );

    // Nothing was written.
    assert_eq!(repos.branches("fleet"), Vec::<String>::new());
}

#[test]
fn unauthorised_key_and_wrong_passphrase_are_auth_errors_without_secrets() {
    let repos = GitRepos::new();
    repos.create_empty("fleet");
    let server = SshGitServer::start(repos.clone());
    let known = server.known_hosts_line();

    let stranger = generate_ssh_key("ed25519", None);
    let err = Checkout::open(
        &server.url("fleet"),
        "main",
        &ssh_auth(&stranger, &known),
        &Options::default(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Auth { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "authentication to {} failed: the SSH server rejected the private key for user {:?} (is the matching \
             public key authorised, with write access?)",
            server.url("fleet"),
            server.user()
        )
    );
    let body = stranger.private_key.lines().nth(1).unwrap().to_owned();
    assert!(!err.to_string().contains(&body) && !format!("{err:?}").contains(&body));

    let mut locked = generate_ssh_key("ed25519", Some("the-right-passphrase"));
    server.authorize(&locked);
    locked.passphrase = Some("a-wrong-passphrase".to_owned());
    let err = Checkout::open(
        &server.url("fleet"),
        "main",
        &ssh_auth(&locked, &known),
        &Options::default(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Auth { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with(&format!(
            "authentication to {} failed: the SSH private key cannot be used: wrong passphrase",
            server.url("fleet")
        )),
        "{err}"
    );
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(
            !text.contains("a-wrong-passphrase") && !text.contains("the-right-passphrase"),
            "{text}"
        );
    }
}
