//! Classification and rendering of failed Kubernetes API requests.
//!
//! kube 5 turns every 4xx/5xx answer into [`kube::Error::Api`] carrying the server's `Status`
//! (reason, message, causes). When the body is not a `Status` — the plain-text
//! `404 page not found` a real API server sends for a resource type that is not installed or not
//! yet Established — kube builds a `Status` whose reason is `"Failed to parse error data"`, and
//! its own `is_not_found()` is then false. The helpers here classify by HTTP code as well as by
//! reason, so that every 404 means "absent" to this crate.
//!
//! Pure functions over kube's error types; depends on nothing else in this crate.

use kube::core::Status;

/// The reason kube 5 puts into a `Status` it synthesised from a non-`Status` error body.
const UNPARSED_REASON: &str = "Failed to parse error data";

/// The API server's `Status` carried by `error`, if the server answered at all.
pub fn api_status(error: &kube::Error) -> Option<&Status> {
    match error {
        kube::Error::Api(status) => Some(status),
        _ => None,
    }
}

/// True when the server answered 404, whether with a `NotFound` Status (missing object or
/// namespace) or with a plain-text body (resource type not served).
pub fn is_not_found(error: &kube::Error) -> bool {
    api_status(error).is_some_and(|status| status.code == 404 || status.reason == "NotFound")
}

/// True when the server answered 404 for the resource *type* rather than for an object: the
/// plain-text `404 page not found` of an uninstalled (or not yet Established) custom resource.
/// A missing object or namespace comes back as a `NotFound` Status instead.
pub fn is_type_not_served(error: &kube::Error) -> bool {
    api_status(error).is_some_and(|status| status.code == 404 && status.reason != "NotFound")
}

/// True for 409 Conflict: a stale `resourceVersion` precondition or, on server-side apply
/// without `force`, a field-manager conflict.
pub fn is_conflict(error: &kube::Error) -> bool {
    api_status(error).is_some_and(|status| status.code == 409 && status.reason != "AlreadyExists")
}

/// True for errors that no retry will cure: the request was understood and refused
/// (400 BadRequest, 401 Unauthorized, 403 Forbidden, 405, 415, 422 Invalid).
pub fn is_permanent(error: &kube::Error) -> bool {
    api_status(error).is_some_and(|status| matches!(status.code, 400 | 401 | 403 | 405 | 415 | 422))
}

/// Renders an error for a human: the server's message with its reason and code, followed by
/// each cause (`field: message`); or the transport error text when the server never answered.
pub fn describe(error: &kube::Error) -> String {
    match api_status(error) {
        Some(status) => describe_status(status),
        None => error_chain(error),
    }
}

/// Renders a `Status` as `message (reason Reason, HTTP code)` plus its causes.
pub fn describe_status(status: &Status) -> String {
    let message = status.message.trim();
    let message = if message.is_empty() {
        "no message"
    } else {
        message
    };
    let mut text = if status.reason.is_empty() || status.reason == UNPARSED_REASON {
        format!("{message} (HTTP {})", status.code)
    } else {
        format!("{message} (reason {}, HTTP {})", status.reason, status.code)
    };
    if let Some(details) = &status.details {
        for cause in &details.causes {
            let what = if cause.field.is_empty() {
                cause.reason.as_str()
            } else {
                cause.field.as_str()
            };
            text.push_str(&format!("; {what}: {}", cause.message));
        }
    }
    text
}

/// The error's message followed by each of its sources, joined by `": "`.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::response::{StatusCause, StatusDetails};

    /// What kube 5 builds from the plain-text `404 page not found` body.
    fn plain_text_404() -> kube::Error {
        kube::Error::Api(
            Status::failure("404 page not found\n", UNPARSED_REASON)
                .with_code(404)
                .boxed(),
        )
    }

    fn object_not_found() -> kube::Error {
        kube::Error::Api(
            Status::failure(
                "fluxinstances.fluxcd.controlplane.io \"flux\" not found",
                "NotFound",
            )
            .with_code(404)
            .boxed(),
        )
    }

    fn field_conflict() -> kube::Error {
        kube::Error::Api(
            Status::failure(
                "Apply failed with 1 conflict: conflict with \"other\" using apps/v1: .spec.replicas",
                "Conflict",
            )
            .with_code(409)
            .with_details(StatusDetails {
                name: "flux-operator".into(),
                group: "apps".into(),
                kind: "deployments".into(),
                causes: vec![StatusCause {
                    reason: "FieldManagerConflict".into(),
                    message: "conflict with \"other\" using apps/v1".into(),
                    field: ".spec.replicas".into(),
                }],
                uid: String::new(),
                retry_after_seconds: 0,
            })
            .boxed(),
        )
    }

    #[test]
    fn plain_text_404_counts_as_not_found_although_kube_disagrees() {
        let error = plain_text_404();
        let status = api_status(&error).expect("an API status");
        assert!(!status.is_not_found(), "kube 5's own classification");
        assert!(is_not_found(&error));
        assert!(is_type_not_served(&error));
    }

    #[test]
    fn object_404_is_not_found_but_the_type_is_served() {
        let error = object_not_found();
        assert!(is_not_found(&error));
        assert!(!is_type_not_served(&error));
    }

    #[test]
    fn classification_table() {
        let already_exists = kube::Error::Api(
            Status::failure("x already exists", "AlreadyExists")
                .with_code(409)
                .boxed(),
        );
        let invalid = kube::Error::Api(
            Status::failure("x is invalid", "Invalid")
                .with_code(422)
                .boxed(),
        );
        let unavailable = kube::Error::Api(
            Status::failure("unavailable", "ServiceUnavailable")
                .with_code(503)
                .boxed(),
        );
        let transport = kube::Error::LinesCodecMaxLineLengthExceeded;
        // (name, error, not_found, conflict, permanent)
        let cases = [
            ("plain-text 404", plain_text_404(), true, false, false),
            ("object 404", object_not_found(), true, false, false),
            ("field conflict", field_conflict(), false, true, false),
            ("already exists", already_exists, false, false, false),
            ("invalid", invalid, false, false, true),
            ("unavailable", unavailable, false, false, false),
            ("transport", transport, false, false, false),
        ];
        for (name, error, not_found, conflict, permanent) in cases {
            assert_eq!(
                (
                    is_not_found(&error),
                    is_conflict(&error),
                    is_permanent(&error)
                ),
                (not_found, conflict, permanent),
                "{name}"
            );
        }
    }

    #[test]
    fn describe_quotes_message_reason_and_causes() {
        assert_eq!(
            describe(&field_conflict()),
            "Apply failed with 1 conflict: conflict with \"other\" using apps/v1: .spec.replicas \
             (reason Conflict, HTTP 409); .spec.replicas: conflict with \"other\" using apps/v1"
        );
        assert_eq!(describe(&plain_text_404()), "404 page not found (HTTP 404)");
        assert_eq!(
            describe(&kube::Error::LinesCodecMaxLineLengthExceeded),
            "Error finding newline character"
        );
    }
}
