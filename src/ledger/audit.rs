//! Verification of the whole ledger: every aggregate's chain, the Merkle root of every
//! checkpoint, every signature, and agreement with the exported checkpoints. The report names
//! the first damage and its kind.

use std::collections::{BTreeMap, HashMap, HashSet};

use aggregates::chain::Damage;
use aggregates::ledger::{self, Checkpoint};
use aggregates::merkle::{Frontier, Hash};
use anyhow::Context;
use futures_util::TryStreamExt;
use serde::Serialize;
use sqlx::{PgPool, Row};

use super::directory::CheckpointDirectory;
use super::keys::{self, PublicKey};
use super::records;
use crate::verify::{self, scan, scan::ActualLeaves};

/// The kind of damage the ledger check found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LedgerDamage {
    /// An event no longer matches its own hash.
    ContentChanged,
    /// An event's `prev_hash` does not match its predecessor.
    LinkBroken,
    /// An event is absent from its aggregate, or a sealed event is absent from the log.
    EventMissing,
    /// Events are stored in an order other than the one they were hashed or sealed in.
    OrderChanged,
    /// A sealed event was changed and its chain hashes recomputed: only the Merkle root of the
    /// checkpoints after it shows the change.
    HistoryRewritten,
    /// Every event of a sealed aggregate (a whole case) is absent.
    CaseDeleted,
    /// An event that was not sealed sits between sealed events (a backdated insertion).
    EventInserted,
    /// Sealed events at the end of the log are absent: the log was cut short behind a
    /// checkpoint.
    Truncated,
    /// A checkpoint's signature does not verify.
    BadSignature,
    /// A checkpoint is signed by a key that the checkpoint directory does not publish.
    UnknownKey,
    /// The database's history is consistent with its own checkpoints but not with the exported
    /// ones: it was restored from an old backup and written to, or rewritten and re-signed.
    Forked,
}

impl std::fmt::Display for LedgerDamage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            LedgerDamage::ContentChanged => "content changed",
            LedgerDamage::LinkBroken => "link broken",
            LedgerDamage::EventMissing => "event missing",
            LedgerDamage::OrderChanged => "order changed",
            LedgerDamage::HistoryRewritten => "history rewritten",
            LedgerDamage::CaseDeleted => "case deleted",
            LedgerDamage::EventInserted => "event inserted",
            LedgerDamage::Truncated => "truncated",
            LedgerDamage::BadSignature => "bad signature",
            LedgerDamage::UnknownKey => "unknown key",
            LedgerDamage::Forked => "forked",
        };
        f.write_str(text)
    }
}

impl From<Damage> for LedgerDamage {
    fn from(damage: Damage) -> Self {
        match damage {
            Damage::ContentChanged => LedgerDamage::ContentChanged,
            Damage::LinkBroken => LedgerDamage::LinkBroken,
            Damage::EventMissing => LedgerDamage::EventMissing,
            Damage::OrderChanged => LedgerDamage::OrderChanged,
        }
    }
}

/// The first damage found, located as precisely as the evidence allows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LedgerFinding {
    pub damage: LedgerDamage,
    /// Global position of the damaged event, when known.
    pub global_position: Option<i64>,
    /// Aggregate type, id and sequence of the damaged event, when known.
    pub event: Option<(String, String, u64)>,
    /// Tree size of the checkpoint that shows the damage, when a checkpoint does.
    pub checkpoint: Option<u64>,
    pub detail: String,
}

/// Result of a ledger check.
#[derive(Debug, Serialize)]
pub struct AuditReport {
    pub events: u64,
    pub chains: u64,
    /// Checkpoints recorded in the database.
    pub checkpoints: u64,
    /// Checkpoints read from the checkpoint directory.
    pub exported: u64,
    /// Events covered by the newest checkpoint whose root was verified.
    pub sealed: u64,
    pub first_damage: Option<LedgerFinding>,
    /// Limits of this check that are not damage, for the operator.
    pub notes: Vec<String>,
}

