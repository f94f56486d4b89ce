//! OpenSSH `known_hosts` parsing and host-key matching, used to verify an SSH server's host key.
//!
//! Supported: plain host patterns (comma-separated, `*`/`?` wildcards, `!` negation,
//! `[host]:port` for non-default ports), hashed entries (`|1|salt|hash`, HMAC-SHA1) and the
//! `@revoked` marker. `@cert-authority` lines are parsed and ignored: host certificates are not
//! verified. Pure; no I/O.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use sha2::{Digest as _, Sha256};

use super::Error;

/// A parsed `known_hosts` file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KnownHosts {
    entries: Vec<Entry>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Marker {
    None,
    Revoked,
    CertAuthority,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Hosts {
    Hashed { salt: Vec<u8>, hash: Vec<u8> },
    Patterns(Vec<(bool, String)>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    marker: Marker,
    hosts: Hosts,
    key: Vec<u8>,
}

/// The outcome of looking a host key up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// An entry for this host lists exactly this key.
    Trusted,
    /// The key is listed under `@revoked`.
    Revoked,
    /// The host is known, but with other keys (of the listed types).
    Mismatch(Vec<String>),
    /// No entry names this host.
    Unknown,
}

impl KnownHosts {
    /// Parses `known_hosts` text. Blank lines and `#` comments are skipped; a malformed line is
    /// an [`Error::KnownHosts`] naming its line number.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let mut entries = Vec::new();
        for (idx, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |reason: &str| Error::KnownHosts {
                line: idx + 1,
                reason: reason.to_owned(),
            };
            let mut fields = line.split_whitespace();
            let mut first = fields.next().unwrap_or_default();
            let marker = match first {
                "@revoked" => Marker::Revoked,
                "@cert-authority" => Marker::CertAuthority,
                m if m.starts_with('@') => return Err(bad("unknown marker")),
                _ => Marker::None,
            };
            if marker != Marker::None {
                first = fields.next().unwrap_or_default();
            }
            let (Some(_key_type), Some(key_b64)) = (fields.next(), fields.next()) else {
                return Err(bad(
                    "expected: [marker] hosts key-type base64-key [comment]",
                ));
            };
            let key = STANDARD
                .decode(key_b64)
                .map_err(|_| bad("the key is not valid base64"))?;
            let hosts = if let Some(hashed) = first.strip_prefix("|1|") {
                let (salt, hash) = hashed
                    .split_once('|')
                    .ok_or_else(|| bad("hashed host must be |1|salt|hash"))?;
                Hosts::Hashed {
                    salt: STANDARD
                        .decode(salt)
                        .map_err(|_| bad("bad hashed-host salt"))?,
                    hash: STANDARD
                        .decode(hash)
                        .map_err(|_| bad("bad hashed-host hash"))?,
                }
            } else {
                Hosts::Patterns(
                    first
                        .split(',')
                        .filter(|p| !p.is_empty())
                        .map(|p| match p.strip_prefix('!') {
                            Some(neg) => (true, neg.to_ascii_lowercase()),
                            None => (false, p.to_ascii_lowercase()),
                        })
                        .collect(),
                )
            };
            entries.push(Entry { marker, hosts, key });
        }
        Ok(Self { entries })
    }

    /// Looks up `host_name` (`host` or `[host]:port`, as [`super::endpoint::Endpoint`] renders
    /// it) with the server's raw host key blob (SSH wire format).
    pub(crate) fn check(&self, host_name: &str, key: &[u8]) -> Verdict {
        let host_name = host_name.to_ascii_lowercase();
        let mut other_types = Vec::new();
        for entry in self.entries.iter().filter(|e| e.matches(&host_name)) {
            match entry.marker {
                Marker::Revoked if entry.key == key => return Verdict::Revoked,
                Marker::Revoked | Marker::CertAuthority => {}
                Marker::None if entry.key == key => {
                    // Keep scanning: a matching @revoked line later still wins.
                    if !self
                        .entries
                        .iter()
                        .any(|e| e.marker == Marker::Revoked && e.key == key)
                    {
                        return Verdict::Trusted;
                    }
                    return Verdict::Revoked;
                }
                Marker::None => other_types.push(key_type(&entry.key)),
            }
        }
        if self
            .entries
            .iter()
            .any(|e| e.marker == Marker::Revoked && e.key == key)
        {
            return Verdict::Revoked;
        }
        if other_types.is_empty() {
            Verdict::Unknown
        } else {
            Verdict::Mismatch(other_types)
        }
    }
}

impl Entry {
    fn matches(&self, host_name: &str) -> bool {
        match &self.hosts {
            Hosts::Hashed { salt, hash } => {
                let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, salt);
                ring::hmac::verify(&key, host_name.as_bytes(), hash).is_ok()
            }
            Hosts::Patterns(patterns) => {
                let mut positive = false;
                for (negated, pattern) in patterns {
                    if wildcard_match(pattern.as_bytes(), host_name.as_bytes()) {
                        if *negated {
                            return false;
                        }
                        positive = true;
                    }
                }
                positive
            }
        }
    }
}

