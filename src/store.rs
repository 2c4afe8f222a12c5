//! Event-store wiring: postgres-es as the event repository, with each event linked into its
//! aggregate's hash chain before it is written.

use std::collections::HashMap;

use aggregates::application::{
    Application, ApplicationCommand, ApplicationError, ApplicationServices,
};
use aggregates::chain::{self, GENESIS_HASH, StoredEvent};
use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::{
    PersistedEventRepository, PersistedEventStore, PersistenceError, ReplayStream, SerializedEvent,
    SerializedSnapshot,
};
use cqrs_es::{Aggregate, AggregateError, EventStore};
use postgres_es::PostgresEventRepository;
use serde_json::Value;
use sqlx::PgPool;

/// The command side of applications: loads an aggregate from its events, handles a command
/// and commits the resulting events.
///
/// `CqrsFramework::execute` returns no state, and every command response shows the state the
/// command produced, so this runs the same three steps on cqrs-es's event store and keeps the
/// aggregate the handler left.
pub struct ApplicationStore {
    store: PersistedEventStore<ChainedEventRepository, Application>,
    services: ApplicationServices,
}

/// A command that failed: a rule of the aggregate, a concurrent append, or storage.
pub type CommandError = AggregateError<ApplicationError>;

impl ApplicationStore {
    /// Builds the store in event-store mode (no snapshots).
    pub fn new(pool: &PgPool, services: ApplicationServices) -> Self {
        let store = PersistedEventStore::new_event_store(ChainedEventRepository::new(pool.clone()));
        ApplicationStore { store, services }
    }

    /// Returns the policy versions commands are checked against.
    pub fn services(&self) -> &ApplicationServices {
        &self.services
    }

    /// Handles `command` on application `id` and returns the state after it.
    ///
    /// # Errors
    /// Returns the aggregate's rejection, `AggregateConflict` when another command appended to
    /// the same application first, or a storage error. Nothing is recorded on error.
    pub async fn execute(
        &self,
        id: &str,
        command: ApplicationCommand,
        metadata: HashMap<String, String>,
    ) -> Result<Application, CommandError> {
        let mut context = self.store.load_aggregate(id).await?;
        let sink = EventSink::default();
        context
            .aggregate
            .handle(command, &self.services, &sink)
            .await
            .map_err(AggregateError::UserError)?;
        let state = context.aggregate.clone();
        let events = sink.collect().await;
        self.store.commit(events, context, metadata).await?;
        Ok(state)
    }

    /// Returns the current state of application `id`, or `None` if it was never submitted.
    ///
    /// # Errors
    /// Fails when the events cannot be read.
    pub async fn load(&self, id: &str) -> Result<Option<Application>, CommandError> {
        let context = self.store.load_aggregate(id).await?;
        Ok((context.current_sequence > 0).then_some(context.aggregate))
    }
}

/// A postgres-es repository that links each new event into its aggregate's hash chain.
///
/// The hash covers the metadata, so the time of recording is stamped into the metadata here
/// (`recorded_at`, UTC, microseconds) before hashing; the database's own `recorded_at` column
/// is set by trigger at insert.
pub struct ChainedEventRepository {
    inner: PostgresEventRepository,
    pool: PgPool,
}

impl ChainedEventRepository {
    pub fn new(pool: PgPool) -> Self {
        ChainedEventRepository {
            inner: PostgresEventRepository::new(pool.clone()),
            pool,
        }
    }

    async fn previous_hash(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        sequence: usize,
    ) -> Result<String, PersistenceError> {
        if sequence <= 1 {
            return Ok(GENESIS_HASH.to_string());
        }
        let hash: Option<String> = sqlx::query_scalar(
            "SELECT metadata->>'hash' FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3",
        )
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(sequence as i64 - 1)
        .fetch_optional(&self.pool)
        .await
        .map_err(|error| PersistenceError::ConnectionError(Box::new(error)))?
        .flatten();
        // A missing predecessor means another command appended concurrently or history was
        // damaged; either way this append must not go ahead.
        hash.ok_or(PersistenceError::OptimisticLockError)
    }
}

fn link_events(
    events: &[SerializedEvent],
    mut previous: String,
) -> Result<Vec<SerializedEvent>, PersistenceError> {
    let recorded_at = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string();
    let mut linked = Vec::with_capacity(events.len());
    for event in events {
        let mut metadata = event.metadata.clone();
        if let Value::Object(map) = &mut metadata {
            map.insert("recorded_at".into(), Value::String(recorded_at.clone()));
        }
        let mut stored = StoredEvent {
            aggregate_type: event.aggregate_type.clone(),
            aggregate_id: event.aggregate_id.clone(),
            sequence: event.sequence as u64,
            event_type: event.event_type.clone(),
            event_version: event.event_version.clone(),
            payload: event.payload.clone(),
            metadata,
        };
        previous = chain::link(&mut stored, &previous)
            .map_err(|error| PersistenceError::UnknownError(Box::new(error)))?;
        linked.push(SerializedEvent {
            metadata: stored.metadata,
            ..event.clone()
        });
    }
    Ok(linked)
}

impl PersistedEventRepository for ChainedEventRepository {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.inner.get_events::<A>(aggregate_id).await
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.inner
            .get_last_events::<A>(aggregate_id, last_sequence)
            .await
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        self.inner.get_snapshot::<A>(aggregate_id).await
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        let Some(first) = events.first() else {
            return Ok(());
        };
        let previous = self
            .previous_hash(A::TYPE, &first.aggregate_id, first.sequence)
            .await?;
        let linked = link_events(events, previous)?;
        self.inner.persist::<A>(&linked, snapshot_update).await
    }

    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        self.inner.stream_events::<A>(aggregate_id).await
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        self.inner.stream_all_events::<A>().await
    }
}
