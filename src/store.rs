//! Event-store wiring: postgres-es as the event repository, with each event linked into its
//! aggregate's hash chain before it is written.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, PoisonError, Weak};

use aggregates::application::{Application, ApplicationError};
use aggregates::chain::{self, GENESIS_HASH, StoredEvent};
use aggregates::exchange::ExchangeError;
use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::{
    EventStoreAggregateContext, PersistedEventRepository, PersistedEventStore, PersistenceError,
    ReplayStream, SerializedEvent, SerializedSnapshot,
};
use cqrs_es::{Aggregate, AggregateError, EventEnvelope, EventStore};
use postgres_es::PostgresEventRepository;
use serde_json::Value;
use sqlx::PgPool;
use tokio::sync::{Mutex, OwnedMutexGuard};

/// The command side of applications.
pub type ApplicationStore = ChainedStore<Application>;

/// A command on an application that failed: a rule of the aggregate, a concurrent append, or
/// storage.
pub type CommandError = AggregateError<ApplicationError>;

/// How many times a command is decided, when each time another server process on the same
/// database appended to the record between the load and the commit. Commands of one process
/// wait for each other and never collide. Every lost attempt means another command was
/// recorded, so the attempts cannot loop forever. In one measurement with 20 to 40 parallel
/// reads of one application split between two processes, three attempts left about one read in
/// eleven failed. Ten attempts left none of 140 failed.
const DECISION_ATTEMPTS: usize = 10;

/// An aggregate's error type, able to refuse a command on a history that cannot be trusted.
pub trait HistoryRefusal: std::error::Error + Sized {
    /// Returns the refusal of a history that fails hash-chain verification (HTTP 409
    /// `history_damaged`).
    fn damaged(found: &chain::ChainBreak) -> Self;
    /// Returns the refusal of a history that contains an event this version cannot decode
    /// (HTTP 409 `history_undecodable`).
    fn undecodable(found: &UndecodableEvent) -> Self;
}

impl HistoryRefusal for ApplicationError {
    fn damaged(found: &chain::ChainBreak) -> Self {
        ApplicationError::history_damaged(found)
    }

    fn undecodable(found: &UndecodableEvent) -> Self {
        ApplicationError::Conflict {
            code: UndecodableEvent::CODE,
            message: found.message(),
        }
    }
}

impl HistoryRefusal for ExchangeError {
    fn damaged(found: &chain::ChainBreak) -> Self {
        ExchangeError::conflict("history_damaged", found.refusal())
    }

    fn undecodable(found: &UndecodableEvent) -> Self {
        ExchangeError::conflict(UndecodableEvent::CODE, found.message())
    }
}

/// The command side of one aggregate type on the hash-chained `events` table: loads an
/// aggregate from its events, handles a command and commits the resulting events.
///
/// `CqrsFramework::execute` returns no state, and every command response shows the state the
/// command produced, so this runs the same three steps on cqrs-es's event store and keeps the
/// aggregate the handler left. Building one is cheap.
pub struct ChainedStore<A: Aggregate> {
    store: PersistedEventStore<ChainedEventRepository, A>,
    events: ChainedEventRepository,
    services: A::Services,
}

