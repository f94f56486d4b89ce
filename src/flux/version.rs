//! Flux versions and the semver constraints `spec.distribution.version` accepts, with the
//! semantics the operator uses (Masterminds semver): `2.x`, `2.7.x`, `2.7` (= `2.7.x`), `v2.7.5`,
//! `>=2.6.0`, `>=2.7 <2.9`, `~2.7.1`, `^2.7`, `2.6 - 2.8`, alternatives with `||`.
//!
//! Also the hazards a plan checks before the operator would stall: the operator rejects a move
//! to a lower Flux *minor* than the one last applied ("downgrading … not supported"), while a
//! lower *patch* is allowed. Pure: no I/O, nothing else from this crate.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// Why a version or constraint was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    /// A version string is not `[v]MAJOR.MINOR.PATCH[-PRE][+BUILD]`.
    #[error("invalid Flux version {0:?}: expected e.g. \"v2.7.5\"")]
    ParseVersion(String),
    /// A constraint string does not parse.
    #[error("invalid version constraint {constraint:?}: {reason}")]
    ParseConstraint {
        /// The constraint as given.
        constraint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No available version satisfies the constraint.
    #[error("no Flux version matches {constraint:?} (available: {available})")]
    Resolve {
        /// The constraint as given.
        constraint: String,
        /// The versions that were considered, comma-separated.
        available: String,
    },
    /// The constraint only admits versions of a lower minor than the one installed.
    #[error(
        "Flux {current} is installed and {constraint:?} only allows a lower minor version; the Flux \
         Operator does not support downgrading to a lower minor version (a reinstall is needed)"
    )]
    MinorDowngrade {
        /// The version installed now (from `status.lastAppliedRevision`).
        current: FluxVersion,
        /// The desired constraint.
        constraint: String,
    },
}

/// A concrete semantic version (`v2.7.5`). Build metadata is dropped; it does not affect order.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FluxVersion {
    /// Major version.
    pub major: u64,
    /// Minor version.
    pub minor: u64,
    /// Patch version.
    pub patch: u64,
    /// Pre-release identifiers (`rc.1`), empty for a release.
    pub pre: String,
}

impl FluxVersion {
    /// A release version.
    pub fn new(major: u64, minor: u64, patch: u64) -> Self {
        Self {
            major,
            minor,
            patch,
            pre: String::new(),
        }
    }

    /// Parses `[v]MAJOR.MINOR.PATCH[-PRE][+BUILD]`.
    ///
    /// # Errors
    ///
    /// [`VersionError::ParseVersion`].
    pub fn parse(text: &str) -> Result<Self, VersionError> {
        let err = || VersionError::ParseVersion(text.to_owned());
        let rest = text.trim().strip_prefix('v').unwrap_or(text.trim());
        let rest = rest.split_once('+').map_or(rest, |(v, _)| v);
        let (core, pre) = rest.split_once('-').unwrap_or((rest, ""));
        let parts: Vec<&str> = core.split('.').collect();
        let [major, minor, patch] = parts.as_slice() else {
            return Err(err());
        };
        let num = |s: &str| -> Result<u64, VersionError> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err());
            }
            s.parse().map_err(|_| err())
        };
        if pre.split('.').any(str::is_empty) && !pre.is_empty() {
            return Err(err());
        }
        Ok(Self {
            major: num(major)?,
            minor: num(minor)?,
            patch: num(patch)?,
            pre: pre.to_owned(),
        })
    }

    /// Reads the version of an operator revision (`v2.7.5@sha256:<digest>`), as in
    /// `status.lastAppliedRevision`.
    ///
    /// # Errors
    ///
    /// [`VersionError::ParseVersion`] if the part before `@` is not a version.
    pub fn from_revision(revision: &str) -> Result<Self, VersionError> {
        Self::parse(revision.split_once('@').map_or(revision, |(v, _)| v))
    }

    /// Whether this is a pre-release.
    pub fn is_prerelease(&self) -> bool {
        !self.pre.is_empty()
    }

    fn next_patch(&self) -> Self {
        Self::new(self.major, self.minor, self.patch + 1)
    }
}

impl fmt::Display for FluxVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)?;
        if !self.pre.is_empty() {
            write!(f, "-{}", self.pre)?;
        }
        Ok(())
    }
}

impl FromStr for FluxVersion {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Ord for FluxVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| compare_pre(&self.pre, &other.pre))
    }
}

