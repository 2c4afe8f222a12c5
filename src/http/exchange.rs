//! `/v1/exchange`: departments, agreements and responsible officers of information exchange.
//! Requests and their feedback are in [`requests`].

use std::collections::HashMap;

use aggregates::application::Actor;
use aggregates::exchange::ExchangeError;
use aggregates::exchange::agreement::{Agreement, RegisterAgreement};
use aggregates::exchange::department::RegisterDepartment;
use aggregates::exchange::policy::Cadence;
use aggregates::exchange::unit::DesignateResponsibleOfficer;
use aggregates::policy::Role;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Path;
use super::auth::Authenticated;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::{ApiJson, AppState, RequestId};
use crate::store::ChainedStore;

pub mod requests;

/// Returns the event metadata of a command: who ran it and under which request id.
fn metadata(actor: &Actor, request_id: &RequestId) -> HashMap<String, String> {
    HashMap::from([
        ("actor".to_string(), actor.officer_id.clone()),
        ("actor_role".to_string(), actor.role.code().to_string()),
        ("actor_station".to_string(), actor.station.clone()),
        ("request_id".to_string(), request_id.0.clone()),
    ])
}

/// Runs `command` on aggregate `id`, logging a rejection at info and a failure at error.
async fn execute<A>(
    store: &ChainedStore<A>,
    id: &str,
    command: A::Command,
    actor: &Actor,
    request_id: &RequestId,
) -> ApiResult<A>
where
    A: Aggregate<Services = aggregates::exchange::ExchangeServices, Error = ExchangeError> + Clone,
    A::Command: Clone,
{
    let metadata = metadata(actor, request_id);
    match store.execute(id, command, metadata).await {
        Ok(state) => Ok(state),
        Err(error) => {
            let error = ApiError::from(error);
            let officer = &actor.officer_id;
            match &error {
                ApiError::Internal(cause) => {
                    tracing::error!(aggregate_type = A::TYPE, aggregate_id = id, officer, request_id = request_id.0, cause = ?cause, "exchange command failed");
                }
                rejected => {
                    tracing::info!(aggregate_type = A::TYPE, aggregate_id = id, officer, request_id = request_id.0, reason = %rejected, "exchange command rejected");
                }
            }
            Err(error)
        }
    }
}

/// Returns the county and city of a station, or `None` for an unknown station.
async fn station_units(state: &AppState, station: &str) -> ApiResult<Option<(String, String)>> {
    let units = sqlx::query_as(
        "SELECT k.code, k.city_code FROM stations s JOIN counties k ON k.code = s.county_code
          WHERE s.code = $1",
    )
    .bind(station)
    .fetch_optional(&state.pool)
    .await?;
    Ok(units)
}

/// Tells whether `station` lies in `unit`, a county code or a city code.
async fn station_in_unit(state: &AppState, station: &str, unit: &str) -> ApiResult<bool> {
    let units = station_units(state, station).await?;
    Ok(units.is_some_and(|(county, city)| county == unit || city == unit))
}

/// Rejects anyone but a station leader inside `unit`.
// NOTE: the registry has no household-administration department roles, so a station leader of
// the unit acts for the department's leadership.
async fn require_unit_leader(state: &AppState, actor: &Actor, unit: &str) -> ApiResult<()> {
    if actor.role == Role::StationLeader && station_in_unit(state, &actor.station, unit).await? {
        return Ok(());
    }
    Err(ExchangeError::forbidden(
        "not_unit_leader",
        "authorization",
        format!("only a station leader within unit {unit} may change its exchange organisation"),
    )
    .into())
}

