//! Following the event log in commit order.
//!
//! Appends run concurrently, so a global position can become visible after larger ones. Each
//! event also records the id of the transaction that wrote it, and readers follow the order
//! (transaction id, global position). They take only events whose transaction id is below the
//! oldest transaction still running in the database ([`read_horizon`]). Those transactions have
//! all ended, and any later commit sorts after them, so a reader never skips a late commit (see
//! the commit order migration).

use std::time::Duration;

use sqlx::postgres::PgRow;
use sqlx::{PgPool, Postgres, Row, Transaction};
use tokio::sync::watch;

use crate::application_view;

/// Name of the applications projection in `projection_checkpoints`.
pub const APPLICATIONS: &str = "applications";

/// Events applied per transaction.
const BATCH_SIZE: i64 = 500;

/// Condition on `events` that selects the events after the checkpoint `($1, $2)` in commit
/// order below the horizon `$3` from [`read_horizon`].
pub const COMMITTED_AFTER: &str =
    "(transaction_id, global_position) > ($1, $2) AND transaction_id < $3";

/// `ORDER BY` list of the commit order.
pub const COMMIT_ORDER: &str = "transaction_id, global_position";

/// A place in the commit order: the event last applied, or the start before the first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Checkpoint {
    pub transaction_id: i64,
    pub global_position: i64,
}

impl Default for Checkpoint {
    /// Returns the start of the log. Its transaction id is the smallest number, not zero,
    /// because events restored from another server may have been shifted below zero.
    fn default() -> Checkpoint {
        Checkpoint {
            transaction_id: i64::MIN,
            global_position: 0,
        }
    }
}

impl Checkpoint {
    /// Returns the place of the event in `row`, which has the columns `transaction_id` and
    /// `global_position`.
    pub fn of(row: &PgRow) -> Checkpoint {
        Checkpoint {
            transaction_id: row.get("transaction_id"),
            global_position: row.get("global_position"),
        }
    }
}

/// Returns the transaction id below which every transaction of the database has ended. Call it
/// in a statement before the one that reads the events, so that a transaction that ends in
/// between is visible to the read.
///
/// # Errors
/// Fails when the database cannot be read.
pub async fn read_horizon<'e>(executor: impl sqlx::PgExecutor<'e>) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT events_read_horizon()")
        .fetch_one(executor)
        .await
}

/// How long an idle projector waits before polling again.
const IDLE_POLL: Duration = Duration::from_millis(100);

/// How long a catch-up waits for the transactions before a committed event to end.
const CATCH_UP_PAUSE: Duration = Duration::from_millis(5);

/// Pauses after which a catch-up logs what it waits for (about five seconds).
const CATCH_UP_WARN_AFTER: u32 = 1000;

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
    let horizon = read_horizon(&mut *tx).await?;
    let rows = sqlx::query(&format!(
        "SELECT transaction_id, global_position, aggregate_type, aggregate_id, payload FROM events
          WHERE {COMMITTED_AFTER} ORDER BY {COMMIT_ORDER} LIMIT $4"
    ))
    .bind(checkpoint.transaction_id)
    .bind(checkpoint.global_position)
    .bind(horizon)
    .bind(BATCH_SIZE)
    .fetch_all(&mut *tx)
    .await?;
    let Some(last) = rows.last().map(Checkpoint::of) else {
        return Ok(0);
    };
    let mut events = Vec::new();
    for row in &rows {
        let position: i64 = row.get("global_position");
        let aggregate_type: &str = row.get("aggregate_type");
        if aggregate_type != "application" {
            continue;
        }
        let id: String = row.get("aggregate_id");
        let payload: serde_json::Value = row.get("payload");
        let event = serde_json::from_value(payload)
            .map_err(|source| ProjectionError::Event { position, source })?;
        events.push((id, position, event));
    }
    application_view::apply_batch(&mut tx, events).await?;
    save_checkpoint(&mut tx, APPLICATIONS, last).await?;
    tx.commit().await?;
    Ok(rows.len())
}

/// Reads and locks a projection's checkpoint, creating it at zero; the lock keeps two
/// projector processes from applying the same batch.
pub(crate) async fn lock_checkpoint(
    tx: &mut Transaction<'_, Postgres>,
    projection: &str,
) -> sqlx::Result<Checkpoint> {
    let start = Checkpoint::default();
    sqlx::query(
        "INSERT INTO projection_checkpoints (projection, transaction_id, global_position) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
    )
    .bind(projection)
    .bind(start.transaction_id)
    .bind(start.global_position)
    .execute(&mut **tx)
    .await?;
    let row = sqlx::query(
        "SELECT transaction_id, global_position FROM projection_checkpoints WHERE projection = $1 FOR UPDATE",
    )
    .bind(projection)
    .fetch_one(&mut **tx)
    .await?;
    Ok(Checkpoint::of(&row))
}

