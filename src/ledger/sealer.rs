//! The sealer: appends every event, in commit order, as a leaf of the ledger's Merkle tree,
//! signs a checkpoint of the tree at a fixed interval and exports it to the checkpoint
//! directory.

use std::collections::HashMap;
use std::time::Duration;

use aggregates::chain::{self, StoredEvent};
use aggregates::ledger::{self, Checkpoint, LEDGER_ID, Ledger, LedgerCommand};
use aggregates::merkle::{self, Frontier, Hash};
use anyhow::Context;
use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, EventStore};
use futures_util::TryStreamExt;
use projections::projector::{self, COMMIT_ORDER, COMMITTED_AFTER, Checkpoint as LogPlace};
use sqlx::{Connection, PgConnection, PgPool, Row};
use tokio::sync::watch;

use super::directory::CheckpointDirectory;
use super::keys::LedgerKey;
use super::records;
use crate::store::ChainedEventRepository;

/// Events read and sealed per database round trip.
const BATCH: i64 = 2000;

/// Settings of the sealer: the signing key, the checkpoint directory and the interval.
#[derive(Clone)]
pub struct LedgerSettings {
    pub key: LedgerKey,
    pub directory: CheckpointDirectory,
    /// Time between two sealing rounds; a checkpoint follows a commit within about this time.
    pub interval: Duration,
}

/// How long the round at shutdown waits for older transactions to end.
const FINAL_ROUND_WAIT: Duration = Duration::from_secs(10);

/// Key of the PostgreSQL advisory lock that the one sealer of a database holds: "zhengsea" in
/// ASCII, a constant no other program on the database is likely to use.
const SEALING_LOCK: i64 = 0x7a68_656e_6773_6561;

/// How often a sealing failure that lasts is logged again.
const FAILURE_LOG_INTERVAL: std::time::Duration = std::time::Duration::from_secs(600);

/// The sealing task's state: the tree so far and the last checkpoint.
pub struct Sealer {
    pool: PgPool,
    settings: LedgerSettings,
    store: PersistedEventStore<ChainedEventRepository, Ledger>,
    frontier: Frontier,
    /// The last sealed event in commit order.
    last: LogPlace,
    checkpointed_size: u64,
    /// Whether an event other than a checkpoint was sealed since the last checkpoint. A
    /// checkpoint event alone does not call for a new checkpoint, or the sealer would sign one
    /// every round; it is covered by the next checkpoint after further events.
    pending: bool,
    /// Whether the last round failed or was left to another sealer, so that the state in
    /// memory may lag behind the leaves another process stored.
    stale: bool,
    /// The connection that holds the sealing lock, once this sealer has it.
    lock: Option<PgConnection>,
}

impl Sealer {
    /// Prepares sealing: publishes the public key, checks the database against the newest
    /// exported checkpoint, and rebuilds the tree from the stored leaves.
    ///
    /// # Errors
    /// Fails when the database's ledger is behind or disagrees with the exported checkpoints
    /// (a restored old backup, or rewritten history), or when the stored leaves do not match
    /// the database's own last checkpoint.
    pub async fn open(pool: &PgPool, settings: LedgerSettings) -> anyhow::Result<Sealer> {
        settings.directory.publish_key(&settings.key.public())?;
        let checkpoints = records::database_checkpoints(pool).await?;
        check_not_behind(&checkpoints, &settings.directory)?;
        let stored = StoredState::read(pool, checkpoints.last()).await?;
        if let Some(last) = checkpoints.last() {
            settings.directory.publish(last)?;
        }
        let store = PersistedEventStore::new_event_store(ChainedEventRepository::new(pool.clone()));
        tracing::info!(
            leaves = stored.frontier.size(),
            checkpointed_size = stored.checkpointed_size,
            key_id = settings.key.key_id,
            directory = %settings.directory.path.display(),
            "ledger sealer ready"
        );
        Ok(Sealer {
            pool: pool.clone(),
            settings,
            store,
            frontier: stored.frontier,
            last: stored.last,
            checkpointed_size: stored.checkpointed_size,
            pending: stored.pending,
            stale: false,
            lock: None,
        })
    }

