//! `/v1/record-checks`: the no-criminal-record certificate (无违法犯罪记录核查证明), from the
//! application form through the source checks to issuance or refusal, the objection, and the
//! recorded reading of the results.

use std::collections::HashMap;

use aggregates::application::{Actor, ApplicationError, PersonInput};
use aggregates::record_check::{
    AnswerObjection, ApproveRecordCheck, CheckResult, CheckSource, IssueRecordCertificate,
    ObjectionDecision, ReadResults, RecordCheck, RecordCheckCommand, SubmitRecordCheck, WrittenAct,
};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::applications::{PersonBody, new_certificate_number};
use super::auth::Authenticated;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::{ApiJson, AppState, RequestId, today_in_china};
use super::{ApiQuery, Path};
use crate::store::ChainedStore;

/// The application form for a no-criminal-record certificate.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordCheckRequest {
    pub applicant: PersonBody,
    pub agent: Option<PersonBody>,
    /// Purpose code from `criminal_records.purposes` in `GET /v1/policy`.
    pub purpose: String,
    /// The destination country or the body that requires the certificate.
    pub destination: String,
    /// Date of the decision; defaults to today in China Standard Time.
    pub decision_date: Option<NaiveDate>,
}

/// One check of a record source.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceCheckRequest {
    /// Source code from `criminal_records.sources` in `GET /v1/policy`.
    pub source: String,
    /// The query's reference in the source system, or the archive file number.
    pub query_reference: String,
    /// `no_record`, `criminal_record`, `administrative_violation` or `sealed_juvenile_record`.
    pub result: CheckResult,
    /// Time of the query; defaults to now.
    pub checked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordDateRequest {
    pub date: Option<NaiveDate>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordIssuanceRequest {
    /// Must be `official_seal`.
    pub seal: String,
    pub date: Option<NaiveDate>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExplanationRequest {
    /// The explanation given to the applicant; it must not repeat record details.
    pub explanation: String,
    pub date: Option<NaiveDate>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonRequest {
    pub reason: String,
    pub date: Option<NaiveDate>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectionAnswerRequest {
    /// `upheld` or `reversed`.
    pub decision: ObjectionDecision,
    pub explanation: String,
    pub date: Option<NaiveDate>,
}

/// The purpose of reading criminal-record results, recorded with the read.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResultsQuery {
    pub purpose: Option<String>,
}

/// The objection as the station tracks it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ObjectionSummary {
    pub filed_on: NaiveDate,
    pub due_on: NaiveDate,
    pub extended: bool,
    /// `upheld` or `reversed` once answered.
    pub decision: Option<String>,
    pub answered_on: Option<NaiveDate>,
    /// Answered after the due date, or unanswered past it today.
    pub overdue: bool,
}

/// A no-criminal-record application without the results of its checks.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RecordCheckResponse {
    pub application_id: String,
    pub status: String,
    pub purpose: String,
    pub destination: String,
    pub station: String,
    pub handling_officer: String,
    /// Applicant's name and masked ID number.
    pub applicant: Option<String>,
    pub decision_date: Option<NaiveDate>,
    pub policy_version: String,
    pub promised_date: Option<NaiveDate>,
    /// Sources checked so far, without their results.
    pub sources_checked: Vec<String>,
    pub unchecked_mandatory_sources: Vec<String>,
    pub approved_by: Option<String>,
    pub certificate_number: Option<String>,
    pub closed_on: Option<NaiveDate>,
    pub objection: Option<ObjectionSummary>,
}

impl RecordCheckResponse {
    fn new(state: &AppState, id: &str, check: &RecordCheck) -> Self {
        let policies = &state.applications.services().policies;
        let unchecked = match policies.version(&check.policy_version) {
            Some(policy) => check.unchecked_mandatory_sources(&policy.criminal_records),
            None => Vec::new(),
        };
        // A source checked again keeps the place of its first check.
        let mut sources_checked: Vec<String> = Vec::new();
        for checked in &check.checks {
            if !sources_checked.contains(&checked.source) {
                sources_checked.push(checked.source.clone());
            }
        }
        let today = today_in_china();
        RecordCheckResponse {
            application_id: id.to_string(),
            status: code_of(&check.status),
            purpose: check.purpose.clone(),
            destination: check.destination.clone(),
            station: check.station.clone(),
            handling_officer: check.handling_officer.clone(),
            applicant: check
                .applicant
                .as_ref()
                .map(|person| format!("{} ({})", person.name, person.id_number.masked())),
            decision_date: check.decision_date,
            policy_version: check.policy_version.clone(),
            promised_date: check.promised_date,
            sources_checked,
            unchecked_mandatory_sources: unchecked.into_iter().map(String::from).collect(),
            approved_by: check.approved_by.clone(),
            certificate_number: check.certificate_number.clone(),
            closed_on: check.closed_on,
            objection: check.objection.as_ref().map(|objection| ObjectionSummary {
                filed_on: objection.filed_on,
                due_on: objection.due_on,
                extended: objection.extended,
                decision: objection.decision.as_ref().map(code_of),
                answered_on: objection.answered_on,
                overdue: objection.is_overdue(today),
            }),
        }
    }
}

/// Returns the snake_case code a unit enum serializes to.
pub(crate) fn code_of<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|value| value.as_str().map(String::from))
        .unwrap_or_default()
}

