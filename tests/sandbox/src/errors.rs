//! `kind: Status` error bodies shaped like the real kube-apiserver's, and the plain-text
//! `404 page not found` answered for unknown paths.
//!
//! Shapes follow apimachinery `pkg/api/errors/errors.go` (NewNotFound, NewAlreadyExists,
//! NewConflict, NewInvalid, NewForbidden, NewApplyConflict) and
//! `apiserver/pkg/util/notfoundhandler`. This module depends on nothing else in the crate.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// An error answered to a client: either a `kind: Status` JSON body or the plain-text 404.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    /// A JSON `Status` body with this HTTP code.
    Status {
        /// HTTP status code (also `code` in the body).
        code: u16,
        /// `reason`, e.g. `NotFound`.
        reason: String,
        /// Human-readable `message`.
        message: String,
        /// `details` (name, group, kind, causes, retryAfterSeconds), or `None`.
        details: Option<Value>,
        /// Seconds for a `Retry-After` header, if any.
        retry_after: Option<u64>,
    },
    /// Plain text `404 page not found`, as the apiserver's not-found handler writes it.
    PlainNotFound,
}

/// Identifies the resource an error is about: `details.group`, `details.kind` (the plural) and the
/// qualified resource (`plural.group`) used in messages.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    /// API group ("" for core).
    pub group: &'a str,
    /// Plural resource name.
    pub plural: &'a str,
    /// Object name.
    pub name: &'a str,
}

impl Target<'_> {
    fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    fn details(&self) -> Value {
        let mut d = json!({"name": self.name, "kind": self.plural});
        if !self.group.is_empty() {
            d["group"] = json!(self.group);
        }
        d
    }
}

impl ApiError {
    /// Builds a Status error from its parts.
    pub fn status(
        code: u16,
        reason: &str,
        message: impl Into<String>,
        details: Option<Value>,
    ) -> Self {
        ApiError::Status {
            code,
            reason: reason.into(),
            message: message.into(),
            details,
            retry_after: None,
        }
    }

    /// 404 NotFound for an object.
    pub fn not_found(t: &Target<'_>) -> Self {
        Self::status(
            404,
            "NotFound",
            format!("{} \"{}\" not found", t.qualified(), t.name),
            Some(t.details()),
        )
    }

    /// 409 AlreadyExists.
    pub fn already_exists(t: &Target<'_>) -> Self {
        Self::status(
            409,
            "AlreadyExists",
            format!("{} \"{}\" already exists", t.qualified(), t.name),
            Some(t.details()),
        )
    }

    /// 409 Conflict for a stale resourceVersion (optimistic concurrency).
    pub fn conflict(t: &Target<'_>, why: &str) -> Self {
        Self::status(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{}\": {why}",
                t.qualified(),
                t.name
            ),
            Some(t.details()),
        )
    }

    /// 409 Conflict for a stale resourceVersion.
    pub fn stale(t: &Target<'_>) -> Self {
        Self::conflict(
            t,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 403 Forbidden for content in a terminating namespace.
    pub fn namespace_terminating(t: &Target<'_>, ns: &str) -> Self {
        let mut d = t.details();
        d["causes"] = json!([{"reason": "NamespaceTerminating", "message": format!("namespace {ns} is being terminated"), "field": "metadata.namespace"}]);
        Self::status(
            403,
            "Forbidden",
            format!(
                "{} \"{}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                t.qualified(),
                t.name
            ),
            Some(d),
        )
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::status(400, "BadRequest", message, None)
    }

    /// 405 MethodNotAllowed.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::status(405, "MethodNotAllowed", message, None)
    }

    /// 415 UnsupportedMediaType.
    pub fn unsupported_media_type(ct: &str) -> Self {
        Self::status(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {ct})"
            ),
            None,
        )
    }

    /// 500 InternalError.
    pub fn internal(message: impl Into<String>) -> Self {
        let m = message.into();
        Self::status(
            500,
            "InternalError",
            format!("Internal error occurred: {m}"),
            Some(json!({"causes": [{"message": m}]})),
        )
    }

    /// 422 Invalid with field causes. `kind` is the Kind (not the plural), as the real server does.
    pub fn invalid(group: &str, kind: &str, name: &str, causes: Vec<FieldError>) -> Self {
        let qualified = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let rendered: Vec<String> = causes.iter().map(|c| c.to_string()).collect();
        let joined = if rendered.len() == 1 {
            rendered.join("")
        } else {
            format!("[{}]", rendered.join(", "))
        };
        let mut details = json!({"name": name, "kind": kind, "causes": causes.iter().map(FieldError::cause).collect::<Vec<_>>()});
        if !group.is_empty() {
            details["group"] = json!(group);
        }
        Self::status(
            422,
            "Invalid",
            format!("{qualified} \"{name}\" is invalid: {joined}"),
            Some(details),
        )
    }

    /// The HTTP code of this error.
    pub fn code(&self) -> u16 {
        match self {
            ApiError::Status { code, .. } => *code,
            ApiError::PlainNotFound => 404,
        }
    }

    /// The JSON `Status` body (None for the plain-text 404).
    pub fn body(&self) -> Option<Value> {
        match self {
            ApiError::Status {
                code,
                reason,
                message,
                details,
                ..
            } => {
                let mut v = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": message, "reason": reason, "code": code});
                if let Some(d) = details {
                    v["details"] = d.clone();
                }
                Some(v)
            }
            ApiError::PlainNotFound => None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::PlainNotFound => {
                let mut r = (StatusCode::NOT_FOUND, "404 page not found\n").into_response();
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                r.headers_mut().insert(
                    "x-content-type-options",
                    HeaderValue::from_static("nosniff"),
                );
                r
            }
            ApiError::Status {
                code, retry_after, ..
            } => {
                let body = self.body().unwrap_or(Value::Null).to_string();
                let status =
                    StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let mut r = (status, body).into_response();
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                if let Some(s) = retry_after
                    && let Ok(h) = HeaderValue::from_str(&s.to_string())
                {
                    r.headers_mut().insert(header::RETRY_AFTER, h);
                }
                r
            }
        }
    }
}