impl PartialOrd for FluxVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Semver pre-release precedence: a release sorts after its pre-releases; identifiers compare
/// numerically when both are numeric, numeric before alphanumeric, otherwise lexically.
fn compare_pre(a: &str, b: &str) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        (false, false) => {}
    }
    let mut left = a.split('.');
    let mut right = b.split('.');
    loop {
        match (left.next(), right.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let ord = match (x.parse::<u64>(), y.parse::<u64>()) {
                    (Ok(m), Ok(n)) => m.cmp(&n),
                    (Ok(_), Err(_)) => Ordering::Less,
                    (Err(_), Ok(_)) => Ordering::Greater,
                    (Err(_), Err(_)) => x.cmp(y),
                };
                if ord != Ordering::Equal {
                    return ord;
                }
            }
        }
    }
}

/// How a version change moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersionChange {
    /// Same version.
    Unchanged,
    /// Higher patch, same minor.
    PatchUpgrade,
    /// Higher minor or major.
    MinorUpgrade,
    /// Lower patch, same minor: allowed by the operator.
    PatchDowngrade,
    /// Lower minor or major: the operator stalls with BuildFailed.
    MinorDowngrade,
}

/// Classifies the move from `from` to `to` (pre-release differences within one patch count as
/// patch moves).
pub fn classify(from: &FluxVersion, to: &FluxVersion) -> VersionChange {
    match (to.major, to.minor).cmp(&(from.major, from.minor)) {
        Ordering::Less => VersionChange::MinorDowngrade,
        Ordering::Greater => VersionChange::MinorUpgrade,
        Ordering::Equal => match to.cmp(from) {
            Ordering::Less => VersionChange::PatchDowngrade,
            Ordering::Equal => VersionChange::Unchanged,
            Ordering::Greater => VersionChange::PatchUpgrade,
        },
    }
}

/// One primitive comparison against a full version.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Comparator {
    Ge(FluxVersion),
    Gt(FluxVersion),
    Le(FluxVersion),
    Lt(FluxVersion),
    /// Not in `[lo, hi)`.
    NotIn(FluxVersion, FluxVersion),
}

impl Comparator {
    fn matches(&self, v: &FluxVersion) -> bool {
        match self {
            Self::Ge(c) => v >= c,
            Self::Gt(c) => v > c,
            Self::Le(c) => v <= c,
            Self::Lt(c) => v < c,
            Self::NotIn(lo, hi) => v < lo || v >= hi,
        }
    }

    fn versions(&self) -> Vec<&FluxVersion> {
        match self {
            Self::Ge(c) | Self::Gt(c) | Self::Le(c) | Self::Lt(c) => vec![c],
            Self::NotIn(lo, hi) => vec![lo, hi],
        }
    }
}

/// A parsed `spec.distribution.version` constraint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionConstraint {
    text: String,
    /// Alternatives (`||`), each a conjunction of comparators, plus whether it names a
    /// pre-release (only then are pre-release versions admitted).
    alternatives: Vec<(Vec<Comparator>, bool)>,
}

/// A partially written version: `2`, `2.7`, `2.7.x`, `*`, `2.7.5-rc.1`.
#[derive(Clone, Debug)]
struct Partial {
    major: Option<u64>,
    minor: Option<u64>,
    patch: Option<u64>,
    pre: String,
}

impl Partial {
    fn parse(text: &str) -> Result<Self, String> {
        let rest = text.strip_prefix('v').unwrap_or(text);
        let rest = rest.split_once('+').map_or(rest, |(v, _)| v);
        let (core, pre) = rest.split_once('-').unwrap_or((rest, ""));
        let parts: Vec<&str> = core.split('.').collect();
        if parts.is_empty() || parts.len() > 3 {
            return Err(format!("{text:?} is not a version"));
        }
        let mut nums = [None, None, None];
        let mut wild = false;
        for (i, part) in parts.iter().enumerate() {
            if matches!(*part, "x" | "X" | "*") {
                wild = true;
                continue;
            }
            if wild {
                return Err(format!("{text:?}: a number cannot follow a wildcard"));
            }
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("{text:?} is not a version"));
            }
            nums[i] = Some(
                part.parse::<u64>()
                    .map_err(|_| format!("{text:?} is out of range"))?,
            );
        }
        if !pre.is_empty() && nums[2].is_none() {
            return Err(format!("{text:?}: a pre-release needs a full version"));
        }
        Ok(Self {
            major: nums[0],
            minor: nums[1],
            patch: nums[2],
            pre: pre.to_owned(),
        })
    }

    /// The lowest version this partial covers.
    fn floor(&self) -> FluxVersion {
        FluxVersion {
            major: self.major.unwrap_or(0),
            minor: self.minor.unwrap_or(0),
            patch: self.patch.unwrap_or(0),
            pre: self.pre.clone(),
        }
    }

    /// The first version above what this partial covers; `None` for `*`.
    fn ceiling(&self) -> Option<FluxVersion> {
        match (self.major, self.minor, self.patch) {
            (None, _, _) => None,
            (Some(m), None, _) => Some(FluxVersion::new(m + 1, 0, 0)),
            (Some(m), Some(n), None) => Some(FluxVersion::new(m, n + 1, 0)),
            (Some(m), Some(n), Some(p)) => Some(FluxVersion::new(m, n, p + 1)),
        }
    }

    fn is_exact(&self) -> bool {
        self.patch.is_some()
    }
}