    /// Seals every round until `stopped` turns true, then seals once more so that events
    /// committed before shutdown are covered.
    pub async fn run(
        mut self,
        mut stopped: watch::Receiver<bool>,
        failure: watch::Sender<Option<String>>,
    ) {
        let mut last_error: Option<String> = None;
        let mut last_logged = std::time::Instant::now();
        loop {
            // The first round waits one interval too, so a start is never slowed by sealing.
            tokio::select! {
                _ = tokio::time::sleep(self.settings.interval) => {}
                _ = stopped.wait_for(|stop| *stop) => {}
            }
            let stopping = *stopped.borrow();
            if stopping {
                self.wait_until_readable(FINAL_ROUND_WAIT).await;
            }
            match self.seal().await {
                Ok(_) => last_error = None,
                Err(error) => {
                    // The same failure repeats every round; log it when it first appears and
                    // every ten minutes while it lasts.
                    let text = format!("{error:#}");
                    if last_error.as_deref() != Some(text.as_str())
                        || last_logged.elapsed() >= FAILURE_LOG_INTERVAL
                    {
                        tracing::error!(cause = %text, "sealing the ledger failed");
                        last_logged = std::time::Instant::now();
                    }
                    last_error = Some(text);
                }
            }
            failure.send_replace(last_error.clone());
            if stopping {
                break;
            }
        }
        tracing::info!(leaves = self.frontier.size(), "ledger sealer stopped");
    }

    /// Waits, at most `limit`, until every event committed so far can be sealed: an event is
    /// sealed only once every transaction of the database with a smaller id has ended, and one
    /// of them may still be running.
    async fn wait_until_readable(&self, limit: Duration) {
        match projector::wait_until_readable(&self.pool, self.last, limit).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                "an older transaction is still running; the newest events are sealed at the next start"
            ),
            // The round that follows reads the log too and reports its own failure.
            Err(error) => {
                tracing::warn!(cause = %error, "checking for running transactions failed")
            }
        }
    }

    /// Appends the events committed since the last round and, when any was not a checkpoint,
    /// signs, records and exports a checkpoint. Returns the new checkpoint, if any.
    ///
    /// After a failed round, the tree is rebuilt from the stored leaves when another process
    /// stored some meanwhile, so a sealer that lost a round to another one carries on once that
    /// one stops.
    ///
    /// # Errors
    /// Fails when the database cannot be read or written, when an event no longer matches its
    /// own hash (damaged history is never sealed), or when exporting fails.
    pub async fn seal(&mut self) -> anyhow::Result<Option<Checkpoint>> {
        if !self.take_lock().await? {
            self.stale = true;
            return Ok(None);
        }
        if self.stale {
            self.catch_up().await?;
            self.stale = false;
        }
        let sealed = self.seal_round().await;
        self.stale = sealed.is_err();
        sealed
    }

    /// Tells whether this sealer holds the database's sealing lock, taking it when it is free.
    ///
    /// The lock is a session lock on a connection of its own, so it ends with the process or its
    /// connection. A pool of one connection, as on the embedded database, which serves a single
    /// process, cannot spare one, and seals without the lock.
    async fn take_lock(&mut self) -> anyhow::Result<bool> {
        if self.pool.options().get_max_connections() <= 1 {
            return Ok(true);
        }
        if let Some(connection) = &mut self.lock {
            if connection.ping().await.is_ok() {
                return Ok(true);
            }
            // The lock ended with the connection; another sealer may have taken it since.
            tracing::warn!("the connection holding the sealing lock was lost; taking it again");
            self.lock = None;
            self.stale = true;
        }
        let mut connection = self.pool.acquire().await?.detach();
        let acquired: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(SEALING_LOCK)
            .fetch_one(&mut connection)
            .await?;
        if acquired {
            tracing::info!("this process now seals the database");
            self.lock = Some(connection);
        } else if !self.stale {
            tracing::warn!(
                "another process seals this database; this one stands by and takes over when it stops"
            );
        }
        Ok(acquired)
    }

    /// Rebuilds the tree from the stored leaves when they are more than this sealer stored.
    async fn catch_up(&mut self) -> anyhow::Result<()> {
        let stored: i64 =
            sqlx::query_scalar("SELECT COALESCE(max(leaf_index) + 1, 0) FROM ledger_leaves")
                .fetch_one(&self.pool)
                .await?;
        if u64::try_from(stored).unwrap_or(0) == self.frontier.size() {
            return Ok(());
        }
        let checkpoints = records::database_checkpoints(&self.pool).await?;
        let stored = StoredState::read(&self.pool, checkpoints.last()).await?;
        tracing::warn!(
            leaves_here = self.frontier.size(),
            leaves_stored = stored.frontier.size(),
            "another process sealed this database; continuing from the stored leaves"
        );
        self.frontier = stored.frontier;
        self.last = stored.last;
        self.checkpointed_size = stored.checkpointed_size;
        self.pending = stored.pending;
        Ok(())
    }

    async fn seal_round(&mut self) -> anyhow::Result<Option<Checkpoint>> {
        while self.append_batch().await? {}
        if !self.pending || self.frontier.size() <= self.checkpointed_size {
            return Ok(None);
        }
        let root = ledger::encode_hash(&self.frontier.root());
        let checkpoint = self.settings.key.sign(self.frontier.size(), &root);
        self.record(checkpoint.clone()).await?;
        self.checkpointed_size = checkpoint.tree_size;
        self.pending = false;
        self.settings
            .directory
            .publish(&checkpoint)
            .context("exporting the checkpoint failed")?;
        tracing::info!(
            tree_size = checkpoint.tree_size,
            root = checkpoint.root,
            "checkpoint signed"
        );
        Ok(Some(checkpoint))
    }

    async fn record(&self, checkpoint: Checkpoint) -> anyhow::Result<()> {
        let mut context = self.store.load_aggregate(LEDGER_ID).await?;
        let sink = EventSink::default();
        context
            .aggregate
            .handle(LedgerCommand::RecordCheckpoint(checkpoint), &(), &sink)
            .await?;
        let metadata = HashMap::from([
            ("actor".to_string(), "ledger-sealer".to_string()),
            ("key_id".to_string(), self.settings.key.key_id.clone()),
        ]);
        self.store
            .commit(sink.collect().await, context, metadata)
            .await
            .context("recording the checkpoint failed")?;
        Ok(())
    }

    /// Seals up to one batch of events; returns whether there may be more.
    async fn append_batch(&mut self) -> anyhow::Result<bool> {
        let horizon = projector::read_horizon(&self.pool).await?;
        let rows = sqlx::query(&format!(
            "SELECT transaction_id, global_position, aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata
               FROM events WHERE {COMMITTED_AFTER} ORDER BY {COMMIT_ORDER} LIMIT $4"
        ))
        .bind(self.last.transaction_id)
        .bind(self.last.global_position)
        .bind(horizon)
        .bind(BATCH)
        .fetch_all(&self.pool)
        .await?;
        if rows.is_empty() {
            return Ok(false);
        }
        let mut batch = LeafBatch::default();
        for row in &rows {
            let position: i64 = row.try_get("global_position")?;
            let event = records::stored_event(row)?;
            let leaf = sealable_leaf(&event)
                .with_context(|| format!("event at global position {position} cannot be sealed"))?;
            batch.push(self.frontier.size() + batch.len(), position, &event, leaf);
        }
        batch.insert(&self.pool).await?;
        for (index, leaf) in batch.leaves.iter().enumerate() {
            self.frontier.push(*leaf);
            self.pending |= batch.aggregate_types[index] != Ledger::TYPE;
        }
        self.last = LogPlace::of(rows.last().expect("the batch is not empty"));
        Ok(rows.len() as i64 == BATCH)
    }
}

