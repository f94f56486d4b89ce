//! Flux version resolution for the simulated operator: parsing the Masterminds-style semver
//! constraints a FluxInstance's `distribution.version` accepts, matching them against the
//! "embedded" Flux versions, the minor-downgrade rule, and the controller image tags the
//! simulator renders for a Flux release.
//!
//! Pure code: no I/O, nothing from the rest of the simulator.

use std::fmt;
use std::str::FromStr;

/// Errors of version parsing, matching and upgrade checks. Messages follow the operator's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    /// A version string is not `[v]MAJOR.MINOR.PATCH`.
    #[error("version '{0}' parse error")]
    ParseVersion(String),
    /// A constraint string could not be parsed.
    #[error("semver '{0}' parse error")]
    ParseConstraint(String),
    /// No embedded version satisfies the constraint.
    #[error("no match found for semver: {0}")]
    NoMatch(String),
    /// The resolved version is a lower minor (or major) than the last applied one.
    #[error("downgrading from {from} to {to} is not supported, reinstall needed")]
    Downgrade {
        /// The last applied version, as written in the revision (`v2.7.5`).
        from: String,
        /// The version the spec resolves to.
        to: String,
    },
}

/// A release version `MAJOR.MINOR.PATCH` (Flux releases carry no pre-release in the catalogue).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Major number.
    pub major: u64,
    /// Minor number.
    pub minor: u64,
    /// Patch number.
    pub patch: u64,
}

impl Version {
    /// Builds a version from its three numbers.
    pub const fn new(major: u64, minor: u64, patch: u64) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl FromStr for Version {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || VersionError::ParseVersion(s.to_string());
        let t = s.trim();
        let t = t.strip_prefix('v').unwrap_or(t);
        let mut parts = t.split('.');
        let mut next = || -> Result<u64, VersionError> {
            parts
                .next()
                .ok_or_else(err)?
                .parse::<u64>()
                .map_err(|_| err())
        };
        let v = Version::new(next()?, next()?, next()?);
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(v)
    }
}

/// The Flux versions embedded in the Flux Operator v0.58.1 (`config/data/flux/`): v2.2.3,
/// v2.3.0, v2.4.0, v2.5.0–v2.5.1, v2.6.0–v2.6.4, v2.7.0–v2.7.5, v2.8.0–v2.8.8 without v2.8.4,
/// v2.9.0–v2.9.4. So `2.x` resolves to v2.9.4.
pub fn default_embedded_versions() -> Vec<Version> {
    let mut v = vec![
        Version::new(2, 2, 3),
        Version::new(2, 3, 0),
        Version::new(2, 4, 0),
    ];
    v.extend((0..=1).map(|p| Version::new(2, 5, p)));
    v.extend((0..=4).map(|p| Version::new(2, 6, p)));
    v.extend((0..=5).map(|p| Version::new(2, 7, p)));
    v.extend((0..=8).filter(|p| *p != 4).map(|p| Version::new(2, 8, p)));
    v.extend((0..=4).map(|p| Version::new(2, 9, p)));
    v.sort();
    v
}

/// Parses a comma- or space-separated version list (the `--flux-versions` flag).
pub fn parse_version_list(s: &str) -> Result<Vec<Version>, VersionError> {
    let mut out = s
        .split([',', ' '])
        .filter(|p| !p.trim().is_empty())
        .map(Version::from_str)
        .collect::<Result<Vec<_>, _>>()?;
    out.sort();
    out.dedup();
    Ok(out)
}

/// A partially specified version: a missing or wildcard (`x`, `X`, `*`) part is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Partial {
    major: Option<u64>,
    minor: Option<u64>,
    patch: Option<u64>,
}

impl Partial {
    fn parse(s: &str) -> Option<Partial> {
        let t = s.strip_prefix('v').unwrap_or(s);
        let mut nums = [None, None, None];
        let mut wildcard = false;
        for (i, part) in t.split('.').enumerate() {
            if i > 2 {
                return None;
            }
            if wildcard {
                // Everything after a wildcard must be a wildcard as well.
                if !matches!(part, "x" | "X" | "*") {
                    return None;
                }
                continue;
            }
            match part {
                "x" | "X" | "*" => wildcard = true,
                p => nums[i] = Some(p.parse::<u64>().ok()?),
            }
        }
        Some(Partial {
            major: nums[0],
            minor: nums[1],
            patch: nums[2],
        })
    }

