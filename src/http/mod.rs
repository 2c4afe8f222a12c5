//! The HTTP API: JSON under `/v1`, bearer tokens, one error shape.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, FixedOffset, NaiveDate};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;

use crate::exchange::ExchangeStores;
use crate::store::ApplicationStore;

pub mod applications;
mod auth;
pub mod error;
pub mod exchange;
pub mod inspections;
pub mod ledger;
mod openapi;
pub mod problem_reports;
pub mod record_check_notices;
pub mod record_checks;
pub mod record_reads;
pub mod records;
pub mod supervision;
pub mod training;
pub mod unit_visits;

use error::ApiError;

/// Largest request body accepted; an application is a few kilobytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// State shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub applications: Arc<ApplicationStore>,
    pub exchange: Arc<ExchangeStores>,
    tokens: Arc<auth::TokenCache>,
    backdate_days: u32,
    /// The sealer's last failure, `None` while it seals; absent when the server does not seal.
    pub ledger_failure: Option<tokio::sync::watch::Receiver<Option<String>>>,
}

impl AppState {
    pub fn new(pool: PgPool, applications: ApplicationStore) -> Self {
        let policies = applications.services().policies.clone();
        AppState {
            exchange: Arc::new(ExchangeStores::new(&pool, policies)),
            pool,
            applications: Arc::new(applications),
            tokens: Arc::default(),
            backdate_days: 7,
            ledger_failure: None,
        }
    }

    /// Reports the sealer's failures through `/health`.
    pub fn with_ledger_failure(
        mut self,
        failure: tokio::sync::watch::Receiver<Option<String>>,
    ) -> Self {
        self.ledger_failure = Some(failure);
        self
    }

    /// Sets how many days before today a command may date what it records.
    pub fn with_backdate_days(mut self, days: u32) -> Self {
        self.backdate_days = days;
        self
    }

    /// Returns the date a command states, or today in China Standard Time when it states
    /// none.
    ///
    /// # Errors
    /// Rejects a date after today, and one earlier than the server's backdating allowance:
    /// a decision dated into another policy period (the transition window, say) must be the
    /// real one, so it cannot be moved freely.
    pub fn stated_date(&self, field: &str, date: Option<NaiveDate>) -> Result<NaiveDate, ApiError> {
        let today = today_in_china();
        let Some(date) = date else {
            return Ok(today);
        };
        let earliest = today - chrono::Days::new(u64::from(self.backdate_days));
        let message = if date > today {
            format!(
                "{field} {date} is after today ({today}, China Standard Time); give the day it happened"
            )
        } else if date < earliest {
            format!(
                "{field} {date} is more than {} days before today; this server accepts dates from {earliest} (setting --backdate-days)",
                self.backdate_days
            )
        } else {
            return Ok(date);
        };
        Err(ApiError::BadRequest {
            status: axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            code: "date_out_of_range",
            field: Some(field.to_string()),
            message,
        })
    }

    /// Rejects a time after now, and one whose day in China Standard Time is outside the
    /// backdating allowance of [`AppState::stated_date`]: a receipt or delivery time decides
    /// whether feedback was on time, so it cannot be moved freely.
    pub fn stated_time(
        &self,
        field: &str,
        time: DateTime<FixedOffset>,
    ) -> Result<DateTime<FixedOffset>, ApiError> {
        if time > chrono::Utc::now() {
            return Err(ApiError::BadRequest {
                status: axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                code: "date_out_of_range",
                field: Some(field.to_string()),
                message: format!("{field} {time} is in the future; give the time it happened"),
            });
        }
        let day = (time.naive_utc() + chrono::Duration::hours(8)).date();
        self.stated_date(field, Some(day))?;
        Ok(time)
    }
}

/// Routes of inspections, training records and problem reports.
fn oversight_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/inspections",
            post(inspections::open).get(inspections::list),
        )
        .route("/v1/inspections/{id}", get(inspections::show))
        .route("/v1/notices", get(inspections::notices))
        .route(
            "/v1/inspections/{id}/findings",
            post(inspections::record_finding),
        )
        .route(
            "/v1/inspections/{id}/notices",
            post(inspections::publish_notice),
        )
        .route(
            "/v1/inspections/{id}/rectification",
            post(inspections::require_rectification),
        )
        .route(
            "/v1/inspections/{id}/rectification/report",
            post(inspections::report_rectification),
        )
        .route(
            "/v1/inspections/{id}/rectification/verification",
            post(inspections::verify_rectification),
        )
        .route("/v1/inspections/{id}/closing", post(inspections::close))
        .route(
            "/v1/training-records",
            post(training::record).get(training::coverage),
        )
        .route(
            "/v1/problem-reports",
            post(problem_reports::report).get(problem_reports::list),
        )
        .route("/v1/problem-reports/{id}", get(problem_reports::show))
        .route(
            "/v1/problem-reports/{id}/acknowledgement",
            post(problem_reports::acknowledge),
        )
        .route(
            "/v1/problem-reports/{id}/answer",
            post(problem_reports::answer),
        )
}