pub(crate) fn command_metadata(actor: &Actor, request_id: &RequestId) -> HashMap<String, String> {
    HashMap::from([
        ("actor".to_string(), actor.officer_id.clone()),
        ("actor_role".to_string(), actor.role.code().to_string()),
        ("actor_station".to_string(), actor.station.clone()),
        ("request_id".to_string(), request_id.0.clone()),
    ])
}

pub(crate) fn store_of<A>(state: &AppState) -> ChainedStore<A>
where
    A: Aggregate<Error = ApplicationError, Services = aggregates::application::ApplicationServices>
        + Clone,
    A::Command: Clone,
{
    ChainedStore::new(&state.pool, state.applications.services().clone())
}

/// Loads aggregate `id` for `actor` to read, when `may_read` allows it, and returns the
/// `not_found` error otherwise. A damaged history is reported as such to supervisors only, and as
/// absent to others, so that they cannot probe which ids exist.
pub(crate) async fn load_for_reader<A>(
    state: &AppState,
    actor: &Actor,
    id: &str,
    may_read: impl Fn(&A) -> bool,
    not_found: fn() -> ApiError,
) -> ApiResult<A>
where
    A: Aggregate<Error = ApplicationError, Services = aggregates::application::ApplicationServices>
        + Clone,
    A::Command: Clone,
{
    let loaded = match store_of::<A>(state).load(id).await {
        Err(error) if !actor.role.supervises() => {
            tracing::info!(aggregate = A::TYPE, aggregate_id = id, officer = actor.officer_id.as_str(), cause = %error, "read of a damaged history rejected");
            return Err(not_found());
        }
        loaded => loaded?,
    };
    match loaded {
        Some(aggregate) if may_read(&aggregate) => Ok(aggregate),
        _ => Err(not_found()),
    }
}

/// Runs a command on a criminal-record aggregate and logs its rejection or failure once.
pub(crate) async fn execute<A>(
    state: &AppState,
    id: &str,
    command: A::Command,
    actor: &Actor,
    request_id: &RequestId,
) -> ApiResult<A>
where
    A: Aggregate<Error = ApplicationError, Services = aggregates::application::ApplicationServices>
        + Clone,
    A::Command: Clone,
{
    let metadata = command_metadata(actor, request_id);
    let officer = actor.officer_id.as_str();
    match store_of::<A>(state).execute(id, command, metadata).await {
        Ok(aggregate) => Ok(aggregate),
        Err(error) => {
            let error = ApiError::from(error);
            match &error {
                ApiError::Internal(cause) => {
                    tracing::error!(aggregate = A::TYPE, aggregate_id = id, officer, request_id = request_id.0, cause = ?cause, "command failed");
                }
                rejected => {
                    tracing::info!(aggregate = A::TYPE, aggregate_id = id, officer, request_id = request_id.0, reason = %rejected, "command rejected");
                }
            }
            Err(error)
        }
    }
}

async fn run(
    state: &AppState,
    id: &str,
    command: RecordCheckCommand,
    request_id: &RequestId,
) -> ApiResult<Json<RecordCheckResponse>> {
    let actor = command.actor().clone();
    let check = execute::<RecordCheck>(state, id, command, &actor, request_id).await?;
    Ok(Json(RecordCheckResponse::new(state, id, &check)))
}

fn person(body: PersonBody) -> PersonInput {
    PersonInput {
        name: body.name,
        id_number: body.id_number,
    }
}