    /// Lowest version of the range (missing parts are 0).
    fn floor(&self) -> Version {
        Version::new(
            self.major.unwrap_or(0),
            self.minor.unwrap_or(0),
            self.patch.unwrap_or(0),
        )
    }

    /// Exclusive upper bound of the range the partial version stands for, `None` = unbounded.
    fn ceiling(&self) -> Option<Version> {
        match (self.major, self.minor, self.patch) {
            (None, _, _) => None,
            (Some(ma), None, _) => Some(Version::new(ma + 1, 0, 0)),
            (Some(ma), Some(mi), None) => Some(Version::new(ma, mi + 1, 0)),
            (Some(ma), Some(mi), Some(p)) => Some(Version::new(ma, mi, p + 1)),
        }
    }
}

/// One primitive comparison of a constraint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prim {
    Ge(Version),
    Lt(Version),
    Any,
    NotIn(Version, Option<Version>),
    Never,
}

impl Prim {
    fn check(&self, v: &Version) -> bool {
        match self {
            Prim::Ge(b) => v >= b,
            Prim::Lt(b) => v < b,
            Prim::Any => true,
            Prim::Never => false,
            Prim::NotIn(lo, hi) => !(v >= lo && hi.is_none_or(|h| v < &h)),
        }
    }
}

/// A parsed constraint: alternatives (`||`) of conjunctions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    alternatives: Vec<Vec<Prim>>,
}

impl Constraint {
    /// Parses a Masterminds semver constraint: `2.x`, `2.7.x`, `v2.7.5`, `>=2.6 <2.8`,
    /// `~2.6`, `^2.5.0`, `2.5 - 2.6`, `!=2.6.1`, alternatives with `||`. A partial version
    /// stands for the range of its missing parts (`2.7` = `2.7.x`).
    pub fn parse(s: &str) -> Result<Constraint, VersionError> {
        let err = || VersionError::ParseConstraint(s.to_string());
        let mut alternatives = Vec::new();
        for alt in s.split("||") {
            let tokens = tokenize(alt);
            if tokens.is_empty() {
                return Err(err());
            }
            let mut prims = Vec::new();
            let mut i = 0;
            while i < tokens.len() {
                // Hyphen range `a - b`.
                if tokens.get(i + 1).map(String::as_str) == Some("-") {
                    let lo = Partial::parse(&tokens[i]).ok_or_else(err)?;
                    let hi = Partial::parse(tokens.get(i + 2).ok_or_else(err)?).ok_or_else(err)?;
                    prims.push(Prim::Ge(lo.floor()));
                    prims.push(hi.ceiling().map_or(Prim::Any, Prim::Lt));
                    i += 3;
                    continue;
                }
                prims.extend(parse_comparator(&tokens[i]).ok_or_else(err)?);
                i += 1;
            }
            alternatives.push(prims);
        }
        Ok(Constraint { alternatives })
    }

    /// Whether a version satisfies the constraint.
    pub fn matches(&self, v: &Version) -> bool {
        self.alternatives
            .iter()
            .any(|alt| alt.iter().all(|p| p.check(v)))
    }
}

/// Splits a conjunction on commas and spaces, joining a lone operator with the next token.
fn tokenize(s: &str) -> Vec<String> {
    let raw: Vec<&str> = s
        .split([',', ' ', '\t'])
        .filter(|t| !t.is_empty())
        .collect();
    let mut out = Vec::new();
    let mut pending = String::new();
    for t in raw {
        if t != "-" && t.chars().all(|c| "<>=!~^".contains(c)) {
            pending.push_str(t);
            continue;
        }
        out.push(format!("{pending}{t}"));
        pending.clear();
    }
    if !pending.is_empty() {
        out.push(pending);
    }
    out
}