/// One leaf as sealed into `ledger_leaves`.
struct SealedLeaf {
    position: i64,
    aggregate: (String, String, u64),
    leaf: Hash,
}

/// A checkpoint to check, from the database or the checkpoint directory.
struct Claim<'a> {
    checkpoint: &'a Checkpoint,
    exported: bool,
}

/// Checks the ledger in the database, and against `directory` when given.
///
/// # Errors
/// Fails when the database or the checkpoint directory cannot be read.
pub async fn audit(
    pool: &PgPool,
    directory: Option<&CheckpointDirectory>,
) -> anyhow::Result<AuditReport> {
    let database = records::database_checkpoints(pool).await?;
    let (exported, keys) = match directory {
        Some(directory) => (directory.checkpoints()?, Some(directory.keys()?)),
        None => (Vec::new(), None),
    };
    let sizes: HashSet<u64> = database
        .iter()
        .chain(&exported)
        .map(|checkpoint| checkpoint.tree_size)
        .collect();
    // One pass in commit order checks the chains and computes the leaves. The sealed leaves
    // are read beside it when the pool has a second connection (the embedded database serves
    // one). A chain finding wins over errors from the leaves, which show the same damage again.
    let scan = scan::scan_events(pool, Some(&sizes));
    let (scanned, sealed) = if pool.options().get_max_connections() > 1 {
        tokio::join!(scan, read_sealed(pool))
    } else {
        (scan.await, read_sealed(pool).await)
    };
    let scanned = scanned?;
    let chains = if scanned.chains_verified {
        verify::VerifyReport {
            events: scanned.events,
            aggregates: scanned.aggregates,
            first_break: None,
        }
    } else {
        verify::verify_in_aggregate_order(pool).await?
    };
    let mut report = AuditReport {
        events: chains.events,
        chains: chains.aggregates,
        checkpoints: 0,
        exported: 0,
        sealed: 0,
        first_damage: None,
        notes: Vec::new(),
    };
    if let Some(found) = chains.first_break {
        let position = position_of(
            pool,
            &found.aggregate_type,
            &found.aggregate_id,
            found.sequence,
        )
        .await?;
        report.first_damage = Some(LedgerFinding {
            damage: found.damage.into(),
            global_position: position,
            event: Some((found.aggregate_type, found.aggregate_id, found.sequence)),
            checkpoint: None,
            detail: found.detail,
        });
        return Ok(report);
    }
    let actual = scanned
        .leaves
        .context("the pass over the events computed no leaves")??;
    if directory.is_none() {
        report.notes.push(
            "no checkpoint directory given: signatures, truncation and rollback are checked only against the database's own records".into(),
        );
    }
    report.checkpoints = database.len() as u64;
    report.exported = exported.len() as u64;
    let mut claims: Vec<Claim> = database
        .iter()
        .map(|checkpoint| Claim {
            checkpoint,
            exported: false,
        })
        .chain(exported.iter().map(|checkpoint| Claim {
            checkpoint,
            exported: true,
        }))
        .collect();
    claims.sort_by_key(|claim| (claim.checkpoint.tree_size, claim.exported));
    let sealed = sealed?;
    let sealed_roots = roots_at(sealed.iter().map(|leaf| leaf.leaf), &sizes);
    let trusted = claims.iter().all(|claim| {
        sealed_roots
            .get(&claim.checkpoint.tree_size)
            .is_none_or(|root| ledger::encode_hash(root) == claim.checkpoint.root)
    });
    if trusted && let Some(found) = compare_with_sealed(pool, &actual, &sealed).await? {
        report.first_damage = Some(found);
        return Ok(report);
    }
    if let Some(keys) = &keys
        && let Some(found) = check_signatures(&claims, keys)
    {
        report.first_damage = Some(found);
        return Ok(report);
    }
    for claim in &claims {
        if let Some(found) = check_root(claim, &actual, &database) {
            report.first_damage = Some(found);
            return Ok(report);
        }
        report.sealed = report.sealed.max(claim.checkpoint.tree_size);
    }
    let unsealed = &actual.positions[report.sealed as usize..];
    if !unsealed.is_empty() {
        let note = unsealed_note(pool, unsealed).await?;
        report.notes.push(note);
    }
    Ok(report)
}

