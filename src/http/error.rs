//! The API's one error shape and its mapping to HTTP, in one place.

use aggregates::application::ApplicationError;
use aggregates::exchange::ExchangeError;
use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cqrs_es::AggregateError;
use serde::Serialize;
use utoipa::ToSchema;

/// An error returned to a client. Rejected commands record nothing.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A rule of the application aggregate (400, 403, 404, 409 or 422 by variant).
    #[error(transparent)]
    Application(#[from] ApplicationError),
    /// A rule of an exchange aggregate (400, 403, 404, 409 or 422 by variant).
    #[error(transparent)]
    Exchange(#[from] ExchangeError),
    /// A CSV batch with invalid rows (400), each listed by line in `rows`.
    #[error("{message}")]
    InvalidRows {
        field: String,
        message: String,
        rows: Vec<crate::exchange::batch::RowError>,
    },
    /// Malformed input the aggregate never saw (400, or 413 for an oversized body).
    #[error("{message}")]
    BadRequest {
        status: StatusCode,
        code: &'static str,
        field: Option<String>,
        message: String,
    },
    /// No valid bearer token (401).
    #[error("{0}")]
    Unauthorized(&'static str),
    /// The resource does not exist (404).
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    /// The request conflicts with the current state (409).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// A rule outside the aggregate, such as an idempotency key reused for another body (422).
    #[error("{message}")]
    Rejected {
        code: &'static str,
        field: Option<String>,
        message: String,
    },
    /// Anything else (500). The cause is logged; the client sees an opaque message.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// The JSON body of every error.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code.
    pub code: String,
    pub message: String,
    /// The request field to correct, where the error concerns one.
    pub field: Option<String>,
    /// Each invalid row of an uploaded CSV, by line; present only for `invalid_rows`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<Vec<crate::exchange::batch::RowError>>,
}

/// Message of a command that other server processes beat to the record at every attempt.
const CONCURRENT_MODIFICATION: &str = "other server processes recorded commands on this record first, at every attempt to record this one; nothing was recorded, so send it again";

impl From<AggregateError<ApplicationError>> for ApiError {
    fn from(error: AggregateError<ApplicationError>) -> Self {
        match error {
            AggregateError::UserError(error) => ApiError::Application(error),
            AggregateError::AggregateConflict => ApiError::Conflict {
                code: "concurrent_modification",
                message: CONCURRENT_MODIFICATION.into(),
            },
            other => ApiError::Internal(anyhow::anyhow!("event store failed: {other}")),
        }
    }
}

impl From<AggregateError<ExchangeError>> for ApiError {
    fn from(error: AggregateError<ExchangeError>) -> Self {
        match error {
            AggregateError::UserError(error) => ApiError::Exchange(error),
            AggregateError::AggregateConflict => ApiError::Conflict {
                code: "concurrent_modification",
                message: CONCURRENT_MODIFICATION.into(),
            },
            other => ApiError::Internal(anyhow::anyhow!("event store failed: {other}")),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        ApiError::Internal(anyhow::Error::new(error).context("database query failed"))
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            let message = "request body is too large; the limit is 64 KiB".to_string();
            return ApiError::BadRequest {
                status,
                code: "body_too_large",
                field: None,
                message,
            };
        }
        let text = rejection.body_text();
        let field = field_of_rejection(&text);
        let text = with_hint(text, field.as_deref());
        let code = match rejection {
            JsonRejection::MissingJsonContentType(_) => "unsupported_media_type",
            JsonRejection::JsonSyntaxError(_) => "malformed_json",
            _ => "invalid_field",
        };
        let status = if code == "unsupported_media_type" {
            status
        } else {
            StatusCode::BAD_REQUEST
        };
        ApiError::BadRequest {
            status,
            code,
            field,
            message: text,
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        let text = rejection.body_text();
        // serde names the parameter as in "missing field `level`" or "duplicate field `purpose`".
        let field = text
            .split_once("field `")
            .and_then(|(_, tail)| tail.split_once('`'))
            .map(|(name, _)| name.to_string());
        ApiError::BadRequest {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_query",
            field,
            message: format!("{text}; /v1/openapi.json lists each endpoint's query parameters"),
        }
    }
}

/// Adds what to send instead where serde's message names only what went wrong.
fn with_hint(text: String, field: Option<&str>) -> String {
    if text.contains("expected struct") && field.is_none_or(|field| field == ".") {
        return format!(
            "{text}; the body must be a JSON object with the fields that /v1/openapi.json lists"
        );
    }
    let is_date = field.is_some_and(|field| field.ends_with("date"));
    if is_date && !text.contains("YYYY-MM-DD") {
        return format!("{text}; give the date as YYYY-MM-DD, such as 2026-11-03");
    }
    text
}

/// Extracts the field path axum reports, as in "…target type: unit.level: invalid type …".
/// A missing field is reported as "…missing field `matter`…" with the parent path before it; an
/// unknown field's path ends with its own name.
fn field_of_rejection(text: &str) -> Option<String> {
    let rest = text.split_once("target type: ")?.1;
    let (path, detail) = match rest.split_once(": ") {
        Some((path, detail)) if !path.contains(' ') => (Some(path), detail),
        _ => (None, rest),
    };
    let missing = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|marker| {
            let (_, tail) = detail.split_once(marker)?;
            tail.split_once('`').map(|(name, _)| name)
        });
    match (path, missing) {
        // An unknown field's path already ends with its name; a missing one's is the parent.
        (Some(path), Some(name)) if path == name || path.ends_with(&format!(".{name}")) => {
            Some(path.to_string())
        }
        (Some(path), Some(name)) if path != "." => Some(format!("{path}.{name}")),
        (_, Some(name)) => Some(name.to_string()),
        (Some(path), None) => Some(path.to_string()),
        (None, None) => None,
    }
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str, Option<String>) {
        match self {
            ApiError::Application(error) => {
                let status = match error {
                    ApplicationError::Invalid { .. } => StatusCode::BAD_REQUEST,
                    ApplicationError::Forbidden { .. } => StatusCode::FORBIDDEN,
                    ApplicationError::NotFound => StatusCode::NOT_FOUND,
                    ApplicationError::Conflict { .. } => StatusCode::CONFLICT,
                    ApplicationError::Rejected { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                };
                (status, error.code(), error.field().map(String::from))
            }
            ApiError::Exchange(error) => {
                let status = match error {
                    ExchangeError::Invalid { .. } => StatusCode::BAD_REQUEST,
                    ExchangeError::Forbidden { .. } => StatusCode::FORBIDDEN,
                    ExchangeError::NotFound { .. } => StatusCode::NOT_FOUND,
                    ExchangeError::Conflict { .. } => StatusCode::CONFLICT,
                    ExchangeError::Rejected { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                };
                (status, error.code(), error.field().map(String::from))
            }
            ApiError::InvalidRows { field, .. } => {
                (StatusCode::BAD_REQUEST, "invalid_rows", Some(field.clone()))
            }
            ApiError::BadRequest {
                status,
                code,
                field,
                ..
            } => (*status, code, field.clone()),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized", None),
            ApiError::NotFound { code, .. } => (StatusCode::NOT_FOUND, code, None),
            ApiError::Conflict { code, .. } => (StatusCode::CONFLICT, code, None),
            ApiError::Rejected { code, field, .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, code, field.clone())
            }
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error", None),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, field) = self.parts();
        let message = match &self {
            ApiError::Internal(cause) => {
                tracing::error!(cause = ?cause, "request failed");
                "internal error; the cause is logged on the server".to_string()
            }
            other => {
                tracing::debug!(code, field = field.as_deref(), "request rejected");
                other.to_string()
            }
        };
        let rows = match self {
            ApiError::InvalidRows { rows, .. } => Some(rows),
            _ => None,
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: code.to_string(),
                message,
                field,
                rows,
            },
        };
        (status, Json(body)).into_response()
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::field_of_rejection;

    #[test]
    fn rejection_field_is_extracted() {
        let text = "Failed to deserialize the JSON body into the target type: decision_date: input is out of range at line 1 column 20";
        assert_eq!(field_of_rejection(text).as_deref(), Some("decision_date"));
    }

    #[test]
    fn missing_field_is_named() {
        let text = "Failed to deserialize the JSON body into the target type: missing field `matter` at line 1 column 2";
        assert_eq!(field_of_rejection(text).as_deref(), Some("matter"));
    }

    #[test]
    fn nested_missing_field_keeps_its_path() {
        let text = "Failed to deserialize the JSON body into the target type: unit: missing field `level` at line 1 column 9";
        assert_eq!(field_of_rejection(text).as_deref(), Some("unit.level"));
    }

    #[test]
    fn nested_unknown_field_is_named_once() {
        let text = "Failed to deserialize the JSON body into the target type: unit.colour: unknown field `colour`, expected one of `name`, `level` at line 1 column 9";
        assert_eq!(field_of_rejection(text).as_deref(), Some("unit.colour"));
    }

    #[test]
    fn syntax_error_has_no_field() {
        let text = "Failed to parse the request body as JSON: expected value at line 1 column 1";
        assert_eq!(field_of_rejection(text), None);
    }
}
