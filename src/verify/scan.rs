//! One pass over the events in commit order (transaction id, then global position) that checks
//! every chain and computes the ledger's leaves from the same canonical envelopes. The sealer
//! seals in the same order.
//!
//! Chains are defined in sequence order, but an intact log stores each aggregate's events in
//! commit order by sequence too: an append commits sequence `n` before another transaction can
//! insert `n + 1`, and that transaction's id is assigned later, so it is larger. So when every
//! event in commit order continues its aggregate's chain, every chain verifies. When one does not, the
//! pass only reports that, and the caller runs the check in aggregate order
//! ([`super::verify_in_aggregate_order`]) to name the first damage.
//!
//! One task reads rows and another encodes and hashes them, so that reading and hashing
//! overlap on two cores.

use std::collections::{HashMap, HashSet};

use aggregates::chain::GENESIS_HASH;
use aggregates::chain::text::{self, EnvelopeError, EventText, StoredLinks};
use aggregates::ledger;
use aggregates::merkle::{Frontier, Hash};
use anyhow::Context;
use futures_util::TryStreamExt;
use sha2::{Digest, Sha256};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use tokio::sync::mpsc;

/// The columns in the order [`ScanState::add`] reads them. Payload and metadata are read as
/// text, which is the stored text for `json` and jsonb's own rendering for `jsonb`: the same
/// text the JSON decoders parse.
const QUERY: &str = "SELECT global_position, aggregate_type, aggregate_id, sequence, event_type, event_version, payload::text, metadata::text
   FROM events ORDER BY transaction_id, global_position";

/// Rows handed from the reading task to the hashing thread at a time.
const BATCH_ROWS: usize = 256;
/// Batches that may wait for the hashing thread, which bounds how far the reader runs ahead.
const BATCHES_IN_FLIGHT: usize = 8;

/// The events' leaves recomputed in commit order, with the roots at the checkpoint sizes.
pub struct ActualLeaves {
    pub positions: Vec<i64>,
    pub leaves: Vec<Hash>,
    pub roots: HashMap<u64, Hash>,
}

/// Result of a pass over the events in commit order.
pub struct Scan {
    pub events: u64,
    /// Distinct aggregates, counted only while `chains_verified` is true.
    pub aggregates: u64,
    /// Whether every event continued its aggregate's chain in commit order. `false` means
    /// damage or an order the pass cannot judge, and calls for the check in aggregate order.
    pub chains_verified: bool,
    /// The leaves, when the pass was asked for them. An error names the first event that has
    /// no leaf because its hash is missing or its content cannot be encoded.
    pub leaves: Option<anyhow::Result<ActualLeaves>>,
}

/// Reads every event in commit order, checks the chains and, given the checkpoint sizes,
/// computes the leaves and the roots at those sizes.
///
/// # Errors
/// Fails when the database cannot be read, a column has an unexpected type, or a payload or
/// metadata is not valid JSON.
pub async fn scan_events(pool: &PgPool, sizes: Option<&HashSet<u64>>) -> anyhow::Result<Scan> {
    let (sender, mut receiver) = mpsc::channel::<Vec<PgRow>>(BATCHES_IN_FLIGHT);
    let mut state = ScanState::new(sizes.cloned());
    let hasher = tokio::task::spawn_blocking(move || -> anyhow::Result<ScanState> {
        while let Some(batch) = receiver.blocking_recv() {
            for row in &batch {
                state.add(row)?;
            }
        }
        Ok(state)
    });
    let read = read_rows(pool, sender).await;
    // A hashing error ends the reading early, so it is the cause to report first.
    let state = hasher
        .await
        .context("the hashing thread stopped unexpectedly")??;
    read?;
    Ok(state.finish())
}

async fn read_rows(pool: &PgPool, sender: mpsc::Sender<Vec<PgRow>>) -> anyhow::Result<()> {
    let mut rows = sqlx::query(QUERY)
        // Unprepared: a cached plan fails once a column's type changed, and a changed column
        // type is one of the things verification must survive.
        .persistent(false)
        .fetch(pool);
    let mut batch = Vec::with_capacity(BATCH_ROWS);
    while let Some(row) = rows.try_next().await? {
        batch.push(row);
        if batch.len() == BATCH_ROWS {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_ROWS));
            if sender.send(full).await.is_err() {
                // The hashing thread stopped on an error, which the caller reports.
                return Ok(());
            }
        }
    }
    if !batch.is_empty() {
        // An error here means the hashing thread stopped, as above.
        let _ = sender.send(batch).await;
    }
    Ok(())
}

/// The newest event seen of an aggregate.
struct ChainEnd {
    sequence: u64,
    hash: Hash,
}

struct LeafState {
    sizes: HashSet<u64>,
    frontier: Frontier,
    actual: ActualLeaves,
    failure: Option<anyhow::Error>,
}

struct ScanState {
    events: u64,
    chains_verified: bool,
    /// Keyed by aggregate type and id joined by a NUL character, which PostgreSQL text never
    /// contains.
    chain_ends: HashMap<String, ChainEnd>,
    key: String,
    envelope: Vec<u8>,
    leaves: Option<LeafState>,
}

