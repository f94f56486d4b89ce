//! Secrets and redaction: the [`Secret`] wrapper whose `Debug` never shows its value, and the
//! [`Redactor`] that scrubs credentials (userinfo in URLs, passwords, tokens, keys) out of every
//! message before it reaches an error or a log line. Pure; no I/O.

use std::fmt;

/// The replacement text for anything redacted.
pub(crate) const REDACTED: &str = "***";

/// A secret string (password, token, private key, passphrase). `Debug` and `Display` print
/// `***`; the value is only reachable through [`Secret::expose`].
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value. Never log or format it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({REDACTED})")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Scrubs known secret values and URL userinfo out of free text (libgit2 messages, server
/// replies).
#[derive(Clone, Default)]
pub(crate) struct Redactor {
    secrets: Vec<String>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Redactor({} secrets)", self.secrets.len())
    }
}

/// Secrets shorter than this are not searched for as substrings of messages (a one-letter
/// password would otherwise shred every message); they still never enter a message because
/// nothing formats them.
const MIN_SECRET_LEN: usize = 4;

impl Redactor {
    /// Adds a secret. Multi-line secrets (keys) are also added line by line.
    pub(crate) fn add(&mut self, secret: &str) {
        let secret = secret.trim();
        if secret.len() >= MIN_SECRET_LEN {
            self.secrets.push(secret.to_owned());
        }
        if secret.contains('\n') {
            for line in secret.lines() {
                let line = line.trim();
                if line.len() >= 16 && !line.starts_with("-----") {
                    self.secrets.push(line.to_owned());
                }
            }
        }
        // Longest first so that a secret containing another is replaced whole.
        self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        self.secrets.dedup();
    }

    /// `text` with every known secret and every URL userinfo replaced by `***`.
    pub(crate) fn redact(&self, text: &str) -> String {
        self.redact_secrets(&redact_url_userinfo(text))
    }

    /// `text` with every known secret replaced by `***` (URL userinfo is kept: for URLs known
    /// to carry no password, where the user name helps the reader).
    pub(crate) fn redact_secrets(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), REDACTED);
            }
        }
        out
    }
}

/// Replaces the userinfo of every `scheme://userinfo@host` in `text` with `***`.
pub(crate) fn redact_url_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(idx) = rest.find("://") {
        let (before, after) = rest.split_at(idx + 3);
        out.push_str(before);
        // The authority ends at the first '/', '?', '#' or whitespace.
        let end = after
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace())
            .unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str(REDACTED);
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_and_display_hide_value() {
        let s = Secret::new("hunter2-password");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(s.expose(), "hunter2-password");
    }

    #[test]
    fn redacts_url_userinfo() {
        let cases = [
            (
                "failed for https://user:pa55@git.example.com/repo.git: 401",
                "failed for https://***@git.example.com/repo.git: 401",
            ),
            (
                "ssh://git@host:22/x and http://a:b@c",
                "ssh://***@host:22/x and http://***@c",
            ),
            ("https://host/path@v1", "https://host/path@v1"),
            ("no url here", "no url here"),
            ("trailing ://", "trailing ://"),
        ];
        for (input, want) in cases {
            assert_eq!(redact_url_userinfo(input), want, "{input}");
        }
    }

    #[test]
    fn redacts_known_secrets_and_key_lines() {
        let mut r = Redactor::default();
        r.add("s3cr3t-token");
        r.add("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAE\n-----END OPENSSH PRIVATE KEY-----\n");
        r.add("ab"); // too short to search for
        let got = r.redact(
            "token s3cr3t-token rejected; key line b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAE; ab stays",
        );
        assert_eq!(got, "token *** rejected; key line ***; ab stays");
    }
}
