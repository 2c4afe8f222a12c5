//! Verification of every aggregate's hash chain in the database.

pub mod scan;

use aggregates::chain::{self, ChainBreak, StoredEvent};
use futures_util::TryStreamExt;
use serde::Serialize;
use sqlx::{PgPool, Row};

/// Result of a verification run.
#[derive(Debug, Serialize)]
pub struct VerifyReport {
    pub events: u64,
    pub aggregates: u64,
    /// The first damage in (aggregate type, aggregate id, sequence) order, if any.
    pub first_break: Option<ChainBreak>,
}

/// Verifies every aggregate's chain. One pass in commit order ([`scan::scan_events`]) shows
/// an intact log; when it does not, [`verify_in_aggregate_order`] names the first damage.
///
/// # Errors
/// Fails when the database cannot be read or an event contains invalid JSON.
pub async fn verify_all(pool: &PgPool) -> anyhow::Result<VerifyReport> {
    let scanned = scan::scan_events(pool, None).await?;
    if !scanned.chains_verified {
        return verify_in_aggregate_order(pool).await;
    }
    Ok(VerifyReport {
        events: scanned.events,
        aggregates: scanned.aggregates,
        first_break: None,
    })
}

/// Reads every event in aggregate order and verifies each chain; stops at the first damage.
///
/// # Errors
/// Fails when the database cannot be read.
pub async fn verify_in_aggregate_order(pool: &PgPool) -> anyhow::Result<VerifyReport> {
    let mut rows = sqlx::query(
        "SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata
           FROM events ORDER BY aggregate_type, aggregate_id, sequence",
    )
    // Unprepared: a cached plan fails once a column's type changed, and a changed column
    // type is one of the things verification must survive.
    .persistent(false)
    .fetch(pool);
    let mut report = VerifyReport {
        events: 0,
        aggregates: 0,
        first_break: None,
    };
    let mut current: Vec<StoredEvent> = Vec::new();
    while let Some(row) = rows.try_next().await? {
        let event = StoredEvent {
            aggregate_type: row.try_get("aggregate_type")?,
            aggregate_id: row.try_get("aggregate_id")?,
            sequence: row.try_get::<i64, _>("sequence")? as u64,
            event_type: row.try_get("event_type")?,
            event_version: row.try_get("event_version")?,
            payload: row.try_get("payload")?,
            metadata: row.try_get("metadata")?,
        };
        report.events += 1;
        let same_aggregate = current.first().is_some_and(|first| {
            first.aggregate_type == event.aggregate_type && first.aggregate_id == event.aggregate_id
        });
        if !same_aggregate && !current.is_empty() {
            report.aggregates += 1;
            if let Some(found) = chain::verify_chain(&current) {
                report.first_break = Some(found);
                return Ok(report);
            }
            current.clear();
        }
        current.push(event);
    }
    if !current.is_empty() {
        report.aggregates += 1;
        report.first_break = chain::verify_chain(&current);
    }
    Ok(report)
}

/// Prints a report for an operator.
pub fn print_report(report: &VerifyReport) {
    match &report.first_break {
        None => println!(
            "verified {} events in {} chains: every hash and link recomputes",
            report.events, report.aggregates
        ),
        Some(found) => {
            println!(
                "DAMAGE: {} at {} {} sequence {}: {}",
                found.damage,
                found.aggregate_type,
                found.aggregate_id,
                found.sequence,
                found.detail
            );
            println!(
                "checked {} events in {} chains before the first damage",
                report.events, report.aggregates
            );
        }
    }
}
