//! Git access through git2: clone, commit, push and authentication, with credentials redacted
//! from every error. Knows nothing of Terraform or Kubernetes; never depends on other modules of
//! this crate.
