//! `/v1/training-records`: a station leader records that an officer of the station completed
//! the training of a policy version. Inspectors, provincial officers and leaders read which
//! officers have and have not.

use std::collections::BTreeMap;

use aggregates::application::ApplicationError;
use aggregates::training::{RecordTraining, TrainingRecord};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ApiQuery;
use super::auth::Authenticated;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::inspections::officer_station;
use super::record_checks::execute;
use super::supervision::{Params, Scope, forbidden, scope_of};
use super::{ApiJson, AppState, RequestId};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainingRequest {
    /// Id of the officer who completed the training.
    pub officer: String,
    /// The policy version the training taught, from `GET /v1/policy`.
    pub policy_version: String,
    /// Name of the course.
    pub course: String,
    /// Defaults to today in China Standard Time.
    pub completed_on: Option<NaiveDate>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TrainingResponse {
    pub officer: String,
    pub station: String,
    #[schema(value_type = Object)]
    pub trainings: Vec<aggregates::training::CompletedTraining>,
}

/// One officer of the station and whether they completed the version's training.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct OfficerTraining {
    pub officer_id: String,
    pub role: String,
    pub station_code: String,
    pub completed_on: Option<NaiveDate>,
    pub course: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TrainingCoverage {
    pub policy_version: String,
    /// Officers who handle or approve cases; inspectors and provincial officers are not counted.
    pub officers: i64,
    pub trained: i64,
    pub records: Vec<OfficerTraining>,
}

#[utoipa::path(post, path = "/v1/training-records", request_body = TrainingRequest,
    responses((status = 201, body = TrainingResponse), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn record(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    request_id: RequestId,
    ApiJson(body): ApiJson<TrainingRequest>,
) -> ApiResult<(StatusCode, Json<TrainingResponse>)> {
    let completed_on = state.stated_date("completed_on", body.completed_on)?;
    let officer = body.officer.trim().to_string();
    let station = officer_station(&state, &officer, "officer").await?;
    // Supervisors are recorded at a station but act across the province. So the coverage
    // leaves them out, and the station's leaders may not record their training.
    let role: Option<String> = sqlx::query_scalar("SELECT role FROM officers WHERE id = $1")
        .bind(&officer)
        .fetch_optional(&state.pool)
        .await?;
    if let Some(role) =
        role.filter(|role| ["inspector", "provincial_officer"].contains(&role.as_str()))
    {
        return Err(ApiError::Rejected {
            code: "officer_not_station_staff",
            field: Some("officer".into()),
            message: format!(
                "officer {officer:?} is a {role}, not an officer of station {station}; record the training of the station's own officers"
            ),
        });
    }
    let command = RecordTraining {
        actor: actor.clone(),
        officer: officer.clone(),
        station,
        policy_version: body.policy_version,
        course: body.course,
        completed_on,
    };
    let record = execute::<TrainingRecord>(&state, &officer, command, &actor, &request_id).await?;
    Ok((
        StatusCode::CREATED,
        Json(TrainingResponse {
            officer: record.officer,
            station: record.station,
            trainings: record.trainings,
        }),
    ))
}

#[utoipa::path(get, path = "/v1/training-records",
    params(
        ("station" = Option<String>, Query, description = "station code; station leaders read only their own, which is the default"),
        ("policy_version" = Option<String>, Query, description = "defaults to the current policy version"),
    ),
    responses((status = 200, body = TrainingCoverage), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn coverage(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiQuery(query): ApiQuery<BTreeMap<String, String>>,
) -> ApiResult<Json<TrainingCoverage>> {
    let params = Params::new(query, &["station", "policy_version"])?;
    let station = match (scope_of(&actor)?, params.text("station")) {
        (Scope::Station(own), Some(requested)) if requested != own => {
            return Err(forbidden(format!(
                "station leaders read the training of their own station {own}, not of {requested}"
            )));
        }
        (Scope::Station(own), _) => Some(own),
        (Scope::All, requested) => requested,
    };

    let policies = &state.applications.services().policies;
    let version = params
        .text("policy_version")
        .unwrap_or_else(|| policies.current().version.clone());
    if policies.version(&version).is_none() {
        return Err(ApiError::from(ApplicationError::Invalid {
            code: "unknown_policy_version",
            field: "policy_version".into(),
            message: format!("policy version {version:?} is not loaded on this server"),
        }));
    }

    let records: Vec<OfficerTraining> = sqlx::query_as(
        "SELECT o.id AS officer_id, o.role, o.station_code, t.completed_on, t.course
           FROM officers o
           LEFT JOIN training_records t ON t.officer_id = o.id AND t.policy_version = $2
          WHERE ($1::text IS NULL OR o.station_code = $1)
            AND o.role NOT IN ('inspector', 'provincial_officer')
          ORDER BY o.station_code, o.id",
    )
    .bind(station)
    .bind(&version)
    .fetch_all(&state.pool)
    .await?;
    let trained = records.iter().filter(|r| r.completed_on.is_some()).count() as i64;
    Ok(Json(TrainingCoverage {
        policy_version: version,
        officers: records.len() as i64,
        trained,
        records,
    }))
}
