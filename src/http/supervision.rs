//! `/v1/supervision`: findings, case replay, compliance reports and the projection's lag, for
//! inspectors (every station) and station leaders (their own station).

use std::collections::BTreeMap;

use aggregates::application::{Actor, Application, ApplicationEvent};
use aggregates::application_reads::ReadView;
use aggregates::chain::{self, ChainBreak, StoredEvent};
use aggregates::policy::Role;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use cqrs_es::Aggregate;
use serde::Serialize;
use sqlx::Row;
use utoipa::ToSchema;

use super::auth::Authenticated;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::records::{ReadQuery, record_application_read};
use super::{ApiQuery, Path};
use super::{AppState, RequestId};

pub mod compliance;
pub mod overrides;
pub mod trail;

/// Reading scope of an officer under `/v1/supervision`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    /// An inspector: every station and every exchange unit.
    All,
    /// A station leader: their own station.
    Station(String),
}

/// Returns the reading scope of `actor`; other roles get 403.
pub(crate) fn scope_of(actor: &Actor) -> ApiResult<Scope> {
    match actor.role {
        Role::Inspector | Role::ProvincialOfficer => Ok(Scope::All),
        Role::StationLeader => Ok(Scope::Station(actor.station.clone())),
        role => Err(forbidden(format!(
            "supervision records are read by inspectors, provincial officers and station leaders; the officer's role is {}",
            role.code()
        ))),
    }
}

pub(crate) fn forbidden(message: String) -> ApiError {
    ApiError::BadRequest {
        status: StatusCode::FORBIDDEN,
        code: "supervision_forbidden",
        field: None,
        message,
    }
}

pub(crate) fn invalid(field: &str, message: String) -> ApiError {
    ApiError::BadRequest {
        status: StatusCode::BAD_REQUEST,
        code: "invalid_query",
        field: Some(field.to_string()),
        message,
    }
}

/// Query parameters, checked against the names an endpoint accepts.
pub(crate) struct Params(BTreeMap<String, String>);

impl Params {
    pub(crate) fn new(query: BTreeMap<String, String>, accepted: &[&str]) -> ApiResult<Params> {
        if let Some(name) = query.keys().find(|name| !accepted.contains(&name.as_str())) {
            let message = format!(
                "query parameter {name} is unknown; use {}",
                accepted.join(", ")
            );
            return Err(invalid(name, message));
        }
        Ok(Params(query))
    }

    /// Returns a parameter's text; an empty value counts as absent.
    pub(crate) fn text(&self, name: &str) -> Option<String> {
        let value = self.0.get(name)?.trim();
        (!value.is_empty()).then(|| value.to_string())
    }

    pub(crate) fn required(&self, name: &str) -> ApiResult<String> {
        self.text(name)
            .ok_or_else(|| invalid(name, format!("query parameter {name} is required")))
    }

    pub(crate) fn date(&self, name: &str) -> ApiResult<Option<NaiveDate>> {
        let Some(text) = self.text(name) else {
            return Ok(None);
        };
        let date: NaiveDate = text.parse().map_err(|_| {
            invalid(
                name,
                format!("{name} {text:?} is not a date; use YYYY-MM-DD, such as 2026-11-01"),
            )
        })?;
        // Periods are computed on, so dates near chrono's limits would overflow.
        if !(1900..=2999).contains(&date.year()) {
            return Err(invalid(
                name,
                format!("{name} {date} is out of range; use a date from 1900-01-01 to 2999-12-31"),
            ));
        }
        Ok(Some(date))
    }
}

/// Checks that `from` is not after `to`.
pub(crate) fn check_period(from: Option<NaiveDate>, to: Option<NaiveDate>) -> ApiResult<()> {
    match (from, to) {
        (Some(from), Some(to)) if from > to => Err(invalid(
            "from",
            format!("from {from} is after to {to}; give the earlier date as from"),
        )),
        _ => Ok(()),
    }
}

async fn station_exists(state: &AppState, code: &str) -> ApiResult<bool> {
    let found: Option<String> = sqlx::query_scalar("SELECT code FROM stations WHERE code = $1")
        .bind(code)
        .fetch_optional(&state.pool)
        .await?;
    Ok(found.is_some())
}

/// The projection's place against the head of the log.
#[derive(Serialize, ToSchema)]
pub struct LagBody {
    /// Global position of the last event applied.
    pub checkpoint: i64,
    /// Highest global position committed.
    pub head: i64,
    /// Committed events the findings have yet to apply.
    pub events: i64,
}

async fn supervision_lag(state: &AppState) -> ApiResult<LagBody> {
    let lag = projections::supervision::lag(&state.pool).await?;
    Ok(LagBody {
        checkpoint: lag.checkpoint.global_position,
        head: lag.head,
        events: lag.behind,
    })
}

