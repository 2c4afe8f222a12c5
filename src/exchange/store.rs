//! Event stores of the exchange aggregates, on the same hash-chained `events` table as
//! applications, each under its own aggregate type.

use std::collections::HashMap;
use std::sync::Arc;

use aggregates::exchange::agreement::Agreement;
use aggregates::exchange::department::Department;
use aggregates::exchange::request::ExchangeRequest;
use aggregates::exchange::unit::ExchangeUnit;
use aggregates::exchange::{ExchangeError, ExchangeServices};
use aggregates::policy::PolicyBook;
use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, AggregateError, EventStore};
use sqlx::PgPool;

use crate::store::{
    CHAIN_HEAD_KEY, ChainedEventRepository, Checked, UndecodableEvent, load_checked, lock_aggregate,
};

/// A command on an exchange aggregate that failed: a rule, a concurrent append, or storage.
pub type ExchangeCommandError = AggregateError<ExchangeError>;

/// Loads an aggregate of type `A` from its events and commits the events its commands produce.
pub struct AggregateStore<A: Aggregate<Services = ExchangeServices, Error = ExchangeError>> {
    store: PersistedEventStore<ChainedEventRepository, A>,
    events: ChainedEventRepository,
    services: ExchangeServices,
}

impl<A> AggregateStore<A>
where
    A: Aggregate<Services = ExchangeServices, Error = ExchangeError> + Clone,
{
    fn new(pool: &PgPool, services: ExchangeServices) -> Self {
        let repository = ChainedEventRepository::new(pool.clone());
        AggregateStore {
            store: PersistedEventStore::new_event_store(repository),
            events: ChainedEventRepository::new(pool.clone()),
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
    ) -> Result<A, ExchangeCommandError> {
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

    /// Returns the state of aggregate `id`, or `None` if it has no events.
    ///
    /// # Errors
    /// Fails when the events cannot be read, or with `history_damaged` when the aggregate's
    /// chain fails verification.
    pub async fn load(&self, id: &str) -> Result<Option<A>, ExchangeCommandError> {
        let (context, _) = self.load_verified(id).await?;
        Ok((context.current_sequence > 0).then_some(context.aggregate))
    }

    /// Reads aggregate `id` and verifies its chain, so that no command is decided and no state
    /// shown on a damaged history.
    async fn load_verified(
        &self,
        id: &str,
    ) -> Result<(cqrs_es::persist::EventStoreAggregateContext<A>, String), ExchangeCommandError>
    {
        match load_checked::<A>(&self.events, id).await? {
            Checked::Verified(context, head) => Ok((context, head)),
            Checked::Damaged(found) => Err(AggregateError::UserError(ExchangeError::conflict(
                "history_damaged",
                format!(
                    "the history of this record fails verification ({} at sequence {}); it accepts no command until an inspector has examined it",
                    found.damage, found.sequence
                ),
            ))),
            Checked::Undecodable(found) => Err(AggregateError::UserError(ExchangeError::conflict(
                UndecodableEvent::CODE,
                found.message(),
            ))),
        }
    }
}

/// The stores of every exchange aggregate.
pub struct ExchangeStores {
    pub departments: AggregateStore<Department>,
    pub agreements: AggregateStore<Agreement>,
    pub units: AggregateStore<ExchangeUnit>,
    pub requests: AggregateStore<ExchangeRequest>,
    pub services: ExchangeServices,
}

impl ExchangeStores {
    /// Builds the stores in event-store mode (no snapshots) on `pool`.
    pub fn new(pool: &PgPool, policies: Arc<PolicyBook>) -> Self {
        let services = ExchangeServices { policies };
        ExchangeStores {
            departments: AggregateStore::new(pool, services.clone()),
            agreements: AggregateStore::new(pool, services.clone()),
            units: AggregateStore::new(pool, services.clone()),
            requests: AggregateStore::new(pool, services.clone()),
            services,
        }
    }
}
