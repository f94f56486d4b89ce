//! `git` module against a real `git http-backend` over loopback HTTP(S): clone, commit, push,
//! retries, authentication and TLS failures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/git_server.rs"]
mod git_server;

use std::time::{Duration, Instant};

use git_server::{GitHttpServer, GitRepos, HttpServerOptions, git};
use terraform_provider_flux::git::{
    Auth, Author, Checkout, Error, FileChange, HttpAuth, HttpCredentials, Options, RepoPath, Secret,
};

const USER: &str = "bot";
const PASSWORD: &str = "correct-horse-battery";
const TOKEN: &str = "tok_0123456789abcdef";

fn basic(password: &str) -> Auth {
    Auth::Http(HttpAuth {
        credentials: HttpCredentials::Basic {
            username: USER.to_owned(),
            password: Secret::new(password),
        },
        certificate_authority: None,
        allow_insecure_http: true,
    })
}

fn bearer(token: &str) -> Auth {
    Auth::Http(HttpAuth {
        credentials: HttpCredentials::Bearer {
            token: Secret::new(token),
        },
        certificate_authority: None,
        allow_insecure_http: true,
    })
}

fn basic_server() -> GitHttpServer {
    GitHttpServer::start(
        GitRepos::new(),
        HttpServerOptions {
            basic: Some((USER.to_owned(), PASSWORD.to_owned())),
            ..HttpServerOptions::default()
        },
    )
}

fn p(path: &str) -> RepoPath {
    RepoPath::new(path).unwrap()
}

fn author() -> Author {
    Author::new("Flux Bot", "flux@example.com")
}

fn open(server: &GitHttpServer, name: &str, branch: &str, auth: &Auth) -> Result<Checkout, Error> {
    Checkout::open(&server.url(name), branch, auth, &Options::default())
}

#[test]
fn empty_repository_gets_the_branch_on_first_push() {
    let server = basic_server();
    let repos = server.repos().clone();
    repos.create_empty("fleet");
    let mut co = open(&server, "fleet", "main", &basic(PASSWORD)).unwrap();
    assert_eq!(co.head(), None);
    assert_eq!(co.read(&p("clusters/prod/a.yaml")).unwrap(), None);

    let changes = [
        FileChange::write(p("clusters/prod/a.yaml"), "a: 1\n"),
        FileChange::write(p("clusters/prod/b.yaml"), "b: 2\n"),
    ];
    let commit = co
        .apply_changes(&changes, "Add Flux", &author())
        .unwrap()
        .unwrap();

    assert_eq!(repos.branches("fleet"), vec!["main".to_owned()]);
    assert_eq!(
        repos.log("fleet", "main"),
        vec![format!("{commit} Add Flux")]
    );
    assert_eq!(
        repos.files("fleet", "main"),
        vec!["clusters/prod/a.yaml", "clusters/prod/b.yaml"]
    );
    assert_eq!(
        repos
            .read_file("fleet", "main", "clusters/prod/a.yaml")
            .as_deref(),
        Some("a: 1\n")
    );
    assert_eq!(
        git(
            &repos.path("fleet"),
            &["log", "-1", "--format=%an <%ae>|%cn <%ce>", "main"]
        )
        .trim(),
        "Flux Bot <flux@example.com>|Flux Bot <flux@example.com>"
    );
    assert_eq!(co.head(), Some(commit.clone()));
    assert_eq!(
        co.read(&p("clusters/prod/b.yaml")).unwrap().as_deref(),
        Some(&b"b: 2\n"[..])
    );
    assert_eq!(
        co.list(&p("clusters")).unwrap(),
        vec![p("clusters/prod/a.yaml"), p("clusters/prod/b.yaml")]
    );
}