/// Builds the router with all routes and middleware.
pub fn router(state: AppState) -> Router {
    let header = axum::http::HeaderName::from_static("x-request-id");
    Router::new()
        .route("/health", get(records::health))
        .route(
            "/v1/openapi.json",
            get(|| async { Json(openapi::ApiDoc::openapi()) }),
        )
        .route("/v1/policy", get(records::policy))
        .route("/v1/applications", post(applications::submit))
        .route("/v1/applications/{id}", get(applications::show))
        .route("/v1/applications/{id}/history", get(records::history))
        .route(
            "/v1/applications/{id}/refusal-notice",
            get(records::refusal_notice),
        )
        .route(
            "/v1/applications/{id}/override",
            post(applications::override_screening),
        )
        .route("/v1/applications/{id}/refusal", post(applications::refuse))
        .route(
            "/v1/applications/{id}/evidence",
            post(applications::record_evidence),
        )
        .route(
            "/v1/applications/{id}/signature",
            post(applications::sign_stub),
        )
        .route(
            "/v1/applications/{id}/approval",
            post(applications::approve),
        )
        .route("/v1/applications/{id}/issuance", post(applications::issue))
        .route(
            "/v1/applications/{id}/withdrawal",
            post(applications::withdraw),
        )
        .route("/v1/certificates/{number}", get(records::check_certificate))
        .merge(record_check_routes())
        .merge(unit_visit_routes())
        .route(
            "/v1/ledger/checkpoints/latest",
            get(ledger::latest_checkpoint),
        )
        .route("/v1/ledger/applications/{id}/receipt", get(ledger::receipt))
        .route("/v1/ledger/consistency", get(ledger::consistency))
        .route("/v1/supervision/findings", get(supervision::findings))
        .route("/v1/supervision/lag", get(supervision::lag))
        .route(
            "/v1/supervision/applications/{id}/replay",
            get(supervision::replay),
        )
        .route("/v1/supervision/trail", get(supervision::trail::trail))
        .route(
            "/v1/supervision/overrides",
            get(supervision::overrides::overrides),
        )
        .route(
            "/v1/supervision/compliance",
            get(supervision::compliance::compliance),
        )
        .merge(exchange_routes())
        .merge(oversight_routes())
        .fallback(|| async {
            ApiError::NotFound {
                code: "route_not_found",
                message: "no such endpoint; see /v1/openapi.json".into(),
            }
        })
        .method_not_allowed_fallback(|| async {
            ApiError::BadRequest {
                status: axum::http::StatusCode::METHOD_NOT_ALLOWED,
                code: "method_not_allowed",
                field: None,
                message: "this endpoint does not take this method; see /v1/openapi.json".into(),
            }
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(PropagateRequestIdLayer::new(header.clone()))
        .layer(TraceLayer::new_for_http())
        .layer(SetRequestIdLayer::new(header, MakeRequestUuid))
        .with_state(state)
}

/// Routes of unit verification visits (`/v1/unit-visits`).
fn unit_visit_routes() -> Router<AppState> {
    Router::new()
        .route("/v1/unit-visits", post(unit_visits::register))
        .route("/v1/record-reads", get(record_reads::read_log))
        .route("/v1/unit-visits/{id}", get(unit_visits::show))
        .route(
            "/v1/unit-visits/{id}/findings",
            post(unit_visits::record_findings),
        )
        .route(
            "/v1/unit-visits/{id}/certificate-approval",
            post(unit_visits::approve_certificate),
        )
        .route(
            "/v1/unit-visits/{id}/certificate",
            post(unit_visits::issue_certificate),
        )
        .route("/v1/unit-visits/{id}/results", get(unit_visits::results))
        .route("/v1/unit-visits/{id}/reads", get(unit_visits::reads))
}

/// Routes of no-criminal-record applications (`/v1/record-checks`).
fn record_check_routes() -> Router<AppState> {
    let base = "/v1/record-checks/{id}";
    Router::new()
        .route("/v1/record-checks", post(record_checks::submit))
        .route(
            "/v1/record-checks/certificates/{number}",
            get(record_check_notices::check_certificate),
        )
        .route(base, get(record_checks::show))
        .route(&format!("{base}/checks"), post(record_checks::check_source))
        .route(&format!("{base}/approval"), post(record_checks::approve))
        .route(&format!("{base}/issuance"), post(record_checks::issue))
        .route(&format!("{base}/refusal"), post(record_checks::refuse))
        .route(
            &format!("{base}/refusal-notice"),
            get(record_check_notices::refusal_notice),
        )
        .route(
            &format!("{base}/objection"),
            post(record_checks::file_objection),
        )
        .route(
            &format!("{base}/objection/extension"),
            post(record_checks::extend_objection),
        )
        .route(
            &format!("{base}/objection/rechecks"),
            post(record_checks::recheck),
        )
        .route(
            &format!("{base}/objection/answer"),
            post(record_checks::answer_objection),
        )
        .route(&format!("{base}/results"), get(record_checks::results))
        .route(&format!("{base}/reads"), get(record_check_notices::reads))
}

/// Routes of information exchange. The request upload streams its body, so the default body
/// limit does not apply to it; `exchange::batch::MAX_BATCH_BYTES` bounds it instead.
fn exchange_routes() -> Router<AppState> {
    use exchange::requests;
    Router::new()
        .route(
            "/v1/exchange/departments",
            post(exchange::register_department),
        )
        .route(
            "/v1/exchange/agreements",
            post(exchange::register_agreement),
        )
        .route(
            "/v1/exchange/agreements/{id}",
            get(exchange::show_agreement),
        )
        .route("/v1/exchange/units/{unit}", get(exchange::show_unit))
        .route(
            "/v1/exchange/units/{unit}/responsible-officer",
            post(exchange::designate),
        )
        .route("/v1/exchange/requests", post(requests::receive))
        .route("/v1/exchange/requests/{id}", get(requests::show))
        .route(
            "/v1/exchange/requests/{id}/verification",
            post(requests::verify),
        )
        .route(
            "/v1/exchange/requests/{id}/results.csv",
            get(requests::results),
        )
        .route(
            "/v1/exchange/requests/{id}/feedback",
            post(requests::deliver_feedback),
        )
        .route(
            "/v1/exchange/requests/{id}/handover",
            post(requests::prepare_handover),
        )
        .route(
            "/v1/exchange/requests/{id}/handover/acknowledgements",
            post(requests::acknowledge_handover),
        )
        .route("/v1/exchange/requests/{id}/filing", post(requests::file))
}

/// Serves the API on `listener` until `shutdown` completes, finishing in-flight requests.
///
/// # Errors
/// Fails when the listener fails.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let address: SocketAddr = listener.local_addr()?;
    tracing::info!(%address, "HTTP server listening");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .context("HTTP server failed")?;
    tracing::info!(%address, "HTTP server stopped");
    Ok(())
}

/// Today's date in China Standard Time (UTC+8), the default date of a decision.
pub fn today_in_china() -> NaiveDate {
    (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive()
}

/// The request id that `SetRequestIdLayer` assigned, or the client's own `x-request-id`.
pub struct RequestId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let id = parts
            .headers
            .get("x-request-id")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_string();
        Ok(RequestId(id))
    }
}

