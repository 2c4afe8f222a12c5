//! Following the event log in global order.
//!
//! Positions are assigned under a lock held until commit (see the events migration), so every
//! committed event has a smaller position than any event still being written: reading
//! `global_position > checkpoint` never skips a late commit.

use std::time::Duration;

use sqlx::{PgPool, Postgres, Row, Transaction};
use tokio::sync::watch;

use crate::application_view;

/// Name of the applications projection in `projection_checkpoints`.
pub const APPLICATIONS: &str = "applications";

/// Events applied per transaction.
const BATCH_SIZE: i64 = 500;

/// How long an idle projector waits before polling again.
const IDLE_POLL: Duration = Duration::from_millis(100);

/// A projection failure.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error("database error in projection: {0}")]
    Database(#[from] sqlx::Error),
    #[error("event at global position {position} does not deserialize: {source}")]
    Event {
        position: i64,
        source: serde_json::Error,
    },
}

/// Applies the next batch of events after the checkpoint, in one transaction with the new
/// checkpoint, and returns how many events it applied.
///
/// # Errors
/// Fails on a database error or an event that does not deserialize; the transaction then rolls
/// back and the checkpoint stays where it was.
pub async fn apply_next_batch(pool: &PgPool) -> Result<usize, ProjectionError> {
    let mut tx = pool.begin().await?;
    let checkpoint = lock_checkpoint(&mut tx, APPLICATIONS).await?;
    let rows = sqlx::query(
        "SELECT global_position, aggregate_type, aggregate_id, payload FROM events
          WHERE global_position > $1 ORDER BY global_position LIMIT $2",
    )
    .bind(checkpoint)
    .bind(BATCH_SIZE)
    .fetch_all(&mut *tx)
    .await?;
    let Some(last) = rows.last().map(|row| row.get::<i64, _>("global_position")) else {
        return Ok(0);
    };
    for row in &rows {
        let position: i64 = row.get("global_position");
        let aggregate_type: String = row.get("aggregate_type");
        if aggregate_type != "application" {
            continue;
        }
        let id: String = row.get("aggregate_id");
        let payload: serde_json::Value = row.get("payload");
        let event = serde_json::from_value(payload)
            .map_err(|source| ProjectionError::Event { position, source })?;
        application_view::apply(&mut tx, &id, position, event).await?;
    }
    sqlx::query("UPDATE projection_checkpoints SET global_position = $2, updated_at = now() WHERE projection = $1")
        .bind(APPLICATIONS)
        .bind(last)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(rows.len())
}

/// Reads and locks a projection's checkpoint, creating it at zero; the lock keeps two
/// projector processes from applying the same batch.
pub(crate) async fn lock_checkpoint(
    tx: &mut Transaction<'_, Postgres>,
    projection: &str,
) -> sqlx::Result<i64> {
    sqlx::query("INSERT INTO projection_checkpoints (projection, global_position) VALUES ($1, 0) ON CONFLICT DO NOTHING")
        .bind(projection)
        .execute(&mut **tx)
        .await?;
    sqlx::query_scalar(
        "SELECT global_position FROM projection_checkpoints WHERE projection = $1 FOR UPDATE",
    )
    .bind(projection)
    .fetch_one(&mut **tx)
    .await
}

/// Applies batches until the log is exhausted and returns the number of events applied.
///
/// # Errors
/// See [`apply_next_batch`].
pub async fn catch_up(pool: &PgPool) -> Result<usize, ProjectionError> {
    let mut total = 0;
    loop {
        let applied = apply_next_batch(pool).await?;
        if applied == 0 {
            return Ok(total);
        }
        total += applied;
    }
}

/// Empties the views and the checkpoint, then applies the whole log again; returns the number
/// of events applied.
///
/// # Errors
/// See [`apply_next_batch`].
pub async fn rebuild(pool: &PgPool) -> Result<usize, ProjectionError> {
    let mut tx = pool.begin().await?;
    lock_checkpoint(&mut tx, APPLICATIONS).await?;
    sqlx::query("DELETE FROM certificate_view")
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM application_view")
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE projection_checkpoints SET global_position = 0, updated_at = now() WHERE projection = $1")
        .bind(APPLICATIONS)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    catch_up(pool).await
}

/// The projection's position against the head of the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Lag {
    pub checkpoint: i64,
    pub head: i64,
}

impl Lag {
    /// Number of positions the projection trails the log by; gaps from rolled-back appends count.
    pub fn positions(&self) -> i64 {
        self.head - self.checkpoint
    }
}

/// Returns the checkpoint and the highest committed position.
///
/// # Errors
/// Fails when the database cannot be read.
pub async fn lag(pool: &PgPool) -> sqlx::Result<Lag> {
    lag_of(pool, APPLICATIONS).await
}

/// Returns the checkpoint of `projection` and the highest committed position.
///
/// # Errors
/// Fails when the database cannot be read.
pub async fn lag_of(pool: &PgPool, projection: &str) -> sqlx::Result<Lag> {
    let checkpoint: Option<i64> = sqlx::query_scalar(
        "SELECT global_position FROM projection_checkpoints WHERE projection = $1",
    )
    .bind(projection)
    .fetch_optional(pool)
    .await?;
    let head: Option<i64> = sqlx::query_scalar("SELECT max(global_position) FROM events")
        .fetch_one(pool)
        .await?;
    Ok(Lag {
        checkpoint: checkpoint.unwrap_or(0),
        head: head.unwrap_or(0),
    })
}

/// Runs the projector until `shutdown` turns true, polling when idle. A failed batch is logged
/// and retried after a pause; it never advances the checkpoint.
pub async fn run(pool: PgPool, shutdown: watch::Receiver<bool>) {
    poll(APPLICATIONS, shutdown, || apply_next_batch(&pool)).await;
}

/// Applies batches with `next_batch` until `shutdown` turns true: at once while batches carry
/// events, after a pause when one is empty, and a second after a failure, which is logged.
pub async fn poll<F, Fut>(projection: &str, mut shutdown: watch::Receiver<bool>, mut next_batch: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<usize, ProjectionError>>,
{
    tracing::info!(projection, "projector started");
    let mut failures: u32 = 0;
    while !*shutdown.borrow() {
        let pause = match next_batch().await {
            Ok(0) => IDLE_POLL,
            Ok(_) => {
                failures = 0;
                Duration::ZERO
            }
            Err(error) => {
                failures += 1;
                // Repeats of one failure are logged once every 50 attempts.
                if failures % 50 == 1 {
                    tracing::error!(projection, cause = %error, failures, "projection batch failed; retrying");
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
    tracing::info!(projection, "projector stopped");
}
