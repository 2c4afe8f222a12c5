//! `/v1/unit-visits`: unit verification (单位核查). A unit's staff member presents an
//! introduction letter, and the policy decides whether the unit qualifies. The officer records
//! the systems checked, the result and what was disclosed. A written certificate follows only
//! with a station leader's approval of the unit's need.

use aggregates::application::{Actor, ApplicationError};
use aggregates::policy::Role;
use aggregates::record_check::{CheckResult, ReadResults};
use aggregates::unit_visit::{
    ApproveVisitCertificate, IssueVisitCertificate, LetterInput, RecordVisitFindings,
    RegisterVisit, UnitInput, UnitVisit, UnitVisitCommand, UnitVisitStatus,
};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;

use super::applications::{PersonBody, new_certificate_number};
use super::auth::Authenticated;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::record_check_notices::ResultsReadEntry;
use super::record_checks::{ResultsQuery, code_of, execute, store_of};
use super::{ApiJson, AppState, RequestId};
use super::{ApiQuery, Path};

/// The visiting unit.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VisitingUnitBody {
    pub name: String,
    /// Unit type code from `criminal_records.unit_verification.unit_types` in `GET /v1/policy`.
    pub unit_type: String,
    /// Administrative level, such as `provincial`, `municipal` or `county`.
    pub level: String,
}

/// The introduction letter (介绍信).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LetterBody {
    pub number: String,
    pub date: NaiveDate,
    pub issuing_unit: String,
    /// SHA-256 of the letter's scan, as 64 hexadecimal digits.
    pub scan_sha256: String,
}

/// Registration of a unit verification visit.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VisitRequest {
    pub unit: VisitingUnitBody,
    /// The staff member who visits, identified by their citizen ID number.
    pub staff: PersonBody,
    pub letter: LetterBody,
    /// Purpose code from `criminal_records.unit_verification.purposes` in `GET /v1/policy`.
    pub purpose: String,
    /// The person whose record the unit requests.
    pub subject: PersonBody,
    /// Date of the visit; defaults to today in China Standard Time.
    pub visit_date: Option<NaiveDate>,
}

/// The findings of a visit.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FindingsRequest {
    /// Codes of the record sources checked; every mandatory source must be listed.
    pub sources: Vec<String>,
    pub query_reference: String,
    /// `no_record`, `criminal_record`, `administrative_violation` or `sealed_juvenile_record`.
    pub result: CheckResult,
    /// The information the officer disclosed to the unit, orally or in writing.
    pub disclosed: String,
    /// Time of the query; defaults to now.
    pub checked_at: Option<DateTime<Utc>>,
}

/// A leader's approval of a written certificate.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CertificateApprovalRequest {
    /// The reason the unit needs a written certificate beyond the disclosure at the visit.
    pub need: String,
    pub date: Option<NaiveDate>,
}

/// Issuance of the verification certificate.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VisitIssuanceRequest {
    /// Must be `official_seal`.
    pub seal: String,
    pub date: Option<NaiveDate>,
}

/// The refusal of an unqualified unit; it names the principle and carries no record detail.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VisitRefusalView {
    pub principle: String,
    pub principle_name: String,
    pub explanation: String,
    pub referral: String,
    pub refused_on: NaiveDate,
}

/// A unit verification visit without its findings.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VisitResponse {
    pub visit_id: String,
    pub status: String,
    pub unit_name: String,
    pub unit_type: String,
    pub unit_level: String,
    /// Staff member's name and masked ID number.
    pub staff: Option<String>,
    pub letter_number: Option<String>,
    pub purpose: String,
    /// Subject's name and masked ID number.
    pub subject: Option<String>,
    pub station: String,
    pub handling_officer: String,
    pub visit_date: Option<NaiveDate>,
    pub policy_version: String,
    /// Qualifying rule that matched, or `unit_verification.unqualified`.
    pub rule_id: String,
    pub refusal: Option<VisitRefusalView>,
    /// Sources checked, without the result.
    pub sources_checked: Vec<String>,
    pub certificate_approved_by: Option<String>,
    pub certificate_number: Option<String>,
    pub closed_on: Option<NaiveDate>,
}