fn parse_comparator(tok: &str) -> Option<Vec<Prim>> {
    let ops = [">=", "<=", "!=", "=>", "=<", ">", "<", "=", "~>", "~", "^"];
    let (op, rest) = ops
        .iter()
        .find_map(|op| tok.strip_prefix(op).map(|r| (*op, r)))
        .unwrap_or(("", tok));
    let p = Partial::parse(rest.trim())?;
    let floor = p.floor();
    let ceil = p.ceiling();
    let exact = p.patch.is_some();
    Some(match op {
        "" | "=" => match (p.major, exact) {
            (None, _) => vec![Prim::Any],
            (Some(_), true) => vec![Prim::Ge(floor), ceil.map_or(Prim::Any, Prim::Lt)],
            (Some(_), false) => vec![Prim::Ge(floor), ceil.map_or(Prim::Any, Prim::Lt)],
        },
        "!=" => vec![Prim::NotIn(floor, ceil)],
        ">" => match ceil {
            // `>2.7` is above every 2.7.x; `>2.7.1` is above 2.7.1.
            Some(c) => vec![Prim::Ge(c)],
            None => vec![Prim::Never],
        },
        ">=" | "=>" => vec![Prim::Ge(floor)],
        "<" => match p.major {
            None => vec![Prim::Never],
            Some(_) => vec![Prim::Lt(floor)],
        },
        "<=" | "=<" => vec![ceil.map_or(Prim::Any, Prim::Lt)],
        "~" | "~>" => {
            let upper = match (p.major, p.minor) {
                (None, _) => None,
                (Some(ma), None) => Some(Version::new(ma + 1, 0, 0)),
                (Some(ma), Some(mi)) => Some(Version::new(ma, mi + 1, 0)),
            };
            vec![Prim::Ge(floor), upper.map_or(Prim::Any, Prim::Lt)]
        }
        "^" => {
            let upper = match (p.major, p.minor, p.patch) {
                (None, _, _) => None,
                (Some(0), Some(0), Some(pa)) => Some(Version::new(0, 0, pa + 1)),
                (Some(0), Some(mi), _) => Some(Version::new(0, mi + 1, 0)),
                (Some(ma), _, _) => Some(Version::new(ma + 1, 0, 0)),
            };
            vec![Prim::Ge(floor), upper.map_or(Prim::Any, Prim::Lt)]
        }
        _ => return None,
    })
}

/// Resolves a `distribution.version` constraint to the highest embedded version matching it.
pub fn resolve(constraint: &str, embedded: &[Version]) -> Result<Version, VersionError> {
    let c = Constraint::parse(constraint)?;
    embedded
        .iter()
        .filter(|v| c.matches(v))
        .max()
        .copied()
        .ok_or_else(|| VersionError::NoMatch(constraint.to_string()))
}

/// The operator's upgrade rule: a lower major or minor than the last applied revision
/// (`v2.7.5@sha256:…`) is refused; a lower patch is allowed.
pub fn check_upgrade(last_applied_revision: &str, to: &Version) -> Result<(), VersionError> {
    let from_str = last_applied_revision.split('@').next().unwrap_or_default();
    let from = Version::from_str(from_str)?;
    if to.major < from.major || to.minor < from.minor {
        return Err(VersionError::Downgrade {
            from: from_str.to_string(),
            to: to.to_string(),
        });
    }
    Ok(())
}

