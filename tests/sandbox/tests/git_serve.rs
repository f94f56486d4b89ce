//! The `kube-sandbox git-serve` binary, driven as `make demo` drives it: the ready line, the
//! repositories `--init` creates, clone and push with the real `git` CLI and basic auth, `401`
//! without credentials, usage errors, and a clean exit on SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Served {
    child: Child,
    url: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn git_serve(args: &[&str]) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kube-sandbox"))
        .arg("git-serve")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .strip_suffix('\n')
        .and_then(|l| l.strip_prefix("ready "))
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    Served { child, url }
}

/// `git <args>` in `cwd`, isolated from the user's configuration and never prompting.
fn git(cwd: &Path, args: &[&str]) -> Output {
    Command::new("git")
        .args(args)
        .current_dir(cwd)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[track_caller]
fn git_ok(cwd: &Path, args: &[&str]) -> String {
    let out = git(cwd, args);
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn serves_the_init_repositories_with_basic_auth_and_exits_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repos");
    let root_arg = root.to_str().unwrap();
    let mut served = git_serve(&[
        "--root",
        root_arg,
        "--username",
        "demo",
        "--password",
        "s3cret",
        "--init",
        "fleet",
        "other",
    ]);
    let port = served
        .url
        .strip_prefix("http://127.0.0.1:")
        .unwrap_or_else(|| panic!("not a loopback http URL: {}", served.url));
    assert!(port.parse::<u16>().is_ok(), "{}", served.url);

    // Both repositories exist, bare, with `main` as HEAD.
    for name in ["fleet", "other"] {
        assert_eq!(
            git_ok(&root.join(format!("{name}.git")), &["symbolic-ref", "HEAD"]),
            "refs/heads/main\n"
        );
    }

    // Without credentials: refused.
    let anonymous = format!("{}/fleet.git", served.url);
    let refused = git(dir.path(), &["ls-remote", &anonymous]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("could not read Username") || stderr.contains("Authentication failed"),
        "{stderr}"
    );

    // With them: clone, commit, push; the commit lands in the bare repository.
    let authed = format!("http://demo:s3cret@127.0.0.1:{port}/fleet.git");
    git_ok(dir.path(), &["clone", "-q", &authed, "work"]);
    let work = dir.path().join("work");
    std::fs::write(work.join("hello.txt"), "hello\n").unwrap();
    git_ok(&work, &["add", "hello.txt"]);
    git_ok(
        &work,
        &[
            "-c",
            "user.name=Demo",
            "-c",
            "user.email=demo@example.com",
            "commit",
            "-q",
            "-m",
            "first",
        ],
    );
    git_ok(&work, &["push", "-q", "origin", "HEAD:main"]);
    let pushed = git_ok(&work, &["rev-parse", "HEAD"]);
    assert_eq!(
        git_ok(&root.join("fleet.git"), &["rev-parse", "main"]),
        pushed
    );
    assert_eq!(
        git_ok(&root.join("fleet.git"), &["show", "main:hello.txt"]),
        "hello\n"
    );

    // SIGTERM: a clean, prompt exit.
    let pid = served.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = served.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "git-serve ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
}

#[test]
fn usage_errors_exit_non_zero_and_print_nothing_on_stdout() {
    let out = Command::new(env!("CARGO_BIN_EXE_kube-sandbox"))
        .args(["git-serve", "--username", "u"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--username and --password go together")
            && stderr.contains("usage: kube-sandbox git-serve --root <dir>"),
        "{stderr}"
    );
}
