//! The collector of validation errors ([`Checks`]) and the small rules every resource's
//! validation uses (attribute paths, durations, the `timeouts` block). Nothing here does I/O.
//!
//! Lives in `resources/`: may use `framework` and `flux`.

use std::collections::BTreeMap;

use crate::flux::duration::parse_duration;
use crate::flux::validate as rule;
use crate::framework::diagnostics::Diagnostics;
use crate::framework::model::Value;
use crate::framework::path::AttrPath;
use crate::resources::common::Timeouts;
/// Collects errors, one per bad value.
#[derive(Debug, Default)]
pub struct Checks {
    out: Diagnostics,
}

impl Checks {
    /// No errors yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The errors found.
    pub fn finish(self) -> Diagnostics {
        self.out
    }

    /// An error at `path` with a detail of its own.
    pub fn error_at(&mut self, path: AttrPath, summary: &str, detail: impl Into<String>) {
        self.out.error_at(path, summary, detail);
    }

    /// The errors found so far, for a rule that writes its own.
    pub fn diagnostics(&mut self) -> &mut Diagnostics {
        &mut self.out
    }

    /// An error at `path`: `<path> = "<value>" <reason>.`
    pub fn fail(&mut self, path: AttrPath, summary: &str, value: &str, reason: &str) {
        self.out.error_at(
            path.clone(),
            summary,
            format!("{path} = {value:?} {reason}."),
        );
    }

    /// Checks a known string with `rule`.
    pub fn string(
        &mut self,
        path: AttrPath,
        value: &Value<String>,
        summary: &str,
        rule: impl Fn(&str) -> Result<(), String>,
    ) {
        if let Some(text) = value.as_known()
            && let Err(reason) = rule(text)
        {
            self.fail(path, summary, text, &reason);
        }
    }

    /// Checks every known value of a map with `rule`, at `path["key"]`.
    pub fn map_values(
        &mut self,
        path: &AttrPath,
        value: &Value<BTreeMap<String, String>>,
        summary: &str,
        rule: impl Fn(&str) -> Result<(), String>,
    ) {
        for (key, text) in value.as_known().into_iter().flatten() {
            if let Err(reason) = rule(text) {
                self.fail(path.clone().then_key(key.clone()), summary, text, &reason);
            }
        }
    }

    /// Checks every key of a known map with `rule`, at `path["key"]`.
    pub fn map_keys(
        &mut self,
        path: &AttrPath,
        value: &Value<BTreeMap<String, String>>,
        summary: &str,
        rule: impl Fn(&str) -> Result<(), String>,
    ) {
        for key in value.as_known().into_iter().flatten().map(|(k, _)| k) {
            if let Err(reason) = rule(key) {
                let path = path.clone().then_key(key.clone());
                self.out.error_at(
                    path.clone(),
                    summary,
                    format!("{path}: the key {key:?} {reason}."),
                );
            }
        }
    }
}

/// The path of nested attributes `steps`.
pub(crate) fn attr(steps: &[&str]) -> AttrPath {
    steps
        .iter()
        .fold(AttrPath::root(), |path, step| path.then_attr(*step))
}

/// A duration the operator and Flux parse (`10m`, `1h30m`).
pub(crate) fn duration(text: &str) -> Result<(), String> {
    parse_duration(text).map(|_| ()).map_err(|_| {
        "is not a duration; use a number with a unit (ms, s, m, h), e.g. \"10m\" or \"1h30m\""
            .into()
    })
}

/// `timeouts.create/update/delete` under `prefix`.
pub fn timeouts(checks: &mut Checks, timeouts: &Value<Timeouts>) {
    let Some(t) = timeouts.as_known() else {
        return;
    };
    for (name, value) in [
        ("create", &t.create),
        ("update", &t.update),
        ("delete", &t.delete),
    ] {
        checks.string(
            attr(&["timeouts", name]),
            value,
            "Invalid Timeout",
            duration,
        );
    }
}

/// The namespace of a FluxInstance (or a bootstrap): a DNS label.
pub(crate) fn namespace(checks: &mut Checks, value: &Value<String>) {
    checks.string(
        AttrPath::attr("namespace"),
        value,
        "Invalid Namespace Name",
        rule::dns_label,
    );
}

/// The reconcile annotations the operator parses as durations: a value it cannot parse would be
/// written as is (the API server does not check annotations), so it is refused here.
pub(crate) fn reconcile_durations(checks: &mut Checks, fields: &[(&str, &Value<String>)]) {
    for (name, value) in fields {
        checks.string(attr(&[name]), value, "Invalid Duration", duration);
    }
}