/// Turns one `op version` term into primitive comparators (Masterminds semantics).
fn comparators(op: &str, partial: &Partial) -> Vec<Comparator> {
    let floor = partial.floor();
    let ceiling = partial.ceiling();
    match op {
        "" | "=" => {
            if partial.is_exact() {
                vec![Comparator::Ge(floor.clone()), Comparator::Le(floor)]
            } else {
                let mut out = vec![Comparator::Ge(floor)];
                out.extend(ceiling.map(Comparator::Lt));
                out
            }
        }
        "!=" => match ceiling {
            Some(hi) => vec![Comparator::NotIn(floor, hi)],
            // `!= *` matches nothing.
            None => vec![Comparator::Lt(FluxVersion::new(0, 0, 0))],
        },
        ">" => {
            if partial.is_exact() {
                vec![Comparator::Gt(floor)]
            } else {
                match ceiling {
                    Some(hi) => vec![Comparator::Ge(hi)],
                    None => vec![Comparator::Lt(FluxVersion::new(0, 0, 0))],
                }
            }
        }
        ">=" | "=>" => vec![Comparator::Ge(floor)],
        "<" => vec![Comparator::Lt(floor)],
        "<=" | "=<" => {
            if partial.is_exact() {
                vec![Comparator::Le(floor)]
            } else {
                ceiling.map(Comparator::Lt).into_iter().collect()
            }
        }
        "~" | "~>" => {
            let hi = match (partial.major, partial.minor) {
                (None, _) => None,
                (Some(m), None) => Some(FluxVersion::new(m + 1, 0, 0)),
                (Some(m), Some(n)) => Some(FluxVersion::new(m, n + 1, 0)),
            };
            let mut out = vec![Comparator::Ge(floor)];
            out.extend(hi.map(Comparator::Lt));
            out
        }
        "^" => {
            let hi = match (partial.major, partial.minor, partial.patch) {
                (None, _, _) => None,
                (Some(0), Some(0), Some(p)) => Some(FluxVersion::new(0, 0, p + 1)),
                (Some(0), Some(n), _) => Some(FluxVersion::new(0, n + 1, 0)),
                (Some(0), None, _) => Some(FluxVersion::new(1, 0, 0)),
                (Some(m), _, _) => Some(FluxVersion::new(m + 1, 0, 0)),
            };
            let mut out = vec![Comparator::Ge(floor)];
            out.extend(hi.map(Comparator::Lt));
            out
        }
        _ => Vec::new(),
    }
}

const OPERATORS: [&str; 11] = ["!=", ">=", "=>", "<=", "=<", "~>", "=", ">", "<", "~", "^"];

