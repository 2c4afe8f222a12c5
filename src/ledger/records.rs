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
