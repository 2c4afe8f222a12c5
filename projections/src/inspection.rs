//! The inspections projection: inspections with their findings, notices and rectification
//! rounds, training records and problem reports, as the accountability trail and the
//! compliance report read them. It follows the event log in commit order with its checkpoint
//! (`inspections`) in the same transaction as its rows.
//!
//! It reads only the events of its three aggregate types, and still moves its checkpoint to the
//! last event below the read horizon. That is safe because every transaction below the horizon
//! has ended, so no event can commit before that place in the commit order later.

use aggregates::inspection::InspectionEvent;
use aggregates::problem_report::ProblemEvent;
use aggregates::training::TrainingEvent;
use serde::Serialize;
use sqlx::{PgPool, Postgres, Row, Transaction};
use tokio::sync::watch;

use crate::projector::{self, COMMIT_ORDER, COMMITTED_AFTER, Checkpoint, Lag, ProjectionError};

/// Name of the projection in `projection_checkpoints`.
pub const INSPECTIONS: &str = "inspections";

/// Events applied per transaction.
pub const BATCH_SIZE: i64 = 500;

/// Applies up to `limit` events of inspections, training records and problem reports after the
/// checkpoint, in one transaction with the new checkpoint, and returns how many it applied.
///
/// # Errors
/// Fails on a database error or an event that does not deserialize. The transaction then rolls
/// back whole.
pub async fn apply_next_batch(pool: &PgPool, limit: i64) -> Result<usize, ProjectionError> {
    let mut tx = pool.begin().await?;
    let checkpoint = projector::lock_checkpoint(&mut tx, INSPECTIONS).await?;
    let horizon = projector::read_horizon(&mut *tx).await?;
    // The last event that can be read, so that the checkpoint passes the other aggregates'
    // events too.
    let head = sqlx::query(&format!(
        "SELECT transaction_id, global_position FROM events WHERE {COMMITTED_AFTER}
          ORDER BY transaction_id DESC, global_position DESC LIMIT 1"
    ))
    .bind(checkpoint.transaction_id)
    .bind(checkpoint.global_position)
    .bind(horizon)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(head) = head.as_ref().map(Checkpoint::of) else {
        return Ok(0);
    };
    let rows = sqlx::query(&format!(
        "SELECT transaction_id, global_position, aggregate_type, aggregate_id, payload FROM events
          WHERE (transaction_id, global_position) > ($1, $2)
            AND (transaction_id, global_position) <= ($3, $4)
            AND aggregate_type IN ('inspection', 'training_record', 'problem_report')
          ORDER BY {COMMIT_ORDER} LIMIT $5"
    ))
    .bind(checkpoint.transaction_id)
    .bind(checkpoint.global_position)
    .bind(head.transaction_id)
    .bind(head.global_position)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;

    // A full batch may stop short of the head; otherwise everything up to the head is done.
    let reached = match rows.last() {
        Some(row) if rows.len() as i64 == limit => Checkpoint::of(row),
        _ => head,
    };

    for row in &rows {
        let position: i64 = row.get("global_position");
        let aggregate_type: String = row.get("aggregate_type");
        let id: String = row.get("aggregate_id");
        let payload: serde_json::Value = row.get("payload");
        let decode = |source| ProjectionError::Event { position, source };
        match aggregate_type.as_str() {
            "inspection" => {
                let event: InspectionEvent = serde_json::from_value(payload).map_err(decode)?;
                apply_inspection(&mut tx, &id, event).await?;
            }
            "training_record" => {
                let event: TrainingEvent = serde_json::from_value(payload).map_err(decode)?;
                apply_training(&mut tx, event).await?;
            }
            _ => {
                let event: ProblemEvent = serde_json::from_value(payload).map_err(decode)?;
                apply_problem(&mut tx, &id, event).await?;
            }
        }
    }

    projector::save_checkpoint(&mut tx, INSPECTIONS, reached).await?;
    tx.commit().await?;
    Ok(rows.len())
}

fn code<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|value| value.as_str().map(String::from))
        .unwrap_or_default()
}

async fn station_of(tx: &mut Transaction<'_, Postgres>, id: &str) -> sqlx::Result<String> {
    sqlx::query_scalar("SELECT station_code FROM inspections WHERE inspection_id = $1")
        .bind(id)
        .fetch_one(&mut **tx)
        .await
}