#[utoipa::path(post, path = "/v1/record-checks", request_body = RecordCheckRequest,
    responses((status = 201, body = RecordCheckResponse), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn submit(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    request_id: RequestId,
    ApiJson(body): ApiJson<RecordCheckRequest>,
) -> ApiResult<(StatusCode, Json<RecordCheckResponse>)> {
    let id = uuid::Uuid::now_v7().to_string();
    let command = SubmitRecordCheck {
        actor,
        applicant: person(body.applicant),
        agent: body.agent.map(person),
        purpose: body.purpose,
        destination: body.destination,
        decision_date: state.stated_date("decision_date", body.decision_date)?,
    };
    let command = RecordCheckCommand::Submit(Box::new(command));
    let response = run(&state, &id, command, &request_id).await?;
    Ok((StatusCode::CREATED, response))
}

/// Loads a record check that the officer's station owns, or any for an inspector.
async fn load_for(state: &AppState, actor: &Actor, id: &str) -> ApiResult<RecordCheck> {
    let check = store_of::<RecordCheck>(state).load(id).await?;
    match check {
        Some(check)
            if check.station == actor.station
                || actor.role == aggregates::policy::Role::Inspector =>
        {
            Ok(check)
        }
        // Another station's case is reported as absent, so ids cannot be probed.
        _ => Err(ApiError::NotFound {
            code: "record_check_not_found",
            message: "no-criminal-record application not found; check the application id".into(),
        }),
    }
}

#[utoipa::path(get, path = "/v1/record-checks/{id}", responses((status = 200, body = RecordCheckResponse), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn show(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    Path(id): Path<String>,
) -> ApiResult<Json<RecordCheckResponse>> {
    let check = load_for(&state, &actor, &id).await?;
    Ok(Json(RecordCheckResponse::new(&state, &id, &check)))
}

fn source_check(actor: Actor, body: SourceCheckRequest) -> ApiResult<CheckSource> {
    let now = Utc::now();
    let checked_at = body.checked_at.unwrap_or(now);
    // A small allowance for clock differences between the officer's terminal and the server.
    if checked_at > now + chrono::Duration::minutes(5) {
        return Err(ApiError::BadRequest {
            status: StatusCode::BAD_REQUEST,
            code: "checked_at_in_future",
            field: Some("checked_at".into()),
            message: format!(
                "checked_at {checked_at} is in the future; give the time of the query"
            ),
        });
    }
    Ok(CheckSource {
        actor,
        source: body.source,
        query_reference: body.query_reference,
        result: body.result,
        checked_at,
    })
}

#[utoipa::path(post, path = "/v1/record-checks/{id}/checks", request_body = SourceCheckRequest, responses((status = 200, body = RecordCheckResponse), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn check_source(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    request_id: RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SourceCheckRequest>,
) -> ApiResult<Json<RecordCheckResponse>> {
    let command = RecordCheckCommand::CheckSource(source_check(actor, body)?);
    run(&state, &id, command, &request_id).await
}

#[utoipa::path(post, path = "/v1/record-checks/{id}/approval", request_body = RecordDateRequest, responses((status = 200, body = RecordCheckResponse), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn approve(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    request_id: RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RecordDateRequest>,
) -> ApiResult<Json<RecordCheckResponse>> {
    let date = state.stated_date("date", body.date)?;
    let command = RecordCheckCommand::Approve(ApproveRecordCheck { actor, date });
    run(&state, &id, command, &request_id).await
}

#[utoipa::path(post, path = "/v1/record-checks/{id}/issuance", request_body = RecordIssuanceRequest, responses((status = 200, body = RecordCheckResponse), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn issue(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    request_id: RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RecordIssuanceRequest>,
) -> ApiResult<Json<RecordCheckResponse>> {
    let date = state.stated_date("date", body.date)?;
    let certificate_number = new_certificate_number(&state, &actor.station, date).await?;
    let command = RecordCheckCommand::Issue(IssueRecordCertificate {
        actor,
        certificate_number,
        seal: body.seal,
        date,
    });
    run(&state, &id, command, &request_id).await
}

#[utoipa::path(post, path = "/v1/record-checks/{id}/refusal", request_body = ExplanationRequest, responses((status = 200, body = RecordCheckResponse), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn refuse(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    request_id: RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ExplanationRequest>,
) -> ApiResult<Json<RecordCheckResponse>> {
    let command = RecordCheckCommand::Refuse(WrittenAct {
        actor,
        text: body.explanation,
        date: state.stated_date("date", body.date)?,
    });
    run(&state, &id, command, &request_id).await
}