/// Maximum number of events outside every checkpoint that the note examines for checkpoint
/// records. Beyond it, the note only counts them.
const UNSEALED_EXAMINED: usize = 10_000;

/// Describes the newest events that no checkpoint covers yet. A checkpoint is itself an event
/// of the ledger, covered only by the next checkpoint, so after a clean stop the last one is
/// always outside. The note names that case, so that it does not read as work left unsealed.
async fn unsealed_note(pool: &PgPool, positions: &[i64]) -> anyhow::Result<String> {
    let count = positions.len() as u64;
    let events = plural(count, "newest event is", "newest events are");
    if positions.len() > UNSEALED_EXAMINED {
        return Ok(format!(
            "{events} not covered by a checkpoint yet; their chains were checked"
        ));
    }
    let others: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE global_position = ANY($1) AND aggregate_type <> $2",
    )
    .bind(positions)
    .bind(<aggregates::ledger::Ledger as cqrs_es::Aggregate>::TYPE)
    .fetch_one(pool)
    .await
    .context("reading the events outside every checkpoint failed")?;

    let records = if count == 1 {
        "the ledger's own checkpoint record, which the next checkpoint covers"
    } else {
        "the ledger's own checkpoint records, which the next checkpoint covers"
    };
    if others == 0 {
        return Ok(format!("{events} {records}; every other event is covered"));
    }

    let checked = if count == 1 {
        "its chain was checked"
    } else {
        "their chains were checked"
    };
    let checkpoint_records = count - others as u64;
    Ok(if checkpoint_records == 0 {
        format!("{events} not covered by a checkpoint yet; {checked}")
    } else {
        format!(
            "{events} not covered by a checkpoint yet, {} among them; {checked}",
            plural(
                checkpoint_records,
                "checkpoint record",
                "checkpoint records"
            )
        )
    })
}

async fn read_sealed(pool: &PgPool) -> anyhow::Result<Vec<SealedLeaf>> {
    // Streamed, so that all rows and the leaves built from them are never held together.
    let mut rows = sqlx::query(
        "SELECT global_position, aggregate_type, aggregate_id, sequence, leaf_hash FROM ledger_leaves ORDER BY leaf_index",
    )
    .fetch(pool);
    let mut sealed = Vec::new();
    while let Some(row) = rows
        .try_next()
        .await
        .context("reading ledger_leaves failed")?
    {
        let leaf: Vec<u8> = row.try_get("leaf_hash")?;
        sealed.push(SealedLeaf {
            position: row.try_get("global_position")?,
            aggregate: (
                row.try_get("aggregate_type")?,
                row.try_get("aggregate_id")?,
                row.try_get::<i64, _>("sequence")? as u64,
            ),
            leaf: leaf
                .try_into()
                .map_err(|_| anyhow::anyhow!("a stored leaf is not 32 bytes"))?,
        });
    }
    Ok(sealed)
}

fn roots_at(leaves: impl Iterator<Item = Hash>, sizes: &HashSet<u64>) -> HashMap<u64, Hash> {
    let mut frontier = Frontier::default();
    let mut roots = HashMap::new();
    for leaf in leaves {
        frontier.push(leaf);
        if sizes.contains(&frontier.size()) {
            roots.insert(frontier.size(), frontier.root());
        }
    }
    roots
}