/// The tree and its place in the log as the stored leaves describe them.
struct StoredState {
    frontier: Frontier,
    last: LogPlace,
    checkpointed_size: u64,
    pending: bool,
}

impl StoredState {
    /// Rebuilds the tree from the stored leaves, checking it against `checkpoint`, the
    /// database's newest checkpoint.
    async fn read(pool: &PgPool, checkpoint: Option<&Checkpoint>) -> anyhow::Result<StoredState> {
        let mut frontier = Frontier::default();
        let mut last_position = 0i64;
        let mut pending = false;
        let checkpointed_size = checkpoint.map_or(0, |last| last.tree_size);
        let mut rows = sqlx::query(
            "SELECT global_position, aggregate_type, leaf_hash FROM ledger_leaves ORDER BY leaf_index",
        )
        .fetch(pool);
        while let Some(row) = rows.try_next().await? {
            let leaf: Vec<u8> = row.try_get("leaf_hash")?;
            let leaf: Hash = leaf
                .try_into()
                .map_err(|_| anyhow::anyhow!("stored leaf is not 32 bytes"))?;
            frontier.push(leaf);
            last_position = row.try_get("global_position")?;
            if frontier.size() > checkpointed_size
                && row.try_get::<String, _>("aggregate_type")? != Ledger::TYPE
            {
                pending = true;
            }
            if let Some(last) = checkpoint.filter(|last| last.tree_size == frontier.size()) {
                anyhow::ensure!(
                    ledger::encode_hash(&frontier.root()) == last.root,
                    "the stored ledger leaves do not match the database's checkpoint of tree size {}; run `zhengming verify`",
                    last.tree_size
                );
            }
        }
        drop(rows);
        let last = if last_position == 0 {
            LogPlace::default()
        } else {
            let transaction_id: Option<i64> =
                sqlx::query_scalar("SELECT transaction_id FROM events WHERE global_position = $1")
                    .bind(last_position)
                    .fetch_optional(pool)
                    .await?;
            LogPlace {
                transaction_id: transaction_id.with_context(|| {
                    format!("the last sealed event, at global position {last_position}, is absent from the log; run `zhengming verify`")
                })?,
                global_position: last_position,
            }
        };
        anyhow::ensure!(
            frontier.size() >= checkpointed_size,
            "the database's last checkpoint covers {checkpointed_size} leaves but only {} are stored; run `zhengming verify`",
            frontier.size()
        );
        Ok(StoredState {
            frontier,
            last,
            checkpointed_size,
            pending,
        })
    }
}

