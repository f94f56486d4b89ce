//! [`Checkout`]: a shallow, single-branch clone of a remote repository in a temporary
//! directory, with reads from the fetched commit and commits pushed back with
//! fetch-and-retry. Works on objects only (a bare repository), so no working-tree filters or
//! line-ending conversions ever touch the content.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use git2::build::TreeUpdateBuilder;
use git2::{ErrorCode, FileMode, ObjectType, Oid, Repository, RepositoryInitOptions, Signature};
use tracing::debug;

use super::transport::{CallState, Session, Step};
use super::{Auth, Author, CommitId, Error, FileChange, Options, RepoPath};

const REMOTE: &str = "origin";

/// What the server has for our branch.
enum Tip {
    Branch(Oid),
    EmptyRepository,
    Missing(Vec<String>),
}

/// The result of one push attempt that did not fail hard.
enum PushOutcome {
    Pushed,
    Rejected(String),
}

/// A shallow clone of one branch of a remote repository, in a temporary directory removed on
/// drop. Not `Sync`; move it into `spawn_blocking` to use it from async code.
pub struct Checkout {
    session: Session,
    repo: Repository,
    head: Option<Oid>,
    // Declared last so that it is dropped after `repo`.
    dir: tempfile::TempDir,
}

impl fmt::Debug for Checkout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checkout")
            .field("url", &self.session.url())
            .field("branch", &self.session.branch)
            .field("head", &self.head.map(|h| h.to_string()))
            .finish_non_exhaustive()
    }
}

impl Checkout {
    /// Clones `branch` of `url` with depth 1 into a new temporary directory.
    ///
    /// An empty repository (no branches) gives a checkout without a head; the first
    /// [`Checkout::apply_changes`] creates the branch. A non-empty repository without `branch`
    /// is [`Error::BranchNotFound`].
    pub fn open(url: &str, branch: &str, auth: &Auth, options: &Options) -> Result<Self, Error> {
        let session = Session::new(url, branch, auth, options)?;
        session.check_cancel()?;
        debug!(url = %session.url(), branch, "cloning git repository (depth 1)");
        session.preflight()?;
        let dir = tempfile::Builder::new()
            .prefix("tf-flux-git-")
            .tempdir()
            .map_err(|e| Error::TempDir(e.to_string()))?;
        let repo = Repository::init_opts(
            dir.path(),
            RepositoryInitOptions::new()
                .bare(true)
                .initial_head(branch)
                .no_reinit(true),
        )
        .map_err(|e| Error::TempDir(session.redactor.redact(e.message())))?;
        repo.remote(REMOTE, &session.endpoint.url)
            .map_err(|e| Error::Clone {
                url: session.url(),
                branch: branch.to_owned(),
                message: session.redactor.redact(e.message()),
            })?;
        let mut checkout = Self {
            session,
            repo,
            head: None,
            dir,
        };
        match checkout.fetch_tip(Step::Clone)? {
            Tip::Branch(oid) => checkout.reset_to(oid)?,
            Tip::EmptyRepository => {
                debug!(url = %checkout.session.url(), branch, "remote repository is empty; the branch will be created on push");
            }
            Tip::Missing(existing) => {
                return Err(Error::BranchNotFound {
                    url: checkout.session.url(),
                    branch: branch.to_owned(),
                    existing,
                });
            }
        }
        Ok(checkout)
    }

    /// The commit checked out (the remote branch's tip when fetched, or the last commit pushed);
    /// `None` for a branch that does not exist yet in an empty repository.
    pub fn head(&self) -> Option<CommitId> {
        self.head.map(CommitId::from_oid)
    }

    /// The repository URL (it never carries a password).
    pub fn url(&self) -> String {
        self.session.url()
    }

    /// The branch.
    pub fn branch(&self) -> &str {
        &self.session.branch
    }

    /// The local (bare) repository's directory, for inspection in tests and diagnostics.
    pub fn local_path(&self) -> &Path {
        self.dir.path()
    }

    /// Fetches the remote branch again and moves [`Checkout::head`] to its current tip.
    pub fn refresh(&mut self) -> Result<(), Error> {
        match self.fetch_tip(Step::Fetch)? {
            Tip::Branch(oid) => self.reset_to(oid),
            Tip::EmptyRepository | Tip::Missing(_) => {
                self.head = None;
                Ok(())
            }
        }
    }