/// Path parameter whose rejections use the API's error shape. A segment that is not UTF-8, or
/// that contains the NUL character, which the events table cannot store, is rejected with 400
/// `invalid_text`.
///
/// It is named `Path` like axum's extractor, which is how utoipa recognises a path parameter
/// and documents it under the name the route gives it.
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let invalid = |message: String| ApiError::BadRequest {
            status: axum::http::StatusCode::BAD_REQUEST,
            code: "invalid_text",
            field: Some("path".into()),
            message,
        };
        if parts.uri.path().to_ascii_lowercase().contains("%00") {
            return Err(invalid(
                "the path contains a NUL character (%00); remove it from the id".into(),
            ));
        }
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(rejection) => Err(invalid(format!(
                "{}; an id in the path is UTF-8 text, percent-encoded where needed",
                rejection.body_text()
            ))),
        }
    }
}

/// Query string whose rejections use the API's error shape and name the parameter. A
/// percent-encoded value that is not UTF-8 is rejected, where axum's `Query` would store
/// replacement characters in its place.
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        if let Some(name) = parameter_not_utf8(query) {
            return Err(ApiError::BadRequest {
                status: axum::http::StatusCode::BAD_REQUEST,
                code: "invalid_text",
                message: format!(
                    "query parameter {name} is not UTF-8 text after percent-decoding; encode it as UTF-8"
                ),
                field: Some(name),
            });
        }
        if let Some(name) = parameter_with_nul(query) {
            return Err(ApiError::BadRequest {
                status: axum::http::StatusCode::BAD_REQUEST,
                code: "invalid_text",
                message: format!(
                    "query parameter {name} contains a NUL character (%00), which cannot be stored or searched for; remove it"
                ),
                field: Some(name),
            });
        }
        if let Some(name) = repeated_parameter(query) {
            return Err(ApiError::BadRequest {
                status: axum::http::StatusCode::BAD_REQUEST,
                code: "invalid_query",
                message: format!("query parameter {name} is given twice; give it once"),
                field: Some(name),
            });
        }
        let Query(value) = Query::<T>::try_from_uri(&parts.uri)?;
        Ok(ApiQuery(value))
    }
}