#[test]
fn clone_of_history_is_shallow_and_commits_on_top() {
    let server = basic_server();
    let repos = server.repos().clone();
    repos.create_with_history("fleet", "main", 40, 5);
    let old_tip = repos.tip("fleet", "main").unwrap();

    let mut co = open(&server, "fleet", "main", &basic(PASSWORD)).unwrap();
    assert_eq!(co.head().map(|c| c.to_string()), Some(old_tip.clone()));
    let local = co.local_path().to_path_buf();
    assert_eq!(
        git(&local, &["rev-parse", "--is-shallow-repository"]).trim(),
        "true"
    );
    assert_eq!(git(&local, &["rev-list", "--count", "--all"]).trim(), "1");
    // One commit, its tree, five blobs.
    assert_eq!(
        git(&local, &["count-objects", "-v"])
            .lines()
            .find(|l| l.starts_with("in-pack"))
            .unwrap_or_default(),
        "in-pack: 7"
    );
    // The last commit (39) changed file-4 (39 % 5).
    assert_eq!(
        co.read(&p("file-4.txt")).unwrap().as_deref(),
        Some(&b"file 4, version 39\n"[..])
    );

    let commit = co
        .apply_changes(
            &[
                FileChange::write(p("clusters/x.yaml"), "x\n"),
                FileChange::delete(p("file-0.txt")),
            ],
            "Ours",
            &author(),
        )
        .unwrap()
        .unwrap();
    let log = repos.log("fleet", "main");
    assert_eq!(log.len(), 41);
    assert_eq!(log[0], format!("{commit} Ours"));
    assert_eq!(log[1], format!("{old_tip} commit 39"));
    assert_eq!(
        repos.files("fleet", "main"),
        vec![
            "clusters/x.yaml",
            "file-1.txt",
            "file-2.txt",
            "file-3.txt",
            "file-4.txt"
        ]
    );
    assert_eq!(
        git(&repos.path("fleet"), &["fsck", "--no-progress"]).trim(),
        ""
    );
}

#[test]
fn unchanged_content_makes_no_commit() {
    let server = basic_server();
    let repos = server.repos().clone();
    repos.create_with_history("fleet", "main", 3, 2);
    let mut co = open(&server, "fleet", "main", &basic(PASSWORD)).unwrap();
    let tip = repos.tip("fleet", "main").unwrap();

    // Same content as committed, and a deletion of a file that does not exist.
    let same = [
        FileChange::write(p("file-1.txt"), "file 1, version 1\n"),
        FileChange::delete(p("missing/file.yaml")),
    ];
    assert_eq!(co.apply_changes(&same, "noop", &author()).unwrap(), None);
    assert_eq!(repos.tip("fleet", "main"), Some(tip.clone()));

    let change = [FileChange::write(p("new.yaml"), "n\n")];
    let first = co.apply_changes(&change, "add", &author()).unwrap();
    assert!(first.is_some());
    assert_eq!(
        co.apply_changes(&change, "add again", &author()).unwrap(),
        None
    );
    assert_eq!(repos.log("fleet", "main").len(), 4);

    // A fresh clone sees the same content: still nothing to commit.
    let mut again = open(&server, "fleet", "main", &basic(PASSWORD)).unwrap();
    assert_eq!(
        again
            .apply_changes(&change, "add again", &author())
            .unwrap(),
        None
    );
    assert_eq!(repos.log("fleet", "main").len(), 4);

    // An empty repository with nothing to write stays empty.
    repos.create_empty("empty");
    let mut empty = open(&server, "empty", "main", &basic(PASSWORD)).unwrap();
    assert_eq!(
        empty
            .apply_changes(&[FileChange::delete(p("a"))], "noop", &author())
            .unwrap(),
        None
    );
    assert_eq!(repos.branches("empty"), Vec::<String>::new());
}

#[test]
fn concurrent_push_is_retried_on_top_without_force() {
    let server = basic_server();
    let repos = server.repos().clone();
    repos.create_with_history("fleet", "main", 5, 2);
    let base = repos.tip("fleet", "main").unwrap();
    let mut co = open(&server, "fleet", "main", &basic(PASSWORD)).unwrap();

    let theirs = repos.push_as_someone_else(
        "fleet",
        "main",
        "apps/theirs.yaml",
        "theirs\n",
        "Their change",
    );
    let ours = co
        .apply_changes(
            &[FileChange::write(p("clusters/ours.yaml"), "ours\n")],
            "Our change",
            &author(),
        )
        .unwrap()
        .unwrap();

    let log = repos.log("fleet", "main");
    assert_eq!(
        log[..3],
        [
            format!("{ours} Our change"),
            format!("{theirs} Their change"),
            format!("{base} commit 4")
        ]
    );
    assert!(repos.is_ancestor("fleet", &theirs, "main"));
    assert_eq!(
        repos
            .read_file("fleet", "main", "apps/theirs.yaml")
            .as_deref(),
        Some("theirs\n")
    );
    assert_eq!(
        repos
            .read_file("fleet", "main", "clusters/ours.yaml")
            .as_deref(),
        Some("ours\n")
    );
    assert_eq!(co.head(), Some(ours));
    // libgit2 sees from the advertisement that the branch moved, so the first attempt sends no
    // pack; only the retried one does.
    let requests = server.requests();
    let count = |method: &str, suffix: &str| {
        requests
            .iter()
            .filter(|r| r.method == method && r.uri.ends_with(suffix) && r.status == 200)
            .count()
    };
    assert_eq!(
        (
            count("GET", "info/refs?service=git-receive-pack"),
            count("POST", "/git-receive-pack")
        ),
        (2, 1),
        "{requests:?}"
    );
}

