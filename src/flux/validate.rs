//! Rules for values users type: Kubernetes names and quantities, URLs of sources and manifests,
//! Git branch names, paths inside a repository, Flux version constraints, kustomize patches and
//! environment variable names. Each rule returns `Err(reason)` with a sentence fragment saying
//! what is wrong and what a valid value looks like; the caller prefixes the attribute path and
//! the value (`namespace = "Flux-System": ...`), so every message says what, where and how to
//! fix it.
//!
//! These are the rules the API server, libgit2 or the operator would apply later — at apply
//! time, after other objects were written. Checking them when the configuration is validated
//! means a bad value changes nothing. Pure: no I/O, nothing else from this crate but
//! [`super::version`], [`super::duration`] and [`super::semantic`].

use serde_json::Value;

use super::version::{FluxVersion, VersionConstraint};

/// A lowercase RFC 1123 label (Namespace names, `sync.name`): at most 63 characters.
///
/// # Errors
///
/// The reason, naming the rule.
pub fn dns_label(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(
            "must not be empty; use a lowercase RFC 1123 label such as \"flux-system\"".into(),
        );
    }
    if name.len() > 63 {
        return Err(format!(
            "is {} characters long; a Kubernetes namespace or label name has at most 63",
            name.len()
        ));
    }
    if !label_chars_ok(name) {
        return Err(
            "is not a lowercase RFC 1123 label: use lowercase letters, digits and '-', starting \
             and ending with a letter or digit (e.g. \"flux-system\")"
                .into(),
        );
    }
    Ok(())
}

fn label_chars_ok(label: &str) -> bool {
    let bytes = label.as_bytes();
    !bytes.is_empty()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

/// A lowercase RFC 1123 subdomain (object names: Secrets, ResourceSets): at most 253
/// characters, dot-separated labels.
///
/// # Errors
///
/// The reason, naming the rule.
pub fn dns_subdomain(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty; a Kubernetes object needs a name".into());
    }
    if name.len() > 253 {
        return Err(format!(
            "is {} characters long; a Kubernetes object name has at most 253",
            name.len()
        ));
    }
    if !name.split('.').all(label_chars_ok) {
        return Err(
            "is not a lowercase RFC 1123 subdomain: use lowercase letters, digits, '-' and '.', \
             starting and ending with a letter or digit (e.g. \"tenants\" or \"team-a.apps\")"
                .into(),
        );
    }
    Ok(())
}

/// A Kubernetes resource quantity (`100m`, `2`, `1.5Gi`, `64Mi`, `1e3`).
///
/// # Errors
///
/// The reason, with examples.
pub fn quantity(text: &str) -> Result<(), String> {
    let reason = || {
        "is not a Kubernetes quantity: write a number with an optional suffix, e.g. \"500m\" or \
         \"2\" for CPU, \"64Mi\" or \"1Gi\" for memory and storage"
            .to_owned()
    };
    let body = text.strip_prefix(['+', '-']).unwrap_or(text);
    let digits_end = body
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(body.len());
    let (number, suffix) = body.split_at(digits_end);
    let dots = number.matches('.').count();
    if number.is_empty() || number == "." || dots > 1 {
        return Err(reason());
    }
    let suffix_ok = matches!(
        suffix,
        "" | "n"
            | "u"
            | "m"
            | "k"
            | "M"
            | "G"
            | "T"
            | "P"
            | "E"
            | "Ki"
            | "Mi"
            | "Gi"
            | "Ti"
            | "Pi"
            | "Ei"
    ) || suffix
        .strip_prefix(['e', 'E'])
        .map(|exp| exp.strip_prefix(['+', '-']).unwrap_or(exp))
        .is_some_and(|exp| !exp.is_empty() && exp.bytes().all(|b| b.is_ascii_digit()));
    if suffix_ok { Ok(()) } else { Err(reason()) }
}

