//! The supervision projection: findings of the detectors, following the event log in global
//! order with its checkpoint (`supervision`) in the same transaction as its rows.
//!
//! Deadline rules need a notion of "now". Closing events dated after the promised date, and
//! feedback delivered after its deadline, are findings as soon as the event is projected. A
//! case still open after its date is found by [`sweep`], which the running projector calls
//! with today's date in China Standard Time once it has caught up with the log, and at most
//! once a minute. A later closing event dated on or before the date removes that finding,
//! because a paper decision may be entered days after it was made.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aggregates::application::ApplicationEvent;
use aggregates::exchange::request::RequestEvent;
use aggregates::policy::PolicyBook;
use aggregates::record_check::RecordCheckEvent;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::{PgPool, Postgres, Row, Transaction};
use tokio::sync::watch;

use crate::projector::{self, Lag, ProjectionError};

pub mod detectors;
#[cfg(test)]
mod tests;

use detectors::{
    ApplicationCase, Detected, EventContext, EventRef, ExchangeCase, Finding, RecordCheckCase, Rule,
};

/// Name of the supervision projection in `projection_checkpoints`.
pub const SUPERVISION: &str = "supervision";

/// Events applied per transaction by [`run`] and [`catch_up`].
pub const BATCH_SIZE: i64 = 500;

const IDLE_POLL: Duration = Duration::from_millis(100);

/// Minimum time between two sweeps of a running projector.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

const APPLICATION: &str = "application";
const EXCHANGE_REQUEST: &str = "exchange_request";
const RECORD_CHECK: &str = "record_check";

/// Returns today's date in China Standard Time (UTC+8), the date deadlines are counted in.
pub fn today_in_china() -> NaiveDate {
    (Utc::now() + chrono::Duration::hours(8)).date_naive()
}

/// Applies up to `limit` events after the checkpoint, in one transaction with the new
/// checkpoint, and returns how many events it read.
///
/// # Errors
/// Fails on a database error or an event that does not deserialize. The transaction then
/// rolls back, so neither the findings nor the checkpoint of the batch are kept.
pub async fn apply_next_batch(
    pool: &PgPool,
    policies: &PolicyBook,
    limit: i64,
) -> Result<usize, ProjectionError> {
    let mut tx = pool.begin().await?;
    let checkpoint = projector::lock_checkpoint(&mut tx, SUPERVISION).await?;
    let rows = sqlx::query(
        "SELECT global_position, aggregate_type, aggregate_id, sequence, event_type, payload,
                metadata->>'actor_role' AS actor_role, recorded_at
           FROM events WHERE global_position > $1 ORDER BY global_position LIMIT $2",
    )
    .bind(checkpoint)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    let Some(last) = rows.last().map(|row| row.get::<i64, _>("global_position")) else {
        return Ok(0);
    };
    for row in &rows {
        let aggregate_type: String = row.get("aggregate_type");
        if ![APPLICATION, EXCHANGE_REQUEST, RECORD_CHECK].contains(&aggregate_type.as_str()) {
            continue;
        }
        let position: i64 = row.get("global_position");
        let recorded_at: DateTime<Utc> = row.get("recorded_at");
        let context = EventContext {
            at: EventRef {
                aggregate_type: aggregate_type.clone(),
                aggregate_id: row.get("aggregate_id"),
                sequence: row.get("sequence"),
                global_position: position,
                event_type: row.get("event_type"),
            },
            actor_role: row.get("actor_role"),
            recorded_on: (recorded_at + chrono::Duration::hours(8)).date_naive(),
        };
        let payload: serde_json::Value = row.get("payload");
        if aggregate_type == APPLICATION {
            let event: ApplicationEvent = serde_json::from_value(payload)
                .map_err(|source| ProjectionError::Event { position, source })?;
            apply_application(&mut tx, event, &context, policies).await?;
        } else if aggregate_type == RECORD_CHECK {
            let event: RecordCheckEvent = serde_json::from_value(payload)
                .map_err(|source| ProjectionError::Event { position, source })?;
            apply_record_check(&mut tx, event, &context).await?;
        } else {
            let event: RequestEvent = serde_json::from_value(payload)
                .map_err(|source| ProjectionError::Event { position, source })?;
            apply_exchange(&mut tx, event, &context).await?;
        }
    }
    sqlx::query("UPDATE projection_checkpoints SET global_position = $2, updated_at = now() WHERE projection = $1")
        .bind(SUPERVISION)
        .bind(last)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(rows.len())
}