impl VisitResponse {
    fn new(state: &AppState, id: &str, visit: &UnitVisit) -> Self {
        let masked = |person: &Option<aggregates::application::Person>| {
            person
                .as_ref()
                .map(|person| format!("{} ({})", person.name, person.id_number.masked()))
        };
        let policies = &state.applications.services().policies;
        let refusal = visit.refusal.as_ref().map(|refusal| {
            let principle_name = policies
                .version(&visit.policy_version)
                .and_then(|policy| policy.principles.get(&refusal.principle))
                .map(|principle| principle.name.clone())
                .unwrap_or_default();
            VisitRefusalView {
                principle: refusal.principle.clone(),
                principle_name,
                explanation: refusal.explanation.clone(),
                referral: refusal.referral.clone(),
                refused_on: refusal.refused_on,
            }
        });
        let unit = visit
            .unit
            .clone()
            .unwrap_or_else(|| aggregates::unit_visit::Unit {
                name: String::new(),
                unit_type: String::new(),
                level: String::new(),
            });
        VisitResponse {
            visit_id: id.to_string(),
            status: code_of(&visit.status),
            unit_name: unit.name,
            unit_type: unit.unit_type,
            unit_level: unit.level,
            staff: masked(&visit.staff),
            letter_number: visit.letter.as_ref().map(|letter| letter.number.clone()),
            purpose: visit.purpose.clone(),
            subject: masked(&visit.subject),
            station: visit.station.clone(),
            handling_officer: visit.handling_officer.clone(),
            visit_date: visit.decision_date,
            policy_version: visit.policy_version.clone(),
            rule_id: visit.rule_id.clone(),
            refusal,
            sources_checked: visit
                .findings
                .as_ref()
                .map(|findings| findings.sources.clone())
                .unwrap_or_default(),
            certificate_approved_by: visit.approved_by.clone(),
            certificate_number: visit.certificate_number.clone(),
            closed_on: visit.closed_on,
        }
    }
}

async fn run(
    state: &AppState,
    id: &str,
    command: UnitVisitCommand,
    request_id: &RequestId,
) -> ApiResult<Json<VisitResponse>> {
    let actor = command.actor().clone();
    let visit = execute::<UnitVisit>(state, id, command, &actor, request_id).await?;
    Ok(Json(VisitResponse::new(state, id, &visit)))
}

fn person(body: PersonBody) -> aggregates::application::PersonInput {
    aggregates::application::PersonInput {
        name: body.name,
        id_number: body.id_number,
    }
}

fn not_found() -> ApiError {
    ApiError::NotFound {
        code: "unit_visit_not_found",
        message: "unit verification visit not found; check the visit id".into(),
    }
}

#[utoipa::path(post, path = "/v1/unit-visits", request_body = VisitRequest,
    responses((status = 201, body = VisitResponse), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn register(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    request_id: RequestId,
    ApiJson(body): ApiJson<VisitRequest>,
) -> ApiResult<(StatusCode, Json<VisitResponse>)> {
    let id = uuid::Uuid::now_v7().to_string();
    let command = RegisterVisit {
        actor,
        unit: UnitInput {
            name: body.unit.name,
            unit_type: body.unit.unit_type,
            level: body.unit.level,
        },
        staff: person(body.staff),
        letter: LetterInput {
            number: body.letter.number,
            date: body.letter.date,
            issuing_unit: body.letter.issuing_unit,
            scan_sha256: body.letter.scan_sha256,
        },
        purpose: body.purpose,
        subject: person(body.subject),
        decision_date: state.stated_date("visit_date", body.visit_date)?,
    };
    let command = UnitVisitCommand::Register(Box::new(command));
    let response = run(&state, &id, command, &request_id).await?;
    Ok((StatusCode::CREATED, response))
}

#[utoipa::path(get, path = "/v1/unit-visits/{id}", responses((status = 200, body = VisitResponse), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn show(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    Path(id): Path<String>,
) -> ApiResult<Json<VisitResponse>> {
    let visit = store_of::<UnitVisit>(&state).load(&id).await?;
    match visit {
        Some(visit) if visit.station == actor.station || actor.role == Role::Inspector => {
            Ok(Json(VisitResponse::new(&state, &id, &visit)))
        }
        // Another station's visit is reported as absent, so ids cannot be probed.
        _ => Err(not_found()),
    }
}

#[utoipa::path(post, path = "/v1/unit-visits/{id}/findings", request_body = FindingsRequest, responses((status = 200, body = VisitResponse), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn record_findings(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    request_id: RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<FindingsRequest>,
) -> ApiResult<Json<VisitResponse>> {
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
    let command = UnitVisitCommand::RecordFindings(RecordVisitFindings {
        actor,
        sources: body.sources,
        query_reference: body.query_reference,
        result: body.result,
        disclosed: body.disclosed,
        checked_at,
    });
    run(&state, &id, command, &request_id).await
}

#[utoipa::path(post, path = "/v1/unit-visits/{id}/certificate-approval", request_body = CertificateApprovalRequest, responses((status = 200, body = VisitResponse), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn approve_certificate(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    request_id: RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CertificateApprovalRequest>,
) -> ApiResult<Json<VisitResponse>> {
    let command = UnitVisitCommand::ApproveCertificate(ApproveVisitCertificate {
        actor,
        need: body.need,
        date: state.stated_date("date", body.date)?,
    });
    run(&state, &id, command, &request_id).await
}

