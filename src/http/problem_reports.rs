//! `/v1/problem-reports`: a station reports a situation the rules do not settle; the
//! provincial office acknowledges and answers it.

use std::collections::BTreeMap;

use aggregates::application::{Actor, ApplicationError};
use aggregates::problem_report::{ProblemCommand, ProblemReport};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Authenticated;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::record_checks::{execute, load_for_reader};
use super::supervision::{Params, invalid};
use super::{ApiJson, AppState, RequestId};
use super::{ApiQuery, Path};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportRequest {
    /// The situation, in at least 10 characters.
    pub situation: String,
    /// Matter code the situation comes closest to, if any.
    pub matter: Option<String>,
    pub date: Option<NaiveDate>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcknowledgementRequest {
    pub date: Option<NaiveDate>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerRequest {
    pub answer: String,
    /// A loaded policy version that settles the situation, if one does.
    pub policy_version: Option<String>,
    pub date: Option<NaiveDate>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemResponse {
    pub report_id: String,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub report: ProblemReport,
}

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct ProblemSummary {
    pub report_id: String,
    pub station_code: String,
    pub reporter: String,
    pub matter: Option<String>,
    pub situation: String,
    pub reported_on: NaiveDate,
    pub status: String,
    pub acknowledged_on: Option<NaiveDate>,
    pub answered_on: Option<NaiveDate>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemList {
    pub reports: Vec<ProblemSummary>,
}

fn not_found() -> ApiError {
    ApiError::NotFound {
        code: "problem_report_not_found",
        message: "problem report not found; check the report id".into(),
    }
}

/// Supervisors read every report; a station's officers read their station's.
fn may_read(actor: &Actor, station: &str) -> bool {
    actor.role.supervises() || actor.station == station
}

async fn run(
    state: &AppState,
    id: &str,
    command: ProblemCommand,
    request_id: &RequestId,
) -> ApiResult<Json<ProblemResponse>> {
    let actor = command.actor().clone();
    match execute::<ProblemReport>(state, id, command, &actor, request_id).await {
        Ok(report) => Ok(Json(ProblemResponse {
            report_id: id.to_string(),
            report,
        })),
        Err(ApiError::Application(ApplicationError::NotFound)) => Err(not_found()),
        Err(error) => Err(error),
    }
}

#[utoipa::path(post, path = "/v1/problem-reports", request_body = ReportRequest,
    responses((status = 201, body = ProblemResponse), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn report(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    request_id: RequestId,
    ApiJson(body): ApiJson<ReportRequest>,
) -> ApiResult<(StatusCode, Json<ProblemResponse>)> {
    let date = state.stated_date("date", body.date)?;
    let command = ProblemCommand::Report {
        actor,
        matter: body.matter,
        situation: body.situation,
        date,
    };
    let id = uuid::Uuid::now_v7().to_string();
    let response = run(&state, &id, command, &request_id).await?;
    Ok((StatusCode::CREATED, response))
}

#[utoipa::path(get, path = "/v1/problem-reports/{id}",
    responses((status = 200, body = ProblemResponse), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn show(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    Path(id): Path<String>,
) -> ApiResult<Json<ProblemResponse>> {
    let readable = |report: &ProblemReport| may_read(&actor, &report.station);
    let report = load_for_reader(&state, &actor, &id, readable, not_found).await?;
    Ok(Json(ProblemResponse {
        report_id: id,
        report,
    }))
}

#[utoipa::path(get, path = "/v1/problem-reports",
    params(("status" = Option<String>, Query, description = "reported, acknowledged or answered")),
    responses((status = 200, body = ProblemList), (status = 400, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiQuery(query): ApiQuery<BTreeMap<String, String>>,
) -> ApiResult<Json<ProblemList>> {
    let params = Params::new(query, &["status"])?;
    let status = params.text("status");
    const STATUSES: [&str; 3] = ["reported", "acknowledged", "answered"];
    if let Some(status) = &status
        && !STATUSES.contains(&status.as_str())
    {
        let message = format!(
            "status {status:?} is unknown; use one of {}",
            STATUSES.join(", ")
        );
        return Err(invalid("status", message));
    }
    let station = (!actor.role.supervises()).then(|| actor.station.clone());
    let reports = sqlx::query_as(
        "SELECT report_id, station_code, reporter, matter, situation, reported_on, status,
                acknowledged_on, answered_on
           FROM problem_reports
          WHERE ($1::text IS NULL OR station_code = $1) AND ($2::text IS NULL OR status = $2)
          ORDER BY reported_on, report_id",
    )
    .bind(station)
    .bind(status)
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(ProblemList { reports }))
}

#[utoipa::path(post, path = "/v1/problem-reports/{id}/acknowledgement", request_body = AcknowledgementRequest,
    responses((status = 200, body = ProblemResponse), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn acknowledge(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    request_id: RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AcknowledgementRequest>,
) -> ApiResult<Json<ProblemResponse>> {
    let date = state.stated_date("date", body.date)?;
    let command = ProblemCommand::Acknowledge { actor, date };
    run(&state, &id, command, &request_id).await
}

#[utoipa::path(post, path = "/v1/problem-reports/{id}/answer", request_body = AnswerRequest,
    responses((status = 200, body = ProblemResponse), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn answer(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    request_id: RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AnswerRequest>,
) -> ApiResult<Json<ProblemResponse>> {
    let date = state.stated_date("date", body.date)?;
    let command = ProblemCommand::Answer {
        actor,
        answer: body.answer,
        policy_version: body.policy_version,
        date,
    };
    run(&state, &id, command, &request_id).await
}