/// One field-level validation error (apimachinery `field.Error`).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// `FieldValueRequired`, `FieldValueInvalid`, `FieldValueNotSupported`, `FieldValueForbidden`, ...
    pub reason: &'static str,
    /// Dotted field path; empty renders as `<nil>`.
    pub field: String,
    /// The error body, e.g. `Required value` or `Invalid value: "x": ...`.
    pub body: String,
}

impl FieldError {
    fn field_str(&self) -> &str {
        if self.field.is_empty() {
            "<nil>"
        } else {
            &self.field
        }
    }

    fn cause(&self) -> Value {
        json!({"reason": self.reason, "message": self.body, "field": self.field_str()})
    }

    /// `Required value`.
    pub fn required(field: impl Into<String>) -> Self {
        FieldError {
            reason: "FieldValueRequired",
            field: field.into(),
            body: "Required value".into(),
        }
    }

    /// `Invalid value: <v>: <detail>`.
    pub fn invalid(field: impl Into<String>, value: &Value, detail: &str) -> Self {
        FieldError {
            reason: "FieldValueInvalid",
            field: field.into(),
            body: format!("Invalid value: {}: {detail}", render_value(value)),
        }
    }

    /// `Forbidden: <detail>`.
    pub fn forbidden(field: impl Into<String>, detail: &str) -> Self {
        FieldError {
            reason: "FieldValueForbidden",
            field: field.into(),
            body: format!("Forbidden: {detail}"),
        }
    }

    /// `Unsupported value: <v>: supported values: ...`.
    pub fn not_supported(field: impl Into<String>, value: &Value, allowed: &[Value]) -> Self {
        let list: Vec<String> = allowed.iter().map(render_value).collect();
        FieldError {
            reason: "FieldValueNotSupported",
            field: field.into(),
            body: format!(
                "Unsupported value: {}: supported values: {}",
                render_value(value),
                list.join(", ")
            ),
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field_str(), self.body)
    }
}

/// Renders a value the way Go's `%#v`-ish field errors do: strings quoted, numbers bare.
pub fn render_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Null => "null".into(),
        Value::Object(_) => "\"object\"".into(),
        Value::Array(_) => "\"array\"".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_body_matches_apiserver_shape() {
        let e = ApiError::not_found(&Target {
            group: "fluxcd.controlplane.io",
            plural: "fluxinstances",
            name: "flux",
        });
        assert_eq!(
            e.body().unwrap(),
            json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                "message":"fluxinstances.fluxcd.controlplane.io \"flux\" not found","reason":"NotFound",
                "details":{"name":"flux","group":"fluxcd.controlplane.io","kind":"fluxinstances"},"code":404})
        );
    }

    #[test]
    fn invalid_joins_multiple_causes_in_brackets() {
        let e = ApiError::invalid(
            "g",
            "K",
            "n",
            vec![
                FieldError::required("spec.a"),
                FieldError::required("spec.b"),
            ],
        );
        assert_eq!(
            e.body().unwrap()["message"],
            json!("K.g \"n\" is invalid: [spec.a: Required value, spec.b: Required value]")
        );
    }
}