/// One finding and the events that prove it.
#[derive(Serialize, ToSchema)]
pub struct FindingBody {
    /// `application`, `record_check`, `unit_visit` or `exchange_request`.
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// The rule broken, such as `refusal_unexplained`.
    pub rule: String,
    pub station: Option<String>,
    /// City or county code of an exchange request.
    pub unit: Option<String>,
    pub officer: String,
    pub occurred_on: NaiveDate,
    pub detail: String,
    /// The cited events: aggregate type and id, sequence, global position and event type.
    #[schema(value_type = Vec<Object>)]
    pub evidence: serde_json::Value,
}

#[derive(Serialize, ToSchema)]
pub struct FindingsResponse {
    pub count: usize,
    pub findings: Vec<FindingBody>,
    /// How far the findings trail the event log.
    pub lag: LagBody,
}

type FindingRow = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    NaiveDate,
    String,
    serde_json::Value,
);

const FINDING_COLUMNS: &str = "aggregate_type, aggregate_id, rule, station_code, unit_code, officer_id, occurred_on, detail, evidence";

fn finding_body(row: FindingRow) -> FindingBody {
    let (aggregate_type, aggregate_id, rule, station, unit, officer, occurred_on, detail, evidence) =
        row;
    FindingBody {
        aggregate_type,
        aggregate_id,
        rule,
        station,
        unit,
        officer,
        occurred_on,
        detail,
        evidence,
    }
}

fn check_rule(rule: Option<&str>) -> ApiResult<()> {
    let codes = projections::supervision::rule_codes();
    match rule {
        Some(rule) if !codes.contains(&rule) => Err(invalid(
            "rule",
            format!("rule {rule:?} is unknown; use one of {}", codes.join(", ")),
        )),
        _ => Ok(()),
    }
}

/// Returns the station a findings query reads: a leader's own, or the one an inspector names.
async fn station_filter(
    state: &AppState,
    scope: Scope,
    requested: Option<String>,
) -> ApiResult<Option<String>> {
    let station = match (scope, requested) {
        (Scope::Station(own), Some(requested)) if requested != own => {
            return Err(forbidden(format!(
                "station leaders read the findings of their own station {own}, not of {requested}"
            )));
        }
        (Scope::Station(own), _) => Some(own),
        (Scope::All, requested) => requested,
    };
    if let Some(code) = &station
        && !station_exists(state, code).await?
    {
        return Err(invalid(
            "station",
            format!("station {code} is not registered; check the station code"),
        ));
    }
    Ok(station)
}

