//! Diagnostics: what the user sees when something is wrong or hazardous. A separate type from
//! errors: leaf modules return `thiserror` errors, `resources/` turns them into [`Diagnostic`]s
//! that say what happened, where (an [`AttrPath`]), and what to do.

use crate::framework::path::AttrPath;

/// How serious a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// The operation failed.
    Error,
    /// The operation went ahead; the user should know something.
    Warning,
}

/// One diagnostic: a short Title-Case summary, a detail saying what happened and what to do, and
/// optionally the attribute it concerns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Short summary, e.g. `Invalid Kubernetes Context`.
    pub summary: String,
    /// What happened, where, and what the user can do about it.
    pub detail: String,
    /// The attribute concerned, if any.
    pub path: Option<AttrPath>,
}

impl Diagnostic {
    /// The detail as shown to the user: when an error concerns an attribute that the text does
    /// not name, the path comes first (`cluster.size: "huge" is not allowed...`), so that
    /// the message says where even when Terraform can only point at the resource block (it
    /// cannot locate attributes inside object values).
    pub fn detail_naming_path(&self) -> String {
        match &self.path {
            Some(path) if !path.is_root() && self.severity == Severity::Error => {
                let name = path.to_string();
                if self.detail.contains(&name) {
                    self.detail.clone()
                } else {
                    format!("{name}: {}", self.detail)
                }
            }
            _ => self.detail.clone(),
        }
    }
}

/// An ordered collection of diagnostics. Not an error type: it may hold only warnings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// No diagnostics.
    pub fn new() -> Self {
        Self::default()
    }

    /// A collection holding one error.
    pub fn from_error(summary: impl Into<String>, detail: impl Into<String>) -> Self {
        let mut diags = Self::new();
        diags.error(summary, detail);
        diags
    }

    /// A collection holding one error about the attribute at `path`.
    pub fn from_error_at(
        path: AttrPath,
        summary: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        let mut diags = Self::new();
        diags.error_at(path, summary, detail);
        diags
    }

    /// Adds an error not tied to an attribute.
    pub fn error(&mut self, summary: impl Into<String>, detail: impl Into<String>) {
        self.push(Severity::Error, None, summary, detail);
    }

    /// Adds an error about the attribute at `path`.
    pub fn error_at(
        &mut self,
        path: AttrPath,
        summary: impl Into<String>,
        detail: impl Into<String>,
    ) {
        self.push(Severity::Error, Some(path), summary, detail);
    }

    /// Adds a warning not tied to an attribute.
    pub fn warning(&mut self, summary: impl Into<String>, detail: impl Into<String>) {
        self.push(Severity::Warning, None, summary, detail);
    }

    /// Adds a warning about the attribute at `path`.
    pub fn warning_at(
        &mut self,
        path: AttrPath,
        summary: impl Into<String>,
        detail: impl Into<String>,
    ) {
        self.push(Severity::Warning, Some(path), summary, detail);
    }

    fn push(
        &mut self,
        severity: Severity,
        path: Option<AttrPath>,
        summary: impl Into<String>,
        detail: impl Into<String>,
    ) {
        self.0.push(Diagnostic {
            severity,
            summary: summary.into(),
            detail: detail.into(),
            path,
        });
    }

    /// Appends all of `other`.
    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }

    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(|d| d.severity == Severity::Error)
    }

    /// Whether there are no diagnostics at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The diagnostics in order.
    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter()
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(diagnostic: Diagnostic) -> Self {
        Self(vec![diagnostic])
    }
}
