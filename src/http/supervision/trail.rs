//! `GET /v1/supervision/trail`: the accountability trail of an officer or a station over a
//! period: the acts recorded in the log, the detectors' findings, the inspections with their
//! findings and rectification rounds, and the accountability decisions.

use std::collections::BTreeMap;

use aggregates::policy::Role;
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::{
    FINDING_COLUMNS, FindingBody, FindingRow, Params, Scope, check_period, finding_body, forbidden,
    invalid, scope_of,
};
use crate::http::auth::Authenticated;
use crate::http::error::{ApiResult, ErrorBody};
use crate::http::inspections::InspectionSummary;
use crate::http::{ApiQuery, AppState};

/// Most acts listed in one trail; the counts per event type cover every act.
const MAX_ACTIONS: i64 = 1000;

/// One act of an officer, as the log records it.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct Action {
    pub global_position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub officer: String,
    pub recorded_at: DateTime<Utc>,
}

/// A finding an inspection recorded.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct InspectionFindingRow {
    pub inspection_id: String,
    pub number: i32,
    pub station_code: String,
    pub category: String,
    pub rule: Option<String>,
    pub case_id: Option<String>,
    pub officer_id: Option<String>,
    pub description: String,
    pub found_on: NaiveDate,
}

/// One round of rectification.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct RectificationRow {
    pub inspection_id: String,
    pub round: i32,
    pub station_code: String,
    pub requirement: String,
    pub required_on: NaiveDate,
    pub due_on: NaiveDate,
    pub reported_on: Option<NaiveDate>,
    pub verified_on: Option<NaiveDate>,
    /// `required`, `reported`, `accepted` or `rejected`.
    pub status: String,
}

#[derive(Serialize, ToSchema)]
pub struct Trail {
    /// `officer` or `station`.
    pub subject_kind: String,
    pub subject: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Every act in the period, per event type.
    pub actions_per_type: BTreeMap<String, i64>,
    /// The acts in log order, at most 1,000. `actions_truncated` is true when there were more.
    pub actions: Vec<Action>,
    pub actions_truncated: bool,
    /// Detector findings concerning the officer, or the station's officers.
    pub findings: Vec<FindingBody>,
    /// Inspections of the subject, or naming the officer in a finding or a decision, open at
    /// any time in the period.
    pub inspections: Vec<InspectionSummary>,
    pub inspection_findings: Vec<InspectionFindingRow>,
    pub rectifications: Vec<RectificationRow>,
}