/// The image tag of a Flux component in a Flux release, as the simulator renders it. The
/// controller minors follow the upstream release mapping (Flux 2.x ships source-, kustomize- and
/// notification-controller v1.x, helm-controller v0.37 in 2.2 then v1.(x-3), the image
/// controllers v1.(x-7) from 2.7, source-watcher v2.(x-7) from 2.7); the
/// patch level is simulated as the Flux patch level. `None` when the component does not exist
/// in that release (source-watcher before 2.7).
pub fn component_tag(component: &str, flux: &Version) -> Option<String> {
    let (mi, pa) = (flux.minor, flux.patch);
    let tag = match component {
        "source-controller" | "kustomize-controller" | "notification-controller" => {
            format!("v1.{mi}.{pa}")
        }
        "helm-controller" => match mi {
            0..=2 => format!("v0.{}.{pa}", mi + 35),
            _ => format!("v1.{}.{pa}", mi - 3),
        },
        "image-reflector-controller" => match mi {
            0..=6 => format!("v0.{}.{pa}", mi + 29),
            _ => format!("v1.{}.{pa}", mi - 7),
        },
        "image-automation-controller" => match mi {
            0..=6 => format!("v0.{}.{pa}", mi + 35),
            _ => format!("v1.{}.{pa}", mi - 7),
        },
        "source-watcher" if mi >= 7 => format!("v2.{}.{pa}", mi - 7),
        _ => return None,
    };
    Some(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    #[test]
    fn resolves_constraints_against_the_default_catalogue() {
        let cat = default_embedded_versions();
        let cases = [
            // Embedded v2.2.3 ... v2.9.4: `2.x` is the newest; no v2.8.4.
            ("2.x", Ok("v2.9.4")),
            ("2.7.x", Ok("v2.7.5")),
            ("2.8.x", Ok("v2.8.8")),
            ("2.8.4", Err(VersionError::NoMatch("2.8.4".into()))),
            ("~2.8.3", Ok("v2.8.8")),
            ("<2.3", Ok("v2.2.3")),
            ("2.4", Ok("v2.4.0")),
            ("2.6.x", Ok("v2.6.4")),
            ("2.6", Ok("v2.6.4")),
            ("v2.6.2", Ok("v2.6.2")),
            ("2.6.2", Ok("v2.6.2")),
            ("=2.5.0", Ok("v2.5.0")),
            (">=2.5 <2.7", Ok("v2.6.4")),
            (">=2.5, <2.7", Ok("v2.6.4")),
            (">= 2.5 < 2.6", Ok("v2.5.1")),
            ("~2.6.1", Ok("v2.6.4")),
            ("~2.5", Ok("v2.5.1")),
            ("^2.5.0", Ok("v2.9.4")),
            ("2.5 - 2.6", Ok("v2.6.4")),
            ("<=2.6", Ok("v2.6.4")),
            ("<2.6", Ok("v2.5.1")),
            (">2.6", Ok("v2.9.4")),
            (">2.7.4", Ok("v2.9.4")),
            ("2.7.x !=2.7.5", Ok("v2.7.4")),
            ("2.5.x || 2.6.1", Ok("v2.6.1")),
            ("*", Ok("v2.9.4")),
            ("3.x", Err(VersionError::NoMatch("3.x".into()))),
            ("2.10.x", Err(VersionError::NoMatch("2.10.x".into()))),
            ("2.7.9", Err(VersionError::NoMatch("2.7.9".into()))),
            (
                "latest",
                Err(VersionError::ParseConstraint("latest".into())),
            ),
            ("", Err(VersionError::ParseConstraint("".into()))),
        ];
        for (input, want) in cases {
            let got = resolve(input, &cat).map(|v| v.to_string());
            assert_eq!(got, want.map(String::from), "constraint {input:?}");
        }
    }

    #[test]
    fn refuses_only_minor_or_major_downgrades() {
        let rev = "v2.7.5@sha256:0123";
        assert_eq!(check_upgrade(rev, &v("2.7.0")), Ok(()));
        assert_eq!(check_upgrade(rev, &v("2.7.5")), Ok(()));
        assert_eq!(check_upgrade(rev, &v("2.8.0")), Ok(()));
        assert_eq!(
            check_upgrade(rev, &v("2.6.4")).map_err(|e| e.to_string()),
            Err("downgrading from v2.7.5 to v2.6.4 is not supported, reinstall needed".into())
        );
    }

    #[test]
    fn parses_version_lists() {
        assert_eq!(
            parse_version_list("2.6.1, v2.5.0 2.6.1").unwrap(),
            vec![v("2.5.0"), v("2.6.1")]
        );
        assert!(parse_version_list("2.6").is_err());
    }

    #[test]
    fn renders_component_tags() {
        let f = v("2.7.5");
        let got: Vec<_> = [
            "source-controller",
            "kustomize-controller",
            "helm-controller",
            "notification-controller",
            "image-reflector-controller",
            "image-automation-controller",
            "source-watcher",
            "unknown",
        ]
        .iter()
        .map(|c| component_tag(c, &f))
        .collect();
        let want = [
            Some("v1.7.5"),
            Some("v1.7.5"),
            Some("v1.4.5"),
            Some("v1.7.5"),
            Some("v1.0.5"),
            Some("v1.0.5"),
            Some("v2.0.5"),
            None,
        ]
        .map(|s| s.map(String::from));
        assert_eq!(got, want);
        assert_eq!(component_tag("source-watcher", &v("2.6.4")), None);
        assert_eq!(
            component_tag("image-reflector-controller", &v("2.6.1")).as_deref(),
            Some("v0.35.1")
        );
        assert_eq!(
            component_tag("image-automation-controller", &v("2.5.0")).as_deref(),
            Some("v0.40.0")
        );
    }
}
