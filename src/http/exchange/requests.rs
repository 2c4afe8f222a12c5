//! `/v1/exchange/requests`: receipt of a request with its subject batch, verification,
//! feedback with its timeliness, handover and filing.

use aggregates::application::Actor;
use aggregates::exchange::ExchangeError;
use aggregates::exchange::request::{
    AgreementTerms, ExchangeRequest, HandoverParty, Material, RequestAction, RequestCommand,
    check_receipt,
};
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, FixedOffset, NaiveDate};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::execute;
use crate::exchange::batch::{self, IntakeError, OnInvalidRows, RowError};
use crate::exchange::verification;
use crate::http::auth::Authenticated;
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::http::{ApiJson, AppState, RequestId, today_in_china};
use crate::http::{ApiQuery, Path};

/// Query parameters of a new request; the body is the subject CSV.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReceiptParams {
    /// The agreement the request arrives under.
    pub agreement_id: String,
    /// When the request arrived, RFC 3339 with an offset, such as `2026-02-12T09:30:00+08:00`.
    pub received_at: String,
    /// Comma-separated item codes of the agreement, such as `name,sex`.
    pub items: String,
    /// `reject_batch` (the default) accepts none of the batch if any row is invalid;
    /// `skip_rows` accepts the valid rows and lists the others.
    #[param(value_type = Option<String>)]
    pub on_invalid_rows: Option<OnInvalidRows>,
}

/// A request as its events leave it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RequestResponse {
    pub request_id: String,
    pub status: String,
    pub agreement_id: String,
    pub household_unit: String,
    pub department: String,
    pub cadence: Option<String>,
    pub items: Vec<String>,
    pub received_at: Option<DateTime<FixedOffset>>,
    /// Last working day for feedback, in China Standard Time.
    pub deadline: Option<NaiveDate>,
    /// `pending`, `overdue` (no feedback and the deadline has passed), `on_time` or `late`.
    pub timeliness: String,
    pub policy_version: String,
    /// Digests and counts of the accepted batch.
    #[schema(value_type = Object)]
    pub batch: serde_json::Value,
    /// Digest and counts of the result file, once verified.
    #[schema(value_type = Object)]
    pub verification: serde_json::Value,
    pub delivered_at: Option<DateTime<FixedOffset>>,
    #[schema(value_type = Object)]
    pub handover: serde_json::Value,
    pub registration_number: Option<String>,
    /// Invalid rows left out of the batch; only in the response to the upload.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub invalid_rows: Vec<RowError>,
}

impl RequestResponse {
    fn new(id: &str, request: ExchangeRequest) -> Self {
        let timeliness = match (request.on_time, request.deadline) {
            (Some(true), _) => "on_time",
            (Some(false), _) => "late",
            (None, Some(deadline)) if today_in_china() > deadline => "overdue",
            (None, _) => "pending",
        };
        let status = serde_json::to_value(request.status).unwrap_or_default();
        RequestResponse {
            request_id: id.to_string(),
            status: status.as_str().unwrap_or_default().to_string(),
            agreement_id: request.agreement.agreement_id,
            household_unit: request.agreement.household_unit,
            department: request.agreement.department,
            cadence: request
                .agreement
                .cadence
                .map(|cadence| cadence.code().to_string()),
            items: request.items,
            received_at: request.received_at,
            deadline: request.deadline,
            timeliness: timeliness.to_string(),
            policy_version: request.policy_version,
            batch: serde_json::to_value(&request.batch).unwrap_or_default(),
            verification: serde_json::to_value(&request.verification).unwrap_or_default(),
            delivered_at: request.delivered_at,
            handover: serde_json::to_value(&request.handover).unwrap_or_default(),
            registration_number: request.registration_number,
            invalid_rows: Vec::new(),
        }
    }
}

fn parse_time(field: &str, text: &str) -> ApiResult<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(text).map_err(|_| {
        ExchangeError::invalid(
            "invalid_time",
            field,
            format!(
                "{field} {text:?} is not an RFC 3339 time; write it like 2026-02-12T09:30:00+08:00"
            ),
        )
        .into()
    })
}

/// Returns the agreement terms, or 404 when the agreement was never registered.
async fn agreement_terms(state: &AppState, id: &str) -> ApiResult<AgreementTerms> {
    let agreement = state.exchange.agreements.load(id).await?.ok_or_else(|| {
        ApiError::from(ExchangeError::not_found(
            "agreement_not_found",
            format!("no agreement {id:?} is registered; check agreement_id"),
        ))
    })?;
    Ok(AgreementTerms {
        agreement_id: id.to_string(),
        household_unit: agreement.household_unit,
        department: agreement.department,
        cadence: agreement.cadence,
        items: agreement.items,
    })
}

/// Returns the responsible officer of `unit` now, if it has one.
async fn responsible_officer(state: &AppState, unit: &str) -> ApiResult<Option<String>> {
    let unit = state.exchange.units.load(unit).await?;
    Ok(unit.and_then(|unit| unit.responsible_officer))
}