#[utoipa::path(get, path = "/v1/supervision/findings",
    params(
        ("station" = Option<String>, Query, description = "station code; station leaders read only their own, which is the default"),
        ("officer" = Option<String>, Query, description = "officer id the finding concerns"),
        ("rule" = Option<String>, Query, description = "rule code, such as overdue"),
        ("from" = Option<NaiveDate>, Query, description = "first day of the act, inclusive"),
        ("to" = Option<NaiveDate>, Query, description = "last day of the act, inclusive"),
    ),
    responses((status = 200, body = FindingsResponse), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn findings(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiQuery(query): ApiQuery<BTreeMap<String, String>>,
) -> ApiResult<Json<FindingsResponse>> {
    let scope = scope_of(&actor)?;
    let params = Params::new(query, &["station", "officer", "rule", "from", "to"])?;
    let (from, to) = (params.date("from")?, params.date("to")?);
    check_period(from, to)?;
    let rule = params.text("rule");
    check_rule(rule.as_deref())?;
    let station = station_filter(&state, scope, params.text("station")).await?;

    let rows: Vec<FindingRow> = sqlx::query_as(&format!(
        "SELECT {FINDING_COLUMNS} FROM supervision_findings
          WHERE ($1::text IS NULL OR station_code = $1)
            AND ($2::text IS NULL OR officer_id = $2)
            AND ($3::text IS NULL OR rule = $3)
            AND ($4::date IS NULL OR occurred_on >= $4)
            AND ($5::date IS NULL OR occurred_on <= $5)
          ORDER BY occurred_on, aggregate_type, aggregate_id, rule, occurrence"
    ))
    .bind(station)
    .bind(params.text("officer"))
    .bind(rule)
    .bind(from)
    .bind(to)
    .fetch_all(&state.pool)
    .await?;
    let findings: Vec<FindingBody> = rows.into_iter().map(finding_body).collect();
    Ok(Json(FindingsResponse {
        count: findings.len(),
        findings,
        lag: supervision_lag(&state).await?,
    }))
}

#[utoipa::path(get, path = "/v1/supervision/lag", responses((status = 200, body = LagBody), (status = 403, body = ErrorBody)), security(("bearer" = [])))]
pub async fn lag(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
) -> ApiResult<Json<LagBody>> {
    scope_of(&actor)?;
    Ok(Json(supervision_lag(&state).await?))
}

/// One step of a replay: the event, its hash, and the application's state after it.
#[derive(Serialize, ToSchema)]
pub struct ReplayStep {
    pub sequence: i64,
    pub global_position: i64,
    pub event_type: String,
    pub recorded_at: DateTime<Utc>,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub hash: Option<String>,
    pub prev_hash: Option<String>,
    /// The state after this event; `null` from the first event that does not decode.
    #[schema(value_type = Option<Object>)]
    pub state: Option<serde_json::Value>,
}

#[derive(Serialize, ToSchema)]
pub struct ReplayResponse {
    pub application_id: String,
    pub station: String,
    /// True when every hash and link recomputes.
    pub chain_verified: bool,
    #[schema(value_type = Option<Object>)]
    pub first_break: Option<ChainBreak>,
    /// Reason the replay stopped early, when an event does not decode.
    pub decode_error: Option<String>,
    pub steps: Vec<ReplayStep>,
    pub findings: Vec<FindingBody>,
    /// The read just recorded: reader and purpose.
    pub read_by: String,
    pub read_purpose: String,
}

/// Events of one application as stored, and the replay of each.
struct Replayed {
    application: Application,
    stored: Vec<StoredEvent>,
    steps: Vec<ReplayStep>,
    decode_error: Option<String>,
}

/// Reads the events of application `id` in sequence order and applies them one by one,
/// keeping the state after each. Replay stops at the first event that does not decode.
async fn replay_events(state: &AppState, id: &str) -> ApiResult<Replayed> {
    let rows = sqlx::query(
        "SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, global_position, recorded_at
           FROM events WHERE aggregate_type = 'application' AND aggregate_id = $1 ORDER BY sequence",
    )
    .bind(id)
    .fetch_all(&state.pool)
    .await?;
    let mut replayed = Replayed {
        application: Application::default(),
        stored: Vec::with_capacity(rows.len()),
        steps: Vec::with_capacity(rows.len()),
        decode_error: None,
    };
    for row in rows {
        let event = StoredEvent {
            aggregate_type: row.get("aggregate_type"),
            aggregate_id: row.get("aggregate_id"),
            sequence: row.get::<i64, _>("sequence") as u64,
            event_type: row.get("event_type"),
            event_version: row.get("event_version"),
            payload: row.get("payload"),
            metadata: row.get("metadata"),
        };
        if replayed.decode_error.is_none() {
            match serde_json::from_value::<ApplicationEvent>(event.payload.clone()) {
                Ok(decoded) => replayed.application.apply(decoded),
                Err(error) => {
                    let message = format!("event {} does not decode: {error}", event.sequence);
                    replayed.decode_error = Some(message);
                }
            }
        }
        let snapshot = match replayed.decode_error {
            None => Some(serde_json::to_value(&replayed.application).map_err(anyhow::Error::from)?),
            Some(_) => None,
        };
        let text = |key: &str| {
            event
                .metadata
                .get(key)
                .and_then(|value| value.as_str())
                .map(String::from)
        };
        replayed.steps.push(ReplayStep {
            sequence: row.get("sequence"),
            global_position: row.get("global_position"),
            event_type: event.event_type.clone(),
            recorded_at: row.get("recorded_at"),
            payload: event.payload.clone(),
            hash: text(chain::HASH_KEY),
            prev_hash: text(chain::PREV_HASH_KEY),
            state: snapshot,
        });
        replayed.stored.push(event);
    }
    Ok(replayed)
}

#[utoipa::path(get, path = "/v1/supervision/applications/{id}/replay", params(ReadQuery), responses((status = 200, body = ReplayResponse), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)), security(("bearer" = [])))]
pub async fn replay(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    request_id: RequestId,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ReadQuery>,
) -> ApiResult<Json<ReplayResponse>> {
    let scope = scope_of(&actor)?;
    let replayed = replay_events(&state, &id).await?;
    let not_found = || ApiError::NotFound {
        code: "application_not_found",
        message: format!("no application {id} is recorded in the stations you may read"),
    };
    if replayed.stored.is_empty() {
        return Err(not_found());
    }
    if let Scope::Station(own) = scope
        && replayed.application.station != own
    {
        // Another station's application is reported as absent, so ids cannot be probed.
        return Err(not_found());
    }
    // The events carry identity numbers unmasked, so the read is recorded first.
    let read_purpose = record_application_read(
        &state,
        &actor,
        &request_id,
        &id,
        &replayed.application.station,
        ReadView::Replay,
        query.purpose,
    )
    .await?;

    let first_break = chain::verify_chain(&replayed.stored);
    let findings: Vec<FindingRow> = sqlx::query_as(&format!(
        "SELECT {FINDING_COLUMNS} FROM supervision_findings
          WHERE aggregate_type = 'application' AND aggregate_id = $1 ORDER BY rule"
    ))
    .bind(&id)
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(ReplayResponse {
        application_id: id,
        station: replayed.application.station,
        chain_verified: first_break.is_none(),
        first_break,
        decode_error: replayed.decode_error,
        steps: replayed.steps,
        findings: findings.into_iter().map(finding_body).collect(),
        read_by: actor.officer_id,
        read_purpose,
    }))
}
