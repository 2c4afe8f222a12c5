//! Bulk insertion of ready-made events for the benchmarks, which write histories far faster
//! than commands could. The events table's trigger still assigns each row its place.

use aggregates::chain::StoredEvent;
use sqlx::PgPool;

/// Inserts `batch` into the events table with one statement.
pub async fn insert_events(pool: &PgPool, batch: &[StoredEvent]) -> anyhow::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let column = |pick: fn(&StoredEvent) -> String| batch.iter().map(pick).collect::<Vec<_>>();
    let sequences: Vec<i64> = batch.iter().map(|event| event.sequence as i64).collect();
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         SELECT t, i, s, e, v, p::json, m::json
           FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[])
             AS rows(t, i, s, e, v, p, m)",
    )
    .bind(column(|event| event.aggregate_type.clone()))
    .bind(column(|event| event.aggregate_id.clone()))
    .bind(sequences)
    .bind(column(|event| event.event_type.clone()))
    .bind(column(|event| event.event_version.clone()))
    .bind(column(|event| event.payload.to_string()))
    .bind(column(|event| event.metadata.to_string()))
    .execute(pool)
    .await?;
    Ok(())
}