/// A URL with one of `schemes` and a host, e.g. `https://example.com/install.yaml`.
///
/// # Errors
///
/// The reason: not a URL, another scheme, no host.
pub fn url_with_scheme(text: &str, schemes: &[&str]) -> Result<(), String> {
    let wanted = schemes
        .iter()
        .map(|s| format!("{s}://"))
        .collect::<Vec<_>>()
        .join(", ");
    if text.chars().any(char::is_whitespace) {
        return Err(format!(
            "is not a URL (it contains whitespace); expected a {wanted} URL"
        ));
    }
    let parsed = url::Url::parse(text)
        .map_err(|e| format!("is not a URL ({e}); expected a {wanted} URL"))?;
    if !schemes.contains(&parsed.scheme()) {
        return Err(format!(
            "has the scheme {:?}; expected a {wanted} URL",
            parsed.scheme()
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("has no host; expected a {wanted} URL"));
    }
    Ok(())
}

/// The URL of a Git repository: `http(s)://` or `ssh://` with a host, or the scp-like
/// `user@host:path` form.
///
/// # Errors
///
/// The reason, with the accepted forms.
pub fn git_url(text: &str) -> Result<(), String> {
    if let Some((user_host, path)) = scp_like(text) {
        if user_host.is_empty() || path.is_empty() {
            return Err(
                "is not a Git repository URL; use https://host/owner/repo.git or \
                 ssh://git@host/owner/repo.git"
                    .into(),
            );
        }
        return Ok(());
    }
    url_with_scheme(text, &["https", "http", "ssh"]).map_err(|reason| {
        format!("{reason} (a Git repository, e.g. https://host/owner/repo.git or ssh://git@host/owner/repo.git)")
    })
}

/// Whether a URL carries a password (or token) in its user info (`https://user:secret@host/`).
pub fn url_has_password(text: &str) -> bool {
    url::Url::parse(text).is_ok_and(|u| u.password().is_some())
}

/// `git@host:owner/repo.git` split into `git@host` and the path; `None` for anything with a
/// scheme.
fn scp_like(text: &str) -> Option<(&str, &str)> {
    if text.contains("://") || text.chars().any(char::is_whitespace) {
        return None;
    }
    let (user_host, path) = text.split_once(':')?;
    user_host.contains('@').then_some((user_host, path))
}

/// The URL of a `sync` source for its kind: GitRepository `http(s)://`/`ssh://` (the
/// GitRepository API's pattern), OCIRepository `oci://`, Bucket an endpoint host.
///
/// # Errors
///
/// The reason, with the accepted forms.
pub fn sync_url(kind: Option<&str>, text: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err("must not be empty; set the URL of the source".into());
    }
    match kind {
        Some("GitRepository") => url_with_scheme(text, &["https", "http", "ssh"]).map_err(|r| {
            format!("{r} (Flux's GitRepository accepts http://, https:// and ssh:// URLs)")
        }),
        Some("OCIRepository") => url_with_scheme(text, &["oci"])
            .map_err(|r| format!("{r} (e.g. oci://ghcr.io/owner/manifests)")),
        _ => {
            if text.chars().any(char::is_whitespace) {
                Err(
                    "contains whitespace; expected a bucket endpoint such as \"s3.amazonaws.com\""
                        .into(),
                )
            } else {
                Ok(())
            }
        }
    }
}

/// A non-empty value without whitespace (`sync.ref`: a Git ref, OCI tag or bucket name).
///
/// # Errors
///
/// The reason.
pub fn source_ref(kind: Option<&str>, text: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err(match kind {
            Some("GitRepository") => {
                "must not be empty; use a Git reference such as \"refs/heads/main\"".into()
            }
            Some("OCIRepository") => "must not be empty; use an OCI tag such as \"latest\"".into(),
            _ => "must not be empty; use the bucket name".into(),
        });
    }
    if text.chars().any(char::is_whitespace) {
        return Err("contains whitespace".into());
    }
    if kind == Some("GitRepository") && text.starts_with("refs/") && !ref_name_ok(text) {
        return Err("is not a valid Git reference name (see git check-ref-format)".into());
    }
    Ok(())
}

/// A path inside a source or repository: relative, not leaving it through `..`.
///
/// # Errors
///
/// The reason.
pub fn source_path(text: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err("must not be empty; use \".\" for the root of the source".into());
    }
    let mut depth: i64 = 0;
    for part in text.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return Err(
                        "leaves the source through \"..\"; use a path inside it, e.g. \
                         \"clusters/production\""
                            .into(),
                    );
                }
            }
            _ => depth += 1,
        }
    }
    Ok(())
}

