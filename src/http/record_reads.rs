//! `GET /v1/record-reads`: the log of every recorded read of criminal-record results, across
//! no-criminal-record applications and unit verification visits, and of every read of an
//! application's personal data (its full history or its replay), for supervision.

use aggregates::application::ApplicationError;
use aggregates::policy::Role;
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::{IntoParams, ToSchema};

use super::ApiQuery;
use super::AppState;
use super::auth::Authenticated;
use super::error::{ApiError, ApiResult, ErrorBody};

/// Maximum number of reads one request returns, newest first.
pub const MAX_READS: i64 = 1000;

/// Filters of the read log, and the page of it to return.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReadLogQuery {
    /// Station that owns the case. A station leader receives only the reads of their own station.
    pub station: Option<String>,
    /// Officer id of the reader.
    pub reader: Option<String>,
    /// Number of reads to return, newest first: 1 to 1,000, 1,000 when absent.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    pub limit: Option<String>,
    /// Returns only reads older than this position, the `position` of the last read of the
    /// previous page, to page through the log.
    #[param(value_type = Option<i64>, minimum = 1)]
    pub before: Option<String>,
}

/// One read of results or personal data, with the case it concerned.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadLogEntry {
    /// `record_check` or `unit_visit` for a read of criminal-record results, `application` for
    /// a read of an application's personal data.
    pub case_type: String,
    pub case_id: String,
    /// Station that owns the case.
    pub case_station: String,
    pub reader: String,
    pub role: String,
    /// Station of the reader, which may differ from the case station for an inspector.
    pub reader_station: String,
    pub purpose: String,
    /// View of a read of personal data, `history` or `replay`; absent for a read of results.
    pub view: Option<String>,
    pub read_at: DateTime<Utc>,
    /// Position of the read in the ledger; pass the last one as `before` for the next page.
    pub position: i64,
}

#[utoipa::path(get, path = "/v1/record-reads", params(ReadLogQuery),
    responses((status = 200, body = [ReadLogEntry]), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)), security(("bearer" = [])))]
pub async fn read_log(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiQuery(query): ApiQuery<ReadLogQuery>,
) -> ApiResult<Json<Vec<ReadLogEntry>>> {
    // An empty parameter, as a form with a blank field sends it, counts as absent, as in the
    // other supervision lists.
    let non_blank = |value: Option<String>| value.filter(|text| !text.is_empty());
    let station = match actor.role {
        Role::Inspector | Role::ProvincialOfficer => non_blank(query.station),
        Role::StationLeader => match non_blank(query.station) {
            Some(station) if station != actor.station => {
                return Err(denied(format!(
                    "a station leader reads the log of station {} only, not of {station}",
                    actor.station
                )));
            }
            _ => Some(actor.station.clone()),
        },
        _ => {
            return Err(denied(
                "the log of reads is open to inspectors, provincial officers and station leaders"
                    .into(),
            ));
        }
    };
    let limit = match non_blank(query.limit).as_deref() {
        None => MAX_READS,
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|limit| (1..=MAX_READS).contains(limit))
            .ok_or_else(|| {
                invalid(
                    "limit",
                    format!(
                        "query parameter limit must be a whole number from 1 to {MAX_READS}; found {text:?}"
                    ),
                )
            })?,
    };
    let before = match non_blank(query.before).as_deref() {
        None => i64::MAX,
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|before| *before > 0)
            .ok_or_else(|| {
                invalid(
                    "before",
                    format!(
                        "query parameter before must be the position of a read from the previous page, a whole number above 0; found {text:?}"
                    ),
                )
            })?,
    };
    // The owning station is in the first event of the case: the record check, the visit, or
    // for a read of personal data the application, not the read. A case whose first event is
    // missing keeps its reads in the log, with no station.
    let rows = sqlx::query(
        "SELECT CASE r.aggregate_type WHEN 'application_reads' THEN 'application'
                     ELSE r.aggregate_type END AS case_type,
                r.aggregate_id, r.payload, r.recorded_at, r.global_position,
                COALESCE(f.payload->'RecordCheckSubmitted'->>'station',
                         f.payload->'VisitRegistered'->>'station',
                         f.payload->'ApplicationSubmitted'->>'station') AS case_station
           FROM events r
           LEFT JOIN events f
             ON f.aggregate_type = CASE r.aggregate_type WHEN 'application_reads' THEN 'application'
                                                         ELSE r.aggregate_type END
            AND f.aggregate_id = r.aggregate_id AND f.sequence = 1
          WHERE ((r.aggregate_type = 'record_check' AND r.event_type = 'ResultsRead')
              OR (r.aggregate_type = 'unit_visit' AND r.event_type = 'VisitResultsRead')
              OR (r.aggregate_type = 'application_reads' AND r.event_type = 'ApplicationRead'))
            AND ($1::text IS NULL OR COALESCE(f.payload->'RecordCheckSubmitted'->>'station',
                                              f.payload->'VisitRegistered'->>'station',
                                              f.payload->'ApplicationSubmitted'->>'station') = $1)
            AND ($2::text IS NULL OR COALESCE(r.payload->'ResultsRead'->>'reader',
                                              r.payload->'VisitResultsRead'->>'reader',
                                              r.payload->'ApplicationRead'->>'reader') = $2)
            AND r.global_position < $3
          ORDER BY r.global_position DESC
          LIMIT $4",
    )
    .bind(station)
    .bind(non_blank(query.reader))
    .bind(before)
    .bind(limit)
    .fetch_all(&state.pool)
    .await?;
    let mut entries = Vec::with_capacity(rows.len());
    for row in rows {
        let payload: serde_json::Value = row.get("payload");
        let read = payload
            .get("ResultsRead")
            .or_else(|| payload.get("VisitResultsRead"))
            .or_else(|| payload.get("ApplicationRead"))
            .cloned()
            .unwrap_or_default();
        let text = |key: &str| read[key].as_str().unwrap_or_default().to_string();
        entries.push(ReadLogEntry {
            case_type: row.get("case_type"),
            case_id: row.get("aggregate_id"),
            case_station: row
                .get::<Option<String>, _>("case_station")
                .unwrap_or_default(),
            reader: text("reader"),
            role: text("role"),
            reader_station: text("station"),
            purpose: text("purpose"),
            view: read["view"].as_str().map(String::from),
            read_at: row.get("recorded_at"),
            position: row.get("global_position"),
        });
    }
    Ok(Json(entries))
}

fn invalid(field: &str, message: String) -> ApiError {
    ApiError::BadRequest {
        status: axum::http::StatusCode::BAD_REQUEST,
        code: "invalid_field",
        field: Some(field.to_string()),
        message,
    }
}

fn denied(message: String) -> ApiError {
    ApiError::from(ApplicationError::Forbidden {
        code: "reads_access_denied",
        field: "officer".into(),
        message,
    })
}
