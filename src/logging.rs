//! Logging to Terraform: a `tracing` layer writing one hclog-style JSON object per line to
//! stderr, which Terraform's plugin client reads and re-logs under the provider's name.
//!
//! Each line has `@level` (`trace`…`error`), `@message`, `@module`
//! (`provider.terraform-provider-flux.<module path>`), `@timestamp` in exactly the
//! `2006-01-02T15:04:05.000000Z07:00` shape (UTC, six fractional digits: Terraform logs lines
//! with any other timestamp verbatim), the fields of the enclosing spans (e.g. `tf_rpc`,
//! `tf_type`) and the event's own fields.
//!
//! The level comes from `TF_LOG_PROVIDER`, else `TF_LOG` (`TRACE`, `DEBUG`, `INFO`, `WARN`,
//! `ERROR`; `JSON` and any other non-empty value mean `TRACE`, as in Terraform; `OFF` or unset
//! means no logging at all, since Terraform would discard the lines). Other crates (tonic, h2,
//! kube, …) log at `INFO` at most. Nothing is ever written to stdout.
//!
//! Depends on nothing else in this crate.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value as Json;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// The logger name Terraform's conventions use for this provider.
const MODULE: &str = "provider.terraform-provider-flux";
/// This crate's target prefix, shortened away in `@module`.
const CRATE_TARGET: &str = "terraform_provider_flux";

/// Installs the stderr JSON logger as the global subscriber, at the level Terraform's
/// environment asks for; does nothing when logging is off.
pub fn init() {
    let Some(level) = level_from_env(|key| std::env::var(key).ok()) else {
        return;
    };
    let subscriber = tracing_subscriber::registry().with(layer(level, std::io::stderr));
    // Only fails if a global subscriber is already set, which then keeps logging.
    let _already_set = tracing::subscriber::set_global_default(subscriber);
}

/// The hclog JSON layer at `level`, writing to `writer`, filtered as [`init`] does.
pub fn layer<S, W>(level: Level, writer: W) -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let foreign_level = level.min(Level::INFO);
    HclogLayer { writer }.with_filter(tracing_subscriber::filter::filter_fn(move |meta| {
        let max = if meta.target().starts_with(CRATE_TARGET) {
            level
        } else {
            foreign_level
        };
        *meta.level() <= max
    }))
}

/// The level requested by `TF_LOG_PROVIDER`, else `TF_LOG`; `None` when logging is off.
pub fn level_from_env(var: impl Fn(&str) -> Option<String>) -> Option<Level> {
    let value = var("TF_LOG_PROVIDER")
        .filter(|v| !v.trim().is_empty())
        .or_else(|| var("TF_LOG"))?;
    match value.trim().to_ascii_uppercase().as_str() {
        "" | "OFF" => None,
        "ERROR" => Some(Level::ERROR),
        "WARN" => Some(Level::WARN),
        "INFO" => Some(Level::INFO),
        "DEBUG" => Some(Level::DEBUG),
        _ => Some(Level::TRACE),
    }
}

/// Writes each event as one hclog JSON line.
struct HclogLayer<W> {
    writer: W,
}

/// Recorded fields of a span or event, as JSON.
#[derive(Default)]
struct Fields(BTreeMap<String, Json>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), Json::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().to_owned(), Json::String(value.to_owned()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Json::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Json::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), Json::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Json::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0
            .insert(field.name().to_owned(), Json::String(value.to_string()));
    }
}