#[test]
fn race_on_an_empty_repository_retries_on_the_new_branch() {
    let server = basic_server();
    let repos = server.repos().clone();
    repos.create_empty("fleet");
    let mut co = open(&server, "fleet", "main", &basic(PASSWORD)).unwrap();
    // Someone else creates the branch first.
    repos.create_with_history("seed", "main", 1, 1);
    git(
        &repos.path("seed"),
        &["push", "-q", repos.path("fleet").to_str().unwrap(), "main"],
    );
    let theirs = repos.tip("fleet", "main").unwrap();

    let ours = co
        .apply_changes(&[FileChange::write(p("a.yaml"), "a\n")], "Ours", &author())
        .unwrap()
        .unwrap();
    assert_eq!(
        repos.log("fleet", "main"),
        vec![format!("{ours} Ours"), format!("{theirs} commit 0")]
    );
}

#[test]
fn wrong_password_is_an_auth_error_without_the_secret() {
    let server = basic_server();
    server.repos().create_empty("fleet");
    let err = open(&server, "fleet", "main", &basic("wrong-password-42")).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "authentication to {} failed: the server rejected the user name and password for user \"bot\"",
            server.url("fleet")
        )
    );
    assert!(matches!(err, Error::Auth { .. }), "{err:?}");
    assert!(!format!("{err:?}").contains("wrong-password-42"));
}

#[test]
fn password_rotation() {
    let server = basic_server();
    server.repos().create_empty("fleet");
    open(&server, "fleet", "main", &basic(PASSWORD)).unwrap();
    server.set_password("rotated-password-2");
    assert!(matches!(
        open(&server, "fleet", "main", &basic(PASSWORD)),
        Err(Error::Auth { .. })
    ));
    open(&server, "fleet", "main", &basic("rotated-password-2")).unwrap();
}

#[test]
fn missing_credentials_is_an_auth_error() {
    let server = basic_server();
    server.repos().create_empty("fleet");
    let auth = Auth::Http(HttpAuth {
        allow_insecure_http: true,
        ..HttpAuth::default()
    });
    let err = open(&server, "fleet", "main", &auth).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "authentication to {} failed: the server requires authentication and no credentials are configured",
            server.url("fleet")
        )
    );
}

#[test]
fn bearer_token_works_and_a_wrong_one_is_an_auth_error() {
    let server = GitHttpServer::start(
        GitRepos::new(),
        HttpServerOptions {
            bearer: Some(TOKEN.to_owned()),
            ..HttpServerOptions::default()
        },
    );
    let repos = server.repos().clone();
    repos.create_empty("fleet");
    let mut co = open(&server, "fleet", "main", &bearer(TOKEN)).unwrap();
    let commit = co
        .apply_changes(&[FileChange::write(p("a"), "a\n")], "A", &author())
        .unwrap()
        .unwrap();
    assert_eq!(repos.tip("fleet", "main"), Some(commit.to_string()));
    let requests = server.requests();
    assert!(!requests.is_empty());
    assert!(
        requests
            .iter()
            .all(|r| r.auth_scheme == "bearer" && r.status == 200),
        "{requests:?}"
    );

    let err = open(&server, "fleet", "main", &bearer("tok_wrong_999999")).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "authentication to {} failed: the server rejected the bearer token",
            server.url("fleet")
        )
    );
    assert!(!format!("{err:?}").contains("tok_wrong_999999"));
}