/// Returns the name of the first query parameter whose name or value does not decode to UTF-8.
fn parameter_not_utf8(query: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name_bytes = decode_component(name);
        let valid = std::str::from_utf8(&name_bytes).is_ok()
            && std::str::from_utf8(&decode_component(value)).is_ok();
        (!valid).then(|| String::from_utf8_lossy(&name_bytes).into_owned())
    })
}

/// Returns the name of the first query parameter whose name or value contains a NUL character.
fn parameter_with_nul(query: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name_bytes = decode_component(name);
        let has_nul = name_bytes.contains(&0) || decode_component(value).contains(&0);
        has_nul.then(|| String::from_utf8_lossy(&name_bytes).into_owned())
    })
}

/// Returns the name of the first query parameter given more than once. Without this check a
/// map of parameters would keep the last value silently.
fn repeated_parameter(query: &str) -> Option<String> {
    let mut seen = std::collections::HashSet::new();
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| decode_component(pair.split_once('=').map_or(pair, |(name, _)| name)))
        .map(|name| String::from_utf8_lossy(&name).into_owned())
        .find(|name| !seen.insert(name.clone()))
}

/// Decodes one name or value of a query string: `+` is a space, and `%XX` escapes are bytes.
fn decode_component(text: &str) -> Vec<u8> {
    percent_encoding::percent_decode_str(&text.replace('+', " ")).collect()
}

/// JSON body whose rejections use the API's error shape and name the field.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(request.headers()) {
            // Let axum reject the content type with its own error.
            let Json(value) = Json::<T>::from_request(request, state).await?;
            return Ok(ApiJson(value));
        }
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(JsonRejection::from)?;
        if let Some(field) = field_with_nul(&bytes) {
            return Err(nul_rejected(field));
        }
        let Json(value) = Json::<T>::from_bytes(&bytes)?;
        Ok(ApiJson(value))
    }
}

/// Rejects `text`, a value from the query string, when it contains the NUL character, which
/// the events table cannot store; the error names `field`.
pub(crate) fn reject_nul(field: &str, text: &str) -> error::ApiResult<()> {
    if text.contains('\0') {
        return Err(nul_rejected(field.to_string()));
    }
    Ok(())
}

fn nul_rejected(field: String) -> ApiError {
    ApiError::BadRequest {
        status: axum::http::StatusCode::BAD_REQUEST,
        code: "invalid_text",
        message: format!(
            "{field} contains the NUL character (\\u0000), which no record may hold; remove it"
        ),
        field: Some(field),
    }
}

/// Tells whether the request declares a JSON body, as axum's `Json` requires.
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(content_type) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let essence = content_type.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json") || essence.ends_with("+json")
}

/// Returns the path of a string, or object key, holding NUL, which PostgreSQL's JSON types
/// cannot store. Only bodies with the escape `\u0000` are parsed for it.
fn field_with_nul(bytes: &[u8]) -> Option<String> {
    if !bytes.windows(6).any(|window| window == b"\\u0000") {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    find_nul(&value, String::new())
}

fn find_nul(value: &serde_json::Value, path: String) -> Option<String> {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        serde_json::Value::String(text) if text.contains('\0') => Some(path),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(index, item)| find_nul(item, format!("{path}[{index}]"))),
        serde_json::Value::Object(map) => map.iter().find_map(|(key, item)| {
            if key.contains('\0') {
                return Some(join(&key.replace('\0', "\\u0000")));
            }
            find_nul(item, join(key))
        }),
        _ => None,
    }
}