async fn apply_application(
    tx: &mut Transaction<'_, Postgres>,
    event: ApplicationEvent,
    context: &EventContext,
    policies: &PolicyBook,
) -> sqlx::Result<()> {
    let id = &context.at.aggregate_id;
    let mut case: ApplicationCase = load_case(tx, APPLICATION, id).await?;
    let detected = detectors::detect_application(&mut case, event, context, policies);
    store_case(tx, APPLICATION, id, &case, case.due_on()).await?;
    let place = Place {
        station: Some(&case.station),
        unit: None,
    };
    record(tx, APPLICATION, id, &place, detected).await
}

async fn apply_record_check(
    tx: &mut Transaction<'_, Postgres>,
    event: RecordCheckEvent,
    context: &EventContext,
) -> sqlx::Result<()> {
    let id = &context.at.aggregate_id;
    let mut case: RecordCheckCase = load_case(tx, RECORD_CHECK, id).await?;
    let detected = detectors::detect_record_check(&mut case, event, context);
    store_case(tx, RECORD_CHECK, id, &case, case.due_on()).await?;
    let place = Place {
        station: Some(&case.station),
        unit: None,
    };
    record(tx, RECORD_CHECK, id, &place, detected).await
}

async fn apply_exchange(
    tx: &mut Transaction<'_, Postgres>,
    event: RequestEvent,
    context: &EventContext,
) -> sqlx::Result<()> {
    let id = &context.at.aggregate_id;
    let mut case: ExchangeCase = load_case(tx, EXCHANGE_REQUEST, id).await?;
    let detected = detectors::detect_exchange(&mut case, event, &context.at);
    store_case(tx, EXCHANGE_REQUEST, id, &case, case.due_on()).await?;
    let place = Place {
        station: None,
        unit: Some(&case.unit),
    };
    record(tx, EXCHANGE_REQUEST, id, &place, detected).await
}

/// Station of an application's findings, or unit of an exchange request's.
struct Place<'a> {
    station: Option<&'a str>,
    unit: Option<&'a str>,
}

async fn load_case<T: DeserializeOwned + Default>(
    tx: &mut Transaction<'_, Postgres>,
    aggregate_type: &str,
    id: &str,
) -> sqlx::Result<T> {
    let state: Option<serde_json::Value> = sqlx::query_scalar(
        "SELECT state FROM supervision_cases WHERE aggregate_type = $1 AND aggregate_id = $2",
    )
    .bind(aggregate_type)
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    match state {
        Some(state) => {
            serde_json::from_value(state).map_err(|error| sqlx::Error::Decode(error.into()))
        }
        None => Ok(T::default()),
    }
}