impl<S, W> Layer<S> for HclogLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'a> MakeWriter<'a> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(fields) = span.extensions_mut().get_mut::<Fields>()
        {
            values.record(fields);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut line = serde_json::Map::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(fields) = span.extensions().get::<Fields>() {
                    line.extend(fields.0.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let message = fields
            .0
            .remove("message")
            .unwrap_or(Json::String(String::new()));
        line.extend(fields.0);
        let meta = event.metadata();
        line.insert("@level".to_owned(), Json::from(level_name(*meta.level())));
        line.insert("@message".to_owned(), message);
        line.insert("@module".to_owned(), Json::from(module_name(meta.target())));
        line.insert(
            "@timestamp".to_owned(),
            Json::from(timestamp(SystemTime::now())),
        );
        let mut text = Json::Object(line).to_string();
        text.push('\n');
        // Logging must never fail the provider; a broken stderr loses the line.
        let _lost = self.writer.make_writer().write_all(text.as_bytes());
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::TRACE => "trace",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warn",
        Level::ERROR => "error",
    }
}

/// `provider.terraform-provider-flux.protocol.server` for this crate's
/// `terraform_provider_flux::protocol::server`; other crates keep their own path.
fn module_name(target: &str) -> String {
    let path = target
        .strip_prefix(CRATE_TARGET)
        .map(|rest| rest.trim_start_matches("::"))
        .unwrap_or(target)
        .replace("::", ".");
    if path.is_empty() {
        MODULE.to_owned()
    } else {
        format!("{MODULE}.{path}")
    }
}

/// `2006-01-02T15:04:05.000000Z` (UTC, microseconds).
fn timestamp(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_epoch.as_secs();
    let days = i64::try_from(seconds / 86_400).unwrap_or(0);
    let of_day = seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60,
        since_epoch.subsec_micros()
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use pretty_assertions::assert_eq;

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Buffer {
            self.clone()
        }
    }

    #[test]
    fn level_comes_from_tf_log_provider_then_tf_log() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |key: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(level_from_env(env(&[])), None);
        assert_eq!(level_from_env(env(&[("TF_LOG", "off")])), None);
        assert_eq!(
            level_from_env(env(&[("TF_LOG", "debug")])),
            Some(Level::DEBUG)
        );
        assert_eq!(
            level_from_env(env(&[("TF_LOG", "JSON")])),
            Some(Level::TRACE)
        );
        assert_eq!(
            level_from_env(env(&[("TF_LOG", "TRACE"), ("TF_LOG_PROVIDER", "WARN")])),
            Some(Level::WARN)
        );
        assert_eq!(
            level_from_env(env(&[("TF_LOG_PROVIDER", "ERROR")])),
            Some(Level::ERROR)
        );
    }

    #[test]
    fn timestamps_have_six_fractional_digits_in_utc() {
        let time = UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
        assert_eq!(timestamp(time), "2023-11-14T22:13:20.123456Z");
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(timestamp(leap), "2000-02-29T00:00:00.000000Z");
    }

    #[test]
    fn events_are_hclog_json_lines_with_span_fields() {
        let buffer = Buffer::default();
        let subscriber = tracing_subscriber::registry().with(layer(Level::DEBUG, buffer.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let span =
                tracing::info_span!("rpc", tf_rpc = "ReadResource", tf_type = "flux_instance");
            let _entered = span.enter();
            tracing::debug!(errors = 0_u64, "served");
            tracing::trace!("filtered out");
            tracing::info!(target: "h2::codec", "foreign info passes");
            tracing::debug!(target: "h2::codec", "foreign debug filtered out");
        });
        let output = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let mut lines: Vec<Json> = output
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{output}");
        for line in &mut lines {
            let stamp = line["@timestamp"].as_str().unwrap().to_owned();
            assert_eq!(stamp.len(), "2006-01-02T15:04:05.000000Z".len(), "{stamp}");
            assert!(
                stamp.ends_with('Z') && stamp.as_bytes()[19] == b'.',
                "{stamp}"
            );
            line.as_object_mut().unwrap().remove("@timestamp");
        }
        assert_eq!(
            lines,
            vec![
                serde_json::json!({
                    "@level": "debug", "@message": "served",
                    "@module": "provider.terraform-provider-flux.logging.tests",
                    "tf_rpc": "ReadResource", "tf_type": "flux_instance", "errors": 0
                }),
                serde_json::json!({
                    "@level": "info", "@message": "foreign info passes",
                    "@module": "provider.terraform-provider-flux.h2.codec",
                    "tf_rpc": "ReadResource", "tf_type": "flux_instance"
                }),
            ]
        );
    }
}