    /// Checks that the server lets these credentials push to the repository, without pushing
    /// anything: connects for a push and reads the server's ref advertisement, which servers
    /// refuse (401/403) to credentials without write access. Lets a caller fail before changing
    /// anything else.
    pub fn check_push_access(&self) -> Result<(), Error> {
        self.session.check_cancel()?;
        let state = CallState::default();
        let mut remote = self
            .repo
            .find_remote(REMOTE)
            .map_err(|e| self.session.map_error(&state, &e, Step::Push))?;
        let mut po = self.session.push_options(&state);
        remote
            .push::<&str>(&[], Some(&mut po))
            .map_err(|e| self.session.map_error(&state, &e, Step::Push))?;
        debug!(url = %self.session.url(), "push access confirmed");
        Ok(())
    }

    /// The content of the file at `path` in [`Checkout::head`]; `None` when there is no such
    /// file (or no head).
    pub fn read(&self, path: &RepoPath) -> Result<Option<Vec<u8>>, Error> {
        let read_err = |message: String| Error::Read {
            path: path.to_string(),
            message,
        };
        let Some(tree) = self.head_tree().map_err(read_err)? else {
            return Ok(None);
        };
        let entry = match tree.get_path(Path::new(path.as_str())) {
            Ok(entry) => entry,
            Err(e) if e.code() == ErrorCode::NotFound => return Ok(None),
            Err(e) => return Err(read_err(e.message().to_owned())),
        };
        if entry.kind() != Some(ObjectType::Blob) {
            return Err(read_err("is a directory, not a file".to_owned()));
        }
        let blob = self
            .repo
            .find_blob(entry.id())
            .map_err(|e| read_err(e.message().to_owned()))?;
        Ok(Some(blob.content().to_vec()))
    }

    /// The files at or below `dir` in [`Checkout::head`], sorted; empty when there are none.
    pub fn list(&self, dir: &RepoPath) -> Result<Vec<RepoPath>, Error> {
        let read_err = |message: String| Error::Read {
            path: dir.to_string(),
            message,
        };
        let Some(tree) = self.head_tree().map_err(read_err)? else {
            return Ok(Vec::new());
        };
        let entry = match tree.get_path(Path::new(dir.as_str())) {
            Ok(entry) => entry,
            Err(e) if e.code() == ErrorCode::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(read_err(e.message().to_owned())),
        };
        if entry.kind() == Some(ObjectType::Blob) {
            return Ok(vec![dir.clone()]);
        }
        let sub = self
            .repo
            .find_tree(entry.id())
            .map_err(|e| read_err(e.message().to_owned()))?;
        let mut files = Vec::new();
        let mut bad = None;
        sub.walk(git2::TreeWalkMode::PreOrder, |parent, entry| {
            if entry.kind() == Some(ObjectType::Blob) {
                let name = String::from_utf8_lossy(entry.name_bytes());
                match RepoPath::new(&format!("{}/{parent}{name}", dir.as_str())) {
                    Ok(p) => files.push(p),
                    Err(e) => bad = Some(e),
                }
            }
            git2::TreeWalkResult::Ok
        })
        .map_err(|e| read_err(e.message().to_owned()))?;
        if let Some(e) = bad {
            return Err(e);
        }
        files.sort();
        Ok(files)
    }

    /// Applies `changes` on top of [`Checkout::head`], commits them with `message` as `author`
    /// (author and committer) and pushes the branch. Returns `None`, without committing, when
    /// the changes leave the tree as it is (also when, after a concurrent push, the new tip
    /// already has this content; [`Checkout::head`] is then that tip).
    ///
    /// A push rejected because the branch moved (someone else pushed) is retried: the new tip is
    /// fetched, the same `changes` are applied on top of it and committed again, up to
    /// [`Options::max_push_attempts`] pushes in total. Never force-pushes.
    pub fn apply_changes(
        &mut self,
        changes: &[FileChange],
        message: &str,
        author: &Author,
    ) -> Result<Option<CommitId>, Error> {
        let mut seen = BTreeSet::new();
        for change in changes {
            if !seen.insert(change.path().as_str()) {
                return Err(Error::Path {
                    path: change.path().to_string(),
                    reason: "is changed more than once in the same commit",
                });
            }
        }
        let attempts = self.session.options.max_push_attempts.max(1);
        for attempt in 1..=attempts {
            self.session.check_cancel()?;
            let Some(commit) = self.commit(changes, message, author)? else {
                debug!(url = %self.session.url(), branch = %self.session.branch, "no change to commit");
                return Ok(None);
            };
            match self.push(commit)? {
                PushOutcome::Pushed => {
                    debug!(url = %self.session.url(), branch = %self.session.branch, %commit, attempt, "pushed");
                    self.head = Some(commit);
                    return Ok(Some(CommitId::from_oid(commit)));
                }
                PushOutcome::Rejected(reason) if attempt == attempts => {
                    return Err(Error::Push {
                        url: self.session.url(),
                        branch: self.session.branch.clone(),
                        message: format!(
                            "still rejected after {attempts} attempts (the branch keeps moving): \
                             {reason}"
                        ),
                    });
                }
                PushOutcome::Rejected(reason) => {
                    debug!(url = %self.session.url(), branch = %self.session.branch, attempt, %reason, "push rejected; fetching the new tip and re-applying the changes");
                    self.refresh()?;
                }
            }
        }
        // Unreachable: the loop returns on its last attempt.
        Err(Error::Push {
            url: self.session.url(),
            branch: self.session.branch.clone(),
            message: "no push attempted".to_owned(),
        })
    }

