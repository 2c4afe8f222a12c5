//! Reading the ledger's records from the database: events as the chain hashes them, and the
//! checkpoints recorded as events of the `ledger` aggregate.

use aggregates::chain::StoredEvent;
use aggregates::ledger::{Checkpoint, LEDGER_ID, Ledger, LedgerEvent};
use anyhow::Context;
use cqrs_es::Aggregate;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};

/// Builds the hashed columns of an event from a row that selects them by name.
///
/// # Errors
/// Fails when a column is missing or has an unexpected type.
pub fn stored_event(row: &PgRow) -> Result<StoredEvent, sqlx::Error> {
    Ok(StoredEvent {
        aggregate_type: row.try_get("aggregate_type")?,
        aggregate_id: row.try_get("aggregate_id")?,
        sequence: row.try_get::<i64, _>("sequence")? as u64,
        event_type: row.try_get("event_type")?,
        event_version: row.try_get("event_version")?,
        payload: row.try_get("payload")?,
        metadata: row.try_get("metadata")?,
    })
}

/// Decodes a checkpoint from the payload of a `ledger` event.
///
/// # Errors
/// Fails when the payload is not a `CheckpointSigned` event.
pub fn checkpoint_from_payload(payload: &serde_json::Value) -> anyhow::Result<Checkpoint> {
    let event: LedgerEvent = serde_json::from_value(payload.clone())
        .context("a ledger event's payload is not a CheckpointSigned event")?;
    let LedgerEvent::CheckpointSigned(checkpoint) = event;
    Ok(checkpoint)
}

/// Reads the checkpoints recorded in the database, in the order they were recorded.
///
/// # Errors
/// Fails when the database cannot be read or a checkpoint event cannot be decoded.
pub async fn database_checkpoints(pool: &PgPool) -> anyhow::Result<Vec<Checkpoint>> {
    let payloads: Vec<serde_json::Value> = sqlx::query_scalar(
        "SELECT payload FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence",
    )
    .bind(Ledger::TYPE)
    .bind(LEDGER_ID)
    // Unprepared, like verification's reads: it must survive a changed column type.
    .persistent(false)
    .fetch_all(pool)
    .await
    .context("reading the ledger's checkpoints failed")?;
    payloads.iter().map(checkpoint_from_payload).collect()
}

/// How far sealing has come, as `verify` counts it: the events the newest signed checkpoint
/// covers, and the committed events after them in commit order (counted up to
/// [`UNSEALED_COUNTED`]). The newest checkpoint's own record is always among the latter until
/// the next checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SealingProgress {
    pub sealed_events: i64,
    pub unsealed_events: i64,
}

/// Maximum number of unsealed events that [`sealing_progress`] counts, so that a health check
/// stays cheap on a log that has not been sealed for a long time.
pub const UNSEALED_COUNTED: i64 = 100_000;

/// Returns how far sealing has come.
///
/// # Errors
/// Fails on a database error or a newest checkpoint record that does not decode.
pub async fn sealing_progress(pool: &PgPool) -> anyhow::Result<SealingProgress> {
    let newest: Option<serde_json::Value> = sqlx::query_scalar(
        "SELECT payload FROM events WHERE aggregate_type = $1 AND aggregate_id = $2
          ORDER BY sequence DESC LIMIT 1",
    )
    .bind(Ledger::TYPE)
    .bind(LEDGER_ID)
    .fetch_optional(pool)
    .await?;
    let sealed_events = match &newest {
        Some(payload) => checkpoint_from_payload(payload)?.tree_size as i64,
        None => 0,
    };

    // The place of the last covered event in commit order; before any checkpoint, every event
    // counts, so the place lies below all of them.
    let after: (i64, i64) = if sealed_events == 0 {
        (i64::MIN, i64::MIN)
    } else {
        sqlx::query_as(
            "SELECT e.transaction_id, e.global_position
               FROM ledger_leaves l JOIN events e ON e.global_position = l.global_position
              WHERE l.leaf_index = $1",
        )
        .bind(sealed_events - 1)
        .fetch_one(pool)
        .await
        .context("the newest checkpoint's last leaf is missing")?
    };

    let unsealed_events: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (
             SELECT 1 FROM events WHERE (transaction_id, global_position) > ($1, $2) LIMIT $3
         ) unsealed",
    )
    .bind(after.0)
    .bind(after.1)
    .bind(UNSEALED_COUNTED)
    .fetch_one(pool)
    .await?;
    Ok(SealingProgress {
        sealed_events,
        unsealed_events,
    })
}