fn intake_error(error: IntakeError) -> ApiError {
    let (status, code) = match &error {
        IntakeError::Header(_) => (StatusCode::BAD_REQUEST, "invalid_csv_header"),
        IntakeError::LineTooLong(_) => (StatusCode::BAD_REQUEST, "csv_line_too_long"),
        IntakeError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
        IntakeError::Body(_) => (StatusCode::BAD_REQUEST, "unreadable_body"),
        IntakeError::Database(_) | IntakeError::Spool(_) => {
            return ApiError::Internal(
                anyhow::Error::new(error).context("storing the batch failed"),
            );
        }
    };
    ApiError::BadRequest {
        status,
        code,
        field: Some("subjects".into()),
        message: error.to_string(),
    }
}

#[utoipa::path(post, path = "/v1/exchange/requests", params(ReceiptParams),
    request_body(content = String, content_type = "text/csv", description = "Subjects: header id_number plus one column per requested item other than id_number"),
    responses((status = 201, body = RequestResponse), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn receive(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    request_id: RequestId,
    ApiQuery(params): ApiQuery<ReceiptParams>,
    body: Body,
) -> ApiResult<(StatusCode, Json<RequestResponse>)> {
    let received_at = state.stated_time(
        "received_at",
        parse_time("received_at", &params.received_at)?,
    )?;
    let items: Vec<String> = params
        .items
        .split(',')
        .map(|item| item.trim().to_string())
        .filter(|item| !item.is_empty())
        .collect();
    let agreement = agreement_terms(&state, &params.agreement_id).await?;
    let responsible = responsible_officer(&state, &agreement.household_unit).await?;
    // Every check that needs no batch runs before the body is read.
    let policy = state.exchange.services.policies.current();
    check_receipt(
        policy,
        &actor,
        responsible.as_deref(),
        &agreement,
        &items,
        received_at,
    )?;

    let id = uuid::Uuid::now_v7().to_string();
    let mode = params.on_invalid_rows.unwrap_or_default();
    let stream = body.into_data_stream();
    let intake = batch::ingest(&state.pool, &id, &items, mode, stream)
        .await
        .map_err(intake_error)?;
    if !intake.recorded {
        let count = intake.summary.rejected_rows;
        return Err(ApiError::InvalidRows {
            field: "subjects".into(),
            message: format!(
                "{count} rows of the subject CSV are invalid, so none was accepted; correct the rows listed in rows, or send on_invalid_rows=skip_rows to accept the valid ones"
            ),
            rows: intake.invalid_rows,
        });
    }
    let action = RequestAction::Receive {
        agreement,
        items,
        received_at,
        batch: intake.summary,
    };
    let command = RequestCommand {
        actor: actor.clone(),
        responsible_officer: responsible,
        action,
    };
    let request = match execute(&state.exchange.requests, &id, command, &actor, &request_id).await {
        Ok(request) => request,
        Err(error) => {
            // No event pins these rows, so they go.
            sqlx::query("DELETE FROM exchange_subjects WHERE request_id = $1")
                .bind(&id)
                .execute(&state.pool)
                .await?;
            return Err(error);
        }
    };
    let mut response = RequestResponse::new(&id, request);
    response.invalid_rows = intake.invalid_rows;
    Ok((StatusCode::CREATED, Json(response)))
}

/// Loads a request and the responsible officer of its unit, or returns 404.
async fn load_request(state: &AppState, id: &str) -> ApiResult<(ExchangeRequest, Option<String>)> {
    let request = state.exchange.requests.load(id).await?.ok_or_else(|| {
        ApiError::from(ExchangeError::not_found(
            "request_not_found",
            "no exchange request with this id was received; check the request id",
        ))
    })?;
    let responsible = responsible_officer(state, &request.agreement.household_unit).await?;
    Ok((request, responsible))
}

/// Runs `action` on request `id` as `actor` and returns the request after it.
async fn run(
    state: &AppState,
    id: &str,
    actor: Actor,
    responsible: Option<String>,
    action: RequestAction,
    request_id: &RequestId,
) -> ApiResult<Json<RequestResponse>> {
    let command = RequestCommand {
        actor: actor.clone(),
        responsible_officer: responsible,
        action,
    };
    let request = execute(&state.exchange.requests, id, command, &actor, request_id).await?;
    Ok(Json(RequestResponse::new(id, request)))
}

#[utoipa::path(get, path = "/v1/exchange/requests/{id}",
    responses((status = 200, body = RequestResponse), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn show(
    State(state): State<AppState>,
    Authenticated(_actor): Authenticated,
    Path(id): Path<String>,
) -> ApiResult<Json<RequestResponse>> {
    let (request, _) = load_request(&state, &id).await?;
    Ok(Json(RequestResponse::new(&id, request)))
}

#[utoipa::path(post, path = "/v1/exchange/requests/{id}/verification",
    responses((status = 200, body = RequestResponse), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn verify(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    request_id: RequestId,
    Path(id): Path<String>,
) -> ApiResult<Json<RequestResponse>> {
    let (request, responsible) = load_request(&state, &id).await?;
    // The aggregate decides who may verify and when; asking it first keeps a refused caller
    // from running the comparison.
    let probe = RequestCommand {
        actor: actor.clone(),
        responsible_officer: responsible.clone(),
        action: RequestAction::RecordVerification(Default::default()),
    };
    request.decide(probe, state.exchange.services.policies.current())?;
    let summary =
        verification::verify(&state.pool, &id, &request.items, &request.batch.rows_sha256).await?;
    let action = RequestAction::RecordVerification(summary);
    run(&state, &id, actor, responsible, action, &request_id).await
}

#[utoipa::path(get, path = "/v1/exchange/requests/{id}/results.csv",
    responses((status = 200, content_type = "text/csv", description = "The result file; its SHA-256 is in the X-Content-SHA256 header"), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn results(
    State(state): State<AppState>,
    Authenticated(_actor): Authenticated,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let (request, _) = load_request(&state, &id).await?;
    let Some(summary) = request.verification else {
        return Err(ExchangeError::conflict(
            "not_verified",
            "the request is not verified yet; POST …/verification first",
        )
        .into());
    };
    let stream = verification::result_file(state.pool.clone(), id, request.items);
    let headers = [
        (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
        (
            header::HeaderName::from_static("x-content-sha256"),
            summary.result_sha256,
        ),
    ];
    Ok((headers, Body::from_stream(stream)).into_response())
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedbackRequest {
    /// When the result file was delivered, RFC 3339; defaults to now.
    pub delivered_at: Option<String>,
}

#[utoipa::path(post, path = "/v1/exchange/requests/{id}/feedback", request_body = FeedbackRequest,
    responses((status = 200, body = RequestResponse), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn deliver_feedback(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    request_id: RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<FeedbackRequest>,
) -> ApiResult<Json<RequestResponse>> {
    let delivered_at = match &body.delivered_at {
        Some(text) => state.stated_time("delivered_at", parse_time("delivered_at", text)?)?,
        None => chrono::Utc::now().fixed_offset(),
    };
    let (_, responsible) = load_request(&state, &id).await?;
    let action = RequestAction::DeliverFeedback { delivered_at };
    run(&state, &id, actor, responsible, action, &request_id).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HandoverRequest {
    /// Every material handed over; `subjects.csv` and `results.csv` must carry the size and
    /// SHA-256 the ledger recorded.
    #[schema(value_type = Vec<Object>)]
    pub manifest: Vec<Material>,
    /// The person of the receiving department.
    pub receiving_person: String,
}

#[utoipa::path(post, path = "/v1/exchange/requests/{id}/handover", request_body = HandoverRequest,
    responses((status = 200, body = RequestResponse), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn prepare_handover(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    request_id: RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<HandoverRequest>,
) -> ApiResult<Json<RequestResponse>> {
    let (_, responsible) = load_request(&state, &id).await?;
    let action = RequestAction::PrepareHandover {
        manifest: body.manifest,
        receiving_person: body.receiving_person,
    };
    run(&state, &id, actor, responsible, action, &request_id).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HandoverAcknowledgementRequest {
    /// `handing_officer` or `receiving_person`.
    pub party: HandoverParty,
    /// The name the handover records for that party.
    pub name: String,
}

#[utoipa::path(post, path = "/v1/exchange/requests/{id}/handover/acknowledgements", request_body = HandoverAcknowledgementRequest,
    responses((status = 200, body = RequestResponse), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn acknowledge_handover(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    request_id: RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<HandoverAcknowledgementRequest>,
) -> ApiResult<Json<RequestResponse>> {
    let (_, responsible) = load_request(&state, &id).await?;
    let action = RequestAction::AcknowledgeHandover {
        party: body.party,
        name: body.name,
    };
    run(&state, &id, actor, responsible, action, &request_id).await
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FilingRequest {
    /// Date of filing; defaults to today in China Standard Time.
    pub date: Option<NaiveDate>,
}

#[utoipa::path(post, path = "/v1/exchange/requests/{id}/filing", request_body = FilingRequest,
    responses((status = 200, body = RequestResponse), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn file(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    request_id: RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<FilingRequest>,
) -> ApiResult<Json<RequestResponse>> {
    let (request, responsible) = load_request(&state, &id).await?;
    let filed_on = state.stated_date("date", body.date)?;
    // Numbers are drawn before the command is decided, so a refused filing leaves a gap.
    let sequence: i64 = sqlx::query_scalar("SELECT nextval('exchange_registration_seq')")
        .fetch_one(&state.pool)
        .await?;
    let unit = &request.agreement.household_unit;
    let registration_number = format!("JH-{unit}-{}-{sequence:06}", filed_on.format("%Y"));
    let action = RequestAction::File {
        registration_number,
        filed_on,
    };
    run(&state, &id, actor, responsible, action, &request_id).await
}