/// Compares the recomputed leaves with the sealed ones and names the first difference.
async fn compare_with_sealed(
    pool: &PgPool,
    actual: &ActualLeaves,
    sealed: &[SealedLeaf],
) -> anyhow::Result<Option<LedgerFinding>> {
    let Some(index) = (0..sealed.len()).find(|&index| {
        actual.positions.get(index) != Some(&sealed[index].position)
            || actual.leaves[index] != sealed[index].leaf
    }) else {
        return Ok(None);
    };
    let expected = &sealed[index];
    let finding = |damage, position, event, detail| LedgerFinding {
        damage,
        global_position: Some(position),
        event,
        checkpoint: None,
        detail,
    };
    if index >= actual.leaves.len() {
        let detail = format!(
            "the log ends after {index} events, but {} events were sealed; the events from global position {} on are absent",
            sealed.len(),
            expected.position
        );
        return Ok(Some(finding(
            LedgerDamage::Truncated,
            expected.position,
            Some(expected.aggregate.clone()),
            detail,
        )));
    }
    let present: HashSet<i64> = actual.positions.iter().copied().collect();
    if !present.contains(&expected.position) {
        let (aggregate_type, aggregate_id, _) = &expected.aggregate;
        let sealed_of_case = sealed
            .iter()
            .filter(|leaf| leaf.aggregate.0 == *aggregate_type && leaf.aggregate.1 == *aggregate_id)
            .count();
        let remaining: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE aggregate_type = $1 AND aggregate_id = $2",
        )
        .bind(aggregate_type)
        .bind(aggregate_id)
        .fetch_one(pool)
        .await?;
        if remaining == 0 {
            let detail = format!(
                "all {sealed_of_case} sealed events of {aggregate_type} {aggregate_id} are absent, from global position {} on",
                expected.position
            );
            return Ok(Some(finding(
                LedgerDamage::CaseDeleted,
                expected.position,
                Some(expected.aggregate.clone()),
                detail,
            )));
        }
        let detail = format!("the event sealed as leaf {index} is absent");
        return Ok(Some(finding(
            LedgerDamage::EventMissing,
            expected.position,
            Some(expected.aggregate.clone()),
            detail,
        )));
    }
    let position = actual.positions[index];
    let event = event_at(pool, position).await?;
    let sealed_positions: HashSet<i64> = sealed.iter().map(|leaf| leaf.position).collect();
    if !sealed_positions.contains(&position) {
        let detail = format!(
            "this event was never sealed but sits before the sealed event at global position {}",
            expected.position
        );
        return Ok(Some(finding(
            LedgerDamage::EventInserted,
            position,
            event,
            detail,
        )));
    }
    if let Some(original) = sealed
        .iter()
        .position(|leaf| leaf.leaf == actual.leaves[index])
    {
        let detail = format!("the event at leaf {index} was sealed as leaf {original}");
        return Ok(Some(finding(
            LedgerDamage::OrderChanged,
            position,
            event,
            detail,
        )));
    }
    let detail = format!(
        "the event differs from the one sealed as leaf {index}, yet its chain verifies: its hashes were recomputed"
    );
    Ok(Some(finding(
        LedgerDamage::HistoryRewritten,
        position,
        event,
        detail,
    )))
}

fn check_signatures(claims: &[Claim], keys: &BTreeMap<String, PublicKey>) -> Option<LedgerFinding> {
    for claim in claims {
        let checkpoint = claim.checkpoint;
        let source = if claim.exported {
            "exported"
        } else {
            "database"
        };
        let finding = |damage, detail| LedgerFinding {
            damage,
            global_position: None,
            event: None,
            checkpoint: Some(checkpoint.tree_size),
            detail,
        };
        let Some(key) = keys.get(&checkpoint.key_id) else {
            let detail = format!(
                "the {source} checkpoint of {} events is signed by key {}, which the checkpoint directory does not publish",
                checkpoint.tree_size, checkpoint.key_id
            );
            return Some(finding(LedgerDamage::UnknownKey, detail));
        };
        if let Err(reason) = keys::verify_signature(checkpoint, key) {
            let detail = format!(
                "the {source} checkpoint of {} events: {reason}",
                checkpoint.tree_size
            );
            return Some(finding(LedgerDamage::BadSignature, detail));
        }
    }
    None
}

