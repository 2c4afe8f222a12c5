//! The command side of the criminal-record aggregates (no-criminal-record applications and
//! unit verification visits), on the same hash-chained `events` table as applications.

use std::collections::HashMap;

use aggregates::application::{ApplicationError, ApplicationServices};
use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, AggregateError, EventStore};
use sqlx::PgPool;

use crate::store::{CHAIN_HEAD_KEY, ChainedEventRepository, Checked, load_checked, lock_aggregate};

/// Loads an aggregate from its events, handles a command and commits the events, returning
/// the state the command produced.
pub struct ChainedStore<A>
where
    A: Aggregate<Error = ApplicationError, Services = ApplicationServices>,
{
    store: PersistedEventStore<ChainedEventRepository, A>,
    events: ChainedEventRepository,
    services: ApplicationServices,
}

impl<A> ChainedStore<A>
where
    A: Aggregate<Error = ApplicationError, Services = ApplicationServices> + Clone,
{
    /// Builds the store in event-store mode (no snapshots); building one is cheap.
    pub fn new(pool: &PgPool, services: ApplicationServices) -> Self {
        let store = PersistedEventStore::new_event_store(ChainedEventRepository::new(pool.clone()));
        let events = ChainedEventRepository::new(pool.clone());
        ChainedStore {
            store,
            events,
            services,
        }
    }

    /// Handles `command` on aggregate `id` and returns the state after it.
    ///
    /// # Errors
    /// Returns the aggregate's rejection, `AggregateConflict` when another command appended to
    /// the same aggregate first, or a storage error. Nothing is recorded on error.
    pub async fn execute(
        &self,
        id: &str,
        command: A::Command,
        mut metadata: HashMap<String, String>,
    ) -> Result<A, AggregateError<ApplicationError>> {
        let _turn = lock_aggregate(A::TYPE, id).await;
        let (mut context, head) = self.load_verified(id).await?;
        metadata.insert(CHAIN_HEAD_KEY.to_string(), head);
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

    /// Returns the current state of aggregate `id`, or `None` if it has no events.
    ///
    /// # Errors
    /// Fails when the events cannot be read, or with `history_damaged` when the aggregate's
    /// chain fails verification.
    pub async fn load(&self, id: &str) -> Result<Option<A>, AggregateError<ApplicationError>> {
        let (context, _) = self.load_verified(id).await?;
        Ok((context.current_sequence > 0).then_some(context.aggregate))
    }

    /// Reads aggregate `id` and verifies its chain, so that no command is decided and no state
    /// shown on a damaged history.
    async fn load_verified(
        &self,
        id: &str,
    ) -> Result<
        (cqrs_es::persist::EventStoreAggregateContext<A>, String),
        AggregateError<ApplicationError>,
    > {
        match load_checked::<A>(&self.events, id).await? {
            Checked::Verified(context, head) => Ok((context, head)),
            Checked::Damaged(found) => Err(AggregateError::UserError(
                ApplicationError::history_damaged(&found),
            )),
            Checked::Undecodable(found) => {
                Err(AggregateError::UserError(found.application_error()))
            }
        }
    }
}
