//! Git access through git2: clone, read, commit and push, with HTTPS (basic or bearer auth, an
//! optional CA) and SSH (private key, `known_hosts` verification) authentication, and with
//! credentials redacted from every error and log line. Knows nothing of Terraform or
//! Kubernetes; never depends on other modules of this crate.
//!
//! Everything here is synchronous and blocking (libgit2 is); async callers wrap calls in
//! `tokio::task::spawn_blocking` and cancel through [`Options::cancel`].
//!
//! ```no_run
//! use terraform_provider_flux::git::{Auth, Author, Checkout, FileChange, Options, RepoPath};
//! # fn main() -> Result<(), terraform_provider_flux::git::Error> {
//! let mut checkout = Checkout::open("https://git.example.com/fleet.git", "main", &Auth::None,
//!     &Options::default())?;
//! let current = checkout.read(&RepoPath::new("clusters/prod/flux-system/kustomization.yaml")?)?;
//! let changes = [FileChange::write(RepoPath::new("clusters/prod/flux-system/flux.yaml")?, "...")];
//! let commit = checkout.apply_changes(&changes, "Update Flux", &Author::new("Flux", "flux@example.com"))?;
//! # let _ = (current, commit); Ok(()) }
//! ```
//!
//! The API: [`Checkout::open`] clones; [`Checkout::read`] and [`Checkout::list`] read the fetched
//! commit; [`Checkout::check_push_access`] verifies write access without writing;
//! [`Checkout::apply_changes`] commits [`FileChange`]s and pushes; [`Checkout::head`] is the
//! commit SHA. [`Auth`] holds the credentials ([`Secret`]s, redacted in `Debug`); nothing derived
//! from them is computed here (rotation is detected by comparing the live Secret). [`RepoPath`] validates paths;
//! [`KnownHosts`] parses `known_hosts` text (useful for validating configuration early).
//!
//! Choices worth knowing:
//! - Clones are shallow (depth 1) and fetch one branch only, into a temporary directory that is
//!   removed when the [`Checkout`] is dropped. An empty remote repository is fine: the branch is
//!   created by the first push. A missing branch in a non-empty repository is
//!   [`Error::BranchNotFound`], which lists the branches that exist.
//! - Commits happen only when the tree changes. Pushes never force: a rejected (non-fast-forward)
//!   push fetches the new tip, re-applies the same file changes on top of it and pushes again, a
//!   bounded number of times ([`Options::max_push_attempts`]).
//! - A custom CA is checked in libgit2's certificate callback for this operation only (the
//!   process-global `git2::opts::set_ssl_cert_file` is never touched): the server's leaf
//!   certificate, which the TLS handshake already proved the server holds the key of, must chain
//!   to the given CA and name the host (verified with rustls' WebPKI verifier).
//! - SSH host keys are compared with the given `known_hosts` lines in the same callback;
//!   `~/.ssh/known_hosts` is never consulted. libssh2 negotiates the host key type without
//!   looking at those lines, so they must include the type the server prefers (ed25519 for
//!   current OpenSSH); the [`Error::HostKey`] message names the offered type and gives the
//!   exact line to add.
//! - Before libgit2 connects, a plain TCP connection with [`Options::connect_timeout`] checks
//!   that the server is reachable, so an unreachable host fails fast and clearly (libgit2's own
//!   connect timeout is process-global, and setting it needs `unsafe`).
//! - Pushing from the shallow clone works against `git http-backend` and against
//!   `git-receive-pack` over OpenSSH (both covered by `tests/git_http.rs` and
//!   `tests/git_ssh.rs`): the pushed pack only needs objects on top of the fetched tip. A push
//!   retry fetches the new tip with depth 1 as well, so no full clone is ever needed.
//! - libssh2 (through git2) handles ed25519, ECDSA and RSA keys in OpenSSH or PEM format,
//!   encrypted or not. A wrong passphrase is reported by libssh2 as an unusable key, and
//!   surfaces as [`Error::Auth`] saying so.
//!
//! Limits: no HTTP proxy support (libgit2 is not given proxy options, and the reachability check
//! connects directly); a server that accepts the connection and then stalls without sending
//! data is only interrupted by cancelling ([`Options::cancel`] is checked in the progress
//! callbacks, which a silent server never triggers), so callers should also bound the
//! operation by their own timeout.

