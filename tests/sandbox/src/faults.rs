//! Fault injection: added latency, error responses by verb/resource/name/path with a rate and a
//! count, connection resets (socket mode), watch streams cut or expired, failing discovery groups,
//! "aggregated discovery unsupported", and Deployments that never become Available.
//!
//! Rules are plain data (serde) so the binary's admin endpoint can accept them as JSON.
//! Depends on nothing else in the crate.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// What a matching fault does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum FaultAction {
    /// Delay the request by this many milliseconds, then serve it normally.
    Delay {
        /// Milliseconds.
        ms: u64,
    },
    /// Answer with a `kind: Status` error of this code (500, 409, 429, 503, ...).
    Error {
        /// HTTP status code.
        code: u16,
        /// `Retry-After` seconds (429/503).
        #[serde(default, rename = "retryAfter")]
        retry_after: Option<u64>,
        /// Custom message.
        #[serde(default)]
        message: Option<String>,
    },
    /// Abort the connection without a response (socket mode; in-process it becomes a 500).
    ResetConnection,
    /// End a watch stream after this many events.
    WatchCut {
        /// Events sent before the stream ends.
        #[serde(rename = "afterEvents")]
        after_events: usize,
    },
    /// Answer a watch with an `ERROR` event carrying 410 Expired.
    WatchExpired,
}

/// A fault rule: matchers (all optional, all must match) and an action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultRule {
    /// HTTP method (GET, POST, ...).
    #[serde(default)]
    pub method: Option<String>,
    /// Kubernetes verb (get, list, watch, create, update, patch, delete, deletecollection, discovery).
    #[serde(default)]
    pub verb: Option<String>,
    /// Plural resource name, e.g. `configmaps`.
    #[serde(default)]
    pub resource: Option<String>,
    /// Object name.
    #[serde(default)]
    pub name: Option<String>,
    /// Regex over the path.
    #[serde(default)]
    pub path_regex: Option<String>,
    /// Regex over the `User-Agent` header (absent header: the empty string), to fault one
    /// client's requests and not another's (e.g. a provider's, not the simulated operator's).
    #[serde(default)]
    pub user_agent: Option<String>,
    /// Whether the request is a dry run (`dryRun=All`): `Some(false)` faults only requests that
    /// persist, e.g. an apply's write and not the plan's server-side dry run before it.
    #[serde(default)]
    pub dry_run: Option<bool>,
    /// Probability (0..=1) that a matching request is affected; default 1.
    #[serde(default)]
    pub rate: Option<f64>,
    /// How many times the rule fires before it is spent; default unlimited.
    #[serde(default)]
    pub times: Option<u32>,
    /// What to do.
    pub action: FaultAction,
}

impl FaultRule {
    /// A rule matching everything with this action.
    pub fn new(action: FaultAction) -> Self {
        FaultRule {
            method: None,
            verb: None,
            resource: None,
            name: None,
            path_regex: None,
            user_agent: None,
            dry_run: None,
            rate: None,
            times: None,
            action,
        }
    }
    /// An error response rule.
    pub fn error(code: u16) -> Self {
        Self::new(FaultAction::Error {
            code,
            retry_after: None,
            message: None,
        })
    }
    /// Restricts to a verb.
    pub fn verb(mut self, v: &str) -> Self {
        self.verb = Some(v.into());
        self
    }
    /// Restricts to a plural resource.
    pub fn resource(mut self, r: &str) -> Self {
        self.resource = Some(r.into());
        self
    }
    /// Restricts to requests whose `User-Agent` matches the regex `re`.
    pub fn user_agent(mut self, re: &str) -> Self {
        self.user_agent = Some(re.into());
        self
    }
    /// Restricts to an object name.
    pub fn name(mut self, n: &str) -> Self {
        self.name = Some(n.into());
        self
    }
    /// Restricts to dry runs (`true`) or to requests that persist (`false`).
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = Some(dry_run);
        self
    }
    /// Fires at most `n` times.
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }
    /// Fires with this probability.
    pub fn rate(mut self, r: f64) -> Self {
        self.rate = Some(r);
        self
    }
    /// Sets `Retry-After` on an error action.
    pub fn retry_after(mut self, secs: u64) -> Self {
        if let FaultAction::Error { retry_after, .. } = &mut self.action {
            *retry_after = Some(secs);
        }
        self
    }
}

/// Serializable view of all fault settings (what the admin endpoint returns).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultSettings {
    /// Active rules.
    #[serde(default)]
    pub rules: Vec<FaultRule>,
    /// Latency added to every request, in milliseconds.
    #[serde(default)]
    pub latency_ms: u64,
    /// API groups (`group` or `group/version`) whose discovery answers 503.
    #[serde(default)]
    pub broken_discovery_groups: BTreeSet<String>,
    /// Answer aggregated-discovery requests with the legacy documents.
    #[serde(default)]
    pub aggregated_discovery_unsupported: bool,
    /// Deployments (`namespace/name`) the deployment status controller never marks Available.
    #[serde(default)]
    pub stuck_deployments: BTreeSet<String>,
}

