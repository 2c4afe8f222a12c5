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

/// Filters of the read log.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ReadLogQuery {
    /// Station that owns the case. A station leader receives only the reads of their own station.
    pub station: Option<String>,
    /// Officer id of the reader.
    pub reader: Option<String>,
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
}

#[utoipa::path(get, path = "/v1/record-reads", params(ReadLogQuery),
    responses((status = 200, body = [ReadLogEntry]), (status = 403, body = ErrorBody)), security(("bearer" = [])))]
pub async fn read_log(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiQuery(query): ApiQuery<ReadLogQuery>,
) -> ApiResult<Json<Vec<ReadLogEntry>>> {
    let station = match actor.role {
        Role::Inspector | Role::ProvincialOfficer => query.station,
        Role::StationLeader => match query.station {
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
    // The owning station is in the first event of the case: the record check, the visit, or
    // for a read of personal data the application, not the read. A case whose first event is
    // missing keeps its reads in the log, with no station.
    let rows = sqlx::query(
        "SELECT CASE r.aggregate_type WHEN 'application_reads' THEN 'application'
                     ELSE r.aggregate_type END AS case_type,
                r.aggregate_id, r.payload, r.recorded_at,
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
          ORDER BY r.global_position DESC
          LIMIT $3",
    )
    .bind(station)
    .bind(query.reader)
    .bind(MAX_READS)
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
        });
    }
    Ok(Json(entries))
}

fn denied(message: String) -> ApiError {
    ApiError::from(ApplicationError::Forbidden {
        code: "reads_access_denied",
        field: "officer".into(),
        message,
    })
}