impl<A> ChainedStore<A>
where
    A: Aggregate + Clone,
    A::Command: Clone,
    A::Error: HistoryRefusal,
{
    /// Builds the store in event-store mode (no snapshots).
    pub fn new(pool: &PgPool, services: A::Services) -> Self {
        let store = PersistedEventStore::new_event_store(ChainedEventRepository::new(pool.clone()));
        ChainedStore {
            store,
            events: ChainedEventRepository::new(pool.clone()),
            services,
        }
    }

    /// Returns the services commands are checked against, such as the policy versions.
    pub fn services(&self) -> &A::Services {
        &self.services
    }

    /// Handles `command` on aggregate `id` and returns the state after it.
    ///
    /// The chain is verified before the command is handled: a command on a history that fails
    /// verification is refused, so nothing is ever appended to a damaged chain. The hash of the
    /// last loaded event becomes the new events' `prev_hash`. If another server process appended
    /// in between, the insert collides on the sequence. The command is then decided again on
    /// the history as it is now, as if it had arrived later.
    ///
    /// # Errors
    /// Returns the aggregate's rejection, `history_damaged` when the chain fails verification,
    /// `history_undecodable` when an event does not decode, `AggregateConflict` when other
    /// processes appended first at every attempt, or a storage error. Nothing is recorded on
    /// error.
    pub async fn execute(
        &self,
        id: &str,
        command: A::Command,
        mut metadata: HashMap<String, String>,
    ) -> Result<A, AggregateError<A::Error>> {
        let _turn = lock_aggregate(A::TYPE, id).await;
        let mut attempt = 1;
        loop {
            let (mut context, head) = self.load_verified(id).await?;
            metadata.insert(CHAIN_HEAD_KEY.to_string(), head);
            let sink = EventSink::default();
            context
                .aggregate
                .handle(command.clone(), &self.services, &sink)
                .await
                .map_err(AggregateError::UserError)?;
            let state = context.aggregate.clone();
            let events = sink.collect().await;
            match self.store.commit(events, context, metadata.clone()).await {
                Ok(_) => return Ok(state),
                Err(AggregateError::AggregateConflict) if attempt < DECISION_ATTEMPTS => {
                    tracing::info!(
                        aggregate_type = A::TYPE,
                        aggregate_id = id,
                        attempt,
                        "another process appended first; deciding the command again"
                    );
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Returns the current state of aggregate `id`, or `None` if it has no events.
    ///
    /// # Errors
    /// Fails when the events cannot be read, with `history_damaged` when the chain fails
    /// verification, or with `history_undecodable`.
    pub async fn load(&self, id: &str) -> Result<Option<A>, AggregateError<A::Error>> {
        let (context, _) = self.load_verified(id).await?;
        Ok((context.current_sequence > 0).then_some(context.aggregate))
    }

    /// Returns the state of aggregate `id` as its stored events describe it, without
    /// verifying their chain: for showing a damaged history to those who must examine it.
    ///
    /// # Errors
    /// Fails when the events cannot be read, or with `history_undecodable`.
    pub async fn load_unverified(&self, id: &str) -> Result<Option<A>, AggregateError<A::Error>> {
        let serialized = self.events.get_events::<A>(id).await?;
        let (context, _) = apply_events(id, serialized)
            .map_err(|found| AggregateError::UserError(A::Error::undecodable(&found)))?;
        Ok((context.current_sequence > 0).then_some(context.aggregate))
    }

    /// Reads the events of aggregate `id`, verifies their chain and applies them.
    ///
    /// Returns the state with its sequence, and the hash of the last event (the genesis hash
    /// for an aggregate with no events).
    async fn load_verified(
        &self,
        id: &str,
    ) -> Result<(EventStoreAggregateContext<A>, String), AggregateError<A::Error>> {
        match load_checked::<A>(&self.events, id).await? {
            Checked::Verified(context, head) => Ok((context, head)),
            Checked::Damaged(found) => Err(AggregateError::UserError(A::Error::damaged(&found))),
            Checked::Undecodable(found) => {
                Err(AggregateError::UserError(A::Error::undecodable(&found)))
            }
        }
    }
}

/// An aggregate read from its events: its state with the hash of its last event, the first
/// damage of its chain, or the first event this version cannot decode.
pub(crate) enum Checked<A: Aggregate> {
    Verified(EventStoreAggregateContext<A>, String),
    Damaged(chain::ChainBreak),
    Undecodable(UndecodableEvent),
}

/// A well-linked event whose payload this version of the ledger cannot decode: written by a
/// newer version, or around the API. No command may be decided on its record, since the state
/// it leaves is unknown.
#[derive(Debug)]
pub struct UndecodableEvent {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: usize,
    pub event_type: String,
    pub event_version: String,
}

impl UndecodableEvent {
    /// Error code of a command on a record with such an event (HTTP 409).
    pub const CODE: &'static str = "history_undecodable";

    /// Names the event, without the decoder's reason, which may quote personal data.
    pub fn message(&self) -> String {
        format!(
            "event {} of this record ({} version {}) cannot be read by this version of zhengming; the record accepts no command until an operator has examined it (run `zhengming verify`, and check whether a newer version wrote it)",
            self.sequence, self.event_type, self.event_version
        )
    }
}

/// Reads aggregate `id`, verifies its chain and, when it verifies, applies its events.
///
/// # Errors
/// Fails when the events cannot be read or decoded.
pub(crate) async fn load_checked<A: Aggregate>(
    events: &ChainedEventRepository,
    id: &str,
) -> Result<Checked<A>, AggregateError<A::Error>> {
    let serialized = events.get_events::<A>(id).await?;
    let stored: Vec<StoredEvent> = serialized.iter().map(stored_event).collect();
    if let Some(found) = chain::verify_chain(&stored) {
        return Ok(Checked::Damaged(found));
    }
    match apply_events(id, serialized) {
        Ok((context, head)) => Ok(Checked::Verified(context, head)),
        Err(found) => Ok(Checked::Undecodable(found)),
    }
}

/// Applies stored events in order; returns the state with its sequence and the hash of the
/// last event (the genesis hash when there is none), or the first event that does not decode.
/// The decoder's reason is logged, not returned.
fn apply_events<A: Aggregate>(
    id: &str,
    serialized: Vec<SerializedEvent>,
) -> Result<(EventStoreAggregateContext<A>, String), UndecodableEvent> {
    let head = serialized
        .last()
        .and_then(|event| event.metadata.get(chain::HASH_KEY))
        .and_then(Value::as_str)
        .unwrap_or(GENESIS_HASH)
        .to_string();
    let mut context = EventStoreAggregateContext {
        aggregate_id: id.to_string(),
        aggregate: A::default(),
        current_sequence: 0,
        current_snapshot: None,
    };
    for event in serialized {
        context.current_sequence = event.sequence;
        let found = UndecodableEvent {
            aggregate_type: event.aggregate_type.clone(),
            aggregate_id: event.aggregate_id.clone(),
            sequence: event.sequence,
            event_type: event.event_type.clone(),
            event_version: event.event_version.clone(),
        };
        let envelope = EventEnvelope::<A>::try_from(event).map_err(|error| {
            tracing::error!(
                aggregate_type = found.aggregate_type,
                aggregate_id = found.aggregate_id,
                sequence = found.sequence,
                event_type = found.event_type,
                %error,
                "a stored event does not decode"
            );
            found
        })?;
        context.aggregate.apply(envelope.payload);
    }
    Ok((context, head))
}

/// Aggregate type and id.
type AggregateKey = (String, String);

/// Waits until no other command of this process is running on aggregate `id` of
/// `aggregate_type`, and returns the guard that lets others wait in turn.
///
/// Two commands on one aggregate that overlap both load the same head, and the second append
/// fails as a conflict. Queued here, each one loads the head the previous one wrote, so
/// commands of one server never collide. Commands from two server processes on the same
/// database still can; [`ChainedStore::execute`] then decides the later one again. On the
/// embedded database, 16 overlapping reads of one record's results, each an append, left its
/// single connection hanging without this queue.
pub(crate) async fn lock_aggregate(aggregate_type: &str, id: &str) -> OwnedMutexGuard<()> {
    static LOCKS: LazyLock<std::sync::Mutex<HashMap<AggregateKey, Weak<Mutex<()>>>>> =
        LazyLock::new(Default::default);
    let lock = {
        let mut locks = LOCKS.lock().unwrap_or_else(PoisonError::into_inner);
        // Only aggregates with a command in flight keep an entry.
        locks.retain(|_, lock| lock.strong_count() > 0);
        let key = (aggregate_type.to_string(), id.to_string());
        match locks.get(&key).and_then(Weak::upgrade) {
            Some(lock) => lock,
            None => {
                let lock = Arc::new(Mutex::new(()));
                locks.insert(key, Arc::downgrade(&lock));
                lock
            }
        }
    };
    lock.lock_owned().await
}

/// Metadata key that carries the hash of the aggregate's last event from the command's load to
/// the repository; the repository removes it and writes `prev_hash` instead.
pub(crate) const CHAIN_HEAD_KEY: &str = "chain_head";

fn stored_event(event: &SerializedEvent) -> StoredEvent {
    StoredEvent {
        aggregate_type: event.aggregate_type.clone(),
        aggregate_id: event.aggregate_id.clone(),
        sequence: event.sequence as u64,
        event_type: event.event_type.clone(),
        event_version: event.event_version.clone(),
        payload: event.payload.clone(),
        metadata: event.metadata.clone(),
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
    let recorded_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let mut linked = Vec::with_capacity(events.len());
    for event in events {
        let mut metadata = event.metadata.clone();
        if let Value::Object(map) = &mut metadata {
            map.remove(CHAIN_HEAD_KEY);
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
            aggregate_id: stored.aggregate_id,
            sequence: event.sequence,
            aggregate_type: stored.aggregate_type,
            event_type: stored.event_type,
            event_version: stored.event_version,
            payload: stored.payload,
            metadata: stored.metadata,
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
        // A command that loaded and verified the chain passes its head along; other writers
        // read the predecessor's hash.
        let head = first
            .metadata
            .get(CHAIN_HEAD_KEY)
            .and_then(Value::as_str)
            .map(String::from);
        let previous = match head {
            Some(head) => head,
            None => {
                self.previous_hash(A::TYPE, &first.aggregate_id, first.sequence)
                    .await?
            }
        };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_stamps_microsecond_utc_time() {
        let event = SerializedEvent::new(
            "a-1".into(),
            1,
            "application".into(),
            "ApplicationWithdrawn".into(),
            "1".into(),
            serde_json::json!({"ApplicationWithdrawn": {}}),
            serde_json::json!({"actor": "o-1", CHAIN_HEAD_KEY: GENESIS_HASH}),
        );

        let linked = link_events(&[event], GENESIS_HASH.to_string()).unwrap();

        let metadata = &linked[0].metadata;
        let recorded_at = metadata["recorded_at"].as_str().unwrap();
        // YYYY-MM-DDTHH:MM:SS.ffffffZ, as docs/hash-chain.md writes it down.
        assert_eq!(recorded_at.len(), 27, "{recorded_at}");
        assert!(recorded_at.ends_with('Z'), "{recorded_at}");
        assert_eq!(&recorded_at[19..20], ".", "{recorded_at}");
        assert!(
            chrono::NaiveDateTime::parse_from_str(recorded_at, "%Y-%m-%dT%H:%M:%S%.6fZ").is_ok(),
            "{recorded_at}"
        );
        assert!(metadata.get(CHAIN_HEAD_KEY).is_none());
        assert_eq!(metadata[chain::PREV_HASH_KEY], GENESIS_HASH);
    }
}