mod auth;
mod checkout;
mod endpoint;
pub mod github_app;
mod known_hosts;
mod path;
mod redact;
mod transport;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub use auth::{Auth, HttpAuth, HttpCredentials, SshAuth};
pub use checkout::Checkout;
pub use github_app::GitHubApp;
pub use known_hosts::KnownHosts;
pub use path::RepoPath;
pub use redact::Secret;

/// Errors of Git operations, one variant per failing step. Every message is already redacted:
/// no password, token, key or URL userinfo appears in `Display` or `Debug`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The repository URL cannot be used.
    #[error("invalid repository URL {url}: {reason}")]
    Url {
        /// The URL, with any userinfo redacted.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The credentials settings do not fit the URL or each other.
    #[error("invalid Git credentials settings: {0}")]
    Config(String),
    /// A `path` argument is not a clean repository-relative path.
    #[error("invalid path {path:?}: {reason}")]
    Path {
        /// The path as given.
        path: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The `branch` argument is not a valid branch name.
    #[error("invalid branch name {0:?}")]
    BranchName(String),
    /// A `known_hosts` line cannot be parsed.
    #[error("known_hosts line {line}: {reason}")]
    KnownHosts {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The server cannot be reached at all.
    #[error("cannot connect to {authority} for {url}: {message}")]
    Connect {
        /// The repository URL.
        url: String,
        /// `host:port` connected to.
        authority: String,
        /// The system's reason.
        message: String,
    },
    /// The server rejected the credentials, or requires some and none were configured.
    #[error("authentication to {url} failed: {message}")]
    Auth {
        /// The repository URL.
        url: String,
        /// What happened, redacted.
        message: String,
    },
    /// The SSH server's host key is not trusted by the configured `known_hosts`.
    #[error("SSH host key verification for {host} failed: {message}")]
    HostKey {
        /// The host as looked up in `known_hosts` (`[host]:port` for non-default ports).
        host: String,
        /// What happened and how to fix it.
        message: String,
    },
    /// The HTTPS server's certificate is not trusted.
    #[error("TLS certificate verification for {host} failed: {message}")]
    Certificate {
        /// The host name.
        host: String,
        /// What happened and how to fix it.
        message: String,
    },
    /// The branch does not exist in a repository that has other branches.
    #[error(
        "branch {branch:?} does not exist in {url}; existing branches: {}",
        if existing.is_empty() { "(none)".to_owned() } else { existing.join(", ") }
    )]
    BranchNotFound {
        /// The repository URL.
        url: String,
        /// The branch asked for.
        branch: String,
        /// The branches the server advertises.
        existing: Vec<String>,
    },
    /// Cloning (the first fetch into a new temporary repository) failed.
    #[error("cloning branch {branch:?} of {url} failed: {message}")]
    Clone {
        /// The repository URL.
        url: String,
        /// The branch.
        branch: String,
        /// libgit2's reason, redacted.
        message: String,
    },
    /// Fetching the new tip of the branch (before a push retry) failed.
    #[error("fetching branch {branch:?} of {url} failed: {message}")]
    Fetch {
        /// The repository URL.
        url: String,
        /// The branch.
        branch: String,
        /// libgit2's reason, redacted.
        message: String,
    },
    /// Updating the local working tree failed.
    #[error("checking out the fetched commit failed: {0}")]
    Checkout(String),
    /// Reading a file from the checked-out commit failed.
    #[error("reading {path} failed: {message}")]
    Read {
        /// The path.
        path: String,
        /// The reason.
        message: String,
    },
    /// Writing or deleting a file in the working tree failed.
    #[error("writing {path} failed: {message}")]
    Write {
        /// The path.
        path: String,
        /// The reason.
        message: String,
    },
    /// Creating the commit failed.
    #[error("creating the commit failed: {0}")]
    Commit(String),
    /// The push failed for a reason other than a concurrent update, or kept being rejected.
    #[error("pushing to branch {branch:?} of {url} failed: {message}")]
    Push {
        /// The repository URL.
        url: String,
        /// The branch.
        branch: String,
        /// The reason, redacted.
        message: String,
    },
    /// The operation was cancelled through [`Options::cancel`].
    #[error("the Git operation was cancelled")]
    Cancelled,
    /// The operation's [`Options::deadline`] passed before the server answered.
    #[error(
        "the Git server did not complete the operation within its time limit ({seconds} s); \
         the server may be stalled"
    )]
    TimedOut {
        /// The time limit, in whole seconds.
        seconds: u64,
    },
    /// Creating the temporary directory failed.
    #[error("creating a temporary directory for the clone failed: {0}")]
    TempDir(String),
}