#[utoipa::path(get, path = "/v1/supervision/trail",
    params(
        ("officer" = Option<String>, Query, description = "officer id; give officer or station"),
        ("station" = Option<String>, Query, description = "station code; give officer or station"),
        ("from" = NaiveDate, Query, description = "first day of the period, inclusive"),
        ("to" = NaiveDate, Query, description = "last day of the period, inclusive"),
    ),
    responses((status = 200, body = Trail), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn trail(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiQuery(query): ApiQuery<BTreeMap<String, String>>,
) -> ApiResult<Json<Trail>> {
    let scope = scope_of(&actor)?;
    let params = Params::new(query, &["officer", "station", "from", "to"])?;
    let (Some(from), Some(to)) = (params.date("from")?, params.date("to")?) else {
        return Err(invalid(
            "from",
            "query parameters from and to are required, as YYYY-MM-DD".into(),
        ));
    };
    check_period(Some(from), Some(to))?;
    let (kind, subject, station) = match (params.text("officer"), params.text("station")) {
        (Some(officer), None) => {
            let found: Option<(String, String)> =
                sqlx::query_as("SELECT station_code, role FROM officers WHERE id = $1")
                    .bind(&officer)
                    .fetch_optional(&state.pool)
                    .await?;
            let Some((station, role)) = found else {
                return Err(crate::http::error::ApiError::NotFound {
                    code: "officer_not_found",
                    message: format!("officer {officer} is not registered; check the officer id"),
                });
            };
            // Supervisors are recorded at a station but act across the province, so their
            // trails are for supervisors only.
            let supervisor = Role::from_code(&role).is_some_and(Role::supervises);
            if supervisor && matches!(scope, Scope::Station(_)) {
                return Err(forbidden(format!(
                    "the trail of {officer}, a supervising officer, is read by inspectors and provincial officers"
                )));
            }
            ("officer", officer, station)
        }
        (None, Some(station)) => {
            let known: Option<String> =
                sqlx::query_scalar("SELECT code FROM stations WHERE code = $1")
                    .bind(&station)
                    .fetch_optional(&state.pool)
                    .await?;
            if known.is_none() {
                return Err(crate::http::error::ApiError::NotFound {
                    code: "station_not_found",
                    message: format!("station {station} is not registered; check the station code"),
                });
            }
            ("station", station.clone(), station)
        }
        _ => {
            return Err(invalid(
                "officer",
                "give exactly one of officer and station".into(),
            ));
        }
    };
    if let Scope::Station(own) = &scope
        && &station != own
    {
        return Err(forbidden(format!(
            "station leaders read the trails of their own station {own} and its officers"
        )));
    }
    let pool = &state.pool;
    let officers: Vec<String> = if kind == "officer" {
        vec![subject.clone()]
    } else {
        // Supervisors recorded at the station act for their own unit, not for the station.
        sqlx::query_scalar(
            "SELECT id FROM officers
              WHERE station_code = $1 AND role NOT IN ('inspector', 'provincial_officer')
              ORDER BY id",
        )
        .bind(&station)
        .fetch_all(pool)
        .await?
    };
    // The log's times are UTC; the period's days are China Standard Time.
    let start = from.and_hms_opt(0, 0, 0).expect("midnight").and_utc() - chrono::Duration::hours(8);
    let end = (to + chrono::Days::new(1))
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc()
        - chrono::Duration::hours(8);
    let per_type: Vec<(String, i64)> = sqlx::query_as(
        "SELECT event_type, count(*) FROM events
          WHERE metadata->>'actor' = ANY($1) AND recorded_at >= $2 AND recorded_at < $3
          GROUP BY event_type",
    )
    .bind(&officers)
    .bind(start)
    .bind(end)
    .fetch_all(pool)
    .await?;
    let actions_per_type: BTreeMap<String, i64> = per_type.into_iter().collect();
    let actions: Vec<Action> = sqlx::query_as(
        "SELECT global_position, aggregate_type, aggregate_id, sequence, event_type,
                metadata->>'actor' AS officer, recorded_at
           FROM events
          WHERE metadata->>'actor' = ANY($1) AND recorded_at >= $2 AND recorded_at < $3
          ORDER BY global_position LIMIT $4",
    )
    .bind(&officers)
    .bind(start)
    .bind(end)
    .bind(MAX_ACTIONS)
    .fetch_all(pool)
    .await?;
    let actions_truncated = actions_per_type.values().sum::<i64>() > actions.len() as i64;

    let rows: Vec<FindingRow> = sqlx::query_as(&format!(
        "SELECT {FINDING_COLUMNS} FROM supervision_findings
          WHERE officer_id = ANY($1) AND occurred_on BETWEEN $2 AND $3
          ORDER BY occurred_on, aggregate_id, rule, occurrence"
    ))
    .bind(&officers)
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?;
    let findings = rows.into_iter().map(finding_body).collect();

    // An officer's inspections: of the officer, or naming the officer in a finding or decision.
    // A station's: every inspection of the station.
    let officer_filter = (kind == "officer").then(|| subject.clone());
    let inspections: Vec<InspectionSummary> = sqlx::query_as(
        "SELECT i.inspection_id, i.body, i.target_kind, i.target_id, i.station_code, i.opened_by,
                i.opened_on, i.status, i.notices, i.outcome, i.accountable, i.closed_on
           FROM inspections i
          WHERE i.opened_on <= $3 AND (i.closed_on IS NULL OR i.closed_on >= $2)
            AND CASE WHEN $4::text IS NULL THEN i.station_code = $1
                     ELSE (i.target_kind = 'officer' AND i.target_id = $4)
                          OR $4 = ANY(i.accountable)
                          OR EXISTS (SELECT 1 FROM inspection_findings f
                                      WHERE f.inspection_id = i.inspection_id AND f.officer_id = $4)
                END
          ORDER BY i.opened_on, i.inspection_id",
    )
    .bind(&station)
    .bind(from)
    .bind(to)
    .bind(&officer_filter)
    .fetch_all(pool)
    .await?;
    let ids: Vec<String> = inspections
        .iter()
        .map(|inspection| inspection.inspection_id.clone())
        .collect();
    let inspection_findings: Vec<InspectionFindingRow> = sqlx::query_as(
        "SELECT inspection_id, number, station_code, category, rule, case_id, officer_id, description, found_on
           FROM inspection_findings
          WHERE inspection_id = ANY($1) AND ($2::text IS NULL OR officer_id = $2)
          ORDER BY found_on, inspection_id, number",
    )
    .bind(&ids)
    .bind(&officer_filter)
    .fetch_all(pool)
    .await?;
    let rectifications: Vec<RectificationRow> = sqlx::query_as(
        "SELECT inspection_id, round, station_code, requirement, required_on, due_on, reported_on,
                verified_on, status
           FROM rectifications WHERE inspection_id = ANY($1)
          ORDER BY required_on, inspection_id, round",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await?;
    Ok(Json(Trail {
        subject_kind: kind.to_string(),
        subject,
        from,
        to,
        actions_per_type,
        actions,
        actions_truncated,
        findings,
        inspections,
        inspection_findings,
        rectifications,
    }))
}
