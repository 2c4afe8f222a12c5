//! Information exchange on the server side: the event stores of the exchange aggregates, the
//! streamed intake of subject batches, the population register and verification against it.
//!
//! * [`store`]: loading and commanding exchange aggregates through the hash-chained store.
//! * [`batch`]: reading a subject CSV from a byte stream into `exchange_subjects`.
//! * [`population`]: loading the population register from CSV.
//! * [`verification`]: comparing a batch with the register and writing the result file.

pub mod batch;
pub mod population;
pub mod store;
pub mod verification;

pub use store::ExchangeStores;
