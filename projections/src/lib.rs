//! Read models of the certificate ledger, built from the event log in commit order.
//!
//! * [`projector`]: the asynchronous consumer that follows `events.global_position` and keeps
//!   its checkpoint in the same transaction as its rows.
//! * [`application_view`]: applications and certificates as stations and the public read them.
//! * [`supervision`]: findings of the supervision detectors, each citing its events.
//! * [`inspection`]: inspections, rectifications, training records and problem reports.
//! * [`summary`]: counts per kind and principle, for the demo and first reports.

pub mod application_view;
pub mod inspection;
pub mod projector;
pub mod summary;
pub mod supervision;