/// Knobs of an operation.
#[derive(Clone, Debug)]
pub struct Options {
    /// Set to `true` to abort the transfer in progress (checked in libgit2's callbacks).
    pub cancel: Option<Arc<AtomicBool>>,
    /// How many times a push is attempted in total before a rejection is final (at least 1).
    pub max_push_attempts: u32,
    /// Timeout of the reachability check made before libgit2 connects; `None` skips the check.
    pub connect_timeout: Option<Duration>,
    /// When the whole operation must be over: libgit2's callbacks stop the transfer once it
    /// passed, and [`Options::interrupted`] says so to callers waiting for a blocked call.
    pub deadline: Option<(Instant, Duration)>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            cancel: None,
            max_push_attempts: 5,
            connect_timeout: Some(Duration::from_secs(15)),
            deadline: None,
        }
    }
}

impl Options {
    /// Sets a time limit of `limit` from now for the operation.
    #[must_use]
    pub fn with_time_limit(mut self, limit: Duration) -> Self {
        self.deadline = Some((Instant::now() + limit, limit));
        self
    }

    /// Why the operation must stop now, if it must: cancelled through [`Options::cancel`], or
    /// past its [`Options::deadline`]. A caller waiting for a blocking call (libgit2 calls no
    /// callback while a server stalls) gives up with this error and calls
    /// [`Options::stop`], so that the transfer also ends at libgit2's next callback.
    pub fn interrupted(&self) -> Option<Error> {
        if self
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
        {
            return Some(Error::Cancelled);
        }
        match self.deadline {
            Some((at, limit)) if Instant::now() >= at => Some(Error::TimedOut {
                seconds: limit.as_secs(),
            }),
            _ => None,
        }
    }

    /// Tells the transfer in progress to stop at libgit2's next callback.
    pub fn stop(&self) {
        if let Some(c) = &self.cancel {
            c.store(true, Ordering::Relaxed);
        }
    }
}

/// Author and committer identity of the commits made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Author {
    /// Name.
    pub name: String,
    /// E-mail address.
    pub email: String,
}

impl Author {
    /// An identity.
    pub fn new(name: impl Into<String>, email: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            email: email.into(),
        }
    }
}

/// A change to one file, applied by [`Checkout::apply_changes`].
#[derive(Clone, PartialEq, Eq)]
pub enum FileChange {
    /// Create or overwrite the file with this content.
    Write {
        /// The file.
        path: RepoPath,
        /// The new content.
        content: Vec<u8>,
    },
    /// Delete the file; deleting a missing file is no change.
    Delete {
        /// The file.
        path: RepoPath,
    },
}

impl FileChange {
    /// A write of `content` to `path`.
    pub fn write(path: RepoPath, content: impl Into<Vec<u8>>) -> Self {
        Self::Write {
            path,
            content: content.into(),
        }
    }

    /// A deletion of `path`.
    pub fn delete(path: RepoPath) -> Self {
        Self::Delete { path }
    }

    /// The path changed.
    pub fn path(&self) -> &RepoPath {
        match self {
            Self::Write { path, .. } | Self::Delete { path } => path,
        }
    }
}

impl fmt::Debug for FileChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Write { path, content } => {
                write!(f, "Write({path}, {} bytes)", content.len())
            }
            Self::Delete { path } => write!(f, "Delete({path})"),
        }
    }
}

/// A commit's full hexadecimal SHA.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CommitId(String);

impl CommitId {
    pub(crate) fn from_oid(oid: git2::Oid) -> Self {
        Self(oid.to_string())
    }

    /// The 40-character hexadecimal SHA.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CommitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