#[derive(Debug)]
struct State {
    settings: FaultSettings,
    rng: u64,
}

/// What is known about a request when faults are evaluated.
#[derive(Debug, Clone)]
pub(crate) struct RequestInfo<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub verb: &'a str,
    pub resource: Option<&'a str>,
    pub name: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub dry_run: bool,
}

/// Shared, cheap-to-clone fault configuration.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    inner: Arc<Mutex<State>>,
}

impl Faults {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a rule.
    pub fn add(&self, rule: FaultRule) {
        self.lock().settings.rules.push(rule);
    }

    /// Removes every rule and setting.
    pub fn clear(&self) {
        self.lock().settings = FaultSettings::default();
    }

    /// Replaces all settings.
    pub fn set(&self, settings: FaultSettings) {
        self.lock().settings = settings;
    }

    /// Current settings.
    pub fn settings(&self) -> FaultSettings {
        self.lock().settings.clone()
    }

    /// Adds latency to every request.
    pub fn set_latency(&self, d: Duration) {
        self.lock().settings.latency_ms = d.as_millis() as u64;
    }

    /// Makes discovery of a group (`group` or `group/version`) answer 503.
    pub fn break_discovery_group(&self, group_version: &str) {
        self.lock()
            .settings
            .broken_discovery_groups
            .insert(group_version.to_string());
    }

    /// Ignores the aggregated-discovery Accept header (legacy documents are returned instead).
    pub fn set_aggregated_discovery_unsupported(&self, on: bool) {
        self.lock().settings.aggregated_discovery_unsupported = on;
    }

    /// Keeps a Deployment from ever becoming Available (or releases it).
    pub fn set_deployment_stuck(&self, namespace: &str, name: &str, stuck: bool) {
        let key = format!("{namespace}/{name}");
        let mut g = self.lock();
        if stuck {
            g.settings.stuck_deployments.insert(key);
        } else {
            g.settings.stuck_deployments.remove(&key);
        }
    }

    pub(crate) fn deployment_stuck(&self, namespace: &str, name: &str) -> bool {
        self.lock()
            .settings
            .stuck_deployments
            .contains(&format!("{namespace}/{name}"))
    }

    pub(crate) fn discovery_broken(&self, group: &str, version: &str) -> bool {
        let g = self.lock();
        g.settings.broken_discovery_groups.contains(group)
            || g.settings
                .broken_discovery_groups
                .contains(&format!("{group}/{version}"))
    }

    pub(crate) fn aggregated_unsupported(&self) -> bool {
        self.lock().settings.aggregated_discovery_unsupported
    }

    pub(crate) fn latency(&self) -> Duration {
        Duration::from_millis(self.lock().settings.latency_ms)
    }

    /// Evaluates the rules for a request, consuming counts; returns the actions that fire.
    pub(crate) fn evaluate(&self, req: &RequestInfo<'_>) -> Vec<FaultAction> {
        let mut g = self.lock();
        let mut fired = Vec::new();
        let mut rng = g.rng;
        for rule in g.settings.rules.iter_mut() {
            if rule.times == Some(0) {
                continue;
            }
            let m = rule
                .method
                .as_deref()
                .is_none_or(|x| x.eq_ignore_ascii_case(req.method))
                && rule.verb.as_deref().is_none_or(|x| x == req.verb)
                && rule
                    .resource
                    .as_deref()
                    .is_none_or(|x| Some(x) == req.resource)
                && rule.name.as_deref().is_none_or(|x| Some(x) == req.name)
                && rule
                    .path_regex
                    .as_deref()
                    .is_none_or(|x| regex::Regex::new(x).is_ok_and(|re| re.is_match(req.path)))
                && rule.dry_run.is_none_or(|d| d == req.dry_run)
                && rule.user_agent.as_deref().is_none_or(|x| {
                    regex::Regex::new(x)
                        .is_ok_and(|re| re.is_match(req.user_agent.unwrap_or_default()))
                });
            if !m {
                continue;
            }
            if let Some(rate) = rule.rate {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let x = (rng % 1_000_000) as f64 / 1_000_000.0;
                if x >= rate {
                    continue;
                }
            }
            if let Some(t) = rule.times.as_mut() {
                *t -= 1;
            }
            fired.push(rule.action.clone());
        }
        g.rng = rng;
        g.settings.rules.retain(|r| r.times != Some(0));
        fired
    }
}

impl Default for State {
    fn default() -> Self {
        State {
            settings: FaultSettings::default(),
            rng: 0x9E37_79B9_7F4A_7C15,
        }
    }
}