#[test]
fn https_with_custom_ca_works_and_fails_without_it() {
    let server = GitHttpServer::start(
        GitRepos::new(),
        HttpServerOptions {
            basic: Some((USER.to_owned(), PASSWORD.to_owned())),
            tls: true,
            ..HttpServerOptions::default()
        },
    );
    let repos = server.repos().clone();
    repos.create_empty("fleet");
    assert!(server.url("fleet").starts_with("https://"));
    let with_ca = Auth::Http(HttpAuth {
        credentials: HttpCredentials::Basic {
            username: USER.to_owned(),
            password: Secret::new(PASSWORD),
        },
        certificate_authority: Some(server.ca_pem().unwrap().to_owned()),
        allow_insecure_http: false,
    });
    let mut co = open(&server, "fleet", "main", &with_ca).unwrap();
    let commit = co
        .apply_changes(&[FileChange::write(p("a"), "a\n")], "A", &author())
        .unwrap()
        .unwrap();
    assert_eq!(repos.tip("fleet", "main"), Some(commit.to_string()));

    let served = server.requests().len();
    let mut without = with_ca.clone();
    if let Auth::Http(h) = &mut without {
        h.certificate_authority = None;
    }
    let err = open(&server, "fleet", "main", &without).unwrap_err();
    assert!(matches!(err, Error::Certificate { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("TLS certificate verification for 127.0.0.1 failed: "),
        "{err}"
    );

    // A different CA is rejected as well.
    let other = GitHttpServer::start(
        GitRepos::new(),
        HttpServerOptions {
            tls: true,
            ..HttpServerOptions::default()
        },
    );
    let mut wrong_ca = with_ca.clone();
    if let Auth::Http(h) = &mut wrong_ca {
        h.certificate_authority = Some(other.ca_pem().unwrap().to_owned());
    }
    let err = open(&server, "fleet", "main", &wrong_ca).unwrap_err();
    assert!(matches!(err, Error::Certificate { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("does not chain to the configured certificate authority"),
        "{err}"
    );
    // No request (and so no credential) got through without a verified certificate.
    assert_eq!(server.requests().len(), served);
}

#[test]
fn unreachable_server_fails_fast_and_clearly() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/fleet.git");
    let start = Instant::now();
    let err = Checkout::open(&url, "main", &basic(PASSWORD), &Options::default()).unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with(&format!(
            "cannot connect to 127.0.0.1:{port} for {url}: 127.0.0.1:{port}: Connection refused"
        )),
        "{err}"
    );
}

#[test]
fn missing_branch_in_non_empty_repository_lists_branches() {
    let server = basic_server();
    let repos = server.repos().clone();
    repos.create_with_history("fleet", "main", 2, 1);
    git(&repos.path("fleet"), &["branch", "staging", "main"]);
    let err = open(&server, "fleet", "develop", &basic(PASSWORD)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "branch \"develop\" does not exist in {}; existing branches: main, staging",
            server.url("fleet")
        )
    );
}

#[test]
fn invalid_arguments_are_rejected_before_connecting() {
    let server = basic_server();
    let cases: Vec<(Result<Checkout, Error>, &str)> = vec![
        (
            Checkout::open(
                &server.url("fleet"),
                "main",
                &basic(PASSWORD).clone_without_insecure(),
                &Options::default(),
            ),
            "invalid Git credentials settings: http:// URLs send credentials unencrypted; use https:// or allow insecure HTTP explicitly",
        ),
        (
            Checkout::open(
                &server.url("fleet"),
                "bad..branch",
                &basic(PASSWORD),
                &Options::default(),
            ),
            "invalid branch name \"bad..branch\"",
        ),
        (
            Checkout::open(
                &server
                    .url("fleet")
                    .replace("http://", &format!("http://{USER}:{PASSWORD}@")),
                "main",
                &basic(PASSWORD),
                &Options::default(),
            ),
            "",
        ),
    ];
    for (result, want) in cases {
        let err = result.unwrap_err();
        if want.is_empty() {
            assert!(!err.to_string().contains(PASSWORD), "{err}");
            assert!(matches!(err, Error::Url { .. }), "{err:?}");
        } else {
            assert_eq!(err.to_string(), want);
        }
    }
    assert_eq!(
        RepoPath::new("clusters/../../etc/passwd")
            .unwrap_err()
            .to_string(),
        "invalid path \"clusters/../../etc/passwd\": must not contain '..' components"
    );
    assert!(server.requests().is_empty());
}

trait CloneWithoutInsecure {
    fn clone_without_insecure(&self) -> Auth;
}

impl CloneWithoutInsecure for Auth {
    fn clone_without_insecure(&self) -> Auth {
        let mut a = self.clone();
        if let Auth::Http(h) = &mut a {
            h.allow_insecure_http = false;
        }
        a
    }
}

#[test]
fn cancellation_stops_a_transfer_in_progress() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let server = Arc::new(basic_server());
    let repos = server.repos().clone();
    let path = repos.create_empty("big");
    // 8 MiB of incompressible data, so that the pack takes a while to stream.
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let data: Vec<u8> = (0..8 * 1024 * 1024)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect();
    let work = tempfile::tempdir().unwrap();
    git(work.path(), &["init", "-q", "-b", "main"]);
    std::fs::write(work.path().join("blob.bin"), &data).unwrap();
    git(work.path(), &["add", "blob.bin"]);
    git(
        work.path(),
        &[
            "-c",
            "user.name=a",
            "-c",
            "user.email=a@b",
            "commit",
            "-q",
            "-m",
            "big",
        ],
    );
    git(work.path(), &["push", "-q", path.to_str().unwrap(), "main"]);

    // Cancelled before starting: nothing is contacted.
    let cancel = Arc::new(AtomicBool::new(true));
    let options = Options {
        cancel: Some(cancel.clone()),
        ..Options::default()
    };
    assert!(matches!(
        open(&server, "big", "main", &basic(PASSWORD)).map(|_| ()),
        Ok(())
    ));
    let served = server.requests().len();
    assert!(matches!(
        Checkout::open(&server.url("big"), "main", &basic(PASSWORD), &options),
        Err(Error::Cancelled)
    ));
    assert_eq!(server.requests().len(), served);

    // Cancelled as soon as the ref advertisement has been served, before the pack arrives.
    cancel.store(false, Ordering::SeqCst);
    let watcher = {
        let cancel = cancel.clone();
        let server = server.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if server.requests()[served..]
                    .iter()
                    .any(|r| r.uri.contains("info/refs") && r.status == 200)
                {
                    cancel.store(true, Ordering::SeqCst);
                    return;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let result = Checkout::open(&server.url("big"), "main", &basic(PASSWORD), &options);
    watcher.join().unwrap();
    assert!(matches!(result, Err(Error::Cancelled)), "{result:?}");
}

#[test]
fn push_rejections_other_than_races_are_not_retried() {
    let server = basic_server();
    let repos = server.repos().clone();
    let path = repos.create_with_history("fleet", "main", 2, 1);
    let hook = path.join("hooks/pre-receive");
    std::fs::write(&hook, "#!/bin/sh\necho 'branch is protected' >&2\nexit 1\n").unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let tip = repos.tip("fleet", "main");
    let mut co = open(&server, "fleet", "main", &basic(PASSWORD)).unwrap();
    let err = co
        .apply_changes(&[FileChange::write(p("a"), "a\n")], "A", &author())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "pushing to branch \"main\" of {} failed: the server rejected the update: refs/heads/main: pre-receive hook declined",
            server.url("fleet")
        )
    );
    assert_eq!(repos.tip("fleet", "main"), tip);
    let pushes = server
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.uri.ends_with("/git-receive-pack"))
        .count();
    assert_eq!(pushes, 1);
}

