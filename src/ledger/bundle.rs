//! Export bundles: a case, or the whole sealed ledger, as one self-contained JSON file that an
//! independent program can verify (`docs/ledger.md` states the format; `ops/verify_bundle.py`
//! verifies it).

use aggregates::chain;
use aggregates::ledger::{self, Checkpoint};
use aggregates::merkle::{self, Hash};
use anyhow::Context;
use serde::Serialize;
use sqlx::{PgPool, Row};

use super::directory::CheckpointDirectory;
use super::keys::PublicKey;
use super::records;

/// Format name written into every bundle.
pub const FORMAT: &str = "zhengming-bundle-1";

/// A bundle file.
#[derive(Debug, Serialize)]
pub struct Bundle {
    pub format: &'static str,
    /// `ledger` for every sealed event, `case` for the events of one application and the reads
    /// of its personal data.
    pub scope: &'static str,
    pub public_keys: Vec<PublicKey>,
    /// Every checkpoint in the database, smallest tree first.
    pub checkpoints: Vec<Checkpoint>,
    /// For a case: proofs that each checkpoint's tree is a prefix of the next one's.
    pub consistency_proofs: Vec<ConsistencyProof>,
    pub events: Vec<BundledEvent>,
}

/// Proof that the tree of `old_size` leaves is a prefix of the tree of `new_size` leaves.
#[derive(Debug, Serialize)]
pub struct ConsistencyProof {
    pub old_size: u64,
    pub new_size: u64,
    pub proof: Vec<String>,
}

/// One event with the bytes its hash and leaf cover.
#[derive(Debug, Serialize)]
pub struct BundledEvent {
    pub leaf_index: u64,
    pub global_position: i64,
    pub hash: String,
    /// The canonical envelope of `docs/hash-chain.md`, exactly the bytes the hash covers.
    pub envelope: String,
    /// Tree size of the checkpoint the inclusion proof leads to (case bundles).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inclusion_proof: Vec<String>,
}

/// Reads the leaf hashes of the first `size` leaves.
///
/// # Errors
/// Fails when the database cannot be read or fewer leaves are stored.
pub async fn leaf_hashes(pool: &PgPool, size: u64) -> anyhow::Result<Vec<Hash>> {
    let rows: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT leaf_hash FROM ledger_leaves WHERE leaf_index < $1 ORDER BY leaf_index",
    )
    .bind(size as i64)
    .fetch_all(pool)
    .await
    .context("reading ledger leaves failed")?;
    anyhow::ensure!(
        rows.len() as u64 == size,
        "only {} of {size} sealed leaves are stored; run `zhengming verify`",
        rows.len()
    );
    rows.into_iter()
        .map(|leaf| {
            leaf.try_into()
                .map_err(|_| anyhow::anyhow!("a stored leaf is not 32 bytes"))
        })
        .collect()
}

/// Encodes a list of hashes as hexadecimal strings.
pub fn hex_list(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(ledger::encode_hash).collect()
}

/// Builds a bundle of the whole sealed ledger, or of application `case` with the chain of the
/// reads of its personal data, so that an inspector can prove who read the case as well.
///
/// # Errors
/// Fails when nothing is sealed yet, the case has no sealed event, or the database or
/// directory cannot be read.
pub async fn export(
    pool: &PgPool,
    directory: &CheckpointDirectory,
    case: Option<&str>,
) -> anyhow::Result<Bundle> {
    let checkpoints = records::database_checkpoints(pool).await?;
    let newest = checkpoints
        .last()
        .context("no checkpoint has been signed yet; start the server with a ledger key and wait for the first seal")?
        .tree_size;
    let leaves = leaf_hashes(pool, newest).await?;
    let columns =
        "SELECT l.leaf_index, e.global_position, e.aggregate_type, e.aggregate_id, e.sequence,
                          e.event_type, e.event_version, e.payload, e.metadata
                     FROM events e JOIN ledger_leaves l ON l.global_position = e.global_position";
    let sql = match case {
        Some(_) => format!(
            "{columns} WHERE l.leaf_index < $1 AND e.aggregate_id = $2
                AND e.aggregate_type IN ('application', 'application_reads')
              ORDER BY e.aggregate_type, e.sequence"
        ),
        None => format!("{columns} WHERE l.leaf_index < $1 ORDER BY l.leaf_index"),
    };
    let mut query = sqlx::query(&sql).bind(newest as i64);
    if let Some(id) = case {
        query = query.bind(id);
    }
    let rows = query
        .fetch_all(pool)
        .await
        .context("reading the events to export failed")?;
    if let Some(id) = case {
        anyhow::ensure!(
            !rows.is_empty(),
            "application {id} has no sealed event; check the id, or wait for the next checkpoint"
        );
    }
    let mut events = Vec::with_capacity(rows.len());
    for row in &rows {
        let event = records::stored_event(row)?;
        let text = |key: &str| event.metadata.get(key).and_then(|value| value.as_str());
        let hash = text(chain::HASH_KEY)
            .context("an exported event lacks its hash")?
            .to_string();
        let prev_hash = text(chain::PREV_HASH_KEY).context("an exported event lacks prev_hash")?;
        let envelope = String::from_utf8(chain::envelope_bytes(&event, event.sequence, prev_hash)?)
            .expect("canonical JSON is UTF-8");
        let leaf_index = row.try_get::<i64, _>("leaf_index")? as u64;
        let (checkpoint, inclusion_proof) = match case {
            Some(_) => (
                Some(newest),
                hex_list(&merkle::inclusion_proof(&leaves, leaf_index as usize)),
            ),
            None => (None, Vec::new()),
        };
        events.push(BundledEvent {
            leaf_index,
            global_position: row.try_get("global_position")?,
            hash,
            envelope,
            checkpoint,
            inclusion_proof,
        });
    }
    // NOTE: each proof recomputes subtree roots from the leaves, so a case bundle costs
    // O(leaves x (events + checkpoints)) hashes; fine for thousands of checkpoints, slow beyond.
    let consistency_proofs = match case {
        Some(_) => checkpoints
            .windows(2)
            .map(|pair| ConsistencyProof {
                old_size: pair[0].tree_size,
                new_size: pair[1].tree_size,
                proof: hex_list(&merkle::consistency_proof(
                    &leaves[..pair[1].tree_size as usize],
                    pair[0].tree_size as usize,
                )),
            })
            .collect(),
        None => Vec::new(),
    };
    Ok(Bundle {
        format: FORMAT,
        scope: if case.is_some() { "case" } else { "ledger" },
        public_keys: directory.keys()?.into_values().collect(),
        checkpoints,
        consistency_proofs,
        events,
    })
}