#[utoipa::path(post, path = "/v1/record-checks/{id}/objection", request_body = ReasonRequest, responses((status = 200, body = RecordCheckResponse), (status = 409, body = ErrorBody)), security(("bearer" = [])))]
pub async fn file_objection(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    request_id: RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReasonRequest>,
) -> ApiResult<Json<RecordCheckResponse>> {
    let command = RecordCheckCommand::FileObjection(WrittenAct {
        actor,
        text: body.reason,
        date: state.stated_date("date", body.date)?,
    });
    run(&state, &id, command, &request_id).await
}

#[utoipa::path(post, path = "/v1/record-checks/{id}/objection/extension", request_body = ReasonRequest, responses((status = 200, body = RecordCheckResponse), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn extend_objection(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    request_id: RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReasonRequest>,
) -> ApiResult<Json<RecordCheckResponse>> {
    let command = RecordCheckCommand::ExtendObjection(WrittenAct {
        actor,
        text: body.reason,
        date: state.stated_date("date", body.date)?,
    });
    run(&state, &id, command, &request_id).await
}

#[utoipa::path(post, path = "/v1/record-checks/{id}/objection/rechecks", request_body = SourceCheckRequest, responses((status = 200, body = RecordCheckResponse), (status = 409, body = ErrorBody)), security(("bearer" = [])))]
pub async fn recheck(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    request_id: RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SourceCheckRequest>,
) -> ApiResult<Json<RecordCheckResponse>> {
    let command = RecordCheckCommand::Recheck(source_check(actor, body)?);
    run(&state, &id, command, &request_id).await
}

#[utoipa::path(post, path = "/v1/record-checks/{id}/objection/answer", request_body = ObjectionAnswerRequest, responses((status = 200, body = RecordCheckResponse), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn answer_objection(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    request_id: RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ObjectionAnswerRequest>,
) -> ApiResult<Json<RecordCheckResponse>> {
    let command = RecordCheckCommand::AnswerObjection(AnswerObjection {
        actor,
        decision: body.decision,
        explanation: body.explanation,
        date: state.stated_date("date", body.date)?,
    });
    run(&state, &id, command, &request_id).await
}

/// One check with its result, for the officers allowed to read results.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckResultView {
    pub source: String,
    pub query_reference: String,
    pub result: String,
    /// Whether the policy of the application reads the result as a record.
    pub counts_as_record: bool,
    pub officer: String,
    pub checked_at: DateTime<Utc>,
    pub recheck: bool,
}

/// The results of a record check; returning them records the read.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResultsResponse {
    pub application_id: String,
    pub record_found: bool,
    pub checks: Vec<CheckResultView>,
    /// The read just recorded: reader and purpose.
    pub read_by: String,
    pub read_purpose: String,
}

#[utoipa::path(get, path = "/v1/record-checks/{id}/results", params(("purpose" = String, Query, description = "Why the results are read; recorded with the read")),
    responses((status = 200, body = ResultsResponse), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn results(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    request_id: RequestId,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ResultsQuery>,
) -> ApiResult<Json<ResultsResponse>> {
    let purpose = query.purpose.unwrap_or_default();
    super::reject_nul("purpose", &purpose)?;
    // The read is an event: it is committed before any result leaves the server, and a read
    // that is not allowed records nothing.
    let command = RecordCheckCommand::ReadResults(ReadResults {
        actor: actor.clone(),
        purpose: purpose.clone(),
    });
    let check = execute::<RecordCheck>(&state, &id, command, &actor, &request_id)
        .await
        .map_err(|error| match error {
            ApiError::Application(ApplicationError::NotFound) => ApiError::NotFound {
                code: "record_check_not_found",
                message: "no-criminal-record application not found; check the application id"
                    .into(),
            },
            other => other,
        })?;
    let checks = check
        .checks
        .iter()
        .map(|c| CheckResultView {
            source: c.source.clone(),
            query_reference: c.query_reference.clone(),
            result: code_of(&c.result),
            counts_as_record: c.counts_as_record,
            officer: c.officer.clone(),
            checked_at: c.checked_at,
            recheck: c.recheck,
        })
        .collect();
    Ok(Json(ResultsResponse {
        application_id: id,
        record_found: check.record_found,
        checks,
        read_by: actor.officer_id,
        read_purpose: purpose.trim().to_string(),
    }))
}