async fn set_status(
    tx: &mut Transaction<'_, Postgres>,
    id: &str,
    status: &str,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE inspections SET status = $2 WHERE inspection_id = $1")
        .bind(id)
        .bind(status)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn apply_inspection(
    tx: &mut Transaction<'_, Postgres>,
    id: &str,
    event: InspectionEvent,
) -> sqlx::Result<()> {
    match event {
        InspectionEvent::InspectionOpened {
            body,
            target_kind,
            target_id,
            station,
            inspector,
            reason,
            opened_on,
        } => {
            sqlx::query(
                "INSERT INTO inspections (inspection_id, body, target_kind, target_id, station_code, opened_by, reason, opened_on, status)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'open')",
            )
            .bind(id)
            .bind(code(&body))
            .bind(code(&target_kind))
            .bind(target_id)
            .bind(station)
            .bind(inspector)
            .bind(reason)
            .bind(opened_on)
            .execute(&mut **tx)
            .await?;
        }
        InspectionEvent::FindingRecorded {
            number,
            category,
            rule,
            case_id,
            officer,
            description,
            found_on,
            ..
        } => {
            let station = station_of(tx, id).await?;
            sqlx::query(
                "INSERT INTO inspection_findings (inspection_id, number, station_code, category, rule, case_id, officer_id, description, found_on)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(id)
            .bind(number as i32)
            .bind(station)
            .bind(code(&category))
            .bind(rule)
            .bind(case_id)
            .bind(officer)
            .bind(description)
            .bind(found_on)
            .execute(&mut **tx)
            .await?;
        }
        InspectionEvent::NoticePublished {
            text,
            published_on,
            audience,
            ..
        } => {
            // A notice without an area is addressed to the inspected station.
            sqlx::query(
                "INSERT INTO inspection_notices
                        (inspection_id, number, station_code, text, published_on, audience_level, audience_code)
                 SELECT inspection_id, notices + 1, station_code, $2, $3, COALESCE($4, 'station'),
                        COALESCE($5, station_code)
                   FROM inspections WHERE inspection_id = $1",
            )
            .bind(id)
            .bind(text)
            .bind(published_on)
            .bind(audience.as_ref().map(|area| area.level.code()))
            .bind(audience.map(|area| area.code))
            .execute(&mut **tx)
            .await?;
            sqlx::query("UPDATE inspections SET notices = notices + 1 WHERE inspection_id = $1")
                .bind(id)
                .execute(&mut **tx)
                .await?;
        }
        InspectionEvent::RectificationRequired {
            round,
            requirement,
            required_on,
            due_on,
            ..
        } => {
            insert_round(tx, id, round, &requirement, required_on, due_on).await?;
            set_status(tx, id, "rectification_required").await?;
        }
        InspectionEvent::RectificationReported {
            round, reported_on, ..
        } => {
            sqlx::query(
                "UPDATE rectifications SET reported_on = $3, status = 'reported' WHERE inspection_id = $1 AND round = $2",
            )
            .bind(id)
            .bind(round as i32)
            .bind(reported_on)
            .execute(&mut **tx)
            .await?;
            set_status(tx, id, "rectification_reported").await?;
        }
        InspectionEvent::RectificationVerified {
            round,
            accepted,
            verified_on,
            next_due_on,
            ..
        } => {
            let status = if accepted { "accepted" } else { "rejected" };
            let requirement: String = sqlx::query_scalar(
                "UPDATE rectifications SET verified_on = $3, status = $4 WHERE inspection_id = $1 AND round = $2
                 RETURNING requirement",
            )
            .bind(id)
            .bind(round as i32)
            .bind(verified_on)
            .bind(status)
            .fetch_one(&mut **tx)
            .await?;
            match next_due_on {
                Some(due_on) if !accepted => {
                    insert_round(tx, id, round + 1, &requirement, verified_on, due_on).await?;
                    set_status(tx, id, "rectification_required").await?;
                }
                _ => set_status(tx, id, "open").await?,
            }
        }
        InspectionEvent::InspectionClosed {
            outcome,
            officers,
            closed_on,
            ..
        } => {
            sqlx::query(
                "UPDATE inspections SET status = 'closed', outcome = $2, accountable = $3, closed_on = $4 WHERE inspection_id = $1",
            )
            .bind(id)
            .bind(code(&outcome))
            .bind(officers)
            .bind(closed_on)
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}

async fn insert_round(
    tx: &mut Transaction<'_, Postgres>,
    id: &str,
    round: u32,
    requirement: &str,
    required_on: chrono::NaiveDate,
    due_on: chrono::NaiveDate,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO rectifications (inspection_id, round, station_code, requirement, required_on, due_on, status)
         SELECT inspection_id, $2, station_code, $3, $4, $5, 'required' FROM inspections WHERE inspection_id = $1",
    )
    .bind(id)
    .bind(round as i32)
    .bind(requirement)
    .bind(required_on)
    .bind(due_on)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn apply_training(
    tx: &mut Transaction<'_, Postgres>,
    event: TrainingEvent,
) -> sqlx::Result<()> {
    let TrainingEvent::TrainingCompleted {
        officer,
        station,
        policy_version,
        course,
        completed_on,
        recorded_by,
    } = event;
    sqlx::query(
        "INSERT INTO training_records (officer_id, policy_version, station_code, course, completed_on, recorded_by)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(officer)
    .bind(policy_version)
    .bind(station)
    .bind(course)
    .bind(completed_on)
    .bind(recorded_by)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn apply_problem(
    tx: &mut Transaction<'_, Postgres>,
    id: &str,
    event: ProblemEvent,
) -> sqlx::Result<()> {
    match event {
        ProblemEvent::ProblemReported {
            station,
            reporter,
            matter,
            situation,
            reported_on,
        } => {
            sqlx::query(
                "INSERT INTO problem_reports (report_id, station_code, reporter, matter, situation, reported_on, status)
                 VALUES ($1, $2, $3, $4, $5, $6, 'reported')",
            )
            .bind(id)
            .bind(station)
            .bind(reporter)
            .bind(matter)
            .bind(situation)
            .bind(reported_on)
            .execute(&mut **tx)
            .await?;
        }
        ProblemEvent::ProblemAcknowledged {
            acknowledged_on, ..
        } => {
            sqlx::query(
                "UPDATE problem_reports SET status = 'acknowledged', acknowledged_on = $2 WHERE report_id = $1",
            )
            .bind(id)
            .bind(acknowledged_on)
            .execute(&mut **tx)
            .await?;
        }
        ProblemEvent::ProblemAnswered {
            answer,
            policy_version,
            answered_on,
            ..
        } => {
            sqlx::query(
                "UPDATE problem_reports SET status = 'answered', answer = $2, policy_version = $3, answered_on = $4 WHERE report_id = $1",
            )
            .bind(id)
            .bind(answer)
            .bind(policy_version)
            .bind(answered_on)
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}

/// Applies batches until every committed event is applied; returns the number of events applied.
///
/// # Errors
/// See [`apply_next_batch`].
pub async fn catch_up(pool: &PgPool) -> Result<usize, ProjectionError> {
    projector::catch_up_with(pool, INSPECTIONS, || apply_next_batch(pool, BATCH_SIZE)).await
}

/// Empties the projection's tables and its checkpoint and applies the whole log again.
///
/// # Errors
/// See [`apply_next_batch`].
pub async fn rebuild(pool: &PgPool) -> Result<usize, ProjectionError> {
    let mut tx = pool.begin().await?;
    projector::lock_checkpoint(&mut tx, INSPECTIONS).await?;
    for table in [
        "inspection_findings",
        "inspection_notices",
        "rectifications",
        "inspections",
        "training_records",
        "problem_reports",
    ] {
        sqlx::query(&format!("DELETE FROM {table}"))
            .execute(&mut *tx)
            .await?;
    }
    projector::save_checkpoint(&mut tx, INSPECTIONS, Checkpoint::default()).await?;
    tx.commit().await?;
    catch_up(pool).await
}

/// Returns the projection's checkpoint and the head of the log.
///
/// # Errors
/// Fails when the database cannot be read.
pub async fn lag(pool: &PgPool) -> sqlx::Result<Lag> {
    projector::lag_of(pool, INSPECTIONS).await
}

/// Runs the projection until `shutdown` turns true; see [`projector::poll`].
pub async fn run(pool: PgPool, shutdown: watch::Receiver<bool>) {
    projector::poll(INSPECTIONS, shutdown, || {
        apply_next_batch(&pool, BATCH_SIZE)
    })
    .await;
}
