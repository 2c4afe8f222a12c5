//! `GET /v1/supervision/overrides`: each officer's screening overrides against the rest of the
//! station, so that an officer whose overrides stand out can be examined.
//!
//! An officer stands out with at least [`MIN_OVERRIDES`] overrides in the period and an
//! override rate more than [`RATE_FACTOR`] times that of the station's other officers.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;

use super::{Params, check_period, invalid, scope_of, station_filter};
use crate::http::auth::Authenticated;
use crate::http::error::{ApiResult, ErrorBody};
use crate::http::{ApiQuery, AppState};

/// Minimum number of overrides in the period for an officer to stand out.
// NOTE: both thresholds are the product's first choice; the notice sets none.
pub const MIN_OVERRIDES: i64 = 3;

/// How many times the rate of the station's other officers an officer's rate must exceed.
pub const RATE_FACTOR: f64 = 2.0;

/// One officer's applications and overrides in the period.
#[derive(Debug, Serialize, ToSchema)]
pub struct OfficerOverrides {
    pub station: String,
    pub officer: String,
    /// Applications the officer handled, decided in the period.
    pub handled: i64,
    /// Overrides the officer made on applications decided in the period.
    pub overrides: i64,
    /// `overrides / handled`; `null` when the officer handled none.
    pub rate: Option<f64>,
    /// The same rate over the station's other officers; `null` when they handled none.
    pub others_rate: Option<f64>,
    pub stands_out: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OverrideComparison {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub min_overrides: i64,
    pub rate_factor: f64,
    pub officers: Vec<OfficerOverrides>,
}

fn rate(part: i64, total: i64) -> Option<f64> {
    (total > 0).then(|| (part as f64 / total as f64 * 10_000.0).round() / 10_000.0)
}

#[utoipa::path(get, path = "/v1/supervision/overrides",
    params(
        ("station" = Option<String>, Query, description = "station code; station leaders read only their own, which is the default"),
        ("from" = NaiveDate, Query, description = "first decision date, inclusive"),
        ("to" = NaiveDate, Query, description = "last decision date, inclusive"),
    ),
    responses((status = 200, body = OverrideComparison), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn overrides(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiQuery(query): ApiQuery<BTreeMap<String, String>>,
) -> ApiResult<Json<OverrideComparison>> {
    let scope = scope_of(&actor)?;
    let params = Params::new(query, &["station", "from", "to"])?;
    let (Some(from), Some(to)) = (params.date("from")?, params.date("to")?) else {
        return Err(invalid(
            "from",
            "query parameters from and to are required, as YYYY-MM-DD".into(),
        ));
    };
    check_period(Some(from), Some(to))?;
    let station = station_filter(&state, scope, params.text("station")).await?;

    // The case states of the findings projection carry the handler and the overriding officer.
    let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "WITH cases AS (
             SELECT state->>'station' AS station, state->>'handling_officer' AS handler,
                    state->>'overridden_by' AS overrider
               FROM supervision_cases
              WHERE aggregate_type = 'application'
                AND (state->>'decision_date')::date BETWEEN $2 AND $3
                AND ($1::text IS NULL OR state->>'station' = $1))
         SELECT station, officer, sum(handled)::bigint, sum(overrides)::bigint FROM (
             SELECT station, handler AS officer, 1 AS handled, 0 AS overrides FROM cases
             UNION ALL
             SELECT station, overrider, 0, 1 FROM cases WHERE overrider IS NOT NULL) acts
          GROUP BY station, officer ORDER BY station, officer",
    )
    .bind(station)
    .bind(from)
    .bind(to)
    .fetch_all(&state.pool)
    .await?;

    let mut totals: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for (station, _, handled, overrides) in &rows {
        let total = totals.entry(station.as_str()).or_default();
        total.0 += handled;
        total.1 += overrides;
    }
    let officers = rows
        .iter()
        .map(|(station, officer, handled, overrides)| {
            let (all_handled, all_overrides) = totals[station.as_str()];
            let rate_of_officer = rate(*overrides, *handled);
            let others_rate = rate(all_overrides - overrides, all_handled - handled);
            let stands_out = *overrides >= MIN_OVERRIDES
                && match (rate_of_officer, others_rate) {
                    (Some(own), Some(others)) => own > RATE_FACTOR * others,
                    // Overrides on applications others handled, with none of their own.
                    (None, _) => true,
                    // No other officer handled an application: there is nothing to compare.
                    (Some(_), None) => false,
                };
            OfficerOverrides {
                station: station.clone(),
                officer: officer.clone(),
                handled: *handled,
                overrides: *overrides,
                rate: rate_of_officer,
                others_rate,
                stands_out,
            }
        })
        .collect();
    Ok(Json(OverrideComparison {
        from,
        to,
        min_overrides: MIN_OVERRIDES,
        rate_factor: RATE_FACTOR,
        officers,
    }))
}