    fn head_tree(&self) -> Result<Option<git2::Tree<'_>>, String> {
        let Some(head) = self.head else {
            return Ok(None);
        };
        self.repo
            .find_commit(head)
            .and_then(|c| c.tree())
            .map(Some)
            .map_err(|e| e.message().to_owned())
    }

    /// Asks the server for our branch (depth 1) and reports what it has.
    fn fetch_tip(&mut self, step: Step) -> Result<Tip, Error> {
        let branch = self.session.branch.clone();
        let state = CallState::default();
        let mut remote = self
            .repo
            .find_remote(REMOTE)
            .map_err(|e| self.session.map_error(&state, &e, step))?;
        let refspec = format!("+refs/heads/{branch}:refs/remotes/{REMOTE}/{branch}");
        {
            let mut fo = self.session.fetch_options(&state);
            remote
                .fetch(&[refspec.as_str()], Some(&mut fo), None)
                .map_err(|e| self.session.map_error(&state, &e, step))?;
        }
        let heads = remote
            .list()
            .map_err(|e| self.session.map_error(&state, &e, step))?;
        let mut branches = Vec::new();
        let mut tip = None;
        for head in heads {
            if let Some(name) = head.name().strip_prefix("refs/heads/") {
                if name == branch {
                    tip = Some(head.oid());
                }
                branches.push(name.to_owned());
            }
        }
        branches.sort();
        debug!(url = %self.session.url(), %branch, tip = ?tip.map(|t| t.to_string()), branches = branches.len(), "fetched");
        Ok(match tip {
            Some(oid) => Tip::Branch(oid),
            None if branches.is_empty() => Tip::EmptyRepository,
            None => Tip::Missing(branches),
        })
    }

    /// Points the local branch and [`Checkout::head`] at `oid`.
    fn reset_to(&mut self, oid: Oid) -> Result<(), Error> {
        self.repo
            .find_commit(oid)
            .and_then(|_| {
                self.repo.reference(
                    &format!("refs/heads/{}", self.session.branch),
                    oid,
                    true,
                    "fetched tip",
                )
            })
            .map_err(|e| Error::Checkout(self.session.redactor.redact(e.message())))?;
        self.head = Some(oid);
        Ok(())
    }

    /// Creates a commit with `changes` on top of the head, or `None` when the tree is unchanged.
    /// The local branch points at the new commit; the head does not move until it is pushed.
    fn commit(
        &self,
        changes: &[FileChange],
        message: &str,
        author: &Author,
    ) -> Result<Option<Oid>, Error> {
        let commit_err = |e: git2::Error| Error::Commit(e.message().to_owned());
        let parent = self
            .head
            .map(|h| self.repo.find_commit(h))
            .transpose()
            .map_err(commit_err)?;
        let base = match &parent {
            Some(p) => p.tree().map_err(commit_err)?,
            None => {
                let empty = self
                    .repo
                    .treebuilder(None)
                    .and_then(|b| b.write())
                    .map_err(commit_err)?;
                self.repo.find_tree(empty).map_err(commit_err)?
            }
        };
        let mut update = TreeUpdateBuilder::new();
        for change in changes {
            let path = change.path();
            let write_err = |message: String| Error::Write {
                path: path.to_string(),
                message,
            };
            let existing = match base.get_path(Path::new(path.as_str())) {
                Ok(entry) => Some((entry.kind(), entry.filemode())),
                Err(e) if e.code() == ErrorCode::NotFound => None,
                Err(e) => return Err(write_err(e.message().to_owned())),
            };
            if matches!(existing, Some((Some(ObjectType::Tree), _))) {
                return Err(write_err("is a directory, not a file".to_owned()));
            }
            match change {
                FileChange::Write { content, .. } => {
                    let blob = self
                        .repo
                        .blob(content)
                        .map_err(|e| write_err(e.message().to_owned()))?;
                    let mode = match existing {
                        Some((_, mode)) if mode == i32::from(FileMode::BlobExecutable) => {
                            FileMode::BlobExecutable
                        }
                        _ => FileMode::Blob,
                    };
                    update.upsert(path.as_str(), blob, mode);
                }
                FileChange::Delete { .. } => {
                    if existing.is_some() {
                        update.remove(path.as_str());
                    }
                }
            }
        }
        let tree_id = update
            .create_updated(&self.repo, &base)
            .map_err(|e| Error::Write {
                path: changes
                    .iter()
                    .map(|c| c.path().as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                message: e.message().to_owned(),
            })?;
        if tree_id == base.id() {
            return Ok(None);
        }
        let tree = self.repo.find_tree(tree_id).map_err(commit_err)?;
        let signature = Signature::now(&author.name, &author.email).map_err(|e| {
            Error::Commit(format!(
                "invalid author {:?} <{}>: {}",
                author.name,
                author.email,
                e.message()
            ))
        })?;
        let mut message = message.trim_end().to_owned();
        message.push('\n');
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        let oid = self
            .repo
            .commit(None, &signature, &signature, &message, &tree, &parents)
            .map_err(commit_err)?;
        self.repo
            .reference(
                &format!("refs/heads/{}", self.session.branch),
                oid,
                true,
                "commit",
            )
            .map_err(commit_err)?;
        debug!(%oid, files = changes.len(), "committed");
        Ok(Some(oid))
    }

    fn push(&self, commit: Oid) -> Result<PushOutcome, Error> {
        let refname = format!("refs/heads/{}", self.session.branch);
        let state = CallState::default();
        let mut remote = self
            .repo
            .find_remote(REMOTE)
            .map_err(|e| self.session.map_error(&state, &e, Step::Push))?;
        debug!(url = %self.session.url(), branch = %self.session.branch, %commit, "pushing");
        let result = {
            let mut po = self.session.push_options(&state);
            remote.push(&[format!("{refname}:{refname}").as_str()], Some(&mut po))
        };
        let rejected = state.rejected.borrow().join("; ");
        match result {
            Ok(()) if rejected.is_empty() => Ok(PushOutcome::Pushed),
            Err(e) if e.code() == ErrorCode::NotFastForward => Ok(PushOutcome::Rejected(
                self.session.redactor.redact(e.message()),
            )),
            Err(e) if rejected.is_empty() => Err(self.session.map_error(&state, &e, Step::Push)),
            _ if is_retryable(&rejected) => Ok(PushOutcome::Rejected(rejected)),
            _ => Err(Error::Push {
                url: self.session.url(),
                branch: self.session.branch.clone(),
                message: format!("the server rejected the update: {rejected}"),
            }),
        }
    }
}

/// Whether a server-side rejection means the branch moved under us (worth a fetch and retry).
fn is_retryable(status: &str) -> bool {
    let status = status.to_ascii_lowercase();
    [
        "fast-forward",
        "fast forward",
        "fetch first",
        "cannot lock ref",
        "failed to lock",
        "stale info",
        "failed to update ref",
    ]
    .iter()
    .any(|s| status.contains(s))
}

#[cfg(test)]
mod tests {
    use super::is_retryable;

    #[test]
    fn checkout_can_move_into_spawn_blocking() {
        fn assert_send<T: Send + 'static>() {}
        assert_send::<super::Checkout>();
    }

    #[test]
    fn retryable_rejections() {
        let cases = [
            ("refs/heads/main: non-fast-forward", true),
            ("refs/heads/main: fetch first", true),
            ("refs/heads/main: failed to update ref", true),
            ("refs/heads/main: cannot lock ref 'refs/heads/main'", true),
            ("refs/heads/main: stale info", true),
            ("refs/heads/main: pre-receive hook declined", false),
            ("refs/heads/main: protected branch hook declined", false),
            ("refs/heads/main: permission denied", false),
        ];
        for (status, want) in cases {
            assert_eq!(is_retryable(status), want, "{status}");
        }
    }
}
