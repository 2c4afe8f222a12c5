//! The ledger part of `zhengming-bench` (`--ledger-events N`): writes N hash-chained events
//! straight into the events table, then times sealing them into the Merkle tree and verifying
//! the whole ledger.

use std::time::Instant;

use aggregates::chain::{self, GENESIS_HASH, StoredEvent};
use serde_json::json;
use zhengming::database::Database;
use zhengming::ledger::audit;
use zhengming::ledger::{CheckpointDirectory, LedgerKey, LedgerSettings, Sealer};

use crate::event_rows::insert_events;

/// Events of one synthetic application; real applications have four to seven.
const EVENTS_PER_CASE: u64 = 5;
/// Rows per insert statement.
const INSERT_BATCH: usize = 5000;

pub struct LedgerFigures {
    pub events: u64,
    pub load_seconds: f64,
    pub seal_seconds: f64,
    pub chain_seconds: f64,
    pub audit_seconds: f64,
}

/// Builds event `sequence` of synthetic case `case`, with a payload of the size of a real
/// submission (about 400 bytes of JSON).
fn synthetic_event(case: u64, sequence: u64) -> StoredEvent {
    StoredEvent {
        aggregate_type: "application".into(),
        aggregate_id: format!("bench-{case:08}"),
        sequence,
        event_type: "EvidenceChecked".into(),
        event_version: "1".into(),
        payload: json!({"EvidenceChecked": {
            "source": "household_archives",
            "reference": format!("R-{case}-{sequence}"),
            "result": "confirmed",
            "officer": "hh",
            "note": "张伟 kinship between two household registers, checked against the archive",
            "station": "S1", "county": "K1", "city": "C1",
            "matter": "kinship", "purpose": "foreign-currency transfer",
        }}),
        metadata: json!({
            "actor": "hh", "actor_role": "household_officer", "actor_station": "S1",
            "request_id": format!("00000000-0000-4000-8000-{case:012}"),
            "recorded_at": "2026-12-04T08:00:00.000000Z",
        }),
    }
}

async fn load(database: &Database, events: u64) -> anyhow::Result<()> {
    let cases = events.div_ceil(EVENTS_PER_CASE);
    let mut batch: Vec<StoredEvent> = Vec::with_capacity(INSERT_BATCH);
    let mut written = 0u64;
    // Cases are interleaved in rounds, as concurrent stations would append them.
    let mut previous = vec![GENESIS_HASH.to_string(); cases as usize];
    for sequence in 1..=EVENTS_PER_CASE {
        for case in 0..cases {
            if written == events {
                break;
            }
            let mut event = synthetic_event(case, sequence);
            previous[case as usize] = chain::link(&mut event, &previous[case as usize])?;
            batch.push(event);
            written += 1;
            if batch.len() == INSERT_BATCH {
                insert_events(&database.pool, &batch).await?;
                batch.clear();
            }
        }
    }
    insert_events(&database.pool, &batch).await
}

/// Loads `events` events, seals them in one catch-up round, and verifies the ledger.
///
/// # Errors
/// Fails when a step fails or verification finds damage.
pub async fn run(database: &Database, events: u64) -> anyhow::Result<LedgerFigures> {
    let dir = tempfile::tempdir()?;
    let started = Instant::now();
    load(database, events).await?;
    let load_seconds = started.elapsed().as_secs_f64();

    let settings = LedgerSettings {
        key: LedgerKey::write_new(&dir.path().join("bench.key"))?,
        directory: CheckpointDirectory::open(&dir.path().join("checkpoints"))?,
        interval: std::time::Duration::from_secs(5),
    };
    let directory = settings.directory.clone();
    let started = Instant::now();
    let mut sealer = Sealer::open(&database.pool, settings).await?;
    let checkpoint = sealer.seal().await?;
    let seal_seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        checkpoint.is_some_and(|checkpoint| checkpoint.tree_size == events),
        "sealing did not cover all {events} events"
    );

    let started = Instant::now();
    let chains = zhengming::verify::verify_all(&database.pool).await?;
    let chain_seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        chains.first_break.is_none(),
        "chain damage: {:?}",
        chains.first_break
    );

    let started = Instant::now();
    let report = audit::audit(&database.pool, Some(&directory)).await?;
    let audit_seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        report.first_damage.is_none(),
        "ledger damage: {:?}",
        report.first_damage
    );
    Ok(LedgerFigures {
        events,
        load_seconds,
        seal_seconds,
        chain_seconds,
        audit_seconds,
    })
}

/// Renders the figures as a Markdown section.
pub fn render(figures: &LedgerFigures, database: &str, machine: &str, command: &str) -> String {
    let rate = |seconds: f64| figures.events as f64 / seconds;
    format!(
        "\n## Ledger: {database}, {date}\n\nMachine: {machine}. Build: release. Command: `{command}`.\n\n\
         | figure | measured | target | |\n|---|---|---|---|\n\
         | sealing {events} events in one catch-up round (leaf hashes, leaf rows, one signed checkpoint) | {seal_rate:.0} events per second ({seal:.1} s) | faster than issuance (about 1,500 events per second at the command target) | {seal_verdict} |\n\
         | chain check alone (`verify_all`, one pass in commit order) | {chain_rate:.0} events per second ({chain:.1} s) | | |\n\
         | full `verify` (chains, leaves, roots, signatures) | {audit_rate:.0} events per second ({audit:.1} s) | {events} events under 10 s | {audit_verdict} |\n\
         | loading the synthetic events (bulk insert, not the API) | {load_rate:.0} events per second ({load:.1} s) | | |\n",
        date = chrono::Utc::now().format("%Y-%m-%d"),
        events = figures.events,
        seal = figures.seal_seconds,
        seal_rate = rate(figures.seal_seconds),
        seal_verdict = if rate(figures.seal_seconds) > 1500.0 {
            "meets"
        } else {
            "misses"
        },
        chain = figures.chain_seconds,
        chain_rate = rate(figures.chain_seconds),
        audit = figures.audit_seconds,
        audit_rate = rate(figures.audit_seconds),
        audit_verdict = if figures.audit_seconds * 1_000_000.0 / figures.events as f64 <= 10.0 {
            "meets"
        } else {
            "misses"
        },
        load = figures.load_seconds,
        load_rate = rate(figures.load_seconds),
    )
}
