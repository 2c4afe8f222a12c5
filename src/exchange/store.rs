//! Event stores of the exchange aggregates, on the same hash-chained `events` table as
//! applications, each under its own aggregate type.

use std::sync::Arc;

use aggregates::exchange::agreement::Agreement;
use aggregates::exchange::department::Department;
use aggregates::exchange::request::ExchangeRequest;
use aggregates::exchange::unit::ExchangeUnit;
use aggregates::exchange::{ExchangeError, ExchangeServices};
use aggregates::policy::PolicyBook;
use cqrs_es::AggregateError;
use sqlx::PgPool;

use crate::store::ChainedStore;

/// A command on an exchange aggregate that failed: a rule, a concurrent append, or storage.
pub type ExchangeCommandError = AggregateError<ExchangeError>;

/// The stores of every exchange aggregate.
pub struct ExchangeStores {
    pub departments: ChainedStore<Department>,
    pub agreements: ChainedStore<Agreement>,
    pub units: ChainedStore<ExchangeUnit>,
    pub requests: ChainedStore<ExchangeRequest>,
    pub services: ExchangeServices,
}

impl ExchangeStores {
    /// Builds the stores in event-store mode (no snapshots) on `pool`.
    pub fn new(pool: &PgPool, policies: Arc<PolicyBook>) -> Self {
        let services = ExchangeServices { policies };
        ExchangeStores {
            departments: ChainedStore::new(pool, services.clone()),
            agreements: ChainedStore::new(pool, services.clone()),
            units: ChainedStore::new(pool, services.clone()),
            requests: ChainedStore::new(pool, services.clone()),
            services,
        }
    }
}
