//! The HTTP API: JSON under `/v1`, bearer tokens, one error shape.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::NaiveDate;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;

use crate::store::ApplicationStore;

pub mod applications;
mod auth;
pub mod error;
mod openapi;
pub mod record_check_notices;
pub mod record_checks;
pub mod records;

use error::ApiError;

/// Largest request body accepted; an application is a few kilobytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// State shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub applications: Arc<ApplicationStore>,
    tokens: Arc<auth::TokenCache>,
}

impl AppState {
    pub fn new(pool: PgPool, applications: ApplicationStore) -> Self {
        AppState {
            pool,
            applications: Arc::new(applications),
            tokens: Arc::default(),
        }
    }
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
        .fallback(|| async {
            ApiError::NotFound {
                code: "route_not_found",
                message: "no such endpoint; see /v1/openapi.json".into(),
            }
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(PropagateRequestIdLayer::new(header.clone()))
        .layer(TraceLayer::new_for_http())
        .layer(SetRequestIdLayer::new(header, MakeRequestUuid))
        .with_state(state)
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

/// JSON body whose rejections use the API's error shape and name the field.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Json(value) = Json::<T>::from_request(request, state).await?;
        Ok(ApiJson(value))
    }
}