#[test]
fn retries_are_bounded() {
    let server = basic_server();
    let repos = server.repos().clone();
    repos.create_with_history("fleet", "main", 2, 1);
    let options = Options {
        max_push_attempts: 1,
        ..Options::default()
    };
    let mut co = Checkout::open(&server.url("fleet"), "main", &basic(PASSWORD), &options).unwrap();
    let theirs = repos.push_as_someone_else("fleet", "main", "t", "t\n", "Theirs");
    let err = co
        .apply_changes(&[FileChange::write(p("a"), "a\n")], "A", &author())
        .unwrap_err();
    assert!(matches!(err, Error::Push { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with(&format!(
            "pushing to branch \"main\" of {} failed: still rejected after 1 attempts (the branch keeps moving): ",
            server.url("fleet")
        )),
        "{err}"
    );
    assert_eq!(repos.tip("fleet", "main"), Some(theirs));
}

#[test]
fn push_access_is_checked_without_pushing() {
    let server = basic_server();
    let repos = server.repos().clone();
    repos.create_with_history("fleet", "main", 2, 1);
    let tip = repos.tip("fleet", "main");
    let co = open(&server, "fleet", "main", &basic(PASSWORD)).unwrap();
    co.check_push_access().unwrap();
    let requests = server.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.uri.ends_with("info/refs?service=git-receive-pack") && r.status == 200),
        "{requests:?}"
    );
    // libgit2 may follow up with an empty receive-pack request after an auth round trip; the
    // server refuses it (400) and nothing is written.
    assert!(
        !requests
            .iter()
            .any(|r| r.method == "POST" && r.uri.ends_with("/git-receive-pack") && r.status == 200),
        "{requests:?}"
    );
    assert_eq!(repos.tip("fleet", "main"), tip);

    // Read-only credentials: the clone works, pushing is refused before anything is written.
    server.set_read_only(true);
    let mut co = open(&server, "fleet", "main", &basic(PASSWORD)).unwrap();
    let err = co.check_push_access().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "authentication to {} failed: the server refused access (HTTP 403 Forbidden); the credentials lack the \
             permission needed (write access, to push)",
            server.url("fleet")
        )
    );
    let err = co
        .apply_changes(&[FileChange::write(p("a"), "a\n")], "A", &author())
        .unwrap_err();
    assert!(matches!(err, Error::Auth { .. }), "{err:?}");
    assert_eq!(repos.tip("fleet", "main"), tip);
}