impl VersionConstraint {
    /// Parses a constraint.
    ///
    /// # Errors
    ///
    /// [`VersionError::ParseConstraint`] naming what is wrong.
    pub fn parse(text: &str) -> Result<Self, VersionError> {
        let fail = |reason: String| VersionError::ParseConstraint {
            constraint: text.to_owned(),
            reason,
        };
        if text.trim().is_empty() {
            return Err(fail("the constraint is empty".into()));
        }
        let mut alternatives = Vec::new();
        for alternative in text.split("||") {
            let tokens: Vec<&str> = alternative
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|t| !t.is_empty())
                .collect();
            if tokens.is_empty() {
                return Err(fail("an alternative of `||` is empty".into()));
            }
            let mut comps = Vec::new();
            let mut names_pre = false;
            let mut i = 0;
            while i < tokens.len() {
                // Hyphen range: `a - b`.
                if tokens.get(i + 1) == Some(&"-") {
                    let lo = Partial::parse(tokens[i]).map_err(fail)?;
                    let hi = tokens
                        .get(i + 2)
                        .ok_or_else(|| fail("a hyphen range needs an upper version".into()))?;
                    let hi = Partial::parse(hi).map_err(fail)?;
                    names_pre |= !lo.pre.is_empty() || !hi.pre.is_empty();
                    comps.extend(comparators(">=", &lo));
                    comps.extend(comparators("<=", &hi));
                    i += 3;
                    continue;
                }
                let mut token = tokens[i];
                let op = OPERATORS
                    .iter()
                    .find(|op| token.starts_with(**op))
                    .copied()
                    .unwrap_or("");
                token = &token[op.len()..];
                if token.is_empty() {
                    // `>= 2.7`: operator and version separated by a space.
                    i += 1;
                    token = tokens
                        .get(i)
                        .copied()
                        .ok_or_else(|| fail(format!("operator {op:?} has no version")))?;
                }
                let partial = Partial::parse(token).map_err(fail)?;
                names_pre |= !partial.pre.is_empty();
                comps.extend(comparators(op, &partial));
                i += 1;
            }
            alternatives.push((comps, names_pre));
        }
        Ok(Self {
            text: text.to_owned(),
            alternatives,
        })
    }

    /// The constraint as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `version` satisfies the constraint. Pre-releases only match an alternative that
    /// itself names a pre-release.
    pub fn matches(&self, version: &FluxVersion) -> bool {
        self.alternatives.iter().any(|(comps, names_pre)| {
            (!version.is_prerelease() || *names_pre) && comps.iter().all(|c| c.matches(version))
        })
    }

    /// The highest of `available` that satisfies the constraint, as the operator resolves it.
    ///
    /// # Errors
    ///
    /// [`VersionError::Resolve`] when none does.
    pub fn resolve(&self, available: &[FluxVersion]) -> Result<FluxVersion, VersionError> {
        available
            .iter()
            .filter(|v| self.matches(v))
            .max()
            .cloned()
            .ok_or_else(|| VersionError::Resolve {
                constraint: self.text.clone(),
                available: available
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// Whether some release version at or above `floor` satisfies the constraint.
    ///
    /// Exact over release versions: the lowest match above `floor` of a union of intervals is
    /// `floor`, an interval's bound, or the patch after an exclusive bound, so those candidates
    /// are enough.
    pub fn admits_at_or_above(&self, floor: &FluxVersion) -> bool {
        let mut candidates = vec![floor.clone()];
        for (comps, _) in &self.alternatives {
            for comp in comps {
                for v in comp.versions() {
                    candidates.push(FluxVersion::new(v.major, v.minor, v.patch));
                    candidates.push(v.next_patch());
                }
            }
        }
        candidates
            .iter()
            .filter(|c| *c >= floor)
            .any(|c| self.matches(c))
    }

    /// Whether some release version in `[low, high)` satisfies the constraint (exact, for the
    /// same reason as [`Self::admits_at_or_above`]).
    pub fn admits_between(&self, low: &FluxVersion, high: &FluxVersion) -> bool {
        let mut candidates = vec![low.clone()];
        for (comps, _) in &self.alternatives {
            for comp in comps {
                for v in comp.versions() {
                    candidates.push(FluxVersion::new(v.major, v.minor, v.patch));
                    candidates.push(v.next_patch());
                }
            }
        }
        candidates
            .iter()
            .filter(|c| *c >= low && *c < high)
            .any(|c| self.matches(c))
    }

    /// Refuses a constraint that can only resolve to a lower minor than `current` (the version
    /// last applied). A lower patch within the same minor is allowed, as the operator allows it.
    ///
    /// # Errors
    ///
    /// [`VersionError::MinorDowngrade`].
    pub fn check_no_minor_downgrade(&self, current: &FluxVersion) -> Result<(), VersionError> {
        let floor = FluxVersion::new(current.major, current.minor, 0);
        if self.admits_at_or_above(&floor) {
            Ok(())
        } else {
            Err(VersionError::MinorDowngrade {
                current: current.clone(),
                constraint: self.text.clone(),
            })
        }
    }
}

impl FromStr for VersionConstraint {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for VersionConstraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> FluxVersion {
        FluxVersion::parse(s).unwrap()
    }

    fn versions(list: &[&str]) -> Vec<FluxVersion> {
        list.iter().map(|s| v(s)).collect()
    }

    #[test]
    fn versions_parse_and_print() {
        let cases: &[(&str, Result<&str, ()>)] = &[
            ("v2.7.5", Ok("v2.7.5")),
            ("2.7.5", Ok("v2.7.5")),
            ("2.8.0-rc.1", Ok("v2.8.0-rc.1")),
            ("v2.7.5+build.3", Ok("v2.7.5")),
            ("2.7", Err(())),
            ("2.7.x", Err(())),
            ("v2.7.05a", Err(())),
            ("", Err(())),
        ];
        for (input, want) in cases {
            let got = FluxVersion::parse(input)
                .map(|v| v.to_string())
                .map_err(|_| ());
            assert_eq!(got, want.map(str::to_owned), "input {input:?}");
        }
        assert_eq!(
            FluxVersion::from_revision("v2.8.8@sha256:0a1b").unwrap(),
            FluxVersion::new(2, 8, 8)
        );
    }

    #[test]
    fn ordering_follows_semver_precedence() {
        let mut list = versions(&[
            "2.8.0",
            "2.7.5",
            "2.8.0-rc.2",
            "2.8.0-rc.10",
            "2.8.0-beta",
            "2.10.0",
            "2.7.10",
        ]);
        list.sort();
        let printed: Vec<String> = list.iter().map(ToString::to_string).collect();
        assert_eq!(
            printed,
            [
                "v2.7.5",
                "v2.7.10",
                "v2.8.0-beta",
                "v2.8.0-rc.2",
                "v2.8.0-rc.10",
                "v2.8.0",
                "v2.10.0"
            ]
        );
    }

    #[test]
    fn constraints_match_like_the_operator() {
        let candidates = versions(&[
            "2.5.1",
            "2.6.0",
            "2.6.4",
            "2.7.0",
            "2.7.5",
            "2.8.0",
            "2.8.8",
            "3.0.0",
            "2.9.0-rc.1",
        ]);
        let cases: &[(&str, &str, &[&str])] = &[
            (
                "major-wildcard",
                "2.x",
                &[
                    "2.5.1", "2.6.0", "2.6.4", "2.7.0", "2.7.5", "2.8.0", "2.8.8",
                ],
            ),
            ("minor-wildcard", "2.7.x", &["2.7.0", "2.7.5"]),
            ("partial-is-wildcard", "2.7", &["2.7.0", "2.7.5"]),
            (
                "star",
                "*",
                &[
                    "2.5.1", "2.6.0", "2.6.4", "2.7.0", "2.7.5", "2.8.0", "2.8.8", "3.0.0",
                ],
            ),
            ("exact-with-v", "v2.7.5", &["2.7.5"]),
            ("exact", "=2.6.4", &["2.6.4"]),
            (
                "at-least",
                ">=2.6.0",
                &[
                    "2.6.0", "2.6.4", "2.7.0", "2.7.5", "2.8.0", "2.8.8", "3.0.0",
                ],
            ),
            (
                "range-space",
                ">=2.7 <2.9",
                &["2.7.0", "2.7.5", "2.8.0", "2.8.8"],
            ),
            ("range-comma", ">= 2.7, < 2.8", &["2.7.0", "2.7.5"]),
            ("greater-partial", ">2.7", &["2.8.0", "2.8.8", "3.0.0"]),
            ("at-most-partial", "<=2.6", &["2.5.1", "2.6.0", "2.6.4"]),
            ("tilde", "~2.6.1", &["2.6.4"]),
            ("caret", "^2.7", &["2.7.0", "2.7.5", "2.8.0", "2.8.8"]),
            ("hyphen", "2.6 - 2.7", &["2.6.0", "2.6.4", "2.7.0", "2.7.5"]),
            ("or", "2.5.x || >=2.8.8", &["2.5.1", "2.8.8", "3.0.0"]),
            ("not-equal", "2.7.x, !=2.7.0", &["2.7.5"]),
            ("prerelease-named", ">=2.9.0-rc.1", &["3.0.0", "2.9.0-rc.1"]),
        ];
        for (name, constraint, want) in cases {
            let parsed = VersionConstraint::parse(constraint).unwrap();
            let got: Vec<String> = candidates
                .iter()
                .filter(|c| parsed.matches(c))
                .map(|c| {
                    format!(
                        "{}.{}.{}{}",
                        c.major,
                        c.minor,
                        c.patch,
                        if c.pre.is_empty() {
                            String::new()
                        } else {
                            format!("-{}", c.pre)
                        }
                    )
                })
                .collect();
            assert_eq!(got, *want, "case {name} ({constraint})");
        }
    }

    #[test]
    fn invalid_constraints_are_rejected() {
        let cases: &[(&str, &str)] = &[
            (
                "",
                "invalid version constraint \"\": the constraint is empty",
            ),
            (
                "2.x.5",
                "invalid version constraint \"2.x.5\": \"2.x.5\": a number cannot follow a wildcard",
            ),
            (
                "latest",
                "invalid version constraint \"latest\": \"latest\" is not a version",
            ),
            (
                ">=",
                "invalid version constraint \">=\": operator \">=\" has no version",
            ),
            (
                "2.7 ||",
                "invalid version constraint \"2.7 ||\": an alternative of `||` is empty",
            ),
            (
                "2.6 -",
                "invalid version constraint \"2.6 -\": a hyphen range needs an upper version",
            ),
        ];
        for (input, want) in cases {
            let err = VersionConstraint::parse(input).unwrap_err();
            assert_eq!(err.to_string(), *want, "input {input:?}");
        }
    }

    #[test]
    fn resolution_picks_the_highest_match() {
        let available = versions(&["2.6.4", "2.7.0", "2.7.5", "2.8.3", "2.8.5"]);
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("2.x", Ok("v2.8.5")),
            ("2.7.x", Ok("v2.7.5")),
            (
                "2.8.4",
                Err(
                    "no Flux version matches \"2.8.4\" (available: v2.6.4, v2.7.0, v2.7.5, v2.8.3, v2.8.5)",
                ),
            ),
            ("<2.7", Ok("v2.6.4")),
        ];
        for (constraint, want) in cases {
            let got = VersionConstraint::parse(constraint)
                .unwrap()
                .resolve(&available)
                .map(|v| v.to_string())
                .map_err(|e| e.to_string());
            assert_eq!(
                got,
                want.map(str::to_owned).map_err(str::to_owned),
                "constraint {constraint}"
            );
        }
    }

    #[test]
    fn minor_downgrades_are_refused_and_patch_downgrades_allowed() {
        let current = v("v2.7.5");
        let cases: &[(&str, bool)] = &[
            ("2.6.x", false),
            ("2.6", false),
            ("<2.7.0", false),
            ("2.5.x || 2.6.x", false),
            ("v2.6.4", false),
            ("1.x", false),
            ("2.7.x", true),
            ("2.7.0", true),
            ("2.x", true),
            (">=2.6.0", true),
            ("2.6.x || 2.8.x", true),
            (">2.7.5", true),
            ("*", true),
            ("3.0.0", true),
        ];
        for (constraint, allowed) in cases {
            let got = VersionConstraint::parse(constraint)
                .unwrap()
                .check_no_minor_downgrade(&current);
            if *allowed {
                assert_eq!(got, Ok(()), "constraint {constraint}");
            } else {
                assert_eq!(
                    got,
                    Err(VersionError::MinorDowngrade {
                        current: current.clone(),
                        constraint: (*constraint).to_owned()
                    }),
                    "constraint {constraint}"
                );
            }
        }
        assert_eq!(
            VersionConstraint::parse("2.6.x")
                .unwrap()
                .check_no_minor_downgrade(&current)
                .unwrap_err()
                .to_string(),
            "Flux v2.7.5 is installed and \"2.6.x\" only allows a lower minor version; the Flux \
             Operator does not support downgrading to a lower minor version (a reinstall is needed)"
        );
    }

    #[test]
    fn version_changes_are_classified() {
        let cases = [
            ("2.7.5", "2.7.5", VersionChange::Unchanged),
            ("2.7.5", "2.7.6", VersionChange::PatchUpgrade),
            ("2.7.5", "2.7.4", VersionChange::PatchDowngrade),
            ("2.7.5", "2.8.0", VersionChange::MinorUpgrade),
            ("2.7.5", "3.0.0", VersionChange::MinorUpgrade),
            ("2.7.5", "2.6.9", VersionChange::MinorDowngrade),
            ("3.0.0", "2.9.9", VersionChange::MinorDowngrade),
        ];
        for (from, to, want) in cases {
            assert_eq!(classify(&v(from), &v(to)), want, "{from} -> {to}");
        }
    }
}
