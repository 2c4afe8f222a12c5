//! The command side of the criminal-record aggregates (no-criminal-record applications and
//! unit verification visits), on the same hash-chained `events` table as applications.

use std::collections::HashMap;

use aggregates::application::{ApplicationError, ApplicationServices};
use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, AggregateError, EventStore};
use sqlx::PgPool;

use crate::store::ChainedEventRepository;

/// Loads an aggregate from its events, handles a command and commits the events, returning
/// the state the command produced.
pub struct ChainedStore<A>
where
    A: Aggregate<Error = ApplicationError, Services = ApplicationServices>,
{
    store: PersistedEventStore<ChainedEventRepository, A>,
    services: ApplicationServices,
}

impl<A> ChainedStore<A>
where
    A: Aggregate<Error = ApplicationError, Services = ApplicationServices> + Clone,
{
    /// Builds the store in event-store mode (no snapshots); building one is cheap.
    pub fn new(pool: &PgPool, services: ApplicationServices) -> Self {
        let store = PersistedEventStore::new_event_store(ChainedEventRepository::new(pool.clone()));
        ChainedStore { store, services }
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
        metadata: HashMap<String, String>,
    ) -> Result<A, AggregateError<ApplicationError>> {
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

    /// Returns the current state of aggregate `id`, or `None` if it has no events.
    ///
    /// # Errors
    /// Fails when the events cannot be read.
    pub async fn load(&self, id: &str) -> Result<Option<A>, AggregateError<ApplicationError>> {
        let context = self.store.load_aggregate(id).await?;
        Ok((context.current_sequence > 0).then_some(context.aggregate))
    }
}