async fn store_case<T: Serialize>(
    tx: &mut Transaction<'_, Postgres>,
    aggregate_type: &str,
    id: &str,
    case: &T,
    due_on: Option<NaiveDate>,
) -> sqlx::Result<()> {
    let state = serde_json::to_value(case).map_err(|error| sqlx::Error::Encode(error.into()))?;
    sqlx::query(
        "INSERT INTO supervision_cases (aggregate_type, aggregate_id, state, due_on) VALUES ($1, $2, $3, $4)
         ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE SET state = EXCLUDED.state, due_on = EXCLUDED.due_on",
    )
    .bind(aggregate_type)
    .bind(id)
    .bind(state)
    .bind(due_on)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Writes the findings of one event. A finding proved by an event replaces one the sweep
/// recorded for the same rule, so that a rebuild, which reads the event before any sweep, ends equal.
async fn record(
    tx: &mut Transaction<'_, Postgres>,
    aggregate_type: &str,
    id: &str,
    place: &Place<'_>,
    detected: Detected,
) -> sqlx::Result<()> {
    for rule in detected.cleared {
        sqlx::query(
            "DELETE FROM supervision_findings WHERE aggregate_type = $1 AND aggregate_id = $2 AND rule = $3",
        )
        .bind(aggregate_type)
        .bind(id)
        .bind(rule.code())
        .execute(&mut **tx)
        .await?;
    }
    for finding in detected.findings {
        insert_finding(tx, aggregate_type, id, place, &finding, true).await?;
    }
    Ok(())
}

async fn insert_finding(
    tx: &mut Transaction<'_, Postgres>,
    aggregate_type: &str,
    id: &str,
    place: &Place<'_>,
    finding: &Finding,
    replace: bool,
) -> sqlx::Result<bool> {
    let conflict = if replace {
        "DO UPDATE SET officer_id = EXCLUDED.officer_id, occurred_on = EXCLUDED.occurred_on,
                       detail = EXCLUDED.detail, evidence = EXCLUDED.evidence"
    } else {
        "DO NOTHING"
    };
    let evidence = serde_json::to_value(&finding.evidence)
        .map_err(|error| sqlx::Error::Encode(error.into()))?;
    let result = sqlx::query(&format!(
        "INSERT INTO supervision_findings
                (aggregate_type, aggregate_id, rule, station_code, unit_code, officer_id, occurred_on, detail, evidence)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (aggregate_type, aggregate_id, rule) {conflict}"
    ))
    .bind(aggregate_type)
    .bind(id)
    .bind(finding.rule.code())
    .bind(place.station)
    .bind(place.unit)
    .bind(&finding.officer)
    .bind(finding.occurred_on)
    .bind(&finding.detail)
    .bind(evidence)
    .execute(&mut **tx)
    .await?;
    Ok(result.rows_affected() > 0)
}

/// Records deadline findings of cases still open after their date, as of `today`, and
/// returns how many it added. Returns `None` when the projection trails the log, because an
/// event not yet projected may close a case on time.
///
/// # Errors
/// Fails on a database error or a stored case that does not deserialize.
pub async fn sweep(pool: &PgPool, today: NaiveDate) -> Result<Option<usize>, ProjectionError> {
    let mut tx = pool.begin().await?;
    let checkpoint = projector::lock_checkpoint(&mut tx, SUPERVISION).await?;
    let head: Option<i64> = sqlx::query_scalar("SELECT max(global_position) FROM events")
        .fetch_one(&mut *tx)
        .await?;
    if head.unwrap_or(0) > checkpoint {
        return Ok(None);
    }
    let rows: Vec<(String, String, serde_json::Value)> = sqlx::query_as(
        "SELECT c.aggregate_type, c.aggregate_id, c.state FROM supervision_cases c
          WHERE c.due_on < $1
            AND NOT EXISTS (SELECT 1 FROM supervision_findings f
                             WHERE f.aggregate_type = c.aggregate_type AND f.aggregate_id = c.aggregate_id
                               AND f.rule IN ('overdue', 'feedback_late', 'objection_overdue'))",
    )
    .bind(today)
    .fetch_all(&mut *tx)
    .await?;
    let mut added = 0;
    for (aggregate_type, id, state) in rows {
        let decode = |error: serde_json::Error| sqlx::Error::Decode(error.into());
        let inserted = if aggregate_type == APPLICATION {
            let case: ApplicationCase = serde_json::from_value(state).map_err(decode)?;
            let place = Place {
                station: Some(&case.station),
                unit: None,
            };
            match detectors::overdue_open(&case, today) {
                Some(finding) => {
                    insert_finding(&mut tx, APPLICATION, &id, &place, &finding, false).await?
                }
                None => false,
            }
        } else if aggregate_type == RECORD_CHECK {
            let case: RecordCheckCase = serde_json::from_value(state).map_err(decode)?;
            let place = Place {
                station: Some(&case.station),
                unit: None,
            };
            match detectors::objection_missing(&case, today) {
                Some(finding) => {
                    insert_finding(&mut tx, RECORD_CHECK, &id, &place, &finding, false).await?
                }
                None => false,
            }
        } else {
            let case: ExchangeCase = serde_json::from_value(state).map_err(decode)?;
            let place = Place {
                station: None,
                unit: Some(&case.unit),
            };
            match detectors::feedback_missing(&case, today) {
                Some(finding) => {
                    insert_finding(&mut tx, EXCHANGE_REQUEST, &id, &place, &finding, false).await?
                }
                None => false,
            }
        };
        added += usize::from(inserted);
    }
    tx.commit().await?;
    Ok(Some(added))
}

/// Applies batches until the log is exhausted and returns the number of events read.
///
/// # Errors
/// See [`apply_next_batch`].
pub async fn catch_up(pool: &PgPool, policies: &PolicyBook) -> Result<usize, ProjectionError> {
    let mut total = 0;
    loop {
        let applied = apply_next_batch(pool, policies, BATCH_SIZE).await?;
        if applied == 0 {
            return Ok(total);
        }
        total += applied;
    }
}

/// Empties the findings, the case states and the checkpoint, applies the whole log again and
/// sweeps as of `today`; returns the number of events read.
///
/// # Errors
/// See [`apply_next_batch`].
pub async fn rebuild(
    pool: &PgPool,
    policies: &PolicyBook,
    today: NaiveDate,
) -> Result<usize, ProjectionError> {
    let mut tx = pool.begin().await?;
    projector::lock_checkpoint(&mut tx, SUPERVISION).await?;
    sqlx::query("DELETE FROM supervision_findings")
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM supervision_cases")
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE projection_checkpoints SET global_position = 0, updated_at = now() WHERE projection = $1")
        .bind(SUPERVISION)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    let applied = catch_up(pool, policies).await?;
    sweep(pool, today).await?;
    Ok(applied)
}

/// Returns the checkpoint of the supervision projection and the head of the log.
///
/// # Errors
/// Fails when the database cannot be read.
pub async fn lag(pool: &PgPool) -> sqlx::Result<Lag> {
    projector::lag_of(pool, SUPERVISION).await
}

/// Runs the projection until `shutdown` turns true, polling when idle and sweeping deadlines
/// once caught up. A failed batch is logged and retried after a pause; it never advances the
/// checkpoint.
pub async fn run(pool: PgPool, policies: Arc<PolicyBook>, mut shutdown: watch::Receiver<bool>) {
    tracing::info!(projection = SUPERVISION, "projector started");
    let mut failures: u32 = 0;
    let mut last_sweep: Option<Instant> = None;
    while !*shutdown.borrow() {
        let pause = match apply_next_batch(&pool, &policies, BATCH_SIZE).await {
            Ok(0) => {
                if last_sweep.is_none_or(|at| at.elapsed() >= SWEEP_INTERVAL) {
                    match sweep(&pool, today_in_china()).await {
                        Ok(Some(_)) => last_sweep = Some(Instant::now()),
                        Ok(None) => {}
                        Err(error) => {
                            tracing::error!(projection = SUPERVISION, cause = %error, "deadline sweep failed; retrying");
                        }
                    }
                }
                IDLE_POLL
            }
            Ok(_) => {
                failures = 0;
                Duration::ZERO
            }
            Err(error) => {
                failures += 1;
                // Repeats of one failure are logged once every 50 attempts.
                if failures % 50 == 1 {
                    tracing::error!(projection = SUPERVISION, cause = %error, failures, "projection batch failed; retrying");
                }
                Duration::from_secs(1)
            }
        };
        if !pause.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
    tracing::info!(projection = SUPERVISION, "projector stopped");
}

/// Returns every rule code with its category (`inaction` or `misconduct`).
pub fn rule_categories() -> Vec<(&'static str, &'static str)> {
    Rule::ALL
        .iter()
        .map(|rule| (rule.code(), rule.category()))
        .collect()
}

/// Returns every rule code, for validating a `rule` filter.
pub fn rule_codes() -> Vec<&'static str> {
    Rule::ALL.iter().map(|rule| rule.code()).collect()
}