/// A branch name as `git check-ref-format --branch` accepts it.
///
/// # Errors
///
/// The reason.
pub fn git_branch(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty; use a branch name such as \"main\"".into());
    }
    if name.starts_with('-')
        || name.starts_with("refs/")
        || !ref_name_ok(&format!("refs/heads/{name}"))
    {
        return Err(
            "is not a valid Git branch name: no spaces, '..', '~', '^', ':', '?', '*', '[', '\\', \
             '@{', no component starting with '.' or ending with \".lock\", no leading '-' or \
             trailing '/' or '.' (see git check-ref-format)"
                .into(),
        );
    }
    Ok(())
}

/// `git check-ref-format` for a full reference name.
fn ref_name_ok(name: &str) -> bool {
    if name.is_empty()
        || name == "@"
        || name.ends_with('/')
        || name.ends_with('.')
        || name.starts_with('/')
        || name.contains("..")
        || name.contains("@{")
        || name.contains("//")
    {
        return false;
    }
    let bad_char = |c: char| {
        c.is_ascii_control()
            || matches!(c, ' ' | '~' | '^' | ':' | '?' | '*' | '[' | '\\' | '\u{7f}')
    };
    if name.chars().any(bad_char) {
        return false;
    }
    name.split('/')
        .all(|part| !part.is_empty() && !part.starts_with('.') && !part.ends_with(".lock"))
}

/// A `distribution.version` constraint that some Flux 2 release can satisfy (`2.7.x`, `2.7.3`,
/// `>=2.6 <2.8`). The operator resolves it against the versions it ships; one that no 2.x
/// version satisfies would only fail there, after apply.
///
/// # Errors
///
/// The reason: does not parse, or matches no Flux 2 version.
pub fn flux_version(text: &str) -> Result<(), String> {
    let constraint = VersionConstraint::parse(text).map_err(|e| {
        format!(
            "is not a version constraint ({e}); use e.g. \"2.7.x\", \"2.7.3\" or \">=2.6 <2.8\""
        )
    })?;
    if !constraint.admits_between(&FluxVersion::new(2, 0, 0), &FluxVersion::new(3, 0, 0)) {
        return Err(
            "matches no Flux 2 release (the Flux Operator installs Flux 2.x); use e.g. \"2.7.x\", \
             \"2.7.3\" or \">=2.6 <2.8\""
                .into(),
        );
    }
    Ok(())
}

/// A kustomize patch: YAML holding an object (a strategic-merge patch) or a list of operations
/// (a JSON6902 patch, each with `op` and `path`).
///
/// # Errors
///
/// The reason: not YAML, or neither form.
pub fn kustomize_patch(text: &str) -> Result<(), String> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text)
        .map_err(|e| format!("is not valid YAML ({}); write the patch as a YAML object or a list of JSON6902 operations", first_line(&e.to_string())))?;
    let docs: Vec<&Value> = docs.iter().filter(|d| !d.is_null()).collect();
    match docs.as_slice() {
        [] => Err("is empty; write a strategic-merge patch (a YAML object) or a JSON6902 patch (a list of operations)".into()),
        [Value::Object(_)] => Ok(()),
        [Value::Array(ops)] => {
            for (i, op) in ops.iter().enumerate() {
                let ok = op.get("op").and_then(Value::as_str).is_some()
                    && op.get("path").and_then(Value::as_str).is_some();
                if !ok {
                    return Err(format!(
                        "is a list, but operation {i} is not a JSON6902 operation with \"op\" and \"path\""
                    ));
                }
            }
            Ok(())
        }
        [_] => Err("is a plain value, not a patch; write a strategic-merge patch (a YAML object with apiVersion, kind and metadata.name) or a JSON6902 patch (a list of operations)".into()),
        _ => Err("holds several YAML documents; write one patch per entry of patches".into()),
    }
}