impl ScanState {
    fn new(sizes: Option<HashSet<u64>>) -> Self {
        ScanState {
            events: 0,
            chains_verified: true,
            chain_ends: HashMap::new(),
            key: String::new(),
            envelope: Vec::with_capacity(1024),
            leaves: sizes.map(|sizes| LeafState {
                sizes,
                frontier: Frontier::default(),
                actual: ActualLeaves {
                    positions: Vec::new(),
                    leaves: Vec::new(),
                    roots: HashMap::new(),
                },
                failure: None,
            }),
        }
    }

    fn add(&mut self, row: &PgRow) -> anyhow::Result<()> {
        let position: i64 = row.try_get(0)?;
        let event = EventText {
            aggregate_type: row.try_get(1)?,
            aggregate_id: row.try_get(2)?,
            sequence: row.try_get::<i64, _>(3)? as u64,
            event_type: row.try_get(4)?,
            event_version: row.try_get(5)?,
            payload: row.try_get(6)?,
            metadata: row.try_get(7)?,
        };
        self.events += 1;
        let links = match text::write_envelope(&event, &mut self.envelope) {
            Ok(links) => links,
            Err(EnvelopeError::Json(error)) => {
                return Err(error).with_context(|| {
                    format!("the event at global position {position} contains invalid JSON")
                });
            }
            Err(EnvelopeError::NotCanonical(error)) => {
                self.chains_verified = false;
                self.fail_leaves(error.into());
                return Ok(());
            }
        };
        let StoredLinks {
            hash: Some(stored_hash),
            prev_hash: Some(prev_hash),
        } = links
        else {
            self.chains_verified = false;
            self.fail_leaves(anyhow::anyhow!(
                "event at global position {position} lacks a valid hash or prev_hash"
            ));
            return Ok(());
        };
        let digest: Hash = Sha256::digest(&self.envelope).into();
        let recomputes = stored_hash.as_bytes() == hex_lower(&digest);
        if self.chains_verified && !(recomputes && self.extend_chain(&event, &prev_hash, digest)) {
            self.chains_verified = false;
        }
        let stored = if recomputes {
            Some(digest)
        } else {
            ledger::decode_hash(&stored_hash)
        };
        match stored {
            Some(stored) => self.push_leaf(position, &stored),
            None => self.fail_leaves(anyhow::anyhow!(
                "event at global position {position} lacks a valid hash or prev_hash"
            )),
        }
        Ok(())
    }

    /// Records `event` as its aggregate's newest and returns whether it continues the chain:
    /// the next sequence number, linked to the previous event's hash.
    fn extend_chain(&mut self, event: &EventText, prev_hash: &str, hash: Hash) -> bool {
        self.key.clear();
        self.key.push_str(event.aggregate_type);
        self.key.push('\0');
        self.key.push_str(event.aggregate_id);
        match self.chain_ends.get_mut(self.key.as_str()) {
            Some(end) => {
                let continues = event.sequence == end.sequence + 1
                    && prev_hash.as_bytes() == hex_lower(&end.hash);
                *end = ChainEnd {
                    sequence: event.sequence,
                    hash,
                };
                continues
            }
            None => {
                let end = ChainEnd {
                    sequence: event.sequence,
                    hash,
                };
                self.chain_ends.insert(self.key.clone(), end);
                event.sequence == 1 && prev_hash == GENESIS_HASH
            }
        }
    }

    /// Appends the leaf of the envelope in `self.envelope`, whose event stores `hash`. The leaf
    /// hash is SHA-256 over 0x00, the hash and the envelope, as `merkle::leaf_hash` computes it
    /// over `ledger::leaf_data`.
    fn push_leaf(&mut self, position: i64, hash: &Hash) {
        let Some(leaves) = &mut self.leaves else {
            return;
        };
        if leaves.failure.is_some() {
            return;
        }
        let mut hasher = Sha256::new();
        hasher.update([0u8]);
        hasher.update(hash);
        hasher.update(&self.envelope);
        let leaf: Hash = hasher.finalize().into();
        leaves.frontier.push(leaf);
        let size = leaves.frontier.size();
        if leaves.sizes.contains(&size) {
            leaves.actual.roots.insert(size, leaves.frontier.root());
        }
        leaves.actual.positions.push(position);
        leaves.actual.leaves.push(leaf);
    }

    /// Keeps the first reason an event has no leaf.
    fn fail_leaves(&mut self, error: anyhow::Error) {
        if let Some(leaves) = &mut self.leaves {
            leaves.failure.get_or_insert(error);
        }
    }

    fn finish(self) -> Scan {
        Scan {
            events: self.events,
            aggregates: self.chain_ends.len() as u64,
            chains_verified: self.chains_verified,
            leaves: self.leaves.map(|leaves| match leaves.failure {
                Some(error) => Err(error),
                None => Ok(leaves.actual),
            }),
        }
    }
}

fn hex_lower(hash: &Hash) -> [u8; 64] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = [0u8; 64];
    for (index, byte) in hash.iter().enumerate() {
        text[2 * index] = DIGITS[usize::from(byte >> 4)];
        text[2 * index + 1] = DIGITS[usize::from(byte & 0xf)];
    }
    text
}
