//! The domain of the certificate ledger, free of I/O.
//!
//! * [`application`]: the application aggregate, its commands, events and rules.
//! * [`application_reads`]: the recorded reads of an application's personal data.
//! * [`policy`]: the versioned policy document and screening.
//! * [`exchange`]: information exchange between departments, with working-day deadlines.
//! * [`calendar`]: the working-day calendar deadlines are counted in.
//! * [`id_number`]: citizen ID numbers (GB 11643-1999).
//! * [`chain`]: the canonical event encoding and the per-aggregate hash chain.
//! * [`record_check`]: the no-criminal-record certificate, its investigation and objections.
//! * [`unit_visit`]: unit verification visits (单位核查) and their certificates.
//! * [`ledger`]: the global ledger's leaves and its signed checkpoints.
//! * [`merkle`]: RFC 6962 Merkle tree hashing and proofs.
//! * [`inspection`]: inspections of stations, officers and cases: findings, notices,
//!   rectification and accountability.
//! * [`training`]: which officer completed which policy version's training.
//! * [`problem_report`]: situations stations report and the provincial office answers.

pub mod application;
pub mod application_reads;
pub mod calendar;
pub mod chain;
pub mod exchange;
pub mod id_number;
pub mod inspection;
pub mod ledger;
pub mod merkle;
pub mod policy;
pub mod problem_report;
pub mod record_check;
pub mod training;
pub mod unit_visit;