#[utoipa::path(post, path = "/v1/unit-visits/{id}/certificate", request_body = VisitIssuanceRequest, responses((status = 200, body = VisitResponse), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn issue_certificate(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    request_id: RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<VisitIssuanceRequest>,
) -> ApiResult<Json<VisitResponse>> {
    let date = state.stated_date("date", body.date)?;
    let certificate_number = new_certificate_number(&state, &actor.station, date).await?;
    let command = UnitVisitCommand::IssueCertificate(IssueVisitCertificate {
        actor,
        certificate_number,
        seal: body.seal,
        date,
    });
    run(&state, &id, command, &request_id).await
}

/// The findings of a visit; returning them records the read.
#[derive(Debug, Serialize, ToSchema)]
pub struct VisitResultsResponse {
    pub visit_id: String,
    pub sources: Vec<String>,
    pub query_reference: String,
    pub result: String,
    /// Whether the policy of the visit reads the result as a record.
    pub counts_as_record: bool,
    pub disclosed: String,
    pub officer: String,
    pub checked_at: DateTime<Utc>,
    pub read_by: String,
    pub read_purpose: String,
}

#[utoipa::path(get, path = "/v1/unit-visits/{id}/results", params(("purpose" = String, Query, description = "Why the findings are read; recorded with the read")),
    responses((status = 200, body = VisitResultsResponse), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn results(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    request_id: RequestId,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ResultsQuery>,
) -> ApiResult<Json<VisitResultsResponse>> {
    let purpose = query.purpose.unwrap_or_default();
    super::reject_nul("purpose", &purpose)?;
    // Check that findings exist before recording a read of them.
    let visit = store_of::<UnitVisit>(&state).load(&id).await?;
    let Some(visit) = visit else {
        return Err(not_found());
    };
    if visit.findings.is_none() {
        return Err(ApiError::NotFound {
            code: "no_findings",
            message: format!(
                "the visit is {} and has no findings to read",
                code_of(&visit.status)
            ),
        });
    }
    let command = UnitVisitCommand::ReadResults(ReadResults {
        actor: actor.clone(),
        purpose: purpose.clone(),
    });
    let visit = execute::<UnitVisit>(&state, &id, command, &actor, &request_id)
        .await
        .map_err(|error| match error {
            ApiError::Application(ApplicationError::NotFound) => not_found(),
            other => other,
        })?;
    let findings = visit
        .findings
        .ok_or_else(|| anyhow::anyhow!("findings of visit {id} disappeared during the read"))?;
    Ok(Json(VisitResultsResponse {
        visit_id: id,
        sources: findings.sources,
        query_reference: findings.query_reference,
        result: code_of(&findings.result),
        counts_as_record: findings.counts_as_record,
        disclosed: findings.disclosed,
        officer: findings.officer,
        checked_at: findings.checked_at,
        read_by: actor.officer_id,
        read_purpose: purpose.trim().to_string(),
    }))
}

#[utoipa::path(get, path = "/v1/unit-visits/{id}/reads", responses((status = 200, body = [ResultsReadEntry]), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn reads(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<ResultsReadEntry>>> {
    let visit = store_of::<UnitVisit>(&state).load(&id).await?;
    let visit = visit.ok_or_else(not_found)?;
    if !may_read_log(&actor, &visit) {
        return Err(ApiError::from(ApplicationError::Forbidden {
            code: "reads_access_denied",
            field: "officer".into(),
            message: "the log of result reads is open to inspectors and the leaders of the owning station".into(),
        }));
    }
    let rows = sqlx::query(
        "SELECT payload, recorded_at FROM events
          WHERE aggregate_type = 'unit_visit' AND aggregate_id = $1 AND event_type = 'VisitResultsRead'
          ORDER BY sequence",
    )
    .bind(&id)
    .fetch_all(&state.pool)
    .await?;
    let mut entries = Vec::with_capacity(rows.len());
    for row in rows {
        let payload: serde_json::Value = row.get("payload");
        let read = &payload["VisitResultsRead"];
        let text = |key: &str| read[key].as_str().unwrap_or_default().to_string();
        entries.push(ResultsReadEntry {
            reader: text("reader"),
            role: text("role"),
            station: text("station"),
            purpose: text("purpose"),
            read_at: row.get("recorded_at"),
        });
    }
    Ok(Json(entries))
}

fn may_read_log(actor: &Actor, visit: &UnitVisit) -> bool {
    if visit.status == UnitVisitStatus::NotRegistered {
        return false;
    }
    actor.role == Role::Inspector
        || (actor.role == Role::StationLeader && actor.station == visit.station)
}