/// A YAML stream of Kubernetes objects (operator manifests, ResourceSet templates once the
/// `<< >>` expressions are set aside): every document an object with `apiVersion` and `kind`.
/// Returns the objects.
///
/// # Errors
///
/// The reason: not YAML, a document that is not an object, or one without `apiVersion`/`kind`.
pub fn object_stream(text: &str) -> Result<Vec<Value>, String> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text)
        .map_err(|e| format!("is not valid YAML ({})", first_line(&e.to_string())))?;
    let mut objects = Vec::new();
    for (index, doc) in docs.into_iter().enumerate() {
        match doc {
            Value::Null => {}
            Value::Object(ref map) => {
                for field in ["apiVersion", "kind"] {
                    let present = map
                        .get(field)
                        .and_then(Value::as_str)
                        .is_some_and(|s| !s.is_empty());
                    if !present {
                        return Err(format!(
                            "document {} has no {field}; every document must be a Kubernetes object",
                            index + 1
                        ));
                    }
                }
                objects.push(doc);
            }
            _ => {
                return Err(format!(
                    "document {} is not a Kubernetes object (a YAML mapping with apiVersion, kind \
                     and metadata)",
                    index + 1
                ));
            }
        }
    }
    if objects.is_empty() {
        return Err("holds no Kubernetes object".into());
    }
    Ok(objects)
}

/// A ResourceSet `resourcesTemplate`: a Go text/template with `<< >>` delimiters whose output is
/// a YAML stream of objects. Without control actions (`range`, `if`, `with`, ...) the text must
/// already be a stream of objects once each `<< expression >>` stands for a plain value; with
/// them, only the delimiters are checked (the structure exists only after rendering).
///
/// # Errors
///
/// The reason: unbalanced delimiters, not YAML, or not objects.
pub fn resources_template(text: &str) -> Result<(), String> {
    let mut plain = String::with_capacity(text.len());
    let mut rest = text;
    let mut control = false;
    while let Some(start) = rest.find("<<") {
        plain.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find(">>") else {
            return Err("has a \"<<\" without its closing \">>\"".into());
        };
        let action = after[..end].trim_matches(|c: char| c == '-' || c.is_whitespace());
        let keyword = action.split_whitespace().next().unwrap_or_default();
        control |= matches!(
            keyword,
            "range"
                | "if"
                | "else"
                | "end"
                | "with"
                | "define"
                | "template"
                | "block"
                | "break"
                | "continue"
        ) || action.starts_with("/*")
            || action.contains(":=");
        plain.push_str("tmpl");
        rest = &after[end + 2..];
    }
    plain.push_str(rest);
    if control {
        return Ok(());
    }
    object_stream(&plain).map(|_| ())
}

/// An environment variable name as every Kubernetes version accepts it: letters, digits, `_`,
/// `-` and `.`, not starting with a digit.
///
/// # Errors
///
/// The reason.
pub fn env_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err("is not a valid environment variable name: use letters, digits, '_', '-' and '.', not starting with a digit (e.g. \"DEFAULT_SERVICE_ACCOUNT\")".into())
    }
}