fn check_root(
    claim: &Claim,
    actual: &ActualLeaves,
    database: &[Checkpoint],
) -> Option<LedgerFinding> {
    let checkpoint = claim.checkpoint;
    let source = if claim.exported {
        "exported"
    } else {
        "database"
    };
    let finding = |damage, detail| {
        Some(LedgerFinding {
            damage,
            global_position: None,
            event: None,
            checkpoint: Some(checkpoint.tree_size),
            detail,
        })
    };
    let count = actual.leaves.len() as u64;
    if checkpoint.tree_size > count {
        let detail = format!(
            "the {source} checkpoint covers {} events but the log holds {count}",
            checkpoint.tree_size
        );
        return finding(LedgerDamage::Truncated, detail);
    }
    let root = actual
        .roots
        .get(&checkpoint.tree_size)
        .map(ledger::encode_hash);
    if root.as_deref() == Some(checkpoint.root.as_str()) {
        return None;
    }
    let database_agrees = database.iter().any(|own| {
        own.tree_size == checkpoint.tree_size && Some(own.root.as_str()) == root.as_deref()
    });
    if claim.exported && database_agrees {
        let detail = format!(
            "the database's checkpoint of {} events has another root than the exported one: the database's history forked from the exported history",
            checkpoint.tree_size
        );
        return finding(LedgerDamage::Forked, detail);
    }
    if claim.exported {
        let detail = format!(
            "the first {} events do not hash to the exported checkpoint's root, and the database has no checkpoint of that size that they match: the database's history forked from the exported history",
            checkpoint.tree_size
        );
        return finding(LedgerDamage::Forked, detail);
    }
    let detail = format!(
        "the first {} events do not hash to the checkpoint's root: a sealed event was changed or its position moved",
        checkpoint.tree_size
    );
    finding(LedgerDamage::HistoryRewritten, detail)
}

async fn position_of(
    pool: &PgPool,
    aggregate_type: &str,
    aggregate_id: &str,
    sequence: u64,
) -> anyhow::Result<Option<i64>> {
    // A missing event has no row; the sealed leaf still records where it was.
    let position = sqlx::query_scalar(
        "SELECT global_position FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3
         UNION ALL
         SELECT global_position FROM ledger_leaves WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3
         LIMIT 1",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(sequence as i64)
    .fetch_optional(pool)
    .await?;
    Ok(position)
}

async fn event_at(pool: &PgPool, position: i64) -> anyhow::Result<Option<(String, String, u64)>> {
    let row: Option<(String, String, i64)> = sqlx::query_as(
        "SELECT aggregate_type, aggregate_id, sequence FROM events WHERE global_position = $1",
    )
    .bind(position)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(kind, id, sequence)| (kind, id, sequence as u64)))
}

/// Prints a report for an operator.
pub fn print_report(report: &AuditReport) {
    let chains = plural(report.chains, "chain", "chains");
    let events = plural(report.events, "event", "events");
    match &report.first_damage {
        None => {
            println!("verified {events} in {chains}: every hash and link recomputes");
            println!(
                "verified {} in the database and {} exported: roots and signatures match; {} sealed",
                plural(report.checkpoints, "checkpoint", "checkpoints"),
                report.exported,
                plural(report.sealed, "event", "events"),
            );
        }
        Some(found) => {
            let mut place = String::new();
            if let Some((kind, id, sequence)) = &found.event {
                place.push_str(&format!(" at {kind} {id} sequence {sequence}"));
            }
            if let Some(position) = found.global_position {
                place.push_str(&format!(" (global position {position})"));
            }
            if let Some(size) = found.checkpoint {
                place.push_str(&format!(" under the checkpoint of {size} events"));
            }
            println!("DAMAGE: {}{place}: {}", found.damage, found.detail);
            println!("checked {events} in {chains}");
        }
    }
    for note in &report.notes {
        println!("note: {note}");
    }
}

fn plural(count: u64, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}