/// `*` and `?` glob matching, as in OpenSSH host patterns.
fn wildcard_match(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.first(), text.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            wildcard_match(&pattern[1..], text)
                || (!text.is_empty() && wildcard_match(pattern, &text[1..]))
        }
        (Some(b'?'), Some(_)) => wildcard_match(&pattern[1..], &text[1..]),
        (Some(p), Some(t)) if p == t => wildcard_match(&pattern[1..], &text[1..]),
        _ => false,
    }
}

/// The key type named inside an SSH public key blob (`ssh-ed25519`, `ssh-rsa`, ...).
pub(crate) fn key_type(blob: &[u8]) -> String {
    let len = blob
        .get(..4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize);
    len.and_then(|len| blob.get(4..4 + len))
        .and_then(|name| std::str::from_utf8(name).ok())
        .map_or_else(|| "unknown".to_owned(), str::to_owned)
}

/// `SHA256:<base64>` fingerprint of a key blob, as `ssh-keygen -l` prints it.
pub(crate) fn fingerprint(blob: &[u8]) -> String {
    format!("SHA256:{}", STANDARD_NO_PAD.encode(Sha256::digest(blob)))
}

/// The `known_hosts` line that would trust `blob` for `host_name`.
pub(crate) fn line_for(host_name: &str, blob: &[u8]) -> String {
    format!("{host_name} {} {}", key_type(blob), STANDARD.encode(blob))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A syntactically valid ed25519 public key blob with a recognisable body.
    fn blob(fill: u8) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&11u32.to_be_bytes());
        b.extend_from_slice(b"ssh-ed25519");
        b.extend_from_slice(&32u32.to_be_bytes());
        b.extend_from_slice(&[fill; 32]);
        b
    }

    fn line(hosts: &str, fill: u8) -> String {
        format!("{hosts} ssh-ed25519 {}", STANDARD.encode(blob(fill)))
    }

    fn hashed(host: &str, salt: &[u8]) -> String {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, salt);
        let tag = ring::hmac::sign(&key, host.as_bytes());
        format!(
            "|1|{}|{}",
            STANDARD.encode(salt),
            STANDARD.encode(tag.as_ref())
        )
    }

    #[test]
    fn lookups() {
        let text = [
            "# comment".to_owned(),
            String::new(),
            line("github.com,140.82.112.3", 1),
            line("[127.0.0.1]:2222", 2),
            line("*.example.com,!evil.example.com", 3),
            line(&hashed("[10.0.0.1]:2200", b"0123456789abcdefghij"), 4),
            format!("@revoked {}", line("*", 5)),
            format!("@cert-authority {}", line("*.corp", 6)),
        ]
        .join("\n");
        let kh = KnownHosts::parse(&text).unwrap();
        let cases = [
            ("github.com", 1, Verdict::Trusted),
            ("GitHub.com", 1, Verdict::Trusted),
            ("140.82.112.3", 1, Verdict::Trusted),
            (
                "github.com",
                2,
                Verdict::Mismatch(vec!["ssh-ed25519".to_owned()]),
            ),
            ("[127.0.0.1]:2222", 2, Verdict::Trusted),
            ("127.0.0.1", 2, Verdict::Unknown),
            ("[127.0.0.1]:2223", 2, Verdict::Unknown),
            ("git.example.com", 3, Verdict::Trusted),
            ("evil.example.com", 3, Verdict::Unknown),
            ("[10.0.0.1]:2200", 4, Verdict::Trusted),
            ("[10.0.0.1]:2201", 4, Verdict::Unknown),
            ("anything", 5, Verdict::Revoked),
            ("host.corp", 6, Verdict::Unknown),
        ];
        for (host, fill, want) in cases {
            assert_eq!(kh.check(host, &blob(fill)), want, "{host} key {fill}");
        }
    }

    #[test]
    fn malformed_lines_are_errors_with_line_numbers() {
        let cases = [
            (
                "host ssh-ed25519",
                "known_hosts line 1: expected: [marker] hosts key-type base64-key [comment]",
            ),
            (
                "\nhost ssh-ed25519 !!!notbase64",
                "known_hosts line 2: the key is not valid base64",
            ),
            (
                "@bogus host ssh-ed25519 AAAA",
                "known_hosts line 1: unknown marker",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(
                KnownHosts::parse(text).map_err(|e| e.to_string()),
                Err(want.to_owned()),
                "{text}"
            );
        }
    }

    #[test]
    fn describes_keys() {
        let b = blob(7);
        assert_eq!(key_type(&b), "ssh-ed25519");
        assert_eq!(key_type(&[0, 0]), "unknown");
        assert_eq!(
            line_for("[127.0.0.1]:2222", &b),
            format!("[127.0.0.1]:2222 ssh-ed25519 {}", STANDARD.encode(&b))
        );
        // ssh-keygen prints unpadded base64 of the SHA-256 of the blob (43 characters).
        let fp = fingerprint(&b);
        assert_eq!(
            (fp.len(), fp.starts_with("SHA256:"), fp.ends_with('=')),
            (50, true, false)
        );
    }
}
