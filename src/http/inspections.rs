//! `/v1/inspections`: inspectors open inspections of a station, an officer or a case, record
//! findings, publish notices, require rectification, verify it and close with an
//! accountability decision. A leader of the inspected station reports the rectification.

use std::collections::BTreeMap;

use aggregates::application::{Actor, ApplicationError};
use aggregates::inspection::{
    AreaLevel, Audience, Category, CloseInspection, InspectingBody, Inspection, InspectionCommand,
    OpenInspection, Outcome, PublishNotice, RecordFinding, ReportRectification,
    RequireRectification, TargetKind, VerifyRectification,
};
use aggregates::policy::Role;
use aggregates::record_check::RecordCheck;
use aggregates::unit_visit::UnitVisit;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Authenticated;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::record_checks::{execute, load_for_reader, store_of};
use super::supervision::{Params, Scope, invalid, scope_of};
use super::{ApiJson, AppState, RequestId};
use super::{ApiQuery, Path};

/// The target of an inspection.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetBody {
    /// `station`, `officer`, `application`, `record_check` or `unit_visit`.
    pub kind: TargetKind,
    /// The station code, officer id or case id.
    pub id: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenRequest {
    /// `discipline`, `inspectorate` or `household_administration`.
    pub body: InspectingBody,
    pub target: TargetBody,
    /// The reason for the inspection, in at least 10 characters.
    pub reason: String,
    /// Defaults to today in China Standard Time.
    pub date: Option<NaiveDate>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FindingRequest {
    /// `inaction` (不作为) or `misconduct` (乱作为).
    pub category: Category,
    /// Rule code of the detector finding this one comes from, if any.
    pub rule: Option<String>,
    /// The case the finding concerns, if any.
    pub case_id: Option<String>,
    /// The officer whose act or omission the finding concerns, if one is named.
    pub officer: Option<String>,
    pub description: String,
    pub date: Option<NaiveDate>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoticeRequest {
    /// The text of the notice (通报).
    pub text: String,
    pub date: Option<NaiveDate>,
    /// The area addressed: `{"level": "station" | "county" | "city" | "province", "code": …}`,
    /// the inspected station or an area that contains it. The inspected station when absent.
    #[schema(value_type = Option<Object>)]
    pub audience: Option<Audience>,
}

/// One notice as a station reads it.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct NoticeEntry {
    pub inspection_id: String,
    pub number: i32,
    /// The inspected station.
    pub station_code: String,
    pub text: String,
    pub published_on: NaiveDate,
    /// `station`, `county`, `city` or `province`.
    pub audience_level: String,
    pub audience_code: String,
}

/// Maximum number of notices one request returns, newest first.
pub const MAX_NOTICES: i64 = 1000;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RectificationRequest {
    /// The requirement the station must meet.
    pub requirement: String,
    /// The date the station must rectify by; after `date`, within 366 days.
    pub due_on: NaiveDate,
    pub date: Option<NaiveDate>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RectificationReportRequest {
    /// The station's account of its rectification.
    pub report: String,
    pub date: Option<NaiveDate>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerificationRequest {
    pub accepted: bool,
    /// The inspector's note on what was checked.
    pub note: String,
    /// For a rejected rectification: the new date to rectify by.
    pub next_due_on: Option<NaiveDate>,
    pub date: Option<NaiveDate>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClosingRequest {
    /// `no_accountability`, `criticism_and_education`, `admonishment`, `notified_criticism`,
    /// `suspension_from_duty` or `disciplinary_sanction`.
    pub outcome: Outcome,
    /// Officers held accountable; empty for `no_accountability`.
    #[serde(default)]
    pub officers: Vec<String>,
    pub reason: String,
    pub date: Option<NaiveDate>,
}

/// An inspection with every finding, notice, rectification round and the closing decision.
#[derive(Debug, Serialize, ToSchema)]
pub struct InspectionResponse {
    pub inspection_id: String,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub inspection: Inspection,
}

/// One inspection as the list shows it.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct InspectionSummary {
    pub inspection_id: String,
    pub body: String,
    pub target_kind: String,
    pub target_id: String,
    pub station_code: String,
    pub opened_by: String,
    pub opened_on: NaiveDate,
    pub status: String,
    pub notices: i32,
    pub outcome: Option<String>,
    pub accountable: Vec<String>,
    pub closed_on: Option<NaiveDate>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InspectionList {
    pub inspections: Vec<InspectionSummary>,
}

/// Returns the station of officer `id`, or a 422 naming `field` for an unknown officer.
pub(crate) async fn officer_station(state: &AppState, id: &str, field: &str) -> ApiResult<String> {
    let station: Option<String> =
        sqlx::query_scalar("SELECT station_code FROM officers WHERE id = $1")
            .bind(id)
            .fetch_optional(&state.pool)
            .await?;
    station.ok_or_else(|| ApiError::Rejected {
        code: "unknown_officer",
        field: Some(field.into()),
        message: format!("officer {id:?} is not registered; check the officer id"),
    })
}

fn not_found() -> ApiError {
    ApiError::NotFound {
        code: "inspection_not_found",
        message: "inspection not found; check the inspection id".into(),
    }
}

async fn run(
    state: &AppState,
    id: &str,
    command: InspectionCommand,
    request_id: &RequestId,
) -> ApiResult<Json<InspectionResponse>> {
    let actor = command.actor().clone();
    match execute::<Inspection>(state, id, command, &actor, request_id).await {
        Ok(inspection) => Ok(Json(InspectionResponse {
            inspection_id: id.to_string(),
            inspection,
        })),
        Err(ApiError::Application(ApplicationError::NotFound)) => Err(not_found()),
        Err(error) => Err(error),
    }
}

/// Returns the station of an inspection's target, or a 422 naming `target.id`.
async fn station_of_target(state: &AppState, kind: TargetKind, id: &str) -> ApiResult<String> {
    let id = id.trim();
    let station = match kind {
        TargetKind::Station => {
            sqlx::query_scalar("SELECT code FROM stations WHERE code = $1")
                .bind(id)
                .fetch_optional(&state.pool)
                .await?
        }
        TargetKind::Officer => {
            sqlx::query_scalar("SELECT station_code FROM officers WHERE id = $1")
                .bind(id)
                .fetch_optional(&state.pool)
                .await?
        }
        TargetKind::Application => state
            .applications
            .load_unverified(id)
            .await
            .map_err(ApiError::from)?
            .map(|application| application.station),
        TargetKind::RecordCheck => store_of::<RecordCheck>(state)
            .load(id)
            .await
            .map_err(ApiError::from)?
            .map(|check| check.station),
        TargetKind::UnitVisit => store_of::<UnitVisit>(state)
            .load(id)
            .await
            .map_err(ApiError::from)?
            .map(|visit| visit.station),
    };
    station.ok_or_else(|| ApiError::Rejected {
        code: "unknown_target",
        field: Some("target.id".into()),
        message: format!("no such target {id:?} is recorded; check the target's kind and id"),
    })
}

#[utoipa::path(post, path = "/v1/inspections", request_body = OpenRequest,
    responses((status = 201, body = InspectionResponse), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn open(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    request_id: RequestId,
    ApiJson(body): ApiJson<OpenRequest>,
) -> ApiResult<(StatusCode, Json<InspectionResponse>)> {
    let date = state.stated_date("date", body.date)?;
    // A blank target is left to the aggregate, which names the missing field.
    let station = if actor.role == Role::Inspector && !body.target.id.trim().is_empty() {
        station_of_target(&state, body.target.kind, &body.target.id).await?
    } else {
        // The aggregate refuses the command; no target is looked up for it.
        String::new()
    };
    let command = InspectionCommand::Open(OpenInspection {
        actor,
        body: body.body,
        target_kind: body.target.kind,
        target_id: body.target.id,
        station,
        reason: body.reason,
        date,
    });
    let id = uuid::Uuid::now_v7().to_string();
    let response = run(&state, &id, command, &request_id).await?;
    Ok((StatusCode::CREATED, response))
}

/// Returns whether `actor` may read an inspection of `station`. Supervisors read every one, a
/// station leader those of their own station.
fn may_read(actor: &Actor, station: &str) -> bool {
    actor.role.supervises() || (actor.role == Role::StationLeader && actor.station == station)
}

#[utoipa::path(get, path = "/v1/inspections/{id}",
    responses((status = 200, body = InspectionResponse), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn show(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    Path(id): Path<String>,
) -> ApiResult<Json<InspectionResponse>> {
    // An inspection of another station is reported as absent, so ids cannot be probed.
    let readable = |inspection: &Inspection| may_read(&actor, &inspection.station);
    let inspection = load_for_reader(&state, &actor, &id, readable, not_found).await?;
    Ok(Json(InspectionResponse {
        inspection_id: id,
        inspection,
    }))
}

#[utoipa::path(get, path = "/v1/inspections",
    params(
        ("station" = Option<String>, Query, description = "station code; station leaders read only their own, which is the default"),
        ("status" = Option<String>, Query, description = "open, rectification_required, rectification_reported or closed"),
    ),
    responses((status = 200, body = InspectionList), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiQuery(query): ApiQuery<BTreeMap<String, String>>,
) -> ApiResult<Json<InspectionList>> {
    let params = Params::new(query, &["station", "status"])?;
    let station = match (scope_of(&actor)?, params.text("station")) {
        (Scope::Station(own), Some(requested)) if requested != own => {
            return Err(super::supervision::forbidden(format!(
                "station leaders read the inspections of their own station {own}, not of {requested}"
            )));
        }
        (Scope::Station(own), _) => Some(own),
        (Scope::All, requested) => requested,
    };

    let status = params.text("status");
    const STATUSES: [&str; 4] = [
        "open",
        "rectification_required",
        "rectification_reported",
        "closed",
    ];
    if let Some(status) = &status
        && !STATUSES.contains(&status.as_str())
    {
        let message = format!(
            "status {status:?} is unknown; use one of {}",
            STATUSES.join(", ")
        );
        return Err(invalid("status", message));
    }

    let inspections = sqlx::query_as(
        "SELECT inspection_id, body, target_kind, target_id, station_code, opened_by, opened_on, status,
                notices, outcome, accountable, closed_on
           FROM inspections
          WHERE ($1::text IS NULL OR station_code = $1) AND ($2::text IS NULL OR status = $2)
          ORDER BY opened_on, inspection_id",
    )
    .bind(station)
    .bind(status)
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(InspectionList { inspections }))
}

#[utoipa::path(post, path = "/v1/inspections/{id}/findings", request_body = FindingRequest,
    responses((status = 200, body = InspectionResponse), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn record_finding(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    request_id: RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<FindingRequest>,
) -> ApiResult<Json<InspectionResponse>> {
    let date = state.stated_date("date", body.date)?;
    if let Some(rule) = body
        .rule
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
    {
        let codes = projections::supervision::rule_codes();
        if !codes.contains(&rule) {
            let message = format!("rule {rule:?} is unknown; use one of {}", codes.join(", "));
            return Err(ApiError::BadRequest {
                status: StatusCode::BAD_REQUEST,
                code: "unknown_rule",
                field: Some("rule".into()),
                message,
            });
        }
    }
    if let Some(case_id) = body
        .case_id
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        let recorded: Option<String> = sqlx::query_scalar(
            "SELECT aggregate_type FROM events
              WHERE aggregate_id = $1
                AND aggregate_type IN ('application', 'record_check', 'unit_visit', 'exchange_request')
              LIMIT 1",
        )
        .bind(case_id)
        .fetch_optional(&state.pool)
        .await?;
        if recorded.is_none() {
            return Err(ApiError::Rejected {
                code: "unknown_case",
                field: Some("case_id".into()),
                message: format!(
                    "no application, record check, unit visit or exchange request {case_id:?} is recorded; check the case id"
                ),
            });
        }
    }
    let officer_station = match body.officer.as_deref().map(str::trim) {
        Some(officer) if !officer.is_empty() => {
            Some(officer_station(&state, officer, "officer").await?)
        }
        _ => None,
    };
    let command = InspectionCommand::RecordFinding(RecordFinding {
        actor,
        category: body.category,
        rule: body.rule,
        case_id: body.case_id,
        officer: body.officer,
        officer_station,
        description: body.description,
        date,
    });
    run(&state, &id, command, &request_id).await
}

#[utoipa::path(post, path = "/v1/inspections/{id}/notices", request_body = NoticeRequest,
    responses((status = 200, body = InspectionResponse), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn publish_notice(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    request_id: RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<NoticeRequest>,
) -> ApiResult<Json<InspectionResponse>> {
    let date = state.stated_date("date", body.date)?;
    if let Some(audience) = &body.audience {
        check_audience(&state, &id, audience).await?;
    }
    let command = InspectionCommand::PublishNotice(PublishNotice {
        actor,
        text: body.text,
        date,
        audience: body.audience,
    });
    run(&state, &id, command, &request_id).await
}

/// Checks that `audience` is the station inspection `id` examines or an area that contains it:
/// its county, its city, or its province (the leading digits of the city code).
async fn check_audience(state: &AppState, id: &str, audience: &Audience) -> ApiResult<()> {
    // The station is read from the opening event as stored. The command that follows verifies
    // the inspection's chain, and reports an unknown inspection as not found.
    let areas: Option<(String, String, String)> = sqlx::query_as(
        "SELECT s.code, s.county_code, c.city_code
           FROM events e
           JOIN stations s ON s.code = e.payload->'InspectionOpened'->>'station'
           JOIN counties c ON c.code = s.county_code
          WHERE e.aggregate_type = 'inspection' AND e.aggregate_id = $1 AND e.sequence = 1",
    )
    .bind(id)
    .fetch_optional(&state.pool)
    .await?;
    let Some((station, county, city)) = areas else {
        return Ok(());
    };

    let code = audience.code.as_str();
    let contains = match audience.level {
        AreaLevel::Station => code == station,
        AreaLevel::County => code == county,
        AreaLevel::City => code == city,
        AreaLevel::Province => {
            !code.is_empty() && code.len() < city.len() && city.starts_with(code)
        }
    };
    if contains {
        return Ok(());
    }
    let message = format!(
        "a notice of an inspection of station {station} is addressed to that station, county {county}, city {city} or its province (leading digits of {city}); {} {code:?} is none of these",
        audience.level.code()
    );
    Err(ApplicationError::Rejected {
        code: "audience_outside_area",
        field: "audience.code".into(),
        message,
    }
    .into())
}

#[utoipa::path(get, path = "/v1/notices",
    params(("station" = Option<String>, Query, description = "for supervisors: the station whose notices to list; all notices without it")),
    responses((status = 200, body = [NoticeEntry]), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn notices(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiQuery(query): ApiQuery<BTreeMap<String, String>>,
) -> ApiResult<Json<Vec<NoticeEntry>>> {
    let params = Params::new(query, &["station"])?;
    // An officer reads the notices addressed to their own station or an area that contains it.
    // Supervisors read all of them, or those a station receives.
    let station = match (actor.role.supervises(), params.text("station")) {
        (true, requested) => requested,
        (false, Some(requested)) if requested != actor.station => {
            return Err(super::supervision::forbidden(format!(
                "officers read the notices their own station {} receives, not those of {requested}",
                actor.station
            )));
        }
        (false, _) => Some(actor.station.clone()),
    };
    let notices = sqlx::query_as(
        "SELECT n.inspection_id, n.number, n.station_code, n.text, n.published_on,
                n.audience_level, n.audience_code
           FROM inspection_notices n
          WHERE $1::text IS NULL OR EXISTS (
                SELECT 1 FROM stations s JOIN counties c ON c.code = s.county_code
                 WHERE s.code = $1
                   AND ((n.audience_level = 'station' AND n.audience_code = s.code)
                     OR (n.audience_level = 'county' AND n.audience_code = s.county_code)
                     OR (n.audience_level = 'city' AND n.audience_code = c.city_code)
                     OR (n.audience_level = 'province' AND starts_with(c.city_code, n.audience_code))))
          ORDER BY n.published_on DESC, n.inspection_id, n.number
          LIMIT $2",
    )
    .bind(station)
    .bind(MAX_NOTICES)
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(notices))
}

#[utoipa::path(post, path = "/v1/inspections/{id}/rectification", request_body = RectificationRequest,
    responses((status = 200, body = InspectionResponse), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn require_rectification(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    request_id: RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RectificationRequest>,
) -> ApiResult<Json<InspectionResponse>> {
    let date = state.stated_date("date", body.date)?;
    let command = InspectionCommand::RequireRectification(RequireRectification {
        actor,
        requirement: body.requirement,
        due_on: body.due_on,
        date,
    });
    run(&state, &id, command, &request_id).await
}

#[utoipa::path(post, path = "/v1/inspections/{id}/rectification/report", request_body = RectificationReportRequest,
    responses((status = 200, body = InspectionResponse), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn report_rectification(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    request_id: RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RectificationReportRequest>,
) -> ApiResult<Json<InspectionResponse>> {
    let date = state.stated_date("date", body.date)?;
    let command = InspectionCommand::ReportRectification(ReportRectification {
        actor,
        report: body.report,
        date,
    });
    run(&state, &id, command, &request_id).await
}

#[utoipa::path(post, path = "/v1/inspections/{id}/rectification/verification", request_body = VerificationRequest,
    responses((status = 200, body = InspectionResponse), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn verify_rectification(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    request_id: RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<VerificationRequest>,
) -> ApiResult<Json<InspectionResponse>> {
    let date = state.stated_date("date", body.date)?;
    let command = InspectionCommand::VerifyRectification(VerifyRectification {
        actor,
        accepted: body.accepted,
        note: body.note,
        next_due_on: body.next_due_on,
        date,
    });
    run(&state, &id, command, &request_id).await
}

#[utoipa::path(post, path = "/v1/inspections/{id}/closing", request_body = ClosingRequest,
    responses((status = 200, body = InspectionResponse), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn close(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    request_id: RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ClosingRequest>,
) -> ApiResult<Json<InspectionResponse>> {
    let date = state.stated_date("date", body.date)?;
    for officer in body
        .officers
        .iter()
        .map(|o| o.trim())
        .filter(|o| !o.is_empty())
    {
        officer_station(&state, officer, "officers").await?;
    }
    let command = InspectionCommand::Close(CloseInspection {
        actor,
        outcome: body.outcome,
        officers: body.officers,
        reason: body.reason,
        date,
    });
    run(&state, &id, command, &request_id).await
}
