//! The Git steps of `flux_bootstrap_git`: clone and check push access, commit on an open
//! checkout, read committed files, and look up the branch tip — each run on the blocking pool
//! and stopped when Terraform cancels or the time limit passes.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::flux::bootstrap::CLASSIC_FILES;
use crate::framework::diagnostics::Diagnostics;
use crate::git::{Auth, Author, Checkout, Error as GitError, FileChange, Options, RepoPath};
use crate::resources::flux_bootstrap_git_auth::git_error;

/// What a commit step did: the commit made (if any) and the repository's head afterwards.
pub(super) struct Pushed {
    pub(super) commit: Option<String>,
    pub(super) head: Option<String>,
}

/// Runs a blocking Git operation on the blocking pool and waits for it, but no longer than its
/// options allow: when Terraform cancels (StopProvider) or the operation's time limit passes,
/// the caller gets the error at once and libgit2 is told to stop at its next callback. (A
/// stalled server makes libgit2 call nothing, so only the caller can stop waiting.)
pub(super) async fn run_git<T: Send + 'static>(
    options: &Options,
    work: impl FnOnce() -> Result<T, GitError> + Send + 'static,
) -> Result<T, Diagnostics> {
    let mut task = tokio::task::spawn_blocking(work);
    loop {
        tokio::select! {
            joined = &mut task => {
                return joined
                    .map_err(|e| Diagnostics::from_error("Git Task Failed", e.to_string()))?
                    .map_err(|e| git_error(&e));
            }
            () = tokio::time::sleep(Duration::from_millis(50)) => {
                if let Some(interrupted) = options.interrupted() {
                    options.stop();
                    return Err(git_error(&interrupted));
                }
            }
        }
    }
}

/// Clones and checks push access; also returns which `flux bootstrap` files (`gotk-*.yaml`)
/// exist in `flux_dir` (a classic install to migrate).
pub(super) async fn open_checked(
    url: String,
    branch: String,
    auth: Auth,
    options: Options,
    flux_dir: String,
) -> Result<(Checkout, Vec<String>), Diagnostics> {
    let waiting = options.clone();
    run_git(&waiting, move || {
        let checkout = Checkout::open(&url, &branch, &auth, &options)?;
        checkout.check_push_access()?;
        let mut classic = Vec::new();
        for file in CLASSIC_FILES {
            let path = if flux_dir.is_empty() {
                file.to_owned()
            } else {
                format!("{flux_dir}/{file}")
            };
            if checkout.read(&RepoPath::new(&path)?)?.is_some() {
                classic.push(path);
            }
        }
        Ok((checkout, classic))
    })
    .await
}

/// Applies `changes` in one commit on an open checkout (none when nothing changes); `options`
/// are the ones the checkout was opened with.
pub(super) async fn commit_on(
    mut checkout: Checkout,
    options: &Options,
    changes: Vec<FileChange>,
    message: String,
    author: Author,
) -> Result<Pushed, Diagnostics> {
    run_git(options, move || {
        let commit = checkout.apply_changes(&changes, &message, &author)?;
        Ok(Pushed {
            commit: commit.map(|c| c.to_string()),
            head: checkout.head().map(|c| c.to_string()),
        })
    })
    .await
}

/// Clones, checks push access and commits `changes` (none when nothing changes).
pub(super) async fn commit_changes(
    url: String,
    branch: String,
    auth: Auth,
    options: Options,
    changes: Vec<FileChange>,
    message: String,
    author: Author,
) -> Result<Pushed, Diagnostics> {
    let (checkout, _) = open_checked(url, branch, auth, options.clone(), String::new()).await?;
    commit_on(checkout, &options, changes, message, author).await
}

/// Where the repository is, for looking up the branch tip while waiting.
pub(super) struct Remote {
    pub(super) url: String,
    pub(super) branch: String,
    pub(super) auth: Auth,
    pub(super) options: Options,
}

impl Remote {
    /// The commit at the tip of the branch now (`None` when it cannot be read).
    pub(super) async fn tip(&self) -> Option<String> {
        let options = self
            .options
            .clone()
            .with_time_limit(Duration::from_secs(30));
        let (url, branch, auth) = (self.url.clone(), self.branch.clone(), self.auth.clone());
        let waiting = options.clone();
        run_git(&waiting, move || {
            Ok(Checkout::open(&url, &branch, &auth, &options)?
                .head()
                .map(|c| c.to_string()))
        })
        .await
        .ok()
        .flatten()
    }
}

/// Reads files (relative paths) at the branch tip; `None` for missing ones; and the tip.
pub(super) async fn read_files(
    url: String,
    branch: String,
    auth: Auth,
    options: Options,
    paths: Vec<String>,
) -> Result<(BTreeMap<String, Option<Vec<u8>>>, Option<String>), Diagnostics> {
    let waiting = options.clone();
    run_git(&waiting, move || {
        let checkout = Checkout::open(&url, &branch, &auth, &options)?;
        let mut out = BTreeMap::new();
        for p in paths {
            let content = checkout.read(&RepoPath::new(&p)?)?;
            out.insert(p, content);
        }
        Ok((out, checkout.head().map(|c| c.to_string())))
    })
    .await
}
