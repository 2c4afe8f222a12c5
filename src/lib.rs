//! The zhengming server: configuration, the event store with its hash chain, the HTTP API,
//! verification and the demo.
//!
//! * [`server`]: starting and stopping a server on a database.
//! * [`http`]: the REST API under `/v1`.
//! * [`store`]: the command side of every aggregate: postgres-es wiring, hash-chain linking,
//!   and the refusal of commands on a history that fails verification.
//! * [`database`]: the PostgreSQL server or the embedded one, and migrations.
//! * [`registry`]: stations, officers and tokens.
//! * [`exchange`]: information exchange: batch intake, population register, verification.
//! * [`verify`]: checking every chain.
//! * [`ledger`]: the global ledger: sealing, signed checkpoints, receipts, verification.
//! * [`demo`]: a month of station work driven through the API.

pub mod database;
pub mod demo;
pub mod exchange;
pub mod http;
pub mod ledger;
pub mod registry;
pub mod server;
pub mod store;
pub mod verify;
