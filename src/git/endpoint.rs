//! Repository URLs: parsing `https://`, `http://`, `ssh://` and scp-like `user@host:path` URLs
//! into the parts the transport checks need (scheme, user, host, port). Pure; no I/O.

use super::Error;
use super::redact::redact_url_userinfo;

/// The transport a repository URL selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scheme {
    Http,
    Https,
    Ssh,
}

/// A parsed repository URL. Never holds a password: URLs with one are rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub(crate) url: String,
    pub(crate) scheme: Scheme,
    pub(crate) user: Option<String>,
    pub(crate) host: String,
    pub(crate) port: Option<u16>,
}

impl Endpoint {
    pub(crate) fn parse(url: &str) -> Result<Self, Error> {
        let invalid = |reason: &str| Error::Url {
            url: redact_url_userinfo(url),
            reason: reason.to_owned(),
        };
        let url = url.trim();
        let (scheme, rest, scp) = if let Some((scheme, rest)) = url.split_once("://") {
            let scheme = match scheme.to_ascii_lowercase().as_str() {
                "https" => Scheme::Https,
                "http" => Scheme::Http,
                "ssh" => Scheme::Ssh,
                _ => return Err(invalid("the scheme must be https, http or ssh")),
            };
            (scheme, rest, false)
        } else if url.contains(':') && !url.starts_with('/') {
            (Scheme::Ssh, url, true)
        } else {
            return Err(invalid(
                "expected https://host/path, ssh://user@host[:port]/path or user@host:path",
            ));
        };
        let (authority, path) = if scp {
            // user@host:path — the first ':' not inside brackets ends the host.
            let split = if rest.starts_with('[') || rest.contains("@[") {
                rest.find("]:").map(|i| i + 1)
            } else {
                rest.find(':')
            };
            let Some(i) = split else {
                return Err(invalid("missing ':' between host and path"));
            };
            (&rest[..i], &rest[i + 1..])
        } else {
            match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, ""),
            }
        };
        if path.trim_matches('/').is_empty() {
            return Err(invalid("missing repository path"));
        }
        let (user, hostport) = match authority.rsplit_once('@') {
            Some((userinfo, hostport)) => {
                if userinfo.contains(':') {
                    return Err(invalid(
                        "the URL contains a password; give credentials in the authentication \
                         settings instead",
                    ));
                }
                if userinfo.is_empty() {
                    return Err(invalid("empty user name before '@'"));
                }
                (Some(userinfo.to_owned()), hostport)
            }
            None => (None, authority),
        };
        let (host, port) = if let Some(bracketed) = hostport.strip_prefix('[') {
            let Some((host, after)) = bracketed.split_once(']') else {
                return Err(invalid("unterminated '[' in host"));
            };
            let port = match after.strip_prefix(':') {
                Some(p) if !scp => Some(p),
                Some(_) => return Err(invalid("scp-like URLs cannot carry a port")),
                None if after.is_empty() => None,
                None => return Err(invalid("unexpected text after ']'")),
            };
            (host, port)
        } else {
            match hostport.rsplit_once(':') {
                Some((host, port)) if !scp => (host, Some(port)),
                _ => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err(invalid("missing host"));
        }
        let port = match port {
            None | Some("") => None,
            Some(p) => Some(
                p.parse::<u16>()
                    .map_err(|_| invalid("the port is not a number"))?,
            ),
        };
        Ok(Self {
            url: url.to_owned(),
            scheme,
            user,
            host: host.to_owned(),
            port,
        })
    }

    /// The port connected to: the explicit one, or the scheme's default.
    pub(crate) fn effective_port(&self) -> u16 {
        self.port.unwrap_or(match self.scheme {
            Scheme::Http => 80,
            Scheme::Https => 443,
            Scheme::Ssh => 22,
        })
    }

    /// The name this host is looked up by in `known_hosts`: `host`, or `[host]:port` for a port
    /// other than 22.
    pub(crate) fn known_hosts_name(&self) -> String {
        match self.effective_port() {
            22 => self.host.clone(),
            port => format!("[{}]:{port}", self.host),
        }
    }

    /// `host:port` for messages and for connecting.
    pub(crate) fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.effective_port())
        } else {
            format!("{}:{}", self.host, self.effective_port())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(
        url: &str,
        scheme: Scheme,
        user: Option<&str>,
        host: &str,
        port: Option<u16>,
    ) -> Endpoint {
        Endpoint {
            url: url.to_owned(),
            scheme,
            user: user.map(str::to_owned),
            host: host.to_owned(),
            port,
        }
    }

    #[test]
    fn parses_supported_urls() {
        let cases = [
            ep(
                "https://github.com/org/repo.git",
                Scheme::Https,
                None,
                "github.com",
                None,
            ),
            ep(
                "http://127.0.0.1:8080/r.git",
                Scheme::Http,
                None,
                "127.0.0.1",
                Some(8080),
            ),
            ep(
                "https://bot@host/r",
                Scheme::Https,
                Some("bot"),
                "host",
                None,
            ),
            ep(
                "ssh://git@127.0.0.1:2222/srv/r.git",
                Scheme::Ssh,
                Some("git"),
                "127.0.0.1",
                Some(2222),
            ),
            ep("ssh://[::1]:22/r.git", Scheme::Ssh, None, "::1", Some(22)),
            ep(
                "git@github.com:org/repo.git",
                Scheme::Ssh,
                Some("git"),
                "github.com",
                None,
            ),
        ];
        for want in cases {
            let got = Endpoint::parse(&want.url).map_err(|e| e.to_string());
            assert_eq!(got, Ok(want.clone()), "{}", want.url);
        }
    }

    #[test]
    fn rejects_bad_urls_without_leaking_passwords() {
        let cases = [
            (
                "https://user:hunter2@host/r.git",
                "invalid repository URL https://***@host/r.git: the URL contains a password; give credentials in the authentication settings instead",
            ),
            (
                "ftp://host/r",
                "invalid repository URL ftp://host/r: the scheme must be https, http or ssh",
            ),
            (
                "https://host",
                "invalid repository URL https://host: missing repository path",
            ),
            (
                "ssh://host:abc/r",
                "invalid repository URL ssh://host:abc/r: the port is not a number",
            ),
            (
                "/local/path",
                "invalid repository URL /local/path: expected https://host/path, ssh://user@host[:port]/path or user@host:path",
            ),
        ];
        for (url, want) in cases {
            let got = Endpoint::parse(url).map_err(|e| e.to_string());
            assert_eq!(got, Err(want.to_owned()), "{url}");
        }
    }

    #[test]
    fn known_hosts_names() {
        let cases = [
            ("ssh://git@host/r", "host", "host:22"),
            (
                "ssh://git@127.0.0.1:2222/r",
                "[127.0.0.1]:2222",
                "127.0.0.1:2222",
            ),
            ("git@host:r", "host", "host:22"),
        ];
        for (url, name, authority) in cases {
            let e = Endpoint::parse(url).unwrap();
            assert_eq!(
                (e.known_hosts_name().as_str(), e.authority().as_str()),
                (name, authority),
                "{url}"
            );
        }
    }
}