/// Stores a projection's checkpoint, in the transaction that applied the events up to it.
pub(crate) async fn save_checkpoint(
    tx: &mut Transaction<'_, Postgres>,
    projection: &str,
    checkpoint: Checkpoint,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE projection_checkpoints SET transaction_id = $2, global_position = $3, updated_at = now()
          WHERE projection = $1",
    )
    .bind(projection)
    .bind(checkpoint.transaction_id)
    .bind(checkpoint.global_position)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Applies batches until every committed event is applied and returns the number of events
/// applied.
///
/// # Errors
/// See [`apply_next_batch`].
pub async fn catch_up(pool: &PgPool) -> Result<usize, ProjectionError> {
    catch_up_with(pool, APPLICATIONS, || apply_next_batch(pool)).await
}

/// Waits, at most `limit`, until every committed event after `after` can be read in commit
/// order, that is until the database's transactions before them have ended. Returns whether
/// they have.
///
/// # Errors
/// Fails when the database cannot be read.
pub async fn wait_until_readable(
    pool: &PgPool,
    after: Checkpoint,
    limit: Duration,
) -> sqlx::Result<bool> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let waiting: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM events WHERE (transaction_id, global_position) > ($1, $2)
                AND transaction_id >= events_read_horizon())",
        )
        .bind(after.transaction_id)
        .bind(after.global_position)
        .fetch_one(pool)
        .await?;
        if !waiting {
            return Ok(true);
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(CATCH_UP_PAUSE).await;
    }
}

/// Applies batches of `projection` with `next_batch` until no committed event remains after
/// its checkpoint, and returns the sum of what the batches returned.
///
/// An event whose transaction committed while an older transaction of the database is still
/// running cannot be read yet, so this waits for that transaction to end.
///
/// # Errors
/// The first error of `next_batch`, or a database error.
pub async fn catch_up_with<F, Fut>(
    pool: &PgPool,
    projection: &str,
    mut next_batch: F,
) -> Result<usize, ProjectionError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<usize, ProjectionError>>,
{
    let mut total = 0;
    let mut waits: u32 = 0;
    loop {
        let applied = next_batch().await?;
        total += applied;
        if applied == 0 {
            if lag_of(pool, projection).await?.behind == 0 {
                return Ok(total);
            }
            waits += 1;
            if waits == CATCH_UP_WARN_AFTER {
                tracing::warn!(
                    projection,
                    "waiting for an older transaction of the database to end before applying the newest events"
                );
            }
            tokio::time::sleep(CATCH_UP_PAUSE).await;
        }
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
    save_checkpoint(&mut tx, APPLICATIONS, Checkpoint::default()).await?;
    tx.commit().await?;
    catch_up(pool).await
}

/// The projection's place against the head of the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Lag {
    pub checkpoint: Checkpoint,
    /// Highest global position committed.
    pub head: i64,
    /// Committed events after the checkpoint, which the projection has yet to apply.
    pub behind: i64,
}

/// Returns the checkpoint and the highest committed position.
///
/// # Errors
/// Fails when the database cannot be read.
pub async fn lag(pool: &PgPool) -> sqlx::Result<Lag> {
    lag_of(pool, APPLICATIONS).await
}

/// Returns the checkpoint of `projection`, the highest committed position and the number of
/// committed events after the checkpoint.
///
/// # Errors
/// Fails when the database cannot be read.
pub async fn lag_of(pool: &PgPool, projection: &str) -> sqlx::Result<Lag> {
    let checkpoint = sqlx::query(
        "SELECT transaction_id, global_position FROM projection_checkpoints WHERE projection = $1",
    )
    .bind(projection)
    .fetch_optional(pool)
    .await?
    .map(|row| Checkpoint::of(&row))
    .unwrap_or_default();
    let (head, behind): (Option<i64>, i64) = sqlx::query_as(
        "SELECT (SELECT max(global_position) FROM events),
                (SELECT count(*) FROM events WHERE (transaction_id, global_position) > ($1, $2))",
    )
    .bind(checkpoint.transaction_id)
    .bind(checkpoint.global_position)
    .fetch_one(pool)
    .await?;
    Ok(Lag {
        checkpoint,
        head: head.unwrap_or(0),
        behind,
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