/// Computes the leaf of an event after checking that the event still matches its own hash.
fn sealable_leaf(event: &StoredEvent) -> anyhow::Result<Hash> {
    let text = |key: &str| event.metadata.get(key).and_then(|value| value.as_str());
    let (Some(hash), Some(prev_hash)) = (text(chain::HASH_KEY), text(chain::PREV_HASH_KEY)) else {
        anyhow::bail!("its metadata lacks hash or prev_hash; run `zhengming verify`");
    };
    let stored = ledger::decode_hash(hash).context("its hash is not 64 hexadecimal digits")?;
    let computed = chain::event_hash(event, event.sequence, prev_hash)?;
    anyhow::ensure!(
        computed == hash,
        "its content no longer matches its hash; run `zhengming verify`"
    );
    Ok(merkle::leaf_hash(&ledger::leaf_data(
        event, &stored, prev_hash,
    )?))
}

/// Leaves of one round, inserted with one statement.
#[derive(Default)]
struct LeafBatch {
    indexes: Vec<i64>,
    positions: Vec<i64>,
    aggregate_types: Vec<String>,
    aggregate_ids: Vec<String>,
    sequences: Vec<i64>,
    leaves: Vec<Hash>,
}

impl LeafBatch {
    fn len(&self) -> u64 {
        self.leaves.len() as u64
    }

    fn push(&mut self, index: u64, position: i64, event: &StoredEvent, leaf: Hash) {
        self.indexes.push(index as i64);
        self.positions.push(position);
        self.aggregate_types.push(event.aggregate_type.clone());
        self.aggregate_ids.push(event.aggregate_id.clone());
        self.sequences.push(event.sequence as i64);
        self.leaves.push(leaf);
    }

    async fn insert(&self, pool: &PgPool) -> anyhow::Result<()> {
        let leaves: Vec<Vec<u8>> = self.leaves.iter().map(|leaf| leaf.to_vec()).collect();
        sqlx::query(
            "INSERT INTO ledger_leaves (leaf_index, global_position, aggregate_type, aggregate_id, sequence, leaf_hash)
             SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::bytea[])",
        )
        .bind(&self.indexes)
        .bind(&self.positions)
        .bind(&self.aggregate_types)
        .bind(&self.aggregate_ids)
        .bind(&self.sequences)
        .bind(&leaves)
        .execute(pool)
        .await
        .context("storing ledger leaves failed; is another sealer running on this database?")?;
        Ok(())
    }
}

/// Rejects a database whose ledger is behind, or disagrees with, the newest exported
/// checkpoint.
///
/// # Errors
/// Returns the reason, for the operator.
pub fn check_not_behind(
    checkpoints: &[Checkpoint],
    directory: &CheckpointDirectory,
) -> anyhow::Result<()> {
    let exported = directory.checkpoints()?;
    let Some(newest) = exported.last() else {
        return Ok(());
    };
    let database_size = checkpoints.last().map_or(0, |last| last.tree_size);
    anyhow::ensure!(
        database_size >= newest.tree_size,
        "the database's ledger is behind the exported checkpoints: its newest checkpoint covers {database_size} events, \
         but {} holds a checkpoint of {} events. The database was probably restored from an old backup; \
         restore the newest backup, or have the loss investigated, before serving",
        directory.path.display(),
        newest.tree_size
    );
    let matching = checkpoints
        .iter()
        .find(|checkpoint| checkpoint.tree_size == newest.tree_size);
    anyhow::ensure!(
        matching.is_some_and(|checkpoint| checkpoint.root == newest.root),
        "the database's ledger disagrees with the exported checkpoint of {} events in {}: history was rewritten or forked; \
         run `zhengming verify` before serving",
        newest.tree_size,
        directory.path.display()
    );
    Ok(())
}
