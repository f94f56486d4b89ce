//! The duration strings the Flux Operator API uses (`sync.interval`, step timeouts, the
//! `reconcileEvery`/`reconcileTimeout` annotations): the CRD pattern
//! `^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`, a subset of Go's `time.ParseDuration`.
//!
//! The API stores these strings as written (`1m` and `60s` are different values on the server), so
//! the spec types keep them as `String`; this module only validates and converts them. Pure: no
//! I/O, nothing else from this crate.

use std::time::Duration;

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// The string does not match `^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`.
    #[error(
        "invalid duration {0:?}: expected a number followed by a unit (ms, s, m, h), e.g. \"1m\" or \"1h30m\""
    )]
    Parse(String),
}

/// Parses a duration written as the Flux Operator CRDs accept it (`500ms`, `30s`, `1m`, `1h30m`,
/// `1.5h`, `10m0s`).
///
/// # Errors
///
/// [`DurationError::Parse`] when the string does not match the CRD pattern.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let err = || DurationError::Parse(text.to_owned());
    if text.is_empty() {
        return Err(err());
    }
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut total_nanos: u128 = 0;
    while i < bytes.len() {
        let int_start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i == int_start {
            return Err(err());
        }
        let int_part: u128 = text[int_start..i].parse().map_err(|_| err())?;
        let mut frac_num: u128 = 0;
        let mut frac_den: u128 = 1;
        if i < bytes.len() && bytes[i] == b'.' {
            i += 1;
            let frac_start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                if frac_den < 1_000_000_000_000 {
                    frac_num = frac_num * 10 + u128::from(bytes[i] - b'0');
                    frac_den *= 10;
                }
                i += 1;
            }
            if i == frac_start {
                return Err(err());
            }
        }
        let unit_nanos: u128 = if text[i..].starts_with("ms") {
            i += 2;
            1_000_000
        } else if text[i..].starts_with('s') {
            i += 1;
            1_000_000_000
        } else if text[i..].starts_with('m') {
            i += 1;
            60_000_000_000
        } else if text[i..].starts_with('h') {
            i += 1;
            3_600_000_000_000
        } else {
            return Err(err());
        };
        total_nanos = total_nanos
            .checked_add(int_part.checked_mul(unit_nanos).ok_or_else(err)?)
            .and_then(|t| t.checked_add(frac_num * unit_nanos / frac_den))
            .ok_or_else(err)?;
    }
    let secs = u64::try_from(total_nanos / 1_000_000_000).map_err(|_| err())?;
    let nanos = u32::try_from(total_nanos % 1_000_000_000).map_err(|_| err())?;
    Ok(Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_crd_pattern() {
        let cases: &[(&str, Result<Duration, DurationError>)] = &[
            ("1m", Ok(Duration::from_secs(60))),
            ("10m0s", Ok(Duration::from_secs(600))),
            ("1h30m", Ok(Duration::from_secs(5400))),
            ("1.5h", Ok(Duration::from_secs(5400))),
            ("500ms", Ok(Duration::from_millis(500))),
            ("2s500ms", Ok(Duration::from_millis(2500))),
            ("0.25s", Ok(Duration::from_millis(250))),
            ("", Err(DurationError::Parse(String::new()))),
            ("1", Err(DurationError::Parse("1".into()))),
            ("1d", Err(DurationError::Parse("1d".into()))),
            ("-1m", Err(DurationError::Parse("-1m".into()))),
            ("1.m", Err(DurationError::Parse("1.m".into()))),
            ("1m ", Err(DurationError::Parse("1m ".into()))),
            ("m", Err(DurationError::Parse("m".into()))),
            ("1us", Err(DurationError::Parse("1us".into()))),
        ];
        for (input, want) in cases {
            assert_eq!(&parse_duration(input), want, "input {input:?}");
        }
    }
}