/// Checks an identifier used as an aggregate id: 1 to 64 letters, digits, `-` or `_`.
fn check_code(field: &str, code: &str) -> ApiResult<()> {
    let valid = !code.is_empty()
        && code.len() <= 64
        && code
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_');
    if valid {
        return Ok(());
    }
    Err(ExchangeError::invalid(
        "invalid_code",
        field,
        format!("{field} must be 1 to 64 letters, digits, '-' or '_'"),
    )
    .into())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DepartmentRequest {
    /// Department code, 1 to 64 letters, digits, `-` or `_`.
    pub code: String,
    pub name: String,
    /// Department kind from `GET /v1/policy` (`exchange.department_kinds`), e.g. `court`.
    pub kind: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DepartmentResponse {
    pub code: String,
    pub name: String,
    pub kind: String,
}

#[utoipa::path(post, path = "/v1/exchange/departments", request_body = DepartmentRequest,
    responses((status = 201, body = DepartmentResponse), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn register_department(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    request_id: RequestId,
    ApiJson(body): ApiJson<DepartmentRequest>,
) -> ApiResult<(StatusCode, Json<DepartmentResponse>)> {
    check_code("code", &body.code)?;
    if actor.role != Role::StationLeader {
        return Err(ExchangeError::forbidden(
            "not_station_leader",
            "authorization",
            "only a station leader may register departments",
        )
        .into());
    }
    let command = RegisterDepartment {
        actor: actor.clone(),
        name: body.name,
        kind: body.kind,
    };
    let stores = &state.exchange;
    let department = execute(
        &stores.departments,
        &body.code,
        command,
        &actor,
        &request_id,
    )
    .await?;
    let response = DepartmentResponse {
        code: body.code,
        name: department.name.unwrap_or_default(),
        kind: department.kind,
    };
    Ok((StatusCode::CREATED, Json(response)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgreementRequest {
    /// City or county code of the household-administration department.
    pub household_unit: String,
    /// Code of a registered department.
    pub department: String,
    /// `annual`, `semi_annual`, `quarterly`, `monthly` or `ad_hoc`.
    pub cadence: Cadence,
    /// Item codes from `GET /v1/policy` (`exchange.items`).
    pub items: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AgreementResponse {
    pub agreement_id: String,
    pub household_unit: String,
    pub department: String,
    pub cadence: Option<String>,
    pub deadline_working_days: Option<u32>,
    pub items: Vec<String>,
    pub policy_version: String,
}

impl AgreementResponse {
    fn new(state: &AppState, id: &str, agreement: Agreement) -> Self {
        let exchange = &state.exchange.services.policies.current().exchange;
        AgreementResponse {
            agreement_id: id.to_string(),
            household_unit: agreement.household_unit,
            department: agreement.department,
            cadence: agreement.cadence.map(|cadence| cadence.code().to_string()),
            deadline_working_days: agreement
                .cadence
                .map(|cadence| exchange.deadline_working_days(cadence)),
            items: agreement.items,
            policy_version: agreement.policy_version,
        }
    }
}

#[utoipa::path(post, path = "/v1/exchange/agreements", request_body = AgreementRequest,
    responses((status = 201, body = AgreementResponse), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn register_agreement(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    request_id: RequestId,
    ApiJson(body): ApiJson<AgreementRequest>,
) -> ApiResult<(StatusCode, Json<AgreementResponse>)> {
    check_code("department", &body.department)?;
    require_unit_leader(&state, &actor, &body.household_unit).await?;
    let Some(department) = state.exchange.departments.load(&body.department).await? else {
        return Err(ExchangeError::rejected(
            "unknown_department",
            "department",
            format!(
                "department {:?} is not registered; register it with POST /v1/exchange/departments",
                body.department
            ),
        )
        .into());
    };
    let id = uuid::Uuid::now_v7().to_string();
    let command = RegisterAgreement {
        actor: actor.clone(),
        household_unit: body.household_unit,
        department: body.department,
        department_kind: department.kind,
        cadence: body.cadence,
        items: body.items,
    };
    let agreement = execute(
        &state.exchange.agreements,
        &id,
        command,
        &actor,
        &request_id,
    )
    .await?;
    let response = AgreementResponse::new(&state, &id, agreement);
    Ok((StatusCode::CREATED, Json(response)))
}

#[utoipa::path(get, path = "/v1/exchange/agreements/{id}",
    responses((status = 200, body = AgreementResponse), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn show_agreement(
    State(state): State<AppState>,
    Authenticated(_actor): Authenticated,
    Path(id): Path<String>,
) -> ApiResult<Json<AgreementResponse>> {
    let agreement = state
        .exchange
        .agreements
        .load(&id)
        .await?
        .ok_or_else(agreement_not_found)?;
    Ok(Json(AgreementResponse::new(&state, &id, agreement)))
}

fn agreement_not_found() -> ApiError {
    ExchangeError::not_found(
        "agreement_not_found",
        "no agreement with this id is registered; check the agreement id",
    )
    .into()
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DesignationRequest {
    /// Officer id of the new responsible officer, at a station within the unit.
    pub officer: String,
    /// The responsible officer being replaced; required when the unit has one.
    pub replaces: Option<String>,
    /// Reason for the change of designation; required when replacing an officer.
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UnitResponse {
    pub unit: String,
    pub responsible_officer: Option<String>,
}

#[utoipa::path(post, path = "/v1/exchange/units/{unit}/responsible-officer", request_body = DesignationRequest,
    responses((status = 200, body = UnitResponse), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn designate(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    request_id: RequestId,
    Path(unit): Path<String>,
    ApiJson(body): ApiJson<DesignationRequest>,
) -> ApiResult<Json<UnitResponse>> {
    require_unit_leader(&state, &actor, &unit).await?;
    let station: Option<String> =
        sqlx::query_scalar("SELECT station_code FROM officers WHERE id = $1")
            .bind(&body.officer)
            .fetch_optional(&state.pool)
            .await?;
    let in_unit = match &station {
        Some(station) => station_in_unit(&state, station, &unit).await?,
        None => false,
    };
    if !in_unit {
        return Err(ExchangeError::rejected(
            "officer_not_in_unit",
            "officer",
            format!(
                "officer {:?} is not an officer at a station within unit {unit}; name one who is",
                body.officer
            ),
        )
        .into());
    }
    let command = DesignateResponsibleOfficer {
        actor: actor.clone(),
        officer: body.officer,
        replaces: body.replaces,
        reason: body.reason,
    };
    let unit_state = execute(&state.exchange.units, &unit, command, &actor, &request_id).await?;
    Ok(Json(UnitResponse {
        unit,
        responsible_officer: unit_state.responsible_officer,
    }))
}

#[utoipa::path(get, path = "/v1/exchange/units/{unit}",
    responses((status = 200, body = UnitResponse)),
    security(("bearer" = [])))]
pub async fn show_unit(
    State(state): State<AppState>,
    Authenticated(_actor): Authenticated,
    Path(unit): Path<String>,
) -> ApiResult<Json<UnitResponse>> {
    let responsible_officer = state
        .exchange
        .units
        .load(&unit)
        .await?
        .and_then(|unit| unit.responsible_officer);
    Ok(Json(UnitResponse {
        unit,
        responsible_officer,
    }))
}