/// One of `allowed` (an enumerated API field).
///
/// # Errors
///
/// The reason, listing the allowed values.
pub fn one_of(text: &str, allowed: &[&str]) -> Result<(), String> {
    if allowed.contains(&text) {
        Ok(())
    } else {
        Err(format!(
            "is not allowed; use one of {}",
            allowed
                .iter()
                .map(|v| format!("\"{v}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["flux-system", "a", "a1", &"a".repeat(63)] {
            assert_eq!(dns_label(ok), Ok(()), "{ok}");
        }
        for bad in ["", "Flux-System", "-a", "a-", "a_b", "a.b", &"a".repeat(64)] {
            assert!(dns_label(bad).is_err(), "{bad}");
        }
        for ok in ["tenants", "team-a.apps", "a"] {
            assert_eq!(dns_subdomain(ok), Ok(()), "{ok}");
        }
        for bad in ["", "bad_name", "Default", "a..b", ".a", &"a".repeat(254)] {
            assert!(dns_subdomain(bad).is_err(), "{bad}");
        }
        assert!(
            dns_label(&"a".repeat(64))
                .unwrap_err()
                .contains("64 characters")
        );
    }

    #[test]
    fn quantities() {
        for ok in [
            "100m", "2", "1.5Gi", "64Mi", "1e3", "0.5", "+1", "1E-3", "10Ki", ".5",
        ] {
            assert_eq!(quantity(ok), Ok(()), "{ok}");
        }
        for bad in [
            "two cores",
            "",
            "lots",
            "1.2.3",
            "10 Gi",
            "1GB",
            "ten gigs",
            "1e",
            ".",
        ] {
            assert!(quantity(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls() {
        assert_eq!(
            url_with_scheme("https://example.com/x.yaml", &["https", "http"]),
            Ok(())
        );
        for bad in [
            "ht!tp://exa mple",
            "not a url",
            "ftp://x/y",
            "https://",
            "example.com",
        ] {
            assert!(url_with_scheme(bad, &["https", "http"]).is_err(), "{bad}");
        }
        for ok in [
            "https://h/o/r.git",
            "ssh://git@h/o/r.git",
            "git@github.com:o/r.git",
            "http://127.0.0.1:1/f.git",
        ] {
            assert_eq!(git_url(ok), Ok(()), "{ok}");
        }
        for bad in ["not a url", "ftp://h/r", "git@:", "file:///tmp/x"] {
            assert!(git_url(bad).is_err(), "{bad}");
        }
        assert_eq!(sync_url(Some("OCIRepository"), "oci://ghcr.io/x"), Ok(()));
        assert!(sync_url(Some("OCIRepository"), "https://ghcr.io/x").is_err());
        assert!(sync_url(Some("GitRepository"), "not a url").is_err());
        assert!(sync_url(Some("GitRepository"), "git@github.com:o/r.git").is_err());
        assert_eq!(sync_url(Some("Bucket"), "s3.amazonaws.com"), Ok(()));
        assert!(sync_url(None, "").is_err());
    }

    #[test]
    fn refs_paths_branches() {
        assert_eq!(source_ref(Some("GitRepository"), "refs/heads/main"), Ok(()));
        assert!(source_ref(Some("GitRepository"), "").is_err());
        assert!(source_ref(Some("GitRepository"), "refs/heads/a..b").is_err());
        for ok in ["clusters/dev", ".", "./clusters/../clusters/dev"] {
            assert_eq!(source_path(ok), Ok(()), "{ok}");
        }
        for bad in ["../../etc", "", "a/../../b"] {
            assert!(source_path(bad).is_err(), "{bad}");
        }
        for ok in ["main", "feature/x", "release-1.2", "a.b"] {
            assert_eq!(git_branch(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "feat..x~^:",
            "a b",
            "-x",
            ".hidden",
            "x.lock",
            "x/",
            "a@{b",
            "refs/heads/x",
            "x.",
        ] {
            assert!(git_branch(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn versions() {
        for ok in ["2.7.x", "2.7.3", ">=2.6 <2.8", "2.x", "*", "~2.6"] {
            assert_eq!(flux_version(ok), Ok(()), "{ok}");
        }
        for bad in ["1.0", ">=2.8 <2.6", "3.0.x", "latest", ""] {
            assert!(flux_version(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn patches() {
        assert_eq!(
            kustomize_patch("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\n"),
            Ok(())
        );
        assert_eq!(kustomize_patch("- op: remove\n  path: /spec/x\n"), Ok(()));
        for bad in [
            "spec: [replicas",
            "make it faster",
            "",
            "- 1\n- 2",
            "a: 1\n---\nb: 2",
        ] {
            assert!(kustomize_patch(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn object_streams() {
        assert_eq!(
            object_stream("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n---\n")
                .map(|o| o.len()),
            Ok(1)
        );
        for bad in ["kind: [x", "just text", "a: 1", "", "---\n"] {
            assert!(object_stream(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn templates() {
        for ok in [
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: << inputs.tenant >>\n",
            "---\nkind: Namespace\napiVersion: v1\nmetadata: {name: << inputs.tenant >>}\n",
            "<<- range $t := inputs.tenants >>\nkind: [weird\n<<- end >>\n",
        ] {
            assert_eq!(resources_template(ok), Ok(()), "{ok}");
        }
        for bad in [
            "kind: [ConfigMap",
            "hello world",
            "name: << inputs.x",
            "a: 1",
        ] {
            assert!(resources_template(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn env_and_enums() {
        assert_eq!(env_name("DEFAULT_SERVICE_ACCOUNT"), Ok(()));
        assert!(env_name("1 BAD").is_err());
        assert_eq!(one_of("Exists", &["Exists", "Equal"]), Ok(()));
        assert_eq!(
            one_of("Maybe", &["Exists", "Equal"]),
            Err("is not allowed; use one of \"Exists\", \"Equal\"".into())
        );
    }
}
