//! Attribute paths ([`AttrPath`]): where in a configuration, plan or state a diagnostic or a
//! requires-replace applies. Protocol-agnostic; converted to `AttributePath` by the protocol layer.

use std::fmt;

/// One step of an [`AttrPath`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PathStep {
    /// An attribute (or nested block) name.
    Attr(String),
    /// A map key.
    Key(String),
    /// A list or tuple index.
    Index(i64),
}

/// A path from the root of a schema's object to one attribute or element,
/// e.g. `distribution.version` or `kustomize.patches[0].patch`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttrPath(pub Vec<PathStep>);

impl AttrPath {
    /// The empty path (the whole object).
    pub fn root() -> Self {
        Self(Vec::new())
    }

    /// A path starting at the top-level attribute `name`.
    pub fn attr(name: impl Into<String>) -> Self {
        Self(vec![PathStep::Attr(name.into())])
    }

    /// This path extended by the attribute `name`.
    #[must_use]
    pub fn then_attr(mut self, name: impl Into<String>) -> Self {
        self.0.push(PathStep::Attr(name.into()));
        self
    }

    /// This path extended by the map key `key`.
    #[must_use]
    pub fn then_key(mut self, key: impl Into<String>) -> Self {
        self.0.push(PathStep::Key(key.into()));
        self
    }

    /// This path extended by the list index `index`.
    #[must_use]
    pub fn then_index(mut self, index: i64) -> Self {
        self.0.push(PathStep::Index(index));
        self
    }

    /// The steps of this path.
    pub fn steps(&self) -> &[PathStep] {
        &self.0
    }

    /// The path one step up; `None` for the root.
    pub fn parent(&self) -> Option<Self> {
        let (_, rest) = self.0.split_last()?;
        Some(Self(rest.to_vec()))
    }

    /// Whether this is the root path.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for AttrPath {
    /// Terraform's own rendering: `a.b[0]["key"]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.0.iter().enumerate() {
            match step {
                PathStep::Attr(name) if i == 0 => write!(f, "{name}")?,
                PathStep::Attr(name) => write!(f, ".{name}")?,
                PathStep::Key(key) => write!(f, "[{key:?}]")?,
                PathStep::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}
